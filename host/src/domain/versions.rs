//! Repository versions: membership of content, and creating a new version atomically.
//!
//! Membership is stored as ranges (`repository_content`): a unit is in version `n` when
//! `version_added <= n` and it was not removed at or before `n`. A new version is built by
//! staging the content ids it should add (and, for a mirror, every id it should keep) and letting
//! SQL compute the difference, so memory does not grow with the repository.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::Serialize;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::hrefs::{self, RestNames};
use crate::db::{
    Batch, BindAll as _, Db, IN_VERSION, Ran, SqlValue, WriteTx, new_id, now, placeholders,
    value_rows,
};

/// How the staged content changes the latest version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Add the staged content; keep everything else.
    Add,
    /// The new version is exactly the staged content (a mirror sync).
    Mirror,
}

/// What a new version needs to know of its repository, read in one round trip: by
/// [`start_version_in`], or before by its caller with statements of its own ([`read_facts`]).
#[derive(Debug, sqlx::FromRow)]
pub struct RepositoryFacts {
    latest_version: i64,
    next_version: Option<i64>,
    plugin: String,
    type_name: String,
    retain_repo_versions: Option<i64>,
    /// 1 when the repository has blocklist entries to check a new version against.
    blocklisted: i64,
    /// 1 when a content type of the plugin has a repository key (see
    /// [`replace_by_repository_key`]).
    keyed: i64,
}

/// A new version begun by [`start_version_in`], for [`finish_version_in`].
#[derive(Debug)]
pub struct VersionStart {
    facts: RepositoryFacts,
    number: i64,
    change: Change,
    /// Rows the removals ended.
    removed_rows: u64,
}

/// The outcome of [`finish_version`].
#[derive(Debug)]
pub struct NewVersion {
    /// The version number, when one was created (nothing changed: none).
    pub number: Option<i64>,
    /// The version's href, when one was created.
    pub href: Option<String>,
}

/// Latest version number of a repository.
pub async fn latest_version(
    conn: &mut sqlx::AnyConnection,
    repository_id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT latest_version FROM repositories WHERE id = $1")
        .bind(repository_id)
        .fetch_one(conn)
        .await
}

/// Stages content ids for the task's new version (idempotent).
pub async fn stage(
    tx: &mut WriteTx,
    task_id: &str,
    content_ids: &[String],
) -> Result<(), sqlx::Error> {
    let mut batch = Batch::new();
    stage_statements(&mut batch, task_id, content_ids);
    batch.run(tx).await?;
    Ok(())
}

/// The statements [`stage`] runs, for a batch of the caller's.
pub fn stage_statements(batch: &mut Batch, task_id: &str, content_ids: &[String]) {
    for chunk in content_ids.chunks(200) {
        let sql = format!(
            "INSERT INTO sync_staging (task_id, content_id) VALUES {} ON CONFLICT DO NOTHING",
            value_rows("($1, ?)", 2, chunk.len())
        );
        let mut values = vec![task_id.into()];
        values.extend(chunk.iter().map(SqlValue::from));
        batch.push(sql, values);
    }
}

/// Removes what a task staged.
pub async fn clear_staging(db: &Db, task_id: &str) -> Result<(), sqlx::Error> {
    db.write_one(sqlx::query("DELETE FROM sync_staging WHERE task_id = $1").bind(task_id))
        .await?;
    Ok(())
}

/// Builds the next version of a repository from the staged content and `removals`, in one
/// transaction. When nothing changes, no version is created.
pub async fn finish_version(
    db: &Db,
    names: &RestNames,
    repository_id: &str,
    task_id: &str,
    change: Change,
    removals: &[String],
) -> anyhow::Result<NewVersion> {
    let mut tx = db.begin_write().await?;
    let mut membership = Batch::new();
    let target = (repository_id, None);
    let start =
        start_version_in(&mut tx, target, task_id, change, removals, &mut membership).await?;
    let ran = membership.run_each(&mut tx).await?;
    let mut last = Batch::new();
    let outcome = finish_version_in(&mut tx, names, repository_id, (start, ran), &mut last).await?;
    tx.commit_with(last).await?;
    Ok(outcome)
}

/// The statement that reads the [`RepositoryFacts`] of `repository_id`.
const FACTS: &str = "SELECT latest_version, next_version, plugin, type_name, retain_repo_versions,
       CASE WHEN EXISTS (SELECT 1 FROM blocklist_entries b WHERE b.repository_id = r.id)
            THEN 1 ELSE 0 END AS blocklisted,
       CASE WHEN EXISTS (SELECT 1 FROM content_key_fields f
                         WHERE f.plugin = r.plugin AND f.repository_key = 1)
            THEN 1 ELSE 0 END AS keyed
     FROM repositories r WHERE id = $1";

/// Pushes to `batch` the read of the facts of `repository_id` that [`start_version_in`] needs,
/// for a caller that sends it in a trip it makes anyway, inside the transaction that makes the
/// version (so no other writer changes them in between); [`RepositoryFacts::read_in`] takes
/// them from what the statement answered.
pub fn read_facts(batch: &mut Batch, repository_id: &str) {
    batch.push(FACTS, vec![repository_id.into()]);
}

impl RepositoryFacts {
    /// The facts from the rows of [`read_facts`]'s statement.
    pub fn read_in(rows: &[AnyRow]) -> anyhow::Result<Self> {
        let row = rows
            .first()
            // Deleted after the caller named it (a request read it with its distribution).
            .context("the repository is gone")?;
        Ok(<Self as sqlx::FromRow<'_, AnyRow>>::from_row(row)?)
    }
}

/// [`finish_version`] begun inside the caller's transaction `tx`, for work that commits the
/// version together with what it recorded before (an upload: one commit, one disk flush): ends
/// the rows of `removals` at the new version, then adds to `batch` the statements that make what
/// `task_id` staged the new version's (and read what [`finish_version_in`] needs). The caller
/// runs `batch` once everything is staged, in a trip of its own or with its last staging
/// statements, and hands its results to [`finish_version_in`]. `facts` are the repository's when
/// the caller read them in `tx` already ([`read_facts`]).
pub async fn start_version_in(
    tx: &mut WriteTx,
    (repository_id, facts): (&str, Option<RepositoryFacts>),
    task_id: &str,
    change: Change,
    removals: &[String],
    batch: &mut Batch,
) -> anyhow::Result<VersionStart> {
    let facts = match facts {
        Some(facts) => facts,
        None => {
            let mut read = Batch::new();
            read_facts(&mut read, repository_id);
            RepositoryFacts::read_in(&read.run(tx).await?)?
        }
    };
    let base = facts.latest_version;
    // After the latest version was deleted, its number is not given again.
    let number = facts.next_version.unwrap_or(base + 1);
    // Units named for removal leave first, in trips of their own (a list may be long). The rows
    // they end (at this version) still count as in the base version for the insert below, so a
    // unit both named and staged leaves, as it did when the removals came after the insert.
    let mut removed_rows = 0;
    for chunk in removals.chunks(200) {
        let sql = format!(
            "UPDATE repository_content SET version_removed = $2
             WHERE repository_id = $1 AND version_removed IS NULL AND version_added < $2 AND content_id IN ({})",
            placeholders(3, chunk.len())
        );
        let query = sqlx::query(&sql)
            .bind(repository_id)
            .bind(number)
            .bind_all(chunk);
        removed_rows += query.execute(&mut **tx).await?.rows_affected();
    }
    // The rest is one trip: what was staged joins the version (when mirroring, what was not
    // staged leaves it), units replaced by repository key leave, the duplicates left are read,
    // what was added is counted, the staging is cleared and the base version read. A version
    // that adds nothing finds nothing to replace, count or check in those statements.
    let version_values = || -> Vec<SqlValue> {
        vec![
            repository_id.into(),
            base.into(),
            number.into(),
            task_id.into(),
        ]
    };
    batch.push(
        format!(
            "INSERT INTO repository_content (repository_id, content_id, version_added, version_removed)
             SELECT $1, s.content_id, $3, NULL FROM sync_staging s
             WHERE s.task_id = $4 AND NOT EXISTS (
                 SELECT 1 FROM repository_content rc WHERE {IN_VERSION} AND rc.content_id = s.content_id)"
        ),
        version_values(),
    );
    if change == Change::Mirror {
        batch.push(
            "UPDATE repository_content SET version_removed = $3
             WHERE repository_id = $1 AND version_removed IS NULL AND version_added <= $2
               AND content_id NOT IN (SELECT content_id FROM sync_staging WHERE task_id = $4)",
            version_values(),
        );
    }
    if facts.keyed != 0 {
        replace_by_repository_key(batch, (repository_id, base, number), task_id);
    }
    batch
        .push(
            "SELECT c.plugin, c.type_name, COUNT(*) FROM sync_staging s
             JOIN content c ON c.id = s.content_id
             WHERE s.task_id = $4 AND EXISTS (SELECT 1 FROM repository_content rc
                 WHERE rc.repository_id = $1 AND rc.content_id = s.content_id AND rc.version_added = $3)
             GROUP BY c.plugin, c.type_name",
            version_values(),
        )
        .push(
            "DELETE FROM sync_staging WHERE task_id = $1",
            vec![task_id.into()],
        )
        .push(
            "SELECT id, content_summary FROM repository_versions WHERE repository_id = $1 AND number = $2",
            vec![repository_id.into(), base.into()],
        );
    Ok(VersionStart {
        facts,
        number,
        change,
        removed_rows,
    })
}

/// The new version of what [`start_version_in`] began in `tx`, from what its statements
/// answered (`ran`, in order: the caller may have sent them with statements of its own).
///
/// The new version's row and the repository's move to it are the last statements of the work:
/// they go to `last`, for the caller to run with its commit ([`WriteTx::commit_with`], one trip
/// fewer), unless the repository keeps a limited number of versions, whose pruning reads them.
pub async fn finish_version_in(
    tx: &mut WriteTx,
    names: &RestNames,
    repository_id: &str,
    (start, ran): (VersionStart, Vec<Ran>),
    last: &mut Batch,
) -> anyhow::Result<NewVersion> {
    let VersionStart {
        facts,
        number,
        change,
        mut removed_rows,
    } = start;
    let RepositoryFacts {
        plugin,
        type_name,
        retain_repo_versions: retain,
        blocklisted,
        keyed,
        ..
    } = facts;
    let repo_href = hrefs::repository(names, &plugin, &type_name, repository_id);
    let mut ran = ran.into_iter();
    let mut statement = || {
        ran.next()
            .context("a statement of the new version's batch gave no result")
    };
    let added_rows = statement()?.rows_affected;
    if change == Change::Mirror {
        removed_rows += statement()?.rows_affected;
    }
    let duplicates = if keyed != 0 {
        removed_rows += statement()?.rows_affected;
        statement()?.rows
    } else {
        Vec::new()
    };
    let added = per_type(
        statement()?
            .rows
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()?,
    );
    statement()?;
    let base_row = match statement()?.rows.first() {
        Some(row) => Some((
            row.try_get::<String, _>(0)?,
            row.try_get::<Option<String>, _>(1)?,
        )),
        None => None,
    };
    if added_rows + removed_rows == 0 {
        return Ok(NewVersion {
            number: None,
            href: None,
        });
    }
    refuse_duplicates(&plugin, &duplicates)?;
    if blocklisted != 0 {
        super::blocklists::check_version(tx, &plugin, (repository_id, number)).await?;
    }
    let (base_id, base_summary) = base_row.unzip();
    let present_before = base_summary
        .flatten()
        .as_deref()
        .and_then(present_in_summary);
    let summary = content_summary(
        tx,
        names,
        (repository_id, &repo_href, number),
        (Some(added), (removed_rows == 0).then(Counts::new)),
        present_before,
    )
    .await?;
    let mut version_rows = Batch::new();
    version_rows
        .push(
            "INSERT INTO repository_versions (id, repository_id, number, base_version_id, content_summary, created)
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                new_id().into(),
                repository_id.into(),
                number.into(),
                base_id.into(),
                summary.into(),
                now().into(),
            ],
        )
        .push(
            "UPDATE repositories SET latest_version = $2, next_version = NULL, updated = $3 WHERE id = $1",
            vec![repository_id.into(), number.into(), now().into()],
        );
    match retain.filter(|retain| *retain > 0) {
        Some(retain) => {
            version_rows.run(tx).await?;
            prune(tx, names, repository_id, retain).await?;
        }
        None => {
            last.append(version_rows);
        }
    }
    Ok(NewVersion {
        number: Some(number),
        href: Some(hrefs::version(
            names,
            &plugin,
            &type_name,
            repository_id,
            number,
        )),
    })
}

/// A new version holds two units of a type with the same repository key (Pulp's
/// `DuplicateContentInRepositoryError`); the version is not made.
#[derive(Debug, thiserror::Error)]
#[error(
    "[PLP0022] Found {count} duplicate contents in repository version: {examples}. A version may hold one unit per {field} value; add one of them."
)]
pub struct DuplicateContent {
    /// How many units too many.
    pub count: i64,
    /// The field that must be unique.
    pub field: String,
    /// Up to five duplicated values, with how many units share each.
    pub examples: String,
}

/// Pulp's `remove_duplicates` and `validate_duplicate_content`, for content types with a
/// `repository-key`: every unit of version `number` (being made from `base`) that has the key
/// value of a unit the version adds, and is not one of the added, leaves the version (the first
/// statement, whose count is the units that left); then the units sharing a key value are read
/// (the second), for [`refuse_duplicates`]. Both cost what the version adds: they start from
/// what `task_id` staged. Used only when one of the plugin's types has a repository key.
fn replace_by_repository_key(
    batch: &mut Batch,
    (repository_id, base, number): (&str, i64, i64),
    task_id: &str,
) {
    // The keys of the units this version adds (`number` bound at `$n`, the task at `$t`), under
    // their type's repository key. Driven by what the task staged (every addition is staged),
    // so it costs what the version adds, not what the repository holds.
    let added_keys = |n: u8, t: u8| {
        format!(
            "(SELECT k.plugin, k.type_name, k.field, k.value, k.content_id FROM sync_staging s
              CROSS JOIN repository_content added
              JOIN content_keys k ON k.content_id = s.content_id
              JOIN content_key_fields f ON f.plugin = k.plugin AND f.type_name = k.type_name
                   AND f.field = k.field AND f.repository_key = 1
              WHERE s.task_id = ${t} AND added.content_id = s.content_id
                AND added.repository_id = $1 AND added.version_added = ${n}) n"
        )
    };
    // The older units are found by value, which the keys' primary key serves.
    batch.push(
        format!(
            "UPDATE repository_content SET version_removed = $3
             WHERE repository_id = $1 AND version_removed IS NULL AND version_added <= $2
               AND content_id IN (
                   SELECT o.content_id FROM {}
                   JOIN content_keys o ON o.plugin = n.plugin AND o.type_name = n.type_name
                        AND o.field = n.field AND o.value = n.value AND o.content_id <> n.content_id
               )",
            added_keys(3, 4)
        ),
        vec![
            repository_id.into(),
            base.into(),
            number.into(),
            task_id.into(),
        ],
    );
    // The new version is the latest: its units are the rows not removed. `CROSS JOIN` keeps
    // SQLite's join order (added keys → units with the value → their rows here): left to its
    // planner, it walked every current row of the repository for each added key, quadratic
    // (a 100,000-unit sync spent over ten minutes here). PostgreSQL plans it as a plain join.
    batch.push(
        format!(
            "SELECT n.type_name, n.field, n.value, COUNT(DISTINCT m.content_id) FROM {}
             CROSS JOIN content_keys m CROSS JOIN repository_content rc
             WHERE m.plugin = n.plugin AND m.type_name = n.type_name
               AND m.field = n.field AND m.value = n.value
               AND rc.content_id = m.content_id AND rc.repository_id = $1
               AND rc.version_removed IS NULL
             GROUP BY n.type_name, n.field, n.value HAVING COUNT(DISTINCT m.content_id) > 1
             ORDER BY n.value",
            added_keys(2, 3)
        ),
        vec![repository_id.into(), number.into(), task_id.into()],
    );
}

/// A version may not hold two units with one repository key value: `duplicates` are the rows
/// (type, field, value, units) of [`replace_by_repository_key`]'s second statement.
fn refuse_duplicates(plugin: &str, duplicates: &[AnyRow]) -> anyhow::Result<()> {
    let duplicates = duplicates
        .iter()
        .map(|row| {
            Ok((
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            ))
        })
        .collect::<Result<Vec<(String, String, String, i64)>, sqlx::Error>>()?;
    let Some((_, field, _, _)) = duplicates.first() else {
        return Ok(());
    };
    let examples: Vec<String> = duplicates
        .iter()
        .take(5)
        .map(|(type_name, field, value, units)| {
            format!("{units} {plugin}.{type_name} units have {field} {value:?}")
        })
        .collect();
    Err(DuplicateContent {
        count: duplicates.iter().map(|(_, _, _, units)| units - 1).sum(),
        field: field.clone(),
        examples: examples.join("; "),
    }
    .into())
}

/// Enforces `retain_repo_versions` (`retain`, a positive number): deletes the oldest versions
/// beyond the number to keep, squashing each into its successor so the kept versions' content
/// does not change.
async fn prune(
    tx: &mut WriteTx,
    names: &RestNames,
    repository_id: &str,
    retain: i64,
) -> Result<(), sqlx::Error> {
    // As in Pulp, versions a distribution serves (directly or through a publication) are
    // neither counted nor deleted.
    let protected = protected_versions(tx, repository_id).await?;
    let numbers: Vec<i64> = sqlx::query_scalar(
        "SELECT number FROM repository_versions WHERE repository_id = $1 ORDER BY number DESC",
    )
    .bind(repository_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut old: Vec<i64> = numbers
        .into_iter()
        .filter(|number| !protected.contains(number))
        .skip(retain as usize)
        .collect();
    old.sort_unstable();
    for number in old {
        squash(tx, names, repository_id, number).await?;
    }
    Ok(())
}

/// Why a version cannot be deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteVersionError {
    /// The version does not exist.
    #[error("repository version {0} does not exist")]
    Missing(i64),
    /// The repository's only version: a repository always has one.
    #[error("Attempt to delete the last remaining version.")]
    LastRemaining(i64),
    /// A distribution serves it, directly or through a publication (Pulp's protected versions).
    #[error(
        "The repository version cannot be deleted because it (or its publications) are currently being used to distribute content. Please update the necessary distributions first."
    )]
    Protected(i64),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Checks that version `number` may be deleted: it exists and is not the latest.
pub async fn check_deletable(
    conn: &mut sqlx::AnyConnection,
    repository_id: &str,
    number: i64,
) -> Result<(), DeleteVersionError> {
    let exists =
        sqlx::query("SELECT id FROM repository_versions WHERE repository_id = $1 AND number = $2")
            .bind(repository_id)
            .bind(number)
            .fetch_optional(&mut *conn)
            .await?;
    if exists.is_none() {
        return Err(DeleteVersionError::Missing(number));
    }
    let others: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM repository_versions WHERE repository_id = $1 AND number <> $2",
    )
    .bind(repository_id)
    .bind(number)
    .fetch_one(&mut *conn)
    .await?;
    if others == 0 {
        return Err(DeleteVersionError::LastRemaining(number));
    }
    if protected_versions(conn, repository_id)
        .await?
        .contains(&number)
    {
        return Err(DeleteVersionError::Protected(number));
    }
    Ok(())
}

/// The versions of a repository that distributions serve, which Pulp protects from deletion:
/// versions distributions name, versions of publications they name, and, for a distribution of
/// the repository itself, the version of the repository's newest publication (what it serves).
pub async fn protected_versions(
    conn: &mut sqlx::AnyConnection,
    repository_id: &str,
) -> Result<std::collections::BTreeSet<i64>, sqlx::Error> {
    let numbers: Vec<i64> = sqlx::query_scalar(
        "SELECT v.number FROM repository_versions v WHERE v.repository_id = $1 AND (
             EXISTS (SELECT 1 FROM distributions d WHERE d.repository_version_id = v.id)
             OR EXISTS (SELECT 1 FROM distributions d JOIN publications p ON p.id = d.publication_id
                        WHERE p.repository_version_id = v.id)
             OR (EXISTS (SELECT 1 FROM distributions d WHERE d.repository_id = $1)
                 AND v.id = (SELECT p.repository_version_id FROM publications p
                             WHERE p.repository_id = $1 AND p.complete = 1
                             ORDER BY p.created DESC LIMIT 1)))",
    )
    .bind(repository_id)
    .fetch_all(conn)
    .await?;
    Ok(numbers.into_iter().collect())
}

/// Deletes version `number` of a repository (the work of its delete task). Its changes are
/// squashed into the next version, so no other version loses or gains content; publications of
/// the version go with it. Deleting the latest version drops its changes: the repository's
/// latest version is the one before, and the deleted number is not given again.
pub async fn delete_version(
    db: &Db,
    names: &RestNames,
    repository_id: &str,
    number: i64,
) -> Result<(), DeleteVersionError> {
    let mut tx = db.begin_write().await?;
    check_deletable(&mut tx, repository_id, number).await?;
    if latest_version(&mut tx, repository_id).await? == number {
        drop_latest(&mut tx, repository_id, number).await?;
    } else {
        squash(&mut tx, names, repository_id, number).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Removes the latest version `number` (which has a predecessor): what it added goes, what it
/// removed is back, and the predecessor is the latest.
async fn drop_latest(
    tx: &mut WriteTx,
    repository_id: &str,
    number: i64,
) -> Result<(), sqlx::Error> {
    for sql in [
        "DELETE FROM repository_content WHERE repository_id = $1 AND version_added = $2",
        "UPDATE repository_content SET version_removed = NULL WHERE repository_id = $1 AND version_removed = $2",
    ] {
        sqlx::query(sql)
            .bind(repository_id)
            .bind(number)
            .execute(&mut **tx)
            .await?;
    }
    forget_version(tx, repository_id, number).await?;
    sqlx::query(
        "UPDATE repositories SET
             latest_version = (SELECT MAX(number) FROM repository_versions WHERE repository_id = $1),
             next_version = COALESCE(next_version, $2 + 1), updated = $3
         WHERE id = $1",
    )
    .bind(repository_id)
    .bind(number)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes version `number` (which has a successor) and folds its changes into the successor.
///
/// Membership ranges only start and end at existing version numbers, and no version lies
/// between `number` and its successor, so moving the boundaries at `number` to the successor
/// changes no remaining version's content; a range that then starts and ends at the successor
/// was only ever in the deleted version and is dropped.
async fn squash(
    tx: &mut WriteTx,
    names: &RestNames,
    repository_id: &str,
    number: i64,
) -> Result<(), sqlx::Error> {
    let next: i64 = sqlx::query_scalar::<_, Option<i64>>(
        "SELECT MIN(number) FROM repository_versions WHERE repository_id = $1 AND number > $2",
    )
    .bind(repository_id)
    .bind(number)
    .fetch_one(&mut **tx)
    .await?
    .expect("only versions with a successor are squashed");
    let previous_id: Option<String> = sqlx::query_scalar(
        "SELECT id FROM repository_versions WHERE repository_id = $1 AND number < $2 ORDER BY number DESC LIMIT 1",
    )
    .bind(repository_id)
    .bind(number)
    .fetch_optional(&mut **tx)
    .await?;
    for sql in [
        "DELETE FROM repository_content WHERE repository_id = $1 AND version_added = $2 AND version_removed = $3",
        "UPDATE repository_content SET version_added = $3 WHERE repository_id = $1 AND version_added = $2",
        "UPDATE repository_content SET version_removed = $3 WHERE repository_id = $1 AND version_removed = $2",
    ] {
        sqlx::query(sql)
            .bind(repository_id)
            .bind(number)
            .bind(next)
            .execute(&mut **tx)
            .await?;
    }
    forget_version(tx, repository_id, number).await?;
    let (plugin, type_name) = sqlx::query_as::<_, (String, String)>(
        "SELECT plugin, type_name FROM repositories WHERE id = $1",
    )
    .bind(repository_id)
    .fetch_one(&mut **tx)
    .await?;
    let repo_href = hrefs::repository(names, &plugin, &type_name, repository_id);
    // Squashing is rare and reshapes what `next` added: counted afresh.
    let summary = content_summary(
        tx,
        names,
        (repository_id, &repo_href, next),
        (None, None),
        None,
    )
    .await?;
    sqlx::query(
        "UPDATE repository_versions SET base_version_id = $3, content_summary = $4
         WHERE repository_id = $1 AND number = $2",
    )
    .bind(repository_id)
    .bind(next)
    .bind(previous_id)
    .bind(summary)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes version `number`'s row; its publications, and what distributions served through
/// them, go with it (distributions that named it serve nothing). Its content ranges must have
/// been moved off it already.
async fn forget_version(
    tx: &mut WriteTx,
    repository_id: &str,
    number: i64,
) -> Result<(), sqlx::Error> {
    for sql in [
        "UPDATE distributions SET publication_id = NULL WHERE publication_id IN
         (SELECT p.id FROM publications p JOIN repository_versions v ON v.id = p.repository_version_id
          WHERE v.repository_id = $1 AND v.number = $2)",
        "DELETE FROM published_files WHERE publication_id IN
         (SELECT p.id FROM publications p JOIN repository_versions v ON v.id = p.repository_version_id
          WHERE v.repository_id = $1 AND v.number = $2)",
        "DELETE FROM publications WHERE repository_version_id IN
         (SELECT id FROM repository_versions WHERE repository_id = $1 AND number = $2)",
        "UPDATE distributions SET repository_version_id = NULL WHERE repository_version_id IN
         (SELECT id FROM repository_versions WHERE repository_id = $1 AND number = $2)",
        "DELETE FROM repository_versions WHERE repository_id = $1 AND number = $2",
    ] {
        sqlx::query(sql)
            .bind(repository_id)
            .bind(number)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Pulp's `content_summary` of a version: `{"added": {"file.file": {"count": 3, "href": ...}},
/// "removed": {...}, "present": {...}}`, stored as JSON text with the version.
#[derive(Debug, Default, Serialize)]
struct ContentSummary {
    added: BTreeMap<String, TypeCount>,
    removed: BTreeMap<String, TypeCount>,
    present: BTreeMap<String, TypeCount>,
}

/// How many units of one content type, and the content list that shows them.
#[derive(Debug, Serialize)]
struct TypeCount {
    count: i64,
    href: String,
}

/// Units per (plugin, content type).
type Counts = BTreeMap<(String, String), i64>;

/// Counts added, removed and present content per type for version `number` of the repository
/// (id, href), as JSON text.
///
/// `added` comes from the caller when it knows it (what it staged), and `removed` when it knows
/// it (nothing ended: none); else removed is read through the index on `version_removed`. Present
/// is `present_before` (the base version's present count) plus added minus removed, so that a
/// version (an upload is one) costs what changed, not what the repository holds. Without them
/// (squashing old versions, a base without a summary) they are counted.
async fn content_summary(
    conn: &mut sqlx::AnyConnection,
    names: &RestNames,
    (repository_id, repo_href, number): (&str, &str, i64),
    (added, removed): (Option<Counts>, Option<Counts>),
    present_before: Option<Counts>,
) -> Result<String, sqlx::Error> {
    const ADDED: &str = "rc.version_added = $2";
    const REMOVED: &str = "rc.version_removed = $2";
    const PRESENT: &str =
        "rc.version_added <= $2 AND (rc.version_removed IS NULL OR rc.version_removed > $2)";
    let added = match added {
        Some(added) => added,
        None => count_units(conn, repository_id, number, ADDED).await?,
    };
    let removed = match removed {
        Some(removed) => removed,
        None => count_units(conn, repository_id, number, REMOVED).await?,
    };
    let present = match present_before {
        Some(mut present) => {
            for (content_type, count) in &added {
                *present.entry(content_type.clone()).or_default() += count;
            }
            for (content_type, count) in &removed {
                *present.entry(content_type.clone()).or_default() -= count;
            }
            present.retain(|_, count| *count > 0);
            present
        }
        None => count_units(conn, repository_id, number, PRESENT).await?,
    };
    let mut summary = ContentSummary::default();
    let sections = [
        (&mut summary.added, added, "repository_version_added"),
        (&mut summary.removed, removed, "repository_version_removed"),
        (&mut summary.present, present, "repository_version"),
    ];
    for (section, counts, filter) in sections {
        for ((plugin, type_name), count) in counts {
            let list = hrefs::content_list(names, &plugin, &type_name);
            let href = format!("{list}?{filter}={repo_href}versions/{number}/");
            section.insert(format!("{plugin}.{type_name}"), TypeCount { count, href });
        }
    }
    // Plain data: serializing it cannot fail.
    Ok(serde_json::to_string(&summary).unwrap_or_default())
}

/// (plugin, content type, count) rows as [`Counts`].
fn per_type(rows: Vec<(String, String, i64)>) -> Counts {
    rows.into_iter()
        .map(|(plugin, type_name, count)| ((plugin, type_name), count))
        .collect()
}

/// Units of version `number` matching `condition` (on `rc`, binding `$1` the repository and `$2`
/// the number), per content type.
async fn count_units(
    conn: &mut sqlx::AnyConnection,
    repository_id: &str,
    number: i64,
    condition: &str,
) -> Result<Counts, sqlx::Error> {
    let rows = sqlx::query_as::<_, (String, String, i64)>(&format!(
        "SELECT c.plugin, c.type_name, COUNT(*) FROM repository_content rc JOIN content c ON c.id = rc.content_id
         WHERE rc.repository_id = $1 AND {condition} GROUP BY c.plugin, c.type_name"
    ))
    .bind(repository_id)
    .bind(number)
    .fetch_all(&mut *conn)
    .await?;
    Ok(per_type(rows))
}

/// The present counts of a version's stored summary; `None` when it has none to trust (version
/// 0 has no summary).
fn present_in_summary(summary: &str) -> Option<Counts> {
    let summary = serde_json::from_str::<serde_json::Value>(summary).ok()?;
    let present = summary.get("present")?.as_object()?;
    let mut counts = Counts::new();
    for (full, entry) in present {
        // Plugin and type names are `[a-z][a-z0-9_]*`: the first dot separates them.
        let (plugin, type_name) = full.split_once('.')?;
        let count = entry.get("count")?.as_i64()?;
        counts.insert((plugin.to_owned(), type_name.to_owned()), count);
    }
    Some(counts)
}

/// The href of version `number` of a repository.
pub async fn href<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    names: &RestNames,
    repository_id: &str,
    number: i64,
) -> Result<String, sqlx::Error> {
    let (plugin, type_name) = sqlx::query_as::<_, (String, String)>(
        "SELECT plugin, type_name FROM repositories WHERE id = $1",
    )
    .bind(repository_id)
    .fetch_one(executor)
    .await?;
    Ok(hrefs::version(
        names,
        &plugin,
        &type_name,
        repository_id,
        number,
    ))
}

/// Adds and removes content units: the new version is the base version (the latest unless
/// `base_version` is given) plus `add` minus `remove`. Returns the new version number, if any.
pub async fn modify(
    db: &Db,
    names: &RestNames,
    task_id: &str,
    repository_id: &str,
    add: &[String],
    remove: &[String],
    base_version: Option<i64>,
) -> anyhow::Result<Option<i64>> {
    let change = match base_version {
        Some(base) => {
            // Stage everything of the base version, then mirror: the result is base + add - remove.
            let mut tx = db.begin_write().await?;
            sqlx::query(&format!(
                "INSERT INTO sync_staging (task_id, content_id)
                 SELECT $3, rc.content_id FROM repository_content rc WHERE {IN_VERSION}"
            ))
            .bind(repository_id)
            .bind(base)
            .bind(task_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Change::Mirror
        }
        None => Change::Add,
    };
    let mut tx = db.begin_write().await?;
    stage(&mut tx, task_id, add).await?;
    if change == Change::Mirror && !remove.is_empty() {
        for chunk in remove.chunks(200) {
            let sql = format!(
                "DELETE FROM sync_staging WHERE task_id = $1 AND content_id IN ({})",
                placeholders(2, chunk.len())
            );
            sqlx::query(&sql)
                .bind(task_id)
                .bind_all(chunk)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    let outcome = finish_version(db, names, repository_id, task_id, change, remove).await?;
    Ok(outcome.number)
}

#[cfg(test)]
mod tests {
    use super::replace_by_repository_key;
    use crate::db::Batch;

    /// What a new version of a plugin with a repository key (python's) runs costs what the
    /// version adds: SQLite's plans start from what the task staged. Without statistics, its
    /// planner started the replacement's statements from every row of the repository, so each
    /// upload walked the repository twice (measured: 14 ms per statement at 51,000 rows).
    #[tokio::test]
    async fn replacing_by_repository_key_starts_from_what_the_task_staged() {
        let mut batch = Batch::new();
        replace_by_repository_key(&mut batch, ("repository", 1, 2), "task");
        let plans = crate::db::tests::plans_on_a_new_database(batch).await;
        assert_eq!(plans.len(), 2, "the replacement and the read of duplicates");
        for plan in plans {
            let walks: Vec<&String> = plan
                .iter()
                .filter(|step| step.starts_with("SEARCH") || step.starts_with("SCAN"))
                .collect();
            let staged = walks
                .iter()
                .position(|step| step.contains("sync_staging") || step.starts_with("SEARCH s "));
            let added = walks
                .iter()
                .position(|step| step.starts_with("SEARCH added "));
            assert!(
                matches!((staged, added), (Some(staged), Some(added)) if staged < added),
                "the staged units are looked at before the repository's rows: {plan:#?}"
            );
            assert!(
                walks
                    .iter()
                    .all(|step| !step.starts_with("SCAN") || step.contains("CONSTANT ROW")),
                "no table is walked whole: {plan:#?}"
            );
            assert!(
                walks
                    .iter()
                    .filter(|step| step.contains("repository_content"))
                    .all(|step| step.contains("content_id=?")),
                "the repository's rows are found by unit: {plan:#?}"
            );
        }
    }
}
