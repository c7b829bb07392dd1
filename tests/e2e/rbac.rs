//! Issue #17's REST endpoints of role-based access control, with three users: the admin (staff),
//! an owner and a stranger. Roles (built-in ones locked), groups and their members, the roles
//! users and groups hold, a group's object roles, access policies changed and reset; then
//! pulp-cli's `role`, `group` and `role-assignment` commands against them.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::pulp_cli::PulpCli;
use crate::support::pulp::{API, str_field};
use crate::support::requests::As;
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
        hrefs.push(app.create_user(username, password).await);
    }
    let stranger = hrefs.pop().expect("the stranger");
    let owner = hrefs.pop().expect("the owner");
    People { owner, stranger }
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
        .expect(
            As::Admin.post(
                &roles,
                json!({ "name": "wishful", "permissions": ["file.fly_filerepository"] }),
            ),
            StatusCode::BAD_REQUEST,
            "a permission that does not exist",
        )
        .await;
    assert!(unknown["permissions"].is_array(), "{unknown}");
    let taken = app
        .expect(
            As::Admin.post(&roles, json!({ "name": "readers", "permissions": [] })),
            StatusCode::BAD_REQUEST,
            "a name another role has",
        )
        .await;
    assert!(taken["name"].is_array(), "{taken}");

    let changed = app
        .expect(
            As::Admin.patch(
                &href,
                json!({ "permissions": ["file.view_filerepository", "file.sync_filerepository"] }),
            ),
            StatusCode::OK,
            "staff change a custom role",
        )
        .await;
    assert_eq!(
        changed["permissions"],
        json!(["file.sync_filerepository", "file.view_filerepository"])
    );
    assert_eq!(changed["description"], "Reads repositories.");

    for (method, what) in [(Method::PATCH, "changed"), (Method::DELETE, "deleted")] {
        let body = (method == Method::PATCH).then(|| json!({ "description": "mine now" }));
        let refused = app
            .expect(
                As::Admin.call(method, &locked_href, body),
                StatusCode::FORBIDDEN,
                "a locked role",
            )
            .await;
        assert!(
            str_field(&refused, "detail")
                .contains(&format!("locked (built-in) role and cannot be {what}")),
            "{refused}"
        );
    }

    let listed = app
        .expect(STRANGER.get(&roles), StatusCode::OK, "anyone lists roles")
        .await;
    assert!(listed["count"].as_u64().expect("a count") > 10, "{listed}");
    app.expect(
        STRANGER.post(&roles, json!({ "name": "mine" })),
        StatusCode::FORBIDDEN,
        "only staff create roles",
    )
    .await;
    app.expect(
        STRANGER.delete(&href),
        StatusCode::FORBIDDEN,
        "only staff delete roles",
    )
    .await;
    app.expect(
        As::Admin.delete(&href),
        StatusCode::NO_CONTENT,
        "staff delete a custom role",
    )
    .await;
    app.expect(
        As::Admin.get(&href),
        StatusCode::NOT_FOUND,
        "a deleted role is gone",
    )
    .await;
}

/// A group is visible to its creator (who gets `core.group_owner` on it) and to those given a
/// role on it, and a 404 to anyone else; its owner manages its members and its roles.
async fn groups_are_private_to_those_given_roles_on_them(backend: Backend) {
    let app = TestApp::start(backend).await;
    let people = people(&app).await;
    let groups = format!("{API}/groups/");

    app.expect(
        OWNER.post(&groups, json!({ "name": "team" })),
        StatusCode::FORBIDDEN,
        "creating a group needs core.add_group",
    )
    .await;
    app.create(
        &format!("{}roles/", people.owner),
        json!({ "role": "core.group_creator", "content_object": null }),
    )
    .await;
    let group = app
        .expect(
            OWNER.post(&groups, json!({ "name": "team" })),
            StatusCode::CREATED,
            "a group creator creates a group",
        )
        .await;
    let href = str_field(&group, "pulp_href").to_owned();
    assert_eq!(group["name"], "team");
    assert!(
        href.ends_with(&format!("/groups/{}/", str_field(&group, "id"))),
        "{group}"
    );
    app.expect(
        As::Admin.post(&groups, json!({ "name": "team" })),
        StatusCode::BAD_REQUEST,
        "a name another group has",
    )
    .await;

    let theirs = app
        .expect(
            OWNER.get(&format!("{groups}?name=team")),
            StatusCode::OK,
            "the owner lists their group",
        )
        .await;
    assert_eq!(names(&theirs, "name"), ["team"]);
    let hidden = app
        .expect(
            STRANGER.get(&groups),
            StatusCode::OK,
            "a stranger lists groups",
        )
        .await;
    assert_eq!(hidden["count"], 0, "{hidden}");
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({ "name": "theirs" }));
        app.expect(
            STRANGER.call(method.clone(), &href, body),
            StatusCode::NOT_FOUND,
            &format!("a stranger's {method} of another's group"),
        )
        .await;
    }
    let roles = app
        .expect(
            OWNER.get(&format!("{href}list_roles/")),
            StatusCode::OK,
            "the owner lists the roles on their group",
        )
        .await;
    assert_eq!(
        roles,
        json!({ "roles": [{ "role": "core.group_owner", "users": ["owner"], "groups": [] }] })
    );
    let mine = app
        .expect(
            OWNER.get(&format!("{href}my_permissions/")),
            StatusCode::OK,
            "the owner's permissions on their group",
        )
        .await;
    assert!(
        mine["permissions"]
            .as_array()
            .expect("a list")
            .contains(&json!("core.change_group")),
        "{mine}"
    );

    // Members.
    let members = format!("{href}users/");
    let added = app
        .expect(
            OWNER.post(&members, json!({ "username": "stranger" })),
            StatusCode::CREATED,
            "the owner adds a member",
        )
        .await;
    assert_eq!(added["username"], "stranger");
    assert_eq!(added["pulp_href"], people.stranger.as_str());
    let nobody = app
        .expect(
            OWNER.post(&members, json!({ "username": "nobody" })),
            StatusCode::BAD_REQUEST,
            "a member must exist",
        )
        .await;
    assert!(nobody["username"].is_array(), "{nobody}");
    let listed = app
        .expect(
            OWNER.get(&members),
            StatusCode::OK,
            "the owner lists the members",
        )
        .await;
    assert_eq!(names(&listed, "username"), ["stranger"]);

    // A role on the group for the stranger makes it visible to them, until it is taken back.
    let viewer = json!({ "role": "core.group_viewer", "users": ["stranger"] });
    let given = app
        .expect(
            OWNER.post(&format!("{href}add_role/"), viewer.clone()),
            StatusCode::CREATED,
            "the owner gives the stranger a role on the group",
        )
        .await;
    assert_eq!(
        given,
        json!({ "role": "core.group_viewer", "users": ["stranger"], "groups": [] })
    );
    app.expect(
        OWNER.post(&format!("{href}add_role/"), viewer.clone()),
        StatusCode::BAD_REQUEST,
        "a role held already",
    )
    .await;
    let unrelated = json!({ "role": "file.filerepository_viewer", "users": ["stranger"] });
    app.expect(
        OWNER.post(&format!("{href}add_role/"), unrelated),
        StatusCode::BAD_REQUEST,
        "a role with no permission on groups",
    )
    .await;
    app.expect(
        STRANGER.get(&href),
        StatusCode::OK,
        "a viewer sees the group",
    )
    .await;
    app.expect(
        STRANGER.post(&format!("{href}add_role/"), viewer.clone()),
        StatusCode::FORBIDDEN,
        "a viewer may not manage roles",
    )
    .await;
    app.expect(
        OWNER.post(&format!("{href}remove_role/"), viewer),
        StatusCode::CREATED,
        "the owner takes the role back",
    )
    .await;
    app.expect(
        STRANGER.get(&href),
        StatusCode::NOT_FOUND,
        "the group is hidden again",
    )
    .await;

    let member = format!(
        "{members}{}",
        people
            .stranger
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .expect("an id")
    ) + "/";
    app.expect(
        OWNER.delete(&member),
        StatusCode::NO_CONTENT,
        "the owner removes the member",
    )
    .await;
    app.expect(
        OWNER.delete(&member),
        StatusCode::NOT_FOUND,
        "a user who is not a member",
    )
    .await;
    let renamed = app
        .expect(
            OWNER.patch(&href, json!({ "name": "crew" })),
            StatusCode::OK,
            "the owner renames the group",
        )
        .await;
    assert_eq!(renamed["name"], "crew");
    app.expect(
        OWNER.delete(&href),
        StatusCode::NO_CONTENT,
        "the owner deletes the group",
    )
    .await;
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
    app.expect(
        As::Admin.post(
            &owner_roles,
            json!({ "role": "file.filerepository_creator", "content_object": null }),
        ),
        StatusCode::BAD_REQUEST,
        "a role held already",
    )
    .await;
    let unknown = app
        .post_json(
            &owner_roles,
            &json!({ "role": "core.nothing", "content_object": null }),
        )
        .await;
    assert!(unknown.1["role"].is_array(), "{}", unknown.1);

    let own = app
        .expect(
            OWNER.get(&owner_roles),
            StatusCode::OK,
            "a user reads their roles",
        )
        .await;
    assert_eq!(names(&own, "role"), ["file.filerepository_creator"]);
    app.expect(
        STRANGER.get(&owner_roles),
        StatusCode::NOT_FOUND,
        "another user's roles",
    )
    .await;
    let escalation = json!({ "role": "core.plugin_manager", "content_object": null });
    app.expect(
        OWNER.post(&owner_roles, escalation),
        StatusCode::FORBIDDEN,
        "nobody gives themselves a role",
    )
    .await;
    app.expect(
        OWNER.get(str_field(&given, "pulp_href")),
        StatusCode::OK,
        "a user reads one of their assignments",
    )
    .await;

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
        .expect(
            As::Admin.post(
                &stranger_roles,
                json!({ "role": "file.filerepository_viewer", "content_object": missing }),
            ),
            StatusCode::BAD_REQUEST,
            "a role on an object that does not exist",
        )
        .await;
    assert!(gone["content_object"].is_array(), "{gone}");
    app.expect(
        As::Admin.post(
            &stranger_roles,
            json!({ "role": "core.group_viewer", "content_object": repository }),
        ),
        StatusCode::BAD_REQUEST,
        "a role with no permission on repositories",
    )
    .await;
    let global = app
        .get_json(&format!("{stranger_roles}?content_object=null"))
        .await;
    assert_eq!(global["count"], 0, "{global:#}");
    let on_it = app
        .get_json(&format!("{stranger_roles}?content_object={repository}"))
        .await;
    assert_eq!(names(&on_it, "role"), ["file.filerepository_viewer"]);
    app.expect(
        As::Admin.delete(str_field(&on_object, "pulp_href")),
        StatusCode::NO_CONTENT,
        "staff take a role on an object back",
    )
    .await;
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
    app.expect(
        As::Admin.delete(&people.stranger),
        StatusCode::NO_CONTENT,
        "staff delete a member",
    )
    .await;
    assert_eq!(
        app.get_json(&format!("{group_href}users/")).await["count"],
        0,
        "a deleted user leaves their groups"
    );
    app.expect(
        As::Admin.delete(str_field(&held, "pulp_href")),
        StatusCode::NO_CONTENT,
        "staff take back a group's role",
    )
    .await;
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

    let bad = app.expect(As::Admin.patch(&href, json!({ "statements": [{ "action": "*", "principal": "everyone", "effect": "allow" }] })), StatusCode::BAD_REQUEST, "a statement the engine does not know").await;
    assert!(bad["statements"].is_array(), "{bad}");
    app.expect(
        STRANGER.patch(&href, json!({ "statements": [] })),
        StatusCode::FORBIDDEN,
        "only staff change policies",
    )
    .await;

    let mut statements = default_statements.as_array().expect("statements").clone();
    statements
        .push(json!({ "action": ["create"], "principal": "authenticated", "effect": "allow" }));
    let changed = app
        .expect(
            As::Admin.patch(&href, json!({ "statements": statements })),
            StatusCode::OK,
            "staff customize a policy",
        )
        .await;
    assert_eq!(changed["customized"], true);
    let group = json!({ "name": "strangers" });
    app.expect(
        STRANGER.post(&format!("{API}/groups/"), group),
        StatusCode::CREATED,
        "the customized policy lets anyone create a group",
    )
    .await;

    let reset = app
        .expect(
            As::Admin.call(Method::POST, &format!("{href}reset/"), None),
            StatusCode::OK,
            "reset",
        )
        .await;
    assert_eq!(reset["customized"], false);
    assert_eq!(reset["statements"], default_statements);
    let group = json!({ "name": "strangers-again" });
    app.expect(
        STRANGER.post(&format!("{API}/groups/"), group),
        StatusCode::FORBIDDEN,
        "the default policy again",
    )
    .await;
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
    let create_readers = [
        "role",
        "create",
        "--name",
        "cli-readers",
        "--permission",
        "file.view_filerepository",
    ];
    let role = pulp.run(&create_readers).await;
    assert_eq!(role["permissions"], json!(["file.view_filerepository"]));
    let custom = pulp.run(&["role", "list", "--unlocked"]).await;
    assert_eq!(custom[0]["name"], "cli-readers", "{custom:#}");

    let group = pulp.run(&["group", "create", "--name", "cli-team"]).await;
    assert_eq!(group["name"], "cli-team");
    // pulpcore's group model is its own (`core`), its user model Django's (`auth`).
    assert!(
        str_field(&group, "prn").starts_with("prn:core.group:"),
        "{group:#}"
    );
    // Refusals in pulpcore's words (what scripts written against Pulp look for).
    for (args, message) in [
        (&create_readers[..], "This field must be unique."),
        (
            &[
                "role",
                "create",
                "--name",
                "cli-typo",
                "--permission",
                "file.view_nothing",
            ],
            "Permission 'file.view_nothing' does not exist.",
        ),
        (
            &["group", "create", "--name", "cli-team"],
            "This field must be unique.",
        ),
    ] {
        let error = pulp.fails(args).await;
        assert!(error.contains(message), "{args:?}: {error}");
    }
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
