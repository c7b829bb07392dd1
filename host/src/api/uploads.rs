//! `uploads/`: chunked uploads, as in Pulp. `POST {size}` starts one; `PUT <upload>` with a
//! multipart `file` (and optionally its `sha256`) and `Content-Range: bytes START-END/SIZE` adds a
//! chunk, in any order; `POST <upload>commit/ {sha256}` queues the task that assembles the
//! artifact (see [`crate::domain::chunked_uploads`]). An upload can also be handed uncommitted to
//! `content/<plugin>/<type>/` as `upload`, as pulp-cli does for large files.

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, Multipart, OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::support::{Fields, Page, object_id, spawn_task};
use crate::auth::User;
use crate::db::{Backend, new_id, now};
use crate::domain::chunked_uploads;
use crate::domain::hrefs;
use crate::error::{ApiError, ApiResult};
use crate::plugins::host_sync_sink::is_sha256;
use crate::state::{App, AppState};
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pulp/api/v3/uploads/", get(list).post(create))
        .route(
            "/pulp/api/v3/uploads/{id}/",
            get(read)
                .put(put_chunk)
                .delete(destroy)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/pulp/api/v3/uploads/{id}/commit/", post(commit))
}

const COLUMNS: &str = "id, size, completed, created, updated";

fn to_json(row: &AnyRow) -> Value {
    let id: String = row.get(0);
    json!({
        "pulp_href": hrefs::upload(&id),
        "prn": format!("prn:core.upload:{id}"),
        "pulp_created": row.get::<String, _>(3),
        "pulp_last_updated": row.get::<String, _>(4),
        "size": row.get::<i64, _>(1),
        "completed": row.get::<Option<String>, _>(2),
    })
}

async fn load(app: &App, id: &str) -> ApiResult<AnyRow> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM uploads WHERE id = $1"))
        .bind(object_id(id)?)
        .fetch_optional(app.db.pool())
        .await?
        .ok_or_else(ApiError::not_found)
}

async fn list(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let page = Page::from_query(&query)?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads")
        .fetch_one(app.db.pool())
        .await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM uploads ORDER BY created DESC, id LIMIT $1 OFFSET $2"
    ))
    .bind(page.limit)
    .bind(page.offset)
    .fetch_all(app.db.pool())
    .await?;
    Ok(page.respond(&app, &uri, total, rows.iter().map(to_json).collect()))
}

/// Pulp's detail view adds the chunks received so far.
async fn read(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let row = load(&app, &id).await?;
    let chunks = sqlx::query(
        "SELECT start_offset, end_offset FROM upload_chunks WHERE upload_id = $1 ORDER BY start_offset",
    )
    .bind(row.get::<String, _>(0))
    .fetch_all(app.db.pool())
    .await?;
    let mut body = to_json(&row);
    body["chunks"] = chunks
        .iter()
        .map(|chunk| {
            let (start, end): (i64, i64) = (chunk.get(0), chunk.get(1));
            json!({"offset": start, "size": end - start + 1})
        })
        .collect();
    Ok(Json(body))
}

/// `POST {size}` → 201 with the new upload.
async fn create(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    fields: Fields,
) -> ApiResult<Response> {
    let size = fields
        .opt_int("size", 0, i64::MAX)?
        .ok_or_else(|| ApiError::field("size", "This field is required."))?;
    let id = new_id();
    let created = now();
    let mut tx = app.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO uploads (id, size, owner, created, updated) VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(&id)
    .bind(size)
    .bind(&user.username)
    .bind(&created)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let row = load(&app, &id).await?;
    Ok((StatusCode::CREATED, Json(to_json(&row))).into_response())
}

/// `Content-Range: bytes START-END/SIZE` (SIZE may be `*`): `(start, end, size)`, END inclusive.
fn content_range(headers: &HeaderMap) -> ApiResult<(i64, i64, Option<i64>)> {
    let invalid = || {
        ApiError::bad_request(
            "A Content-Range header of the form \"bytes START-END/SIZE\" is required.",
        )
    };
    let value = headers
        .get("content-range")
        .and_then(|value| value.to_str().ok())
        .ok_or_else(invalid)?;
    let spec = value.trim().strip_prefix("bytes ").ok_or_else(invalid)?;
    let (range, total) = spec.split_once('/').ok_or_else(invalid)?;
    let (start, end) = range.split_once('-').ok_or_else(invalid)?;
    let number = |text: &str| text.trim().parse::<i64>().ok().filter(|n| *n >= 0);
    let (start, end) = (
        number(start).ok_or_else(invalid)?,
        number(end).ok_or_else(invalid)?,
    );
    let total = match total.trim() {
        "*" => None,
        text => Some(number(text).ok_or_else(invalid)?),
    };
    if start > end {
        return Err(invalid());
    }
    Ok((start, end, total))
}

/// `PUT` a chunk: multipart `file` and optional `sha256`, placed by `Content-Range`. Answers the
/// upload. The same range sent again replaces the earlier chunk (a retry); a range that overlaps
/// another chunk is refused.
async fn put_chunk(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> ApiResult<Json<Value>> {
    let row = load(&app, &id).await?;
    let (upload_id, size): (String, i64) = (row.get(0), row.get(1));
    let (start, end, total) = content_range(&headers)?;
    if let Some(total) = total
        && total != size
    {
        return Err(ApiError::bad_request(format!(
            "The size in Content-Range ({total}) is not the upload's size ({size})."
        )));
    }
    if end >= size {
        return Err(ApiError::bad_request(
            "End byte is greater than upload size.",
        ));
    }
    let mut received = None;
    let mut sha256 = None;
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
            "sha256" => {
                let text = field
                    .text()
                    .await
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                if !is_sha256(&text) {
                    return Err(ApiError::field("sha256", "Must be 64 hexadecimal digits."));
                }
                sha256 = Some(text);
            }
            _ => {}
        }
    }
    let received = received.ok_or_else(|| ApiError::field("file", "This field is required."))?;
    if received.size as i64 != end - start + 1 {
        return Err(ApiError::field(
            "file",
            format!(
                "Chunk size does not match content range: the chunk has {} bytes, the range {start}-{end} {}.",
                received.size,
                end - start + 1
            ),
        ));
    }
    if let Some(sha256) = &sha256
        && *sha256 != received.sha256
    {
        return Err(ApiError::field(
            "sha256",
            "Checksum does not match chunk upload.",
        ));
    }
    let digest = received.sha256.clone();
    // A retry of a chunk already stored changes nothing.
    if let Some(existing) = overlapping(&app, &upload_id, start, end).await?
        && existing == (start, end, digest.clone())
    {
        return Ok(Json(to_json(&load(&app, &upload_id).await?)));
    }
    let key = format!("{upload_id}/{start}-{end}-{digest}");
    app.blobs
        .put_part(&key, received)
        .await
        .map_err(ApiError::internal)?;
    match record_chunk(&app, &upload_id, start, end, &digest, &key).await {
        Ok(replaced) => {
            if let Some(old_key) = replaced
                && old_key != key
            {
                app.blobs
                    .delete_part(&old_key)
                    .await
                    .map_err(ApiError::internal)?;
            }
            Ok(Json(to_json(&load(&app, &upload_id).await?)))
        }
        Err(error) => {
            let _ = app.blobs.delete_part(&key).await;
            Err(error)
        }
    }
}

/// The first stored chunk that shares a byte with `start..=end`, as `(start, end, sha256)`.
async fn overlapping(
    app: &App,
    upload_id: &str,
    start: i64,
    end: i64,
) -> ApiResult<Option<(i64, i64, String)>> {
    let row = sqlx::query(
        "SELECT start_offset, end_offset, sha256 FROM upload_chunks
         WHERE upload_id = $1 AND start_offset <= $3 AND end_offset >= $2 ORDER BY start_offset LIMIT 1",
    )
    .bind(upload_id)
    .bind(start)
    .bind(end)
    .fetch_optional(app.db.pool())
    .await?;
    Ok(row.map(|row| (row.get(0), row.get(1), row.get(2))))
}

/// Records a stored chunk. Returns the object key of the chunk it replaced (same range), if any.
/// Overlaps are checked again here, inside the write transaction, so two chunks racing for
/// overlapping ranges cannot both be recorded.
async fn record_chunk(
    app: &App,
    upload_id: &str,
    start: i64,
    end: i64,
    sha256: &str,
    key: &str,
) -> ApiResult<Option<String>> {
    let mut tx = app.db.begin_write().await?;
    if app.db.backend() == Backend::Postgres {
        // Serialises chunk writes of one upload (SQLite has one writer anyway).
        sqlx::query("SELECT id FROM uploads WHERE id = $1 FOR UPDATE")
            .bind(upload_id)
            .execute(&mut *tx)
            .await?;
    }
    let others = sqlx::query(
        "SELECT start_offset, end_offset, object_key FROM upload_chunks
         WHERE upload_id = $1 AND start_offset <= $3 AND end_offset >= $2",
    )
    .bind(upload_id)
    .bind(start)
    .bind(end)
    .fetch_all(&mut *tx)
    .await?;
    let mut replaced = None;
    for other in &others {
        let (other_start, other_end): (i64, i64) = (other.get(0), other.get(1));
        if (other_start, other_end) != (start, end) {
            return Err(ApiError::bad_request(format!(
                "The chunk at bytes {start}-{end} overlaps the chunk already uploaded at bytes {other_start}-{other_end}."
            )));
        }
        replaced = Some(other.get::<String, _>(2));
    }
    let exists = sqlx::query("SELECT 1 FROM uploads WHERE id = $1")
        .bind(upload_id)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(ApiError::not_found());
    }
    sqlx::query("DELETE FROM upload_chunks WHERE upload_id = $1 AND start_offset = $2")
        .bind(upload_id)
        .bind(start)
        .execute(&mut *tx)
        .await?;
    let stamp = now();
    sqlx::query(
        "INSERT INTO upload_chunks (upload_id, start_offset, end_offset, sha256, object_key, created)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(upload_id)
    .bind(start)
    .bind(end)
    .bind(sha256)
    .bind(key)
    .bind(&stamp)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE uploads SET updated = $2 WHERE id = $1")
        .bind(upload_id)
        .bind(&stamp)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(replaced)
}

async fn destroy(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let upload_id: String = load(&app, &id).await?.get(0);
    chunked_uploads::delete(&app.db, &app.blobs, &upload_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST {sha256}` → 202: the task assembles the chunks into an artifact (its
/// `created_resources`) and deletes the upload.
async fn commit(
    State(app): State<AppState>,
    Path(id): Path<String>,
    fields: Fields,
) -> ApiResult<Response> {
    let sha256 = fields.required_str("sha256")?.trim().to_ascii_lowercase();
    if !is_sha256(&sha256) {
        return Err(ApiError::field("sha256", "Must be 64 hexadecimal digits."));
    }
    let upload_id: String = load(&app, &id).await?.get(0);
    let lock = ResourceLock::exclusive(hrefs::upload(&upload_id));
    spawn_task(
        &app,
        "granary.tasks.upload.commit",
        TaskArgs::CommitUpload { upload_id, sha256 },
        &[lock],
    )
    .await
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::content_range;

    fn range(value: &str) -> Option<(i64, i64, Option<i64>)> {
        let mut headers = HeaderMap::new();
        headers.insert("content-range", HeaderValue::from_str(value).unwrap());
        content_range(&headers).ok()
    }

    #[test]
    fn content_range_is_bytes_start_end_over_size() {
        assert_eq!(range("bytes 0-99/1000"), Some((0, 99, Some(1000))));
        assert_eq!(range("bytes 900-999/*"), Some((900, 999, None)));
        assert_eq!(range("bytes 5-5/6"), Some((5, 5, Some(6))));
        assert_eq!(range("bytes 10-5/100"), None, "end before start");
        assert_eq!(range("bytes -5/100"), None);
        assert_eq!(range("items 0-1/2"), None);
        assert_eq!(range("bytes 0-1"), None, "no size");
        assert!(content_range(&HeaderMap::new()).is_err(), "no header");
    }
}
