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

use crate::db::{Backend, Db, TASKS_CHANNEL, announce, new_id, now};
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
    let logging_cid = LOGGING_CID.try_with(Clone::clone).ok();
    let user = crate::auth::current_user();
    // The user who asked for the work owns the task (Pulp's `core.task_owner`): they may see
    // and cancel it. Given in the task's own commit: one fsync less per task a REST request
    // queues, and no moment when the task exists without its owner.
    let owner = match &user {
        Some(user) => rbac::role_id(db, "core.task_owner")
            .await?
            .map(|role| (role, user.id.clone())),
        None => None,
    };
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO tasks (id, name, state, args, created, logging_cid, user_id, task_group_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(name)
    .bind(state::WAITING)
    .bind(serde_json::to_string(args).expect("task args serialize"))
    .bind(now())
    .bind(logging_cid)
    .bind(user.as_ref().map(|user| user.id.as_str()))
    .bind(group)
    .execute(&mut *tx)
    .await?;
    for lock in locks {
        sqlx::query(
            "INSERT INTO task_resources (task_id, resource, exclusive) VALUES ($1, $2, $3)",
        )
        .bind(&id)
        .bind(&lock.resource)
        .bind(i64::from(lock.exclusive))
        .execute(&mut *tx)
        .await?;
    }
    if let Some((role, user_id)) = &owner {
        let href = crate::domain::hrefs::task(&id);
        let task = rbac::Object {
            id: &id,
            href: &href,
        };
        rbac::insert_assignment(&mut tx, role, rbac::Holder::User(user_id), Some(task)).await?;
    }
    announce(db, &mut tx, TASKS_CHANNEL).await?;
    tx.commit().await?;
    Ok(id)
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
    if db.backend() == Backend::Postgres {
        // Claims are serialised across processes for the few milliseconds a claim takes: deciding
        // whether a task's resource locks are free needs a view of the running tasks that no
        // other claim changes meanwhile. Held until this transaction ends.
        sqlx::query("SELECT pg_advisory_xact_lock(7243001)")
            .execute(&mut *tx)
            .await?;
    }
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
    let (state, error, created): (&str, Option<String>, Vec<String>) = match outcome {
        Outcome::Completed(created) => (state::COMPLETED, None, created),
        Outcome::Failed(description) => (state::FAILED, Some(error_text(&description)), Vec::new()),
        Outcome::Canceled => (state::CANCELED, None, Vec::new()),
    };
    let report_state = match state {
        state::COMPLETED => "completed",
        state::FAILED => "failed",
        _ => "canceled",
    };
    // The creator's roles on what the task made come first: a client that sees the task
    // completed must already see its objects (they were briefly invisible to a non-staff
    // creator when the roles followed the state).
    if !created.is_empty() {
        creation_hooks(db, &handle.id, &created).await?;
    }
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE tasks SET state = $2, finished = $3, error = $4, created_resources = $5, progress_reports = $6 WHERE id = $1",
    )
    .bind(&handle.id)
    .bind(state)
    .bind(now())
    .bind(error)
    .bind(Value::from(created.clone()).to_string())
    .bind(handle.reports_json(Some(report_state)))
    .execute(&mut *tx)
    .await?;
    announce(db, &mut tx, TASKS_CHANNEL).await?;
    tx.commit().await?;
    Ok(())
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
    for href in created {
        let Some((viewset, id)) = crate::domain::hrefs::endpoint_of(href) else {
            continue;
        };
        let Some(policy) = rbac::policy(db, viewset).await? else {
            continue;
        };
        let hooks: Value = serde_json::from_str(&policy.creation_hooks).unwrap_or_default();
        let object = rbac::Object { id, href };
        rbac::run_creation_hooks(db, &hooks, &user, object).await?;
    }
    Ok(())
}
