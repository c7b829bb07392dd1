//! Alternate content sources (Pulp's ACS): where else the files of a plugin's units may be
//! fetched from. A refresh runs the plugin's `sync` against each of the source's paths (the
//! remote's URL joined with the path, as Pulp joins them) and records, instead of units, which
//! file (sha256) is at which URL; a sync then asks [`source_of`] before downloading a file.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::mpsc;

use super::Backends;
use super::remotes::Remote;
use crate::db::{now, value_rows};
use crate::plugins::{CallScope, EmittedBatch};
use crate::progress::TaskHandle;

/// Rows inserted per statement.
const BATCH: usize = 200;

/// The URL of `path` below a remote's `url`, as Python's `os.path.join` makes it (Pulp's).
pub fn path_url(url: &str, path: &str) -> String {
    if path.is_empty() {
        url.to_owned()
    } else if url.ends_with('/') {
        format!("{url}{path}")
    } else {
        format!("{url}/{path}")
    }
}

/// Forgets what the source `acs_id` recorded at paths it no longer lists, or everything when its
/// remote changed (`remote_changed`): part of the update that changed it.
pub async fn forget_unlisted(
    conn: &mut sqlx::AnyConnection,
    acs_id: &str,
    remote_changed: bool,
) -> Result<(), sqlx::Error> {
    let listed: String = sqlx::query_scalar("SELECT paths FROM acs_sources WHERE id = $1")
        .bind(acs_id)
        .fetch_one(&mut *conn)
        .await?;
    let kept: Vec<String> = serde_json::from_str(&listed).unwrap_or_default();
    let recorded: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT path FROM acs_files WHERE acs_id = $1")
            .bind(acs_id)
            .fetch_all(&mut *conn)
            .await?;
    for path in recorded {
        if remote_changed || !kept.contains(&path) {
            sqlx::query("DELETE FROM acs_files WHERE acs_id = $1 AND path = $2")
                .bind(acs_id)
                .bind(path)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Refreshes `path` of the source `acs_id`: what the plugin declares there replaces what was
/// recorded for the path before.
pub async fn refresh(
    backends: &Backends,
    task: &Arc<TaskHandle>,
    acs_id: &str,
    path: &str,
) -> anyhow::Result<()> {
    let (plugin_name, remote_id): (String, String) =
        sqlx::query_as("SELECT plugin, remote_id FROM acs_sources WHERE id = $1")
            .bind(acs_id)
            .fetch_optional(backends.db.pool())
            .await?
            .context("the alternate content source no longer exists")?;
    let remote = Remote::load(backends.db.pool(), &backends.secrets, &remote_id).await?;
    let plugin = backends.plugin(&plugin_name).await?;
    let mut config = remote.config();
    config.url = path_url(&config.url, path);
    let http = plugin.has_capability("http").then(|| {
        backends
            .remote_clients
            .client(&remote)
            .map(|client| remote.http_scope(client, backends.db.clone()))
    });
    let (sender, receiver) = mpsc::channel(2);
    let scope = CallScope {
        task: Some(task.clone()),
        http: http.transpose()?,
        sink: Some(sender),
        content_types: plugin.content_type_names(),
        ..CallScope::default()
    };
    let recorder = tokio::spawn(record(task.clone(), receiver));
    let guest = backends.plugins.sync(&plugin, scope, &config).await;
    let recorded = recorder.await.context("the refresh recorder panicked")?;
    guest.map_err(|error| anyhow::anyhow!("{error}"))?;
    let files = recorded?;
    // The old record goes only once the new one is whole: a failed refresh keeps the last.
    let mut tx = backends.db.begin_write().await?;
    sqlx::query("DELETE FROM acs_files WHERE acs_id = $1 AND path = $2")
        .bind(acs_id)
        .bind(path)
        .execute(&mut *tx)
        .await?;
    for chunk in files.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO acs_files (acs_id, path, sha256, url, size) VALUES {} ON CONFLICT DO NOTHING",
            value_rows("($1, $2, ?, ?, ?)", 3, chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(acs_id).bind(path);
        for (sha256, url, size) in chunk {
            query = query.bind(sha256).bind(url).bind(*size);
        }
        query.execute(&mut *tx).await?;
    }
    sqlx::query("UPDATE acs_sources SET last_refreshed = $2 WHERE id = $1")
        .bind(acs_id)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A file an ACS path offers: sha256, URL, size.
type Offered = (String, String, Option<i64>);

/// Collects the files the plugin declares (those with a sha256 and a URL), reporting progress.
async fn record(
    task: Arc<TaskHandle>,
    mut receiver: mpsc::Receiver<EmittedBatch>,
) -> anyhow::Result<Vec<Offered>> {
    let mut files = Vec::new();
    task.report(
        "acs.refresh.files",
        "Recording alternate sources of files",
        0,
        None,
    );
    while let Some(batch) = receiver.recv().await {
        for artifact in batch.units.into_iter().flat_map(|unit| unit.artifacts) {
            if let (Some(sha256), Some(url)) = (artifact.sha256, artifact.url) {
                let size = artifact.size.and_then(|size| i64::try_from(size).ok());
                files.push((sha256.to_ascii_lowercase(), url, size));
            }
        }
        task.report(
            "acs.refresh.files",
            "Recording alternate sources of files",
            files.len() as u64,
            None,
        );
    }
    Ok(files)
}

/// Where an alternate content source of `plugin` offers the file `sha256`: its URL and the
/// source's remote (whose client, certificates and credentials fetch it).
pub async fn source_of(
    backends: &Backends,
    plugin: &str,
    sha256: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT f.url, s.remote_id FROM acs_files f JOIN acs_sources s ON s.id = f.acs_id
         WHERE f.sha256 = $1 AND s.plugin = $2 ORDER BY s.name LIMIT 1",
    )
    .bind(sha256.to_ascii_lowercase())
    .bind(plugin)
    .fetch_optional(backends.db.pool())
    .await
}

/// Deletes source `acs_id` and what its refreshes recorded.
pub async fn delete(backends: &Backends, acs_id: &str) -> Result<(), sqlx::Error> {
    let mut tx = backends.db.begin_write().await?;
    for sql in [
        "DELETE FROM acs_files WHERE acs_id = $1",
        "DELETE FROM role_assignments WHERE object_id = $1",
        "DELETE FROM acs_sources WHERE id = $1",
    ] {
        sqlx::query(sql).bind(acs_id).execute(&mut *tx).await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::path_url;

    #[test]
    fn paths_join_the_remote_url_as_pulp_joins_them() {
        assert_eq!(path_url("http://h/x/", "a/M"), "http://h/x/a/M");
        assert_eq!(path_url("http://h/x", "a/M"), "http://h/x/a/M");
        assert_eq!(path_url("http://h/x/M", ""), "http://h/x/M");
    }
}
