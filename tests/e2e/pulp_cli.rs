//! Issue #3, acceptance 1: `pulp-cli` from PyPI, unchanged, drives Granary's file plugin through
//! the OpenAPI document Granary serves: repositories, remotes, sync, a chunked upload, a
//! publication and a distribution, then the uploaded file is downloaded from the content app.

use std::path::{Path, PathBuf};

use rand::{RngCore, SeedableRng, rngs::StdRng};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::support::pulp::str_field;
use crate::support::{Backend, Fixture, TestApp, Upstream, tools};

/// `pulp` pointed at one server, with a configuration, an API-document cache and a home of its
/// own so nothing from the machine's user leaks in.
pub(crate) struct PulpCli {
    program: PathBuf,
    base_url: String,
    username: String,
    password: String,
    home: TempDir,
}

impl PulpCli {
    pub(crate) fn new(app: &TestApp) -> PulpCli {
        let (username, password) = app.credentials();
        PulpCli {
            program: tools::pulp_cli(),
            base_url: app.url(""),
            username: username.to_owned(),
            password: password.to_owned(),
            home: tempfile::tempdir().expect("create pulp-cli's home"),
        }
    }

    /// `pulp` pointed at a server that is not Granary (a real Pulp), as `username`.
    pub(crate) fn for_server(base_url: &str, username: &str, password: &str) -> PulpCli {
        PulpCli {
            program: tools::pulp_cli(),
            base_url: base_url.to_owned(),
            username: username.to_owned(),
            password: password.to_owned(),
            home: tempfile::tempdir().expect("create pulp-cli's home"),
        }
    }

    /// `pulp` logging in to `app` as another user.
    pub(crate) fn as_user(app: &TestApp, username: &str, password: &str) -> PulpCli {
        PulpCli {
            username: username.to_owned(),
            password: password.to_owned(),
            ..PulpCli::new(app)
        }
    }

    /// Runs `pulp <args>`, which must fail (a non-zero exit); returns what it printed to stderr.
    pub(crate) async fn fails(&self, args: &[&str]) -> String {
        let output = self.output(args).await;
        assert!(
            !output.status.success(),
            "pulp {args:?} succeeded: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// Runs `pulp <args>` and returns its JSON output (`null` when it prints nothing). Fails the
    /// test on a non-zero exit or on an error printed to stderr.
    pub(crate) async fn run(&self, args: &[&str]) -> Value {
        let stdout = self.text(args).await;
        if stdout.is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&stdout)
            .unwrap_or_else(|err| panic!("pulp {args:?} printed no JSON ({err}):\n{stdout}"))
    }

    /// Runs `pulp <args>` and returns what it printed, trimmed (`label show` prints the value
    /// alone). Fails the test on a non-zero exit or on an error printed to stderr.
    pub(crate) async fn text(&self, args: &[&str]) -> String {
        let output = self.output(args).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "pulp {args:?} exited with {}\nstdout: {stdout}\nstderr: {stderr}",
            output.status
        );
        let lowered = stderr.to_lowercase();
        assert!(
            !lowered.contains("error") && !lowered.contains("traceback"),
            "pulp {args:?} printed an error:\n{stderr}"
        );
        stdout.trim().to_owned()
    }

    async fn output(&self, args: &[&str]) -> std::process::Output {
        let home = self.home.path();
        tokio::process::Command::new(&self.program)
            .args(["--base-url", &self.base_url])
            .args(["--username", &self.username])
            .args(["--password", &self.password])
            .args(["--format", "json"])
            .args(args)
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .output()
            .await
            .expect("run pulp-cli")
    }
}

/// A file of `size` pseudo-random bytes in `dir`; returns its path and sha256.
fn random_file(dir: &Path, name: &str, size: usize) -> (PathBuf, String) {
    let mut bytes = vec![0u8; size];
    StdRng::seed_from_u64(3).fill_bytes(&mut bytes);
    let path = dir.join(name);
    std::fs::write(&path, &bytes).expect("write the upload");
    (path, hex::encode(Sha256::digest(&bytes)))
}

async fn pulp_cli_drives_the_file_plugin(backend: Backend) {
    let app = TestApp::start(backend).await;
    let fixture = Fixture::generate(6, 31);
    let upstream = Upstream::serve(&fixture).await;
    let pulp = PulpCli::new(&app);

    // Repositories: create, list, show, update.
    let repository = pulp
        .run(&["file", "repository", "create", "--name", "cli-repo"])
        .await;
    assert_eq!(repository["name"], "cli-repo");
    let repository_href = str_field(&repository, "pulp_href").to_owned();
    let listed = pulp.run(&["file", "repository", "list"]).await;
    let names: Vec<&Value> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| &r["name"])
        .collect();
    assert_eq!(names, ["cli-repo"]);
    let shown = pulp
        .run(&["file", "repository", "show", "--name", "cli-repo"])
        .await;
    assert_eq!(shown["pulp_href"], repository_href.as_str());
    pulp.run(&[
        "file",
        "repository",
        "update",
        "--name",
        "cli-repo",
        "--description",
        "driven by pulp-cli",
    ])
    .await;
    let shown = pulp
        .run(&["file", "repository", "show", "--href", &repository_href])
        .await;
    assert_eq!(shown["description"], "driven by pulp-cli");

    // A remote, and a sync from it.
    let remote = pulp
        .run(&[
            "file",
            "remote",
            "create",
            "--name",
            "cli-remote",
            "--url",
            &upstream.manifest_url(),
        ])
        .await;
    assert_eq!(remote["url"], upstream.manifest_url().as_str());
    pulp.run(&[
        "file",
        "repository",
        "sync",
        "--name",
        "cli-repo",
        "--remote",
        "cli-remote",
    ])
    .await;
    let synced = pulp
        .run(&["file", "repository", "show", "--name", "cli-repo"])
        .await;
    assert!(
        str_field(&synced, "latest_version_href").ends_with("/versions/1/"),
        "{synced:#}"
    );

    // A chunked upload: ten 100 kB chunks and a remainder, added to the repository.
    let scratch = tempfile::tempdir().expect("scratch directory");
    let (big, sha256) = random_file(scratch.path(), "big.bin", 1_000_000 + 4_321);
    let uploaded = pulp
        .run(&[
            "file",
            "content",
            "upload",
            "--relative-path",
            "uploads/big.bin",
            "--file",
            big.to_str().expect("utf-8 path"),
            "--chunk-size",
            "100000",
            "--repository",
            "cli-repo",
        ])
        .await;
    assert!(uploaded.is_object(), "{uploaded:#}");
    let content = pulp
        .run(&["file", "content", "list", "--sha256", &sha256])
        .await;
    assert_eq!(
        content[0]["relative_path"], "uploads/big.bin",
        "{content:#}"
    );
    // A path that climbs out is refused on its field before any task, and the repository keeps
    // its version.
    let (small, _) = random_file(scratch.path(), "small.bin", 1_000);
    let error = pulp
        .fails(&[
            "file",
            "content",
            "upload",
            "--relative-path",
            "../escape.bin",
            "--file",
            small.to_str().expect("utf-8 path"),
            "--repository",
            "cli-repo",
        ])
        .await;
    assert!(
        error.contains(r#""relative_path":["relative path \"../escape.bin\" must not contain"#),
        "{error}"
    );
    assert!(!error.contains("Started background task"), "{error}");
    let kept = pulp
        .run(&["file", "repository", "show", "--name", "cli-repo"])
        .await;
    assert!(
        str_field(&kept, "latest_version_href").ends_with("/versions/2/"),
        "{kept:#}"
    );

    // Publish, distribute, download.
    let publication = pulp
        .run(&["file", "publication", "create", "--repository", "cli-repo"])
        .await;
    let publication_href = str_field(&publication, "pulp_href").to_owned();
    let distribution = pulp
        .run(&[
            "file",
            "distribution",
            "create",
            "--name",
            "cli-dist",
            "--base-path",
            "cli/dist",
            "--publication",
            &publication_href,
        ])
        .await;
    let base_url = str_field(&distribution, "base_url").to_owned();
    let served = app
        .anonymous()
        .get(format!("{base_url}uploads/big.bin"))
        .send()
        .await
        .expect("download the upload");
    assert_eq!(served.status(), reqwest::StatusCode::OK);
    let bytes = served.bytes().await.expect("read the download");
    assert_eq!(hex::encode(Sha256::digest(&bytes)), sha256);
    let synced_file = &fixture.files[1];
    let served = app
        .anonymous()
        .get(format!("{base_url}{}", synced_file.relative_path))
        .send()
        .await
        .expect("download a synced file");
    assert_eq!(served.status(), reqwest::StatusCode::OK);
    assert_eq!(served.bytes().await.expect("read"), synced_file.bytes);

    // Tasks and status.
    let tasks = pulp.run(&["task", "list"]).await;
    let tasks = tasks.as_array().expect("a list of tasks");
    assert!(
        tasks.iter().any(|task| task["state"] == "completed"),
        "{tasks:#?}"
    );
    let status = pulp.run(&["status"]).await;
    assert_eq!(
        status["database_connection"]["connected"], true,
        "{status:#}"
    );

    // Destroy.
    pulp.run(&["file", "repository", "destroy", "--name", "cli-repo"])
        .await;
    let listed = pulp.run(&["file", "repository", "list"]).await;
    assert_eq!(listed, serde_json::json!([]));
}

sqlite_and_postgres!(pulp_cli_drives_the_file_plugin);
