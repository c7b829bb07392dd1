//! A counting upstream: an axum server on `127.0.0.1:0` serving a fixture under `/fixtures/`
//! plus its `PULP_MANIFEST`, recording how often each path was requested.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use axum::serve::Listener;
use bytes::Bytes;
use futures::StreamExt as _;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

use super::fixture::{Fixture, FixtureFile};

/// Files live under this prefix so the remote URL has a path to resolve relative paths against.
const PREFIX: &str = "/fixtures/";
const MANIFEST: &str = "PULP_MANIFEST";

struct Shared {
    /// Request path (without the prefix) to body.
    files: HashMap<String, Bytes>,
    /// Request path (without the prefix, or the full path outside it) to request count.
    requests: Mutex<HashMap<String, usize>>,
    /// Delay before answering a file (not the manifest), in milliseconds.
    file_delay_ms: AtomicU64,
    /// What every request must carry, if anything (see [`Upstream::require`]).
    required: Mutex<Option<Required>>,
    stopped: AtomicBool,
    /// Requests refused for lacking the required credentials or header.
    refused: AtomicU64,
    /// Each path's first this-many requests are answered 503 (or 429, see `retry_after`).
    failures_per_path: AtomicU64,
    /// When set, the failures are 429 Too Many Requests with this `Retry-After` (seconds).
    retry_after: Mutex<Option<u64>>,
    /// While true, answers carry an `ETag` and honour `If-None-Match` (see
    /// [`Upstream::validate_with_etags`]).
    etags: AtomicBool,
    /// Requests answered 304 Not Modified.
    not_modified: AtomicU64,
    /// Requests made over HTTP/2.
    http2_requests: AtomicU64,
    /// File requests being answered right now, and the most there ever were at once.
    in_flight: AtomicU64,
    most_in_flight: AtomicU64,
    /// While true, every request waits before it is answered (see [`Upstream::hold`]).
    held: watch::Sender<bool>,
    /// Requests waiting on `held` right now.
    waiting: AtomicU64,
    /// While true, file bodies stop after their first half (see [`Upstream::stall_bodies`]).
    stalled: watch::Sender<bool>,
    /// Request path (without the prefix) to the `Location` it is redirected to.
    redirects: Mutex<HashMap<String, String>>,
    /// Header name (lower case) to how many requests carried it.
    headers_seen: Mutex<HashMap<String, usize>>,
}

/// Credentials and a header an upstream insists on.
#[derive(Clone, Debug)]
pub struct Required {
    /// Basic-auth user and password.
    pub basic_auth: (String, String),
    /// A header name and its value.
    pub header: (String, String),
}

pub struct Upstream {
    addr: SocketAddr,
    scheme: &'static str,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Upstream {
    /// Serves `fixture` with its honest manifest.
    pub async fn serve(fixture: &Fixture) -> Upstream {
        Upstream::serve_with_manifest(&fixture.files, fixture.manifest()).await
    }

    /// Serves `files` with a manifest the test wrote (possibly lying about them).
    pub async fn serve_with_manifest(files: &[FixtureFile], manifest: String) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the upstream");
        Upstream::start(files, manifest, listener, "http").await
    }

    /// Serves `files` on `listener`, bound by the caller so that files can name the upstream's
    /// own URLs (an npm packument's tarballs).
    pub async fn serve_on(listener: tokio::net::TcpListener, files: &[FixtureFile]) -> Upstream {
        Upstream::start(files, String::new(), listener, "http").await
    }

    /// Serves `fixture` over HTTPS with `config` (its certificate, and whether it asks for
    /// client certificates).
    pub async fn serve_tls(fixture: &Fixture, config: Arc<ServerConfig>) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the upstream");
        let listener = TlsListener {
            listener,
            acceptor: TlsAcceptor::from(config),
        };
        Upstream::start(&fixture.files, fixture.manifest(), listener, "https").await
    }

    async fn start<L>(
        files: &[FixtureFile],
        manifest: String,
        listener: L,
        scheme: &'static str,
    ) -> Upstream
    where
        L: Listener<Addr = SocketAddr>,
    {
        let mut map: HashMap<String, Bytes> = files
            .iter()
            .map(|file| (file.relative_path.clone(), file.bytes.clone()))
            .collect();
        map.insert(MANIFEST.to_owned(), Bytes::from(manifest));
        let shared = Arc::new(Shared {
            files: map,
            requests: Mutex::default(),
            file_delay_ms: AtomicU64::new(0),
            required: Mutex::default(),
            stopped: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            failures_per_path: AtomicU64::new(0),
            retry_after: Mutex::new(None),
            etags: AtomicBool::new(false),
            not_modified: AtomicU64::new(0),
            http2_requests: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            most_in_flight: AtomicU64::new(0),
            held: watch::channel(false).0,
            waiting: AtomicU64::new(0),
            stalled: watch::channel(false).0,
            redirects: Mutex::default(),
            headers_seen: Mutex::default(),
        });
        let addr = listener.local_addr().expect("upstream address");
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(shared.clone());
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await
                .expect("upstream server");
        });
        Upstream {
            addr,
            scheme,
            shared,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// The remote URL for Granary: the manifest's URL.
    pub fn manifest_url(&self) -> String {
        format!("{}://{}{PREFIX}{MANIFEST}", self.scheme, self.addr)
    }

    /// The directory the fixture files are served from, ending in `/`.
    pub fn base_url(&self) -> String {
        format!("{}://{}{PREFIX}", self.scheme, self.addr)
    }

    /// `http://127.0.0.1:PORT/<path>`, for URLs outside the fixture (the hostile plugin's
    /// behaviour switches).
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}://{}/{}",
            self.scheme,
            self.addr,
            path.trim_start_matches('/')
        )
    }

    /// Makes every later file request wait `delay` before answering (the manifest is not
    /// delayed). Zero turns the delay off.
    pub fn set_file_delay(&self, delay: Duration) {
        self.shared
            .file_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// From now on, answers 401 to any request without these basic-auth credentials and this
    /// header (requests are still counted).
    pub fn require(&self, required: Required) {
        *self.shared.required.lock().unwrap() = Some(required);
    }

    /// From now on, answers the first `count` requests for each path (manifest included) with
    /// 503 Service Unavailable, as an overloaded server does.
    pub fn fail_first_requests(&self, count: u64) {
        self.shared.failures_per_path.store(count, Ordering::SeqCst);
    }

    /// From now on, answers the first `count` requests for each path (manifest included) with
    /// 429 Too Many Requests and `Retry-After: <seconds>`, as a rate-limited registry does.
    pub fn slow_down_first_requests(&self, count: u64, retry_after_seconds: u64) {
        *self.shared.retry_after.lock().unwrap() = Some(retry_after_seconds);
        self.shared.failures_per_path.store(count, Ordering::SeqCst);
    }

    /// From now on, every answer carries an `ETag` (its body's sha256), and a request whose
    /// `If-None-Match` names it is answered 304 Not Modified, as PyPI and most registries do.
    pub fn validate_with_etags(&self) {
        self.shared.etags.store(true, Ordering::SeqCst);
    }

    /// Requests answered 304 Not Modified.
    pub fn not_modified_answers(&self) -> u64 {
        self.shared.not_modified.load(Ordering::SeqCst)
    }

    /// Requests that came over HTTP/2.
    pub fn http2_requests(&self) -> u64 {
        self.shared.http2_requests.load(Ordering::SeqCst)
    }

    /// From now on, every request (the manifest too) waits unanswered until [`Upstream::release`]:
    /// an upstream that hangs.
    pub fn hold(&self) {
        self.shared.held.send_replace(true);
    }

    /// From now on, file bodies stop after their first half and wait (the connection open) until
    /// [`Upstream::release`]: an upstream that stalls mid-body.
    pub fn stall_bodies(&self) {
        self.shared.stalled.send_replace(true);
    }

    /// Answers everything held or stalled, and everything after it, at once.
    pub fn release(&self) {
        self.shared.held.send_replace(false);
        self.shared.stalled.send_replace(false);
    }

    /// Requests waiting unanswered right now (see [`Upstream::hold`]).
    pub fn waiting_requests(&self) -> usize {
        self.shared.waiting.load(Ordering::SeqCst) as usize
    }

    /// From now on, answers requests for `relative_path` (a fixture path, or `PULP_MANIFEST`)
    /// with `302 Found` to `location` (absolute, or relative to the request's URL).
    pub fn redirect(&self, relative_path: &str, location: &str) {
        self.shared
            .redirects
            .lock()
            .unwrap()
            .insert(relative_path.to_owned(), location.to_owned());
    }

    /// How many requests carried the header `name` (any value).
    pub fn requests_carrying(&self, name: &str) -> usize {
        self.shared
            .headers_seen
            .lock()
            .unwrap()
            .get(&name.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// Every request, whatever its path.
    pub fn total_requests(&self) -> usize {
        self.shared.requests.lock().unwrap().values().sum()
    }

    /// The most file requests that were being answered at the same time.
    pub fn most_concurrent_file_requests(&self) -> u64 {
        self.shared.most_in_flight.load(Ordering::SeqCst)
    }

    /// How many requests were refused for lacking what [`Upstream::require`] asked for.
    pub fn refused_requests(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst) as usize
    }

    /// How many requests (GET or HEAD) asked for the fixture file at `relative_path`.
    pub fn requests_for(&self, relative_path: &str) -> usize {
        self.shared
            .requests
            .lock()
            .unwrap()
            .get(relative_path)
            .copied()
            .unwrap_or(0)
    }

    pub fn manifest_requests(&self) -> usize {
        self.requests_for(MANIFEST)
    }

    /// Requests for anything but the manifest.
    pub fn file_requests(&self) -> usize {
        self.shared
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(path, _)| path.as_str() != MANIFEST)
            .map(|(_, count)| count)
            .sum()
    }

    /// Every path requested and how often, for assertion messages.
    pub fn request_counts(&self) -> HashMap<String, usize> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Stops listening and closes every connection (including idle keep-alive ones), so nothing
    /// Granary serves afterwards can have come from here.
    pub async fn stop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.release();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let stopped = tokio::time::timeout(Duration::from_secs(10), server).await;
            assert!(
                stopped.is_ok(),
                "the upstream did not shut down within 10 s"
            );
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

async fn answer(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path();
    let key = path.strip_prefix(PREFIX).unwrap_or(path).to_owned();
    if request.version() == axum::http::Version::HTTP_2 {
        shared.http2_requests.fetch_add(1, Ordering::SeqCst);
    }
    let seen = {
        let mut requests = shared.requests.lock().unwrap();
        let count = requests.entry(key.clone()).or_default();
        *count += 1;
        *count as u64
    };
    {
        let mut seen = shared.headers_seen.lock().unwrap();
        for name in request.headers().keys() {
            *seen.entry(name.as_str().to_owned()).or_default() += 1;
        }
    }
    if *shared.held.borrow() {
        shared.waiting.fetch_add(1, Ordering::SeqCst);
        let _ = shared.held.subscribe().wait_for(|held| !held).await;
        shared.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    // Belt and braces: should a connection outlive `stop`, it still serves nothing.
    if shared.stopped.load(Ordering::SeqCst) {
        return status(StatusCode::SERVICE_UNAVAILABLE);
    }
    let required = shared.required.lock().unwrap().clone();
    if let Some(required) = required
        && !carries(&request, &required)
    {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return status(StatusCode::UNAUTHORIZED);
    }
    if seen <= shared.failures_per_path.load(Ordering::SeqCst) {
        let retry_after = *shared.retry_after.lock().unwrap();
        return match retry_after {
            Some(seconds) => Response::builder()
                .status(StatusCode::TOO_MANY_REQUESTS)
                .header(header::RETRY_AFTER, seconds)
                .body(Body::empty())
                .expect("valid response"),
            None => status(StatusCode::SERVICE_UNAVAILABLE),
        };
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let redirect = shared.redirects.lock().unwrap().get(&key).cloned();
    if let Some(location) = redirect {
        return Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, location)
            .body(Body::empty())
            .expect("valid response");
    }
    let Some(bytes) = shared.files.get(&key).filter(|_| path.starts_with(PREFIX)) else {
        return status(StatusCode::NOT_FOUND);
    };
    let etag = shared
        .etags
        .load(Ordering::SeqCst)
        .then(|| format!("\"{}\"", super::fixture::sha256_hex(bytes)));
    if let Some(etag) = &etag
        && request
            .headers()
            .get(header::IF_NONE_MATCH)
            .is_some_and(|given| given.as_bytes() == etag.as_bytes())
    {
        shared.not_modified.fetch_add(1, Ordering::SeqCst);
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, etag)
            .body(Body::empty())
            .expect("valid response");
    }
    let delay = shared.file_delay_ms.load(Ordering::SeqCst);
    if key != MANIFEST {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.most_in_flight.fetch_max(now, Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
    let body = if key != MANIFEST && *shared.stalled.borrow() {
        // The first half now, the rest once released: the connection stays open in between.
        let (first, rest) = bytes.split_at(bytes.len() / 2);
        let (first, rest) = (Bytes::copy_from_slice(first), Bytes::copy_from_slice(rest));
        let mut stalled = shared.stalled.subscribe();
        let rest = async move {
            let _ = stalled.wait_for(|stalled| !stalled).await;
            Ok::<_, std::io::Error>(rest)
        };
        Body::from_stream(futures::stream::iter([Ok(first)]).chain(futures::stream::once(rest)))
    } else {
        Body::from(bytes.clone())
    };
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, bytes.len());
    if let Some(etag) = etag {
        response = response.header(header::ETAG, etag);
    }
    response.body(body).expect("valid response")
}

/// Whether a request has the required basic-auth credentials and header.
fn carries(request: &Request, required: &Required) -> bool {
    use base64::Engine as _;
    let (user, password) = &required.basic_auth;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    header("authorization") == Some(expected.as_str())
        && header(&required.header.0) == Some(required.header.1.as_str())
}

fn status(code: StatusCode) -> Response {
    Response::builder()
        .status(code)
        .body(Body::empty())
        .expect("valid response")
}

/// TCP connections that completed a TLS handshake; failed handshakes (a client that does not
/// trust the certificate, or lacks a required client certificate) are dropped.
struct TlsListener {
    listener: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
}

impl Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.listener.accept().await else {
                continue;
            };
            if let Ok(stream) = self.acceptor.accept(stream).await {
                return (stream, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}
