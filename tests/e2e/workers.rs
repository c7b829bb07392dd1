//! Issue #21, item 4: the processes of an installation as Pulp shows them (`status/`,
//! `workers/`, each task's `worker`), and purging old task records (`tasks/purge/`), driven with
//! pulp-cli as a Pulp operator would.

use std::time::Duration;

use serde_json::{Value, json};

use crate::pulp_cli::PulpCli;
use crate::support::pulp::{API, str_field};
use crate::support::requests::As;
use crate::support::{Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    workers_and_status_show_the_processes_as_pulp_does,
    finished_tasks_are_purged_as_in_pulp,
    the_new_endpoints_refuse_anonymous_clients_and_strangers,
    a_task_group_is_canceled_as_in_pulp,
);

/// The names of the processes `status/` lists under `key`.
fn names(status: &Value, key: &str) -> Vec<String> {
    status[key]
        .as_array()
        .unwrap_or_else(|| panic!("status has no {key}: {status:#}"))
        .iter()
        .map(|app| str_field(app, "name").to_owned())
        .collect()
}

/// The names of the workers `pulp worker list <filters>` prints.
async fn listed(pulp: &PulpCli, filters: &[&str]) -> Vec<String> {
    let mut args = vec!["worker", "list"];
    args.extend_from_slice(filters);
    pulp.run(&args)
        .await
        .as_array()
        .unwrap_or_else(|| panic!("pulp worker list {filters:?} printed no list"))
        .iter()
        .map(|worker| str_field(worker, "name").to_owned())
        .collect()
}

/// `serve` is an API app, a content app and a worker; `status/` lists the three with their
/// versions and the storage's free space, `workers/` the worker, which shows the task it runs.
/// A process killed without a goodbye stays listed, as missing once its heartbeat is old; one
/// stopped with SIGTERM removes itself.
async fn workers_and_status_show_the_processes_as_pulp_does(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let pulp = PulpCli::new(&app);

    let status = pulp.run(&["status"]).await;
    let name = names(&status, "online_workers").pop().expect("one worker");
    assert_eq!(names(&status, "online_workers"), [name.as_str()]);
    assert_eq!(names(&status, "online_api_apps"), [name.as_str()]);
    assert_eq!(names(&status, "online_content_apps"), [name.as_str()]);
    let worker_status = &status["online_workers"][0];
    assert_eq!(worker_status["versions"]["core"], "3.85.0", "{status:#}");
    assert_eq!(worker_status["versions"]["file"], "3.85.0", "{status:#}");
    assert!(worker_status["last_heartbeat"].is_string(), "{status:#}");
    let storage = &status["storage"];
    let bytes = |key: &str| {
        storage[key]
            .as_u64()
            .unwrap_or_else(|| panic!("storage.{key} is a count: {status:#}"))
    };
    assert!(bytes("total") > 0 && bytes("free") > 0, "{status:#}");
    assert!(
        bytes("used") + bytes("free") <= bytes("total"),
        "{status:#}"
    );
    assert_eq!(status["domain_enabled"], false, "{status:#}");

    let workers = pulp.run(&["worker", "list"]).await;
    assert_eq!(workers.as_array().map(Vec::len), Some(1), "{workers:#}");
    let worker = &workers[0];
    let href = str_field(worker, "pulp_href").to_owned();
    assert!(href.starts_with(&format!("{API}/workers/")), "{worker:#}");
    assert!(
        str_field(worker, "prn").starts_with("prn:core.appstatus:"),
        "{worker:#}"
    );
    assert_eq!(worker["current_task"], Value::Null, "idle: {worker:#}");
    let shown = pulp.run(&["worker", "show", "--href", &href]).await;
    assert_eq!(shown["name"], name.as_str(), "{shown:#}");
    assert_eq!(listed(&pulp, &["--online"]).await, [name.as_str()]);
    assert_eq!(listed(&pulp, &["--not-missing"]).await, [name.as_str()]);
    assert!(listed(&pulp, &["--missing"]).await.is_empty());
    assert!(listed(&pulp, &["--not-online"]).await.is_empty());
    let (_, uuid) = name.split_once('@').expect("<pid>@<uuid>");
    assert_eq!(
        listed(&pulp, &["--name-contains", uuid]).await,
        [name.as_str()]
    );
    assert!(listed(&pulp, &["--name", "nobody"]).await.is_empty());

    // While a sync waits on a slow upstream, the worker shows it as its current task; the task
    // names the worker, and tasks are found by it.
    let fixture = Fixture::generate(3, 5);
    let upstream = Upstream::serve(&fixture).await;
    upstream.set_file_delay(Duration::from_secs(30));
    let remote = app
        .create_file_remote("slow", &upstream.manifest_url(), "immediate")
        .await;
    let repository = app.create_file_repository("watched").await;
    let task_href = app
        .dispatch(
            &format!("{repository}sync/"),
            json!({"remote": remote, "mirror": true}),
        )
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let shown = pulp.run(&["worker", "show", "--href", &href]).await;
        if shown["current_task"] == task_href.as_str() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker never showed the sync as its current task: {shown:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    upstream.set_file_delay(Duration::ZERO);
    let task = app.wait_task(&task_href).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(task["worker"], href.as_str(), "{task:#}");
    assert_eq!(
        app.count(&format!("{API}/tasks/?worker={href}")).await,
        1,
        "the sync, by its worker"
    );
    let shown = pulp.run(&["worker", "show", "--href", &href]).await;
    assert_eq!(shown["current_task"], Value::Null, "idle again: {shown:#}");

    // Killed (no goodbye), then started again: the dead process is still listed, online until
    // its heartbeat is older than the time to live. The test ages its heartbeat by five minutes
    // rather than waiting them out.
    app.kill();
    app.start_again().await;
    let pulp = PulpCli::new(&app);
    let five_minutes_ago = (chrono::Utc::now() - chrono::Duration::minutes(5))
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    app.sql(
        "UPDATE app_statuses SET heartbeat = $1 WHERE name = $2",
        &[&five_minutes_ago, &name],
    )
    .await;
    let status = pulp.run(&["status"]).await;
    let second = names(&status, "online_workers").pop().expect("one worker");
    assert_ne!(second, name, "a new process, a new name");
    assert_eq!(names(&status, "online_workers"), [second.as_str()]);
    assert_eq!(names(&status, "online_api_apps"), [second.as_str()]);
    assert_eq!(names(&status, "online_content_apps"), [second.as_str()]);
    assert_eq!(listed(&pulp, &["--missing"]).await, [name.as_str()]);
    assert_eq!(listed(&pulp, &["--not-online"]).await, [name.as_str()]);
    assert_eq!(listed(&pulp, &["--online"]).await, [second.as_str()]);
    assert_eq!(listed(&pulp, &["--not-missing"]).await, [second.as_str()]);
    let task = app.get_json(&task_href).await;
    assert_eq!(
        task["worker"],
        href.as_str(),
        "the dead worker is still known"
    );

    // Stopped as `systemctl stop` stops it: the process removes itself.
    app.stop();
    app.start_again().await;
    let pulp = PulpCli::new(&app);
    let all = listed(&pulp, &[]).await;
    assert!(!all.contains(&second), "{all:?}");
    assert!(all.contains(&name), "the killed one stays missing: {all:?}");
    assert_eq!(all.len(), 2, "{all:?}");
    let status = pulp.run(&["status"]).await;
    assert!(
        !names(&status, "online_api_apps").contains(&second),
        "{status:#}"
    );
}

/// `pulp task purge` deletes the records of finished tasks older than `--finished-before`, in
/// the states asked for (`completed` by default), and only those; a state that is not final is
/// refused with a message on `states`.
async fn finished_tasks_are_purged_as_in_pulp(backend: Backend) {
    let app = TestApp::start(backend).await;
    let pulp = PulpCli::new(&app);
    let repository = app.create_file_repository("purged").await;
    app.upload_content("file/files", &repository, "a.txt", b"alpha")
        .await;
    // A sync from an upstream that refuses connections fails.
    let refusing = app
        .create(
            &format!("{API}/remotes/file/file/"),
            json!({"name": "refusing", "url": "http://127.0.0.1:9/PULP_MANIFEST", "max_retries": 0}),
        )
        .await;
    let failed = app
        .dispatch(
            &format!("{repository}sync/"),
            json!({"remote": str_field(&refusing, "pulp_href")}),
        )
        .await;
    let failed = app.wait_task(&failed).await;
    assert_eq!(failed["state"], "failed", "{failed:#}");
    let before = app.count(&format!("{API}/tasks/")).await;
    let completed = app.count(&format!("{API}/tasks/?state=completed")).await;
    assert!(completed >= 1, "the upload: {completed}");

    // Finished less than 30 days ago: the default keeps them all.
    pulp.run(&["task", "purge"]).await;
    // The purge task itself is a completed task now.
    assert_eq!(app.count(&format!("{API}/tasks/")).await, before + 1);

    // Before a time after they finished: the completed ones go, the failed one stays.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    pulp.run(&["task", "purge", "--finished-before", &tomorrow])
        .await;
    let left = app.list_all(&format!("{API}/tasks/")).await;
    let states: Vec<&str> = left.iter().map(|task| str_field(task, "state")).collect();
    assert!(states.contains(&"failed"), "{left:#?}");
    let completed_left: Vec<&Value> = left
        .iter()
        .filter(|task| task["state"] == "completed")
        .collect();
    assert_eq!(
        completed_left.len(),
        1,
        "only the purge that ran last, which had not finished when it looked: {left:#?}"
    );
    assert_eq!(completed_left[0]["name"], "granary.tasks.purge");
    let report = completed_left[0]["progress_reports"]
        .as_array()
        .and_then(|reports| {
            reports
                .iter()
                .find(|report| report["code"] == "purge.tasks.key.core.Task")
        })
        .cloned()
        .unwrap_or_else(|| panic!("a count of purged tasks: {:#}", completed_left[0]));
    assert_eq!(report["done"], completed + 1, "{report:#}");

    pulp.run(&[
        "task",
        "purge",
        "--finished-before",
        &tomorrow,
        "--state",
        "failed",
    ])
    .await;
    assert_eq!(app.count(&format!("{API}/tasks/?state=failed")).await, 0);

    let (status, body) = app
        .post_json(
            &format!("{API}/tasks/purge/"),
            &json!({"states": ["running"]}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
    assert!(body["states"].is_array(), "a message on `states`: {body}");
}

/// `workers/`, `task-groups/`, `acs/…` and `tasks/purge/` answer 401 without credentials; a user
/// who is not staff may list workers, and task groups (seeing only those with a task of theirs),
/// and sources (seeing only those given to them; creating one takes a role), and their purge
/// deletes only tasks they may delete, never the admin's.
async fn the_new_endpoints_refuse_anonymous_clients_and_strangers(backend: Backend) {
    use reqwest::{Method, StatusCode};
    let app = TestApp::start(backend).await;
    let repository = app.create_file_repository("admins").await;
    app.upload_content("file/files", &repository, "a.txt", b"alpha")
        .await;
    app.create_user("carol", "carol's long password").await;
    let carol = As::Basic("carol", "carol's long password");
    let empty = json!({});
    for (method, path, body) in [
        (Method::GET, format!("{API}/workers/"), None),
        (Method::GET, format!("{API}/task-groups/"), None),
        (Method::GET, format!("{API}/acs/file/file/"), None),
        (Method::POST, format!("{API}/acs/file/file/"), Some(&empty)),
        (Method::POST, format!("{API}/tasks/purge/"), Some(&empty)),
    ] {
        let anonymous = app
            .request(method.clone(), &path, As::Anonymous, body, &[])
            .await;
        assert_eq!(
            anonymous.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
    }
    let workers = app
        .request(Method::GET, &format!("{API}/workers/"), carol, None, &[])
        .await;
    assert_eq!(workers.status, StatusCode::OK, "{}", workers.body);
    // Task groups are seen through their tasks; alternate content sources as pulp_file's policy
    // has them: anyone lists (and sees only the sources given to them), creating one takes a
    // role. Carol has neither a task nor a source.
    for list in ["task-groups/", "acs/file/file/"] {
        let listed = app
            .request(Method::GET, &format!("{API}/{list}"), carol, None, &[])
            .await;
        assert_eq!(listed.status, StatusCode::OK, "{list}: {}", listed.body);
        assert_eq!(listed.body["count"], 0, "{list}: {}", listed.body);
    }
    let refused = app
        .request(
            Method::POST,
            &format!("{API}/acs/file/file/"),
            carol,
            Some(&empty),
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let before = app.count(&format!("{API}/tasks/")).await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let purge = app
        .request(
            Method::POST,
            &format!("{API}/tasks/purge/"),
            carol,
            Some(&json!({"finished_before": tomorrow})),
            &[],
        )
        .await;
    assert_eq!(purge.status, StatusCode::ACCEPTED, "{}", purge.body);
    let task = app.wait_task(str_field(&purge.body, "task")).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(
        app.count(&format!("{API}/tasks/")).await,
        before + 1,
        "carol's purge deleted none of the admin's tasks, only added itself"
    );
}

/// `PATCH task-groups/<id>/ {"state": "canceled"}` cancels every task of the group that has not
/// ended (here, with no worker running, all of them wait), as Pulp does; a user who cannot see
/// the group gets a 404, and any other state a 400.
async fn a_task_group_is_canceled_as_in_pulp(backend: Backend) {
    use crate::support::AppOptions;
    use reqwest::{Method, StatusCode};
    let app = TestApp::start_with(backend, AppOptions::default().workers(0)).await;
    let remote = app
        .create_file_remote("nearby", "http://127.0.0.1:9/", "on_demand")
        .await;
    let source = app
        .create(
            &format!("{API}/acs/file/file/"),
            json!({"name": "near", "remote": remote, "paths": ["a/PULP_MANIFEST", "b/PULP_MANIFEST"]}),
        )
        .await;
    let (status, accepted) = app
        .post_json(
            &format!("{}refresh/", str_field(&source, "pulp_href")),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let group_href = str_field(&accepted, "task_group").to_owned();
    assert_eq!(app.get_json(&group_href).await["waiting"], 2);

    app.create_user("carol", "carol's long password").await;
    let carol = As::Basic("carol", "carol's long password");
    let canceled = json!({"state": "canceled"});
    let refused = app
        .request(Method::PATCH, &group_href, carol, Some(&canceled), &[])
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    let (status, body) = app
        .patch_json(&group_href, &json!({"state": "running"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        app.get_json(&group_href).await["waiting"],
        2,
        "nothing changed"
    );

    let (status, group) = app.patch_json(&group_href, &canceled).await;
    assert_eq!(status, StatusCode::OK, "{group}");
    assert_eq!(group["canceled"], 2, "{group:#}");
    assert_eq!(group["waiting"], 0, "{group:#}");
    for task in group["tasks"].as_array().unwrap() {
        assert_eq!(task["state"], "canceled", "{task:#}");
    }
}
