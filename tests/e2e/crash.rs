//! Interrupted work: a server killed mid-sync, a sync canceled through the API, and a server
//! killed with SIGKILL at random points of syncs, uploads, publishes and orphan cleanups, many
//! times over. None may leave a half-made version, an artifact without its bytes, or stray files
//! that orphan cleanup does not collect.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::app::is_finished;
use crate::support::curl::Downloads;
use crate::support::fixture::sha256_hex;
use crate::support::pulp::{API, error_description, str_field, summary_count};
use crate::support::python::build_demo_and_dep;
use crate::support::{Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    kill_during_sync_then_restart,
    cancel_running_sync,
    killed_at_random_points_the_data_stays_whole,
    an_acknowledged_upload_survives_a_kill_before_its_files_are_written,
);

/// Kills per database. Each is a dispatch, a random delay, SIGKILL and a restart on the same
/// data directory and database.
const KILLS: usize = 50;

/// Longest random delay between dispatching work and killing the server.
const MAX_KILL_DELAY_MS: u64 = 600;

/// Work a kill interrupts.
#[derive(Clone, Copy, Debug)]
enum Interrupted {
    Sync,
    Upload,
    Publish,
    OrphanCleanup,
}

/// SIGKILL at random points (seeded: set `GRANARY_CRASH_SEED` to replay a printed seed) of
/// syncs (alternating between two upstreams, mirror, so every sync makes a new version),
/// uploads, publishes and orphan cleanups. After each restart: every repository version has as
/// many units as its summary says (none half-visible, the latest included), and every artifact
/// row has its file with the right sha256 and size. After the last one, orphan cleanup leaves
/// exactly the files of artifact rows in storage, and no temporary file.
async fn killed_at_random_points_the_data_stays_whole(backend: Backend) {
    use rand::{Rng as _, SeedableRng as _};
    let seed: u64 = std::env::var("GRANARY_CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash test seed: GRANARY_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let upstreams = [
        Upstream::serve(&Fixture::generate(24, 31)).await,
        Upstream::serve(&Fixture::generate(24, 32)).await,
    ];
    for upstream in &upstreams {
        upstream.set_file_delay(Duration::from_millis(15));
    }
    let mut app = TestApp::start(backend).await;
    let repository = app.create_file_repository("crash").await;
    let mut remotes = Vec::new();
    for (index, upstream) in upstreams.iter().enumerate() {
        remotes.push(
            app.create_file_remote(
                &format!("crash-{index}"),
                &upstream.manifest_url(),
                "immediate",
            )
            .await,
        );
    }

    for kill in 0..KILLS {
        let work = match rng.random_range(0..4) {
            0 => Interrupted::Sync,
            1 => Interrupted::Upload,
            2 => Interrupted::Publish,
            _ => Interrupted::OrphanCleanup,
        };
        match work {
            Interrupted::Sync => {
                let remote = &remotes[kill % remotes.len()];
                app.dispatch(
                    &format!("{repository}sync/"),
                    json!({"remote": remote, "mirror": true}),
                )
                .await;
            }
            Interrupted::Upload => {
                let bytes: Vec<u8> = (0..rng.random_range(1..200_000))
                    .map(|_| rng.random())
                    .collect();
                let (status, body) = app
                    .post_multipart(
                        &format!("{API}/content/file/files/"),
                        &[
                            ("file", Some("upload.bin"), &bytes),
                            ("relative_path", None, format!("up/{kill}.bin").as_bytes()),
                            ("repository", None, repository.as_bytes()),
                        ],
                    )
                    .await;
                assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
            }
            Interrupted::Publish => {
                app.dispatch(
                    &format!("{API}/publications/file/file/"),
                    json!({"repository": repository}),
                )
                .await;
            }
            Interrupted::OrphanCleanup => {
                app.dispatch(
                    &format!("{API}/orphans/cleanup/"),
                    json!({"orphan_protection_time": 0}),
                )
                .await;
            }
        }
        let delay = rng.random_range(0..MAX_KILL_DELAY_MS);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        app.kill();
        app.restart().await;
        let context = format!("seed {seed}, kill {kill} ({work:?} after {delay} ms)");
        settle(&app, &context).await;
        assert_versions_are_whole(&app, &repository, &context).await;
        assert_artifact_files_are_whole(&app, &context).await;
    }

    // Everything that was left half-done is collected: content in no version, unused artifacts,
    // bytes no artifact records, temporary files of the killed processes.
    app.restart().await;
    app.clean_up_orphans(0).await;
    assert_artifact_files_are_whole(&app, &format!("seed {seed}, final")).await;
    let rows: BTreeSet<String> = app
        .sql("SELECT sha256 FROM artifacts", &[])
        .await
        .into_iter()
        .collect();
    let files = stored_files(&app.data_dir().join("artifacts"));
    assert_eq!(
        files, rows,
        "seed {seed}: storage holds exactly the artifacts' files"
    );
    let mut temporary = Vec::new();
    for entry in std::fs::read_dir(app.data_dir().join("tmp")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            temporary.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_none_or(|ext| ext != "lock") {
            temporary.push(path);
        }
    }
    assert_eq!(
        temporary,
        Vec::<std::path::PathBuf>::new(),
        "seed {seed}: temporary files left"
    );
    let process_dirs = std::fs::read_dir(app.data_dir().join("tmp"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(
        process_dirs, 1,
        "seed {seed}: only the live process's temporary directory"
    );
}

/// Issue #20: a wheel upload is acknowledged once its commit holds its two small files (the
/// wheel and its metadata, in the blob journal), before they are written to storage. A SIGKILL
/// right after the answer loses neither: whatever is not in its file yet is in the journal, and
/// the restarted server writes it out, empties the journal and serves both files whole.
async fn an_acknowledged_upload_survives_a_kill_before_its_files_are_written(backend: Backend) {
    let tools = crate::python::tools().await;
    let dir = tempfile::tempdir().unwrap();
    let (wheel, _) = build_demo_and_dep(&tools, dir.path());
    let wheel_bytes = std::fs::read(&wheel).unwrap();
    let wheel_name = "granary_demo-1.0-py3-none-any.whl";

    let mut app = TestApp::start(backend).await;
    crate::python::repository_and_distribution(&app, "durable", json!({})).await;
    let (status, body) = app
        .post_multipart(
            "/pypi/durable/legacy/",
            &[
                (":action", None, b"file_upload".as_slice()),
                ("protocol_version", None, b"1"),
                ("name", None, b"granary-demo"),
                ("version", None, b"1.0"),
                ("content", Some(wheel_name), &wheel_bytes),
            ],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    app.kill();

    // Each of the upload's files is in its file or in the journal, never in neither.
    let recorded = app.sql("SELECT sha256 FROM artifacts", &[]).await;
    assert_eq!(
        recorded.len(),
        2,
        "the wheel and its metadata: {recorded:?}"
    );
    let journaled: BTreeSet<String> = app
        .sql("SELECT sha256 FROM blob_journal", &[])
        .await
        .into_iter()
        .collect();
    for sha256 in &recorded {
        assert!(
            journaled.contains(sha256) || app.stored_artifact(sha256).exists(),
            "{sha256} is neither in the journal nor in storage"
        );
    }
    let unwritten = recorded
        .iter()
        .filter(|sha256| !app.stored_artifact(sha256).exists())
        .count();
    eprintln!("at the kill, {unwritten} of the 2 files were in the journal only");

    app.restart().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !app
        .sql("SELECT sha256 FROM blob_journal", &[])
        .await
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted server left the journal unmoved for a minute"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_artifact_files_are_whole(&app, "after the restart").await;
    let served = Downloads::new()
        .get(&app.url(&format!("/pypi/durable/packages/granary-demo/{wheel_name}")))
        .await
        .unwrap();
    assert!(served == wheel_bytes, "the wheel is served whole");
    let metadata = Downloads::new()
        .get(&app.url(&format!(
            "/pypi/durable/packages/granary-demo/{wheel_name}.metadata"
        )))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&metadata).contains("Name: granary-demo"));
}

/// Waits until the restarted server has run what was still queued at the kill (a task queued a
/// few milliseconds before it runs now, and makes its version) and failed what was running, so
/// the checks look at a settled state rather than race a version being made.
async fn settle(app: &TestApp, context: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while app
        .count(&format!("{API}/tasks/?state__in=waiting,running,canceling"))
        .await
        > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{context}: tasks still waiting or running two minutes after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every version of `repository` shows exactly the units its summary counts.
async fn assert_versions_are_whole(app: &TestApp, repository: &str, context: &str) {
    let versions = app
        .list_all(&format!("{repository}versions/?limit=1000"))
        .await;
    for version in &versions {
        let href = str_field(version, "pulp_href");
        let summarised = summary_count(version, "present", "file.file");
        let listed = app
            .count(&format!(
                "{API}/content/file/files/?repository_version={href}"
            ))
            .await;
        assert_eq!(
            listed, summarised,
            "{context}: {href} is half-visible: {version:#}"
        );
    }
    let latest = app.latest_version_href(repository).await;
    assert!(
        versions
            .iter()
            .any(|version| version["pulp_href"] == latest.as_str()),
        "{context}: the latest version {latest} is listed"
    );
}

/// Every artifact row's file is in storage with the row's sha256 and size.
async fn assert_artifact_files_are_whole(app: &TestApp, context: &str) {
    let rows = app
        .sql(
            "SELECT sha256 || ' ' || CAST(size AS TEXT) FROM artifacts",
            &[],
        )
        .await;
    for row in rows {
        let (sha256, size) = row.split_once(' ').unwrap();
        let bytes = std::fs::read(app.stored_artifact(sha256))
            .unwrap_or_else(|err| panic!("{context}: artifact {sha256} has no file: {err}"));
        assert_eq!(bytes.len().to_string(), size, "{context}: size of {sha256}");
        assert_eq!(sha256_hex(&bytes), sha256, "{context}: bytes of {sha256}");
    }
}

/// The names of the files under a storage root (`ab/cd/<sha256>`).
fn stored_files(root: &std::path::Path) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.insert(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    files
}

/// A server killed with SIGKILL in the middle of a sync comes back with that task marked failed
/// (saying its worker died), the repository still at version 0, and every artifact it lists
/// complete; a new sync then completes and everything downloads.
async fn kill_during_sync_then_restart(backend: Backend) {
    let fixture = Fixture::generate(60, 7);
    let upstream = Upstream::serve(&fixture).await;
    upstream.set_file_delay(Duration::from_millis(250));
    let mut app = TestApp::start(backend).await;

    let (repository, remote) = slow_repository(&app, &upstream).await;
    let task_href = app
        .dispatch(
            &format!("{repository}sync/"),
            json!({"remote": remote, "mirror": true}),
        )
        .await;
    wait_until_downloading(&app, &task_href, &upstream).await;

    app.kill();
    app.restart().await;

    let task = app.wait_task(&task_href).await;
    assert_eq!(
        task["state"], "failed",
        "a task whose process died is failed: {task:#}"
    );
    let description = error_description(&task);
    assert!(
        description.contains("worker") || description.contains("process"),
        "the error says the worker died: {description}"
    );
    let failed: Vec<String> = app
        .list_all(&format!("{API}/tasks/?state=failed&limit=1000"))
        .await
        .iter()
        .map(|task| str_field(task, "pulp_href").to_owned())
        .collect();
    assert!(
        failed.contains(&task_href),
        "{task_href} is listed as failed: {failed:?}"
    );
    assert_eq!(
        app.latest_version_href(&repository).await,
        format!("{repository}versions/0/")
    );
    assert_artifacts_are_complete(&app, &fixture).await;

    upstream.set_file_delay(Duration::ZERO);
    let task = app.sync(&repository, &remote, true).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let version = app.get_json(&format!("{repository}versions/1/")).await;
    assert_eq!(
        summary_count(&version, "present", "file.file"),
        60,
        "{version:#}"
    );

    assert_artifacts_are_complete(&app, &fixture).await;
    let artifacts = app.count(&format!("{API}/artifacts/")).await;
    assert_eq!(
        artifacts,
        fixture.entries().len() as u64,
        "one artifact per distinct file"
    );

    // Checked before publishing: the published PULP_MANIFEST is an artifact of its own.
    let base_url = app.publish_and_distribute(&repository, "after-crash").await;
    Downloads::new()
        .assert_all_served(&base_url, &fixture.files)
        .await;
}

/// Canceling a running sync through `PATCH {"state": "canceled"}` stops it: the task ends
/// `canceled`, the repository stays at version 0, and no partial artifact is listed.
async fn cancel_running_sync(backend: Backend) {
    let fixture = Fixture::generate(60, 8);
    let upstream = Upstream::serve(&fixture).await;
    upstream.set_file_delay(Duration::from_millis(250));
    let app = TestApp::start(backend).await;

    let (repository, remote) = slow_repository(&app, &upstream).await;
    let task_href = app
        .dispatch(
            &format!("{repository}sync/"),
            json!({"remote": remote, "mirror": false}),
        )
        .await;
    wait_until_downloading(&app, &task_href, &upstream).await;

    let (status, body) = app
        .patch_json(&task_href, &json!({"state": "canceled"}))
        .await;
    assert!(
        status.is_success(),
        "PATCH {task_href} answered {status}: {body}"
    );
    let task = app.wait_task(&task_href).await;
    assert_eq!(task["state"], "canceled", "{task:#}");
    assert_eq!(
        app.latest_version_href(&repository).await,
        format!("{repository}versions/0/")
    );
    assert_artifacts_are_complete(&app, &fixture).await;
    app.assert_status_ok().await;
}

/// A repository and an immediate remote downloading two files at a time from `upstream`.
async fn slow_repository(app: &TestApp, upstream: &Upstream) -> (String, String) {
    let remote = app
        .create(
            &format!("{API}/remotes/file/file/"),
            json!({
                "name": "slow",
                "url": upstream.manifest_url(),
                "policy": "immediate",
                "download_concurrency": 2,
            }),
        )
        .await;
    let repository = app.create_file_repository("slow").await;
    (repository, str_field(&remote, "pulp_href").to_owned())
}

/// Waits until the task is running and the upstream has been asked for at least two files.
async fn wait_until_downloading(app: &TestApp, task_href: &str, upstream: &Upstream) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let task: Value = app.get_json(task_href).await;
        assert!(
            !is_finished(&task),
            "the sync finished before it could be interrupted: {task:#}"
        );
        if task["state"] == "running" && upstream.file_requests() >= 2 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sync never started downloading: {task:#}, upstream saw {:?}",
            upstream.request_counts()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every artifact Granary lists is one of the upstream's files, whole: its (sha256, size) pair is
/// in the manifest.
async fn assert_artifacts_are_complete(app: &TestApp, fixture: &Fixture) {
    let expected: BTreeSet<(String, u64)> = fixture
        .files
        .iter()
        .map(|file| (file.sha256.clone(), file.size()))
        .collect();
    let artifacts = app.list_all(&format!("{API}/artifacts/?limit=1000")).await;
    for artifact in &artifacts {
        let pair = (
            str_field(artifact, "sha256").to_owned(),
            artifact["size"]
                .as_u64()
                .unwrap_or_else(|| panic!("no size: {artifact:#}")),
        );
        assert!(
            expected.contains(&pair),
            "artifact {artifact:#} is not a complete upstream file"
        );
    }
}
