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

/// Property tests over any text an uploaded archive or an upstream could hold as its metadata.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn config() -> ProptestConfig {
        ProptestConfig::with_cases(1_000)
    }

    /// A one-line header value as parsing returns it: printable, no white space at its ends.
    fn value() -> impl Strategy<Value = String> {
        "[!-~]([ -~]{0,30}[!-~])?"
    }

    /// `key` with each letter's case chosen by `mask` (header names are case-insensitive).
    fn spelled(key: &str, mask: u64) -> String {
        key.chars()
            .enumerate()
            .map(|(i, c)| {
                if mask >> (i % 64) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_text_parses_or_is_refused(text in any::<String>(), bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            for input in [text.as_bytes(), &bytes] {
                if let Ok(metadata) = CoreMetadata::parse(input) {
                    prop_assert!(name::is_valid(&metadata.name));
                    prop_assert!(metadata.version.parse::<Version>().is_ok());
                }
            }
        }

        #[test]
        fn header_like_text_parses_or_is_refused(
            lines in prop::collection::vec(
                prop_oneof![
                    "(Name|Version|Summary|Classifier|Description)[ :]{0,2}[ -~]{0,12}",
                    "[ \t][ -~|]{0,12}",
                    Just(String::new()),
                    "[ -~]{0,12}",
                ],
                0..12,
            ),
            crlf in any::<bool>(),
        ) {
            let text = lines.join(if crlf { "\r\n" } else { "\n" });
            if let Ok(metadata) = CoreMetadata::parse(text.as_bytes()) {
                prop_assert!(name::is_valid(&metadata.name));
                prop_assert!(metadata.version.parse::<Version>().is_ok());
            }
        }

        #[test]
        fn generated_headers_read_back(
            name in "[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?",
            version in "[0-9]{1,4}(\\.[0-9]{1,4}){0,3}",
            summary in value(),
            classifiers in prop::collection::vec(value(), 0..4),
            license in prop::collection::vec("[!-{}~][ -~]{0,20}", 1..4),
            body in prop::option::of("[ -~]{0,20}(\n[ -~]{0,20}){0,3}"),
            mask in any::<u64>(),
            crlf in any::<bool>(),
        ) {
            let newline = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            text += &format!("{}: 2.1{newline}", spelled("Metadata-Version", mask));
            text += &format!("{}: {name}{newline}", spelled("Name", mask));
            text += &format!("{}:  {version}{newline}", spelled("Version", mask));
            text += &format!("{}: {summary}{newline}", spelled("Summary", mask));
            for classifier in &classifiers {
                text += &format!("{}: {classifier}{newline}", spelled("Classifier", mask));
            }
            // A folded header: the first line, then continuation lines indented by 8 spaces.
            text += &format!("{}: {}", spelled("License", mask), license.join(&format!("{newline}        ")));
            text += newline;
            if let Some(body) = &body {
                text += newline;
                text += body;
            }
            let metadata = CoreMetadata::parse(text.as_bytes()).unwrap();
            prop_assert_eq!(&metadata.name, &name);
            prop_assert_eq!(&metadata.version, &version);
            prop_assert_eq!(&metadata.fields["metadata_version"], "2.1");
            prop_assert_eq!(&metadata.fields["summary"], &summary);
            if classifiers.is_empty() {
                prop_assert!(!metadata.fields.contains_key("classifiers"));
            } else {
                prop_assert_eq!(&metadata.fields["classifiers"], &json!(classifiers));
            }
            // The first line is trimmed like any value; continuation lines lose their indent only.
            let mut folded = license[0].trim_end().to_string();
            for line in &license[1..] {
                folded.push('\n');
                folded.push_str(line);
            }
            prop_assert_eq!(&metadata.fields["license"], &folded);
            let description = body.as_deref().map(str::trim_end).filter(|b| !b.is_empty());
            prop_assert_eq!(metadata.fields.get("description").and_then(Value::as_str), description);
        }
    }
}
