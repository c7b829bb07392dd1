//! `tasks/`: list (filtered by state and name), read, cancel (`PATCH {"state": "canceled"}`),
//! delete finished ones.

use std::collections::HashMap;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::support::{Fields, Page, json_column, object_id};
use crate::app::AppState;
use crate::db::now;
use crate::domain::hrefs;
use crate::error::{ApiError, ApiResult};
use crate::tasks::state;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/pulp/api/v3/tasks/", get(list)).route(
        "/pulp/api/v3/tasks/{id}/",
        get(read).patch(cancel).delete(destroy),
    )
}

const COLUMNS: &str = "id, name, state, created, started, finished, worker, error, progress_reports, created_resources";

fn to_json(row: &AnyRow, resources: Vec<String>) -> Value {
    let id: String = row.get(0);
    json!({
        "pulp_href": hrefs::task(&id),
        "prn": format!("prn:core.task:{id}"),
        "pulp_created": row.get::<String, _>(3),
        "pulp_last_updated": row.get::<String, _>(3),
        "name": row.get::<String, _>(1),
        "state": row.get::<String, _>(2),
        "logging_cid": id,
        "unblocked_at": row.get::<Option<String>, _>(4),
        "started_at": row.get::<Option<String>, _>(4),
        "finished_at": row.get::<Option<String>, _>(5),
        "worker": row.get::<Option<String>, _>(6),
        "error": row.get::<Option<String>, _>(7).map(|error| json_column(&error)),
        "progress_reports": json_column(&row.get::<String, _>(8)),
        "created_resources": json_column(&row.get::<String, _>(9)),
        "reserved_resources_record": resources,
        "parent_task": null,
        "child_tasks": [],
        "task_group": null,
    })
}

async fn resources(app: &AppState, id: &str) -> ApiResult<Vec<String>> {
    let rows = sqlx::query("SELECT resource, exclusive FROM task_resources WHERE task_id = $1")
        .bind(id)
        .fetch_all(app.db.pool())
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let resource: String = row.get(0);
            if row.get::<i64, _>(1) != 0 {
                resource
            } else {
                format!("shared:{resource}")
            }
        })
        .collect())
}

async fn list(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let page = Page::from_query(&query)?;
    let mut filters = String::new();
    let mut values: Vec<String> = Vec::new();
    for (param, column) in [("state", "state"), ("name", "name"), ("worker", "worker")] {
        if let Some(value) = query.get(param) {
            values.push(value.clone());
            filters.push_str(&format!(" AND {column} = ${}", values.len()));
        }
    }
    if let Some(states) = query.get("state__in") {
        let list: Vec<&str> = states.split(',').collect();
        let start = values.len() + 1;
        values.extend(list.iter().map(|s| s.to_string()));
        filters.push_str(&format!(
            " AND state IN ({})",
            crate::domain::placeholders(start, list.len())
        ));
    }
    if let Some(href) = query.get("created_resources") {
        values.push(format!("%\"{href}\"%"));
        filters.push_str(&format!(" AND created_resources LIKE ${}", values.len()));
    }
    let count_sql = format!("SELECT COUNT(*) FROM tasks WHERE 1 = 1{filters}");
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
    for value in &values {
        count = count.bind(value);
    }
    let total = count.fetch_one(app.db.pool()).await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM tasks WHERE 1 = 1{filters} ORDER BY created DESC, id LIMIT ${} OFFSET ${}",
        values.len() + 1,
        values.len() + 2
    );
    let mut rows = sqlx::query(&sql);
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
        results.push(to_json(
            row,
            resources(&app, &row.get::<String, _>(0)).await?,
        ));
    }
    Ok(page.respond(&app, &uri, total, results))
}

async fn load(app: &AppState, id: &str) -> ApiResult<AnyRow> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM tasks WHERE id = $1"))
        .bind(object_id(id)?)
        .fetch_optional(app.db.pool())
        .await?
        .ok_or_else(ApiError::not_found)
}

async fn read(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let row = load(&app, &id).await?;
    let resources = resources(&app, &row.get::<String, _>(0)).await?;
    Ok(Json(to_json(&row, resources)))
}

/// Cancels a waiting task at once; a running one is marked `canceling` and its worker stops it.
async fn cancel(
    State(app): State<AppState>,
    Path(id): Path<String>,
    fields: Fields,
) -> ApiResult<Json<Value>> {
    if fields.opt_str("state")?.as_deref() != Some(state::CANCELED) {
        return Err(ApiError::field(
            "state",
            "The only state a task can be set to is \"canceled\".",
        ));
    }
    let row = load(&app, &id).await?;
    let id: String = row.get(0);
    let mut tx = app.db.begin_write().await?;
    let current: String = sqlx::query("SELECT state FROM tasks WHERE id = $1")
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
    match current.as_str() {
        state::WAITING => {
            sqlx::query("UPDATE tasks SET state = 'canceled', finished = $2 WHERE id = $1")
                .bind(&id)
                .bind(now())
                .execute(&mut *tx)
                .await?;
        }
        state::RUNNING => {
            sqlx::query("UPDATE tasks SET state = 'canceling' WHERE id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        state::CANCELING => {}
        other => {
            return Err(ApiError::conflict(format!(
                "Task is already in state \"{other}\" and cannot be canceled."
            )));
        }
    }
    tx.commit().await?;
    let row = load(&app, &id).await?;
    let resources = resources(&app, &id).await?;
    Ok(Json(to_json(&row, resources)))
}

async fn destroy(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let row = load(&app, &id).await?;
    let (id, current): (String, String) = (row.get(0), row.get(2));
    if matches!(
        current.as_str(),
        state::WAITING | state::RUNNING | state::CANCELING
    ) {
        return Err(ApiError::conflict("Only finished tasks can be deleted."));
    }
    let mut tx = app.db.begin_write().await?;
    sqlx::query("DELETE FROM task_resources WHERE task_id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM tasks WHERE id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
