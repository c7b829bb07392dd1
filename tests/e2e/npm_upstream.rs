//! The npm content type against an upstream registry, Verdaccio on loopback, and its own log-in:
//!
//! - a pull-through distribution (a remote on the distribution): `npm install` of a package and
//!   its dependency through Granary, each tarball fetched once, checked against the upstream's
//!   sha512 integrity and kept; packuments kept for the remote's `metadata_max_age`; a tarball
//!   changed behind the upstream's back refused; `npm view` and `npm ci` answered from what was
//!   kept once the upstream is gone;
//! - a sync of the packages a remote `includes`, with npm's semver ranges (`immediate` on
//!   SQLite, `on_demand` on PostgreSQL), served to `npm install` without the remote, and listed
//!   by pulp-cli's generic commands (`pulp repository|remote|distribution|content list`);
//! - `npm login` answered with a Granary API token, a wrong password refused.

use std::io::Write as _;
use std::process::Stdio;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::npm_registry::{NpmHome, node_says, with_npm, with_npm_and};
use crate::pulp_cli::PulpCli;
use crate::support::fixture::FixtureFile;
use crate::support::pulp::{API, str_field};
use crate::support::verdaccio::Verdaccio;
use crate::support::{AppOptions, Backend, TestApp, Upstream};

sqlite_and_postgres!(
    npm_pulls_through_from_an_upstream_registry,
    npm_fetches_a_tarball_once_for_clients_asking_at_once,
    npm_syncs_the_packages_a_remote_includes,
    npm_login_answers_a_granary_token,
);

/// Publishes to Verdaccio, with npm: `@up/dep` 1.0.0, 1.1.0 and 2.0.0 (its `latest`), and
/// `up-app` 1.0.0, which depends on `@up/dep@^1.0.0`.
async fn publish_upstream(verdaccio: &Verdaccio) -> NpmHome {
    let token = verdaccio.token_for("bob").await;
    let publisher = NpmHome::new(&verdaccio.url, Some(&token));
    for version in ["1.0.0", "1.1.0", "2.0.0"] {
        let package = publisher.any_package("@up/dep", version, json!({}));
        publisher.run(&package, &["publish"]);
    }
    let app = publisher.any_package("up-app", "1.0.0", json!({"@up/dep": "^1.0.0"}));
    publisher.run(&app, &["publish"]);
    publisher
}

/// The stored package units of a repository's latest version, as `name@version`.
async fn stored_packages(app: &TestApp, repository: &str) -> Vec<String> {
    let repository = app.get_json(repository).await;
    let version = str_field(&repository, "latest_version_href");
    let listed = app
        .get_json(&format!(
            "{API}/content/npm/packages/?repository_version={version}&limit=100"
        ))
        .await;
    let mut packages: Vec<String> = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|unit| {
            format!(
                "{}@{}",
                unit["name"].as_str().unwrap(),
                unit["version"].as_str().unwrap()
            )
        })
        .collect();
    packages.sort();
    packages
}

async fn npm_pulls_through_from_an_upstream_registry(backend: Backend) {
    let mut verdaccio = Verdaccio::start().await;
    let publisher = publish_upstream(&verdaccio).await;
    let app = with_npm(backend).await;
    // Two mirrors of the same upstream: one asks it for every packument, the other keeps each
    // for an hour.
    let mut repositories = Vec::new();
    for (name, max_age) in [("mirror", 0), ("kept", 3600)] {
        let remote = app
            .create(
                &format!("{API}/remotes/npm/npm/"),
                json!({"name": name, "url": verdaccio.url, "policy": "on_demand",
                       "metadata_max_age": max_age}),
            )
            .await;
        let remote = json!({"remote": remote["pulp_href"]});
        repositories.push(
            app.repository_and_distribution("npm/npm", name, remote)
                .await,
        );
    }
    let repository = &repositories[0];
    let registry = app.url("/npm/mirror/");

    // A project installs the app and, resolved through Granary, its dependency.
    let consumer = NpmHome::new(&registry, None);
    let project = consumer.project("consumer");
    consumer.run(&project, &["install", "up-app"]);
    assert_eq!(node_says(&project, "require('up-app')"), "up-app 1.0.0");
    assert_eq!(node_says(&project, "require('@up/dep')"), "@up/dep 1.1.0");
    let lock: Value =
        serde_json::from_slice(&std::fs::read(project.join("package-lock.json")).unwrap()).unwrap();
    assert_eq!(
        lock["packages"]["node_modules/@up/dep"]["resolved"],
        format!("{registry}@up/dep/-/dep-1.1.0.tgz"),
        "tarballs resolve at Granary"
    );
    // What was fetched is kept: two packages, each added once.
    assert_eq!(
        stored_packages(&app, repository).await,
        ["@up/dep@1.1.0", "up-app@1.0.0"]
    );

    // The packument is the upstream's, all versions and tags, with tarballs here.
    let viewed = consumer.view("@up/dep");
    assert_eq!(viewed["versions"], json!(["1.0.0", "1.1.0", "2.0.0"]));
    assert_eq!(viewed["dist-tags"]["latest"], "2.0.0");
    assert_eq!(
        viewed["dist"]["tarball"],
        format!("{registry}@up/dep/-/dep-2.0.0.tgz")
    );

    // A version published upstream shows at once through the mirror that asks every time, and
    // not through the one that keeps packuments for an hour.
    let kept = NpmHome::new(&app.url("/npm/kept/"), None);
    assert_eq!(
        kept.view("@up/dep")["versions"],
        json!(["1.0.0", "1.1.0", "2.0.0"])
    );
    let newer = publisher.any_package("@up/dep", "2.1.0", json!({}));
    publisher.run(&newer, &["publish"]);
    assert_eq!(
        consumer.view("@up/dep")["versions"],
        json!(["1.0.0", "1.1.0", "2.0.0", "2.1.0"])
    );
    assert_eq!(
        kept.view("@up/dep")["versions"],
        json!(["1.0.0", "1.1.0", "2.0.0"])
    );

    // A tarball changed behind the upstream's back does not match its integrity: refused, and
    // nothing kept.
    std::fs::write(
        verdaccio.stored_tarball("@up/dep", "dep-1.0.0.tgz"),
        b"not the published bytes",
    )
    .unwrap();
    let tampered = reqwest::get(format!("{registry}@up/dep/-/dep-1.0.0.tgz"))
        .await
        .unwrap();
    assert_eq!(tampered.status(), StatusCode::BAD_GATEWAY);
    let message = tampered.text().await.unwrap();
    assert!(message.contains("sha512 mismatch"), "{message}");
    assert_eq!(
        stored_packages(&app, repository).await,
        ["@up/dep@1.1.0", "up-app@1.0.0"]
    );

    // With the upstream gone, what was kept is still served: `npm ci` from the lockfile with an
    // empty cache, and the kept versions in `npm view`.
    verdaccio.stop();
    std::fs::remove_dir_all(project.join("node_modules")).unwrap();
    let offline = NpmHome::new(&registry, None);
    offline.run(&project, &["ci"]);
    assert_eq!(node_says(&project, "require('@up/dep')"), "@up/dep 1.1.0");
    assert_eq!(offline.view("@up/dep")["versions"], json!(["1.1.0"]));
    drop(publisher);
}

async fn npm_fetches_a_tarball_once_for_clients_asking_at_once(backend: Backend) {
    // An upstream that counts requests and answers files slowly, with a package whose packument
    // names its tarball there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // The upstream serves its files below `/fixtures/`.
    let origin = format!("http://{}/fixtures/", listener.local_addr().unwrap());
    let tarball = b"\x1f\x8b pretend this is a package".to_vec();
    let sha512 = <sha2::Sha512 as sha2::Digest>::digest(&tarball);
    let integrity = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha512)
    );
    let files = [
        FixtureFile::new(
            "once",
            json!({"name": "once", "dist-tags": {"latest": "1.0.0"},
                   "versions": {"1.0.0": {"name": "once", "version": "1.0.0",
                       "dist": {"tarball": format!("{origin}files/once-1.0.0.tgz"),
                                "integrity": integrity, "shasum": "00"}}}})
            .to_string(),
        ),
        FixtureFile::new("files/once-1.0.0.tgz", tarball.clone()),
    ];
    let upstream = Upstream::serve_on(listener, &files).await;
    upstream.set_file_delay(std::time::Duration::from_millis(500));
    let app = with_npm(backend).await;
    let remote = app
        .create(
            &format!("{API}/remotes/npm/npm/"),
            json!({"name": "counted", "url": upstream.base_url()}),
        )
        .await;
    let repository = app
        .repository_and_distribution("npm/npm", "once", json!({"remote": remote["pulp_href"]}))
        .await;

    let url = app.url("/npm/once/once/-/once-1.0.0.tgz");
    let clients = (0..8).map(|_| {
        let url = url.clone();
        async move {
            let response = reqwest::get(&url).await.unwrap();
            (response.status(), response.bytes().await.unwrap())
        }
    });
    for (status, body) in futures::future::join_all(clients).await {
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.as_ref(), tarball.as_slice());
    }
    assert_eq!(upstream.requests_for("files/once-1.0.0.tgz"), 1);
    assert_eq!(stored_packages(&app, &repository).await, ["once@1.0.0"]);
}

async fn npm_syncs_the_packages_a_remote_includes(backend: Backend) {
    // Both download policies: every tarball now, or each at its first request.
    let policy = match backend {
        Backend::Sqlite => "immediate",
        Backend::Postgres { .. } => "on_demand",
    };
    let verdaccio = Verdaccio::start().await;
    let _publisher = publish_upstream(&verdaccio).await;
    let app = with_npm(backend).await;
    let repository = app
        .repository_and_distribution("npm/npm", "synced", json!({}))
        .await;

    // A range npm does not read fails the sync, naming the field.
    let (status, bad) = app
        .post_json(
            &format!("{API}/remotes/npm/npm/"),
            &json!({"name": "bad", "url": verdaccio.url, "includes": ["@up/dep@^^1"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bad:#}");
    let failed = app
        .sync(&repository, str_field(&bad, "pulp_href"), false)
        .await;
    assert_eq!(failed["state"], "failed", "{failed:#}");
    let error = failed["error"]["description"].as_str().unwrap_or_default();
    assert!(error.contains("`^^1` is not a semver range"), "{failed:#}");

    let remote = app
        .create(
            &format!("{API}/remotes/npm/npm/"),
            json!({"name": "upstream", "url": verdaccio.url, "policy": policy,
                   "includes": ["@up/dep@^1.0.0", "up-app"]}),
        )
        .await;
    let synced = app
        .sync(&repository, str_field(&remote, "pulp_href"), true)
        .await;
    assert_eq!(synced["state"], "completed", "{synced:#}");
    assert_eq!(
        stored_packages(&app, &repository).await,
        ["@up/dep@1.0.0", "@up/dep@1.1.0", "up-app@1.0.0"]
    );

    // Served without the remote: the synced versions, `latest` the highest of them (the
    // upstream's 2.0.0 is not in the range).
    let registry = app.url("/npm/synced/");
    let consumer = NpmHome::new(&registry, None);
    let viewed = consumer.view("@up/dep");
    assert_eq!(viewed["versions"], json!(["1.0.0", "1.1.0"]));
    assert_eq!(viewed["dist-tags"]["latest"], "1.1.0");
    let project = consumer.project("consumer");
    consumer.run(&project, &["install", "up-app", "@up/dep@1.0.0"]);
    assert_eq!(node_says(&project, "require('@up/dep')"), "@up/dep 1.0.0");
    assert_eq!(node_says(&project, "require('up-app')"), "up-app 1.0.0");

    // pulp-cli's generic commands list the npm types with everything else.
    let pulp = PulpCli::new(&app);
    let hrefs = |listed: Value| -> Vec<String> {
        listed
            .as_array()
            .expect("a list")
            .iter()
            .map(|item| str_field(item, "pulp_href").to_owned())
            .collect()
    };
    let repositories = hrefs(pulp.run(&["repository", "list"]).await);
    assert_eq!(repositories, std::slice::from_ref(&repository));
    let remotes = hrefs(pulp.run(&["remote", "list"]).await);
    assert_eq!(remotes.len(), 2, "{remotes:?}");
    assert!(
        remotes
            .iter()
            .all(|href| href.starts_with(&format!("{API}/remotes/npm/npm/")))
    );
    let distributions = pulp
        .run(&["distribution", "list", "--base-path", "synced"])
        .await;
    assert_eq!(distributions[0]["repository"], repository.as_str());
    let content = pulp.run(&["content", "list", "--limit", "100"]).await;
    let packages = hrefs(content)
        .into_iter()
        .filter(|href| href.starts_with(&format!("{API}/content/npm/packages/")))
        .count();
    assert_eq!(packages, 3);
    let versions = hrefs(pulp.run(&["repository", "version", "list"]).await);
    assert_eq!(
        versions,
        [
            format!("{repository}versions/1/"),
            format!("{repository}versions/0/")
        ]
    );
}

async fn npm_login_answers_a_granary_token(backend: Backend) {
    // Three failed log-ins of a user within the window, and the next waits.
    let options = AppOptions::default().env("GRANARY_LOGIN_FAILURES_PER_USER", "3");
    let app = with_npm_and(backend, options).await;
    let repository = app
        .repository_and_distribution("npm/npm", "js", json!({}))
        .await;
    app.create_user("alice", "alice-password-1").await;
    let registry = app.url("/npm/js/");
    let home = NpmHome::new(&registry, None);

    // npm asks for the username and the password on its prompt.
    let log_in = |password: &str| {
        let mut child = home
            .command(home.path(), &["login", "--auth-type=legacy"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run npm login");
        let mut stdin = child.stdin.take().unwrap();
        // One answer per prompt: npm reads each line when it asks.
        for answer in ["alice", password] {
            std::thread::sleep(std::time::Duration::from_secs(1));
            writeln!(stdin, "{answer}").unwrap();
        }
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let refused = log_in("a wrong password");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("incorrect username or password"), "{said}");

    let accepted = log_in("alice-password-1");
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    let npmrc = std::fs::read_to_string(home.path().join(".npmrc")).unwrap();
    assert!(npmrc.contains(":_authToken=grn_"), "{npmrc}");
    assert_eq!(home.run(home.path(), &["whoami"]).trim(), "alice");

    // The token is one of alice's API tokens, named after the client.
    let alice = app.get_json(&format!("{API}/users/?username=alice")).await;
    let tokens = app
        .get_json(&format!(
            "{}tokens/",
            str_field(&alice["results"][0], "pulp_href")
        ))
        .await;
    assert_eq!(tokens["count"], 1, "{tokens:#}");
    assert!(
        str_field(&tokens["results"][0], "name").starts_with("npm login"),
        "{tokens:#}"
    );

    // The log-in path lets no anonymous write through: a publish there is not one.
    let put = app
        .anonymous()
        .put(app.url("/npm/js/-/user/org.couchdb.user:alice"))
        .header("content-type", "application/json")
        .body(json!({"name": "alice", "versions": {"1.0.0": {}}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::BAD_REQUEST);
    let versions = app.get_json(&format!("{repository}versions/")).await;
    assert_eq!(versions["count"], 1, "no version but 0: {versions:#}");

    // Guessing through npm's log-in counts as failed log-ins do: past the limit, even the
    // right password waits.
    let attempt = |password: &str| {
        let request = app
            .anonymous()
            .put(app.url("/npm/js/-/user/org.couchdb.user:alice"))
            .header("content-type", "application/json")
            .body(json!({"name": "alice", "password": password}).to_string());
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    for _ in 0..3 {
        assert_eq!(attempt("guess").await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, said) = attempt("alice-password-1").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{said}");
    assert!(said.contains("Too many failed log-ins"), "{said}");
}
