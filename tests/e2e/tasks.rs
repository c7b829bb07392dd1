//! `tasks/`: Pulp's list filters, the `Correlation-ID` a request carries (echoed, and recorded
//! as its tasks' `logging_cid`), cancelling, and deleting only finished tasks.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::pulp::{API, created_resources, str_field};
use crate::support::requests::As;
use crate::support::{Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    tasks_are_filtered_as_in_pulp,
    a_task_is_canceled_and_only_finished_tasks_are_deleted,
);

/// Every response carries a `Correlation-ID`: the client's, or a generated one. A task queued by
/// a request records it as `logging_cid`. Tasks are found by name, state, the resources they
/// reserved or created, their correlation id and their times.
async fn tasks_are_filtered_as_in_pulp(backend: Backend) {
    let app = TestApp::start(backend).await;
    let status = app
        .request(
            Method::GET,
            &format!("{API}/status/"),
            As::Anonymous,
            None,
            &[],
        )
        .await;
    let generated = status
        .headers
        .get("correlation-id")
        .and_then(|value| value.to_str().ok())
        .expect("a generated Correlation-ID");
    assert_eq!(generated.len(), 32, "{generated}");

    let repository = app.create_file_repository("filtered").await;
    let accepted = app
        .request(
            Method::POST,
            &format!("{repository}modify/"),
            As::Admin,
            Some(&json!({"add_content_units": []})),
            &[("Correlation-ID", "ticket-4711")],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    assert_eq!(
        accepted.headers.get("correlation-id").unwrap(),
        "ticket-4711",
        "the client's id is echoed"
    );
    let modify = app.wait_task(str_field(&accepted.body, "task")).await;
    assert_eq!(modify["logging_cid"], "ticket-4711", "{modify:#}");

    app.upload_content("file/files", &repository, "a.txt", b"alpha")
        .await;
    let uploads = app
        .list_all(&format!("{API}/tasks/?name=granary.tasks.upload"))
        .await;
    assert_eq!(uploads.len(), 1, "{uploads:#?}");
    let upload = &uploads[0];
    let version = created_resources(upload)
        .into_iter()
        .find(|href| href.contains("/versions/"))
        .unwrap_or_else(|| panic!("{upload:#}"));

    let count = |query: String| {
        let app = &app;
        async move { app.count(&format!("{API}/tasks/?{query}")).await }
    };
    assert_eq!(count("logging_cid=ticket-4711".into()).await, 1);
    assert_eq!(count("logging_cid__contains=4711".into()).await, 1);
    assert_eq!(count("name__contains=upload".into()).await, 1);
    assert_eq!(count(format!("created_resources={version}")).await, 1);
    assert_eq!(
        count(format!("reserved_resources={repository}")).await,
        2,
        "the modify and the upload reserved the repository"
    );
    assert_eq!(count(format!("exclusive_resources={repository}")).await, 2);
    assert_eq!(count(format!("shared_resources={repository}")).await, 0);
    assert_eq!(
        count("state__in=completed,failed".into()).await,
        count("state=completed".into()).await
    );
    assert_eq!(count("state=failed".into()).await, 0);
    let all = count(String::new()).await;
    assert_eq!(
        count("name__ne=granary.tasks.upload".into()).await,
        all - 1,
        "every task but the upload"
    );
    assert_eq!(count("state__ne=completed".into()).await, 0);
    assert_eq!(
        count(format!(
            "parent_task={}",
            upload["pulp_href"].as_str().unwrap()
        ))
        .await,
        0
    );
    let admin = app.get_json(&format!("{API}/users/?username=admin")).await;
    assert_eq!(
        upload["created_by"], admin["results"][0]["pulp_href"],
        "the admin dispatched the upload: {upload:#}"
    );
    let started = str_field(upload, "started_at");
    assert_eq!(
        count(format!(
            "started_at__gte={started}&name=granary.tasks.upload"
        ))
        .await,
        1
    );
    assert_eq!(count("started_at__gt=2999-01-01T00:00:00Z".into()).await, 0);
    assert_eq!(count("finished_at__lt=2000-01-01".into()).await, 0);

    // A task of another repository: a page of tasks that reserved different resources.
    let other = app.create_file_repository("other").await;
    app.run_task(&format!("{other}modify/"), json!({"add_content_units": []}))
        .await;

    let by_name = app.list_all(&format!("{API}/tasks/?ordering=name")).await;
    let names: Vec<&str> = by_name.iter().map(|task| str_field(task, "name")).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "ordering=name sorts by name");
    // Each task of a page shows its own reserved resources, as it does on its own.
    let records: Vec<&serde_json::Value> = (by_name.iter())
        .map(|task| &task["reserved_resources_record"])
        .collect();
    assert!(records.contains(&&json!([repository])), "{records:#?}");
    assert!(records.contains(&&json!([other])), "{records:#?}");
    for task in &by_name {
        let alone = app.get_json(str_field(task, "pulp_href")).await;
        assert_eq!(
            task["reserved_resources_record"], alone["reserved_resources_record"],
            "{task:#}"
        );
    }
    let (status, body) = app.get(&format!("{API}/tasks/?ordering=colour")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app
        .get(&format!("{API}/tasks/?started_at__gte=yesterday"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// A sync whose upstream never answers runs until it is canceled: deleting it meanwhile is a
/// 409, `PATCH {"state": "canceled"}` cancels it, a finished task cannot be canceled again (409),
/// and a finished task can be deleted.
async fn a_task_is_canceled_and_only_finished_tasks_are_deleted(backend: Backend) {
    let fixture = Fixture::generate(3, 9);
    let upstream = Upstream::serve(&fixture).await;
    // Longer than any test runs: the downloads only end when the task is canceled.
    upstream.set_file_delay(Duration::from_secs(3600));
    let app = TestApp::start(backend).await;
    let remote = app
        .create_file_remote("slow", &upstream.manifest_url(), "immediate")
        .await;
    let repository = app.create_file_repository("slow").await;
    let task = app
        .dispatch(
            &format!("{repository}sync/"),
            json!({"remote": remote, "mirror": false}),
        )
        .await;

    let refused = app.delete_href(&task).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);

    let (status, body) = app.patch_json(&task, &json!({"state": "completed"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app.patch_json(&task, &json!({"state": "canceled"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        matches!(body["state"].as_str(), Some("canceled" | "canceling")),
        "{body}"
    );
    let finished = app.wait_task(&task).await;
    assert_eq!(finished["state"], "canceled", "{finished:#}");
    assert_eq!(
        app.latest_version_href(&repository).await,
        format!("{repository}versions/0/"),
        "a canceled sync makes no version"
    );

    let (status, body) = app.patch_json(&task, &json!({"state": "canceled"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    assert_eq!(app.delete_href(&task).await.status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&task).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
