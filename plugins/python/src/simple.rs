//! The simple repository API: PEP 503 HTML and PEP 691 JSON (api-version 1.1 with PEP 700's
//! `versions`, `size` and `upload-time`), and choosing between them by `Accept`.
//!
//! Links are relative to the page (`../../packages/<project>/<file>` from `simple/<project>/`), so
//! the same page works under `/pypi/<base_path>/`, under `/pulp/content/<base_path>/` and as a
//! static publication; PEP 503 and PEP 691 both allow relative URLs.

use pep440_rs::Version;
use serde_json::{Value, json};

/// The JSON API version served (PEP 700 is 1.1).
pub const API_VERSION: &str = "1.1";

/// A representation of the simple API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/vnd.pypi.simple.v1+json`
    Json,
    /// `application/vnd.pypi.simple.v1+html`
    HtmlV1,
    /// `text/html`, the PEP 503 original.
    Html,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/vnd.pypi.simple.v1+json",
            Format::HtmlV1 => "application/vnd.pypi.simple.v1+html",
            Format::Html => "text/html; charset=utf-8",
        }
    }

    /// Whether this is one of the HTML representations.
    pub fn is_html(self) -> bool {
        self != Format::Json
    }

    /// Chooses the representation for an `Accept` header (absent: `text/html`). Among formats the
    /// client rates equally, HTML wins (a browser sends `*/*`). None when the client accepts none.
    pub fn negotiate(accept: Option<&str>) -> Option<Self> {
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
            return Some(Format::Html);
        };
        let ranges: Vec<(String, f32)> = accept
            .split(',')
            .filter_map(|range| {
                let mut parts = range.split(';');
                let media = parts.next()?.trim().to_ascii_lowercase();
                let q = parts
                    .filter_map(|p| {
                        p.trim()
                            .strip_prefix("q=")
                            .or_else(|| p.trim().strip_prefix("Q="))
                    })
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                (!media.is_empty()).then_some((media, q.clamp(0.0, 1.0)))
            })
            .collect();
        let quality = |format: Format| {
            let (exact, latest, family) = match format {
                Format::Json => (
                    "application/vnd.pypi.simple.v1+json",
                    "application/vnd.pypi.simple.latest+json",
                    "application/*",
                ),
                Format::HtmlV1 => (
                    "application/vnd.pypi.simple.v1+html",
                    "application/vnd.pypi.simple.latest+html",
                    "application/*",
                ),
                Format::Html => ("text/html", "text/html", "text/*"),
            };
            // The most specific matching range decides (RFC 9110 §12.5.1).
            let rank = |media: &str| match media {
                m if m == exact || m == latest => Some(3),
                m if m == family => Some(2),
                "*/*" => Some(1),
                _ => None,
            };
            ranges
                .iter()
                .filter_map(|(media, q)| rank(media).map(|r| (r, *q)))
                .max_by(|a, b| a.0.cmp(&b.0))
                .map_or(0.0, |(_, q)| q)
        };
        let mut best: Option<(Format, f32)> = None;
        for format in [Format::Html, Format::HtmlV1, Format::Json] {
            let q = quality(format);
            if q > 0.0 && best.is_none_or(|(_, best_q)| q > best_q) {
                best = Some((format, q));
            }
        }
        best.map(|(format, _)| format)
    }
}

/// One file of a project page.
#[derive(Debug, Clone, PartialEq)]
pub struct FileLink {
    /// The file name.
    pub filename: String,
    /// Where to download it (relative to the project page, or absolute).
    pub url: String,
    /// Hex sha256, when known.
    pub sha256: Option<String>,
    /// The file's `Requires-Python`.
    pub requires_python: Option<String>,
    /// sha256 of the PEP 658 metadata file served at `<url>.metadata`, when there is one.
    pub metadata_sha256: Option<String>,
    /// `Some(reason)` (possibly empty) when the file is yanked (PEP 592).
    pub yanked: Option<String>,
    /// Size in bytes (PEP 700).
    pub size: Option<u64>,
    /// ISO 8601 upload time (PEP 700).
    pub upload_time: Option<String>,
}

/// Escapes text for HTML content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// The root page listing `projects` (normalized names, sorted and deduplicated by the caller).
pub fn render_index(projects: &[String], format: Format) -> Vec<u8> {
    if format == Format::Json {
        let projects: Vec<Value> = projects
            .iter()
            .map(|name| json!({ "name": name }))
            .collect();
        let page = json!({ "meta": { "api-version": API_VERSION }, "projects": projects });
        return to_json(&page);
    }
    let mut html = head("Simple index");
    for name in projects {
        let name = escape(name);
        html.push_str(&format!("    <a href=\"{name}/\">{name}</a><br/>\n"));
    }
    html.push_str(TAIL);
    html.into_bytes()
}

/// The page of one project (`name` normalized) listing `files`.
pub fn render_project(name: &str, files: &[FileLink], format: Format) -> Vec<u8> {
    if format == Format::Json {
        let mut versions: Vec<Version> = files
            .iter()
            .filter_map(|file| crate::name::DistFilename::parse(&file.filename).ok())
            .filter_map(|parsed| parsed.version.parse::<Version>().ok())
            .collect();
        versions.sort();
        versions.dedup();
        let files: Vec<Value> = files.iter().map(file_json).collect();
        let versions: Vec<String> = versions.iter().map(ToString::to_string).collect();
        let page = json!({
            "meta": { "api-version": API_VERSION },
            "name": name,
            "versions": versions,
            "files": files,
        });
        return to_json(&page);
    }
    let mut html = head(&format!("Links for {name}"));
    for file in files {
        let mut href = file.url.clone();
        if let Some(sha256) = &file.sha256 {
            href.push_str(&format!("#sha256={sha256}"));
        }
        let mut attributes = format!("href=\"{}\"", escape(&href));
        if let Some(requires_python) = &file.requires_python {
            attributes.push_str(&format!(
                " data-requires-python=\"{}\"",
                escape(requires_python)
            ));
        }
        if let Some(sha256) = &file.metadata_sha256 {
            // PEP 714: the new name, and the PEP 658 one that older pips read.
            attributes.push_str(&format!(
                " data-dist-info-metadata=\"sha256={sha256}\" data-core-metadata=\"sha256={sha256}\""
            ));
        }
        if let Some(reason) = &file.yanked {
            attributes.push_str(&format!(" data-yanked=\"{}\"", escape(reason)));
        }
        html.push_str(&format!(
            "    <a {attributes}>{}</a><br/>\n",
            escape(&file.filename)
        ));
    }
    html.push_str(TAIL);
    html.into_bytes()
}

fn file_json(file: &FileLink) -> Value {
    let mut hashes = serde_json::Map::new();
    if let Some(sha256) = &file.sha256 {
        hashes.insert("sha256".into(), json!(sha256));
    }
    let metadata = match &file.metadata_sha256 {
        Some(sha256) => json!({ "sha256": sha256 }),
        None => json!(false),
    };
    let yanked = match &file.yanked {
        None => json!(false),
        Some(reason) if reason.is_empty() => json!(true),
        Some(reason) => json!(reason),
    };
    let mut entry = json!({
        "filename": file.filename,
        "url": file.url,
        "hashes": hashes,
        "core-metadata": metadata,
        "dist-info-metadata": metadata,
        "yanked": yanked,
    });
    if let Some(requires_python) = &file.requires_python {
        entry["requires-python"] = json!(requires_python);
    }
    if let Some(size) = file.size {
        entry["size"] = json!(size);
    }
    if let Some(upload_time) = &file.upload_time {
        entry["upload-time"] = json!(upload_time);
    }
    entry
}

fn to_json(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("JSON values serialize");
    bytes.push(b'\n');
    bytes
}

fn head(title: &str) -> String {
    let title = escape(title);
    format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"{API_VERSION}\">\n    <title>{title}</title>\n  </head>\n  <body>\n    <h1>{title}</h1>\n"
    )
}

const TAIL: &str = "  </body>\n</html>\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_and_uv_get_json_browsers_and_old_clients_get_html() {
        let pip = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
        assert_eq!(Format::negotiate(Some(pip)), Some(Format::Json));
        assert_eq!(Format::negotiate(None), Some(Format::Html));
        assert_eq!(Format::negotiate(Some("*/*")), Some(Format::Html));
        assert_eq!(
            Format::negotiate(Some("text/html,application/xhtml+xml,*/*;q=0.8")),
            Some(Format::Html)
        );
        assert_eq!(
            Format::negotiate(Some("application/vnd.pypi.simple.latest+json")),
            Some(Format::Json)
        );
        assert_eq!(
            Format::negotiate(Some("application/vnd.pypi.simple.v1+html")),
            Some(Format::HtmlV1)
        );
        assert_eq!(Format::negotiate(Some("application/json")), None);
        assert_eq!(Format::negotiate(Some("text/html;q=0")), None);
    }

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn versions_normalize_as_pep_440_says() {
        for (input, normalized) in [
            ("1.0", "1.0"),
            ("v1.0", "1.0"),
            (" 1.0 ", "1.0"),
            ("1.0-alpha.1", "1.0a1"),
            ("1.0.PREVIEW2", "1.0rc2"),
            ("1.0c1", "1.0rc1"),
            ("1.0-1", "1.0.post1"),
            ("1.0.rev", "1.0.post0"),
            ("1.0-dev", "1.0.dev0"),
            ("1!2.0b3.post4.dev5+Ubuntu-1", "1!2.0b3.post4.dev5+ubuntu.1"),
        ] {
            assert_eq!(v(input).to_string(), normalized, "{input}");
        }
        for bad in ["", "one", "1.0+", "1.0 final", "1..0"] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn versions_order_as_pep_440_says() {
        let ordered = [
            "0.9",
            "1.0.dev1",
            "1.0a1.dev1",
            "1.0a1",
            "1.0a2",
            "1.0b1",
            "1.0rc1",
            "1.0",
            "1.0+local",
            "1.0.post1.dev1",
            "1.0.post1",
            "1.1",
            "1!0.1",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.0"), v("1.0.0"));
        assert!(v("1.0a1").any_prerelease() && v("1.0.dev0").any_prerelease());
        assert!(!v("1.0.post1").any_prerelease());
    }

    #[test]
    fn the_json_page_lists_each_version_once_in_order() {
        let link = |filename: &str| FileLink {
            filename: filename.into(),
            url: format!("../../packages/a/{filename}"),
            sha256: None,
            requires_python: None,
            metadata_sha256: None,
            yanked: None,
            size: None,
            upload_time: None,
        };
        let files = [
            link("a-1.10.tar.gz"),
            link("a-1.0-py3-none-any.whl"),
            link("a-1.0.0.tar.gz"),
            link("a-1.2rc1.tar.gz"),
            link("a-1.2.tar.gz"),
        ];
        let page: Value =
            serde_json::from_slice(&render_project("a", &files, Format::Json)).unwrap();
        assert_eq!(page["versions"], json!(["1.0", "1.2rc1", "1.2", "1.10"]));
    }

    #[test]
    fn html_escapes_names_and_attributes() {
        let file = FileLink {
            filename: "a-1.0.tar.gz".into(),
            url: "../../packages/a/a-1.0.tar.gz".into(),
            sha256: Some("ab".into()),
            requires_python: Some(">=3.8".into()),
            metadata_sha256: None,
            yanked: Some("broken <b>".into()),
            size: None,
            upload_time: None,
        };
        let html = String::from_utf8(render_project("a", &[file], Format::Html)).unwrap();
        assert!(html.contains(
            "<a href=\"../../packages/a/a-1.0.tar.gz#sha256=ab\" data-requires-python=\"&gt;=3.8\" data-yanked=\"broken &lt;b&gt;\">a-1.0.tar.gz</a>"
        ), "{html}");
    }
}
