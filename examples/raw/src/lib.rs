//! `raw`: a generic hosted repository of files, written outside Granary's built-in set with the
//! Rust SDK (see `examples/README.md`).
//!
//! Upload any file with a relative path; a publication serves every file at its path, plus a
//! `SHA256SUMS` listing (`sha256  path` lines, as `sha256sum -c` reads them). Version 0.2.0 (the
//! `v2` feature) also writes `index.json`, a JSON array of `{path, sha256, size}`.
//!
//! There is no upstream to sync from, so the plugin asks for no capabilities.

use std::io::Write as _;

use granary_sdk::publication::{FileWriter, Publisher};
use granary_sdk::{
    ArtifactDeclaration, ArtifactRef, ContentTypeInfo, Plugin, PluginError, PluginInfo,
    UnitDeclaration, VersionInfo, index, json,
};

/// The content type (and so the repository type: `repositories/raw/raw/`).
const RAW: &str = "raw";

struct Raw;

impl Plugin for Raw {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "raw",
            env!("CARGO_PKG_VERSION"),
            vec![ContentTypeInfo::new(
                RAW,
                "Any file, served at its relative path",
                &["relative_path", "sha256"],
            )],
        )
    }

    fn parse_upload(
        upload: &ArtifactRef,
        relative_path: Option<&str>,
    ) -> Result<UnitDeclaration, PluginError> {
        let path = relative_path.ok_or_else(|| {
            PluginError::field("relative_path", "a raw upload needs a relative_path")
        })?;
        if path.is_empty()
            || path.starts_with('/')
            || path
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(PluginError::field(
                "relative_path",
                format!("{path:?} must be a relative path without empty, '.' or '..' segments"),
            ));
        }
        Ok(UnitDeclaration {
            content_type: RAW.into(),
            natural_key: json::string_object([
                ("relative_path", path),
                ("sha256", upload.sha256.as_str()),
            ]),
            metadata: "{}".into(),
            artifacts: vec![ArtifactDeclaration {
                relative_path: path.into(),
                url: None,
                size: Some(upload.size),
                sha256: Some(upload.sha256.clone()),
                sha512: None,
            }],
        })
    }

    fn publish(_version: &VersionInfo) -> Result<(), PluginError> {
        let mut publisher = Publisher::new();
        let mut sums = FileWriter::new("SHA256SUMS");
        #[cfg(feature = "v2")]
        let mut listing = index::JsonArray::new("index.json");
        for unit in granary_sdk::content::units() {
            for artifact in unit?.artifacts {
                let sha256 = artifact.sha256.clone().unwrap_or_default();
                publisher.publish(&artifact.relative_path, &artifact.content_artifact)?;
                writeln!(
                    sums,
                    "{}",
                    index::checksum_line(&sha256, &artifact.relative_path)
                )?;
                #[cfg(feature = "v2")]
                listing.entry([
                    ("path", artifact.relative_path.as_str()),
                    ("sha256", sha256.as_str()),
                    ("size", artifact.size.unwrap_or(0).to_string().as_str()),
                ])?;
            }
        }
        sums.finish()?;
        #[cfg(feature = "v2")]
        listing.finish()?;
        publisher.finish()?;
        Ok(())
    }
}

granary_sdk::register_plugin!(Raw);

#[cfg(test)]
mod tests {
    use granary_sdk::harness::Host;
    use granary_sdk::{Plugin, VersionInfo};

    use super::Raw;

    #[test]
    fn uploads_become_units_keyed_by_path_and_digest() {
        let mut host = Host::new();
        let upload = host.artifact(b"hello");
        let unit = host
            .run(|| Raw::parse_upload(&upload, Some("tools/hello.txt")))
            .unwrap();
        assert_eq!(unit.content_type, "raw");
        assert!(
            unit.natural_key
                .contains(r#""relative_path":"tools/hello.txt""#)
        );
        let error = host
            .run(|| Raw::parse_upload(&upload, Some("../x")))
            .unwrap_err();
        assert_eq!(error.field_name(), Some("relative_path"));
    }

    #[test]
    fn publish_serves_files_and_a_checksum_listing() {
        let mut host = Host::new();
        let unit = host.stored_unit("raw", "{}", "{}", &[("a/hello.txt", b"hello")]);
        let version = VersionInfo {
            repository_name: "r".into(),
            number: 1,
        };
        host.run(|| Raw::publish(&version)).unwrap();
        let sha256 = unit.artifacts[0].sha256.clone().unwrap();
        assert_eq!(
            host.file("SHA256SUMS").unwrap(),
            format!("{sha256}  a/hello.txt\n")
        );
        assert_eq!(host.published[0].0, "a/hello.txt");
        // Only version 0.2.0 writes index.json.
        assert_eq!(host.file("index.json").is_some(), cfg!(feature = "v2"));
        if cfg!(feature = "v2") {
            assert_eq!(
                host.file("index.json").unwrap(),
                format!("[{{\"path\":\"a/hello.txt\",\"sha256\":\"{sha256}\",\"size\":\"5\"}}]\n")
            );
        }
    }
}
