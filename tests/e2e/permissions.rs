//! Issue #17: three users share one server — the admin (staff), Olivia who owns her objects, and
//! Sam, a stranger to them. Olivia may create what her roles let her create, and becomes the
//! owner of what she creates; Sam sees none of it (a show is a 404, not a 403) until Olivia
//! gives him a role on one object; only staff manage plugins; a task and an upload belong to
//! who started them.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::pulp::{API, created_resources, str_field};
use crate::support::requests::{As, multipart};
use crate::support::{Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    an_owner_works_on_their_objects_and_a_stranger_sees_none_of_them,
    a_role_on_one_object_opens_it_to_another_user,
    only_staff_manage_plugins,
    a_task_and_an_upload_belong_to_who_started_them,
    the_private_team_repository_of_the_security_guide,
    a_remotes_headers_are_shown_only_to_who_may_change_it,
    artifacts_are_shared_by_checksum_and_only_staff_delete_them,
);

const OLIVIA: As<'static> = As::Basic("olivia", "olivia-password");
const SAM: As<'static> = As::Basic("sam", "sam-password");

/// The admin gives `user` the global roles `roles`.
async fn give_roles(app: &TestApp, user: &str, roles: &[&str]) {
    for role in roles {
        app.create(
            &format!("{user}roles/"),
            json!({"role": role, "content_object": null}),
        )
        .await;
    }
}

/// Olivia and Sam, with the roles that let each create file repositories, remotes,
/// publications and distributions (and uploads).
async fn olivia_and_sam(app: &TestApp) -> (String, String) {
    let olivia = app.create_user("olivia", "olivia-password").await;
    let sam = app.create_user("sam", "sam-password").await;
    let creator = [
        "file.filerepository_creator",
        "file.fileremote_creator",
        "file.filepublication_creator",
        "file.filedistribution_creator",
        "core.upload_creator",
    ];
    give_roles(app, &olivia, &creator).await;
    give_roles(app, &sam, &["file.filedistribution_creator"]).await;
    (olivia, sam)
}

/// `who` POSTs `body` to `path`, expecting a task; waits for it and answers what it created.
async fn run_as(app: &TestApp, path: &str, who: As<'_>, body: Value) -> Vec<String> {
    let accepted = app
        .expect(who.post(path, body), StatusCode::ACCEPTED, "a task")
        .await;
    let task = app.wait_task(str_field(&accepted, "task")).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    created_resources(&task)
}

/// How many objects `who` sees in the list at `path`.
async fn count_as(app: &TestApp, path: &str, who: As<'_>) -> u64 {
    let page = app.expect(who.get(path), StatusCode::OK, "a list").await;
    page["count"].as_u64().expect("a page has a count")
}

/// Olivia creates a repository, a remote, syncs, publishes and distributes; each object is hers
/// to see and change. Sam, who may create distributions but holds no role on Olivia's objects,
/// cannot create a repository (403), finds none of hers (404 on show, change and delete;
/// absent from lists), cannot sync her repository, and cannot distribute her publication.
async fn an_owner_works_on_their_objects_and_a_stranger_sees_none_of_them(backend: Backend) {
    let app = TestApp::start(backend).await;
    let upstream = Upstream::serve(&Fixture::generate(3, 17)).await;
    olivia_and_sam(&app).await;
    let repositories = format!("{API}/repositories/file/file/");

    app.expect(
        SAM.post(&repositories, json!({"name": "sams"})),
        StatusCode::FORBIDDEN,
        "Sam may not create a repository",
    )
    .await;
    assert_eq!(
        count_as(&app, &repositories, As::Admin).await,
        0,
        "nothing was created"
    );

    let created = app
        .expect(
            OLIVIA.post(&repositories, json!({"name": "olivias"})),
            StatusCode::CREATED,
            "Olivia creates a repository",
        )
        .await;
    let repository = str_field(&created, "pulp_href").to_owned();
    let created = app
        .expect(
            OLIVIA.post(
                &format!("{API}/remotes/file/file/"),
                json!({"name": "upstream", "url": upstream.manifest_url(), "policy": "immediate"}),
            ),
            StatusCode::CREATED,
            "Olivia creates a remote",
        )
        .await;
    let remote = str_field(&created, "pulp_href").to_owned();

    let sync = format!("{repository}sync/");
    app.expect(
        SAM.post(&sync, json!({"remote": remote})),
        StatusCode::NOT_FOUND,
        "Sam cannot sync her repository",
    )
    .await;
    run_as(&app, &sync, OLIVIA, json!({"remote": remote})).await;
    let publication = run_as(
        &app,
        &format!("{API}/publications/file/file/"),
        OLIVIA,
        json!({"repository": repository}),
    )
    .await
    .remove(0);
    let distribution = run_as(
        &app,
        &format!("{API}/distributions/file/file/"),
        OLIVIA,
        json!({"name": "olivias", "base_path": "olivias", "publication": publication}),
    )
    .await
    .remove(0);

    let mine = app
        .expect(
            OLIVIA.get(&format!("{repository}my_permissions/")),
            StatusCode::OK,
            "Olivia's permissions on her repository",
        )
        .await;
    for permission in [
        "file.view_filerepository",
        "file.sync_filerepository",
        "file.manage_roles_filerepository",
    ] {
        assert!(
            mine["permissions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|held| held == permission),
            "the creator owns the repository: {mine}"
        );
    }

    for (object, collection) in [
        (&repository, "repositories"),
        (&remote, "remotes"),
        (&publication, "publications"),
        (&distribution, "distributions"),
    ] {
        let list = format!("{API}/{collection}/file/file/");
        app.expect(OLIVIA.get(object), StatusCode::OK, "Olivia shows hers")
            .await;
        assert_eq!(count_as(&app, &list, OLIVIA).await, 1, "{list}");
        assert_eq!(
            count_as(&app, &format!("{API}/{collection}/"), OLIVIA).await,
            1,
            "{collection}"
        );
        assert_eq!(count_as(&app, &list, SAM).await, 0, "{list}");
        assert_eq!(
            count_as(&app, &format!("{API}/{collection}/"), SAM).await,
            0,
            "{collection}"
        );
        assert_eq!(
            count_as(&app, &list, As::Admin).await,
            1,
            "staff see everything: {list}"
        );
        // Publications are immutable: they have no PATCH to refuse.
        let methods = match collection {
            "publications" => vec![Method::GET, Method::DELETE],
            _ => vec![Method::GET, Method::PATCH, Method::DELETE],
        };
        for method in methods {
            let body = (method == Method::PATCH).then(|| json!({"name": "taken"}));
            app.expect(
                SAM.call(method, object, body),
                StatusCode::NOT_FOUND,
                "Sam finds none of hers",
            )
            .await;
        }
    }

    // Her repository's versions and content are hers too: content is seen through the
    // repositories that hold it, as Pulp scopes it.
    app.expect(
        SAM.get(&format!("{repository}versions/")),
        StatusCode::NOT_FOUND,
        "her repository's versions",
    )
    .await;
    let version = format!("{repository}versions/1/");
    app.expect(
        SAM.get(&version),
        StatusCode::NOT_FOUND,
        "a version of her repository",
    )
    .await;
    for content in [
        format!("{API}/content/"),
        format!("{API}/content/file/files/"),
    ] {
        assert_eq!(count_as(&app, &content, OLIVIA).await, 3, "{content}");
        assert_eq!(count_as(&app, &content, As::Admin).await, 3, "{content}");
        assert_eq!(count_as(&app, &content, SAM).await, 0, "{content}");
    }
    let units = app
        .call(OLIVIA.get(&format!("{API}/content/file/files/")))
        .await;
    let unit = str_field(&units.body["results"][0], "pulp_href").to_owned();
    app.expect(
        SAM.get(&unit),
        StatusCode::NOT_FOUND,
        "a unit of her repository",
    )
    .await;

    app.expect(
        SAM.post(
            &format!("{API}/distributions/file/file/"),
            json!({"name": "sams", "base_path": "sams", "publication": publication}),
        ),
        StatusCode::FORBIDDEN,
        "Sam cannot distribute her publication",
    )
    .await;
    let created = run_as(
        &app,
        &format!("{API}/distributions/file/file/"),
        SAM,
        json!({"name": "sams", "base_path": "sams"}),
    )
    .await;
    assert_eq!(created.len(), 1, "Sam may create a distribution of nothing");
    assert_eq!(
        count_as(&app, &format!("{API}/distributions/"), SAM).await,
        1
    );
    assert_eq!(
        count_as(&app, &format!("{API}/distributions/"), OLIVIA).await,
        1
    );
    assert_eq!(
        count_as(&app, &format!("{API}/distributions/"), As::Admin).await,
        2
    );
}

/// Olivia gives Sam the viewer role on her repository: he sees it, cannot change it (403 now
/// that he may see it), and `list_roles/` names both of them; once she removes the role it is
/// gone for him again.
async fn a_role_on_one_object_opens_it_to_another_user(backend: Backend) {
    let app = TestApp::start(backend).await;
    olivia_and_sam(&app).await;
    let repositories = format!("{API}/repositories/file/file/");
    let created = app
        .call(OLIVIA.post(&repositories, json!({"name": "shared"})))
        .await;
    let repository = str_field(&created.body, "pulp_href").to_owned();
    let viewer = json!({"role": "file.filerepository_viewer", "users": ["sam"]});

    app.expect(
        SAM.post(&format!("{repository}add_role/"), viewer.clone()),
        StatusCode::NOT_FOUND,
        "Sam does not see her repository yet",
    )
    .await;
    app.expect(
        OLIVIA.post(&format!("{repository}add_role/"), viewer.clone()),
        StatusCode::CREATED,
        "Olivia gives Sam the viewer role",
    )
    .await;

    app.expect(SAM.get(&repository), StatusCode::OK, "a viewer sees it")
        .await;
    assert_eq!(count_as(&app, &repositories, SAM).await, 1);
    app.expect(
        SAM.patch(&repository, json!({"name": "mine"})),
        StatusCode::FORBIDDEN,
        "a viewer may not change it",
    )
    .await;
    app.expect(
        SAM.post(&format!("{repository}add_role/"), viewer.clone()),
        StatusCode::FORBIDDEN,
        "a viewer may not give roles",
    )
    .await;

    let roles = app
        .expect(
            OLIVIA.get(&format!("{repository}list_roles/")),
            StatusCode::OK,
            "Olivia lists the roles on her repository",
        )
        .await;
    let holders = |role: &str| -> Value {
        roles["roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["role"] == role)
            .map(|entry| entry["users"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        holders("file.filerepository_owner"),
        json!(["olivia"]),
        "{roles}"
    );
    assert_eq!(
        holders("file.filerepository_viewer"),
        json!(["sam"]),
        "{roles}"
    );

    app.expect(
        OLIVIA.post(&format!("{repository}remove_role/"), viewer),
        StatusCode::CREATED,
        "Olivia takes the role back",
    )
    .await;
    app.expect(
        SAM.get(&repository),
        StatusCode::NOT_FOUND,
        "gone for him again",
    )
    .await;
    assert_eq!(count_as(&app, &repositories, SAM).await, 0);
}

/// A user who is not staff may list plugins but not install, disable or remove one: each is a
/// 403 and changes nothing.
async fn only_staff_manage_plugins(backend: Backend) {
    let app = TestApp::start(backend).await;
    olivia_and_sam(&app).await;
    let plugins = format!("{API}/plugins/");
    assert!(
        count_as(&app, &plugins, SAM).await >= 2,
        "anyone may see what is installed"
    );
    let before = app.get_json(&plugins).await;

    let (content_type, body) = multipart(&[("file", Some("plugin.wasm"), b"\0asm\x0d\0\x01\0")]);
    let install = app
        .anonymous()
        .post(app.url(&plugins))
        .basic_auth("sam", Some("sam-password"))
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .expect("POST plugins/");
    assert_eq!(install.status(), StatusCode::FORBIDDEN);
    let file = format!("{plugins}file/");
    app.expect(
        SAM.patch(&file, json!({"enabled": false})),
        StatusCode::FORBIDDEN,
        "only staff disable a plugin",
    )
    .await;
    app.expect(
        SAM.delete(&format!("{file}?force=true")),
        StatusCode::FORBIDDEN,
        "only staff remove a plugin",
    )
    .await;
    assert_eq!(app.get_json(&plugins).await, before, "nothing changed");
}

/// Olivia's sync task and her upload are hers: Sam's show of either is a 404, his lists leave
/// them out, and his chunk PUT to her upload is a 404 that stores nothing.
async fn a_task_and_an_upload_belong_to_who_started_them(backend: Backend) {
    let app = TestApp::start(backend).await;
    olivia_and_sam(&app).await;
    let created = app
        .call(OLIVIA.post(
            &format!("{API}/repositories/file/file/"),
            json!({"name": "tasks"}),
        ))
        .await;
    let repository = str_field(&created.body, "pulp_href").to_owned();
    let accepted = app
        .expect(
            OLIVIA.patch(&repository, json!({"description": "x"})),
            StatusCode::ACCEPTED,
            "Olivia's change is a task",
        )
        .await;
    let task = str_field(&accepted, "task").to_owned();
    app.wait_task(&task).await;
    app.expect(OLIVIA.get(&task), StatusCode::OK, "her task is hers")
        .await;
    app.expect(
        SAM.get(&task),
        StatusCode::NOT_FOUND,
        "her task is not Sam's",
    )
    .await;
    assert_eq!(count_as(&app, &format!("{API}/tasks/"), SAM).await, 0);
    assert!(count_as(&app, &format!("{API}/tasks/"), OLIVIA).await >= 1);

    let upload = app
        .expect(
            OLIVIA.post(&format!("{API}/uploads/"), json!({"size": 4})),
            StatusCode::CREATED,
            "Olivia starts an upload",
        )
        .await;
    let upload = str_field(&upload, "pulp_href").to_owned();
    let (content_type, body) = multipart(&[("file", Some("chunk.bin"), b"abcd")]);
    let chunk = app
        .anonymous()
        .put(app.url(&upload))
        .basic_auth("sam", Some("sam-password"))
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header("Content-Range", "bytes 0-3/4")
        .body(body)
        .send()
        .await
        .expect("PUT chunk");
    assert_eq!(chunk.status(), StatusCode::NOT_FOUND);
    app.expect(
        SAM.get(&upload),
        StatusCode::NOT_FOUND,
        "her upload is not Sam's",
    )
    .await;
    assert_eq!(count_as(&app, &format!("{API}/uploads/"), SAM).await, 0);
    let mine = app
        .expect(OLIVIA.get(&upload), StatusCode::OK, "her upload is hers")
        .await;
    assert_eq!(
        mine["chunks"],
        json!([]),
        "Sam's chunk was not stored: {mine}"
    );
}

/// The worked example of `docs/security.md`, step by step: a group allowed to create file
/// repositories and remotes; a member creates a repository and owns it; a user outside the group
/// does not see it until its owner gives the whole group the viewer role, and then only members
/// see it.
async fn the_private_team_repository_of_the_security_guide(backend: Backend) {
    let app = TestApp::start(backend).await;
    for user in ["olivia", "sam", "tom"] {
        app.create_user(user, &format!("{user}-password")).await;
    }
    let group = app
        .create(&format!("{API}/groups/"), json!({"name": "team"}))
        .await;
    let group = str_field(&group, "pulp_href").to_owned();
    for member in ["olivia", "tom"] {
        app.create(&format!("{group}users/"), json!({"username": member}))
            .await;
    }
    for role in ["file.filerepository_creator", "file.fileremote_creator"] {
        app.create(
            &format!("{group}roles/"),
            json!({"role": role, "content_object": null}),
        )
        .await;
    }
    let repositories = format!("{API}/repositories/file/file/");
    let created = app
        .expect(
            OLIVIA.post(&repositories, json!({"name": "team-files"})),
            StatusCode::CREATED,
            "a member creates a repository",
        )
        .await;
    let repository = str_field(&created, "pulp_href").to_owned();
    let tom = As::Basic("tom", "tom-password");
    for who in [SAM, tom] {
        assert_eq!(count_as(&app, &repositories, who).await, 0);
        app.expect(
            who.get(&repository),
            StatusCode::NOT_FOUND,
            "nobody else sees it yet",
        )
        .await;
    }

    let viewer = json!({"role": "file.filerepository_viewer", "groups": ["team"]});
    app.expect(
        OLIVIA.post(&format!("{repository}add_role/"), viewer),
        StatusCode::CREATED,
        "its owner gives the group the viewer role",
    )
    .await;
    assert_eq!(
        count_as(&app, &repositories, tom).await,
        1,
        "a member sees it"
    );
    assert_eq!(
        count_as(&app, &repositories, SAM).await,
        0,
        "an outsider does not"
    );
    app.expect(
        tom.patch(&repository, json!({"name": "x"})),
        StatusCode::FORBIDDEN,
        "viewing is not changing",
    )
    .await;
}

/// A remote's `headers` often carry tokens: its owner and staff see them; a user who may only
/// view the remote finds `headers` in `hidden_fields` (set), in a show and in both lists.
async fn a_remotes_headers_are_shown_only_to_who_may_change_it(backend: Backend) {
    let app = TestApp::start(backend).await;
    olivia_and_sam(&app).await;
    let headers = json!([{"Authorization": "Bearer s3cret"}]);
    let created = app
        .expect(
            OLIVIA.post(
                &format!("{API}/remotes/file/file/"),
                json!({"name": "private", "url": "http://127.0.0.1:9/", "headers": headers}),
            ),
            StatusCode::CREATED,
            "Olivia creates a remote with headers",
        )
        .await;
    assert_eq!(created["headers"], headers, "the creator owns it");
    let remote = str_field(&created, "pulp_href").to_owned();
    let viewer = json!({"role": "file.fileremote_viewer", "users": ["sam"]});
    app.expect(
        OLIVIA.post(&format!("{remote}add_role/"), viewer),
        StatusCode::CREATED,
        "Olivia gives Sam the viewer role",
    )
    .await;

    for who in [OLIVIA, As::Admin] {
        let shown = app.call(who.get(&remote)).await;
        assert_eq!(shown.body["headers"], headers, "{who:?}: {}", shown.body);
    }
    let shown = app
        .expect(
            SAM.get(&remote),
            StatusCode::OK,
            "a viewer shows the remote",
        )
        .await;
    let listed = [
        shown,
        app.call(SAM.get(&format!("{API}/remotes/file/file/")))
            .await
            .body["results"][0]
            .clone(),
        app.call(SAM.get(&format!("{API}/remotes/"))).await.body["results"][0].clone(),
    ];
    for seen in listed {
        assert_eq!(seen["pulp_href"], remote.as_str(), "{seen:#}");
        assert!(
            seen.get("headers").is_none(),
            "a viewer sees no headers: {seen:#}"
        );
        assert!(
            seen["hidden_fields"]
                .as_array()
                .expect("hidden_fields is a list")
                .contains(&json!({"name": "headers", "is_set": true})),
            "{seen:#}"
        );
        assert!(!seen.to_string().contains("s3cret"), "{seen:#}");
    }
}

/// Artifacts are content-addressed blobs with no names, shared by every repository that holds
/// their sha256: any authenticated user may upload one and see them (the default `artifacts`
/// policy), an anonymous client may not, and only staff delete one.
async fn artifacts_are_shared_by_checksum_and_only_staff_delete_them(backend: Backend) {
    let app = TestApp::start(backend).await;
    olivia_and_sam(&app).await;
    let artifacts = format!("{API}/artifacts/");
    let (content_type, body) = multipart(&[("file", Some("olivia.bin"), b"olivia's bytes")]);
    let uploaded = app
        .anonymous()
        .post(app.url(&artifacts))
        .basic_auth("olivia", Some("olivia-password"))
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .expect("POST artifacts/");
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let artifact: Value =
        serde_json::from_slice(&uploaded.bytes().await.expect("its body")).expect("an artifact");
    let artifact = str_field(&artifact, "pulp_href").to_owned();

    for who in [OLIVIA, SAM, As::Admin] {
        assert_eq!(count_as(&app, &artifacts, who).await, 1, "{who:?}");
    }
    let anonymous = app
        .anonymous()
        .get(app.url(&artifacts))
        .send()
        .await
        .expect("GET artifacts/");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    for who in [SAM, OLIVIA] {
        app.expect(
            who.delete(&artifact),
            StatusCode::FORBIDDEN,
            "only staff delete an artifact",
        )
        .await;
    }
    app.expect(
        As::Admin.delete(&artifact),
        StatusCode::NO_CONTENT,
        "staff delete an orphan artifact",
    )
    .await;
    assert_eq!(count_as(&app, &artifacts, As::Admin).await, 0);
}
