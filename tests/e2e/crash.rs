//! Interrupted syncs: a server killed mid-sync, and a sync canceled through the API. Neither may
//! leave a half-made version or a partial artifact behind.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::app::is_finished;
use crate::support::curl::Downloads;
use crate::support::pulp::{API, error_description, str_field, summary_count};
use crate::support::{Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(kill_during_sync_then_restart, cancel_running_sync);

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
