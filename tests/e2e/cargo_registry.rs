//! The cargo content type (`plugins/cargo`) end to end with the real cargo, each run with its
//! own `CARGO_HOME`: `cargo login` with a Granary API token, `cargo publish` of two versions of a
//! library, a binary built against it from the registry, `cargo yank` making resolution skip a
//! version (and `--undo`), `cargo search` and `cargo owner`; republishing refused. Then a
//! pull-through distribution used as a source replacement for crates.io, mirroring a second
//! distribution that stands in for the upstream, and still serving once that upstream is gone.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::pulp::{API, str_field};
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(
    cargo_publishes_builds_against_and_yanks_from_a_granary_registry,
    a_pull_through_distribution_replaces_crates_io_for_cargo,
    a_guarded_registry_has_cargo_send_its_token_with_every_request,
);

const CARGO_PLUGIN: &str = env!("GRANARY_PLUGIN_CARGO_WASM");

/// A cargo home and scratch space of one scenario, with cargo told where the registries are.
struct CargoHome {
    dir: tempfile::TempDir,
}

impl CargoHome {
    /// A home whose `config.toml` is `config`.
    fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::write(dir.path().join("home/config.toml"), config).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// cargo with `args` in `project` (or the scratch directory), with nothing of the cargo
    /// running this test leaking in: its own home and target directory, no `CARGO_*`.
    fn cargo(&self, project: Option<&Path>, args: &[&str], stdin: Option<&str>) -> Output {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("CARGO_HOME", self.path().join("home"))
            .env("CARGO_TARGET_DIR", self.path().join("target"))
            .env("CARGO_TERM_COLOR", "never")
            .current_dir(project.unwrap_or(self.path()))
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for variable in ["RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
            if let Ok(value) = std::env::var(variable) {
                command.env(variable, value);
            }
        }
        let mut child = command.spawn().expect("run cargo");
        if let Some(input) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Like [`CargoHome::cargo`], asserting success; answers standard output.
    fn run(&self, project: Option<&Path>, args: &[&str]) -> String {
        let output = self.cargo(project, args, None);
        assert!(
            output.status.success(),
            "cargo {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Writes a library crate `name` at `version` whose `hello()` names its version.
    fn library(&self, name: &str, version: &str) -> PathBuf {
        let dir = self.path().join(format!("{name}-{version}"));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n\
                 description = \"Says hello\"\nlicense = \"MIT\"\npublish = [\"granary\"]\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("src/lib.rs"),
            format!("pub fn hello() -> &'static str {{ \"hello from {version}\" }}\n"),
        )
        .unwrap();
        dir
    }

    /// Writes a binary crate that prints `greeting::hello()`, depending on `greeting` as
    /// `dependency` says.
    fn application(&self, dependency: &str) -> PathBuf {
        let dir = self.path().join("app");
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
                 publish = false\n\n[dependencies]\ngreeting = {dependency}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("src/main.rs"),
            "fn main() { println!(\"{}\", greeting::hello()); }\n",
        )
        .unwrap();
        dir
    }

    /// Resolves `app` afresh and runs it; answers what it printed.
    fn resolve_and_run(&self, app: &Path) -> String {
        let _ = std::fs::remove_file(app.join("Cargo.lock"));
        self.run(Some(app), &["generate-lockfile"]);
        self.run(Some(app), &["run", "--quiet"]).trim().to_owned()
    }
}

/// Installs the cargo plugin, creates a repository and a distribution of it at `base_path`
/// (with the distribution fields of `extra`, an object); answers the repository's href.
async fn cargo_distribution(app: &TestApp, base_path: &str, extra: Value) -> String {
    if app.get(&format!("{API}/plugins/cargo/")).await.0 != StatusCode::OK {
        let component = std::fs::read(CARGO_PLUGIN).expect("the cargo plugin is built");
        let (status, plugin) = app.install_plugin(&component).await;
        assert_eq!(status, StatusCode::CREATED, "{plugin:#}");
    }
    app.repository_and_distribution("cargo/cargo", base_path, extra)
        .await
}

/// A new API token of the admin.
async fn admin_token(app: &TestApp) -> String {
    let admin = app.get_json(&format!("{API}/users/?username=admin")).await;
    let admin = str_field(&admin["results"][0], "pulp_href").to_owned();
    let token = app
        .create(&format!("{admin}tokens/"), json!({"name": "cargo"}))
        .await;
    str_field(&token, "token").to_owned()
}

/// The `[registries]` entry naming the distribution at `base_path` `granary`.
fn registry_config(app: &TestApp, base_path: &str) -> String {
    format!(
        "[registries.granary]\nindex = \"sparse+{}\"\n\n[registry]\nglobal-credential-providers = [\"cargo:token\"]\n",
        app.url(&format!("/cargo/{base_path}/"))
    )
}

/// The crates the latest version of `repository` holds, as `name version` lines.
async fn crates_in(app: &TestApp, repository: &str) -> Vec<String> {
    let version = app.latest_version_href(repository).await;
    let crates = app
        .list_all(&format!(
            "{API}/content/cargo/crates/?repository_version={version}"
        ))
        .await;
    let mut names: Vec<String> = crates
        .iter()
        .map(|unit| format!("{} {}", str_field(unit, "name"), str_field(unit, "version")))
        .collect();
    names.sort();
    names
}

/// Publishes the two versions of `greeting` with cargo, logged in with a Granary API token.
async fn publish_two_versions(app: &TestApp, home: &CargoHome) {
    let token = admin_token(app).await;
    let login = home.cargo(
        None,
        &["login", "--registry", "granary"],
        Some(&format!("{token}\n")),
    );
    assert!(
        login.status.success(),
        "cargo login: {}",
        String::from_utf8_lossy(&login.stderr)
    );
    for version in ["0.1.0", "0.2.0"] {
        let library = home.library("greeting", version);
        home.run(
            Some(&library),
            &[
                "publish",
                "--registry",
                "granary",
                "--no-verify",
                "--allow-dirty",
            ],
        );
    }
}

async fn cargo_publishes_builds_against_and_yanks_from_a_granary_registry(backend: Backend) {
    let app = TestApp::start(backend).await;
    let repository = cargo_distribution(&app, "crates", json!({})).await;
    let home = CargoHome::new(&registry_config(&app, "crates"));
    publish_two_versions(&app, &home).await;
    assert_eq!(
        crates_in(&app, &repository).await,
        ["greeting 0.1.0", "greeting 0.2.0"]
    );

    // The index file, as cargo reads it: a line per version, with an ETag that a revalidation
    // sends back to get 304 while nothing changed.
    let index = reqwest::get(app.url("/cargo/crates/gr/ee/greeting"))
        .await
        .unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    let etag = index.headers()["etag"].to_str().unwrap().to_owned();
    let lines: Vec<Value> = index
        .text()
        .await
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["vers"], "0.2.0");
    assert_eq!(lines[1]["yanked"], false);
    assert_eq!(lines[1]["cksum"].as_str().map(str::len), Some(64));
    let revalidated = reqwest::Client::new()
        .get(app.url("/cargo/crates/gr/ee/greeting"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);

    // A binary resolves the newest version from the registry, and builds against it.
    let app_dir = home.application("{ version = \">=0.1\", registry = \"granary\" }");
    assert_eq!(home.resolve_and_run(&app_dir), "hello from 0.2.0");

    // Yanked, 0.2.0 is skipped by a new resolution; unyanked, it is chosen again.
    let yank = |extra: &[&str]| {
        let mut args = vec!["yank", "--registry", "granary", "--version", "0.2.0"];
        args.extend_from_slice(extra);
        args.push("greeting");
        home.run(None, &args);
    };
    yank(&[]);
    assert_eq!(home.resolve_and_run(&app_dir), "hello from 0.1.0");
    yank(&["--undo"]);
    assert_eq!(home.resolve_and_run(&app_dir), "hello from 0.2.0");

    // Search and owners, as cargo shows them.
    let found = home.run(None, &["search", "--registry", "granary", "greet"]);
    assert!(found.contains("greeting = \"0.2.0\""), "{found}");
    assert!(found.contains("Says hello"), "{found}");
    let owners = home.run(
        None,
        &["owner", "--registry", "granary", "--list", "greeting"],
    );
    assert_eq!(owners.trim(), "admin");

    // Republishing a version is refused: by cargo, which reads the index first, and by Granary
    // when a client sends it anyway.
    let again = home.cargo(
        Some(&home.path().join("greeting-0.1.0")),
        &[
            "publish",
            "--registry",
            "granary",
            "--no-verify",
            "--allow-dirty",
        ],
        None,
    );
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let token = admin_token(&app).await;
    let republish = publish_request(&app, "crates", Some(&token)).await;
    assert_eq!(republish.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        republish.1["errors"][0]["detail"],
        "crate version `0.1.0` is already uploaded"
    );

    // Writes need credentials, and a role that may modify the repository.
    let anonymous = publish_request(&app, "crates", None).await;
    assert_eq!(anonymous.0, StatusCode::UNAUTHORIZED);
    app.create_user("carol", "carol-password-1").await;
    let carol = reqwest::Client::new()
        .put(app.url("/cargo/crates/api/v1/crates/new"))
        .basic_auth("carol", Some("carol-password-1"))
        .body(publish_frame("greeting", "9.0.0"))
        .send()
        .await
        .unwrap();
    assert_eq!(carol.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        crates_in(&app, &repository).await,
        ["greeting 0.1.0", "greeting 0.2.0"],
        "nothing was added by the refused publishes"
    );
}

/// Cargo's publish frame of version `version` of `name`, with a small gzip stream as the crate.
fn publish_frame(name: &str, version: &str) -> Vec<u8> {
    let metadata = json!({"name": name, "vers": version, "deps": [], "features": {}}).to_string();
    let file: &[u8] =
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    let mut body = (metadata.len() as u32).to_le_bytes().to_vec();
    body.extend_from_slice(metadata.as_bytes());
    body.extend_from_slice(&(file.len() as u32).to_le_bytes());
    body.extend_from_slice(file);
    body
}

/// `PUT api/v1/crates/new` of `greeting` 0.1.0 at `base_path`, with cargo's raw token header.
async fn publish_request(
    app: &TestApp,
    base_path: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .put(app.url(&format!("/cargo/{base_path}/api/v1/crates/new")))
        .body(publish_frame("greeting", "0.1.0"));
    if let Some(token) = token {
        request = request.header("authorization", token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn a_pull_through_distribution_replaces_crates_io_for_cargo(backend: Backend) {
    let app = TestApp::start(backend).await;
    // The upstream: a registry of its own, published to with cargo.
    cargo_distribution(&app, "upstream", json!({})).await;
    let publisher = CargoHome::new(&registry_config(&app, "upstream"));
    publish_two_versions(&app, &publisher).await;

    let remote = app
        .create(
            &format!("{API}/remotes/cargo/cargo/"),
            json!({"name": "upstream", "url": app.url("/cargo/upstream/"), "policy": "on_demand"}),
        )
        .await;
    let mirror = cargo_distribution(&app, "mirror", json!({"remote": remote["pulp_href"]})).await;
    let replacement = format!(
        "[source.crates-io]\nreplace-with = \"granary-mirror\"\n\n[source.granary-mirror]\nregistry = \"sparse+{}\"\n",
        app.url("/cargo/mirror/")
    );

    // A workspace depending on `greeting` from crates.io builds through the mirror, which keeps
    // the one version it served.
    let consumer = CargoHome::new(&replacement);
    let project = consumer.application("\"0.1\"");
    assert_eq!(consumer.resolve_and_run(&project), "hello from 0.1.0");
    assert_eq!(crates_in(&app, &mirror).await, ["greeting 0.1.0"]);

    // With the upstream gone, a fresh cargo still resolves and builds from what the mirror kept.
    let upstream = app
        .get_json(&format!(
            "{API}/distributions/cargo/cargo/?base_path=upstream"
        ))
        .await;
    let deleted = app
        .delete_href(str_field(&upstream["results"][0], "pulp_href"))
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{}", deleted.body);
    app.wait_task(str_field(&deleted.body, "task")).await;
    let offline = CargoHome::new(&replacement);
    let project = offline.application("\"0.1\"");
    assert_eq!(offline.resolve_and_run(&project), "hello from 0.1.0");
}

async fn a_guarded_registry_has_cargo_send_its_token_with_every_request(backend: Backend) {
    let app = TestApp::start(backend).await;
    let guard = app
        .create(
            &format!("{API}/contentguards/core/rbac/"),
            json!({"name": "private"}),
        )
        .await;
    cargo_distribution(
        &app,
        "private",
        json!({"content_guard": guard["pulp_href"]}),
    )
    .await;
    let config = reqwest::get(app.url("/cargo/private/config.json"))
        .await
        .unwrap();
    assert_eq!(config.status(), StatusCode::UNAUTHORIZED);

    // Refused its first read, cargo sends the token it was given, learns that the registry
    // requires it (`auth-required`) and sends it with every request after.
    let home = CargoHome::new(&registry_config(&app, "private"));
    publish_two_versions(&app, &home).await;
    let project = home.application("{ version = \"0.1\", registry = \"granary\" }");
    assert_eq!(home.resolve_and_run(&project), "hello from 0.1.0");

    // A cargo without a token cannot resolve from it.
    let stranger = CargoHome::new(&registry_config(&app, "private"));
    let project = stranger.application("{ version = \"0.1\", registry = \"granary\" }");
    let refused = stranger.cargo(Some(&project), &["generate-lockfile"], None);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("cargo login"), "{stderr}");
}
