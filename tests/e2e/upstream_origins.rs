//! Issue #19: upstreams as they are in the wild. An index keeps its files on another host and a
//! files host redirects to a CDN, so the host fetches declared files from other origins and
//! follows redirects there, but it sends the remote's credentials only to the remote's own origin,
//! and it never fetches from loopback, private or link-local addresses (the machines around the
//! server, cloud metadata) unless the operator lists the origin in the remote's
//! `allowed_origins`. Here every origin is on loopback, so each must be listed; the refusals
//! without the listing are the SSRF guard at work. Rate-limited upstreams are retried after their
//! `Retry-After`, the server's proxy variables carry remotes that name no proxy, and index pages
//! are asked for again with `If-None-Match`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::fixture::{FixtureFile, sha256_hex};
use crate::support::proxy::Proxy;
use crate::support::pulp::{API, error_description, str_field};
use crate::support::python::{PythonTools, build_demo_and_dep, pip_install_demo};
use crate::support::tls::Pki;
use crate::support::upstream::Required;
use crate::support::{AppOptions, Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    python_files_on_other_origins_are_fetched_once_allowed,
    file_redirects_to_another_origin_are_followed_once_allowed,
    rate_limited_upstreams_are_retried_after_their_wait,
    proxy_variables_carry_remotes_without_a_proxy_of_their_own,
    index_pages_are_asked_for_again_conditionally,
    the_system_trust_store_is_used_and_http2_spoken,
);

const PASSWORD: &str = "index-password-3141";
const TOKEN: &str = "index-token-2718";

/// What the index insists on, and the same as remote fields.
fn index_credentials() -> (Required, Value) {
    let required = Required {
        basic_auth: ("mirror".into(), PASSWORD.into()),
        header: ("x-token".into(), TOKEN.into()),
    };
    let fields =
        json!({"username": "mirror", "password": PASSWORD, "headers": [{"x-token": TOKEN}]});
    (required, fields)
}

/// The origin (`scheme://host:port`) of a URL.
fn origin_of(url: &str) -> String {
    let url = reqwest::Url::parse(url).unwrap();
    url.origin().ascii_serialization()
}

/// Asserts that `upstream` never saw the index's credentials nor its custom header.
fn assert_no_credentials(upstream: &Upstream, who: &str) {
    assert_eq!(
        upstream.requests_carrying("authorization"),
        0,
        "{who} got the remote's credentials"
    );
    assert_eq!(
        upstream.requests_carrying("x-token"),
        0,
        "{who} got the remote's header"
    );
}

/// Three origins: an index that requires credentials, a files host reached by name
/// (`localhost`, so the resolver's check is the one at work), and a CDN on an address
/// (`127.0.0.1`, checked before any connection) that redirects to the files host. The demo's
/// wheel is linked on the files host, its dependency on the CDN; a third project links cloud
/// metadata. Without `allowed_origins` the sync fails naming the refused address and the other
/// origins see nothing; with them it completes, only the index got the credentials, and pip
/// installs through a pull-through distribution of the same remote. Cloud metadata stays refused.
async fn python_files_on_other_origins_are_fetched_once_allowed(backend: Backend) {
    let tools = tokio::task::spawn_blocking(PythonTools::install)
        .await
        .expect("install the Python clients");
    let dir = tempfile::tempdir().unwrap();
    let (wheel, sdist) = tokio::task::spawn_blocking({
        let (tools, dir) = (tools.clone(), dir.path().to_owned());
        move || build_demo_and_dep(&tools, &dir)
    })
    .await
    .unwrap();
    let file = |path: &std::path::Path| {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let bytes = std::fs::read(path).unwrap();
        (name, bytes)
    };
    let ((wheel_name, wheel_bytes), (sdist_name, sdist_bytes)) = (file(&wheel), file(&sdist));

    let files_host = Upstream::serve_with_manifest(
        &[
            FixtureFile::new(format!("files/{wheel_name}"), wheel_bytes.clone()),
            FixtureFile::new(format!("files/{sdist_name}"), sdist_bytes.clone()),
        ],
        String::new(),
    )
    .await;
    let files_base = files_host.base_url().replace("127.0.0.1", "localhost");
    let cdn = Upstream::serve_with_manifest(&[], String::new()).await;
    cdn.redirect(
        &format!("files/{sdist_name}"),
        &format!("{files_base}files/{sdist_name}"),
    );
    let link = |url: String, name: &str, bytes: &[u8]| {
        format!(
            "<!DOCTYPE html><html><body>\n<a href=\"{url}#sha256={}\">{name}</a><br>\n</body></html>\n",
            sha256_hex(bytes)
        )
        .into_bytes()
    };
    let index = Upstream::serve_with_manifest(
        &[
            FixtureFile::new(
                "simple/granary-demo/",
                link(
                    format!("{files_base}files/{wheel_name}"),
                    &wheel_name,
                    &wheel_bytes,
                ),
            ),
            FixtureFile::new(
                "simple/granary-dep/",
                link(
                    format!("{}files/{sdist_name}", cdn.base_url()),
                    &sdist_name,
                    &sdist_bytes,
                ),
            ),
            FixtureFile::new(
                "simple/granary-meta/",
                link(
                    "http://169.254.169.254/latest/meta-data/granary_meta-1.0-py3-none-any.whl"
                        .into(),
                    "granary_meta-1.0-py3-none-any.whl",
                    b"metadata",
                ),
            ),
        ],
        String::new(),
    )
    .await;
    let (required, credentials) = index_credentials();
    index.require(required);

    let app = TestApp::start(backend).await;
    let mut fields = json!({
        "name": "three-origins",
        "url": index.base_url(),
        "policy": "immediate",
        "includes": ["granary-demo", "granary-dep"],
    });
    fields
        .as_object_mut()
        .unwrap()
        .extend(credentials.as_object().unwrap().clone());
    let remote = app
        .create(&format!("{API}/remotes/python/python/"), fields)
        .await;
    assert_eq!(remote["allowed_origins"], json!([]), "{remote:#}");
    let remote = str_field(&remote, "pulp_href").to_owned();
    let mirror = app.create_python_repository("mirror").await;

    // Not allowed: every other origin here is on loopback.
    let task = app.sync(&mirror, &remote, false).await;
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = error_description(&task);
    assert!(error.contains("loopback"), "{error}");
    assert!(error.contains("allowed_origins"), "{error}");
    assert_eq!(files_host.total_requests(), 0, "{error}");
    assert_eq!(cdn.total_requests(), 0, "{error}");

    // A field-level error for what is not an origin.
    let (status, body) = app
        .patch_json(
            &remote,
            &json!({"allowed_origins": [format!("{files_base}files/")]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
    assert!(body["allowed_origins"].is_array(), "{body:#}");

    let allowed = json!([origin_of(&files_base), origin_of(&cdn.base_url())]);
    app.update(&remote, json!({"allowed_origins": allowed}))
        .await;
    assert_eq!(app.get_json(&remote).await["allowed_origins"], allowed);
    let task = app.sync(&mirror, &remote, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let stored = app
        .list_all(&format!(
            "{API}/content/python/packages/?repository_version={}",
            app.latest_version_href(&mirror).await
        ))
        .await;
    let mut names: Vec<&str> = stored
        .iter()
        .map(|unit| str_field(unit, "filename"))
        .collect();
    names.sort_unstable();
    let mut expected = vec![wheel_name.as_str(), sdist_name.as_str()];
    expected.sort_unstable();
    assert_eq!(names, expected);
    assert_eq!(files_host.requests_for(&format!("files/{wheel_name}")), 1);
    assert_eq!(files_host.requests_for(&format!("files/{sdist_name}")), 1);
    assert_eq!(cdn.requests_for(&format!("files/{sdist_name}")), 1);
    assert_no_credentials(&files_host, "the files host");
    assert_no_credentials(&cdn, "the CDN");
    assert_eq!(index.refused_requests(), 0, "the index got its credentials");

    // pip through a pull-through distribution of the same remote.
    let cache = app.create_python_repository("cache").await;
    let task = app
        .run_task(
            &format!("{API}/distributions/python/pypi/"),
            json!({"name": "cache", "base_path": "cache", "repository": cache, "remote": remote}),
        )
        .await;
    assert_eq!(task["state"], "completed", "{task:#}");
    tokio::task::spawn_blocking({
        let (tools, dir, index) = (
            tools.clone(),
            dir.path().to_owned(),
            app.url("/pypi/cache/simple/"),
        );
        move || pip_install_demo(&tools, &dir, &index)
    })
    .await
    .unwrap();
    assert_no_credentials(&files_host, "the files host");
    assert_no_credentials(&cdn, "the CDN");

    // Cloud metadata is refused whatever the operator allowed elsewhere.
    app.update(&remote, json!({"includes": ["granary-meta"]}))
        .await;
    let task = app.sync(&mirror, &remote, false).await;
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = error_description(&task);
    assert!(
        error.contains("169.254.169.254 is a link-local (cloud metadata) address"),
        "{error}"
    );
}

/// An upstream serving `file` with an honest manifest.
async fn serving(file: &FixtureFile) -> Upstream {
    let manifest = format!("{}\n", file.manifest_line());
    Upstream::serve_with_manifest(std::slice::from_ref(file), manifest).await
}

/// A file remote whose upstream (credentials required) redirects its file to a files host
/// reached by name: refused by the resolver until the files host's origin is allowed, then
/// followed without the credentials, for an immediate sync and for a file served on demand.
async fn file_redirects_to_another_origin_are_followed_once_allowed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let file = FixtureFile::new("pkg/a-1.0.tar.gz", vec![7u8; 8192]);
    let files_host =
        Upstream::serve_with_manifest(std::slice::from_ref(&file), String::new()).await;
    let files_base = files_host.base_url().replace("127.0.0.1", "localhost");
    let upstream = Upstream::serve_with_manifest(&[], format!("{}\n", file.manifest_line())).await;
    let (required, credentials) = index_credentials();
    upstream.require(required);
    upstream.redirect(
        &file.relative_path,
        &format!("{files_base}{}", file.relative_path),
    );
    let mut fields = json!({"name": "cdn", "url": upstream.manifest_url(), "policy": "immediate"});
    fields
        .as_object_mut()
        .unwrap()
        .extend(credentials.as_object().unwrap().clone());
    let remote = app
        .create(&format!("{API}/remotes/file/file/"), fields)
        .await;
    let remote = str_field(&remote, "pulp_href").to_owned();

    let repository = app.create_file_repository("cdn").await;
    let task = app.sync(&repository, &remote, false).await;
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = error_description(&task);
    assert!(
        error.contains("localhost resolves only to addresses the host does not fetch from"),
        "{error}"
    );
    assert!(error.contains("is loopback"), "{error}");
    assert_eq!(files_host.total_requests(), 0);

    app.update(
        &remote,
        json!({"allowed_origins": [origin_of(&files_base)]}),
    )
    .await;
    let task = app.sync(&repository, &remote, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(files_host.requests_for(&file.relative_path), 1);

    // On demand: the first GET follows the same redirect.
    app.update(&remote, json!({"policy": "on_demand"})).await;
    let lazy = app.create_file_repository("cdn-lazy").await;
    let task = app.sync(&lazy, &remote, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    app.publish_and_distribute(&lazy, "cdn-lazy").await;
    let response = app
        .anonymous()
        .get(app.url(&format!("/pulp/content/cdn-lazy/{}", file.relative_path)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), &file.bytes[..]);
    assert_no_credentials(&files_host, "the files host");
    assert_eq!(
        upstream.refused_requests(),
        0,
        "the upstream got its credentials"
    );
}

/// An upstream that answers 429 with `Retry-After: 1` to the first request for each path: the
/// sync waits and asks again (the manifest and the file twice each). With no retries allowed the
/// sync fails naming the status.
async fn rate_limited_upstreams_are_retried_after_their_wait(backend: Backend) {
    let app = TestApp::start(backend).await;
    let file = FixtureFile::new("limited.bin", vec![3u8; 1024]);
    let upstream = serving(&file).await;
    upstream.slow_down_first_requests(1, 1);
    let remote = app
        .create_file_remote("limited", &upstream.manifest_url(), "immediate")
        .await;
    let repository = app.create_file_repository("limited").await;
    let task = app.sync(&repository, &remote, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(
        upstream.manifest_requests(),
        2,
        "{:?}",
        upstream.request_counts()
    );
    assert_eq!(upstream.requests_for(&file.relative_path), 2);

    let impatient = app
        .create(
            &format!("{API}/remotes/file/file/"),
            json!({"name": "impatient", "url": upstream.url("other/PULP_MANIFEST"), "max_retries": 0}),
        )
        .await;
    let repository = app.create_file_repository("impatient").await;
    let task = app
        .sync(&repository, str_field(&impatient, "pulp_href"), false)
        .await;
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = error_description(&task);
    assert!(error.contains("429"), "{error}");
}

/// `HTTP_PROXY` in the server's environment carries the requests of a remote that names no
/// proxy, with the credentials in the variable; `NO_PROXY` exempts a host.
async fn proxy_variables_carry_remotes_without_a_proxy_of_their_own(backend: Backend) {
    let proxy = Proxy::start("env-user", "env-secret").await;
    let file = FixtureFile::new("proxied.bin", vec![9u8; 2048]);
    let upstream = serving(&file).await;
    let proxy_url = proxy
        .url()
        .replace("http://", "http://env-user:env-secret@");

    let app = TestApp::start_with(
        backend.clone(),
        AppOptions::default().env("HTTP_PROXY", &proxy_url),
    )
    .await;
    let remote = app
        .create_file_remote("proxied", &upstream.manifest_url(), "immediate")
        .await;
    let repository = app.create_file_repository("proxied").await;
    let task = app.sync(&repository, &remote, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(proxy.carried(), 2, "the manifest and the file");
    assert_eq!(proxy.refused(), 0);
    drop(app);

    let app = TestApp::start_with(
        backend,
        AppOptions::default()
            .env("HTTP_PROXY", &proxy_url)
            .env("NO_PROXY", "127.0.0.1"),
    )
    .await;
    let remote = app
        .create_file_remote("direct", &upstream.manifest_url(), "immediate")
        .await;
    let repository = app.create_file_repository("direct").await;
    let task = app.sync(&repository, &remote, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(proxy.carried(), 2, "NO_PROXY goes around the proxy");
}

/// An upstream that sends `ETag`s: a re-sync asks for the manifest with `If-None-Match`, gets
/// 304, and completes from the kept copy with nothing new; after the remote changes it asks
/// afresh. A pull-through project page asked for in a second format costs the upstream a 304
/// and still lists the file; asked for again, it costs the upstream nothing.
async fn index_pages_are_asked_for_again_conditionally(backend: Backend) {
    let app = TestApp::start(backend).await;
    let file = FixtureFile::new("kept.bin", vec![4u8; 512]);
    let upstream = serving(&file).await;
    upstream.validate_with_etags();
    let remote = app
        .create_file_remote("validated", &upstream.manifest_url(), "immediate")
        .await;
    let repository = app.create_file_repository("validated").await;
    let task = app.sync(&repository, &remote, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let synced = app.latest_version_href(&repository).await;
    assert_eq!(upstream.not_modified_answers(), 0);

    let task = app.sync(&repository, &remote, true).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(upstream.manifest_requests(), 2);
    assert_eq!(
        upstream.not_modified_answers(),
        1,
        "the manifest was not sent again"
    );
    assert_eq!(
        app.latest_version_href(&repository).await,
        synced,
        "a mirror sync from the kept manifest removes nothing"
    );
    // A changed remote (here its headers) starts afresh: its kept pages answered the old one.
    app.update(&remote, json!({"headers": [{"x-mirror": "2"}]}))
        .await;
    let task = app.sync(&repository, &remote, true).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(upstream.manifest_requests(), 3);
    assert_eq!(
        upstream.not_modified_answers(),
        1,
        "asked without a validator"
    );

    // A pull-through python page.
    let wheel = FixtureFile::new(
        "files/granary_kept-1.0-py3-none-any.whl",
        b"not really a wheel".to_vec(),
    );
    let page = FixtureFile::new(
        "simple/granary-kept/",
        format!(
            "<a href=\"../../files/granary_kept-1.0-py3-none-any.whl#sha256={}\">granary_kept-1.0-py3-none-any.whl</a>\n",
            sha256_hex(&wheel.bytes)
        )
        .into_bytes(),
    );
    let index = Upstream::serve_with_manifest(&[wheel, page], String::new()).await;
    index.validate_with_etags();
    let remote = app
        .create(
            &format!("{API}/remotes/python/python/"),
            json!({"name": "kept", "url": index.base_url(), "policy": "on_demand"}),
        )
        .await;
    let cache = app.create_python_repository("kept").await;
    let task = app
        .run_task(
            &format!("{API}/distributions/python/pypi/"),
            json!({"name": "kept", "base_path": "kept", "repository": cache,
                   "remote": str_field(&remote, "pulp_href")}),
        )
        .await;
    assert_eq!(task["state"], "completed", "{task:#}");
    // The host keeps the page it served (for the plugin's max age); another `Accept` is another
    // page, which the plugin builds from the upstream's, asked for conditionally this time.
    let accepts = [
        "text/html",
        "application/vnd.pypi.simple.v1+json",
        "text/html",
    ];
    for (round, accept) in accepts.into_iter().enumerate() {
        let page = app
            .anonymous()
            .get(app.url("/pypi/kept/simple/granary-kept/"))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK, "round {round}");
        let page = page.text().await.unwrap();
        assert!(page.contains("granary_kept-1.0-py3-none-any.whl"), "{page}");
    }
    assert_eq!(
        index.requests_for("simple/granary-kept/"),
        2,
        "the third page was the host's kept answer"
    );
    assert_eq!(index.not_modified_answers(), 1);
}

/// A TLS upstream signed by an authority only `SSL_CERT_FILE` names: a server started with it
/// trusts the upstream without the remote's `ca_cert` (the system's trust store is what remotes
/// use, as curl and pip do), and the upstream, offering HTTP/2, is spoken to in HTTP/2.
async fn the_system_trust_store_is_used_and_http2_spoken(backend: Backend) {
    let pki = tokio::task::spawn_blocking(Pki::generate)
        .await
        .expect("generate certificates");
    let fixture = Fixture::generate(3, 41);
    let upstream = Upstream::serve_tls(&fixture, pki.server_config()).await;
    let trust = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(trust.path(), &pki.ca_cert).unwrap();
    let app = TestApp::start_with(
        backend,
        AppOptions::default().env("SSL_CERT_FILE", trust.path().to_str().unwrap()),
    )
    .await;
    // The upstream wants a client certificate; the authority comes from the environment.
    let remote = app
        .create(
            &format!("{API}/remotes/file/file/"),
            json!({"name": "trusted", "url": upstream.manifest_url(),
                   "client_cert": pki.client_cert, "client_key": pki.client_key}),
        )
        .await;
    let repository = app.create_file_repository("trusted").await;
    let task = app
        .sync(&repository, str_field(&remote, "pulp_href"), false)
        .await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(upstream.file_requests(), 3);
    assert_eq!(
        upstream.http2_requests(),
        4,
        "the manifest and three files over HTTP/2"
    );
}
