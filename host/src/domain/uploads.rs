//! Uploads: a stored artifact becomes a content unit through its plugin's `parse-upload`.

use std::sync::Arc;

use anyhow::Context as _;

use super::Backends;
use crate::domain::content_keys;
use crate::domain::declarations::{Reuse, link, link_stored, save};
use crate::domain::{hrefs, versions};
use crate::plugins::host_sync_sink::validate_declaration;
use crate::plugins::{ArtifactRef, CallScope};
use crate::progress::TaskHandle;

/// What a `parse-upload` call may do: read the one artifact `(sha256, size)`, and store the
/// artifacts it derives (a wheel's `.metadata`).
fn parse_scope(
    backends: &Backends,
    task: &Arc<TaskHandle>,
    plugin: &crate::plugins::LoadedPlugin,
    (sha256, size): (&str, u64),
) -> CallScope {
    CallScope {
        task: Some(task.clone()),
        artifacts: [(sha256.to_owned(), size)].into(),
        blobs: Some(backends.blobs.clone()),
        content_types: plugin.content_type_names(),
        create_in: Some(Arc::new(crate::domain::artifacts::Creator {
            db: backends.db.clone(),
            blobs: backends.blobs.clone(),
        })),
        ..CallScope::default()
    }
}

/// Creates (or finds) the unit an uploaded artifact is, and adds it to `repository_id` when
/// given. Returns the content href, then the new version's href if one was made.
pub async fn create_content(
    backends: &Backends,
    task: &Arc<TaskHandle>,
    plugin_name: &str,
    sha256: &str,
    relative_path: Option<&str>,
    repository_id: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let plugin = backends.plugin(plugin_name).await?;
    let (artifact_id, size) =
        sqlx::query_as::<_, (String, i64)>("SELECT id, size FROM artifacts WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(backends.db.pool())
            .await?
            .context("the uploaded artifact no longer exists")?;
    let scope = parse_scope(backends, task, &plugin, (sha256, size as u64));
    let upload = ArtifactRef {
        sha256: sha256.to_owned(),
        size: size as u64,
    };
    let (unit, scope) = backends
        .plugins
        .parse_upload(&plugin, scope, &upload, relative_path)
        .await;
    let unit = unit.map_err(|error| anyhow::anyhow!("{error}"))?;
    validate_declaration(&unit, &plugin.content_type_names(), None)
        .map_err(|message| anyhow::anyhow!("the plugin declared an invalid unit: {message}"))?;
    // A file is the upload, or an artifact the plugin derived with `artifacts.create`.
    let created: Vec<&str> = scope.created.iter().map(|a| a.sha256.as_str()).collect();
    if let Some(other) = unit.artifacts.iter().find(|a| {
        a.sha256
            .as_deref()
            .is_some_and(|s| s != sha256 && !created.contains(&s))
    }) {
        anyhow::bail!(
            "the plugin declared file {:?} with a digest other than the upload's",
            other.relative_path
        );
    }
    let content_type = unit.content_type.clone();
    let natural_key = unit.natural_key.clone();
    let pending = save(
        &backends.db,
        &task.id,
        plugin_name,
        None,
        Reuse::Checked,
        vec![unit],
    )
    .await?;
    for file in link_stored(&backends.db, pending, Reuse::Checked).await? {
        link(&backends.db, &file.content_artifact_id, &artifact_id).await?;
    }
    let content_id: String = sqlx::query_scalar(
        "SELECT id FROM content WHERE plugin = $1 AND type_name = $2 AND natural_key = $3",
    )
    .bind(plugin_name)
    .bind(&content_type)
    .bind(&natural_key)
    .fetch_one(backends.db.pool())
    .await?;
    let mut created = vec![hrefs::content(
        &backends.plugins.rest_names(),
        plugin_name,
        &content_type,
        &content_id,
    )];
    match repository_id {
        Some(repository_id) => {
            let outcome = versions::finish_version(
                &backends.db,
                &backends.plugins.rest_names(),
                repository_id,
                &task.id,
                versions::Change::Add,
                &[],
            )
            .await?;
            if let Some(number) = outcome.number {
                created.push(
                    versions::href(
                        backends.db.pool(),
                        &backends.plugins.rest_names(),
                        repository_id,
                        number,
                    )
                    .await?,
                );
            }
        }
        None => versions::clear_staging(&backends.db, &task.id).await?,
    }
    Ok(created)
}

/// How many units [`repair_metadata`] reads per query.
const REPAIR_PAGE: i64 = 200;

/// Pulp's `repair_metadata`: every unit of the repository's latest version is read again
/// through its plugin's `parse-upload`, and its metadata rewritten when the plugin now says
/// otherwise, with any file the plugin derives that the unit lacks (a wheel's `.metadata`). A
/// unit whose file was never downloaded (`on_demand`, `streamed`) is fetched from its remote
/// first. No version is made: the units are the same, their descriptions right. A unit whose
/// file cannot be had, or that the plugin now reads as another unit, is left as it is and
/// counted in the report.
pub async fn repair_metadata(
    backends: &Backends,
    task: &Arc<TaskHandle>,
    repository_id: &str,
) -> anyhow::Result<()> {
    let db = &backends.db;
    let (plugin_name, latest): (String, i64) =
        sqlx::query_as("SELECT plugin, latest_version FROM repositories WHERE id = $1")
            .bind(repository_id)
            .fetch_optional(db.pool())
            .await?
            .context("the repository no longer exists")?;
    let plugin = backends.plugin(&plugin_name).await?;
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM repository_content rc WHERE {}",
        crate::db::IN_VERSION
    ))
    .bind(repository_id)
    .bind(latest)
    .fetch_one(db.pool())
    .await?;
    let message = "Repairing packages' metadata";
    task.report("repair.metadata", message, 0, Some(total as u64));
    let (mut done, mut repaired, mut skipped) = (0u64, 0u64, 0u64);
    let mut after = String::new();
    loop {
        let units: Vec<(String, String, String, String)> = sqlx::query_as(&format!(
            "SELECT c.id, c.type_name, c.natural_key, c.metadata FROM repository_content rc
             JOIN content c ON c.id = rc.content_id
             WHERE {} AND c.id > $3 ORDER BY c.id LIMIT $4",
            crate::db::IN_VERSION
        ))
        .bind(repository_id)
        .bind(latest)
        .bind(&after)
        .bind(REPAIR_PAGE)
        .fetch_all(db.pool())
        .await?;
        let Some(last) = units.last() else { break };
        after = last.0.clone();
        for (content_id, type_name, natural_key, metadata) in units {
            done += 1;
            match repair_unit(
                backends,
                task,
                &plugin,
                (&content_id, &type_name, &natural_key),
            )
            .await?
            {
                Some(fresh) if fresh != metadata => {
                    let mut tx = db.begin_write().await?;
                    sqlx::query("UPDATE content SET metadata = $2, updated = $3 WHERE id = $1")
                        .bind(&content_id)
                        .bind(&fresh)
                        .bind(crate::db::now())
                        .execute(&mut *tx)
                        .await?;
                    let unit = content_keys::Unit {
                        content_id: &content_id,
                        type_name: &type_name,
                        natural_key: &natural_key,
                        metadata: &fresh,
                    };
                    content_keys::reindex(&mut tx, &plugin.info.name, &unit).await?;
                    tx.commit().await?;
                    repaired += 1;
                }
                Some(_) => {}
                None => skipped += 1,
            }
            task.report("repair.metadata", message, done, Some(total as u64));
        }
    }
    task.report(
        "repair.metadata.repaired",
        "Packages whose metadata was repaired",
        repaired,
        Some(repaired),
    );
    task.report(
        "repair.metadata.skipped",
        "Packages not repaired (file neither stored nor fetched, or read as another package)",
        skipped,
        Some(skipped),
    );
    Ok(())
}

/// The metadata the plugin reads from a unit's main file (the stored file whose path the
/// others extend, a wheel's beside its `.metadata`), linking any derived file the unit lacks;
/// `None` when no file is stored or the plugin reads another unit.
async fn repair_unit(
    backends: &Backends,
    task: &Arc<TaskHandle>,
    plugin: &crate::plugins::LoadedPlugin,
    (content_id, type_name, natural_key): (&str, &str, &str),
) -> anyhow::Result<Option<String>> {
    let files: Vec<(String, String, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT ca.id, ca.relative_path, a.sha256, a.size FROM content_artifacts ca
         LEFT JOIN artifacts a ON a.id = ca.artifact_id WHERE ca.content_id = $1
         ORDER BY LENGTH(ca.relative_path), ca.relative_path",
    )
    .bind(content_id)
    .fetch_all(backends.db.pool())
    .await?;
    let Some((content_artifact_id, relative_path, stored_sha256, stored_size)) = files.first()
    else {
        return Ok(None);
    };
    let (sha256, size) = match (stored_sha256, stored_size) {
        (Some(sha256), Some(size)) => (sha256.clone(), *size),
        _ => match fetch_from_remote(backends, content_artifact_id, relative_path).await {
            Ok(Some(fetched)) => fetched,
            Ok(None) => return Ok(None),
            Err(error) => {
                // One unreachable file does not stop the others' repair: it is counted.
                tracing::warn!(%content_id, error = %format!("{error:#}"), "cannot repair a unit not stored");
                return Ok(None);
            }
        },
    };
    let (sha256, size) = (&sha256, &size);
    // The file as uploaded had the path's last segment as its name when the plugin files it
    // below a directory of its own (python: `<project>/<filename>`); that name is tried when the
    // whole path is refused.
    let file_name = relative_path.rsplit('/').next().unwrap_or(relative_path);
    let mut names = vec![relative_path.as_str()];
    if file_name != relative_path {
        names.push(file_name);
    }
    let upload = ArtifactRef {
        sha256: sha256.clone(),
        size: *size as u64,
    };
    let mut read = None;
    for name in names {
        let scope = parse_scope(backends, task, plugin, (sha256, *size as u64));
        match backends
            .plugins
            .parse_upload(plugin, scope, &upload, Some(name))
            .await
        {
            (Ok(unit), scope) => {
                read = Some((unit, scope));
                break;
            }
            (Err(error), _) => {
                tracing::debug!(%content_id, %error, name, "the plugin does not read the file as named");
            }
        }
    }
    let Some((unit, scope)) = read else {
        tracing::warn!(%content_id, "the plugin cannot read the unit's file again");
        return Ok(None);
    };
    if unit.content_type != type_name || unit.natural_key != natural_key {
        tracing::warn!(
            %content_id,
            read = %unit.natural_key,
            stored = %natural_key,
            "the plugin reads the unit's file as another unit"
        );
        return Ok(None);
    }
    // Files the plugin derives (created in this call) that the unit does not have yet.
    for derived in &unit.artifacts {
        let Some(digest) = derived.sha256.as_deref() else {
            continue;
        };
        let known = files
            .iter()
            .any(|(_, path, _, _)| *path == derived.relative_path);
        let created = scope
            .created
            .iter()
            .any(|artifact| artifact.sha256 == digest);
        if known || !created {
            continue;
        }
        let artifact_id: String = sqlx::query_scalar("SELECT id FROM artifacts WHERE sha256 = $1")
            .bind(digest)
            .fetch_one(backends.db.pool())
            .await?;
        backends
            .db
            .write_one(
                sqlx::query(
                    "INSERT INTO content_artifacts (id, content_id, relative_path, artifact_id)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (content_id, relative_path) DO NOTHING",
                )
                .bind(crate::db::new_id())
                .bind(content_id)
                .bind(&derived.relative_path)
                .bind(artifact_id),
            )
            .await?;
    }
    Ok(Some(unit.metadata))
}

/// Downloads a unit's file that was never downloaded (an `on_demand` or `streamed` remote's)
/// from the remote the sync recorded, verified against what the sync declared, as the content
/// app does on a client's first request, and keeps it unless the remote is `streamed`; answers
/// its sha256 and size. `None` when no remote knows the file. Pulp reads such a package's
/// metadata from the remote's JSON API instead; reading the file itself repairs every plugin's
/// units the same way.
async fn fetch_from_remote(
    backends: &Backends,
    content_artifact_id: &str,
    relative_path: &str,
) -> anyhow::Result<Option<(String, i64)>> {
    let source: Option<super::artifacts::RemoteArtifactRow> = sqlx::query_as(
        "SELECT url, size, sha256, sha512, remote_id FROM remote_artifacts
         WHERE content_artifact_id = $1 LIMIT 1",
    )
    .bind(content_artifact_id)
    .fetch_optional(backends.db.pool())
    .await?;
    let Some(super::artifacts::RemoteArtifactRow {
        url,
        size,
        sha256,
        sha512,
        remote_id,
    }) = source
    else {
        return Ok(None);
    };
    let remote =
        crate::domain::remotes::Remote::load(backends.db.pool(), &backends.secrets, &remote_id)
            .await?;
    let client = backends.remote_clients.client(&remote)?;
    let expected = crate::domain::artifacts::Expected {
        size: size.map(|size| size as u64),
        sha256,
        sha512,
    };
    let artifact = crate::domain::artifacts::download(
        &backends.db,
        &backends.blobs,
        &client,
        &url,
        &expected,
        relative_path,
    )
    .await
    .with_context(|| format!("fetching {relative_path} from its remote"))?;
    if remote.row.policy != "streamed" {
        link(&backends.db, content_artifact_id, &artifact.id).await?;
    }
    Ok(Some((artifact.sha256, artifact.size as i64)))
}
