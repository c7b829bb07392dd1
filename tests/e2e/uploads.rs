//! Chunked uploads (`uploads/`) and artifacts created over the REST API: chunks in any order,
//! retries, refused overlaps, the commit task's checks, content made from an uncommitted upload
//! as pulp-cli sends large files, and the digests checked on `artifacts/`.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::fixture::sha256_hex;
use crate::support::pulp::{API, created_resources, error_description, str_field};
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(
    chunks_in_any_order_with_a_retry_commit_to_one_artifact,
    a_wrong_sha256_fails_the_commit_and_stores_nothing,
    bad_chunks_are_refused,
    content_is_created_from_an_uncommitted_upload,
    artifact_digests_are_checked_against_the_bytes,
);

/// Deterministic bytes that differ from chunk to chunk.
fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Starts an upload of `size` bytes; returns its href.
async fn start_upload(app: &TestApp, size: usize) -> String {
    let upload = app
        .create(&format!("{API}/uploads/"), json!({"size": size}))
        .await;
    assert_eq!(upload["size"], size, "{upload:#}");
    assert!(upload["completed"].is_null(), "{upload:#}");
    for field in ["prn", "pulp_created", "pulp_last_updated"] {
        assert!(upload[field].is_string(), "{field} in {upload:#}");
    }
    str_field(&upload, "pulp_href").to_owned()
}

/// Sends `bytes[range]` as one chunk with its sha256, expecting 200.
async fn send(app: &TestApp, upload: &str, bytes: &[u8], range: std::ops::Range<usize>) {
    let chunk = &bytes[range.clone()];
    let reply = app
        .put_chunk(
            upload,
            chunk,
            range.start,
            bytes.len(),
            Some(&sha256_hex(chunk)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{range:?}: {}", reply.body);
    assert_eq!(reply.body["pulp_href"], upload, "{}", reply.body);
}

/// Three chunks sent last-first, the first one sent twice (a client retrying after a lost
/// answer), then a commit with the file's sha256: the task creates one artifact with the whole
/// file's size and digests, and the upload is gone.
async fn chunks_in_any_order_with_a_retry_commit_to_one_artifact(backend: Backend) {
    let app = TestApp::start(backend).await;
    let file = payload(2500, 7);
    let upload = start_upload(&app, file.len()).await;

    send(&app, &upload, &file, 2000..2500).await;
    send(&app, &upload, &file, 0..1000).await;
    send(&app, &upload, &file, 1000..2000).await;
    send(&app, &upload, &file, 0..1000).await;

    let detail = app.get_json(&upload).await;
    assert_eq!(
        detail["chunks"],
        json!([
            {"offset": 0, "size": 1000},
            {"offset": 1000, "size": 1000},
            {"offset": 2000, "size": 500},
        ]),
        "the retried chunk is stored once: {detail:#}"
    );

    let sha256 = sha256_hex(&file);
    let task = app
        .run_task(&format!("{upload}commit/"), json!({"sha256": sha256}))
        .await;
    let created = created_resources(&task);
    assert_eq!(created.len(), 1, "{task:#}");
    let artifact = app.get_json(&created[0]).await;
    assert_eq!(artifact["sha256"], sha256, "{artifact:#}");
    assert_eq!(artifact["size"], 2500, "{artifact:#}");
    {
        use sha2::Digest as _;
        assert_eq!(
            artifact["sha512"],
            hex::encode(sha2::Sha512::digest(&file)),
            "{artifact:#}"
        );
    }
    let md5 = str_field(&artifact, "md5");
    assert_eq!(
        app.count(&format!("{API}/artifacts/?md5={md5}")).await,
        1,
        "artifacts are found by md5"
    );
    let (status, _) = app.get(&upload).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a committed upload is deleted"
    );
}

/// A commit naming a sha256 the assembled bytes do not have fails its task with a message that
/// says so; no artifact is stored and the upload stays (the client may fix it and commit again).
/// A commit of an upload with a missing range fails the same way, naming the range.
async fn a_wrong_sha256_fails_the_commit_and_stores_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let file = payload(1500, 3);
    let upload = start_upload(&app, file.len()).await;
    send(&app, &upload, &file, 0..1000).await;

    let task_href = app
        .dispatch(
            &format!("{upload}commit/"),
            json!({"sha256": sha256_hex(&file)}),
        )
        .await;
    let task = app.wait_task(&task_href).await;
    assert_eq!(task["state"], "failed", "{task:#}");
    assert!(
        error_description(&task).contains("bytes 1000-1499"),
        "the error names the missing range: {task:#}"
    );

    send(&app, &upload, &file, 1000..1500).await;
    let wrong = sha256_hex(b"some other file");
    let task_href = app
        .dispatch(&format!("{upload}commit/"), json!({"sha256": wrong}))
        .await;
    let task = app.wait_task(&task_href).await;
    assert_eq!(task["state"], "failed", "{task:#}");
    let description = error_description(&task);
    assert!(
        description.contains("sha256 mismatch") && description.contains(&wrong),
        "the error says the digest did not match: {task:#}"
    );
    assert_eq!(app.artifacts_with_sha256(&sha256_hex(&file)).await, 0);
    assert_eq!(app.count(&format!("{API}/artifacts/")).await, 0);
    app.get_json(&upload).await;

    // Fixed by committing with the right digest.
    app.run_task(
        &format!("{upload}commit/"),
        json!({"sha256": sha256_hex(&file)}),
    )
    .await;
    assert_eq!(app.artifacts_with_sha256(&sha256_hex(&file)).await, 1);
}

/// A chunk overlapping another range, a chunk whose size is not its range's, one whose `sha256`
/// is not its own, one past the end, and one without `Content-Range` are all 400s; an upload can
/// be deleted; a commit without a sha256 is a 400 on that field.
async fn bad_chunks_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let file = payload(300, 11);
    let upload = start_upload(&app, file.len()).await;
    send(&app, &upload, &file, 0..100).await;

    let overlap = app.put_chunk(&upload, &file[50..150], 50, 300, None).await;
    assert_eq!(overlap.status, StatusCode::BAD_REQUEST, "{}", overlap.body);
    assert!(
        overlap.body["non_field_errors"][0]
            .as_str()
            .is_some_and(|message| message.contains("overlaps")),
        "{}",
        overlap.body
    );

    let wrong_digest = app
        .put_chunk(
            &upload,
            &file[100..200],
            100,
            300,
            Some(&sha256_hex(b"not this")),
        )
        .await;
    assert_eq!(wrong_digest.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong_digest.body["sha256"].is_array(),
        "{}",
        wrong_digest.body
    );

    let past_the_end = app.put_chunk(&upload, &file[0..100], 250, 300, None).await;
    assert_eq!(
        past_the_end.status,
        StatusCode::BAD_REQUEST,
        "{}",
        past_the_end.body
    );

    let other_total = app
        .put_chunk(&upload, &file[100..200], 100, 301, None)
        .await;
    assert_eq!(
        other_total.status,
        StatusCode::BAD_REQUEST,
        "{}",
        other_total.body
    );

    let (content_type, body) =
        crate::support::requests::multipart(&[("file", Some("chunk.bin"), &file[100..200])]);
    let (user, password) = app.credentials();
    let no_range = app
        .anonymous()
        .put(app.url(&upload))
        .basic_auth(user, Some(password))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_range.status(), StatusCode::BAD_REQUEST);

    let detail = app.get_json(&upload).await;
    assert_eq!(
        detail["chunks"],
        json!([{"offset": 0, "size": 100}]),
        "refused chunks are not kept: {detail:#}"
    );

    let (status, body) = app.post_json(&format!("{upload}commit/"), &json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["sha256"].is_array(), "{body}");

    assert_eq!(
        app.delete_href(&upload).await.status,
        StatusCode::NO_CONTENT
    );
    let (status, _) = app.get(&upload).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.count(&format!("{API}/uploads/")).await, 0);
}

/// pulp-cli uploads a large file in chunks and hands the uncommitted upload to
/// `content/file/files/` as `upload`: the task assembles it, creates the unit in the repository,
/// and deletes the upload.
async fn content_is_created_from_an_uncommitted_upload(backend: Backend) {
    let app = TestApp::start(backend).await;
    let repository = app.create_file_repository("chunked").await;
    let file = payload(4096, 5);
    let upload = start_upload(&app, file.len()).await;
    send(&app, &upload, &file, 2048..4096).await;
    send(&app, &upload, &file, 0..2048).await;

    let (status, accepted) = app
        .post_multipart(
            &format!("{API}/content/file/files/"),
            &[
                ("upload", None, upload.as_bytes()),
                ("relative_path", None, b"big/file.bin"),
                ("repository", None, repository.as_bytes()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let task = app.wait_task(str_field(&accepted, "task")).await;
    assert_eq!(task["state"], "completed", "{task:#}");

    let version = format!("{repository}versions/1/");
    assert!(created_resources(&task).contains(&version), "{task:#}");
    let units = app.file_content_in(&version).await;
    assert_eq!(units.len(), 1, "{units:#?}");
    assert_eq!(units[0]["relative_path"], "big/file.bin");
    let artifact = app.get_json(str_field(&units[0], "artifact")).await;
    assert_eq!(artifact["sha256"], sha256_hex(&file), "{artifact:#}");
    let (status, _) = app.get(&upload).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the upload was used up");
}

/// `artifacts/` checks every digest and the size a client sends against the bytes: a mismatch
/// is a 400 on that field and nothing is stored; the same bytes twice are a 400; an unused
/// artifact can be deleted (its bytes go too), one a unit uses cannot (409).
async fn artifact_digests_are_checked_against_the_bytes(backend: Backend) {
    use sha2::Digest as _;
    let app = TestApp::start(backend).await;
    let file = payload(777, 1);
    let sha256 = sha256_hex(&file);
    let sha384 = hex::encode(sha2::Sha384::digest(&file));

    let (status, body) = app
        .post_multipart(
            &format!("{API}/artifacts/"),
            &[
                ("file", Some("f.bin"), &file),
                ("sha384", None, sha256.as_bytes()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["sha384"][0], "The sha384 checksum did not match.",
        "{body}"
    );
    let (status, body) = app
        .post_multipart(
            &format!("{API}/artifacts/"),
            &[("file", Some("f.bin"), &file), ("size", None, b"778")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["size"].is_array(), "{body}");
    assert_eq!(
        app.artifacts_with_sha256(&sha256).await,
        0,
        "refused bytes are not stored"
    );

    let (status, artifact) = app
        .post_multipart(
            &format!("{API}/artifacts/"),
            &[
                ("file", Some("f.bin"), &file),
                ("size", None, b"777"),
                ("sha256", None, sha256.as_bytes()),
                ("sha384", None, sha384.as_bytes()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{artifact}");
    assert_eq!(artifact["sha384"], sha384);
    assert_eq!(
        artifact["sha1"],
        hex::encode(sha1::Sha1::digest(&file)),
        "{artifact:#}"
    );

    let (status, body) = app
        .post_multipart(
            &format!("{API}/artifacts/"),
            &[("file", Some("again.bin"), &file)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["non_field_errors"][0]
            .as_str()
            .is_some_and(|message| message.contains("already exists")),
        "{body}"
    );

    let href = str_field(&artifact, "pulp_href").to_owned();
    let stored = app.stored_artifact(&sha256);
    assert!(stored.exists(), "{} is stored", stored.display());
    assert_eq!(app.delete_href(&href).await.status, StatusCode::NO_CONTENT);
    assert!(!stored.exists(), "deleting the artifact deletes its bytes");
    assert_eq!(app.artifacts_with_sha256(&sha256).await, 0);

    let repository = app.create_file_repository("used").await;
    app.upload_content("file/files", &repository, "used.bin", &file)
        .await;
    let used = app
        .list_all(&format!("{API}/artifacts/?sha256={sha256}"))
        .await;
    assert_eq!(used.len(), 1);
    let reply = app.delete_href(str_field(&used[0], "pulp_href")).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
}

/// Scale-out (PostgreSQL and S3, two `serve` processes, one `worker`): the chunks of one upload
/// are sent to different serve processes, stored as objects of the S3 bucket under `uploads/`,
/// and assembled by the worker process; afterwards the bucket holds the artifact and no chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_sent_to_different_processes_are_assembled_through_s3() {
    let Some(Backend::Postgres { server_url }) = Backend::postgres_from_env() else {
        eprintln!("skipped: GRANARY_TEST_DATABASE_URL not set");
        return;
    };
    let cluster = crate::support::cluster::Cluster::start(&server_url, 2, 1).await;
    let (first, second) = (&cluster.serves[0], &cluster.serves[1]);
    // The first chunk is larger than what goes to S3 in one request, so it is stored in parts.
    let file = payload(9 * 1024 * 1024 + 4321, 42);
    let split = 9 * 1024 * 1024;
    let upload = start_upload(first, file.len()).await;
    send(second, &upload, &file, split..file.len()).await;
    send(first, &upload, &file, 0..split).await;

    let chunk_objects = |objects: &[(String, u64)]| {
        objects
            .iter()
            .filter(|(key, _)| key.starts_with("uploads/"))
            .map(|(_, size)| *size)
            .collect::<Vec<u64>>()
    };
    let mut stored = chunk_objects(&cluster.s3.objects().await);
    stored.sort();
    assert_eq!(
        stored,
        vec![(file.len() - split) as u64, split as u64],
        "each chunk is an object of the bucket"
    );

    let sha256 = sha256_hex(&file);
    let task = second
        .run_task(&format!("{upload}commit/"), json!({"sha256": sha256}))
        .await;
    assert_eq!(
        second.worker_of(&task).await,
        cluster.workers[0].name,
        "the worker process assembled the upload: {task:#}"
    );
    let objects = cluster.s3.objects().await;
    assert!(
        chunk_objects(&objects).is_empty(),
        "the chunks are deleted: {objects:?}"
    );
    assert!(
        objects
            .iter()
            .any(|(key, size)| key.ends_with(&sha256) && *size == file.len() as u64),
        "the artifact is in the bucket: {objects:?}"
    );
}
