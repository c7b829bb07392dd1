//! Scale-out: stateless `serve` and `worker` processes sharing one PostgreSQL database and one
//! S3-compatible server. These run only when `GRANARY_TEST_DATABASE_URL` names a PostgreSQL
//! server (SQLite is single-process by design).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::Digest as _;

use crate::support::cluster::Cluster;
use crate::support::curl::Downloads;
use crate::support::pulp::{API, error_description, str_field, summary_count};
use crate::support::{Fixture, Upstream};

fn postgres_server() -> Option<String> {
    let url = std::env::var("GRANARY_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty());
    if url.is_none() {
        eprintln!("skipped: GRANARY_TEST_DATABASE_URL not set");
    }
    url
}

/// Waits until `app` answers `path` (a plugin's endpoint once it has loaded a plugin installed
/// through another process), but not forever.
async fn wait_until_served(app: &crate::support::TestApp, path: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.get(path).await.0 != reqwest::StatusCode::OK {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the serve process never saw the plugin"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `artifacts/ab/cd/<sha256>` → `<sha256>`.
fn sha256_of_key(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// Two serve processes and two worker processes run the whole file flow: the sync runs on a
/// worker process, the bytes land in the S3 bucket, and both serve processes serve every file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_worker_processes_share_postgres_and_s3() {
    let Some(server) = postgres_server() else {
        return;
    };
    let cluster = Cluster::start(&server, 2, 2).await;
    let (first, second) = (&cluster.serves[0], &cluster.serves[1]);
    let fixture = Fixture::generate(40, 11);
    let upstream = Upstream::serve(&fixture).await;

    let remote = first
        .create_file_remote("upstream", &upstream.manifest_url(), "immediate")
        .await;
    let repository = first.create_file_repository("mirror").await;
    let task = first.sync(&repository, &remote, true).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let worker_names: BTreeSet<&str> = cluster
        .workers
        .iter()
        .map(|worker| worker.name.as_str())
        .collect();
    assert!(
        worker_names.contains(first.worker_of(&task).await.as_str()),
        "a worker process ran the sync: {task:#}"
    );

    let base_url = second.publish_and_distribute(&repository, "mirror").await;
    Downloads::new()
        .assert_all_served(&base_url, &fixture.files)
        .await;
    Downloads::new()
        .assert_all_served(&first.url("/pulp/content/mirror/"), &fixture.files)
        .await;

    let stored: BTreeSet<(String, u64)> = cluster
        .s3
        .objects()
        .await
        .into_iter()
        .map(|(key, size)| (sha256_of_key(&key).to_owned(), size))
        .collect();
    for file in &fixture.files {
        assert!(
            stored.contains(&(file.sha256.clone(), file.size())),
            "{} ({}) is in the bucket: {stored:?}",
            file.relative_path,
            file.sha256
        );
    }
    let status = first.get_json(&format!("{API}/status/")).await;
    assert_eq!(status["storage"]["backend"], "s3", "{status:#}");

    // A file larger than one S3 part goes up as a multipart upload and streams back whole.
    let large: Vec<u8> = (0..20 * 1024 * 1024_u32).map(|i| (i % 251) as u8).collect();
    let (status, accepted) = first
        .post_multipart(
            &format!("{API}/content/file/files/"),
            &[
                ("file", Some("large.bin"), large.as_slice()),
                ("relative_path", None, b"large/large.bin".as_slice()),
                ("repository", None, repository.as_bytes()),
            ],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{accepted}");
    let task = second.wait_task(str_field(&accepted, "task")).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let base_url = first
        .publish_and_distribute(&repository, "with-large")
        .await;
    let served = reqwest::get(format!("{base_url}large/large.bin"))
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert!(
        served.as_ref() == large.as_slice(),
        "the large file came back whole ({} bytes)",
        served.len()
    );
    let digest = crate::support::fixture::sha256_hex(&large);
    assert!(
        cluster
            .s3
            .objects()
            .await
            .iter()
            .any(|(key, size)| sha256_of_key(key) == digest && *size == large.len() as u64),
        "the large file is one object in the bucket"
    );
}

/// A serve process keeps the small files it served in memory: with every object gone from the
/// bucket it still serves them, while larger files are read from S3 on every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_once_served_come_from_memory_not_from_s3() {
    let Some(server) = postgres_server() else {
        return;
    };
    let cluster = Cluster::start(&server, 1, 1).await;
    let serve = &cluster.serves[0];
    let fixture = Fixture::generate(20, 12);
    let upstream = Upstream::serve(&fixture).await;
    let remote = serve
        .create_file_remote("upstream", &upstream.manifest_url(), "immediate")
        .await;
    let repository = serve.create_file_repository("mirror").await;
    let task = serve.sync(&repository, &remote, true).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let base_url = serve.publish_and_distribute(&repository, "mirror").await;
    Downloads::new()
        .assert_all_served(&base_url, &fixture.files)
        .await;

    for (key, _) in cluster.s3.objects().await {
        cluster.s3.delete(&key).await;
    }

    let (small, large): (Vec<_>, Vec<_>) = fixture
        .files
        .iter()
        .partition(|file| file.size() <= 64 * 1024);
    assert!(
        !small.is_empty() && !large.is_empty(),
        "the fixture has both"
    );
    let get = async |path: &str| {
        reqwest::get(format!("{base_url}{path}"))
            .await
            .expect("GET")
    };
    for file in small {
        let response = get(&file.relative_path).await;
        assert_eq!(response.status(), 200, "{}", file.relative_path);
        let body = response.bytes().await.expect("body");
        assert!(body == file.bytes, "{} served whole", file.relative_path);
    }
    for file in large {
        let response = get(&file.relative_path).await;
        assert!(
            response.status().is_server_error(),
            "{} ({} bytes) is read from the bucket, where it is gone: {}",
            file.relative_path,
            file.size(),
            response.status()
        );
    }
}

/// Twenty syncs of twenty repositories queued at once spread over both worker processes and run
/// side by side, while two syncs of one repository never overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_run_in_parallel_across_workers_but_never_twice_on_one_repository() {
    let Some(server) = postgres_server() else {
        return;
    };
    let cluster = Cluster::start(&server, 1, 2).await;
    let app = &cluster.serves[0];
    let fixture = Fixture::generate(6, 12);
    let upstream = Upstream::serve(&fixture).await;
    upstream.set_file_delay(Duration::from_millis(150));
    let remote = app
        .create(
            &format!("{API}/remotes/file/file/"),
            json!({"name": "slow", "url": upstream.manifest_url(), "policy": "immediate", "download_concurrency": 1}),
        )
        .await;
    let remote = str_field(&remote, "pulp_href").to_owned();
    let mut repositories = Vec::new();
    for n in 0..20 {
        repositories.push(app.create_file_repository(&format!("repo-{n}")).await);
    }

    let mut tasks = Vec::new();
    for repository in &repositories {
        tasks.push(
            app.dispatch(&format!("{repository}sync/"), json!({"remote": remote}))
                .await,
        );
    }
    let twice = app
        .dispatch(
            &format!("{}sync/", repositories[0]),
            json!({"remote": remote}),
        )
        .await;

    let mut finished: Vec<Value> = Vec::new();
    for task in tasks.iter().chain([&twice]) {
        let task = app.wait_task(task).await;
        assert_eq!(task["state"], "completed", "{task:#}");
        finished.push(task);
    }
    let mut workers = BTreeSet::new();
    for task in &finished {
        workers.insert(app.worker_of(task).await);
    }
    assert_eq!(
        workers.len(),
        2,
        "both worker processes took tasks: {workers:?}"
    );
    let intervals: Vec<(&str, &str)> = finished
        .iter()
        .map(|task| {
            (
                str_field(task, "started_at"),
                str_field(task, "finished_at"),
            )
        })
        .collect();
    let most_at_once = intervals
        .iter()
        .map(|(start, _)| {
            intervals
                .iter()
                .filter(|(s, f)| s <= start && start < f)
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        most_at_once >= 3,
        "syncs ran side by side (at most {most_at_once} at once)"
    );

    let (first, second) = (&finished[0], &finished[20]);
    let apart = str_field(first, "finished_at") <= str_field(second, "started_at")
        || str_field(second, "finished_at") <= str_field(first, "started_at");
    assert!(
        apart,
        "two syncs of one repository overlapped:\n{first:#}\n{second:#}"
    );
}

/// A worker process killed in the middle of a sync: another process fails its task within the
/// heartbeat timeout, the next sync completes on the surviving worker, and the bucket holds no
/// partial object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_task_is_failed_and_the_next_sync_completes() {
    let Some(server) = postgres_server() else {
        return;
    };
    let mut cluster = Cluster::start(&server, 1, 2).await;
    let fixture = Fixture::generate(30, 13);
    let upstream = Upstream::serve(&fixture).await;
    upstream.set_file_delay(Duration::from_millis(200));
    let app = &cluster.serves[0];
    let remote = app
        .create(
            &format!("{API}/remotes/file/file/"),
            json!({"name": "slow", "url": upstream.manifest_url(), "policy": "immediate", "download_concurrency": 2}),
        )
        .await;
    let remote = str_field(&remote, "pulp_href").to_owned();
    let repository = app.create_file_repository("interrupted").await;
    let task_href = app
        .dispatch(
            &format!("{repository}sync/"),
            json!({"remote": remote, "mirror": true}),
        )
        .await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let running = loop {
        let task = app.get_json(&task_href).await;
        if task["state"] == "running" && upstream.file_requests() >= 2 {
            break task;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sync never started downloading: {task:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let victim = app.worker_of(&running).await;
    let index = cluster
        .workers
        .iter()
        .position(|worker| worker.name == victim)
        .expect("the task's worker is ours");
    cluster.workers[index].kill();
    let survivor = cluster.workers[1 - index].name.clone();

    let app = &cluster.serves[0];
    let task = app.wait_task(&task_href).await;
    assert_eq!(task["state"], "failed", "{task:#}");
    assert!(error_description(&task).contains("worker"), "{task:#}");
    assert_eq!(
        app.latest_version_href(&repository).await,
        format!("{repository}versions/0/")
    );

    upstream.set_file_delay(Duration::ZERO);
    let task = app.sync(&repository, &remote, true).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(app.worker_of(&task).await, survivor);
    let version = app.get_json(&format!("{repository}versions/1/")).await;
    assert_eq!(
        summary_count(&version, "present", "file.file"),
        30,
        "{version:#}"
    );

    let expected: BTreeSet<(String, u64)> = fixture
        .files
        .iter()
        .map(|file| (file.sha256.clone(), file.size()))
        .collect();
    for (key, size) in cluster.s3.objects().await {
        assert!(
            expected.contains(&(sha256_of_key(&key).to_owned(), size)),
            "object {key} ({size} bytes) is a complete upstream file"
        );
    }
}

/// A plugin installed through one serve process is usable through the other serve process and
/// by the worker processes without a restart: every process hears of the install (`NOTIFY`) and
/// loads the component from the shared database and bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_installed_through_one_process_is_usable_through_the_others() {
    let Some(server) = postgres_server() else {
        return;
    };
    let cluster = Cluster::start(&server, 2, 1).await;
    let (first, second) = (&cluster.serves[0], &cluster.serves[1]);
    let component = std::fs::read(env!("GRANARY_EXAMPLE_RAW_WASM")).expect("read the raw example");
    let (status, plugin) = first.install_plugin(&component).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{plugin:#}");

    let repositories = format!("{API}/repositories/raw/raw/");
    wait_until_served(second, &repositories).await;
    let repository = second.create(&repositories, json!({"name": "tools"})).await;
    let repository = str_field(&repository, "pulp_href").to_owned();
    let script = b"#!/bin/sh\necho installed once, served everywhere\n";
    second
        .upload_content("raw/raws", &repository, "bin/hello.sh", script)
        .await;
    let base_url = second
        .publish_and_distribute_as("raw/raw", &repository, "tools")
        .await;
    let path = base_url
        .split("/pulp/content/")
        .nth(1)
        .expect("a content URL");
    for app in [first, second] {
        let response = reqwest::get(app.url(&format!("/pulp/content/{path}bin/hello.sh")))
            .await
            .expect("GET");
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        assert_eq!(response.bytes().await.expect("body").as_ref(), script);
    }
}

/// Each serve process keeps what content paths resolve to in memory. A distribution moved to
/// another publication through the first process is served changed by the second: the database's
/// triggers announce the change (`NOTIFY`) and every process drops what it kept. Without that,
/// the second process would serve the old file for as long as it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distribution_moved_through_one_process_is_served_moved_by_the_others() {
    let Some(server) = postgres_server() else {
        return;
    };
    let cluster = Cluster::start(&server, 2, 1).await;
    let (first, second) = (&cluster.serves[0], &cluster.serves[1]);
    let mut publications = Vec::new();
    for (name, bytes) in [("one", b"one"), ("two", b"two")] {
        let repository = first.create_file_repository(name).await;
        first
            .upload_content("file/files", &repository, "a.txt", bytes)
            .await;
        publications.push(first.publish_file(&repository).await);
    }
    let distribution = first
        .distribute_file("moving", "moving", json!({"publication": publications[0]}))
        .await;
    let url = second.url("/pulp/content/moving/a.txt");
    let served = || async {
        let response = reqwest::get(&url).await.expect("GET");
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        response.bytes().await.expect("body")
    };
    // The second read is answered from memory.
    for _ in 0..2 {
        assert_eq!(served().await.as_ref(), b"one");
    }

    first
        .update(
            str_field(&distribution, "pulp_href"),
            json!({"publication": publications[1]}),
        )
        .await;
    // The announcement travels on its own connection, so it may land just after the task is
    // reported complete: wait for it, but not forever.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while served().await.as_ref() != b"two" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second serve process kept serving the old publication"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Export and import with artifacts in S3: a cluster's worker process imports an export of a
/// server on local storage (the artifacts land in the bucket and both serve processes serve
/// them), then exports the repository again from the bucket, byte for byte the same files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_and_imports_read_and_write_s3() {
    let Some(server) = postgres_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().to_str().unwrap();
    let local = crate::support::TestApp::start_with(
        crate::support::Backend::Sqlite,
        crate::support::AppOptions::default().env("GRANARY_ALLOWED_EXPORT_PATHS", allowed),
    )
    .await;
    let fixture = Fixture::generate(12, 23);
    let upstream = Upstream::serve(&fixture).await;
    let remote = local
        .create_file_remote("upstream", &upstream.manifest_url(), "immediate")
        .await;
    let repository = local.create_file_repository("mirror").await;
    let task = local.sync(&repository, &remote, true).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let exporter = local
        .create(
            &format!("{API}/exporters/core/pulp/"),
            json!({"name": "to-cluster", "path": dir.path().join("out"), "repositories": [repository]}),
        )
        .await;
    let task = local
        .run_task(
            &format!("{}exports/", str_field(&exporter, "pulp_href")),
            json!({}),
        )
        .await;
    let export = local
        .get_json(task["created_resources"][0].as_str().unwrap())
        .await;
    let toc = str_field(&export["toc_info"], "file").to_owned();

    let cluster = Cluster::start_with_env(
        &server,
        2,
        1,
        &[
            ("GRANARY_ALLOWED_IMPORT_PATHS", allowed),
            ("GRANARY_ALLOWED_EXPORT_PATHS", allowed),
        ],
    )
    .await;
    let (first, second) = (&cluster.serves[0], &cluster.serves[1]);
    let importer = first
        .create(
            &format!("{API}/importers/core/pulp/"),
            json!({"name": "from-local"}),
        )
        .await;
    let (status, accepted) = first
        .post_json(
            &format!("{}imports/", str_field(&importer, "pulp_href")),
            &json!({"toc": toc, "create_repositories": true}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{accepted}");
    let group_href = str_field(&accepted, "task_group").to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let group = first.get_json(&group_href).await;
        if group["completed"] == 2 {
            break;
        }
        assert_eq!(group["failed"], 0, "{group:#}");
        assert!(tokio::time::Instant::now() < deadline, "{group:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let keys: BTreeSet<String> = cluster
        .s3
        .objects()
        .await
        .into_iter()
        .map(|(key, _)| sha256_of_key(&key).to_owned())
        .collect();
    for file in &fixture.files {
        assert!(
            keys.contains(&file.sha256),
            "{} is in the bucket",
            file.relative_path
        );
    }
    let copy = first
        .get_json(&format!("{API}/repositories/file/file/?name=mirror"))
        .await["results"][0]["pulp_href"]
        .as_str()
        .unwrap()
        .to_owned();
    let base_url = second.publish_and_distribute(&copy, "copy").await;
    Downloads::new()
        .assert_all_served(&base_url, &fixture.files)
        .await;

    // Exported again from the bucket by the worker process: the same files.
    let exporter = first
        .create(
            &format!("{API}/exporters/core/pulp/"),
            json!({"name": "back", "path": dir.path().join("back"), "repositories": [copy]}),
        )
        .await;
    let task = first
        .run_task(
            &format!("{}exports/", str_field(&exporter, "pulp_href")),
            json!({}),
        )
        .await;
    let again = first
        .get_json(task["created_resources"][0].as_str().unwrap())
        .await;
    let tar = again["output_file_info"]
        .as_object()
        .and_then(|files| files.keys().find(|path| path.ends_with(".tar")).cloned())
        .expect("the export's tar");
    let bytes = std::fs::read(&tar).unwrap();
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut exported = BTreeSet::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        if name.starts_with("artifacts/") {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut body).unwrap();
            assert!(
                name.ends_with(&hex::encode(sha2::Sha256::digest(&body))),
                "{name}"
            );
            exported.insert(sha256_of_key(&name).to_owned());
        }
    }
    let expected: BTreeSet<String> = fixture
        .files
        .iter()
        .map(|file| file.sha256.clone())
        .collect();
    assert_eq!(exported, expected);
}

/// An upload session started at one serve process continues at another, with its parts in the
/// bucket: a session of two parts is concatenated into the artifact, one of a single part is
/// copied inside the bucket; no part is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_session_continues_at_another_serve_process_on_s3() {
    use crate::streamed_bodies::{
        append, blob_shelf, bytes_of, complete, install_blobs, served_blob, session_size, sha256,
        start_session,
    };
    let Some(server) = postgres_server() else {
        return;
    };
    let cluster = Cluster::start(&server, 2, 1).await;
    let (first, second) = (&cluster.serves[0], &cluster.serves[1]);
    install_blobs(first).await;
    wait_until_served(second, &format!("{API}/repositories/blobs/blobs/")).await;
    blob_shelf(first, "shelf", "shelf").await;

    let layer = bytes_of(9 << 20, 7);
    let id = start_session(first).await;
    append(first, &id, 0, &layer[..6 << 20]).await;
    assert_eq!(session_size(second, "shelf", &id).await, Some(6 << 20));
    append(second, &id, 6 << 20, &layer[6 << 20..]).await;
    let (status, _) = complete(first, &id, &sha256(&layer)).await;
    assert_eq!(status, reqwest::StatusCode::CREATED);

    let config = bytes_of(20_000, 8);
    let id = start_session(second).await;
    append(second, &id, 0, &config).await;
    let (status, _) = complete(first, &id, &sha256(&config)).await;
    assert_eq!(status, reqwest::StatusCode::CREATED);

    for app in [first, second] {
        assert_eq!(
            served_blob(app, &sha256(&layer)).await.as_deref(),
            Some(&layer[..])
        );
        assert_eq!(
            served_blob(app, &sha256(&config)).await.as_deref(),
            Some(&config[..])
        );
    }
    let keys: Vec<String> = cluster
        .s3
        .objects()
        .await
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    for blob in [&layer, &config] {
        assert!(
            keys.iter().any(|key| key.ends_with(&sha256(blob))),
            "the blob is in the bucket: {keys:?}"
        );
    }
    assert!(
        !keys.iter().any(|key| key.starts_with("uploads/")),
        "no upload part is left: {keys:?}"
    );
}
