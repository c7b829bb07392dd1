//! Issue #21, item 3: labels on content units, as Pulp has them since 3.73: `pulp file content
//! label set/show/unset`, `pulp_label_select` on content lists, and the permission that guards
//! them (`core.manage_content_labels`, held through `core.content_labeler`).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::pulp_cli::PulpCli;
use crate::support::pulp::{API, str_field};
use crate::support::requests::As;
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(content_labels_are_set_found_and_guarded_as_in_pulp);

/// The relative paths of the units a content list answers, sorted.
async fn paths(app: &TestApp, query: &str) -> Vec<String> {
    let units = app
        .list_all(&format!("{API}/content/file/files/?{query}"))
        .await;
    let mut paths: Vec<String> = units
        .iter()
        .map(|unit: &Value| str_field(unit, "relative_path").to_owned())
        .collect();
    paths.sort();
    paths
}

async fn content_labels_are_set_found_and_guarded_as_in_pulp(backend: Backend) {
    let app = TestApp::start(backend).await;
    let pulp = PulpCli::new(&app);
    let repository = app.create_file_repository("labelled").await;
    app.upload_content("file/files", &repository, "a.txt", b"alpha")
        .await;
    app.upload_content("file/files", &repository, "b.txt", b"bravo")
        .await;
    let a = app
        .list_all(&format!("{API}/content/file/files/?relative_path=a.txt"))
        .await;
    let a_href = str_field(&a[0], "pulp_href").to_owned();
    let created = str_field(&a[0], "pulp_last_updated").to_owned();
    let sha256 = str_field(&a[0], "sha256").to_owned();

    let lookup = ["--relative-path", "a.txt", "--sha256", sha256.as_str()];
    let mut set = vec!["file", "content", "label", "set"];
    set.extend(lookup);
    set.extend(["--key", "env", "--value", "prod"]);
    pulp.run(&set).await;
    let mut show = vec!["file", "content", "label", "show"];
    show.extend(lookup);
    show.extend(["--key", "env"]);
    assert_eq!(pulp.text(&show).await, "prod");
    let unit = app.get_json(&a_href).await;
    assert_eq!(unit["pulp_labels"], json!({"env": "prod"}), "{unit:#}");
    assert!(
        str_field(&unit, "pulp_last_updated") > created.as_str(),
        "a label change moves pulp_last_updated: {unit:#}"
    );
    assert_eq!(paths(&app, "pulp_label_select=env=prod").await, ["a.txt"]);
    assert_eq!(paths(&app, "pulp_label_select=!env").await, ["b.txt"]);

    // A user who sees the repository may read the labels but not change them, until they hold
    // `core.content_labeler`; a user who cannot see the unit gets a 404.
    let alice = app.create_user("alice", "alice's long password").await;
    app.create_user("bob", "bob's long password").await;
    app.create(
        &format!("{alice}roles/"),
        json!({"role": "file.filerepository_viewer", "content_object": repository}),
    )
    .await;
    let as_alice = As::Basic("alice", "alice's long password");
    let set_label = format!("{a_href}set_label/");
    let body = json!({"key": "owner", "value": "alice"});
    let refused = app
        .request(Method::POST, &set_label, as_alice, Some(&body), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let hidden = app
        .request(
            Method::POST,
            &set_label,
            As::Basic("bob", "bob's long password"),
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.body);
    app.create(
        &format!("{alice}roles/"),
        json!({"role": "core.content_labeler", "content_object": null}),
    )
    .await;
    let labelled = app
        .request(Method::POST, &set_label, as_alice, Some(&body), &[])
        .await;
    assert_eq!(labelled.status, StatusCode::CREATED, "{}", labelled.body);
    assert_eq!(labelled.body, body);

    // Unset answers the value it removed; a key that is not there is a 400 on `key`.
    let mut unset = vec!["file", "content", "label", "unset"];
    unset.extend(lookup);
    unset.extend(["--key", "env"]);
    pulp.run(&unset).await;
    let unit = app.get_json(&a_href).await;
    assert_eq!(unit["pulp_labels"], json!({"owner": "alice"}), "{unit:#}");
    let (status, body) = app
        .post_json(&format!("{a_href}unset_label/"), &json!({"key": "env"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["key"].is_array(), "{body}");
}
