//! The REST API's own rules: who may call it, and what it refuses.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::pulp::API;
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(
    api_requires_authentication,
    duplicate_repository_name_is_rejected
);

/// The status endpoint is public; everything else under `/pulp/api/v3/` answers 401 without
/// credentials or with a wrong password, and 200 with the admin's.
async fn api_requires_authentication(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.anonymous();
    let repositories = app.url(&format!("{API}/repositories/file/file/"));

    let status = client
        .get(app.url(&format!("{API}/status/")))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), StatusCode::OK);

    let anonymous = client.get(&repositories).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let (user, _) = app.credentials();
    let wrong = client
        .get(&repositories)
        .basic_auth(user, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let (user, password) = app.credentials();
    let admin = client
        .get(&repositories)
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::OK);
}

/// A second repository with a taken name is refused with 400 and an error on the `name` field.
async fn duplicate_repository_name_is_rejected(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.create_file_repository("twice").await;
    let (status, body) = app
        .post_json(
            &format!("{API}/repositories/file/file/"),
            &json!({"name": "twice"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["name"].is_array(),
        "the error is on the name field: {body}"
    );
}
