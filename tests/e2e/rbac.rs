//! Issue #17's REST endpoints of role-based access control, with three users: the admin (staff),
//! an owner and a stranger. Roles (built-in ones locked), groups and their members, the roles
//! users and groups hold, a group's object roles, access policies changed and reset; then
//! pulp-cli's `role`, `group` and `role-assignment` commands against them.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::pulp_cli::PulpCli;
use crate::support::pulp::{API, str_field};
use crate::support::requests::{As, Reply};
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(
    roles_are_managed_and_built_in_ones_are_locked,
    groups_are_private_to_those_given_roles_on_them,
    users_and_groups_hold_roles_given_by_staff,
    access_policies_change_what_users_may_do_until_reset,
    pulp_cli_manages_roles_groups_and_assignments,
);

const OWNER: As<'static> = As::Basic("owner", "owner-password");
const STRANGER: As<'static> = As::Basic("stranger", "stranger-password");

/// The two users who are not staff, created by the admin: their hrefs.
struct People {
    owner: String,
    stranger: String,
}

async fn people(app: &TestApp) -> People {
    let mut hrefs = Vec::new();
    for who in [OWNER, STRANGER] {
        let As::Basic(username, password) = who else {
            unreachable!("both log in with a password")
        };
        let user = app
            .create(
                &format!("{API}/users/"),
                json!({ "username": username, "password": password }),
            )
            .await;
        hrefs.push(str_field(&user, "pulp_href").to_owned());
    }
    let stranger = hrefs.pop().expect("the stranger");
    let owner = hrefs.pop().expect("the owner");
    People { owner, stranger }
}

/// `method path` as `who`, with a JSON body when given.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    who: As<'_>,
    body: Option<Value>,
) -> Reply {
    app.request(method, path, who, body.as_ref(), &[]).await
}

/// Asserts the reply's status, showing its body when it differs; returns the body.
fn expect(reply: Reply, status: StatusCode, what: &str) -> Value {
    assert_eq!(reply.status, status, "{what}: {}", reply.body);
    reply.body
}

/// The `name` of every result of a page.
fn names(page: &Value, field: &str) -> Vec<String> {
    page["results"]
        .as_array()
        .expect("a page")
        .iter()
        .map(|item| str_field(item, field).to_owned())
        .collect()
}

/// Built-in roles are listed with their permissions and cannot be changed; a custom role takes
/// only permissions that exist and a name no other role has; anyone may read roles, only staff
/// write them.
async fn roles_are_managed_and_built_in_ones_are_locked(backend: Backend) {
    let app = TestApp::start(backend).await;
    people(&app).await;
    let roles = format!("{API}/roles/");

    let owner_role = app
        .get_json(&format!("{roles}?name=file.filerepository_owner"))
        .await;
    assert_eq!(owner_role["count"], 1, "{owner_role:#}");
    let owner_role = &owner_role["results"][0];
    assert_eq!(owner_role["locked"], true);
    let permissions = owner_role["permissions"].as_array().expect("permissions");
    for permission in ["file.view_filerepository", "file.sync_filerepository"] {
        assert!(permissions.contains(&json!(permission)), "{owner_role:#}");
    }
    let locked_href = str_field(owner_role, "pulp_href").to_owned();
    let custom = app.get_json(&format!("{roles}?locked=false")).await;
    assert_eq!(
        custom["count"], 0,
        "only built-in roles at first: {custom:#}"
    );
    let viewers = app
        .get_json(&format!(
            "{roles}?name__startswith=python.&contains_permission=python.view_pythondistribution"
        ))
        .await;
    assert_eq!(
        names(&viewers, "name"),
        [
            "python.pythondistribution_owner",
            "python.pythondistribution_viewer"
        ]
    );

    let created = app
        .create(
            &roles,
            json!({
                "name": "readers",
                "description": "Reads repositories.",
                "permissions": ["file.view_filerepository"],
            }),
        )
        .await;
    assert_eq!(created["locked"], false, "{created:#}");
    assert_eq!(created["permissions"], json!(["file.view_filerepository"]));
    for field in ["pulp_href", "prn", "pulp_created", "pulp_last_updated"] {
        assert!(created[field].is_string(), "{field}: {created:#}");
    }
    let href = str_field(&created, "pulp_href").to_owned();
    let unknown = app
        .post_json(
            &roles,
            &json!({ "name": "wishful", "permissions": ["file.fly_filerepository"] }),
        )
        .await;
    assert_eq!(unknown.0, StatusCode::BAD_REQUEST, "{}", unknown.1);
    assert!(unknown.1["permissions"].is_array(), "{}", unknown.1);
    let taken = app
        .post_json(&roles, &json!({ "name": "readers", "permissions": [] }))
        .await;
    assert_eq!(taken.0, StatusCode::BAD_REQUEST, "{}", taken.1);
    assert!(taken.1["name"].is_array(), "{}", taken.1);

    let (status, changed) = app
        .patch_json(
            &href,
            &json!({ "permissions": ["file.view_filerepository", "file.sync_filerepository"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        changed["permissions"],
        json!(["file.sync_filerepository", "file.view_filerepository"])
    );
    assert_eq!(changed["description"], "Reads repositories.");

    for (method, what) in [(Method::PATCH, "changed"), (Method::DELETE, "deleted")] {
        let body = (method == Method::PATCH).then(|| json!({ "description": "mine now" }));
        let refused = expect(
            call(&app, method, &locked_href, As::Admin, body).await,
            StatusCode::FORBIDDEN,
            "a locked role",
        );
        assert!(
            str_field(&refused, "detail")
                .contains(&format!("locked (built-in) role and cannot be {what}")),
            "{refused}"
        );
    }

    let listed = expect(
        call(&app, Method::GET, &roles, STRANGER, None).await,
        StatusCode::OK,
        "anyone lists roles",
    );
    assert!(listed["count"].as_u64().expect("a count") > 10, "{listed}");
    expect(
        call(
            &app,
            Method::POST,
            &roles,
            STRANGER,
            Some(json!({ "name": "mine" })),
        )
        .await,
        StatusCode::FORBIDDEN,
        "only staff create roles",
    );
    expect(
        call(&app, Method::DELETE, &href, STRANGER, None).await,
        StatusCode::FORBIDDEN,
        "only staff delete roles",
    );
    expect(
        call(&app, Method::DELETE, &href, As::Admin, None).await,
        StatusCode::NO_CONTENT,
        "staff delete a custom role",
    );
    assert_eq!(app.get(&href).await.0, StatusCode::NOT_FOUND);
}

/// A group is visible to its creator (who gets `core.group_owner` on it) and to those given a
/// role on it, and a 404 to anyone else; its owner manages its members and its roles.
async fn groups_are_private_to_those_given_roles_on_them(backend: Backend) {
    let app = TestApp::start(backend).await;
    let people = people(&app).await;
    let groups = format!("{API}/groups/");

    expect(
        call(
            &app,
            Method::POST,
            &groups,
            OWNER,
            Some(json!({ "name": "team" })),
        )
        .await,
        StatusCode::FORBIDDEN,
        "creating a group needs core.add_group",
    );
    app.create(
        &format!("{}roles/", people.owner),
        json!({ "role": "core.group_creator", "content_object": null }),
    )
    .await;
    let group = expect(
        call(
            &app,
            Method::POST,
            &groups,
            OWNER,
            Some(json!({ "name": "team" })),
        )
        .await,
        StatusCode::CREATED,
        "a group creator creates a group",
    );
    let href = str_field(&group, "pulp_href").to_owned();
    assert_eq!(group["name"], "team");
    assert!(
        href.ends_with(&format!("/groups/{}/", str_field(&group, "id"))),
        "{group}"
    );
    let duplicate = app.post_json(&groups, &json!({ "name": "team" })).await;
    assert_eq!(duplicate.0, StatusCode::BAD_REQUEST, "{}", duplicate.1);

    let theirs = expect(
        call(
            &app,
            Method::GET,
            &format!("{groups}?name=team"),
            OWNER,
            None,
        )
        .await,
        StatusCode::OK,
        "the owner lists their group",
    );
    assert_eq!(names(&theirs, "name"), ["team"]);
    let hidden = expect(
        call(&app, Method::GET, &groups, STRANGER, None).await,
        StatusCode::OK,
        "a stranger lists groups",
    );
    assert_eq!(hidden["count"], 0, "{hidden}");
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({ "name": "theirs" }));
        expect(
            call(&app, method.clone(), &href, STRANGER, body).await,
            StatusCode::NOT_FOUND,
            &format!("a stranger's {method} of another's group"),
        );
    }
    let roles = expect(
        call(
            &app,
            Method::GET,
            &format!("{href}list_roles/"),
            OWNER,
            None,
        )
        .await,
        StatusCode::OK,
        "the owner lists the roles on their group",
    );
    assert_eq!(
        roles,
        json!({ "roles": [{ "role": "core.group_owner", "users": ["owner"], "groups": [] }] })
    );
    let mine = expect(
        call(
            &app,
            Method::GET,
            &format!("{href}my_permissions/"),
            OWNER,
            None,
        )
        .await,
        StatusCode::OK,
        "the owner's permissions on their group",
    );
    assert!(
        mine["permissions"]
            .as_array()
            .expect("a list")
            .contains(&json!("core.change_group")),
        "{mine}"
    );

    // Members.
    let members = format!("{href}users/");
    let added = expect(
        call(
            &app,
            Method::POST,
            &members,
            OWNER,
            Some(json!({ "username": "stranger" })),
        )
        .await,
        StatusCode::CREATED,
        "the owner adds a member",
    );
    assert_eq!(added["username"], "stranger");
    assert_eq!(added["pulp_href"], people.stranger.as_str());
    let nobody = expect(
        call(
            &app,
            Method::POST,
            &members,
            OWNER,
            Some(json!({ "username": "nobody" })),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "a member must exist",
    );
    assert!(nobody["username"].is_array(), "{nobody}");
    let listed = expect(
        call(&app, Method::GET, &members, OWNER, None).await,
        StatusCode::OK,
        "the owner lists the members",
    );
    assert_eq!(names(&listed, "username"), ["stranger"]);

    // A role on the group for the stranger makes it visible to them, until it is taken back.
    let viewer = json!({ "role": "core.group_viewer", "users": ["stranger"] });
    let given = expect(
        call(
            &app,
            Method::POST,
            &format!("{href}add_role/"),
            OWNER,
            Some(viewer.clone()),
        )
        .await,
        StatusCode::CREATED,
        "the owner gives the stranger a role on the group",
    );
    assert_eq!(
        given,
        json!({ "role": "core.group_viewer", "users": ["stranger"], "groups": [] })
    );
    expect(
        call(
            &app,
            Method::POST,
            &format!("{href}add_role/"),
            OWNER,
            Some(viewer.clone()),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "a role held already",
    );
    let unrelated = json!({ "role": "file.filerepository_viewer", "users": ["stranger"] });
    expect(
        call(
            &app,
            Method::POST,
            &format!("{href}add_role/"),
            OWNER,
            Some(unrelated),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "a role with no permission on groups",
    );
    expect(
        call(&app, Method::GET, &href, STRANGER, None).await,
        StatusCode::OK,
        "a viewer sees the group",
    );
    expect(
        call(
            &app,
            Method::POST,
            &format!("{href}add_role/"),
            STRANGER,
            Some(viewer.clone()),
        )
        .await,
        StatusCode::FORBIDDEN,
        "a viewer may not manage roles",
    );
    expect(
        call(
            &app,
            Method::POST,
            &format!("{href}remove_role/"),
            OWNER,
            Some(viewer),
        )
        .await,
        StatusCode::CREATED,
        "the owner takes the role back",
    );
    expect(
        call(&app, Method::GET, &href, STRANGER, None).await,
        StatusCode::NOT_FOUND,
        "the group is hidden again",
    );

    let member = format!(
        "{members}{}",
        people
            .stranger
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .expect("an id")
    ) + "/";
    expect(
        call(&app, Method::DELETE, &member, OWNER, None).await,
        StatusCode::NO_CONTENT,
        "the owner removes the member",
    );
    expect(
        call(&app, Method::DELETE, &member, OWNER, None).await,
        StatusCode::NOT_FOUND,
        "a user who is not a member",
    );
    let renamed = expect(
        call(
            &app,
            Method::PATCH,
            &href,
            OWNER,
            Some(json!({ "name": "crew" })),
        )
        .await,
        StatusCode::OK,
        "the owner renames the group",
    );
    assert_eq!(renamed["name"], "crew");
    expect(
        call(&app, Method::DELETE, &href, OWNER, None).await,
        StatusCode::NO_CONTENT,
        "the owner deletes the group",
    );
}

/// Staff give users and groups roles, globally or on one object; a user reads their own
/// assignments and nobody else's; a deleted user's memberships go with them.
async fn users_and_groups_hold_roles_given_by_staff(backend: Backend) {
    let app = TestApp::start(backend).await;
    let people = people(&app).await;
    let owner_roles = format!("{}roles/", people.owner);

    let given = app
        .create(
            &owner_roles,
            json!({ "role": "file.filerepository_creator", "content_object": null }),
        )
        .await;
    assert_eq!(given["role"], "file.filerepository_creator");
    assert_eq!(given["content_object"], Value::Null);
    assert_eq!(given["domain"], Value::Null);
    assert_eq!(given["permissions"], json!(["file.add_filerepository"]));
    assert!(
        str_field(&given, "pulp_href").starts_with(&owner_roles),
        "{given:#}"
    );
    let twice = app
        .post_json(
            &owner_roles,
            &json!({ "role": "file.filerepository_creator", "content_object": null }),
        )
        .await;
    assert_eq!(twice.0, StatusCode::BAD_REQUEST, "{}", twice.1);
    let unknown = app
        .post_json(
            &owner_roles,
            &json!({ "role": "core.nothing", "content_object": null }),
        )
        .await;
    assert!(unknown.1["role"].is_array(), "{}", unknown.1);

    let own = expect(
        call(&app, Method::GET, &owner_roles, OWNER, None).await,
        StatusCode::OK,
        "a user reads their roles",
    );
    assert_eq!(names(&own, "role"), ["file.filerepository_creator"]);
    expect(
        call(&app, Method::GET, &owner_roles, STRANGER, None).await,
        StatusCode::NOT_FOUND,
        "another user's roles",
    );
    let escalation = json!({ "role": "core.plugin_manager", "content_object": null });
    expect(
        call(&app, Method::POST, &owner_roles, OWNER, Some(escalation)).await,
        StatusCode::FORBIDDEN,
        "nobody gives themselves a role",
    );
    expect(
        call(
            &app,
            Method::GET,
            str_field(&given, "pulp_href"),
            OWNER,
            None,
        )
        .await,
        StatusCode::OK,
        "a user reads one of their assignments",
    );

    // A role on one object.
    let repository = app.create_file_repository("shared").await;
    let stranger_roles = format!("{}roles/", people.stranger);
    let on_object = app
        .create(
            &stranger_roles,
            json!({ "role": "file.filerepository_viewer", "content_object": repository }),
        )
        .await;
    assert_eq!(on_object["content_object"], repository.as_str());
    let missing = repository.replace(
        repository
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .expect("an id"),
        "00000000-0000-4000-8000-000000000000",
    );
    let gone = app
        .post_json(
            &stranger_roles,
            &json!({ "role": "file.filerepository_viewer", "content_object": missing }),
        )
        .await;
    assert_eq!(gone.0, StatusCode::BAD_REQUEST, "{}", gone.1);
    assert!(gone.1["content_object"].is_array(), "{}", gone.1);
    let unrelated = app
        .post_json(
            &stranger_roles,
            &json!({ "role": "core.group_viewer", "content_object": repository }),
        )
        .await;
    assert_eq!(unrelated.0, StatusCode::BAD_REQUEST, "{}", unrelated.1);
    let global = app
        .get_json(&format!("{stranger_roles}?content_object=null"))
        .await;
    assert_eq!(global["count"], 0, "{global:#}");
    let on_it = app
        .get_json(&format!("{stranger_roles}?content_object={repository}"))
        .await;
    assert_eq!(names(&on_it, "role"), ["file.filerepository_viewer"]);
    let deleted = app
        .request(
            Method::DELETE,
            str_field(&on_object, "pulp_href"),
            As::Admin,
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert_eq!(app.get_json(&stranger_roles).await["count"], 0);

    // A group's roles, and a deleted member leaving the group.
    let group = app
        .create(&format!("{API}/groups/"), json!({ "name": "ops" }))
        .await;
    let group_href = str_field(&group, "pulp_href").to_owned();
    let group_roles = format!("{group_href}roles/");
    let held = app
        .create(
            &group_roles,
            json!({ "role": "file.filerepository_viewer", "content_object": null }),
        )
        .await;
    assert!(
        str_field(&held, "pulp_href").starts_with(&group_roles),
        "{held:#}"
    );
    assert_eq!(
        names(
            &app.get_json(&format!("{group_roles}?role__startswith=file."))
                .await,
            "role"
        ),
        ["file.filerepository_viewer"]
    );
    app.create(
        &format!("{group_href}users/"),
        json!({ "username": "stranger" }),
    )
    .await;
    let deleted = app
        .request(Method::DELETE, &people.stranger, As::Admin, None, &[])
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert_eq!(
        app.get_json(&format!("{group_href}users/")).await["count"],
        0,
        "a deleted user leaves their groups"
    );
    let taken = app
        .request(
            Method::DELETE,
            str_field(&held, "pulp_href"),
            As::Admin,
            None,
            &[],
        )
        .await;
    assert_eq!(taken.status, StatusCode::NO_CONTENT, "{}", taken.body);
}

/// A customized policy takes effect at once and is marked so; a statement the engine does not
/// know is refused; `reset/` restores the default.
async fn access_policies_change_what_users_may_do_until_reset(backend: Backend) {
    let app = TestApp::start(backend).await;
    people(&app).await;
    let policies = format!("{API}/access_policies/");
    let page = app
        .get_json(&format!("{policies}?viewset_name=groups"))
        .await;
    assert_eq!(page["count"], 1, "{page:#}");
    let policy = &page["results"][0];
    assert_eq!(policy["customized"], false);
    assert_eq!(policy["creation_hooks"], policy["permissions_assignment"]);
    assert!(policy["queryset_scoping"].is_object(), "{policy:#}");
    let href = str_field(policy, "pulp_href").to_owned();
    let default_statements = policy["statements"].clone();
    let all = app.get_json(&policies).await;
    assert!(
        names(&all, "viewset_name").contains(&"repositories/file/file".to_owned()),
        "{all:#}"
    );

    let bad = app
        .patch_json(
            &href,
            &json!({ "statements": [{ "action": "*", "principal": "everyone", "effect": "allow" }] }),
        )
        .await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST, "{}", bad.1);
    assert!(bad.1["statements"].is_array(), "{}", bad.1);
    expect(
        call(
            &app,
            Method::PATCH,
            &href,
            STRANGER,
            Some(json!({ "statements": [] })),
        )
        .await,
        StatusCode::FORBIDDEN,
        "only staff change policies",
    );

    let mut statements = default_statements.as_array().expect("statements").clone();
    statements
        .push(json!({ "action": ["create"], "principal": "authenticated", "effect": "allow" }));
    let (status, changed) = app
        .patch_json(&href, &json!({ "statements": statements }))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["customized"], true);
    let group = json!({ "name": "strangers" });
    expect(
        call(
            &app,
            Method::POST,
            &format!("{API}/groups/"),
            STRANGER,
            Some(group),
        )
        .await,
        StatusCode::CREATED,
        "the customized policy lets anyone create a group",
    );

    let reset = expect(
        call(
            &app,
            Method::POST,
            &format!("{href}reset/"),
            As::Admin,
            None,
        )
        .await,
        StatusCode::OK,
        "reset",
    );
    assert_eq!(reset["customized"], false);
    assert_eq!(reset["statements"], default_statements);
    let group = json!({ "name": "strangers-again" });
    expect(
        call(
            &app,
            Method::POST,
            &format!("{API}/groups/"),
            STRANGER,
            Some(group),
        )
        .await,
        StatusCode::FORBIDDEN,
        "the default policy again",
    );
}

/// pulp-cli's commands, unchanged, against these endpoints.
async fn pulp_cli_manages_roles_groups_and_assignments(backend: Backend) {
    let app = TestApp::start(backend).await;
    people(&app).await;
    let pulp = PulpCli::new(&app);

    let listed = pulp
        .run(&["role", "list", "--name", "core.group_owner"])
        .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed:#}");
    assert_eq!(listed[0]["locked"], true);
    let role = pulp
        .run(&[
            "role",
            "create",
            "--name",
            "cli-readers",
            "--permission",
            "file.view_filerepository",
        ])
        .await;
    assert_eq!(role["permissions"], json!(["file.view_filerepository"]));
    let custom = pulp.run(&["role", "list", "--unlocked"]).await;
    assert_eq!(custom[0]["name"], "cli-readers", "{custom:#}");

    let group = pulp.run(&["group", "create", "--name", "cli-team"]).await;
    assert_eq!(group["name"], "cli-team");
    let member = pulp
        .run(&[
            "group",
            "user",
            "add",
            "--group",
            "cli-team",
            "--username",
            "owner",
        ])
        .await;
    assert_eq!(member["username"], "owner");
    let members = pulp
        .run(&["group", "user", "list", "--group", "cli-team"])
        .await;
    assert_eq!(members[0]["username"], "owner", "{members:#}");

    let assignment = pulp
        .run(&[
            "user",
            "role-assignment",
            "add",
            "--username",
            "stranger",
            "--role",
            "cli-readers",
            "--object",
            "",
        ])
        .await;
    assert_eq!(assignment["role"], "cli-readers");
    assert_eq!(assignment["content_object"], Value::Null);
    let held = pulp
        .run(&["user", "role-assignment", "list", "--username", "stranger"])
        .await;
    assert_eq!(held[0]["role"], "cli-readers", "{held:#}");

    pulp.run(&[
        "group",
        "role-assignment",
        "add",
        "--group",
        "cli-team",
        "--role",
        "file.filerepository_viewer",
        "--object",
        "",
    ])
    .await;
    let group_roles = pulp
        .run(&["group", "role-assignment", "list", "--group", "cli-team"])
        .await;
    assert_eq!(
        group_roles[0]["role"], "file.filerepository_viewer",
        "{group_roles:#}"
    );
    pulp.run(&[
        "group",
        "role-assignment",
        "remove",
        "--group",
        "cli-team",
        "--role",
        "file.filerepository_viewer",
        "--object",
        "",
    ])
    .await;
    let group_roles = pulp
        .run(&["group", "role-assignment", "list", "--group", "cli-team"])
        .await;
    assert_eq!(group_roles, json!([]));

    let object_roles = pulp
        .run(&["group", "role", "list", "--name", "cli-team"])
        .await;
    assert_eq!(
        object_roles["roles"][0]["role"], "core.group_owner",
        "{object_roles:#}"
    );
    let policy = pulp
        .run(&["access-policy", "show", "--viewset-name", "roles"])
        .await;
    assert_eq!(policy["customized"], false, "{policy:#}");
}
