//! `artifacts/`: stored files, addressed by sha256. Created by multipart upload (size and digests
//! given by the client are checked), listed (filtered by any digest), read, deleted when nothing
//! uses them.

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, Multipart, OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::support::{Page, fetch_text_filtered_page, object_id};
use crate::domain::artifacts::{self, Expected, ExtraHasher, IngestError};
use crate::domain::hrefs;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/pulp/api/v3/artifacts/",
            get(list).post(create).layer(DefaultBodyLimit::disable()),
        )
        .route("/pulp/api/v3/artifacts/{id}/", get(read).delete(destroy))
}

const COLUMNS: &str = "id, sha256, size, created, md5, sha1, sha224, sha384, sha512";

/// The digest fields of an artifact, filterable and checkable on create.
const DIGESTS: [&str; 6] = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

fn to_json(row: &AnyRow) -> Value {
    let id: String = row.get(0);
    json!({
        "pulp_href": hrefs::artifact(&id),
        "prn": format!("prn:core.artifact:{id}"),
        "pulp_created": row.get::<String, _>(3),
        "pulp_last_updated": row.get::<String, _>(3),
        "file": format!("artifact/{}", row.get::<String, _>(1)),
        "size": row.get::<i64, _>(2),
        "md5": row.get::<Option<String>, _>(4),
        "sha1": row.get::<Option<String>, _>(5),
        "sha224": row.get::<Option<String>, _>(6),
        "sha256": row.get::<String, _>(1),
        "sha384": row.get::<Option<String>, _>(7),
        "sha512": row.get::<Option<String>, _>(8),
    })
}

async fn list(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let page = Page::from_query(&query)?;
    let mut filters = String::new();
    let mut values: Vec<String> = Vec::new();
    for digest in DIGESTS {
        if let Some(value) = query.get(digest) {
            values.push(value.trim().to_ascii_lowercase());
            filters.push_str(&format!(" AND {digest} = ${}", values.len()));
        }
    }
    let (total, rows) = fetch_text_filtered_page(
        &app,
        "artifacts",
        COLUMNS,
        &filters,
        &values,
        "created, id",
        &page,
    )
    .await?;
    Ok(page.respond(&app, &uri, total, rows.iter().map(to_json).collect()))
}

async fn read(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM artifacts WHERE id = $1"))
        .bind(object_id(&id)?)
        .fetch_optional(app.db.pool())
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(to_json(&row)))
}

/// `POST` multipart `file`, with optional `size` and digests (`sha256`, `sha512`, ..., `md5`)
/// the bytes must match: a mismatch is a 400 on that field and nothing is stored. An artifact
/// with the same sha256 already stored is a 400, as in Pulp.
async fn create(State(app): State<AppState>, mut multipart: Multipart) -> ApiResult<Response> {
    let mut received = None;
    let mut extra = None;
    let mut size: Option<u64> = None;
    let mut digests: HashMap<&'static str, String> = HashMap::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|error| ApiError::bad_request(format!("Invalid multipart body: {error}")))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let mut staged = app.blobs.stage().await.map_err(ApiError::internal)?;
            let mut hasher = ExtraHasher::default();
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|error| ApiError::field("file", format!("Upload interrupted: {error}")))?
            {
                hasher.update(&chunk);
                staged.write(&chunk).await.map_err(ApiError::internal)?;
            }
            received = Some(staged.finish().await.map_err(ApiError::internal)?);
            extra = Some(hasher.finish());
        } else if name == "size" {
            let text = field.text().await.unwrap_or_default();
            size = Some(
                text.trim()
                    .parse()
                    .map_err(|_| ApiError::field("size", "A valid integer is required."))?,
            );
        } else if let Some(digest) = DIGESTS.iter().find(|digest| **digest == name) {
            let text = field
                .text()
                .await
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                return Err(ApiError::field(digest, "Must be hexadecimal digits."));
            }
            digests.insert(*digest, text);
        }
    }
    let (Some(received), Some(extra)) = (received, extra) else {
        return Err(ApiError::field("file", "This field is required."));
    };
    if let Some(size) = size
        && size != received.size
    {
        return Err(ApiError::field(
            "size",
            format!(
                "The size did not match: the file has {} bytes.",
                received.size
            ),
        ));
    }
    let computed = extra.named();
    for (name, actual) in computed
        .iter()
        .copied()
        .chain([("sha256", received.sha256.as_str())])
    {
        if let Some(given) = digests.get(name)
            && given != actual
        {
            return Err(ApiError::field(
                name,
                format!("The {name} checksum did not match."),
            ));
        }
    }
    let exists = sqlx::query("SELECT 1 FROM artifacts WHERE sha256 = $1")
        .bind(&received.sha256)
        .fetch_optional(app.db.pool())
        .await?;
    if exists.is_some() {
        return Err(ApiError::bad_request(format!(
            "Artifact with sha256 checksum of '{}' already exists.",
            received.sha256
        )));
    }
    let artifact = artifacts::store(
        &app.db,
        &app.blobs,
        received,
        &Expected::default(),
        "the uploaded file",
    )
    .await
    .map_err(|error| match error {
        IngestError::Mismatch(message) => ApiError::field("file", message),
        IngestError::Other(error) => ApiError::internal(format!("{error:#}")),
    })?;
    artifacts::record_digests(&app.db, &artifact.id, &extra).await?;
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM artifacts WHERE id = $1"))
        .bind(&artifact.id)
        .fetch_one(app.db.pool())
        .await?;
    Ok((StatusCode::CREATED, Json(to_json(&row))).into_response())
}

async fn destroy(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = object_id(&id)?;
    let mut tx = app.db.begin_write().await?;
    let used = sqlx::query(
        "SELECT 1 FROM content_artifacts WHERE artifact_id = $1 UNION ALL SELECT 1 FROM published_files WHERE artifact_id = $1
         UNION ALL SELECT 1 FROM plugins WHERE artifact_id = $1",
    )
    .bind(&id)
    .fetch_optional(&mut *tx)
    .await?;
    if used.is_some() {
        return Err(ApiError::conflict(
            "The artifact is in use by content, a publication or an installed plugin and cannot be deleted.",
        ));
    }
    let Some(sha256) =
        sqlx::query_scalar::<_, String>("SELECT sha256 FROM artifacts WHERE id = $1")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?
    else {
        return Err(ApiError::not_found());
    };
    sqlx::query("DELETE FROM artifacts WHERE id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    app.blobs
        .delete(&sha256)
        .await
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}
