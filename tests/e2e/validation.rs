//! An upstream that lies or is malformed makes the sync fail, says why, and leaves the
//! repository and the artifact store as they were.

use crate::support::fixture::{FixtureFile, sha256_hex};
use crate::support::pulp::error_description;
use crate::support::{Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    wrong_digest_fails_sync_and_keeps_version,
    wrong_size_fails_sync_and_keeps_version,
    malformed_manifest_fails_with_line_number,
);

/// When the manifest promises a sha256 the downloaded bytes do not have, the immediate sync
/// fails naming the file, the repository stays at version 0, and the bytes are not kept.
async fn wrong_digest_fails_sync_and_keeps_version(backend: Backend) {
    let fixture = Fixture::generate(20, 4);
    let liar = &fixture.files[5];
    let manifest = manifest_with(&fixture, liar, |file| {
        format!(
            "{},{},{}",
            file.relative_path,
            sha256_hex(b"something else"),
            file.size()
        )
    });
    sync_must_fail_over(backend, &fixture, liar, manifest).await;
}

/// When the manifest promises a size the downloaded bytes do not have (the digest being right),
/// the immediate sync fails naming the file, the repository stays at version 0, and the bytes are
/// not kept.
async fn wrong_size_fails_sync_and_keeps_version(backend: Backend) {
    let fixture = Fixture::generate(20, 5);
    let liar = &fixture.files[5];
    let manifest = manifest_with(&fixture, liar, |file| {
        format!("{},{},{}", file.relative_path, file.sha256, file.size() + 1)
    });
    sync_must_fail_over(backend, &fixture, liar, manifest).await;
}

/// A manifest line that is not `relative_path,sha256,size` fails the sync with an error that
/// points at the line, and no version is created.
async fn malformed_manifest_fails_with_line_number(backend: Backend) {
    let fixture = Fixture::generate(4, 6);
    let lines: Vec<String> = fixture
        .files
        .iter()
        .map(FixtureFile::manifest_line)
        .collect();
    let manifest = format!("{}\n{}\nonly,two\n{}\n", lines[0], lines[1], lines[2]);
    let upstream = Upstream::serve_with_manifest(&fixture.files, manifest).await;
    let app = TestApp::start(backend).await;

    let remote = app
        .create_file_remote("broken", &upstream.manifest_url(), "immediate")
        .await;
    let repository = app.create_file_repository("broken").await;
    let task = app.sync(&repository, &remote, false).await;

    assert_eq!(task["state"], "failed", "{task:#}");
    let description = error_description(&task);
    assert!(
        description.contains("line 3"),
        "the error names line 3: {description}"
    );
    assert_eq!(
        app.latest_version_href(&repository).await,
        format!("{repository}versions/0/")
    );
}

/// The fixture's honest manifest with `liar`'s line replaced.
fn manifest_with(
    fixture: &Fixture,
    liar: &FixtureFile,
    lie: impl Fn(&FixtureFile) -> String,
) -> String {
    fixture
        .files
        .iter()
        .map(|file| {
            let line = if file.relative_path == liar.relative_path {
                lie(file)
            } else {
                file.manifest_line()
            };
            line + "\n"
        })
        .collect()
}

async fn sync_must_fail_over(
    backend: Backend,
    fixture: &Fixture,
    liar: &FixtureFile,
    manifest: String,
) {
    let upstream = Upstream::serve_with_manifest(&fixture.files, manifest).await;
    let app = TestApp::start(backend).await;

    let remote = app
        .create_file_remote("liar", &upstream.manifest_url(), "immediate")
        .await;
    let repository = app.create_file_repository("liar").await;
    let task = app.sync(&repository, &remote, false).await;

    assert_eq!(task["state"], "failed", "{task:#}");
    let description = error_description(&task);
    assert!(
        description.contains(&liar.relative_path.to_lowercase()),
        "the error names {}: {description}",
        liar.relative_path
    );
    assert_eq!(
        app.latest_version_href(&repository).await,
        format!("{repository}versions/0/"),
        "a failed sync creates no version"
    );
    assert_eq!(
        app.artifacts_with_sha256(&liar.sha256).await,
        0,
        "bytes that do not match their manifest line are not stored"
    );
}
