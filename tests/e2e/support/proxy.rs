//! A forward HTTP proxy on `127.0.0.1:0` that insists on basic-auth proxy credentials and
//! counts the requests it carried, to show a remote's `proxy_url` and proxy credentials are
//! used for every upstream request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use tokio::sync::oneshot;

struct Shared {
    authorization: String,
    client: reqwest::Client,
    carried: AtomicUsize,
    refused: AtomicUsize,
}

pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _shutdown: oneshot::Sender<()>,
}

impl Proxy {
    /// Starts a proxy that forwards only requests with these proxy credentials.
    pub async fn start(username: &str, password: &str) -> Proxy {
        use base64::Engine as _;
        let shared = Arc::new(Shared {
            authorization: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            ),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("the proxy's client"),
            carried: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await
                .expect("proxy server");
        });
        Proxy {
            addr,
            shared,
            _shutdown: shutdown,
        }
    }

    /// The proxy's URL, for a remote's `proxy_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests forwarded to their origin.
    pub fn carried(&self) -> usize {
        self.shared.carried.load(Ordering::SeqCst)
    }

    /// Requests refused with 407 for lacking the proxy credentials.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }
}

/// Forwards an absolute-form request (`GET http://host/path`) to its origin.
async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let authorized = request
        .headers()
        .get(header::PROXY_AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        == Some(shared.authorization.as_str());
    if !authorized {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return Response::builder()
            .status(StatusCode::PROXY_AUTHENTICATION_REQUIRED)
            .header(header::PROXY_AUTHENTICATE, "Basic realm=\"proxy\"")
            .body(Body::empty())
            .expect("valid response");
    }
    if request.uri().scheme().is_none() {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Body::from("not a proxy request"))
            .expect("valid response");
    }
    shared.carried.fetch_add(1, Ordering::SeqCst);
    let mut upstream = shared
        .client
        .request(request.method().clone(), request.uri().to_string());
    for (name, value) in request.headers() {
        if name != header::PROXY_AUTHORIZATION && name != header::HOST {
            upstream = upstream.header(name, value);
        }
    }
    match upstream.send().await {
        Ok(answer) => {
            let status = answer.status();
            let bytes = answer.bytes().await.unwrap_or_default();
            Response::builder()
                .status(status)
                .body(Body::from(bytes))
                .expect("valid response")
        }
        Err(_) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Body::empty())
            .expect("valid response"),
    }
}
