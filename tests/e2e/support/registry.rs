//! Container registries the container plugin syncs from: Debian's `docker-registry` (the CNCF
//! distribution registry 2.8, installed with apt-get when missing) on loopback, and a front that
//! stands before it the way Docker Hub's and GHCR's token services stand before theirs: every
//! registry request needs a Bearer token, which its `/token` endpoint gives for Basic
//! credentials.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use tempfile::TempDir;
use tokio::task::JoinHandle;

use super::cluster::free_port;
use super::tools::debian_tool;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A `docker-registry` process with its storage in a temporary directory.
pub struct DockerRegistry {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    _storage: TempDir,
}

impl DockerRegistry {
    pub async fn start() -> DockerRegistry {
        let program =
            tokio::task::spawn_blocking(|| debian_tool("docker-registry", "docker-registry"))
                .await
                .unwrap();
        let storage = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(response) = reqwest::get(format!("{url}/v2/")).await
                && response.status().is_success()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "docker-registry did not start on {url}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        DockerRegistry {
            child,
            url,
            _storage: storage,
        }
    }

    /// `host:port`, as skopeo names the registry.
    pub fn authority(&self) -> &str {
        self.url.trim_start_matches("http://")
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The token-authenticating front of a registry.
pub struct TokenFront {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    shared: Arc<FrontState>,
    server: JoinHandle<()>,
}

struct FrontState {
    registry: String,
    /// `Basic <base64(user:password)>` that `/token` accepts.
    basic: String,
    /// The one token this front issues.
    token: String,
    url: String,
    tokens_issued: AtomicUsize,
    /// Requests to the registry without a valid token (answered with the challenge).
    challenged: AtomicUsize,
    client: reqwest::Client,
}

impl TokenFront {
    /// A front to `registry` whose token endpoint takes `user` and `password`.
    pub async fn start(registry: &str, user: &str, password: &str) -> TokenFront {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let shared = Arc::new(FrontState {
            registry: registry.to_owned(),
            basic,
            token: format!("front-token-{}", std::process::id()),
            url: url.clone(),
            tokens_issued: AtomicUsize::new(0),
            challenged: AtomicUsize::new(0),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        });
        let router = axum::Router::new()
            .route("/token", axum::routing::get(issue))
            .fallback(forward)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        TokenFront {
            url,
            shared,
            server,
        }
    }

    /// Tokens issued so far.
    pub fn tokens_issued(&self) -> usize {
        self.shared.tokens_issued.load(Ordering::SeqCst)
    }

    /// Registry requests answered with a challenge so far.
    pub fn challenged(&self) -> usize {
        self.shared.challenged.load(Ordering::SeqCst)
    }
}

impl Drop for TokenFront {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `GET /token?service=…&scope=…`: the token, for the right Basic credentials only.
async fn issue(State(front): State<Arc<FrontState>>, request: Request) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION);
    if authorization.and_then(|value| value.to_str().ok()) != Some(front.basic.as_str()) {
        return status(StatusCode::UNAUTHORIZED);
    }
    front.tokens_issued.fetch_add(1, Ordering::SeqCst);
    let body = serde_json::json!({"token": front.token, "expires_in": 300});
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Any other request: forwarded to the registry with its token, challenged without.
async fn forward(State(front): State<Arc<FrontState>>, request: Request) -> Response {
    let bearer = format!("Bearer {}", front.token);
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == bearer.as_bytes());
    let path = request.uri().path().to_owned();
    if !authorized {
        front.challenged.fetch_add(1, Ordering::SeqCst);
        let name = path
            .trim_start_matches("/v2/")
            .split("/manifests/")
            .next()
            .and_then(|rest| rest.split("/blobs/").next())
            .and_then(|rest| rest.split("/tags/").next())
            .unwrap_or_default();
        let challenge = format!(
            "Bearer realm=\"{}/token\",service=\"front\",scope=\"repository:{name}:pull\"",
            front.url
        );
        let mut refused = status(StatusCode::UNAUTHORIZED);
        refused.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&challenge).unwrap(),
        );
        return refused;
    }
    let target = match request.uri().query() {
        Some(query) => format!("{}{path}?{query}", front.registry),
        None => format!("{}{path}", front.registry),
    };
    let mut upstream = front.client.request(request.method().clone(), target);
    if let Some(accept) = request.headers().get(header::ACCEPT) {
        upstream = upstream.header(header::ACCEPT, accept.clone());
    }
    let answer = upstream.send().await.unwrap();
    let mut response = Response::builder().status(answer.status());
    for name in ["content-type", "docker-content-digest", "link", "location"] {
        if let Some(value) = answer.headers().get(name) {
            response = response.header(name, value.clone());
        }
    }
    response
        .body(Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}

fn status(code: StatusCode) -> Response {
    Response::builder()
        .status(code)
        .body(Body::empty())
        .unwrap()
}
