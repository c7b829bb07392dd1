//! `remotes/<plugin>/<type>/`: where repositories sync from.

use std::collections::HashMap;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::plugin_fields::{self, Kind};
use super::support::{
    Fields, Page, json_column, name_filters, object_id, repository_type, spawn_task,
};
use crate::app::AppState;
use crate::db::{new_id, now};
use crate::domain::hrefs;
use crate::error::{ApiError, ApiResult};
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/pulp/api/v3/remotes/{plugin}/{type}/",
            get(list).post(create),
        )
        .route(
            "/pulp/api/v3/remotes/{plugin}/{type}/{id}/",
            get(read).patch(update).put(update).delete(destroy),
        )
}

const COLUMNS: &str = "id, plugin, type_name, name, url, policy, download_concurrency, tls_validation, username, password,
    headers, total_timeout, max_retries, labels, created, updated, extra";

const POLICIES: &[&str] = &["immediate", "on_demand", "streamed"];

fn to_json(row: &AnyRow) -> Value {
    let (id, plugin, type_name): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let mut remote = json!({
        "pulp_href": hrefs::remote(&plugin, &type_name, &id),
        "prn": format!("prn:{plugin}.{type_name}remote:{id}"),
        "pulp_created": row.get::<String, _>(14),
        "pulp_last_updated": row.get::<String, _>(15),
        "name": row.get::<String, _>(3),
        "url": row.get::<String, _>(4),
        "policy": row.get::<String, _>(5),
        "download_concurrency": row.get::<Option<i64>, _>(6),
        "tls_validation": row.get::<i64, _>(7) != 0,
        "headers": json_column(&row.get::<String, _>(10)),
        "total_timeout": row.get::<Option<i64>, _>(11),
        "max_retries": row.get::<Option<i64>, _>(12),
        "pulp_labels": json_column(&row.get::<String, _>(13)),
        "hidden_fields": [
            { "name": "username", "is_set": row.get::<Option<String>, _>(8).is_some() },
            { "name": "password", "is_set": row.get::<Option<String>, _>(9).is_some() },
        ],
    });
    plugin_fields::show(&mut remote, &row.get::<String, _>(16));
    remote
}

async fn load(app: &AppState, plugin: &str, type_name: &str, id: &str) -> ApiResult<AnyRow> {
    repository_type(app, plugin, type_name)?;
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM remotes WHERE id = $1 AND plugin = $2 AND type_name = $3"
    ))
    .bind(object_id(id)?)
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
        format!("SELECT COUNT(*) FROM remotes WHERE plugin = $1 AND type_name = $2{filters}");
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql)
        .bind(&plugin)
        .bind(&type_name);
    for value in &values {
        count = count.bind(value);
    }
    let total = count.fetch_one(app.db.pool()).await?;
    let n = 3 + values.len();
    let sql = format!(
        "SELECT {COLUMNS} FROM remotes WHERE plugin = $1 AND type_name = $2{filters} ORDER BY name LIMIT ${n} OFFSET ${}",
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
    Ok(page.respond(&app, &uri, total, rows.iter().map(to_json).collect()))
}

/// The validated, settable fields of a remote.
struct RemoteFields {
    values: Vec<(&'static str, FieldValue)>,
}

enum FieldValue {
    Text(Option<String>),
    Int(Option<i64>),
}

fn validate_url(url: &str) -> ApiResult<()> {
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {
            Ok(())
        }
        _ => Err(ApiError::field(
            "url",
            "Enter a valid http:// or https:// URL.",
        )),
    }
}

/// Reads the remote fields present in the body (all required ones when `creating`).
fn remote_fields(fields: &Fields, creating: bool) -> ApiResult<RemoteFields> {
    let mut values = Vec::new();
    if creating || fields.has("name") {
        values.push(("name", FieldValue::Text(Some(fields.required_str("name")?))));
    }
    if creating || fields.has("url") {
        let url = fields.required_str("url")?;
        validate_url(&url)?;
        values.push(("url", FieldValue::Text(Some(url))));
    }
    if creating || fields.has("policy") {
        let policy = fields
            .opt_str("policy")?
            .unwrap_or_else(|| "immediate".into());
        if !POLICIES.contains(&policy.as_str()) {
            return Err(ApiError::field(
                "policy",
                format!("\"{policy}\" is not a valid choice (immediate, on_demand, streamed)."),
            ));
        }
        values.push(("policy", FieldValue::Text(Some(policy))));
    }
    for (name, min, max) in [
        ("download_concurrency", 1, 64),
        ("total_timeout", 1, 86_400),
        ("max_retries", 0, 10),
    ] {
        if fields.0.contains_key(name) {
            values.push((name, FieldValue::Int(fields.opt_int(name, min, max)?)));
        }
    }
    if fields.0.contains_key("tls_validation") {
        values.push((
            "tls_validation",
            FieldValue::Int(Some(i64::from(
                fields.opt_bool("tls_validation")?.unwrap_or(true),
            ))),
        ));
    }
    for name in ["username", "password"] {
        if fields.0.contains_key(name) {
            values.push((name, FieldValue::Text(fields.opt_str(name)?)));
        }
    }
    if let Some(headers) = fields.0.get("headers").filter(|value| !value.is_null()) {
        let valid = headers.as_array().is_some_and(|items| {
            items.iter().all(|item| {
                item.as_object()
                    .is_some_and(|map| map.values().all(Value::is_string))
            })
        });
        if !valid {
            return Err(ApiError::field(
                "headers",
                "Expected a list of {\"Header-Name\": \"value\"} objects.",
            ));
        }
        values.push(("headers", FieldValue::Text(Some(headers.to_string()))));
    }
    if let Some(labels) = fields.labels()? {
        values.push(("labels", FieldValue::Text(Some(labels))));
    }
    Ok(RemoteFields { values })
}

async fn create(
    State(app): State<AppState>,
    Path((plugin, type_name)): Path<(String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let loaded = repository_type(&app, &plugin, &type_name)?;
    let mut remote = remote_fields(&fields, true)?;
    if let Some(extra) = plugin_fields::extra(&loaded, Kind::Remote, &fields, None)? {
        remote.values.push(("extra", FieldValue::Text(Some(extra))));
    }
    let id = new_id();
    let created = now();
    let mut tx = app.db.begin_write().await?;
    sqlx::query("INSERT INTO remotes (id, plugin, type_name, name, url, policy, created, updated) VALUES ($1, $2, $3, $1, '', '', $4, $4)")
        .bind(&id)
        .bind(&plugin)
        .bind(&type_name)
        .bind(&created)
        .execute(&mut *tx)
        .await?;
    apply(&mut tx, &id, remote).await?;
    tx.commit().await?;
    let row = load(&app, &plugin, &type_name, &id).await?;
    Ok((StatusCode::CREATED, Json(to_json(&row))).into_response())
}

async fn apply(tx: &mut crate::db::WriteTx, id: &str, remote: RemoteFields) -> ApiResult<()> {
    for (column, value) in remote.values {
        let sql = format!("UPDATE remotes SET {column} = $2 WHERE id = $1");
        let query = sqlx::query(&sql).bind(id);
        let query = match value {
            FieldValue::Text(text) => query.bind(text),
            FieldValue::Int(int) => query.bind(int),
        };
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn read(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(to_json(&load(&app, &plugin, &type_name, &id).await?)))
}

async fn update(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Json<Value>> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    let id: String = row.get(0);
    let mut remote = remote_fields(&fields, false)?;
    let loaded = repository_type(&app, &plugin, &type_name)?;
    let stored = row.get::<String, _>(16);
    if let Some(extra) = plugin_fields::extra(&loaded, Kind::Remote, &fields, Some(&stored))? {
        remote.values.push(("extra", FieldValue::Text(Some(extra))));
    }
    let mut tx = app.db.begin_write().await?;
    apply(&mut tx, &id, remote).await?;
    sqlx::query("UPDATE remotes SET updated = $2 WHERE id = $1")
        .bind(&id)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Json(to_json(&load(&app, &plugin, &type_name, &id).await?)))
}

async fn destroy(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    let href = hrefs::remote(&plugin, &type_name, &row.get::<String, _>(0));
    spawn_task(
        &app,
        "granary.tasks.delete",
        TaskArgs::Delete { href: href.clone() },
        &[ResourceLock::exclusive(href)],
    )
    .await
}
