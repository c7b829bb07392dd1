//! Host side of `granary:plugin/http`: GET and HEAD on the remote's origin and its
//! `allowed_origins`, with redirects checked hop by hop ([`super::upstream`]).
//!
//! GETs are conditional where they can be: a page the upstream answered 200 with an `ETag` or a
//! `Last-Modified` is kept (text pages up to [`MAX_KEPT_PAGE`]), the next GET of it carries
//! `If-None-Match` / `If-Modified-Since`, and a 304 reaches the guest as the kept page with
//! status 200. A re-sync and a pull-through page so cost the upstream a 304, and the guest sees
//! no difference.

use std::sync::Arc;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use wasmtime::component::Resource;

use super::PluginError;
use super::bindings::current::granary::plugin::http;
use super::runtime::{SandboxViolation, guest_error};
use super::scope::{CachedPage, CallState, UpstreamPages};

/// The largest page kept for conditional requests. PyPI's botocore page is 2 MB; the copy is
/// host memory outside the plugin's limit, held while the guest reads, so it stays small.
pub const MAX_KEPT_PAGE: usize = 4 * 1024 * 1024;

/// A response whose body the guest reads in chunks.
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<reqwest::Response>,
    pending: Bytes,
    /// Where the body is copied to while the guest reads it, to be kept once whole.
    keeping: Option<Keeping>,
}

/// A page on its way into the kept pages.
struct Keeping {
    pages: Arc<dyn UpstreamPages>,
    url: String,
    request_headers: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The canonical text of a request's headers: the key of a kept page, since the same URL may
/// answer differently to another `Accept`.
fn request_key(headers: &[(String, String)]) -> String {
    let mut lines: Vec<String> = headers
        .iter()
        .map(|(name, value)| format!("{}: {}", name.to_ascii_lowercase(), value.trim()))
        .collect();
    lines.sort();
    lines.join("\n")
}

/// A response header's value.
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// What the guest gets for a request: its response, or the error it may handle; a trap is the
/// host's refusal (a capability not granted).
type Answer = wasmtime::Result<Result<Resource<Response>, PluginError>>;

impl CallState {
    async fn request(
        &mut self,
        method: reqwest::Method,
        url: String,
        headers: Vec<(String, String)>,
    ) -> Answer {
        let Some(scope) = &self.scope.http else {
            return Err(SandboxViolation::new(
                "capability denied: the plugin made an HTTP request but did not declare the `http` capability in describe (outbound HTTP is granted only during a sync, and only to plugins that declare it)",
            )
            .into());
        };
        let parsed = match url::Url::parse(&url) {
            Ok(parsed) => parsed,
            Err(error) => return Ok(Err(guest_error(format!("invalid URL {url:?}: {error}")))),
        };
        if let Err(refused) = scope.upstream.policy().reach_from_plugin(&parsed) {
            return Err(SandboxViolation::new(format!(
                "plugin requested {refused}; plugins may only reach their remote's origin and the origins the operator allowed"
            ))
            .into());
        }
        let pages = match method {
            reqwest::Method::GET => scope.pages.clone(),
            _ => None,
        };
        let request_headers = request_key(&headers);
        let kept = match &pages {
            Some(pages) => pages
                .lookup(&url, &request_headers)
                .await
                .unwrap_or_else(|error| {
                    tracing::warn!(%url, "reading a kept upstream page failed: {error:#}");
                    None
                }),
            None => None,
        };
        let mut sent = headers.clone();
        if let Some(kept) = &kept {
            if let Some(etag) = header(&kept.headers, ETAG.as_str()) {
                sent.push((IF_NONE_MATCH.as_str().to_owned(), etag.to_owned()));
            }
            if let Some(modified) = header(&kept.headers, LAST_MODIFIED.as_str()) {
                sent.push((IF_MODIFIED_SINCE.as_str().to_owned(), modified.to_owned()));
            }
        }
        // A redirect is the upstream's doing, not the plugin's: it is judged as the host's own
        // requests are, and a refused hop is the call's error.
        let response = match scope.upstream.send(method, &url, &sent).await {
            Ok(response) => response,
            Err(error) => {
                return Ok(Err(guest_error(format!(
                    "request to {url} failed: {error}"
                ))));
            }
        };
        if let (StatusCode::NOT_MODIFIED, Some(kept)) = (response.status(), kept) {
            tracing::debug!(%url, "upstream page not modified, answered from the kept copy");
            let resource = self.table.push(Response {
                status: StatusCode::OK.as_u16(),
                headers: kept.headers,
                body: None,
                pending: Bytes::from(kept.body),
                keeping: None,
            })?;
            return Ok(Ok(resource));
        }
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        let validated = header(&headers, ETAG.as_str()).is_some()
            || header(&headers, LAST_MODIFIED.as_str()).is_some();
        let keeping = match pages {
            Some(pages) if status == 200 && validated => Some(Keeping {
                pages,
                url,
                request_headers,
                headers: headers.clone(),
                body: Vec::new(),
            }),
            _ => None,
        };
        let resource = self.table.push(Response {
            status,
            headers,
            body: Some(response),
            pending: Bytes::new(),
            keeping,
        })?;
        Ok(Ok(resource))
    }
}

/// Adds `chunk` to the page being kept, or gives up keeping it past [`MAX_KEPT_PAGE`].
fn copy_into(keeping: &mut Option<Keeping>, chunk: &[u8]) {
    if let Some(page) = keeping {
        if page.body.len() + chunk.len() > MAX_KEPT_PAGE {
            *keeping = None;
        } else {
            page.body.extend_from_slice(chunk);
        }
    }
}

/// Keeps a whole page (text only: the table holds text).
async fn keep(keeping: Keeping) {
    let Ok(body) = String::from_utf8(keeping.body) else {
        return;
    };
    let page = CachedPage {
        headers: keeping.headers,
        body,
    };
    if let Err(error) = keeping
        .pages
        .keep(&keeping.url, &keeping.request_headers, page)
        .await
    {
        tracing::warn!(url = %keeping.url, "keeping an upstream page failed: {error:#}");
    }
}

impl http::Host for CallState {
    async fn get(&mut self, url: String, headers: Vec<(String, String)>) -> Answer {
        self.request(reqwest::Method::GET, url, headers).await
    }

    async fn head(&mut self, url: String, headers: Vec<(String, String)>) -> Answer {
        self.request(reqwest::Method::HEAD, url, headers).await
    }
}

impl http::HostResponse for CallState {
    async fn status(&mut self, response: Resource<Response>) -> wasmtime::Result<u16> {
        Ok(self.table.get(&response)?.status)
    }

    async fn headers(
        &mut self,
        response: Resource<Response>,
    ) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.table.get(&response)?.headers.clone())
    }

    async fn read(
        &mut self,
        response: Resource<Response>,
        max_bytes: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        let max = max_bytes.clamp(1, super::MAX_READ_CHUNK) as usize;
        let response = self.table.get_mut(&response)?;
        if response.pending.is_empty() {
            let Some(body) = response.body.as_mut() else {
                return Ok(Ok(Vec::new()));
            };
            match body.chunk().await {
                Ok(Some(chunk)) => {
                    copy_into(&mut response.keeping, &chunk);
                    response.pending = chunk;
                }
                Ok(None) => {
                    response.body = None;
                    if let Some(keeping) = response.keeping.take() {
                        keep(keeping).await;
                    }
                    return Ok(Ok(Vec::new()));
                }
                Err(error) => {
                    response.keeping = None;
                    return Ok(Err(guest_error(format!(
                        "reading the response body failed: {}",
                        super::upstream::describe(&error)
                    ))));
                }
            }
        }
        let take = max.min(response.pending.len());
        Ok(Ok(response.pending.split_to(take).to_vec()))
    }

    async fn drop(&mut self, response: Resource<Response>) -> wasmtime::Result<()> {
        self.table.delete(response)?;
        Ok(())
    }
}
