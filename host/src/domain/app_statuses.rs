//! What each process of the installation serves, and whether it is alive: Pulp's `AppStatus`.
//!
//! A process registers a row of `app_statuses` per role when it starts (`serve`: `api` and
//! `content`, and `worker` when it runs task workers; `worker`: `worker`), moves its heartbeat
//! every [`HEARTBEAT`], and removes its rows when it stops. A row whose heartbeat is older than
//! its type's time to live is *missing*: its process died without removing it (killed, or the
//! machine went away). Missing rows are kept for [`FORGET_AFTER`] so that operators see what
//! died (`workers/?missing=true`), then forgotten. `status/` lists the online rows; `workers/`
//! lists the task workers; the task system judges a worker dead by the same heartbeat.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::db::{Db, ago, new_id, now};
use crate::plugins::PluginRuntime;

/// How often a process proves it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// How long a missing row stays listed before it is deleted.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// What a process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppType {
    /// The REST API.
    Api,
    /// The content app (`/pulp/content/` and plugin routes).
    Content,
    /// Task workers.
    Worker,
}

impl AppType {
    /// Its name in `app_statuses.app_type`, as Pulp names it.
    pub fn name(self) -> &'static str {
        match self {
            AppType::Api => "api",
            AppType::Content => "content",
            AppType::Worker => "worker",
        }
    }

    /// How long a row of this type stays online without a heartbeat: Pulp's `API_APP_TTL`,
    /// `CONTENT_APP_TTL` and `WORKER_TTL`.
    pub fn ttl(self) -> Duration {
        match self {
            AppType::Api => Duration::from_secs(120),
            AppType::Content | AppType::Worker => Duration::from_secs(30),
        }
    }

    /// The oldest heartbeat of a row of this type that is online now, as stored.
    pub fn online_since(self) -> String {
        ago(self.ttl())
    }
}

/// The rows one process registered; beat and removed together.
#[derive(Debug)]
pub struct Registration {
    ids: Vec<String>,
}

/// `{component: version}` of core and the loaded plugins, as JSON, as Pulp records it.
pub fn versions(plugins: &PluginRuntime) -> String {
    let versions: BTreeMap<String, &str> = std::iter::once("core".to_owned())
        .chain(plugins.list().iter().map(|plugin| plugin.info.name.clone()))
        .map(|component| (component, super::PULP_API_VERSION))
        .collect();
    serde_json::to_string(&versions).unwrap_or_else(|_| "{}".into())
}

impl Registration {
    /// Registers process `name` as each of `types`.
    pub async fn register(
        db: &Db,
        name: &str,
        types: &[AppType],
        versions: &str,
    ) -> Result<Registration, sqlx::Error> {
        let mut tx = db.begin_write().await?;
        let mut ids = Vec::with_capacity(types.len());
        let stamp = now();
        for app_type in types {
            let id = new_id();
            sqlx::query(
                "INSERT INTO app_statuses (id, app_type, name, created, heartbeat, versions)
                 VALUES ($1, $2, $3, $4, $4, $5)",
            )
            .bind(&id)
            .bind(app_type.name())
            .bind(name)
            .bind(&stamp)
            .bind(versions)
            .execute(&mut *tx)
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(Registration { ids })
    }

    /// Moves the heartbeat of every row to now and records the versions loaded now (a plugin
    /// may have been installed since the last beat); forgets rows missing for long.
    pub async fn beat(&self, db: &Db, versions: &str) -> Result<(), sqlx::Error> {
        let mut tx = db.begin_write().await?;
        let stamp = now();
        for id in &self.ids {
            sqlx::query("UPDATE app_statuses SET heartbeat = $2, versions = $3 WHERE id = $1")
                .bind(id)
                .bind(&stamp)
                .bind(versions)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM app_statuses WHERE heartbeat < $1")
            .bind(ago(FORGET_AFTER))
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Removes the rows: the process stops cleanly, so it is not missing.
    pub async fn remove(self, db: &Db) -> Result<(), sqlx::Error> {
        let mut tx = db.begin_write().await?;
        for id in &self.ids {
            sqlx::query("DELETE FROM app_statuses WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
}
