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
        PluginInfo::new(
            "file",
            env!("CARGO_PKG_VERSION"),
            vec![
                ContentTypeInfo::new(
                    FILE,
                    "A file with a relative path",
                    &["relative_path", "sha256"],
                )
                // pulp_file's `repo_key_fields`: a file uploaded at a path replaces the one there.
                .with_indexed_fields(&["relative_path"])
                .with_repository_key("relative_path"),
            ],
        )
        .with_capabilities(&["http"])
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
            sha512: None,
        }],
    }
}

granary_sdk::register_plugin!(FilePlugin);

/// The plugin's exports run natively against the SDK's in-memory host.
#[cfg(test)]
mod tests {
    use granary_sdk::harness::Host;
    use granary_sdk::{DownloadPolicy, Plugin, RemoteConfig, VersionInfo};

    use super::FilePlugin;

    const A_SHA: &str = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
    const B_SHA: &str = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";

    fn remote(url: &str) -> RemoteConfig {
        RemoteConfig {
            url: url.into(),
            policy: DownloadPolicy::OnDemand,
            extra: "{}".into(),
        }
    }

    #[test]
    fn sync_declares_one_unit_per_manifest_line_with_urls_beside_the_manifest() {
        let mut host = Host::new();
        let manifest = format!("# comment\na.txt,{A_SHA},1\n\ndir/b.txt,{B_SHA},1\n");
        host.http_response(
            "https://up.example/repo/PULP_MANIFEST",
            200,
            manifest.as_bytes(),
        );
        host.run(|| FilePlugin::sync(&remote("https://up.example/repo/PULP_MANIFEST")))
            .unwrap();
        assert_eq!(host.emitted.len(), 2);
        let b = &host.emitted[1];
        assert_eq!(b.content_type, "file");
        assert_eq!(
            b.natural_key,
            format!(r#"{{"relative_path":"dir/b.txt","sha256":"{B_SHA}"}}"#)
        );
        assert_eq!(
            b.artifacts[0].url.as_deref(),
            Some("https://up.example/repo/dir/b.txt")
        );
        assert_eq!(b.artifacts[0].size, Some(1));
        assert_eq!(host.progress["sync.parsing.metadata"].1, 2);
        assert_eq!(host.requests, ["GET https://up.example/repo/PULP_MANIFEST"]);
    }

    #[test]
    fn sync_streams_large_manifests_in_batches() {
        let mut host = Host::new();
        let manifest: String = (0..1200).map(|i| format!("f{i},{A_SHA},1\n")).collect();
        host.http_response("https://up.example/PULP_MANIFEST", 200, manifest.as_bytes());
        host.run(|| FilePlugin::sync(&remote("https://up.example/PULP_MANIFEST")))
            .unwrap();
        assert_eq!(host.emitted.len(), 1200);
        assert_eq!(host.batches, [500, 500, 200]);
    }

    #[test]
    fn sync_names_the_bad_line_and_the_failed_fetch() {
        let mut host = Host::new();
        host.http_response(
            "https://up.example/bad/PULP_MANIFEST",
            200,
            b"a.txt,nothex,1\n",
        );
        host.http_response("https://up.example/gone/PULP_MANIFEST", 404, b"");
        let bad = host
            .run(|| FilePlugin::sync(&remote("https://up.example/bad/PULP_MANIFEST")))
            .unwrap_err();
        assert!(bad.message().contains("line 1"), "{bad}");
        let gone = host
            .run(|| FilePlugin::sync(&remote("https://up.example/gone/PULP_MANIFEST")))
            .unwrap_err();
        assert!(gone.message().contains("HTTP 404"), "{gone}");
        assert!(host.emitted.is_empty());
    }

    #[test]
    fn parse_upload_needs_a_safe_relative_path() {
        let mut host = Host::new();
        let upload = host.artifact(b"a");
        let unit = host
            .run(|| FilePlugin::parse_upload(&upload, Some("x/a.txt")))
            .unwrap();
        assert_eq!(
            unit.natural_key,
            format!(r#"{{"relative_path":"x/a.txt","sha256":"{A_SHA}"}}"#)
        );
        assert_eq!(unit.artifacts[0].sha256.as_deref(), Some(A_SHA));
        let missing = host
            .run(|| FilePlugin::parse_upload(&upload, None))
            .unwrap_err();
        assert_eq!(missing.field_name(), Some("relative_path"));
        let escape = host
            .run(|| FilePlugin::parse_upload(&upload, Some("../a.txt")))
            .unwrap_err();
        assert_eq!(escape.field_name(), Some("relative_path"));
    }

    #[test]
    fn publish_serves_every_file_and_lists_it_in_the_manifest() {
        let mut host = Host::new();
        let a = host.stored_unit(
            "file",
            &format!(r#"{{"relative_path":"a.txt","sha256":"{A_SHA}"}}"#),
            "{}",
            &[("a.txt", b"a")],
        );
        host.stored_unit(
            "file",
            &format!(r#"{{"relative_path":"dir/b.txt","sha256":"{B_SHA}"}}"#),
            "{}",
            &[("dir/b.txt", b"b")],
        );
        let version = VersionInfo {
            repository_name: "r".into(),
            number: 1,
        };
        host.run(|| FilePlugin::publish(&version)).unwrap();
        assert_eq!(
            host.file("PULP_MANIFEST").unwrap(),
            format!("a.txt,{A_SHA},1\ndir/b.txt,{B_SHA},1\n")
        );
        assert_eq!(host.published.len(), 2);
        assert_eq!(
            host.published[0],
            ("a.txt".to_owned(), a.artifacts[0].content_artifact.clone())
        );
        assert_eq!(host.stored_bytes(&host.published[1].1), Some(&b"b"[..]));
    }
}
