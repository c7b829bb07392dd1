//! `publications/<plugin>/<type>/`: what a client of a repository version needs, rendered by the
//! plugin.

use std::collections::HashMap;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::support::{Fields, Page, object_id, repository_type, spawn_task};
use crate::app::AppState;
use crate::domain::hrefs::{self, Href};
use crate::error::{ApiError, ApiResult};
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/pulp/api/v3/publications/{plugin}/{type}/",
            get(list).post(create),
        )
        .route(
            "/pulp/api/v3/publications/{plugin}/{type}/{id}/",
            get(read).delete(destroy),
        )
}

const COLUMNS: &str = "p.id, p.plugin, p.type_name, p.repository_id, v.number, p.created";

fn to_json(row: &AnyRow) -> Value {
    let (id, plugin, type_name, repository_id): (String, String, String, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    json!({
        "pulp_href": hrefs::publication(&plugin, &type_name, &id),
        "prn": format!("prn:{plugin}.{type_name}publication:{id}"),
        "pulp_created": row.get::<String, _>(5),
        "pulp_last_updated": row.get::<String, _>(5),
        "repository": hrefs::repository(&plugin, &type_name, &repository_id),
        "repository_version": hrefs::version(&plugin, &type_name, &repository_id, row.get(4)),
    })
}

async fn list(
    State(app): State<AppState>,
    Path((plugin, type_name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    repository_type(&app, &plugin, &type_name)?;
    let page = Page::from_query(&query)?;
    let from = "FROM publications p JOIN repository_versions v ON v.id = p.repository_version_id
                WHERE p.plugin = $1 AND p.type_name = $2 AND p.complete = 1";
    let total: i64 = sqlx::query(&format!("SELECT COUNT(*) {from}"))
        .bind(&plugin)
        .bind(&type_name)
        .fetch_one(app.db.pool())
        .await?
        .get(0);
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} {from} ORDER BY p.created DESC LIMIT $3 OFFSET $4"
    ))
    .bind(&plugin)
    .bind(&type_name)
    .bind(page.limit)
    .bind(page.offset)
    .fetch_all(app.db.pool())
    .await?;
    Ok(page.respond(&app, &uri, total, rows.iter().map(to_json).collect()))
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
            let row = sqlx::query("SELECT latest_version FROM repositories WHERE id = $1")
                .bind(&id)
                .fetch_optional(app.db.pool())
                .await?
                .ok_or_else(|| {
                    ApiError::field("repository", "Invalid hyperlink - Object does not exist.")
                })?;
            (id, row.get::<i64, _>(0))
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

async fn load(app: &AppState, plugin: &str, type_name: &str, id: &str) -> ApiResult<AnyRow> {
    repository_type(app, plugin, type_name)?;
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM publications p JOIN repository_versions v ON v.id = p.repository_version_id
         WHERE p.id = $1 AND p.plugin = $2 AND p.type_name = $3 AND p.complete = 1"
    ))
    .bind(object_id(id)?)
    .bind(plugin)
    .bind(type_name)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(ApiError::not_found)
}

async fn read(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(to_json(&load(&app, &plugin, &type_name, &id).await?)))
}

async fn destroy(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    let href = hrefs::publication(&plugin, &type_name, &row.get::<String, _>(0));
    spawn_task(
        &app,
        "granary.tasks.delete",
        TaskArgs::Delete { href: href.clone() },
        &[ResourceLock::exclusive(href)],
    )
    .await
}
