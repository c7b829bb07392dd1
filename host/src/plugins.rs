//! The plugin runtime: wasmtime engine, component registry, sandbox limits, and the host side of
//! the WIT contract.
//!
//! # Layout
//! - `bindings`: the code `bindgen!` generates from `wit/`, one module per supported version.
//! - `v0_1`, `v0_2`: `granary:plugin@0.1.0` and `@0.2.0` adapted to the current version (imports
//!   delegate to the `host_*` implementations; records are converted).
//! - [`runtime`]: engine, compile cache, registry of loaded plugins, validation of components,
//!   one sandboxed call per export.
//! - [`fields`]: the schemas of plugin-declared fields of remotes and distributions.
//! - [`retry`]: retrying outbound requests (the `http` import, downloads, pull-through).
//! - [`upstream`]: a remote's requests: origins reached hop by hop, credentials only to the
//!   remote's own origin, redirects checked and capped.
//! - `host_*`: one file per imported WIT interface, each implementing its generated `Host` trait
//!   on [`CallState`]; [`host_body`] is the request body resource of `handle`.
//!
//! Every call gets a fresh `Store` instantiated from a pre-linked `InstancePre` in the pooling
//! allocator, with a memory limit, a CPU-time budget counted in epoch ticks while the guest runs,
//! and a [`CallScope`] that says which imports it may use and on what. Anything outside the scope
//! is refused: a request to another origin, an artifact the call was not given, a path with `..`.

mod bindings;
pub mod fields;
mod host_accounts;
pub(crate) mod host_artifacts;
pub mod host_body;
mod host_content;
mod host_distributions;
pub(crate) mod host_http;
mod host_log;
mod host_publication;
pub(crate) mod host_sync_sink;
mod host_uploads;
mod memory_limit;
pub mod rest_names;
pub mod retry;
pub mod runtime;
mod scope;
pub(crate) mod units;
pub mod upstream;
mod v0_1;
mod v0_2;

pub use bindings::types::{
    ArtifactDeclaration, ArtifactRef, CallerAccess, ContentTypeInfo, DistributionInfo,
    DownloadPolicy, FormField, FormFile, HandleOutcome, HttpBody, HttpRequest, HttpResponse,
    PluginError, PluginInfo, RemoteConfig, RestNames, StoredArtifact, StoredUnit, UnitDeclaration,
    UnitRef, UpstreamFile, VersionInfo,
};
pub use runtime::{CallError, LoadedPlugin, PluginRuntime, PluginSource};
pub use scope::{
    Accounts, CachedPage, CallScope, CallState, CatalogScope, ContentScope, CreateArtifact,
    EmittedBatch, HttpScope, OtherDistributions, PublicationScope, SessionError, UploadSessions,
    UpstreamPages,
};

/// Builds the record `$target` out of `$source` (an owned binding; `&binding` clones instead),
/// moving each listed field across as it is; the fields after `;` are given their values. The
/// conversions between a WIT record and its counterpart (the same record in another WIT version,
/// or a serde mirror of it) so name each shared field once, and the compiler still checks that
/// the target is complete.
macro_rules! convert_record {
    ($source:ident => $($target:ident)::+ {
        $($field:ident),* $(,)? $(; $($name:ident: $value:expr),+ $(,)?)?
    }) => {
        $($target)::+ { $($field: $source.$field,)* $($($name: $value,)+)? }
    };
    (&$source:ident => $($target:ident)::+ {
        $($field:ident),* $(,)? $(; $($name:ident: $value:expr),+ $(,)?)?
    }) => {
        $($target)::+ { $($field: ToOwned::to_owned(&$source.$field),)* $($($name: $value,)+)? }
    };
}
pub(crate) use convert_record;

/// Plugin instances the pooling allocator holds: every call in flight (content-app routes, task
/// workers, installs) takes one, and a call finding none fails.
pub const INSTANCE_POOL_SIZE: u32 = 256;

/// Most bytes a guest may ask the host for in one read (`http` response body, `artifacts.read`).
pub const MAX_READ_CHUNK: u32 = 1024 * 1024;
/// Most units in one `sync-sink.emit` batch.
pub const MAX_EMIT_BATCH: usize = 1000;
/// Most bytes of one declared unit's natural key plus metadata.
pub const MAX_UNIT_JSON_BYTES: usize = 1024 * 1024;
/// Most units a guest may ask for in one `content.list-units` page.
pub const MAX_LIST_PAGE: u32 = 1000;
/// Most fields a content type may index (`content-type-info.indexed-fields`).
pub const MAX_INDEXED_FIELDS: usize = 8;
/// Longest value of an indexed field that is indexed, in bytes (longer values are not).
pub const MAX_INDEXED_VALUE_BYTES: usize = 512;
/// Most bytes of one `artifacts.create`.
pub const MAX_CREATE_BYTES: usize = 4 * 1024 * 1024;

/// Checks a relative path declared by a plugin or a user: not empty, not absolute, no `.` or `..`
/// segments, no empty segments, no backslashes or NUL bytes.
pub fn validate_relative_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("relative path must not be empty".into());
    }
    if path.starts_with('/') {
        return Err(format!("relative path {path:?} must not be absolute"));
    }
    if path.contains('\\') || path.contains('\0') {
        return Err(format!(
            "relative path {path:?} must not contain backslashes or NUL bytes"
        ));
    }
    if path
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(format!(
            "relative path {path:?} must not contain empty, '.' or '..' segments"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_relative_path;

    #[test]
    fn relative_paths_stay_inside() {
        assert!(validate_relative_path("a/b/c.txt").is_ok());
        assert!(validate_relative_path("../etc/passwd").is_err());
        assert!(validate_relative_path("a/../../b").is_err());
        assert!(validate_relative_path("/etc/passwd").is_err());
        assert!(validate_relative_path("a//b").is_err());
        assert!(validate_relative_path("").is_err());
    }
}
