//! WIT 0.3.0's routes at the server's root, with the `blobs` test component, whose root is
//! `/registry/`: a request there reaches the plugin's distribution with the longest base path
//! that prefixes the path, slashes in the base path included, as `/v2/<name>/…` reaches a
//! registry's repository; a request that matches no distribution reaches the plugin alone, which
//! may answer but changes nothing. (Roots the host or another plugin uses are refused at install:
//! `plugins::bad_components_are_refused_with_a_clear_reason`.)

use reqwest::StatusCode;
use serde_json::json;

use crate::streamed_bodies::{bytes_of, install_blobs, sha256};
use crate::support::curl::Downloads;
use crate::support::pulp::API;
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(
    a_root_request_reaches_the_distribution_named_by_its_longest_base_path,
    a_root_request_matching_no_distribution_reaches_the_plugin_alone,
);

/// The blobs plugin with a distribution of a new repository at `team/app`.
async fn app_with_team_app(backend: Backend) -> TestApp {
    let app = TestApp::start(backend).await;
    install_blobs(&app).await;
    let (_, plugin) = app.get(&format!("{API}/plugins/blobs/")).await;
    assert_eq!(
        plugin["root"], "registry",
        "the operator sees the root: {plugin:#}"
    );
    let repository = app
        .create(
            &format!("{API}/repositories/blobs/blobs/"),
            json!({"name": "team-app"}),
        )
        .await;
    app.run_task(
        &format!("{API}/distributions/blobs/blobs/"),
        json!({"name": "team-app", "base_path": "team/app", "repository": repository["pulp_href"]}),
    )
    .await;
    app
}

/// `method` on `path` of the server, as the admin when `admin`.
async fn request(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    admin: bool,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = app.anonymous().request(method, app.url(path)).body(body);
    if admin {
        let (user, password) = app.credentials();
        request = request.basic_auth(user, Some(password));
    }
    request.send().await.expect("the request is answered")
}

async fn a_root_request_reaches_the_distribution_named_by_its_longest_base_path(backend: Backend) {
    let app = app_with_team_app(backend).await;
    let blob = bytes_of(100_000, 9);
    let digest = sha256(&blob);

    let path = format!("/registry/team/app/blobs/{digest}");
    let pushed = request(&app, reqwest::Method::PUT, &path, true, blob.clone()).await;
    assert_eq!(pushed.status(), StatusCode::CREATED);
    // Pulled at the root with curl, and at the plugin's distribution prefix: one distribution.
    for path in [path.clone(), format!("/blobs/team/app/blobs/{digest}")] {
        let pulled = Downloads::new().get(&app.url(&path)).await;
        assert_eq!(pulled.as_deref(), Ok(&blob[..]), "{path}");
    }
    // `team` is no distribution: the request reaches the plugin without one, which knows no
    // `app/blobs/…` there.
    let elsewhere = request(
        &app,
        reqwest::Method::GET,
        &format!("/registry/team/blobs/{digest}"),
        false,
        Vec::new(),
    )
    .await;
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
    // A write at the root needs credentials before the plugin is asked, as under a prefix.
    let anonymous = request(&app, reqwest::Method::PUT, &path, false, blob).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

async fn a_root_request_matching_no_distribution_reaches_the_plugin_alone(backend: Backend) {
    let app = app_with_team_app(backend).await;
    let check = request(&app, reqwest::Method::GET, "/registry/", true, Vec::new()).await;
    assert_eq!(check.status(), StatusCode::OK);
    assert_eq!(
        check.headers()["x-api-version"],
        "blobs/1",
        "the plugin's own header passes"
    );
    assert_eq!(check.text().await.unwrap(), "registry");

    let anonymous = request(
        &app,
        reqwest::Method::POST,
        "/registry/new/name/uploads/",
        false,
        Vec::new(),
    )
    .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // With credentials the plugin is asked, but without a repository it can start nothing.
    let refused = request(
        &app,
        reqwest::Method::POST,
        "/registry/new/name/uploads/",
        true,
        Vec::new(),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body = refused.text().await.unwrap();
    assert!(
        body.contains("requests that may change the repository"),
        "{body}"
    );
    // A form's files are not stored for no repository.
    let (status, body) = app
        .post_multipart(
            "/registry/new/name/uploads/",
            &[("file", Some("f.bin"), b"bytes")],
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    // Other segments of the root are not the plugin's, and not the host's either.
    let unknown = request(&app, reqwest::Method::GET, "/registryx/", false, Vec::new()).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}
