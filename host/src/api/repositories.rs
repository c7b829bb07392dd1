//! `repositories/<plugin>/<type>/`: CRUD, labels, `sync/`, `modify/`, and `versions/`.
//! Create answers 201; update and delete are tasks (202), as in Pulp. `repositories/` and
//! `repository_versions/` list every type.

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::support::{
    Bind, Changes, ColumnValue, Conditions, Fields, ListQuery, ListSpec, Page, UNIQUE_MESSAGE,
    common_filters, ensure_unique, fetch_page, json_column, object_id, order_by, repository_type,
    shaped, spawn_delete, spawn_task, spawn_update, split_list,
};
use crate::db::{new_id, now};
use crate::domain::hrefs::{self, Href};
use crate::domain::versions::{self, DeleteVersionError};
use crate::error::{ApiError, ApiResult};
use crate::state::{App, AppState};
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pulp/api/v3/repositories/", get(list_all))
        .route("/pulp/api/v3/repository_versions/", get(list_all_versions))
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/",
            get(list).post(create),
        )
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/{id}/",
            get(read).patch(update).put(replace).delete(destroy),
        )
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/{id}/set_label/",
            post(set_label),
        )
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/{id}/unset_label/",
            post(unset_label),
        )
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/{id}/sync/",
            post(sync),
        )
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/{id}/modify/",
            post(modify),
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

/// The repository's columns, then its remote's plugin and type (for the remote's href).
const COLUMNS: &str =
    "r.id, r.plugin, r.type_name, r.name, r.description, r.retain_repo_versions, r.remote_id,
    r.latest_version, r.labels, r.created, r.updated, m.plugin, m.type_name";

const SPEC: ListSpec = ListSpec {
    from: "repositories r LEFT JOIN remotes m ON m.id = r.remote_id",
    id: "r.id",
    name: Some("r.name"),
    labels: Some("r.labels"),
    orderings: &[
        ("name", "r.name"),
        ("pulp_created", "r.created"),
        ("pulp_last_updated", "r.updated"),
        ("pk", "r.id"),
        ("pulp_id", "r.id"),
        ("description", "r.description"),
        ("retain_repo_versions", "r.retain_repo_versions"),
    ],
    default_ordering: "name",
};

fn to_json(row: &AnyRow) -> Value {
    let (id, plugin, type_name): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let href = hrefs::repository(&plugin, &type_name, &id);
    let latest: i64 = row.get(7);
    let remote = match (
        row.get::<Option<String>, _>(6),
        row.get::<Option<String>, _>(11),
        row.get::<Option<String>, _>(12),
    ) {
        (Some(remote_id), Some(remote_plugin), Some(remote_type)) => {
            Some(hrefs::remote(&remote_plugin, &remote_type, &remote_id))
        }
        _ => None,
    };
    json!({
        "pulp_href": href,
        "prn": format!("prn:{plugin}.{type_name}repository:{id}"),
        "pulp_created": row.get::<String, _>(9),
        "pulp_last_updated": row.get::<String, _>(10),
        "versions_href": format!("{href}versions/"),
        "pulp_labels": json_column(&row.get::<String, _>(8)),
        "latest_version_href": format!("{href}versions/{latest}/"),
        "name": row.get::<String, _>(3),
        "description": row.get::<Option<String>, _>(4),
        "retain_repo_versions": row.get::<Option<i64>, _>(5),
        "remote": remote,
    })
}

async fn remote_href(app: &App, remote_id: Option<String>) -> ApiResult<Option<String>> {
    let Some(remote_id) = remote_id else {
        return Ok(None);
    };
    let row = sqlx::query("SELECT plugin, type_name FROM remotes WHERE id = $1")
        .bind(&remote_id)
        .fetch_optional(app.db.pool())
        .await?;
    Ok(row.map(|row| hrefs::remote(row.get(0), row.get(1), &remote_id)))
}

async fn load(app: &App, plugin: &str, type_name: &str, id: &str) -> ApiResult<AnyRow> {
    repository_type(app, plugin, type_name)?;
    let id = object_id(id)?;
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM {} WHERE r.id = $1 AND r.plugin = $2 AND r.type_name = $3",
        SPEC.from
    ))
    .bind(id)
    .bind(plugin)
    .bind(type_name)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(ApiError::not_found)
}

async fn list(
    State(app): State<AppState>,
    Path((plugin, type_name)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    repository_type(&app, &plugin, &type_name)?;
    let mut conditions = Conditions::new();
    conditions.push(
        "r.plugin = ? AND r.type_name = ?",
        [Bind::from(plugin), Bind::from(type_name)],
    );
    respond_list(&app, &query, &uri, conditions).await
}

/// `repositories/`: every repository, whatever its type.
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
    let page = Page::from_query(query)?;
    common_filters(app, query, &SPEC, &mut conditions)?;
    if let Some(remote) = query.get("remote") {
        match hrefs::parse(remote) {
            Some(Href::Remote { id, .. }) => {
                conditions.push("r.remote_id = ?", [Bind::Text(id)]);
            }
            _ if remote == "null" || remote.is_empty() => {
                conditions.push("r.remote_id IS NULL", []);
            }
            _ => {
                return Err(ApiError::field(
                    "remote",
                    format!("URI not valid: {remote}"),
                ));
            }
        }
    }
    let order = order_by(query, &SPEC)?;
    let (total, rows) = fetch_page(app, &SPEC, COLUMNS, &conditions, &order, &page).await?;
    Ok(page.respond(app, uri, total, rows.iter().map(to_json).collect()))
}

async fn remote_field(app: &App, fields: &Fields, plugin: &str) -> ApiResult<Option<String>> {
    match fields.opt_href("remote")? {
        None => Ok(None),
        Some(Href::Remote {
            plugin: remote_plugin,
            id,
            ..
        }) if remote_plugin == plugin => {
            let exists = sqlx::query("SELECT id FROM remotes WHERE id = $1")
                .bind(&id)
                .fetch_optional(app.db.pool())
                .await?;
            exists.map(|_| Some(id)).ok_or_else(|| {
                ApiError::field("remote", "Invalid hyperlink - Object does not exist.")
            })
        }
        Some(_) => Err(ApiError::field(
            "remote",
            format!("Expected a {plugin} remote."),
        )),
    }
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

async fn create(
    State(app): State<AppState>,
    Path((plugin, type_name)): Path<(String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    repository_type(&app, &plugin, &type_name)?;
    let changes = repository_changes(&app, &fields, &plugin, true).await?;
    let name = text_change(&changes, "name").unwrap_or_default().to_owned();
    ensure_unique(&app, "repositories", "name", "name", &name, None).await?;
    let id = new_id();
    let created = now();
    let mut tx = app.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO repositories (id, plugin, type_name, name, latest_version, created, updated)
         VALUES ($1, $2, $3, $4, 0, $5, $5)",
    )
    .bind(&id)
    .bind(&plugin)
    .bind(&type_name)
    .bind(&name)
    .bind(&created)
    .execute(&mut *tx)
    .await
    .map_err(|error| match error.as_database_error() {
        Some(db) if db.is_unique_violation() => ApiError::field("name", UNIQUE_MESSAGE),
        _ => ApiError::from(error),
    })?;
    for (column, value) in &changes {
        let sql = format!("UPDATE repositories SET {column} = $2 WHERE id = $1");
        let query = sqlx::query(&sql).bind(&id);
        let query = match value {
            ColumnValue::Text(text) => query.bind(text.clone()),
            ColumnValue::Int(int) => query.bind(*int),
        };
        query.execute(&mut *tx).await?;
    }
    sqlx::query("INSERT INTO repository_versions (id, repository_id, number, base_version_id, created) VALUES ($1, $2, 0, NULL, $3)")
        .bind(new_id())
        .bind(&id)
        .bind(&created)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let row = load(&app, &plugin, &type_name, &id).await?;
    Ok((StatusCode::CREATED, Json(to_json(&row))).into_response())
}

async fn read(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<Value>> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    Ok(shaped(&uri, to_json(&row)))
}

/// `PATCH`: changes the fields given.
async fn update(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    dispatch_update(&app, &plugin, &type_name, &id, &fields, false).await
}

/// `PUT`: the whole repository; `name` must be given.
async fn replace(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    dispatch_update(&app, &plugin, &type_name, &id, &fields, true).await
}

async fn dispatch_update(
    app: &App,
    plugin: &str,
    type_name: &str,
    id: &str,
    fields: &Fields,
    whole: bool,
) -> ApiResult<Response> {
    let row = load(app, plugin, type_name, id).await?;
    let id: String = row.get(0);
    let changes = repository_changes(app, fields, plugin, whole).await?;
    if let Some(name) = text_change(&changes, "name") {
        ensure_unique(app, "repositories", "name", "name", name, Some(&id)).await?;
    }
    spawn_update(
        app,
        hrefs::repository(plugin, type_name, &id),
        changes,
        Vec::new(),
    )
    .await
}

async fn destroy(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    spawn_delete(
        &app,
        hrefs::repository(&plugin, &type_name, &row.get::<String, _>(0)),
    )
    .await
}

async fn set_label(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    super::support::set_label(&app, "repositories", &row.get::<String, _>(0), &fields).await
}

async fn unset_label(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    super::support::unset_label(&app, "repositories", &row.get::<String, _>(0), &fields).await
}

async fn sync(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    let repository_id: String = row.get(0);
    let remote_id = match remote_field(&app, &fields, &plugin).await? {
        Some(remote_id) => remote_id,
        None => row.get::<Option<String>, _>(6).ok_or_else(|| {
            ApiError::field(
                "remote",
                "A remote must be given, or set on the repository.",
            )
        })?,
    };
    let mirror = fields.opt_bool("mirror")?.unwrap_or(false);
    let repository_href = hrefs::repository(&plugin, &type_name, &repository_id);
    let remote_href = remote_href(&app, Some(remote_id.clone()))
        .await?
        .unwrap_or_default();
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

async fn modify(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    let repository_id: String = row.get(0);
    let add = content_ids(&app, &fields, "add_content_units", &plugin).await?;
    let remove = if fields.0.get("remove_content_units") == Some(&json!(["*"])) {
        current_content(&app, &repository_id).await?
    } else {
        content_ids(&app, &fields, "remove_content_units", &plugin).await?
    };
    let base_version = match fields.opt_href("base_version")? {
        None => None,
        Some(Href::Version {
            id: base_repo,
            number,
            ..
        }) if base_repo == repository_id => {
            let exists = sqlx::query(
                "SELECT id FROM repository_versions WHERE repository_id = $1 AND number = $2",
            )
            .bind(&repository_id)
            .bind(number)
            .fetch_optional(app.db.pool())
            .await?;
            exists.ok_or_else(|| {
                ApiError::field("base_version", "Invalid hyperlink - Object does not exist.")
            })?;
            Some(number)
        }
        Some(_) => {
            return Err(ApiError::field(
                "base_version",
                "Must be a version of this repository.",
            ));
        }
    };
    let repository_href = hrefs::repository(&plugin, &type_name, &repository_id);
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
    for href in fields.href_list(field)? {
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
    let rows = sqlx::query("SELECT content_id FROM repository_content WHERE repository_id = $1 AND version_removed IS NULL")
        .bind(repository_id)
        .fetch_all(app.db.pool())
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// A version's columns, then its repository's identity.
const VERSION_COLUMNS: &str =
    "v.number, v.content_summary, v.created, v.id, b.number, r.id, r.plugin, r.type_name";

const VERSION_SPEC: ListSpec = ListSpec {
    from: "repository_versions v JOIN repositories r ON r.id = v.repository_id
           LEFT JOIN repository_versions b ON b.id = v.base_version_id",
    id: "v.id",
    name: None,
    labels: None,
    orderings: &[
        ("number", "v.number"),
        ("pulp_created", "v.created"),
        ("pk", "v.id"),
    ],
    default_ordering: "-number",
};

fn version_json(row: &AnyRow) -> Value {
    let number: i64 = row.get(0);
    let (repository_id, plugin, type_name): (String, String, String) =
        (row.get(5), row.get(6), row.get(7));
    let base: Option<i64> = row.get(4);
    let created: String = row.get(2);
    json!({
        "pulp_href": hrefs::version(&plugin, &type_name, &repository_id, number),
        "prn": format!("prn:core.repositoryversion:{}", row.get::<String, _>(3)),
        "pulp_created": created,
        "pulp_last_updated": created,
        "number": number,
        "repository": hrefs::repository(&plugin, &type_name, &repository_id),
        "base_version": base.map(|n| hrefs::version(&plugin, &type_name, &repository_id, n)),
        "content_summary": json_column(&row.get::<String, _>(1)),
    })
}

async fn list_versions(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    let mut conditions = Conditions::new();
    conditions.push("v.repository_id = ?", [Bind::Text(row.get(0))]);
    respond_versions(&app, &query, &uri, conditions).await
}

/// `repository_versions/`: the versions of every repository.
async fn list_all_versions(
    State(app): State<AppState>,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    respond_versions(&app, &query, &uri, Conditions::new()).await
}

/// The SQL condition "content unit `?` is in version `v`".
const HAS_CONTENT: &str =
    "EXISTS (SELECT 1 FROM repository_content rc WHERE rc.repository_id = v.repository_id
    AND rc.content_id = ? AND rc.version_added <= v.number
    AND (rc.version_removed IS NULL OR rc.version_removed > v.number))";

fn content_id_of(field: &str, href: &str) -> ApiResult<String> {
    match hrefs::parse(href) {
        Some(Href::Content { id, .. }) => Ok(id),
        _ => Err(ApiError::field(
            field,
            format!("Invalid hyperlink - {href} is not a content href."),
        )),
    }
}

async fn respond_versions(
    app: &App,
    query: &ListQuery,
    uri: &Uri,
    mut conditions: Conditions,
) -> ApiResult<Response> {
    let page = Page::from_query(query)?;
    for (param, operator) in [
        ("number", "="),
        ("number__gt", ">"),
        ("number__gte", ">="),
        ("number__lt", "<"),
        ("number__lte", "<="),
    ] {
        if let Some(value) = query.get(param) {
            let number: i64 = value
                .parse()
                .map_err(|_| ApiError::field(param, "Enter a number."))?;
            conditions.push(&format!("v.number {operator} ?"), [Bind::Int(number)]);
        }
    }
    if let Some(href) = query.get("content") {
        conditions.push(HAS_CONTENT, [Bind::Text(content_id_of("content", href)?)]);
    }
    if let Some(list) = query.get("content__in") {
        let ids = split_list(list)
            .map(|href| content_id_of("content__in", href))
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
    let order = order_by(query, &VERSION_SPEC)?;
    let (total, rows) = fetch_page(
        app,
        &VERSION_SPEC,
        VERSION_COLUMNS,
        &conditions,
        &order,
        &page,
    )
    .await?;
    Ok(page.respond(app, uri, total, rows.iter().map(version_json).collect()))
}

async fn read_version(
    State(app): State<AppState>,
    Path((plugin, type_name, id, number)): Path<(String, String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<Value>> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    let repository_id: String = row.get(0);
    let number: i64 = number.parse().map_err(|_| ApiError::not_found())?;
    let row = sqlx::query(&format!(
        "SELECT {VERSION_COLUMNS} FROM {} WHERE v.repository_id = $1 AND v.number = $2",
        VERSION_SPEC.from
    ))
    .bind(&repository_id)
    .bind(number)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(shaped(&uri, version_json(&row)))
}

/// `DELETE versions/<n>/`: a task that removes the version, squashing its changes into the next
/// one (no other version's content changes). The latest version cannot be deleted.
async fn destroy_version(
    State(app): State<AppState>,
    Path((plugin, type_name, id, number)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    let repository_id: String = row.get(0);
    let number: i64 = number.parse().map_err(|_| ApiError::not_found())?;
    let mut conn = app.db.pool().acquire().await?;
    match versions::check_deletable(&mut conn, &repository_id, number).await {
        Ok(()) => {}
        Err(DeleteVersionError::Missing(_)) => return Err(ApiError::not_found()),
        Err(DeleteVersionError::Latest(_)) => {
            return Err(ApiError::bad_request(
                "The latest version of a repository cannot be deleted.",
            ));
        }
        Err(DeleteVersionError::Db(error)) => return Err(error.into()),
    }
    drop(conn);
    spawn_task(
        &app,
        "granary.tasks.repository_version_delete",
        TaskArgs::DeleteVersion {
            repository_id: repository_id.clone(),
            number,
        },
        &[ResourceLock::exclusive(hrefs::repository(
            &plugin,
            &type_name,
            &repository_id,
        ))],
    )
    .await
}
