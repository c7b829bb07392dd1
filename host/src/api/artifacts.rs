//! `artifacts/`: stored files, addressed by sha256. Created by multipart upload (digests given by
//! the client are checked), listed, read, deleted when nothing uses them.

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, Multipart, OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::support::{Page, object_id};
use crate::app::AppState;
use crate::domain::artifacts::{self, Expected, IngestError};
use crate::domain::hrefs;
use crate::error::{ApiError, ApiResult};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/pulp/api/v3/artifacts/",
            get(list).post(create).layer(DefaultBodyLimit::disable()),
        )
        .route("/pulp/api/v3/artifacts/{id}/", get(read).delete(destroy))
}

fn to_json(row: &AnyRow) -> Value {
    let id: String = row.get(0);
    json!({
        "pulp_href": hrefs::artifact(&id),
        "prn": format!("prn:core.artifact:{id}"),
        "pulp_created": row.get::<String, _>(3),
        "pulp_last_updated": row.get::<String, _>(3),
        "file": format!("artifact/{}", row.get::<String, _>(1)),
        "size": row.get::<i64, _>(2),
        "sha256": row.get::<String, _>(1),
    })
}

async fn list(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let page = Page::from_query(&query)?;
    let sha256 = query.get("sha256").cloned();
    let filter = if sha256.is_some() {
        " WHERE sha256 = $3"
    } else {
        ""
    };
    let count_sql = format!(
        "SELECT COUNT(*) FROM artifacts{}",
        filter.replace("$3", "$1")
    );
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
    if let Some(sha256) = &sha256 {
        count = count.bind(sha256);
    }
    let total = count.fetch_one(app.db.pool()).await?;
    let page_sql = format!(
        "SELECT id, sha256, size, created FROM artifacts{filter} ORDER BY created, id LIMIT $1 OFFSET $2"
    );
    let mut rows = sqlx::query(&page_sql).bind(page.limit).bind(page.offset);
    if let Some(sha256) = &sha256 {
        rows = rows.bind(sha256);
    }
    let rows = rows.fetch_all(app.db.pool()).await?;
    Ok(page.respond(&app, &uri, total, rows.iter().map(to_json).collect()))
}

async fn read(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let row = sqlx::query("SELECT id, sha256, size, created FROM artifacts WHERE id = $1")
        .bind(object_id(&id)?)
        .fetch_optional(app.db.pool())
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(to_json(&row)))
}

/// `POST` multipart `file`, with optional `size` and `sha256` the bytes must match.
async fn create(State(app): State<AppState>, mut multipart: Multipart) -> ApiResult<Response> {
    let mut received = None;
    let mut expected = Expected::default();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|error| ApiError::bad_request(format!("Invalid multipart body: {error}")))?
    {
        match field.name().unwrap_or_default() {
            "file" => {
                let mut staged = app.blobs.stage().await.map_err(ApiError::internal)?;
                while let Some(chunk) = field.chunk().await.map_err(|error| {
                    ApiError::field("file", format!("Upload interrupted: {error}"))
                })? {
                    staged.write(&chunk).await.map_err(ApiError::internal)?;
                }
                received = Some(staged.finish().await.map_err(ApiError::internal)?);
            }
            "size" => {
                let text = field.text().await.unwrap_or_default();
                expected.size = Some(
                    text.trim()
                        .parse()
                        .map_err(|_| ApiError::field("size", "A valid integer is required."))?,
                );
            }
            "sha256" => {
                let text = field
                    .text()
                    .await
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                if !crate::plugins::host_sync_sink::is_sha256(&text) {
                    return Err(ApiError::field("sha256", "Must be 64 hexadecimal digits."));
                }
                expected.sha256 = Some(text);
            }
            _ => {}
        }
    }
    let received = received.ok_or_else(|| ApiError::field("file", "This field is required."))?;
    let artifact = artifacts::store(
        &app.db,
        &app.blobs,
        received,
        &expected,
        "the uploaded file",
    )
    .await
    .map_err(|error| match error {
        IngestError::Mismatch(message) => {
            let field = if message.starts_with("size") {
                "size"
            } else {
                "sha256"
            };
            ApiError::field(field, message)
        }
        IngestError::Other(error) => ApiError::internal(format!("{error:#}")),
    })?;
    let row = sqlx::query("SELECT id, sha256, size, created FROM artifacts WHERE id = $1")
        .bind(&artifact.id)
        .fetch_one(app.db.pool())
        .await?;
    Ok((StatusCode::CREATED, Json(to_json(&row))).into_response())
}

async fn destroy(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = object_id(&id)?;
    let mut tx = app.db.begin_write().await?;
    let used = sqlx::query(
        "SELECT 1 FROM content_artifacts WHERE artifact_id = $1 UNION ALL SELECT 1 FROM published_files WHERE artifact_id = $1 UNION ALL SELECT 1 FROM plugins WHERE artifact_id = $1",
    )
    .bind(&id)
    .fetch_optional(&mut *tx)
    .await?;
    if used.is_some() {
        return Err(ApiError::conflict(
            "The artifact is in use by content, a publication or an installed plugin and cannot be deleted.",
        ));
    }
    let deleted = sqlx::query("DELETE FROM artifacts WHERE id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    if deleted == 0 {
        return Err(ApiError::not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}
