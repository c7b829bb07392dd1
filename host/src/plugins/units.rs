//! Content units with their files, read for plugins (`content.list-units`, `find-by-path`,
//! `list-by-prefix`). Read-only queries that build the WIT's own records, so they live with the
//! host side of the `content` interface rather than in the domain above it.

use std::collections::BTreeMap;

use super::{StoredArtifact, StoredUnit};
use crate::db::IN_VERSION;

/// A unit as the unit queries select it, before its files are attached.
#[derive(Debug, sqlx::FromRow)]
struct UnitRow {
    id: String,
    type_name: String,
    natural_key: String,
    metadata: String,
}

/// A file of a unit, with the stored artifact's digest and size and a remote's as fallback.
#[derive(Debug, sqlx::FromRow)]
struct FileRow {
    content_id: String,
    id: String,
    relative_path: String,
    sha256: Option<String>,
    size: Option<i64>,
    remote_sha256: Option<String>,
    remote_size: Option<i64>,
}

/// One page of the units of a version, ordered by id, after `cursor`.
pub async fn page(
    db: &crate::db::Db,
    repository_id: &str,
    version: i64,
    cursor: &str,
    limit: i64,
) -> Result<(Vec<StoredUnit>, Option<String>), sqlx::Error> {
    let mut reader = db.reader().await?;
    let rows = sqlx::query_as::<_, UnitRow>(&format!(
        "SELECT c.id, c.type_name, c.natural_key, c.metadata FROM repository_content rc
         JOIN content c ON c.id = rc.content_id
         WHERE {IN_VERSION} AND rc.content_id > $3 ORDER BY rc.content_id LIMIT $4"
    ))
    .bind(repository_id)
    .bind(version)
    .bind(cursor)
    .bind(limit)
    .fetch_all(&mut *reader)
    .await?;
    let next = next_cursor(&rows, limit);
    Ok((with_artifacts(&mut reader, rows).await?, next))
}

/// One page of the units of a version that have a file whose relative path starts with `prefix`,
/// ordered by id, after `cursor`.
///
/// Driven by the `content_artifacts (relative_path)` index, then one membership probe per unit,
/// so the cost follows the matches, not the repository. SQLite compares text bytewise, so a range
/// on the path is both exact and indexed; PostgreSQL uses `LIKE` (wildcards escaped), which its
/// planner serves from the index under the C collation.
pub async fn page_by_prefix(
    db: &crate::db::Db,
    repository_id: &str,
    version: i64,
    prefix: &str,
    cursor: &str,
    limit: i64,
) -> Result<(Vec<StoredUnit>, Option<String>), sqlx::Error> {
    let matches = match db.backend() {
        crate::db::Backend::Sqlite => {
            "ca.relative_path >= $3 AND ca.relative_path < $4 AND SUBSTR(ca.relative_path, 1, LENGTH($3)) = $3"
        }
        crate::db::Backend::Postgres => {
            "ca.relative_path LIKE $4 ESCAPE '\\' AND SUBSTR(ca.relative_path, 1, LENGTH($3)) = $3"
        }
    };
    let bound = match db.backend() {
        // Every path starting with `prefix` sorts below `prefix` followed by the last code point.
        crate::db::Backend::Sqlite => format!("{prefix}\u{10FFFF}"),
        crate::db::Backend::Postgres => format!("{}%", escape_like(prefix)),
    };
    let mut reader = db.reader().await?;
    let rows = sqlx::query_as::<_, UnitRow>(&format!(
        "SELECT c.id, c.type_name, c.natural_key, c.metadata FROM content c
         WHERE c.id IN (SELECT ca.content_id FROM content_artifacts ca WHERE {matches})
           AND EXISTS (SELECT 1 FROM repository_content rc WHERE rc.content_id = c.id AND
               rc.repository_id = $1 AND rc.version_added <= $2 AND (rc.version_removed IS NULL OR rc.version_removed > $2))
           AND c.id > $5
         ORDER BY c.id LIMIT $6"
    ))
    .bind(repository_id)
    .bind(version)
    .bind(prefix)
    .bind(bound)
    .bind(cursor)
    .bind(limit)
    .fetch_all(&mut *reader)
    .await?;
    let next = next_cursor(&rows, limit);
    Ok((with_artifacts(&mut reader, rows).await?, next))
}

/// Which indexed field of which units: the plugin's `type_name` units, keyed by `field`.
#[derive(Debug, Clone, Copy)]
pub struct KeyField<'a> {
    /// The plugin whose units these are.
    pub plugin: &'a str,
    /// Their content type.
    pub type_name: &'a str,
    /// The indexed field.
    pub field: &'a str,
}

/// Up to `limit` distinct values of an indexed field among the units of a version, in byte order,
/// after `after`.
///
/// Walks the `content_keys` primary key in value order and probes each value's units for
/// membership, so a page costs what its values have, not the repository. PostgreSQL compares
/// under the C collation, as SQLite always does, so the order is the bytes' on both.
pub async fn distinct_values(
    db: &crate::db::Db,
    repository_id: &str,
    version: i64,
    key: KeyField<'_>,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let collate = byte_order(db);
    sqlx::query_scalar::<_, String>(&format!(
        "SELECT DISTINCT k.value{collate} AS value FROM content_keys k
         WHERE k.plugin = $3 AND k.type_name = $4 AND k.field = $5 AND k.value{collate} > $6
           AND EXISTS (SELECT 1 FROM repository_content rc WHERE rc.content_id = k.content_id AND
               rc.repository_id = $1 AND rc.version_added <= $2 AND (rc.version_removed IS NULL OR rc.version_removed > $2))
         ORDER BY 1 LIMIT $7"
    ))
    .bind(repository_id)
    .bind(version)
    .bind(key.plugin)
    .bind(key.type_name)
    .bind(key.field)
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await
}

/// The collation that makes text compare as bytes, to append to a compared column: SQLite's
/// default already does; PostgreSQL's depends on the database's locale.
pub(crate) fn byte_order(db: &crate::db::Db) -> &'static str {
    match db.backend() {
        crate::db::Backend::Sqlite => "",
        crate::db::Backend::Postgres => " COLLATE \"C\"",
    }
}

/// One page of the units of a version whose indexed field has the value `value`, ordered by id,
/// after `cursor`: driven by the `content_keys` primary key, then one membership probe per unit.
pub async fn page_by_field(
    db: &crate::db::Db,
    repository_id: &str,
    version: i64,
    key: KeyField<'_>,
    value: &str,
    cursor: &str,
    limit: i64,
) -> Result<(Vec<StoredUnit>, Option<String>), sqlx::Error> {
    let mut reader = db.reader().await?;
    let rows = sqlx::query_as::<_, UnitRow>(
        "SELECT c.id, c.type_name, c.natural_key, c.metadata FROM content c
         WHERE c.id IN (SELECT k.content_id FROM content_keys k
               WHERE k.plugin = $3 AND k.type_name = $4 AND k.field = $5 AND k.value = $6)
           AND EXISTS (SELECT 1 FROM repository_content rc WHERE rc.content_id = c.id AND
               rc.repository_id = $1 AND rc.version_added <= $2 AND (rc.version_removed IS NULL OR rc.version_removed > $2))
           AND c.id > $7
         ORDER BY c.id LIMIT $8",
    )
    .bind(repository_id)
    .bind(version)
    .bind(key.plugin)
    .bind(key.type_name)
    .bind(key.field)
    .bind(value)
    .bind(cursor)
    .bind(limit)
    .fetch_all(&mut *reader)
    .await?;
    let next = next_cursor(&rows, limit);
    Ok((with_artifacts(&mut reader, rows).await?, next))
}

/// `text` with `LIKE`'s wildcards and escape character escaped (escape character `\`).
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The units of a version having a file at `relative_path`.
pub async fn by_path(
    db: &crate::db::Db,
    repository_id: &str,
    version: i64,
    relative_path: &str,
) -> Result<Vec<StoredUnit>, sqlx::Error> {
    // Written so that the files at the path are found first (by their index) and only those
    // are checked against the version: a join from `repository_content` lets SQLite, which has
    // no statistics, walk every unit of the repository (a 10,000-project python repository's
    // wheel lookups ran at 140 a second).
    let mut reader = db.reader().await?;
    let rows = sqlx::query_as::<_, UnitRow>(
        "SELECT c.id, c.type_name, c.natural_key, c.metadata FROM content c
         WHERE c.id IN (SELECT ca.content_id FROM content_artifacts ca WHERE ca.relative_path = $3)
           AND EXISTS (SELECT 1 FROM repository_content rc WHERE rc.content_id = c.id AND
               rc.repository_id = $1 AND rc.version_added <= $2 AND (rc.version_removed IS NULL OR rc.version_removed > $2))
         ORDER BY c.id LIMIT 100",
    )
    .bind(repository_id)
    .bind(version)
    .bind(relative_path)
    .fetch_all(&mut *reader)
    .await?;
    with_artifacts(&mut reader, rows).await
}

/// Where the page after `rows` starts: after its last unit when the page is full.
fn next_cursor(rows: &[UnitRow], limit: i64) -> Option<String> {
    (rows.len() as i64 == limit)
        .then(|| rows.last().map(|row| row.id.clone()))
        .flatten()
}

/// `rows` with their files, read on `connection`.
async fn with_artifacts(
    connection: &mut sqlx::AnyConnection,
    rows: Vec<UnitRow>,
) -> Result<Vec<StoredUnit>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
    let sql = format!(
        "SELECT ca.content_id, ca.id, ca.relative_path, a.sha256, a.size,
                (SELECT ra.sha256 FROM remote_artifacts ra WHERE ra.content_artifact_id = ca.id LIMIT 1) AS remote_sha256,
                (SELECT ra.size FROM remote_artifacts ra WHERE ra.content_artifact_id = ca.id LIMIT 1) AS remote_size
         FROM content_artifacts ca LEFT JOIN artifacts a ON a.id = ca.artifact_id
         WHERE ca.content_id IN ({}) ORDER BY ca.relative_path",
        crate::db::placeholders(1, ids.len())
    );
    let mut query = sqlx::query_as::<_, FileRow>(&sql);
    for id in ids {
        query = query.bind(id);
    }
    let mut files: BTreeMap<String, Vec<StoredArtifact>> = BTreeMap::new();
    for row in query.fetch_all(connection).await? {
        files
            .entry(row.content_id)
            .or_default()
            .push(StoredArtifact {
                relative_path: row.relative_path,
                content_artifact: row.id,
                sha256: row.sha256.or(row.remote_sha256),
                size: row.size.or(row.remote_size).map(|size| size as u64),
            });
    }
    Ok(rows
        .into_iter()
        .map(|row| StoredUnit {
            content_type: row.type_name,
            natural_key: row.natural_key,
            metadata: row.metadata,
            artifacts: files.remove(&row.id).unwrap_or_default(),
        })
        .collect())
}

/// The files among `content_artifacts` (ids of `stored-artifact.content-artifact`) whose bytes
/// are stored, as (sha256, size); files not downloaded yet are left out.
pub async fn stored_files(
    pool: &sqlx::AnyPool,
    content_artifacts: &[&str],
) -> Result<Vec<(String, u64)>, sqlx::Error> {
    if content_artifacts.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT a.sha256, a.size FROM content_artifacts ca JOIN artifacts a ON a.id = ca.artifact_id
         WHERE ca.id IN ({})",
        crate::db::placeholders(1, content_artifacts.len())
    );
    let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
    for id in content_artifacts {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(sha256, size)| (sha256, size as u64))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("a_b%c\\d/"), "a\\_b\\%c\\\\d/");
        assert_eq!(escape_like("requests/"), "requests/");
    }
}
