//! `publications/<plugin>/<type>/`: what a client of a repository version needs, rendered by the
//! plugin.

use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::list::{Bind, Conditions, ExtraFilter, Identity, ListQuery, resource};
use super::routes::Routes;
use super::support::{Fields, referenced, spawn_task, version_id};
use super::typed::{self, TypeRoute, Typed, href_filter};
use crate::domain::hrefs::{self, Href, RestNames};
use crate::error::{ApiError, ApiResult};
use crate::state::App;
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Routes.
pub fn router() -> Routes {
    typed::routes::<Publication>()
}

resource! {
    /// A complete publication, with the number of the version it publishes.
    pub(crate) struct Publication
    in "publications p JOIN repository_versions v ON v.id = p.repository_version_id" as p {
        plugin: String,
        type_name: String,
        repository_id: String,
        number: i64 = "v.number",
        created: String,
    }
    filters: time pulp_created = created;
    orderings: pulp_created = created, pk = id, pulp_id = id;
    default_ordering: "-pulp_created";
    collection: Publications;
}

/// A publication as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PublicationView {
    #[serde(flatten)]
    identity: Identity,
    repository: String,
    repository_version: String,
}

impl PublicationView {
    fn new(names: &RestNames, publication: Publication) -> Self {
        let Publication {
            id,
            plugin,
            type_name,
            repository_id,
            number,
            created,
        } = publication;
        PublicationView {
            identity: Identity::immutable(
                hrefs::publication(names, &plugin, &type_name, &id),
                format!("prn:{plugin}.{type_name}publication:{id}"),
                created,
            ),
            repository: hrefs::repository(names, &plugin, &type_name, &repository_id),
            repository_version: hrefs::version(names, &plugin, &type_name, &repository_id, number),
        }
    }
}

impl Typed for Publication {
    type View = PublicationView;
    const MUTABLE: bool = false;

    fn view(self, _app: &App, names: &RestNames) -> PublicationView {
        PublicationView::new(names, self)
    }

    const FILTERS: &'static [ExtraFilter] = &[
        ExtraFilter::one("repository", "Publications of this repository (an href)."),
        ExtraFilter::one(
            "repository_version",
            "Publications of this version (an href).",
        ),
    ];

    /// `repository_version` and `repository`.
    fn filters(names: &RestNames, query: &ListQuery) -> ApiResult<Conditions> {
        let mut conditions = href_filter(names, query, "repository_version", |href| match href {
            Href::Version { id, number, .. } => Some(Conditions::of(
                "p.repository_id = ? AND v.number = ?",
                [Bind::Text(id), Bind::Int(number)],
            )),
            _ => None,
        })?;
        conditions.extend(href_filter(
            names,
            query,
            "repository",
            |href| match href {
                Href::Repository { id, .. } => {
                    Some(Conditions::of("p.repository_id = ?", [Bind::Text(id)]))
                }
                _ => None,
            },
        )?);
        Ok(conditions)
    }

    /// Publications still being written are not shown.
    fn shown() -> Conditions {
        Conditions::of("p.complete = 1", [])
    }

    async fn create(app: &App, route: TypeRoute, fields: Fields) -> ApiResult<Response> {
        let TypeRoute {
            plugin, type_name, ..
        } = route;
        let names = app.plugins.rest_names();
        let (repository_id, number) = match (
            fields.opt_href(&names, "repository")?,
            fields.opt_href(&names, "repository_version")?,
        ) {
            (Some(Href::Repository { plugin: p, id, .. }), None) if p == plugin => {
                let sql = "SELECT latest_version FROM repositories WHERE id = $1";
                let (latest,): (i64,) = referenced(app, "repository", sql, &id).await?;
                (id, latest)
            }
            (
                None,
                Some(Href::Version {
                    plugin: p,
                    id,
                    number,
                    ..
                }),
            ) if p == plugin => {
                version_id(app, "repository_version", &id, number).await?;
                (id, number)
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "Only one of 'repository' and 'repository_version' may be given.",
                ));
            }
            (None, None) => {
                return Err(ApiError::bad_request(
                    "Either 'repository' or 'repository_version' must be given.",
                ));
            }
            (Some(_), None) => {
                return Err(ApiError::field(
                    "repository",
                    format!("Expected the href of a {plugin} repository."),
                ));
            }
            (None, Some(_)) => {
                return Err(ApiError::field(
                    "repository_version",
                    format!("Expected the href of a {plugin} repository version."),
                ));
            }
        };
        let lock = ResourceLock::shared(hrefs::repository(
            &names,
            &plugin,
            &type_name,
            &repository_id,
        ));
        spawn_task(
            app,
            "granary.tasks.publish",
            TaskArgs::Publish {
                repository_id,
                version: number,
            },
            &[lock],
        )
        .await
    }
}
