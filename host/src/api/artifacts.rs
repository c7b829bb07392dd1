//! `artifacts/`: stored files, addressed by sha256. Created by multipart upload (size and digests
//! given by the client are checked), listed (filtered by any digest), read, deleted when nothing
//! uses them.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Multipart, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::access::Call;
use super::list::{
    self, Conditions, Identity, ListRequest, Visibility, fetch_by_id, object_id, resource,
};
use super::routes::Routes;
use super::support::{Form, MAX_FORM_TEXT, digest_field, stage_file, text_field};
use crate::domain::artifacts::{self, Expected, ExtraHasher, IngestError};
use crate::domain::hrefs;
use crate::error::{ApiError, ApiResult};
use crate::state::{App, AppState};
use crate::storage::ReceivedBlob;

/// Routes.
pub fn router() -> Routes {
    Routes::new()
        .route(
            "/pulp/api/v3/artifacts/",
            get(list).post(create).layer(DefaultBodyLimit::disable()),
        )
        .route("/pulp/api/v3/artifacts/{id}/", get(read).delete(destroy))
}

resource! {
    /// A row of `artifacts`.
    pub(crate) struct Artifact in "artifacts" {
        sha256: String,
        size: i64,
        created: String,
        md5: Option<String>,
        sha1: Option<String>,
        sha224: Option<String>,
        sha384: Option<String>,
        sha512: Option<String>,
    }
    filters: text md5, text sha1, text sha224, text sha256, text sha384, text sha512, int size,
        time pulp_created = created;
    orderings: pulp_created = created, size;
    default_ordering: "pulp_created";
}

/// An artifact as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArtifactView {
    #[serde(flatten)]
    identity: Identity,
    file: String,
    size: i64,
    md5: Option<String>,
    sha1: Option<String>,
    sha224: Option<String>,
    sha256: String,
    sha384: Option<String>,
    sha512: Option<String>,
}

impl From<Artifact> for ArtifactView {
    fn from(artifact: Artifact) -> Self {
        ArtifactView {
            identity: Identity::immutable(
                hrefs::artifact(&artifact.id),
                format!("prn:core.artifact:{}", artifact.id),
                artifact.created,
            ),
            file: format!("artifact/{}", artifact.sha256),
            size: artifact.size,
            md5: artifact.md5,
            sha1: artifact.sha1,
            sha224: artifact.sha224,
            sha256: artifact.sha256,
            sha384: artifact.sha384,
            sha512: artifact.sha512,
        }
    }
}

/// The digest fields of an artifact, filterable and checkable on create.
const DIGESTS: [&str; 6] = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

/// The access policy of artifacts.
const POLICY: &str = "artifacts";

async fn list(Call { app, caller }: Call, mut request: ListRequest) -> ApiResult<Response> {
    caller.authorize_action(&app, POLICY, "list").await?;
    // Digests are stored in lower-case hex; a client may send them in either case.
    for digest in DIGESTS {
        if let Some(value) = request.query.get_mut(digest) {
            *value = value.trim().to_ascii_lowercase();
        }
    }
    list::list_all::<Artifact, ArtifactView>(&app, &request, Conditions::new()).await
}

async fn load(app: &AppState, id: &str) -> ApiResult<ArtifactView> {
    let artifact: Artifact =
        fetch_by_id(&app.db, id, Conditions::new(), &Visibility::all()).await?;
    Ok(ArtifactView::from(artifact))
}

async fn read(Call { app, caller }: Call, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    caller.authorize_action(&app, POLICY, "retrieve").await?;
    Ok(list::json(&load(&app, &id).await?))
}

/// `POST` multipart `file`, with optional `size` and digests (`sha256`, `sha512`, ..., `md5`)
/// the bytes must match: a mismatch is a 400 on that field and nothing is stored. An artifact
/// with the same sha256 already stored is a 400, as in Pulp.
async fn create(Call { app, caller }: Call, multipart: Multipart) -> ApiResult<Response> {
    caller.authorize_action(&app, POLICY, "create").await?;
    let mut received = None;
    let mut extra = None;
    let mut size: Option<u64> = None;
    let mut digests: HashMap<&'static str, String> = HashMap::new();
    let mut form = Form::from(multipart);
    while let Some(mut field) = form.next().await? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let mut hasher = ExtraHasher::default();
            received = Some(
                stage_file(&app, &mut field, app.config.max_upload_bytes, |chunk| {
                    hasher.update(chunk)
                })
                .await?,
            );
            extra = Some(hasher.finish());
        } else if name == "size" {
            let text = text_field(&mut field, MAX_FORM_TEXT).await?;
            size = Some(
                text.trim()
                    .parse()
                    .map_err(|_| ApiError::field("size", "A valid integer is required."))?,
            );
        } else if let Some(digest) = DIGESTS.iter().find(|digest| **digest == name) {
            let text = digest_field(field).await?;
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
    let artifact = store_received(&app, received, "the uploaded file").await?;
    artifacts::record_digests(&app.db, &artifact.id, &extra).await?;
    Ok((
        StatusCode::CREATED,
        list::json(&load(&app, &artifact.id).await?),
    )
        .into_response())
}

/// Stores bytes a client sent (`source` names them in errors) as an artifact; nothing to
/// verify them against, the client's file defines them. A digest that does not match what the
/// client gave is a 400 on `file`.
pub async fn store_received(
    app: &App,
    received: ReceivedBlob,
    source: &str,
) -> ApiResult<artifacts::Artifact> {
    artifacts::store(&app.db, &app.blobs, received, &Expected::default(), source)
        .await
        .map_err(|error| match error {
            IngestError::Mismatch(message) => ApiError::field("file", message),
            IngestError::Other(error) => ApiError::internal(format!("{error:#}")),
        })
}

async fn destroy(Call { app, caller }: Call, Path(id): Path<String>) -> ApiResult<StatusCode> {
    caller.authorize_action(&app, POLICY, "destroy").await?;
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
