//! Keeping storage tidy and whole, as Pulp's maintenance tasks do:
//! - [`orphan_cleanup`]: deletes content that no repository version has, and artifacts nothing
//!   uses, when they are older than the protection time;
//! - [`reclaim_space`]: drops the stored bytes of content in some repositories that can be
//!   downloaded again (a remote artifact is known) and that no kept version needs; the content
//!   stays, served on demand afterwards;
//! - [`repair`]: checks that stored artifacts exist (and, asked to, have the right sha256) and
//!   downloads missing or corrupt ones again from a remote that has them;
//! - [`purge_tasks`]: deletes the records of tasks that finished long ago.

use futures::StreamExt as _;
use sha2::{Digest as _, Sha256};

use super::Backends;
use crate::db::{BindAll as _, placeholders, value_rows};
use crate::domain::artifacts::{self, Expected};
use crate::domain::remotes::Remote;
use crate::progress::TaskHandle;

/// Ids deleted per statement.
const BATCH: usize = 200;

/// A stored artifact as repair checks it.
#[derive(Debug, sqlx::FromRow)]
struct ArtifactRow {
    id: String,
    sha256: String,
    size: i64,
}

/// Content in an existing version of some repository. Membership rows can outlive the versions
/// they describe (versions deleted by `retain_repo_versions`), so the version must exist.
const IN_SOME_VERSION: &str =
    "EXISTS (SELECT 1 FROM repository_content rc JOIN repository_versions v
     ON v.repository_id = rc.repository_id AND v.number >= rc.version_added
     AND (rc.version_removed IS NULL OR v.number < rc.version_removed)
     WHERE rc.content_id = c.id)";

/// An artifact `a` that nothing uses: no unit's file, no publication's metadata file, no plugin.
const UNUSED: &str = "NOT EXISTS (SELECT 1 FROM content_artifacts ca WHERE ca.artifact_id = a.id)
    AND NOT EXISTS (SELECT 1 FROM published_files pf WHERE pf.artifact_id = a.id)
    AND NOT EXISTS (SELECT 1 FROM plugins p WHERE p.artifact_id = a.id)";

/// An artifact `a` neither created nor stored again since `$1` (Pulp's orphan protection time).
const UNSEEN_SINCE_1: &str = "a.created < $1 AND (a.last_seen IS NULL OR a.last_seen < $1)";

/// The time `minutes` ago, as stored in the database.
fn minutes_ago(minutes: i64) -> String {
    crate::db::stamp(chrono::Utc::now() - chrono::Duration::minutes(minutes))
}

/// Deletes orphan content created more than `protection_minutes` ago (only among `content_ids`
/// when given), then the artifacts nothing uses any more: with `content_ids`, those of the
/// deleted content; otherwise every unused artifact older than the protection time.
pub async fn orphan_cleanup(
    backends: &Backends,
    task: &TaskHandle,
    protection_minutes: i64,
    content_ids: Option<&[String]>,
) -> anyhow::Result<()> {
    let before = minutes_ago(protection_minutes);
    // Content a running task has staged for its new version is not an orphan: the version
    // is about to have it.
    let orphan = format!(
        "c.created < $1 AND NOT {IN_SOME_VERSION}
         AND NOT EXISTS (SELECT 1 FROM sync_staging s WHERE s.content_id = c.id)
         AND NOT EXISTS (SELECT 1 FROM content_artifacts ca JOIN published_files pf ON pf.content_artifact_id = ca.id
                         WHERE ca.content_id = c.id)"
    );
    let mut orphans: Vec<String> = Vec::new();
    match content_ids {
        None => {
            orphans = sqlx::query_scalar(&format!("SELECT c.id FROM content c WHERE {orphan}"))
                .bind(&before)
                .fetch_all(backends.db.pool())
                .await?;
        }
        Some(ids) => {
            for chunk in ids.chunks(BATCH) {
                let sql = format!(
                    "SELECT c.id FROM content c WHERE {orphan} AND c.id IN ({})",
                    placeholders(2, chunk.len())
                );
                let query = sqlx::query_scalar::<_, String>(&sql)
                    .bind(&before)
                    .bind_all(chunk);
                orphans.extend(query.fetch_all(backends.db.pool()).await?);
            }
        }
    }
    let total = orphans.len() as u64;
    task.report(
        "clean-up.content",
        "Clean up orphan Content",
        0,
        Some(total),
    );
    let mut their_artifacts: Vec<String> = Vec::new();
    let mut done = 0;
    for chunk in orphans.chunks(BATCH) {
        let list = placeholders(2, chunk.len());
        let mut tx = backends.db.begin_write().await?;
        if content_ids.is_some() {
            let sql = format!(
                "SELECT DISTINCT artifact_id FROM content_artifacts WHERE artifact_id IS NOT NULL AND content_id IN ({})",
                placeholders(1, chunk.len())
            );
            let query = sqlx::query_scalar::<_, String>(&sql).bind_all(chunk);
            their_artifacts.extend(query.fetch_all(&mut *tx).await?);
        }
        // Checked again in the same statement: a version made since the list was read keeps
        // its content.
        let remove_membership = format!(
            "DELETE FROM repository_content WHERE content_id IN (SELECT c.id FROM content c WHERE {orphan} AND c.id IN ({list}))"
        );
        let remove_content = format!(
            "DELETE FROM content WHERE id IN (SELECT c.id FROM content c WHERE {orphan} AND c.id IN ({list}))"
        );
        for sql in [remove_membership, remove_content] {
            sqlx::query(&sql)
                .bind(&before)
                .bind_all(chunk)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        done += chunk.len() as u64;
        task.report(
            "clean-up.content",
            "Clean up orphan Content",
            done,
            Some(total),
        );
    }
    let candidates: Vec<String> = match content_ids {
        Some(_) => their_artifacts,
        None => {
            sqlx::query_scalar(&format!(
                "SELECT a.id FROM artifacts a WHERE {UNSEEN_SINCE_1} AND {UNUSED}"
            ))
            .bind(&before)
            .fetch_all(backends.db.pool())
            .await?
        }
    };
    let total = candidates.len() as u64;
    task.report("clean-up.artifacts", "Clean up orphan Artifacts", 0, None);
    let deleted = delete_unused_artifacts(backends, &candidates, Some(&before)).await?;
    tracing::info!(
        content = orphans.len(),
        artifacts = deleted,
        checked = total,
        "orphan cleanup"
    );
    task.report(
        "clean-up.artifacts",
        "Clean up orphan Artifacts",
        deleted,
        Some(deleted),
    );
    if content_ids.is_none() {
        let strays = delete_unrecorded_blobs(backends, &before).await?;
        tracing::info!(
            blobs = strays,
            "orphan cleanup: stored bytes no artifact records"
        );
    }
    Ok(())
}

/// Deletes stored blobs that no artifact row records and that were written before `before`:
/// bytes a process stored and was killed before recording. Younger ones may be an upload about
/// to record its artifact. Returns how many were deleted.
async fn delete_unrecorded_blobs(backends: &Backends, before: &str) -> anyhow::Result<u64> {
    let before = chrono::DateTime::parse_from_rfc3339(before)?;
    let stored: Vec<String> = backends
        .blobs
        .stored()
        .await?
        .into_iter()
        .filter(|(_, written)| *written < before)
        .map(|(sha256, _)| sha256)
        .collect();
    let mut deleted = 0;
    for chunk in stored.chunks(BATCH) {
        let sql = format!(
            "SELECT sha256 FROM artifacts WHERE sha256 IN ({})",
            placeholders(1, chunk.len())
        );
        let recorded: std::collections::HashSet<String> = sqlx::query_scalar(&sql)
            .bind_all(chunk)
            .fetch_all(backends.db.pool())
            .await?
            .into_iter()
            .collect();
        for sha256 in chunk.iter().filter(|sha256| !recorded.contains(*sha256)) {
            backends.blobs.delete(sha256).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Deletes those of `ids` that nothing uses (no unit's file, no publication, no plugin) and,
/// with `seen_before`, that were neither created nor stored again since then; and their stored
/// bytes. Returns how many were deleted.
async fn delete_unused_artifacts(
    backends: &Backends,
    ids: &[String],
    seen_before: Option<&str>,
) -> anyhow::Result<u64> {
    // Checked again in the deleting statement: an upload may store the artifact again after the
    // candidates were listed, and the content that will use it is not recorded yet.
    let (unused, first) = match seen_before {
        Some(_) => (format!("{UNSEEN_SINCE_1} AND {UNUSED}"), 2),
        None => (UNUSED.to_owned(), 1),
    };
    let mut deleted = 0;
    for chunk in ids.chunks(BATCH) {
        let list = placeholders(first, chunk.len());
        let mut tx = backends.db.begin_write().await?;
        let select =
            format!("SELECT a.sha256 FROM artifacts a WHERE a.id IN ({list}) AND {unused}");
        let digests = sqlx::query_scalar::<_, String>(&select);
        let digests = match seen_before {
            Some(before) => digests.bind(before),
            None => digests,
        };
        let digests = digests.bind_all(chunk).fetch_all(&mut *tx).await?;
        let delete = format!(
            "DELETE FROM artifacts WHERE id IN (SELECT a.id FROM artifacts a WHERE a.id IN ({list}) AND {unused})"
        );
        let delete = sqlx::query(&delete);
        let delete = match seen_before {
            Some(before) => delete.bind(before),
            None => delete,
        };
        delete.bind_all(chunk).execute(&mut *tx).await?;
        tx.commit().await?;
        for sha256 in digests {
            // Bytes stored again meanwhile (a new artifact with the same digest) stay.
            let again = sqlx::query("SELECT 1 FROM artifacts WHERE sha256 = $1")
                .bind(&sha256)
                .fetch_optional(backends.db.pool())
                .await?;
            if again.is_none() {
                backends.blobs.delete(&sha256).await?;
            }
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Drops the stored bytes of the files of content in `repository_ids` (any of their versions)
/// that no other repository has, that no version in `keep` (`(repository id, number)`) has, and
/// that a remote can serve again. The files go back to "not downloaded yet": the content app
/// fetches them from the remote when asked.
pub async fn reclaim_space(
    backends: &Backends,
    task: &TaskHandle,
    repository_ids: &[String],
    keep: &[(String, i64)],
) -> anyhow::Result<()> {
    task.report("reclaim-space.artifact", "Reclaim disk space", 0, None);
    if repository_ids.is_empty() {
        return Ok(());
    }
    let repos = placeholders(1, repository_ids.len());
    let mut next = repository_ids.len() + 1;
    let mut kept = String::new();
    for _ in keep {
        kept.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM repository_content rk WHERE rk.content_id = ca.content_id
               AND rk.repository_id = ${} AND rk.version_added <= ${}
               AND (rk.version_removed IS NULL OR rk.version_removed > ${}))",
            next,
            next + 1,
            next + 1
        ));
        next += 2;
    }
    let select = format!(
        "SELECT ca.id, ca.artifact_id FROM content_artifacts ca
         WHERE ca.artifact_id IS NOT NULL
         AND EXISTS (SELECT 1 FROM repository_content rc WHERE rc.content_id = ca.content_id AND rc.repository_id IN ({repos}))
         AND NOT EXISTS (SELECT 1 FROM repository_content ro WHERE ro.content_id = ca.content_id AND ro.repository_id NOT IN ({repos}))
         AND EXISTS (SELECT 1 FROM remote_artifacts ra WHERE ra.content_artifact_id = ca.id){kept}"
    );
    let mut query = sqlx::query_as::<_, (String, String)>(&select).bind_all(repository_ids);
    for (repository_id, number) in keep {
        query = query.bind(repository_id).bind(*number);
    }
    let files: Vec<(String, String)> = query.fetch_all(backends.db.pool()).await?;
    let mut artifact_ids: Vec<String> = Vec::new();
    for chunk in files.chunks(BATCH) {
        let sql = format!(
            "UPDATE content_artifacts SET artifact_id = NULL WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let query = sqlx::query(&sql).bind_all(chunk.iter().map(|(id, _)| id));
        backends.db.write_one(query).await?;
        artifact_ids.extend(chunk.iter().map(|(_, artifact)| artifact.clone()));
    }
    artifact_ids.sort();
    artifact_ids.dedup();
    let deleted = delete_unused_artifacts(backends, &artifact_ids, None).await?;
    task.report(
        "reclaim-space.artifact",
        "Reclaim disk space",
        deleted,
        Some(deleted),
    );
    Ok(())
}

/// Which artifacts a repair looks at.
pub enum RepairScope {
    /// Every artifact.
    All,
    /// The files of the content in one repository version.
    Version {
        /// Repository id.
        repository_id: String,
        /// Version number.
        number: i64,
    },
}

/// Checks the artifacts in `scope` (existence; the sha256 too with `verify_checksums`) and
/// downloads missing or corrupt ones again from a remote that knows them. Counts go to the
/// progress reports `repair.missing`, `repair.corrupted`, `repair.repaired` and
/// `repair.unrepairable`.
pub async fn repair(
    backends: &Backends,
    task: &TaskHandle,
    scope: RepairScope,
    verify_checksums: bool,
) -> anyhow::Result<()> {
    let mut missing = 0u64;
    let mut corrupted = 0u64;
    let mut repaired = 0u64;
    let mut unrepairable = 0u64;
    let report = |missing, corrupted, repaired, unrepairable| {
        task.report("repair.missing", "Identify missing units", missing, None);
        task.report(
            "repair.corrupted",
            "Identify corrupted units",
            corrupted,
            None,
        );
        task.report("repair.repaired", "Repair corrupted units", repaired, None);
        task.report(
            "repair.unrepairable",
            "Units that could not be repaired",
            unrepairable,
            None,
        );
    };
    report(0, 0, 0, 0);
    // Paged by id so a large store is checked in constant memory.
    let mut after = String::new();
    loop {
        let rows =
            match &scope {
                RepairScope::All => sqlx::query_as::<_, ArtifactRow>(
                    "SELECT id, sha256, size FROM artifacts WHERE id > $1 ORDER BY id LIMIT 500",
                )
                .bind(&after)
                .fetch_all(backends.db.pool())
                .await?,
                RepairScope::Version {
                    repository_id,
                    number,
                } => {
                    sqlx::query_as::<_, ArtifactRow>(&format!(
                        "SELECT DISTINCT a.id, a.sha256, a.size FROM repository_content rc
                     JOIN content_artifacts ca ON ca.content_id = rc.content_id
                     JOIN artifacts a ON a.id = ca.artifact_id
                     WHERE {} AND a.id > $3 ORDER BY a.id LIMIT 500",
                        crate::db::IN_VERSION
                    ))
                    .bind(repository_id)
                    .bind(*number)
                    .bind(&after)
                    .fetch_all(backends.db.pool())
                    .await?
                }
            };
        let Some(last) = rows.last() else { break };
        after = last.id.clone();
        for ArtifactRow { id, sha256, size } in rows {
            let state = if !backends.blobs.exists(&sha256).await {
                missing += 1;
                Damage::Missing
            } else if verify_checksums && !intact(backends, &sha256, size as u64).await {
                corrupted += 1;
                Damage::Corrupt
            } else {
                continue;
            };
            match redownload(backends, &id, &sha256, size as u64, state).await {
                Ok(true) => repaired += 1,
                Ok(false) => unrepairable += 1,
                Err(error) => {
                    tracing::warn!(artifact = %id, error = %format!("{error:#}"), "repair failed");
                    unrepairable += 1;
                }
            }
            report(missing, corrupted, repaired, unrepairable);
        }
    }
    report(missing, corrupted, repaired, unrepairable);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Damage {
    Missing,
    Corrupt,
}

/// Whether the stored bytes have this size and sha256.
async fn intact(backends: &Backends, sha256: &str, size: u64) -> bool {
    let Ok(mut stream) = backends.blobs.read(sha256, None).await else {
        return false;
    };
    let mut hasher = Sha256::new();
    let mut read = 0u64;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { return false };
        read += chunk.len() as u64;
        hasher.update(&chunk);
    }
    read == size && hex::encode(hasher.finalize()) == sha256
}

/// Downloads an artifact again from the first remote that knows a file stored as it. Returns
/// whether it is whole again (`false`: no remote knows it).
async fn redownload(
    backends: &Backends,
    artifact_id: &str,
    sha256: &str,
    size: u64,
    damage: Damage,
) -> anyhow::Result<bool> {
    let sources = sqlx::query_as::<_, (String, String, String)>(
        "SELECT ra.url, ra.remote_id, ca.relative_path FROM remote_artifacts ra
         JOIN content_artifacts ca ON ca.id = ra.content_artifact_id
         WHERE ca.artifact_id = $1",
    )
    .bind(artifact_id)
    .fetch_all(backends.db.pool())
    .await?;
    if sources.is_empty() {
        return Ok(false);
    }
    if damage == Damage::Corrupt {
        // Storing is idempotent by digest: the corrupt copy must go before a good one can land.
        backends.blobs.delete(sha256).await?;
    }
    let expected = Expected {
        size: Some(size),
        sha256: Some(sha256.to_owned()),
        sha512: None,
    };
    let mut last_error = None;
    for (url, remote_id, path) in sources {
        let remote = Remote::load(backends.db.pool(), &backends.secrets, &remote_id).await?;
        let client = backends.remote_clients.client(&remote)?;
        match artifacts::download(
            &backends.db,
            &backends.blobs,
            &client,
            &url,
            &expected,
            &path,
        )
        .await
        {
            Ok(_) => return Ok(true),
            Err(error) => last_error = Some(error),
        }
    }
    match last_error {
        Some(error) => Err(anyhow::anyhow!("{error}")),
        None => Ok(false),
    }
}

/// The states of a task that has ended, which a purge may delete (Pulp's `TASK_FINAL_STATES`).
pub const FINAL_STATES: [&str; 4] = ["skipped", "completed", "failed", "canceled"];

/// Who asked for a purge: only the tasks they may delete (`core.delete_task`) go.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Purger {
    /// `users.id`.
    pub user_id: String,
    /// Staff may delete every task.
    pub is_staff: bool,
}

/// Deletes the tasks in `states` (final states only) that finished before `finished_before`
/// and that `purger` may delete, with their resources and the roles held on them, a batch per
/// commit so other writers get turns; reports the count as Pulp does (`purge.tasks.total`,
/// `purge.tasks.key.core.Task`).
pub async fn purge_tasks(
    backends: &Backends,
    task: &TaskHandle,
    finished_before: &str,
    states: &[String],
    purger: &Purger,
) -> anyhow::Result<()> {
    let states: Vec<&String> = states
        .iter()
        .filter(|state| FINAL_STATES.contains(&state.as_str()))
        .collect();
    let mut permissions =
        crate::rbac::Permissions::of(backends.db.clone(), &purger.user_id, purger.is_staff);
    let deletable = permissions.visible("core.delete_task", "t.id").await?;
    let mut sql = format!(
        "SELECT t.id FROM tasks t WHERE t.finished < $1 AND t.state IN ({})",
        placeholders(2, states.len())
    );
    let mut binds: Vec<String> = Vec::new();
    if let Some((condition, values)) = deletable {
        sql.push_str(" AND ");
        sql.push_str(&value_rows(&condition, states.len() + 2, 1));
        binds = values;
    }
    sql.push_str(&format!(" LIMIT {BATCH}"));
    let (total, tasks) = (
        ("purge.tasks.total", "Purged task-related-objects total"),
        (
            "purge.tasks.key.core.Task",
            "Purged task-objects of type core.Task",
        ),
    );
    task.report(total.0, total.1, 0, None);
    task.report(tasks.0, tasks.1, 0, None);
    loop {
        let ids: Vec<String> = sqlx::query_scalar(&sql)
            .bind(finished_before)
            .bind_all(&states)
            .bind_all(&binds)
            .fetch_all(backends.db.pool())
            .await?;
        if ids.is_empty() {
            return Ok(());
        }
        let list = placeholders(1, ids.len());
        let mut tx = backends.db.begin_write().await?;
        let mut removed = 0;
        for statement in [
            format!("DELETE FROM task_resources WHERE task_id IN ({list})"),
            format!("DELETE FROM role_assignments WHERE object_id IN ({list})"),
        ] {
            removed += sqlx::query(&statement)
                .bind_all(&ids)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        let deleted = sqlx::query(&format!("DELETE FROM tasks WHERE id IN ({list})"))
            .bind_all(&ids)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        task.advance(tasks.0, tasks.1, deleted);
        task.advance(total.0, total.1, deleted + removed);
    }
}

#[cfg(test)]
mod tests {
    use super::{UNSEEN_SINCE_1, UNUSED};
    use crate::db::Batch;
    use crate::db::tests::plans_on_a_new_database;

    /// An orphan clean-up asks of every old artifact whether something uses it: each question
    /// finds the files and published files naming the artifact by index, so the clean-up costs
    /// what it looks at, not that times every published file. Only the plugins' table (one row
    /// per installed plugin) is walked.
    #[tokio::test]
    async fn whether_an_artifact_is_used_is_found_by_index() {
        let mut unused = Batch::new();
        unused.push(
            format!("SELECT a.id FROM artifacts a WHERE {UNSEEN_SINCE_1} AND {UNUSED}"),
            vec!["2026-12-07T00:00:00.000000Z".into()],
        );
        let plans = plans_on_a_new_database(unused).await;
        let plan = &plans[0];
        for table in ["ca", "pf"] {
            assert!(
                plan.iter()
                    .any(|step| step.starts_with(&format!("SEARCH {table} USING"))),
                "{table} is searched by index: {plan:#?}"
            );
        }
        assert!(
            plan.iter()
                .filter(|step| step.starts_with("SCAN"))
                .all(|step| step == "SCAN a" || step == "SCAN p"),
            "only the candidates and the plugins are walked: {plan:#?}"
        );
    }
}
