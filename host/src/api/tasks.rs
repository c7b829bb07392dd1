//! `tasks/`: list (with Pulp's filters), read, cancel (`PATCH {"state": "canceled"}`), delete
//! finished ones (409 otherwise).

use std::collections::HashMap;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::support::{Fields, Page, fetch_text_filtered_page, json_column, object_id};
use crate::db::now;
use crate::domain::hrefs;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::tasks::state;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/pulp/api/v3/tasks/", get(list)).route(
        "/pulp/api/v3/tasks/{id}/",
        get(read).patch(cancel).delete(destroy),
    )
}

const COLUMNS: &str = "id, name, state, created, started, finished, worker, error, progress_reports, created_resources, logging_cid";

fn to_json(row: &AnyRow, resources: Vec<String>) -> Value {
    let id: String = row.get(0);
    json!({
        "pulp_href": hrefs::task(&id),
        "prn": format!("prn:core.task:{id}"),
        "pulp_created": row.get::<String, _>(3),
        "pulp_last_updated": row.get::<String, _>(3),
        "name": row.get::<String, _>(1),
        "state": row.get::<String, _>(2),
        "logging_cid": row.get::<Option<String>, _>(10).unwrap_or_else(|| id.clone()),
        "unblocked_at": row.get::<Option<String>, _>(4),
        "started_at": row.get::<Option<String>, _>(4),
        "finished_at": row.get::<Option<String>, _>(5),
        "worker": row.get::<Option<String>, _>(6),
        "error": row.get::<Option<String>, _>(7).map(|error| error_json(&error)),
        "progress_reports": json_column(&row.get::<String, _>(8)),
        "created_resources": json_column(&row.get::<String, _>(9)),
        "reserved_resources_record": resources,
        "parent_task": null,
        "child_tasks": [],
        "task_group": null,
    })
}

/// A task's error as Pulp shows it: `{description, traceback}`. Granary has no traceback to
/// show (the description carries the chain of causes), so it is null.
fn error_json(text: &str) -> Value {
    let mut error = json_column(text);
    if let Some(object) = error.as_object_mut() {
        object.entry("traceback").or_insert(Value::Null);
    }
    error
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

/// Columns of the timestamp filters (`started_at__gte`, ...), by parameter prefix.
const TIME_FILTERS: [(&str, &str); 4] = [
    ("pulp_created", "created"),
    ("started_at", "started"),
    ("finished_at", "finished"),
    ("unblocked_at", "started"),
];

/// `ordering` values and their SQL.
const ORDERINGS: [(&str, &str); 10] = [
    ("pulp_created", "created"),
    ("-pulp_created", "created DESC"),
    ("started_at", "started"),
    ("-started_at", "started DESC"),
    ("finished_at", "finished"),
    ("-finished_at", "finished DESC"),
    ("name", "name"),
    ("-name", "name DESC"),
    ("state", "state"),
    ("-state", "state DESC"),
];

/// A datetime filter value as stored (fixed-width RFC 3339 UTC, comparable as text). A value
/// without a zone is UTC; a bare date is its midnight.
fn stored_time(param: &str, value: &str) -> ApiResult<String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    let value = value.trim();
    let parsed = DateTime::parse_from_rfc3339(value)
        .map(|at| at.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S%.f"))
                .map(|at| at.and_utc())
        })
        .or_else(|_| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .map(|day| day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        })
        .map_err(|_| ApiError::field(param, "Enter a valid date/time."))?;
    Ok(parsed.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

/// `LIKE` pattern matching `value` anywhere.
fn contains(value: &str) -> String {
    format!(
        "%{}%",
        value
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// Filters of Pulp's task list: `state`, `state__in`, `name`, `name__contains`, `name__in`,
/// `worker`, `logging_cid`, `logging_cid__contains`, `created_resources`, `reserved_resources`
/// (and `exclusive_resources`, `shared_resources`, each with `__in`),
/// `reserved_resources_record`, time ranges on `pulp_created`, `started_at`, `finished_at`
/// (`__gt`, `__gte`, `__lt`, `__lte`), and `ordering`.
async fn list(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let page = Page::from_query(&query)?;
    let mut filters = String::new();
    let mut values: Vec<String> = Vec::new();
    let bind = |values: &mut Vec<String>, value: String| {
        values.push(value);
        format!("${}", values.len())
    };
    for (param, column) in [
        ("state", "state"),
        ("name", "name"),
        ("worker", "worker"),
        ("logging_cid", "logging_cid"),
    ] {
        if let Some(value) = query.get(param) {
            let placeholder = bind(&mut values, value.clone());
            filters.push_str(&format!(" AND {column} = {placeholder}"));
        }
    }
    for (param, column) in [
        ("name__contains", "name"),
        ("logging_cid__contains", "logging_cid"),
    ] {
        if let Some(value) = query.get(param) {
            let placeholder = bind(&mut values, contains(value));
            filters.push_str(&format!(" AND {column} LIKE {placeholder} ESCAPE '\\'"));
        }
    }
    for (param, column) in [("state__in", "state"), ("name__in", "name")] {
        if let Some(list) = query.get(param) {
            let placeholders: Vec<String> = list
                .split(',')
                .map(|item| bind(&mut values, item.trim().to_owned()))
                .collect();
            filters.push_str(&format!(" AND {column} IN ({})", placeholders.join(", ")));
        }
    }
    if let Some(href) = query.get("created_resources") {
        let placeholder = bind(&mut values, contains(&format!("\"{href}\"")));
        filters.push_str(&format!(
            " AND created_resources LIKE {placeholder} ESCAPE '\\'"
        ));
    }
    for (param, kind) in [
        ("reserved_resources", None),
        ("exclusive_resources", Some(1)),
        ("shared_resources", Some(0)),
    ] {
        for (name, many) in [(param.to_owned(), false), (format!("{param}__in"), true)] {
            let Some(value) = query.get(&name) else {
                continue;
            };
            let items: Vec<&str> = if many {
                value.split(',').map(str::trim).collect()
            } else {
                vec![value.as_str()]
            };
            let placeholders: Vec<String> = items
                .iter()
                .map(|item| bind(&mut values, (*item).to_owned()))
                .collect();
            let exclusive = kind
                .map(|flag| format!(" AND tr.exclusive = {flag}"))
                .unwrap_or_default();
            filters.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM task_resources tr WHERE tr.task_id = tasks.id AND tr.resource IN ({}){exclusive})",
                placeholders.join(", ")
            ));
        }
    }
    if let Some(record) = query.get("reserved_resources_record") {
        for item in record.split(',') {
            let (resource, exclusive) = match item.trim().strip_prefix("shared:") {
                Some(resource) => (resource, 0),
                None => (item.trim(), 1),
            };
            let placeholder = bind(&mut values, resource.to_owned());
            filters.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM task_resources tr WHERE tr.task_id = tasks.id AND tr.resource = {placeholder} AND tr.exclusive = {exclusive})"
            ));
        }
    }
    for (prefix, column) in TIME_FILTERS {
        for (suffix, operator) in [("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<=")] {
            let param = format!("{prefix}__{suffix}");
            if let Some(value) = query.get(&param) {
                let placeholder = bind(&mut values, stored_time(&param, value)?);
                filters.push_str(&format!(" AND {column} {operator} {placeholder}"));
            }
        }
    }
    let order = match query.get("ordering") {
        None => "created DESC",
        Some(value) => ORDERINGS
            .iter()
            .find(|(name, _)| name == value)
            .map(|(_, sql)| *sql)
            .ok_or_else(|| {
                ApiError::field(
                    "ordering",
                    format!("Select a valid choice. {value} is not one of the available choices."),
                )
            })?,
    };
    let (total, rows) = fetch_text_filtered_page(
        &app,
        "tasks",
        COLUMNS,
        &filters,
        &values,
        &format!("{order}, id"),
        &page,
    )
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

#[cfg(test)]
mod tests {
    use super::stored_time;

    #[test]
    fn time_filters_compare_in_stored_form() {
        assert_eq!(
            stored_time("t", "2026-11-28T17:00:00+01:00").unwrap(),
            "2026-11-28T16:00:00.000000Z"
        );
        assert_eq!(
            stored_time("t", "2026-11-28T17:00:00.5").unwrap(),
            "2026-11-28T17:00:00.500000Z",
            "no zone means UTC"
        );
        assert_eq!(
            stored_time("t", "2026-11-28").unwrap(),
            "2026-11-28T00:00:00.000000Z"
        );
        assert!(stored_time("t", "yesterday").is_err());
    }
}
