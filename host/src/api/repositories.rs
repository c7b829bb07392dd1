//! `repositories/<plugin>/<type>/`: CRUD, labels, `sync/`, `modify/`, and `versions/`.
//! Create answers 201; update and delete are tasks (202), as in Pulp. `repositories/` and
//! `repository_versions/` list every type.

use axum::Json;
use axum::extract::{OriginalUri, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::access::{Call, Caller};
use super::list::{
    self, Bind, Conditions, ExtraFilter, Identity, ListQuery, ListRequest, Visibility, fetch_one,
    resource, shaped, split_list,
};
use super::remotes::{JoinedRemote, remote_field};
use super::routes::Routes;
use super::support::{
    Changes, ColumnValue, Fields, ensure_unique, json_column, set_columns, spawn_task, version_id,
};
use super::typed::{self, TypeRoute, Typed, TypedRow, Update, href_filter};
use crate::db::{new_id, now};
use crate::domain::hrefs::{self, Href, RestNames};
use crate::domain::versions::{self, DeleteVersionError};
use crate::error::{ApiError, ApiResult};
use crate::rbac::policy::Subject;
use crate::state::{App, AppState};
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Routes.
pub fn router() -> Routes {
    typed::routes::<Repository>()
        .route("/pulp/api/v3/repository_versions/", get(list_all_versions))
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/{id}/sync/",
            post(sync),
        )
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/{id}/modify/",
            post(modify),
        )
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/{id}/repair_metadata/",
            post(repair_metadata),
        )
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/{id}/versions/",
            get(list_versions),
        )
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/{id}/versions/{number}/",
            get(read_version).delete(destroy_version),
        )
}

resource! {
    /// A row of `repositories`, with its remote's plugin and type (for the remote's href).
    pub(crate) struct Repository in "repositories r LEFT JOIN remotes m ON m.id = r.remote_id" as r {
        plugin: String,
        type_name: String,
        name: String,
        description: Option<String>,
        retain_repo_versions: Option<i64>,
        autopublish: i64,
        latest_version: i64,
        labels: String,
        created: String,
        updated: String,
        #[sqlx(flatten)]
        remote: JoinedRemote => "r.remote_id, m.plugin AS remote_plugin, m.type_name AS remote_type",
    }
    filters: text name, text description, int retain_repo_versions, time pulp_created = created,
        time pulp_last_updated = updated;
    labels: labels;
    orderings: name, pulp_created = created, pulp_last_updated = updated, pk = id, pulp_id = id,
        description, retain_repo_versions;
    default_ordering: "name";
    collection: Repositories;
}

/// A repository as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RepositoryView {
    #[serde(flatten)]
    identity: Identity,
    versions_href: String,
    #[schema(value_type = BTreeMap<String, String>)]
    pulp_labels: Value,
    latest_version_href: String,
    name: String,
    description: Option<String>,
    retain_repo_versions: Option<i64>,
    remote: Option<String>,
    /// Each new version is published by the task that makes it.
    autopublish: bool,
    /// Its `blocklist_entries/`, for a plugin whose repositories have blocklists (pulp_python's).
    #[serde(skip_serializing_if = "Option::is_none")]
    blocklist_entries_href: Option<String>,
}

impl RepositoryView {
    fn new(names: &RestNames, repository: Repository) -> Self {
        let href = hrefs::repository(
            names,
            &repository.plugin,
            &repository.type_name,
            &repository.id,
        );
        RepositoryView {
            blocklist_entries_href: crate::domain::blocklists::applies_to(&repository.plugin)
                .then(|| format!("{href}blocklist_entries/")),
            versions_href: format!("{href}versions/"),
            latest_version_href: format!("{href}versions/{}/", repository.latest_version),
            identity: Identity::typed(
                href,
                repository.key(),
                "repository",
                &repository.created,
                &repository.updated,
            ),
            pulp_labels: json_column(&repository.labels),
            name: repository.name,
            description: repository.description,
            retain_repo_versions: repository.retain_repo_versions,
            remote: repository.remote.href(names),
            autopublish: repository.autopublish != 0,
        }
    }
}

async fn remote_href(app: &App, remote_id: &str) -> ApiResult<Option<String>> {
    let remote: Option<(String, String)> =
        sqlx::query_as("SELECT plugin, type_name FROM remotes WHERE id = $1")
            .bind(remote_id)
            .fetch_optional(app.db.pool())
            .await?;
    let names = app.plugins.rest_names();
    Ok(remote.map(|(plugin, type_name)| hrefs::remote(&names, &plugin, &type_name, remote_id)))
}

impl Typed for Repository {
    type View = RepositoryView;

    fn view(self, _app: &App, names: &RestNames) -> RepositoryView {
        RepositoryView::new(names, self)
    }

    const FILTERS: &'static [ExtraFilter] = &[ExtraFilter::one(
        "remote",
        "Repositories syncing from this remote (an href), or `null` for none.",
    )];

    /// `remote`: an href, or `null` for repositories without one.
    fn filters(names: &RestNames, query: &ListQuery) -> ApiResult<Conditions> {
        if query
            .get("remote")
            .is_some_and(|remote| remote == "null" || remote.is_empty())
        {
            return Ok(Conditions::of("r.remote_id IS NULL", []));
        }
        href_filter(names, query, "remote", |href| match href {
            Href::Remote { id, .. } => Some(Conditions::of("r.remote_id = ?", [Bind::Text(id)])),
            _ => None,
        })
    }

    async fn changes(&self, app: &App, fields: &Fields, whole: bool) -> ApiResult<Update> {
        let changes = repository_changes(app, fields, &self.plugin, whole).await?;
        if let Some(name) = text_change(&changes, "name") {
            ensure_unique(app, "repositories", "name", "name", name, Some(&self.id)).await?;
        }
        Ok((changes, Vec::new()))
    }

    async fn create(app: &App, route: TypeRoute, fields: Fields) -> ApiResult<Response> {
        let changes = repository_changes(app, &fields, &route.plugin, true).await?;
        let name = text_change(&changes, "name").unwrap_or_default().to_owned();
        ensure_unique(app, "repositories", "name", "name", &name, None).await?;
        let id = new_id();
        let created = now();
        let mut tx = app.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO repositories (id, plugin, type_name, name, latest_version, created, updated)
             VALUES ($1, $2, $3, $4, 0, $5, $5)",
        )
        .bind(&id)
        .bind(&route.plugin)
        .bind(&route.type_name)
        .bind(&name)
        .bind(&created)
        .execute(&mut *tx)
        // A name taken since the check above: `ApiError`'s conversion names the field.
        .await?;
        set_columns(&mut tx, "repositories", &id, &changes).await?;
        sqlx::query("INSERT INTO repository_versions (id, repository_id, number, base_version_id, created) VALUES ($1, $2, 0, NULL, $3)")
            .bind(new_id())
            .bind(&id)
            .bind(&created)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let repository: Repository = route.created(app, &id).await?;
        let view = repository.view(app, &app.plugins.rest_names());
        Ok((StatusCode::CREATED, list::json(&view)).into_response())
    }
}

async fn load(app: &App, plugin: &str, segment: &str, id: &str) -> ApiResult<Repository> {
    typed::load(app, plugin, segment, id).await
}

/// The validated columns a create or update sets.
async fn repository_changes(
    app: &App,
    fields: &Fields,
    plugin: &str,
    creating: bool,
) -> ApiResult<Changes> {
    let mut changes: Changes = Vec::new();
    if creating || fields.0.contains_key("name") {
        changes.push((
            "name".into(),
            ColumnValue::Text(Some(fields.required_str("name")?)),
        ));
    }
    if fields.0.contains_key("description") {
        changes.push((
            "description".into(),
            ColumnValue::Text(fields.opt_str("description")?),
        ));
    }
    if fields.0.contains_key("retain_repo_versions") {
        changes.push((
            "retain_repo_versions".into(),
            ColumnValue::Int(fields.opt_int("retain_repo_versions", 1, i64::MAX)?),
        ));
    }
    if let Some(autopublish) = fields.opt_bool("autopublish")? {
        changes.push((
            "autopublish".into(),
            ColumnValue::Int(Some(i64::from(autopublish))),
        ));
    }
    if fields.0.contains_key("remote") {
        changes.push((
            "remote_id".into(),
            ColumnValue::Text(remote_field(app, fields, plugin).await?),
        ));
    }
    if let Some(labels) = fields.labels()? {
        changes.push(("labels".into(), ColumnValue::Text(Some(labels))));
    }
    Ok(changes)
}

fn text_change<'a>(changes: &'a Changes, column: &str) -> Option<&'a str> {
    changes.iter().find_map(|(name, value)| match value {
        ColumnValue::Text(Some(text)) if name == column => Some(text.as_str()),
        _ => None,
    })
}

async fn sync(
    Call { app, caller }: Call,
    Path((plugin, segment, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    typed::refuse_on_push_repositories::<Repository>(&app, &plugin, &segment, "POST")?;
    let references = typed::references(&app.plugins.rest_names(), &fields);
    let key = (plugin.as_str(), segment.as_str(), id.as_str());
    let repository: Repository = typed::load_for(&app, &caller, key, "sync", references).await?;
    let repository_href = repository.href(&app.plugins.rest_names());
    let repository_id = repository.id;
    let remote_id = match remote_field(&app, &fields, &plugin).await? {
        Some(remote_id) => remote_id,
        None => repository.remote.id.ok_or_else(|| {
            ApiError::field(
                "remote",
                "A remote must be given, or set on the repository.",
            )
        })?,
    };
    let mirror = fields.opt_bool("mirror")?.unwrap_or(false);
    let remote_href = remote_href(&app, &remote_id).await?.unwrap_or_default();
    spawn_task(
        &app,
        "granary.tasks.sync",
        TaskArgs::Sync {
            repository_id,
            remote_id,
            mirror,
        },
        &[
            ResourceLock::exclusive(repository_href),
            ResourceLock::shared(remote_href),
        ],
    )
    .await
}

/// `POST repair_metadata/`: the units of the latest version read again through their plugin
/// (pulp_python's action, for every plugin); 202 with the task, which locks the repository.
async fn repair_metadata(
    Call { app, caller }: Call,
    Path((plugin, segment, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    typed::refuse_on_push_repositories::<Repository>(&app, &plugin, &segment, "POST")?;
    let key = (plugin.as_str(), segment.as_str(), id.as_str());
    let repository: Repository =
        typed::load_for(&app, &caller, key, "repair_metadata", Subject::default()).await?;
    let repository_href = repository.href(&app.plugins.rest_names());
    spawn_task(
        &app,
        "granary.tasks.repair_metadata",
        TaskArgs::RepairMetadata {
            repository_id: repository.id,
        },
        &[ResourceLock::exclusive(repository_href)],
    )
    .await
}

async fn modify(
    Call { app, caller }: Call,
    Path((plugin, segment, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    typed::refuse_on_push_repositories::<Repository>(&app, &plugin, &segment, "POST")?;
    let names = app.plugins.rest_names();
    let key = (plugin.as_str(), segment.as_str(), id.as_str());
    let repository: Repository =
        typed::load_for(&app, &caller, key, "modify", Subject::default()).await?;
    let repository_href = repository.href(&names);
    let repository_id = repository.id;
    let add = content_ids(&app, &fields, "add_content_units", &plugin).await?;
    if let Err(refused) =
        crate::domain::blocklists::check_units(&app.db, &plugin, &repository_id, &add).await?
    {
        return Err(ApiError::bad_request(refused.to_string()));
    }
    let everything = matches!(
        fields.0.get("remove_content_units"),
        Some(Value::Array(items)) if items.len() == 1 && items[0] == "*"
    );
    let remove = if everything {
        current_content(&app, &repository_id).await?
    } else {
        content_ids(&app, &fields, "remove_content_units", &plugin).await?
    };
    let base_version = match fields.opt_href(&names, "base_version")? {
        None => None,
        Some(Href::Version {
            id: base_repo,
            number,
            ..
        }) if base_repo == repository_id => {
            version_id(&app, "base_version", &repository_id, number).await?;
            Some(number)
        }
        Some(_) => {
            return Err(ApiError::field(
                "base_version",
                "Must be a version of this repository.",
            ));
        }
    };
    spawn_task(
        &app,
        "granary.tasks.modify",
        TaskArgs::Modify {
            repository_id,
            add,
            remove,
            base_version,
        },
        &[ResourceLock::exclusive(repository_href)],
    )
    .await
}

/// Content ids from a list of content hrefs, each checked to exist and belong to `plugin`.
async fn content_ids(
    app: &AppState,
    fields: &Fields,
    field: &str,
    plugin: &str,
) -> ApiResult<Vec<String>> {
    let mut ids = Vec::new();
    for href in fields.href_list(&app.plugins.rest_names(), field)? {
        let Href::Content {
            plugin: content_plugin,
            id,
            ..
        } = href
        else {
            return Err(ApiError::field(field, "Expected content hrefs."));
        };
        if content_plugin != plugin {
            return Err(ApiError::field(
                field,
                format!(
                    "Content of plugin {content_plugin:?} cannot be added to a {plugin} repository."
                ),
            ));
        }
        let exists = sqlx::query("SELECT id FROM content WHERE id = $1 AND plugin = $2")
            .bind(&id)
            .bind(plugin)
            .fetch_optional(app.db.pool())
            .await?;
        if exists.is_none() {
            return Err(ApiError::field(
                field,
                format!("Content {id} does not exist."),
            ));
        }
        ids.push(id);
    }
    Ok(ids)
}

async fn current_content(app: &AppState, repository_id: &str) -> ApiResult<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT content_id FROM repository_content WHERE repository_id = $1 AND version_removed IS NULL")
        .bind(repository_id)
        .fetch_all(app.db.pool())
        .await?)
}

resource! {
    /// A row of `repository_versions`, with its base version's number and its repository's
    /// identity.
    pub(crate) struct Version in "repository_versions v JOIN repositories r ON r.id = v.repository_id
        LEFT JOIN repository_versions b ON b.id = v.base_version_id" as v {
        number: i64,
        content_summary: String,
        created: String,
        base_number: Option<i64> = "b.number",
        repository_id: String = "r.id",
        plugin: String = "r.plugin",
        type_name: String = "r.type_name",
    }
    filters: int number, time pulp_created = created;
    orderings: number, pulp_created = created, pk = id;
    default_ordering: "-number";
}

/// A repository version as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionView {
    #[serde(flatten)]
    identity: Identity,
    number: i64,
    repository: String,
    base_version: Option<String>,
    /// `{added, removed, present}`: per content type, a count and the href listing them.
    #[schema(value_type = Object)]
    content_summary: Value,
}

impl VersionView {
    fn new(names: &RestNames, version: Version) -> Self {
        let Version {
            id,
            number,
            content_summary,
            created,
            base_number,
            repository_id,
            plugin,
            type_name,
        } = version;
        VersionView {
            identity: Identity::immutable(
                hrefs::version(names, &plugin, &type_name, &repository_id, number),
                format!("prn:core.repositoryversion:{id}"),
                created,
            ),
            number,
            repository: hrefs::repository(names, &plugin, &type_name, &repository_id),
            base_version: base_number
                .map(|base| hrefs::version(names, &plugin, &type_name, &repository_id, base)),
            content_summary: json_column(&content_summary),
        }
    }
}

async fn list_versions(
    Call { app, caller }: Call,
    Path((plugin, segment, id)): Path<(String, String, String)>,
    request: ListRequest,
) -> ApiResult<Response> {
    let repository_id = versions_of(&app, &caller, (&plugin, &segment, &id), "list").await?;
    respond_versions(&app, &caller, &request, Some(repository_id)).await
}

/// The id of the repository whose versions the caller takes `action` on: 404 when they may
/// not see the repository, 403 when the versions' policy refuses them.
pub(crate) async fn versions_of(
    app: &App,
    caller: &Caller,
    (plugin, segment, id): (&str, &str, &str),
    action: &str,
) -> ApiResult<String> {
    let repository: Repository = typed::load_visible(app, caller, plugin, segment, id).await?;
    let subject = Subject {
        parent_repository: Some(repository.id.clone()),
        ..Subject::default()
    };
    let viewset = format!("{}/versions", typed::viewset::<Repository>(plugin, segment));
    caller.authorize(app, &viewset, action, &subject).await?;
    Ok(repository.id)
}

/// `repository_versions/`: the versions of every repository the caller may see.
async fn list_all_versions(
    Call { app, caller }: Call,
    request: ListRequest,
) -> ApiResult<Response> {
    respond_versions(&app, &caller, &request, None).await
}

/// The SQL condition "content unit `?` is in version `v`".
const HAS_CONTENT: &str =
    "EXISTS (SELECT 1 FROM repository_content rc WHERE rc.repository_id = v.repository_id
    AND rc.content_id = ? AND rc.version_added <= v.number
    AND (rc.version_removed IS NULL OR rc.version_removed > v.number))";

fn content_id_of(names: &RestNames, field: &str, href: &str) -> ApiResult<String> {
    match hrefs::parse(names, href) {
        Some(Href::Content { id, .. }) => Ok(id),
        _ => Err(ApiError::field(
            field,
            format!("Invalid hyperlink - {href} is not a content href."),
        )),
    }
}

/// The list filters [`respond_versions`] reads besides its spec's.
pub(crate) const VERSION_FILTERS: &[ExtraFilter] = &[
    ExtraFilter::one("content", "Versions holding this content unit (an href)."),
    ExtraFilter::many(
        "content__in",
        "Versions holding any of these content units.",
    ),
];

/// The versions of `repository` (whose versions the caller may list), or of every repository
/// the caller may see.
async fn respond_versions(
    app: &App,
    caller: &Caller,
    request: &ListRequest,
    repository: Option<String>,
) -> ApiResult<Response> {
    let (mut conditions, visibility) = match repository {
        Some(id) => (
            Conditions::of("v.repository_id = ?", [Bind::Text(id)]),
            Visibility::all(),
        ),
        // The version list reads the repository as `r`, as the repository list does.
        None => (
            Conditions::new(),
            typed::visible_of_every_type::<Repository>(app, caller).await?,
        ),
    };
    let names = app.plugins.rest_names();
    if let Some(href) = request.query.get("content") {
        conditions.push(
            HAS_CONTENT,
            [Bind::Text(content_id_of(&names, "content", href)?)],
        );
    }
    if let Some(list) = request.query.get("content__in") {
        let ids = split_list(list)
            .map(|href| content_id_of(&names, "content__in", href))
            .collect::<ApiResult<Vec<_>>>()?;
        let marks = vec!["?"; ids.len()].join(", ");
        if ids.is_empty() {
            conditions.push("1 = 0", []);
        } else {
            conditions.push(
                &format!(
                    "EXISTS (SELECT 1 FROM repository_content rc WHERE rc.repository_id = v.repository_id
                     AND rc.content_id IN ({marks}) AND rc.version_added <= v.number
                     AND (rc.version_removed IS NULL OR rc.version_removed > v.number))"
                ),
                ids.into_iter().map(Bind::Text),
            );
        }
    }
    list::list::<Version, _>(app, request, conditions, &visibility, |version| {
        VersionView::new(&names, version)
    })
    .await
}

async fn read_version(
    Call { app, caller }: Call,
    Path((plugin, segment, id, number)): Path<(String, String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<Value>> {
    let repository_id = versions_of(&app, &caller, (&plugin, &segment, &id), "retrieve").await?;
    let number: i64 = number.parse().map_err(|_| ApiError::not_found())?;
    let version: Version = fetch_one(
        &app.db,
        Conditions::of(
            "v.repository_id = ? AND v.number = ?",
            [Bind::Text(repository_id), Bind::Int(number)],
        ),
        &Visibility::all(),
    )
    .await?;
    Ok(shaped(
        &uri,
        &VersionView::new(&app.plugins.rest_names(), version),
    ))
}

/// `DELETE versions/<n>/`: a task that removes the version, squashing its changes into the next
/// one (no other version's content changes); the latest version's changes are dropped and the
/// one before is the latest. As in Pulp, the only version and versions a distribution serves
/// are refused (400).
async fn destroy_version(
    Call { app, caller }: Call,
    Path((plugin, segment, id, number)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let repository_id = versions_of(&app, &caller, (&plugin, &segment, &id), "destroy").await?;
    let repository = load(&app, &plugin, &segment, &repository_id).await?;
    let repository_href = repository.href(&app.plugins.rest_names());
    let number: i64 = number.parse().map_err(|_| ApiError::not_found())?;
    let mut conn = app.db.pool().acquire().await?;
    match versions::check_deletable(&mut conn, &repository_id, number).await {
        Ok(()) => {}
        Err(DeleteVersionError::Missing(_)) => return Err(ApiError::not_found()),
        Err(error @ (DeleteVersionError::LastRemaining(_) | DeleteVersionError::Protected(_))) => {
            return Err(ApiError::bad_request(error.to_string()));
        }
        Err(DeleteVersionError::Db(error)) => return Err(error.into()),
    }
    drop(conn);
    spawn_task(
        &app,
        "granary.tasks.repository_version_delete",
        TaskArgs::DeleteVersion {
            repository_id,
            number,
        },
        &[ResourceLock::exclusive(repository_href)],
    )
    .await
}
