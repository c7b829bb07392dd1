//! Issue #21: the same pulp-cli commands, run against a real Pulp (pulpcore 3.123.1 with
//! pulp_python 3.36.4, started by [`crate::support::pulpcore`]) and against Granary, answer
//! alike: the same fields, the same refusals with the same messages. Where Granary follows a
//! Pulp feature closely, this is the test that it does.

use serde_json::Value;

use crate::pulp_cli::PulpCli;
use crate::support::pulpcore::{ADMIN_PASSWORD, Pulpcore};
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(python_blocklists_answer_as_pulp_python_does);

/// What one server answered to the blocklist commands.
#[derive(Debug)]
struct Answers {
    repository: Value,
    added: Value,
    listed: Value,
    shown: Value,
    bad_version: String,
    duplicate: String,
    upload: String,
    after_removal: Value,
}

/// `pulp python repository blocklist <args> --repository guarded`.
fn blocklist<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["python", "repository", "blocklist"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--repository", "guarded"]);
    all
}

async fn answers_of(cli: &PulpCli, wheel: &std::path::Path) -> Answers {
    let repository = cli
        .run(&["python", "repository", "create", "--name", "guarded"])
        .await;
    let added = cli
        .run(&blocklist(&["add", "--name", "Granary_Demo"]))
        .await;
    cli.run(&blocklist(&[
        "add",
        "--name",
        "granary-dep",
        "--version",
        "0.2.0",
    ]))
    .await;
    let listed = cli.run(&blocklist(&["list"])).await;
    let shown = cli
        .run(&blocklist(&["show", "--name", "granary-demo"]))
        .await;
    let bad_version = cli
        .fails(&blocklist(&[
            "add",
            "--name",
            "x",
            "--version",
            "not a version",
        ]))
        .await;
    let duplicate = cli
        .fails(&blocklist(&["add", "--name", "granary.demo"]))
        .await;
    let upload = cli
        .fails(&crate::python::content_upload(wheel, Some("guarded")))
        .await;
    cli.run(&blocklist(&["remove", "--name", "granary-demo"]))
        .await;
    let after_removal = cli.run(&blocklist(&["list"])).await;
    Answers {
        repository,
        added,
        listed,
        shown,
        bad_version,
        duplicate,
        upload,
        after_removal,
    }
}

/// The names of an object's fields, sorted.
fn fields(object: &Value) -> Vec<String> {
    let mut names: Vec<String> = object.as_object().unwrap().keys().cloned().collect();
    names.sort();
    names
}

/// The `name`/`version` pairs of a listed page, sorted.
fn entries(listed: &Value) -> Vec<(Value, Value)> {
    let mut pairs: Vec<(Value, Value)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry["name"].clone(), entry["version"].clone()))
        .collect();
    pairs.sort_by_key(|pair| format!("{pair:?}"));
    pairs
}

/// pulp_python 3.30's blocklists: the entry Pulp and Granary make of the same `add` has the
/// same fields and normalized name, the same lists and look-ups find the same entries, invalid
/// and duplicate entries are refused with the same messages, and an upload of a blocklisted
/// wheel fails with the same message on both.
async fn python_blocklists_answer_as_pulp_python_does(backend: Backend) {
    let Some(pulp) = Pulpcore::start().await else {
        eprintln!("skipped: a real Pulp needs GRANARY_TEST_DATABASE_URL");
        return;
    };
    let tools = crate::python::tools().await;
    let dir = tempfile::tempdir().unwrap();
    let (wheel, _) = crate::support::python::build_demo_and_dep(&tools, dir.path());
    let app = TestApp::start(backend).await;
    let from_pulp = answers_of(
        &PulpCli::for_server(&pulp.api_origin, "admin", ADMIN_PASSWORD),
        &wheel,
    )
    .await;
    let from_granary = answers_of(&PulpCli::new(&app), &wheel).await;
    let (pulp_answers, granary) = (&from_pulp, &from_granary);
    for answers in [pulp_answers, granary] {
        let repository = answers.repository["pulp_href"].as_str().unwrap();
        assert_eq!(
            answers.repository["blocklist_entries_href"].as_str(),
            Some(format!("{repository}blocklist_entries/").as_str()),
            "{answers:#?}"
        );
    }
    assert_eq!(
        fields(&granary.added),
        fields(&pulp_answers.added),
        "{pulp_answers:#?}"
    );
    for field in ["name", "version", "filename"] {
        assert_eq!(granary.added[field], pulp_answers.added[field], "{field}");
    }
    assert_eq!(entries(&granary.listed), entries(&pulp_answers.listed));
    assert_eq!(granary.shown["name"], pulp_answers.shown["name"]);
    assert_eq!(
        entries(&granary.after_removal),
        entries(&pulp_answers.after_removal)
    );
    let wheel_name = wheel.file_name().unwrap().to_str().unwrap();
    for (what, message, from_pulp, from_granary) in [
        (
            "invalid version",
            "'not a version' is not a valid version.".to_owned(),
            &pulp_answers.bad_version,
            &granary.bad_version,
        ),
        (
            "duplicate",
            "A blocklist entry with this name and version already exists.".to_owned(),
            &pulp_answers.duplicate,
            &granary.duplicate,
        ),
        (
            "upload",
            format!("Blocklisted packages cannot be added to this repository: {wheel_name}"),
            &pulp_answers.upload,
            &granary.upload,
        ),
    ] {
        assert!(from_pulp.contains(&message), "{what}, Pulp: {from_pulp}");
        assert!(
            from_granary.contains(&message),
            "{what}, Granary: {from_granary}"
        );
    }
}
