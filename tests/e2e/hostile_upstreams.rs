//! Issue #18, items 2–4 (in part): upstreams that hang, stall or redirect elsewhere. A hanging
//! upstream takes a bounded share of the plugin instances and answers the excess 503 with
//! `Retry-After` while REST and stored files stay responsive; a remote with no timeouts gets
//! Pulp's defaults, and its own timeouts win; a redirect to a loopback origin not allowed is refused before
//! the other origin sees a byte of the remote's credentials, and one within it still works.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::fixture::FixtureFile;
use crate::support::pulp::{API, created_resources, error_description, str_field};
use crate::support::upstream::Required;
use crate::support::{AppOptions, Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    hanging_upstream_gets_bounded_turns_and_503s,
    stalled_body_fails_on_the_remote_timeout,
    stalled_body_fails_on_the_default_timeout,
    redirects_to_unallowed_loopback_origins_are_refused,
    a_digest_in_a_manifest_links_no_other_repositorys_file,
);

const HANDLER: &str = env!("GRANARY_TEST_HANDLER_WASM");
const PASSWORD: &str = "upstream-password-5521";
const TOKEN: &str = "upstream-token-9087";
/// Concurrent anonymous pull-through requests (the figure: 44 of them got 502).
const CLIENTS: usize = 300;
/// The default `--content-per-client`: requests from one address that run at once.
const PER_CLIENT: usize = 16;

/// Starts an app with `options` and the handler plugin installed.
async fn app_with_handler(backend: Backend, options: AppOptions) -> TestApp {
    let app = TestApp::start_with(backend, options).await;
    let bytes = std::fs::read(HANDLER).expect("the handler component is built");
    let (status, plugin) = app.install_plugin(&bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{plugin:#}");
    app
}

/// A handler repository, a remote on `remote_url` (with `fields` added) and a distribution at
/// `base_path` serving the repository's latest version with the remote for pull-through.
async fn pull_through_distribution(
    app: &TestApp,
    base_path: &str,
    remote_url: &str,
    fields: Value,
) {
    let repository = app
        .create(
            &format!("{API}/repositories/handler/stash/"),
            json!({"name": base_path}),
        )
        .await;
    let mut body = json!({"name": base_path, "url": remote_url});
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let remote = app
        .create(&format!("{API}/remotes/handler/source/"), body)
        .await;
    app.run_task(
        &format!("{API}/distributions/handler/shelf/"),
        json!({
            "name": base_path,
            "base_path": base_path,
            "repository": repository["pulp_href"],
            "remote": remote["pulp_href"],
        }),
    )
    .await;
}

/// GETs `url` anonymously; returns the status, the `Retry-After` header and the body.
async fn fetch(client: reqwest::Client, url: String) -> (StatusCode, Option<String>, Vec<u8>) {
    let response = client.get(&url).send().await.expect("a response");
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    let status = response.status();
    (
        status,
        retry_after,
        response.bytes().await.unwrap().to_vec(),
    )
}

/// 300 anonymous clients ask at once for a pull-through file while the upstream hangs: a bounded
/// number of plugin calls wait on it, every other request is answered 503 with `Retry-After`
/// (none 502: the plugin instance pool is never exhausted), and meanwhile REST and a stored file
/// answer. Once the upstream recovers, the waiting calls complete and new requests are served.
async fn hanging_upstream_gets_bounded_turns_and_503s(backend: Backend) {
    // A short queue deadline keeps the test short; the limits themselves are the defaults.
    let options = AppOptions::default().env("GRANARY_CONTENT_QUEUE_TIMEOUT_MS", "2000");
    let app = app_with_handler(backend, options).await;
    let file = FixtureFile::new("pkg/slow-1.0.tar.gz", vec![3u8; 64 * 1024]);
    let upstream = Upstream::serve(&Fixture {
        files: vec![file.clone()],
    })
    .await;
    pull_through_distribution(&app, "slow", &upstream.manifest_url(), json!({})).await;
    // A stored, published file of another distribution.
    let stored_repository = app.create_file_repository("stored").await;
    app.upload_content("file/files", &stored_repository, "kept.txt", b"kept bytes")
        .await;
    let stored_base = app
        .publish_and_distribute(&stored_repository, "stored")
        .await;

    upstream.hold();
    let url = app.url("/shelf/slow/pull/pkg/slow-1.0.tar.gz");
    let requests: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(fetch(app.anonymous().clone(), url.clone())))
        .collect();

    // Every request either waits on the upstream or has been answered.
    let mut answered = Vec::new();
    let mut pending = requests;
    let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let mut still = Vec::new();
        for request in pending {
            if request.is_finished() {
                answered.push(request.await.expect("request task"));
            } else {
                still.push(request);
            }
        }
        pending = still;
        if answered.len() + upstream.waiting_requests() == CLIENTS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "{} answered, {} waiting upstream, of {CLIENTS}",
            answered.len(),
            upstream.waiting_requests()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let waiting = upstream.waiting_requests();
    assert_eq!(
        waiting, PER_CLIENT,
        "one client's plugin calls on a hanging upstream are bounded"
    );
    for (status, retry_after, body) in &answered {
        assert_eq!(
            *status,
            StatusCode::SERVICE_UNAVAILABLE,
            "the excess is refused with 503, not 502: {}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(retry_after.as_deref(), Some("2"), "503 says when to retry");
        let body: Value = serde_json::from_slice(body).expect("a JSON envelope");
        assert!(
            str_field(&body, "detail").contains("this client address"),
            "{body}"
        );
    }

    // While the upstream hangs, REST and a stored file still answer.
    app.assert_status_ok().await;
    let (status, _, body) = fetch(app.anonymous().clone(), format!("{stored_base}kept.txt")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"kept bytes");

    // The upstream recovers: the waiting calls complete, and new requests are served.
    upstream.release();
    for request in pending {
        let (status, _, body) = request.await.expect("request task");
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert!(body == file.bytes);
    }
    for _ in 0..3 {
        let wave = (0..PER_CLIENT).map(|_| fetch(app.anonymous().clone(), url.clone()));
        for (status, _, body) in futures::future::join_all(wave).await {
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            assert!(body == file.bytes);
        }
    }
}

/// Syncs `remote` (a file remote) into a new repository; returns the finished task.
async fn sync_into_new_repository(app: &TestApp, name: &str, remote: &str) -> Value {
    let repository = app.create_file_repository(name).await;
    app.sync(&repository, remote, false).await
}

/// A file remote of `upstream` with `fields` added; returns its href.
async fn file_remote(app: &TestApp, name: &str, upstream: &Upstream, fields: Value) -> String {
    let mut body = json!({"name": name, "url": upstream.manifest_url(), "policy": "immediate"});
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let remote = app.create(&format!("{API}/remotes/file/file/"), body).await;
    str_field(&remote, "pulp_href").to_owned()
}

/// A manifest that names the sha256 of a file stored for another repository gets no bytes without
/// fetching them (a digest is not a capability). Under a path of its own, with an upstream that
/// has no such file: the `immediate` sync asks the upstream and fails naming the file; after an
/// `on_demand` sync, a request for the file goes to the upstream and is not answered with the
/// other repository's bytes. Naming the stored unit itself fails the sync under either policy;
/// an upstream that does have the file is asked for it once.
async fn a_digest_in_a_manifest_links_no_other_repositorys_file(backend: Backend) {
    let app = TestApp::start(backend).await;
    let secret = FixtureFile::new("secret.txt", b"another team's private file\n".to_vec());
    let private = app.create_file_repository("private").await;
    app.upload_content("file/files", &private, &secret.relative_path, &secret.bytes)
        .await;
    let claimed = FixtureFile {
        relative_path: "claimed.txt".into(),
        ..secret.clone()
    };
    let upstream = Upstream::serve_with_manifest(&[], claimed.manifest_line() + "\n").await;

    let remote = app
        .create_file_remote("claims", &upstream.manifest_url(), "immediate")
        .await;
    let task = sync_into_new_repository(&app, "claims", &remote).await;
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = error_description(&task);
    assert!(error.contains("claimed.txt"), "{error}");
    assert_eq!(upstream.requests_for("claimed.txt"), 1);

    let lazy = app
        .create_file_remote("claims-lazy", &upstream.manifest_url(), "on_demand")
        .await;
    let repository = app.create_file_repository("claims-lazy").await;
    let task = app.sync(&repository, &lazy, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let base_url = app.publish_and_distribute(&repository, "claims-lazy").await;
    app.assert_not_served(&format!("{base_url}claimed.txt"), &secret.bytes)
        .await;
    assert_eq!(upstream.requests_for("claimed.txt"), 2);

    // The stored unit itself (same path and digest): the unit exists with the other
    // repository's file, so the sync fetches the file whatever its policy, and the upstream has
    // none.
    let same = Upstream::serve_with_manifest(&[], secret.manifest_line() + "\n").await;
    for policy in ["immediate", "on_demand"] {
        let name = format!("same-{policy}");
        let remote = app
            .create_file_remote(&name, &same.manifest_url(), policy)
            .await;
        let task = sync_into_new_repository(&app, &name, &remote).await;
        assert_eq!(task["state"], "failed", "{policy}: {task:#}");
        let error = error_description(&task);
        assert!(error.contains("secret.txt"), "{policy}: {error}");
    }
    assert_eq!(same.requests_for("secret.txt"), 2);

    // An upstream that has the file: the on-demand sync fetches it once to show it, then the
    // repository reaches it and a second sync fetches nothing.
    let honest = Upstream::serve(&Fixture {
        files: vec![secret.clone()],
    })
    .await;
    let remote = app
        .create_file_remote("honest", &honest.manifest_url(), "on_demand")
        .await;
    let repository = app.create_file_repository("honest").await;
    for _ in 0..2 {
        let task = app.sync(&repository, &remote, false).await;
        assert_eq!(task["state"], "completed", "{task:#}");
    }
    assert_eq!(honest.requests_for("secret.txt"), 1);
    assert_eq!(app.artifacts_with_sha256(&secret.sha256).await, 1);
}

/// One file of 64 KiB: big enough to stop halfway.
fn one_file() -> Fixture {
    Fixture {
        files: vec![FixtureFile::new("big.bin", vec![9u8; 64 * 1024])],
    }
}

/// A remote's own `sock_read_timeout` ends a download whose upstream stalls mid-body (the server
/// sets no default that could end it instead), and the remote still shows only what was set.
async fn stalled_body_fails_on_the_remote_timeout(backend: Backend) {
    let options = AppOptions::default().env("GRANARY_REMOTE_TOTAL_TIMEOUT", "0");
    let app = TestApp::start_with(backend, options).await;
    let mut upstream = Upstream::serve(&one_file()).await;
    upstream.stall_bodies();
    let remote = file_remote(
        &app,
        "stalling",
        &upstream,
        json!({"sock_read_timeout": 1.0, "max_retries": 0}),
    )
    .await;
    let shown = app.get_json(&remote).await;
    assert_eq!(shown["sock_read_timeout"], 1.0, "{shown:#}");
    assert_eq!(shown["total_timeout"], Value::Null, "{shown:#}");

    let task = sync_into_new_repository(&app, "stalling", &remote).await;
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = error_description(&task);
    assert!(error.contains("timed out"), "{error}");
    upstream.stop().await;
}

/// A remote with no timeouts gets the server's defaults (Pulp's, made short here): an upstream
/// that stalls mid-body fails the download with a timeout, and REST keeps the fields null.
async fn stalled_body_fails_on_the_default_timeout(backend: Backend) {
    let options = AppOptions::default().env("GRANARY_REMOTE_TOTAL_TIMEOUT", "2");
    let app = TestApp::start_with(backend, options).await;
    let mut upstream = Upstream::serve(&one_file()).await;
    upstream.stall_bodies();
    let remote = file_remote(&app, "defaults", &upstream, json!({"max_retries": 0})).await;
    let shown = app.get_json(&remote).await;
    for field in [
        "total_timeout",
        "connect_timeout",
        "sock_connect_timeout",
        "sock_read_timeout",
    ] {
        assert_eq!(shown[field], Value::Null, "{field} stays unset: {shown:#}");
    }

    let task = sync_into_new_repository(&app, "defaults", &remote).await;
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = error_description(&task);
    assert!(error.contains("timed out"), "{error}");
    upstream.stop().await;
}

/// An upstream that requires credentials and a custom header redirects to a second origin on
/// loopback that the operator did not allow (the SSRF guard): the manifest (the plugin's `http`
/// import), a sync download and a pull-through fetch are each refused, and the second origin never
/// sees a request, let alone the credentials. Redirects within the remote's origin are followed
/// with the credentials. (`upstream_origins` shows redirects to allowed origins followed without
/// them.)
async fn redirects_to_unallowed_loopback_origins_are_refused(backend: Backend) {
    let app = app_with_handler(backend, AppOptions::default()).await;
    let file = FixtureFile::new("pkg/a-1.0.tar.gz", vec![5u8; 4096]);
    let moved = FixtureFile::new("moved/a-1.0.tar.gz", file.bytes.clone());
    let manifest = format!("{}\n", file.manifest_line());
    let required = Required {
        basic_auth: ("mirror".into(), PASSWORD.into()),
        header: ("x-token".into(), TOKEN.into()),
    };
    let credentials = json!({
        "username": "mirror", "password": PASSWORD, "headers": [{"x-token": TOKEN}],
    });
    let elsewhere =
        Upstream::serve_with_manifest(std::slice::from_ref(&file), manifest.clone()).await;
    let upstream =
        Upstream::serve_with_manifest(&[file.clone(), moved.clone()], manifest.clone()).await;
    upstream.require(required.clone());

    // The manifest, read by the plugin through `http`, redirects away.
    upstream.redirect("PULP_MANIFEST", &elsewhere.manifest_url());
    let remote = file_remote(&app, "manifest-away", &upstream, credentials.clone()).await;
    let task = sync_into_new_repository(&app, "manifest-away", &remote).await;
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = error_description(&task);
    assert!(error.contains("127.0.0.1 is a loopback address"), "{error}");
    assert_eq!(
        elsewhere.total_requests(),
        0,
        "{:?}",
        elsewhere.request_counts()
    );

    // A file redirects away: the sync download is refused.
    let upstream =
        Upstream::serve_with_manifest(&[file.clone(), moved.clone()], manifest.clone()).await;
    upstream.require(required.clone());
    upstream.redirect(
        &file.relative_path,
        &elsewhere.url("fixtures/pkg/a-1.0.tar.gz"),
    );
    let remote = file_remote(&app, "file-away", &upstream, credentials.clone()).await;
    let task = sync_into_new_repository(&app, "file-away", &remote).await;
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = error_description(&task);
    assert!(error.contains("127.0.0.1 is a loopback address"), "{error}");

    // The same file pulled through a distribution: 502, nothing fetched from elsewhere.
    pull_through_distribution(&app, "away", &upstream.manifest_url(), credentials.clone()).await;
    let (status, _, body) = fetch(
        app.anonymous().clone(),
        app.url("/shelf/away/pull/pkg/a-1.0.tar.gz"),
    )
    .await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("127.0.0.1 is a loopback address"), "{body}");
    assert_eq!(
        elsewhere.total_requests(),
        0,
        "{:?}",
        elsewhere.request_counts()
    );
    assert_eq!(elsewhere.requests_carrying("authorization"), 0);
    assert_eq!(elsewhere.requests_carrying("x-token"), 0);

    // Within the remote's origin, a redirect is followed, credentials and all.
    let upstream = Upstream::serve_with_manifest(&[file.clone(), moved.clone()], manifest).await;
    upstream.require(required);
    upstream.redirect(&file.relative_path, "/fixtures/moved/a-1.0.tar.gz");
    let remote = file_remote(&app, "moved", &upstream, credentials).await;
    let task = sync_into_new_repository(&app, "moved", &remote).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(created_resources(&task).len(), 1, "{task:#}");
    assert_eq!(upstream.requests_for(&moved.relative_path), 1);
    assert_eq!(
        upstream.refused_requests(),
        0,
        "every hop carried the credentials"
    );
}
