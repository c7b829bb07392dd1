//! Content units with their files, read for plugins (`content.list-units`, `find-by-path`).

use std::collections::BTreeMap;

use sqlx::Row as _;

use super::versions::IN_VERSION;
use crate::plugins::{StoredArtifact, StoredUnit};

/// One page of the units of a version, ordered by id, after `cursor`.
pub async fn page(
    pool: &sqlx::AnyPool,
    repository_id: &str,
    version: i64,
    cursor: &str,
    limit: i64,
) -> Result<(Vec<StoredUnit>, Option<String>), sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT c.id, c.type_name, c.natural_key, c.metadata FROM repository_content rc
         JOIN content c ON c.id = rc.content_id
         WHERE {IN_VERSION} AND rc.content_id > $3 ORDER BY rc.content_id LIMIT $4"
    ))
    .bind(repository_id)
    .bind(version)
    .bind(cursor)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let next = if rows.len() as i64 == limit {
        rows.last().map(|row| row.get::<String, _>(0))
    } else {
        None
    };
    Ok((with_artifacts(pool, rows).await?, next))
}

/// The units of a version having a file at `relative_path`.
pub async fn by_path(
    pool: &sqlx::AnyPool,
    repository_id: &str,
    version: i64,
    relative_path: &str,
) -> Result<Vec<StoredUnit>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT c.id, c.type_name, c.natural_key, c.metadata FROM repository_content rc
         JOIN content c ON c.id = rc.content_id
         JOIN content_artifacts ca ON ca.content_id = c.id
         WHERE {IN_VERSION} AND ca.relative_path = $3 ORDER BY c.id LIMIT 100"
    ))
    .bind(repository_id)
    .bind(version)
    .bind(relative_path)
    .fetch_all(pool)
    .await?;
    with_artifacts(pool, rows).await
}

async fn with_artifacts(
    pool: &sqlx::AnyPool,
    rows: Vec<sqlx::any::AnyRow>,
) -> Result<Vec<StoredUnit>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    let sql = format!(
        "SELECT ca.content_id, ca.id, ca.relative_path, a.sha256, a.size,
                (SELECT ra.sha256 FROM remote_artifacts ra WHERE ra.content_artifact_id = ca.id LIMIT 1),
                (SELECT ra.size FROM remote_artifacts ra WHERE ra.content_artifact_id = ca.id LIMIT 1)
         FROM content_artifacts ca LEFT JOIN artifacts a ON a.id = ca.artifact_id
         WHERE ca.content_id IN ({}) ORDER BY ca.relative_path",
        super::placeholders(1, ids.len())
    );
    let mut query = sqlx::query(&sql);
    for id in &ids {
        query = query.bind(id);
    }
    let mut files: BTreeMap<String, Vec<StoredArtifact>> = BTreeMap::new();
    for row in query.fetch_all(pool).await? {
        let sha256: Option<String> = row.get::<Option<String>, _>(3).or_else(|| row.get(5));
        let size: Option<i64> = row.get::<Option<i64>, _>(4).or_else(|| row.get(6));
        files.entry(row.get(0)).or_default().push(StoredArtifact {
            relative_path: row.get(2),
            content_artifact: row.get(1),
            sha256,
            size: size.map(|size| size as u64),
        });
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let id: String = row.get(0);
            StoredUnit {
                content_type: row.get(1),
                natural_key: row.get(2),
                metadata: row.get(3),
                artifacts: files.remove(&id).unwrap_or_default(),
            }
        })
        .collect())
}
