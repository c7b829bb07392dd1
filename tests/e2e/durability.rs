//! Durability: orphan cleanup spares an artifact stored again by an upload in flight, even one
//! first created long ago.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::fixture::sha256_hex;
use crate::support::pulp::{API, str_field};
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(orphan_cleanup_spares_an_artifact_uploaded_again);

/// An artifact created long ago and orphaned is uploaded again (a chunked upload committed, as
/// pulp-cli does before it creates the content): the artifact row is the old one, with its old
/// `created`. Orphan cleanup with a protection time running between that upload and the content
/// that references it must not delete it; the content is then created from it and its bytes
/// download.
async fn orphan_cleanup_spares_an_artifact_uploaded_again(backend: Backend) {
    let app = TestApp::start(backend).await;
    let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sha256 = sha256_hex(&bytes);
    let (status, artifact) = app
        .post_multipart(
            &format!("{API}/artifacts/"),
            &[("file", Some("a.bin"), &bytes)],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{artifact}");
    let artifact_href = str_field(&artifact, "pulp_href").to_owned();
    // As if it had been stored two days ago and orphaned since (rows of older Granary versions
    // have no `last_seen`).
    app.sql(
        "UPDATE artifacts SET created = '2000-01-01T00:00:00.000000Z', last_seen = NULL WHERE sha256 = $1",
        &[&sha256],
    )
    .await;

    let upload = app
        .create(&format!("{API}/uploads/"), json!({"size": bytes.len()}))
        .await;
    let upload = str_field(&upload, "pulp_href").to_owned();
    let reply = app
        .put_chunk(&upload, &bytes, 0, bytes.len(), Some(&sha256))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let task = app
        .run_task(&format!("{upload}commit/"), json!({"sha256": sha256}))
        .await;
    assert_eq!(task["state"], "completed", "{task:#}");

    app.clean_up_orphans(60).await;
    let (status, body) = app.get(&artifact_href).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the artifact stored again is kept: {body}"
    );
    let stored = std::fs::read(app.stored_artifact(&sha256)).expect("its file");
    assert_eq!(stored, bytes);

    // Cleanup without protection still collects it while nothing uses it.
    app.clean_up_orphans(0).await;
    assert_eq!(app.get(&artifact_href).await.0, StatusCode::NOT_FOUND);
}
