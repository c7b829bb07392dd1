//! An in-memory host, so a plugin's exports can be unit-tested natively, without a server.
//!
//! Off `wasm32`, every wrapper of this crate ([`crate::http`], [`crate::artifacts`],
//! [`crate::content`], [`crate::publication`], [`crate::sync`], [`crate::log`],
//! [`crate::progress`]) talks to the [`Host`] that is running on the current thread instead of the
//! real host. A test fills a `Host` with upstream responses, uploaded artifacts and stored units,
//! calls the [`crate::Plugin`] methods inside [`Host::run`], and then inspects what the plugin
//! emitted, wrote and published. The harness enforces the host's main rules (batch sizes, paths
//! without `..`, only registered URLs, only given artifacts), so a test fails where the server
//! would refuse.
//!
//! Test a plugin crate with plain `cargo test`: the crate is compiled for the machine running the
//! tests, with this module in place of the Wasm imports.
//!
//! ```
//! use granary_sdk::harness::Host;
//! use granary_sdk::{Plugin, PluginInfo, RemoteConfig, DownloadPolicy, UnitDeclaration};
//!
//! struct Lines;
//! impl Plugin for Lines {
//!     fn describe() -> PluginInfo { unimplemented!() }
//!     fn sync(remote: &RemoteConfig) -> Result<(), granary_sdk::PluginError> {
//!         let mut emitter = granary_sdk::sync::Emitter::new();
//!         for line in granary_sdk::http::get(&remote.url, &[])?.lines() {
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
//! let mut host = Host::new();
//! host.http_response("https://example.com/names", 200, b"ada\ngrace\n");
//! let remote = RemoteConfig {
//!     url: "https://example.com/names".into(),
//!     policy: DownloadPolicy::Immediate,
//!     extra: "{}".into(),
//! };
//! host.run(|| Lines::sync(&remote)).unwrap();
//! assert_eq!(host.emitted.len(), 2);
//! assert_eq!(host.emitted[1].natural_key, r#"{"name":"grace"}"#);
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use crate::wit::granary::plugin::log::Level;
use crate::{
    ArtifactRef, DistributionInfo, FormFile, HttpBody, HttpRequest, StoredArtifact, StoredUnit,
    UnitDeclaration,
};

type RawError = crate::wit::granary::plugin::types::PluginError;

/// Most units in one `emit` batch and one `list-units` page, as on the server.
const MAX_BATCH: usize = 1000;
/// Most bytes of one read, as on the server.
const MAX_READ: u32 = 1024 * 1024;
/// Most bytes of one `artifacts.create`, as on the server.
const MAX_CREATE: usize = 4 * 1024 * 1024;

thread_local! {
    static CURRENT: RefCell<Option<Host>> = const { RefCell::new(None) };
}

/// A canned upstream response.
#[derive(Debug, Clone)]
struct Canned {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The in-memory host: what the plugin may read, and what it did.
#[derive(Debug, Default)]
pub struct Host {
    responses: BTreeMap<String, Canned>,
    artifacts: BTreeMap<String, Vec<u8>>,
    units: Vec<StoredUnit>,
    /// Bytes of stored files by `content-artifact` handle (what `publish-content` refers to).
    stored: BTreeMap<String, Vec<u8>>,
    /// Units the plugin emitted through [`crate::sync::Emitter`], in order.
    pub emitted: Vec<UnitDeclaration>,
    /// Sizes of the `emit` batches, in order.
    pub batches: Vec<usize>,
    /// Publication metadata files the plugin wrote, by relative path.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Stored files the plugin published: (published path, content-artifact handle).
    pub published: Vec<(String, String)>,
    /// Log messages, in order.
    pub logs: Vec<(Level, String)>,
    /// The last progress report of each code: (message, done, total).
    pub progress: BTreeMap<String, (String, u64, Option<u64>)>,
    /// URLs the plugin requested, in order, as `GET url` or `HEAD url`.
    pub requests: Vec<String>,
    /// Artifacts the plugin stored with [`crate::artifacts::create`], [`crate::Body::store`] and
    /// [`crate::uploads::complete`], in order.
    pub created: Vec<ArtifactRef>,
    /// Upload sessions in progress ([`crate::uploads`]): id → bytes so far.
    #[cfg(not(feature = "wit-v0_2"))]
    pub sessions: BTreeMap<String, Vec<u8>>,
    /// Sessions started so far (the next id's number).
    #[cfg(not(feature = "wit-v0_2"))]
    sessions_started: u64,
    /// Base paths of the plugin's public distributions ([`crate::distributions::base_paths`]).
    #[cfg(not(feature = "wit-v0_2"))]
    pub base_paths: std::collections::BTreeSet<String>,
    /// The units other distributions serve, by base path, as [`crate::content::find_at`] finds
    /// them (the caller may read every one listed here).
    #[cfg(not(feature = "wit-v0_2"))]
    pub elsewhere: BTreeMap<String, Vec<StoredUnit>>,
    /// Users and their passwords, for [`crate::accounts::log_in`].
    #[cfg(not(feature = "wit-v0_2"))]
    pub passwords: BTreeMap<String, String>,
    /// Tokens issued by [`crate::accounts::log_in`]: (username, client, secret), in order.
    #[cfg(not(feature = "wit-v0_2"))]
    pub issued_tokens: Vec<(String, String, String)>,
}

impl Host {
    /// An empty host: no upstream, no artifacts, no units.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `GET url` (and `HEAD url`, without the body) with `status` and `body`.
    pub fn http_response(&mut self, url: &str, status: u16, body: &[u8]) -> &mut Self {
        self.responses.insert(
            url.to_owned(),
            Canned {
                status,
                headers: vec![("content-length".into(), body.len().to_string())],
                body: body.to_vec(),
            },
        );
        self
    }

    /// Makes `bytes` readable as an uploaded artifact; returns the reference to hand to
    /// [`crate::Plugin::parse_upload`].
    pub fn artifact(&mut self, bytes: &[u8]) -> ArtifactRef {
        let sha256 = sha256_hex(bytes);
        self.artifacts.insert(sha256.clone(), bytes.to_vec());
        ArtifactRef {
            sha256,
            size: bytes.len() as u64,
        }
    }

    /// Stores `bytes` as the file part `name` (file name `filename`) of a form body, as the server
    /// does before calling `handle`; push the result onto [`HttpRequest::files`].
    pub fn form_file(&mut self, name: &str, filename: &str, bytes: &[u8]) -> FormFile {
        FormFile {
            name: name.to_owned(),
            filename: filename.to_owned(),
            artifact: self.artifact(bytes),
        }
    }

    /// The bytes of an artifact the plugin was given or created, by sha256.
    pub fn artifact_bytes(&self, sha256: &str) -> Option<&[u8]> {
        self.artifacts.get(sha256).map(Vec::as_slice)
    }

    /// Adds a unit to the repository version in scope (what [`crate::content::units`] yields),
    /// with one stored file per `(relative path, bytes)`. Returns the unit as the plugin sees it.
    pub fn stored_unit(
        &mut self,
        content_type: &str,
        natural_key: &str,
        metadata: &str,
        files: &[(&str, &[u8])],
    ) -> StoredUnit {
        let artifacts = files
            .iter()
            .map(|(relative_path, bytes)| {
                let handle = format!("content-artifact-{}", self.stored.len() + 1);
                self.stored.insert(handle.clone(), bytes.to_vec());
                StoredArtifact {
                    relative_path: (*relative_path).to_owned(),
                    content_artifact: handle,
                    sha256: Some(sha256_hex(bytes)),
                    size: Some(bytes.len() as u64),
                }
            })
            .collect();
        let unit = StoredUnit {
            content_type: content_type.to_owned(),
            natural_key: natural_key.to_owned(),
            metadata: metadata.to_owned(),
            artifacts,
        };
        self.units.push(unit.clone());
        unit
    }

    /// Carries out what a `handle` outcome asks of the repository, as the host does after
    /// answering: its `add_units` become stored units (each file the artifact its `sha256`
    /// names, which the call stored or was given), and its `remove_units` leave. A unit with the
    /// same natural key as one stored is not added twice.
    ///
    /// # Panics
    /// When an added file names no artifact this host holds.
    pub fn apply(&mut self, outcome: &crate::HandleOutcome) {
        for unit in &outcome.add_units {
            if self.units.iter().any(|stored| {
                stored.content_type == unit.content_type && stored.natural_key == unit.natural_key
            }) {
                continue;
            }
            let files: Vec<(String, Vec<u8>)> = unit
                .artifacts
                .iter()
                .map(|artifact| {
                    let sha256 = artifact.sha256.as_deref().unwrap_or_default();
                    let bytes = self.artifacts.get(sha256).unwrap_or_else(|| {
                        panic!("{} names no stored artifact", artifact.relative_path)
                    });
                    (artifact.relative_path.clone(), bytes.clone())
                })
                .collect();
            let files: Vec<(&str, &[u8])> = files
                .iter()
                .map(|(path, bytes)| (path.as_str(), bytes.as_slice()))
                .collect();
            self.stored_unit(
                &unit.content_type,
                &unit.natural_key,
                &unit.metadata,
                &files,
            );
        }
        #[cfg(not(feature = "wit-v0_2"))]
        for removed in &outcome.remove_units {
            self.units.retain(|unit| {
                unit.content_type != removed.content_type || unit.natural_key != removed.natural_key
            });
        }
    }

    /// Runs `f` (a call of a plugin method) with this host serving every import on this thread.
    ///
    /// # Panics
    /// When called inside another `run` on the same thread.
    pub fn run<T>(&mut self, f: impl FnOnce() -> T) -> T {
        CURRENT.with(|current| {
            let mut current = current.borrow_mut();
            assert!(
                current.is_none(),
                "Host::run is already running on this thread"
            );
            *current = Some(std::mem::take(self));
        });
        // Put the host back even when `f` panics, so the test's assertion message is the one seen.
        struct Restore<'a>(&'a mut Host);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                if let Some(host) = CURRENT.with(|current| current.borrow_mut().take()) {
                    *self.0 = host;
                }
            }
        }
        let _restore = Restore(self);
        f()
    }

    /// The metadata file the plugin wrote at `relative_path`, as UTF-8.
    pub fn file(&self, relative_path: &str) -> Option<String> {
        self.files
            .get(relative_path)
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    }

    /// The bytes of the stored file a `content-artifact` handle names.
    pub fn stored_bytes(&self, content_artifact: &str) -> Option<&[u8]> {
        self.stored.get(content_artifact).map(Vec::as_slice)
    }
}

/// A request for `path` (relative to the distribution, no leading `/`) of a writable
/// distribution `demo` (base path `demo`, no plugin fields, no remote), with no query,
/// no user, served at `http://localhost/pulp/content/demo/`. Adjust its public fields as needed.
///
/// ```
/// let mut request = granary_sdk::harness::request("POST", "upload/");
/// request.user = Some("alice".into());
/// assert_eq!(request.distribution().unwrap().base_path, "demo");
/// ```
pub fn request(method: &str, path: &str) -> HttpRequest {
    HttpRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query: None,
        headers: Vec::new(),
        #[cfg(feature = "wit-v0_2")]
        body: Vec::new(),
        base_url: "http://localhost/pulp/content/demo/".to_owned(),
        form: Vec::new(),
        files: Vec::new(),
        user: None,
        // What the host grants an anonymous caller; a test of a writer sets `push`/`delete`.
        #[cfg(not(feature = "wit-v0_2"))]
        access: crate::CallerAccess {
            pull: true,
            push: false,
            delete: false,
        },
        distribution: distribution(DistributionInfo {
            name: "demo".to_owned(),
            base_path: "demo".to_owned(),
            extra: "{}".to_owned(),
            writable: true,
            remote: None,
        }),
    }
}

/// The request's distribution, as the WIT version has it (optional since 0.3.0: root routes).
#[cfg(not(feature = "wit-v0_2"))]
fn distribution(info: DistributionInfo) -> Option<DistributionInfo> {
    Some(info)
}

/// The request's distribution, as the WIT version has it.
#[cfg(feature = "wit-v0_2")]
fn distribution(info: DistributionInfo) -> DistributionInfo {
    info
}

/// The bytes of a response body the plugin produced itself, or `None` for a streamed file.
pub fn body_bytes(body: &HttpBody) -> Option<&[u8]> {
    match body {
        HttpBody::Bytes(bytes) => Some(bytes),
        HttpBody::ContentArtifact(_) | HttpBody::FetchUpstream(_) => None,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn with_host<T>(f: impl FnOnce(&mut Host) -> T) -> T {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        let host = current.as_mut().expect(
            "a granary_sdk import was called outside harness::Host::run (natively, the SDK's imports are served by the in-memory harness)",
        );
        f(host)
    })
}

fn error(message: impl Into<String>) -> RawError {
    RawError {
        message: message.into(),
        field: None,
    }
}

/// Refuses `bytes` whose sha256 is not `expected`, as the server does (an error on `digest`).
#[cfg(not(feature = "wit-v0_2"))]
fn check_digest(bytes: &[u8], expected: Option<&str>) -> Result<(), RawError> {
    let actual = sha256_hex(bytes);
    match expected {
        Some(expected) if !expected.eq_ignore_ascii_case(&actual) => Err(RawError {
            message: format!("the bytes' sha256 is {actual}, not the expected {expected}"),
            field: Some("digest".into()),
        }),
        _ => Ok(()),
    }
}

fn check_path(path: &str) -> Result<(), RawError> {
    if path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(error(format!(
            "relative path {path:?} must not be empty or absolute, or contain empty, '.' or '..' segments"
        )));
    }
    Ok(())
}

/// Stand-ins for the generated import functions, with the same signatures.
pub(crate) mod imports {
    /// `granary:plugin/http`.
    pub mod http {
        use super::super::{Canned, RawError, error, with_host};

        /// An in-memory response.
        pub struct Response {
            canned: Canned,
            position: usize,
        }

        impl Response {
            pub fn status(&self) -> u16 {
                self.canned.status
            }

            pub fn headers(&self) -> Vec<(String, String)> {
                self.canned.headers.clone()
            }

            pub fn read(&mut self, max_bytes: u32) -> Result<Vec<u8>, RawError> {
                let n = (max_bytes.min(super::super::MAX_READ) as usize)
                    .min(self.canned.body.len() - self.position);
                let chunk = self.canned.body[self.position..self.position + n].to_vec();
                self.position += n;
                Ok(chunk)
            }
        }

        fn request(method: &str, url: &str, body: bool) -> Result<Response, RawError> {
            with_host(|host| {
                host.requests.push(format!("{method} {url}"));
                let mut canned = host.responses.get(url).cloned().ok_or_else(|| {
                    error(format!(
                        "harness: no response registered for {method} {url} (use Host::http_response)"
                    ))
                })?;
                if !body {
                    canned.body.clear();
                }
                Ok(Response {
                    canned,
                    position: 0,
                })
            })
        }

        pub fn get(url: &str, _headers: &[(String, String)]) -> Result<Response, RawError> {
            request("GET", url, true)
        }

        pub fn head(url: &str, _headers: &[(String, String)]) -> Result<Response, RawError> {
            request("HEAD", url, false)
        }
    }

    /// `granary:plugin/artifacts`.
    pub mod artifacts {
        use super::super::{RawError, error, with_host};

        pub fn read(sha256: &str, offset: u64, len: u32) -> Result<Vec<u8>, RawError> {
            with_host(|host| {
                let bytes = host.artifacts.get(sha256).ok_or_else(|| {
                    error(format!("artifact {sha256} was not given to this call"))
                })?;
                let start = (offset as usize).min(bytes.len());
                let end = start
                    .saturating_add(len.min(super::super::MAX_READ) as usize)
                    .min(bytes.len());
                Ok(bytes[start..end].to_vec())
            })
        }

        #[cfg(not(feature = "wit-v0_2"))]
        pub fn store_body(
            body: &super::types::IncomingBody,
            expected_sha256: Option<&str>,
        ) -> Result<crate::ArtifactRef, RawError> {
            let bytes = body.rest();
            super::super::check_digest(&bytes, expected_sha256)?;
            Ok(created(&bytes))
        }

        /// An artifact written in pieces, held in memory until `finish`.
        #[cfg(not(feature = "wit-v0_2"))]
        pub struct ArtifactWriter {
            /// None once finished. Interior, as the host's resource is.
            bytes: std::cell::RefCell<Option<Vec<u8>>>,
        }

        #[cfg(not(feature = "wit-v0_2"))]
        impl ArtifactWriter {
            pub fn write(&self, data: &[u8]) -> Result<(), RawError> {
                if data.len() > super::super::MAX_READ as usize {
                    return Err(error(format!(
                        "artifact-writer.write got {} bytes; at most {} per call",
                        data.len(),
                        super::super::MAX_READ
                    )));
                }
                match self.bytes.borrow_mut().as_mut() {
                    Some(bytes) => {
                        bytes.extend_from_slice(data);
                        Ok(())
                    }
                    None => Err(error("the artifact was finished already")),
                }
            }

            pub fn finish(
                &self,
                expected_sha256: Option<&str>,
            ) -> Result<crate::ArtifactRef, RawError> {
                let bytes = self
                    .bytes
                    .borrow_mut()
                    .take()
                    .ok_or_else(|| error("the artifact was finished already"))?;
                super::super::check_digest(&bytes, expected_sha256)?;
                Ok(created(&bytes))
            }
        }

        #[cfg(not(feature = "wit-v0_2"))]
        pub fn start_artifact() -> Result<ArtifactWriter, RawError> {
            Ok(ArtifactWriter {
                bytes: std::cell::RefCell::new(Some(Vec::new())),
            })
        }

        pub fn create(data: &[u8]) -> Result<crate::ArtifactRef, RawError> {
            if data.len() > super::super::MAX_CREATE {
                return Err(error(format!(
                    "an artifact of {} bytes exceeds the limit of {} bytes",
                    data.len(),
                    super::super::MAX_CREATE
                )));
            }
            Ok(created(data))
        }

        /// Keeps `bytes` as an artifact the call created.
        fn created(bytes: &[u8]) -> crate::ArtifactRef {
            with_host(|host| {
                let artifact = host.artifact(bytes);
                host.created.push(artifact.clone());
                artifact
            })
        }
    }

    /// `granary:plugin/content`.
    pub mod content {
        use super::super::{MAX_BATCH, RawError, error, with_host};
        use crate::StoredUnit;
        use crate::wit::granary::plugin::types::UnitPage;

        /// The page of `matching` at `cursor` (an offset, as the harness writes its cursors).
        fn page_of(
            matching: &[&StoredUnit],
            cursor: Option<&str>,
            limit: u32,
        ) -> Result<UnitPage, RawError> {
            let start = match cursor {
                None => 0,
                Some(cursor) => cursor
                    .parse::<usize>()
                    .map_err(|_| error(format!("invalid cursor {cursor:?}")))?,
            };
            let limit = (limit as usize).clamp(1, MAX_BATCH);
            let end = (start + limit).min(matching.len());
            let units = matching
                .get(start..end)
                .unwrap_or_default()
                .iter()
                .map(|&unit| unit.clone())
                .collect();
            let next = (end < matching.len()).then(|| end.to_string());
            Ok(UnitPage { units, next })
        }

        pub fn list_units(cursor: Option<&str>, limit: u32) -> Result<UnitPage, RawError> {
            with_host(|host| {
                let all: Vec<&StoredUnit> = host.units.iter().collect();
                page_of(&all, cursor, limit)
            })
        }

        pub fn list_by_prefix(
            prefix: &str,
            cursor: Option<&str>,
            limit: u32,
        ) -> Result<UnitPage, RawError> {
            with_host(|host| {
                let matching: Vec<&StoredUnit> = host
                    .units
                    .iter()
                    .filter(|unit| {
                        unit.artifacts
                            .iter()
                            .any(|a| a.relative_path.starts_with(prefix))
                    })
                    .collect();
                page_of(&matching, cursor, limit)
            })
        }

        /// Like the host's, but every field counts as indexed (the host answers only for the
        /// fields `describe` declares in `indexed-fields`, an error for the others).
        #[cfg(not(feature = "wit-v0_2"))]
        pub fn distinct_values(
            content_type: &str,
            field: &str,
            after: Option<&str>,
            limit: u32,
        ) -> Result<Vec<String>, RawError> {
            with_host(|host| {
                let values: std::collections::BTreeSet<String> = host
                    .units
                    .iter()
                    .filter(|unit| unit.content_type == content_type)
                    .filter_map(|unit| indexed_value(&unit.metadata, field))
                    .filter(|value| after.is_none_or(|after| value.as_str() > after))
                    .collect();
                let limit = (limit as usize).clamp(1, MAX_BATCH);
                Ok(values.into_iter().take(limit).collect())
            })
        }

        /// Like the host's, with every field indexed (see [`distinct_values`]).
        #[cfg(not(feature = "wit-v0_2"))]
        pub fn find_by_field(
            content_type: &str,
            field: &str,
            value: &str,
            cursor: Option<&str>,
            limit: u32,
        ) -> Result<UnitPage, RawError> {
            with_host(|host| {
                let matching: Vec<&StoredUnit> = host
                    .units
                    .iter()
                    .filter(|unit| {
                        unit.content_type == content_type
                            && indexed_value(&unit.metadata, field).as_deref() == Some(value)
                    })
                    .collect();
                page_of(&matching, cursor, limit)
            })
        }

        /// Like the host's, in [`Host::elsewhere`]: none for a base path not listed there.
        #[cfg(not(feature = "wit-v0_2"))]
        pub fn find_at(
            base_path: &str,
            content_type: &str,
            field: &str,
            value: &str,
            limit: u32,
        ) -> Result<Option<Vec<StoredUnit>>, RawError> {
            with_host(|host| {
                Ok(host.elsewhere.get(base_path).map(|units| {
                    units
                        .iter()
                        .filter(|unit| {
                            unit.content_type == content_type
                                && indexed_value(&unit.metadata, field).as_deref() == Some(value)
                        })
                        .take((limit as usize).clamp(1, MAX_BATCH))
                        .cloned()
                        .collect()
                }))
            })
        }

        /// The value the host indexes a unit under for `field`: a top-level string of at most
        /// 512 bytes of its metadata.
        #[cfg(not(feature = "wit-v0_2"))]
        fn indexed_value(metadata: &str, field: &str) -> Option<String> {
            match serde_json::from_str::<serde_json::Value>(metadata)
                .ok()?
                .get(field)?
            {
                serde_json::Value::String(value) if value.len() <= 512 => Some(value.clone()),
                _ => None,
            }
        }

        pub fn find_by_path(relative_path: &str) -> Result<Vec<StoredUnit>, RawError> {
            with_host(|host| {
                Ok(host
                    .units
                    .iter()
                    .filter(|unit| {
                        unit.artifacts
                            .iter()
                            .any(|a| a.relative_path == relative_path)
                    })
                    .cloned()
                    .collect())
            })
        }
    }

    /// `granary:plugin/publication`.
    pub mod publication {
        use super::super::{RawError, check_path, error, with_host};

        pub fn write_file(relative_path: &str, data: &[u8]) -> Result<(), RawError> {
            check_path(relative_path)?;
            with_host(|host| {
                host.files
                    .entry(relative_path.to_owned())
                    .or_default()
                    .extend_from_slice(data);
                Ok(())
            })
        }

        pub fn publish_content(entries: &[(String, String)]) -> Result<(), RawError> {
            with_host(|host| {
                for (path, handle) in entries {
                    check_path(path)?;
                    if !host.stored.contains_key(handle) {
                        return Err(error(format!(
                            "{handle:?} is not a stored file of the version in scope"
                        )));
                    }
                    host.published.push((path.clone(), handle.clone()));
                }
                Ok(())
            })
        }
    }

    /// `granary:plugin/sync-sink`.
    pub mod sync_sink {
        use super::super::{MAX_BATCH, RawError, check_path, error, with_host};
        use crate::UnitDeclaration;

        pub fn emit(units: &[UnitDeclaration]) -> Result<(), RawError> {
            if units.len() > MAX_BATCH {
                return Err(error(format!(
                    "a batch of {} units exceeds the limit of {MAX_BATCH}",
                    units.len()
                )));
            }
            for unit in units {
                for artifact in &unit.artifacts {
                    check_path(&artifact.relative_path)?;
                }
            }
            with_host(|host| {
                host.batches.push(units.len());
                host.emitted.extend_from_slice(units);
                Ok(())
            })
        }
    }

    /// `granary:plugin/types`: the request body resource.
    #[cfg(not(feature = "wit-v0_2"))]
    pub mod types {
        use std::cell::RefCell;

        use super::super::RawError;

        /// A request body held in memory.
        pub struct IncomingBody {
            bytes: Vec<u8>,
            /// Interior, as the host's resource is: the imports take it by reference.
            position: RefCell<usize>,
        }

        impl IncomingBody {
            pub fn new(bytes: Vec<u8>) -> Self {
                Self {
                    bytes,
                    position: RefCell::new(0),
                }
            }

            pub fn read(&self, max_bytes: u32) -> Result<Vec<u8>, RawError> {
                let mut position = self.position.borrow_mut();
                let n = (max_bytes.min(super::super::MAX_READ) as usize)
                    .min(self.bytes.len() - *position);
                let chunk = self.bytes[*position..*position + n].to_vec();
                *position += n;
                Ok(chunk)
            }

            /// What is left of the body, which is then read to its end.
            pub(crate) fn rest(&self) -> Vec<u8> {
                let mut position = self.position.borrow_mut();
                let rest = self.bytes[*position..].to_vec();
                *position = self.bytes.len();
                rest
            }
        }
    }

    /// `granary:plugin/uploads`.
    #[cfg(not(feature = "wit-v0_2"))]
    pub mod uploads {
        use super::super::{RawError, check_digest, with_host};
        use super::types::IncomingBody;

        fn refused(field: &str, message: String) -> RawError {
            RawError {
                message,
                field: Some(field.to_owned()),
            }
        }

        pub fn start() -> Result<String, RawError> {
            with_host(|host| {
                host.sessions_started += 1;
                let id = format!("{:032x}", host.sessions_started);
                host.sessions.insert(id.clone(), Vec::new());
                Ok(id)
            })
        }

        pub fn size(id: &str) -> Option<u64> {
            with_host(|host| host.sessions.get(id).map(|bytes| bytes.len() as u64))
        }

        pub fn append(id: &str, offset: u64, body: &IncomingBody) -> Result<u64, RawError> {
            with_host(|host| {
                let Some(bytes) = host.sessions.get_mut(id) else {
                    return Err(refused("id", format!("there is no upload session {id:?}")));
                };
                if bytes.len() as u64 != offset {
                    return Err(refused(
                        "offset",
                        format!(
                            "the upload session holds {} bytes, not {offset}",
                            bytes.len()
                        ),
                    ));
                }
                bytes.extend_from_slice(&body.rest());
                Ok(bytes.len() as u64)
            })
        }

        pub fn complete(
            id: &str,
            expected_sha256: Option<&str>,
        ) -> Result<crate::ArtifactRef, RawError> {
            with_host(|host| {
                let Some(bytes) = host.sessions.get(id) else {
                    return Err(refused("id", format!("there is no upload session {id:?}")));
                };
                check_digest(bytes, expected_sha256)?;
                let bytes = host.sessions.remove(id).unwrap_or_default();
                let artifact = host.artifact(&bytes);
                host.created.push(artifact.clone());
                Ok(artifact)
            })
        }

        pub fn cancel(id: &str) -> Result<bool, RawError> {
            with_host(|host| Ok(host.sessions.remove(id).is_some()))
        }
    }

    /// `granary:plugin/accounts`.
    #[cfg(not(feature = "wit-v0_2"))]
    pub mod accounts {
        use super::super::{RawError, with_host};

        pub fn log_in(
            username: &str,
            password: &str,
            client: &str,
        ) -> Result<Option<String>, RawError> {
            with_host(|host| {
                if host.passwords.get(username).map(String::as_str) != Some(password) {
                    return Ok(None);
                }
                let secret = format!("grn_test{}", host.issued_tokens.len());
                host.issued_tokens
                    .push((username.to_owned(), client.to_owned(), secret.clone()));
                Ok(Some(secret))
            })
        }
    }

    /// `granary:plugin/distributions`.
    #[cfg(not(feature = "wit-v0_2"))]
    pub mod distributions {
        use super::super::{MAX_BATCH, RawError, with_host};

        pub fn list_base_paths(after: Option<&str>, limit: u32) -> Result<Vec<String>, RawError> {
            with_host(|host| {
                Ok(host
                    .base_paths
                    .iter()
                    .filter(|base_path| after.is_none_or(|after| base_path.as_str() > after))
                    .take((limit as usize).clamp(1, MAX_BATCH))
                    .cloned()
                    .collect())
            })
        }
    }

    /// `granary:plugin/log`.
    pub mod log {
        use super::super::with_host;
        pub use crate::wit::granary::plugin::log::Level;

        pub fn log(level: Level, message: &str) {
            with_host(|host| host.logs.push((level, message.to_owned())));
        }
    }

    /// `granary:plugin/progress`.
    pub mod progress {
        use super::super::with_host;

        pub fn report(code: &str, message: &str, done: u64, total: Option<u64>) {
            with_host(|host| {
                host.progress
                    .insert(code.to_owned(), (message.to_owned(), done, total));
            });
        }
    }
}
