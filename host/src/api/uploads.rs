//! `uploads/`: chunked uploads, as in Pulp. `POST {size}` starts one; `PUT <upload>` with a
//! multipart `file` (and optionally its `sha256`) and `Content-Range: bytes START-END/SIZE` adds a
//! chunk, in any order; `POST <upload>commit/ {sha256}` queues the task that assembles the
//! artifact (see [`crate::domain::chunked_uploads`]). An upload can also be handed uncommitted to
//! `content/<plugin>/<type>/` as `upload`, as pulp-cli does for large files.

use axum::Json;
use axum::extract::{DefaultBodyLimit, Multipart, Path};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::access::{Call, Caller};
use super::core_objects::{self, CoreObject, Creatable, Deletable};
use super::list::{self, Identity, resource};
use super::routes::Routes;
use super::support::{Fields, Form, digest_field, spawn_task, stage_file};
use crate::db::{Backend, new_id, now};
use crate::domain::chunked_uploads;
use crate::domain::hrefs;
use crate::error::{ApiError, ApiResult};
use crate::plugins::host_sync_sink::is_sha256;
use crate::state::App;
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Routes.
pub fn router() -> Routes {
    Routes::new()
        .route(
            "/pulp/api/v3/uploads/",
            core_objects::collection::<Upload>(),
        )
        .route(
            "/pulp/api/v3/uploads/{id}/",
            get(read)
                .put(put_chunk)
                .delete(core_objects::destroy::<Upload>)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/pulp/api/v3/uploads/{id}/commit/", post(commit))
}

resource! {
    /// A row of `uploads`.
    pub(crate) struct Upload in "uploads" {
        size: i64,
        completed: Option<String>,
        created: String,
        updated: String,
    }
    filters: int size, time pulp_created = created;
    orderings: pulp_created = created, size;
    default_ordering: "-pulp_created";
}

/// An upload as the API shows it; its detail view adds the chunks received so far (Pulp's).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UploadView {
    #[serde(flatten)]
    identity: Identity,
    size: i64,
    #[schema(format = DateTime)]
    completed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chunks: Option<Vec<ChunkView>>,
}

/// One received chunk: where it starts and how long it is.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
struct ChunkView {
    offset: i64,
    size: i64,
}

impl From<Upload> for UploadView {
    fn from(upload: Upload) -> Self {
        UploadView {
            identity: Identity::core(
                hrefs::upload(&upload.id),
                "upload",
                &upload.id,
                &upload.created,
                &upload.updated,
            ),
            size: upload.size,
            completed: upload.completed,
            chunks: None,
        }
    }
}

impl CoreObject for Upload {
    const VIEWSET: &'static str = "uploads";
    const VIEW_PERMISSION: Option<&'static str> = Some("core.view_upload");
    type View = UploadView;

    async fn views(_app: &App, uploads: Vec<Upload>) -> ApiResult<Vec<UploadView>> {
        Ok(uploads.into_iter().map(UploadView::from).collect())
    }
}

/// Pulp's detail view adds the chunks received so far.
async fn read(Call { app, caller }: Call, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let upload: Upload = core_objects::authorized(&app, &caller, &id, "retrieve").await?;
    let chunks = sqlx::query_as(
        "SELECT start_offset AS \"offset\", end_offset - start_offset + 1 AS size FROM upload_chunks
         WHERE upload_id = $1 ORDER BY start_offset",
    )
    .bind(&upload.id)
    .fetch_all(app.db.pool())
    .await?;
    Ok(list::json(&UploadView {
        chunks: Some(chunks),
        ..UploadView::from(upload)
    }))
}

/// The largest size an upload may declare: the configured maximum upload.
fn max_upload_size(app: &App) -> i64 {
    i64::try_from(app.config.max_upload_bytes).unwrap_or(i64::MAX)
}

/// `POST {size}`: its creator gets the roles the policy's creation hooks name (its owner).
impl Creatable for Upload {
    async fn insert(app: &App, caller: &Caller, fields: &Fields) -> ApiResult<String> {
        let size = fields
            .opt_int("size", 0, max_upload_size(app))?
            .ok_or_else(|| ApiError::field("size", "This field is required."))?;
        let id = new_id();
        let created = now();
        app.db
            .write_one(
                sqlx::query(
                    "INSERT INTO uploads (id, size, owner, created, updated) VALUES ($1, $2, $3, $4, $4)",
                )
                .bind(&id)
                .bind(size)
                .bind(&caller.user.username)
                .bind(&created),
            )
            .await?;
        core_objects::give_creator_roles::<Self>(app, caller, &id, &hrefs::upload(&id)).await?;
        Ok(id)
    }
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
    Call { app, caller }: Call,
    Path(id): Path<String>,
    headers: HeaderMap,
    multipart: Multipart,
) -> ApiResult<Json<Value>> {
    // Before a byte of the chunk is read: another user's upload does not exist for them.
    let Upload {
        id: upload_id,
        size,
        ..
    } = core_objects::authorized(&app, &caller, &id, "update").await?;
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
    let mut form = Form::from(multipart);
    while let Some(mut field) = form.next().await? {
        match field.name().unwrap_or_default() {
            "file" => {
                // No more than the range it declares: a longer chunk is cut off here.
                let length = (end - start + 1) as u64;
                received = Some(stage_file(&app, &mut field, length, |_| {}).await?);
            }
            "sha256" => {
                let text = digest_field(field).await?;
                check_sha256(&text)?;
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
        return core_objects::answer::<Upload>(&app, &upload_id).await;
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
            core_objects::answer::<Upload>(&app, &upload_id).await
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
    Ok(sqlx::query_as(
        "SELECT start_offset, end_offset, sha256 FROM upload_chunks
         WHERE upload_id = $1 AND start_offset <= $3 AND end_offset >= $2 ORDER BY start_offset LIMIT 1",
    )
    .bind(upload_id)
    .bind(start)
    .bind(end)
    .fetch_optional(app.db.pool())
    .await?)
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
    let others: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT start_offset, end_offset, object_key FROM upload_chunks
         WHERE upload_id = $1 AND start_offset <= $3 AND end_offset >= $2",
    )
    .bind(upload_id)
    .bind(start)
    .bind(end)
    .fetch_all(&mut *tx)
    .await?;
    let mut replaced = None;
    for (other_start, other_end, other_key) in others {
        if (other_start, other_end) != (start, end) {
            return Err(ApiError::bad_request(format!(
                "The chunk at bytes {start}-{end} overlaps the chunk already uploaded at bytes {other_start}-{other_end}."
            )));
        }
        replaced = Some(other_key);
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

/// Deleting an upload deletes its chunks.
impl Deletable for Upload {
    async fn delete(app: &App, upload: Upload) -> ApiResult<()> {
        chunked_uploads::delete(&app.db, &app.blobs, &upload.id).await?;
        Ok(())
    }
}

/// Refuses (400) a `sha256` field (trimmed, in lowercase) that is not 64 hexadecimal digits: the
/// digest a chunk and a commit are checked against.
fn check_sha256(sha256: &str) -> ApiResult<()> {
    if is_sha256(sha256) {
        Ok(())
    } else {
        Err(ApiError::field("sha256", "Must be 64 hexadecimal digits."))
    }
}

/// `POST {sha256}` → 202: the task assembles the chunks into an artifact (its
/// `created_resources`) and deletes the upload.
async fn commit(
    Call { app, caller }: Call,
    Path(id): Path<String>,
    fields: Fields,
) -> ApiResult<Response> {
    let upload: Upload = core_objects::authorized(&app, &caller, &id, "commit").await?;
    let sha256 = fields.required_str("sha256")?.trim().to_ascii_lowercase();
    check_sha256(&sha256)?;
    let upload_id = upload.id;
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
