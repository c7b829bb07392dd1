//! The state every request handler shares (`State<AppState>`): the domain's backends, the
//! configuration, and this process's identity. Built by [`crate::app`] at start-up; the content
//! app adds its own caches on top ([`crate::content`]).

use std::sync::Arc;

use tokio::sync::Notify;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::db::Db;
use crate::domain::Backends;
use crate::domain::remotes::RemoteClients;
use crate::domain::transfer::AllowedPaths;
use crate::plugins::{LoadedPlugin, PluginRuntime};
use crate::secrets::FieldCipher;
use crate::storage::BlobStore;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct App {
    /// The configuration in force.
    pub config: Config,
    /// The database.
    pub db: Arc<Db>,
    /// Artifact storage.
    pub blobs: Arc<BlobStore>,
    /// Loaded plugins.
    pub plugins: Arc<PluginRuntime>,
    /// Wakes idle workers of this process when a task is queued.
    pub task_wakeup: Arc<Notify>,
    /// Notified when a worker of this process has recorded a task's end: requests waiting for a
    /// task they queued (an upload's `add-units`) look at once instead of at their next poll.
    pub task_finished: Arc<Notify>,
    /// This process's worker name (unique per process).
    pub worker_name: String,
    /// Origin for absolute URLs, without a trailing slash.
    pub origin: String,
    /// HTTP clients of remotes, one per remote configuration.
    pub remote_clients: Arc<RemoteClients>,
    /// Seals and opens the credentials stored in the database.
    pub secrets: Arc<FieldCipher>,
    /// The directories exports and imports may use (from the configuration).
    pub allowed_paths: Arc<AllowedPaths>,
    /// Checks requests' credentials, with this process's verified-credential cache and
    /// failed log-in counts.
    pub authenticator: Arc<Authenticator>,
}

/// Handlers' state.
pub type AppState = Arc<App>;

impl App {
    /// What domain work started by a handler runs on.
    pub fn backends(&self) -> Backends {
        Backends {
            db: self.db.clone(),
            blobs: self.blobs.clone(),
            plugins: self.plugins.clone(),
            remote_clients: self.remote_clients.clone(),
            secrets: self.secrets.clone(),
            allowed_paths: self.allowed_paths.clone(),
        }
    }

    /// The loaded plugin `name`, reloading the registry once when this process does not have it
    /// yet (see [`Backends::plugin`]).
    pub async fn plugin(&self, name: &str) -> anyhow::Result<Arc<LoadedPlugin>> {
        self.backends().plugin(name).await
    }
}
