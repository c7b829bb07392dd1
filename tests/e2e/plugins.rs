//! The plugin lifecycle over REST and the `granary plugin` CLI: install a third-party content
//! type into a running server, use it end to end, upgrade it without a restart, keep it across a
//! restart, disable, remove; and every reason a component is refused at install time or denied at
//! run time.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::curl::Downloads;
use crate::support::fixture::sha256_hex;
use crate::support::pulp::{API, error_description, str_field};
use crate::support::{AppOptions, Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    rust_example_installs_serves_upgrades_and_is_removed,
    bad_components_are_rejected_and_nothing_is_installed,
    undeclared_capability_is_denied_at_run_time,
    cli_installs_lists_and_removes,
);

const RAW_V1: &str = env!("GRANARY_EXAMPLE_RAW_WASM");
const RAW_V2: &str = env!("GRANARY_EXAMPLE_RAW_V2_WASM");
const MISFIT: &str = env!("GRANARY_TEST_MISFIT_WASM");
const FILE: &str = env!("GRANARY_PLUGIN_FILE_WASM");

fn plugins() -> String {
    format!("{API}/plugins/")
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|err| panic!("read {path}: {err}"))
}

impl TestApp {
    pub(crate) async fn install_plugin(&self, bytes: &[u8]) -> (StatusCode, Value) {
        self.post_multipart(&plugins(), &[("file", Some("plugin.wasm"), bytes)])
            .await
    }

    async fn delete_plugin(&self, path: &str) -> (StatusCode, Value) {
        let (user, password) = self.credentials();
        let response = self
            .anonymous()
            .delete(self.url(path))
            .basic_auth(user, Some(password))
            .send()
            .await
            .expect("DELETE");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Acceptance 1: the example plugin, written outside the built-in set with the SDK, is installed
/// through the REST API into a running server, used end to end (repository, upload, publication,
/// distribution, curl), upgraded to 0.2.0 with its new behaviour visible at once, kept across a
/// restart, disabled and enabled, refused removal while its repository exists, then removed.
async fn rust_example_installs_serves_upgrades_and_is_removed(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let curl = Downloads::new();

    // Built-in plugins are listed the same way.
    let listed = app.list_all(&plugins()).await;
    let file = listed
        .iter()
        .find(|p| p["name"] == "file")
        .expect("file is listed");
    assert_eq!(file["builtin"], true, "{file:#}");
    assert_eq!(file["capabilities"], json!(["http"]), "{file:#}");
    assert_eq!(
        app.get(&format!("{API}/repositories/raw/raw/")).await.0,
        StatusCode::NOT_FOUND
    );

    let v1 = read(RAW_V1);
    let started = std::time::Instant::now();
    let (status, plugin) = app.install_plugin(&v1).await;
    eprintln!(
        "installing raw 0.1.0 ({} bytes) took {:?}",
        v1.len(),
        started.elapsed()
    );
    assert_eq!(status, StatusCode::CREATED, "{plugin:#}");
    assert_eq!(plugin["pulp_href"], format!("{API}/plugins/raw/"));
    assert_eq!(plugin["name"], "raw");
    assert_eq!(plugin["version"], "0.1.0");
    assert_eq!(plugin["wit_version"], "0.3.0");
    assert_eq!(plugin["content_types"][0]["name"], "raw");
    assert_eq!(plugin["capabilities"], json!([]));
    assert_eq!(plugin["sha256"], sha256_hex(&v1));
    assert_eq!(plugin["builtin"], false);
    assert_eq!(plugin["enabled"], true);
    assert_eq!(
        app.get_json(&format!("{API}/plugins/raw/")).await["version"],
        "0.1.0"
    );

    // The new type is usable at once, with no restart.
    let repository = app
        .create(
            &format!("{API}/repositories/raw/raw/"),
            json!({"name": "tools"}),
        )
        .await;
    let repository = str_field(&repository, "pulp_href").to_owned();
    let hello = b"#!/bin/sh\necho hello from a raw repository\n";
    app.upload_content("raw/raws", &repository, "bin/hello.sh", hello)
        .await;
    let base_url = app
        .publish_and_distribute_as("raw/raw", &repository, "tools-v1")
        .await;
    assert_eq!(
        curl.get(&format!("{base_url}bin/hello.sh")).await.unwrap(),
        hello
    );
    let sums = curl.get(&format!("{base_url}SHA256SUMS")).await.unwrap();
    assert_eq!(
        String::from_utf8(sums).unwrap(),
        format!("{}  bin/hello.sh\n", sha256_hex(hello))
    );
    assert!(
        curl.get(&format!("{base_url}index.json")).await.is_err(),
        "0.1.0 writes no index.json"
    );

    // Upgrade: POST the new version of the same name; 200, and the new behaviour without restart.
    let v2 = read(RAW_V2);
    let (status, plugin) = app.install_plugin(&v2).await;
    assert_eq!(status, StatusCode::OK, "{plugin:#}");
    assert_eq!(plugin["version"], "0.2.0");
    assert_eq!(plugin["replaced_version"], "0.1.0");
    assert_eq!(plugin["sha256"], sha256_hex(&v2));
    let base_url = app
        .publish_and_distribute_as("raw/raw", &repository, "tools-v2")
        .await;
    let index = curl.get(&format!("{base_url}index.json")).await.unwrap();
    let index: Value = serde_json::from_slice(&index).unwrap();
    assert_eq!(index[0]["path"], "bin/hello.sh", "{index}");
    assert_eq!(index[0]["sha256"], sha256_hex(hello), "{index}");

    // Installed plugins persist across a restart, at their installed version.
    app.restart().await;
    let plugin = app.get_json(&format!("{API}/plugins/raw/")).await;
    assert_eq!(plugin["version"], "0.2.0", "{plugin:#}");
    app.upload_content("raw/raws", &repository, "bin/bye.sh", b"echo bye\n")
        .await;
    let base_url = app
        .publish_and_distribute_as("raw/raw", &repository, "tools-v3")
        .await;
    assert_eq!(
        curl.get(&format!("{base_url}bin/bye.sh")).await.unwrap(),
        b"echo bye\n"
    );

    // Disable: the type's routes disappear; enable: they are back.
    let (status, plugin) = app
        .patch_json(&format!("{API}/plugins/raw/"), &json!({"enabled": false}))
        .await;
    assert_eq!(status, StatusCode::OK, "{plugin:#}");
    assert_eq!(plugin["enabled"], false);
    assert_eq!(
        app.get(&format!("{API}/repositories/raw/raw/")).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, plugin) = app
        .patch_json(&format!("{API}/plugins/raw/"), &json!({"enabled": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{plugin:#}");
    assert_eq!(
        app.get(&format!("{API}/repositories/raw/raw/")).await.0,
        StatusCode::OK
    );

    // Removal is refused while a repository of its type exists, with a message saying why and
    // how to force it; built-in plugins cannot be removed at all.
    let (status, body) = app.delete_plugin(&format!("{API}/plugins/raw/")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("tools") && detail.contains("force=true"),
        "{detail}"
    );
    let (status, body) = app.delete_plugin(&format!("{API}/plugins/file/")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("built-in"),
        "{body}"
    );

    let (status, body) = app
        .delete_plugin(&format!("{API}/plugins/raw/?force=true"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        app.get(&format!("{API}/plugins/raw/")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("{API}/repositories/raw/raw/")).await.0,
        StatusCode::NOT_FOUND
    );
    // ... and it stays removed after a restart.
    app.restart().await;
    assert_eq!(
        app.get(&format!("{API}/plugins/raw/")).await.0,
        StatusCode::NOT_FOUND
    );
}

/// The misfit component with its mode marker rewritten (see `tests/components/misfit`).
fn misfit(mode: &[u8; 4]) -> Vec<u8> {
    let mut bytes = read(MISFIT);
    let marker = b"granary-misfit-mode:";
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the misfit component carries its mode marker")
        + marker.len();
    bytes[at..at + 4].copy_from_slice(mode);
    bytes
}

/// A copy of a component whose `granary:plugin` imports say `@0.9.0` instead of `@0.3.0`: what a
/// plugin built against a WIT version this host does not know looks like.
fn retargeted(mut bytes: Vec<u8>) -> Vec<u8> {
    let package = b"granary:plugin/";
    let mut patched = 0;
    let mut i = 0;
    while let Some(found) = bytes[i..].windows(package.len()).position(|w| w == package) {
        let start = i + found;
        let window = (start + 64).min(bytes.len());
        if let Some(at) = bytes[start..window].windows(6).position(|w| w == b"@0.3.0") {
            bytes[start + at..start + at + 6].copy_from_slice(b"@0.9.0");
            patched += 1;
        }
        i = start + package.len();
    }
    assert!(patched > 0, "no granary:plugin import found to retarget");
    bytes
}

/// Acceptance 3: each bad component is a 400 whose message names the failed check (one over the
/// size limit a 413, read no further), and nothing is installed (no plugin listed, no artifact
/// stored).
async fn bad_components_are_rejected_and_nothing_is_installed(backend: Backend) {
    let limit = read(MISFIT).len().max(read(FILE).len()) + 1024;
    let options = AppOptions::default()
        .env("GRANARY_PLUGIN_MAX_BYTES", &limit.to_string())
        .env("GRANARY_PLUGIN_CPU_LIMIT_MS", "2000");
    let app = TestApp::start_with(backend, options).await;
    let limit_text = limit.to_string();
    let too_large: [&str; 2] = ["too large", &limit_text];

    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "not wasm",
            b"this is a text file, not a component".to_vec(),
            &["not a webassembly component"],
        ),
        (
            "core module",
            b"\0asm\x01\0\0\0".to_vec(),
            &["not a webassembly component", "core webassembly module"],
        ),
        (
            "wrong WIT version in imports",
            retargeted(misfit(b"none")),
            &["unsupported wit version", "0.9.0"],
        ),
        (
            "wrong WIT version in describe",
            misfit(b"wit9"),
            &["unsupported wit version", "0.9.0"],
        ),
        (
            "describe traps",
            misfit(b"trap"),
            &["describe failed", "trapped on purpose"],
        ),
        (
            "describe loops",
            misfit(b"loop"),
            &["describe failed", "time limit"],
        ),
        (
            "type name clash",
            misfit(b"file"),
            &["type name clash", "\"file\""],
        ),
        (
            "indexed field not an identifier",
            misfit(b"keys"),
            &["indexed field \"not-a-name\"", "must match"],
        ),
        (
            "root of the host",
            misfit(b"pulp"),
            &["root \"pulp\" is the host's own"],
        ),
        (
            "root another plugin serves",
            misfit(b"pypi"),
            &["already serves requests at /pypi/", "\"python\""],
        ),
        ("plugin name clash", read(FILE), &["name clash", "built-in"]),
        ("too large", vec![0u8; limit + 1], &too_large),
    ];
    for (case, bytes, keywords) in cases {
        let (status, body) = app.install_plugin(&bytes).await;
        let expected = if case == "too large" {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(status, expected, "{case}: {body}");
        let message = body["file"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{case}: no message for `file`: {body}"))
            .to_lowercase();
        for keyword in keywords {
            assert!(
                message.contains(&keyword.to_lowercase()),
                "{case}: {keyword:?} not in {message:?}"
            );
        }
    }
    let listed = app.list_all(&plugins()).await;
    let names: Vec<&str> = listed.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["file", "python"], "nothing but the built-ins");
    assert_eq!(
        app.count(&format!("{API}/artifacts/")).await,
        0,
        "no component was stored"
    );
    app.assert_status_ok().await;

    // The unmodified component is fine: the rejections were about the checks, not the test.
    let (status, body) = app.install_plugin(&misfit(b"none")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Acceptance 4: a plugin that did not declare `http` is shown with no capabilities at install,
/// and its sync's HTTP request is denied with a task error that names the missing capability.
async fn undeclared_capability_is_denied_at_run_time(backend: Backend) {
    let app = TestApp::start(backend).await;
    let upstream = Upstream::serve(&Fixture { files: Vec::new() }).await;
    let (status, plugin) = app.install_plugin(&misfit(b"none")).await;
    assert_eq!(status, StatusCode::CREATED, "{plugin:#}");
    assert_eq!(plugin["capabilities"], json!([]), "{plugin:#}");

    let remote = app
        .create(
            &format!("{API}/remotes/misfit/gadget/"),
            json!({"name": "up", "url": upstream.url("PULP_MANIFEST")}),
        )
        .await;
    let repository = app
        .create(
            &format!("{API}/repositories/misfit/gadget/"),
            json!({"name": "gadgets"}),
        )
        .await;
    let task = app
        .sync(
            str_field(&repository, "pulp_href"),
            str_field(&remote, "pulp_href"),
            false,
        )
        .await;
    assert_eq!(task["state"], "failed", "{task:#}");
    let description = error_description(&task);
    assert!(
        description.contains("capability") && description.contains("http"),
        "the error names the missing capability: {description}"
    );
    app.assert_status_ok().await;
}

/// `granary plugin install|list|disable|enable|remove` drive the same API.
async fn cli_installs_lists_and_removes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (user, password) = app.credentials();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_granary"))
            .arg("plugin")
            .args(args)
            .env("GRANARY_URL", app.url(""))
            .env("GRANARY_USERNAME", user)
            .env("GRANARY_PASSWORD", password)
            .output()
            .expect("run granary plugin");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (ok, out) = run(&["install", RAW_V1]);
    assert!(ok && out.contains("installed raw 0.1.0"), "{out}");
    let (ok, out) = run(&["install", RAW_V2]);
    assert!(ok && out.contains("upgraded raw 0.1.0 -> 0.2.0"), "{out}");
    let (ok, out) = run(&["list"]);
    assert!(ok, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("file ") && l.contains("builtin")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("raw ") && l.contains("0.2.0")),
        "{out}"
    );
    let (ok, out) = run(&["disable", "raw"]);
    assert!(ok && out.contains("disabled raw"), "{out}");
    let (ok, out) = run(&["enable", "raw"]);
    assert!(ok && out.contains("enabled raw"), "{out}");
    let (ok, out) = run(&["install", "/dev/null"]);
    assert!(!ok && out.contains("not a WebAssembly component"), "{out}");
    let (ok, out) = run(&["remove", "file"]);
    assert!(
        !ok && out.contains("409") && out.contains("built-in"),
        "{out}"
    );
    let (ok, out) = run(&["remove", "raw"]);
    assert!(ok && out.contains("removed raw"), "{out}");
    assert_eq!(
        app.get(&format!("{API}/plugins/raw/")).await.0,
        StatusCode::NOT_FOUND
    );
}
