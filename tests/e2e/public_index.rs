//! Issue #19: the public Python index, as this machine reaches it. Its project pages are on
//! `pypi.org` and its files on `files.pythonhosted.org`, so a mirror works only if the host
//! fetches files from another origin than the remote's. A handful of small real projects, pinned:
//! an `immediate` sync with `includes` stores every file of those versions with the digests the
//! index announces, the mirror's pages serve them all, and pip downloads the wheels from the
//! mirror alone; then pip installs them through a pull-through distribution cold, and again warm
//! with the upstream gone.
//!
//! Skipped, with a message, only when `https://pypi.org/simple/six/` cannot be fetched from here.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use crate::support::fixture::sha256_hex;
use crate::support::pulp::{API, str_field};
use crate::support::python::{PythonTools, run};
use crate::support::{AppOptions, Backend, TestApp};

sqlite_and_postgres!(a_mirror_and_a_pull_through_cache_of_the_public_index);

const INDEX: &str = "https://pypi.org/simple/";

/// Projects whose pages list thousands of files.
const LARGE_PROJECTS: &[&str] = &["boto3", "botocore"];

/// Small pure-Python projects, each with a wheel and an sdist on the index.
const PINS: &[(&str, &str)] = &[
    ("six", "1.16.0"),
    ("idna", "3.10"),
    ("packaging", "24.2"),
    ("iniconfig", "2.0.0"),
    ("pluggy", "1.5.0"),
];

/// The index's PEP 691 page of `project`, or why there is none.
async fn index_page(project: &str) -> Result<Value, String> {
    let page = reqwest::Client::new()
        .get(format!("{INDEX}{project}/"))
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| format!("{error}"))?;
    let page = page.bytes().await.map_err(|error| format!("{error}"))?;
    serde_json::from_slice(&page).map_err(|error| format!("{error}"))
}

/// `(file name, sha256)` of every file of the pinned versions, as the index's PEP 691 pages
/// announce them, or why they could not be read.
async fn announced_files() -> Result<BTreeSet<(String, String)>, String> {
    let mut files = BTreeSet::new();
    for (project, version) in PINS {
        let page = index_page(project).await?;
        let prefix = format!("{}-{version}", project.replace('-', "_"));
        for file in page["files"].as_array().expect("a files list") {
            let filename = str_field(file, "filename");
            let exact = filename == format!("{prefix}.tar.gz")
                || (filename.ends_with(".whl") && filename.starts_with(&format!("{prefix}-")));
            if exact {
                files.insert((
                    filename.to_owned(),
                    str_field(&file["hashes"], "sha256").to_owned(),
                ));
            }
        }
    }
    Ok(files)
}

/// pip `args` (ending in the option that takes `into`) for the pins, with no index but `index`
/// (the machine's own `find-links` switched off).
fn pip(tools: &PythonTools, index: &str, args: &[&str], into: &Path) -> String {
    run(Command::new(tools.bin("pip"))
        .env("PIP_FIND_LINKS", "")
        .env("PIP_NO_INDEX", "")
        .args(args)
        .arg(into)
        .args([
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--index-url",
            index,
        ])
        .args(
            PINS.iter()
                .map(|(project, version)| format!("{project}=={version}")),
        ))
}

/// `(file name, sha256)` of the files in `dir`.
fn files_in(dir: &Path) -> BTreeSet<(String, String)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            (name, sha256_hex(&std::fs::read(&path).unwrap()))
        })
        .collect()
}

/// A python repository, a remote of the public index with `policy`, and a distribution at
/// `base_path` (with the remote for pull-through when `pull_through`); returns the repository
/// and remote hrefs.
async fn repository_remote_distribution(
    app: &TestApp,
    base_path: &str,
    policy: &str,
    pull_through: bool,
) -> (String, String) {
    let includes: Vec<String> = PINS
        .iter()
        .map(|(project, version)| format!("{project}=={version}"))
        .collect();
    let remote = app
        .create(
            &format!("{API}/remotes/python/python/"),
            json!({"name": base_path, "url": "https://pypi.org/", "policy": policy,
                   "includes": includes}),
        )
        .await;
    let remote = str_field(&remote, "pulp_href").to_owned();
    let repository = app.create_python_repository(base_path).await;
    let mut distribution =
        json!({"name": base_path, "base_path": base_path, "repository": repository});
    if pull_through {
        distribution["remote"] = json!(remote);
    }
    let task = app
        .run_task(&format!("{API}/distributions/python/pypi/"), distribution)
        .await;
    assert_eq!(task["state"], "completed", "{task:#}");
    (repository, remote)
}

/// `(file name, sha256)` of the packages in a repository's latest version.
async fn stored_files(app: &TestApp, repository: &str) -> BTreeSet<(String, String)> {
    let version = app.latest_version_href(repository).await;
    app.list_all(&format!(
        "{API}/content/python/packages/?repository_version={version}"
    ))
    .await
    .iter()
    .map(|unit| {
        (
            str_field(unit, "filename").to_owned(),
            str_field(unit, "sha256").to_owned(),
        )
    })
    .collect()
}

async fn a_mirror_and_a_pull_through_cache_of_the_public_index(backend: Backend) {
    if let Err(error) = index_page("six").await {
        eprintln!("skipped: https://pypi.org is unreachable: {error}");
        return;
    }
    let announced = announced_files()
        .await
        .expect("pypi.org answers six's page but not the others");
    assert_eq!(
        announced.len(),
        2 * PINS.len(),
        "a wheel and an sdist per pin: {announced:?}"
    );
    let tools = tokio::task::spawn_blocking(PythonTools::install)
        .await
        .expect("install the Python clients");
    // The public index is reached the way this machine reaches it, its proxy included.
    let mut options = AppOptions::default();
    for variable in [
        "HTTPS_PROXY",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
        "SSL_CERT_FILE",
    ] {
        if let Ok(value) = std::env::var(variable) {
            options = options.env(variable, &value);
        }
    }
    let app = TestApp::start_with(backend, options).await;
    let dir = tempfile::tempdir().unwrap();

    // A mirror: every file of the pinned versions, with the announced digests.
    let (mirror, remote) = repository_remote_distribution(&app, "mirror", "immediate", false).await;
    let task = app.sync(&mirror, &remote, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(stored_files(&app, &mirror).await, announced);
    // Every file through the mirror's own pages, as an installer finds them.
    let mut served = BTreeSet::new();
    for (project, _) in PINS {
        let page = app
            .anonymous()
            .get(app.url(&format!("/pypi/mirror/simple/{project}/")))
            .header("accept", "application/vnd.pypi.simple.v1+json")
            .send()
            .await
            .unwrap();
        let page: Value = serde_json::from_slice(&page.bytes().await.unwrap()).unwrap();
        for file in page["files"].as_array().unwrap() {
            let url = reqwest::Url::parse(&app.url(&format!("/pypi/mirror/simple/{project}/")))
                .unwrap()
                .join(str_field(file, "url"))
                .unwrap();
            let bytes = app
                .anonymous()
                .get(url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            served.insert((str_field(file, "filename").to_owned(), sha256_hex(&bytes)));
        }
    }
    assert_eq!(
        served, announced,
        "the mirror serves every file, as announced"
    );
    // pip takes the wheels from the mirror alone.
    let downloads = dir.path().join("downloads");
    tokio::task::spawn_blocking({
        let (tools, index, into) = (
            tools.clone(),
            app.url("/pypi/mirror/simple/"),
            downloads.clone(),
        );
        move || {
            pip(
                &tools,
                &index,
                &["download", "--no-deps", "--only-binary", ":all:", "-d"],
                &into,
            )
        }
    })
    .await
    .unwrap();
    let wheels: BTreeSet<(String, String)> = announced
        .iter()
        .filter(|(name, _)| name.ends_with(".whl"))
        .cloned()
        .collect();
    assert_eq!(files_in(&downloads), wheels);

    // A pull-through cache: pip installs cold (the cache fetches the wheels), then warm with the
    // upstream unreachable (the remote now points at a closed port).
    let (cache, remote) = repository_remote_distribution(&app, "cache", "on_demand", true).await;
    let index = app.url("/pypi/cache/simple/");
    let mut timings = Vec::new();
    for round in ["cold", "warm"] {
        if round == "warm" {
            app.update(&remote, json!({"url": "http://127.0.0.1:9/"}))
                .await;
        }
        let target = dir.path().join(round);
        let started = Instant::now();
        tokio::task::spawn_blocking({
            let (tools, index, target) = (tools.clone(), index.clone(), target.clone());
            move || {
                pip(
                    &tools,
                    &index,
                    &["install", "--no-deps", "--target"],
                    &target,
                )
            }
        })
        .await
        .unwrap();
        timings.push((round, started.elapsed()));
        for (project, _) in PINS {
            let module = if *project == "six" {
                "six.py".to_owned()
            } else {
                project.to_string()
            };
            assert!(target.join(&module).exists(), "{round}: {module} installed");
        }
        let cached = stored_files(&app, &cache).await;
        let wheels: BTreeSet<(String, String)> = announced
            .iter()
            .filter(|(name, _)| name.ends_with(".whl"))
            .cloned()
            .collect();
        assert_eq!(
            cached, wheels,
            "{round}: the cache kept the wheels pip fetched"
        );
    }
    eprintln!(
        "pip install of {} pins through the cache: {timings:?}",
        PINS.len()
    );

    // Real size: boto3 and botocore list thousands of files each. An on_demand sync declares
    // every one of them, and a pull-through page lists them all.
    let mut expected = 0;
    for project in LARGE_PROJECTS {
        let page = index_page(project).await.unwrap();
        expected += page["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|file| file["hashes"]["sha256"].is_string())
            .count();
    }
    assert!(expected > 5000, "{expected} files");
    let large = app
        .create(
            &format!("{API}/remotes/python/python/"),
            json!({"name": "large", "url": "https://pypi.org/", "policy": "on_demand", "prereleases": true,
                   "includes": LARGE_PROJECTS}),
        )
        .await;
    let large = str_field(&large, "pulp_href");
    let repository = &app.create_python_repository("large").await;
    let task = app.sync(repository, large, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let version = app.latest_version_href(repository).await;
    let count = app
        .count(&format!(
            "{API}/content/python/packages/?repository_version={version}"
        ))
        .await;
    // The index may gain a release between the two reads.
    assert!(count as usize >= expected, "{count} of {expected}");
    let task = app
        .run_task(
            &format!("{API}/distributions/python/pypi/"),
            json!({"name": "large", "base_path": "large", "repository": repository,
                   "remote": large}),
        )
        .await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let page = app
        .anonymous()
        .get(app.url("/pypi/large/simple/boto3/"))
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let page: Value = serde_json::from_slice(&page.bytes().await.unwrap()).unwrap();
    assert!(page["files"].as_array().unwrap().len() > 4000);
    eprintln!(
        "{count} files of {LARGE_PROJECTS:?} declared on demand; server RSS {} MiB",
        app.rss_kib() / 1024
    );
}
