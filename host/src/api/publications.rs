//! `publications/<plugin>/<type>/`: what a client of a repository version needs, rendered by the
//! plugin.

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;

use super::list::{
    self, Bind, Conditions, Filter, ListQuery, ListSpec, Resource, Visibility, fetch_by_id, shaped,
};
use super::support::{Fields, of_type, repository_type, spawn_delete, spawn_task};
use crate::app::{App, AppState};
use crate::domain::hrefs::{self, Href};
use crate::error::{ApiError, ApiResult};
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pulp/api/v3/publications/", get(list_all))
        .route(
            "/pulp/api/v3/publications/{plugin}/{type}/",
            get(list).post(create),
        )
        .route(
            "/pulp/api/v3/publications/{plugin}/{type}/{id}/",
            get(read).delete(destroy),
        )
}

/// A complete publication, with the number of the version it publishes.
#[derive(Debug, sqlx::FromRow)]
struct Publication {
    id: String,
    plugin: String,
    type_name: String,
    repository_id: String,
    number: i64,
    created: String,
}

impl Resource for Publication {
    const SPEC: ListSpec = ListSpec {
        from: "publications p JOIN repository_versions v ON v.id = p.repository_version_id",
        id: "p.id",
        columns: "p.id, p.plugin, p.type_name, p.repository_id, v.number, p.created",
        filters: &[Filter::time("pulp_created", "p.created")],
        labels: None,
        orderings: &[
            ("pulp_created", "p.created"),
            ("pk", "p.id"),
            ("pulp_id", "p.id"),
        ],
        default_ordering: "-pulp_created",
    };
}

/// A publication as the API shows it.
#[derive(Debug, Serialize)]
struct PublicationView {
    pulp_href: String,
    prn: String,
    pulp_created: String,
    pulp_last_updated: String,
    repository: String,
    repository_version: String,
}

impl From<Publication> for PublicationView {
    fn from(publication: Publication) -> Self {
        let Publication {
            id,
            plugin,
            type_name,
            repository_id,
            number,
            created,
        } = publication;
        PublicationView {
            pulp_href: hrefs::publication(&plugin, &type_name, &id),
            prn: format!("prn:{plugin}.{type_name}publication:{id}"),
            pulp_last_updated: created.clone(),
            pulp_created: created,
            repository: hrefs::repository(&plugin, &type_name, &repository_id),
            repository_version: hrefs::version(&plugin, &type_name, &repository_id, number),
        }
    }
}

/// Publications still being written are not shown.
fn complete() -> Conditions {
    Conditions::of("p.complete = 1", [])
}

async fn list(
    State(app): State<AppState>,
    Path((plugin, type_name)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let conditions = of_type(&app, &plugin, &type_name, "p.")?;
    respond_list(&app, &query, &uri, conditions).await
}

/// `publications/`: publications of every type.
async fn list_all(
    State(app): State<AppState>,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    respond_list(&app, &query, &uri, Conditions::new()).await
}

async fn respond_list(
    app: &App,
    query: &ListQuery,
    uri: &Uri,
    mut conditions: Conditions,
) -> ApiResult<Response> {
    conditions.extend(complete());
    if let Some(href) = query.get("repository_version") {
        let Some(Href::Version { id, number, .. }) = hrefs::parse(href) else {
            return Err(ApiError::field(
                "repository_version",
                format!("URI not valid: {href}"),
            ));
        };
        conditions.push(
            "p.repository_id = ? AND v.number = ?",
            [Bind::Text(id), Bind::Int(number)],
        );
    }
    if let Some(href) = query.get("repository") {
        let Some(Href::Repository { id, .. }) = hrefs::parse(href) else {
            return Err(ApiError::field(
                "repository",
                format!("URI not valid: {href}"),
            ));
        };
        conditions.push("p.repository_id = ?", [Bind::Text(id)]);
    }
    list::list::<Publication, _>(
        app,
        query,
        uri,
        conditions,
        &Visibility::all(),
        PublicationView::from,
    )
    .await
}

async fn create(
    State(app): State<AppState>,
    Path((plugin, type_name)): Path<(String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    repository_type(&app, &plugin, &type_name)?;
    let (repository_id, number) = match (
        fields.opt_href("repository")?,
        fields.opt_href("repository_version")?,
    ) {
        (Some(Href::Repository { plugin: p, id, .. }), None) if p == plugin => {
            let latest: i64 =
                sqlx::query_scalar("SELECT latest_version FROM repositories WHERE id = $1")
                    .bind(&id)
                    .fetch_optional(app.db.pool())
                    .await?
                    .ok_or_else(|| {
                        ApiError::field("repository", "Invalid hyperlink - Object does not exist.")
                    })?;
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
            sqlx::query(
                "SELECT id FROM repository_versions WHERE repository_id = $1 AND number = $2",
            )
            .bind(&id)
            .bind(number)
            .fetch_optional(app.db.pool())
            .await?
            .ok_or_else(|| {
                ApiError::field(
                    "repository_version",
                    "Invalid hyperlink - Object does not exist.",
                )
            })?;
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
    let lock = ResourceLock::shared(hrefs::repository(&plugin, &type_name, &repository_id));
    spawn_task(
        &app,
        "granary.tasks.publish",
        TaskArgs::Publish {
            repository_id,
            version: number,
        },
        &[lock],
    )
    .await
}

async fn load(app: &AppState, plugin: &str, type_name: &str, id: &str) -> ApiResult<Publication> {
    let mut conditions = of_type(app, plugin, type_name, "p.")?;
    conditions.extend(complete());
    fetch_by_id(&app.db, id, conditions, &Visibility::all()).await
}

async fn read(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<Value>> {
    let publication = load(&app, &plugin, &type_name, &id).await?;
    Ok(shaped(&uri, &PublicationView::from(publication)))
}

async fn destroy(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let publication = load(&app, &plugin, &type_name, &id).await?;
    spawn_delete(
        &app,
        hrefs::publication(&plugin, &type_name, &publication.id),
    )
    .await
}
