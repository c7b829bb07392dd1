//! Issue #21, item 8: export and import as Pulp users run them. One server exports its
//! repositories with pulp-cli (`pulp exporter pulp`, `pulp export pulp run`: whole, in chunks,
//! incremental) into a directory it is allowed to write; a second server, allowed to read that
//! directory, imports them (`pulp importer pulp`, then `imports/` with the tar or its table of
//! contents) and ends with the same files, byte for byte, checksums verified. Bad archives fail
//! their import with every repository as it was; paths outside the allowed directories are
//! refused field by field; a filesystem exporter writes a publication as it is served.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::pulp_cli::PulpCli;
use crate::support::pulp::{API, created_resources, error_description, str_field};
use crate::support::requests::As;
use crate::support::{AppOptions, Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    repositories_round_trip_through_an_export_and_an_import,
    bad_archives_and_paths_are_refused_and_change_nothing,
    a_filesystem_export_writes_a_publication_as_it_is_served,
);

/// A server allowed to export below `dir` and one allowed to import from below it.
async fn upstream_and_downstream(backend: Backend, dir: &Path) -> (TestApp, TestApp) {
    let dir = dir.to_str().unwrap();
    let upstream = TestApp::start_with(
        backend.clone(),
        AppOptions::default().env("GRANARY_ALLOWED_EXPORT_PATHS", dir),
    )
    .await;
    let downstream = TestApp::start_with(
        backend,
        AppOptions::default().env("GRANARY_ALLOWED_IMPORT_PATHS", dir),
    )
    .await;
    (upstream, downstream)
}

/// Uploads files named `names` (each holding its name, repeated) into the file repository
/// `repository` with pulp-cli, one version each.
async fn upload_files(pulp: &PulpCli, dir: &Path, repository: &str, names: &[&str]) {
    for name in names {
        crate::repository_versions::upload(pulp, dir, repository, name, &name.repeat(700)).await;
    }
}

/// `(relative_path, sha256)` of every file unit of the latest version of `repository`.
async fn files_of(app: &TestApp, repository: &str) -> BTreeSet<(String, String)> {
    let version = app.latest_version_href(repository).await;
    app.file_content_in(&version)
        .await
        .iter()
        .map(|unit| {
            (
                str_field(unit, "relative_path").to_owned(),
                str_field(unit, "sha256").to_owned(),
            )
        })
        .collect()
}

/// The export the exporter `name` made last, as `pulp export pulp list` shows it.
async fn last_export(pulp: &PulpCli, exporter: &str) -> Value {
    let exports = pulp
        .run(&["export", "pulp", "list", "--exporter", exporter])
        .await;
    exports[0].clone()
}

/// `pulp export pulp run --exporter <exporter> <options>`; answers the export it made.
async fn run_export(pulp: &PulpCli, exporter: &str, options: &[&str]) -> Value {
    let mut args = vec!["export", "pulp", "run", "--exporter", exporter];
    args.extend_from_slice(options);
    pulp.run(&args).await;
    last_export(pulp, exporter).await
}

/// The files an export wrote, from its `output_file_info`, each checked against its digest;
/// the table of contents last.
fn output_files(export: &Value) -> (Vec<PathBuf>, PathBuf) {
    let info = export["output_file_info"]
        .as_object()
        .unwrap_or_else(|| panic!("an export with output: {export:#}"));
    let toc = PathBuf::from(str_field(&export["toc_info"], "file"));
    let mut tars = Vec::new();
    for (path, digest) in info {
        let bytes = std::fs::read(path).unwrap_or_else(|_| panic!("{path} was written"));
        assert_eq!(
            &hex::encode(Sha256::digest(&bytes)),
            digest.as_str().unwrap(),
            "{path} has the digest the export recorded"
        );
        if Path::new(path) != toc {
            tars.push(PathBuf::from(path));
        }
    }
    tars.sort();
    (tars, toc)
}

/// The names of the entries of an export's tar (its chunks joined).
fn entries_of(tars: &[PathBuf]) -> Vec<String> {
    let mut joined = Vec::new();
    for tar in tars {
        joined.extend(std::fs::read(tar).unwrap());
    }
    let mut archive = tar::Archive::new(joined.as_slice());
    archive
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap().path().unwrap().display().to_string())
        .collect()
}

/// POSTs an import and waits for its task group to end; answers the group.
async fn import(app: &TestApp, importer: &str, body: Value) -> Value {
    let (status, accepted) = app.post_json(&format!("{importer}imports/"), &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "import answered {accepted}");
    let group_href = str_field(&accepted, "task_group").to_owned();
    for _ in 0..600 {
        let group = app.get_json(&group_href).await;
        let busy = ["waiting", "running", "canceling"]
            .iter()
            .map(|state| group[state].as_u64().unwrap_or(0))
            .sum::<u64>();
        if group["all_tasks_dispatched"] == true && busy == 0 {
            return group;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the import's task group did not end");
}

/// The tasks of a group, in full.
async fn group_tasks(app: &TestApp, group: &Value) -> Vec<Value> {
    let mut tasks = Vec::new();
    for task in group["tasks"].as_array().unwrap() {
        tasks.push(app.get_json(str_field(task, "pulp_href")).await);
    }
    tasks
}

async fn repositories_round_trip_through_an_export_and_an_import(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    let (upstream, downstream) = upstream_and_downstream(backend, dir.path()).await;
    let pulp = PulpCli::new(&upstream);
    let files = tempfile::tempdir().unwrap();

    pulp.run(&["file", "repository", "create", "--name", "zoo"])
        .await;
    pulp.run(&[
        "file",
        "repository",
        "label",
        "set",
        "--repository",
        "zoo",
        "--key",
        "team",
        "--value",
        "birds",
    ])
    .await;
    upload_files(
        &pulp,
        files.path(),
        "zoo",
        &["owl.txt", "emu.txt", "kea.txt"],
    )
    .await;
    pulp.run(&["file", "repository", "create", "--name", "empty"])
        .await;
    let zoo = str_field(
        &pulp
            .run(&["file", "repository", "show", "--name", "zoo"])
            .await,
        "pulp_href",
    )
    .to_owned();
    let exporter = pulp
        .run(&[
            "exporter",
            "pulp",
            "create",
            "--name",
            "nightly",
            "--path",
            exports.to_str().unwrap(),
            "--repository",
            "file:file:zoo",
            "--repository",
            "file:file:empty",
        ])
        .await;
    assert_eq!(exporter["repositories"].as_array().map(Vec::len), Some(2));
    assert_eq!(exporter["last_export"], Value::Null);

    // A whole export: one tar and its table of contents, every digest as recorded.
    let whole = run_export(&pulp, "nightly", &[]).await;
    let (whole_tars, whole_toc) = output_files(&whole);
    assert_eq!(whole_tars.len(), 1, "{whole:#}");
    let toc: Value = serde_json::from_slice(&std::fs::read(&whole_toc).unwrap()).unwrap();
    assert_eq!(toc["meta"]["checksum_type"], "sha256");
    assert_eq!(
        toc["meta"]["global_hash"],
        hex::encode(Sha256::digest(std::fs::read(&whole_tars[0]).unwrap())),
        "unchunked, the global hash is the tar's"
    );
    assert_eq!(
        whole["exported_resources"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(
        whole["exported_resources"][0]
            .as_str()
            .unwrap()
            .contains("/versions/"),
        "{whole:#}"
    );
    let entries = entries_of(&whole_tars);
    assert_eq!(
        entries
            .iter()
            .filter(|name| name.starts_with("artifacts/"))
            .count(),
        3,
        "{entries:?}"
    );
    let shown = pulp
        .run(&["exporter", "pulp", "show", "--name", "nightly"])
        .await;
    assert_eq!(shown["last_export"], whole["pulp_href"]);

    // In chunks of 5 KB: several files, each at most that size, listed in the table.
    let chunked = run_export(&pulp, "nightly", &["--full", "True", "--chunk-size", "5KB"]).await;
    let (chunks, chunked_toc) = output_files(&chunked);
    assert!(chunks.len() > 1, "{chunked:#}");
    for chunk in &chunks {
        assert!(std::fs::metadata(chunk).unwrap().len() <= 5 * 1024);
    }

    // Incremental: every unit, but only the artifact added since the last export.
    upload_files(&pulp, files.path(), "zoo", &["tui.txt"]).await;
    let incremental = run_export(&pulp, "nightly", &["--full", "False"]).await;
    let (incremental_tars, _) = output_files(&incremental);
    let entries = entries_of(&incremental_tars);
    let artifacts: Vec<&String> = entries
        .iter()
        .filter(|name| name.starts_with("artifacts/"))
        .collect();
    assert_eq!(artifacts.len(), 1, "{entries:?}");
    let tui = hex::encode(Sha256::digest("tui.txt".repeat(700)));
    assert!(artifacts[0].ends_with(&tui), "{artifacts:?}");
    // An explicit start: from version 0 of each repository, everything again.
    let from_zero = run_export(
        &pulp,
        "nightly",
        &[
            "--full",
            "False",
            "--start-versions",
            "file:file:zoo",
            "0",
            "--start-versions",
            "file:file:empty",
            "0",
        ],
    )
    .await;
    assert_eq!(
        entries_of(&output_files(&from_zero).0)
            .iter()
            .filter(|name| name.starts_with("artifacts/"))
            .count(),
        4
    );

    // Downstream: an importer mapping `zoo` to a repository of another name.
    let downstream_cli = PulpCli::new(&downstream);
    downstream_cli
        .run(&["file", "repository", "create", "--name", "aviary"])
        .await;
    downstream_cli
        .run(&["file", "repository", "create", "--name", "empty"])
        .await;
    let importer = downstream_cli
        .run(&[
            "importer",
            "pulp",
            "create",
            "--name",
            "from-upstream",
            "--repo-map",
            "zoo",
            "aviary",
        ])
        .await;
    assert_eq!(importer["repo_mapping"], json!({"zoo": "aviary"}));
    let importer_href = str_field(&importer, "pulp_href").to_owned();

    // The chunked export through its table of contents: every chunk checked, then imported.
    let group = import(
        &downstream,
        &importer_href,
        json!({"toc": chunked_toc.to_str().unwrap()}),
    )
    .await;
    assert_eq!(group["failed"], 0, "{group:#}");
    let tasks = group_tasks(&downstream, &group).await;
    assert_eq!(tasks.len(), 3, "the import and one task per repository");
    let codes: Vec<&str> = tasks[0]["progress_reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|report| str_field(report, "code"))
        .collect();
    assert!(codes.contains(&"validate.chunks"), "{codes:?}");
    assert!(codes.contains(&"import.artifacts"), "{codes:?}");
    let aviary = str_field(
        &downstream_cli
            .run(&["file", "repository", "show", "--name", "aviary"])
            .await,
        "pulp_href",
    )
    .to_owned();
    let exported_then = BTreeSet::from_iter(["owl.txt", "emu.txt", "kea.txt"].map(|name| {
        (
            name.to_owned(),
            hex::encode(Sha256::digest(name.repeat(700))),
        )
    }));
    assert_eq!(files_of(&downstream, &aviary).await, exported_then);
    // The artifacts have the digests upstream recorded, no more, no fewer (each one listed was
    // checked against the bytes).
    let owl = hex::encode(Sha256::digest("owl.txt".repeat(700)));
    let up = &upstream
        .get_json(&format!("{API}/artifacts/?sha256={owl}"))
        .await["results"][0];
    let down = &downstream
        .get_json(&format!("{API}/artifacts/?sha256={owl}"))
        .await["results"][0];
    for digest in ["sha256", "sha512", "sha384", "sha224", "sha1", "md5"] {
        assert_eq!(up[digest], down[digest], "{digest}: {up:#} {down:#}");
    }
    // Served downstream, the bytes are upstream's.
    let publication = downstream.publish_file(&aviary).await;
    let served = downstream
        .distribute_file("aviary", "aviary", json!({"publication": publication}))
        .await;
    let body = reqwest::get(format!("{}owl.txt", str_field(&served, "base_url")))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(hex::encode(Sha256::digest(&body)), owl);

    // The incremental export, as a tar: the fourth file arrives; the version is upstream's.
    let group = import(
        &downstream,
        &importer_href,
        json!({"path": incremental_tars[0].to_str().unwrap()}),
    )
    .await;
    assert_eq!(group["failed"], 0, "{group:#}");
    assert_eq!(
        files_of(&downstream, &aviary).await,
        files_of(&upstream, &zoo).await
    );
    // The same import again changes nothing: no new version.
    let before = downstream.latest_version_href(&aviary).await;
    import(
        &downstream,
        &importer_href,
        json!({"path": incremental_tars[0].to_str().unwrap()}),
    )
    .await;
    assert_eq!(downstream.latest_version_href(&aviary).await, before);
    let imports = downstream
        .get_json(&format!("{importer_href}imports/"))
        .await;
    assert_eq!(imports["count"], 3, "{imports:#}");

    // Without a mapping, `create_repositories` makes the repositories, labels and all.
    let other = downstream
        .create(
            &format!("{API}/importers/core/pulp/"),
            json!({"name": "creating"}),
        )
        .await;
    let group = import(
        &downstream,
        str_field(&other, "pulp_href"),
        json!({"path": whole_tars[0].to_str().unwrap(), "create_repositories": true}),
    )
    .await;
    assert_eq!(group["failed"], 0, "{group:#}");
    let created = downstream_cli
        .run(&["file", "repository", "show", "--name", "zoo"])
        .await;
    assert_eq!(created["pulp_labels"], json!({"team": "birds"}));
    assert_eq!(
        files_of(&downstream, str_field(&created, "pulp_href")).await,
        exported_then
    );

    // Exports are listed, shown and deleted as pulp-cli does it; the exporter too.
    let href = str_field(&whole, "pulp_href").to_owned();
    pulp.run(&["export", "pulp", "destroy", "--href", &href])
        .await;
    assert_eq!(upstream.get(&href).await.0, StatusCode::NOT_FOUND);
    // Changing an exporter is a task, as in Pulp; pulp-cli waits for it.
    let later = exports.join("later");
    pulp.run(&[
        "exporter",
        "pulp",
        "update",
        "--name",
        "nightly",
        "--path",
        later.to_str().unwrap(),
        "--repository",
        "file:file:zoo",
    ])
    .await;
    let changed = pulp
        .run(&["exporter", "pulp", "show", "--name", "nightly"])
        .await;
    assert_eq!(changed["path"], later.to_str().unwrap());
    assert_eq!(changed["repositories"].as_array().map(Vec::len), Some(1));
    pulp.run(&["exporter", "pulp", "destroy", "--name", "nightly"])
        .await;
    pulp.fails(&["exporter", "pulp", "show", "--name", "nightly"])
        .await;
}

/// Writes `bytes` as a tar holding one entry named `name` raw (no checks of the name).
fn raw_tar(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(bytes.len() as u64);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut tar = header.as_bytes().to_vec();
    tar.extend(bytes);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    tar
}

async fn bad_archives_and_paths_are_refused_and_change_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    let (upstream, downstream) = upstream_and_downstream(backend, dir.path()).await;
    let pulp = PulpCli::new(&upstream);
    let files = tempfile::tempdir().unwrap();
    pulp.run(&["file", "repository", "create", "--name", "zoo"])
        .await;
    upload_files(&pulp, files.path(), "zoo", &["owl.txt", "emu.txt"]).await;
    let zoo = upstream
        .get_json(&format!("{API}/repositories/file/file/?name=zoo"))
        .await["results"][0]["pulp_href"]
        .as_str()
        .unwrap()
        .to_owned();

    // Paths outside the allowed directories: a 400 on the field, Pulp's message.
    let elsewhere = tempfile::tempdir().unwrap();
    let (status, body) = upstream
        .post_json(
            &format!("{API}/exporters/core/pulp/"),
            &json!({"name": "out", "path": elsewhere.path(), "repositories": [zoo]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["path"][0],
        format!(
            "Path '{}' is not an allowed export path",
            elsewhere.path().display()
        )
    );
    let climbing = format!("{}/../elsewhere", exports.display());
    let (status, body) = upstream
        .post_json(
            &format!("{API}/exporters/core/pulp/"),
            &json!({"name": "out", "path": climbing, "repositories": [zoo]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // An on-demand repository has no bytes to export: the task says so.
    let fixture = Fixture::generate(2, 7);
    let origin = Upstream::serve(&fixture).await;
    let remote = upstream
        .create_file_remote("lazy", &origin.manifest_url(), "on_demand")
        .await;
    let lazy = upstream.create_file_repository("lazy").await;
    let task = upstream.sync(&lazy, &remote, true).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let lazy_exporter = upstream
        .create(
            &format!("{API}/exporters/core/pulp/"),
            json!({"name": "lazy", "path": exports, "repositories": [lazy]}),
        )
        .await;
    let task_href = upstream
        .dispatch(
            &format!("{}exports/", str_field(&lazy_exporter, "pulp_href")),
            json!({}),
        )
        .await;
    let task = upstream.wait_task(&task_href).await;
    assert_eq!(task["state"], "failed");
    assert_eq!(
        error_description(&task),
        "remote artifacts cannot be exported."
    );
    // Pulp's request checks, field by field.
    let exporter = upstream
        .create(
            &format!("{API}/exporters/core/pulp/"),
            json!({"name": "good", "path": exports, "repositories": [zoo]}),
        )
        .await;
    let exports_of = format!("{}exports/", str_field(&exporter, "pulp_href"));
    for (body, field, message) in [
        (json!({"chunk_size": "5XB"}), "chunk_size", "not valid"),
        (
            json!({"full": false}),
            "non_field_errors",
            "Incremental export can only be requested",
        ),
        (
            json!({"start_versions": [format!("{zoo}versions/0/")]}),
            "non_field_errors",
            "start_versions is only valid",
        ),
        (
            json!({"versions": [format!("{lazy}versions/0/")]}),
            "versions",
            "must belong to the Repositories",
        ),
    ] {
        let (status, answer) = upstream.post_json(&exports_of, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(
            answer[field][0]
                .as_str()
                .unwrap_or_default()
                .contains(message),
            "{body}: {answer}"
        );
    }
    let task = upstream.run_task(&exports_of, json!({})).await;
    let export = upstream.get_json(&created_resources(&task)[0]).await;
    let (tars, toc) = output_files(&export);
    let tar_path = tars[0].clone();

    // Downstream, with a repository that must come out of every bad import unchanged.
    let zoo_down = downstream.create_file_repository("zoo").await;
    let importer = downstream
        .create(
            &format!("{API}/importers/core/pulp/"),
            json!({"name": "strict"}),
        )
        .await;
    let importer_href = str_field(&importer, "pulp_href").to_owned();
    let (status, body) = downstream
        .post_json(
            &format!("{importer_href}imports/"),
            &json!({"path": elsewhere.path().join("x.tar")}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["path"][0]
            .as_str()
            .unwrap()
            .ends_with("is not an allowed import path"),
        "{body}"
    );
    let (status, body) = downstream
        .post_json(&format!("{importer_href}imports/"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Bytes of an artifact changed in the tar: its digest catches it.
    let mut corrupt = std::fs::read(&tar_path).unwrap();
    let owl = "owl.txt".repeat(700);
    let at = corrupt
        .windows(owl.len())
        .position(|window| window == owl.as_bytes())
        .expect("the tar holds owl.txt's bytes");
    corrupt[at] ^= 1;
    let corrupt_path = dir.path().join("corrupt.tar");
    std::fs::write(&corrupt_path, &corrupt).unwrap();
    // A chunk that is not what the table of contents says.
    let mut toc_json: Value = serde_json::from_slice(&std::fs::read(&toc).unwrap()).unwrap();
    let chunk_name = tar_path.file_name().unwrap().to_str().unwrap().to_owned();
    toc_json["files"][&chunk_name] = json!("0".repeat(64));
    let bad_toc = dir.path().join("exports").join("bad-toc.json");
    std::fs::write(&bad_toc, toc_json.to_string()).unwrap();
    // A tar whose entry climbs out.
    let climbing_tar = dir.path().join("climbing.tar");
    std::fs::write(&climbing_tar, raw_tar("../escaped", b"x")).unwrap();
    // Something that is not an export at all.
    let stranger = dir.path().join("stranger.tar");
    std::fs::write(&stranger, raw_tar("versions.json", b"[]")).unwrap();
    for (body, message) in [
        (json!({"path": corrupt_path}), "is corrupt"),
        (json!({"toc": bad_toc}), "import chunk hash mismatch"),
        (json!({"path": climbing_tar}), "not a relative path"),
        (
            json!({"path": stranger}),
            "not an export of a granary server",
        ),
        (
            json!({"path": dir.path().join("missing.tar")}),
            "missing.tar",
        ),
    ] {
        let group = import(&downstream, &importer_href, body.clone()).await;
        assert_eq!(group["failed"], 1, "{body}: {group:#}");
        let task = &group_tasks(&downstream, &group).await[0];
        assert!(
            error_description(task).contains(message),
            "{body}: {}",
            error_description(task)
        );
        assert_eq!(
            downstream.latest_version_href(&zoo_down).await,
            format!("{zoo_down}versions/0/"),
            "{body} changed the repository"
        );
    }
    assert!(!dir.path().join("escaped").exists());

    // import-check says what is wrong without importing.
    let (status, checked) = downstream
        .post_json(
            &format!("{API}/importers/core/pulp/import-check/"),
            &json!({"path": tar_path, "toc": elsewhere.path().join("t.json"), "repo_mapping": "{"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert_eq!(checked["path"]["is_valid"], true, "{checked:#}");
    assert_eq!(checked["toc"]["is_valid"], false, "{checked:#}");
    assert_eq!(checked["repo_mapping"]["messages"][0], "invalid JSON");

    // Staff only: anonymous clients are asked to log in, other users refused.
    upstream.create_user("carol", "carol's long password").await;
    let carol = As::Basic("carol", "carol's long password");
    let calls = [
        (Method::GET, format!("{API}/exporters/core/pulp/")),
        (Method::POST, exports_of.clone()),
        (Method::GET, format!("{API}/exporters/core/filesystem/")),
        (Method::GET, format!("{API}/importers/core/pulp/")),
        (
            Method::POST,
            format!("{API}/importers/core/pulp/import-check/"),
        ),
    ];
    upstream
        .assert_closed_to(carol, &calls, &json!({"path": tar_path}))
        .await;
}

async fn a_filesystem_export_writes_a_publication_as_it_is_served(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start_with(
        backend,
        AppOptions::default().env("GRANARY_ALLOWED_EXPORT_PATHS", dir.path().to_str().unwrap()),
    )
    .await;
    let pulp = PulpCli::new(&app);
    let files = tempfile::tempdir().unwrap();
    pulp.run(&["file", "repository", "create", "--name", "site"])
        .await;
    upload_files(&pulp, files.path(), "site", &["a.txt", "b.txt"]).await;
    let site = app
        .get_json(&format!("{API}/repositories/file/file/?name=site"))
        .await["results"][0]["pulp_href"]
        .as_str()
        .unwrap()
        .to_owned();
    let publication = app.publish_file(&site).await;

    let target = dir.path().join("site");
    let exporter = app
        .create(
            &format!("{API}/exporters/core/filesystem/"),
            json!({"name": "site", "path": target}),
        )
        .await;
    assert_eq!(exporter["method"], "write");
    let exports_of = format!("{}exports/", str_field(&exporter, "pulp_href"));
    let task = app
        .run_task(&exports_of, json!({"publication": publication}))
        .await;
    let export = app.get_json(&created_resources(&task)[0]).await;
    assert_eq!(export["exported_resources"], json!([publication]));
    for name in ["a.txt", "b.txt"] {
        assert_eq!(
            std::fs::read_to_string(target.join(name)).unwrap(),
            name.repeat(700)
        );
    }
    let manifest = std::fs::read_to_string(target.join("PULP_MANIFEST")).unwrap();
    assert_eq!(manifest.lines().count(), 2, "{manifest}");

    // Pulp's rule: never into a directory that holds something.
    let task_href = app
        .dispatch(&exports_of, json!({"publication": publication}))
        .await;
    let task = app.wait_task(&task_href).await;
    assert_eq!(task["state"], "failed");
    assert_eq!(
        error_description(&task),
        "cannot export to directories that contain existing data."
    );
    let (status, body) = app
        .post_json(
            &exports_of,
            &json!({"publication": publication, "repository_version": format!("{site}versions/1/")}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A repository version, hard-linked: the files are the stored artifacts themselves.
    let linked = dir.path().join("linked");
    let exporter = app
        .create(
            &format!("{API}/exporters/core/filesystem/"),
            json!({"name": "linked", "path": linked, "method": "hardlink"}),
        )
        .await;
    app.run_task(
        &format!("{}exports/", str_field(&exporter, "pulp_href")),
        json!({"repository_version": format!("{site}versions/2/")}),
    )
    .await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let sha256 = hex::encode(Sha256::digest("a.txt".repeat(700)));
        assert_eq!(
            std::fs::metadata(linked.join("a.txt")).unwrap().ino(),
            std::fs::metadata(app.stored_artifact(&sha256))
                .unwrap()
                .ino()
        );
    }
    assert!(
        !linked.join("PULP_MANIFEST").exists(),
        "a version has no metadata"
    );
    let (status, body) = app
        .post_json(
            &format!("{API}/exporters/core/filesystem/"),
            &json!({"name": "odd", "path": dir.path().join("odd"), "method": "teleport"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["method"].is_array(), "{body}");
}
