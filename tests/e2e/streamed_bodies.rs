//! WIT 0.3.0's streamed request bodies and upload sessions end to end, with the `blobs` test
//! component (`tests/components/blobs`): a body stored by the host as it streams in, against the
//! digest the plugin expects; bytes appended to a session over several requests (one of them
//! chunked, from curl), across a restart and across serve processes on S3, then completed as one
//! artifact; sessions confined to their repository and to writers; the server's size limit and
//! idle expiry applied whatever the plugin does.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support::curl::{CurlResponse, Downloads};
use crate::support::pulp::API;
use crate::support::{AppOptions, Backend, TestApp};

sqlite_and_postgres!(
    a_body_is_stored_as_it_streams_against_its_digest,
    a_session_spans_requests_and_a_restart,
    a_session_completes_only_against_its_digest_and_can_be_cancelled,
    sessions_belong_to_their_repository_and_change_only_for_writers,
    bodies_and_sessions_past_the_upload_limit_are_refused,
    an_idle_session_expires,
    an_artifact_written_in_pieces_is_kept_against_its_digest_within_limits,
);

const BLOBS: &str = env!("GRANARY_TEST_BLOBS_WASM");

/// Makes a repository `name` with a distribution of its latest version at `base_path` (the
/// blobs plugin installed); returns the repository's href.
pub(crate) async fn blob_shelf(app: &TestApp, name: &str, base_path: &str) -> String {
    let repository = app
        .create(
            &format!("{API}/repositories/blobs/blobs/"),
            json!({"name": name}),
        )
        .await;
    let href = repository["pulp_href"].as_str().unwrap().to_owned();
    app.run_task(
        &format!("{API}/distributions/blobs/blobs/"),
        json!({"name": name, "base_path": base_path, "repository": href}),
    )
    .await;
    href
}

pub(crate) async fn install_blobs(app: &TestApp) {
    let bytes = std::fs::read(BLOBS).expect("the blobs component is built");
    let (status, plugin) = app.install_plugin(&bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{plugin:#}");
    assert_eq!(plugin["wit_version"], "0.3.0", "{plugin:#}");
}

/// An app with the blobs plugin and a shelf at `shelf`; returns it with the repository's href.
async fn app_with_shelf(backend: Backend, options: AppOptions) -> (TestApp, String) {
    let app = TestApp::start_with(backend, options).await;
    install_blobs(&app).await;
    let repository = blob_shelf(&app, "shelf", "shelf").await;
    (app, repository)
}

/// `len` bytes that differ from one offset to the next, so a misplaced chunk shows.
pub(crate) fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64 * 2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A request to the route `path` of the distribution at `base_path`, as the admin.
fn as_admin(
    app: &TestApp,
    method: reqwest::Method,
    base_path: &str,
    path: &str,
) -> reqwest::RequestBuilder {
    let (user, password) = app.credentials();
    app.anonymous()
        .request(method, app.url(&format!("/blobs/{base_path}/{path}")))
        .basic_auth(user, Some(password))
}

/// Sends `request`; returns the status, headers and body.
async fn send(
    request: reqwest::RequestBuilder,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let response = request.send().await.expect("the request is answered");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("the body").to_vec();
    (status, headers, body)
}

/// Sends `request`, whose body is large, and checks that it is refused with `status` before its
/// body is read. The server answers and closes the connection without reading the body, so a
/// client still writing it may see its write fail (the connection reset or its pipe broken)
/// before it reads the answer: that is the same refusal.
async fn assert_refused_before_the_body(request: reqwest::RequestBuilder, status: StatusCode) {
    match request.send().await {
        Ok(response) => assert_eq!(response.status(), status),
        Err(error) => {
            let first: &(dyn std::error::Error + 'static) = &error;
            let cut_off = std::iter::successors(Some(first), |cause| cause.source()).any(|cause| {
                cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
                    matches!(
                        io.kind(),
                        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                    )
                })
            });
            assert!(
                cut_off,
                "neither answered nor cut off while sending: {error:?}"
            );
        }
    }
}

/// Sends `bytes` to the shelf's route `path` with curl, as the admin, chunked when asked (a
/// stream of unknown length), asking first (`Expect: 100-continue`) as clients of large uploads
/// do: a body the server refuses on its announced length is then never sent.
async fn curl_send(
    app: &TestApp,
    method: &str,
    path: &str,
    bytes: &[u8],
    chunked: bool,
) -> CurlResponse {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), bytes).expect("write the body");
    let (user, password) = app.credentials();
    let credentials = format!("{user}:{password}");
    let data = format!("@{}", file.path().display());
    let mut arguments = vec![
        "-X",
        method,
        "-u",
        &credentials,
        "-H",
        "Expect: 100-continue",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &data,
    ];
    if chunked {
        arguments.extend(["-H", "Transfer-Encoding: chunked"]);
    }
    Downloads::new()
        .request(&app.url(&format!("/blobs/shelf/{path}")), &arguments)
        .await
}

/// Asserts that the refusal `body` names `field` (the JSON envelope's field errors).
fn assert_refused_on(body: &[u8], field: &str) {
    assert!(
        error_of(body)[field][0].is_string(),
        "a refusal on {field}: {}",
        String::from_utf8_lossy(body)
    );
}

/// The JSON error body of a refused request.
fn error_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("a JSON error: {}", String::from_utf8_lossy(body)))
}

/// Asserts a 400 on the field `digest` that names `digest`, the digest the bytes have.
fn assert_refused_on_digest(status: StatusCode, body: &[u8], digest: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error = error_of(body);
    assert!(
        error["digest"][0].as_str().unwrap().contains(digest),
        "the error names the digest the bytes have: {error:#}"
    );
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("a {name} header in {headers:?}"))
        .to_str()
        .unwrap()
}

/// Starts a session at `shelf`; returns its id.
pub(crate) async fn start_session(app: &TestApp) -> String {
    let (status, headers, body) =
        send(as_admin(app, reqwest::Method::POST, "shelf", "uploads/")).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    header(&headers, "upload-id").to_owned()
}

/// Appends `bytes` to session `id` at `offset`.
pub(crate) async fn append(
    app: &TestApp,
    id: &str,
    offset: u64,
    bytes: &[u8],
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    send(
        as_admin(
            app,
            reqwest::Method::PATCH,
            "shelf",
            &format!("uploads/{id}"),
        )
        .header("upload-offset", offset.to_string())
        .body(bytes.to_vec()),
    )
    .await
}

/// PUTs `bytes` as the blob `digest` at the shelf, as the admin.
async fn put_blob(
    app: &TestApp,
    digest: &str,
    bytes: &[u8],
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let path = format!("blobs/{digest}");
    send(as_admin(app, reqwest::Method::PUT, "shelf", &path).body(bytes.to_vec())).await
}

/// Completes session `id` against `digest`.
pub(crate) async fn complete(app: &TestApp, id: &str, digest: &str) -> (StatusCode, Vec<u8>) {
    let (status, _, body) = send(as_admin(
        app,
        reqwest::Method::PUT,
        "shelf",
        &format!("uploads/{id}?digest={digest}"),
    ))
    .await;
    (status, body)
}

/// What `GET uploads/<id>` at `base_path` answers: the session's size, or `None` (404).
pub(crate) async fn session_size(app: &TestApp, base_path: &str, id: &str) -> Option<u64> {
    let (status, headers, _) = send(
        app.anonymous()
            .get(app.url(&format!("/blobs/{base_path}/uploads/{id}"))),
    )
    .await;
    match status {
        StatusCode::NO_CONTENT => Some(header(&headers, "upload-size").parse().unwrap()),
        StatusCode::NOT_FOUND => None,
        other => panic!("GET uploads/{id} answered {other}"),
    }
}

/// The blob the shelf serves for `digest`, fetched anonymously with curl; `None` for a 404.
pub(crate) async fn served_blob(app: &TestApp, digest: &str) -> Option<Vec<u8>> {
    let response = Downloads::new()
        .request(&app.url(&format!("/blobs/shelf/blobs/{digest}")), &[])
        .await;
    match response.status {
        200 => Some(response.body),
        404 => None,
        other => panic!("GET blobs/{digest} answered {other}"),
    }
}

/// The repository's latest version href.
async fn latest_version(app: &TestApp, repository: &str) -> String {
    let (_, repository) = app.get(repository).await;
    repository["latest_version_href"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_body_is_stored_as_it_streams_against_its_digest(backend: Backend) {
    let (app, repository) = app_with_shelf(backend, AppOptions::default()).await;
    // Three times what a 0.2.0 plugin may receive in memory.
    let layer = bytes_of(6 << 20, 1);
    let digest = sha256(&layer);

    let anonymous = app
        .anonymous()
        .put(app.url(&format!("/blobs/shelf/blobs/{digest}")))
        .body(layer.clone());
    assert_refused_before_the_body(anonymous, StatusCode::UNAUTHORIZED).await;

    let before = latest_version(&app, &repository).await;
    let wrong = "0".repeat(64);
    let (status, _, body) = put_blob(&app, &wrong, &layer).await;
    assert_refused_on_digest(status, &body, &digest);
    assert_eq!(
        latest_version(&app, &repository).await,
        before,
        "nothing was added"
    );

    let (status, headers, _) = put_blob(&app, &digest, &layer).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(header(&headers, "location"), format!("blobs/{digest}"));
    assert_ne!(latest_version(&app, &repository).await, before);
    assert_eq!(
        served_blob(&app, &digest).await.as_deref(),
        Some(&layer[..])
    );
}

async fn a_session_spans_requests_and_a_restart(backend: Backend) {
    let (mut app, _) = app_with_shelf(backend, AppOptions::default()).await;
    let blob = bytes_of(3 << 20, 2);
    let (first, second) = blob.split_at(1 << 20);
    let id = start_session(&app).await;
    assert_eq!(session_size(&app, "shelf", &id).await, Some(0));

    let (status, headers, _) = append(&app, &id, 0, first).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(header(&headers, "upload-size"), (1 << 20).to_string());
    // A client that lost track is told where the session stands; nothing is kept.
    let (status, _, body) = append(&app, &id, 5, b"misplaced").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error = error_of(&body);
    assert!(
        error["offset"][0].as_str().unwrap().contains("1048576"),
        "{error:#}"
    );

    app.restart().await;
    assert_eq!(session_size(&app, "shelf", &id).await, Some(1 << 20));
    // The rest as curl sends a stream of unknown length: chunked, no Content-Length.
    let response = curl_send(&app, "PATCH", &format!("uploads/{id}"), second, true).await;
    assert_eq!(
        response.status,
        202,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("upload-size"), Some("3145728"));

    let digest = sha256(&blob);
    let (status, body) = complete(&app, &id, &digest).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(served_blob(&app, &digest).await.as_deref(), Some(&blob[..]));
    assert_eq!(
        session_size(&app, "shelf", &id).await,
        None,
        "the session ended"
    );
}

async fn a_session_completes_only_against_its_digest_and_can_be_cancelled(backend: Backend) {
    let (app, _) = app_with_shelf(backend, AppOptions::default()).await;
    let blob = bytes_of(300_000, 3);
    let digest = sha256(&blob);
    let id = start_session(&app).await;
    append(&app, &id, 0, &blob).await;

    let (status, body) = complete(&app, &id, &"f".repeat(64)).await;
    assert_refused_on_digest(status, &body, &digest);
    assert_eq!(served_blob(&app, &digest).await, None);
    assert_eq!(
        session_size(&app, "shelf", &id).await,
        Some(300_000),
        "a refused completion keeps the session"
    );
    let (status, body) = complete(&app, &id, &digest).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(served_blob(&app, &digest).await.as_deref(), Some(&blob[..]));

    let abandoned = start_session(&app).await;
    append(&app, &abandoned, 0, b"never mind").await;
    let cancel = |id: String| {
        send(as_admin(
            &app,
            reqwest::Method::DELETE,
            "shelf",
            &format!("uploads/{id}"),
        ))
    };
    assert_eq!(cancel(abandoned.clone()).await.0, StatusCode::NO_CONTENT);
    assert_eq!(session_size(&app, "shelf", &abandoned).await, None);
    assert_eq!(cancel(abandoned).await.0, StatusCode::NOT_FOUND);
    // Completed and cancelled, the sessions leave nothing in the upload area.
    let sessions = app.data_dir().join("uploads").join("sessions");
    let left: Vec<_> = std::fs::read_dir(&sessions)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", sessions.display());
}

async fn sessions_belong_to_their_repository_and_change_only_for_writers(backend: Backend) {
    let (app, _) = app_with_shelf(backend, AppOptions::default()).await;
    blob_shelf(&app, "other", "other").await;
    let id = start_session(&app).await;
    append(&app, &id, 0, b"shelf bytes").await;

    // Through another repository's distribution the session does not exist.
    assert_eq!(session_size(&app, "other", &id).await, None);
    let (status, _, body) = send(
        as_admin(
            &app,
            reqwest::Method::PATCH,
            "other",
            &format!("uploads/{id}"),
        )
        .header("upload-offset", "11")
        .body(b"more".to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_refused_on(&body, "id");
    assert_eq!(session_size(&app, "shelf", &id).await, Some(11));

    // Writes need credentials before a byte is read; a read may not start a session.
    let anonymous = app
        .anonymous()
        .patch(app.url(&format!("/blobs/shelf/uploads/{id}")))
        .body(b"more".to_vec());
    assert_eq!(send(anonymous).await.0, StatusCode::UNAUTHORIZED);
    let anonymous = app.anonymous().post(app.url("/blobs/shelf/uploads/"));
    assert_eq!(send(anonymous).await.0, StatusCode::UNAUTHORIZED);
    let (status, _, body) = send(as_admin(
        &app,
        reqwest::Method::GET,
        "shelf",
        "uploads/start",
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8_lossy(&body).contains("requests that may change the repository"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(session_size(&app, "shelf", &id).await, Some(11));
}

/// A body a little longer than the 1 MiB limit of the limit scenario.
const PAST_LIMIT: usize = (1 << 20) + (64 << 10);

async fn bodies_and_sessions_past_the_upload_limit_are_refused(backend: Backend) {
    let options = AppOptions::default().env("GRANARY_MAX_UPLOAD_BYTES", "1048576");
    let (app, repository) = app_with_shelf(backend, options).await;
    let count =
        |bytes: Vec<u8>| send(as_admin(&app, reqwest::Method::POST, "shelf", "count").body(bytes));

    let (status, _, body) = count(bytes_of(700_000, 4)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"700000", "the plugin read the whole body");
    // Past the limit, whether the length is announced (refused before the body is sent) or not
    // (refused as it passes the limit; a little past it, so that the client has sent it all and
    // reads the answer rather than a reset connection).
    for (length, chunked) in [(3 << 20, false), (PAST_LIMIT, true)] {
        let response = curl_send(&app, "POST", "count", &bytes_of(length, 4), chunked).await;
        assert_eq!(
            response.status,
            413,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
    }

    // The plugin's own limit: a field-level 400.
    let (status, _, body) =
        send(as_admin(&app, reqwest::Method::POST, "shelf", "note").body(vec![b'x'; 17])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_refused_on(&body, "body");

    // A body stored by the host is cut off at the limit, and nothing is kept.
    let before = latest_version(&app, &repository).await;
    let big = bytes_of(PAST_LIMIT, 5);
    let response = curl_send(&app, "PUT", &format!("blobs/{}", sha256(&big)), &big, true).await;
    assert_eq!(response.status, 413);
    assert_eq!(latest_version(&app, &repository).await, before);

    // Each append is within the limit; the session as a whole may not pass it.
    let id = start_session(&app).await;
    let part = bytes_of(600_000, 6);
    assert_eq!(append(&app, &id, 0, &part).await.0, StatusCode::ACCEPTED);
    let (status, _, body) = append(&app, &id, 600_000, &part).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_refused_on(&body, "size");
    assert_eq!(session_size(&app, "shelf", &id).await, Some(600_000));
}

async fn an_idle_session_expires(backend: Backend) {
    let options = AppOptions::default().env("GRANARY_UPLOAD_SESSION_TTL_SECS", "1");
    let (app, _) = app_with_shelf(backend, options).await;
    let id = start_session(&app).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(session_size(&app, "shelf", &id).await, None);
    let (status, _, body) = append(&app, &id, 0, b"too late").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_refused_on(&body, "id");
}

async fn an_artifact_written_in_pieces_is_kept_against_its_digest_within_limits(backend: Backend) {
    let (app, _) = app_with_shelf(backend, AppOptions::default()).await;
    let (user, password) = app.credentials();
    let client = reqwest::Client::new();
    let post = |path: &str, body: Vec<u8>| {
        client
            .post(app.url(&format!("/blobs/shelf/{path}")))
            .basic_auth(user, Some(password))
            .body(body)
    };
    // Three times what the SDK's writer sends the host at once.
    let bytes = bytes_of(3 << 20, 7);
    let digest = sha256(&bytes);
    let (status, _, body) = send(post(&format!("writers/1?digest={digest}"), bytes.clone())).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(body, digest.as_bytes());

    let wrong = "0".repeat(64);
    let (status, _, body) = send(post(&format!("writers/1?digest={wrong}"), bytes)).await;
    assert_refused_on_digest(status, &body, &digest);

    // Each open writer holds a staged file: a call may hold sixteen at once.
    let (status, _, _) = send(post("writers/16", b"x".to_vec())).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, body) = send(post("writers/17", b"x".to_vec())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8_lossy(&body).contains("at most 16 artifact writers"),
        "{}",
        String::from_utf8_lossy(&body)
    );

    // Not in a read, whoever asks.
    let read = client
        .get(app.url("/blobs/shelf/writers/1"))
        .basic_auth(user, Some(password));
    let (status, _, body) = send(read).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8_lossy(&body).contains("requests that may change the repository"),
        "{}",
        String::from_utf8_lossy(&body)
    );
}
