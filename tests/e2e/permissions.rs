//! Issue #17: three users share one server — the admin (staff), Olivia who owns her objects, and
//! Sam, a stranger to them. Olivia may create what her roles let her create, and becomes the
//! owner of what she creates; Sam sees none of it (a show is a 404, not a 403) until Olivia
//! gives him a role on one object; only staff manage plugins; a task and an upload belong to
//! who started them.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::pulp::{API, created_resources, str_field};
use crate::support::requests::{As, Reply, multipart};
use crate::support::{Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    an_owner_works_on_their_objects_and_a_stranger_sees_none_of_them,
    a_role_on_one_object_opens_it_to_another_user,
    only_staff_manage_plugins,
    a_task_and_an_upload_belong_to_who_started_them,
    the_private_team_repository_of_the_security_guide,
    a_remotes_headers_are_shown_only_to_who_may_change_it,
);

const OLIVIA: As<'static> = As::Basic("olivia", "olivia-password");
const SAM: As<'static> = As::Basic("sam", "sam-password");

/// Creates a user who is not staff; returns its href.
async fn create_user(app: &TestApp, username: &str) -> String {
    let user = app
        .create(
            &format!("{API}/users/"),
            json!({"username": username, "password": format!("{username}-password")}),
        )
        .await;
    str_field(&user, "pulp_href").to_owned()
}

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
    let olivia = create_user(app, "olivia").await;
    let sam = create_user(app, "sam").await;
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

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    who: As<'_>,
    body: Option<Value>,
) -> Reply {
    app.request(method, path, who, body.as_ref(), &[]).await
}

/// `who` POSTs `body` to `path`, expecting a task; waits for it and answers what it created.
async fn run_as(app: &TestApp, path: &str, who: As<'_>, body: Value) -> Vec<String> {
    let reply = call(app, Method::POST, path, who, Some(body.clone())).await;
    assert_eq!(
        reply.status,
        StatusCode::ACCEPTED,
        "POST {path} {body}: {}",
        reply.body
    );
    let task = app.wait_task(str_field(&reply.body, "task")).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    created_resources(&task)
}

/// How many objects `who` sees in the list at `path`.
async fn count_as(app: &TestApp, path: &str, who: As<'_>) -> u64 {
    let reply = call(app, Method::GET, path, who, None).await;
    assert_eq!(reply.status, StatusCode::OK, "GET {path}: {}", reply.body);
    reply.body["count"].as_u64().expect("a page has a count")
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

    let refused = call(
        &app,
        Method::POST,
        &repositories,
        SAM,
        Some(json!({"name": "sams"})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(
        count_as(&app, &repositories, As::Admin).await,
        0,
        "nothing was created"
    );

    let created = call(
        &app,
        Method::POST,
        &repositories,
        OLIVIA,
        Some(json!({"name": "olivias"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let repository = str_field(&created.body, "pulp_href").to_owned();
    let created = call(
        &app,
        Method::POST,
        &format!("{API}/remotes/file/file/"),
        OLIVIA,
        Some(json!({"name": "upstream", "url": upstream.manifest_url(), "policy": "immediate"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let remote = str_field(&created.body, "pulp_href").to_owned();

    let sync = format!("{repository}sync/");
    let refused = call(
        &app,
        Method::POST,
        &sync,
        SAM,
        Some(json!({"remote": remote})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
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

    let mine = call(
        &app,
        Method::GET,
        &format!("{repository}my_permissions/"),
        OLIVIA,
        None,
    )
    .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    for permission in [
        "file.view_filerepository",
        "file.sync_filerepository",
        "file.manage_roles_filerepository",
    ] {
        assert!(
            mine.body["permissions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|held| held == permission),
            "the creator owns the repository: {}",
            mine.body
        );
    }

    for (object, collection) in [
        (&repository, "repositories"),
        (&remote, "remotes"),
        (&publication, "publications"),
        (&distribution, "distributions"),
    ] {
        let list = format!("{API}/{collection}/file/file/");
        assert_eq!(
            call(&app, Method::GET, object, OLIVIA, None).await.status,
            StatusCode::OK,
            "{object}"
        );
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
            let reply = call(&app, method.clone(), object, SAM, body).await;
            assert_eq!(
                reply.status,
                StatusCode::NOT_FOUND,
                "{method} {object} as Sam: {}",
                reply.body
            );
        }
    }

    // Her repository's versions and content are hers too: content is seen through the
    // repositories that hold it, as Pulp scopes it.
    let versions = call(
        &app,
        Method::GET,
        &format!("{repository}versions/"),
        SAM,
        None,
    )
    .await;
    assert_eq!(versions.status, StatusCode::NOT_FOUND, "{}", versions.body);
    let version = format!("{repository}versions/1/");
    let shown = call(&app, Method::GET, &version, SAM, None).await;
    assert_eq!(shown.status, StatusCode::NOT_FOUND, "{}", shown.body);
    for content in [
        format!("{API}/content/"),
        format!("{API}/content/file/files/"),
    ] {
        assert_eq!(count_as(&app, &content, OLIVIA).await, 3, "{content}");
        assert_eq!(count_as(&app, &content, As::Admin).await, 3, "{content}");
        assert_eq!(count_as(&app, &content, SAM).await, 0, "{content}");
    }
    let units = call(
        &app,
        Method::GET,
        &format!("{API}/content/file/files/"),
        OLIVIA,
        None,
    )
    .await;
    let unit = str_field(&units.body["results"][0], "pulp_href").to_owned();
    let shown = call(&app, Method::GET, &unit, SAM, None).await;
    assert_eq!(shown.status, StatusCode::NOT_FOUND, "{}", shown.body);

    let refused = call(
        &app,
        Method::POST,
        &format!("{API}/distributions/file/file/"),
        SAM,
        Some(json!({"name": "sams", "base_path": "sams", "publication": publication})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
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
    let created = call(
        &app,
        Method::POST,
        &repositories,
        OLIVIA,
        Some(json!({"name": "shared"})),
    )
    .await;
    let repository = str_field(&created.body, "pulp_href").to_owned();
    let viewer = json!({"role": "file.filerepository_viewer", "users": ["sam"]});

    let refused = call(
        &app,
        Method::POST,
        &format!("{repository}add_role/"),
        SAM,
        Some(viewer.clone()),
    )
    .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    let added = call(
        &app,
        Method::POST,
        &format!("{repository}add_role/"),
        OLIVIA,
        Some(viewer.clone()),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);

    assert_eq!(
        call(&app, Method::GET, &repository, SAM, None).await.status,
        StatusCode::OK
    );
    assert_eq!(count_as(&app, &repositories, SAM).await, 1);
    let refused = call(
        &app,
        Method::PATCH,
        &repository,
        SAM,
        Some(json!({"name": "mine"})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let refused = call(
        &app,
        Method::POST,
        &format!("{repository}add_role/"),
        SAM,
        Some(viewer.clone()),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "a viewer may not give roles: {}",
        refused.body
    );

    let roles = call(
        &app,
        Method::GET,
        &format!("{repository}list_roles/"),
        OLIVIA,
        None,
    )
    .await;
    assert_eq!(roles.status, StatusCode::OK, "{}", roles.body);
    let holders = |role: &str| -> Value {
        roles.body["roles"]
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
        "{}",
        roles.body
    );
    assert_eq!(
        holders("file.filerepository_viewer"),
        json!(["sam"]),
        "{}",
        roles.body
    );

    let removed = call(
        &app,
        Method::POST,
        &format!("{repository}remove_role/"),
        OLIVIA,
        Some(viewer),
    )
    .await;
    assert_eq!(removed.status, StatusCode::CREATED, "{}", removed.body);
    assert_eq!(
        call(&app, Method::GET, &repository, SAM, None).await.status,
        StatusCode::NOT_FOUND
    );
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
    let disable = call(
        &app,
        Method::PATCH,
        &file,
        SAM,
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(disable.status, StatusCode::FORBIDDEN, "{}", disable.body);
    let remove = call(
        &app,
        Method::DELETE,
        &format!("{file}?force=true"),
        SAM,
        None,
    )
    .await;
    assert_eq!(remove.status, StatusCode::FORBIDDEN, "{}", remove.body);
    assert_eq!(app.get_json(&plugins).await, before, "nothing changed");
}

/// Olivia's sync task and her upload are hers: Sam's show of either is a 404, his lists leave
/// them out, and his chunk PUT to her upload is a 404 that stores nothing.
async fn a_task_and_an_upload_belong_to_who_started_them(backend: Backend) {
    let app = TestApp::start(backend).await;
    olivia_and_sam(&app).await;
    let created = call(
        &app,
        Method::POST,
        &format!("{API}/repositories/file/file/"),
        OLIVIA,
        Some(json!({"name": "tasks"})),
    )
    .await;
    let repository = str_field(&created.body, "pulp_href").to_owned();
    let accepted = call(
        &app,
        Method::PATCH,
        &repository,
        OLIVIA,
        Some(json!({"description": "x"})),
    )
    .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    let task = str_field(&accepted.body, "task").to_owned();
    app.wait_task(&task).await;
    assert_eq!(
        call(&app, Method::GET, &task, OLIVIA, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, Method::GET, &task, SAM, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(count_as(&app, &format!("{API}/tasks/"), SAM).await, 0);
    assert!(count_as(&app, &format!("{API}/tasks/"), OLIVIA).await >= 1);

    let upload = call(
        &app,
        Method::POST,
        &format!("{API}/uploads/"),
        OLIVIA,
        Some(json!({"size": 4})),
    )
    .await;
    assert_eq!(upload.status, StatusCode::CREATED, "{}", upload.body);
    let upload = str_field(&upload.body, "pulp_href").to_owned();
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
    assert_eq!(
        call(&app, Method::GET, &upload, SAM, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(count_as(&app, &format!("{API}/uploads/"), SAM).await, 0);
    let mine = call(&app, Method::GET, &upload, OLIVIA, None).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(
        mine.body["chunks"],
        json!([]),
        "Sam's chunk was not stored: {}",
        mine.body
    );
}

/// The worked example of `docs/security.md`, step by step: a group allowed to create file
/// repositories and remotes; a member creates a repository and owns it; a user outside the group
/// does not see it until its owner gives the whole group the viewer role, and then only members
/// see it.
async fn the_private_team_repository_of_the_security_guide(backend: Backend) {
    let app = TestApp::start(backend).await;
    for user in ["olivia", "sam", "tom"] {
        create_user(&app, user).await;
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
    let created = call(
        &app,
        Method::POST,
        &repositories,
        OLIVIA,
        Some(json!({"name": "team-files"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let repository = str_field(&created.body, "pulp_href").to_owned();
    let tom = As::Basic("tom", "tom-password");
    for who in [SAM, tom] {
        assert_eq!(count_as(&app, &repositories, who).await, 0);
        let shown = call(&app, Method::GET, &repository, who, None).await;
        assert_eq!(shown.status, StatusCode::NOT_FOUND, "{}", shown.body);
    }

    let viewer = json!({"role": "file.filerepository_viewer", "groups": ["team"]});
    let added = call(
        &app,
        Method::POST,
        &format!("{repository}add_role/"),
        OLIVIA,
        Some(viewer),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
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
    let changed = call(
        &app,
        Method::PATCH,
        &repository,
        tom,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(
        changed.status,
        StatusCode::FORBIDDEN,
        "viewing is not changing: {}",
        changed.body
    );
}

/// A remote's `headers` often carry tokens: its owner and staff see them; a user who may only
/// view the remote finds `headers` in `hidden_fields` (set), in a show and in both lists.
async fn a_remotes_headers_are_shown_only_to_who_may_change_it(backend: Backend) {
    let app = TestApp::start(backend).await;
    olivia_and_sam(&app).await;
    let headers = json!([{"Authorization": "Bearer s3cret"}]);
    let created = call(
        &app,
        Method::POST,
        &format!("{API}/remotes/file/file/"),
        OLIVIA,
        Some(json!({"name": "private", "url": "http://127.0.0.1:9/", "headers": headers})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["headers"], headers, "the creator owns it");
    let remote = str_field(&created.body, "pulp_href").to_owned();
    let viewer = json!({"role": "file.fileremote_viewer", "users": ["sam"]});
    let added = call(
        &app,
        Method::POST,
        &format!("{remote}add_role/"),
        OLIVIA,
        Some(viewer),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);

    for who in [OLIVIA, As::Admin] {
        let shown = call(&app, Method::GET, &remote, who, None).await;
        assert_eq!(shown.body["headers"], headers, "{who:?}: {}", shown.body);
    }
    let shown = call(&app, Method::GET, &remote, SAM, None).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    let listed = [
        shown.body,
        call(
            &app,
            Method::GET,
            &format!("{API}/remotes/file/file/"),
            SAM,
            None,
        )
        .await
        .body["results"][0]
            .clone(),
        call(&app, Method::GET, &format!("{API}/remotes/"), SAM, None)
            .await
            .body["results"][0]
            .clone(),
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
