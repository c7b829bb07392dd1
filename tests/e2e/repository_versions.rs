//! Issue #21, item 5: repository versions as Pulp keeps them, driven with pulp-cli: `autopublish`
//! publishes each new version in the task that makes it, any version may be deleted but the only
//! one and those a distribution serves (the latest included: the one before becomes the latest,
//! and its number is never given again), and `retain_repo_versions` spares served versions. A file
//! uploaded at a path replaces the one there (pulp_file's `repo_key_fields`, WIT 0.3.0's
//! `repository-key`), and a version may not hold two files at one path.

use serde_json::Value;

use crate::pulp_cli::PulpCli;
use crate::support::pulp::{API, created_resources, error_description, str_field, summary_count};
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(
    versions_are_published_deleted_and_retained_as_in_pulp,
    a_file_uploaded_at_a_path_replaces_the_one_there_as_in_pulp,
);

/// Uploads `name` holding `body` into the file repository `repository` with pulp-cli.
pub(crate) async fn upload(
    pulp: &PulpCli,
    dir: &std::path::Path,
    repository: &str,
    name: &str,
    body: &str,
) {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write the upload");
    pulp.run(&[
        "file",
        "content",
        "upload",
        "--file",
        path.to_str().expect("utf-8 path"),
        "--relative-path",
        name,
        "--repository",
        repository,
    ])
    .await;
}

/// `pulp file repository version destroy` of version `number` of `repository`.
fn destroy<'a>(repository: &'a str, number: &'a str) -> [&'a str; 8] {
    [
        "file",
        "repository",
        "version",
        "destroy",
        "--repository",
        repository,
        "--version",
        number,
    ]
}

/// The numbers of the versions `pulp file repository version list` prints, ascending.
async fn numbers(pulp: &PulpCli, repository: &str) -> Vec<i64> {
    let listed = pulp
        .run(&[
            "file",
            "repository",
            "version",
            "list",
            "--repository",
            repository,
        ])
        .await;
    let mut numbers: Vec<i64> = listed
        .as_array()
        .expect("a list of versions")
        .iter()
        .map(|version| version["number"].as_i64().expect("a number"))
        .collect();
    numbers.sort_unstable();
    numbers
}

/// The status and body of a GET of `path` on the content app, anonymously.
async fn served(app: &TestApp, base_url: &str, path: &str) -> (u16, String) {
    let response = app
        .anonymous()
        .get(format!("{base_url}{path}"))
        .send()
        .await
        .expect("GET from the content app");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn versions_are_published_deleted_and_retained_as_in_pulp(backend: Backend) {
    let app = TestApp::start(backend).await;
    let pulp = PulpCli::new(&app);
    let scratch = tempfile::tempdir().expect("scratch directory");
    let dir = scratch.path();

    let repository = pulp
        .run(&[
            "file",
            "repository",
            "create",
            "--name",
            "rolled",
            "--autopublish",
        ])
        .await;
    assert_eq!(repository["autopublish"], true, "{repository:#}");
    let repository_href = str_field(&repository, "pulp_href").to_owned();
    let distribution = pulp
        .run(&[
            "file",
            "distribution",
            "create",
            "--name",
            "rolled",
            "--base-path",
            "rolled",
            "--repository",
            "rolled",
        ])
        .await;
    let base_url = str_field(&distribution, "base_url").to_owned();

    // Each upload's version is published by its own task: the distribution that follows the
    // repository serves it as soon as the upload returns.
    upload(&pulp, dir, "rolled", "a.txt", "alpha").await;
    assert_eq!(
        served(&app, &base_url, "a.txt").await,
        (200, "alpha".into())
    );
    upload(&pulp, dir, "rolled", "b.txt", "bravo").await;
    assert_eq!(
        served(&app, &base_url, "b.txt").await,
        (200, "bravo".into())
    );
    let tasks = app
        .list_all(&format!(
            "{API}/tasks/?reserved_resources={repository_href}"
        ))
        .await;
    let upload_task = tasks
        .iter()
        .find(|task| {
            created_resources(task)
                .iter()
                .any(|href| href.ends_with("versions/2/"))
        })
        .unwrap_or_else(|| panic!("the upload that made version 2: {tasks:#?}"));
    let publications = app
        .list_all(&format!(
            "{API}/publications/file/file/?repository_version={repository_href}versions/2/"
        ))
        .await;
    assert_eq!(publications.len(), 1, "{publications:#?}");
    let publication_2 = str_field(&publications[0], "pulp_href").to_owned();
    assert!(
        created_resources(upload_task).contains(&publication_2),
        "the upload's task created the publication: {upload_task:#}"
    );

    // Version 2 is what the distribution serves (its newest publication): protected.
    let refused = pulp.fails(&destroy("rolled", "2")).await;
    assert!(
        refused.contains("currently being used to distribute content"),
        "{refused}"
    );

    // Served by version 1's publication instead, version 2, the latest, may go: version 1 is
    // the latest again and b.txt is gone from it.
    let publication_1 = app
        .list_all(&format!(
            "{API}/publications/file/file/?repository_version={repository_href}versions/1/"
        ))
        .await;
    let publication_1 = str_field(&publication_1[0], "pulp_href").to_owned();
    pulp.run(&[
        "file",
        "distribution",
        "update",
        "--name",
        "rolled",
        "--publication",
        &publication_1,
    ])
    .await;
    pulp.run(&destroy("rolled", "2")).await;
    let shown = pulp
        .run(&["file", "repository", "show", "--name", "rolled"])
        .await;
    assert_eq!(
        shown["latest_version_href"],
        format!("{repository_href}versions/1/"),
        "{shown:#}"
    );
    assert_eq!(numbers(&pulp, "rolled").await, [0, 1]);
    assert_eq!(served(&app, &base_url, "b.txt").await.0, 404);
    let (status, _) = app.get(&publication_2).await;
    assert_eq!(
        status.as_u16(),
        404,
        "the deleted version's publication went"
    );

    // The next version is 3, never a second 2, and holds a and c, not b.
    upload(&pulp, dir, "rolled", "c.txt", "charlie").await;
    assert_eq!(numbers(&pulp, "rolled").await, [0, 1, 3]);
    let paths = content_paths(&app, &format!("{repository_href}versions/3/")).await;
    assert_eq!(paths, ["a.txt", "c.txt"]);

    // Version 0 may go too (its changes fold into version 1); version 1 is served: refused.
    pulp.run(&destroy("rolled", "0")).await;
    assert_eq!(numbers(&pulp, "rolled").await, [1, 3]);
    let (status, body) = app
        .delete_json(&format!("{repository_href}versions/1/"))
        .await;
    assert_eq!(status.as_u16(), 400, "{body}");

    // Keeping one version keeps the served one besides: 1 stays, 3 goes when 4 is made.
    pulp.run(&[
        "file",
        "repository",
        "update",
        "--name",
        "rolled",
        "--retain-repo-versions",
        "1",
    ])
    .await;
    upload(&pulp, dir, "rolled", "d.txt", "delta").await;
    assert_eq!(numbers(&pulp, "rolled").await, [1, 4]);
    assert_eq!(
        served(&app, &base_url, "a.txt").await,
        (200, "alpha".into())
    );
    let paths = content_paths(&app, &format!("{repository_href}versions/4/")).await;
    assert_eq!(paths, ["a.txt", "c.txt", "d.txt"]);

    // A repository's only version stays.
    pulp.run(&["file", "repository", "create", "--name", "empty"])
        .await;
    let refused = pulp.fails(&destroy("empty", "0")).await;
    assert!(refused.contains("last remaining version"), "{refused}");
}

/// The relative paths of the file content in a version, sorted. On the way, the `count` of the
/// version's content, of what it added and of what it removed agree between the list of every
/// type (counted from the version's rows alone) and the list of files (counted unit by unit).
async fn content_paths(app: &TestApp, version: &str) -> Vec<String> {
    for filter in [
        "repository_version",
        "repository_version_added",
        "repository_version_removed",
    ] {
        let count = |list: &str| {
            let url = format!("{API}/{list}?{filter}={version}&limit=1");
            async move { app.get_json(&url).await["count"].clone() }
        };
        assert_eq!(
            count("content/").await,
            count("content/file/files/").await,
            "{filter}={version}"
        );
    }
    let content = app
        .list_all(&format!(
            "{API}/content/file/files/?repository_version={version}"
        ))
        .await;
    let mut paths: Vec<String> = content
        .iter()
        .map(|unit: &Value| str_field(unit, "relative_path").to_owned())
        .collect();
    paths.sort();
    paths
}

async fn a_file_uploaded_at_a_path_replaces_the_one_there_as_in_pulp(backend: Backend) {
    let app = TestApp::start(backend).await;
    let pulp = PulpCli::new(&app);
    let scratch = tempfile::tempdir().expect("scratch directory");
    let dir = scratch.path();
    let repository = pulp
        .run(&[
            "file",
            "repository",
            "create",
            "--name",
            "keyed",
            "--autopublish",
        ])
        .await;
    let repository_href = str_field(&repository, "pulp_href").to_owned();
    let distribution = pulp
        .run(&[
            "file",
            "distribution",
            "create",
            "--name",
            "keyed",
            "--base-path",
            "keyed",
            "--repository",
            "keyed",
        ])
        .await;
    let base_url = str_field(&distribution, "base_url").to_owned();

    upload(&pulp, dir, "keyed", "a.txt", "first").await;
    upload(&pulp, dir, "keyed", "b.txt", "bravo").await;
    upload(&pulp, dir, "keyed", "a.txt", "second").await;
    assert_eq!(numbers(&pulp, "keyed").await, [0, 1, 2, 3]);
    let third = app.get_json(&format!("{repository_href}versions/3/")).await;
    assert_eq!(summary_count(&third, "added", "file.file"), 1, "{third:#}");
    assert_eq!(
        summary_count(&third, "removed", "file.file"),
        1,
        "{third:#}"
    );
    assert_eq!(
        summary_count(&third, "present", "file.file"),
        2,
        "{third:#}"
    );
    for (number, paths) in [
        (1, &["a.txt"][..]),
        (2, &["a.txt", "b.txt"]),
        (3, &["a.txt", "b.txt"]),
    ] {
        let version = format!("{repository_href}versions/{number}/");
        assert_eq!(content_paths(&app, &version).await, paths);
    }
    assert_eq!(
        served(&app, &base_url, "a.txt").await,
        (200, "second".into())
    );
    let (status, manifest) = served(&app, &base_url, "PULP_MANIFEST").await;
    assert_eq!(status, 200);
    assert_eq!(manifest.lines().count(), 2, "{manifest}");
    // The version before still has the first a.txt.
    let first_in_two = app
        .file_content_in(&format!("{repository_href}versions/2/"))
        .await
        .into_iter()
        .filter(|unit| unit["relative_path"] == "a.txt")
        .count();
    assert_eq!(first_in_two, 1);

    // Two files at one path added in one version: refused, and no version is made.
    let mut units = Vec::new();
    for body in ["one", "two"] {
        let path = dir.join(body);
        std::fs::write(&path, body).expect("write the upload");
        let unit = pulp
            .run(&[
                "file",
                "content",
                "upload",
                "--file",
                path.to_str().expect("utf-8 path"),
                "--relative-path",
                "c.txt",
            ])
            .await;
        units.push(str_field(&unit, "pulp_href").to_owned());
    }
    let task_href = app
        .dispatch(
            &format!("{repository_href}modify/"),
            serde_json::json!({"add_content_units": units}),
        )
        .await;
    let task = app.wait_task(&task_href).await;
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = error_description(&task);
    assert!(
        error.contains("duplicate contents") && error.contains("\"c.txt\""),
        "{error}"
    );
    assert_eq!(numbers(&pulp, "keyed").await, [0, 1, 2, 3]);
}
