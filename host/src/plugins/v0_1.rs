//! `granary:plugin@0.1.0` on top of the current version: its imports delegate to the one
//! implementation of each interface (`host_*.rs`), and its records are converted at the boundary.
//!
//! 0.2.0 and 0.3.0 only added records, fields and functions, so every 0.1.0 value has a current
//! counterpart: new fields take their documented defaults (no REST names, no plugin fields, no
//! indexed fields, no form, no user), and a 0.1.0 `handle` answer becomes an outcome that adds
//! nothing.

use std::convert::identity;

use wasmtime::component::Resource;

use super::bindings::current::granary::plugin as current;
use super::bindings::v0_1::granary::plugin::{
    artifacts, content, http, log, progress, publication, sync_sink, types,
};
use super::convert_record;
use super::host_http::Response;
use super::scope::CallState;

// ---- records: 0.1.0 → current ----

pub(super) fn error_in(error: types::PluginError) -> current::types::PluginError {
    convert_record!(error => current::types::PluginError { message, field })
}

fn artifact_declaration_in(
    artifact: types::ArtifactDeclaration,
) -> current::types::ArtifactDeclaration {
    convert_record!(artifact => current::types::ArtifactDeclaration {
        relative_path, url, size, sha256;
        sha512: None,
    })
}

pub(super) fn unit_in(unit: types::UnitDeclaration) -> current::types::UnitDeclaration {
    convert_record!(unit => current::types::UnitDeclaration {
        content_type, natural_key, metadata;
        artifacts: unit.artifacts.into_iter().map(artifact_declaration_in).collect(),
    })
}

pub(super) fn plugin_info_in(info: types::PluginInfo) -> current::types::PluginInfo {
    let content_type_in = |content_type: types::ContentTypeInfo| {
        convert_record!(content_type => current::types::ContentTypeInfo {
            name, description, natural_key_fields;
            endpoint: None,
            indexed_fields: Vec::new(),
            repository_key: None,
        })
    };
    convert_record!(info => current::types::PluginInfo {
        name, version, wit_version, capabilities;
        content_types: info.content_types.into_iter().map(content_type_in).collect(),
        rest_names: None,
        root: None,
        log_in_paths: Vec::new(),
        remote_fields: "{}".to_owned(),
        distribution_fields: "{}".to_owned(),
    })
}

/// A 0.1.0 `handle` answer: a response, never units to add.
pub(super) fn outcome_in(response: types::HttpResponse) -> current::types::HandleOutcome {
    let body = match response.body {
        types::HttpBody::Bytes(bytes) => current::types::HttpBody::Bytes(bytes),
        types::HttpBody::ContentArtifact(handle) => {
            current::types::HttpBody::ContentArtifact(handle)
        }
    };
    current::types::HandleOutcome {
        response: convert_record!(response => current::types::HttpResponse {
            status, headers; body: body
        }),
        add_units: Vec::new(),
        remove_units: Vec::new(),
        create_distribution: None,
    }
}

// ---- records: current → 0.1.0 ----

fn error_out(error: current::types::PluginError) -> types::PluginError {
    convert_record!(error => types::PluginError { message, field })
}

pub(super) fn remote_out(remote: &current::types::RemoteConfig) -> types::RemoteConfig {
    convert_record!(&remote => types::RemoteConfig {
        url, extra;
        policy: match remote.policy {
            current::types::DownloadPolicy::Immediate => types::DownloadPolicy::Immediate,
            current::types::DownloadPolicy::OnDemand => types::DownloadPolicy::OnDemand,
            current::types::DownloadPolicy::Streamed => types::DownloadPolicy::Streamed,
        },
    })
}

pub(super) fn artifact_ref_out(artifact: &current::types::ArtifactRef) -> types::ArtifactRef {
    convert_record!(&artifact => types::ArtifactRef { sha256, size })
}

pub(super) fn version_out(version: &current::types::VersionInfo) -> types::VersionInfo {
    convert_record!(&version => types::VersionInfo { repository_name, number })
}

/// A 0.1.0 plugin sees the raw body only, as bytes read by the host; form fields, files, user
/// and distribution are new.
pub(super) fn request_out(
    request: &current::types::HttpRequest,
    body: Vec<u8>,
) -> types::HttpRequest {
    convert_record!(&request => types::HttpRequest {
        method, path, query, headers, base_url;
        body: body,
    })
}

fn stored_unit_out(unit: current::types::StoredUnit) -> types::StoredUnit {
    let artifact_out = |artifact: current::types::StoredArtifact| {
        convert_record!(artifact => types::StoredArtifact {
            relative_path, content_artifact, sha256, size
        })
    };
    convert_record!(unit => types::StoredUnit {
        content_type, natural_key, metadata;
        artifacts: unit.artifacts.into_iter().map(artifact_out).collect(),
    })
}

/// Maps the error half of an import's result to 0.1.0.
fn out<T>(
    result: wasmtime::Result<Result<T, current::types::PluginError>>,
) -> wasmtime::Result<Result<T, types::PluginError>> {
    result.map(|inner| inner.map_err(error_out))
}

// ---- imports ----

impl types::Host for CallState {}

/// Implements 0.1.0 imports whose arguments are the current version's by calling the current
/// implementation; `out` maps the error half of the answer to 0.1.0, `identity` passes the answer
/// on as it is.
macro_rules! forward {
    ($(impl $interface:ident::$host:ident {
        $(fn $name:ident($($arg:ident: $ty:ty),*) -> $answer:ty => $map:ident;)+
    })+) => {$(
        impl $interface::$host for CallState {
            $(async fn $name(&mut self, $($arg: $ty),*) -> wasmtime::Result<$answer> {
                $map(<Self as current::$interface::$host>::$name(self, $($arg),*).await)
            })+
        }
    )+};
}

forward! {
    impl http::Host {
        fn get(url: String, headers: Vec<(String, String)>) -> Result<Resource<Response>, types::PluginError> => out;
        fn head(url: String, headers: Vec<(String, String)>) -> Result<Resource<Response>, types::PluginError> => out;
    }
    impl http::HostResponse {
        fn status(response: Resource<Response>) -> u16 => identity;
        fn headers(response: Resource<Response>) -> Vec<(String, String)> => identity;
        fn read(response: Resource<Response>, max_bytes: u32) -> Result<Vec<u8>, types::PluginError> => out;
        fn drop(response: Resource<Response>) -> () => identity;
    }
    impl artifacts::Host {
        fn read(sha256: String, offset: u64, len: u32) -> Result<Vec<u8>, types::PluginError> => out;
    }
    impl publication::Host {
        fn write_file(relative_path: String, data: Vec<u8>) -> Result<(), types::PluginError> => out;
        fn publish_content(entries: Vec<(String, String)>) -> Result<(), types::PluginError> => out;
    }
    impl progress::Host {
        fn report(code: String, message: String, done: u64, total: Option<u64>) -> () => identity;
    }
}

impl content::Host for CallState {
    async fn list_units(
        &mut self,
        cursor: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<types::UnitPage, types::PluginError>> {
        let page = out(<Self as current::content::Host>::list_units(self, cursor, limit).await)?;
        Ok(page.map(|page| types::UnitPage {
            units: page.units.into_iter().map(stored_unit_out).collect(),
            next: page.next,
        }))
    }

    async fn find_by_path(
        &mut self,
        relative_path: String,
    ) -> wasmtime::Result<Result<Vec<types::StoredUnit>, types::PluginError>> {
        let units = out(<Self as current::content::Host>::find_by_path(self, relative_path).await)?;
        Ok(units.map(|units| units.into_iter().map(stored_unit_out).collect()))
    }
}

impl sync_sink::Host for CallState {
    async fn emit(
        &mut self,
        units: Vec<types::UnitDeclaration>,
    ) -> wasmtime::Result<Result<(), types::PluginError>> {
        let units = units.into_iter().map(unit_in).collect();
        out(<Self as current::sync_sink::Host>::emit(self, units).await)
    }
}

impl log::Host for CallState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => current::log::Level::Trace,
            log::Level::Debug => current::log::Level::Debug,
            log::Level::Info => current::log::Level::Info,
            log::Level::Warn => current::log::Level::Warn,
            log::Level::Error => current::log::Level::Error,
        };
        <Self as current::log::Host>::log(self, level, message).await
    }
}
