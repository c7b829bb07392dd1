//! Plugins installed at runtime: the `plugins` table, their components stored as artifacts, and
//! keeping a process's [`PluginRuntime`] in step with the table.
//!
//! Installing validates the component completely ([`PluginRuntime::prepare`]) and checks that its
//! names are free before anything is written; the component's bytes are then committed to the
//! blob store, recorded as an artifact and as a `plugins` row, and only then registered in this
//! process. A rejected component leaves no row, no artifact and no registered plugin.
//!
//! Other processes learn about an install, upgrade, disable or removal when they call
//! [`reload_from_db`], which makes their registry match the table.

use std::sync::Arc;

use futures::TryStreamExt as _;
use serde::Serialize;
use serde_json::Value;

use super::Backends;
use super::artifacts;
use crate::db::{Db, PLUGINS_CHANNEL, announce, now};
use crate::plugins::PluginInfo;
use crate::plugins::runtime::{LoadedPlugin, PluginRuntime, PluginSource};
use crate::storage::BlobStore;

/// Serializes installs, upgrades and removals within a process, so two requests for one name
/// cannot interleave their checks and writes. Across processes the table's primary key holds.
static CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Why a change to the installed plugins was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The component or the request failed a check (400); the message names the check.
    #[error("{0}")]
    Rejected(String),
    /// The change conflicts with the server's state (409): repositories still use the plugin, or
    /// it is built in.
    #[error("{0}")]
    Conflict(String),
    /// No plugin has this name (404).
    #[error("no plugin named {0:?}")]
    NotFound(String),
    /// Storage or database failure (500).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for RegistryError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}

/// What an install did.
#[derive(Debug)]
pub struct Installed {
    /// The plugin now registered.
    pub plugin: Arc<LoadedPlugin>,
    /// The version it replaced, for an upgrade.
    pub replaced_version: Option<String>,
}

/// A row of the `plugins` table.
#[derive(Debug, Clone)]
pub struct InstalledRow {
    /// Plugin name (primary key).
    pub name: String,
    /// sha256 of the component (its artifact).
    pub sha256: String,
    /// Id of the component's artifact.
    pub artifact_id: String,
    /// What `describe` returned, as JSON.
    pub info: Value,
    /// Whether the plugin is registered and usable.
    pub enabled: bool,
    /// When it was first installed.
    pub created: String,
    /// When it was last installed, upgraded, enabled or disabled.
    pub updated: String,
}

/// `describe`'s answer as JSON (the `info` column and the REST representation).
pub fn info_json(info: &PluginInfo) -> Value {
    /// The declared REST names, as stored.
    #[derive(Serialize)]
    struct Names<'a> {
        repository: &'a str,
        remote: &'a str,
        publication: &'a str,
        distribution: &'a str,
    }
    /// One content type, as stored.
    #[derive(Serialize)]
    struct ContentType<'a> {
        name: &'a str,
        description: &'a str,
        natural_key_fields: &'a [String],
        endpoint: Option<&'a str>,
        indexed_fields: &'a [String],
        repository_key: Option<&'a str>,
    }
    /// `describe`'s answer, as stored.
    #[derive(Serialize)]
    struct Info<'a> {
        name: &'a str,
        version: &'a str,
        wit_version: &'a str,
        content_types: Vec<ContentType<'a>>,
        capabilities: &'a [String],
        rest_names: Option<Names<'a>>,
        root: Option<&'a str>,
        remote_fields: Value,
        distribution_fields: Value,
    }
    let schema = |text: &str| serde_json::from_str(text).unwrap_or(Value::Null);
    let info = Info {
        name: &info.name,
        version: &info.version,
        wit_version: &info.wit_version,
        content_types: info
            .content_types
            .iter()
            .map(|t| ContentType {
                name: &t.name,
                description: &t.description,
                natural_key_fields: &t.natural_key_fields,
                endpoint: t.endpoint.as_deref(),
                indexed_fields: &t.indexed_fields,
                repository_key: t.repository_key.as_deref(),
            })
            .collect(),
        capabilities: &info.capabilities,
        rest_names: info.rest_names.as_ref().map(|names| Names {
            repository: &names.repository,
            remote: &names.remote,
            publication: &names.publication,
            distribution: &names.distribution,
        }),
        root: info.root.as_deref(),
        remote_fields: schema(&info.remote_fields),
        distribution_fields: schema(&info.distribution_fields),
    };
    // Plain data: serializing it cannot fail.
    serde_json::to_value(info).unwrap_or(Value::Null)
}

/// A `plugins` row as stored: `info` is JSON text and `enabled` is 0 or 1.
#[derive(Debug, sqlx::FromRow)]
struct PluginRow {
    name: String,
    sha256: String,
    artifact_id: String,
    info: String,
    enabled: i64,
    created: String,
    updated: String,
}

/// Every row of the `plugins` table, by name.
pub async fn rows(db: &Db) -> Result<Vec<InstalledRow>, sqlx::Error> {
    let rows = sqlx::query_as::<_, PluginRow>(
        "SELECT name, sha256, artifact_id, info, enabled, created, updated FROM plugins ORDER BY name",
    )
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| InstalledRow {
            name: row.name,
            sha256: row.sha256,
            artifact_id: row.artifact_id,
            info: serde_json::from_str(&row.info).unwrap_or(Value::Null),
            enabled: row.enabled != 0,
            created: row.created,
            updated: row.updated,
        })
        .collect())
}

/// The row of the plugin called `name`.
pub async fn row(db: &Db, name: &str) -> Result<Option<InstalledRow>, sqlx::Error> {
    Ok(rows(db).await?.into_iter().find(|row| row.name == name))
}

/// Validates `bytes` as a plugin component and installs it, or upgrades the installed plugin of
/// the same name (which is also re-enabled). Calls already running keep the old version; every
/// later call uses the new one.
pub async fn install(
    backends: &Backends,
    max_bytes: u64,
    bytes: Vec<u8>,
) -> Result<Installed, RegistryError> {
    let limit = max_bytes;
    if bytes.len() as u64 > limit {
        return Err(RegistryError::Rejected(too_large(limit)));
    }
    let _guard = CHANGES.lock().await;
    // Staged before validation (the bytes move into the runtime), committed only after it: a
    // rejected component's staged file is removed when `staged` is dropped.
    let bytes = bytes::Bytes::from(bytes);
    let staged = backends
        .blobs
        .stage_bytes(bytes.clone())
        .await
        .map_err(|error| anyhow::anyhow!("staging the component: {error}"))?;
    let started = std::time::Instant::now();
    let plugin = backends
        .plugins
        // The staging's share is gone: no copy.
        .prepare(Vec::from(bytes), PluginSource::Installed)
        .await
        .map_err(|error| RegistryError::Rejected(format!("{error:#}")))?;
    let name = plugin.info.name.clone();
    let existing = row(&backends.db, &name).await?;
    if let Some(clash) = backends
        .plugins
        .clash(&plugin.info, existing.as_ref().map(|_| name.as_str()))
    {
        return Err(RegistryError::Rejected(clash));
    }
    // Disabled plugins are not registered, but their names stay theirs.
    for other in rows(&backends.db)
        .await?
        .iter()
        .filter(|r| !r.enabled && r.name != name)
    {
        if let Some(content_type) = plugin.info.content_types.iter().find(|t| {
            other.info["content_types"]
                .as_array()
                .is_some_and(|types| types.iter().any(|o| o["name"] == t.name.as_str()))
        }) {
            return Err(RegistryError::Rejected(format!(
                "type name clash: content type {:?} is already provided by the disabled plugin {:?}",
                content_type.name, other.name
            )));
        }
    }
    let (sha256, size) = (staged.sha256.clone(), staged.size);
    backends.blobs.commit(staged).await?;
    let artifact_id = artifacts::record(&backends.db, &sha256, size).await?;
    let info = info_json(&plugin.info).to_string();
    let timestamp = now();
    let mut tx = backends.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO plugins (name, version, wit_version, sha256, artifact_id, info, enabled, created, updated)
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)
         ON CONFLICT (name) DO UPDATE SET version = excluded.version, wit_version = excluded.wit_version,
             sha256 = excluded.sha256, artifact_id = excluded.artifact_id, info = excluded.info,
             enabled = 1, updated = excluded.updated",
    )
    .bind(&name)
    .bind(&plugin.info.version)
    .bind(&plugin.info.wit_version)
    .bind(&sha256)
    .bind(&artifact_id)
    .bind(&info)
    .bind(&timestamp)
    .execute(&mut *tx)
    .await?;
    // Every other process reloads its registry when this commits.
    announce(&backends.db, &mut tx, PLUGINS_CHANNEL).await?;
    tx.commit().await?;
    let plugin = Arc::new(plugin);
    // Indexed before it serves: its lookups need the keys of the units stored so far.
    super::content_keys::declare(&backends.db, &plugin.info).await?;
    backends.plugins.replace(plugin.clone());
    let replaced_version =
        existing.map(|row| row.info["version"].as_str().unwrap_or("").to_owned());
    tracing::info!(
        plugin = %name,
        version = %plugin.info.version,
        sha256 = %sha256,
        bytes = size,
        elapsed_ms = started.elapsed().as_millis() as u64,
        upgraded_from = ?replaced_version,
        "installed plugin"
    );
    Ok(Installed {
        plugin,
        replaced_version,
    })
}

/// Removes the installed plugin `name`. Refused while repositories of its types exist, unless
/// `force`: then the repositories stay in the database, unusable until a plugin of that name is
/// installed again.
pub async fn remove(backends: &Backends, name: &str, force: bool) -> Result<(), RegistryError> {
    let _guard = CHANGES.lock().await;
    let Some(_row) = row(&backends.db, name).await? else {
        return Err(match backends.plugins.get(name) {
            Some(loaded) => RegistryError::Conflict(not_installed(&loaded)),
            None => RegistryError::NotFound(name.to_owned()),
        });
    };
    if !force {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT name FROM repositories WHERE plugin = $1 ORDER BY name")
                .bind(name)
                .fetch_all(backends.db.pool())
                .await?;
        if !names.is_empty() {
            return Err(RegistryError::Conflict(format!(
                "plugin {name:?} still has {} repositories ({}); delete them first, or remove the plugin anyway with ?force=true (the repositories then stay, unusable until a plugin named {name:?} is installed again)",
                names.len(),
                names.join(", ")
            )));
        }
    }
    let mut tx = backends.db.begin_write().await?;
    sqlx::query("DELETE FROM plugins WHERE name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    // Every other process reloads its registry when this commits.
    announce(&backends.db, &mut tx, PLUGINS_CHANNEL).await?;
    tx.commit().await?;
    backends.plugins.remove(name);
    tracing::info!(plugin = %name, force, "removed plugin");
    Ok(())
}

/// Disables (unregisters, keeping the row and the component) or re-enables the installed plugin
/// `name`. While disabled, its REST routes answer 404 and its tasks fail.
pub async fn set_enabled(
    backends: &Backends,
    name: &str,
    enabled: bool,
) -> Result<(), RegistryError> {
    let _guard = CHANGES.lock().await;
    let Some(row) = row(&backends.db, name).await? else {
        return Err(match backends.plugins.get(name) {
            Some(loaded) => RegistryError::Conflict(not_installed(&loaded)),
            None => RegistryError::NotFound(name.to_owned()),
        });
    };
    if enabled
        && backends
            .plugins
            .get(name)
            .is_none_or(|p| p.sha256 != row.sha256)
    {
        let plugin = load_row(&backends.plugins, &backends.blobs, &row)
            .await
            .map_err(|error| RegistryError::Rejected(format!("{error:#}")))?;
        backends.plugins.replace(Arc::new(plugin));
    }
    let mut tx = backends.db.begin_write().await?;
    sqlx::query("UPDATE plugins SET enabled = $1, updated = $2 WHERE name = $3")
        .bind(i64::from(enabled))
        .bind(now())
        .bind(name)
        .execute(&mut *tx)
        .await?;
    // Every other process reloads its registry when this commits.
    announce(&backends.db, &mut tx, PLUGINS_CHANNEL).await?;
    tx.commit().await?;
    if !enabled {
        backends.plugins.remove(name);
    }
    Ok(())
}

/// Makes this process's registry match the `plugins` table: loads enabled plugins that are
/// missing or at another version, unregisters installed plugins that were removed or disabled.
/// Built-in and plugin-directory plugins are left alone. A plugin that fails to load is logged
/// and skipped, so one broken component cannot keep a process from starting.
///
/// Called at start-up; call it again when another process has changed the table.
pub async fn reload_from_db(backends: &Backends) -> anyhow::Result<()> {
    sync_registry(&backends.plugins, &backends.db, &backends.blobs).await
}

/// [`reload_from_db`] on the parts of an [`App`] (start-up runs it before the `App` exists).
pub async fn sync_registry(
    runtime: &PluginRuntime,
    db: &Db,
    blobs: &BlobStore,
) -> anyhow::Result<()> {
    let _guard = CHANGES.lock().await;
    let rows = rows(db).await?;
    for row in rows.iter().filter(|row| row.enabled) {
        if runtime
            .get(&row.name)
            .is_some_and(|p| p.sha256 == row.sha256)
        {
            continue;
        }
        let loaded = match load_row(runtime, blobs, row).await {
            Ok(plugin) => plugin,
            Err(error) => {
                tracing::error!(plugin = %row.name, error = %format!("{error:#}"), "cannot load installed plugin; skipped");
                continue;
            }
        };
        // Only an older installed version of this plugin may be replaced, never a built-in or
        // plugin-directory plugin that took the name meanwhile.
        let replacing = runtime
            .get(&row.name)
            .filter(|p| p.source == PluginSource::Installed)
            .map(|_| row.name.as_str());
        if let Some(clash) = runtime.clash(&loaded.info, replacing) {
            tracing::error!(plugin = %row.name, %clash, "cannot load installed plugin; skipped");
            continue;
        }
        tracing::info!(plugin = %row.name, version = %loaded.info.version, "loaded installed plugin");
        runtime.replace(Arc::new(loaded));
    }
    for loaded in runtime.list() {
        if loaded.source == PluginSource::Installed
            && !rows
                .iter()
                .any(|row| row.enabled && row.name == loaded.info.name)
        {
            runtime.remove(&loaded.info.name);
        }
    }
    // The fields every plugin now loaded indexes (built-in and directory ones included).
    for loaded in runtime.list() {
        super::content_keys::declare(db, &loaded.info).await?;
    }
    Ok(())
}

/// Reads an installed component from storage and prepares it (compiled code comes from the
/// on-disk cache after the first time).
async fn load_row(
    runtime: &PluginRuntime,
    blobs: &BlobStore,
    row: &InstalledRow,
) -> anyhow::Result<LoadedPlugin> {
    let bytes: Vec<u8> = blobs
        .read(&row.sha256, None)
        .await?
        .try_fold(Vec::new(), |mut out, chunk| async move {
            out.extend_from_slice(&chunk);
            Ok(out)
        })
        .await?;
    let plugin = runtime.prepare(bytes, PluginSource::Installed).await?;
    anyhow::ensure!(
        plugin.info.name == row.name,
        "the stored component of {:?} now describes itself as {:?}",
        row.name,
        plugin.info.name
    );
    Ok(plugin)
}

/// The message of the size-limit check (the API uses it too, while it streams an upload).
pub fn too_large(limit: u64) -> String {
    format!(
        "too large: the component is larger than the limit of {limit} bytes (--plugin-max-bytes, GRANARY_PLUGIN_MAX_BYTES)"
    )
}

fn not_installed(loaded: &LoadedPlugin) -> String {
    match loaded.source {
        PluginSource::Builtin => format!(
            "{:?} is a built-in plugin; it cannot be removed or disabled",
            loaded.info.name
        ),
        _ => format!(
            "{:?} was loaded from the plugin directory; remove its file and restart instead",
            loaded.info.name
        ),
    }
}
