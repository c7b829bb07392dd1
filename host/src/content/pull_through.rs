//! Pull-through caching (`http-body.fetch-upstream`): a file a plugin names by its upstream URL is
//! downloaded once, verified, stored, added to the distribution's repository, and streamed.
//!
//! Concurrent requests for the same file wait on one download per process: the first request
//! fetches, the others find the file stored when it is their turn. Several `serve` processes may
//! each fetch a file once; storage is content-addressed, so the copies are one artifact, and
//! adding the unit is idempotent (the second add makes no new version).

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::StreamExt as _;

use super::ContentApp;
use super::Matched;
use super::admission::{Requester, Work};
use crate::db::IN_VERSION;
use crate::domain::additions::AddError;
use crate::domain::artifacts::{self, DigestKind, Expected, IngestError};
use crate::domain::remotes::Remote;
use crate::error::{ApiError, ApiResult};
use crate::plugins::host_sync_sink::validate_declaration;
use crate::plugins::upstream::describe;
use crate::plugins::{LoadedPlugin, UpstreamFile};

/// Serves `file` from storage, fetching it from the remote first when it is not stored, and adds
/// its unit to the distribution's repository when the latest version does not have it.
pub(super) async fn serve(
    app: &Arc<ContentApp>,
    matched: &Matched,
    requester: &Requester,
    plugin: &LoadedPlugin,
    remote: Option<&Remote>,
    file: UpstreamFile,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let name = &plugin.info.name;
    let plugin_fault = |message: String| {
        ApiError::detail(
            StatusCode::BAD_GATEWAY,
            format!("The {name} plugin asked for an upstream file {message}"),
        )
    };
    let (true, Some(repository_id), Some(remote)) =
        (matched.writable, &matched.repository_id, remote)
    else {
        return Err(plugin_fault(format!(
            "but the distribution {:?} has no remote or does not serve the latest version of a repository",
            matched.name
        )));
    };
    // The policy of the client that will fetch the file, built once per remote configuration.
    let client = app.remote_clients.client(remote)?;
    validate_declaration(
        &file.unit,
        &plugin.content_type_names(),
        Some(client.policy()),
    )
    .map_err(|message| plugin_fault(format!("with an invalid unit: {message}")))?;
    let Some(declared) = file
        .unit
        .artifacts
        .iter()
        .find(|a| a.relative_path == file.relative_path)
    else {
        return Err(plugin_fault(format!(
            "{:?} that its unit does not declare",
            file.relative_path
        )));
    };
    let expected = Expected {
        size: declared.size,
        sha256: declared.sha256.clone(),
        sha512: declared.sha512.clone(),
    };
    let (Some(known_by), Some(url)) = (expected.known_by(), declared.url.clone()) else {
        return Err(plugin_fault(format!(
            "{:?} without its url and its sha256 or sha512",
            file.relative_path
        )));
    };

    let remote_id = Some(remote.row.id.as_str());
    let stored_before = reusable(app, known_by, repository_id, remote_id).await?;
    // A file to fetch takes a turn before it queues behind the one download of it, so the
    // requests waiting on a hanging upstream are bounded and get 503 after the deadline.
    let fetching = match stored_before {
        Some(_) => None,
        None => Some(app.admission.turn(Work::UpstreamFetch, requester).await?),
    };
    let lock = app.pull_through.lock_for(known_by.1);
    let turn = lock.lock().await;
    let (sha256, size) = match stored_before {
        Some(stored) => stored,
        // Another request may have fetched it while this one waited for the lock.
        None => match reusable(app, known_by, repository_id, remote_id).await? {
            Some(stored) => stored,
            None => fetch(app, remote, &url, &expected, &file.relative_path).await?,
        },
    };
    drop(fetching);
    if !in_latest_version(app, repository_id, name, &file).await? {
        let unit = std::slice::from_ref(&file.unit);
        match app
            .add_units((matched, name), Some(&remote.row.id), unit, &[], &[])
            .await
        {
            Ok(_) => {}
            Err(AddError::Refused(message)) => {
                return Err(plugin_fault(format!(
                    "whose unit could not be added: {message}"
                )));
            }
            Err(AddError::Internal(error)) => return Err(error.into()),
        }
    }
    drop(turn);
    super::stored(app, &sha256, size, &file.relative_path, headers).await
}

/// The sha256 and size of the stored artifact `known_by` a digest ([`Expected::known_by`]) when it may be served here without fetching it: it is this
/// repository's or this remote's. Any other (another tenant's private file, named by its digest)
/// is fetched from the upstream like a new one, so the bytes served are the upstream's, verified,
/// or the call fails.
async fn reusable(
    app: &ContentApp,
    known_by: (DigestKind, &str),
    repository_id: &str,
    remote_id: Option<&str>,
) -> ApiResult<Option<(String, u64)>> {
    match stored(app, known_by).await? {
        Some((sha256, size))
            if super::handle::reachable(app, &sha256, repository_id, remote_id).await? =>
        {
            Ok(Some((sha256, size)))
        }
        _ => Ok(None),
    }
}

async fn stored(
    app: &ContentApp,
    (kind, value): (DigestKind, &str),
) -> ApiResult<Option<(String, u64)>> {
    let row: Option<(String, i64)> = sqlx::query_as(&format!(
        "SELECT sha256, size FROM artifacts WHERE {} = $1 LIMIT 1",
        kind.column()
    ))
    .bind(value.to_ascii_lowercase())
    .fetch_optional(app.db.pool())
    .await?;
    Ok(row.map(|(sha256, size)| (sha256, size as u64)))
}

/// Whether the repository's latest version has the unit with this file stored.
async fn in_latest_version(
    app: &ContentApp,
    repository_id: &str,
    plugin: &str,
    file: &UpstreamFile,
) -> ApiResult<bool> {
    let latest: i64 = sqlx::query_scalar("SELECT latest_version FROM repositories WHERE id = $1")
        .bind(repository_id)
        .fetch_one(app.db.pool())
        .await?;
    let row = sqlx::query(&format!(
        "SELECT 1 FROM repository_content rc
         JOIN content c ON c.id = rc.content_id
         JOIN content_artifacts ca ON ca.content_id = c.id
         WHERE {IN_VERSION} AND c.plugin = $3 AND c.type_name = $4 AND c.natural_key = $5
           AND ca.relative_path = $6 AND ca.artifact_id IS NOT NULL"
    ))
    .bind(repository_id)
    .bind(latest)
    .bind(plugin)
    .bind(&file.unit.content_type)
    .bind(&file.unit.natural_key)
    .bind(&file.relative_path)
    .fetch_optional(app.db.pool())
    .await?;
    Ok(row.is_some())
}

/// Downloads `url` with the remote's settings, verifies it, stores it; returns its sha256 and
/// size.
async fn fetch(
    app: &ContentApp,
    remote: &Remote,
    url: &str,
    expected: &Expected,
    path: &str,
) -> ApiResult<(String, u64)> {
    let unreachable = |why: String| {
        tracing::warn!(%url, %why, "pull-through fetch failed");
        ApiError::detail(
            StatusCode::BAD_GATEWAY,
            format!("The upstream of {path} could not be fetched: {why}"),
        )
    };
    let upstream = app
        .remote_clients
        .client(remote)?
        .get(url)
        .await
        .map_err(|error| unreachable(error.to_string()))?;
    if !upstream.status().is_success() {
        return Err(unreachable(format!("it answered {}", upstream.status())));
    }
    let mut staged = artifacts::stage_for(&app.blobs, expected)
        .await
        .map_err(ApiError::internal)?;
    let mut body = upstream.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| unreachable(describe(&error)))?;
        staged.write(&chunk).await.map_err(ApiError::internal)?;
        if let Some(size) = expected.size
            && staged.size() > size
        {
            return Err(unreachable(format!(
                "it sent more than the {size} bytes declared"
            )));
        }
    }
    let received = staged.finish().await.map_err(ApiError::internal)?;
    match artifacts::store(&app.db, &app.blobs, received, expected, path).await {
        Ok(artifact) => Ok((artifact.sha256, artifact.size)),
        Err(IngestError::Mismatch(message)) => Err(unreachable(message)),
        Err(IngestError::Other(error)) => Err(error.into()),
    }
}
