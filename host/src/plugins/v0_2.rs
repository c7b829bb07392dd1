//! `granary:plugin@0.2.0` on top of the current version: its imports delegate to the one
//! implementation of each interface (`host_*.rs`), and its records are converted at the boundary.
//!
//! 0.3.0 only added fields and functions, so every 0.2.0 value has a current counterpart with the
//! same shape: a 0.2.0 content type indexes no fields, and the 0.3.0 lookups are simply not
//! imported by it.

use std::convert::identity;

use wasmtime::component::Resource;

use super::bindings::current::granary::plugin as current;
use super::bindings::v0_2::granary::plugin::{
    artifacts, content, http, log, progress, publication, sync_sink, types,
};
use super::convert_record;
use super::host_http::Response;
use super::scope::CallState;

// ---- records: 0.2.0 → current ----

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
            name, description, natural_key_fields, endpoint;
            indexed_fields: Vec::new(),
            repository_key: None,
        })
    };
    let rest_names_in = |names: types::RestNames| {
        convert_record!(names => current::types::RestNames {
            repository, remote, publication, distribution;
            // Push repositories are 0.3.0's.
            push_repository: None,
        })
    };
    convert_record!(info => current::types::PluginInfo {
        name, version, wit_version, capabilities, remote_fields, distribution_fields;
        content_types: info.content_types.into_iter().map(content_type_in).collect(),
        rest_names: info.rest_names.map(rest_names_in),
        // Routes at the root are 0.3.0's.
        root: None,
        log_in_paths: Vec::new(),
    })
}

pub(super) fn outcome_in(outcome: types::HandleOutcome) -> current::types::HandleOutcome {
    let response = outcome.response;
    let body = match response.body {
        types::HttpBody::Bytes(bytes) => current::types::HttpBody::Bytes(bytes),
        types::HttpBody::ContentArtifact(handle) => {
            current::types::HttpBody::ContentArtifact(handle)
        }
        types::HttpBody::FetchUpstream(file) => {
            current::types::HttpBody::FetchUpstream(current::types::UpstreamFile {
                unit: unit_in(file.unit),
                relative_path: file.relative_path,
            })
        }
    };
    current::types::HandleOutcome {
        response: convert_record!(response => current::types::HttpResponse {
            status, headers; body: body
        }),
        add_units: outcome.add_units.into_iter().map(unit_in).collect(),
        remove_units: Vec::new(),
        create_distribution: None,
    }
}

// ---- records: current → 0.2.0 ----

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

/// A 0.2.0 plugin gets the request body as bytes, read by the host.
///
/// `None` for a request without a distribution, which only a 0.3.0 plugin's root routes get.
pub(super) fn request_out(
    request: &current::types::HttpRequest,
    body: Vec<u8>,
) -> Option<types::HttpRequest> {
    let field_out = |field: &current::types::FormField| convert_record!(&field => types::FormField { name, value });
    let file_out = |file: &current::types::FormFile| {
        convert_record!(&file => types::FormFile {
            name, filename;
            artifact: artifact_ref_out(&file.artifact),
        })
    };
    let distribution = request.distribution.as_ref()?;
    let distribution = convert_record!(&distribution => types::DistributionInfo {
        name, base_path, extra, writable;
        remote: distribution.remote.as_ref().map(remote_out),
    });
    Some(convert_record!(&request => types::HttpRequest {
        method, path, query, headers, base_url, user;
        body: body,
        form: request.form.iter().map(field_out).collect(),
        files: request.files.iter().map(file_out).collect(),
        distribution: distribution,
    }))
}

fn unit_page_out(page: current::types::UnitPage) -> types::UnitPage {
    types::UnitPage {
        units: page.units.into_iter().map(stored_unit_out).collect(),
        next: page.next,
    }
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

fn stored_units_out(units: Vec<current::types::StoredUnit>) -> Vec<types::StoredUnit> {
    units.into_iter().map(stored_unit_out).collect()
}

/// Maps the error half of an import's result to 0.2.0.
fn out<T>(
    result: wasmtime::Result<Result<T, current::types::PluginError>>,
) -> wasmtime::Result<Result<T, types::PluginError>> {
    result.map(|inner| inner.map_err(error_out))
}

/// Maps an import's answer to 0.2.0: the value with `convert`, the error with [`error_out`].
fn out_with<T, U>(
    result: wasmtime::Result<Result<T, current::types::PluginError>>,
    convert: impl FnOnce(T) -> U,
) -> wasmtime::Result<Result<U, types::PluginError>> {
    result.map(|inner| inner.map(convert).map_err(error_out))
}

// ---- imports ----

impl types::Host for CallState {}

/// Implements 0.2.0 imports whose arguments are the current version's by calling the current
/// implementation; `$map` turns the current answer into the 0.2.0 one.
macro_rules! forward {
    ($(impl $interface:ident::$host:ident {
        $(fn $name:ident($($arg:ident: $ty:ty),*) -> $answer:ty => $map:expr;)+
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
        fn create(data: Vec<u8>) -> Result<types::ArtifactRef, types::PluginError>
            => |answer| out_with(answer, |artifact| artifact_ref_out(&artifact));
    }
    impl content::Host {
        fn list_units(cursor: Option<String>, limit: u32) -> Result<types::UnitPage, types::PluginError>
            => |answer| out_with(answer, unit_page_out);
        fn find_by_path(relative_path: String) -> Result<Vec<types::StoredUnit>, types::PluginError>
            => |answer| out_with(answer, stored_units_out);
        fn list_by_prefix(prefix: String, cursor: Option<String>, limit: u32) -> Result<types::UnitPage, types::PluginError>
            => |answer| out_with(answer, unit_page_out);
    }
    impl publication::Host {
        fn write_file(relative_path: String, data: Vec<u8>) -> Result<(), types::PluginError> => out;
        fn publish_content(entries: Vec<(String, String)>) -> Result<(), types::PluginError> => out;
    }
    impl progress::Host {
        fn report(code: String, message: String, done: u64, total: Option<u64>) -> () => identity;
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
