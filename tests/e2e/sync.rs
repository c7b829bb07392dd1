//! Syncing a file repository from an upstream `PULP_MANIFEST` with each download policy, then
//! publishing, distributing and downloading it with curl.

use std::collections::BTreeSet;

use crate::support::curl::Downloads;
use crate::support::fixture::parse_manifest;
use crate::support::pulp::{created_resources, str_field, summary_count};
use crate::support::{Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    sync_immediate_publish_distribute_download,
    sync_on_demand_fetches_on_first_request,
    sync_streamed_is_not_stored,
);

/// An immediate sync of a few hundred files creates version 1 holding exactly the upstream's
/// files; once published and distributed, curl gets every file byte for byte, the published
/// `PULP_MANIFEST` lists them, HEAD, Range and conditional requests behave, a mirror resync of
/// an unchanged upstream creates no version, and files are still served with the upstream gone.
async fn sync_immediate_publish_distribute_download(backend: Backend) {
    let fixture = Fixture::generate(300, 1);
    let mut upstream = Upstream::serve(&fixture).await;
    let app = TestApp::start(backend).await;
    let downloads = Downloads::new();

    let remote = app
        .create_file_remote("upstream", &upstream.manifest_url(), "immediate")
        .await;
    let repository = app.create_file_repository("files").await;

    let task = app.sync(&repository, &remote, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let version_1 = format!("{repository}versions/1/");
    assert!(
        created_resources(&task).contains(&version_1),
        "the sync reports the version it created: {task:#}"
    );
    assert_eq!(app.latest_version_href(&repository).await, version_1);
    let version = app.get_json(&version_1).await;
    assert_eq!(version["number"], 1, "{version:#}");
    assert_eq!(
        summary_count(&version, "present", "file.file"),
        300,
        "{version:#}"
    );
    assert_eq!(
        summary_count(&version, "added", "file.file"),
        300,
        "{version:#}"
    );

    let content: BTreeSet<(String, String)> = app
        .file_content_in(&version_1)
        .await
        .iter()
        .map(|unit| {
            assert!(
                unit["artifact"].is_string(),
                "immediate content has an artifact: {unit:#}"
            );
            (
                str_field(unit, "relative_path").to_owned(),
                str_field(unit, "sha256").to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = fixture
        .files
        .iter()
        .map(|f| (f.relative_path.clone(), f.sha256.clone()))
        .collect();
    assert_eq!(
        content, expected,
        "version 1 holds exactly the upstream's files"
    );

    let base_url = app.publish_and_distribute(&repository, "files").await;
    downloads.assert_all_served(&base_url, &fixture.files).await;

    let manifest = downloads
        .get(&format!("{base_url}PULP_MANIFEST"))
        .await
        .expect("the publication has a PULP_MANIFEST");
    assert_eq!(
        parse_manifest(&String::from_utf8(manifest).expect("the manifest is UTF-8")),
        fixture.entries(),
        "the published PULP_MANIFEST lists every file with its digest and size"
    );

    let large = fixture.large_file();
    let large_url = format!("{base_url}{}", large.relative_path);
    let etag = format!("\"{}\"", large.sha256);

    let head = downloads.request(&large_url, &["-I"]).await;
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(
        head.header("content-length"),
        Some(large.size().to_string().as_str()),
        "{head:?}"
    );
    assert_eq!(head.header("etag"), Some(etag.as_str()), "{head:?}");

    let (first, last) = (1000_usize, 1000 + 512 * 1024 - 1);
    let range = downloads
        .request(&large_url, &["-r", &format!("{first}-{last}")])
        .await;
    assert_eq!(range.status, 206, "{:?}", range.headers);
    assert_eq!(
        range.header("content-range"),
        Some(format!("bytes {first}-{last}/{}", large.size()).as_str()),
        "{:?}",
        range.headers
    );
    assert!(
        range.body == large.bytes[first..=last],
        "the range body is bytes {first}-{last} of the file ({} bytes received)",
        range.body.len()
    );

    let unchanged = downloads
        .request(&large_url, &["-H", &format!("If-None-Match: {etag}")])
        .await;
    assert_eq!(unchanged.status, 304, "{:?}", unchanged.headers);
    assert!(unchanged.body.is_empty(), "304 has no body");

    let missing = downloads
        .request(&format!("{base_url}no/such/file.bin"), &[])
        .await;
    assert_eq!(missing.status, 404, "{:?}", missing.headers);

    let resync = app.sync(&repository, &remote, true).await;
    assert_eq!(resync["state"], "completed", "{resync:#}");
    assert_eq!(
        created_resources(&resync),
        Vec::<String>::new(),
        "a sync that changes nothing creates nothing: {resync:#}"
    );
    assert_eq!(app.latest_version_href(&repository).await, version_1);

    upstream.stop().await;
    let some: Vec<_> = fixture.files.iter().step_by(50).cloned().collect();
    downloads.assert_all_served(&base_url, &some).await;
    downloads
        .assert_all_served(&base_url, std::slice::from_ref(large))
        .await;
}

/// An on-demand sync reads only the manifest; each file is fetched from the upstream the first
/// time a client asks for it, exactly once, and from then on served from Granary's storage even
/// when the upstream is gone.
async fn sync_on_demand_fetches_on_first_request(backend: Backend) {
    let fixture = Fixture::generate(300, 2);
    let mut upstream = Upstream::serve(&fixture).await;
    let app = TestApp::start(backend).await;
    let downloads = Downloads::new();

    let remote = app
        .create_file_remote("upstream", &upstream.manifest_url(), "on_demand")
        .await;
    let repository = app.create_file_repository("lazy").await;
    let task = app.sync(&repository, &remote, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let version = app.get_json(&format!("{repository}versions/1/")).await;
    assert_eq!(
        summary_count(&version, "present", "file.file"),
        300,
        "{version:#}"
    );
    assert_eq!(
        upstream.manifest_requests(),
        1,
        "{:?}",
        upstream.request_counts()
    );
    assert_eq!(
        upstream.file_requests(),
        0,
        "an on-demand sync downloads no file: {:?}",
        upstream.request_counts()
    );

    let base_url = app.publish_and_distribute(&repository, "lazy").await;
    downloads.assert_all_served(&base_url, &fixture.files).await;
    let not_once: Vec<String> = fixture
        .files
        .iter()
        .filter(|file| upstream.requests_for(&file.relative_path) != 1)
        .map(|file| {
            format!(
                "{}: {}",
                file.relative_path,
                upstream.requests_for(&file.relative_path)
            )
        })
        .collect();
    assert!(
        not_once.is_empty(),
        "each file is fetched exactly once: {not_once:?}"
    );

    wait_until_stored(&app, &fixture).await;
    upstream.stop().await;
    downloads.assert_all_served(&base_url, &fixture.files).await;
}

/// A streamed remote's files are fetched from the upstream on every request and never become
/// artifacts, so they download correctly while the upstream is up and not at all once it is gone.
async fn sync_streamed_is_not_stored(backend: Backend) {
    let fixture = Fixture::generate(40, 3);
    let mut upstream = Upstream::serve(&fixture).await;
    let app = TestApp::start(backend).await;
    let downloads = Downloads::new();

    let remote = app
        .create_file_remote("upstream", &upstream.manifest_url(), "streamed")
        .await;
    let repository = app.create_file_repository("streamed").await;
    let task = app.sync(&repository, &remote, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(
        upstream.file_requests(),
        0,
        "{:?}",
        upstream.request_counts()
    );

    let base_url = app.publish_and_distribute(&repository, "streamed").await;
    downloads.assert_all_served(&base_url, &fixture.files).await;
    downloads.assert_all_served(&base_url, &fixture.files).await;
    let not_twice: Vec<String> = fixture
        .files
        .iter()
        .filter(|file| upstream.requests_for(&file.relative_path) != 2)
        .map(|file| {
            format!(
                "{}: {}",
                file.relative_path,
                upstream.requests_for(&file.relative_path)
            )
        })
        .collect();
    assert!(
        not_twice.is_empty(),
        "two downloads, two upstream requests each: {not_twice:?}"
    );

    for file in &fixture.files {
        assert_eq!(
            app.artifacts_with_sha256(&file.sha256).await,
            0,
            "streamed content is not stored: {}",
            file.relative_path
        );
    }

    upstream.stop().await;
    let large = fixture.large_file();
    let gone = downloads
        .get(&format!("{base_url}{}", large.relative_path))
        .await;
    assert!(
        gone.is_err(),
        "with the upstream gone a streamed file cannot be served"
    );
}

/// Waits until every file of `fixture` is an artifact: an on-demand download may finish saving
/// just after the client got its last byte.
async fn wait_until_stored(app: &TestApp, fixture: &Fixture) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut missing: Vec<&str> = fixture.files.iter().map(|f| f.sha256.as_str()).collect();
    while !missing.is_empty() {
        let mut still_missing = Vec::new();
        for sha256 in missing {
            if app.artifacts_with_sha256(sha256).await == 0 {
                still_missing.push(sha256);
            }
        }
        missing = still_missing;
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} downloaded files never became artifacts, e.g. sha256 {}",
            missing.len(),
            missing[0]
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
