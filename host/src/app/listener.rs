//! The HTTP listener: accepts connections and serves the router on each, with the limits that
//! must hold before a request reaches any route.
//!
//! `axum::serve` sets no timer, so a client that sends half a header (slowloris) or stops in the
//! middle of a body holds its connection forever. Here each HTTP/1 connection gets hyper's
//! header-read timer (which also closes a keep-alive connection that waits too long for its next
//! request), each request body a timeout between two of its frames, and each request is checked
//! by [`Limits::admit`] (URL length and depth, no body on GET/HEAD, a declared length over the
//! largest upload) before routing: what it refuses costs no database work. Every request carries
//! the client's address as `ConnectInfo<SocketAddr>`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse as _, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::timeout::TimeoutBody;
use tower_service::Service as _;

use crate::config::Config;
use crate::error::ApiError;

/// What every request must satisfy before it is routed, and the listener's timers.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Time a client has to send a request's headers once its connection waits for one.
    pub header_read_timeout: Duration,
    /// Time a request body may go without a frame arriving.
    pub body_timeout: Duration,
    /// Longest path and query, in bytes.
    pub max_url_bytes: usize,
    /// Most path segments.
    pub max_path_segments: usize,
    /// Largest body any route accepts, in bytes.
    pub max_body_bytes: u64,
}

impl Limits {
    /// The limits `config` sets.
    pub fn of(config: &Config) -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
            body_timeout: Duration::from_secs(config.request_body_timeout_secs),
            max_url_bytes: config.max_url_bytes,
            max_path_segments: config.max_path_segments,
            max_body_bytes: config.max_upload_bytes,
        }
    }

    /// Refuses a request the server does not route: a URL too long or too deep (414), a body on a
    /// GET or HEAD (400), a declared body longer than any route accepts (413).
    pub fn admit(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), ApiError> {
        let url_bytes = uri.path_and_query().map_or(0, |url| url.as_str().len());
        let too_long = |message| Err(ApiError::detail(StatusCode::URI_TOO_LONG, message));
        if url_bytes > self.max_url_bytes {
            let max = self.max_url_bytes;
            return too_long(format!("The request URL is longer than {max} bytes."));
        }
        let segments = uri.path().bytes().filter(|byte| *byte == b'/').count();
        if segments > self.max_path_segments {
            let max = self.max_path_segments;
            return too_long(format!("The request path has more than {max} segments."));
        }
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok());
        let chunked = headers.contains_key(header::TRANSFER_ENCODING);
        if (method == Method::GET || method == Method::HEAD)
            && (chunked || declared.is_some_and(|length| length > 0))
        {
            return Err(ApiError::bad_request(format!(
                "A {method} request may not carry a body."
            )));
        }
        if let Some(length) = declared
            && length > self.max_body_bytes
        {
            return Err(ApiError::detail(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "The request body is larger than {} bytes.",
                    self.max_body_bytes
                ),
            ));
        }
        Ok(())
    }
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets the connections finish
/// the requests they are serving.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, a connection reset before accept...: the listener
                // itself is fine, so it keeps accepting, after a breath.
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            stream,
            peer,
            router.clone(),
            limits.clone(),
            shutdown.clone(),
        ));
    }
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Serves one connection until the client or the timers close it, or `shutdown` asks it to
/// finish its request in flight.
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Arc<Limits>,
    shutdown: CancellationToken,
) {
    let body_timeout = limits.body_timeout;
    let header_read_timeout = limits.header_read_timeout;
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let mut router = router.clone();
        let limits = limits.clone();
        async move {
            if let Err(refusal) = limits.admit(request.method(), request.uri(), request.headers()) {
                return Ok::<Response, Infallible>(refusal.into_response());
            }
            request.extensions_mut().insert(ConnectInfo(peer));
            let request = request.map(|body| Body::new(TimeoutBody::new(body_timeout, body)));
            router.call(request).await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => log_end(result),
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            log_end(connection.await);
        }
    }
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(error) = result {
        // Timeouts and clients that go away mid-request end here: worth a trace, not a warning.
        tracing::debug!(%error, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};

    use super::Limits;

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            max_url_bytes: 64,
            max_path_segments: 4,
            max_body_bytes: 1000,
        }
    }

    fn status(method: Method, uri: &str, headers: &[(header::HeaderName, &str)]) -> StatusCode {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(name, HeaderValue::from_str(value).unwrap());
        }
        let uri: Uri = uri.parse().unwrap();
        match limits().admit(&method, &uri, &map) {
            Ok(()) => StatusCode::OK,
            Err(error) => error.status(),
        }
    }

    #[test]
    fn urls_too_long_or_too_deep_are_414() {
        assert_eq!(status(Method::GET, "/a/b/c/d", &[]), StatusCode::OK);
        assert_eq!(
            status(Method::GET, "/a/b/c/d/e", &[]),
            StatusCode::URI_TOO_LONG
        );
        let long = format!("/a?{}", "q".repeat(62));
        assert_eq!(status(Method::GET, &long, &[]), StatusCode::URI_TOO_LONG);
        assert_eq!(status(Method::GET, &long[..64], &[]), StatusCode::OK);
    }

    #[test]
    fn reads_carry_no_body_and_no_body_exceeds_the_largest_upload() {
        let length = |n: &'static str| [(header::CONTENT_LENGTH, n)];
        assert_eq!(status(Method::GET, "/", &length("0")), StatusCode::OK);
        assert_eq!(
            status(Method::GET, "/", &length("5")),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(Method::HEAD, "/", &[(header::TRANSFER_ENCODING, "chunked")]),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status(Method::POST, "/", &length("1000")), StatusCode::OK);
        assert_eq!(
            status(Method::POST, "/", &length("1001")),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
