//! Issue #21, item 7: alternate content sources, driven with pulp-cli as in pulp-cli's own
//! `test_acs.sh`: a source is a remote (on demand) and paths below its URL; a refresh is a task
//! group with a task per path; a sync then takes every file an ACS offers from the ACS and only
//! the rest from its own remote. Sources are given through pulp_file's
//! `file.filealternatecontentsource_*` roles.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::pulp_cli::PulpCli;
use crate::support::pulp::{API, str_field};
use crate::support::requests::As;
use crate::support::{Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    a_sync_takes_its_files_from_an_alternate_content_source,
    sources_are_shared_through_roles_as_in_pulp_file,
);

/// `pulp file remote create --name nearby --url <upstream> --policy on_demand`: its href.
async fn on_demand_remote(pulp: &PulpCli, upstream: &Upstream) -> String {
    let remote = pulp
        .run(&[
            "file",
            "remote",
            "create",
            "--name",
            "nearby",
            "--url",
            &upstream.base_url(),
            "--policy",
            "on_demand",
        ])
        .await;
    str_field(&remote, "pulp_href").to_owned()
}

/// `pulp file acs path <action> --name near --path <path>`.
fn path_of_near<'a>(action: &'a str, path: &'a str) -> [&'a str; 8] {
    [
        "file", "acs", "path", action, "--name", "near", "--path", path,
    ]
}

async fn a_sync_takes_its_files_from_an_alternate_content_source(backend: Backend) {
    let app = TestApp::start(backend).await;
    let pulp = PulpCli::new(&app);
    let fixture = Fixture::generate(5, 41);
    let (origin, nearby) = (
        Upstream::serve(&fixture).await,
        Upstream::serve(&fixture).await,
    );

    on_demand_remote(&pulp, &nearby).await;
    let created = pulp
        .run(&[
            "file",
            "acs",
            "create",
            "--name",
            "near",
            "--remote",
            "nearby",
            "--path",
            "PULP_MANIFEST",
        ])
        .await;
    assert_eq!(created["paths"], serde_json::json!(["PULP_MANIFEST"]));
    assert_eq!(created["last_refreshed"], Value::Null);
    pulp.run(&path_of_near("add", "more/PULP_MANIFEST")).await;
    let shown = pulp.run(&["file", "acs", "show", "--name", "near"]).await;
    assert_eq!(
        shown["paths"].as_array().map(Vec::len),
        Some(2),
        "{shown:#}"
    );
    pulp.run(&path_of_near("remove", "more/PULP_MANIFEST"))
        .await;
    assert_eq!(
        pulp.run(&["file", "acs", "list"])
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // A refresh is a task group: one task per path, all dispatched, completed.
    pulp.run(&["file", "acs", "refresh", "--name", "near"])
        .await;
    let groups = pulp.run(&["task-group", "list"]).await;
    let group = &groups[0];
    assert_eq!(group["all_tasks_dispatched"], true, "{group:#}");
    assert_eq!(group["completed"], 1, "{group:#}");
    assert_eq!(
        group["tasks"].as_array().map(Vec::len),
        Some(1),
        "{group:#}"
    );
    let task = app
        .get_json(str_field(&group["tasks"][0], "pulp_href"))
        .await;
    assert_eq!(task["task_group"], group["pulp_href"], "{task:#}");
    let shown = pulp
        .run(&[
            "task-group",
            "show",
            "--href",
            str_field(group, "pulp_href"),
        ])
        .await;
    assert_eq!(
        shown["description"],
        "Refreshing 1 alternate content source paths."
    );
    let shown = pulp.run(&["file", "acs", "show", "--name", "near"]).await;
    assert!(shown["last_refreshed"].is_string(), "{shown:#}");
    assert_eq!(
        nearby.file_requests(),
        0,
        "a refresh reads metadata, no file"
    );

    // The sync's own remote serves only its manifest: every file comes from the source.
    let remote = app
        .create_file_remote("origin", &origin.manifest_url(), "immediate")
        .await;
    let repository = app.create_file_repository("accelerated").await;
    let task = app.sync(&repository, &remote, true).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(origin.file_requests(), 0, "no file from the origin");
    assert_eq!(nearby.file_requests(), fixture.files.len());
    let base_url = app.publish_and_distribute(&repository, "accelerated").await;
    crate::support::curl::Downloads::new()
        .assert_all_served(&base_url, &fixture.files)
        .await;

    // A path the source does not have fails its refresh (pulp-cli exits non-zero), and the
    // last good record stays in use.
    pulp.run(&path_of_near("add", "missing/PULP_MANIFEST"))
        .await;
    pulp.fails(&["file", "acs", "refresh", "--name", "near"])
        .await;
    let groups = app.list_all(&format!("{API}/task-groups/")).await;
    let failed = groups
        .iter()
        .find(|group| group["failed"] == 1)
        .unwrap_or_else(|| panic!("a group with the failed path: {groups:#?}"));
    assert_eq!(failed["completed"], 1, "{failed:#}");

    // Dropping a path (an update, a task as in Pulp) forgets what was recorded under it.
    let recorded_at_manifest = || {
        app.sql(
            "SELECT CAST(COUNT(*) AS TEXT) FROM acs_files WHERE path = 'PULP_MANIFEST'",
            &[],
        )
    };
    assert_ne!(recorded_at_manifest().await, ["0"]);
    pulp.run(&path_of_near("remove", "PULP_MANIFEST")).await;
    assert_eq!(recorded_at_manifest().await, ["0"]);

    // Deleted, the source and what its refreshes recorded are gone.
    pulp.run(&["file", "acs", "destroy", "--name", "near"])
        .await;
    assert_eq!(
        app.sql("SELECT CAST(COUNT(*) AS TEXT) FROM acs_files", &[])
            .await,
        ["0"]
    );
    assert_eq!(
        pulp.run(&["file", "acs", "list"]).await,
        serde_json::json!([])
    );

    // Only an on-demand remote may back a source.
    let immediate = app.get_json(&remote).await;
    let (status, body) = app
        .post_json(
            &format!("{API}/acs/file/file/"),
            &serde_json::json!({"name": "eager", "remote": immediate["pulp_href"]}),
        )
        .await;
    assert_eq!(status.as_u16(), 400, "{body}");
    assert!(body["remote"].is_array(), "{body}");
}

/// pulp_file's access policy for sources: creating one takes
/// `file.filealternatecontentsource_creator` and a view of the remote it names; the creator owns
/// it; others see none of it until given a role on it, and a viewer may not refresh it.
async fn sources_are_shared_through_roles_as_in_pulp_file(backend: Backend) {
    let app = TestApp::start(backend).await;
    let pulp = PulpCli::new(&app);
    let nearby = Upstream::serve(&Fixture::generate(2, 43)).await;
    let remote = on_demand_remote(&pulp, &nearby).await;
    let alice_href = app.create_user("alice", "alice's long password").await;
    app.create_user("bob", "bob's long password").await;
    let alice = PulpCli::as_user(&app, "alice", "alice's long password");
    let bob = PulpCli::as_user(&app, "bob", "bob's long password");
    let create = [
        "file",
        "acs",
        "create",
        "--name",
        "near",
        "--remote",
        &remote,
        "--path",
        "PULP_MANIFEST",
    ];
    let alice_roles = format!("{alice_href}roles/");
    let give = |role: &str, object: Option<&str>| {
        app.create(
            &alice_roles,
            json!({ "role": role, "content_object": object }),
        )
    };

    let alice_as = As::Basic("alice", "alice's long password");
    let acs = format!("{API}/acs/file/file/");
    let body = json!({ "name": "near", "remote": remote });
    app.expect(
        alice_as.post(&acs, body.clone()),
        StatusCode::FORBIDDEN,
        "no role, no source",
    )
    .await;
    give("file.filealternatecontentsource_creator", None).await;
    app.expect(
        alice_as.post(&acs, body),
        StatusCode::FORBIDDEN,
        "the remote it names is not hers to see",
    )
    .await;
    give("file.fileremote_viewer", Some(&remote)).await;
    let created = alice.run(&create).await;
    let href = str_field(&created, "pulp_href").to_owned();
    let holders = app
        .expect(
            alice_as.get(&format!("{href}list_roles/")),
            StatusCode::OK,
            "the creator manages its roles",
        )
        .await;
    assert_eq!(
        holders["roles"],
        json!([{ "role": "file.filealternatecontentsource_owner", "users": ["alice"], "groups": [] }])
    );
    alice
        .run(&["file", "acs", "refresh", "--name", "near"])
        .await;

    assert_eq!(bob.run(&["file", "acs", "list"]).await, json!([]));
    bob.fails(&["file", "acs", "show", "--name", "near"]).await;
    app.expect(
        alice_as.post(
            &format!("{href}add_role/"),
            json!({ "role": "file.filealternatecontentsource_viewer", "users": ["bob"] }),
        ),
        StatusCode::CREATED,
        "the owner lets bob see it",
    )
    .await;
    let shown = bob.run(&["file", "acs", "show", "--name", "near"]).await;
    assert_eq!(shown["pulp_href"], href.as_str());
    let bob_as = As::Basic("bob", "bob's long password");
    for (call, what) in [
        (
            bob_as.post(&format!("{href}refresh/"), json!({})),
            "a viewer does not refresh it",
        ),
        (bob_as.delete(&href), "nor delete it"),
    ] {
        app.expect(call, StatusCode::FORBIDDEN, what).await;
    }
    alice
        .run(&["file", "acs", "destroy", "--name", "near"])
        .await;
    assert_eq!(app.get(&href).await.0, StatusCode::NOT_FOUND);
}
