//! One `python` unit: a distribution file (wheel or sdist) and what the index says about it.
//!
//! A unit keeps its files under its normalized project name, `<project>/<filename>` and, for
//! wheels, `<project>/<filename>.metadata` (PEP 658), so `content.list-by-prefix("<project>/")`
//! finds one project's files without scanning the repository.

use pep440_rs::Version;
use serde_json::{Map, Value, json};

use crate::metadata::CoreMetadata;
use crate::name::{DistFilename, normalize};
use crate::simple::FileLink;

/// The content type name (`python.python` in the REST API, as in pulp_python).
pub const CONTENT_TYPE: &str = "python";
/// The suffix of a PEP 658 metadata file.
pub const METADATA_SUFFIX: &str = ".metadata";

/// A distribution file and its index fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    /// The file name.
    pub filename: String,
    /// The project name as its metadata (or file name) spells it.
    pub name: String,
    /// The version as its metadata (or file name) spells it.
    pub version: String,
    /// `bdist_wheel` or `sdist`.
    pub packagetype: String,
    /// Hex sha256 of the file.
    pub sha256: String,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// `Requires-Python`.
    pub requires_python: Option<String>,
    /// sha256 of the PEP 658 metadata file, when the unit has one.
    pub metadata_sha256: Option<String>,
    /// Yank reason (empty for none given) when yanked upstream.
    pub yanked: Option<String>,
    /// Upload time (ISO 8601), when known.
    pub upload_time: Option<String>,
    /// The other core metadata fields (`summary`, `requires_dist`, ...).
    pub core: Map<String, Value>,
}

impl Package {
    /// A package read from its archive: checks that the metadata matches the file name.
    pub fn from_archive(
        filename: &str,
        sha256: &str,
        size: u64,
        metadata: &CoreMetadata,
    ) -> Result<Self, String> {
        let parsed = DistFilename::parse(filename)?;
        if normalize(&metadata.name) != parsed.project() {
            return Err(format!(
                "the file name {filename:?} names project {:?} but its metadata names {:?}",
                parsed.name, metadata.name
            ));
        }
        let parse = |version: &str| version.parse::<Version>().map_err(|e| e.to_string());
        let (from_file, from_metadata) = (parse(&parsed.version)?, parse(&metadata.version)?);
        if from_file != from_metadata {
            return Err(format!(
                "the file name {filename:?} has version {} but its metadata has version {}",
                parsed.version, metadata.version
            ));
        }
        Ok(Self {
            filename: filename.into(),
            name: metadata.name.clone(),
            version: metadata.version.clone(),
            packagetype: parsed.packagetype.as_str().into(),
            sha256: sha256.into(),
            size: Some(size),
            requires_python: metadata.requires_python.clone(),
            metadata_sha256: None,
            yanked: None,
            upload_time: None,
            core: metadata.fields.clone(),
        })
    }

    /// A package an upstream index lists (sync, pull-through): what its link and file name say.
    pub fn from_link(link: &FileLink) -> Result<Self, String> {
        let parsed = DistFilename::parse(&link.filename)?;
        let sha256 = link
            .sha256
            .clone()
            .ok_or_else(|| format!("the index gives no sha256 for {}", link.filename))?;
        Ok(Self {
            filename: link.filename.clone(),
            name: parsed.name.clone(),
            version: parsed.version.clone(),
            packagetype: parsed.packagetype.as_str().into(),
            sha256,
            size: link.size,
            requires_python: link.requires_python.clone(),
            metadata_sha256: link.metadata_sha256.clone(),
            yanked: link.yanked.clone(),
            upload_time: link.upload_time.clone(),
            core: Map::new(),
        })
    }

    /// The normalized project name.
    pub fn project(&self) -> String {
        normalize(&self.name)
    }

    /// `<project>/<filename>`: where the unit keeps the file.
    pub fn relative_path(&self) -> String {
        format!("{}/{}", self.project(), self.filename)
    }

    /// `<project>/<filename>.metadata`: where the unit keeps its PEP 658 metadata.
    pub fn metadata_path(&self) -> String {
        format!("{}{METADATA_SUFFIX}", self.relative_path())
    }

    /// The natural key: the file name and its digest (pulp_python's `filename` and `sha256`).
    pub fn natural_key(&self) -> String {
        json!({ "filename": self.filename, "sha256": self.sha256 }).to_string()
    }

    /// The unit's metadata JSON.
    pub fn metadata_json(&self) -> String {
        let mut object = self.core.clone();
        for (key, value) in [
            ("filename", json!(self.filename)),
            ("name", json!(self.name)),
            ("version", json!(self.version)),
            ("packagetype", json!(self.packagetype)),
            ("sha256", json!(self.sha256)),
            ("size", json!(self.size)),
            ("requires_python", json!(self.requires_python)),
            ("metadata_sha256", json!(self.metadata_sha256)),
            ("yanked", json!(self.yanked.is_some())),
            ("yanked_reason", json!(self.yanked)),
            ("upload_time", json!(self.upload_time)),
        ] {
            object.insert(key.into(), value);
        }
        Value::Object(object).to_string()
    }

    /// Reads a stored unit's metadata JSON back.
    pub fn from_metadata_json(metadata: &str) -> Result<Self, String> {
        let Value::Object(mut object) = serde_json::from_str(metadata)
            .map_err(|e| format!("unit metadata is not JSON: {e}"))?
        else {
            return Err("unit metadata is not a JSON object".into());
        };
        let mut take = |key: &str| object.remove(key).unwrap_or(Value::Null);
        let string = |value: Value| value.as_str().map(str::to_owned);
        let filename = string(take("filename")).ok_or("unit metadata has no filename")?;
        let name = string(take("name")).ok_or("unit metadata has no name")?;
        let version = string(take("version")).ok_or("unit metadata has no version")?;
        let packagetype = string(take("packagetype")).unwrap_or_default();
        let sha256 = string(take("sha256")).unwrap_or_default();
        let size = take("size").as_u64();
        let requires_python = string(take("requires_python"));
        let metadata_sha256 = string(take("metadata_sha256"));
        let yanked = take("yanked").as_bool().unwrap_or(false);
        let reason = string(take("yanked_reason"));
        let upload_time = string(take("upload_time"));
        Ok(Self {
            filename,
            name,
            version,
            packagetype,
            sha256,
            size,
            requires_python,
            metadata_sha256,
            yanked: yanked.then(|| reason.unwrap_or_default()),
            upload_time,
            core: object,
        })
    }

    /// Its link on its project's page (`simple/<project>/`): `../../packages/<project>/<file>`.
    pub fn link(&self) -> FileLink {
        FileLink {
            filename: self.filename.clone(),
            url: package_url(&self.project(), &self.filename),
            sha256: Some(self.sha256.clone()),
            requires_python: self.requires_python.clone(),
            metadata_sha256: self.metadata_sha256.clone(),
            yanked: self.yanked.clone(),
            size: self.size,
            upload_time: self.upload_time.clone(),
        }
    }
}

/// The URL of a file relative to its project page.
pub fn package_url(project: &str, filename: &str) -> String {
    format!("../../packages/{project}/{filename}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(name: &str, version: &str) -> CoreMetadata {
        CoreMetadata::parse(
            format!("Name: {name}\nVersion: {version}\nRequires-Python: >=3.8\nSummary: s\n")
                .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn a_package_round_trips_through_unit_metadata() {
        let mut package = Package::from_archive(
            "Granary_Demo-1.0-py3-none-any.whl",
            "ab",
            10,
            &metadata("granary-demo", "1.0.0"),
        )
        .unwrap();
        package.metadata_sha256 = Some("cd".into());
        assert_eq!(
            package.relative_path(),
            "granary-demo/Granary_Demo-1.0-py3-none-any.whl"
        );
        assert_eq!(
            package.natural_key(),
            r#"{"filename":"Granary_Demo-1.0-py3-none-any.whl","sha256":"ab"}"#
        );
        let back = Package::from_metadata_json(&package.metadata_json()).unwrap();
        assert_eq!(back, package);
        assert_eq!(back.core["summary"], "s");
    }

    #[test]
    fn name_or_version_mismatch_between_file_and_metadata_is_refused() {
        let error = Package::from_archive("demo-1.0.tar.gz", "ab", 1, &metadata("other", "1.0"))
            .unwrap_err();
        assert!(
            error.contains("names project \"demo\" but its metadata names \"other\""),
            "{error}"
        );
        let error = Package::from_archive("demo-1.0.tar.gz", "ab", 1, &metadata("demo", "2.0"))
            .unwrap_err();
        assert!(
            error.contains("has version 1.0 but its metadata has version 2.0"),
            "{error}"
        );
    }
}
