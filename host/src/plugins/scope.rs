//! What one plugin call may touch: the store data of every call.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::UnitDeclaration;
use super::memory_limit::InstanceMemory;
use crate::db::Db;
use crate::progress::TaskHandle;
use crate::storage::{BlobStore, ReceivedBlob, StagedBlob};

/// Bytes of a guest's stderr kept to explain a crash (a Rust panic message lands there).
const STDERR_CAPACITY: usize = 16 * 1024;

/// The grants of one call. Everything is off by default; each export's caller switches on what
/// that export needs.
#[derive(Default)]
pub struct CallScope {
    /// The task the call runs for: logs and progress reports go there.
    pub task: Option<Arc<TaskHandle>>,
    /// Outbound HTTP, restricted to the origins the remote may reach.
    pub http: Option<HttpScope>,
    /// Artifacts the call may read: sha256 → size.
    pub artifacts: BTreeMap<String, u64>,
    /// Where artifact bytes are read from (set with `artifacts`).
    pub blobs: Option<Arc<BlobStore>>,
    /// The repository version the call may list.
    pub content: Option<ContentScope>,
    /// The publication the call builds.
    pub publication: Option<PublicationScope>,
    /// Where `sync-sink.emit` batches go; the bounded channel is the back-pressure.
    pub sink: Option<mpsc::Sender<EmittedBatch>>,
    /// Content type names the plugin declared (emitted units must use one).
    pub content_types: Vec<String>,
    /// Where `artifacts.create` records what it stores (staged in `blobs`); `None` refuses it.
    /// Set in `parse-upload`, `handle` and `sync`.
    pub create_in: Option<Arc<dyn CreateArtifact>>,
    /// Artifacts stored by `artifacts.create` and `artifacts.store-body` during the call, in
    /// order.
    pub created: Vec<super::ArtifactRef>,
    /// Whether the call answers a request that may change the repository (a method other than
    /// GET and HEAD whose caller may modify it): request bodies may then be stored, and upload
    /// sessions started, appended to and ended.
    pub write_request: bool,
    /// The upload sessions of the repository the call serves (`handle`).
    pub uploads: Option<Arc<dyn UploadSessions>>,
    /// Why the request body failed, when it did: the client's answer is then the host's.
    pub body_fault: Option<super::host_body::BodyFault>,
    /// The plugin whose public distributions the call may list (`handle`).
    pub catalog: Option<CatalogScope>,
    /// The other distributions of the plugin the caller may read (`content.find-at`), in
    /// requests that may change the repository.
    pub elsewhere: Option<Arc<dyn OtherDistributions>>,
    /// Users' log-ins (`accounts.log-in`), in a `handle` call at a log-in path; taken by the
    /// first use, so a call checks one password at most.
    pub accounts: Option<Arc<dyn Accounts>>,
}

/// Password checks that issue API tokens, for a format's own log-in (`npm login`): a
/// capability of `handle` calls at a plugin's log-in paths, which the content app implements
/// with the host's authenticator.
pub trait Accounts: Send + Sync {
    /// The secret of a new API token of `username` named after `client` when `password` is
    /// theirs; `None` when it is not; an error message when the log-in is throttled or fails.
    fn log_in<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
        client: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, String>>;
}

/// The other distributions of a plugin, as the caller of one request may read them: a
/// capability of `handle` calls that the content app implements with its own checks.
pub trait OtherDistributions: Send + Sync {
    /// The version the distribution at exactly `base_path` serves, when the caller may read it.
    fn readable<'a>(
        &'a self,
        base_path: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Option<ContentScope>>>;
}

/// One `sync-sink.emit` batch, as the sync pipeline receives it.
#[derive(Debug)]
pub struct EmittedBatch {
    /// The declared units.
    pub units: Vec<UnitDeclaration>,
    /// The sha256s of artifacts the call may read, which in a sync are those it stored itself
    /// (`artifacts.create`: a registry's manifests, which a sync reads to find the blobs), that
    /// files of `units` declare without a URL: the pipeline links those files to them, their
    /// bytes having come from the plugin.
    pub created: Vec<String>,
}

/// The distributions of one plugin, for `distributions.list-base-paths`.
#[derive(Clone)]
pub struct CatalogScope {
    /// The database.
    pub db: Arc<Db>,
    /// The plugin whose distributions are listed.
    pub plugin: String,
}

/// The upload sessions of one repository, for one plugin (`granary:plugin/uploads`). They live in
/// the domain (`domain::upload_sessions`); a call reaches them through this capability.
pub trait UploadSessions: Send + Sync {
    /// Most bytes a session may hold.
    fn limit(&self) -> u64;

    /// Starts an empty session; returns its id.
    fn start(&self) -> BoxFuture<'_, anyhow::Result<String>>;

    /// The size of session `id`, if it is one of these and alive.
    fn size<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<u64>>>;

    /// Appends `blob` to session `id` at `offset`; returns the new size.
    fn append<'a>(
        &'a self,
        id: &'a str,
        offset: u64,
        blob: ReceivedBlob,
    ) -> BoxFuture<'a, Result<u64, SessionError>>;

    /// Ends session `id`, its bytes (checked against `expected_sha256`) becoming an artifact.
    fn complete<'a>(
        &'a self,
        id: &'a str,
        expected_sha256: Option<&'a str>,
    ) -> BoxFuture<'a, Result<super::ArtifactRef, SessionError>>;

    /// Ends session `id` and drops its bytes; false when there was none.
    fn cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<bool>>;
}

/// Why an upload session operation did not happen.
#[derive(Debug)]
pub enum SessionError {
    /// The plugin's request cannot be met: the plugin sees `message` on `field`.
    Refused {
        /// The argument at fault (`id`, `offset`, `digest`, `size`).
        field: &'static str,
        /// What is wrong, for the plugin (and its client).
        message: String,
    },
    /// The database or the storage failed.
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for SessionError {
    fn from(error: anyhow::Error) -> Self {
        Self::Internal(error)
    }
}

/// Records the bytes of an `artifacts.create` as an artifact. The host's verified ingest lives in
/// the domain, above this layer; the call reaches it through this capability
/// (`domain::artifacts::Creator`).
pub trait CreateArtifact: Send + Sync {
    /// Commits `blob`, staged in the call's blob store, and records it as an artifact.
    fn create(&self, blob: ReceivedBlob) -> BoxFuture<'_, anyhow::Result<super::ArtifactRef>>;
}

/// Outbound HTTP for a call: the remote's way upstream, which also says which origins the guest
/// may reach.
pub struct HttpScope {
    /// The remote's client, credentials, origin policy and retries.
    pub upstream: super::upstream::UpstreamClient,
    /// Where pages with validators are kept for conditional requests; `None` keeps none.
    pub pages: Option<Arc<dyn UpstreamPages>>,
}

/// A page an upstream answered 200 with a validator (`ETag`, `Last-Modified`).
#[derive(Clone, Debug, PartialEq)]
pub struct CachedPage {
    /// The response's headers.
    pub headers: Vec<(String, String)>,
    /// The body (pages are text; other bodies are not kept).
    pub body: String,
}

/// Pages of a remote's upstream kept so that the next GET of the same URL with the same request
/// headers is conditional, and a 304 is answered with the kept page. The store lives in the
/// domain (`domain::upstream_pages`); a call reaches it through this capability.
pub trait UpstreamPages: Send + Sync {
    /// The page kept for a GET of `url` with `request_headers` (their canonical text).
    fn lookup<'a>(
        &'a self,
        url: &'a str,
        request_headers: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Option<CachedPage>>>;

    /// Keeps `page` as the answer to a GET of `url` with `request_headers`.
    fn keep<'a>(
        &'a self,
        url: &'a str,
        request_headers: &'a str,
        page: CachedPage,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// A repository version the guest may read.
#[derive(Clone)]
pub struct ContentScope {
    /// The database.
    pub db: Arc<Db>,
    /// The repository.
    pub repository_id: String,
    /// The version number.
    pub version: i64,
    /// The plugin whose call this is: lookups by an indexed field read its units' keys.
    pub plugin: String,
    /// The (content type, field) pairs the plugin indexes.
    pub indexed: Vec<(String, String)>,
}

impl ContentScope {
    /// Version `version` of the repository `repository_id`, read by `plugin`.
    pub fn new(
        db: Arc<Db>,
        plugin: &super::runtime::LoadedPlugin,
        repository_id: &str,
        version: i64,
    ) -> Self {
        Self {
            db,
            repository_id: repository_id.to_owned(),
            version,
            plugin: plugin.info.name.clone(),
            indexed: plugin.indexed_fields(),
        }
    }

    /// Whether units of `content_type` are indexed by `field`.
    pub fn indexes(&self, content_type: &str, field: &str) -> bool {
        self.indexed.iter().any(|(indexed_type, indexed_field)| {
            indexed_type == content_type && indexed_field == field
        })
    }
}

/// A publication being built.
pub struct PublicationScope {
    /// The publication's id.
    pub publication_id: String,
    /// Metadata files being written, by relative path.
    pub files: BTreeMap<String, StagedBlob>,
    /// Where metadata files are staged.
    pub blobs: Arc<BlobStore>,
}

/// The data of a plugin call's `Store`.
pub struct CallState {
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
    /// One memory budget for all the instance's memories and tables.
    pub(super) limits: InstanceMemory,
    pub(super) stderr: MemoryOutputPipe,
    /// The grants of this call.
    pub scope: CallScope,
    /// Epoch ticks the guest has run for.
    pub(super) cpu_ticks: u64,
    /// Bytes the guest has made the host buffer or store (publication files, bodies).
    pub(super) output_bytes: u64,
    pub(super) max_output_bytes: u64,
    /// Artifact writers started and not finished or dropped: each holds a staged file.
    pub(super) open_writers: usize,
}

impl CallState {
    pub(super) fn new(scope: CallScope, memory_limit: usize, max_output_bytes: u64) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        // No preopens, no environment, no arguments, no sockets: the guest's std links against
        // WASI but every resource it could reach is absent.
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = InstanceMemory::new(memory_limit);
        Self {
            wasi,
            table: ResourceTable::new(),
            limits,
            stderr,
            scope,
            cpu_ticks: 0,
            output_bytes: 0,
            max_output_bytes,
            open_writers: 0,
        }
    }

    /// Counts `len` more output bytes, failing when the call's limit is passed.
    pub(super) fn charge_output(&mut self, len: usize) -> wasmtime::Result<()> {
        self.output_bytes += len as u64;
        if self.output_bytes > self.max_output_bytes {
            return Err(super::runtime::SandboxViolation::new(format!(
                "plugin exceeded the output limit of {} bytes for one call",
                self.max_output_bytes
            ))
            .into());
        }
        Ok(())
    }

    /// The last lines the guest wrote to stderr, for crash messages.
    pub(super) fn stderr_tail(&self) -> String {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .collect();
        lines[lines.len().saturating_sub(3)..].join(" / ")
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
