//! The sync pipeline: the plugin reads upstream metadata and streams declarations; the host
//! deduplicates them against what it stores, downloads what the policy requires with bounded
//! concurrency, verifies and stores the bytes, and builds the new repository version.
//!
//! The plugin call and the consumer of its declarations run as two tasks joined by a bounded
//! channel, so a sync of any size runs in constant memory: the plugin waits in `emit` while the
//! host is busy.

use std::sync::Arc;

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};
use tokio::sync::mpsc;

use crate::domain::artifacts;
use crate::domain::declarations::{Pending, Reuse, link, link_stored, save, stored_artifacts};
use crate::domain::remotes::{RateLimiter, Remote};
use crate::domain::versions;
use crate::domain::{Backends, acs};
use crate::plugins::upstream::UpstreamClient;
use crate::plugins::{CallScope, EmittedBatch};
use crate::progress::TaskHandle;

/// Batches in flight between the plugin and the consumer.
const CHANNEL_BATCHES: usize = 2;

/// Runs a sync task. Returns the new version's href, if the sync changed anything.
pub async fn run(
    backends: &Backends,
    task: &Arc<TaskHandle>,
    repository_id: &str,
    remote_id: &str,
    mirror: bool,
) -> anyhow::Result<Vec<String>> {
    let plugin_name: String = sqlx::query_scalar("SELECT plugin FROM repositories WHERE id = $1")
        .bind(repository_id)
        .fetch_optional(backends.db.pool())
        .await?
        .context("the repository no longer exists")?;
    let remote = Remote::load(backends.db.pool(), &backends.secrets, remote_id).await?;
    anyhow::ensure!(
        remote.row.plugin == plugin_name,
        "remote {} belongs to plugin {:?}, the repository to {plugin_name:?}",
        remote.row.id,
        remote.row.plugin
    );
    let plugin = backends.plugin(&plugin_name).await?;
    let http = if plugin.has_capability("http") {
        Some(remote.http_scope(
            backends.remote_clients.client(&remote)?,
            backends.db.clone(),
        ))
    } else {
        None
    };
    let (sender, receiver) = mpsc::channel(CHANNEL_BATCHES);
    let scope = CallScope {
        task: Some(task.clone()),
        http,
        sink: Some(sender),
        content_types: plugin.content_type_names(),
        // A registry's manifests are read by the plugin to find the blobs; it keeps them.
        blobs: Some(backends.blobs.clone()),
        create_in: Some(Arc::new(artifacts::Creator {
            db: backends.db.clone(),
            blobs: backends.blobs.clone(),
        })),
        ..CallScope::default()
    };
    let consumer = tokio::spawn(consume(
        backends.clone(),
        task.clone(),
        repository_id.to_owned(),
        plugin_name,
        remote.clone(),
        receiver,
    ));
    let guest_result = backends
        .plugins
        .sync(&plugin, scope, &remote.config())
        .await;
    // The consumer's error explains a guest stopped by the host, so it comes first.
    consumer.await.context("the sync consumer panicked")??;
    guest_result.map_err(|error| anyhow::anyhow!("{error}"))?;
    let change = if mirror {
        versions::Change::Mirror
    } else {
        versions::Change::Add
    };
    let names = backends.plugins.rest_names();
    let outcome =
        versions::finish_version(&backends.db, &names, repository_id, &task.id, change, &[])
            .await?;
    match outcome.number {
        Some(number) => Ok(vec![
            versions::href(backends.db.pool(), &names, repository_id, number).await?,
        ]),
        None => Ok(Vec::new()),
    }
}

async fn consume(
    backends: Backends,
    task: Arc<TaskHandle>,
    repository_id: String,
    plugin: String,
    remote: Remote,
    mut receiver: mpsc::Receiver<EmittedBatch>,
) -> anyhow::Result<()> {
    let client = backends.remote_clients.client(&remote)?;
    let limiter = remote.rate_limit().map(RateLimiter::new);
    let immediate = remote.row.policy == "immediate";
    let mut associated = 0u64;
    let mut downloaded = 0u64;
    task.report("associating.content", "Associating Content", 0, None);
    if immediate {
        task.report(
            "sync.downloading.artifacts",
            "Downloading Artifacts",
            0,
            None,
        );
    }
    while let Some(EmittedBatch {
        units: batch,
        created,
    }) = receiver.recv().await
    {
        let count = batch.len() as u64;
        let reuse = Reuse::RepositoryOrRemote {
            repository_id: &repository_id,
            remote_id: &remote.row.id,
        };
        let saved = save(
            &backends.db,
            &task.id,
            &plugin,
            Some(&remote.row.id),
            reuse,
            batch,
        );
        let pending = link_stored(&backends.db, saved.await?, reuse).await?;
        let pending = link_created(&backends.db, pending, &created).await?;
        associated += count;
        task.report(
            "associating.content",
            "Associating Content",
            associated,
            None,
        );
        // Files of units stored for a repository this sync may not reach are fetched whatever
        // the policy: the upstream shows it has those bytes, or the sync fails.
        let pending: Vec<Pending> = if immediate {
            pending
        } else {
            pending
                .into_iter()
                .filter(|file| file.linked.is_some())
                .collect()
        };
        if pending.is_empty() {
            continue;
        }
        let mut downloads = futures::stream::iter(pending.into_iter().map(|file| {
            let (backends, client, limiter, plugin) = (&backends, &client, &limiter, &plugin);
            async move {
                if let Some(limiter) = limiter {
                    limiter.wait().await;
                }
                let url = file.url.as_deref().with_context(|| {
                    format!("{} has no URL to download it from", file.relative_path)
                })?;
                let artifact = fetch(backends, plugin, client, url, &file).await?;
                match &file.linked {
                    None => link(&backends.db, &file.content_artifact_id, &artifact.id).await?,
                    Some(linked) => anyhow::ensure!(
                        *linked == artifact.id,
                        "{}: the upstream's file is not the one already stored for this unit",
                        file.relative_path
                    ),
                }
                anyhow::Ok(())
            }
        }))
        .buffer_unordered(remote.download_concurrency());
        while downloads.try_next().await?.is_some() {
            downloaded += 1;
            task.report(
                "sync.downloading.artifacts",
                "Downloading Artifacts",
                downloaded,
                None,
            );
        }
    }
    Ok(())
}

/// Links the files whose bytes the plugin stored itself during the call (`created`); returns
/// the others. A file of a unit stored before is already linked: the plugin's bytes must be
/// those.
async fn link_created(
    db: &crate::db::Db,
    pending: Vec<Pending>,
    created: &[String],
) -> anyhow::Result<Vec<Pending>> {
    let (from_plugin, rest): (Vec<Pending>, Vec<Pending>) = pending.into_iter().partition(|file| {
        file.url.is_none()
            && file
                .expected
                .sha256
                .as_ref()
                .is_some_and(|sha256| created.contains(sha256))
    });
    if from_plugin.is_empty() {
        return Ok(rest);
    }
    let digests: Vec<&str> = from_plugin
        .iter()
        .filter_map(|file| file.expected.sha256.as_deref())
        .collect();
    let stored = stored_artifacts(db, &digests).await?;
    for file in &from_plugin {
        let sha256 = file.expected.sha256.as_deref().unwrap_or_default();
        let artifact_id = stored
            .get(sha256)
            .with_context(|| format!("{}: the plugin's artifact is gone", file.relative_path))?;
        match &file.linked {
            None => link(db, &file.content_artifact_id, artifact_id).await?,
            Some(linked) => anyhow::ensure!(
                linked == artifact_id,
                "{}: the plugin's file is not the one already stored for this unit",
                file.relative_path
            ),
        }
    }
    Ok(rest)
}

/// Downloads `file` from an alternate content source of `plugin` that offers its sha256, when
/// one does and that download succeeds, else from `url` with the remote's client. A file whose
/// unit is stored already is fetched from the remote itself: that fetch shows the remote serves
/// those bytes.
async fn fetch(
    backends: &Backends,
    plugin: &str,
    client: &UpstreamClient,
    url: &str,
    file: &Pending,
) -> anyhow::Result<artifacts::Artifact> {
    if file.linked.is_none()
        && let Some(sha256) = &file.expected.sha256
        && let Some((acs_url, acs_remote_id)) = acs::source_of(backends, plugin, sha256).await?
    {
        let from_source = async {
            let remote =
                Remote::load(backends.db.pool(), &backends.secrets, &acs_remote_id).await?;
            let client = backends.remote_clients.client(&remote)?;
            anyhow::Ok(
                artifacts::download(
                    &backends.db,
                    &backends.blobs,
                    &client,
                    &acs_url,
                    &file.expected,
                    &file.relative_path,
                )
                .await?,
            )
        };
        match from_source.await {
            Ok(artifact) => return Ok(artifact),
            Err(error) => tracing::warn!(
                file = %file.relative_path,
                url = %acs_url,
                error = %format!("{error:#}"),
                "the alternate content source failed; downloading from the remote"
            ),
        }
    }
    Ok(artifacts::download(
        &backends.db,
        &backends.blobs,
        client,
        url,
        &file.expected,
        &file.relative_path,
    )
    .await?)
}
