//! The wasmtime engine, the registry of loaded plugins, and sandboxed calls of their exports.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};

use super::ArtifactRef;
use super::bindings::{ContentType, ContentTypePre, v0_1 as bindings_v0_1, v0_2 as bindings_v0_2};
use super::host_body::IncomingBody;
use super::rest_names::RestNames;
use super::scope::{CallScope, CallState};
use super::{
    HandleOutcome, HttpRequest, PluginError, PluginInfo, RemoteConfig, UnitDeclaration, VersionInfo,
};
use super::{v0_1, v0_2};

/// WIT package versions this host runs.
pub const SUPPORTED_WIT_VERSIONS: &[&str] = &["0.1.0", "0.2.0", "0.3.0"];

/// The WIT package every plugin imports from; its imports carry the version the plugin targets.
const WIT_PACKAGE: &str = "granary:plugin";

/// Most log-in paths a plugin may name, and the longest.
const MAX_LOG_IN_PATHS: usize = 4;
const MAX_LOG_IN_PATH: usize = 64;

/// Most CPU time `describe` may take when a plugin is loaded: it must be cheap.
const DESCRIBE_CPU_LIMIT: Duration = Duration::from_secs(10);

/// Capabilities a plugin may ask for in `describe`. `http`: outbound GET/HEAD to the remote's
/// origin during `sync`, and during `handle` when the distribution has a remote.
pub const CAPABILITIES: &[&str] = &["http"];

/// First path segments the host serves itself, which no plugin's distribution prefix may take.
const RESERVED_PREFIXES: &[&str] = &["pulp", "api", "auth", "assets", "static"];

// What a pooled slot keeps mapped between calls, reset in place rather than unmapped: about what
// a typical call touches, so that the next one takes no page faults there. The peak resident size
// is unchanged (a call touches these pages either way); between calls, at most these bytes per
// slot that was used stay resident.
/// Bytes of each linear memory kept mapped between calls (its shadow stack and first heap pages).
const KEEP_RESIDENT_MEMORY_BYTES: usize = 1 << 20;
/// Bytes of each table kept mapped between calls.
const KEEP_RESIDENT_TABLE_BYTES: usize = 64 << 10;
/// Bytes of each async (fiber) stack kept mapped between calls.
const KEEP_RESIDENT_STACK_BYTES: usize = 256 << 10;

/// How often the engine's epoch advances: the granularity of the CPU-time limit.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Sandbox limits applied to every call.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// CPU time a call may use.
    pub cpu_time: Duration,
    /// Linear memory an instance may use, in bytes.
    pub memory_bytes: usize,
    /// Bytes a call may make the host buffer or store.
    pub max_output_bytes: u64,
}

/// A call ended by the host: a limit was reached or the guest broke the sandbox rules.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SandboxViolation(String);

impl SandboxViolation {
    /// A violation with a message for the user.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Why a plugin call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin returned an error (bad upstream data, unsupported operation...).
    #[error("{}", .0.message)]
    Plugin(PluginError),
    /// The call was stopped: limit exceeded, sandbox violation, or the guest trapped.
    #[error("{0}")]
    Sandbox(String),
}

/// Where a loaded plugin came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginSource {
    /// Ships inside the binary; cannot be removed.
    Builtin,
    /// A `*.wasm` file of `--plugin-dir`, loaded at start; managed by the operator's files.
    Directory,
    /// Installed through the REST API and recorded in the `plugins` table.
    Installed,
}

/// A plugin ready to be called.
pub struct LoadedPlugin {
    /// What the plugin said about itself.
    pub info: PluginInfo,
    /// sha256 of the component bytes.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// Whether it ships inside the binary.
    pub builtin: bool,
    /// Where it came from.
    pub source: PluginSource,
    pre: Pre,
}

/// A component linked and ready to instantiate, by the WIT version it was built against.
enum Pre {
    /// `granary:plugin@0.3.0`.
    Current(ContentTypePre<CallState>),
    /// `granary:plugin@0.2.0`, adapted by `v0_2.rs`.
    V0_2(bindings_v0_2::ContentTypePre<CallState>),
    /// `granary:plugin@0.1.0`, adapted by `v0_1.rs`.
    V0_1(bindings_v0_1::ContentTypePre<CallState>),
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.info.name)
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl LoadedPlugin {
    /// Whether the plugin asked for a capability.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.info.capabilities.iter().any(|c| c == capability)
    }

    /// Whether the plugin provides this content type.
    pub fn has_content_type(&self, name: &str) -> bool {
        self.info.content_types.iter().any(|t| t.name == name)
    }

    /// The first segment of the plugin's own content routes, `/<prefix>/<base_path>/…`: its
    /// distribution REST name, when it declares REST names.
    pub fn distribution_prefix(&self) -> Option<&str> {
        self.info
            .rest_names
            .as_ref()
            .map(|names| names.distribution.as_str())
    }

    /// Whether `path` (below a distribution) is one of the plugin's log-in paths
    /// (`plugin-info.log-in-paths`): exactly, or below one that ends in `/`.
    pub fn is_log_in_path(&self, path: &str) -> bool {
        self.info.log_in_paths.iter().any(|log_in| {
            path == log_in || (log_in.ends_with('/') && path.starts_with(log_in.as_str()))
        })
    }

    /// The segment the plugin answers at, at the server's root (`plugin-info.root`).
    pub fn root(&self) -> Option<&str> {
        self.info.root.as_deref()
    }

    /// The first path segments the plugin's requests arrive under: its distribution prefix and
    /// its root.
    fn first_segments(&self) -> impl Iterator<Item = &str> {
        [self.distribution_prefix(), self.root()]
            .into_iter()
            .flatten()
    }

    /// The (content type, field) pairs the plugin's content types index.
    pub fn indexed_fields(&self) -> Vec<(String, String)> {
        self.info
            .content_types
            .iter()
            .flat_map(|t| t.indexed_fields.iter().map(|f| (t.name.clone(), f.clone())))
            .collect()
    }

    /// Whether `handle` reads request bodies as streams (0.3.0); older plugins get them as
    /// bytes, read by the host first.
    pub fn streams_bodies(&self) -> bool {
        matches!(self.pre, Pre::Current(_))
    }

    /// Names of the plugin's content types.
    pub fn content_type_names(&self) -> Vec<String> {
        self.info
            .content_types
            .iter()
            .map(|t| t.name.clone())
            .collect()
    }
}

/// The engine, the linker and the loaded plugins.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<CallState>,
    limits: Limits,
    plugins: RwLock<BTreeMap<String, Arc<LoadedPlugin>>>,
    /// The REST names of `plugins`, rebuilt whenever they change (under their write lock).
    rest_names: RwLock<Arc<RestNames>>,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("limits", &self.limits)
            .finish()
    }
}

/// Runs one export on a fresh instance: builds the store, instantiates, calls (the `current`,
/// `v0_2` or `v0_1` expression, by the component's WIT version; all yield current types),
/// classifies errors, and hands back the call's scope (a publish needs what it wrote).
macro_rules! call_export {
    ($runtime:expr, $pre:expr, $store:ident, $scope:expr, |$guest:ident| current => $current:expr, v0_2 => $v0_2:expr, v0_1 => $old:expr $(,)?) => {{
        let mut $store = $runtime.new_store($scope);
        let outcome: wasmtime::Result<_> = async {
            match $pre {
                Pre::Current(pre) => {
                    let $guest = pre.instantiate_async(&mut $store).await?;
                    $current
                }
                Pre::V0_2(pre) => {
                    let $guest = pre.instantiate_async(&mut $store).await?;
                    $v0_2
                }
                Pre::V0_1(pre) => {
                    let $guest = pre.instantiate_async(&mut $store).await?;
                    $old
                }
            }
        }
        .await;
        let result = outcome.map_err(|error| $runtime.classify(error, $store.data()));
        (result, $store.into_data().scope)
    }};
}

/// The whole of `body`, for a plugin of a version that receives bytes; empty when it failed,
/// the fault being noted in the call's scope (the client's answer is then the host's).
async fn buffered(state: &mut CallState, body: IncomingBody) -> Vec<u8> {
    body.read_to_end().await.unwrap_or_else(|fault| {
        state.scope.body_fault.get_or_insert(fault);
        Vec::new()
    })
}

/// A request without a distribution for a plugin older than 0.3.0, which has no root routes to
/// receive one.
fn no_root_routes() -> wasmtime::Error {
    wasmtime::Error::msg("a plugin older than WIT 0.3.0 has no root routes")
}

/// Converts a 0.1.0 export's result: the value with `convert`, the error to the current record.
fn old_result<T, U>(
    result: wasmtime::Result<Result<T, bindings_v0_1::granary::plugin::types::PluginError>>,
    convert: impl FnOnce(T) -> U,
) -> wasmtime::Result<Result<U, PluginError>> {
    result.map(|inner| inner.map(convert).map_err(v0_1::error_in))
}

/// Converts a 0.2.0 export's result, as [`old_result`] does a 0.1.0 one.
fn v0_2_result<T, U>(
    result: wasmtime::Result<Result<T, bindings_v0_2::granary::plugin::types::PluginError>>,
    convert: impl FnOnce(T) -> U,
) -> wasmtime::Result<Result<U, PluginError>> {
    result.map(|inner| inner.map(convert).map_err(v0_2::error_in))
}

impl PluginRuntime {
    /// Creates the engine (pooling allocator, epoch interruption, on-disk compile cache under
    /// `cache_dir`) and starts the epoch ticker.
    pub fn new(cache_dir: &Path, limits: Limits) -> anyhow::Result<Self> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        std::fs::create_dir_all(cache_dir)
            .with_context(|| format!("creating {}", cache_dir.display()))?;
        // Absolute: wasmtime's compile cache insists, and a configured directory may be relative.
        let cache_dir = cache_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", cache_dir.display()))?;
        let mut cache_config = wasmtime::CacheConfig::new();
        cache_config.with_directory(cache_dir);
        config.cache(Some(
            wasmtime::Cache::new(cache_config)
                .map_err(|e| wasm_error("configuring the compile cache", e))?,
        ));
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(super::INSTANCE_POOL_SIZE)
            .total_core_instances(1024)
            .total_memories(256)
            .total_tables(1024)
            .max_memory_size(limits.memory_bytes);
        // A slot's low pages stay mapped between calls and are reset in place (only those the
        // last call touched, where the kernel can tell: PAGEMAP_SCAN, Linux 6.7), instead of
        // being unmapped and faulted in again page by page by the next call: of the 210 µs a
        // wheel upload's `handle` ran, about 65 went to those faults. Each call still
        // starts from the module's initial memory (`every_call_starts_from_a_clean_instance`).
        pool.linear_memory_keep_resident(KEEP_RESIDENT_MEMORY_BYTES)
            .table_keep_resident(KEEP_RESIDENT_TABLE_BYTES)
            .async_stack_keep_resident(KEEP_RESIDENT_STACK_BYTES)
            .pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine =
            Engine::new(&config).map_err(|e| wasm_error("creating the wasmtime engine", e))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| wasm_error("linking WASI", e))?;
        // Every supported version's imports, side by side (their instance names carry the version).
        ContentType::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |state| {
            state
        })
        .map_err(|e| wasm_error("linking the granary:plugin imports", e))?;
        bindings_v0_1::ContentType::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |state| state,
        )
        .map_err(|e| wasm_error("linking the granary:plugin@0.1.0 imports", e))?;
        bindings_v0_2::ContentType::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |state| state,
        )
        .map_err(|e| wasm_error("linking the granary:plugin@0.2.0 imports", e))?;

        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("granary-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;

        Ok(Self {
            engine,
            linker,
            limits,
            plugins: RwLock::new(BTreeMap::new()),
            rest_names: RwLock::new(Arc::default()),
        })
    }

    /// Compiles (or loads from the cache), links, describes and validates a component, then
    /// registers it under its name. Nothing is registered when any check fails.
    pub async fn load(&self, bytes: Vec<u8>, builtin: bool) -> anyhow::Result<Arc<LoadedPlugin>> {
        let source = if builtin {
            PluginSource::Builtin
        } else {
            PluginSource::Directory
        };
        let plugin = Arc::new(self.prepare(bytes, source).await?);
        let mut plugins = self.plugins.write().expect("plugin registry lock");
        if let Some(existing) = plugins.get(&plugin.info.name)
            && existing.sha256 == plugin.sha256
        {
            return Ok(existing.clone());
        }
        if let Some(clash) = clash(plugins.values(), &plugin.info, None) {
            anyhow::bail!("{clash}");
        }
        plugins.insert(plugin.info.name.clone(), plugin.clone());
        self.renamed(&plugins);
        Ok(plugin)
    }

    /// Runs every check a component must pass before it may be registered, without registering
    /// it: the file is a component (read with `wasmparser`), it imports a `granary:plugin` version
    /// this host supports, it compiles and links, its `describe` returns within
    /// [`DESCRIBE_CPU_LIMIT`] and the memory limit, and what it describes is valid and names the
    /// same WIT version as its imports. Each error message starts with the check that failed.
    pub async fn prepare(
        &self,
        bytes: Vec<u8>,
        source: PluginSource,
    ) -> anyhow::Result<LoadedPlugin> {
        let imported_version = inspect_component(&bytes)?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let size = bytes.len() as u64;
        let engine = self.engine.clone();
        let component =
            tokio::task::spawn_blocking(move || Component::from_binary(&engine, &bytes))
                .await?
                .map_err(|error| anyhow::anyhow!("not a valid component: {error:#}"))?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|error| {
            anyhow::anyhow!("the component needs imports this host does not provide: {error:#}")
        })?;
        let not_the_world = |error: wasmtime::Error| {
            anyhow::anyhow!("the component does not export the content-type world: {error:#}")
        };
        let pre = match imported_version.as_str() {
            "0.1.0" => {
                Pre::V0_1(bindings_v0_1::ContentTypePre::new(instance_pre).map_err(not_the_world)?)
            }
            "0.2.0" => {
                Pre::V0_2(bindings_v0_2::ContentTypePre::new(instance_pre).map_err(not_the_world)?)
            }
            _ => Pre::Current(ContentTypePre::new(instance_pre).map_err(not_the_world)?),
        };
        let info = self
            .describe_pre(&pre)
            .await
            .map_err(|error| anyhow::anyhow!("describe failed: {error}"))?;
        validate_info(&info)?;
        anyhow::ensure!(
            info.wit_version == imported_version,
            "WIT version mismatch: describe says {:?} but the component imports {WIT_PACKAGE}@{imported_version}",
            info.wit_version
        );
        Ok(LoadedPlugin {
            info,
            sha256,
            size,
            builtin: source == PluginSource::Builtin,
            source,
            pre,
        })
    }

    /// The first reason `info` cannot sit beside the loaded plugins, ignoring the plugin named
    /// `replacing` (the one an upgrade replaces): its name or one of its content type names is
    /// taken.
    pub fn clash(&self, info: &PluginInfo, replacing: Option<&str>) -> Option<String> {
        let plugins = self.plugins.read().expect("plugin registry lock");
        clash(plugins.values(), info, replacing)
    }

    /// Registers `plugin`, replacing any plugin of the same name: calls that already started keep
    /// the instance they were given, every later call uses the new one. The caller has checked
    /// [`PluginRuntime::clash`].
    pub fn replace(&self, plugin: Arc<LoadedPlugin>) -> Option<Arc<LoadedPlugin>> {
        let mut plugins = self.plugins.write().expect("plugin registry lock");
        let replaced = plugins.insert(plugin.info.name.clone(), plugin);
        self.renamed(&plugins);
        replaced
    }

    /// Unregisters the plugin called `name`; returns it.
    pub fn remove(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        let mut plugins = self.plugins.write().expect("plugin registry lock");
        let removed = plugins.remove(name);
        self.renamed(&plugins);
        removed
    }

    /// Rebuilds the REST names from the plugins now loaded (called with their write lock held,
    /// so the names never describe another set of plugins).
    fn renamed(&self, plugins: &BTreeMap<String, Arc<LoadedPlugin>>) {
        *self.rest_names.write().expect("REST names lock") =
            Arc::new(RestNames::of(plugins.values().map(|plugin| &plugin.info)));
    }

    /// The REST names of the loaded plugins, as they are now.
    pub fn rest_names(&self) -> Arc<RestNames> {
        self.rest_names.read().expect("REST names lock").clone()
    }

    /// The plugin with this name.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins
            .read()
            .expect("plugin registry lock")
            .get(name)
            .cloned()
    }

    /// All loaded plugins, by name.
    pub fn list(&self) -> Vec<Arc<LoadedPlugin>> {
        self.plugins
            .read()
            .expect("plugin registry lock")
            .values()
            .cloned()
            .collect()
    }

    /// Calls `describe`.
    pub async fn describe(&self, plugin: &LoadedPlugin) -> Result<PluginInfo, CallError> {
        let (result, _) = call_export!(self, &plugin.pre, store, CallScope::default(), |guest|
            current => guest.call_describe(&mut store).await,
            v0_2 => Ok(v0_2::plugin_info_in(guest.call_describe(&mut store).await?)),
            v0_1 => Ok(v0_1::plugin_info_in(guest.call_describe(&mut store).await?)));
        result
    }

    /// Calls `describe` on a component that is not registered yet, with the CPU budget of
    /// [`DESCRIBE_CPU_LIMIT`] at most.
    async fn describe_pre(&self, pre: &Pre) -> Result<PluginInfo, CallError> {
        let cpu_time = self.limits.cpu_time.min(DESCRIBE_CPU_LIMIT);
        let mut store = self.new_store_with(CallScope::default(), cpu_time);
        let outcome: wasmtime::Result<_> = async {
            match pre {
                Pre::Current(pre) => {
                    let guest = pre.instantiate_async(&mut store).await?;
                    guest.call_describe(&mut store).await
                }
                Pre::V0_2(pre) => {
                    let guest = pre.instantiate_async(&mut store).await?;
                    Ok(v0_2::plugin_info_in(guest.call_describe(&mut store).await?))
                }
                Pre::V0_1(pre) => {
                    let guest = pre.instantiate_async(&mut store).await?;
                    Ok(v0_1::plugin_info_in(guest.call_describe(&mut store).await?))
                }
            }
        }
        .await;
        outcome.map_err(|error| self.classify(error, store.data()))
    }

    /// Calls `sync`; declarations arrive through the scope's sink.
    pub async fn sync(
        &self,
        plugin: &LoadedPlugin,
        scope: CallScope,
        remote: &RemoteConfig,
    ) -> Result<(), CallError> {
        let (result, _) = call_export!(self, &plugin.pre, store, scope, |guest|
        current => guest.call_sync(&mut store, remote).await,
        v0_2 => v0_2_result(
            guest.call_sync(&mut store, &v0_2::remote_out(remote)).await,
            |()| (),
        ),
        v0_1 => old_result(
            guest.call_sync(&mut store, &v0_1::remote_out(remote)).await,
            |()| (),
        ));
        flatten(result)
    }

    /// Calls `parse-upload` for an artifact the scope grants. Returns the call's scope too: it
    /// holds the artifacts `artifacts.create` stored.
    pub async fn parse_upload(
        &self,
        plugin: &LoadedPlugin,
        scope: CallScope,
        upload: &ArtifactRef,
        relative_path: Option<&str>,
    ) -> (Result<UnitDeclaration, CallError>, CallScope) {
        let relative_path = relative_path.map(str::to_owned);
        let (result, scope) = call_export!(self, &plugin.pre, store, scope, |guest|
        current => guest
            .call_parse_upload(&mut store, upload, relative_path.as_deref())
            .await,
        v0_2 => v0_2_result(
            guest
                .call_parse_upload(
                    &mut store,
                    &v0_2::artifact_ref_out(upload),
                    relative_path.as_deref(),
                )
                .await,
            v0_2::unit_in,
        ),
        v0_1 => old_result(
            guest
                .call_parse_upload(
                    &mut store,
                    &v0_1::artifact_ref_out(upload),
                    relative_path.as_deref(),
                )
                .await,
            v0_1::unit_in,
        ));
        (flatten(result), scope)
    }

    /// Calls `publish`; returns the scope, which holds the metadata files written.
    pub async fn publish(
        &self,
        plugin: &LoadedPlugin,
        scope: CallScope,
        version: &VersionInfo,
    ) -> (Result<(), CallError>, CallScope) {
        let (result, scope) = call_export!(self, &plugin.pre, store, scope, |guest|
        current => guest.call_publish(&mut store, version).await,
        v0_2 => v0_2_result(
            guest.call_publish(&mut store, &v0_2::version_out(version)).await,
            |()| (),
        ),
        v0_1 => old_result(
            guest.call_publish(&mut store, &v0_1::version_out(version)).await,
            |()| (),
        ));
        (flatten(result), scope)
    }

    /// Calls `handle` with the request `body`: a 0.3.0 plugin reads it as a stream; an older one
    /// gets it as bytes, read here to its end (the caller reads it first, outside the plugin's
    /// turn, and hands it over with [`IncomingBody::from_bytes`]). A 0.1.0 plugin sees the
    /// request without its 0.2.0 fields and never adds units. Returns the call's scope too: it
    /// holds the artifacts the call stored and the body's fault, if any.
    pub async fn handle(
        &self,
        plugin: &LoadedPlugin,
        scope: CallScope,
        request: &HttpRequest,
        body: IncomingBody,
    ) -> (Result<HandleOutcome, CallError>, CallScope) {
        let (result, scope) = call_export!(self, &plugin.pre, store, scope, |guest|
        current => {
            let body = store.data_mut().table.push(body)?;
            guest.call_handle(&mut store, request, body).await
        },
        v0_2 => {
            let body = buffered(store.data_mut(), body).await;
            let request = v0_2::request_out(request, body).ok_or_else(no_root_routes)?;
            v0_2_result(
                guest.call_handle(&mut store, &request).await,
                v0_2::outcome_in,
            )
        },
        v0_1 => {
            let body = buffered(store.data_mut(), body).await;
            old_result(
                guest.call_handle(&mut store, &v0_1::request_out(request, body)).await,
                v0_1::outcome_in,
            )
        });
        let outcome = match flatten(result) {
            Ok(outcome) => outcome,
            Err(error) => return (Err(error), scope),
        };
        // What the plugin created already counts towards the cap; the body counts too.
        if let super::HttpBody::Bytes(body) = &outcome.response.body
            && scope.created.iter().map(|a| a.size).sum::<u64>() + body.len() as u64
                > self.limits.max_output_bytes
        {
            return (
                Err(CallError::Sandbox(
                    "plugin response body exceeds the output limit".into(),
                )),
                scope,
            );
        }
        (Ok(outcome), scope)
    }

    fn new_store(&self, scope: CallScope) -> Store<CallState> {
        self.new_store_with(scope, self.limits.cpu_time)
    }

    fn new_store_with(&self, scope: CallScope, cpu_time: Duration) -> Store<CallState> {
        let state = CallState::new(
            scope,
            self.limits.memory_bytes,
            self.limits.max_output_bytes,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        let budget = (cpu_time.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        // The deadline fires once per tick while guest code runs (ticks spent in host imports are
        // not seen), so counting callbacks measures the guest's CPU time; yielding each time keeps
        // a busy guest from starving the executor.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut context| {
            let state = context.data_mut();
            state.cpu_ticks += 1;
            if state.cpu_ticks > budget {
                return Err(SandboxViolation::new(format!(
                    "plugin exceeded its CPU time limit of {} ms and was stopped",
                    cpu_time.as_millis()
                ))
                .into());
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }

    fn classify(&self, error: wasmtime::Error, state: &CallState) -> CallError {
        if let Some(violation) = error.downcast_ref::<SandboxViolation>() {
            return CallError::Sandbox(violation.0.clone());
        }
        let text = format!("{error:?}");
        if text.contains("growing memory") || text.contains("memory allocation") {
            return CallError::Sandbox(format!(
                "plugin exceeded its memory limit of {} MiB and was stopped",
                self.limits.memory_bytes / (1024 * 1024)
            ));
        }
        let stderr = state.stderr_tail();
        let cause = error
            .downcast_ref::<wasmtime::Trap>()
            .map(ToString::to_string)
            .unwrap_or_else(|| format!("{error:#}"));
        if stderr.is_empty() {
            CallError::Sandbox(format!("plugin crashed: {cause}"))
        } else {
            CallError::Sandbox(format!("plugin crashed: {stderr} ({cause})"))
        }
    }
}

/// Wraps a wasmtime error (its own type, not `anyhow`'s) for start-up errors.
fn wasm_error(what: &str, error: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{what}: {error:#}")
}

fn flatten<T>(result: Result<Result<T, PluginError>, CallError>) -> Result<T, CallError> {
    result?.map_err(CallError::Plugin)
}

/// Reads a component's imports with `wasmparser`, before anything is compiled, and returns the
/// `granary:plugin` version it was built against: every Granary component imports
/// `granary:plugin/types@<version>`.
pub fn inspect_component(bytes: &[u8]) -> anyhow::Result<String> {
    use wasmparser::{Encoding, Parser, Payload};
    let not_a_component = |why: String| anyhow::anyhow!("not a WebAssembly component: {why}");
    let mut depth = 0usize;
    let mut versions = std::collections::BTreeSet::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|error| not_a_component(error.to_string()))?;
        match payload {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != Encoding::Component {
                    return Err(not_a_component(
                        "the file is a core WebAssembly module; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`".into(),
                    ));
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|error| not_a_component(error.to_string()))?;
                    if let Some(rest) = import.name.name.strip_prefix(WIT_PACKAGE)
                        && let Some(rest) = rest.strip_prefix('/')
                    {
                        let version = rest.split_once('@').map(|(_, v)| v).unwrap_or("");
                        versions.insert(version.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    let supported = SUPPORTED_WIT_VERSIONS.join(", ");
    let mut versions = versions.into_iter();
    match (versions.next(), versions.next()) {
        (None, _) => anyhow::bail!(
            "unsupported WIT version: the component imports nothing from {WIT_PACKAGE}; it was not built against the Granary plugin contract (this host supports {WIT_PACKAGE}@{supported})"
        ),
        (Some(first), Some(second)) => anyhow::bail!(
            "unsupported WIT version: the component imports both {WIT_PACKAGE}@{first} and @{second}"
        ),
        (Some(version), None) => {
            anyhow::ensure!(
                SUPPORTED_WIT_VERSIONS.contains(&version.as_str()),
                "unsupported WIT version: the component was built against {WIT_PACKAGE}@{version}; this host supports {WIT_PACKAGE}@{supported}"
            );
            Ok(version)
        }
    }
}

/// The first reason `info` cannot sit beside `loaded` (ignoring the plugin named `replacing`).
fn clash<'a>(
    loaded: impl Iterator<Item = &'a Arc<LoadedPlugin>>,
    info: &PluginInfo,
    replacing: Option<&str>,
) -> Option<String> {
    for other in loaded {
        if Some(other.info.name.as_str()) == replacing {
            continue;
        }
        if other.info.name == info.name {
            let kind = match other.source {
                PluginSource::Builtin => "built-in plugin",
                PluginSource::Directory => "plugin loaded from the plugin directory",
                PluginSource::Installed => "installed plugin",
            };
            return Some(format!(
                "name clash: a {kind} named {:?} is already loaded",
                info.name
            ));
        }
        // Distribution prefixes and roots share the first segment of the server's paths.
        let mine = [
            info.rest_names.as_ref().map(|n| n.distribution.as_str()),
            info.root.as_deref(),
        ];
        if let Some(taken) = mine
            .into_iter()
            .flatten()
            .find(|segment| other.first_segments().any(|theirs| theirs == *segment))
        {
            return Some(format!(
                "REST name clash: plugin {:?} already serves requests at /{taken}/",
                other.info.name
            ));
        }
        if let Some(content_type) = info
            .content_types
            .iter()
            .find(|t| other.has_content_type(&t.name))
        {
            return Some(format!(
                "type name clash: content type {:?} is already provided by plugin {:?}",
                content_type.name, other.info.name
            ));
        }
    }
    None
}

/// First path segments the host answers under itself, which no plugin may claim as its root.
const HOST_SEGMENTS: &[&str] = &["pulp", "ui", "api", "auth", "token", "static", "assets"];

/// Whether `root` may be a plugin's root segment: `[a-z0-9][a-z0-9._-]*`, at most 32 bytes.
fn is_root_segment(root: &str) -> bool {
    let mut bytes = root.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
        && root.len() <= 32
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 64
}

/// Checks what `describe` returned before a plugin is registered.
fn validate_info(info: &PluginInfo) -> anyhow::Result<()> {
    anyhow::ensure!(
        is_identifier(&info.name),
        "plugin name {:?} must match [a-z][a-z0-9_]*",
        info.name
    );
    anyhow::ensure!(
        SUPPORTED_WIT_VERSIONS.contains(&info.wit_version.as_str()),
        "unsupported WIT version: describe says the plugin targets {:?}; this host supports {}",
        info.wit_version,
        SUPPORTED_WIT_VERSIONS.join(", ")
    );
    anyhow::ensure!(
        !info.content_types.is_empty(),
        "plugin declares no content types"
    );
    if let Some(root) = &info.root {
        anyhow::ensure!(
            is_root_segment(root),
            "root {root:?} must match [a-z0-9][a-z0-9._-]* and be at most 32 bytes"
        );
        anyhow::ensure!(
            !HOST_SEGMENTS.contains(&root.as_str()),
            "root {root:?} is the host's own (it serves /{})",
            HOST_SEGMENTS.join("/, /")
        );
    }
    anyhow::ensure!(
        info.log_in_paths.len() <= MAX_LOG_IN_PATHS,
        "the plugin names {} log-in paths; at most {MAX_LOG_IN_PATHS}",
        info.log_in_paths.len()
    );
    for path in &info.log_in_paths {
        anyhow::ensure!(
            !path.is_empty()
                && path.len() <= MAX_LOG_IN_PATH
                && super::validate_relative_path(path.trim_end_matches('/')).is_ok(),
            "log-in path {path:?} must be a relative path of at most {MAX_LOG_IN_PATH} bytes"
        );
    }
    for content_type in &info.content_types {
        anyhow::ensure!(
            is_identifier(&content_type.name),
            "content type name {:?} must match [a-z][a-z0-9_]*",
            content_type.name
        );
        if let Some(endpoint) = &content_type.endpoint {
            anyhow::ensure!(
                is_identifier(endpoint),
                "content type endpoint {endpoint:?} must match [a-z][a-z0-9_]*"
            );
        }
        let indexed = &content_type.indexed_fields;
        anyhow::ensure!(
            indexed.len() <= super::MAX_INDEXED_FIELDS,
            "content type {:?} indexes {} fields; at most {} may be indexed",
            content_type.name,
            indexed.len(),
            super::MAX_INDEXED_FIELDS
        );
        for (at, field) in indexed.iter().enumerate() {
            anyhow::ensure!(
                is_identifier(field),
                "indexed field {field:?} of content type {:?} must match [a-z][a-z0-9_]*",
                content_type.name
            );
            anyhow::ensure!(
                !indexed[..at].contains(field),
                "content type {:?} indexes the field {field:?} twice",
                content_type.name
            );
        }
        if let Some(key) = &content_type.repository_key {
            anyhow::ensure!(
                indexed.contains(key),
                "the repository key {key:?} of content type {:?} must be one of its indexed fields",
                content_type.name
            );
        }
    }
    if let Some(names) = &info.rest_names {
        for name in [
            &names.repository,
            &names.remote,
            &names.publication,
            &names.distribution,
        ] {
            anyhow::ensure!(
                is_identifier(name),
                "REST name {name:?} must match [a-z][a-z0-9_]*"
            );
        }
        anyhow::ensure!(
            !RESERVED_PREFIXES.contains(&names.distribution.as_str()),
            "REST name {:?} of the distribution is reserved by the host",
            names.distribution
        );
        if let Some(push) = &names.push_repository {
            // Pulp's own is `container-push`: hyphens are allowed here.
            let mut chars = push.chars();
            anyhow::ensure!(
                push.len() <= 64
                    && chars.next().is_some_and(|c| c.is_ascii_lowercase())
                    && chars.all(|c| c.is_ascii_lowercase()
                        || c.is_ascii_digit()
                        || c == '_'
                        || c == '-'),
                "REST name {push:?} of the push repository must match [a-z][a-z0-9_-]* (at most 64 bytes)"
            );
            // Both types' repositories share the table: each needs a segment and a type name of
            // its own (the main type is recorded under the first content type's name).
            let main_type = info.content_types.first().map(|t| t.name.as_str());
            anyhow::ensure!(
                *push != names.repository && Some(push.as_str()) != main_type,
                "REST name {push:?} of the push repository must differ from the repository's and the first content type's names"
            );
        }
    }
    for (what, schema) in [
        ("remote-fields", &info.remote_fields),
        ("distribution-fields", &info.distribution_fields),
    ] {
        super::fields::Schema::parse(schema)
            .map_err(|error| anyhow::anyhow!("{what} is not a usable JSON schema: {error}"))?;
    }
    for capability in &info.capabilities {
        anyhow::ensure!(
            CAPABILITIES.contains(&capability.as_str()),
            "unknown capability {capability:?} (this host grants: {})",
            CAPABILITIES.join(", ")
        );
    }
    Ok(())
}

/// Makes a host error visible to the guest as a WIT error value.
pub(super) fn guest_error(message: impl Into<String>) -> PluginError {
    PluginError {
        message: message.into(),
        field: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::ContentTypeInfo;

    fn info_with_log_in_paths(paths: &[&str]) -> PluginInfo {
        PluginInfo {
            name: "npmish".into(),
            version: "1.0.0".into(),
            wit_version: "0.3.0".into(),
            content_types: vec![ContentTypeInfo {
                name: "package".into(),
                description: "A package".into(),
                natural_key_fields: vec!["name".into()],
                endpoint: None,
                indexed_fields: Vec::new(),
                repository_key: None,
            }],
            capabilities: Vec::new(),
            rest_names: None,
            remote_fields: "{}".into(),
            distribution_fields: "{}".into(),
            root: None,
            log_in_paths: paths.iter().map(|&path| path.to_owned()).collect(),
        }
    }

    #[test]
    fn log_in_paths_are_a_few_short_relative_paths() {
        assert!(validate_info(&info_with_log_in_paths(&["-/user/", "login"])).is_ok());
        for refused in [
            &["/-/user/"][..],
            &["../user/"],
            &[""],
            &["a", "b", "c", "d", "e"],
            &[&"x".repeat(65)],
        ] {
            assert!(
                validate_info(&info_with_log_in_paths(refused)).is_err(),
                "{refused:?}"
            );
        }
    }
}
