//! Issue #17, item 8: a remote's credentials (`password`, `proxy_password`, `client_key`,
//! `headers`) are stored sealed with a key kept outside the database. A sync still sends them;
//! the database, read as a thief would (the SQLite files, a PostgreSQL query), holds none of
//! them; a server started with another key refuses to start rather than fail later.

use std::process::Stdio;

use serde_json::json;

use crate::support::pulp::{API, str_field};
use crate::support::upstream::Required;
use crate::support::{Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(credentials_are_sealed_at_rest_and_still_sent,);

const PASSWORD: &str = "hunter2-upstream-password";
const TOKEN: &str = "tok-upstream-secret-4711";

/// Everything the database holds, as text: the SQLite files of the data directory, or a
/// PostgreSQL dump of the remotes.
fn stored(app: &TestApp) -> String {
    match app.database_url() {
        None => std::fs::read_dir(app.data_dir())
            .expect("the data directory")
            .filter_map(Result::ok)
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("granary.db")
            })
            .map(|entry| {
                String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned()
            })
            .collect(),
        Some(url) => {
            let output = std::process::Command::new("psql")
                .args([url, "-At", "-c", "SELECT password, headers FROM remotes"])
                .output()
                .expect("run psql");
            assert!(output.status.success(), "psql: {output:?}");
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
    }
}

async fn credentials_are_sealed_at_rest_and_still_sent(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let upstream = Upstream::serve(&Fixture::generate(2, 5)).await;
    upstream.require(Required {
        basic_auth: ("mirror".into(), PASSWORD.into()),
        header: ("x-token".into(), TOKEN.into()),
    });
    let remote = app
        .create(
            &format!("{API}/remotes/file/file/"),
            json!({
                "name": "private", "url": upstream.manifest_url(), "policy": "immediate",
                "username": "mirror", "password": PASSWORD, "headers": [{"x-token": TOKEN}],
            }),
        )
        .await;
    let remote = str_field(&remote, "pulp_href").to_owned();
    let repository = app.create_file_repository("private").await;
    let task = app.sync(&repository, &remote, false).await;
    assert_eq!(
        task["state"], "completed",
        "the credentials were sent: {task:#}"
    );
    let shown = app.get_json(&remote).await;
    assert_eq!(shown["headers"], json!([{"x-token": TOKEN}]), "{shown:#}");

    let dump = stored(&app);
    assert!(
        dump.contains("granary-sealed:v1:"),
        "the secrets are stored sealed"
    );
    assert!(
        !dump.contains(PASSWORD),
        "the password is not stored in the clear"
    );
    assert!(
        !dump.contains(TOKEN),
        "the header is not stored in the clear"
    );

    // The same database with another key: the server refuses to start and says why.
    app.kill();
    let other_key = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_granary"));
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--workers", "0"])
        .arg("--data-dir")
        .arg(app.data_dir())
        .arg("--db-encryption-key")
        .arg(other_key.path().join("key"))
        .stdin(Stdio::null());
    if let Some(url) = app.database_url() {
        command.args(["--database-url", url]);
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), command.output())
        .await
        .expect("granary exits")
        .expect("run granary");
    assert!(
        !output.status.success(),
        "it must not start with another key"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not the key this database's secrets are sealed with"),
        "{stderr}"
    );
    app.restart().await;
    let task = app.sync(&repository, &remote, false).await;
    assert_eq!(
        task["state"], "completed",
        "its own key opens them again: {task:#}"
    );
}
