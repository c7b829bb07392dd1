//! Changes every process must hear about, over PostgreSQL `LISTEN/NOTIFY`: a task queued or
//! finished (wake idle workers), a plugin installed, upgraded, disabled or removed (reload the
//! plugin registry), and a change to what the content app serves (announced by triggers, see
//! `db::ContentChanges`). With SQLite there is one process, which acts on its own changes
//! directly. Changes are announced with [`crate::db::announce`]; this is the listening side,
//! part of the wiring because it acts on the process's shared state.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::db::{Backend, CONTENT_CHANNEL, PLUGINS_CHANNEL as PLUGINS, TASKS_CHANNEL as TASKS};
use crate::state::App;

/// How long to wait before listening again after the connection failed.
const RETRY: Duration = Duration::from_secs(1);

/// Listens until `shutdown` (PostgreSQL only): wakes this process's workers on [`TASKS`] and
/// reloads its plugin registry on [`PLUGINS`]. Workers also poll, so a lost connection delays
/// work but loses none.
pub async fn listen(app: Arc<App>, shutdown: CancellationToken) {
    if app.db.backend() != Backend::Postgres {
        return;
    }
    loop {
        match listen_once(&app, &shutdown).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "LISTEN connection failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }
}

async fn listen_once(app: &Arc<App>, shutdown: &CancellationToken) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(&app.config.database_url()).await?;
    listener
        .listen_all([TASKS, PLUGINS, CONTENT_CHANNEL])
        .await?;
    catch_up(app).await;
    loop {
        let notification = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            notification = listener.try_recv() => notification?,
        };
        // `None`: the connection was lost and is made again on the next call.
        let Some(notification) = notification else {
            catch_up(app).await;
            continue;
        };
        match notification.channel() {
            TASKS => app.task_wakeup.notify_waiters(),
            PLUGINS => reload_plugins(app).await,
            CONTENT_CHANNEL => app.db.content_changes().heard(notification.payload()),
            _ => {}
        }
    }
}

/// Acts as if every channel had been announced: what was announced while this process was not
/// listening is lost.
async fn catch_up(app: &App) {
    app.task_wakeup.notify_waiters();
    reload_plugins(app).await;
    app.db.content_changes().forget_own();
    app.db.content_changes().changed();
}

async fn reload_plugins(app: &App) {
    if let Err(error) = crate::domain::registry::reload_from_db(&app.backends()).await {
        tracing::error!(error = %format!("{error:#}"), "reloading the plugin registry failed");
    }
}
