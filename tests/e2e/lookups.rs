//! WIT 0.3.0's indexed fields end to end, with the `lookups` test component
//! (`tests/components/lookups`): the distinct values of a field and the units with a value, of the
//! version a distribution serves, answered from the host's index; fields the plugin does not
//! index refused; units stored before a field was indexed found once the plugin is loaded again;
//! units a `handle` outcome removes (`remove-units`) gone from a new version.

use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::support::pulp::{API, created_resources};
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(
    distinct_values_and_lookups_follow_the_served_version,
    a_field_the_plugin_does_not_index_is_refused,
    units_stored_before_a_field_was_indexed_are_found_after_a_restart,
    a_handle_outcome_removes_units_in_a_new_version,
);

const LOOKUPS: &str = env!("GRANARY_TEST_LOOKUPS_WASM");

/// Installs the lookups plugin and makes a repository with a distribution of its latest version
/// at `shelf`; returns the app and the repository's href.
async fn app_with_lookups(backend: Backend) -> (TestApp, String) {
    let app = TestApp::start(backend).await;
    let bytes = std::fs::read(LOOKUPS).expect("the lookups component is built");
    let (status, plugin) = app.install_plugin(&bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{plugin:#}");
    assert_eq!(plugin["wit_version"], "0.3.0", "{plugin:#}");
    let repository = app
        .create(
            &format!("{API}/repositories/lookups/lookups/"),
            json!({"name": "shelf"}),
        )
        .await;
    let href = repository["pulp_href"].as_str().unwrap().to_owned();
    app.run_task(
        &format!("{API}/distributions/lookups/lookups/"),
        json!({"name": "shelf", "base_path": "shelf", "repository": href}),
    )
    .await;
    (app, href)
}

/// Uploads `bytes` as the entry `relative_path` into `repository`; returns the unit's href.
async fn upload(app: &TestApp, repository: &str, relative_path: &str, bytes: &[u8]) -> String {
    let (status, answer) = app
        .post_multipart(
            &format!("{API}/content/lookups/entries/"),
            &[
                ("file", Some("upload.bin"), bytes),
                ("relative_path", None, relative_path.as_bytes()),
                ("repository", None, repository.as_bytes()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer:#}");
    let task = app.wait_task(answer["task"].as_str().unwrap()).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    created_resources(&task)
        .into_iter()
        .find(|href| href.contains("/content/"))
        .unwrap_or_else(|| panic!("no content created: {task:#}"))
}

/// The lines the distribution's route `path` answers (status 200 expected).
async fn lines(app: &TestApp, path: &str) -> Vec<String> {
    let response = app
        .anonymous()
        .get(app.url(&format!("/lookups/shelf/{path}")))
        .send()
        .await
        .expect("GET the route");
    let status = response.status();
    let body = response.text().await.expect("the body");
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body.lines().map(str::to_owned).collect()
}

/// DELETE `url` with the admin's credentials.
async fn delete_as_admin(app: &TestApp, url: &str) -> reqwest::Response {
    let (user, password) = app.credentials();
    app.anonymous()
        .delete(url)
        .basic_auth(user, Some(password))
        .send()
        .await
        .expect("DELETE")
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

async fn distinct_values_and_lookups_follow_the_served_version(backend: Backend) {
    let (app, repository) = app_with_lookups(backend).await;
    upload(&app, &repository, "tools/hammer.txt", b"the same bytes").await;
    upload(&app, &repository, "tools/saw.txt", b"a saw").await;
    let garden = upload(&app, &repository, "garden/rake.txt", b"the same bytes").await;

    assert_eq!(lines(&app, "groups/").await, ["garden", "tools"]);
    assert_eq!(lines(&app, "groups/?last=garden").await, ["tools"]);
    assert_eq!(lines(&app, "groups/?n=1").await, ["garden"]);
    let mut same = lines(&app, &format!("digests/{}", digest(b"the same bytes"))).await;
    same.sort();
    assert_eq!(same, ["garden/rake.txt", "tools/hammer.txt"]);
    assert_eq!(
        lines(&app, &format!("digests/{}", digest(b"a saw"))).await,
        ["tools/saw.txt"]
    );
    assert!(
        lines(&app, "digests/sha256:0000")
            .await
            .iter()
            .all(String::is_empty)
    );

    // A new version without the garden entry: the distribution serves it, and the index answers
    // for it, though the unit and its keys are still stored.
    let task = app
        .run_task(
            &format!("{repository}modify/"),
            json!({"remove_content_units": [garden]}),
        )
        .await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(lines(&app, "groups/").await, ["tools"]);
    assert_eq!(
        lines(&app, &format!("digests/{}", digest(b"the same bytes"))).await,
        ["tools/hammer.txt"]
    );
}

async fn a_field_the_plugin_does_not_index_is_refused(backend: Backend) {
    let (app, repository) = app_with_lookups(backend).await;
    upload(&app, &repository, "tools/hammer.txt", b"a hammer").await;
    let response = app
        .anonymous()
        .get(app.url("/lookups/shelf/sizes/"))
        .send()
        .await
        .expect("GET sizes/");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.text().await.expect("the body");
    assert!(
        body.contains(r#"content type \"entry\" does not index the field \"size\""#),
        "{body}"
    );
}

async fn units_stored_before_a_field_was_indexed_are_found_after_a_restart(backend: Backend) {
    let (mut app, repository) = app_with_lookups(backend).await;
    upload(&app, &repository, "tools/hammer.txt", b"a hammer").await;
    upload(&app, &repository, "garden/rake.txt", b"a rake").await;
    // What a server upgraded from a plugin that indexed nothing has: units, no keys, no fields.
    app.sql("DELETE FROM content_keys", &[]).await;
    app.sql("DELETE FROM content_key_fields", &[]).await;
    app.restart().await;
    assert_eq!(lines(&app, "groups/").await, ["garden", "tools"]);
    assert_eq!(
        lines(&app, &format!("digests/{}", digest(b"a rake"))).await,
        ["garden/rake.txt"]
    );
    let recorded = app
        .sql(
            "SELECT field FROM content_key_fields WHERE plugin = 'lookups' AND complete = 1 ORDER BY field",
            &[],
        )
        .await;
    assert_eq!(recorded, ["digest", "group"]);
}

async fn a_handle_outcome_removes_units_in_a_new_version(backend: Backend) {
    let (app, repository) = app_with_lookups(backend).await;
    upload(&app, &repository, "tools/hammer.txt", b"a hammer").await;
    upload(&app, &repository, "garden/rake.txt", b"a rake").await;
    let entry = app.url("/lookups/shelf/entries/garden/rake.txt");

    // Removing changes the repository: a user is needed, as for adding.
    let anonymous = app.anonymous().delete(&entry).send().await.expect("DELETE");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let removed = delete_as_admin(&app, &entry).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_eq!(lines(&app, "groups/").await, ["tools"]);
    let repository_now = app.get_json(&repository).await;
    assert!(
        repository_now["latest_version_href"]
            .as_str()
            .is_some_and(|href| href.ends_with("/versions/3/")),
        "{repository_now:#}"
    );
    // Removing what the repository does not hold makes no version.
    let again = delete_as_admin(&app, &entry).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    let repository_after = app.get_json(&repository).await;
    assert_eq!(
        repository_after["latest_version_href"],
        repository_now["latest_version_href"]
    );
}
