//! `repositories/<plugin>/<type>/`: CRUD, `sync/`, `modify/`, and `versions/`.

use std::collections::HashMap;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::support::{
    Fields, Page, json_column, name_filters, object_id, repository_type, spawn_task,
};
use crate::app::AppState;
use crate::db::{new_id, now};
use crate::domain::hrefs::{self, Href};
use crate::error::{ApiError, ApiResult};
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/",
            get(list).post(create),
        )
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/{id}/",
            get(read).patch(update).put(update).delete(destroy),
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
            get(read_version),
        )
}

const COLUMNS: &str = "id, plugin, type_name, name, description, retain_repo_versions, remote_id, latest_version, labels, created, updated";

fn to_json(row: &AnyRow, remote_href: Option<String>) -> Value {
    let (id, plugin, type_name): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let href = hrefs::repository(&plugin, &type_name, &id);
    let latest: i64 = row.get(7);
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
        "remote": remote_href,
    })
}

async fn remote_href(app: &AppState, remote_id: Option<String>) -> ApiResult<Option<String>> {
    let Some(remote_id) = remote_id else {
        return Ok(None);
    };
    let row = sqlx::query("SELECT plugin, type_name FROM remotes WHERE id = $1")
        .bind(&remote_id)
        .fetch_optional(app.db.pool())
        .await?;
    Ok(row.map(|row| hrefs::remote(row.get(0), row.get(1), &remote_id)))
}

async fn load(app: &AppState, plugin: &str, type_name: &str, id: &str) -> ApiResult<AnyRow> {
    repository_type(app, plugin, type_name)?;
    let id = object_id(id)?;
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM repositories WHERE id = $1 AND plugin = $2 AND type_name = $3"
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
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    repository_type(&app, &plugin, &type_name)?;
    let page = Page::from_query(&query)?;
    let (filters, values) = name_filters(&query, 3);
    let count_sql =
        format!("SELECT COUNT(*) FROM repositories WHERE plugin = $1 AND type_name = $2{filters}");
    let mut count = sqlx::query(&count_sql).bind(&plugin).bind(&type_name);
    for value in &values {
        count = count.bind(value);
    }
    let total: i64 = count.fetch_one(app.db.pool()).await?.get(0);
    let n = 3 + values.len();
    let sql = format!(
        "SELECT {COLUMNS} FROM repositories WHERE plugin = $1 AND type_name = $2{filters} ORDER BY name LIMIT ${n} OFFSET ${}",
        n + 1
    );
    let mut rows = sqlx::query(&sql).bind(&plugin).bind(&type_name);
    for value in &values {
        rows = rows.bind(value);
    }
    let rows = rows
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(app.db.pool())
        .await?;
    let mut results = Vec::with_capacity(rows.len());
    for row in &rows {
        results.push(to_json(row, remote_href(&app, row.get(6)).await?));
    }
    Ok(page.respond(&app, &uri, total, results))
}

async fn remote_field(app: &AppState, fields: &Fields, plugin: &str) -> ApiResult<Option<String>> {
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

async fn create(
    State(app): State<AppState>,
    Path((plugin, type_name)): Path<(String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    repository_type(&app, &plugin, &type_name)?;
    let name = fields.required_str("name")?;
    let description = fields.opt_str("description")?;
    let retain = fields.opt_int("retain_repo_versions", 1, i64::MAX)?;
    let labels = fields.labels()?.unwrap_or_else(|| "{}".into());
    let remote_id = remote_field(&app, &fields, &plugin).await?;
    let id = new_id();
    let created = now();
    let mut tx = app.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO repositories (id, plugin, type_name, name, description, retain_repo_versions, remote_id, latest_version, labels, created, updated)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $9)",
    )
    .bind(&id)
    .bind(&plugin)
    .bind(&type_name)
    .bind(&name)
    .bind(&description)
    .bind(retain)
    .bind(&remote_id)
    .bind(&labels)
    .bind(&created)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO repository_versions (id, repository_id, number, base_version_id, created) VALUES ($1, $2, 0, NULL, $3)")
        .bind(new_id())
        .bind(&id)
        .bind(&created)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let row = load(&app, &plugin, &type_name, &id).await?;
    Ok((
        StatusCode::CREATED,
        Json(to_json(&row, remote_href(&app, remote_id).await?)),
    )
        .into_response())
}

async fn read(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    Ok(Json(to_json(&row, remote_href(&app, row.get(6)).await?)))
}

async fn update(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Json<Value>> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    let id: String = row.get(0);
    let mut tx = app.db.begin_write().await?;
    if fields.has("name") {
        let name = fields.required_str("name")?;
        sqlx::query("UPDATE repositories SET name = $2 WHERE id = $1")
            .bind(&id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
    }
    if fields.0.contains_key("description") {
        let description = fields.opt_str("description")?;
        sqlx::query("UPDATE repositories SET description = $2 WHERE id = $1")
            .bind(&id)
            .bind(description)
            .execute(&mut *tx)
            .await?;
    }
    if fields.0.contains_key("retain_repo_versions") {
        let retain = fields.opt_int("retain_repo_versions", 1, i64::MAX)?;
        sqlx::query("UPDATE repositories SET retain_repo_versions = $2 WHERE id = $1")
            .bind(&id)
            .bind(retain)
            .execute(&mut *tx)
            .await?;
    }
    if fields.0.contains_key("remote") {
        let remote_id = remote_field(&app, &fields, &plugin).await?;
        sqlx::query("UPDATE repositories SET remote_id = $2 WHERE id = $1")
            .bind(&id)
            .bind(remote_id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(labels) = fields.labels()? {
        sqlx::query("UPDATE repositories SET labels = $2 WHERE id = $1")
            .bind(&id)
            .bind(labels)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE repositories SET updated = $2 WHERE id = $1")
        .bind(&id)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let row = load(&app, &plugin, &type_name, &id).await?;
    Ok(Json(to_json(&row, remote_href(&app, row.get(6)).await?)))
}

async fn destroy(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    let href = hrefs::repository(&plugin, &type_name, &row.get::<String, _>(0));
    spawn_task(
        &app,
        "granary.tasks.delete",
        TaskArgs::Delete { href: href.clone() },
        &[ResourceLock::exclusive(href)],
    )
    .await
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

fn version_json(
    plugin: &str,
    type_name: &str,
    repository_id: &str,
    row: &AnyRow,
    base: Option<i64>,
) -> Value {
    let number: i64 = row.get(0);
    json!({
        "pulp_href": hrefs::version(plugin, type_name, repository_id, number),
        "prn": format!("prn:core.repositoryversion:{}", row.get::<String, _>(3)),
        "pulp_created": row.get::<String, _>(2),
        "number": number,
        "repository": hrefs::repository(plugin, type_name, repository_id),
        "base_version": base.map(|n| hrefs::version(plugin, type_name, repository_id, n)),
        "content_summary": json_column(&row.get::<String, _>(1)),
    })
}

const VERSION_COLUMNS: &str = "v.number, v.content_summary, v.created, v.id, b.number";

async fn list_versions(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    let repository_id: String = row.get(0);
    let page = Page::from_query(&query)?;
    let total: i64 =
        sqlx::query("SELECT COUNT(*) FROM repository_versions WHERE repository_id = $1")
            .bind(&repository_id)
            .fetch_one(app.db.pool())
            .await?
            .get(0);
    let rows = sqlx::query(&format!(
        "SELECT {VERSION_COLUMNS} FROM repository_versions v LEFT JOIN repository_versions b ON b.id = v.base_version_id
         WHERE v.repository_id = $1 ORDER BY v.number DESC LIMIT $2 OFFSET $3"
    ))
    .bind(&repository_id)
    .bind(page.limit)
    .bind(page.offset)
    .fetch_all(app.db.pool())
    .await?;
    let results = rows
        .iter()
        .map(|row| version_json(&plugin, &type_name, &repository_id, row, row.get(4)))
        .collect();
    Ok(page.respond(&app, &uri, total, results))
}

async fn read_version(
    State(app): State<AppState>,
    Path((plugin, type_name, id, number)): Path<(String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    let repository_id: String = row.get(0);
    let number: i64 = number.parse().map_err(|_| ApiError::not_found())?;
    let row = sqlx::query(&format!(
        "SELECT {VERSION_COLUMNS} FROM repository_versions v LEFT JOIN repository_versions b ON b.id = v.base_version_id
         WHERE v.repository_id = $1 AND v.number = $2"
    ))
    .bind(&repository_id)
    .bind(number)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(Json(version_json(
        &plugin,
        &type_name,
        &repository_id,
        &row,
        row.get(4),
    )))
}
