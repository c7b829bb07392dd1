//! Granary's `file` content type: Pulp's `pulp_file` as a WebAssembly component.
//!
//! A remote is the URL of a `PULP_MANIFEST` listing `relative_path,sha256,size` lines; each line is
//! one `file` unit whose single artifact lives next to the manifest. A publication serves every
//! file at its relative path plus a `PULP_MANIFEST` listing them, so a Granary distribution can be
//! the remote of another repository.
//!
//! # Layout
//!
//! - `lib.rs`: the [`Plugin`] implementation (the host calls).
//! - `manifest.rs`: the `PULP_MANIFEST` format and URL resolution, pure and unit-tested.

use std::io::Write;

use granary_sdk::publication::{FileWriter, Publisher};
use granary_sdk::sync::Emitter;
use granary_sdk::{
    ArtifactDeclaration, ArtifactRef, ContentTypeInfo, Plugin, PluginError, PluginInfo,
    RemoteConfig, UnitDeclaration, VersionInfo, http, json, log, progress,
};

mod manifest;

use manifest::Entry;

/// The content type this plugin provides.
const FILE: &str = "file";
const MANIFEST: &str = "PULP_MANIFEST";
/// Progress is reported every this many manifest entries.
const PROGRESS_EVERY: u64 = 1000;

struct FilePlugin;

impl Plugin for FilePlugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "file".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            wit_version: granary_sdk::WIT_VERSION.into(),
            content_types: vec![ContentTypeInfo::new(
                FILE,
                "A file with a relative path",
                &["relative_path", "sha256"],
            )],
            capabilities: vec!["http".into()],
        }
    }

    /// Streams the manifest line by line: neither the manifest nor its units are ever held whole.
    fn sync(remote: &RemoteConfig) -> Result<(), PluginError> {
        let response = http::get(&remote.url, &[])?;
        if !response.is_success() {
            return Err(PluginError::new(format!(
                "fetching the {MANIFEST} at {} failed: HTTP {}",
                remote.url,
                response.status()
            )));
        }
        let base = manifest::base_url(&remote.url);
        let mut emitter = Emitter::new();
        let report = |done| {
            progress::report(
                "sync.parsing.metadata",
                "Parsing Metadata Lines",
                done,
                None,
            )
        };
        for (index, line) in response.lines().enumerate() {
            let Some(entry) =
                manifest::parse_line(index as u64 + 1, &line?).map_err(PluginError::new)?
            else {
                continue;
            };
            let url = manifest::resolve(&base, &entry.relative_path);
            emitter.emit(file_unit(&entry, Some(url)))?;
            if emitter.emitted().is_multiple_of(PROGRESS_EVERY) {
                report(emitter.emitted());
            }
        }
        let total = emitter.finish()?;
        report(total);
        log::info(format!("{MANIFEST} at {} lists {total} files", remote.url));
        Ok(())
    }

    /// The host has already hashed and sized the upload, so its bytes are never read here.
    fn parse_upload(
        upload: &ArtifactRef,
        relative_path: Option<&str>,
    ) -> Result<UnitDeclaration, PluginError> {
        let relative_path = relative_path.ok_or_else(|| {
            PluginError::field("relative_path", "a file upload needs a relative_path")
        })?;
        manifest::validate_relative_path(relative_path)
            .map_err(|message| PluginError::field("relative_path", message))?;
        let entry = Entry {
            relative_path: relative_path.to_owned(),
            sha256: upload.sha256.clone(),
            size: upload.size,
        };
        Ok(file_unit(&entry, None))
    }

    fn publish(_version: &VersionInfo) -> Result<(), PluginError> {
        let mut publisher = Publisher::new();
        let mut listing = FileWriter::new(MANIFEST);
        for unit in granary_sdk::content::units() {
            let unit = unit?;
            if unit.content_type != FILE {
                continue;
            }
            for artifact in unit.artifacts {
                let missing = |what| {
                    PluginError::new(format!("{} has no known {what}", artifact.relative_path))
                };
                let entry = Entry {
                    sha256: artifact.sha256.clone().ok_or_else(|| missing("sha256"))?,
                    size: artifact.size.ok_or_else(|| missing("size"))?,
                    relative_path: artifact.relative_path.clone(),
                };
                publisher.publish(&artifact.relative_path, &artifact.content_artifact)?;
                writeln!(listing, "{}", entry.to_line())?;
            }
        }
        listing.finish()?;
        publisher.finish()?;
        Ok(())
    }
}

/// The unit of one file, downloadable from `url` when it comes from a sync.
fn file_unit(entry: &Entry, url: Option<String>) -> UnitDeclaration {
    UnitDeclaration {
        content_type: FILE.into(),
        natural_key: json::string_object([
            ("relative_path", entry.relative_path.as_str()),
            ("sha256", entry.sha256.as_str()),
        ]),
        metadata: "{}".into(),
        artifacts: vec![ArtifactDeclaration {
            relative_path: entry.relative_path.clone(),
            url,
            size: Some(entry.size),
            sha256: Some(entry.sha256.clone()),
        }],
    }
}

granary_sdk::register_plugin!(FilePlugin);
