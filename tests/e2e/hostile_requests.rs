//! Requests an attacker would send: huge or deep URLs, floods of distinct 404s, connections that
//! never finish their headers or bodies, bodies where none belongs, oversized bodies, fields and
//! uploads, and forged correlation ids. Each is refused with the right status (or its connection
//! closed) while the server's memory stays bounded and it keeps answering others.

use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::pulp::API;
use crate::support::{AppOptions, Backend, TestApp};

sqlite_and_postgres!(
    deep_long_url_is_414_with_bounded_memory,
    distinct_404s_do_not_grow_memory,
    slowloris_connection_is_closed,
    stalled_body_is_cut_off,
    get_with_a_body_is_refused_and_stores_nothing,
    huge_form_text_field_is_refused_early,
    oversized_json_and_names_are_refused,
    uploads_and_chunks_are_bounded,
    invalid_correlation_id_is_not_echoed,
);

/// Resident memory the server may gain over a scenario that, unbounded, cost it hundreds of MB.
const RSS_GROWTH_BOUND_KIB: u64 = 48 * 1024;

/// A safety net so a server that never closes fails the test instead of hanging it.
const NEVER: Duration = Duration::from_secs(120);

fn host_port(app: &TestApp) -> String {
    app.url("").trim_start_matches("http://").to_owned()
}

fn basic_auth(app: &TestApp) -> String {
    let (user, password) = app.credentials();
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// Reads until the server closes the connection; what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(NEVER, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&received).into_owned()
}

/// 32,000 segments in 64 KB: 414 from the API and the content app, without the memory the old
/// quadratic prefix expansion took; a deep path within the limits resolves to a plain 404.
async fn deep_long_url_is_414_with_bounded_memory(backend: Backend) {
    let app = TestApp::start(backend).await;
    let before = app.rss_kib();
    let deep = "a/".repeat(32_000);
    for prefix in ["/pulp/content/", &format!("{API}/repositories/")] {
        let response = app
            .anonymous()
            .get(app.url(&format!("{prefix}{deep}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::URI_TOO_LONG, "{prefix}");
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert!(body["detail"].as_str().unwrap().contains("URL"), "{body}");
    }
    let within = format!("/pulp/content/{}", "seg/".repeat(60));
    let response = app.anonymous().get(app.url(&within)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let grown = app.rss_kib().saturating_sub(before);
    assert!(grown < RSS_GROWTH_BOUND_KIB, "RSS grew by {grown} KiB");
    app.assert_status_ok().await;
}

/// 3,000 distinct anonymous 404s of 7 KB each are not kept: memory stays where it was.
async fn distinct_404s_do_not_grow_memory(backend: Backend) {
    let app = TestApp::start(backend).await;
    // Warm up the connection pool and the allocator before measuring.
    for n in 0..50 {
        let path = format!("/pulp/content/warm-{n}/x");
        app.anonymous().get(app.url(&path)).send().await.unwrap();
    }
    let before = app.rss_kib();
    let padding = "p".repeat(7_000);
    for n in 0..3_000 {
        let path = format!("/pulp/content/missing-{n}/{padding}");
        let response = app.anonymous().get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    let grown = app.rss_kib().saturating_sub(before);
    // Kept, the keys alone would be 21 MB.
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");
}

/// A client that sends half a request header is disconnected at the header timeout, and so is
/// a keep-alive connection that sends nothing more; others are served all the while.
async fn slowloris_connection_is_closed(backend: Backend) {
    let options = AppOptions::default().env("GRANARY_HEADER_READ_TIMEOUT_SECS", "1");
    let app = TestApp::start_with(backend, options).await;
    let mut slow = TcpStream::connect(host_port(&app)).await.unwrap();
    slow.write_all(format!("GET {API}/status/ HTTP/1.1\r\nHost: x\r\nX-Slow: ").as_bytes())
        .await
        .unwrap();
    app.assert_status_ok().await;
    let answer = read_until_closed(&mut slow).await;
    assert!(!answer.contains("200 OK"), "{answer}");

    let mut idle = TcpStream::connect(host_port(&app)).await.unwrap();
    idle.write_all(format!("GET {API}/status/ HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let answer = read_until_closed(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    app.assert_status_ok().await;
}

/// A body that stops arriving half-way is answered 408 and its connection closed.
async fn stalled_body_is_cut_off(backend: Backend) {
    let options = AppOptions::default().env("GRANARY_REQUEST_BODY_TIMEOUT_SECS", "1");
    let app = TestApp::start_with(backend, options).await;
    let mut stream = TcpStream::connect(host_port(&app)).await.unwrap();
    let head = format!(
        "POST {API}/repositories/file/file/ HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"name\": \"st",
        basic_auth(&app)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let (status, list) = app.get(&format!("{API}/repositories/file/file/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["count"], 0, "nothing was created");
}

async fn artifact_count(app: &TestApp) -> u64 {
    app.get_json(&format!("{API}/artifacts/")).await["count"]
        .as_u64()
        .unwrap()
}

/// A GET with a multipart body to the content app is refused before the body is read: no file
/// part becomes an artifact. The API refuses a HEAD with a body too.
async fn get_with_a_body_is_refused_and_stores_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let repository = app.create_file_repository("bodies").await;
    app.distribute_file("bodies", "bodies", json!({ "repository": repository }))
        .await;
    let before = artifact_count(&app).await;
    let boundary = "granary-hostile";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n{}\r\n--{boundary}--\r\n",
        "x".repeat(10_000)
    );
    let response = app
        .anonymous()
        .get(app.url("/pulp/content/bodies/anything"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert!(
        error.to_string().contains("may not carry a body"),
        "{error}"
    );
    assert_eq!(artifact_count(&app).await, before);
    let response = app
        .anonymous()
        .head(app.url(&format!("{API}/status/")))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

/// A 400 MiB form text field is refused once it passes the form's text budget: the server does
/// not read it all, and its memory does not grow by the field's size.
async fn huge_form_text_field_is_refused_early(backend: Backend) {
    let app = TestApp::start(backend).await;
    let repository = app.create_file_repository("forms").await;
    app.distribute_file("forms", "forms", json!({ "repository": repository }))
        .await;
    let before = app.rss_kib();
    let field_size: u64 = 400 << 20;
    let boundary = "granary-hostile";
    let part_head =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\n");
    let length = part_head.len() as u64 + field_size;
    let stream = TcpStream::connect(host_port(&app)).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /pulp/content/forms/upload HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n{part_head}",
        basic_auth(&app)
    );
    let sender = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![b'z'; 1 << 20];
        let mut sent = 0u64;
        while sent < field_size {
            if writer.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        Ok::<u64, std::io::Error>(sent)
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(NEVER, reader.read_to_end(&mut answer)).await;
    let sent = sender.await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 413"),
        "{answer}"
    );
    assert!(sent < field_size, "the server read the whole field");
    let grown = app.rss_kib().saturating_sub(before);
    assert!(grown < RSS_GROWTH_BOUND_KIB, "RSS grew by {grown} KiB");
    app.assert_status_ok().await;
}

/// A 3 MiB JSON body is 413 (not axum's 400), a 300-character name and an overlong label are
/// 400 on their field, and a base path deeper than a distribution may have is 400 on base_path.
async fn oversized_json_and_names_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let repositories = format!("{API}/repositories/file/file/");
    let big = json!({ "name": "big", "description": "d".repeat(3 << 20) });
    let (status, body) = app.post_json(&repositories, &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["detail"].is_string(), "{:.300}", body.to_string());
    let (status, body) = app
        .post_json(&repositories, &json!({ "name": "n".repeat(300) }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["name"].is_array(), "{body}");
    let labelled = json!({ "name": "l", "pulp_labels": { "k": "v".repeat(5000) } });
    let (status, body) = app.post_json(&repositories, &labelled).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["pulp_labels"].is_array(), "{body}");
    let deep = json!({ "name": "deep", "base_path": "d/".repeat(17) });
    let (status, body) = app
        .post_json(&format!("{API}/distributions/file/file/"), &deep)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["base_path"].is_array(), "{body}");
}

/// Uploads may not declare more than the maximum upload size, and a chunk may not reach past
/// the upload's size or carry more than its range.
async fn uploads_and_chunks_are_bounded(backend: Backend) {
    let options = AppOptions::default().env("GRANARY_MAX_UPLOAD_BYTES", "100000");
    let app = TestApp::start_with(backend, options).await;
    let (status, body) = app
        .post_json(&format!("{API}/uploads/"), &json!({ "size": 100_001 }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["size"].is_array(), "{body}");
    let (status, body) = app
        .post_json(
            &format!("{API}/uploads/"),
            &json!({ "size": i64::MAX.to_string() }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, upload) = app
        .post_json(&format!("{API}/uploads/"), &json!({ "size": 100 }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{upload}");
    let href = upload["pulp_href"].as_str().unwrap();
    let put = |range: &str, bytes: Vec<u8>| {
        let (user, password) = app.credentials();
        let boundary = "granary-chunk";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"chunk\"\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        app.anonymous()
            .put(app.url(href))
            .basic_auth(user, Some(password))
            .header("content-range", range)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
    };
    let past = put("bytes 90-119/100", vec![1; 30]).await.unwrap();
    assert_eq!(past.status(), StatusCode::BAD_REQUEST);
    let longer = put("bytes 0-9/100", vec![1; 5_000]).await.unwrap();
    assert_eq!(longer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let fits = put("bytes 0-9/100", vec![1; 10]).await.unwrap();
    assert_eq!(fits.status(), StatusCode::OK);
}

/// A forged Correlation-ID is replaced by a generated one; a plain token is echoed.
async fn invalid_correlation_id_is_not_echoed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sent_back = |id: String| {
        let request = app
            .anonymous()
            .get(app.url(&format!("{API}/status/")))
            .header("correlation-id", id);
        async move {
            let response = request.send().await.unwrap();
            response.headers()["correlation-id"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    let good = "build-42.step_7".to_owned();
    assert_eq!(sent_back(good.clone()).await, good);
    for forged in ["<script>alert(1)</script>".to_owned(), "x".repeat(65)] {
        let echoed = sent_back(forged.clone()).await;
        assert_ne!(echoed, forged);
        assert_eq!(echoed.len(), 32, "{echoed}");
        assert!(
            echoed.bytes().all(|byte| byte.is_ascii_hexdigit()),
            "{echoed}"
        );
    }
}
