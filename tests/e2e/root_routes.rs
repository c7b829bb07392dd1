//! WIT 0.3.0's routes at the server's root, with the `blobs` test component, whose root is
//! `/registry/`: a request there reaches the plugin's distribution with the longest base path
//! that prefixes the path, slashes in the base path included, as `/v2/<name>/…` reaches a
//! registry's repository; a request that matches no distribution reaches the plugin alone, which
//! may answer but changes nothing, or ask for a repository and distribution to be created for a
//! push to a new name, which then serve the request. (Roots the host or another plugin uses are refused at install:
//! `plugins::bad_components_are_refused_with_a_clear_reason`.)

use reqwest::StatusCode;
use serde_json::json;

use crate::streamed_bodies::{blob_shelf, bytes_of, install_blobs, sha256};
use crate::support::curl::Downloads;
use crate::support::pulp::API;
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(
    a_root_request_reaches_the_distribution_named_by_its_longest_base_path,
    a_root_request_matching_no_distribution_reaches_the_plugin_alone,
    a_push_to_a_new_name_creates_its_repository_and_distribution_for_those_who_may,
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
    blob_shelf(&app, "team-app", "team/app").await;
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
        "/registry/nowhere",
        false,
        Vec::new(),
    )
    .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // With credentials the plugin is asked, but without a repository it can start nothing.
    let refused = request(
        &app,
        reqwest::Method::POST,
        "/registry/nowhere",
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
    // The catalogue: the plugin's public distributions, a page at a time, hidden ones left out.
    for (name, hidden) in [("alpha", false), ("zz-hidden", true)] {
        app.run_task(
            &format!("{API}/distributions/blobs/blobs/"),
            json!({"name": name, "base_path": name, "hidden": hidden}),
        )
        .await;
    }
    for (query, expected) in [
        ("", "alpha\nteam/app"),
        ("?n=1", "alpha"),
        ("?last=alpha", "team/app"),
        ("?last=team/app", ""),
    ] {
        let path = format!("/registry/_catalog{query}");
        let catalog = request(&app, reqwest::Method::GET, &path, false, Vec::new()).await;
        assert_eq!(catalog.status(), StatusCode::OK, "{query}");
        assert_eq!(catalog.text().await.unwrap(), expected, "{query}");
    }
    // Other segments of the root are not the plugin's, and not the host's either.
    let unknown = request(&app, reqwest::Method::GET, "/registryx/", false, Vec::new()).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

/// Creates the user `username` holding the global `roles`; returns curl's `user:password`.
async fn user_with_roles(app: &TestApp, username: &str, roles: &[String]) -> String {
    let user = app
        .create(
            &format!("{API}/users/"),
            json!({"username": username, "password": format!("{username}-password-1")}),
        )
        .await;
    let href = user["pulp_href"].as_str().unwrap().to_owned();
    for role in roles {
        app.create(
            &format!("{href}roles/"),
            json!({"role": role, "content_object": null}),
        )
        .await;
    }
    format!("{username}:{username}-password-1")
}

/// curl POST at `path` with `credentials`; returns the status and the `upload-id` answered.
async fn push_start(app: &TestApp, path: &str, credentials: &[&str]) -> (u16, Option<String>) {
    let mut arguments = vec!["-X", "POST"];
    arguments.extend(credentials);
    let answer = Downloads::new().request(&app.url(path), &arguments).await;
    (answer.status, answer.header("upload-id").map(str::to_owned))
}

/// The base paths of the blobs distributions.
async fn base_paths(app: &TestApp) -> Vec<String> {
    let listed = app
        .list_all(&format!("{API}/distributions/blobs/blobs/"))
        .await;
    let mut paths: Vec<String> = listed
        .iter()
        .filter_map(|distribution| distribution["base_path"].as_str().map(str::to_owned))
        .collect();
    paths.sort();
    paths
}

async fn a_push_to_a_new_name_creates_its_repository_and_distribution_for_those_who_may(
    backend: Backend,
) {
    let app = app_with_team_app(backend).await;
    let (user, password) = app.credentials();
    let admin = format!("{user}:{password}");

    // The admin's push to a new name: created, then served as if it had been there.
    let (status, id) = push_start(&app, "/registry/fresh/name/uploads/", &["-u", &admin]).await;
    assert_eq!(status, 202);
    let id = id.expect("an upload session at the new distribution");
    let blob = bytes_of(30_000, 11);
    let digest = sha256(&blob);
    let path = format!("/registry/fresh/name/uploads/{id}?digest={digest}");
    let pushed = request(&app, reqwest::Method::PUT, &path, true, blob.clone()).await;
    assert_eq!(pushed.status(), StatusCode::CREATED);
    let pulled = Downloads::new()
        .get(&app.url(&format!("/registry/fresh/name/blobs/{digest}")))
        .await;
    assert_eq!(pulled.as_deref(), Ok(&blob[..]));
    let (_, repositories) = app
        .get(&format!("{API}/repositories/blobs/blobs/?name=fresh/name"))
        .await;
    assert_eq!(repositories["count"], 1, "{repositories:#}");

    // Those who may create repositories and distributions of the plugin may push new names, and
    // own what they created; others may not, and nothing is created for them.
    let (_, roles) = app
        .get(&format!("{API}/roles/?name__startswith=blobs.&limit=100"))
        .await;
    let creators: Vec<String> = roles["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|role| role["name"].as_str())
        .filter(|name| name.ends_with("_creator"))
        .filter(|name| name.contains("repository") || name.contains("distribution"))
        .map(str::to_owned)
        .collect();
    assert_eq!(creators.len(), 2, "{roles:#}");
    let pusher = user_with_roles(&app, "pusher", &creators).await;
    let reader = user_with_roles(&app, "reader", &[]).await;
    let (status, id) = push_start(&app, "/registry/team2/uploads/", &["-u", &pusher]).await;
    assert_eq!(status, 202);
    let access = Downloads::new()
        .request(&app.url("/registry/team2/access"), &["-u", &pusher])
        .await;
    assert_eq!(
        access.body, b"pull=true push=true delete=true",
        "the pusher owns it"
    );
    assert!(id.is_some());
    assert_eq!(
        push_start(&app, "/registry/denied/uploads/", &["-u", &reader])
            .await
            .0,
        403
    );
    assert_eq!(
        push_start(&app, "/registry/denied/uploads/", &[]).await.0,
        401
    );
    // docker's flow: a token for the new name, then the push with it.
    let answer = Downloads::new()
        .request(
            &app.url("/token/?scope=repository:tokened:pull,push"),
            &["-u", &pusher],
        )
        .await;
    let token: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    let authorization = format!("Authorization: Bearer {}", token["token"].as_str().unwrap());
    let (status, _) = push_start(&app, "/registry/tokened/uploads/", &["-H", &authorization]).await;
    assert_eq!(status, 202);
    assert_eq!(
        base_paths(&app).await,
        ["fresh/name", "team/app", "team2", "tokened"]
    );
}
