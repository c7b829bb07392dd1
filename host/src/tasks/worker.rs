//! Worker loops: claim, run with progress flushing and cancellation, record the outcome; plus
//! heartbeats and the recovery of tasks whose worker died.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Outcome, TaskHandle, claim, finish, kinds, state};
use crate::db::Backend;
use crate::domain::Backends;
use crate::domain::app_statuses::{self as statuses, AppType, HEARTBEAT, Registration};
/// How often an idle worker looks for work when nothing woke it.
const POLL: Duration = Duration::from_millis(500);
/// How often a running task's progress is written and its cancellation checked.
const WATCH: Duration = Duration::from_millis(300);

/// What the workers of a process run with: the domain's backends, the process's worker name
/// (unique per process) and the signal that wakes its idle workers when a task is queued.
#[derive(Debug)]
pub struct Workers {
    /// What the tasks' work runs on.
    pub backends: Backends,
    /// This process's worker name.
    pub worker_name: String,
    /// Notified when a task is queued (by this process, or announced by another).
    pub task_wakeup: Arc<Notify>,
    /// Notified when a task's end is recorded by a worker of this process.
    pub task_finished: Arc<Notify>,
}

impl std::ops::Deref for Workers {
    type Target = Backends;

    fn deref(&self) -> &Backends {
        &self.backends
    }
}

/// Registers this process, fails tasks left running by dead processes, then runs `count` worker
/// loops and the heartbeat until `shutdown`.
pub async fn run(
    app: Arc<Workers>,
    count: usize,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let registration = Arc::new(
        Registration::register(
            &app.db,
            &app.worker_name,
            &[AppType::Worker],
            &statuses::versions(&app.plugins),
        )
        .await?,
    );
    let _liveness = hold_liveness_lock(&app).await?;
    recover(&app, true).await?;
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..count {
        loops.spawn(worker_loop(app.clone(), shutdown.clone()));
    }
    let heartbeat_app = app.clone();
    let heartbeat_shutdown = shutdown.clone();
    let beating = registration.clone();
    loops.spawn(async move {
        loop {
            tokio::select! {
                () = heartbeat_shutdown.cancelled() => break,
                () = tokio::time::sleep(HEARTBEAT) => {}
            }
            let versions = statuses::versions(&heartbeat_app.plugins);
            if let Err(error) = beating.beat(&heartbeat_app.db, &versions).await {
                tracing::warn!(error = %error, "heartbeat failed");
            }
            if let Err(error) = recover(&heartbeat_app, false).await {
                tracing::warn!(error = %format!("{error:#}"), "recovering tasks of dead workers failed");
            }
        }
    });
    while loops.join_next().await.is_some() {}
    // Stopped cleanly: not missing. Every loop holding a clone has ended.
    if let Some(registration) = Arc::into_inner(registration)
        && let Err(error) = registration.remove(&app.db).await
    {
        tracing::warn!(error = %error, "removing the worker's status failed");
    }
    Ok(())
}

/// The PostgreSQL advisory-lock key of a worker.
fn liveness_key(worker: &str) -> i64 {
    super::advisory_key(worker)
}

/// Holds this process's liveness lock on a dedicated PostgreSQL session for as long as the
/// returned connection lives: the server releases it when the process dies.
async fn hold_liveness_lock(app: &Workers) -> anyhow::Result<Option<sqlx::AnyConnection>> {
    if app.db.backend() != Backend::Postgres {
        return Ok(None);
    }
    let mut connection = app.db.pool().acquire().await?.detach();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(liveness_key(&app.worker_name))
        .execute(&mut connection)
        .await?;
    Ok(Some(connection))
}

/// Whether the worker's process still holds its liveness lock.
async fn liveness_lock_held(app: &Workers, worker: &str) -> Result<bool, sqlx::Error> {
    let mut connection = app.db.pool().acquire().await?;
    let key = liveness_key(worker);
    let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut *connection)
        .await?;
    if acquired {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(key)
            .execute(&mut *connection)
            .await?;
    }
    Ok(!acquired)
}

/// Fails the tasks whose worker is dead. With SQLite only one process uses the database, so at
/// start-up every task some other worker was running is dead. With PostgreSQL a worker is dead
/// when its session lock is free (its connection closed: the process exited or was killed) or its
/// heartbeat is older than a worker's time to live (the process hangs).
async fn recover(app: &Workers, at_start: bool) -> anyhow::Result<()> {
    let threshold = AppType::Worker.online_since();
    let candidates = sqlx::query_as::<_, (String, Option<String>, Option<String>)>(
        "SELECT t.id, t.worker, w.heartbeat FROM tasks t
         LEFT JOIN app_statuses w ON w.app_type = 'worker' AND w.name = t.worker
         WHERE t.state IN ('running', 'canceling') AND (t.worker IS NULL OR t.worker <> $1)",
    )
    .bind(&app.worker_name)
    .fetch_all(app.db.pool())
    .await?;
    let mut dead = Vec::new();
    for (id, worker, heartbeat) in candidates {
        let is_dead = match app.db.backend() {
            Backend::Sqlite => at_start || heartbeat.is_none_or(|beat| beat < threshold),
            Backend::Postgres => {
                heartbeat.is_none_or(|beat| beat < threshold)
                    || match &worker {
                        Some(worker) => !liveness_lock_held(app, worker).await?,
                        None => true,
                    }
            }
        };
        if is_dead {
            dead.push(id);
        }
    }
    let mut tx = app.db.begin_write().await?;
    for id in dead {
        tracing::warn!(task = %id, "failing a task whose worker died");
        sqlx::query("UPDATE tasks SET state = 'failed', finished = $2, error = $3 WHERE id = $1")
            .bind(&id)
            .bind(crate::db::now())
            .bind(super::error_text(
                "The worker running this task died (its process stopped) before the task finished.",
            ))
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sync_staging WHERE task_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn worker_loop(app: Arc<Workers>, shutdown: CancellationToken) {
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        match claim(&app.db, &app.worker_name).await {
            Ok(Some(claimed)) => execute(&app, claimed).await,
            Ok(None) => {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = app.task_wakeup.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "claiming a task failed");
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

async fn execute(app: &Arc<Workers>, claimed: super::Claimed) {
    let handle = Arc::new(TaskHandle::new(claimed.id.clone()));
    tracing::info!(task = %claimed.id, kind = claimed.args.kind(), "task started");
    // The work runs as a task of its own: the watcher below may wait for the database write
    // lock, which the work can hold across an await (a transaction in progress); in one future
    // the watcher would stop the work from ever releasing it.
    let work_app = app.clone();
    let work_handle = handle.clone();
    let work =
        tokio::spawn(
            async move { kinds::run(&work_app.backends, work_handle, claimed.args).await },
        );
    let abort = work.abort_handle();
    tokio::pin!(work);
    let outcome = loop {
        tokio::select! {
            result = &mut work => break match result {
                Ok(Ok(created)) => Outcome::Completed(created),
                Ok(Err(error)) => Outcome::Failed(format!("{error:#}")),
                Err(error) => Outcome::Failed(format!("the task stopped unexpectedly: {error}")),
            },
            () = tokio::time::sleep(WATCH) => {
                if let Some(reports) = handle.take_dirty()
                    && let Err(error) = write_progress(app, &handle.id, &reports).await
                {
                    tracing::warn!(error = %error, "writing progress failed");
                }
                if cancel_requested(app, &handle.id).await {
                    // Stop the work and wait until it is gone before cleaning up after it.
                    abort.abort();
                    let _ = (&mut work).await;
                    break Outcome::Canceled;
                }
            }
        }
    };
    if matches!(outcome, Outcome::Canceled | Outcome::Failed(_)) {
        let _ = crate::domain::versions::clear_staging(&app.db, &handle.id).await;
    }
    tracing::info!(task = %handle.id, outcome = ?outcome, "task finished");
    if let Err(error) = finish(&app.db, &handle, outcome).await {
        tracing::error!(task = %handle.id, error = %error, "recording the task outcome failed");
    }
    app.task_finished.notify_waiters();
}

async fn write_progress(app: &Workers, id: &str, reports: &str) -> Result<(), sqlx::Error> {
    let mut tx = app.db.begin_write().await?;
    sqlx::query("UPDATE tasks SET progress_reports = $2 WHERE id = $1")
        .bind(id)
        .bind(reports)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

async fn cancel_requested(app: &Workers, id: &str) -> bool {
    sqlx::query_scalar::<_, String>("SELECT state FROM tasks WHERE id = $1")
        .bind(id)
        .fetch_one(app.db.pool())
        .await
        .map(|task_state| task_state == state::CANCELING)
        .unwrap_or(false)
}
