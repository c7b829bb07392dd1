//! The REST API's own rules: who may call it, and what it refuses.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::pulp::API;
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(
    api_requires_authentication,
    duplicate_repository_name_is_rejected
);

/// The status endpoint is public; everything else under `/pulp/api/v3/` answers 401 without
/// credentials or with a wrong password, and 200 with the admin's.
async fn api_requires_authentication(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.anonymous();
    let repositories = app.url(&format!("{API}/repositories/file/file/"));

    let status = client
        .get(app.url(&format!("{API}/status/")))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), StatusCode::OK);

    let anonymous = client.get(&repositories).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let (user, _) = app.credentials();
    let wrong = client
        .get(&repositories)
        .basic_auth(user, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let (user, password) = app.credentials();
    let admin = client
        .get(&repositories)
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::OK);
}

/// A second repository with a taken name is refused with 400 and an error on the `name` field.
async fn duplicate_repository_name_is_rejected(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.create_file_repository("twice").await;
    let (status, body) = app
        .post_json(
            &format!("{API}/repositories/file/file/"),
            &json!({"name": "twice"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["name"].is_array(),
        "the error is on the name field: {body}"
    );
}

/// `granary serve` with no flags at all, as the README runs it: the default data directory is
/// relative (`./granary-data`), it is created, a password is generated and printed, and the
/// server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_with_the_default_relative_data_dir() {
    use std::io::BufRead as _;
    let cwd = tempfile::tempdir().expect("a working directory");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_granary"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(cwd.path())
        .env_remove("GRANARY_ADMIN_PASSWORD")
        .env_remove("GRANARY_DATA_DIR")
        .env_remove("GRANARY_DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn granary");
    let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let lines = tokio::task::spawn_blocking(move || {
        let mut printed = Vec::new();
        for line in stdout.lines().map_while(Result::ok) {
            let listening = line.starts_with("granary listening on ");
            printed.push(line);
            if listening {
                break;
            }
        }
        printed
    });
    let printed = tokio::time::timeout(std::time::Duration::from_secs(60), lines)
        .await
        .expect("the server started within 60 s")
        .expect("read stdout");
    assert!(
        printed
            .iter()
            .any(|line| line.contains("Generated password for user 'admin'")),
        "{printed:?}"
    );
    assert!(
        printed
            .last()
            .is_some_and(|line| line.starts_with("granary listening on ")),
        "the server is listening: {printed:?}"
    );
    assert!(
        cwd.path().join("granary-data/granary.db").exists(),
        "the data directory was created"
    );
    let _ = child.kill();
    let _ = child.wait();
}
