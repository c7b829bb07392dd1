//! Users and API tokens: the admin created at start-up is a staff user of `users/`; staff manage
//! users; a token authenticates as `Bearer` and as twine's `__token__` password until it is
//! deleted; a user who is not staff cannot manage users.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::pulp_cli::PulpCli;
use crate::support::pulp::{API, str_field};
use crate::support::requests::As;
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(
    tokens_authenticate_until_they_are_deleted,
    only_staff_manage_users,
    pulp_cli_manages_users,
);

/// Creates a user who is not staff; returns its href.
async fn create_user(app: &TestApp, username: &str, password: &str) -> String {
    let user = app
        .create(
            &format!("{API}/users/"),
            json!({"username": username, "password": password, "email": "a@example.com"}),
        )
        .await;
    assert_eq!(user["username"], username, "{user:#}");
    assert_eq!(user["is_staff"], false, "{user:#}");
    assert_eq!(user["is_active"], true, "{user:#}");
    assert!(
        user.get("password").is_none(),
        "the password is write-only: {user:#}"
    );
    str_field(&user, "pulp_href").to_owned()
}

/// A user creates a token for themselves; its secret is answered once and never listed. The
/// token works as `Authorization: Bearer` and as the password of the `__token__` user (what
/// twine and uv send); once deleted, both are refused.
async fn tokens_authenticate_until_they_are_deleted(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = create_user(&app, "alice", "alice-password").await;
    let as_alice = As::Basic("alice", "alice-password");
    let repositories = format!("{API}/repositories/file/file/");

    let created = app
        .request(
            Method::POST,
            &format!("{alice}tokens/"),
            as_alice,
            Some(&json!({"name": "ci"})),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = str_field(&created.body, "token").to_owned();
    let token_href = str_field(&created.body, "pulp_href").to_owned();
    assert!(
        token_href.starts_with(&format!("{alice}tokens/")),
        "{token_href}"
    );

    let listed = app
        .request(Method::GET, &format!("{alice}tokens/"), as_alice, None, &[])
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["count"], 1, "{}", listed.body);
    assert!(
        !listed.body.to_string().contains(&token),
        "a listing never shows the secret: {}",
        listed.body
    );

    let bearer = app
        .request(Method::GET, &repositories, As::Bearer(&token), None, &[])
        .await;
    assert_eq!(bearer.status, StatusCode::OK, "{}", bearer.body);
    let twine = app
        .request(
            Method::GET,
            &repositories,
            As::Basic("__token__", &token),
            None,
            &[],
        )
        .await;
    assert_eq!(twine.status, StatusCode::OK, "{}", twine.body);
    let me = app
        .request(
            Method::GET,
            &format!("{API}/users/"),
            As::Bearer(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(me.body["count"], 1, "a token acts as its user: {}", me.body);
    assert_eq!(me.body["results"][0]["username"], "alice");

    let wrong = format!("{token}x");
    let forged = app
        .request(Method::GET, &repositories, As::Bearer(&wrong), None, &[])
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    let deleted = app
        .request(Method::DELETE, &token_href, as_alice, None, &[])
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    for who in [As::Bearer(&token), As::Basic("__token__", &token)] {
        let refused = app
            .request(Method::GET, &repositories, who, None, &[])
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "a deleted token is refused ({who:?})"
        );
    }

    let expired = app
        .request(
            Method::POST,
            &format!("{alice}tokens/"),
            as_alice,
            Some(&json!({"expires_at": "2000-01-01T00:00:00Z"})),
            &[],
        )
        .await;
    assert_eq!(expired.status, StatusCode::BAD_REQUEST, "{}", expired.body);
    assert!(expired.body["expires_at"].is_array(), "{}", expired.body);
}

/// The admin is listed as active staff. A user who is not staff sees only themselves, and may not
/// create, change or delete users (403); staff can, and a deactivated user can no longer log in.
async fn only_staff_manage_users(backend: Backend) {
    let app = TestApp::start(backend).await;
    let users = app.list_all(&format!("{API}/users/")).await;
    let admin = users
        .iter()
        .find(|user| user["username"] == "admin")
        .unwrap_or_else(|| panic!("the admin is a user: {users:#?}"));
    assert_eq!(admin["is_staff"], true, "{admin:#}");
    assert_eq!(admin["is_active"], true, "{admin:#}");
    assert!(admin["date_joined"].is_string(), "{admin:#}");
    let admin_href = str_field(admin, "pulp_href").to_owned();

    let bob = create_user(&app, "bob", "bob-password").await;
    let as_bob = As::Basic("bob", "bob-password");
    assert_eq!(
        app.count(&format!("{API}/users/?username__contains=ob"))
            .await,
        1
    );
    assert_eq!(
        app.count(&format!("{API}/users/?username__contains=_"))
            .await,
        0,
        "_ is a character, not a wildcard"
    );
    assert_eq!(app.count(&format!("{API}/users/?is_staff=true")).await, 1);

    let create = app
        .request(
            Method::POST,
            &format!("{API}/users/"),
            as_bob,
            Some(&json!({"username": "mallory", "password": "x"})),
            &[],
        )
        .await;
    assert_eq!(create.status, StatusCode::FORBIDDEN, "{}", create.body);
    let promote = app
        .request(
            Method::PATCH,
            &bob,
            as_bob,
            Some(&json!({"is_staff": true})),
            &[],
        )
        .await;
    assert_eq!(promote.status, StatusCode::FORBIDDEN, "{}", promote.body);
    let delete_admin = app
        .request(Method::DELETE, &admin_href, as_bob, None, &[])
        .await;
    assert_eq!(delete_admin.status, StatusCode::FORBIDDEN);
    let admin_tokens = app
        .request(
            Method::POST,
            &format!("{admin_href}tokens/"),
            as_bob,
            Some(&json!({})),
            &[],
        )
        .await;
    assert_eq!(
        admin_tokens.status,
        StatusCode::NOT_FOUND,
        "a user cannot make tokens for another"
    );
    let listed = app
        .request(Method::GET, &format!("{API}/users/"), as_bob, None, &[])
        .await;
    assert_eq!(listed.body["count"], 1, "{}", listed.body);

    let (status, body) = app
        .post_json(&format!("{API}/users/"), &json!({"username": "bob"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["username"].is_array(), "{body}");

    let (status, body) = app.patch_json(&bob, &json!({"is_active": false})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refused = app
        .request(Method::GET, &format!("{API}/users/"), as_bob, None, &[])
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    assert_eq!(app.delete_href(&bob).await.status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&bob).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// pulp-cli's `user` commands, unchanged: create, list by name, show, update, destroy.
async fn pulp_cli_manages_users(backend: Backend) {
    let app = TestApp::start(backend).await;
    let pulp = PulpCli::new(&app);
    let created = pulp
        .run(&[
            "user",
            "create",
            "--username",
            "carol",
            "--password",
            "carol-password",
            "--email",
            "carol@example.com",
            "--no-staff",
        ])
        .await;
    assert_eq!(created["username"], "carol", "{created:#}");
    assert!(created.get("password").is_none(), "{created:#}");
    let usernames = |listed: Value| -> Vec<String> {
        listed
            .as_array()
            .expect("a list")
            .iter()
            .map(|user| str_field(user, "username").to_owned())
            .collect()
    };
    let listed = pulp.run(&["user", "list", "--ordering", "username"]).await;
    assert_eq!(usernames(listed), ["admin", "carol"]);
    let updated = pulp
        .run(&[
            "user",
            "update",
            "--username",
            "carol",
            "--first-name",
            "Carol",
            "--staff",
        ])
        .await;
    let shown = pulp.run(&["user", "show", "--username", "carol"]).await;
    assert_eq!(shown["first_name"], "Carol", "{updated:#} {shown:#}");
    assert_eq!(shown["is_staff"], true, "{shown:#}");
    let carol = As::Basic("carol", "carol-password");
    let as_carol = app
        .request(Method::GET, &format!("{API}/users/"), carol, None, &[])
        .await;
    assert_eq!(as_carol.status, StatusCode::OK, "the password works");
    // Passwords Pulp's validators refuse are refused, on the field and in their words, and the
    // password stays what it was.
    for (password, message) in [
        (
            "short",
            "This password is too short. It must contain at least 8 characters.",
        ),
        ("20261208", "This password is entirely numeric."),
    ] {
        let set = [
            "user",
            "update",
            "--username",
            "carol",
            "--password",
            password,
        ];
        let error = pulp.fails(&set).await;
        assert!(error.contains(message), "{password}: {error}");
        let create = [
            "user",
            "create",
            "--username",
            "dan",
            "--password",
            password,
        ];
        let error = pulp.fails(&create).await;
        assert!(error.contains(message), "{password}: {error}");
    }
    let as_carol = app
        .request(Method::GET, &format!("{API}/users/"), carol, None, &[])
        .await;
    assert_eq!(as_carol.status, StatusCode::OK, "the password is unchanged");

    pulp.run(&["user", "destroy", "--username", "carol"]).await;
    let listed = pulp.run(&["user", "list"]).await;
    assert_eq!(usernames(listed), ["admin"]);
}
