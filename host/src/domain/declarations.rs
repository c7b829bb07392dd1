//! Recording declared units: deduplicated against what is stored, with where to fetch each file,
//! and staged for the new repository version of the task.

use std::collections::BTreeMap;

use crate::db::{BindAll as _, Db, WriteTx, new_id, now, placeholders, value_rows};
use crate::domain::artifacts::Expected;
use crate::domain::versions;
use crate::plugins::UnitDeclaration;

/// Rows per multi-row INSERT.
const INSERT_CHUNK: usize = 100;

/// A file of a unit (`content_artifacts`): where it sits and, once stored, its artifact.
#[derive(Debug, sqlx::FromRow)]
struct ContentArtifactRow {
    id: String,
    content_id: String,
    relative_path: String,
    artifact_id: Option<String>,
}

/// A file of a declared unit whose bytes are not stored yet.
pub struct Pending {
    /// The (unit, file) row.
    pub content_artifact_id: String,
    /// Path of the file in the unit.
    pub relative_path: String,
    /// Where to download it.
    pub url: Option<String>,
    /// What it must be.
    pub expected: Expected,
}

/// Records the units and files of a batch (deduplicated against what exists), where to fetch
/// each file, and stages the units for the new version. Returns the files not stored yet.
pub async fn save(
    db: &Db,
    task_id: &str,
    plugin: &str,
    remote_id: Option<&str>,
    batch: Vec<UnitDeclaration>,
) -> anyhow::Result<Vec<Pending>> {
    // Later duplicates of a unit in one batch add nothing.
    let mut units: BTreeMap<(String, String), UnitDeclaration> = BTreeMap::new();
    for unit in batch {
        units
            .entry((unit.content_type.clone(), unit.natural_key.clone()))
            .or_insert(unit);
    }
    let mut tx = db.begin_write().await?;
    let created = now();
    let mut content_ids: BTreeMap<(String, String), String> = BTreeMap::new();
    let keys: Vec<&(String, String)> = units.keys().collect();
    for chunk in keys.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO content (id, plugin, type_name, natural_key, metadata, created) VALUES {}
             ON CONFLICT (plugin, type_name, natural_key) DO NOTHING",
            value_rows("(?, $1, ?, ?, ?, $2)", 3, chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(plugin).bind(&created);
        for key in chunk {
            query = query
                .bind(new_id())
                .bind(&key.0)
                .bind(&key.1)
                .bind(&units[*key].metadata);
        }
        query.execute(&mut *tx).await?;
        content_ids.extend(lookup_content(&mut tx, plugin, chunk).await?);
    }
    let ids: Vec<String> = content_ids.values().cloned().collect();
    versions::stage(&mut tx, task_id, &ids).await?;

    // Files: one content_artifact per (unit, relative path), one remote_artifact per remote.
    let mut files = Vec::new();
    for (key, unit) in &units {
        let content_id = &content_ids[key];
        for artifact in &unit.artifacts {
            files.push((content_id.clone(), artifact));
        }
    }
    for chunk in files.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO content_artifacts (id, content_id, relative_path, artifact_id) VALUES {}
             ON CONFLICT (content_id, relative_path) DO NOTHING",
            value_rows("(?, ?, ?, NULL)", 1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for (content_id, artifact) in chunk {
            query = query
                .bind(new_id())
                .bind(content_id)
                .bind(&artifact.relative_path);
        }
        query.execute(&mut *tx).await?;
    }
    let mut pending = Vec::new();
    for chunk in ids.chunks(INSERT_CHUNK * 4) {
        let sql = format!(
            "SELECT id, content_id, relative_path, artifact_id FROM content_artifacts WHERE content_id IN ({})",
            placeholders(1, chunk.len())
        );
        let rows = sqlx::query_as::<_, ContentArtifactRow>(&sql)
            .bind_all(chunk)
            .fetch_all(&mut *tx)
            .await?;
        let declared: BTreeMap<(&str, &str), &crate::plugins::ArtifactDeclaration> = files
            .iter()
            .map(|(content_id, a)| ((content_id.as_str(), a.relative_path.as_str()), *a))
            .collect();
        let mut remote_rows = Vec::new();
        for row in rows {
            let ContentArtifactRow {
                id: ca_id,
                content_id,
                relative_path: path,
                artifact_id: stored,
            } = row;
            let Some(declaration) = declared.get(&(content_id.as_str(), path.as_str())) else {
                continue;
            };
            if let (Some(url), Some(_)) = (&declaration.url, remote_id) {
                remote_rows.push((
                    ca_id.clone(),
                    url.clone(),
                    declaration.size,
                    declaration.sha256.clone(),
                ));
            }
            if stored.is_none() {
                pending.push(Pending {
                    content_artifact_id: ca_id,
                    relative_path: path.clone(),
                    url: declaration.url.clone(),
                    expected: Expected {
                        size: declaration.size,
                        sha256: declaration.sha256.clone(),
                    },
                });
            }
        }
        let Some(remote_id) = remote_id else { continue };
        for rows in remote_rows.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO remote_artifacts (id, content_artifact_id, remote_id, url, size, sha256) VALUES {}
                 ON CONFLICT (content_artifact_id, remote_id)
                 DO UPDATE SET url = excluded.url, size = excluded.size, sha256 = excluded.sha256",
                value_rows("(?, ?, $1, ?, ?, ?)", 2, rows.len())
            );
            let mut query = sqlx::query(&sql).bind(remote_id);
            for (ca_id, url, size, sha256) in rows {
                query = query
                    .bind(new_id())
                    .bind(ca_id)
                    .bind(url)
                    .bind(size.map(|s| s as i64))
                    .bind(sha256.clone());
            }
            query.execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(pending)
}

async fn lookup_content(
    tx: &mut WriteTx,
    plugin: &str,
    keys: &[&(String, String)],
) -> Result<BTreeMap<(String, String), String>, sqlx::Error> {
    let mut found = BTreeMap::new();
    let mut by_type: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (type_name, key) in keys {
        by_type.entry(type_name).or_default().push(key);
    }
    for (type_name, natural_keys) in by_type {
        let sql = format!(
            "SELECT id, natural_key FROM content WHERE plugin = $1 AND type_name = $2 AND natural_key IN ({})",
            placeholders(3, natural_keys.len())
        );
        let query = sqlx::query_as::<_, (String, String)>(&sql)
            .bind(plugin)
            .bind(type_name)
            .bind_all(&natural_keys);
        for (id, natural_key) in query.fetch_all(&mut **tx).await? {
            found.insert((type_name.to_owned(), natural_key), id);
        }
    }
    Ok(found)
}

/// Links pending files whose bytes are already stored (same sha256); returns the rest.
pub async fn link_stored(db: &Db, pending: Vec<Pending>) -> anyhow::Result<Vec<Pending>> {
    let digests: Vec<&str> = pending
        .iter()
        .filter_map(|file| file.expected.sha256.as_deref())
        .collect();
    if digests.is_empty() {
        return Ok(pending);
    }
    let mut stored: BTreeMap<String, String> = BTreeMap::new();
    for chunk in digests.chunks(INSERT_CHUNK * 4) {
        let sql = format!(
            "SELECT sha256, id FROM artifacts WHERE sha256 IN ({})",
            placeholders(1, chunk.len())
        );
        let query = sqlx::query_as::<_, (String, String)>(&sql).bind_all(chunk);
        for (sha256, id) in query.fetch_all(db.pool()).await? {
            stored.insert(sha256, id);
        }
    }
    let mut rest = Vec::new();
    for file in pending {
        match file
            .expected
            .sha256
            .as_ref()
            .and_then(|sha256| stored.get(sha256))
        {
            Some(artifact_id) => link(db, &file.content_artifact_id, artifact_id).await?,
            None => rest.push(file),
        }
    }
    Ok(rest)
}

/// Points a file of a unit at its stored artifact.
pub async fn link(
    db: &Db,
    content_artifact_id: &str,
    artifact_id: &str,
) -> Result<(), sqlx::Error> {
    db.write_one(
        sqlx::query(
            "UPDATE content_artifacts SET artifact_id = $2 WHERE id = $1 AND artifact_id IS NULL",
        )
        .bind(content_artifact_id)
        .bind(artifact_id),
    )
    .await?;
    Ok(())
}
