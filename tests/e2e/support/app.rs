//! `TestApp`: one `granary serve` process, its data directory, its database, and an
//! authenticated HTTP client for the REST API.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngCore;
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// How long a server may take to print its listening line (it runs migrations and compiles
/// plugins first, so give it room on a loaded CI machine).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `wait_task` waits for a task to finish. Generous: it only turns a hung task into a
/// failure. The largest task here, an on-demand sync of boto3's and botocore's ~10,000 files from
/// the public index into SQLite, took over 120 s once while three other tests shared the two
/// cores.
const TASK_TIMEOUT: Duration = Duration::from_secs(300);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const READY_PREFIX: &str = "granary listening on ";

/// Which database the server under test runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A SQLite file in the data directory (the server's default).
    Sqlite,
    /// A fresh database created on the PostgreSQL server at `server_url` for this test only.
    Postgres { server_url: String },
}

impl Backend {
    /// The PostgreSQL backend if `GRANARY_TEST_DATABASE_URL` is set.
    pub fn postgres_from_env() -> Option<Backend> {
        let server_url = std::env::var("GRANARY_TEST_DATABASE_URL").ok()?;
        (!server_url.trim().is_empty()).then_some(Backend::Postgres { server_url })
    }
}

/// What to start the server with, beyond the defaults every test gets.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// Passed as `--plugin-dir`.
    pub plugin_dir: Option<PathBuf>,
    /// Extra environment variables for the server process.
    pub env: Vec<(String, String)>,
    /// A database URL another owner (a [`super::cluster::Cluster`]) created and drops.
    pub database_url: Option<String>,
    /// Passed as `--workers` (default 2).
    pub workers: Option<usize>,
    /// The admin password (default: a random one).
    pub admin_password: Option<String>,
    /// Passed as `--data-dir` instead of the app's own temporary directory: another app's.
    pub data_dir: Option<PathBuf>,
}

impl AppOptions {
    pub fn plugin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.plugin_dir = Some(dir.into());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Runs on a database shared with other processes instead of one of its own.
    pub fn shared_database(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_owned());
        self
    }

    /// Several processes on one database must agree on the admin password.
    pub fn admin_password(mut self, password: &str) -> Self {
        self.admin_password = Some(password.to_owned());
        self
    }

    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// Runs on another app's data directory (shared local storage), which that app owns.
    pub fn shared_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }
}

/// A running Granary server. Dropping it kills the process and drops its PostgreSQL database; if
/// the test is panicking, the server's output is printed first.
pub struct TestApp {
    options: AppOptions,
    data_dir: TempDir,
    database: Database,
    password: String,
    client: reqwest::Client,
    process: Option<Child>,
    base_url: String,
    log: Arc<Mutex<String>>,
}

impl TestApp {
    pub async fn start(backend: Backend) -> TestApp {
        TestApp::start_with(backend, AppOptions::default()).await
    }

    pub async fn start_with(backend: Backend, options: AppOptions) -> TestApp {
        let database = match &options.database_url {
            Some(url) => Database::Shared { url: url.clone() },
            None => Database::create(backend).await,
        };
        let password = options
            .admin_password
            .clone()
            .unwrap_or_else(|| random_hex(16));
        let mut app = TestApp {
            options,
            data_dir: tempfile::tempdir().expect("create the data directory"),
            database,
            password,
            // Generous: it only turns a hung server into a failure. Installing a plugin compiles
            // it during the request, and an 18 MB componentize-py component takes over a minute
            // on a 2-core machine busy with the rest of the suite.
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()
                .expect("build the HTTP client"),
            process: None,
            base_url: String::new(),
            log: Arc::default(),
        };
        app.spawn().await;
        app
    }

    /// Starts the server process on the current data directory and database and waits for its
    /// listening line.
    async fn spawn(&mut self) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_granary"));
        command
            .arg("serve")
            .args(["--bind", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(
                self.options
                    .data_dir
                    .as_deref()
                    .unwrap_or(self.data_dir.path()),
            )
            .args(["--workers", &self.options.workers.unwrap_or(2).to_string()])
            // One compile cache for every server of the run: each would otherwise compile the
            // built-in plugins (and any it installs) again, about a CPU-second per start.
            .env("GRANARY_PLUGIN_CACHE_DIR", shared_plugin_cache())
            .env("GRANARY_ADMIN_PASSWORD", &self.password)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(url) = self.database.url() {
            command.args(["--database-url", url]);
        }
        if let Some(dir) = &self.options.plugin_dir {
            command.arg("--plugin-dir").arg(dir);
        }
        // Upstreams here are on loopback: a proxy the developer's shell names must not carry
        // them. A scenario about proxy variables sets its own.
        let proxy_variables = granary::domain::remotes::PROXY_VARIABLES;
        for variable in proxy_variables.iter().chain(&["NO_PROXY", "no_proxy"]) {
            command.env_remove(variable);
        }
        for (key, value) in &self.options.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn the granary binary");

        let (ready_tx, ready_rx) = oneshot::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        drain_lines(stdout, "stdout", self.log.clone(), Some(ready_tx));
        drain_lines(stderr, "stderr", self.log.clone(), None);
        self.process = Some(child);

        let url = match tokio::time::timeout(STARTUP_TIMEOUT, ready_rx).await {
            Ok(Ok(url)) => url,
            Ok(Err(_)) => panic!("granary exited before it was listening:\n{}", self.logs()),
            Err(_) => panic!(
                "granary did not print {READY_PREFIX:?} within {STARTUP_TIMEOUT:?}:\n{}",
                self.logs()
            ),
        };
        self.base_url = url.trim_end_matches('/').to_owned();
    }

    /// The PostgreSQL URL of its database (`None` on SQLite, whose file is in the data
    /// directory).
    pub fn database_url(&self) -> Option<&str> {
        self.database.url()
    }

    /// `http://127.0.0.1:PORT` followed by `path` (an absolute path such as a `pulp_href`).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_owned();
        }
        format!("{}{path}", self.base_url)
    }

    /// Everything the server printed so far, across restarts.
    pub fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The first line the server printed that `wanted` accepts, waiting for it up to ten seconds:
    /// the server's output is read by another thread, so a line printed before a response was
    /// sent may be read after the client has it. Panics with everything printed when none comes.
    pub async fn log_line(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let logs = self.logs();
            if let Some(line) = logs.lines().find(|line| wanted(line)) {
                return line.to_owned();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no log line for {what}: {logs}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// An unauthenticated request builder, for the tests that check authentication itself.
    pub fn anonymous(&self) -> &reqwest::Client {
        &self.client
    }

    /// The admin's Basic credentials.
    pub fn credentials(&self) -> (&str, &str) {
        ("admin", &self.password)
    }

    /// Runs one SQL statement straight on the server's database (SQLite file or PostgreSQL), as
    /// an older Granary or an operator would have written it; returns the first column of the
    /// rows, as text.
    pub async fn sql(&self, statement: &str, binds: &[&str]) -> Vec<String> {
        use sqlx::{Connection as _, Row as _};
        sqlx::any::install_default_drivers();
        let url = match self.database.url() {
            Some(url) => url.to_owned(),
            None => format!("sqlite://{}", self.data_dir().join("granary.db").display()),
        };
        let mut conn = sqlx::AnyConnection::connect(&url)
            .await
            .unwrap_or_else(|err| panic!("connect to {url}: {err}"));
        let mut query = sqlx::query(statement);
        for bind in binds {
            query = query.bind(*bind);
        }
        let rows = query
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|err| panic!("{statement}: {err}"));
        rows.iter()
            .filter(|row| !sqlx::Row::columns(*row).is_empty())
            .map(|row| row.try_get::<String, _>(0).unwrap_or_default())
            .collect()
    }

    /// The server process's resident memory (`VmRSS` of `/proc/<pid>/status`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.memory_kib("VmRSS")
    }

    /// The server process's peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.memory_kib("VmHWM")
    }

    /// The `field` (`VmRSS`, `VmHWM`) of the server's `/proc/<pid>/status`, in KiB.
    fn memory_kib(&self, field: &str) -> u64 {
        let pid = self.process.as_ref().expect("the server is running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("read the server's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc status"))
    }

    /// The server's data directory (stored artifacts are under `artifacts/ab/cd/<sha256>`).
    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request
            .basic_auth("admin", Some(&self.password))
            .send()
            .await
            .unwrap_or_else(|err| panic!("request failed: {err}\n{}", self.logs()));
        let status = response.status();
        let text = response.text().await.expect("read the response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.client.get(self.url(path))).await
    }

    /// GET `path`, expecting 200 and a JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path} answered {body}");
        body
    }

    /// The name of the worker process that ran `task`, read from the worker its `worker`
    /// names (`workers/<id>/`).
    pub async fn worker_of(&self, task: &Value) -> String {
        let href = task["worker"]
            .as_str()
            .unwrap_or_else(|| panic!("the task names no worker: {task:#}"));
        let worker = self.get_json(href).await;
        worker["name"]
            .as_str()
            .unwrap_or_else(|| panic!("the worker has no name: {worker:#}"))
            .to_owned()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(json_body(self.client.post(self.url(path)), body))
            .await
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(json_body(self.client.patch(self.url(path)), body))
            .await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(json_body(self.client.put(self.url(path)), body))
            .await
    }

    pub async fn delete_json(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.client.delete(self.url(path))).await
    }

    /// POST a `multipart/form-data` body built from `(name, filename, bytes)` parts.
    pub async fn post_multipart(
        &self,
        path: &str,
        parts: &[(&str, Option<&str>, &[u8])],
    ) -> (StatusCode, Value) {
        let boundary = format!("granary-e2e-{}", random_hex(12));
        let mut body = Vec::new();
        for (name, filename, bytes) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match filename {
                Some(filename) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                         Content-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let request = self
            .client
            .post(self.url(path))
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        self.send(request).await
    }

    /// Polls a task every 100 ms until it is `completed`, `failed` or `canceled`, and returns it.
    pub async fn wait_task(&self, task_href: &str) -> Value {
        let deadline = tokio::time::Instant::now() + TASK_TIMEOUT;
        loop {
            let task = self.get_json(task_href).await;
            if is_finished(&task) {
                return task;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {task_href} did not finish within {TASK_TIMEOUT:?}; last seen: {task:#}"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Kills the server with SIGKILL: no shutdown hooks, no flushing, like a power cut.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            child.kill().expect("kill the server");
            child.wait().expect("reap the server");
            self.log
                .lock()
                .unwrap()
                .push_str("---- killed by the test ----\n");
        }
    }

    /// Stops the server as `systemctl stop` does (SIGTERM) and waits until it has exited on its
    /// own; fails the test if it has not within 30 s or exits with an error.
    pub fn stop(&mut self) {
        let Some(mut child) = self.process.take() else {
            return;
        };
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the server") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not stop on SIGTERM:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            status.success(),
            "the server exited with {status}:\n{}",
            self.logs()
        );
        self.log
            .lock()
            .unwrap()
            .push_str("---- stopped by the test ----\n");
    }

    /// Starts the server again after [`TestApp::stop`] or [`TestApp::kill`], on the same data
    /// directory and database. The port changes.
    pub async fn start_again(&mut self) {
        self.spawn().await;
    }

    /// Kills the server if it is still running and starts a new one on the same data directory
    /// and database. The port changes.
    pub async fn restart(&mut self) {
        self.kill();
        self.log
            .lock()
            .unwrap()
            .push_str("---- restarted by the test ----\n");
        self.spawn().await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "==== granary output ====\n{}==== end of granary output ====",
                self.logs()
            );
        }
        self.database.drop_blocking();
    }
}

/// Whether a task reached a final state.
pub fn is_finished(task: &Value) -> bool {
    matches!(
        task["state"].as_str(),
        Some("completed" | "failed" | "canceled")
    )
}

fn json_body(request: reqwest::RequestBuilder, body: &Value) -> reqwest::RequestBuilder {
    request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Copies a pipe into the shared log on a thread of its own so the child never blocks on a full
/// pipe; on stdout, hands the listening URL to `ready` as soon as it appears.
pub(crate) fn drain_lines(
    pipe: impl Read + Send + 'static,
    label: &'static str,
    log: Arc<Mutex<String>>,
    ready: Option<oneshot::Sender<String>>,
) {
    drain_lines_until(pipe, label, log, READY_PREFIX, ready);
}

/// Like [`drain_lines`], handing the rest of the first line that starts with `prefix` to `ready`.
pub(crate) fn drain_lines_until(
    pipe: impl Read + Send + 'static,
    label: &'static str,
    log: Arc<Mutex<String>>,
    prefix: &'static str,
    mut ready: Option<oneshot::Sender<String>>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            log.lock().unwrap().push_str(&format!("[{label}] {text}\n"));
            if let Some(url) = text.strip_prefix(prefix)
                && let Some(ready) = ready.take()
            {
                let _ = ready.send(url.trim().to_owned());
            }
        }
    });
}

/// The database the server runs on. For PostgreSQL, a database created for this test.
pub(crate) enum Database {
    Sqlite,
    /// Owned by someone else, who drops it.
    Shared {
        url: String,
    },
    Postgres {
        server_url: String,
        name: String,
        url: String,
    },
}

impl Database {
    pub(crate) async fn create(backend: Backend) -> Database {
        use sqlx::{Connection, Executor};
        match backend {
            Backend::Sqlite => Database::Sqlite,
            Backend::Postgres { server_url } => {
                let name = format!("granary_t_{}", random_hex(8));
                let mut conn = sqlx::PgConnection::connect(&server_url)
                    .await
                    .unwrap_or_else(|err| panic!("connect to {server_url}: {err}"));
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .unwrap_or_else(|err| panic!("create database {name}: {err}"));
                let _ = conn.close().await;
                let mut url =
                    url::Url::parse(&server_url).expect("GRANARY_TEST_DATABASE_URL is a URL");
                url.set_path(&format!("/{name}"));
                Database::Postgres {
                    server_url,
                    name,
                    url: url.to_string(),
                }
            }
        }
    }

    pub(crate) fn url(&self) -> Option<&str> {
        match self {
            Database::Sqlite => None,
            Database::Shared { url } => Some(url),
            Database::Postgres { url, .. } => Some(url),
        }
    }

    /// Best effort: a leftover database is untidy, not a test failure. Runs on a thread of its
    /// own because `Drop` cannot await and may run inside the test's runtime.
    pub(crate) fn drop_blocking(&self) {
        let Database::Postgres {
            server_url, name, ..
        } = self
        else {
            return;
        };
        let (server_url, name) = (server_url.clone(), name.clone());
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                use sqlx::{Connection, Executor};
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server_url).await {
                    let _ = conn
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// The compiled-plugin cache the servers of a test run share (wasmtime's cache is safe for
/// concurrent processes: entries are written to a temporary file and renamed).
fn shared_plugin_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-plugin-cache")
}
