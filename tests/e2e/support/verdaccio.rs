//! Verdaccio (the npm package `verdaccio`, installed under `target/test-tools` when missing), the
//! npm registry teams host themselves, on loopback: the upstream of the npm content type's
//! pull-through and sync tests. Its storage is a temporary directory the tests may tamper with.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use tempfile::TempDir;

use super::cluster::free_port;
use super::tools::node_tools;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A Verdaccio process without uplinks, where anyone may read and any registered user publish.
pub struct Verdaccio {
    child: Child,
    /// `http://127.0.0.1:PORT/`
    pub url: String,
    storage: TempDir,
}

impl Verdaccio {
    pub async fn start() -> Verdaccio {
        let tools = tokio::task::spawn_blocking(|| node_tools("verdaccio", &["verdaccio@6"]))
            .await
            .unwrap();
        let storage = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = storage.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "storage: {}\nauth:\n  htpasswd:\n    file: {}\nuplinks: {{}}\npackages:\n  '**':\n    access: $all\n    publish: $authenticated\n    unpublish: $authenticated\nlog: {{ type: stdout, format: pretty, level: error }}\n",
                storage.path().join("packages").display(),
                storage.path().join("htpasswd").display()
            ),
        )
        .unwrap();
        let child = Command::new(tools.join("verdaccio"))
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start verdaccio");
        let url = format!("http://127.0.0.1:{port}/");
        let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
        while reqwest::get(format!("{url}-/ping")).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "verdaccio did not start on {url}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Verdaccio {
            child,
            url,
            storage,
        }
    }

    /// Registers `user` (Verdaccio's `npm adduser`) and answers the token npm publishes with.
    pub async fn token_for(&self, user: &str) -> String {
        let document = json!({"name": user, "password": format!("{user}-password-1")});
        let answer = reqwest::Client::new()
            .put(format!("{}-/user/org.couchdb.user:{user}", self.url))
            .header("content-type", "application/json")
            .body(document.to_string())
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .text()
            .await
            .unwrap();
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        answer["token"].as_str().expect("a token").to_owned()
    }

    /// The file Verdaccio keeps a published tarball in (`<name>/<file>`).
    pub fn stored_tarball(&self, name: &str, file: &str) -> PathBuf {
        self.storage.path().join("packages").join(name).join(file)
    }

    /// Stops the process: the upstream is away.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Verdaccio {
    fn drop(&mut self) {
        self.stop();
    }
}
