//! Issue #3, acceptances 2 and 5: `docs/api.json` (and `docs/api.yaml`) is a valid OpenAPI 3
//! document generated from the installed plugins, every operation in it is served, and a bounded
//! schemathesis run against it finds no server error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::pulp::str_field;
use crate::support::{AppOptions, Backend, Fixture, TestApp, Upstream, tools};

const DOCS: &str = "/pulp/api/v3/docs/api.json";

/// The document, fetched without credentials (it is public, as Pulp's).
async fn fetch(app: &TestApp, path: &str) -> (StatusCode, String) {
    let response = app
        .anonymous()
        .get(app.url(path))
        .send()
        .await
        .expect("fetch the API document");
    let status = response.status();
    (status, response.text().await.expect("read the document"))
}

async fn document(app: &TestApp, path: &str) -> Value {
    let (status, text) = fetch(app, path).await;
    assert_eq!(status, StatusCode::OK, "{path} answered {text}");
    serde_json::from_str(&text).expect("the document is JSON")
}

/// `(method, path, operation)` of every operation.
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            operations.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    operations
}

fn operation_ids(document: &Value) -> BTreeSet<String> {
    operations(document)
        .iter()
        .map(|(_, _, operation)| str_field(operation, "operationId").to_owned())
        .collect()
}

/// Runs `python -c script args…` from a tool's virtual environment; panics with its output when
/// it fails.
fn python(venv: &Path, script: &str, args: &[&Path]) {
    let output = Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{script}\nfailed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_and_names_what_pulp_glue_looks_for() {
    let app = TestApp::start(Backend::Sqlite).await;
    let document = document(&app, DOCS).await;

    assert!(str_field(&document, "openapi").starts_with("3."));
    let versions = &document["info"]["x-pulp-app-versions"];
    assert!(versions["core"].is_string(), "{versions}");
    assert!(versions["file"].is_string(), "{versions}");
    assert_eq!(
        document["components"]["securitySchemes"]["basicAuth"],
        json!({ "type": "http", "scheme": "basic" })
    );
    let ids = operation_ids(&document);
    for id in [
        "repositories_file_file_list",
        "repositories_file_file_create",
        "repositories_file_file_read",
        "repositories_file_file_update",
        "repositories_file_file_partial_update",
        "repositories_file_file_delete",
        "repositories_file_file_sync",
        "repositories_file_file_modify",
        "repositories_file_file_versions_list",
        "repositories_file_file_versions_read",
        "remotes_file_file_create",
        "content_file_files_list",
        "content_file_files_create",
        "content_file_files_read",
        "publications_file_file_create",
        "distributions_file_file_create",
        "artifacts_list",
        "tasks_list",
        "tasks_read",
        "status_read",
    ] {
        assert!(ids.contains(id), "{id} is missing from {ids:?}");
    }
    // Objects are addressed by href, as pulp-glue substitutes them.
    let sync = &document["paths"]["{file_file_repository_href}sync/"]["post"];
    assert_eq!(sync["operationId"], "repositories_file_file_sync");
    assert_eq!(sync["parameters"][0]["name"], "file_file_repository_href");

    let dir = tempfile::tempdir().expect("scratch directory");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write the document");
        path
    };
    // The href-style document is what pulp-glue loads: its own OpenAPI model accepts it.
    let href_style = write("api.json", &document.to_string());
    python(
        &tools::pulp_cli_venv(),
        "import json, sys\nfrom pulp_glue.common import oas\noas.OpenAPISpec.model_validate(json.load(open(sys.argv[1])))",
        &[&href_style],
    );
    // The id-style variant has paths that start with `/`: it validates as OpenAPI 3.0 and has
    // the same operations.
    let id_document = self::document(&app, &format!("{DOCS}?pk_path=1")).await;
    assert_eq!(operation_ids(&id_document), ids);
    let id_style = write("api-pk.json", &id_document.to_string());
    let api_tools = tools::api_tools();
    python(
        &api_tools,
        "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))",
        &[&id_style],
    );
    // `api.yaml` is the same document.
    let (status, yaml) = fetch(&app, "/pulp/api/v3/docs/api.yaml").await;
    assert_eq!(status, StatusCode::OK);
    let yaml = write("api.yaml", &yaml);
    python(
        &api_tools,
        "import json, sys, yaml\nassert yaml.safe_load(open(sys.argv[1])) == json.load(open(sys.argv[2]))",
        &[&yaml, &href_style],
    );
}

/// The objects an href-valued path parameter can name, created for real.
async fn objects(app: &TestApp, transfer: &Path) -> BTreeMap<&'static str, String> {
    let fixture = Fixture::generate(3, 17);
    let upstream = Upstream::serve(&fixture).await;
    let remote = app
        .create_file_remote("every-remote", &upstream.manifest_url(), "immediate")
        .await;
    let repository = app.create_file_repository("every-repository").await;
    let task = app.sync(&repository, &remote, false).await;
    let version = app.latest_version_href(&repository).await;
    let content = app.file_content_in(&version).await;
    let publication = app.publish_file(&repository).await;
    let transfer_sources = (repository.clone(), publication.clone());
    let task_href = str_field(&task, "pulp_href").to_owned();
    let distribution = app
        .distribute_file(
            "every-distribution",
            "every",
            json!({ "publication": publication }),
        )
        .await;
    let distribution = str_field(&distribution, "pulp_href").to_owned();
    let (status, artifact) = app
        .post_multipart(
            "/pulp/api/v3/artifacts/",
            &[(
                "file",
                Some("loose.bin"),
                b"an artifact no content refers to",
            )],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{artifact}");
    let upload = app
        .create("/pulp/api/v3/uploads/", json!({ "size": 10 }))
        .await;
    let user = app
        .create(
            "/pulp/api/v3/users/",
            json!({ "username": "every-user", "password": "a long enough password" }),
        )
        .await;
    let user_href = str_field(&user, "pulp_href").to_owned();
    let token = app
        .create(
            &format!("{user_href}tokens/"),
            json!({ "name": "every-token" }),
        )
        .await;
    let role = app
        .create(
            "/pulp/api/v3/roles/",
            json!({ "name": "every-role", "permissions": ["core.view_group"] }),
        )
        .await;
    let group = app
        .create("/pulp/api/v3/groups/", json!({ "name": "every-group" }))
        .await;
    let group_href = str_field(&group, "pulp_href").to_owned();
    let member = app
        .create(
            &format!("{group_href}users/"),
            json!({ "username": "every-user" }),
        )
        .await;
    let held = json!({ "role": "every-role", "content_object": null });
    let group_role = app
        .create(&format!("{group_href}roles/"), held.clone())
        .await;
    let user_role = app.create(&format!("{user_href}roles/"), held).await;
    let policies = app
        .get_json("/pulp/api/v3/access_policies/?viewset_name=groups")
        .await;
    let workers = app.get_json("/pulp/api/v3/workers/").await;
    let nearby = app
        .create_file_remote("every-nearby", &upstream.base_url(), "on_demand")
        .await;
    let acs = app
        .create(
            "/pulp/api/v3/acs/file/file/",
            json!({ "name": "every-acs", "remote": nearby, "paths": ["PULP_MANIFEST"] }),
        )
        .await;
    let acs = str_field(&acs, "pulp_href").to_owned();
    let (status, refreshing) = app.post_json(&format!("{acs}refresh/"), &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{refreshing}");
    let task_group = str_field(&refreshing, "task_group").to_owned();
    let rbac_objects = [
        ("role_href", str_field(&role, "pulp_href").to_owned()),
        (
            "groups_user_href",
            format!("{group_href}users/{}/", str_field(&member, "id")),
        ),
        ("group_href", group_href),
        (
            "groups_group_role_href",
            str_field(&group_role, "pulp_href").to_owned(),
        ),
        (
            "auth_users_user_role_href",
            str_field(&user_role, "pulp_href").to_owned(),
        ),
        (
            "access_policy_href",
            str_field(&policies["results"][0], "pulp_href").to_owned(),
        ),
    ];
    let mut objects = BTreeMap::from([
        ("file_file_repository_href", repository),
        ("file_file_repository_version_href", version),
        ("file_file_remote_href", remote),
        ("file_file_publication_href", publication),
        ("file_file_distribution_href", distribution),
        (
            "file_file_content_href",
            str_field(&content[0], "pulp_href").to_owned(),
        ),
        (
            "artifact_href",
            str_field(&artifact, "pulp_href").to_owned(),
        ),
        ("task_href", task_href),
        ("file_file_alternate_content_source_href", acs),
        ("task_group_href", task_group),
        (
            "worker_href",
            str_field(&workers["results"][0], "pulp_href").to_owned(),
        ),
        ("plugin_href", "/pulp/api/v3/plugins/file/".to_owned()),
        ("upload_href", str_field(&upload, "pulp_href").to_owned()),
        ("auth_user_href", user_href),
        (
            "auth_users_token_href",
            str_field(&token, "pulp_href").to_owned(),
        ),
    ]);
    objects.extend(rbac_objects);
    objects.extend(python_objects(app).await);
    objects.extend(content_guard_objects(app).await);
    objects.extend(transfer_objects(app, transfer, &transfer_sources).await);
    objects
}

/// The first href a task created.
fn first_created(task: &Value) -> String {
    task["created_resources"][0]
        .as_str()
        .unwrap_or_else(|| panic!("the task created nothing: {task:#}"))
        .to_owned()
}

/// An exporter of each kind with an export, and an importer with an import of that export,
/// below `dir`, where the app may export and import; and an upstream Pulp.
async fn transfer_objects(
    app: &TestApp,
    dir: &Path,
    (repository, publication): &(String, String),
) -> Vec<(&'static str, String)> {
    let pulp = app
        .create(
            "/pulp/api/v3/exporters/core/pulp/",
            json!({ "name": "every-exporter", "path": dir.join("exports"), "repositories": [repository] }),
        )
        .await;
    let pulp_href = str_field(&pulp, "pulp_href").to_owned();
    let task = app
        .run_task(&format!("{pulp_href}exports/"), json!({}))
        .await;
    let export = first_created(&task);
    let tar = app.get_json(&export).await["output_file_info"]
        .as_object()
        .and_then(|files| files.keys().find(|path| path.ends_with(".tar")).cloned())
        .expect("the export's tar");
    let filesystem = app
        .create(
            "/pulp/api/v3/exporters/core/filesystem/",
            json!({ "name": "every-fs-exporter", "path": dir.join("tree") }),
        )
        .await;
    let filesystem_href = str_field(&filesystem, "pulp_href").to_owned();
    let task = app
        .run_task(
            &format!("{filesystem_href}exports/"),
            json!({ "publication": publication }),
        )
        .await;
    let filesystem_export = first_created(&task);
    let importer = app
        .create(
            "/pulp/api/v3/importers/core/pulp/",
            json!({ "name": "every-importer" }),
        )
        .await;
    let importer_href = str_field(&importer, "pulp_href").to_owned();
    let (status, accepted) = app
        .post_json(&format!("{importer_href}imports/"), &json!({ "path": tar }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let group = app.get_json(str_field(&accepted, "task_group")).await;
    let task = app
        .wait_task(str_field(&group["tasks"][0], "pulp_href"))
        .await;
    let import = first_created(&task);
    // An upstream nothing answers at: its replications fail, harmlessly.
    let upstream = app
        .create(
            "/pulp/api/v3/upstream-pulps/",
            json!({ "name": "every-upstream", "base_url": "http://127.0.0.1:9" }),
        )
        .await;
    vec![
        (
            "upstream_pulp_href",
            str_field(&upstream, "pulp_href").to_owned(),
        ),
        ("pulp_exporter_href", pulp_href),
        ("pulp_pulp_export_href", export),
        ("filesystem_exporter_href", filesystem_href),
        ("filesystem_filesystem_export_href", filesystem_export),
        ("pulp_importer_href", importer_href),
        ("pulp_pulp_import_href", import),
    ]
}

/// One content guard of each kind, by the href parameter its operations take.
async fn content_guard_objects(app: &TestApp) -> Vec<(&'static str, String)> {
    let authority = crate::support::tls::Pki::generate().ca_cert;
    let mut guards = Vec::new();
    for (parameter, kind, body) in [
        ("r_b_a_c_content_guard_href", "rbac", json!({})),
        (
            "content_redirect_content_guard_href",
            "content_redirect",
            json!({}),
        ),
        (
            "header_content_guard_href",
            "header",
            json!({ "header_name": "x-key", "header_value": "secret" }),
        ),
        (
            "x509_cert_guard_href",
            "x509",
            json!({ "ca_certificate": authority }),
        ),
        (
            "composite_content_guard_href",
            "composite",
            json!({ "guards": [] }),
        ),
    ] {
        let mut body = body;
        body["name"] = json!(format!("every-{kind}"));
        let guard = app
            .create(&format!("/pulp/api/v3/contentguards/core/{kind}/"), body)
            .await;
        guards.push((parameter, str_field(&guard, "pulp_href").to_owned()));
    }
    guards
}

/// The built-in python plugin's objects, under its pulp_python REST names: a repository with one
/// uploaded wheel, a remote, a publication and a distribution.
async fn python_objects(app: &TestApp) -> Vec<(&'static str, String)> {
    let repository = app
        .create(
            "/pulp/api/v3/repositories/python/python/",
            json!({ "name": "every-python" }),
        )
        .await;
    let repository = str_field(&repository, "pulp_href").to_owned();
    let remote = app
        .create(
            "/pulp/api/v3/remotes/python/python/",
            json!({ "name": "every-python", "url": "http://127.0.0.1:9/simple/" }),
        )
        .await;
    let wheel = tempfile::tempdir().expect("a directory for the wheel");
    let wheel_path = wheel.path().join("every-1.0-py3-none-any.whl");
    let status = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1], 'w') as wheel:\n\
             \x20   wheel.writestr('every-1.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: every\\nVersion: 1.0\\n')\n\
             \x20   wheel.writestr('every-1.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nTag: py3-none-any\\n')\n\
             \x20   wheel.writestr('every-1.0.dist-info/RECORD', '')\n",
        ])
        .arg(&wheel_path)
        .status()
        .expect("run python3");
    assert!(status.success(), "writing a wheel failed");
    let bytes = std::fs::read(&wheel_path).expect("read the wheel");
    let (status, accepted) = app
        .post_multipart(
            "/pulp/api/v3/content/python/packages/",
            &[
                ("file", Some("every-1.0-py3-none-any.whl"), bytes.as_slice()),
                ("relative_path", None, b"every-1.0-py3-none-any.whl"),
                ("repository", None, repository.as_bytes()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let task = app.wait_task(str_field(&accepted, "task")).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let content = task["created_resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|href| href.starts_with("/pulp/api/v3/content/python/packages/"))
        .unwrap_or_else(|| panic!("no python content: {task:#}"))
        .to_owned();
    let task = app
        .run_task(
            "/pulp/api/v3/publications/python/pypi/",
            json!({ "repository": repository }),
        )
        .await;
    let publication = task["created_resources"][0]
        .as_str()
        .expect("the publication")
        .to_owned();
    let task = app
        .run_task(
            "/pulp/api/v3/distributions/python/pypi/",
            json!({ "name": "every-python", "base_path": "every-python", "repository": repository }),
        )
        .await;
    let distribution = task["created_resources"][0]
        .as_str()
        .expect("the distribution")
        .to_owned();
    let blocklisted = app
        .create(
            &format!("{repository}blocklist_entries/"),
            json!({ "filename": "never-1.0.tar.gz" }),
        )
        .await;
    let blocklisted = str_field(&blocklisted, "pulp_href").to_owned();
    let nearby = app
        .create(
            "/pulp/api/v3/remotes/python/python/",
            json!({ "name": "every-python-nearby", "url": "http://127.0.0.1:9/simple/", "policy": "on_demand" }),
        )
        .await;
    let acs = app
        .create(
            "/pulp/api/v3/acs/python/python/",
            json!({ "name": "every-python-acs", "remote": nearby["pulp_href"] }),
        )
        .await;
    vec![
        (
            "python_python_alternate_content_source_href",
            str_field(&acs, "pulp_href").to_owned(),
        ),
        (
            "python_python_repository_version_href",
            format!("{repository}versions/1/"),
        ),
        ("python_python_repository_href", repository),
        (
            "python_python_remote_href",
            str_field(&remote, "pulp_href").to_owned(),
        ),
        ("python_python_publication_href", publication),
        ("python_python_distribution_href", distribution),
        ("python_python_package_content_href", content),
        ("python_python_python_blocklist_entry_href", blocklisted),
    ]
}

/// Every operation of the document, called on real objects: none is a missing route (404), a
/// missing method (405) or a server error. Reads answer 200; writes get an empty body, which
/// the server either accepts or rejects field by field. Deletes run last, so they don't take
/// objects away from the other calls, and objects inside others (versions, tokens, members,
/// role assignments) go first.
async fn every_operation_is_reachable(backend: Backend) {
    let transfer = tempfile::tempdir().expect("a directory to export into");
    let allowed = transfer.path().to_str().expect("a UTF-8 path");
    let app = TestApp::start_with(
        backend,
        AppOptions::default()
            .env("GRANARY_ALLOWED_EXPORT_PATHS", allowed)
            .env("GRANARY_ALLOWED_IMPORT_PATHS", allowed),
    )
    .await;
    let document = document(&app, DOCS).await;
    let objects = objects(&app, transfer.path()).await;
    let mut operations = operations(&document);
    operations.sort_by_key(|(method, path, _)| {
        let inner = [
            "version_href}",
            "token_href}",
            "groups_user_href}",
            "_role_href}",
            "_export_href}",
            "_import_href}",
            "_blocklist_entry_href}",
        ]
        .iter()
        .any(|param| path.contains(param));
        (method == "delete", !inner)
    });
    let client = reqwest::Client::new();
    let (username, password) = app.credentials();
    let mut called = BTreeSet::new();
    for (method, path, operation) in &operations {
        let id = str_field(operation, "operationId");
        let mut url = path.clone();
        for parameter in operation["parameters"].as_array().expect("parameters") {
            if parameter["in"] == "path" {
                let name = str_field(parameter, "name");
                let href = objects
                    .get(name)
                    .unwrap_or_else(|| panic!("{id}: no object for {{{name}}}"));
                url = url.replace(&format!("{{{name}}}"), href);
            }
        }
        let request = client
            .request(
                method.to_uppercase().parse().expect("a method"),
                app.url(&url),
            )
            .basic_auth(username, Some(password));
        let media = operation["requestBody"]["content"]
            .as_object()
            .and_then(|content| content.keys().next().cloned());
        let request = match media.as_deref() {
            None => request,
            Some("multipart/form-data") => request
                .header("content-type", "multipart/form-data; boundary=empty")
                .body("--empty--\r\n"),
            Some(_) => request
                .header("content-type", "application/json")
                .body("{}"),
        };
        let response = request.send().await.expect("call the operation");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert!(
            status != StatusCode::NOT_FOUND
                && status != StatusCode::METHOD_NOT_ALLOWED
                && !status.is_server_error(),
            "{id}: {} {url} answered {status}: {body}",
            method.to_uppercase()
        );
        if method == "get" {
            assert_eq!(status, StatusCode::OK, "{id}: GET {url} answered {body}");
        }
        called.insert(id.to_owned());
    }
    assert_eq!(called, operation_ids(&document));
}

sqlite_and_postgres!(every_operation_is_reachable);

/// A short schemathesis run, bounded by examples per operation, with the `not_a_server_error`
/// check: the CI-sized version of `scripts/fuzz-api`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() {
    let app = TestApp::start(Backend::Sqlite).await;
    let (username, password) = app.credentials();
    let workdir = tempfile::tempdir().expect("schemathesis' working directory");
    let output = tokio::process::Command::new(tools::api_tools().join("bin/schemathesis"))
        .current_dir(workdir.path())
        .arg("run")
        .arg(app.url(&format!("{DOCS}?pk_path=1")))
        .args(["--url", &app.url("")])
        .args(["--auth", &format!("{username}:{password}")])
        .args(["--checks", "not_a_server_error"])
        .args(["--phases", "examples,fuzzing"])
        .args(["--max-examples", "8", "--seed", "3"])
        .args(["--workers", "1", "--generation-database", "none"])
        .arg("--no-color")
        .output()
        .await
        .expect("run schemathesis");
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{}{}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        app.logs()
    );
}

/// A plugin installed into a running server adds its operations to the document, with no host
/// change; removing it takes them away again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_plugin_s_operations_appear_in_the_document() {
    let app = TestApp::start(Backend::Sqlite).await;
    let raw_operations = |document: &Value| -> BTreeSet<String> {
        operation_ids(document)
            .into_iter()
            .filter(|id| id.contains("_raw_"))
            .collect()
    };
    assert_eq!(raw_operations(&document(&app, DOCS).await), BTreeSet::new());

    let component = std::fs::read(env!("GRANARY_EXAMPLE_RAW_WASM")).expect("the raw example");
    let (status, body) = app.install_plugin(&component).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let installed = document(&app, DOCS).await;
    let operations = raw_operations(&installed);
    for id in [
        "repositories_raw_raw_create",
        "repositories_raw_raw_sync",
        "repositories_raw_raw_versions_list",
        "remotes_raw_raw_create",
        "content_raw_raws_create",
        "publications_raw_raw_create",
        "distributions_raw_raw_create",
    ] {
        assert!(
            operations.contains(id),
            "{id} is missing from {operations:?}"
        );
    }
    assert!(installed["info"]["x-pulp-app-versions"]["raw"].is_string());
    assert!(
        installed["paths"]["{raw_raw_repository_href}sync/"]["post"].is_object(),
        "the raw repository's sync is addressed by its href"
    );

    let removed = app
        .delete_href("/pulp/api/v3/plugins/raw/?force=true")
        .await;
    assert!(
        removed.status.is_success(),
        "removing raw answered {}: {}",
        removed.status,
        removed.body
    );
    assert_eq!(raw_operations(&document(&app, DOCS).await), BTreeSet::new());
}
