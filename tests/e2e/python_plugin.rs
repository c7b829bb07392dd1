//! Acceptance 2 of the plugin system: a content type written in Python with componentize-py
//! (`examples/python-notes/`) is built from source, installed into a running server through the
//! REST API and used end to end: repository, upload, publication, distribution, download.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::curl::Downloads;
use crate::support::fixture::sha256_hex;
use crate::support::pulp::{API, error_description, str_field};
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(python_plugin_builds_installs_and_serves);

/// The componentize-py release the example is built and measured with.
const COMPONENTIZE_PY: &str = "componentize-py>=0.25,<0.26";

/// Installs componentize-py once into `target/test-tools/componentize-py`; returns the tool.
fn install_componentize_py() -> PathBuf {
    crate::support::tools::python_venv("componentize-py", &[COMPONENTIZE_PY])
        .join("bin/componentize-py")
}

/// Builds `examples/python-notes/app.py` into `out_dir/pynotes.wasm` with the command of the
/// example's README (from a copy of the source, so the tree gets no `__pycache__`).
fn build_python_example(tool: &Path, out_dir: &Path) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let src = out_dir.join("src");
    std::fs::create_dir_all(&src).expect("create the source copy");
    std::fs::copy(
        root.join("examples/python-notes/app.py"),
        src.join("app.py"),
    )
    .expect("copy app.py");
    let wasm = out_dir.join("pynotes.wasm");
    let output = Command::new(tool)
        .arg("-d")
        .arg(root.join("wit/since_v0.1.0"))
        .args(["-w", "content-type", "componentize", "app", "-o"])
        .arg(&wasm)
        .current_dir(&src)
        .output()
        .expect("run componentize-py");
    assert!(
        output.status.success(),
        "componentize-py failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    wasm
}

async fn python_plugin_builds_installs_and_serves(backend: Backend) {
    let tool = tokio::task::spawn_blocking(install_componentize_py)
        .await
        .expect("install componentize-py");
    let build_dir = tempfile::tempdir().expect("temp dir");
    let out = build_dir.path().to_owned();
    let started = std::time::Instant::now();
    let wasm = tokio::task::spawn_blocking(move || build_python_example(&tool, &out))
        .await
        .expect("build the Python example");
    eprintln!("componentize-py build took {:?}", started.elapsed());
    let bytes = std::fs::read(&wasm).expect("read pynotes.wasm");

    let app = TestApp::start(backend).await;
    let curl = Downloads::new();

    let started = std::time::Instant::now();
    let (status, plugin) = app.install_plugin(&bytes).await;
    eprintln!(
        "installing pynotes ({} bytes) took {:?}",
        bytes.len(),
        started.elapsed()
    );
    assert_eq!(status, StatusCode::CREATED, "{plugin:#}");
    assert_eq!(plugin["pulp_href"], format!("{API}/plugins/pynotes/"));
    assert_eq!(plugin["name"], "pynotes");
    assert_eq!(plugin["version"], "0.1.0");
    assert_eq!(plugin["wit_version"], "0.1.0");
    assert_eq!(plugin["content_types"][0]["name"], "note");
    assert_eq!(plugin["capabilities"], json!([]));
    assert_eq!(plugin["sha256"], sha256_hex(&bytes));
    assert_eq!(plugin["builtin"], false);

    let repository = app
        .create(
            &format!("{API}/repositories/pynotes/note/"),
            json!({"name": "notes"}),
        )
        .await;
    let repository = str_field(&repository, "pulp_href").to_owned();

    // A note without a relative_path is refused by the plugin: the upload task fails with the
    // plugin's message.
    let (status, accepted) = app
        .post_multipart(
            &format!("{API}/content/pynotes/notes/"),
            &[
                ("file", Some("upload.bin"), b"no path".as_slice()),
                ("repository", None, repository.as_bytes()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted:#}");
    let task = app.wait_task(str_field(&accepted, "task")).await;
    assert_eq!(task["state"], "failed", "{task:#}");
    assert!(
        error_description(&task).contains("a note upload needs a relative_path"),
        "{task:#}"
    );

    let first = b"# Shopping\n- flour\n- yeast\n";
    let second = b"Written in Python, served by Granary.\n";
    app.upload_content("pynotes/notes", &repository, "lists/shopping.md", first)
        .await;
    app.upload_content("pynotes/notes", &repository, "hello.txt", second)
        .await;
    let base_url = app
        .publish_and_distribute_as("pynotes/note", &repository, "notes")
        .await;

    assert_eq!(
        curl.get(&format!("{base_url}lists/shopping.md"))
            .await
            .unwrap(),
        first
    );
    assert_eq!(
        curl.get(&format!("{base_url}hello.txt")).await.unwrap(),
        second
    );
    let index = curl.get(&format!("{base_url}index.txt")).await.unwrap();
    let index = String::from_utf8(index).unwrap();
    let mut lines: Vec<&str> = index.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        vec![
            format!("hello.txt {}", sha256_hex(second)),
            format!("lists/shopping.md {}", sha256_hex(first)),
        ],
        "index.txt: {index:?}"
    );
    // There is no upstream to sync from: the sync task fails with the plugin's message.
    let remote = app
        .create(
            &format!("{API}/remotes/pynotes/note/"),
            json!({"name": "nowhere", "url": "http://127.0.0.1:9/notes/"}),
        )
        .await;
    let task = app
        .sync(&repository, str_field(&remote, "pulp_href"), false)
        .await;
    assert_eq!(task["state"], "failed", "{task:#}");
    assert!(
        error_description(&task).contains("sync is not supported by pynotes"),
        "{task:#}"
    );

    // Paths the publication lacks go to the plugin's `handle`, which answers 404.
    let missing = app
        .anonymous()
        .get(format!("{base_url}missing.txt"))
        .send()
        .await
        .expect("GET missing.txt");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    app.assert_status_ok().await;
}
