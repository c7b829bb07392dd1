//! `distributions/<plugin>/<type>/`: where the content app serves a publication, a repository
//! version, or the latest of a repository. Create, update and delete are tasks (202), as in
//! Pulp. `distributions/` lists every type.

use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::list::{Bind, Conditions, ExtraFilter, Identity, ListQuery, resource};
use super::plugin_fields::{self, Kind};
use super::remotes::{JoinedRemote, remote_field};
use super::routes::Routes;
use super::support::{
    self, Changes, ColumnValue, Fields, ensure_unique, json_column, plugin_object, plugin_of,
    spawn_task, version_id,
};
use super::typed::{self, TypeRoute, Typed, Update, href_filter};
use crate::content::CONTENT_ROOT;
use crate::domain::content_guards;
use crate::domain::distributions::{self, DistributionFields, Overlap};
use crate::domain::hrefs::{self, Collection, Href, RestNames};
use crate::error::{ApiError, ApiResult};
use crate::state::App;
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Routes.
pub fn router() -> Routes {
    typed::routes::<Distribution>()
}

fn empty_object() -> String {
    "{}".into()
}

resource! {
    /// A row of `distributions`, with the repository and number of the version it serves (if one)
    /// and its remote's plugin and type (for the hrefs).
    pub(crate) struct Distribution in "distributions d
        LEFT JOIN repository_versions rv ON rv.id = d.repository_version_id
        LEFT JOIN repositories r ON r.id = COALESCE(d.repository_id, rv.repository_id)
        LEFT JOIN remotes m ON m.id = d.remote_id
        LEFT JOIN content_guards g ON g.id = d.content_guard" as d {
        plugin: String,
        type_name: String,
        name: String,
        base_path: String,
        publication_id: Option<String>,
        repository_id: Option<String>,
        hidden: i64,
        private: i64,
        labels: String,
        created: String,
        updated: String,
        repository_version_id: Option<String>,
        version_repository_id: Option<String> = "rv.repository_id",
        version_number: Option<i64> = "rv.number",
        // The type of the repository it serves, which a push repository does not share.
        repository_type: Option<String> = "r.type_name",
        #[sqlx(flatten)]
        remote: JoinedRemote => "d.remote_id, m.plugin AS remote_plugin, m.type_name AS remote_type",
        extra: String,
        content_guard: Option<String>,
        content_guard_kind: Option<String> = "g.kind",
    }
    filters: text name, text base_path, bool hidden, bool private, time pulp_created = created,
        time pulp_last_updated = updated;
    labels: labels;
    orderings: name, base_path, pulp_created = created, pulp_last_updated = updated, pk = id,
        pulp_id = id;
    default_ordering: "name";
    collection: Distributions;
}

/// A distribution as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DistributionView {
    /// Plugin-declared fields, first so that a core field of the same name wins in the object
    /// every response is shaped through. The document adds each plugin's own.
    #[serde(flatten)]
    #[schema(ignore)]
    extra: Map<String, Value>,
    #[serde(flatten)]
    identity: Identity,
    base_path: String,
    base_url: String,
    content_guard: Option<String>,
    hidden: bool,
    /// Readable only by users who may view its repository (pulp_container's `private`).
    private: bool,
    #[schema(value_type = BTreeMap<String, String>)]
    pulp_labels: Value,
    name: String,
    repository: Option<String>,
    repository_version: Option<String>,
    publication: Option<String>,
    remote: Option<String>,
    /// Since when what it serves has not changed: its last change, when it serves a publication
    /// or a fixed repository version; `null` when it follows a repository, whose content may
    /// change at any time (Pulp's rule; replication skips the sync of an unchanged one).
    #[schema(format = DateTime)]
    no_content_change_since: Option<String>,
}

impl DistributionView {
    /// The view, with `base_url` under the server's `origin`.
    fn new(origin: &str, names: &RestNames, distribution: Distribution) -> DistributionView {
        let Distribution {
            id,
            plugin,
            type_name,
            ..
        } = &distribution;
        let repository_type = distribution.repository_type.as_deref().unwrap_or(type_name);
        let repository_version = match (
            &distribution.version_repository_id,
            distribution.version_number,
        ) {
            (Some(repository_id), Some(number)) => Some(hrefs::version(
                names,
                plugin,
                repository_type,
                repository_id,
                number,
            )),
            _ => None,
        };
        DistributionView {
            extra: plugin_fields::stored(&distribution.extra),
            base_url: format!("{origin}{CONTENT_ROOT}{}/", distribution.base_path),
            content_guard: distribution
                .content_guard
                .as_deref()
                .zip(distribution.content_guard_kind.as_deref())
                .map(|(id, kind)| content_guards::href(kind, id)),
            hidden: distribution.hidden != 0,
            private: distribution.private != 0,
            pulp_labels: json_column(&distribution.labels),
            repository: distribution
                .repository_id
                .as_ref()
                .map(|repository| hrefs::repository(names, plugin, repository_type, repository)),
            publication: distribution
                .publication_id
                .as_ref()
                .map(|publication| hrefs::publication(names, plugin, type_name, publication)),
            no_content_change_since: (repository_version.is_some()
                || distribution.publication_id.is_some())
            .then(|| distribution.updated.clone()),
            repository_version,
            remote: distribution.remote.href(names),
            identity: Identity::typed(
                hrefs::distribution(names, plugin, type_name, id),
                (plugin, type_name, id),
                "distribution",
                &distribution.created,
                &distribution.updated,
            ),
            base_path: distribution.base_path,
            name: distribution.name,
        }
    }
}

impl Typed for Distribution {
    type View = DistributionView;

    fn view(self, app: &App, names: &RestNames) -> DistributionView {
        DistributionView::new(&app.origin, names, self)
    }

    const FILTERS: &'static [ExtraFilter] = &[ExtraFilter::one(
        "repository",
        "Distributions serving this repository (an href).",
    )];

    /// `repository`.
    fn filters(names: &RestNames, query: &ListQuery) -> ApiResult<Conditions> {
        href_filter(names, query, "repository", |href| match href {
            Href::Repository { id, .. } => {
                Some(Conditions::of("d.repository_id = ?", [Bind::Text(id)]))
            }
            _ => None,
        })
    }

    async fn changes(&self, app: &App, fields: &Fields, whole: bool) -> ApiResult<Update> {
        let (id, plugin) = (&self.id, &self.plugin);
        let mut changes: Changes = Vec::new();
        let mut locks = Vec::new();
        if whole || fields.0.contains_key("name") {
            let name = fields.required_str("name")?;
            ensure_unique(app, "distributions", "name", "name", &name, Some(id)).await?;
            changes.push(("name".into(), ColumnValue::Text(Some(name))));
        }
        if whole || fields.0.contains_key("base_path") {
            let base_path = validate_base_path(&fields.required_str("base_path")?)?;
            check_overlap(app, &base_path, Some(id)).await?;
            locks.push(ResourceLock::exclusive(base_path_lock(&base_path)));
            changes.push(("base_path".into(), ColumnValue::Text(Some(base_path))));
        }
        if fields.0.contains_key("content_guard") {
            changes.push((
                "content_guard".into(),
                ColumnValue::Text(content_guard_field(app, fields).await?),
            ));
        }
        let current = Target {
            publication_id: self.publication_id.clone(),
            repository_id: self.repository_id.clone(),
            repository_version_id: self.repository_version_id.clone(),
        };
        let target = target(app, fields, plugin, current.clone()).await?;
        if target != current {
            changes.push((
                "publication_id".into(),
                ColumnValue::Text(target.publication_id),
            ));
            changes.push((
                "repository_id".into(),
                ColumnValue::Text(target.repository_id),
            ));
            changes.push((
                "repository_version_id".into(),
                ColumnValue::Text(target.repository_version_id),
            ));
        }
        if fields.0.contains_key("remote") {
            changes.push((
                "remote_id".into(),
                ColumnValue::Text(remote_field(app, fields, plugin).await?),
            ));
        }
        for flag in ["hidden", "private"] {
            if fields.0.contains_key(flag) {
                let set = fields.opt_bool(flag)?.unwrap_or(false);
                changes.push((flag.into(), ColumnValue::Int(Some(i64::from(set)))));
            }
        }
        if let Some(labels) = fields.labels()? {
            changes.push(("labels".into(), ColumnValue::Text(Some(labels))));
        }
        let loaded = plugin_of(app, plugin)?;
        if let Some(extra) =
            plugin_fields::extra(&loaded, Kind::Distribution, fields, Some(&self.extra))?
        {
            changes.push(("extra".into(), ColumnValue::Text(Some(extra))));
        }
        Ok((changes, locks))
    }

    async fn create(app: &App, route: TypeRoute, fields: Fields) -> ApiResult<Response> {
        let TypeRoute {
            loaded,
            plugin,
            type_name,
            ..
        } = route;
        let name = fields.required_str("name")?;
        let base_path = validate_base_path(&fields.required_str("base_path")?)?;
        ensure_unique(app, "distributions", "name", "name", &name, None).await?;
        check_overlap(app, &base_path, None).await?;
        let content_guard = content_guard_field(app, &fields).await?;
        let target = target(app, &fields, &plugin, Target::default()).await?;
        let remote_id = remote_field(app, &fields, &plugin).await?;
        let fields = DistributionFields {
            plugin,
            type_name,
            name,
            base_path: base_path.clone(),
            publication_id: target.publication_id,
            repository_id: target.repository_id,
            repository_version_id: target.repository_version_id,
            remote_id,
            content_guard,
            hidden: fields.opt_bool("hidden")?.unwrap_or(false),
            private: fields.opt_bool("private")?.unwrap_or(false),
            labels: fields.labels()?.unwrap_or_else(|| "{}".into()),
            extra: plugin_fields::extra(&loaded, Kind::Distribution, &fields, None)?
                .unwrap_or_else(empty_object),
        };
        let lock = ResourceLock::exclusive(base_path_lock(&base_path));
        spawn_task(
            app,
            "granary.tasks.general_create",
            TaskArgs::CreateDistribution { fields },
            &[lock],
        )
        .await
    }
}

/// Checks a base path: relative, no empty, `.` or `..` segments, not too long or deep.
fn validate_base_path(base_path: &str) -> ApiResult<String> {
    let trimmed = base_path.trim_matches('/');
    if let Some(message) = crate::domain::distributions::base_path_too_long(trimmed) {
        return Err(ApiError::field("base_path", message));
    }
    crate::plugins::validate_relative_path(trimmed)
        .map_err(|message| ApiError::field("base_path", message))?;
    Ok(trimmed.to_owned())
}

/// Refuses a base path that another distribution has, nests inside, or contains (Pulp forbids
/// overlapping base paths: the content app could not tell which one a path belongs to).
async fn check_overlap(app: &App, base_path: &str, except: Option<&str>) -> ApiResult<()> {
    match distributions::overlap(&app.db, base_path, except).await? {
        None => Ok(()),
        Some(Overlap::Same) => Err(ApiError::field("base_path", super::support::UNIQUE_MESSAGE)),
        Some(Overlap::Nested {
            name,
            base_path: other,
        }) => Err(ApiError::field(
            "base_path",
            format!("Overlaps with existing distribution '{name}' (base path '{other}')."),
        )),
    }
}

/// What a distribution serves: at most one of a publication, a repository (its latest), or a
/// repository version.
#[derive(Debug, Default, Clone, PartialEq)]
struct Target {
    publication_id: Option<String>,
    repository_id: Option<String>,
    repository_version_id: Option<String>,
}

const ONLY_ONE: &str = "Only one of the attributes 'repository', 'repository_version' and 'publication' may be used simultaneously.";

/// Resolves the `publication`, `repository` and `repository_version` fields given in the body;
/// those not given keep the values of `current`.
async fn target(app: &App, fields: &Fields, plugin: &str, current: Target) -> ApiResult<Target> {
    let names = app.plugins.rest_names();
    let mut target = current;
    let complete_publication = "SELECT id FROM publications WHERE id = $1 AND complete = 1";
    let repository = "SELECT id FROM repositories WHERE id = $1";
    for (field, collection, sql, id) in [
        (
            "publication",
            Collection::Publications,
            complete_publication,
            &mut target.publication_id,
        ),
        (
            "repository",
            Collection::Repositories,
            repository,
            &mut target.repository_id,
        ),
    ] {
        if fields.0.contains_key(field) {
            *id = plugin_object(app, fields, field, collection, plugin, sql).await?;
        }
    }
    if fields.0.contains_key("repository_version") {
        target.repository_version_id = match fields.opt_href(&names, "repository_version")? {
            None => None,
            Some(Href::Version {
                plugin: p,
                id,
                number,
                ..
            }) if p == plugin => Some(version_id(app, "repository_version", &id, number).await?),
            Some(_) => {
                return Err(ApiError::field(
                    "repository_version",
                    format!("Expected the href of a {plugin} repository version."),
                ));
            }
        };
    }
    let set = [
        &target.publication_id,
        &target.repository_id,
        &target.repository_version_id,
    ]
    .iter()
    .filter(|value| value.is_some())
    .count();
    if set > 1 {
        return Err(ApiError::bad_request(ONLY_ONE));
    }
    Ok(target)
}

/// The `content_guard` field: the href of a content guard of any kind, or null.
async fn content_guard_field(app: &App, fields: &Fields) -> ApiResult<Option<String>> {
    let Some(href) = fields.opt_str("content_guard")? else {
        return Ok(None);
    };
    let (kind, id) = content_guards::parse_href(&href).ok_or_else(|| {
        ApiError::field(
            "content_guard",
            format!("Invalid hyperlink - {href} is not a content guard."),
        )
    })?;
    let sql = format!(
        "SELECT id FROM content_guards WHERE id = $1 AND kind = '{}'",
        kind.segment()
    );
    let _: (String,) = support::referenced(app, "content_guard", &sql, &id).await?;
    Ok(Some(id))
}

/// Creating or moving distributions to the same base path at once is serialised on this lock.
fn base_path_lock(base_path: &str) -> String {
    format!("distribution-base-path:{base_path}")
}
