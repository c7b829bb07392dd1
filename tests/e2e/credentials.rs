//! Passwords and failed log-ins: a user whose password an older Granary stored as salted sha256
//! logs in and is then stored as argon2id; wrong passwords are throttled per username and per
//! client address with 429 and `Retry-After`, whatever the password once throttled.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::fixture::sha256_hex;
use crate::support::pulp::API;
use crate::support::{AppOptions, Backend, TestApp};

sqlite_and_postgres!(
    a_legacy_sha256_password_logs_in_and_is_stored_as_argon2id,
    failed_log_ins_are_throttled_per_user_and_per_address,
);

/// A protected route any authenticated user may read.
const PROTECTED: &str = "/pulp/api/v3/tasks/";

async fn create_user(app: &TestApp, username: &str, password: &str) {
    app.create(
        &format!("{API}/users/"),
        json!({"username": username, "password": password}),
    )
    .await;
}

/// The status of a GET of a protected route with Basic credentials, and its `Retry-After`.
async fn log_in(app: &TestApp, username: &str, password: &str) -> (StatusCode, Option<String>) {
    let response = app
        .anonymous()
        .get(app.url(PROTECTED))
        .basic_auth(username, Some(password))
        .send()
        .await
        .expect("request");
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status(), retry_after)
}

async fn stored_hash(app: &TestApp, username: &str) -> String {
    app.sql(
        "SELECT password_hash FROM users WHERE username = $1",
        &[username],
    )
    .await
    .remove(0)
}

async fn a_legacy_sha256_password_logs_in_and_is_stored_as_argon2id(backend: Backend) {
    let app = TestApp::start(backend).await;
    create_user(&app, "legacy", "old-secret").await;
    assert!(
        stored_hash(&app, "legacy").await.starts_with("$argon2id$"),
        "a new password is stored as argon2id"
    );
    // What Granary before argon2 stored: hex sha256 of "salt:password".
    let legacy = sha256_hex(b"pepper:old-secret");
    app.sql(
        "UPDATE users SET password_salt = 'pepper', password_hash = $1 WHERE username = 'legacy'",
        &[&legacy],
    )
    .await;

    assert_eq!(
        log_in(&app, "legacy", "wrong").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        stored_hash(&app, "legacy").await,
        legacy,
        "no upgrade on a failure"
    );
    assert_eq!(log_in(&app, "legacy", "old-secret").await.0, StatusCode::OK);
    let upgraded = stored_hash(&app, "legacy").await;
    assert!(upgraded.starts_with("$argon2id$"), "upgraded: {upgraded}");
    // The upgraded hash verifies the same password, from the cache and after a restart alike.
    assert_eq!(log_in(&app, "legacy", "old-secret").await.0, StatusCode::OK);
    assert_eq!(
        log_in(&app, "legacy", "pepper:old-secret").await.0,
        StatusCode::UNAUTHORIZED
    );

    // A password changed behind this process's back (another process) is what counts at once:
    // the cached verification is tied to the stored hash.
    app.sql(
        "UPDATE users SET password_salt = 'other', password_hash = $1 WHERE username = 'legacy'",
        &[&sha256_hex(b"other:new-secret")],
    )
    .await;
    assert_eq!(
        log_in(&app, "legacy", "old-secret").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(log_in(&app, "legacy", "new-secret").await.0, StatusCode::OK);
    // A disabled user is refused at once too.
    app.sql(
        "UPDATE users SET is_active = 0 WHERE username = 'legacy'",
        &[],
    )
    .await;
    assert_eq!(
        log_in(&app, "legacy", "new-secret").await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn failed_log_ins_are_throttled_per_user_and_per_address(backend: Backend) {
    let options = AppOptions::default()
        .env("GRANARY_LOGIN_FAILURES_PER_USER", "3")
        .env("GRANARY_LOGIN_FAILURES_PER_ADDRESS", "8");
    let app = TestApp::start_with(backend, options).await;
    for user in ["alice", "bob", "carol"] {
        create_user(&app, user, &format!("{user}-password")).await;
    }

    for _ in 0..3 {
        assert_eq!(
            log_in(&app, "alice", "wrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, retry_after) = log_in(&app, "alice", "wrong").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let seconds: u64 = retry_after
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&seconds), "Retry-After: {seconds}");
    let response = app
        .anonymous()
        .get(app.url(PROTECTED))
        .basic_auth("alice", Some("wrong"))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert!(body["detail"].is_string(), "the JSON envelope: {body}");
    // The right password while throttled is refused without being checked.
    assert_eq!(
        log_in(&app, "alice", "alice-password").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another user is not blocked by alice's throttle.
    assert_eq!(log_in(&app, "bob", "bob-password").await.0, StatusCode::OK);

    // Per address: 3 failures so far from 127.0.0.1; 5 more (other usernames) reach 8.
    for attempt in 0..5 {
        assert_eq!(
            log_in(&app, &format!("nobody-{attempt}"), "wrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, retry_after) = log_in(&app, "carol", "carol-password").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is throttled"
    );
    assert!(retry_after.is_some());
}
