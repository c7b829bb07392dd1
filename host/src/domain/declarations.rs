//! Recording declared units: deduplicated against what is stored, with where to fetch each file,
//! and staged for the new repository version of the task.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use sqlx::any::AnyRow;
use sqlx::{FromRow as _, Row as _};

use crate::db::{
    Batch, BindAll as _, Db, Ran, SqlValue, WriteTx, new_id, now, placeholders, value_rows,
};
use crate::domain::artifacts::{DigestKind, Expected};
use crate::domain::{content_keys, versions};
use crate::plugins::UnitDeclaration;

/// Rows per multi-row INSERT.
const INSERT_CHUNK: usize = 100;
/// Most statements of [`INSERT_CHUNK`] rows sent to the database in one trip.
const STATEMENTS_PER_TRIP: usize = 8;

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
    /// The artifact the file already has, when its unit was stored before for a repository or
    /// remote the sync may not reach ([`Reuse::RepositoryOrRemote`]): the sync fetches the file
    /// to show that its upstream serves those very bytes before the unit joins the new version.
    pub linked: Option<String>,
}

/// Records the units and files of a batch (deduplicated against what exists), where to fetch
/// each file, and stages the units for the new version. Returns the files not stored yet and,
/// with [`Reuse::RepositoryOrRemote`], the stored ones that `reuse` does not reach (with
/// [`Pending::linked`] set).
pub async fn save(
    db: &Db,
    task_id: &str,
    plugin: &str,
    remote_id: Option<&str>,
    reuse: Reuse<'_>,
    batch: Vec<UnitDeclaration>,
) -> anyhow::Result<Vec<Pending>> {
    let mut tx = db.begin_write().await?;
    let (pending, _) = save_in(
        &mut tx,
        task_id,
        plugin,
        remote_id,
        reuse,
        ToSave::Declared(batch),
        Batch::new(),
    )
    .await?;
    tx.commit().await?;
    Ok(pending)
}

/// The units of a declaration, later duplicates of a unit dropped, by (content type, natural key).
type Units = BTreeMap<(String, String), UnitDeclaration>;

/// What [`save_in`] stores.
pub enum ToSave {
    /// Declared units, all still to send.
    Declared(Vec<UnitDeclaration>),
    /// Units whose first trip ([`first_trip`]) the caller sent with statements of its own, and
    /// what each statement of that trip did, in order.
    FirstSent(FirstTrip, Vec<Ran>),
}

/// The first trip of [`save_in`], built before its transaction (see [`first_trip`]).
pub struct FirstTrip {
    units: Units,
    created: String,
    fresh_ids: BTreeSet<String>,
}

/// Pushes to `trip` the statements of [`save_in`]'s first trip for `declared` units of `plugin`
/// (the indexed fields read, the first rows inserted and every unit's id looked up), for a caller
/// that sends them with statements of its own in a trip it makes anyway; [`ToSave::FirstSent`]
/// gives [`save_in`] what they did.
pub fn first_trip(trip: &mut Batch, plugin: &str, declared: Vec<UnitDeclaration>) -> FirstTrip {
    let units = deduplicated(declared);
    let created = now();
    let keys: Vec<&(String, String)> = units.keys().take(INSERT_CHUNK).collect();
    let fresh_ids = chunk_statements(trip, plugin, &created, (&units, &keys), true);
    FirstTrip {
        units,
        created,
        fresh_ids,
    }
}

/// `declared` without later duplicates of a unit: they add nothing.
fn deduplicated(declared: Vec<UnitDeclaration>) -> Units {
    let mut units = Units::new();
    for unit in declared {
        units
            .entry((unit.content_type.clone(), unit.natural_key.clone()))
            .or_insert(unit);
    }
    units
}

/// Pushes to `trip` the insert of the units named by `chunk` (with fresh ids) and the lookup of
/// every one's id, after the read of the fields the units are indexed by when `with_fields`;
/// answers the fresh ids. A chunk of no units pushes nothing ([`save_in`] reads nothing for it).
fn chunk_statements(
    trip: &mut Batch,
    plugin: &str,
    created: &str,
    (units, chunk): (&Units, &[&(String, String)]),
    with_fields: bool,
) -> BTreeSet<String> {
    let mut fresh_ids = BTreeSet::new();
    if chunk.is_empty() {
        return fresh_ids;
    }
    let sql = format!(
        "INSERT INTO content (id, plugin, type_name, natural_key, metadata, created) VALUES {}
         ON CONFLICT (plugin, type_name, natural_key) DO NOTHING",
        value_rows("(?, $1, ?, ?, ?, $2)", 3, chunk.len())
    );
    let mut values = vec![plugin.into(), created.into()];
    for key in chunk {
        let id = new_id();
        values.extend([
            id.as_str().into(),
            key.0.as_str().into(),
            key.1.as_str().into(),
            units[*key].metadata.as_str().into(),
        ]);
        fresh_ids.insert(id);
    }
    if with_fields {
        content_keys::read_recorded(trip, plugin);
    }
    trip.push(sql, values);
    lookup_statements(trip, plugin, chunk);
    fresh_ids
}

/// [`save`] inside the caller's transaction `tx`; answers the files still pending and what the
/// statements of `then` did. `then` goes with the trip that stages the units (everything is
/// staged by then): statements that need that, such as a new version's membership
/// ([`versions::start_version_in`]), cost no trip of their own.
pub async fn save_in(
    tx: &mut WriteTx,
    task_id: &str,
    plugin: &str,
    remote_id: Option<&str>,
    reuse: Reuse<'_>,
    to_save: ToSave,
    then: Batch,
) -> anyhow::Result<(Vec<Pending>, Vec<Ran>)> {
    let (units, created, mut first_sent) = match to_save {
        ToSave::Declared(declared) => (deduplicated(declared), now(), None),
        ToSave::FirstSent(first, ran) => (first.units, first.created, Some((first.fresh_ids, ran))),
    };
    let mut content_ids: BTreeMap<(String, String), String> = BTreeMap::new();
    let keys: Vec<&(String, String)> = units.keys().collect();
    // The keys of the units stored now, written with the next trip.
    let mut batch = Batch::new();
    let mut fields: Option<content_keys::Recorded> = None;
    for chunk in keys.chunks(INSERT_CHUNK) {
        // The new rows and the lookup of every unit's id are one trip to the database, with
        // the fields the units are indexed by on the first (sent by the caller, when it did).
        let (fresh_ids, ran) = match first_sent.take() {
            Some(sent) => sent,
            None => {
                let mut trip = Batch::new();
                let with_fields = fields.is_none();
                let fresh_ids =
                    chunk_statements(&mut trip, plugin, &created, (&units, chunk), with_fields);
                (fresh_ids, trip.run_each(tx).await?)
            }
        };
        let mut ran = ran.into_iter();
        let fields = match &mut fields {
            Some(fields) => fields,
            None => fields.insert(content_keys::recorded_from(
                &ran.next().context("the indexed fields were not read")?.rows,
            )?),
        };
        let rows: Vec<AnyRow> = ran.flat_map(|statement| statement.rows).collect();
        let found = looked_up(&rows)?;
        // Units stored before have their keys already.
        let stored_now: Vec<content_keys::Unit<'_>> = found
            .iter()
            .filter(|(_, id)| fresh_ids.contains(*id))
            .map(|(key, id)| content_keys::Unit {
                content_id: id,
                type_name: &key.0,
                natural_key: &key.1,
                metadata: &units[key].metadata,
            })
            .collect();
        content_keys::index_statements(&mut batch, plugin, fields, &stored_now);
        content_ids.extend(found);
        if batch.len() >= STATEMENTS_PER_TRIP {
            std::mem::take(&mut batch).run(tx).await?;
        }
    }
    let ids: Vec<String> = content_ids.values().cloned().collect();
    // Staged, and their files' rows written (and linked to the stored files an upload names),
    // in one trip to the database.
    versions::stage_statements(&mut batch, task_id, &ids);

    // Files: one content_artifact per (unit, relative path), one remote_artifact per remote.
    let mut files = Vec::new();
    for (key, unit) in &units {
        let content_id = &content_ids[key];
        for artifact in &unit.artifacts {
            files.push((content_id.clone(), artifact));
        }
    }
    for chunk in files.chunks(INSERT_CHUNK) {
        // A new file row of a checked upload names its stored artifact as it is written: set
        // afterwards, its index entry would be written twice (under no artifact, then under
        // the artifact), a page more in every upload's commit. Other rows start without one.
        let (linked, row) = match reuse {
            Reuse::Checked => (
                Some(declared_sha256s(chunk)),
                "(?, ?, ?, (SELECT a.id FROM artifacts a WHERE a.sha256 = ?))",
            ),
            _ => (None, "(?, ?, ?, NULL)"),
        };
        let sql = format!(
            "INSERT INTO content_artifacts (id, content_id, relative_path, artifact_id) VALUES {}
             ON CONFLICT (content_id, relative_path) DO NOTHING",
            value_rows(row, 1, chunk.len())
        );
        let mut values = Vec::with_capacity(chunk.len() * 4);
        for (content_id, artifact) in chunk {
            values.extend([
                new_id().into(),
                content_id.as_str().into(),
                artifact.relative_path.as_str().into(),
            ]);
            if let Some(linked) = &linked {
                let key = (content_id.as_str(), artifact.relative_path.as_str());
                values.push(linked.get(&key).copied().into());
            }
        }
        batch.push(sql, values);
        if let Some(linked) = &linked {
            // The rows that were there already (a unit declared again, a file on demand).
            link_by_sha256(&mut batch, linked);
        }
        // A sync's batch may declare many files: the text and values of a trip stay bounded.
        if batch.len() >= STATEMENTS_PER_TRIP {
            std::mem::take(&mut batch).run(tx).await?;
        }
    }
    let chunks: Vec<&[String]> = ids.chunks(INSERT_CHUNK * 4).collect();
    // The first chunk's file rows are read in the trip that wrote them.
    if let Some(first) = chunks.first() {
        files_of(&mut batch, first);
    }
    let then_at = batch.len();
    batch.append(then);
    let mut ran = batch.run_each(tx).await?;
    let then_ran = ran.split_off(then_at.min(ran.len()));
    let mut first_rows = Some(
        ran.into_iter()
            .flat_map(|statement| statement.rows)
            .collect(),
    );
    let mut pending = Vec::new();
    for chunk in chunks {
        let rows = match first_rows.take() {
            Some(rows) => rows,
            None => {
                let mut batch = Batch::new();
                files_of(&mut batch, chunk);
                batch.run(tx).await?
            }
        };
        let rows = rows
            .iter()
            .map(ContentArtifactRow::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let declared: BTreeMap<(&str, &str), &crate::plugins::ArtifactDeclaration> = files
            .iter()
            .map(|(content_id, a)| ((content_id.as_str(), a.relative_path.as_str()), *a))
            .collect();
        let mut remote_rows = Vec::new();
        // Checked before this batch's remote rows exist, which would make every file reachable.
        let reached = reached_artifacts(tx, reuse, &rows).await?;
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
                    declaration.sha512.clone(),
                ));
            }
            let linked = match stored {
                None => None,
                Some(artifact_id) if !reached.contains(&artifact_id) => Some(artifact_id),
                Some(_) => continue,
            };
            pending.push(Pending {
                content_artifact_id: ca_id,
                relative_path: path.clone(),
                url: declaration.url.clone(),
                expected: Expected {
                    size: declaration.size,
                    sha256: declaration.sha256.clone(),
                    sha512: declaration.sha512.clone(),
                },
                linked,
            });
        }
        let Some(remote_id) = remote_id else { continue };
        for rows in remote_rows.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO remote_artifacts (id, content_artifact_id, remote_id, url, size, sha256, sha512) VALUES {}
                 ON CONFLICT (content_artifact_id, remote_id)
                 DO UPDATE SET url = excluded.url, size = excluded.size, sha256 = excluded.sha256,
                    sha512 = excluded.sha512",
                value_rows("(?, ?, $1, ?, ?, ?, ?)", 2, rows.len())
            );
            let mut query = sqlx::query(&sql).bind(remote_id);
            for (ca_id, url, size, sha256, sha512) in rows {
                query = query
                    .bind(new_id())
                    .bind(ca_id)
                    .bind(url)
                    .bind(size.map(|s| s as i64))
                    .bind(sha256.clone())
                    .bind(sha512.clone());
            }
            query.execute(&mut **tx).await?;
        }
    }
    Ok((pending, then_ran))
}

/// The sha256 each file of `files` (unit id, declaration) is declared with, by (unit id,
/// relative path); files declared by their sha512 alone have none. A file declared twice is
/// linked by its last declaration, as `link_stored_in` does (and one row each: PostgreSQL
/// refuses a subquery of two rows as a value).
fn declared_sha256s<'a>(
    files: &'a [(String, &'a crate::plugins::ArtifactDeclaration)],
) -> BTreeMap<(&'a str, &'a str), &'a str> {
    files
        .iter()
        .filter_map(|(content_id, declaration)| {
            let sha256 = declaration.sha256.as_deref()?;
            Some((
                (content_id.as_str(), declaration.relative_path.as_str()),
                sha256,
            ))
        })
        .collect()
}

/// Adds to `batch` the statement that points each file of `declared` ((unit id, relative path)
/// → sha256) that has no artifact yet at the stored artifact of that sha256, if there is one: what
/// [`link_stored_in`] does for such files, in the trip that writes the file rows (a file declared
/// by its sha512 alone is left to it). Only for files whose digests the caller checked
/// ([`Reuse::Checked`]).
fn link_by_sha256(batch: &mut Batch, declared: &BTreeMap<(&str, &str), &str>) {
    if declared.is_empty() {
        return;
    }
    let mut values: Vec<SqlValue> = Vec::with_capacity(declared.len() * 3);
    for (&(content_id, relative_path), &sha256) in declared {
        values.extend([content_id.into(), relative_path.into(), sha256.into()]);
    }
    // Driven by the file rows' unique index, so it costs the files it names. The row's own
    // `artifact_id IS NULL` sits in the subquery: beside the index's terms, SQLite's planner
    // chose the index on `artifact_id` for it and walked every file row without an artifact.
    let linked = "SELECT a.id FROM declared d JOIN artifacts a ON a.sha256 = d.sha256
                  WHERE d.content_id = content_artifacts.content_id
                    AND d.relative_path = content_artifacts.relative_path";
    let sql = format!(
        "WITH declared (content_id, relative_path, sha256) AS (VALUES {})
         UPDATE content_artifacts SET artifact_id = ({linked})
         WHERE (content_id, relative_path) IN (SELECT content_id, relative_path FROM declared)
           AND EXISTS ({linked} AND content_artifacts.artifact_id IS NULL)",
        value_rows("(?, ?, ?)", 1, values.len() / 3)
    );
    batch.push(sql, values);
}

/// The artifacts of `rows` that `reuse` reaches: all of them unless the reuse is limited.
async fn reached_artifacts(
    tx: &mut WriteTx,
    reuse: Reuse<'_>,
    rows: &[ContentArtifactRow],
) -> Result<BTreeSet<String>, sqlx::Error> {
    let linked: Vec<&str> = rows
        .iter()
        .filter_map(|row| row.artifact_id.as_deref())
        .collect();
    if let Reuse::Checked = reuse {
        // Nothing to ask: every stored artifact may be reused.
        return Ok(linked.into_iter().map(str::to_owned).collect());
    }
    let mut reached = BTreeSet::new();
    for chunk in linked.chunks(INSERT_CHUNK * 4) {
        let found = reusable(&mut **tx, reuse, "id", chunk).await?;
        reached.extend(found.into_iter().map(|(id, _)| id));
    }
    Ok(reached)
}

pub(crate) async fn lookup_content(
    tx: &mut WriteTx,
    plugin: &str,
    keys: &[&(String, String)],
) -> Result<BTreeMap<(String, String), String>, sqlx::Error> {
    let mut batch = Batch::new();
    lookup_statements(&mut batch, plugin, keys);
    looked_up(&batch.run(tx).await?)
}

/// The statement reading the file rows of the units `content_ids` ([`ContentArtifactRow`]).
fn files_of(batch: &mut Batch, content_ids: &[String]) {
    let sql = format!(
        "SELECT id, content_id, relative_path, artifact_id FROM content_artifacts WHERE content_id IN ({})",
        placeholders(1, content_ids.len())
    );
    batch.push(sql, content_ids.iter().map(SqlValue::from).collect());
}

/// The statements [`lookup_content`] runs: a row (id, natural key, type) per unit stored.
fn lookup_statements(batch: &mut Batch, plugin: &str, keys: &[&(String, String)]) {
    let mut by_type: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (type_name, key) in keys {
        by_type.entry(type_name).or_default().push(key);
    }
    for (type_name, natural_keys) in by_type {
        let sql = format!(
            "SELECT id, natural_key, type_name FROM content
             WHERE plugin = $1 AND type_name = $2 AND natural_key IN ({})",
            placeholders(3, natural_keys.len())
        );
        let mut values = vec![plugin.into(), type_name.into()];
        values.extend(natural_keys.into_iter().map(SqlValue::from));
        batch.push(sql, values);
    }
}

/// The units' ids by (type, natural key), from the rows of [`lookup_statements`] (and of any
/// statement before them that returns none).
fn looked_up(rows: &[AnyRow]) -> Result<BTreeMap<(String, String), String>, sqlx::Error> {
    let mut found = BTreeMap::new();
    for row in rows {
        let (id, natural_key, type_name): (String, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        found.insert((type_name, natural_key), id);
    }
    Ok(found)
}

/// Which stored artifacts a declared file may be linked to by its sha256 alone.
///
/// Storage is shared by every repository, so a digest is not a capability: a sync whose upstream
/// (or plugin) names the sha256 of another tenant's private file must not get that file without
/// fetching it. Files that may not be linked are downloaded like new ones (and deduplicated
/// after their bytes are verified), or stay on-demand.
#[derive(Clone, Copy, Debug)]
pub enum Reuse<'a> {
    /// Any stored artifact: the caller has already checked each digest (an upload's own file, an
    /// artifact the call created, or one checked with [`REACHABLE`]).
    Checked,
    /// Only the artifacts of the repository's latest version or of files the remote serves.
    RepositoryOrRemote {
        /// The repository the new version is for.
        repository_id: &'a str,
        /// The remote the files come from.
        remote_id: &'a str,
    },
}

/// The condition (on `artifacts a`, with the repository as `$1` and the remote as `$2`) that the
/// stored artifact is a file of the repository's latest version or of a unit the remote serves.
pub const REACHABLE: &str =
    "EXISTS (SELECT 1 FROM content_artifacts ca WHERE ca.artifact_id = a.id AND (
       EXISTS (SELECT 1 FROM repository_content rc JOIN repositories r ON r.id = rc.repository_id
               WHERE rc.content_id = ca.content_id AND rc.repository_id = $1
                 AND rc.version_added <= r.latest_version
                 AND (rc.version_removed IS NULL OR rc.version_removed > r.latest_version))
       OR EXISTS (SELECT 1 FROM remote_artifacts ra
                  WHERE ra.content_artifact_id = ca.id AND ra.remote_id = $2)))";

/// The stored artifacts whose `column` (`sha256`, `sha512` or `id`) is one of `keys` and that `reuse`
/// allows, as (key, artifact id).
async fn reusable<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    reuse: Reuse<'_>,
    column: &str,
    keys: &[&str],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let (condition, first_key) = match reuse {
        Reuse::Checked => (String::new(), 1),
        Reuse::RepositoryOrRemote { .. } => (format!(" AND {REACHABLE}"), 3),
    };
    let sql = format!(
        "SELECT a.{column}, a.id FROM artifacts a WHERE a.{column} IN ({}){condition}",
        placeholders(first_key, keys.len())
    );
    let mut query = sqlx::query_as::<_, (String, String)>(&sql);
    if let Reuse::RepositoryOrRemote {
        repository_id,
        remote_id,
    } = reuse
    {
        query = query.bind(repository_id).bind(remote_id);
    }
    query.bind_all(keys).fetch_all(executor).await
}

/// The ids of the stored artifacts with these sha256s, by sha256 (callers have checked that the
/// bytes are the caller's to link: the plugin stored them in this call).
pub async fn stored_artifacts(
    db: &Db,
    sha256s: &[&str],
) -> Result<BTreeMap<String, String>, sqlx::Error> {
    let mut stored = BTreeMap::new();
    for chunk in sha256s.chunks(INSERT_CHUNK * 4) {
        stored.extend(reusable(db.pool(), Reuse::Checked, "sha256", chunk).await?);
    }
    Ok(stored)
}

/// Links pending files whose bytes are already stored (same sha256, or same sha512 for a file
/// declared by its sha512 alone), as far as `reuse` allows; returns the rest (and the files that
/// are [`Pending::linked`] already).
pub async fn link_stored(
    db: &Db,
    pending: Vec<Pending>,
    reuse: Reuse<'_>,
) -> anyhow::Result<Vec<Pending>> {
    let mut tx = db.begin_write().await?;
    let rest = link_stored_in(&mut tx, pending, reuse).await?;
    tx.commit().await?;
    Ok(rest)
}

/// [`link_stored`] inside the caller's transaction `tx`: one commit for every file it links.
pub async fn link_stored_in(
    tx: &mut WriteTx,
    pending: Vec<Pending>,
    reuse: Reuse<'_>,
) -> anyhow::Result<Vec<Pending>> {
    let mut stored: BTreeMap<(DigestKind, String), String> = BTreeMap::new();
    for kind in DigestKind::ALL {
        let digests: Vec<&str> = pending
            .iter()
            .filter(|file| file.linked.is_none())
            .filter_map(|file| file.expected.known_by())
            .filter(|(known, _)| *known == kind)
            .map(|(_, digest)| digest)
            .collect();
        for chunk in digests.chunks(INSERT_CHUNK * 4) {
            let found = reusable(&mut **tx, reuse, kind.column(), chunk).await?;
            stored.extend(found.into_iter().map(|(digest, id)| ((kind, digest), id)));
        }
    }
    if stored.is_empty() {
        return Ok(pending);
    }
    let mut rest = Vec::new();
    let mut links = Vec::new();
    for file in pending {
        let artifact_id = file
            .expected
            .known_by()
            .filter(|_| file.linked.is_none())
            .and_then(|(kind, digest)| stored.get(&(kind, digest.to_owned())));
        match artifact_id {
            Some(artifact_id) => links.push((file.content_artifact_id, artifact_id.as_str())),
            None => rest.push(file),
        }
    }
    link_all(tx, &links).await?;
    Ok(rest)
}

/// Points a file of a unit at its stored artifact.
pub async fn link(
    db: &Db,
    content_artifact_id: &str,
    artifact_id: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    link_all(&mut tx, &[(content_artifact_id.to_owned(), artifact_id)]).await?;
    tx.commit().await
}

/// Points each file of `links` (content artifact id, artifact id) that has no artifact yet at
/// its artifact: one statement per [`INSERT_CHUNK`] files (an upload's files are one round trip).
async fn link_all(tx: &mut WriteTx, links: &[(String, &str)]) -> Result<(), sqlx::Error> {
    for chunk in links.chunks(INSERT_CHUNK) {
        let cases: Vec<String> = (0..chunk.len())
            .map(|n| format!("WHEN ${} THEN ${}", 2 * n + 1, 2 * n + 2))
            .collect();
        let ids: Vec<String> = (0..chunk.len())
            .map(|n| format!("${}", 2 * n + 1))
            .collect();
        let sql = format!(
            "UPDATE content_artifacts SET artifact_id = CASE id {} END
             WHERE id IN ({}) AND artifact_id IS NULL",
            cases.join(" "),
            ids.join(", ")
        );
        let query = chunk
            .iter()
            .fold(sqlx::query(&sql), |query, (id, artifact_id)| {
                query.bind(id.as_str()).bind(*artifact_id)
            });
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{declared_sha256s, link_by_sha256};
    use crate::db::Batch;
    use crate::plugins::ArtifactDeclaration;

    /// Linking an upload's files to their stored artifacts costs the files it names: the file
    /// rows are found by their unique key. Left to itself, SQLite's planner found them by
    /// `artifact_id IS NULL`, every file without an artifact (an on-demand mirror's files).
    #[tokio::test]
    async fn linking_files_by_digest_finds_them_by_their_unit_and_path() {
        let declared = |path: &str| ArtifactDeclaration {
            relative_path: path.to_owned(),
            url: None,
            size: None,
            sha256: Some("0".repeat(64)),
            sha512: None,
        };
        let (wheel, metadata) = (declared("a.whl"), declared("a.whl.metadata"));
        let files = [("unit".to_owned(), &wheel), ("unit".to_owned(), &metadata)];
        let mut batch = Batch::new();
        link_by_sha256(&mut batch, &declared_sha256s(&files));
        let plans = crate::db::tests::plans_on_a_new_database(batch).await;
        let plan = &plans[0];
        assert!(
            plan.iter()
                .any(|step| step.starts_with("SEARCH content_artifacts ")
                    && step.contains("(content_id=? AND relative_path=?)")),
            "the file rows are found by unit and path: {plan:#?}"
        );
        assert!(
            plan.iter().all(|step| !step.contains("artifact_id=?")
                && !step.starts_with("SCAN content_artifacts")),
            "not by their missing artifact, nor all of them: {plan:#?}"
        );
    }
}
