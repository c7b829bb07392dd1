//! Maintenance tasks: orphan cleanup deletes what no repository version or unit uses (and keeps
//! what is younger than the protection time), reclaim_space drops bytes a remote can serve again
//! (which the content app then fetches on demand), and repair downloads missing or corrupt
//! artifacts again.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::curl::Downloads;
use crate::support::fixture::sha256_hex;
use crate::support::pulp::{API, created_resources, str_field};
use crate::support::{Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    orphan_cleanup_deletes_orphans_and_keeps_protected_ones,
    reclaimed_content_is_downloaded_again_on_demand,
    repair_downloads_missing_and_corrupt_artifacts_again,
);

/// Uploads `bytes` as a file unit outside any repository; returns the unit's href.
async fn orphan_unit(app: &TestApp, relative_path: &str, bytes: &[u8]) -> String {
    let (status, accepted) = app
        .post_multipart(
            &format!("{API}/content/file/files/"),
            &[
                ("file", Some("upload.bin"), bytes),
                ("relative_path", None, relative_path.as_bytes()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let task = app.wait_task(str_field(&accepted, "task")).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    created_resources(&task)
        .into_iter()
        .find(|href| href.contains("/content/file/files/"))
        .unwrap_or_else(|| panic!("{task:#}"))
}

async fn exists(app: &TestApp, href: &str) -> bool {
    let (status, body) = app.get(href).await;
    match status {
        StatusCode::OK => true,
        StatusCode::NOT_FOUND => false,
        other => panic!("GET {href} answered {other}: {body}"),
    }
}

/// Content in no repository version and artifacts no unit uses are deleted, bytes included, once
/// they are older than `orphan_protection_time` minutes (default: a day, so a fresh upload that
/// is not in a repository yet survives); `content_hrefs` limits the cleanup to those units.
/// Content in a repository version stays.
async fn orphan_cleanup_deletes_orphans_and_keeps_protected_ones(backend: Backend) {
    let app = TestApp::start(backend).await;
    let repository = app.create_file_repository("kept").await;
    app.upload_content("file/files", &repository, "kept.txt", b"kept bytes")
        .await;
    let kept = app
        .file_content_in(&app.latest_version_href(&repository).await)
        .await;
    let kept = str_field(&kept[0], "pulp_href").to_owned();
    let first = orphan_unit(&app, "first.txt", b"first orphan").await;
    let second = orphan_unit(&app, "second.txt", b"second orphan").await;
    let (status, loose) = app
        .post_multipart(
            &format!("{API}/artifacts/"),
            &[("file", Some("loose.bin"), b"a loose artifact")],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{loose}");
    let loose = str_field(&loose, "pulp_href").to_owned();

    app.run_task(&format!("{API}/orphans/cleanup/"), json!({}))
        .await;
    for href in [&kept, &first, &second, &loose] {
        assert!(exists(&app, href).await, "{href} is younger than a day");
    }

    app.run_task(
        &format!("{API}/orphans/cleanup/"),
        json!({"content_hrefs": [first], "orphan_protection_time": 0}),
    )
    .await;
    assert!(!exists(&app, &first).await, "the named orphan is deleted");
    assert!(exists(&app, &second).await, "an orphan not named stays");
    assert!(
        exists(&app, &loose).await,
        "an artifact of no named unit stays"
    );
    let first_sha256 = sha256_hex(b"first orphan");
    assert_eq!(app.artifacts_with_sha256(&first_sha256).await, 0);
    assert!(
        !app.stored_artifact(&first_sha256).exists(),
        "its bytes are gone"
    );

    let task = app
        .run_task(
            &format!("{API}/orphans/cleanup/"),
            json!({"orphan_protection_time": 0}),
        )
        .await;
    assert!(!exists(&app, &second).await);
    assert!(!exists(&app, &loose).await);
    assert!(exists(&app, &kept).await, "content in a version stays");
    for bytes in [&b"second orphan"[..], b"a loose artifact"] {
        assert!(!app.stored_artifact(&sha256_hex(bytes)).exists());
    }
    assert!(app.stored_artifact(&sha256_hex(b"kept bytes")).exists());
    assert_eq!(report(&task, "clean-up.content")["done"], 1, "{task:#}");
    assert_eq!(report(&task, "clean-up.artifacts")["done"], 2, "{task:#}");
}

/// The progress report with this code.
fn report<'a>(task: &'a Value, code: &str) -> &'a Value {
    task["progress_reports"]
        .as_array()
        .and_then(|reports| reports.iter().find(|report| report["code"] == code))
        .unwrap_or_else(|| panic!("no {code} report: {task:#}"))
}

/// After an immediate sync, reclaiming space with the latest version on the keep list keeps the
/// bytes; without it, the bytes are dropped and the content stays. A client asking for a file
/// then gets it from the upstream, byte for byte, and Granary stores it again.
async fn reclaimed_content_is_downloaded_again_on_demand(backend: Backend) {
    let fixture = Fixture::generate(6, 21);
    let upstream = Upstream::serve(&fixture).await;
    let app = TestApp::start(backend).await;
    let downloads = Downloads::new();
    let remote = app
        .create_file_remote("reclaim", &upstream.manifest_url(), "immediate")
        .await;
    let repository = app.create_file_repository("reclaim").await;
    let task = app.sync(&repository, &remote, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let base_url = app.publish_and_distribute(&repository, "reclaim").await;
    let file = &fixture.files[4];
    assert_eq!(upstream.requests_for(&file.relative_path), 1);

    let latest = app.latest_version_href(&repository).await;
    app.run_task(
        &format!("{API}/repositories/reclaim_space/"),
        json!({"repo_hrefs": [repository], "repo_versions_keeplist": [latest]}),
    )
    .await;
    assert_eq!(app.artifacts_with_sha256(&file.sha256).await, 1, "kept");

    app.run_task(
        &format!("{API}/repositories/reclaim_space/"),
        json!({"repo_hrefs": [repository]}),
    )
    .await;
    assert_eq!(app.artifacts_with_sha256(&file.sha256).await, 0);
    assert!(
        !app.stored_artifact(&file.sha256).exists(),
        "the bytes are gone"
    );
    let units = app.file_content_in(&latest).await;
    assert_eq!(units.len(), fixture.files.len(), "the content stays");

    let bytes = downloads
        .get(&format!("{base_url}{}", file.relative_path))
        .await
        .expect("the file is served after reclaim");
    assert_eq!(sha256_hex(&bytes), file.sha256);
    assert_eq!(
        upstream.requests_for(&file.relative_path),
        2,
        "it came from the upstream"
    );
    assert_eq!(
        app.artifacts_with_sha256(&file.sha256).await,
        1,
        "and was stored again"
    );

    let (status, body) = app
        .post_json(
            &format!("{API}/repositories/reclaim_space/"),
            &json!({"repo_hrefs": []}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// One stored artifact deleted from disk and another overwritten with other bytes: repair finds
/// both, downloads them from the upstream again and says so in its progress reports. An
/// uploaded file no remote knows cannot be repaired, and is counted as such. A version's repair
/// without checksum verification only looks for missing files.
async fn repair_downloads_missing_and_corrupt_artifacts_again(backend: Backend) {
    let fixture = Fixture::generate(5, 33);
    let upstream = Upstream::serve(&fixture).await;
    let app = TestApp::start(backend).await;
    let remote = app
        .create_file_remote("repair", &upstream.manifest_url(), "immediate")
        .await;
    let repository = app.create_file_repository("repair").await;
    let task = app.sync(&repository, &remote, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    app.upload_content("file/files", &repository, "local.txt", b"uploaded here")
        .await;

    let missing = &fixture.files[1];
    let corrupt = &fixture.files[2];
    let uploaded = sha256_hex(b"uploaded here");
    std::fs::remove_file(app.stored_artifact(&missing.sha256)).expect("delete a stored file");
    std::fs::write(app.stored_artifact(&corrupt.sha256), b"rotten").expect("corrupt a file");
    std::fs::remove_file(app.stored_artifact(&uploaded)).expect("delete the uploaded file");

    let task = app
        .run_task(&format!("{API}/repair/"), json!({"verify_checksums": true}))
        .await;
    assert_eq!(report(&task, "repair.missing")["done"], 2, "{task:#}");
    assert_eq!(report(&task, "repair.corrupted")["done"], 1, "{task:#}");
    assert_eq!(report(&task, "repair.repaired")["done"], 2, "{task:#}");
    assert_eq!(report(&task, "repair.unrepairable")["done"], 1, "{task:#}");
    for file in [missing, corrupt] {
        let bytes = std::fs::read(app.stored_artifact(&file.sha256)).expect("stored again");
        assert_eq!(sha256_hex(&bytes), file.sha256, "{}", file.relative_path);
    }

    std::fs::remove_file(app.stored_artifact(&missing.sha256)).expect("delete it again");
    let version = app.latest_version_href(&repository).await;
    let task = app
        .run_task(
            &format!("{version}repair/"),
            json!({"verify_checksums": false}),
        )
        .await;
    assert_eq!(report(&task, "repair.missing")["done"], 2, "{task:#}");
    assert_eq!(report(&task, "repair.corrupted")["done"], 0, "{task:#}");
    assert_eq!(report(&task, "repair.repaired")["done"], 1, "{task:#}");
    assert!(app.stored_artifact(&missing.sha256).exists());
}
