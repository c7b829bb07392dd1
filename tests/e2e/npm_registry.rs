//! The npm content type (`plugins/npm`) end to end with the real npm (the machine's), each run
//! with its own home, cache and `.npmrc`: `npm publish` of two versions of a scoped package (the
//! second with an 8 MiB file, its base64 tarball decoded as the document streams in),
//! `npm view`, `npm dist-tag add|ls|rm`, `npm install` and `npm ci` in fresh projects with
//! lockfiles resolved at Granary, `pnpm install` and `yarn install` (classic and berry), `npm deprecate`,
//! `npm unpublish` of one version and of the package, `npm whoami`, `npm ping`, `npm search`;
//! republishing, anonymous publishes and publishes by a user without a role refused. And a
//! 100 MiB publish document streamed in without the server's memory growing by its size.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::pulp::{API, created_resources, str_field};
use crate::support::tools::{debian_tool, node_tools};
use crate::support::{AppOptions, Backend, TestApp};

sqlite_and_postgres!(
    npm_publishes_installs_tags_deprecates_and_unpublishes,
    a_100_mib_publish_streams_into_storage,
);

const NPM_PLUGIN: &str = env!("GRANARY_PLUGIN_NPM_WASM");

/// A server with the npm plugin installed.
pub(crate) async fn with_npm(backend: Backend) -> TestApp {
    with_npm_and(backend, AppOptions::default()).await
}

/// A server started with `options`, with the npm plugin installed.
pub(crate) async fn with_npm_and(backend: Backend, options: AppOptions) -> TestApp {
    let app = TestApp::start_with(backend, options).await;
    let component = std::fs::read(NPM_PLUGIN).expect("the npm plugin is built");
    let (status, plugin) = app.install_plugin(&component).await;
    assert_eq!(status, StatusCode::CREATED, "{plugin:#}");
    app
}

const PACKAGE: &str = "@acme/greeting";

/// A home for npm: its `.npmrc` pointing at one registry, with a token when given.
pub(crate) struct NpmHome {
    dir: tempfile::TempDir,
}

impl NpmHome {
    pub(crate) fn new(registry: &str, token: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut npmrc = format!("registry={registry}\n");
        if let Some(token) = token {
            let without_scheme = registry.trim_start_matches("http:");
            npmrc.push_str(&format!("{without_scheme}:_authToken={token}\n"));
        }
        std::fs::write(dir.path().join(".npmrc"), npmrc).unwrap();
        Self { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// npm with `args` in `cwd`, with this home, its own cache and nothing of the developer's.
    pub(crate) fn npm(&self, cwd: &Path, args: &[&str]) -> Output {
        self.command(cwd, args).output().expect("run npm")
    }

    /// The npm command line of [`NpmHome::npm`], to run as the caller likes.
    pub(crate) fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(debian_tool("npm", "npm"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("npm_config_userconfig", self.path().join(".npmrc"))
            .env("npm_config_cache", self.path().join("cache"))
            .env("npm_config_update_notifier", "false")
            .env("npm_config_fund", "false")
            .env("npm_config_audit", "false")
            .current_dir(cwd)
            .args(args);
        command
    }

    /// Like [`NpmHome::npm`], asserting success; answers standard output.
    pub(crate) fn run(&self, cwd: &Path, args: &[&str]) -> String {
        let output = self.npm(cwd, args);
        assert!(
            output.status.success(),
            "npm {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `npm view <package> --json`, parsed.
    pub(crate) fn view(&self, package: &str) -> Value {
        serde_json::from_str(&self.run(self.path(), &["view", package, "--json"])).unwrap()
    }

    /// Writes the package at `version`, whose function names its version, with `extra` bytes in
    /// a data file.
    fn package(&self, version: &str, extra: &[u8]) -> PathBuf {
        let dir = self.path().join(format!("greeting-{version}"));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = json!({"name": PACKAGE, "version": version, "main": "index.js",
                              "description": "Says hello", "license": "MIT"});
        std::fs::write(dir.join("package.json"), manifest.to_string()).unwrap();
        std::fs::write(
            dir.join("index.js"),
            format!("module.exports = () => \"hello from {version}\";\n"),
        )
        .unwrap();
        std::fs::write(dir.join("data.bin"), extra).unwrap();
        dir
    }

    /// Writes package `name` at `version` with `dependencies`, whose module says its name and
    /// version (`@up/dep 1.1.0`).
    pub(crate) fn any_package(&self, name: &str, version: &str, dependencies: Value) -> PathBuf {
        let dir = self
            .path()
            .join(format!("{}-{version}", name.replace('/', "+")));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = json!({"name": name, "version": version, "main": "index.js",
                              "license": "MIT", "dependencies": dependencies});
        std::fs::write(dir.join("package.json"), manifest.to_string()).unwrap();
        std::fs::write(
            dir.join("index.js"),
            format!("module.exports = \"{name} {version}\";\n"),
        )
        .unwrap();
        dir
    }

    /// A new project at `name` that depends on nothing yet.
    pub(crate) fn project(&self, name: &str) -> PathBuf {
        let dir = self.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("package.json"),
            json!({"name": name, "version": "1.0.0", "private": true}).to_string(),
        )
        .unwrap();
        dir
    }
}

/// What the installed package says, through node.
fn greeting_in(project: &Path) -> String {
    node_says(project, &format!("require('{PACKAGE}')()"))
}

/// What `expression` evaluates to in node, in `project`.
pub(crate) fn node_says(project: &Path, expression: &str) -> String {
    let output = Command::new("node")
        .current_dir(project)
        .args(["-e", &format!("console.log({expression})")])
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

async fn npm_publishes_installs_tags_deprecates_and_unpublishes(backend: Backend) {
    let app = with_npm(backend).await;
    let repository = app
        .create(
            &format!("{API}/repositories/npm/npm/"),
            json!({"name": "js"}),
        )
        .await;
    let repository = str_field(&repository, "pulp_href").to_owned();
    let task = app
        .run_task(
            &format!("{API}/distributions/npm/npm/"),
            json!({"name": "js", "base_path": "js", "repository": repository}),
        )
        .await;
    assert_eq!(created_resources(&task).len(), 1, "{task:#}");
    let admin = app.get_json(&format!("{API}/users/?username=admin")).await;
    let admin = str_field(&admin["results"][0], "pulp_href").to_owned();
    let token = app
        .create(&format!("{admin}tokens/"), json!({"name": "npm"}))
        .await;
    let registry = app.url("/npm/js/");
    let home = NpmHome::new(&registry, Some(str_field(&token, "token")));

    assert_eq!(home.run(home.path(), &["whoami"]).trim(), "admin");
    home.run(home.path(), &["ping"]);

    // Two versions: 1.1.0 under `next`, with 8 MiB that do not compress.
    let first = home.package("1.0.0", b"small");
    home.run(&first, &["publish"]);
    let noise: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let second = home.package("1.1.0", &noise);
    home.run(&second, &["publish", "--tag", "next"]);
    let viewed = home.view(PACKAGE);
    assert_eq!(
        viewed["dist-tags"],
        json!({"latest": "1.0.0", "next": "1.1.0"})
    );
    assert_eq!(viewed["versions"], json!(["1.0.0", "1.1.0"]));
    assert!(viewed["time"]["1.1.0"].is_string(), "{viewed:#}");
    assert!(
        viewed["dist"]["integrity"]
            .as_str()
            .is_some_and(|i| i.starts_with("sha512-")),
        "{viewed:#}"
    );

    // Republishing a version is refused, as the public registry refuses it.
    let again = home.npm(&first, &["publish"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains("You cannot publish over the previously published versions: 1.0.0."),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // Dist-tags.
    home.run(
        home.path(),
        &["dist-tag", "add", &format!("{PACKAGE}@1.1.0"), "latest"],
    );
    home.run(home.path(), &["dist-tag", "rm", PACKAGE, "next"]);
    let tags = home.run(home.path(), &["dist-tag", "ls", PACKAGE]);
    assert_eq!(tags.trim(), "latest: 1.1.0");

    // A fresh project installs the latest from Granary, its lockfile resolved here, and `npm ci`
    // installs the same again with an empty cache.
    let consumer = NpmHome::new(&registry, None);
    let project = consumer.project("app");
    consumer.run(&project, &["install", PACKAGE]);
    assert_eq!(greeting_in(&project), "hello from 1.1.0");
    let lock: Value =
        serde_json::from_slice(&std::fs::read(project.join("package-lock.json")).unwrap()).unwrap();
    let locked = &lock["packages"][format!("node_modules/{PACKAGE}")];
    assert_eq!(
        locked["resolved"],
        format!("{registry}{PACKAGE}/-/greeting-1.1.0.tgz")
    );
    assert!(
        locked["integrity"]
            .as_str()
            .is_some_and(|i| i.starts_with("sha512-")),
        "{locked:#}"
    );
    std::fs::remove_dir_all(project.join("node_modules")).unwrap();
    let clean = NpmHome::new(&registry, None);
    clean.run(&project, &["ci"]);
    assert_eq!(greeting_in(&project), "hello from 1.1.0");

    // pnpm, yarn classic and yarn berry install it too, from the registry a project's `.npmrc`
    // (berry: `.yarnrc.yml`) names.
    let tools = node_tools("js-package-managers", &["pnpm@10", "yarn@1"]);
    let berry = node_tools("yarn-berry", &["@yarnpkg/cli-dist@4"]);
    let npmrc = format!("registry={registry}\n");
    // Berry installs no version younger than its `npmMinimalAgeGate` (a day unless set; it
    // reads the packument's `time`), and these are minutes old.
    let yarnrc = format!(
        "npmRegistryServer: \"{registry}\"\nunsafeHttpWhitelist: [\"127.0.0.1\"]\nnodeLinker: node-modules\nenableGlobalCache: false\nenableTelemetry: false\nnpmMinimalAgeGate: 0\n"
    );
    for (label, tools, manager, arguments, (config, settings)) in [
        (
            "pnpm",
            &tools,
            "pnpm",
            &["install", "--store-dir", ".pnpm-store"][..],
            (".npmrc", &npmrc),
        ),
        (
            "yarn-classic",
            &tools,
            "yarn",
            &["install", "--cache-folder", ".yarn-cache"][..],
            (".npmrc", &npmrc),
        ),
        (
            "yarn-berry",
            &berry,
            "yarn",
            &["install"][..],
            (".yarnrc.yml", &yarnrc),
        ),
    ] {
        let project = consumer.project(&format!("with-{label}"));
        let manifest = json!({"name": manager, "version": "1.0.0", "private": true,
                              "dependencies": {PACKAGE: "^1.1.0"}});
        std::fs::write(project.join("package.json"), manifest.to_string()).unwrap();
        std::fs::write(project.join(config), settings).unwrap();
        let output = Command::new(tools.join(manager))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", consumer.path())
            // Berry would refuse to write the lockfile under a CI variable; none is passed.
            .env("YARN_ENABLE_IMMUTABLE_INSTALLS", "false")
            .current_dir(&project)
            .args(arguments)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{label} install: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(greeting_in(&project), "hello from 1.1.0", "{label}");
    }

    // Deprecation, shown by npm view.
    home.run(
        home.path(),
        &["deprecate", &format!("{PACKAGE}@1.0.0"), "use 1.1"],
    );
    assert_eq!(
        home.view(&format!("{PACKAGE}@1.0.0"))["deprecated"],
        "use 1.1"
    );

    // Search.
    let found = home.run(home.path(), &["search", "greeting", "--json"]);
    let found: Value = serde_json::from_str(&found).unwrap();
    assert_eq!(found[0]["name"], PACKAGE, "{found:#}");

    // Writes need credentials.
    let anonymous = reqwest::Client::new()
        .put(app.url(&format!("/npm/js/{}", PACKAGE.replace('/', "%2f"))))
        .header("content-type", "application/json")
        .body(json!({"name": PACKAGE, "versions": {}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    app.create_user("carol", "carol-password-1").await;
    let stranger = NpmHome::new(&registry, None);
    let carol_rc = format!(
        "registry={registry}\n{}:_auth={}\n",
        registry.trim_start_matches("http:"),
        base64::engine::general_purpose::STANDARD.encode("carol:carol-password-1")
    );
    std::fs::write(stranger.path().join(".npmrc"), carol_rc).unwrap();
    let refused = stranger.npm(&home.package("1.2.0", b"x"), &["publish"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Unpublishing one version, then the package.
    home.run(home.path(), &["unpublish", &format!("{PACKAGE}@1.0.0")]);
    assert_eq!(home.view(PACKAGE)["versions"], json!(["1.1.0"]));
    home.run(home.path(), &["unpublish", PACKAGE, "--force"]);
    let gone = home.npm(home.path(), &["view", PACKAGE]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("404"));
    let versions = app.get_json(&format!("{repository}versions/")).await;
    // Version 0, then one per write: two publishes, two tag changes, the deprecation, the two
    // unpublishes (the refused publish made none).
    assert_eq!(versions["count"], 8, "{versions:#}");
}

/// The bytes of the large package: a deterministic pattern that does not compress, in pieces.
fn large_tarball_pieces() -> impl Iterator<Item = Vec<u8>> {
    const PIECE: usize = 3 * 256 * 1024; // whole base64 quanta
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..LARGE_TARBALL / PIECE).map(move |_| {
        (0..PIECE)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    })
}

/// 100 MiB, rounded down to whole pieces of [`large_tarball_pieces`].
const LARGE_TARBALL: usize = 100 * 1024 * 1024;

async fn a_100_mib_publish_streams_into_storage(backend: Backend) {
    use sha2::Digest as _;
    let app = with_npm(backend).await;
    app.repository_and_distribution("npm/npm", "js", json!({}))
        .await;
    let mut expected = sha2::Sha256::new();
    let mut size = 0;
    for piece in large_tarball_pieces() {
        expected.update(&piece);
        size += piece.len();
    }
    let expected = hex::encode(expected.finalize());

    // The publish document as npm sends it, the tarball base64 inside, sent as it is made.
    let head = format!(
        r#"{{"_id":"big","name":"big","dist-tags":{{"latest":"1.0.0"}},"versions":{{"1.0.0":{{"name":"big","version":"1.0.0"}}}},"_attachments":{{"big-1.0.0.tgz":{{"content_type":"application/octet-stream","length":{size},"data":""#
    );
    let pieces = std::iter::once(head.into_bytes())
        .chain(large_tarball_pieces().map(|piece| {
            base64::engine::general_purpose::STANDARD
                .encode(piece)
                .into_bytes()
        }))
        .chain(std::iter::once(b"\"}}}".to_vec()))
        .map(Ok::<_, std::io::Error>);
    let before = app.peak_rss_kib();
    let (admin, password) = app.credentials();
    let published = reqwest::Client::new()
        .put(app.url("/npm/js/big"))
        .basic_auth(admin, Some(password))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        published.status(),
        StatusCode::OK,
        "{}",
        published.text().await.unwrap()
    );
    // The document is 133 MiB; held whole anywhere, it would show here.
    let grown_mib = app.peak_rss_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 64,
        "the server's peak memory grew by {grown_mib} MiB"
    );

    let tarball = reqwest::get(app.url("/npm/js/big/-/big-1.0.0.tgz"))
        .await
        .unwrap();
    assert_eq!(tarball.status(), StatusCode::OK);
    let mut served = sha2::Sha256::new();
    let mut stream = tarball.bytes_stream();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        served.update(chunk.unwrap());
    }
    assert_eq!(hex::encode(served.finalize()), expected);
}
