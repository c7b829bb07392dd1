//! Issue #21, item 9: replication, as a Pulp user runs it with pulp-cli (`pulp upstream-pulp
//! create`, `replicate`): a second Granary mirrors the first one's file distributions into
//! remotes, repositories and distributions of the same names and serves the same bytes; a
//! distribution the upstream drops goes, as the `policy` says (`all`, `labeled`, `nodelete`).
//! Upstreams are given through Pulp's `core.upstreampulp_*` roles.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::pulp_cli::PulpCli;
use crate::support::pulp::{API, str_field};
use crate::support::pulpcore::{ADMIN_PASSWORD, Pulpcore};
use crate::support::requests::As;
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(
    a_second_server_mirrors_the_distributions_of_the_first,
    pip_installs_from_a_replicated_python_distribution,
    upstreams_are_shared_through_roles_as_in_pulp,
    a_real_pulp_is_replicated,
);

/// The names of the file distributions of `app`.
async fn distribution_names(app: &TestApp) -> Vec<String> {
    let page = app
        .get_json(&format!("{API}/distributions/file/file/?ordering=name"))
        .await;
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|distribution| str_field(distribution, "name").to_owned())
        .collect()
}

/// The file distribution `name` of `app`.
async fn distribution(app: &TestApp, name: &str) -> Value {
    app.get_json(&format!("{API}/distributions/file/file/?name={name}"))
        .await["results"][0]
        .clone()
}

/// `pulp upstream-pulp update <option> <value>` (`--policy all`, `--q-select …`), then
/// `replicate`.
async fn replicate_with(pulp: &PulpCli, option: &str, value: &str) {
    pulp.run(&[
        "upstream-pulp",
        "update",
        "--upstream-pulp",
        "first",
        option,
        value,
    ])
    .await;
    pulp.run(&["upstream-pulp", "replicate", "--upstream-pulp", "first"])
        .await;
}

/// `pulp file distribution create --name <name> --base-path <name> <serves> <what>`: `serves`
/// is `--repository` (a name) or `--publication` (an href).
async fn distribute_as(pulp: &PulpCli, name: &str, serves: &str, what: &str) {
    pulp.run(&[
        "file",
        "distribution",
        "create",
        "--name",
        name,
        "--base-path",
        name,
        serves,
        what,
    ])
    .await;
}

/// `pip install granary-demo` from `index` succeeds (a new environment under `dir`).
async fn pip_installs_demo_from(
    tools: &crate::support::python::PythonTools,
    dir: &std::path::Path,
    index: String,
) {
    let (tools, dir) = (tools.clone(), dir.to_owned());
    let installed = tokio::task::spawn_blocking(move || {
        crate::support::python::pip_install_demo(&tools, &dir, &index)
    })
    .await
    .unwrap();
    assert!(installed.contains("granary_demo"), "{installed}");
}

/// GETs a file below a distribution's `base_url`.
async fn served(distribution: &Value, path: &str) -> (StatusCode, Vec<u8>) {
    let response = reqwest::get(format!("{}{path}", str_field(distribution, "base_url")))
        .await
        .unwrap();
    (response.status(), response.bytes().await.unwrap().to_vec())
}

async fn a_second_server_mirrors_the_distributions_of_the_first(backend: Backend) {
    let upstream = TestApp::start(backend.clone()).await;
    let downstream = TestApp::start(backend).await;
    let files = tempfile::tempdir().unwrap();
    let up = PulpCli::new(&upstream);
    for (repository, names) in [
        ("alpha", ["a1.txt", "a2.txt"]),
        ("beta", ["b1.txt", "b2.txt"]),
    ] {
        up.run(&["file", "repository", "create", "--name", repository])
            .await;
        for name in names {
            crate::repository_versions::upload(
                &up,
                files.path(),
                repository,
                name,
                &name.repeat(99),
            )
            .await;
        }
        up.run(&["file", "publication", "create", "--repository", repository])
            .await;
    }
    // One distribution of a publication, labelled; one that follows its repository.
    let alpha_publication = upstream
        .get_json(&format!(
            "{API}/publications/file/file/?ordering=-pulp_created"
        ))
        .await["results"][1]["pulp_href"]
        .as_str()
        .unwrap()
        .to_owned();
    distribute_as(&up, "alpha", "--publication", &alpha_publication).await;
    up.run(&[
        "file",
        "distribution",
        "label",
        "set",
        "--distribution",
        "alpha",
        "--key",
        "env",
        "--value",
        "prod",
    ])
    .await;
    up.run(&[
        "file",
        "distribution",
        "create",
        "--name",
        "beta",
        "--base-path",
        "shelf/beta",
        "--repository",
        "beta",
    ])
    .await;

    let down = PulpCli::new(&downstream);
    let (username, password) = upstream.credentials();
    let created = down
        .run(&[
            "upstream-pulp",
            "create",
            "--name",
            "first",
            "--base-url",
            &upstream.url(""),
            "--api-root",
            "/pulp/",
            "--username",
            username,
            "--password",
            password,
        ])
        .await;
    assert_eq!(created["policy"], "all", "{created:#}");
    assert_eq!(created["last_replication"], Value::Null);
    let hidden = created["hidden_fields"].as_array().unwrap();
    assert!(
        hidden.contains(&json!({"name": "password", "is_set": true})),
        "{created:#}"
    );
    assert!(
        created.get("password").is_none(),
        "never shown: {created:#}"
    );

    down.run(&["upstream-pulp", "replicate", "--upstream-pulp", "first"])
        .await;
    assert_eq!(distribution_names(&downstream).await, ["alpha", "beta"]);
    let alpha = distribution(&downstream, "alpha").await;
    assert_eq!(alpha["base_path"], "alpha");
    assert_eq!(alpha["pulp_labels"]["env"], "prod", "{alpha:#}");
    assert!(
        alpha["pulp_labels"]["UpstreamPulp"].is_string(),
        "{alpha:#}"
    );
    assert!(
        alpha["repository_version"].as_str().is_some(),
        "pinned to the version the sync made: {alpha:#}"
    );
    for (name, path) in [("alpha", "a2.txt"), ("beta", "b1.txt")] {
        let local = distribution(&downstream, name).await;
        let (status, body) = served(&local, path).await;
        assert_eq!(status, StatusCode::OK, "{name}/{path}");
        assert_eq!(
            hex::encode(Sha256::digest(&body)),
            hex::encode(Sha256::digest(path.repeat(99))),
            "{name}/{path}"
        );
    }
    let remote = down
        .run(&["file", "remote", "show", "--name", "beta"])
        .await;
    assert_eq!(
        remote["url"],
        format!(
            "{}PULP_MANIFEST",
            str_field(&distribution(&upstream, "beta").await, "base_url")
        )
    );
    let shown = down
        .run(&["upstream-pulp", "show", "--upstream-pulp", "first"])
        .await;
    assert!(shown["last_replication"].is_string(), "{shown:#}");

    // Replicating again changes nothing that did not change upstream. alpha serves a
    // publication unchanged since the last replication (its `no_content_change_since`), so it
    // is not synced, as Pulp's replicator skips it; beta follows its repository, which promises
    // nothing, so it is.
    let unchanged = distribution(&upstream, "alpha").await;
    assert_eq!(
        unchanged["no_content_change_since"], unchanged["pulp_last_updated"],
        "{unchanged:#}"
    );
    let before = distribution(&downstream, "alpha").await;
    down.run(&["upstream-pulp", "replicate", "--upstream-pulp", "first"])
        .await;
    let after = distribution(&downstream, "alpha").await;
    assert_eq!(after["repository_version"], before["repository_version"]);
    assert_eq!(
        after["pulp_last_updated"], before["pulp_last_updated"],
        "a distribution whose content did not move is not touched"
    );
    let replications = downstream
        .get_json(&format!(
            "{API}/tasks/?name=granary.tasks.replica.replicate_distributions&ordering=-pulp_created&limit=1"
        ))
        .await;
    let last = &replications["results"][0];
    let reports = last["progress_reports"].as_array().expect("reports");
    let skipped = reports
        .iter()
        .find(|report| report["code"] == "replicate.unchanged")
        .unwrap_or_else(|| panic!("{last:#}"));
    assert_eq!(skipped["done"], 1, "{last:#}");
    let group = downstream
        .get_json(&format!(
            "{API}/tasks/?task_group={}",
            str_field(last, "task_group")
        ))
        .await;
    let names: Vec<&str> = group["results"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|task| str_field(task, "name"))
        .collect();
    let syncs = names.iter().filter(|name| name.contains("sync")).count();
    assert_eq!(syncs, 1, "{names:?}");
    let before = before["repository_version"].clone();

    // A sync that fails moves nothing: every distribution keeps serving what it served, and
    // the next replication that succeeds catches up. (The upstream serves bytes that are not
    // what its manifest says.)
    crate::repository_versions::upload(&up, files.path(), "alpha", "a3.txt", &"a3.txt".repeat(99))
        .await;
    let republished = up
        .run(&["file", "publication", "create", "--repository", "alpha"])
        .await;
    up.run(&[
        "file",
        "distribution",
        "update",
        "--name",
        "alpha",
        "--publication",
        str_field(&republished, "pulp_href"),
    ])
    .await;
    let a3 = upstream.stored_artifact(&hex::encode(Sha256::digest("a3.txt".repeat(99))));
    std::fs::write(&a3, "tampered".repeat(99)).unwrap();
    let stamp = down
        .run(&["upstream-pulp", "show", "--upstream-pulp", "first"])
        .await["last_replication"]
        .clone();
    let failed = down
        .fails(&["upstream-pulp", "replicate", "--upstream-pulp", "first"])
        .await;
    assert!(failed.contains("Replication failed"), "{failed}");
    let alpha = distribution(&downstream, "alpha").await;
    assert_eq!(alpha["repository_version"], before, "{alpha:#}");
    assert_eq!(served(&alpha, "a2.txt").await.0, StatusCode::OK);
    assert_eq!(served(&alpha, "a3.txt").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        down.run(&["upstream-pulp", "show", "--upstream-pulp", "first"])
            .await["last_replication"],
        stamp
    );
    std::fs::write(&a3, "a3.txt".repeat(99)).unwrap();
    down.run(&["upstream-pulp", "replicate", "--upstream-pulp", "first"])
        .await;
    let (status, body) = served(&distribution(&downstream, "alpha").await, "a3.txt").await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, "a3.txt".repeat(99).into_bytes())
    );

    // `labeled`: what a replication did not create is left alone; `all` manages every file
    // distribution; a distribution the upstream dropped goes with its repository and remote.
    down.run(&["file", "repository", "create", "--name", "local-only"])
        .await;
    down.run(&[
        "file",
        "distribution",
        "create",
        "--name",
        "local-only",
        "--base-path",
        "local-only",
        "--repository",
        "local-only",
    ])
    .await;
    up.run(&["file", "distribution", "destroy", "--name", "beta"])
        .await;
    replicate_with(&down, "--policy", "labeled").await;
    assert_eq!(
        distribution_names(&downstream).await,
        ["alpha", "local-only"]
    );
    down.fails(&["file", "repository", "show", "--name", "beta"])
        .await;
    down.fails(&["file", "remote", "show", "--name", "beta"])
        .await;
    replicate_with(&down, "--policy", "nodelete").await;
    assert_eq!(
        distribution_names(&downstream).await,
        ["alpha", "local-only"]
    );
    replicate_with(&down, "--policy", "all").await;
    assert_eq!(distribution_names(&downstream).await, ["alpha"]);

    // A selection by label: an unlabelled new upstream distribution is not replicated.
    distribute_as(&up, "gamma", "--repository", "beta").await;
    replicate_with(&down, "--q-select", "pulp_label_select=\"env=prod\"").await;
    assert_eq!(distribution_names(&downstream).await, ["alpha"]);
    replicate_with(&down, "--q-select", "").await;
    assert_eq!(distribution_names(&downstream).await, ["alpha", "gamma"]);

    // Any expression of Pulp's `q` filter, which the upstream applies: delta is neither
    // labelled nor named.
    distribute_as(&up, "delta", "--repository", "beta").await;
    replicate_with(
        &down,
        "--q-select",
        "pulp_label_select=\"env=prod\" OR (name=gamma AND NOT base_path=delta)",
    )
    .await;
    assert_eq!(distribution_names(&downstream).await, ["alpha", "gamma"]);

    // A selection that is not an expression is refused on the field, not ignored.
    let refused = down
        .fails(&[
            "upstream-pulp",
            "update",
            "--upstream-pulp",
            "first",
            "--q-select",
            "pulp_label_select='a' OR",
        ])
        .await;
    assert!(
        refused.contains("q_select") && refused.contains("Syntax error in expression."),
        "{refused}"
    );

    // Another user, holding no role on it, neither sees nor replicates it.
    downstream
        .create_user("carol", "carol's long password")
        .await;
    let carol = As::Basic("carol", "carol's long password");
    let href = str_field(&shown, "pulp_href").to_owned();
    let calls = [(Method::POST, format!("{href}replicate/"))];
    downstream.assert_closed_to(carol, &calls, &json!({})).await;
    let listed = downstream
        .expect(
            carol.get(&format!("{API}/upstream-pulps/")),
            StatusCode::OK,
            "anyone may list upstreams",
        )
        .await;
    assert_eq!(listed["count"], 0, "but sees only those given: {listed:#}");
    down.run(&["upstream-pulp", "destroy", "--upstream-pulp", "first"])
        .await;
}

/// pulp_python's replicator, as Granary's: the copy of a python distribution is an index pip
/// installs from (a wheel, and an sdist it builds), prereleases included.
async fn pip_installs_from_a_replicated_python_distribution(backend: Backend) {
    let tools = crate::python::tools().await;
    let dir = tempfile::tempdir().unwrap();
    let (wheel, sdist) = crate::support::python::build_demo_and_dep(&tools, dir.path());
    let upstream = TestApp::start(backend.clone()).await;
    let downstream = TestApp::start(backend).await;
    let repository = crate::python::repository_and_distribution(&upstream, "team", json!({})).await;
    for file in [&wheel, &sdist] {
        let name = file.file_name().unwrap().to_str().unwrap();
        upstream
            .upload_content(
                "python/packages",
                &repository,
                name,
                &std::fs::read(file).unwrap(),
            )
            .await;
    }
    let down = PulpCli::new(&downstream);
    let (username, password) = upstream.credentials();
    down.run(&[
        "upstream-pulp",
        "create",
        "--name",
        "first",
        "--base-url",
        &upstream.url(""),
        "--username",
        username,
        "--password",
        password,
    ])
    .await;
    down.run(&["upstream-pulp", "replicate", "--upstream-pulp", "first"])
        .await;
    let copy = downstream
        .get_json(&format!("{API}/distributions/python/pypi/?name=team"))
        .await;
    assert_eq!(copy["count"], 1, "{copy:#}");
    let remote = downstream
        .get_json(&format!("{API}/remotes/python/python/?name=team"))
        .await;
    assert_eq!(remote["results"][0]["prereleases"], true, "{remote:#}");
    assert_eq!(remote["results"][0]["policy"], "immediate", "{remote:#}");
    pip_installs_demo_from(&tools, dir.path(), downstream.url("/pypi/team/simple/")).await;
}

/// Pulp's access policy for upstreams: a user needs `core.upstreampulp_creator` to register one
/// and owns what they register; others see none of it until given a role on it, and
/// `core.upstreampulp_user` lets them replicate it without changing it.
async fn upstreams_are_shared_through_roles_as_in_pulp(backend: Backend) {
    let app = TestApp::start(backend).await;
    let owner = app.create_user("olive", "olive's long password").await;
    app.create_user("sam", "sam's long password").await;
    let olive = PulpCli::as_user(&app, "olive", "olive's long password");
    let sam = PulpCli::as_user(&app, "sam", "sam's long password");
    let create = [
        "upstream-pulp",
        "create",
        "--name",
        "elsewhere",
        "--base-url",
        "http://127.0.0.1:9/",
    ];
    let refused = olive.fails(&create).await;
    assert!(
        refused.contains("upstream_pulps_create is not authorized"),
        "no role, no upstream: {refused}"
    );

    app.create(
        &format!("{owner}roles/"),
        json!({ "role": "core.upstreampulp_creator", "content_object": null }),
    )
    .await;
    let created = olive.run(&create).await;
    let href = str_field(&created, "pulp_href").to_owned();
    let holders = app
        .expect(
            As::Basic("olive", "olive's long password").get(&format!("{href}list_roles/")),
            StatusCode::OK,
            "the creator manages its roles",
        )
        .await;
    assert_eq!(
        holders["roles"][0]["role"], "core.upstreampulp_owner",
        "{holders:#}"
    );
    assert_eq!(holders["roles"][0]["users"], json!(["olive"]));

    let sam_sees = sam.run(&["upstream-pulp", "list"]).await;
    assert_eq!(sam_sees, json!([]), "another user's upstream is not listed");
    sam.fails(&["upstream-pulp", "show", "--upstream-pulp", "elsewhere"])
        .await;

    app.expect(
        As::Basic("olive", "olive's long password").post(
            &format!("{href}add_role/"),
            json!({ "role": "core.upstreampulp_user", "users": ["sam"] }),
        ),
        StatusCode::CREATED,
        "the owner lets sam replicate",
    )
    .await;
    let shown = sam
        .run(&["upstream-pulp", "show", "--upstream-pulp", "elsewhere"])
        .await;
    assert_eq!(shown["pulp_href"], href.as_str());
    let sam_as = As::Basic("sam", "sam's long password");
    let group = app
        .expect(
            sam_as.post(&format!("{href}replicate/"), json!({})),
            StatusCode::ACCEPTED,
            "a user of the upstream replicates it",
        )
        .await;
    assert!(group["task_group"].is_string(), "{group:#}");
    for (call, what) in [
        (
            sam_as.patch(&href, json!({ "base_url": "http://127.0.0.1:10/" })),
            "but does not change it",
        ),
        (sam_as.delete(&href), "nor delete it"),
    ] {
        app.expect(call, StatusCode::FORBIDDEN, what).await;
    }
    olive
        .run(&["upstream-pulp", "destroy", "--upstream-pulp", "elsewhere"])
        .await;
    assert_eq!(app.get(&href).await.0, StatusCode::NOT_FOUND);
}

/// What a Pulp user moving over runs first: Granary replicates a real Pulp (pulpcore 3.123 with
/// pulp_file and pulp_python, its content made with the same pulp-cli). A file distribution of
/// a publication serves Pulp's bytes; pip installs from the copy of a python distribution; a
/// file Pulp adds later arrives with the next replication, and a distribution Pulp drops goes.
async fn a_real_pulp_is_replicated(backend: Backend) {
    let Some(pulp) = Pulpcore::start().await else {
        eprintln!("skipped: a real Pulp needs GRANARY_TEST_DATABASE_URL");
        return;
    };
    let tools = crate::python::tools().await;
    let dir = tempfile::tempdir().unwrap();
    let (wheel, sdist) = crate::support::python::build_demo_and_dep(&tools, dir.path());
    let upstream = PulpCli::for_server(&pulp.api_origin, "admin", ADMIN_PASSWORD);
    upstream
        .run(&["file", "repository", "create", "--name", "alpha"])
        .await;
    for name in ["a1.txt", "a2.txt"] {
        crate::repository_versions::upload(&upstream, dir.path(), "alpha", name, &name.repeat(50))
            .await;
    }
    let publication = upstream
        .run(&["file", "publication", "create", "--repository", "alpha"])
        .await;
    distribute_as(
        &upstream,
        "alpha",
        "--publication",
        str_field(&publication, "pulp_href"),
    )
    .await;
    // A pulp_file distribution of a repository serves its latest publication.
    upstream
        .run(&[
            "file",
            "repository",
            "create",
            "--name",
            "beta",
            "--autopublish",
        ])
        .await;
    crate::repository_versions::upload(&upstream, dir.path(), "beta", "b1.txt", "beta").await;
    distribute_as(&upstream, "beta", "--repository", "beta").await;
    upstream
        .run(&["python", "repository", "create", "--name", "team"])
        .await;
    for file in [&wheel, &sdist] {
        upstream
            .run(&crate::python::content_upload(file, Some("team")))
            .await;
    }
    upstream
        .run(&[
            "python",
            "distribution",
            "create",
            "--name",
            "team",
            "--base-path",
            "team",
            "--repository",
            "team",
        ])
        .await;

    let app = TestApp::start(backend).await;
    let down = PulpCli::new(&app);
    down.run(&[
        "upstream-pulp",
        "create",
        "--name",
        "real",
        "--base-url",
        &pulp.api_origin,
        "--username",
        "admin",
        "--password",
        ADMIN_PASSWORD,
    ])
    .await;
    // Pulp's index links files on its content app, another origin (on loopback here, so
    // listed, as on a remote).
    let upstream_pulp = app
        .get_json(&format!("{API}/upstream-pulps/?name=real"))
        .await["results"][0]["pulp_href"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .patch_json(
            &upstream_pulp,
            &json!({"allowed_origins": [pulp.content_origin]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    down.run(&["upstream-pulp", "replicate", "--upstream-pulp", "real"])
        .await;
    assert_eq!(distribution_names(&app).await, ["alpha", "beta"]);
    let pulp_alpha = upstream
        .run(&["file", "distribution", "show", "--name", "alpha"])
        .await;
    for (name, path) in [("alpha", "a1.txt"), ("alpha", "a2.txt"), ("beta", "b1.txt")] {
        let (status, body) = served(&distribution(&app, name).await, path).await;
        assert_eq!(status, StatusCode::OK, "{name}/{path}:\n{}", pulp.logs());
        if name == "alpha" {
            let (_, from_pulp) = served(&pulp_alpha, path).await;
            assert_eq!(body, from_pulp, "{path}: the bytes Pulp serves");
        } else {
            assert_eq!(body, b"beta");
        }
    }
    pip_installs_demo_from(&tools, dir.path(), app.url("/pypi/team/simple/")).await;

    // Pulp changes: beta gets a file, alpha's distribution goes.
    crate::repository_versions::upload(&upstream, dir.path(), "beta", "b2.txt", "later").await;
    upstream
        .run(&["file", "distribution", "destroy", "--name", "alpha"])
        .await;
    down.run(&["upstream-pulp", "replicate", "--upstream-pulp", "real"])
        .await;
    assert_eq!(distribution_names(&app).await, ["beta"]);
    let (status, body) = served(&distribution(&app, "beta").await, "b2.txt").await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"later"[..]));
}
