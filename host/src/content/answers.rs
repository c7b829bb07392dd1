//! Plugin answers kept in memory, so that a page or a file a plugin resolved once is served
//! again without calling it.
//!
//! The host is a shared cache in front of `handle`, as a CDN is in front of an origin, and the
//! plugin says what it may keep the way an origin tells a CDN (RFC 9213's targeted fields):
//! `Granary-Cache-Control: max-age=N` keeps a GET or HEAD answer up to N seconds, `no-store`
//! keeps nothing. The host consumes that header; the client never sees it. Without it, the
//! answer's `Cache-Control` is read as a shared cache reads it (`s-maxage`, else `max-age`;
//! `private`, `no-store` and `no-cache` keep nothing). `Vary` names the request headers the
//! answer depends on (`Accept` for PEP 691 pages); `Vary: *` keeps nothing.
//!
//! An answer is kept under everything else it can depend on: the plugin's build (an upgrade may
//! answer differently), the distribution and the URL it was reached at (links start there), the repository version it serves, the method, the path and query, and the authenticated user (the plugin
//! sees the user, so two users never share an answer; a content guard has let the request
//! through before any lookup). Entries also live only as long as the content tables'
//! generation they were made at ([`ContentChanges`]): a new repository version, a changed
//! distribution or a stored download drops them all at the next lookup, in every `serve` process
//! (each hears the change). Only 200, 203, 301 and 308 answers are kept.
//!
//! Memory is bounded in bytes. Once the protected three quarters of the budget are full, a key
//! must be asked for twice to stay (segmented LRU): new answers go to a probation shelf of a
//! quarter of the budget and move to the protected shelf when asked for again, so a client
//! requesting endless distinct URLs only churns probation and cannot push the hot pages out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use super::cache::{Clear, PerGeneration, Shelf, Weigh};
use crate::db::ContentChanges;

/// The response header by which a plugin tells the host what it may keep.
pub const HOST_CACHE_CONTROL: &str = "granary-cache-control";

/// Longest an answer is kept, whatever the plugin asks: a day.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Most variants (values of the `Vary` headers) kept per key: clients send a handful of
/// `Accept` values, a hostile one could send endless ones.
const MAX_VARIANTS: usize = 8;

/// A kept answer: what the client gets, less the body's transfer framing.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// The headers as the client gets them (the host's own already dropped), with an `ETag`. A
    /// list, not a `HeaderMap`: the map's tables cost a few hundred bytes however few headers it
    /// holds, more than most kept pages' bodies.
    pub headers: Box<[(HeaderName, HeaderValue)]>,
    pub body: AnswerBody,
    expires: Instant,
}

/// The body of a kept answer.
#[derive(Debug)]
pub enum AnswerBody {
    /// Bytes the plugin produced.
    Bytes(Bytes),
    /// A stored artifact, served by the host's file path (Range, ETag, its memory cache).
    Stored { sha256: String, size: u64 },
}

impl Answer {
    /// An answer with `headers` (the plugin's, less the host's own) kept until `lifetime` passes.
    /// A byte answer without an `ETag` gets one from its content, so clients can revalidate.
    pub fn new(
        status: StatusCode,
        mut headers: HeaderMap,
        body: AnswerBody,
        lifetime: Duration,
    ) -> Answer {
        if let AnswerBody::Bytes(bytes) = &body
            && !headers.contains_key(header::ETAG)
        {
            let digest = hex::encode(&Sha256::digest(bytes)[..16]);
            if let Ok(value) = HeaderValue::from_str(&format!("\"{digest}\"")) {
                headers.insert(header::ETAG, value);
            }
        }
        let mut listed = Vec::with_capacity(headers.len());
        let mut name = None;
        // A name comes only with the first of its values.
        for (named, value) in headers {
            name = named.or(name);
            if let Some(name) = &name {
                listed.push((name.clone(), value));
            }
        }
        Answer {
            status,
            headers: listed.into(),
            body,
            expires: Instant::now() + lifetime,
        }
    }

    /// The first value of the header `name`.
    pub fn header(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(kept, _)| kept == name)
            .map(|(_, value)| value)
    }

    /// Whether a request with these headers has this answer already (`If-None-Match` names its
    /// `ETag`), so a 304 is enough.
    pub fn not_modified(&self, request: &HeaderMap) -> bool {
        if self.status != StatusCode::OK {
            return false;
        }
        let (Some(etag), Some(asked)) = (
            self.header(&header::ETAG),
            request.get(header::IF_NONE_MATCH),
        ) else {
            return false;
        };
        let (Ok(etag), Ok(asked)) = (etag.to_str(), asked.to_str()) else {
            return false;
        };
        asked
            .split(',')
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == "*" || tag == etag)
    }
}

/// How long the host may keep an answer with these headers, if at all (see the module docs).
pub fn lifetime(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if !matches!(status.as_u16(), 200 | 203 | 301 | 308) {
        return None;
    }
    let directives = match headers.get(HOST_CACHE_CONTROL) {
        Some(targeted) => Directives::parse(targeted, false)?,
        None => Directives::parse(headers.get(header::CACHE_CONTROL)?, true)?,
    };
    let seconds = directives.max_age?;
    (seconds > 0).then(|| Duration::from_secs(seconds).min(MAX_LIFETIME))
}

struct Directives {
    max_age: Option<u64>,
}

impl Directives {
    /// The max-age of a cache-control value; `None` when it forbids keeping. `shared` reads it
    /// as a shared cache reads `Cache-Control` (`s-maxage` first, `private` forbids).
    fn parse(value: &HeaderValue, shared: bool) -> Option<Directives> {
        let value = value.to_str().ok()?.to_ascii_lowercase();
        let mut max_age = None;
        let mut s_maxage = None;
        for directive in value.split(',').map(str::trim) {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive, None),
            };
            match name {
                "no-store" | "no-cache" => return None,
                "private" if shared => return None,
                "max-age" => max_age = argument.and_then(|seconds| seconds.parse().ok()),
                "s-maxage" if shared => {
                    s_maxage = argument.and_then(|seconds| seconds.parse().ok())
                }
                _ => {}
            }
        }
        Some(Directives {
            max_age: s_maxage.or(max_age),
        })
    }
}

/// The request headers an answer varies on (its `Vary`), or `None` for `Vary: *`.
pub fn varies_on(headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for value in headers.get_all(header::VARY) {
        for name in value.to_str().ok()?.split(',').map(str::trim) {
            if name.is_empty() {
                continue;
            }
            if name == "*" {
                return None;
            }
            let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Some(names)
}

/// What an answer is kept under, besides the request headers it varies on.
pub struct Key<'a> {
    pub plugin: &'a str,
    /// The sha256 of the plugin's component: an upgraded plugin may answer differently.
    pub component: &'a str,
    /// The distribution's base URL as the request reached it (`/pulp/content/<base_path>/` or
    /// the plugin's own prefix): links in the answer start with it.
    pub base_url: &'a str,
    pub repository_id: Option<&'a str>,
    pub version: Option<i64>,
    pub method: &'a str,
    pub user: Option<&'a str>,
    /// What the user's registry token grants, if the request carried one.
    pub granted: Option<&'a [String]>,
    pub path: &'a str,
    pub query: Option<&'a str>,
}

impl Key<'_> {
    /// What the answer is kept under: the sha256 of the parts, each prefixed with its length so
    /// that no two keys spell the same text. 64 bytes however long the path and the URL are, a
    /// third of what a project page's key took as text.
    pub fn id(&self) -> String {
        let mut text = String::with_capacity(256 + self.path.len());
        let version = self.version.map(|version| version.to_string());
        let granted = self.granted.map(|granted| granted.join(","));
        for part in [
            Some(self.plugin),
            Some(self.component),
            Some(self.base_url),
            self.repository_id,
            version.as_deref(),
            Some(self.method),
            self.user,
            granted.as_deref(),
            Some(self.path),
            self.query,
        ] {
            match part {
                Some(part) => text.push_str(&format!("{}:{part}", part.len())),
                None => text.push('-'),
            }
        }
        hex::encode(Sha256::digest(text))
    }
}

/// The answers kept under one key: one per combination of the values of the headers in `vary`.
#[derive(Debug, Clone)]
struct Variants {
    vary: Arc<[HeaderName]>,
    answers: Vec<(Vec<Option<HeaderValue>>, Arc<Answer>)>,
}

impl Variants {
    fn find(&self, request: &HeaderMap) -> Option<&Arc<Answer>> {
        let values = values_of(&self.vary, request);
        self.answers
            .iter()
            .find(|(kept, _)| *kept == values)
            .map(|(_, answer)| answer)
    }
}

fn values_of(names: &[HeaderName], request: &HeaderMap) -> Vec<Option<HeaderValue>> {
    names
        .iter()
        .map(|name| {
            // The lines of one header are one list (RFC 9110, 5.3): docker sends each media type
            // it accepts as an `Accept` line of its own, and all of them choose the answer.
            let mut lines = request.get_all(name).iter();
            let first = lines.next()?;
            let mut joined = first.as_bytes().to_vec();
            for line in lines {
                joined.extend_from_slice(b", ");
                joined.extend_from_slice(line.as_bytes());
            }
            HeaderValue::from_bytes(&joined).ok()
        })
        .collect()
}

/// What kept headers hold: each pair, and the text of its name and value (a standard name has
/// none of its own, but counting it costs nothing worth a branch).
fn header_bytes(headers: &[(HeaderName, HeaderValue)]) -> usize {
    headers
        .iter()
        .map(|(name, value)| {
            std::mem::size_of::<(HeaderName, HeaderValue)>() + name.as_str().len() + value.len()
        })
        .sum()
}

impl Weigh for Arc<Variants> {
    fn weight(&self) -> usize {
        let vary: usize = self.vary.iter().map(|name| name.as_str().len()).sum();
        let answers: usize = self
            .answers
            .iter()
            .map(|(values, answer)| {
                let values: usize = values.iter().flatten().map(HeaderValue::len).sum();
                let body = match &answer.body {
                    AnswerBody::Bytes(bytes) => bytes.len(),
                    AnswerBody::Stored { sha256, .. } => sha256.len(),
                };
                values + header_bytes(&answer.headers) + body + std::mem::size_of::<Answer>()
            })
            .sum();
        std::mem::size_of::<Variants>() + vary + answers
    }
}

/// Kept plugin answers (see the module docs).
#[derive(Debug)]
pub struct AnswerCache {
    shelves: PerGeneration<Shelves>,
}

#[derive(Debug)]
struct Shelves {
    /// Keys asked for once since they were kept.
    probation: Shelf<Arc<Variants>>,
    /// Keys asked for again.
    protected: Shelf<Arc<Variants>>,
}

impl Clear for Shelves {
    fn clear(&mut self) {
        self.probation.clear();
        self.protected.clear();
    }
}

impl AnswerCache {
    /// Empty, following `changes`, holding at most `budget` bytes.
    pub fn new(changes: Arc<ContentChanges>, budget: usize) -> Self {
        AnswerCache {
            shelves: PerGeneration::new(
                changes,
                Shelves {
                    probation: Shelf::new(budget / 4),
                    protected: Shelf::new(budget - budget / 4),
                },
            ),
        }
    }

    /// The generation to call the plugin at: take it before reading what the answer depends on
    /// (the served version), hand it to [`AnswerCache::keep`].
    pub fn generation(&self) -> u64 {
        self.shelves.generation()
    }

    /// The answer kept under `key` for a request with these headers, if it has not expired.
    pub fn get(&self, key: &Key<'_>, request: &HeaderMap) -> Option<Arc<Answer>> {
        let key = key.id();
        let variants = self.shelves.current(|shelves| {
            if let Some(variants) = shelves.protected.get(&key) {
                return Some(variants);
            }
            // Asked for a second time: worth keeping.
            let variants = shelves.probation.remove(&key)?;
            shelves.protected.insert(key, variants.clone());
            Some(variants)
        })?;
        let answer = variants.find(request)?;
        (answer.expires > Instant::now()).then(|| answer.clone())
    }

    /// Keeps `answer`, made at `generation`, under `key` for requests whose `vary` headers have
    /// the values of `request`'s.
    pub fn keep(
        &self,
        generation: u64,
        key: &Key<'_>,
        vary: Vec<HeaderName>,
        request: &HeaderMap,
        answer: Answer,
    ) {
        let key = key.id();
        let values = values_of(&vary, request);
        let answer = Arc::new(answer);
        self.shelves.keep(generation, |shelves| {
            let (was_protected, kept) = match shelves.protected.remove(&key) {
                Some(kept) => (true, Some(kept)),
                None => (false, shelves.probation.remove(&key)),
            };
            let mut variants = match kept {
                Some(kept) if *kept.vary == *vary => (*kept).clone(),
                _ => Variants {
                    vary: vary.into(),
                    answers: Vec::new(),
                },
            };
            variants.answers.retain(|(kept, _)| *kept != values);
            if variants.answers.len() == MAX_VARIANTS {
                variants.answers.remove(0);
            }
            variants.answers.push((values, answer));
            let variants = Arc::new(variants);
            // While the protected shelf has room, nothing needs protecting: a new key goes
            // there too, so a working set that fits the whole budget is kept whole.
            let shelf = if was_protected || shelves.protected.has_room_for(&key, &variants) {
                &mut shelves.protected
            } else {
                &mut shelves.probation
            };
            shelf.insert(key, variants);
        });
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.shelves
            .current(|shelves| shelves.probation.bytes() + shelves.protected.bytes())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
    use bytes::Bytes;

    use super::{Answer, AnswerBody, AnswerCache, HOST_CACHE_CONTROL, Key, lifetime, varies_on};
    use crate::db::ContentChanges;

    fn key<'a>(path: &'a str, user: Option<&'a str>, version: i64) -> Key<'a> {
        Key {
            plugin: "python",
            component: "c0ffee",
            base_url: "http://127.0.0.1:24817/pypi/pypi/",
            repository_id: Some("repo-1"),
            version: Some(version),
            method: "GET",
            user,
            granted: None,
            path,
            query: None,
        }
    }

    fn page(body: &str) -> Answer {
        Answer::new(
            StatusCode::OK,
            HeaderMap::new(),
            AnswerBody::Bytes(Bytes::from(body.to_owned())),
            Duration::from_secs(600),
        )
    }

    /// Keeps `answer` under `key` for requests that vary on no header.
    fn keep_plain(cache: &AnswerCache, generation: u64, key: Key<'_>, answer: Answer) {
        cache.keep(generation, &key, Vec::new(), &HeaderMap::new(), answer);
    }

    fn body(answer: &Answer) -> &[u8] {
        match &answer.body {
            AnswerBody::Bytes(bytes) => bytes,
            AnswerBody::Stored { .. } => panic!("a stored file"),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    fn cache_of(budget: usize) -> (Arc<ContentChanges>, AnswerCache) {
        let changes = Arc::new(ContentChanges::default());
        (changes.clone(), AnswerCache::new(changes, budget))
    }

    #[test]
    fn the_plugin_decides_what_is_kept_and_for_how_long() {
        let ok = StatusCode::OK;
        let day = Duration::from_secs(24 * 3600);
        let of = |pairs| lifetime(ok, &headers(pairs));
        assert_eq!(
            of(&[(HOST_CACHE_CONTROL, "max-age=600")]),
            Some(Duration::from_secs(600))
        );
        assert_eq!(of(&[(HOST_CACHE_CONTROL, "max-age=99999999")]), Some(day));
        assert_eq!(
            of(&[
                (HOST_CACHE_CONTROL, "no-store"),
                ("cache-control", "max-age=60")
            ]),
            None,
            "the targeted field wins over Cache-Control"
        );
        assert_eq!(
            of(&[
                (HOST_CACHE_CONTROL, "max-age=60"),
                ("cache-control", "private")
            ]),
            Some(Duration::from_secs(60)),
            "private is for clients' caches; the plugin told the host"
        );
        assert_eq!(
            of(&[("cache-control", "public, max-age=60, s-maxage=300")]),
            Some(Duration::from_secs(300))
        );
        assert_eq!(of(&[("cache-control", "private, max-age=60")]), None);
        assert_eq!(of(&[("cache-control", "no-cache, max-age=60")]), None);
        assert_eq!(of(&[("cache-control", "max-age=0")]), None);
        assert_eq!(of(&[]), None, "nothing is kept unless the plugin says so");
        let kept = headers(&[(HOST_CACHE_CONTROL, "max-age=60")]);
        assert!(lifetime(StatusCode::MOVED_PERMANENTLY, &kept).is_some());
        assert!(lifetime(StatusCode::NOT_FOUND, &kept).is_none());
        assert!(lifetime(StatusCode::BAD_GATEWAY, &kept).is_none());
        assert!(lifetime(StatusCode::PARTIAL_CONTENT, &kept).is_none());
    }

    #[test]
    fn vary_names_the_request_headers_and_star_keeps_nothing() {
        let names = varies_on(&headers(&[
            ("vary", "Accept, accept-encoding"),
            ("vary", "Accept"),
        ]))
        .unwrap();
        assert_eq!(names, vec![header::ACCEPT, header::ACCEPT_ENCODING]);
        assert_eq!(varies_on(&headers(&[("vary", "Accept, *")])), None);
    }

    #[test]
    fn an_answer_is_kept_until_the_content_tables_change() {
        let (changes, cache) = cache_of(1 << 20);
        let request = HeaderMap::new();
        let generation = cache.generation();
        keep_plain(&cache, generation, key("simple/", None, 3), page("v3"));
        let kept = cache.get(&key("simple/", None, 3), &request).unwrap();
        assert_eq!(body(&kept), b"v3");
        assert_eq!(
            cache.get(&key("simple/", None, 4), &request).map(|_| ()),
            None
        );

        changes.changed();
        assert!(cache.get(&key("simple/", None, 3), &request).is_none());
        // Made before the change and kept after it: it may predate the commit.
        keep_plain(&cache, generation, key("simple/", None, 3), page("v3"));
        assert!(cache.get(&key("simple/", None, 3), &request).is_none());
    }

    #[test]
    fn requests_that_differ_in_a_vary_header_never_share_an_answer() {
        let (_, cache) = cache_of(1 << 20);
        let json = headers(&[("accept", "application/vnd.pypi.simple.v1+json")]);
        let html = headers(&[("accept", "text/html")]);
        let generation = cache.generation();
        let vary = vec![header::ACCEPT];
        cache.keep(
            generation,
            &key("simple/", None, 1),
            vary.clone(),
            &json,
            page("{}"),
        );
        assert!(cache.get(&key("simple/", None, 1), &html).is_none());
        assert!(
            cache
                .get(&key("simple/", None, 1), &HeaderMap::new())
                .is_none()
        );
        cache.keep(
            generation,
            &key("simple/", None, 1),
            vary,
            &html,
            page("<html>"),
        );
        assert_eq!(
            body(&cache.get(&key("simple/", None, 1), &json).unwrap()),
            b"{}"
        );
        assert_eq!(
            body(&cache.get(&key("simple/", None, 1), &html).unwrap()),
            b"<html>"
        );
    }

    #[test]
    fn every_line_of_a_vary_header_chooses_the_answer() {
        let (_, cache) = cache_of(1 << 20);
        let index = "application/vnd.oci.image.index.v1+json";
        let image = "application/vnd.oci.image.manifest.v1+json";
        let mut both = HeaderMap::new();
        both.append(header::ACCEPT, HeaderValue::from_static(image));
        both.append(header::ACCEPT, HeaderValue::from_static(index));
        let image_only = headers(&[("accept", image)]);
        let generation = cache.generation();
        let manifest = key("manifests/v1", None, 1);
        cache.keep(
            generation,
            &manifest,
            vec![header::ACCEPT],
            &both,
            page("index"),
        );
        // Same first line, one line fewer: another variant, not the index.
        assert!(cache.get(&manifest, &image_only).is_none());
        assert_eq!(body(&cache.get(&manifest, &both).unwrap()), b"index");
    }

    #[test]
    fn users_never_share_an_answer() {
        let (_, cache) = cache_of(1 << 20);
        let request = HeaderMap::new();
        let generation = cache.generation();
        keep_plain(
            &cache,
            generation,
            key("simple/", Some("alice"), 1),
            page("a"),
        );
        assert!(
            cache
                .get(&key("simple/", Some("bob"), 1), &request)
                .is_none()
        );
        assert!(cache.get(&key("simple/", None, 1), &request).is_none());
        assert!(
            cache
                .get(&key("simple/", Some("alice"), 1), &request)
                .is_some()
        );
    }

    #[test]
    fn an_expired_answer_is_not_served() {
        let (_, cache) = cache_of(1 << 20);
        let request = HeaderMap::new();
        let answer = Answer::new(
            StatusCode::OK,
            HeaderMap::new(),
            AnswerBody::Bytes(Bytes::from_static(b"old")),
            Duration::ZERO,
        );
        keep_plain(&cache, cache.generation(), key("simple/", None, 1), answer);
        assert!(cache.get(&key("simple/", None, 1), &request).is_none());
    }

    #[test]
    fn byte_answers_get_an_etag_that_if_none_match_meets() {
        let answer = page("<html>");
        let etag = answer.header(&header::ETAG).unwrap().clone();
        let mut request = HeaderMap::new();
        assert!(!answer.not_modified(&request));
        request.insert(header::IF_NONE_MATCH, etag);
        assert!(answer.not_modified(&request));
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!answer.not_modified(&request));
        assert_ne!(
            page("<html>").header(&header::ETAG),
            page("<html/>").header(&header::ETAG)
        );
    }

    #[test]
    fn answers_that_fit_the_budget_are_all_kept_though_each_was_asked_for_once() {
        let (_, cache) = cache_of(256 * 1024);
        let request = HeaderMap::new();
        let generation = cache.generation();
        let paths: Vec<String> = (0..60).map(|n| format!("simple/project-{n}/")).collect();
        for path in &paths {
            let answer = page(&"x".repeat(512));
            keep_plain(&cache, generation, key(path, None, 1), answer);
        }
        for path in &paths {
            assert!(cache.get(&key(path, None, 1), &request).is_some(), "{path}");
        }
    }

    #[test]
    fn a_flood_of_distinct_urls_does_not_push_out_an_answer_asked_for_twice() {
        let budget = 64 * 1024;
        let (_, cache) = cache_of(budget);
        let request = HeaderMap::new();
        let generation = cache.generation();
        keep_plain(&cache, generation, key("hot", None, 1), page("hot"));
        assert!(cache.get(&key("hot", None, 1), &request).is_some());
        for n in 0..2000 {
            let path = format!("simple/flood-{n}/");
            keep_plain(
                &cache,
                generation,
                key(&path, None, 1),
                page(&"x".repeat(512)),
            );
            assert!(cache.bytes() <= budget, "{} bytes kept", cache.bytes());
        }
        assert!(cache.get(&key("hot", None, 1), &request).is_some());
        // The flood's first answers took the room the protected shelf had; the rest only churned
        // probation, whose early entries are gone.
        assert!(
            cache
                .get(&key("simple/flood-1000/", None, 1), &request)
                .is_none()
        );
    }
}
