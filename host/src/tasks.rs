//! Tasks: long work stored in the database, claimed by workers with resource locks, reporting
//! progress, cancellable, and failed when the process running them dies.
//!
//! # Layout
//! - this file: the queue (enqueue, claim, finish); [`TaskHandle`], what running work sees,
//!   lives in [`crate::progress`] because the layers below (plugins, domain) report through it.
//! - [`worker`]: the worker loop, heartbeats, cancellation and recovery of dead workers' tasks.
//! - [`kinds`]: what each kind of task does.

pub mod correlation;
pub mod kinds;
pub mod worker;

use serde::Serialize;
use serde_json::Value;

pub use crate::progress::{ProgressReport, TaskHandle};

use crate::db::{
    Backend, Batch, Db, Ran, SqlValue, TASKS_CHANNEL, WriteTx, announce, announce_in, new_id, now,
};
use crate::rbac;

/// Task states, as Pulp names them.
pub mod state {
    /// Queued, not started.
    pub const WAITING: &str = "waiting";
    /// Claimed by a worker.
    pub const RUNNING: &str = "running";
    /// Cancel requested while running.
    pub const CANCELING: &str = "canceling";
    /// Done.
    pub const COMPLETED: &str = "completed";
    /// Ended with an error.
    pub const FAILED: &str = "failed";
    /// Canceled.
    pub const CANCELED: &str = "canceled";
}

/// A failed task's `error` column: Pulp's `{"description": ...}`, as JSON text.
pub fn error_text(description: &str) -> String {
    #[derive(Serialize)]
    struct TaskError<'a> {
        description: &'a str,
    }
    // Plain data: serializing it cannot fail.
    serde_json::to_string(&TaskError { description }).unwrap_or_default()
}

/// A lock a task holds while it runs: exclusive (writers of a repository) or shared.
#[derive(Clone, Debug)]
pub struct ResourceLock {
    /// e.g. a repository href.
    pub resource: String,
    /// Exclusive locks conflict with every other lock on the same resource.
    pub exclusive: bool,
}

impl ResourceLock {
    /// An exclusive lock.
    pub fn exclusive(resource: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            exclusive: true,
        }
    }

    /// A shared lock.
    pub fn shared(resource: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            exclusive: false,
        }
    }
}

tokio::task_local! {
    /// The correlation id of the request being handled (`Correlation-Id`), recorded as the
    /// `logging_cid` of every task it queues so logs and tasks of one request can be matched.
    pub static LOGGING_CID: String;
}

/// Queues a task. Returns its id.
pub async fn enqueue(
    db: &Db,
    name: &str,
    args: &kinds::TaskArgs,
    locks: &[ResourceLock],
) -> Result<String, sqlx::Error> {
    enqueue_in_group(db, name, args, locks, None).await
}

/// Creates a task group (Pulp's: tasks dispatched together and shown as one); its tasks are
/// queued with [`enqueue_in_group`], then [`all_dispatched`] marks it whole. Returns its id.
pub async fn create_group(db: &Db, description: &str) -> Result<String, sqlx::Error> {
    let id = new_id();
    db.write_one(
        sqlx::query("INSERT INTO task_groups (id, description, created) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(description)
            .bind(now()),
    )
    .await?;
    Ok(id)
}

/// Marks task group `id` as having all its tasks queued.
pub async fn all_dispatched(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    db.write_one(
        sqlx::query("UPDATE task_groups SET all_tasks_dispatched = 1 WHERE id = $1").bind(id),
    )
    .await?;
    Ok(())
}

/// Queues a task, in task group `group` when given. Returns its id.
pub async fn enqueue_in_group(
    db: &Db,
    name: &str,
    args: &kinds::TaskArgs,
    locks: &[ResourceLock],
    group: Option<&str>,
) -> Result<String, sqlx::Error> {
    let id = new_id();
    // The owner's role is given in the task's own commit: one fsync less per task a REST
    // request queues, and no moment when the task exists without its owner.
    let owner = task_owner(db).await?;
    let mut tx = db.begin_write().await?;
    let task = NewTask {
        id: &id,
        name,
        args,
        locks,
        group,
    };
    insert_task(&mut tx, &task, state::WAITING, owner.as_ref()).await?;
    announce(db, &mut tx, TASKS_CHANNEL).await?;
    tx.commit().await?;
    Ok(id)
}

/// A task as it is first recorded.
struct NewTask<'a> {
    id: &'a str,
    name: &'a str,
    args: &'a kinds::TaskArgs,
    locks: &'a [ResourceLock],
    group: Option<&'a str>,
}

/// The user who asks for work owns its task (Pulp's `core.task_owner`): they may see and cancel
/// it. Answers (role id, user id), or nothing for work no user asked for.
async fn task_owner(db: &Db) -> Result<Option<(String, String)>, sqlx::Error> {
    let Some(user) = crate::auth::current_user() else {
        return Ok(None);
    };
    Ok(rbac::role_id(db, "core.task_owner")
        .await?
        .map(|role| (role, user.id.clone())))
}

/// Records `task` in `task_state` (its start time too unless it waits), with its locks, its
/// request's correlation id and its owner.
async fn insert_task(
    tx: &mut WriteTx,
    task: &NewTask<'_>,
    task_state: &str,
    owner: Option<&(String, String)>,
) -> Result<(), sqlx::Error> {
    let mut batch = Batch::new();
    task_rows(&mut batch, task, task_state, owner);
    batch.run(tx).await?;
    assign_owner(tx, task, owner).await
}

/// The statements writing the rows of `task` and of its locks (see [`insert_task`]).
fn task_rows(
    batch: &mut Batch,
    task: &NewTask<'_>,
    task_state: &str,
    owner: Option<&(String, String)>,
) {
    let logging_cid = LOGGING_CID.try_with(Clone::clone).ok();
    let created = now();
    let started = (task_state != state::WAITING).then(|| created.clone());
    batch.push(
        "INSERT INTO tasks (id, name, state, args, created, started, logging_cid, user_id, task_group_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        vec![
            task.id.into(),
            task.name.into(),
            task_state.into(),
            serde_json::to_string(task.args)
                .expect("task args serialize")
                .into(),
            created.into(),
            started.into(),
            logging_cid.into(),
            owner.map(|(_, user_id)| user_id.as_str()).into(),
            task.group.into(),
        ],
    );
    for lock in task.locks {
        batch.push(
            "INSERT INTO task_resources (task_id, resource, exclusive) VALUES ($1, $2, $3)",
            vec![
                task.id.into(),
                lock.resource.as_str().into(),
                i64::from(lock.exclusive).into(),
            ],
        );
    }
}

/// Gives the task's owner its role on the task.
async fn assign_owner(
    tx: &mut WriteTx,
    task: &NewTask<'_>,
    owner: Option<&(String, String)>,
) -> Result<(), sqlx::Error> {
    if let Some((role, user_id)) = owner {
        let href = crate::domain::hrefs::task(task.id);
        let object = rbac::Object {
            id: task.id,
            href: &href,
        };
        rbac::insert_assignment(tx, role, rbac::Holder::User(user_id), Some(object)).await?;
    }
    Ok(())
}

/// What came of [`run_immediately`].
#[derive(Debug)]
pub enum Immediate {
    /// Another task holds or waits for a conflicting lock: nothing ran; queue the work instead.
    Busy,
    /// The task ran and is recorded as ended: completed (with what it created) or failed.
    Ended(Outcome),
}

/// Pulp's immediate dispatch (`dispatch(immediate=True)`): when no task runs or waits with a
/// lock that conflicts with `locks`, runs `work` now, in this process, inside the write
/// transaction that records the task, and records it completed in that same transaction. A small
/// change such as an upload then costs one commit (one disk flush) instead of one each for the
/// queueing, the claim, the work's steps and the end, and no hand-over to a worker. Nobody sees
/// the task waiting or running; it cannot be canceled. When `work` fails, everything it wrote
/// is rolled back and the task is recorded failed. Long work must be queued: the transaction
/// holds the database's write lock (SQLite), and on PostgreSQL keeps workers from claiming
/// (see [`take_immediate_locks`]), while it runs. `first` holds statements of the work, sent
/// with the task's own: they are rolled back with the rest if `work` fails, and `work` is given
/// what each of them did. What `work` pushes to the batch it is given runs with the commit,
/// before the task's end.
pub async fn run_immediately(
    db: &Db,
    name: &str,
    args: &kinds::TaskArgs,
    locks: &[ResourceLock],
    first: Batch,
    work: impl AsyncFnOnce(&mut WriteTx, &str, &mut Batch, Vec<Ran>) -> anyhow::Result<Vec<String>>,
) -> Result<Immediate, sqlx::Error> {
    let id = new_id();
    let owner = task_owner(db).await?;
    let task = NewTask {
        id: &id,
        name,
        args,
        locks,
        group: None,
    };
    // The transaction's start, the task's rows and the work's `first` statements go with the
    // look at its locks, one trip to the database: when a lock is busy, they are rolled back
    // with the transaction.
    let mut batch = Batch::new();
    let taken = take_immediate_locks(&mut batch, db.backend(), locks);
    look_for_busy_locks(&mut batch, locks);
    task_rows(&mut batch, &task, state::RUNNING, owner.as_ref());
    let work_starts_at = batch.len();
    batch.append(first);
    let (mut tx, mut ran) = db.begin_write_with(batch).await?;
    let first_ran = ran.split_off(work_starts_at.min(ran.len()));
    let looks = ran.iter().skip(taken).take(locks.len());
    if looks.into_iter().any(|look| !look.rows.is_empty()) {
        return Ok(Immediate::Busy);
    }
    assign_owner(&mut tx, &task, owner.as_ref()).await?;
    // The work's last statements, then the task's end, go with the commit.
    let mut last = Batch::new();
    let outcome = match work(&mut tx, &id, &mut last, first_ran).await {
        Ok(created) => {
            if let Some((_, user_id)) = &owner {
                creation_hooks_in(db, &mut tx, user_id, &created).await?;
            }
            Outcome::Completed(created)
        }
        Err(error) => {
            // Rolled back; the failure is recorded on its own.
            drop(tx);
            let failure = Outcome::Failed(format!("{error:#}"));
            last = Batch::new();
            tx = db.begin_write().await?;
            insert_task(&mut tx, &task, state::RUNNING, owner.as_ref()).await?;
            failure
        }
    };
    end_statements(&mut last, db.backend(), &id, &outcome, "[]");
    tx.commit_with(last).await?;
    Ok(Immediate::Ended(outcome))
}

/// On PostgreSQL, serialises deciding which tasks may start across processes (see [`claim`] and
/// [`take_immediate_locks`]); held until `tx` ends. SQLite's write lock already does.
async fn take_claim_lock(db: &Db, tx: &mut WriteTx) -> Result<(), sqlx::Error> {
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7243001)")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// What [`run_immediately`] holds on PostgreSQL until its transaction ends: the claim lock shared,
/// so no claim decides while it does (a claim takes it exclusive), and each of its resources'
/// own advisory lock, so two immediate tasks of one repository take turns (the second then sees
/// the first ended) while those of different repositories run side by side. Taken in one order,
/// so two tasks cannot wait for each other. SQLite's write lock already serialises all of it.
/// Pushed first to `batch`; answers how many statements that is.
fn take_immediate_locks(batch: &mut Batch, backend: Backend, locks: &[ResourceLock]) -> usize {
    if backend != Backend::Postgres {
        return 0;
    }
    let before = batch.len();
    // Selecting a void would not convert to a row: each lock answers a 1.
    batch.push(
        "SELECT 1 FROM (SELECT pg_advisory_xact_lock_shared(7243001)) AS taken",
        Vec::new(),
    );
    let mut keys: Vec<i64> = locks
        .iter()
        .map(|lock| resource_key(&lock.resource))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        batch.push(
            "SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS taken",
            vec![key.into()],
        );
    }
    batch.len() - before
}

/// The PostgreSQL advisory-lock key of a task resource (a repository href, say).
fn resource_key(resource: &str) -> i64 {
    advisory_key(&format!("granary-task-resource:{resource}"))
}

/// A PostgreSQL advisory-lock key named by `name`: the first 8 bytes of its sha256.
pub(crate) fn advisory_key(name: &str) -> i64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(name.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Statements answering a row for each running or waiting task that holds or wants a lock that
/// conflicts with `locks` (a waiting one too: work that starts at once must not overtake the
/// queue); none when all are free.
fn look_for_busy_locks(batch: &mut Batch, locks: &[ResourceLock]) {
    for lock in locks {
        batch.push(
            "SELECT 1 FROM task_resources tr JOIN tasks t ON t.id = tr.task_id
             WHERE tr.resource = $1 AND t.state IN ('waiting', 'running', 'canceling')
               AND ($2 = 1 OR tr.exclusive = 1) LIMIT 1",
            vec![
                lock.resource.as_str().into(),
                i64::from(lock.exclusive).into(),
            ],
        );
    }
}

/// A task claimed by a worker.
#[derive(Debug)]
pub struct Claimed {
    /// The task's id.
    pub id: String,
    /// What to do.
    pub args: kinds::TaskArgs,
}

/// Claims the oldest waiting task whose locks are free, in queue order: a task never overtakes an
/// older waiting task that wants a conflicting lock.
pub async fn claim(db: &Db, worker: &str) -> Result<Option<Claimed>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    // Claims are serialised across processes for the few milliseconds a claim takes: deciding
    // whether a task's resource locks are free needs a view of the running tasks that no other
    // claim changes meanwhile.
    take_claim_lock(db, &mut tx).await?;
    let held = sqlx::query_as::<_, (String, i64)>(
        "SELECT tr.resource, tr.exclusive FROM task_resources tr JOIN tasks t ON t.id = tr.task_id
         WHERE t.state IN ('running', 'canceling')",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut taken: Vec<(String, bool)> = held
        .into_iter()
        .map(|(resource, exclusive)| (resource, exclusive != 0))
        .collect();
    // On PostgreSQL, rows another transaction is changing (a cancel) are skipped, not waited for.
    let waiting_sql = match db.backend() {
        Backend::Postgres => {
            "SELECT id, args FROM tasks WHERE state = 'waiting' ORDER BY created, id LIMIT 200
             FOR UPDATE SKIP LOCKED"
        }
        Backend::Sqlite => {
            "SELECT id, args FROM tasks WHERE state = 'waiting' ORDER BY created, id LIMIT 200"
        }
    };
    let waiting = sqlx::query_as::<_, (String, String)>(waiting_sql)
        .fetch_all(&mut *tx)
        .await?;
    for (id, args) in waiting {
        let locks = sqlx::query_as::<_, (String, i64)>(
            "SELECT resource, exclusive FROM task_resources WHERE task_id = $1",
        )
        .bind(&id)
        .fetch_all(&mut *tx)
        .await?;
        let wants: Vec<(String, bool)> = locks
            .into_iter()
            .map(|(resource, exclusive)| (resource, exclusive != 0))
            .collect();
        let conflicts = wants.iter().any(|(resource, exclusive)| {
            taken
                .iter()
                .any(|(held, held_exclusive)| held == resource && (*exclusive || *held_exclusive))
        });
        if conflicts {
            taken.extend(wants);
            continue;
        }
        let args = match serde_json::from_str(&args) {
            Ok(args) => args,
            Err(error) => {
                sqlx::query(
                    "UPDATE tasks SET state = 'failed', finished = $2, error = $3 WHERE id = $1",
                )
                .bind(&id)
                .bind(now())
                .bind(error_text(&format!("unreadable task arguments: {error}")))
                .execute(&mut *tx)
                .await?;
                continue;
            }
        };
        let claimed = sqlx::query("UPDATE tasks SET state = 'running', started = $2, worker = $3 WHERE id = $1 AND state = 'waiting'")
            .bind(&id)
            .bind(now())
            .bind(worker)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if claimed == 0 {
            continue;
        }
        tx.commit().await?;
        return Ok(Some(Claimed { id, args }));
    }
    tx.commit().await?;
    Ok(None)
}

/// How a task ended.
#[derive(Debug)]
pub enum Outcome {
    /// Success, with the hrefs it created.
    Completed(Vec<String>),
    /// Failure, with a description for the user.
    Failed(String),
    /// Canceled by a user.
    Canceled,
}

/// Records how a task ended.
pub async fn finish(db: &Db, handle: &TaskHandle, outcome: Outcome) -> Result<(), sqlx::Error> {
    // The creator's roles on what the task made come first: a client that sees the task
    // completed must already see its objects (they were briefly invisible to a non-staff
    // creator when the roles followed the state).
    if let Outcome::Completed(created) = &outcome
        && !created.is_empty()
    {
        creation_hooks(db, &handle.id, created).await?;
    }
    let reports = handle.reports_json(Some(outcome.report_state()));
    let tx = db.begin_write().await?;
    let mut last = Batch::new();
    end_statements(&mut last, db.backend(), &handle.id, &outcome, &reports);
    tx.commit_with(last).await
}

impl Outcome {
    /// The task's state after this outcome.
    fn task_state(&self) -> &'static str {
        match self {
            Outcome::Completed(_) => state::COMPLETED,
            Outcome::Failed(_) => state::FAILED,
            Outcome::Canceled => state::CANCELED,
        }
    }

    /// The state its progress reports take.
    fn report_state(&self) -> &'static str {
        match self {
            Outcome::Completed(_) => "completed",
            Outcome::Failed(_) => "failed",
            Outcome::Canceled => "canceled",
        }
    }
}

/// Writes the end of task `id`: its state, error, what it created and its final `reports`.
fn end_statements(batch: &mut Batch, backend: Backend, id: &str, outcome: &Outcome, reports: &str) {
    let (error, created) = match outcome {
        Outcome::Completed(created) => (None, created.as_slice()),
        Outcome::Failed(description) => (Some(error_text(description)), [].as_slice()),
        Outcome::Canceled => (None, [].as_slice()),
    };
    batch.push(
        "UPDATE tasks SET state = $2, finished = $3, error = $4, created_resources = $5, progress_reports = $6 WHERE id = $1",
        vec![
            id.into(),
            outcome.task_state().into(),
            now().into(),
            SqlValue::Text(error),
            Value::from(created.to_vec()).to_string().into(),
            reports.into(),
        ],
    );
    announce_in(batch, backend, TASKS_CHANNEL);
}

/// Runs the creation hooks of the objects a task created for the user who queued it, as Pulp
/// does inside the task: the creator of a publication or distribution owns it.
async fn creation_hooks(db: &Db, task_id: &str, created: &[String]) -> Result<(), sqlx::Error> {
    let user: Option<String> = sqlx::query_scalar("SELECT user_id FROM tasks WHERE id = $1")
        .bind(task_id)
        .fetch_optional(db.pool())
        .await?
        .flatten();
    let Some(user) = user else {
        return Ok(());
    };
    for (href, id, hooks) in hooks_of(db, created).await? {
        let object = rbac::Object { id, href };
        rbac::run_creation_hooks(db, &hooks, &user, object).await?;
    }
    Ok(())
}

/// [`creation_hooks`] of a task run at once, in the transaction that made the objects.
async fn creation_hooks_in(
    db: &Db,
    tx: &mut WriteTx,
    user: &str,
    created: &[String],
) -> Result<(), sqlx::Error> {
    for (href, id, hooks) in hooks_of(db, created).await? {
        let object = rbac::Object { id, href };
        rbac::run_creation_hooks_in(tx, &hooks, user, object).await?;
    }
    Ok(())
}

/// The creation hooks of the access policy of each created object that has a policy, with the
/// object's href and id.
async fn hooks_of<'a>(
    db: &Db,
    created: &'a [String],
) -> Result<Vec<(&'a str, &'a str, Value)>, sqlx::Error> {
    let mut found = Vec::new();
    for href in created {
        let Some((viewset, id)) = crate::domain::hrefs::endpoint_of(href) else {
            continue;
        };
        let Some(policy) = rbac::policy(db, viewset).await? else {
            continue;
        };
        let hooks: Value = serde_json::from_str(&policy.creation_hooks).unwrap_or_default();
        found.push((href.as_str(), id, hooks));
    }
    Ok(found)
}
