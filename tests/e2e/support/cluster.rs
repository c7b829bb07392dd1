//! A scaled-out Granary: several `serve` and `worker` processes sharing one PostgreSQL database
//! and one S3-compatible server (moto's server mode from PyPI, installed on first use into
//! `target/test-tools/moto`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;
use tokio::sync::oneshot;

use super::app::{AppOptions, Backend, Database, TestApp, drain_lines_until, random_hex};

/// How long a process may take to become ready.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// What a `granary worker` prints when it is ready (followed by its worker name).
const WORKER_READY: &str = "granary worker ";

/// A real S3-compatible server on loopback with one bucket.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// The bucket Granary stores artifacts in.
    pub bucket: String,
}

impl S3Server {
    pub async fn start() -> S3Server {
        let moto = tokio::task::spawn_blocking(install_moto)
            .await
            .expect("install moto");
        let port = free_port();
        let child = Command::new(moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let bucket = format!("granary-{}", random_hex(4));
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(response) = client.put(format!("{endpoint}/{bucket}")).send().await
                && response.status().is_success()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto_server did not start on {endpoint}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        S3Server {
            child,
            endpoint,
            bucket,
        }
    }

    /// The environment that points Granary at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("GRANARY_S3_BUCKET", self.bucket.as_str()),
            ("GRANARY_S3_ENDPOINT", self.endpoint.as_str()),
            ("GRANARY_S3_ACCESS_KEY_ID", "granary-test"),
            ("GRANARY_S3_SECRET_ACCESS_KEY", "granary-test-secret"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
    }

    /// Every object in the bucket: (key, size). Objects of unfinished multipart uploads are not
    /// objects yet and are not listed.
    pub async fn objects(&self) -> Vec<(String, u64)> {
        let body = reqwest::get(format!(
            "{}/{}?list-type=2&max-keys=1000",
            self.endpoint, self.bucket
        ))
        .await
        .expect("list the bucket")
        .text()
        .await
        .expect("read the listing");
        body.split("<Contents>")
            .skip(1)
            .map(|entry| {
                let key = between(entry, "<Key>", "</Key>").to_owned();
                let size = between(entry, "<Size>", "</Size>")
                    .parse()
                    .expect("object size");
                (key, size)
            })
            .collect()
    }
}

impl S3Server {
    /// Deletes the object `key` from the bucket, behind Granary's back (a signed request, as
    /// any S3 client makes).
    pub async fn delete(&self, key: &str) {
        use object_store::ObjectStore as _;
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(&self.bucket)
            .with_region("us-east-1")
            .with_access_key_id("granary-test")
            .with_secret_access_key("granary-test-secret")
            .build()
            .expect("an S3 client");
        store
            .delete(&object_store::path::Path::from(key))
            .await
            .unwrap_or_else(|error| panic!("deleting {key}: {error}"));
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).map(|i| i + start.len()).unwrap_or(0);
    let to = text[from..]
        .find(end)
        .map(|i| from + i)
        .unwrap_or(text.len());
    &text[from..to]
}

/// Installs moto's server into `target/test-tools/moto` once (a Python virtual environment,
/// packages from PyPI) and returns the path of `moto_server`.
fn install_moto() -> PathBuf {
    super::tools::python_venv("moto", &["moto[server]>=5,<6"]).join("bin/moto_server")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// A `granary worker` process.
pub struct WorkerProcess {
    child: Option<Child>,
    /// Its worker name, as tasks show it in `worker`.
    pub name: String,
    log: Arc<Mutex<String>>,
    _data_dir: TempDir,
}

impl WorkerProcess {
    pub async fn start(database_url: &str, env: &[(String, String)]) -> WorkerProcess {
        let data_dir = tempfile::tempdir().expect("create the worker's data directory");
        let mut command = Command::new(env!("CARGO_BIN_EXE_granary"));
        command
            .arg("worker")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--database-url", database_url, "--workers", "2"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn granary worker");
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = oneshot::channel();
        drain_lines_until(
            child.stdout.take().expect("stdout"),
            "stdout",
            log.clone(),
            WORKER_READY,
            Some(ready_tx),
        );
        drain_lines_until(
            child.stderr.take().expect("stderr"),
            "stderr",
            log.clone(),
            WORKER_READY,
            None,
        );
        let line = match tokio::time::timeout(STARTUP_TIMEOUT, ready_rx).await {
            Ok(Ok(line)) => line,
            _ => panic!(
                "granary worker did not become ready:\n{}",
                log.lock().unwrap()
            ),
        };
        let name = line.trim_end_matches(" ready").to_owned();
        WorkerProcess {
            child: Some(child),
            name,
            log,
            _data_dir: data_dir,
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "==== granary worker {} output ====\n{}==== end ====",
                self.name,
                self.logs()
            );
        }
    }
}

/// `serves` REST/content processes (running no tasks) and `workers` task processes on one
/// PostgreSQL database and one S3 bucket.
pub struct Cluster {
    pub serves: Vec<TestApp>,
    pub workers: Vec<WorkerProcess>,
    pub s3: S3Server,
    database: Database,
    /// The database encryption key every process shares, as an operator deploys it.
    _key_dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start(server_url: &str, serves: usize, workers: usize) -> Cluster {
        Cluster::start_with_env(server_url, serves, workers, &[]).await
    }

    /// A cluster whose every process also gets `extra` in its environment.
    pub async fn start_with_env(
        server_url: &str,
        serves: usize,
        workers: usize,
        extra: &[(&str, &str)],
    ) -> Cluster {
        let database = Database::create(Backend::Postgres {
            server_url: server_url.to_owned(),
        })
        .await;
        let url = database.url().expect("a PostgreSQL URL").to_owned();
        let s3 = S3Server::start().await;
        let mut env = s3.env();
        env.extend(
            extra
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned())),
        );
        // One key file for all processes: they share the secrets stored in the database.
        let key_dir = tempfile::tempdir().expect("a directory for the shared key");
        env.push((
            "GRANARY_DB_ENCRYPTION_KEY".into(),
            key_dir
                .path()
                .join("db_encryption.key")
                .display()
                .to_string(),
        ));
        // One password for all serve processes: they share the users table.
        let password = random_hex(16);
        let mut cluster = Cluster {
            serves: Vec::new(),
            workers: Vec::new(),
            s3,
            database,
            _key_dir: key_dir,
        };
        for _ in 0..serves {
            let mut options = AppOptions::default()
                .shared_database(&url)
                .workers(0)
                .admin_password(&password);
            for (key, value) in &env {
                options = options.env(key, value);
            }
            cluster
                .serves
                .push(TestApp::start_with(Backend::Sqlite, options).await);
        }
        for _ in 0..workers {
            cluster.workers.push(WorkerProcess::start(&url, &env).await);
        }
        cluster
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.workers.clear();
        self.serves.clear();
        self.database.drop_blocking();
    }
}
