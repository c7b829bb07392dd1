//! The Rust SDK for Granary content-type plugins.
//!
//! A content type (plain files, Python packages, npm, ...) is a WebAssembly component that exports
//! the `content-type` world of `wit/since_v0.3.0/granary-plugin.wit`. This crate hides the raw bindings behind a
//! [`Plugin`] trait with sensible defaults, the [`register_plugin!`] macro that wires it to the
//! component's exports, and typed, streaming wrappers around everything the host imports.
//!
//! A plugin never touches the network, the disk or the database itself: it reads what the host
//! hands it and returns *declarations* (units, artifacts, published paths) that the host validates
//! and carries out.
//!
//! # Layout
//!
//! - [`Plugin`] and [`register_plugin!`] (this file): the exports a plugin implements.
//! - [`PluginError`] (`error.rs`): the one error type, with an optional field name for 400s.
//! - `types.rs`: the WIT records re-exported at the crate root ([`PluginInfo`],
//!   [`UnitDeclaration`], [`StoredUnit`], ...) and small constructors on them.
//! - One module per imported interface:
//!   - [`http`]: GET/HEAD on the remote's origins (in `sync`, and in `handle` when the distribution
//!     has a remote); bodies read in chunks or line by line.
//!   - [`artifacts`]: a [`std::io::Read`] + [`std::io::Seek`] reader over an uploaded artifact, and
//!     [`artifacts::create`] to store a small derived file.
//!   - [`Body`] (`body.rs`): the request body of `handle`, read as it arrives ([`std::io::Read`],
//!     chunks, or whole up to a limit) or stored by the host as an artifact ([`Body::store`]).
//!   - [`uploads`]: upload sessions the host keeps across requests (OCI's chunked uploads).
//!   - [`distributions`]: the base paths of the plugin's public distributions (a catalogue).
//! - Routes at the server's root ([`PluginInfo::with_root`], `/v2/…` for a registry), and what the
//!   caller may do ([`HttpRequest`]'s `access`: pull, push, delete); a 401 answer with
//!   `www-authenticate: Bearer` (or `Basic`) gets the host's completed challenge and token
//!   endpoint (see `docs/plugins.md`).
//!   - [`content`]: iterate the units of the repository version in scope, all of them, those
//!     under a path prefix or those with a value of an indexed field, and the distinct values of
//!     an indexed field.
//!   - [`publication`]: write metadata files and publish stored files, batched.
//!   - [`sync`]: stream declared units back to the host, batched.
//!   - [`log`] and [`progress`]: logs and progress reports that surface on the task.
//! - [`json`]: a canonical JSON writer for natural keys, so small plugins need no JSON crate.
//! - [`index`]: helpers for rendering indexes (a `sha256  path` listing, a minimal JSON array).
//! - `harness` (native builds only): an in-memory host, so `cargo test` runs a plugin's exports
//!   without a server; see its documentation.
//!
//! # Example
//!
//! A plugin whose remote is a text file listing one name per line:
//!
//! ```no_run
//! use granary_sdk::{http, sync::Emitter, ContentTypeInfo, Plugin, PluginError, PluginInfo};
//! use granary_sdk::{RemoteConfig, UnitDeclaration};
//!
//! struct Names;
//!
//! impl Plugin for Names {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new(
//!             "names",
//!             env!("CARGO_PKG_VERSION"),
//!             vec![ContentTypeInfo::new("name", "A name", &["name"])],
//!         )
//!         .with_capabilities(&["http"])
//!     }
//!
//!     fn sync(remote: &RemoteConfig) -> Result<(), PluginError> {
//!         let response = http::get(&remote.url, &[])?;
//!         if !response.is_success() {
//!             let status = response.status();
//!             return Err(PluginError::new(format!("{} answered {status}", remote.url)));
//!         }
//!         let mut emitter = Emitter::new();
//!         for line in response.lines() {
//!             let name = line?;
//!             emitter.emit(UnitDeclaration {
//!                 content_type: "name".into(),
//!                 natural_key: granary_sdk::json::string_object([("name", name.as_str())]),
//!                 metadata: "{}".into(),
//!                 artifacts: Vec::new(),
//!             })?;
//!         }
//!         emitter.finish()?;
//!         Ok(())
//!     }
//! }
//!
//! granary_sdk::register_plugin!(Names);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2` as a `cdylib`; the output `.wasm` is a
//! component ready to install (`granary plugin install target/wasm32-wasip2/release/names.wasm`).
//!
//! # Testing
//!
//! Compiled natively (`cargo test`), the wrappers of this crate talk to the in-memory
//! `harness::Host` instead of the Wasm imports, so a plugin's exports are unit-tested by calling the
//! [`Plugin`] methods inside `Host::run`. See `docs/plugins.md` for the whole author's guide.

#![deny(missing_docs)]

#[cfg(not(feature = "wit-v0_2"))]
pub mod accounts;
pub mod artifacts;
pub mod body;
pub mod content;
#[cfg(not(feature = "wit-v0_2"))]
pub mod distributions;
mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod harness;
pub mod http;
pub mod index;
pub mod json;
pub mod log;
pub mod progress;
pub mod publication;
pub mod sync;
mod types;
#[cfg(not(feature = "wit-v0_2"))]
pub mod uploads;

pub use body::Body;
pub use error::PluginError;
pub use types::{
    ArtifactDeclaration, ArtifactRef, ContentTypeInfo, DistributionInfo, DownloadPolicy, FormField,
    FormFile, HOST_CACHE_CONTROL, HandleOutcome, HttpBody, HttpRequest, HttpResponse, PluginInfo,
    RemoteConfig, RestNames, StoredArtifact, StoredUnit, UnitDeclaration, UpstreamFile,
    VersionInfo,
};
#[cfg(not(feature = "wit-v0_2"))]
pub use types::{CallerAccess, UnitRef};

/// The raw bindings of the `content-type` world. Not a stable API: use the modules of this crate.
#[doc(hidden)]
#[cfg(not(feature = "wit-v0_2"))]
pub mod wit {
    wit_bindgen::generate!({
        path: "../wit/since_v0.3.0",
        world: "content-type",
        pub_export_macro: true,
        default_bindings_module: "granary_sdk::wit",
        additional_derives: [PartialEq, Eq],
    });
}

/// The raw bindings of `granary:plugin@0.2.0` (feature `wit-v0_2`).
#[doc(hidden)]
#[cfg(feature = "wit-v0_2")]
pub mod wit {
    wit_bindgen::generate!({
        path: "../wit/since_v0.2.0",
        world: "content-type",
        pub_export_macro: true,
        default_bindings_module: "granary_sdk::wit",
        additional_derives: [PartialEq, Eq],
    });
}

/// The `handle` export of [`register_plugin!`]: 0.3.0 hands the body over as a stream.
#[doc(hidden)]
#[cfg(not(feature = "wit-v0_2"))]
#[macro_export]
macro_rules! __handle_export {
    ($plugin:ty) => {
        fn handle(
            request: $crate::HttpRequest,
            body: $crate::wit::granary::plugin::types::IncomingBody,
        ) -> ::core::result::Result<$crate::HandleOutcome, $crate::wit::PluginError> {
            <$plugin as $crate::Plugin>::handle(&request, $crate::Body::from_raw(body))
                .map_err(::core::convert::Into::into)
        }
    };
}

/// The `handle` export of [`register_plugin!`]: 0.2.0 hands the body over as bytes.
#[doc(hidden)]
#[cfg(feature = "wit-v0_2")]
#[macro_export]
macro_rules! __handle_export {
    ($plugin:ty) => {
        fn handle(
            mut request: $crate::HttpRequest,
        ) -> ::core::result::Result<$crate::HandleOutcome, $crate::wit::PluginError> {
            let body = $crate::Body::from_bytes(::core::mem::take(&mut request.body));
            <$plugin as $crate::Plugin>::handle(&request, body).map_err(::core::convert::Into::into)
        }
    };
}

/// The version of the WIT package (`granary:plugin`) this SDK was built against. Put it in
/// [`PluginInfo::wit_version`].
#[cfg(not(feature = "wit-v0_2"))]
pub const WIT_VERSION: &str = "0.3.0";
/// The version of the WIT package (`granary:plugin`) this SDK was built against (feature
/// `wit-v0_2`).
#[cfg(feature = "wit-v0_2")]
pub const WIT_VERSION: &str = "0.2.0";

/// A content-type plugin: implement it on a unit struct and pass the type to [`register_plugin!`].
///
/// Each method is one export of the `content-type` world; the host calls each one in a fresh
/// instance, so plugins keep no state between calls. Only [`Plugin::describe`] is required: the
/// others default to refusing the operation (or answering 404 for [`Plugin::handle`]).
pub trait Plugin {
    /// Describes the plugin. Must be cheap and deterministic: the host calls it at install time.
    fn describe() -> PluginInfo;

    /// Reads the upstream repository at `remote.url` through [`http`] and streams every unit it
    /// has to the host with a [`sync::Emitter`].
    fn sync(remote: &RemoteConfig) -> Result<(), PluginError> {
        let _ = remote;
        Err(PluginError::new("this content type does not support sync"))
    }

    /// Turns an uploaded artifact into the unit it is. Read its bytes, if needed, with
    /// [`artifacts::Reader`]. `relative_path` is the path the user asked for, when given.
    fn parse_upload(
        upload: &ArtifactRef,
        relative_path: Option<&str>,
    ) -> Result<UnitDeclaration, PluginError> {
        let _ = (upload, relative_path);
        Err(PluginError::new(
            "this content type does not support uploads",
        ))
    }

    /// Writes the publication of `version`: iterate its units with [`content::units`], write
    /// metadata with [`publication::write_file`] or [`publication::FileWriter`], and publish stored
    /// files with a [`publication::Publisher`].
    fn publish(version: &VersionInfo) -> Result<(), PluginError> {
        let _ = version;
        Err(PluginError::new(
            "this content type does not support publications",
        ))
    }

    /// Serves a dynamic route under a distribution: `/pulp/content/<base-path>/...` and
    /// `/<rest-names.distribution>/<base-path>/...`. The default answers 404 with an empty body.
    ///
    /// `body` is the request body, read as it arrives (see [`Body`]). A plain response is
    /// `Ok(response.into())` (or [`HandleOutcome::respond`]); an upload adds units with
    /// [`HandleOutcome::with_units`], and pull-through caching answers
    /// [`HttpResponse::fetch_upstream`].
    fn handle(request: &HttpRequest, body: Body) -> Result<HandleOutcome, PluginError> {
        let _ = (request, body);
        Ok(HttpResponse::not_found().into())
    }
}

/// Exports a [`Plugin`] implementation as the component's `content-type` world.
///
/// Invoke it once, at the root of a `cdylib` crate:
///
/// ```no_run
/// # use granary_sdk::{Plugin, PluginInfo};
/// struct MyPlugin;
/// impl Plugin for MyPlugin {
///     fn describe() -> PluginInfo {
///         # unimplemented!()
///         // ...
///     }
/// }
/// granary_sdk::register_plugin!(MyPlugin);
/// ```
#[macro_export]
macro_rules! register_plugin {
    ($plugin:ty) => {
        // The exports exist in the component only: a native build (the plugin's unit tests)
        // calls the `Plugin` methods directly. Naming the plugin there keeps it, and all it
        // calls, as used as the exports make it.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() -> $crate::PluginInfo = <$plugin as $crate::Plugin>::describe;
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct GranaryPluginExports;

            impl $crate::wit::Guest for GranaryPluginExports {
                fn describe() -> $crate::PluginInfo {
                    <$plugin as $crate::Plugin>::describe()
                }

                fn sync(
                    remote: $crate::RemoteConfig,
                ) -> ::core::result::Result<(), $crate::wit::PluginError> {
                    <$plugin as $crate::Plugin>::sync(&remote).map_err(::core::convert::Into::into)
                }

                fn parse_upload(
                    upload: $crate::ArtifactRef,
                    relative_path: ::core::option::Option<::std::string::String>,
                ) -> ::core::result::Result<$crate::UnitDeclaration, $crate::wit::PluginError>
                {
                    <$plugin as $crate::Plugin>::parse_upload(&upload, relative_path.as_deref())
                        .map_err(::core::convert::Into::into)
                }

                fn publish(
                    version: $crate::VersionInfo,
                ) -> ::core::result::Result<(), $crate::wit::PluginError> {
                    <$plugin as $crate::Plugin>::publish(&version)
                        .map_err(::core::convert::Into::into)
                }

                $crate::__handle_export!($plugin);
            }

    $crate::wit::export!(GranaryPluginExports with_types_in $crate::wit);
        };
    };
}
