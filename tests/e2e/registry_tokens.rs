//! WIT 0.3.0's caller access and challenges, and the token endpoint of container clients, with
//! the `blobs` test component (root `/registry/`) and curl: what `handle` is told the caller may
//! do; a plugin's 401 completed into a Basic or Bearer challenge; the Bearer flow of docker and
//! skopeo (a 401 at the root, a token from `/token/` for a scope, requests with the token)
//! granting only what the user may do, only where the token says, only for minutes, and never
//! at the REST API.

use serde_json::{Value, json};

use crate::streamed_bodies::{blob_shelf, bytes_of, install_blobs, sha256};
use crate::support::curl::{CurlResponse, Downloads};
use crate::support::pulp::API;
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(
    handle_is_told_what_the_caller_may_do_and_its_challenges_are_completed,
    a_registry_token_grants_what_the_user_may_do_where_it_says,
    a_guarded_distribution_lets_a_token_of_a_user_who_may_download_through,
);

/// The blobs plugin with a distribution of a new repository at `team/app`, and a user `reader`
/// who may do nothing but what anonymous clients may.
async fn registry(backend: Backend) -> TestApp {
    let app = TestApp::start(backend).await;
    install_blobs(&app).await;
    blob_shelf(&app, "team-app", "team/app").await;
    app.create(
        &format!("{API}/users/"),
        json!({"username": "reader", "password": "reader-password-1"}),
    )
    .await;
    app
}

/// curl at `path` of the server with `arguments` (credentials, method, body).
async fn curl(app: &TestApp, path: &str, arguments: &[&str]) -> CurlResponse {
    Downloads::new().request(&app.url(path), arguments).await
}

fn admin(app: &TestApp) -> String {
    let (user, password) = app.credentials();
    format!("{user}:{password}")
}

/// A token from the token endpoint for `scope`, with curl's `credentials` (`user:password`),
/// or anonymously.
async fn token(app: &TestApp, scope: &str, credentials: Option<&str>) -> String {
    let path = format!("/token/?service=granary&scope={scope}");
    let mut arguments = Vec::new();
    if let Some(credentials) = credentials {
        arguments.extend(["-u", credentials]);
    }
    let answer = curl(app, &path, &arguments).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let answer: Value = serde_json::from_slice(&answer.body).expect("a JSON answer");
    assert_eq!(answer["expires_in"], 300, "{answer:#}");
    assert_eq!(answer["token"], answer["access_token"], "{answer:#}");
    answer["token"].as_str().expect("a token").to_owned()
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

async fn handle_is_told_what_the_caller_may_do_and_its_challenges_are_completed(backend: Backend) {
    let app = registry(backend).await;
    let access = "/registry/team/app/access";
    let admin = admin(&app);
    let answer = curl(&app, access, &["-u", &admin]).await;
    assert_eq!(answer.body, b"pull=true push=true delete=true");
    let answer = curl(&app, access, &["-u", "reader:reader-password-1"]).await;
    assert_eq!(answer.body, b"pull=true push=false delete=false");
    let answer = curl(&app, access, &[]).await;
    assert_eq!(answer.body, b"pull=true push=false delete=false");

    let origin = app.url("");
    let origin = origin.trim_end_matches('/');
    let service = origin.trim_start_matches("http://");
    let basic = curl(&app, "/registry/team/app/challenge/Basic", &[]).await;
    assert_eq!(basic.status, 401);
    assert_eq!(
        basic.header("www-authenticate"),
        Some("Basic realm=\"granary\"")
    );
    let bearer = curl(&app, "/registry/team/app/challenge/Bearer", &[]).await;
    assert_eq!(
        bearer.header("www-authenticate"),
        Some(
            format!(
                "Bearer realm=\"{origin}/token/\",service=\"{service}\",scope=\"repository:team/app:pull\""
            )
            .as_str()
        )
    );
    // What the host does not complete, it does not pass on.
    let other = curl(&app, "/registry/team/app/challenge/Negotiate%20abc", &[]).await;
    assert_eq!(other.status, 401);
    assert_eq!(other.header("www-authenticate"), None);
    // At the root, where no distribution matches, the challenge names no scope.
    let root = curl(&app, "/registry/", &[]).await;
    assert_eq!(root.status, 401);
    assert_eq!(
        root.header("www-authenticate"),
        Some(format!("Bearer realm=\"{origin}/token/\",service=\"{service}\"").as_str())
    );
}

async fn a_registry_token_grants_what_the_user_may_do_where_it_says(backend: Backend) {
    let app = registry(backend).await;
    let admin = admin(&app);
    let blob = bytes_of(50_000, 10);
    let digest = sha256(&blob);
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), &blob).expect("write the blob");
    let data = format!("@{}", file.path().display());
    let blob_path = format!("/registry/team/app/blobs/{digest}");
    let push = |authorization: String| {
        let (data, blob_path) = (data.clone(), blob_path.clone());
        let app = &app;
        async move {
            let arguments = [
                "-X",
                "PUT",
                "-H",
                &authorization,
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &data,
            ];
            curl(app, &blob_path, &arguments).await
        }
    };

    // docker's flow: the version check, a token for the scope with the user's credentials, then
    // everything with the token.
    let writer = token(&app, "repository:team/app:pull,push", Some(&admin)).await;
    assert!(writer.starts_with("grr_"), "{writer}");
    let check = curl(&app, "/registry/", &["-H", &bearer(&writer)]).await;
    assert_eq!(check.status, 200);
    let access = curl(&app, "/registry/team/app/access", &["-H", &bearer(&writer)]).await;
    assert_eq!(
        access.body, b"pull=true push=true delete=false",
        "no delete asked for"
    );
    assert_eq!(push(bearer(&writer)).await.status, 201);
    let pulled = curl(&app, &blob_path, &["-H", &bearer(&writer)]).await;
    assert_eq!(pulled.body, blob);

    // A token asked for with a password that does not check out is refused.
    let wrong = curl(
        &app,
        "/token/?scope=repository:team/app:pull",
        &["-u", "reader:not-the-password"],
    )
    .await;
    assert_eq!(wrong.status, 401);
    // A reader's or an anonymous token asks for push in vain; the push is then refused with the
    // challenge for the scope it needs.
    for credentials in [Some("reader:reader-password-1"), None] {
        let reader = token(&app, "repository:team/app:pull,push", credentials).await;
        let refused = push(bearer(&reader)).await;
        assert_eq!(refused.status, 401, "{credentials:?}");
        assert!(
            refused.header("www-authenticate").is_some_and(
                |challenge| challenge.contains("scope=\"repository:team/app:pull,push\"")
            ),
            "{:?}",
            refused.headers
        );
        let pulled = curl(&app, &blob_path, &["-H", &bearer(&reader)]).await;
        assert_eq!(pulled.body, blob, "{credentials:?} may pull");
    }
    // Without credentials at all, a push at the registry's root is challenged the same way:
    // registry clients (oras, docker) know only the token flow.
    let anonymous = push("X-Client: anonymous".to_owned()).await;
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous
            .header("www-authenticate")
            .is_some_and(|challenge| challenge.starts_with("Bearer realm=")
                && challenge.contains("scope=\"repository:team/app:pull,push\"")),
        "{:?}",
        anonymous.headers
    );
    // The admin's token for another name grants nothing here.
    let elsewhere = token(&app, "repository:team/other:pull,push", Some(&admin)).await;
    assert_eq!(push(bearer(&elsewhere)).await.status, 401);

    // A token is no key to the REST API, and a changed one opens nothing.
    let rest = curl(
        &app,
        &format!("{API}/repositories/"),
        &["-H", &bearer(&writer)],
    )
    .await;
    assert_eq!(rest.status, 401, "{}", String::from_utf8_lossy(&rest.body));
    let mut forged = writer.clone().into_bytes();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(push(bearer(&forged)).await.status, 401);
}

async fn a_guarded_distribution_lets_a_token_of_a_user_who_may_download_through(backend: Backend) {
    let app = registry(backend).await;
    let admin = admin(&app);
    let guard = app
        .create(
            &format!("{API}/contentguards/core/rbac/"),
            json!({"name": "private"}),
        )
        .await;
    let repository = app
        .create(
            &format!("{API}/repositories/blobs/blobs/"),
            json!({"name": "private-app"}),
        )
        .await;
    app.run_task(
        &format!("{API}/distributions/blobs/blobs/"),
        json!({"name": "private-app", "base_path": "private/app",
               "repository": repository["pulp_href"], "content_guard": guard["pulp_href"]}),
    )
    .await;
    let blob = bytes_of(20_000, 12);
    let digest = sha256(&blob);
    let blob_path = format!("/registry/private/app/blobs/{digest}");
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), &blob).expect("write the blob");
    let data = format!("@{}", file.path().display());
    let pushed = curl(
        &app,
        &blob_path,
        &[
            "-X",
            "PUT",
            "-u",
            &admin,
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &data,
        ],
    )
    .await;
    assert_eq!(pushed.status, 201);

    let pull = |token: String| {
        let (app, blob_path) = (&app, blob_path.clone());
        async move { curl(app, &blob_path, &["-H", &bearer(&token)]).await }
    };
    let admins = token(&app, "repository:private/app:pull", Some(&admin)).await;
    let pulled = pull(admins).await;
    assert_eq!(pulled.status, 200);
    assert_eq!(pulled.body, blob);
    let readers = token(
        &app,
        "repository:private/app:pull",
        Some("reader:reader-password-1"),
    )
    .await;
    assert_eq!(
        pull(readers).await.status,
        403,
        "the reader may not download"
    );
    let anonymous = token(&app, "repository:private/app:pull", None).await;
    assert_eq!(pull(anonymous).await.status, 401);
    let elsewhere = token(&app, "repository:team/app:pull", Some(&admin)).await;
    assert_eq!(pull(elsewhere).await.status, 401, "no pull granted here");
}
