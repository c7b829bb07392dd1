//! Uploads: a stored artifact becomes a content unit through its plugin's `parse-upload`.

use std::sync::Arc;

use anyhow::Context as _;

use super::Backends;
use crate::domain::declarations::{Reuse, link, link_stored, save};
use crate::domain::{hrefs, versions};
use crate::plugins::host_sync_sink::validate_declaration;
use crate::plugins::{ArtifactRef, CallScope};
use crate::progress::TaskHandle;

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
    let scope = CallScope {
        task: Some(task.clone()),
        artifacts: [(sha256.to_owned(), size as u64)].into(),
        blobs: Some(backends.blobs.clone()),
        content_types: plugin.content_type_names(),
        create_in: Some(Arc::new(crate::domain::artifacts::Creator {
            db: backends.db.clone(),
            blobs: backends.blobs.clone(),
        })),
        ..CallScope::default()
    };
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
