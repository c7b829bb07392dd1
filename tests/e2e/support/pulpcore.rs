//! A real Pulp: pulpcore 3.123 with pulp_file and pulp_python, from PyPI (installed under
//! `target/test-tools/pulpcore` when missing), its API, content app and one worker on loopback,
//! over a database of its own on the tests' PostgreSQL server. What Granary must interoperate
//! with (replication) is tested against it instead of against a second Granary alone.
//!
//! Pulp's migrations take half a minute, so they run once into a template database named after
//! the pinned versions (built under another name and renamed when complete, so an interrupted
//! build is never used); each server copies the template (`CREATE DATABASE … TEMPLATE`).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::app::random_hex;
use super::cluster::free_port;
use super::tools::python_venv;

/// What is installed: the pulpcore release the compatibility issue (#21) names, and the
/// pulp_python release with repository blocklists.
const REQUIREMENTS: [&str; 2] = ["pulpcore==3.123.1", "pulp-python==3.36.4"];
/// The template database of those versions' migrated schema.
const TEMPLATE: &str = "granary_pulp_template_3_123_1";
/// The password of Pulp's `admin` in every copy of the template.
pub const ADMIN_PASSWORD: &str = "pulp-admin-password";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Pulp's symmetric key for its encrypted database fields (`DB_ENCRYPTION_KEY`): a fixed test
/// key, so every copy of the template reads what the template holds.
const DB_KEY: &str = "hFhxlNQJsgNBhaOHJ1d0ZgJm1ZtPpVI6NvVk04xXvYE=";

/// A running Pulp. Dropping it stops its processes and drops its database.
pub struct Pulpcore {
    processes: Vec<Child>,
    /// `http://127.0.0.1:PORT`, where the REST API (`/pulp/api/v3/`) and the python index
    /// (`/pypi/`) answer.
    pub api_origin: String,
    /// `http://127.0.0.1:PORT`, the content app's origin (where files are served).
    pub content_origin: String,
    server_url: String,
    database: String,
    dir: TempDir,
}

impl Pulpcore {
    /// Starts a Pulp on a copy of the template database; `None` (the caller skips, saying so)
    /// without `GRANARY_TEST_DATABASE_URL`, since Pulp runs on PostgreSQL only.
    pub async fn start() -> Option<Pulpcore> {
        let server_url = std::env::var("GRANARY_TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())?;
        let venv = tokio::task::spawn_blocking(|| python_venv("pulpcore", &REQUIREMENTS))
            .await
            .unwrap();
        let dir = tempfile::tempdir().expect("create Pulp's directory");
        ensure_template(&venv, &server_url, &dir).await;
        let database = format!("granary_pulp_{}", random_hex(6));
        execute(
            &server_url,
            &format!("CREATE DATABASE {database} TEMPLATE {TEMPLATE}"),
        )
        .await;
        let (api_port, content_port) = (free_port(), free_port());
        let api_origin = format!("http://127.0.0.1:{api_port}");
        let content_origin = format!("http://127.0.0.1:{content_port}");
        let settings = write_settings(&dir, &server_url, &database, &api_origin, &content_origin);
        let spawn = |program: &str, args: &[&str], log: &str| {
            let log = std::fs::File::create(dir.path().join(log)).unwrap();
            Command::new(venv.join("bin").join(program))
                .args(args)
                .env("PULP_SETTINGS", &settings)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                // Its own process group: gunicorn's workers go with their master.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|err| panic!("start {program}: {err}"))
        };
        let api_bind = format!("127.0.0.1:{api_port}");
        let content_bind = format!("127.0.0.1:{content_port}");
        let processes = vec![
            spawn(
                "pulpcore-api",
                &["--bind", &api_bind, "--workers", "1"],
                "api.log",
            ),
            spawn(
                "pulpcore-content",
                &["--bind", &content_bind, "--workers", "1"],
                "content.log",
            ),
            spawn("pulpcore-worker", &[], "worker.log"),
        ];
        let pulp = Pulpcore {
            processes,
            api_origin,
            content_origin,
            server_url,
            database,
            dir,
        };
        pulp.wait_ready().await;
        Some(pulp)
    }

    /// Until the status names an online worker and content app.
    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
        let status = format!("{}/pulp/api/v3/status/", self.api_origin);
        loop {
            if let Ok(response) = reqwest::get(&status).await
                && let Ok(body) = response.bytes().await
                && let Ok(status) = serde_json::from_slice::<serde_json::Value>(&body)
                && status["online_workers"]
                    .as_array()
                    .is_some_and(|workers| !workers.is_empty())
                && status["online_content_apps"]
                    .as_array()
                    .is_some_and(|apps| !apps.is_empty())
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Pulp did not start at {}:\n{}",
                self.api_origin,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The logs of Pulp's processes, for a failure's message.
    pub fn logs(&self) -> String {
        ["api.log", "content.log", "worker.log"]
            .iter()
            .map(|log| {
                let text = std::fs::read_to_string(self.dir.path().join(log)).unwrap_or_default();
                format!("--- {log}\n{text}")
            })
            .collect()
    }
}

impl Drop for Pulpcore {
    fn drop(&mut self) {
        // The whole group of each (gunicorn's workers go with their master).
        for process in &mut self.processes {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", process.id())])
                .status();
            let _ = process.wait();
        }
        let (server_url, database) = (self.server_url.clone(), self.database.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(execute_quietly(
                    &server_url,
                    &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
                ));
            }
        })
        .join();
    }
}

/// Pulp's settings (a `PULP_SETTINGS` file) for a server on `database`.
fn write_settings(
    dir: &TempDir,
    server_url: &str,
    database: &str,
    api_origin: &str,
    content_origin: &str,
) -> PathBuf {
    let server = url::Url::parse(server_url).expect("GRANARY_TEST_DATABASE_URL is a URL");
    let root = dir.path();
    for sub in ["media", "work", "upload"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::write(root.join("db.key"), DB_KEY).unwrap();
    let settings = root.join("settings.py");
    let quoted = |path: PathBuf| format!("{:?}", path.display().to_string());
    std::fs::write(
        &settings,
        format!(
            "SECRET_KEY = {secret:?}\n\
             DATABASES = {{'default': {{'ENGINE': 'django.db.backends.postgresql', 'NAME': {database:?}, \
             'USER': {user:?}, 'PASSWORD': {password:?}, 'HOST': {host:?}, 'PORT': {port}}}}}\n\
             MEDIA_ROOT = {media}\n\
             WORKING_DIRECTORY = {work}\n\
             FILE_UPLOAD_TEMP_DIR = {upload}\n\
             DB_ENCRYPTION_KEY = {key}\n\
             CONTENT_ORIGIN = {content_origin:?}\n\
             PYPI_API_HOSTNAME = {api_origin:?}\n\
             ANALYTICS = False\n",
            secret = random_hex(32),
            user = server.username(),
            password = server.password().unwrap_or(""),
            host = server.host_str().unwrap_or("127.0.0.1"),
            port = server.port().unwrap_or(5432),
            media = quoted(root.join("media")),
            work = quoted(root.join("work")),
            upload = quoted(root.join("upload")),
            key = quoted(root.join("db.key")),
        ),
    )
    .unwrap();
    settings
}

/// Builds the template database once: migrates a new database with `pulpcore-manager`, sets
/// the admin's password, then renames it to [`TEMPLATE`].
async fn ensure_template(venv: &std::path::Path, server_url: &str, dir: &TempDir) {
    static BUILD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = BUILD.lock().await;
    let exists = format!("SELECT datname FROM pg_database WHERE datname = '{TEMPLATE}'");
    if !query(server_url, &exists).await.is_empty() {
        return;
    }
    let building = format!("granary_pulp_build_{}", random_hex(6));
    execute(server_url, &format!("CREATE DATABASE {building}")).await;
    let settings = write_settings(
        dir,
        server_url,
        &building,
        "http://127.0.0.1",
        "http://127.0.0.1",
    );
    for args in [
        &["migrate", "--noinput"][..],
        &["reset-admin-password", "--password", ADMIN_PASSWORD],
    ] {
        let manager = venv.join("bin/pulpcore-manager");
        let settings = settings.clone();
        let output = tokio::task::spawn_blocking(move || {
            Command::new(manager)
                .args(args)
                .env("PULP_SETTINGS", settings)
                .output()
                .expect("run pulpcore-manager")
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "pulpcore-manager {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Another test process may have finished first: its template is as good.
    execute_quietly(
        server_url,
        &format!("ALTER DATABASE {building} RENAME TO {TEMPLATE}"),
    )
    .await;
    execute_quietly(
        server_url,
        &format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
    )
    .await;
}

async fn execute(server_url: &str, statement: &str) {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(server_url)
        .await
        .unwrap_or_else(|err| panic!("connect to {server_url}: {err}"));
    conn.execute(statement)
        .await
        .unwrap_or_else(|err| panic!("{statement}: {err}"));
    let _ = conn.close().await;
}

/// Best effort: cleaning up is untidy when it fails, not a test failure.
async fn execute_quietly(server_url: &str, statement: &str) {
    use sqlx::{Connection, Executor};
    if let Ok(mut conn) = sqlx::PgConnection::connect(server_url).await {
        let _ = conn.execute(statement).await;
        let _ = conn.close().await;
    }
}

async fn query(server_url: &str, statement: &str) -> Vec<String> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(server_url)
        .await
        .unwrap_or_else(|err| panic!("connect to {server_url}: {err}"));
    let rows = sqlx::query(statement)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|err| panic!("{statement}: {err}"));
    let _ = conn.close().await;
    rows.iter().map(|row| row.get::<String, _>(0)).collect()
}
