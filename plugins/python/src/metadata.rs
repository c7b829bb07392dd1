//! Core metadata (`METADATA` in wheels, `PKG-INFO` in sdists): the RFC 822-style header block of
//! the core metadata specification, with multiple-use fields and an optional body holding the
//! description.

use pep440_rs::Version;
use serde_json::{Map, Value, json};

use crate::name;

/// The fields pulp_python keeps, as (header name, JSON key, may appear several times).
const FIELDS: &[(&str, &str, bool)] = &[
    ("Metadata-Version", "metadata_version", false),
    ("Summary", "summary", false),
    (
        "Description-Content-Type",
        "description_content_type",
        false,
    ),
    ("Keywords", "keywords", false),
    ("Home-page", "home_page", false),
    ("Download-URL", "download_url", false),
    ("Author", "author", false),
    ("Author-email", "author_email", false),
    ("Maintainer", "maintainer", false),
    ("Maintainer-email", "maintainer_email", false),
    ("License", "license", false),
    ("License-Expression", "license_expression", false),
    ("Platform", "platform", true),
    ("Supported-Platform", "supported_platform", true),
    ("Classifier", "classifiers", true),
    ("Requires-Dist", "requires_dist", true),
    ("Requires-External", "requires_external", true),
    ("Provides-Extra", "provides_extra", true),
    ("Provides-Dist", "provides_dist", true),
    ("Obsoletes-Dist", "obsoletes_dist", true),
    ("Project-URL", "project_urls", true),
    ("Dynamic", "dynamic", true),
];

/// Parsed core metadata.
#[derive(Debug, Clone)]
pub struct CoreMetadata {
    /// `Name`, as spelled.
    pub name: String,
    /// `Version`, as spelled.
    pub version: String,
    /// `Requires-Python`, if any.
    pub requires_python: Option<String>,
    /// Every kept field, keyed as pulp_python names them (`summary`, `requires_dist`, ...).
    pub fields: Map<String, Value>,
}

impl CoreMetadata {
    /// Parses a metadata file. `Name` and `Version` are required and checked.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| "the metadata is not UTF-8 text".to_string())?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut body = None;
        let mut lines = text.split_inclusive('\n');
        for line in lines.by_ref() {
            let content = line.trim_end_matches(['\r', '\n']);
            if content.is_empty() {
                body = Some(lines.collect::<String>());
                break;
            }
            if content.starts_with([' ', '\t']) {
                // A continuation line folds into the previous header.
                let Some((_, value)) = headers.last_mut() else {
                    return Err("the metadata starts with a continuation line".into());
                };
                value.push('\n');
                value.push_str(
                    content
                        .trim_start_matches([' ', '\t'])
                        .trim_start_matches('|'),
                );
                continue;
            }
            let (key, value) = content.split_once(':').ok_or_else(|| {
                format!("metadata line {content:?} is not a \"Field: value\" header")
            })?;
            headers.push((key.trim().to_string(), value.trim().to_string()));
        }
        let single = |wanted: &str| {
            headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(wanted))
                .map(|(_, value)| value.clone())
        };
        let name = single("Name")
            .filter(|n| !n.is_empty())
            .ok_or("the metadata has no Name")?;
        if !name::is_valid(&name) {
            return Err(format!(
                "the metadata Name {name:?} is not a valid project name"
            ));
        }
        let version = single("Version")
            .filter(|v| !v.is_empty())
            .ok_or("the metadata has no Version")?;
        version
            .parse::<Version>()
            .map_err(|e| format!("the metadata Version {version:?} is not valid: {e}"))?;
        let mut fields = Map::new();
        for &(header, key, multiple) in FIELDS {
            if multiple {
                let values: Vec<Value> = headers
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case(header))
                    .map(|(_, v)| Value::String(v.clone()))
                    .collect();
                if !values.is_empty() {
                    fields.insert(key.into(), Value::Array(values));
                }
            } else if let Some(value) = single(header) {
                fields.insert(key.into(), json!(value));
            }
        }
        let description = body
            .map(|b| b.trim_end().to_string())
            .filter(|b| !b.is_empty())
            .or_else(|| single("Description"));
        if let Some(description) = description {
            fields.insert("description".into(), json!(description));
        }
        Ok(Self {
            requires_python: single("Requires-Python").filter(|v| !v.is_empty()),
            name,
            version,
            fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = "Metadata-Version: 2.1\r\n\
Name: Granary_Demo\r\n\
Version: 1.0\r\n\
Summary: A demo\r\n\
Requires-Python: >=3.8\r\n\
Classifier: Programming Language :: Python\r\n\
Classifier: License :: OSI Approved\r\n\
Requires-Dist: granary-dep>=0.1\r\n\
License: line one\r\n\
\x20       line two\r\n\
\r\n\
# Demo\r\n\
\r\n\
Long description.\r\n";

    #[test]
    fn headers_multiple_fields_continuations_and_body_are_read() {
        let metadata = CoreMetadata::parse(METADATA.as_bytes()).unwrap();
        assert_eq!(metadata.name, "Granary_Demo");
        assert_eq!(metadata.version, "1.0");
        assert_eq!(metadata.requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(metadata.fields["summary"], "A demo");
        assert_eq!(
            metadata.fields["classifiers"],
            json!(["Programming Language :: Python", "License :: OSI Approved"])
        );
        assert_eq!(
            metadata.fields["requires_dist"],
            json!(["granary-dep>=0.1"])
        );
        assert_eq!(metadata.fields["license"], "line one\nline two");
        assert_eq!(
            metadata.fields["description"],
            "# Demo\r\n\r\nLong description."
        );
    }

    #[test]
    fn name_and_version_are_required_and_checked() {
        let error = CoreMetadata::parse(b"Metadata-Version: 2.1\nVersion: 1.0\n").unwrap_err();
        assert_eq!(error, "the metadata has no Name");
        let error = CoreMetadata::parse(b"Name: x\n").unwrap_err();
        assert_eq!(error, "the metadata has no Version");
        let error = CoreMetadata::parse(b"Name: x\nVersion: banana\n").unwrap_err();
        assert!(error.contains("is not valid"), "{error}");
        let error = CoreMetadata::parse(b"just some text\n").unwrap_err();
        assert!(error.contains("not a \"Field: value\" header"), "{error}");
        assert!(CoreMetadata::parse(&[0xff, 0xfe]).is_err());
    }
}
