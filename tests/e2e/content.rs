//! Content that does not come from a sync: uploads, and moving units between repositories with
//! `modify`.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::curl::Downloads;
use crate::support::pulp::{API, created_resources, str_field, summary_count};
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(upload_and_modify, served_paths_follow_every_change);

/// An uploaded file lands in a new version of the repository named in the upload; `modify` adds
/// that same unit to a second repository and removes it again, each change making a new version;
/// the first repository, published and distributed, serves the uploaded bytes.
async fn upload_and_modify(backend: Backend) {
    let app = TestApp::start(backend).await;
    let bytes = b"Hello, world!\nServed by Granary.\n";
    let first = app.create_file_repository("first").await;

    let (status, accepted) = app
        .post_multipart(
            &format!("{API}/content/file/files/"),
            &[
                ("file", Some("world.txt"), bytes.as_slice()),
                ("relative_path", None, b"hello/world.txt".as_slice()),
                ("repository", None, first.as_bytes()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "upload answered {accepted}");
    let task = app.wait_task(str_field(&accepted, "task")).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let created = created_resources(&task);
    let content = created
        .iter()
        .find(|href| href.starts_with(&format!("{API}/content/file/files/")))
        .unwrap_or_else(|| panic!("the upload created no content: {task:#}"))
        .clone();
    assert!(created.contains(&format!("{first}versions/1/")), "{task:#}");
    let unit = app.get_json(&content).await;
    assert_eq!(unit["relative_path"], "hello/world.txt", "{unit:#}");
    assert_eq!(
        unit["sha256"],
        crate::support::fixture::sha256_hex(bytes),
        "{unit:#}"
    );

    let second = app.create_file_repository("second").await;
    let task = app
        .run_task(
            &format!("{second}modify/"),
            json!({"add_content_units": [content]}),
        )
        .await;
    assert!(
        created_resources(&task).contains(&format!("{second}versions/1/")),
        "{task:#}"
    );
    let version = app.get_json(&format!("{second}versions/1/")).await;
    assert_eq!(
        summary_count(&version, "present", "file.file"),
        1,
        "{version:#}"
    );
    let units = app.file_content_in(&format!("{second}versions/1/")).await;
    assert_eq!(units.len(), 1, "{units:?}");
    assert_eq!(units[0]["pulp_href"], content.as_str());

    let task = app
        .run_task(
            &format!("{second}modify/"),
            json!({"remove_content_units": [content]}),
        )
        .await;
    assert!(
        created_resources(&task).contains(&format!("{second}versions/2/")),
        "{task:#}"
    );
    let version = app.get_json(&format!("{second}versions/2/")).await;
    assert_eq!(
        summary_count(&version, "present", "file.file"),
        0,
        "{version:#}"
    );
    assert_eq!(
        summary_count(&version, "removed", "file.file"),
        1,
        "{version:#}"
    );
    assert!(
        app.file_content_in(&format!("{second}versions/2/"))
            .await
            .is_empty()
    );
    let versions = app.get_json(&format!("{second}versions/")).await;
    assert_eq!(versions["count"], 3, "versions 0, 1 and 2: {versions:#}");
    assert_eq!(
        versions["results"][0]["number"], 2,
        "newest first: {versions:#}"
    );

    let task = app
        .run_task(
            &format!("{API}/publications/file/file/"),
            json!({"repository_version": format!("{first}versions/1/")}),
        )
        .await;
    assert!(!created_resources(&task).is_empty(), "{task:#}");
    let distribution = app
        .distribute_file("first", "first", json!({"repository": first}))
        .await;
    assert_eq!(
        distribution["repository"],
        first.as_str(),
        "{distribution:#}"
    );
    let served = Downloads::new()
        .get(&format!(
            "{}hello/world.txt",
            str_field(&distribution, "base_url")
        ))
        .await
        .expect("the uploaded file is served");
    assert_eq!(served, bytes);
}

/// What a content path serves follows every change at once, although the content app keeps what
/// it resolved in memory: a distribution moved to another publication, a new publication of a
/// followed repository, a deleted publication and a deleted distribution. Each path is read twice
/// before a change, so the second read comes from memory.
async fn served_paths_follow_every_change(backend: Backend) {
    let app = TestApp::start(backend).await;
    let downloads = Downloads::new();
    let first = app.create_file_repository("first").await;
    let second = app.create_file_repository("second").await;
    app.upload_content("file/files", &first, "a.txt", b"one")
        .await;
    app.upload_content("file/files", &second, "a.txt", b"two")
        .await;
    let first_publication = app.publish_file(&first).await;
    let second_publication = app.publish_file(&second).await;

    let moving = app
        .distribute_file(
            "moving",
            "moving",
            json!({"publication": first_publication}),
        )
        .await;
    let moving_url = format!("{}a.txt", str_field(&moving, "base_url"));
    for _ in 0..2 {
        assert_eq!(downloads.get(&moving_url).await.as_deref(), Ok(&b"one"[..]));
    }
    app.update(
        str_field(&moving, "pulp_href"),
        json!({"publication": second_publication}),
    )
    .await;
    assert_eq!(
        downloads.get(&moving_url).await.as_deref(),
        Ok(&b"two"[..]),
        "the distribution serves its new publication"
    );

    let following = app
        .distribute_file("following", "following", json!({"repository": first}))
        .await;
    let new_url = format!("{}new.txt", str_field(&following, "base_url"));
    for _ in 0..2 {
        assert_eq!(status_of(&new_url).await, StatusCode::NOT_FOUND);
    }
    app.upload_content("file/files", &first, "new.txt", b"new")
        .await;
    assert_eq!(
        status_of(&new_url).await,
        StatusCode::NOT_FOUND,
        "a new version is not served before it is published"
    );
    app.publish_file(&first).await;
    assert_eq!(
        downloads.get(&new_url).await.as_deref(),
        Ok(&b"new"[..]),
        "the repository's newest publication is served"
    );

    app.remove(&second_publication).await;
    assert_eq!(
        status_of(&moving_url).await,
        StatusCode::NOT_FOUND,
        "a deleted publication serves nothing"
    );
    app.remove(str_field(&following, "pulp_href")).await;
    assert_eq!(
        status_of(&new_url).await,
        StatusCode::NOT_FOUND,
        "a deleted distribution serves nothing"
    );
}

async fn status_of(url: &str) -> StatusCode {
    reqwest::get(url).await.expect("GET").status()
}
