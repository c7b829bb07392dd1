//! The core model (Pulp 3 semantics): artifacts, content, repositories and their immutable
//! versions, remotes, publications, distributions.
//!
//! # Layout
//! - [`additions`]: units a plugin's `handle` adds to a repository (uploads, pull-through).
//! - [`hrefs`]: REST identities (`pulp_href`) of every object.
//! - [`versions`]: which content is in which repository version, and making new versions.
//! - [`artifacts`]: verified ingest of bytes into storage and the `artifacts` table.
//! - [`declarations`]: recording units declared by plugins (sync, upload).
//! - [`remotes`]: remotes and HTTP clients configured from them.
//! - [`upstream_pages`]: upstream pages kept for conditional requests.
//! - [`uploads`]: turning an uploaded file into a unit through its plugin.
//! - [`chunked_uploads`]: byte ranges of `uploads/` assembled into an artifact.
//! - [`upload_sessions`]: plugins' upload sessions (WIT 0.3.0 `uploads`), appended to over
//!   several requests and completed as an artifact.
//! - [`objects`]: updating and deleting repositories, remotes, distributions, publications.
//! - [`content_guards`]: the kinds of content guard, their hrefs and settings, signed URLs and
//!   client certificates.
//! - [`distributions`]: creating a distribution, and which base paths overlap.
//! - [`maintenance`]: orphan cleanup, reclaiming space, repairing stored artifacts.
//! - [`publications`]: building a publication through a plugin.
//! - [`replication`]: mirroring another Granary's (or Pulp's) distributions (`upstream-pulps/`).
//! - [`transfer`]: exports of repository versions to a directory and imports of them (Pulp's
//!   import/export), and filesystem exports of publications.
//! - [`registry`]: plugins installed at runtime (the `plugins` table, components stored as
//!   artifacts), install/upgrade/disable/remove, and re-syncing a process with the table.

pub mod acs;
pub mod additions;
pub mod app_statuses;
pub mod artifacts;
pub mod blocklists;
pub mod chunked_uploads;
pub mod content_guards;
pub mod content_keys;
pub mod declarations;
pub mod distributions;
pub mod hrefs;
pub mod maintenance;
pub mod objects;
pub mod publications;
pub mod registry;
pub mod remotes;
pub mod replication;
pub mod transfer;
pub mod upload_sessions;
pub mod uploads;
pub mod upstream_pages;
pub mod versions;

/// The Pulp API level Granary implements, reported for `core` and for every plugin in
/// `info.x-pulp-app-versions`, `status/` and each process's `versions`. pulp-cli gates commands
/// and request shapes on these versions (it needs `core>=3.49`; from `core>=3.86` it expects task
/// results inline, from `3.106` distributions' `repository_version`), so this is the level whose
/// shapes the API serves.
pub const PULP_API_VERSION: &str = "3.85.0";

use std::sync::Arc;

use anyhow::Context as _;

use crate::db::Db;
use crate::plugins::{LoadedPlugin, PluginRuntime};
use crate::storage::BlobStore;

/// What domain work runs on: the database, artifact storage, the loaded plugins and the remotes'
/// HTTP clients. The wiring builds it once per process and hands it to workers and handlers;
/// cloning it clones four `Arc`s. Functions that need less take less (a `&Db`).
#[derive(Clone, Debug)]
pub struct Backends {
    /// The database.
    pub db: Arc<Db>,
    /// Artifact storage.
    pub blobs: Arc<BlobStore>,
    /// Loaded plugins.
    pub plugins: Arc<PluginRuntime>,
    /// HTTP clients of remotes, one per remote configuration.
    pub remote_clients: Arc<remotes::RemoteClients>,
    /// Seals and opens the credentials stored in the database.
    pub secrets: Arc<crate::secrets::FieldCipher>,
    /// The directories exports and imports may use.
    pub allowed_paths: Arc<transfer::AllowedPaths>,
}

impl Backends {
    /// The loaded plugin `name`. A plugin this process has not loaded yet may just have been
    /// installed through another process (whose notification is still on its way): the registry
    /// is reloaded from the database once before giving up.
    pub async fn plugin(&self, name: &str) -> anyhow::Result<Arc<LoadedPlugin>> {
        if let Some(plugin) = self.plugins.get(name) {
            return Ok(plugin);
        }
        registry::reload_from_db(self).await?;
        self.plugins
            .get(name)
            .with_context(|| format!("plugin {name:?} is not loaded"))
    }
}
