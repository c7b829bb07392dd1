//! Durability: orphan cleanup spares an artifact stored again by an upload in flight, even one
//! first created long ago; a second process starting on the same data directory leaves the first
//! one's upload in flight alone.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::fixture::sha256_hex;
use crate::support::pulp::{API, str_field};
use crate::support::{AppOptions, Backend, TestApp};

sqlite_and_postgres!(orphan_cleanup_spares_an_artifact_uploaded_again);

/// Bytes of the files under `dir`, all depths (0 when there is none).
fn bytes_under(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => bytes_under(&entry.path()),
            _ => entry.metadata().map_or(0, |metadata| metadata.len()),
        })
        .sum()
}

/// Two processes on one data directory and database (scale-out on shared local storage). The
/// first is receiving an upload, its bytes half-way in its temporary directory, when the second
/// starts: the second's start-up removes only the temporary files of processes that are gone
/// (it used to wipe `<data-dir>/tmp`), so the upload completes and its artifact has its bytes.
/// PostgreSQL only: two processes on one SQLite database is not a supported deployment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_leaves_the_first_ones_upload_in_flight_alone() {
    let Some(postgres) = Backend::postgres_from_env() else {
        eprintln!("skipped: GRANARY_TEST_DATABASE_URL not set");
        return;
    };
    let first = TestApp::start(postgres.clone()).await;
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let boundary = "granary-durability";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let body = futures::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, std::io::Error>(chunk), receiver))
    });
    let (user, password) = first.credentials();
    let upload = first
        .anonymous()
        .post(first.url(&format!("{API}/artifacts/")))
        .basic_auth(user, Some(password))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let upload = tokio::spawn(upload);
    let (half, rest) = bytes.split_at(bytes.len() / 2);
    sender.send([head.as_bytes(), half].concat()).await.unwrap();
    // Until the server has staged part of the file (a guard against a hang, not a timing).
    let temporary = first.data_dir().join("tmp");
    let mut waited = 0;
    while bytes_under(&temporary) < half.len() as u64 / 2 {
        assert!(
            waited < 6000,
            "nothing was staged under {}",
            temporary.display()
        );
        waited += 1;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let options = AppOptions::default()
        .shared_database(first.database_url().expect("a PostgreSQL database"))
        .shared_data_dir(first.data_dir())
        .admin_password(password);
    let second = TestApp::start_with(postgres, options).await;
    second.assert_status_ok().await;
    sender
        .send([rest, format!("\r\n--{boundary}--\r\n").as_bytes()].concat())
        .await
        .unwrap();
    drop(sender);
    let answer = upload.await.unwrap().expect("the upload is answered");
    let status = answer.status();
    let artifact: serde_json::Value =
        serde_json::from_slice(&answer.bytes().await.unwrap()).expect("a JSON answer");
    assert_eq!(status, StatusCode::CREATED, "{artifact}");
    let sha256 = sha256_hex(&bytes);
    assert_eq!(artifact["sha256"], sha256.as_str(), "{artifact}");
    let stored = std::fs::read(first.stored_artifact(&sha256)).expect("the artifact's file");
    assert!(stored == bytes, "the stored file is the upload");
}

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
