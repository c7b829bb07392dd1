//! Reading an upstream simple index: PEP 691 JSON project pages (preferred) or PEP 503 HTML ones,
//! and resolving the links they hold.

use std::borrow::Cow;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::simple::FileLink;

/// The `Accept` header sent upstream: JSON first, HTML as the fallback (PEP 691).
pub const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// The simple index URL of a remote: its URL when it already ends in `simple/`, else `simple/`
/// under it (pulp_python remotes name the index host, e.g. `https://pypi.org/`).
pub fn index_url(remote_url: &str) -> String {
    let base = if remote_url.ends_with('/') {
        remote_url.to_string()
    } else {
        format!("{remote_url}/")
    };
    if base.ends_with("/simple/") {
        base
    } else {
        format!("{base}simple/")
    }
}

/// Whether a response `Content-Type` is PEP 691 JSON.
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| {
        t.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/vnd.pypi.simple.v1+json")
    })
}

/// Resolves `link` against the page at `base` (RFC 3986 reference resolution for the http(s)
/// URLs an index uses); the fragment is dropped.
pub fn resolve(base: &str, link: &str) -> String {
    let link = link.split('#').next().unwrap_or(link);
    if link.contains("://") {
        return link.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, base_path) = rest.split_at(authority_end);
    if let Some(network) = link.strip_prefix("//") {
        return format!("{scheme}://{network}");
    }
    let (path, query) = match link.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (link, None),
    };
    let merged = if path.starts_with('/') {
        path.to_string()
    } else if path.is_empty() {
        base_path.split('?').next().unwrap_or("/").to_string()
    } else {
        let base_path = base_path.split('?').next().unwrap_or("");
        let directory = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
        format!(
            "{}{path}",
            if directory.is_empty() { "/" } else { directory }
        )
    };
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = merged.split('/').skip(1).collect();
    for (i, segment) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        match *segment {
            "." => {
                if last {
                    segments.push("");
                }
            }
            ".." => {
                segments.pop();
                if last {
                    segments.push("");
                }
            }
            segment => segments.push(segment),
        }
    }
    let mut url = format!("{scheme}://{authority}/{}", segments.join("/"));
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// Parses a project page (JSON when `json`, else HTML) found at `page_url`; file URLs come back
/// absolute.
pub fn parse_project(body: &[u8], json: bool, page_url: &str) -> Result<Vec<FileLink>, String> {
    if json {
        parse_project_json(body, page_url)
    } else {
        Ok(parse_project_html(&String::from_utf8_lossy(body), page_url))
    }
}

/// A PEP 691 page, read as it streams past: each entry of `files` is decoded on its own and turned
/// into a link at once, so the page never exists as a whole JSON tree (boto3's 1.65 MB page took
/// 7.1 MB more as a `serde_json::Value`; one entry is about 1.6 KB). Entries stay lenient, as
/// before: one is read as a small `Value`, and a field of the wrong type is a field left out.
fn parse_project_json(body: &[u8], page_url: &str) -> Result<Vec<FileLink>, String> {
    let mut links = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let found = ProjectPage {
        page_url,
        links: &mut links,
    }
    .deserialize(&mut deserializer)
    .and_then(|found| deserializer.end().map(|()| found))
    .map_err(|e| format!("the project page at {page_url} is not valid JSON: {e}"))?;
    if !found {
        return Err(format!(
            "the project page at {page_url} has no \"files\" list"
        ));
    }
    Ok(links)
}

/// The top-level object of a PEP 691 page: `files` goes to [`FileList`], the rest is skipped.
/// Deserializes to whether `files` was there.
struct ProjectPage<'a> {
    page_url: &'a str,
    links: &'a mut Vec<FileLink>,
}

impl<'de> DeserializeSeed<'de> for ProjectPage<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ProjectPage<'_> {
    type Value = bool;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a PEP 691 project page (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "files" && !found {
                map.next_value_seed(FileList {
                    page_url: self.page_url,
                    links: &mut *self.links,
                })?;
                found = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// The `files` list: each entry becomes a link as soon as it is read.
struct FileList<'a> {
    page_url: &'a str,
    links: &'a mut Vec<FileLink>,
}

impl<'de> DeserializeSeed<'de> for FileList<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for FileList<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a list of files")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut files: A) -> Result<(), A::Error> {
        while let Some(file) = files.next_element::<Value>()? {
            if let Some(link) = file_link(&file, self.page_url) {
                self.links.push(link);
            }
        }
        Ok(())
    }
}

/// One entry of a PEP 691 `files` list; `None` without a file name and a URL.
fn file_link(file: &Value, page_url: &str) -> Option<FileLink> {
    let (Some(filename), Some(url)) = (file["filename"].as_str(), file["url"].as_str()) else {
        return None;
    };
    let metadata = match (&file["core-metadata"], &file["dist-info-metadata"]) {
        (Value::Object(hashes), _) | (Value::Null, Value::Object(hashes)) => hashes
            .get("sha256")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase),
        _ => None,
    };
    Some(FileLink {
        filename: filename.to_string(),
        url: resolve(page_url, url),
        sha256: file["hashes"]["sha256"]
            .as_str()
            .map(str::to_ascii_lowercase),
        requires_python: file["requires-python"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        metadata_sha256: metadata,
        yanked: match &file["yanked"] {
            Value::Bool(true) => Some(String::new()),
            // PEP 691: only a true value yanks; an empty reason is false, as pip reads it.
            Value::String(reason) if !reason.is_empty() => Some(reason.clone()),
            _ => None,
        },
        size: file["size"].as_u64(),
        upload_time: file["upload-time"].as_str().map(str::to_owned),
    })
}

/// The anchors of a PEP 503 page. Lenient, as pip is: any `<a ...>` with an `href`.
fn parse_project_html(html: &str, page_url: &str) -> Vec<FileLink> {
    let mut links = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<a").map(|i| at + i) {
        // Anchors inside a comment are no links.
        if let Some(comment) = lower[at..start].find("<!--").map(|i| at + i) {
            match lower[comment + 4..].find("-->") {
                Some(end) => {
                    at = comment + 4 + end + 3;
                    continue;
                }
                None => break,
            }
        }
        let after = lower.as_bytes().get(start + 2).copied();
        if !after.is_some_and(|b| b.is_ascii_whitespace()) {
            at = start + 2;
            continue;
        }
        let Some(tag_end) = tag_end(html, start) else {
            break;
        };
        let attributes = parse_attributes(&html[start + 2..tag_end]);
        let text_end = lower[tag_end..]
            .find("</a")
            .map_or(html.len(), |i| tag_end + i);
        let text = unescape(html[tag_end + 1..text_end].trim());
        at = text_end;
        let attribute = |name: &str| {
            attributes
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, v)| v.clone())
        };
        let Some(href) = attribute("href") else {
            continue;
        };
        let sha256 = href
            .split_once('#')
            .and_then(|(_, fragment)| strip_sha256(fragment))
            .map(str::to_ascii_lowercase);
        let filename = if text.is_empty() {
            href.split('#')
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string()
        } else {
            text
        };
        let metadata =
            attribute("data-core-metadata").or_else(|| attribute("data-dist-info-metadata"));
        links.push(FileLink {
            filename,
            url: resolve(page_url, &href),
            sha256,
            requires_python: attribute("data-requires-python").filter(|s| !s.is_empty()),
            metadata_sha256: metadata.and_then(|m| strip_sha256(&m).map(str::to_ascii_lowercase)),
            yanked: attribute("data-yanked"),
            size: None,
            upload_time: None,
        });
    }
    links
}

/// Where the tag opened at `start` ends: the first `>` outside a quoted attribute value (valid
/// HTML may leave `>` unescaped there: `data-requires-python=">=3.8"`).
fn tag_end(html: &str, start: usize) -> Option<usize> {
    let mut quote = None;
    for (offset, byte) in html.as_bytes()[start..].iter().enumerate() {
        match (quote, byte) {
            (None, b'"' | b'\'') => quote = Some(*byte),
            (Some(open), _) if open == *byte => quote = None,
            (None, b'>') => return Some(start + offset),
            _ => {}
        }
    }
    None
}

/// The hex after `sha256=` (the algorithm's name in any case), if that is what `text` holds.
fn strip_sha256(text: &str) -> Option<&str> {
    let (algorithm, hex) = text.split_once('=')?;
    algorithm.eq_ignore_ascii_case("sha256").then_some(hex)
}

/// `name="value"`, `name='value'`, `name=value` and bare `name` attributes, names lower-cased,
/// values unescaped.
fn parse_attributes(text: &str) -> Vec<(String, String)> {
    let mut attributes = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| c == '=' || c.is_ascii_whitespace() || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (raw, remaining) = match after.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    let end = after[1..].find(quote).map_or(after.len(), |i| i + 1);
                    (&after[1..end], after.get(end + 1..).unwrap_or(""))
                }
                _ => {
                    let end = after
                        .find(|c: char| c.is_ascii_whitespace())
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            value = unescape(raw);
            rest = remaining;
        } else if name.is_empty() {
            rest = &rest[1.min(rest.len())..];
        }
        if !name.is_empty() {
            attributes.push((name, value));
        }
        rest = rest.trim_start();
    }
    attributes
}

/// Decodes the character references an index uses (`&gt;`, `&#62;`, `&#x3e;`, ...).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|&end| end <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The project names of an index page (JSON `projects`, or the anchors' text in HTML).
pub fn parse_index(body: &[u8], json: bool) -> Result<Vec<String>, String> {
    if json {
        let page: Value = serde_json::from_slice(body)
            .map_err(|e| format!("the index is not valid JSON: {e}"))?;
        let projects = page["projects"]
            .as_array()
            .ok_or("the index has no \"projects\" list")?;
        return Ok(projects
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect());
    }
    Ok(
        parse_project_html(&String::from_utf8_lossy(body), "http://index/")
            .into_iter()
            .map(|link| link.filename)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_like_a_browser() {
        let page = "http://127.0.0.1:8000/pypi/up/simple/demo/";
        assert_eq!(
            resolve(page, "../../packages/demo/demo-1.0.tar.gz#sha256=ab"),
            "http://127.0.0.1:8000/pypi/up/packages/demo/demo-1.0.tar.gz"
        );
        assert_eq!(
            resolve(page, "/files/x.whl"),
            "http://127.0.0.1:8000/files/x.whl"
        );
        assert_eq!(
            resolve(page, "x.whl?a=1"),
            "http://127.0.0.1:8000/pypi/up/simple/demo/x.whl?a=1"
        );
        assert_eq!(
            resolve(page, "https://files.example/x.whl"),
            "https://files.example/x.whl"
        );
        assert_eq!(
            resolve(page, "//cdn.example/x.whl"),
            "http://cdn.example/x.whl"
        );
        assert_eq!(index_url("http://h/pypi/up"), "http://h/pypi/up/simple/");
        assert_eq!(index_url("http://h/simple/"), "http://h/simple/");
    }

    #[test]
    fn html_project_pages_give_hashes_and_attributes() {
        let html = r#"<!DOCTYPE html><html><body>
            <A HREF="demo-1.0.tar.gz#sha256=ABCD" data-requires-python="&gt;=3.8">demo-1.0.tar.gz</A><br/>
            <a href='/f/demo-1.0-py3-none-any.whl' data-core-metadata="sha256=ef" data-yanked>demo-1.0-py3-none-any.whl</a>
            <abbr>not a link</abbr>
        </body></html>"#;
        let links = parse_project(html.as_bytes(), false, "http://up/simple/demo/").unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].filename, "demo-1.0.tar.gz");
        assert_eq!(links[0].url, "http://up/simple/demo/demo-1.0.tar.gz");
        assert_eq!(links[0].sha256.as_deref(), Some("abcd"));
        assert_eq!(links[0].requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(links[1].url, "http://up/f/demo-1.0-py3-none-any.whl");
        assert_eq!(links[1].metadata_sha256.as_deref(), Some("ef"));
        assert_eq!(links[1].yanked.as_deref(), Some(""));
    }

    #[test]
    fn json_project_pages_give_pep_700_fields() {
        let json = br#"{"meta":{"api-version":"1.1"},"name":"demo","files":[
            {"filename":"demo-1.0.tar.gz","url":"../../p/demo-1.0.tar.gz","hashes":{"sha256":"ab"},
             "requires-python":">=3.8","core-metadata":false,"yanked":"bad","size":12,
             "upload-time":"2024-01-01T00:00:00Z"}]}"#;
        let links = parse_project(json, true, "http://up/simple/demo/").unwrap();
        assert_eq!(links[0].url, "http://up/p/demo-1.0.tar.gz");
        assert_eq!(links[0].size, Some(12));
        assert_eq!(links[0].yanked.as_deref(), Some("bad"));
        assert_eq!(links[0].metadata_sha256, None);
        assert!(parse_project(b"{", true, "http://up/").is_err());
        let missing = parse_project(br#"{"name":"demo"}"#, true, "http://up/").unwrap_err();
        assert!(missing.contains("no \"files\" list"), "{missing}");
        assert!(parse_project(br#"{"files":{}}"#, true, "http://up/").is_err());
        assert!(parse_project(br#"{"files":[]} trailing"#, true, "http://up/").is_err());
        assert_eq!(
            parse_project(
                br#"{"files":[], "meta": {"x": [1, {"y": null}]}}"#,
                true,
                "http://up/"
            ),
            Ok(Vec::new())
        );
    }

    /// The public index's quirks as its JSON pages show them: `yanked` as `false`, `true` or a
    /// reason; `core-metadata` as `true` (no hash to check, so not announced) or hashes, and the
    /// older `dist-info-metadata`; several hash algorithms with upper-case hex; files on another
    /// host; no `size`.
    #[test]
    fn json_pages_of_the_public_index_are_read_with_their_quirks() {
        let json = br#"{"meta":{"api-version":"1.1"},"name":"demo","versions":["1.0"],"files":[
            {"filename":"demo-1.0.tar.gz","url":"https://files.example/packages/ab/demo-1.0.tar.gz",
             "hashes":{"md5":"00","sha256":"ABCDEF","blake2b_256":"11"},"requires-python":null,
             "yanked":false,"core-metadata":true,"upload-time":"2019-02-20T19:49:43.982181Z"},
            {"filename":"demo-1.0-py3-none-any.whl","url":"https://files.example/packages/cd/demo-1.0-py3-none-any.whl",
             "hashes":{"sha256":"cd"},"requires-python":">=3.8, <4","yanked":true,
             "dist-info-metadata":{"sha256":"EF"}},
            {"filename":"demo-0.9.tar.gz","url":"demo-0.9.tar.gz","hashes":{"md5":"00"},
             "yanked":"broken build","data-dist-info-metadata":false},
            {"filename":"demo-0.8.tar.gz","url":"demo-0.8.tar.gz","hashes":{"sha256":"aa"},
             "yanked":""},
            {"url":"no-name.tar.gz","hashes":{}}
        ]}"#;
        let links = parse_project(json, true, "https://index.example/simple/demo/").unwrap();
        assert_eq!(links.len(), 4, "an entry without a file name is no file");
        let [sdist, wheel, old] = [&links[0], &links[1], &links[2]];
        assert_eq!(links[3].yanked, None, "an empty reason does not yank");
        assert_eq!(
            sdist.url,
            "https://files.example/packages/ab/demo-1.0.tar.gz"
        );
        assert_eq!(sdist.sha256.as_deref(), Some("abcdef"));
        assert_eq!(sdist.requires_python, None);
        assert_eq!(sdist.yanked, None);
        assert_eq!(
            sdist.metadata_sha256, None,
            "core-metadata: true has no hash"
        );
        assert_eq!(sdist.size, None);
        assert_eq!(
            sdist.upload_time.as_deref(),
            Some("2019-02-20T19:49:43.982181Z")
        );
        assert_eq!(wheel.requires_python.as_deref(), Some(">=3.8, <4"));
        assert_eq!(wheel.yanked.as_deref(), Some(""), "yanked without a reason");
        assert_eq!(wheel.metadata_sha256.as_deref(), Some("ef"));
        assert_eq!(old.sha256, None, "no sha256 among its hashes");
        assert_eq!(old.yanked.as_deref(), Some("broken build"));
        assert_eq!(old.url, "https://index.example/simple/demo/demo-0.9.tar.gz");
    }

    /// The same quirks in PEP 503 HTML: character references in attributes (named, decimal and
    /// hex), `data-yanked` with a reason, `data-dist-info-metadata`, upper-case hex.
    #[test]
    fn html_pages_of_the_public_index_are_read_with_their_quirks() {
        let html = r#"<!DOCTYPE html>
<html><head><meta name="pypi:repository-version" content="1.1"></head><body>
<h1>Links for demo</h1>
<a href="https://files.example/p/demo-1.0.tar.gz#sha256=ABCDEF" data-requires-python="&gt;=3.7,&#60;4,!=3.8.*" data-dist-info-metadata="sha256=AA" data-core-metadata="sha256=AA">demo-1.0.tar.gz</a><br />
<a href="https://files.example/p/demo-0.9.tar.gz#sha256=12" data-requires-python="&#x3e;=2.7" data-yanked="Broken &amp; withdrawn">demo-0.9.tar.gz</a><br />
<a href="https://files.example/p/demo-0.8.tar.gz#md5=00" data-core-metadata="true">demo-0.8.tar.gz</a><br />
<a href="https://files.example/p/demo-0.7.tar.gz#SHA256=CAFE" data-core-metadata="SHA256=BEEF">demo-0.7.tar.gz</a><br />
<!-- <a href="https://files.example/p/demo-0.6.tar.gz#sha256=11">demo-0.6.tar.gz</a> -->
<a href="https://files.example/p/demo-0.5.tar.gz#sha256=22" data-requires-python=">=3.10,<4">demo-0.5.tar.gz</a>
</body></html>"#;
        let links =
            parse_project(html.as_bytes(), false, "https://index.example/simple/demo/").unwrap();
        assert_eq!(links.len(), 5, "the commented-out anchor is no link");
        assert_eq!(links[4].filename, "demo-0.5.tar.gz");
        assert_eq!(
            links[4].requires_python.as_deref(),
            Some(">=3.10,<4"),
            "a raw > inside quotes"
        );
        assert_eq!(
            links[3].sha256.as_deref(),
            Some("cafe"),
            "the algorithm in any case"
        );
        assert_eq!(links[3].metadata_sha256.as_deref(), Some("beef"));
        assert_eq!(links[0].sha256.as_deref(), Some("abcdef"));
        assert_eq!(
            links[0].requires_python.as_deref(),
            Some(">=3.7,<4,!=3.8.*")
        );
        assert_eq!(links[0].metadata_sha256.as_deref(), Some("aa"));
        assert_eq!(links[1].requires_python.as_deref(), Some(">=2.7"));
        assert_eq!(links[1].yanked.as_deref(), Some("Broken & withdrawn"));
        assert_eq!(links[2].sha256, None);
        assert_eq!(links[2].metadata_sha256, None);
    }

    /// Pages of real size (boto3's lists over 4,000 files): every file comes back, in order.
    #[test]
    fn pages_with_thousands_of_files_are_read_whole() {
        const FILES: usize = 5000;
        let mut json = String::from(r#"{"meta":{"api-version":"1.1"},"name":"big","files":["#);
        let mut html = String::from("<!DOCTYPE html><html><body>\n");
        for i in 0..FILES {
            let name = format!("big-1.{i}.tar.gz");
            let hash = format!("{i:064x}");
            if i > 0 {
                json.push(',');
            }
            json.push_str(&format!(
                r#"{{"filename":"{name}","url":"https://files.example/p/{name}","hashes":{{"sha256":"{hash}"}},"requires-python":">=3.8","size":{i},"upload-time":"2024-01-01T00:00:00Z","yanked":false}}"#
            ));
            html.push_str(&format!(
                "<a href=\"https://files.example/p/{name}#sha256={hash}\" data-requires-python=\"&gt;=3.8\">{name}</a><br />\n"
            ));
        }
        json.push_str("]}");
        html.push_str("</body></html>\n");
        for (body, is_json) in [(json.as_bytes(), true), (html.as_bytes(), false)] {
            let links = parse_project(body, is_json, "https://index.example/simple/big/").unwrap();
            assert_eq!(links.len(), FILES);
            assert_eq!(links[4321].filename, "big-1.4321.tar.gz");
            assert_eq!(
                links[4321].sha256.as_deref(),
                Some(format!("{:064x}", 4321).as_str())
            );
            assert_eq!(links[4999].requires_python.as_deref(), Some(">=3.8"));
        }
    }
}
