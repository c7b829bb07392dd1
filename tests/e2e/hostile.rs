//! A deliberately hostile plugin (`tests/components/hostile`) tries to hang, exhaust memory,
//! reach other hosts, flood the host, and write outside its space. Each attempt must fail its
//! own task with a clear reason while the server keeps answering.

use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::app::is_finished;
use crate::support::pulp::{API, error_description, str_field};
use crate::support::{AppOptions, Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    plugin_infinite_loop_is_stopped,
    plugin_memory_bomb_is_stopped,
    plugin_cannot_reach_another_origin,
    plugin_oversized_batch_is_rejected,
    plugin_cannot_declare_path_escape,
    plugin_cannot_publish_outside,
    plugin_oversized_output_is_rejected,
);

/// A sync that never returns is stopped at the CPU time limit, and the server answers status
/// requests all the while.
async fn plugin_infinite_loop_is_stopped(backend: Backend) {
    let hostile = Hostile::start(backend).await;
    let task_href = hostile.dispatch_sync("loop").await;
    let task = loop {
        hostile.app.assert_status_ok().await;
        let task = hostile.app.get_json(&task_href).await;
        if is_finished(&task) {
            break task;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    hostile
        .assert_failed(&task, &["time limit", "deadline"])
        .await;
}

/// A sync that allocates without bound is stopped at the memory limit.
async fn plugin_memory_bomb_is_stopped(backend: Backend) {
    let hostile = Hostile::start(backend).await;
    let task = hostile.sync("memory").await;
    hostile.assert_failed(&task, &["memory"]).await;
}

/// A sync that asks the host to fetch from an origin other than its remote's is refused; once the
/// operator lists that origin in the remote's `allowed_origins`, the request is made (and fails
/// only because nothing listens there).
async fn plugin_cannot_reach_another_origin(backend: Backend) {
    let hostile = Hostile::start(backend).await;
    let task = hostile.sync("foreign-origin").await;
    hostile.assert_failed(&task, &["origin"]).await;

    let remotes = hostile
        .app
        .list_all(&format!("{API}/remotes/hostile/thing/?name=foreign-origin"))
        .await;
    let remote = str_field(&remotes[0], "pulp_href").to_owned();
    hostile
        .app
        .update(&remote, json!({"allowed_origins": ["http://127.0.0.1:9"]}))
        .await;
    let repository = hostile.repository("foreign-origin-allowed").await;
    let task = hostile.app.sync(&repository, &remote, false).await;
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = error_description(&task);
    assert!(
        error.contains("request to http://127.0.0.1:9/elsewhere failed"),
        "{error}"
    );
    assert!(!error.contains("outside the remote's origin"), "{error}");
}

/// A sync that hands the host a batch of units beyond the batch limit is refused.
async fn plugin_oversized_batch_is_rejected(backend: Backend) {
    let hostile = Hostile::start(backend).await;
    let task = hostile.sync("oversized-batch").await;
    hostile.assert_failed(&task, &["batch"]).await;
}

/// A sync that declares a unit whose relative path climbs out with `..` is refused.
async fn plugin_cannot_declare_path_escape(backend: Backend) {
    let hostile = Hostile::start(backend).await;
    let task = hostile.sync("escape-path").await;
    hostile.assert_failed(&task, &["relative path", ".."]).await;
}

/// A publication that tries to write a file outside the publication is refused.
async fn plugin_cannot_publish_outside(backend: Backend) {
    let hostile = Hostile::start(backend).await;
    let task = hostile.publish("escape-path").await;
    hostile.assert_failed(&task, &["relative path", ".."]).await;
}

/// A publication that writes more than the output limit is refused.
async fn plugin_oversized_output_is_rejected(backend: Backend) {
    let hostile = Hostile::start(backend).await;
    let task = hostile.publish("oversized-output").await;
    hostile.assert_failed(&task, &["limit"]).await;
}

/// A server with the hostile plugin installed and tight limits, and an upstream whose URL paths
/// select the plugin's misbehaviour.
struct Hostile {
    app: TestApp,
    upstream: Upstream,
    _plugins: TempDir,
}

impl Hostile {
    async fn start(backend: Backend) -> Hostile {
        let plugins = tempfile::tempdir().expect("create the plugin directory");
        tokio::fs::copy(
            env!("GRANARY_TEST_HOSTILE_WASM"),
            plugins.path().join("hostile.wasm"),
        )
        .await
        .expect("copy the hostile component into the plugin directory");
        let options = AppOptions::default()
            .plugin_dir(plugins.path())
            .env("GRANARY_PLUGIN_CPU_LIMIT_MS", "2000")
            .env("GRANARY_PLUGIN_MAX_OUTPUT_BYTES", "8388608");
        let app = TestApp::start_with(backend, options).await;
        let upstream = Upstream::serve(&Fixture { files: Vec::new() }).await;
        Hostile {
            app,
            upstream,
            _plugins: plugins,
        }
    }

    /// Creates a hostile remote at `<upstream>/<behaviour>` and a repository, and dispatches a
    /// sync; returns the task href.
    async fn dispatch_sync(&self, behaviour: &str) -> String {
        let remote = self
            .app
            .create(
                &format!("{API}/remotes/hostile/thing/"),
                json!({"name": behaviour, "url": self.upstream.url(behaviour)}),
            )
            .await;
        let repository = self.repository(behaviour).await;
        self.app
            .dispatch(
                &format!("{repository}sync/"),
                json!({"remote": str_field(&remote, "pulp_href")}),
            )
            .await
    }

    async fn sync(&self, behaviour: &str) -> Value {
        let task_href = self.dispatch_sync(behaviour).await;
        self.app.wait_task(&task_href).await
    }

    /// Publishes a hostile repository named `behaviour`; returns the finished task.
    async fn publish(&self, behaviour: &str) -> Value {
        let repository = self.repository(behaviour).await;
        let task_href = self
            .app
            .dispatch(
                &format!("{API}/publications/hostile/thing/"),
                json!({"repository": repository}),
            )
            .await;
        self.app.wait_task(&task_href).await
    }

    async fn repository(&self, name: &str) -> String {
        let repository = self
            .app
            .create(
                &format!("{API}/repositories/hostile/thing/"),
                json!({"name": name}),
            )
            .await;
        str_field(&repository, "pulp_href").to_owned()
    }

    /// The task failed, its error contains one of `keywords`, it is listed among the failed
    /// tasks, and the server still answers.
    async fn assert_failed(&self, task: &Value, keywords: &[&str]) {
        assert_eq!(task["state"], "failed", "{task:#}");
        let description = error_description(task);
        assert!(
            keywords.iter().any(|keyword| description.contains(keyword)),
            "the error should mention one of {keywords:?}: {description}"
        );
        let failed = self
            .app
            .list_all(&format!("{API}/tasks/?state=failed&limit=1000"))
            .await;
        assert!(
            failed
                .iter()
                .any(|listed| listed["pulp_href"] == task["pulp_href"]),
            "the task is listed as failed: {failed:?}"
        );
        self.app.assert_status_ok().await;
    }
}
