//! Issue #17, item 6: content guards. Each kind protects a published file distribution as curl
//! sees it: nothing shown is a 401 with a `WWW-Authenticate` challenge, what the guard asks for
//! is the file's bytes, anything else a 403. Guards are scoped by their access policies; pip
//! installs from an rbac-guarded index with credentials in its URL and is refused without;
//! pulp-cli's `content-guard` commands drive them.
//!
//! An rbac guard lets through who holds its download role (`core.rbaccontentguard_downloader`,
//! given with the guard's `add_role/`), and staff.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::pulp_cli::PulpCli;
use crate::support::curl::{CurlResponse, Downloads};
use crate::support::pulp::{API, str_field};
use crate::support::python::{build_demo_and_dep, pip_install_demo, run, twine_upload};
use crate::support::requests::As;
use crate::support::tls::Pki;
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(
    each_kind_guards_a_published_file,
    guards_are_scoped_by_their_access_policies,
    pip_installs_from_an_rbac_guarded_index_with_credentials,
    pulp_cli_drives_content_guards,
);

const BYTES: &[u8] = b"only for the team\n";

/// A published file distribution serving `secret.txt`; returns the distribution's href and the
/// file's URL.
async fn published_file(app: &TestApp) -> (String, String) {
    let repository = app.create_file_repository("private").await;
    app.upload_content("file/files", &repository, "secret.txt", BYTES)
        .await;
    let publication = app.publish_file(&repository).await;
    let distribution = app
        .distribute_file("private", "private", json!({"publication": publication}))
        .await;
    let href = str_field(&distribution, "pulp_href").to_owned();
    let url = format!("{}secret.txt", str_field(&distribution, "base_url"));
    (href, url)
}

/// The users an rbac guard lists (who hold its download role), sorted.
fn holders(guard: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = (guard["users"].as_array().expect("users").iter())
        .map(|user| str_field(user, "username"))
        .collect();
    names.sort_unstable();
    names
}

/// Creates a guard of `kind` (`rbac`, `header`, …) as the admin; returns it.
async fn create_guard(app: &TestApp, kind: &str, body: Value) -> Value {
    app.create(&format!("{API}/contentguards/core/{kind}/"), body)
        .await
}

/// Protects the distribution with the guard `guard` (an href, or null), as a task.
async fn guard_distribution(app: &TestApp, distribution: &str, guard: &Value) {
    app.update(distribution, json!({"content_guard": guard}))
        .await;
    let shown = app.get_json(distribution).await;
    assert_eq!(&shown["content_guard"], guard, "{shown:#}");
}

/// `curl <url>` with `extra` arguments.
async fn curl(url: &str, extra: &[&str]) -> CurlResponse {
    Downloads::new().request(url, extra).await
}

/// Asserts that curl gets the file's bytes.
fn assert_served(response: &CurlResponse, what: &str) {
    assert_eq!(response.status, 200, "{what}: {response:?}");
    assert_eq!(response.body, BYTES, "{what}");
}

/// Asserts a 401 with the challenge clients answer with credentials.
fn assert_challenged(response: &CurlResponse, what: &str) {
    assert_eq!(response.status, 401, "{what}: {response:?}");
    assert_eq!(
        response.header("www-authenticate"),
        Some("Basic realm=\"granary\""),
        "{what}"
    );
}

fn assert_refused(response: &CurlResponse, what: &str) {
    assert_eq!(response.status, 403, "{what}: {response:?}");
}

/// Creates a user who is not staff.
async fn create_user(app: &TestApp, username: &str, password: &str) {
    app.create(
        &format!("{API}/users/"),
        json!({"username": username, "password": password}),
    )
    .await;
}

async fn each_kind_guards_a_published_file(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (distribution, url) = published_file(&app).await;
    create_user(&app, "sam", "sam-password").await;
    let (admin, password) = app.credentials();
    let admin_credentials = format!("{admin}:{password}");
    assert_served(&curl(&url, &[]).await, "unguarded");

    // rbac: a download role on the guard (staff hold every permission). As in Pulp, its
    // creator is given the role with the guard.
    let rbac = create_guard(&app, "rbac", json!({"name": "team"})).await;
    assert_eq!(holders(&rbac), [admin], "{rbac:#}");
    assert_eq!(rbac["groups"], json!([]), "{rbac:#}");
    assert!(
        str_field(&rbac, "prn").starts_with("prn:core.rbaccontentguard:"),
        "{rbac:#}"
    );
    guard_distribution(&app, &distribution, &rbac["pulp_href"]).await;
    assert_challenged(&curl(&url, &[]).await, "rbac, anonymous");
    assert_refused(
        &curl(&url, &["-u", "sam:sam-password"]).await,
        "rbac, a user without the download role",
    );
    assert_challenged(
        &curl(&url, &["-u", "sam:wrong"]).await,
        "rbac, a wrong password is no credentials",
    );
    assert_served(
        &curl(&url, &["-u", &admin_credentials]).await,
        "rbac, staff",
    );
    let downloader = json!({"role": "core.rbaccontentguard_downloader", "users": ["sam"]});
    let added = app
        .request(
            Method::POST,
            &format!("{}add_role/", str_field(&rbac, "pulp_href")),
            As::Admin,
            Some(&downloader),
            &[],
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_served(
        &curl(&url, &["-u", "sam:sam-password"]).await,
        "rbac, a user given the download role",
    );
    let shown = app.get_json(str_field(&rbac, "pulp_href")).await;
    assert_eq!(holders(&shown), [admin, "sam"], "{shown:#}");

    // header: the header's value, or a value inside its base64 JSON.
    let header = create_guard(
        &app,
        "header",
        json!({"name": "header", "header_name": "x-team-key", "header_value": "open-sesame"}),
    )
    .await;
    assert_eq!(header["jq_filter"], Value::Null, "{header:#}");
    guard_distribution(&app, &distribution, &header["pulp_href"]).await;
    assert_challenged(&curl(&url, &[]).await, "header, none");
    assert_refused(
        &curl(&url, &["-H", "X-Team-Key: guess"]).await,
        "header, wrong",
    );
    assert_served(
        &curl(&url, &["-H", "X-Team-Key: open-sesame"]).await,
        "header, right",
    );
    let (status, refused) = app
        .post_json(
            &format!("{API}/contentguards/core/header/"),
            &json!({"name": "jq", "header_name": "x-identity", "header_value": "7",
                    "jq_filter": ".identity | .org"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.get("jq_filter").is_some(), "{refused}");
    let jq = create_guard(
        &app,
        "header",
        json!({"name": "jq", "header_name": "x-identity", "header_value": "7",
                "jq_filter": ".identity.org"}),
    )
    .await;
    guard_distribution(&app, &distribution, &jq["pulp_href"]).await;
    use base64::Engine as _;
    let identity = |org: &str| {
        let json = format!(r#"{{"identity": {{"org": {org}}}}}"#);
        format!(
            "X-Identity: {}",
            base64::engine::general_purpose::STANDARD.encode(json)
        )
    };
    assert_served(&curl(&url, &["-H", &identity("7")]).await, "jq, right");
    assert_refused(&curl(&url, &["-H", &identity("8")]).await, "jq, wrong");

    // content_redirect: URLs signed with the guard's secret until they expire.
    let redirect = create_guard(&app, "content_redirect", json!({"name": "signed"})).await;
    assert!(
        redirect.get("secret").is_none(),
        "the secret is never shown: {redirect:#}"
    );
    guard_distribution(&app, &distribution, &redirect["pulp_href"]).await;
    assert_challenged(&curl(&url, &[]).await, "content_redirect, unsigned");
    let sign = |target: String, expires_in: u64| {
        let app = &app;
        let endpoint = format!("{}preauthenticate_url/", str_field(&redirect, "pulp_href"));
        async move {
            let (status, signed) = app
                .post_json(&endpoint, &json!({"url": target, "expires_in": expires_in}))
                .await;
            assert_eq!(status, StatusCode::OK, "{signed}");
            str_field(&signed, "url").to_owned()
        }
    };
    let signed = sign(url.clone(), 600).await;
    assert!(
        signed.starts_with(&format!("{url}?validate_token=")),
        "{signed}"
    );
    assert_served(&curl(&signed, &[]).await, "content_redirect, signed");
    let other_path = signed.replacen("secret.txt", "other.txt", 1);
    assert_refused(&curl(&other_path, &[]).await, "signed for another path");
    let mut tampered = signed.clone();
    let last = tampered.pop();
    tampered.push(if last == Some('0') { '1' } else { '0' });
    assert_refused(&curl(&tampered, &[]).await, "a tampered signature");
    let short_lived = sign(url.clone(), 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_refused(&curl(&short_lived, &[]).await, "an expired URL");
    let as_sam = app
        .request(
            Method::POST,
            &format!("{}preauthenticate_url/", str_field(&redirect, "pulp_href")),
            As::Basic("sam", "sam-password"),
            Some(&json!({"url": url})),
            &[],
        )
        .await;
    assert_eq!(
        as_sam.status,
        StatusCode::NOT_FOUND,
        "only those who may see the guard sign with it: {}",
        as_sam.body
    );

    // x509: a client certificate forwarded by a TLS proxy, chaining to the guard's authority.
    let pki = Pki::generate();
    let (status, refused) = app
        .post_json(
            &format!("{API}/contentguards/core/x509/"),
            &json!({"name": "certs", "ca_certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.get("ca_certificate").is_some(), "{refused}");
    let x509 = create_guard(
        &app,
        "x509",
        json!({"name": "certs", "ca_certificate": pki.ca_cert}),
    )
    .await;
    assert_eq!(x509["ca_certificate"], pki.ca_cert.as_str(), "{x509:#}");
    guard_distribution(&app, &distribution, &x509["pulp_href"]).await;
    let forwarded = |pem: &str| format!("X-CLIENT-CERT: {}", urlencoding(pem));
    assert_challenged(&curl(&url, &[]).await, "x509, no certificate");
    assert_served(
        &curl(&url, &["-H", &forwarded(&pki.client_cert)]).await,
        "x509, a certificate of the authority",
    );
    let stranger = Pki::generate();
    assert_refused(
        &curl(&url, &["-H", &forwarded(&stranger.client_cert)]).await,
        "x509, another authority's certificate",
    );
    assert_refused(
        &curl(&url, &["-H", "X-CLIENT-CERT: not%20a%20certificate"]).await,
        "x509, garbage",
    );

    // composite: any of its guards lets the request through.
    let composite = create_guard(
        &app,
        "composite",
        json!({"name": "either", "guards": [header["pulp_href"], x509["pulp_href"]]}),
    )
    .await;
    assert_eq!(
        composite["guards"],
        json!([header["pulp_href"], x509["pulp_href"]]),
        "{composite:#}"
    );
    guard_distribution(&app, &distribution, &composite["pulp_href"]).await;
    assert_challenged(&curl(&url, &[]).await, "composite, nothing shown");
    assert_served(
        &curl(&url, &["-H", "X-Team-Key: open-sesame"]).await,
        "composite, its header guard",
    );
    assert_served(
        &curl(&url, &["-H", &forwarded(&pki.client_cert)]).await,
        "composite, its x509 guard",
    );
    assert_refused(
        &curl(&url, &["-H", &forwarded(&stranger.client_cert)]).await,
        "composite, refused by every guard",
    );

    // Every kind is listed together; deleting a guard unguards its distributions, as in Pulp.
    let all = app.get_json(&format!("{API}/contentguards/")).await;
    assert_eq!(all["count"], 6, "{all:#}");
    let (status, _) = app.delete_json(str_field(&composite, "pulp_href")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get_json(&distribution).await["content_guard"],
        Value::Null
    );
    assert_served(&curl(&url, &[]).await, "the guard is gone");
}

/// Percent-encodes everything but unreserved characters, as a TLS proxy forwards a PEM.
fn urlencoding(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A user who is not staff neither sees nor changes the admin's guards, nor creates any; names
/// are unique across kinds; a composite guard holds existing guards only.
/// Lists are scoped (none of the admin's guards); shows and changes answer 404.
async fn guards_are_scoped_by_their_access_policies(backend: Backend) {
    let app = TestApp::start(backend).await;
    create_user(&app, "sam", "sam-password").await;
    let sam = As::Basic("sam", "sam-password");
    let guard = create_guard(&app, "rbac", json!({"name": "team", "description": "ours"})).await;
    let href = str_field(&guard, "pulp_href");

    for list in [
        format!("{API}/contentguards/"),
        format!("{API}/contentguards/core/rbac/"),
    ] {
        let listed = app.request(Method::GET, &list, sam, None, &[]).await;
        assert_eq!(
            listed.status,
            StatusCode::OK,
            "{list} as sam: {}",
            listed.body
        );
        assert_eq!(listed.body["count"], 0, "{list} as sam: {}", listed.body);
        let (status, listed) = app.get(&list).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(listed["count"], 1, "{list}: {listed}");
    }
    let refused = |status: StatusCode| status == StatusCode::NOT_FOUND;
    let shown = app.request(Method::GET, href, sam, None, &[]).await;
    assert!(refused(shown.status), "{} {}", shown.status, shown.body);
    let changed = app
        .request(
            Method::PATCH,
            href,
            sam,
            Some(&json!({"description": "theirs"})),
            &[],
        )
        .await;
    assert!(
        refused(changed.status),
        "{} {}",
        changed.status,
        changed.body
    );
    assert_eq!(app.get_json(href).await["description"], "ours");
    let created = app
        .request(
            Method::POST,
            &format!("{API}/contentguards/core/header/"),
            sam,
            Some(&json!({"name": "mine", "header_name": "a", "header_value": "b"})),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::FORBIDDEN, "{}", created.body);

    // The admin's changes: a PATCH keeps what it does not name; names are unique across kinds.
    let (status, patched) = app.patch_json(href, &json!({"description": null})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "team");
    assert_eq!(patched["description"], Value::Null);
    let (status, taken) = app
        .post_json(
            &format!("{API}/contentguards/core/content_redirect/"),
            &json!({"name": "team"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{taken}");
    assert!(taken.get("name").is_some(), "{taken}");
    let (status, refused) = app
        .post_json(
            &format!("{API}/contentguards/core/composite/"),
            &json!({"name": "nested", "guards": ["/pulp/api/v3/contentguards/core/rbac/0190b5c6-8f5e-7c3a-9b1d-2e4f6a8c0d12/"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.get("guards").is_some(), "{refused}");
    let (status, _) = app.delete_json(href).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(href).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// pip installs from a python distribution an rbac guard protects when the index URL carries
/// credentials, and gets 401 without them (through the plugin's own `/pypi/` routes); twine
/// uploads as a user who may modify the repository, and is refused (403) as one who may not.
async fn pip_installs_from_an_rbac_guarded_index_with_credentials(backend: Backend) {
    let tools = tokio::task::spawn_blocking(crate::support::python::PythonTools::install)
        .await
        .expect("install the Python clients");
    let dir = tempfile::tempdir().unwrap();
    let (wheel, sdist) = build_demo_and_dep(&tools, dir.path());
    let app = TestApp::start(backend).await;
    let repository = app
        .create(
            &format!("{API}/repositories/python/python/"),
            json!({"name": "team"}),
        )
        .await;
    let guard = create_guard(&app, "rbac", json!({"name": "team"})).await;
    app.run_task(
        &format!("{API}/distributions/python/pypi/"),
        json!({"name": "team", "base_path": "team", "repository": repository["pulp_href"],
               "content_guard": guard["pulp_href"]}),
    )
    .await;
    let index = app.url("/pypi/team/");
    // Uploading needs `modify` on the distribution's repository: a user without it is refused
    // before anything is stored.
    create_user(&app, "sam", "sam-password").await;
    let refused = crate::support::python::run_failing(&mut twine_upload(
        &tools,
        &format!("{index}legacy/"),
        ("sam", "sam-password"),
        &[&wheel],
        &[],
    ));
    assert!(refused.contains("403"), "twine as a stranger: {refused}");
    run(&mut twine_upload(
        &tools,
        &format!("{index}legacy/"),
        app.credentials(),
        &[&wheel, &sdist],
        &[],
    ));

    let anonymous = curl(&format!("{index}simple/"), &[]).await;
    assert_challenged(&anonymous, "the guarded index");
    let refused = tokio::task::spawn_blocking({
        let (tools, dir, index) = (
            tools.clone(),
            dir.path().to_owned(),
            format!("{index}simple/"),
        );
        move || {
            let venv = dir.join("refused-env");
            run(std::process::Command::new(tools.bin("python"))
                .args(["-m", "venv"])
                .arg(&venv));
            crate::support::python::run_failing(
                std::process::Command::new(venv.join("bin/pip"))
                    .args(["install", "-vvv", "--no-cache-dir", "--no-input"])
                    .args(["--disable-pip-version-check", "--index-url", &index])
                    .arg("granary-demo"),
            )
        }
    })
    .await
    .unwrap();
    assert!(
        refused.contains("HTTP/1.1\" 401"),
        "pip was refused with 401: {refused}"
    );

    let (user, password) = app.credentials();
    let with_credentials = index.replacen("://", &format!("://{user}:{password}@"), 1);
    tokio::task::spawn_blocking({
        let (tools, dir, index) = (
            tools.clone(),
            dir.path().to_owned(),
            format!("{with_credentials}simple/"),
        );
        move || pip_install_demo(&tools, &dir, &index)
    })
    .await
    .unwrap();
}

/// pulp-cli's `content-guard` commands, and `file distribution update --content-guard`.
async fn pulp_cli_drives_content_guards(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (distribution, url) = published_file(&app).await;
    let pulp = PulpCli::new(&app);

    let created = pulp
        .run(&["content-guard", "rbac", "create", "--name", "cli-team"])
        .await;
    let href = str_field(&created, "pulp_href").to_owned();
    let listed = pulp.run(&["content-guard", "rbac", "list"]).await;
    assert_eq!(listed[0]["pulp_href"], href.as_str(), "{listed:#}");
    let shown = pulp
        .run(&["content-guard", "rbac", "show", "--name", "cli-team"])
        .await;
    assert_eq!(shown["pulp_href"], href.as_str(), "{shown:#}");
    let header = pulp
        .run(&[
            "content-guard",
            "header",
            "create",
            "--name",
            "cli-header",
            "--header-name",
            "x-team-key",
            "--header-value",
            "open-sesame",
        ])
        .await;
    assert_eq!(header["header_value"], "open-sesame", "{header:#}");
    let all = pulp.run(&["content-guard", "list"]).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all:#}");
    // The creator holds the download role already; giving or taking a role twice is refused in
    // pulpcore's words.
    let (admin, _) = app.credentials();
    let rbac = ["content-guard", "rbac"];
    let error = pulp
        .fails(
            &[
                &rbac[..],
                &["assign", "--name", "cli-team", "--user", admin],
            ]
            .concat(),
        )
        .await;
    assert!(
        error.contains(&format!("The role is already assigned to user '{admin}'.")),
        "{error}"
    );
    create_user(&app, "sam", "sam-password").await;
    let sam = ["--name", "cli-team", "--user", "sam"];
    pulp.run(&[&rbac[..], &["assign"], &sam[..]].concat()).await;
    pulp.run(&[&rbac[..], &["remove"], &sam[..]].concat()).await;
    let error = pulp
        .fails(&[&rbac[..], &["remove"], &sam[..]].concat())
        .await;
    assert!(
        error.contains("The role is not assigned to user 'sam'."),
        "{error}"
    );

    pulp.run(&[
        "file",
        "distribution",
        "update",
        "--name",
        "private",
        "--content-guard",
        "core:header:cli-header",
    ])
    .await;
    assert_eq!(
        app.get_json(&distribution).await["content_guard"],
        header["pulp_href"]
    );
    assert_challenged(&curl(&url, &[]).await, "guarded through pulp-cli");
    assert_served(
        &curl(&url, &["-H", "X-Team-Key: open-sesame"]).await,
        "the header pulp-cli set",
    );

    pulp.run(&["content-guard", "rbac", "destroy", "--name", "cli-team"])
        .await;
    let listed = pulp.run(&["content-guard", "rbac", "list"]).await;
    assert_eq!(listed, json!([]), "{listed:#}");
}
