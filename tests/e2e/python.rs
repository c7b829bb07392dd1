//! Issue #4: the built-in `python` content type (pulp_python) with the real clients. Packages are
//! built with `python -m build`, uploaded with twine and `uv publish`, installed with pip and uv
//! into fresh virtual environments; a repository syncs from another index; a distribution with a
//! remote is a pull-through cache; bad uploads are refused, a tar.gz bomb among them within
//! milliseconds rather than at the plugin's CPU limit (issue #18); the simple pages match
//! snapshots; PyPI's JSON API describes what is stored (issue #21).

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::curl::Downloads;
use crate::support::fixture::{FixtureFile, sha256_hex};
use crate::support::pulp::{API, created_resources, str_field};
use crate::support::python::{
    PythonTools, build_demo_and_dep, demo, dep, pip_install_demo, run, run_failing, twine_upload,
    uv_install_demo,
};
use crate::support::{Backend, TestApp, Upstream};

sqlite_and_postgres!(
    uploaded_packages_install_with_pip_and_uv,
    sync_honours_includes_and_excludes,
    pull_through_caches_what_clients_fetch,
    bad_uploads_are_refused_and_store_nothing,
    a_tar_gz_bomb_upload_is_refused_and_adds_no_content,
    kept_pages_change_with_the_version_and_keep_formats_apart,
    the_json_api_describes_stored_releases_as_pypi_does,
    repair_metadata_rewrites_what_the_packages_say,
    repair_metadata_fetches_packages_never_downloaded,
    blocklisted_packages_are_refused_as_pulp_python_refuses_them,
    an_upload_runs_at_once_unless_its_repository_is_busy,
    pulp_cli_publishes_distributes_and_lists_python_content,
);

/// The clients, installed once per test binary (off the async runtime: pip takes a while).
pub(crate) async fn tools() -> PythonTools {
    tokio::task::spawn_blocking(PythonTools::install)
        .await
        .expect("install the Python clients")
}

/// A Python repository and a distribution serving its latest version at `/pypi/<base_path>/`;
/// returns the repository href. `extra` adds distribution fields (`remote`, `allow_uploads`).
pub(crate) async fn repository_and_distribution(
    app: &TestApp,
    base_path: &str,
    extra: Value,
) -> String {
    let repository = app.create_python_repository(base_path).await;
    let mut body = json!({"name": base_path, "base_path": base_path, "repository": repository});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().expect("extra fields").clone());
    let task = app
        .run_task(&format!("{API}/distributions/python/pypi/"), body)
        .await;
    assert!(
        created_resources(&task)
            .iter()
            .any(|href| href.starts_with(&format!("{API}/distributions/python/pypi/"))),
        "{task:#}"
    );
    repository
}

/// The file names in the latest version of `repository`.
async fn filenames(app: &TestApp, repository: &str) -> Vec<String> {
    let version = app.latest_version_href(repository).await;
    let mut names: Vec<String> = app
        .list_all(&format!(
            "{API}/content/python/packages/?repository_version={version}&limit=1000"
        ))
        .await
        .iter()
        .map(|unit| str_field(unit, "filename").to_owned())
        .collect();
    names.sort();
    names
}

fn file_name(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

async fn uploaded_packages_install_with_pip_and_uv(backend: Backend) {
    let tools = tools().await;
    let dir = tempfile::tempdir().unwrap();
    let (wheel, sdist) = build_demo_and_dep(&tools, dir.path());
    let app = TestApp::start(backend).await;
    let repository = repository_and_distribution(&app, "team", json!({})).await;
    let index = app.url("/pypi/team/");
    let legacy = format!("{index}legacy/");

    // twine uploads the wheel with the admin's password; uv publishes the sdist with an API
    // token, as PyPI users do (user `__token__`). Each upload is a new repository version.
    run(&mut twine_upload(
        &tools,
        &legacy,
        app.credentials(),
        &[&wheel],
        &[],
    ));
    let admin = app.get_json(&format!("{API}/users/?username=admin")).await;
    let admin_href = admin["results"][0]["pulp_href"]
        .as_str()
        .expect("the admin user")
        .to_owned();
    let token = app
        .create(&format!("{admin_href}tokens/"), json!({"name": "uv"}))
        .await;
    let token = token["token"].as_str().expect("the token's secret");
    run(Command::new(tools.bin("uv"))
        .args([
            "publish",
            "--publish-url",
            &legacy,
            "--username",
            "__token__",
            "--password",
            token,
        ])
        .arg(&sdist));
    let (user, password) = app.credentials();
    assert_eq!(
        app.latest_version_href(&repository).await,
        format!("{repository}versions/2/")
    );
    assert_eq!(
        filenames(&app, &repository).await,
        [
            "granary_demo-1.0-py3-none-any.whl",
            "granary_dep-0.2.0.tar.gz"
        ]
    );

    // The same file again: 400 "File already exists". twine shows the status (its
    // --skip-existing is for PyPI only since 6.1); uv publish skips the file, by the index
    // (--check-url) and by the answer's text.
    let refused = run_failing(&mut twine_upload(
        &tools,
        &legacy,
        app.credentials(),
        &[&wheel],
        &[],
    ));
    assert!(refused.contains("400 Bad Request"), "{refused}");
    let uv_publish = |extra: &[&str]| {
        let mut command = Command::new(tools.bin("uv"));
        command
            .args([
                "publish",
                "--publish-url",
                &legacy,
                "--username",
                user,
                "--password",
                password,
            ])
            .args(extra)
            .arg(&wheel);
        command
    };
    let skipped = run(&mut uv_publish(&[
        "--check-url",
        &format!("{index}simple/"),
    ]));
    assert!(skipped.contains("already exists"), "{skipped}");
    let answered = run_failing(&mut uv_publish(&[]));
    assert!(answered.contains("File already exists"), "{answered}");
    assert_eq!(
        app.latest_version_href(&repository).await,
        format!("{repository}versions/2/"),
        "a refused upload makes no version"
    );

    // pip resolves the demo, reads its PEP 658 metadata, builds the dependency's sdist, imports.
    let pip = tokio::task::spawn_blocking({
        let (tools, dir, index) = (
            tools.clone(),
            dir.path().to_owned(),
            format!("{index}simple/"),
        );
        move || pip_install_demo(&tools, &dir, &index)
    })
    .await
    .unwrap();
    assert!(
        pip.contains("granary_demo-1.0-py3-none-any.whl.metadata"),
        "pip fetched the wheel's metadata file:\n{pip}"
    );
    tokio::task::spawn_blocking({
        let (tools, dir, index) = (
            tools.clone(),
            dir.path().to_owned(),
            format!("{index}simple/"),
        );
        move || uv_install_demo(&tools, &dir, &index)
    })
    .await
    .unwrap();

    // The metadata file is the wheel's METADATA, and the page announces its sha256.
    let curl = Downloads::new();
    let page = curl
        .request(
            &format!("{index}simple/granary-demo/"),
            &["-H", "Accept: application/vnd.pypi.simple.v1+json"],
        )
        .await;
    let page: Value = serde_json::from_slice(&page.body).unwrap();
    let metadata = curl
        .get(&format!(
            "{index}packages/granary-demo/granary_demo-1.0-py3-none-any.whl.metadata"
        ))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&metadata).contains("Requires-Dist: granary-dep>=0.2"));
    assert_eq!(
        page["files"][0]["core-metadata"]["sha256"],
        sha256_hex(&metadata)
    );
    let wheel_bytes = std::fs::read(&wheel).unwrap();
    assert_eq!(
        page["files"][0]["hashes"]["sha256"],
        sha256_hex(&wheel_bytes)
    );
    assert_eq!(page["files"][0]["size"], wheel_bytes.len());

    // A publication writes the HTML pages statically and publishes the files under packages/.
    let task = app
        .run_task(
            &format!("{API}/publications/python/pypi/"),
            json!({"repository": repository}),
        )
        .await;
    let publication = created_resources(&task)
        .into_iter()
        .find(|href| href.starts_with(&format!("{API}/publications/python/pypi/")))
        .unwrap_or_else(|| panic!("no publication: {task:#}"));
    app.run_task(
        &format!("{API}/distributions/python/pypi/"),
        json!({"name": "published", "base_path": "published", "publication": publication}),
    )
    .await;
    let static_page = curl
        .get(&app.url("/pulp/content/published/simple/granary-demo/index.html"))
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&static_page).contains(
            "href=\"../../packages/granary-demo/granary_demo-1.0-py3-none-any.whl#sha256="
        ),
        "{}",
        String::from_utf8_lossy(&static_page)
    );
    let published_wheel =
        curl.get(&app.url(
            "/pulp/content/published/packages/granary-demo/granary_demo-1.0-py3-none-any.whl",
        ))
        .await
        .unwrap();
    assert_eq!(published_wheel, wheel_bytes);
    // pip installs from the publication too: its directories serve their static index.html.
    tokio::task::spawn_blocking({
        let (tools, dir, index) = (
            tools.clone(),
            dir.path().to_owned(),
            app.url("/pypi/published/simple/"),
        );
        move || pip_install_demo(&tools, &dir, &index)
    })
    .await
    .unwrap();

    // A name that is not normalized redirects to the normalized one.
    let redirect = curl
        .request(&format!("{index}simple/Granary_Demo/"), &[])
        .await;
    assert_eq!(redirect.status, 301);
    assert_eq!(
        redirect.header("location"),
        Some(format!("{index}simple/granary-demo/").as_str())
    );
}

/// Uploads `files` to the distribution at `base_path` with twine.
async fn upload(app: &TestApp, tools: &PythonTools, base_path: &str, files: &[PathBuf]) {
    let legacy = app.url(&format!("/pypi/{base_path}/legacy/"));
    let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    run(&mut twine_upload(
        tools,
        &legacy,
        app.credentials(),
        &files,
        &[],
    ));
}

/// GET `url` with this `Accept`: the status, the `Content-Type` and the body.
async fn page_as(app: &TestApp, url: &str, accept: &str) -> (StatusCode, String, String) {
    let response = app
        .anonymous()
        .get(url)
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// The host keeps the simple pages the plugin builds (issue #20), yet a page changes as soon as
/// the distribution serves a new version, the JSON and HTML forms of a page (PEP 691 `Accept`)
/// never answer for one another, and a client holding a page revalidates it with `ETag`.
async fn kept_pages_change_with_the_version_and_keep_formats_apart(backend: Backend) {
    const JSON: &str = "application/vnd.pypi.simple.v1+json";
    const HTML: &str = "text/html";
    let tools = tools().await;
    let dir = tempfile::tempdir().unwrap();
    let (wheel, sdist) = build_demo_and_dep(&tools, dir.path());
    let app = TestApp::start(backend).await;
    repository_and_distribution(&app, "kept", json!({})).await;
    upload(&app, &tools, "kept", std::slice::from_ref(&wheel)).await;
    let index = app.url("/pypi/kept/simple/");
    let project = app.url("/pypi/kept/simple/granary-dep/");
    let (status, _, _) = page_as(&app, &project, HTML).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "granary-dep is not uploaded yet"
    );

    for round in 0..3 {
        let (status, content_type, html) = page_as(&app, &index, HTML).await;
        assert_eq!(status, StatusCode::OK, "round {round}");
        assert!(
            content_type.starts_with("text/html"),
            "round {round}: {content_type}"
        );
        assert!(html.contains(">granary-demo</a>"), "round {round}: {html}");
        let (status, content_type, json) = page_as(&app, &index, JSON).await;
        assert_eq!(status, StatusCode::OK, "round {round}");
        assert_eq!(content_type, JSON, "round {round}");
        let json: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            json["projects"][0]["name"], "granary-demo",
            "round {round}: {json}"
        );
    }

    // A second project uploaded: the very next requests see it, in both forms.
    upload(&app, &tools, "kept", std::slice::from_ref(&sdist)).await;
    let (_, _, html) = page_as(&app, &index, HTML).await;
    assert!(html.contains(">granary-dep</a>"), "{html}");
    let (_, _, json) = page_as(&app, &index, JSON).await;
    assert!(json.contains("\"granary-dep\""), "{json}");
    let (status, _, html) = page_as(&app, &project, HTML).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(file_name(&sdist)), "{html}");

    // pip's cache revalidates what it holds: an unchanged page is a 304 without a body.
    let response = app
        .anonymous()
        .get(&index)
        .header("accept", HTML)
        .send()
        .await
        .unwrap();
    let etag = response.headers().get("etag").expect("an ETag").clone();
    assert!(
        response.headers().get("granary-cache-control").is_none(),
        "the host's header"
    );
    let revalidated = app
        .anonymous()
        .get(&index)
        .header("accept", HTML)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert!(revalidated.bytes().await.unwrap().is_empty());
}

async fn sync_honours_includes_and_excludes(backend: Backend) {
    let tools = tools().await;
    let dir = tempfile::tempdir().unwrap();
    let built = tokio::task::spawn_blocking({
        let (tools, dir) = (tools.clone(), dir.path().to_owned());
        move || {
            vec![
                dep("0.1.0").build(&tools, &dir, "sdist"),
                dep("0.2.0").build(&tools, &dir, "sdist"),
                dep("0.2.0").build(&tools, &dir, "wheel"),
                dep("0.3.0b1").build(&tools, &dir, "sdist"),
                demo().build(&tools, &dir, "wheel"),
            ]
        }
    })
    .await
    .unwrap();
    // The upstream index is another distribution of the same server.
    let app = TestApp::start(backend).await;
    repository_and_distribution(&app, "upstream", json!({})).await;
    upload(&app, &tools, "upstream", &built).await;

    let remote = app
        .create(
            &format!("{API}/remotes/python/python/"),
            json!({
                "name": "selective",
                "url": app.url("/pypi/upstream/"),
                "policy": "immediate",
                "includes": ["granary-dep>=0.2", "granary-demo"],
                "excludes": ["granary-demo==1.0"],
                "package_types": ["sdist"],
            }),
        )
        .await;
    let remote = str_field(&remote, "pulp_href").to_owned();
    let mirror = repository_and_distribution(&app, "mirror", json!({})).await;
    let task = app.sync(&mirror, &remote, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    // 0.1.0 is below the include, 0.3.0b1 a pre-release, the wheels not sdists, demo excluded.
    assert_eq!(filenames(&app, &mirror).await, ["granary_dep-0.2.0.tar.gz"]);
    let synced = app.latest_version_href(&mirror).await;

    let task = app.sync(&mirror, &remote, false).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(
        app.latest_version_href(&mirror).await,
        synced,
        "a resync without upstream changes creates no version"
    );

    let everything = app
        .create(
            &format!("{API}/remotes/python/python/"),
            json!({"name": "everything", "url": app.url("/pypi/upstream/simple/"), "policy": "on_demand", "prereleases": true}),
        )
        .await;
    let task = app
        .sync(&mirror, str_field(&everything, "pulp_href"), true)
        .await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(
        filenames(&app, &mirror).await,
        [
            "granary_demo-1.0-py3-none-any.whl",
            "granary_dep-0.1.0.tar.gz",
            "granary_dep-0.2.0-py3-none-any.whl",
            "granary_dep-0.2.0.tar.gz",
            "granary_dep-0.3.0b1.tar.gz",
        ]
    );
    // `keep_latest_packages`: the newest two versions of each project (pre-releases count when
    // they are synced); a mirror sync drops the rest.
    let latest = app
        .create(
            &format!("{API}/remotes/python/python/"),
            json!({"name": "latest", "url": app.url("/pypi/upstream/simple/"), "policy": "on_demand", "prereleases": true, "keep_latest_packages": 2}),
        )
        .await;
    let newest = repository_and_distribution(&app, "newest", json!({})).await;
    let task = app
        .sync(&newest, str_field(&latest, "pulp_href"), true)
        .await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(
        filenames(&app, &newest).await,
        [
            "granary_demo-1.0-py3-none-any.whl",
            "granary_dep-0.2.0-py3-none-any.whl",
            "granary_dep-0.2.0.tar.gz",
            "granary_dep-0.3.0b1.tar.gz",
        ]
    );
    let (status, body) = app
        .post_json(
            &format!("{API}/remotes/python/python/"),
            &json!({"name": "negative", "url": app.url("/pypi/upstream/simple/"), "keep_latest_packages": -1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["keep_latest_packages"].is_array(), "{body}");

    // The mirror serves what it synced (on demand: fetched from the upstream on first request).
    tokio::task::spawn_blocking({
        let (tools, dir, index) = (
            tools.clone(),
            dir.path().to_owned(),
            app.url("/pypi/mirror/simple/"),
        );
        move || pip_install_demo(&tools, &dir, &index)
    })
    .await
    .unwrap();
}

/// A static PEP 503 tree (`simple/<project>/` pages linking to `files/<file>`) for `files`.
fn static_index(files: &[PathBuf]) -> Vec<FixtureFile> {
    let mut tree = Vec::new();
    let mut pages: std::collections::BTreeMap<String, String> = Default::default();
    for path in files {
        let bytes = std::fs::read(path).unwrap();
        let name = file_name(path);
        let project = name.split('-').next().unwrap().replace('_', "-");
        pages.entry(project).or_default().push_str(&format!(
            "<a href=\"../../files/{name}#sha256={}\" data-requires-python=\"&gt;=3.8\">{name}</a><br>\n",
            sha256_hex(&bytes)
        ));
        tree.push(FixtureFile::new(format!("files/{name}"), bytes));
    }
    for (project, links) in pages {
        tree.push(FixtureFile::new(
            format!("simple/{project}/"),
            format!("<!DOCTYPE html><html><body>\n{links}</body></html>\n").into_bytes(),
        ));
    }
    tree
}

/// The demo wheel, the dep 0.2.0 sdist and the dep versions `dep_wheels` as wheels, built in
/// `dir` off the async runtime (`python -m build` takes a while).
async fn demo_dep_and_wheels(
    tools: &PythonTools,
    dir: &Path,
    dep_wheels: &'static [&'static str],
) -> Vec<PathBuf> {
    let (tools, dir) = (tools.clone(), dir.to_owned());
    tokio::task::spawn_blocking(move || {
        let (wheel, sdist) = build_demo_and_dep(&tools, &dir);
        let wheels = dep_wheels
            .iter()
            .map(|version| dep(version).build(&tools, &dir, "wheel"));
        [wheel, sdist].into_iter().chain(wheels).collect()
    })
    .await
    .unwrap()
}

async fn pull_through_caches_what_clients_fetch(backend: Backend) {
    let tools = tools().await;
    let dir = tempfile::tempdir().unwrap();
    let built = demo_dep_and_wheels(&tools, dir.path(), &["0.2.0"]).await;
    let mut upstream = Upstream::serve_with_manifest(&static_index(&built), String::new()).await;
    let app = TestApp::start(backend).await;
    let remote = app
        .create(
            &format!("{API}/remotes/python/python/"),
            json!({"name": "upstream", "url": upstream.base_url(), "policy": "on_demand"}),
        )
        .await;
    let cache = repository_and_distribution(
        &app,
        "cache",
        json!({"remote": str_field(&remote, "pulp_href")}),
    )
    .await;
    let index = app.url("/pypi/cache/simple/");

    // pip sees the upstream's projects through the cache, and what it fetched is kept. pip
    // prefers the wheel of granary-dep now that the upstream has one.
    tokio::task::spawn_blocking({
        let (tools, dir, index) = (tools.clone(), dir.path().to_owned(), index.clone());
        move || pip_install_demo(&tools, &dir, &index)
    })
    .await
    .unwrap();
    assert_eq!(
        filenames(&app, &cache).await,
        [
            "granary_demo-1.0-py3-none-any.whl",
            "granary_dep-0.2.0-py3-none-any.whl"
        ]
    );

    // Twenty clients ask at once for a file nobody fetched yet: the upstream sees one request.
    let sdist = &built[1];
    let expected = std::fs::read(sdist).unwrap();
    upstream.set_file_delay(std::time::Duration::from_millis(300));
    let url = app.url(&format!(
        "/pypi/cache/packages/granary-dep/{}",
        file_name(sdist)
    ));
    let requests = (0..20).map(|_| {
        let (client, url) = (app.anonymous().clone(), url.clone());
        tokio::spawn(async move {
            let response = client.get(&url).send().await.expect("GET the file");
            (
                response.status(),
                response.bytes().await.expect("read the file"),
            )
        })
    });
    for request in futures::future::join_all(requests).await {
        let (status, body) = request.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body.as_ref(),
            expected.as_slice(),
            "every client gets the verified file"
        );
    }
    assert_eq!(
        upstream.requests_for(&format!("files/{}", file_name(sdist))),
        1,
        "one upstream fetch for twenty concurrent requests: {:?}",
        upstream.request_counts()
    );
    upstream.set_file_delay(std::time::Duration::ZERO);

    // With the upstream gone, the cache still installs what it has.
    upstream.stop().await;
    tokio::task::spawn_blocking({
        let (tools, dir, index) = (tools.clone(), dir.path().to_owned(), index.clone());
        move || pip_install_demo(&tools, &dir, &index)
    })
    .await
    .unwrap();
}

async fn bad_uploads_are_refused_and_store_nothing(backend: Backend) {
    let tools = tools().await;
    let dir = tempfile::tempdir().unwrap();
    let (wheel, _) = build_demo_and_dep(&tools, dir.path());
    let wheel_bytes = std::fs::read(&wheel).unwrap();
    // A wheel with code but no .dist-info/METADATA, written with Python's zipfile.
    let no_metadata = dir.path().join("no-metadata.whl");
    run(Command::new(tools.bin("python")).arg("-c").arg(format!(
        "import zipfile; zipfile.ZipFile({:?}, 'w').writestr('granary_demo/__init__.py', '')",
        no_metadata.to_str().unwrap()
    )));
    let no_metadata = std::fs::read(no_metadata).unwrap();

    let app = TestApp::start(backend).await;
    let repository = repository_and_distribution(&app, "strict", json!({})).await;
    let cases: [(&str, &str, &[u8], &str); 4] = [
        (
            "granary_demo-1.0-py3-none-any.whl",
            "1.0",
            &no_metadata,
            "has no granary_demo-<version>.dist-info/METADATA",
        ),
        (
            "granary_demo-1.0-py3-none-any.whl",
            "1.0",
            b"PK\x03\x04 not really a zip",
            "not a valid zip archive",
        ),
        (
            "granary_demo-1.0-py3-none-any.whl",
            "2.0",
            &wheel_bytes,
            "the form has version",
        ),
        (
            "granary_demo-2.0-py3-none-any.whl",
            "2.0",
            &wheel_bytes,
            "has version 2.0 but its metadata has version 1.0",
        ),
    ];
    for (filename, version, bytes, message) in cases {
        let (status, body) = app
            .post_multipart(
                "/pypi/strict/legacy/",
                &[
                    (":action", None, b"file_upload".as_slice()),
                    ("protocol_version", None, b"1"),
                    ("name", None, b"granary-demo"),
                    ("version", None, version.as_bytes()),
                    ("content", Some(filename), bytes),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{filename}: {body}");
        assert!(
            body.to_string().contains(message),
            "{filename}: {body} should say {message:?}"
        );
    }
    assert_eq!(
        app.latest_version_href(&repository).await,
        format!("{repository}versions/0/"),
        "no refused upload made a version"
    );
    assert_eq!(
        app.count(&format!("{API}/content/python/packages/")).await,
        0
    );

    // A distribution can refuse uploads altogether.
    repository_and_distribution(&app, "closed", json!({"allow_uploads": false})).await;
    let (status, body) = app
        .post_multipart(
            "/pypi/closed/legacy/",
            &[
                (":action", None, b"file_upload".as_slice()),
                (
                    "content",
                    Some("granary_demo-1.0-py3-none-any.whl"),
                    &wheel_bytes,
                ),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.to_string().contains("allow_uploads is false"),
        "{body}"
    );
}

/// Deflates `input` into a raw deflate stream, ending with `flush`.
fn deflate(compress: &mut flate2::Compress, input: &[u8], flush: flate2::FlushCompress) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 64 + 4096);
    let before = compress.total_in();
    compress.compress_vec(input, &mut out, flush).unwrap();
    assert_eq!(compress.total_in() - before, input.len() as u64);
    out
}

/// An sdist `demo-1.0.tar.gz` holding one file, `demo-1.0/zeros`, of `mib` MiB of zeros, and no
/// PKG-INFO. Built without deflating it all: a MiB of zeros is deflated once after a flush to a
/// byte boundary, and that block, which decodes to a MiB of zeros after any run of zeros, is
/// repeated. Deflate shrinks zeros about 1000:1, so 4 GiB take about 4 MiB.
fn tar_gz_bomb(mib: u64) -> Vec<u8> {
    use flate2::{Compress, Compression, Crc, FlushCompress};
    const MIB: usize = 1024 * 1024;
    let mut header = tar::Header::new_ustar();
    header.set_path("demo-1.0/zeros").unwrap();
    header.set_size(mib * MIB as u64);
    header.set_mode(0o644);
    header.set_cksum();
    let zeros = vec![0u8; MIB];
    let mut compress = Compress::new(Compression::best(), false);
    let mut crc = Crc::new();
    let mut zeros_crc = Crc::new();
    zeros_crc.update(&zeros);
    // gzip: magic, deflate, no flags, no time, no extra flags, unknown OS.
    let mut archive = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    archive.extend(deflate(
        &mut compress,
        header.as_bytes(),
        FlushCompress::Sync,
    ));
    crc.update(header.as_bytes());
    let first = deflate(&mut compress, &zeros, FlushCompress::Sync);
    let repeated = deflate(&mut compress, &zeros, FlushCompress::Sync);
    archive.extend(first);
    for _ in 1..mib {
        archive.extend_from_slice(&repeated);
    }
    for _ in 0..mib {
        crc.combine(&zeros_crc);
    }
    // The end of the archive: two zero blocks.
    let end = [0u8; 1024];
    archive.extend(deflate(&mut compress, &end, FlushCompress::Finish));
    crc.update(&end);
    let inflated = 512 + mib * MIB as u64 + 1024;
    archive.extend(crc.sum().to_le_bytes());
    archive.extend((inflated as u32).to_le_bytes());
    archive
}

/// Issue #18: an sdist of 4 GiB of zeros (4 MiB on the wire) with no PKG-INFO, uploaded as twine
/// does, is refused with a 400 that names the compression-ratio limit, once the plugin has
/// inflated 16 MiB of it (before, it ran until the 300 s CPU limit), and leaves no content,
/// no version and no artifact that orphan cleanup does not remove.
async fn a_tar_gz_bomb_upload_is_refused_and_adds_no_content(backend: Backend) {
    // The builder's own check: a small bomb inflates (its CRC and length checked) to a tar of
    // one file of that many zeros.
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&tar_gz_bomb(3)[..]),
        &mut inflated,
    )
    .unwrap();
    assert_eq!(inflated.len(), 512 + (3 << 20) + 1024);
    assert!(inflated[512..].iter().all(|&byte| byte == 0));
    let entries: Vec<(String, u64)> = tar::Archive::new(&inflated[..])
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let path = entry.path().unwrap().to_str().unwrap().to_owned();
            (path, entry.size())
        })
        .collect();
    assert_eq!(entries, [("demo-1.0/zeros".to_owned(), 3 << 20)]);

    let bomb = tar_gz_bomb(4 * 1024);
    assert!(bomb.len() < 8 * 1024 * 1024, "{} bytes", bomb.len());
    let app = TestApp::start(backend).await;
    let repository = repository_and_distribution(&app, "bombs", json!({})).await;
    let artifacts: Vec<String> = app
        .list_all(&format!("{API}/artifacts/?limit=1000"))
        .await
        .iter()
        .map(|artifact| str_field(artifact, "sha256").to_owned())
        .collect();
    let started = std::time::Instant::now();
    let (status, body) = app
        .post_multipart(
            "/pypi/bombs/legacy/",
            &[
                (":action", None, b"file_upload".as_slice()),
                ("protocol_version", None, b"1"),
                ("name", None, b"demo"),
                ("version", None, b"1.0"),
                ("content", Some("demo-1.0.tar.gz"), &bomb),
            ],
        )
        .await;
    eprintln!(
        "a {}-byte tar.gz bomb was answered {status} in {:?}",
        bomb.len(),
        started.elapsed()
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body.to_string();
    assert!(
        message.contains(
            "invalid sdist: the archive unpacks to more than 100 times its compressed size"
        ) && message.contains("refused as a compression bomb"),
        "{message}"
    );
    assert_eq!(
        app.latest_version_href(&repository).await,
        format!("{repository}versions/0/")
    );
    assert_eq!(
        app.count(&format!("{API}/content/python/packages/")).await,
        0
    );
    // The host stores a form's file parts before the plugin reads them, and keeps a refused
    // one as an orphan (deleting it here would race an identical upload in flight): the only
    // new artifact is the upload itself, nothing derived from it, and orphan cleanup takes it.
    let added: Vec<String> = app
        .list_all(&format!("{API}/artifacts/?limit=1000"))
        .await
        .iter()
        .map(|artifact| str_field(artifact, "sha256").to_owned())
        .filter(|sha256| !artifacts.contains(sha256))
        .collect();
    assert_eq!(added, [sha256_hex(&bomb)]);
    app.clean_up_orphans(0).await;
    assert_eq!(
        app.count(&format!("{API}/artifacts/")).await,
        artifacts.len() as u64
    );
}

/// Compares `actual` with the checked-in `tests/e2e/snapshots/<name>`; with
/// `GRANARY_UPDATE_SNAPSHOTS=1` writes it instead.
fn assert_snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/e2e/snapshots")
        .join(name);
    if std::env::var_os("GRANARY_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with GRANARY_UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(actual, expected, "{name} differs from its snapshot");
}

/// The simple pages, HTML and JSON, for one wheel and one sdist. Digests and sizes depend on the
/// compressor, so they are replaced by named placeholders before comparing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_pages_match_snapshots() {
    let tools = tools().await;
    let dir = tempfile::tempdir().unwrap();
    let (wheel, sdist) = build_demo_and_dep(&tools, dir.path());
    let app = TestApp::start(Backend::Sqlite).await;
    repository_and_distribution(&app, "snap", json!({})).await;
    upload(&app, &tools, "snap", &[wheel.clone(), sdist.clone()]).await;
    let curl = Downloads::new();
    let metadata = curl
        .get(
            &app.url("/pypi/snap/packages/granary-demo/granary_demo-1.0-py3-none-any.whl.metadata"),
        )
        .await
        .unwrap();
    let mut placeholders = vec![(
        sha256_hex(&metadata),
        "<sha256 of the wheel's METADATA>".to_owned(),
    )];
    for path in [&wheel, &sdist] {
        let bytes = std::fs::read(path).unwrap();
        placeholders.push((
            sha256_hex(&bytes),
            format!("<sha256 of {}>", file_name(path)),
        ));
        placeholders.push((
            format!("\"size\": {}", bytes.len()),
            format!("\"size\": \"<size of {}>\"", file_name(path)),
        ));
    }
    let json = "application/vnd.pypi.simple.v1+json";
    for (page, accept, snapshot) in [
        ("simple/", "text/html", "python/index.html"),
        ("simple/", json, "python/index.json"),
        (
            "simple/granary-demo/",
            "text/html",
            "python/granary-demo.html",
        ),
        ("simple/granary-demo/", json, "python/granary-demo.json"),
        ("simple/granary-dep/", json, "python/granary-dep.json"),
    ] {
        let response = curl
            .request(
                &app.url(&format!("/pypi/snap/{page}")),
                &["-H", &format!("Accept: {accept}")],
            )
            .await;
        assert_eq!(response.status, 200, "{page}");
        let content_type = if accept == json {
            json
        } else {
            "text/html; charset=utf-8"
        };
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "{page} as {accept}"
        );
        let mut text = String::from_utf8(response.body).unwrap();
        for (value, placeholder) in &placeholders {
            text = text.replace(value.as_str(), placeholder);
        }
        assert_snapshot(snapshot, &text);
    }
    let refused = curl
        .request(
            &app.url("/pypi/snap/simple/"),
            &["-H", "Accept: application/json"],
        )
        .await;
    assert_eq!(
        refused.status, 406,
        "no representation fits application/json"
    );
}

/// PyPI's JSON API (`pypi/<project>/json`, `pypi/<project>/<version>/json`), read with curl as
/// tools that query PyPI read it: `info` describes the newest release that is not a pre-release,
/// `releases` lists every version, and each file's `url` and `digests` fetch and check the file.
async fn the_json_api_describes_stored_releases_as_pypi_does(backend: Backend) {
    let tools = tools().await;
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = ["0.2.0", "0.3.0", "0.4.0rc1"]
        .into_iter()
        .map(|version| dep(version).build(&tools, dir.path(), "wheel"))
        .collect();
    let app = TestApp::start(backend).await;
    repository_and_distribution(&app, "described", json!({})).await;
    upload(&app, &tools, "described", &files).await;
    let curl = Downloads::new();
    let get = |path: &str| {
        let url = app.url(&format!("/pypi/described/{path}"));
        let curl = &curl;
        async move { curl.request(&url, &[]).await }
    };

    let answer = get("pypi/granary-dep/json").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let project: Value = serde_json::from_slice(&answer.body).expect("JSON");
    let info = &project["info"];
    assert_eq!(info["name"], "granary-dep", "{info:#}");
    assert_eq!(
        info["version"], "0.3.0",
        "the newest that is not a pre-release"
    );
    assert_eq!(info["summary"], "Granary test project");
    assert_eq!(info["requires_python"], ">=3.8");
    let mut releases: Vec<&String> = project["releases"].as_object().unwrap().keys().collect();
    releases.sort();
    assert_eq!(releases, ["0.2.0", "0.3.0", "0.4.0rc1"]);
    let file = &project["urls"][0];
    assert_eq!(file["filename"], file_name(&files[1]));
    assert_eq!(file["packagetype"], "bdist_wheel");
    assert_eq!(file["python_version"], "py3");
    let bytes = std::fs::read(&files[1]).unwrap();
    assert_eq!(file["digests"]["sha256"], sha256_hex(&bytes));
    assert_eq!(file["size"], bytes.len());
    let fetched = curl
        .get(str_field(file, "url"))
        .await
        .expect("the file's url serves it");
    assert_eq!(fetched, bytes);

    // One version, named as a user spells it: that release alone.
    let answer = get("pypi/Granary_Dep/0.4.0rc1/json").await;
    assert_eq!(answer.status, 200);
    let release: Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert_eq!(release["info"]["version"], "0.4.0rc1");
    assert!(release.get("releases").is_none(), "{release:#}");
    assert_eq!(release["urls"][0]["filename"], file_name(&files[2]));

    assert_eq!(get("pypi/granary-dep/9.9/json").await.status, 404);
    assert_eq!(get("pypi/nothing-here/json").await.status, 404);
}

/// `pulp python content upload` of `file`, under its file name, into `repository` if one is
/// given.
pub(crate) fn content_upload<'a>(file: &'a Path, repository: Option<&'a str>) -> Vec<&'a str> {
    let mut args = vec![
        "python",
        "content",
        "upload",
        "--file",
        file.to_str().expect("a UTF-8 path"),
        "--relative-path",
        file.file_name()
            .and_then(|name| name.to_str())
            .expect("a UTF-8 name"),
    ];
    if let Some(repository) = repository {
        args.extend(["--repository", repository]);
    }
    args
}

/// Writes `wrong` over every python unit's `summary` in the database, as metadata gone bad.
async fn damage_summaries(app: &TestApp) {
    for metadata in app
        .sql("SELECT metadata FROM content WHERE plugin = 'python'", &[])
        .await
    {
        let mut damaged: Value = serde_json::from_str(&metadata).unwrap();
        damaged["summary"] = json!("wrong");
        app.sql(
            "UPDATE content SET metadata = $1 WHERE metadata = $2",
            &[&damaged.to_string(), &metadata],
        )
        .await;
    }
}

/// `pulp python repository repair-metadata`: units whose stored metadata went wrong (here, written
/// over in the database) are read again from their files, and a wheel's lost `.metadata` file
/// comes back; no repository version is made.
async fn repair_metadata_rewrites_what_the_packages_say(backend: Backend) {
    let tools = tools().await;
    let dir = tempfile::tempdir().unwrap();
    let (wheel, sdist) = build_demo_and_dep(&tools, dir.path());
    let app = TestApp::start(backend).await;
    let repository = repository_and_distribution(&app, "mended", json!({})).await;
    upload(&app, &tools, "mended", &[wheel.clone(), sdist]).await;
    let version = app.latest_version_href(&repository).await;
    let packages = format!("{API}/content/python/packages/?repository_version={version}");
    let before = app.get_json(&packages).await;
    assert_eq!(before["count"], 2, "{before:#}");
    for unit in before["results"].as_array().unwrap() {
        assert_ne!(unit["summary"], "wrong", "{unit:#}");
    }
    let metadata_file = format!("{}.metadata", file_name(&wheel));
    // Damage: every unit's summary overwritten, the wheel's metadata file unlinked.
    damage_summaries(&app).await;
    let unlinked = app
        .sql(
            "SELECT relative_path FROM content_artifacts WHERE relative_path LIKE $1",
            &[&format!("%/{metadata_file}")],
        )
        .await;
    assert_eq!(unlinked.len(), 1, "{unlinked:?}");
    app.sql(
        "DELETE FROM content_artifacts WHERE relative_path = $1",
        &[&unlinked[0]],
    )
    .await;
    let damaged = app.get_json(&packages).await;
    for unit in damaged["results"].as_array().unwrap() {
        assert_eq!(unit["summary"], "wrong", "{unit:#}");
    }

    // Only who may modify the repository repairs it.
    app.create_user("carol", "carol's long password").await;
    let carol = crate::support::requests::As::Basic("carol", "carol's long password");
    app.assert_closed_to(
        carol,
        &[(
            reqwest::Method::POST,
            format!("{repository}repair_metadata/"),
        )],
        &json!({}),
    )
    .await;
    let pulp = crate::pulp_cli::PulpCli::new(&app);
    pulp.run(&[
        "python",
        "repository",
        "repair-metadata",
        "--name",
        "mended",
    ])
    .await;
    let repaired = app.get_json(&packages).await;
    for unit in repaired["results"].as_array().unwrap() {
        assert_ne!(unit["summary"], "wrong", "{unit:#}");
        assert!(unit["summary"].is_string(), "{unit:#}");
    }
    let linked = app
        .sql(
            "SELECT relative_path FROM content_artifacts WHERE relative_path = $1",
            &[&unlinked[0]],
        )
        .await;
    assert_eq!(linked, unlinked, "the metadata file is back");
    assert_eq!(
        app.latest_version_href(&repository).await,
        version,
        "no new version"
    );
}

/// `repair-metadata` of a mirror synced `on_demand`: the packages it never downloaded are fetched
/// from the remote the sync recorded (and kept, as a client's first request keeps them), then
/// read again; their metadata is right once more.
async fn repair_metadata_fetches_packages_never_downloaded(backend: Backend) {
    let tools = tools().await;
    let dir = tempfile::tempdir().unwrap();
    let (wheel, sdist) = build_demo_and_dep(&tools, dir.path());
    let upstream = TestApp::start(backend.clone()).await;
    repository_and_distribution(&upstream, "source", json!({})).await;
    upload(&upstream, &tools, "source", &[wheel, sdist]).await;
    let app = TestApp::start(backend).await;
    let pulp = crate::pulp_cli::PulpCli::new(&app);
    let source = upstream.url("/pypi/source/simple/");
    pulp.run(&[
        "python",
        "remote",
        "create",
        "--name",
        "lazy",
        "--url",
        &source,
        "--policy",
        "on_demand",
    ])
    .await;
    pulp.run(&[
        "python",
        "repository",
        "create",
        "--name",
        "lazy",
        "--remote",
        "lazy",
    ])
    .await;
    pulp.run(&["python", "repository", "sync", "--name", "lazy"])
        .await;
    // The packages' own files (a wheel's `.metadata` may come with the sync).
    let stored = "SELECT relative_path FROM content_artifacts
                  WHERE artifact_id IS NOT NULL AND relative_path NOT LIKE '%.metadata'";
    let nothing: [&str; 0] = [];
    assert_eq!(
        app.sql(stored, &[]).await,
        nothing,
        "nothing downloaded yet"
    );
    damage_summaries(&app).await;

    pulp.run(&["python", "repository", "repair-metadata", "--name", "lazy"])
        .await;
    let packages = app
        .get_json(&format!("{API}/content/python/packages/"))
        .await;
    assert_eq!(packages["count"], 2, "{packages:#}");
    for unit in packages["results"].as_array().unwrap() {
        assert!(unit["summary"].is_string(), "{unit:#}");
        assert_ne!(unit["summary"], "wrong", "{unit:#}");
    }
    assert_eq!(
        app.sql(stored, &[]).await.len(),
        2,
        "the packages are kept now"
    );
}

/// pulp_python 3.30's repository blocklists, driven by `pulp python repository blocklist`: a
/// project (any version), a release, or a file name; a version that would add a blocklisted
/// package is not made, whether by an upload, a `modify/` (refused before its task) or a sync,
/// and a removed entry no longer refuses anything.
async fn blocklisted_packages_are_refused_as_pulp_python_refuses_them(backend: Backend) {
    let tools = tools().await;
    let dir = tempfile::tempdir().unwrap();
    let (wheel, sdist) = build_demo_and_dep(&tools, dir.path());
    let app = TestApp::start(backend).await;
    let pulp = crate::pulp_cli::PulpCli::new(&app);
    pulp.run(&["python", "repository", "create", "--name", "guarded"])
        .await;
    let blocklist = |args: &[&str]| {
        let mut all = vec!["python", "repository", "blocklist"];
        all.extend_from_slice(args);
        all.iter()
            .map(|arg| (*arg).to_owned())
            .collect::<Vec<String>>()
    };
    let run = |args: Vec<String>| {
        let pulp = &pulp;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            pulp.run(&args).await
        }
    };
    let whole = run(blocklist(&[
        "add",
        "--repository",
        "guarded",
        "--name",
        "Granary_Demo",
    ]))
    .await;
    assert_eq!(
        whole["name"], "granary-demo",
        "PEP 503 normalized: {whole:#}"
    );
    assert_eq!(whole["version"], Value::Null);
    assert!(
        str_field(&whole, "added_by").starts_with("prn:auth.user:"),
        "{whole:#}"
    );
    assert!(
        str_field(&whole, "pulp_href").contains("/blocklist_entries/"),
        "{whole:#}"
    );
    run(blocklist(&[
        "add",
        "--repository",
        "guarded",
        "--name",
        "granary-dep",
        "--version",
        "0.2.0",
    ]))
    .await;
    run(blocklist(&[
        "add",
        "--repository",
        "guarded",
        "--filename",
        "other-1.0.tar.gz",
    ]))
    .await;
    let listed = run(blocklist(&["list", "--repository", "guarded"])).await;
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed:#}");
    let shown = run(blocklist(&[
        "show",
        "--repository",
        "guarded",
        "--name",
        "granary-demo",
    ]))
    .await;
    assert_eq!(shown["pulp_href"], whole["pulp_href"]);
    run(blocklist(&[
        "remove",
        "--repository",
        "guarded",
        "--filename",
        "other-1.0.tar.gz",
    ]))
    .await;
    // pulp_python's access policy: a viewer of the repository lists its entries, only who may
    // modify it adds or removes them; others see nothing.
    let entries = str_field(
        &pulp
            .run(&["python", "repository", "show", "--name", "guarded"])
            .await,
        "blocklist_entries_href",
    )
    .to_owned();
    app.create_user("carol", "carol's long password").await;
    let carol = crate::support::requests::As::Basic("carol", "carol's long password");
    let entry = str_field(&shown, "pulp_href").to_owned();
    app.assert_closed_to(
        carol,
        &[
            (reqwest::Method::GET, entries.clone()),
            (reqwest::Method::POST, entries.clone()),
            (reqwest::Method::GET, entry.clone()),
            (reqwest::Method::DELETE, entry),
        ],
        &json!({"name": "anything"}),
    )
    .await;
    app.create_user("dave", "dave's long password").await;
    let repository_href = entries.trim_end_matches("blocklist_entries/").to_owned();
    pulp.run(&[
        "user",
        "role-assignment",
        "add",
        "--username",
        "dave",
        "--role",
        "python.pythonrepository_viewer",
        "--object",
        &repository_href,
    ])
    .await;
    let dave = crate::pulp_cli::PulpCli::as_user(&app, "dave", "dave's long password");
    let seen = dave
        .run(&[
            "python",
            "repository",
            "blocklist",
            "list",
            "--repository",
            "guarded",
        ])
        .await;
    assert_eq!(seen.as_array().unwrap().len(), 2, "{seen:#}");
    let refused = dave
        .fails(&[
            "python",
            "repository",
            "blocklist",
            "add",
            "--repository",
            "guarded",
            "--name",
            "y",
        ])
        .await;
    assert!(refused.contains("is not authorized"), "{refused}");

    // pulp_python's checks.
    for (args, message) in [
        (
            vec![
                "add",
                "--repository",
                "guarded",
                "--name",
                "x",
                "--version",
                "not a version",
            ],
            "is not a valid version",
        ),
        (
            vec!["add", "--repository", "guarded", "--name", "granary.demo"],
            "already exists",
        ),
    ] {
        let args = blocklist(&args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let error = pulp.fails(&args).await;
        assert!(error.contains(message), "{args:?}: {error}");
    }

    // An upload into the repository fails as its task does in Pulp.
    let wheel_name = file_name(&wheel);
    let error = pulp.fails(&content_upload(&wheel, Some("guarded"))).await;
    assert!(
        error.contains(&format!(
            "Blocklisted packages cannot be added to this repository: {wheel_name}"
        )),
        "{error}"
    );
    let repository = str_field(
        &pulp
            .run(&["python", "repository", "show", "--name", "guarded"])
            .await,
        "pulp_href",
    )
    .to_owned();
    assert!(
        app.latest_version_href(&repository)
            .await
            .ends_with("/versions/0/"),
        "no version was made"
    );
    // `modify/` is refused before its task.
    let unit = pulp.run(&content_upload(&wheel, None)).await;
    let (status, body) = app
        .post_json(
            &format!("{repository}modify/"),
            &json!({"add_content_units": [str_field(&unit, "pulp_href")]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
    assert!(
        body.to_string().contains("Blocklisted packages"),
        "{body:#}"
    );
    // Without the entry, the same change goes through.
    run(blocklist(&[
        "remove",
        "--repository",
        "guarded",
        "--name",
        "granary-demo",
    ]))
    .await;
    let (status, body) = app
        .post_json(
            &format!("{repository}modify/"),
            &json!({"add_content_units": [str_field(&unit, "pulp_href")]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body:#}");
    let task = app.wait_task(str_field(&body, "task")).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(filenames(&app, &repository).await, [wheel_name]);

    // A sync that brings the blocklisted release fails, and the repository keeps its version.
    repository_and_distribution(&app, "source", json!({})).await;
    upload(&app, &tools, "source", &[wheel, sdist.clone()]).await;
    let remote = app
        .create(
            &format!("{API}/remotes/python/python/"),
            json!({"name": "source", "url": app.url("/pypi/source/simple/"), "policy": "on_demand"}),
        )
        .await;
    let before = app.latest_version_href(&repository).await;
    let task = app
        .sync(&repository, str_field(&remote, "pulp_href"), false)
        .await;
    assert_eq!(task["state"], "failed", "{task:#}");
    assert!(
        task.to_string().contains(&format!(
            "Blocklisted packages cannot be added to this repository: {}",
            file_name(&sdist)
        )),
        "{task:#}"
    );
    assert_eq!(app.latest_version_href(&repository).await, before);
}

/// The `add-units` tasks of the server, newest first.
async fn add_units_tasks(app: &TestApp) -> Vec<Value> {
    let tasks = app
        .get_json(&format!(
            "{API}/tasks/?name=granary.tasks.add_units&ordering=-pulp_created"
        ))
        .await;
    tasks["results"].as_array().unwrap().clone()
}

/// An upload is Pulp's immediate task: with its repository free it runs in the request (no
/// worker), and the task is recorded completed with the version it made and its lock. While a
/// sync holds the repository, the next upload is queued behind it (the task waits), and runs on
/// a worker once the sync ends: uploads never overtake a writer of the same repository. The files
/// an upload stores are recorded as artifacts with its version, or on their own when it is
/// refused, so that orphan cleanup finds them.
async fn an_upload_runs_at_once_unless_its_repository_is_busy(backend: Backend) {
    let tools = tools().await;
    let dir = tempfile::tempdir().unwrap();
    let built = demo_dep_and_wheels(&tools, dir.path(), &["0.2.0", "0.3.0"]).await;
    let app = TestApp::start(backend).await;
    let repository = repository_and_distribution(&app, "team", json!({})).await;

    upload(&app, &tools, "team", &built[..1]).await;
    let tasks = add_units_tasks(&app).await;
    assert_eq!(tasks.len(), 1, "{tasks:#?}");
    let task = &tasks[0];
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(task["worker"], Value::Null, "ran in the request: {task:#}");
    assert_eq!(
        created_resources(task),
        [format!("{repository}versions/1/")],
        "{task:#}"
    );
    assert_eq!(
        task["reserved_resources_record"],
        json!([repository]),
        "{task:#}"
    );
    assert!(
        task["started_at"].is_string() && task["finished_at"].is_string(),
        "{task:#}"
    );
    let first_wheel = sha256_hex(&std::fs::read(&built[0]).unwrap());
    assert_eq!(app.artifacts_with_sha256(&first_wheel).await, 1);

    // A sync of the same repository from an upstream that hangs holds the repository's lock.
    let upstream = Upstream::serve_with_manifest(&static_index(&built[2..3]), String::new()).await;
    upstream.hold();
    let remote = app
        .create(
            &format!("{API}/remotes/python/python/"),
            json!({"name": "hanging", "url": upstream.base_url(), "includes": ["granary-dep"]}),
        )
        .await;
    let sync = app
        .dispatch(
            &format!("{repository}sync/"),
            json!({"remote": str_field(&remote, "pulp_href"), "mirror": false}),
        )
        .await;
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while upstream.waiting_requests() == 0 {
        assert!(
            std::time::Instant::now() < give_up,
            "the sync never asked the upstream"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let legacy = app.url("/pypi/team/legacy/");
    let mut twine = twine_upload(&tools, &legacy, app.credentials(), &[&built[1]], &[]);
    let queued = tokio::task::spawn_blocking(move || run(&mut twine));
    loop {
        let tasks = add_units_tasks(&app).await;
        if tasks.len() == 2 {
            assert_eq!(tasks[0]["state"], "waiting", "{tasks:#?}");
            break;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "the upload queued no task"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!queued.is_finished(), "the upload waits for its task");
    assert_eq!(
        app.latest_version_href(&repository).await,
        format!("{repository}versions/1/")
    );

    upstream.release();
    let synced = app.wait_task(&sync).await;
    assert_eq!(synced["state"], "completed", "{synced:#}");
    queued.await.unwrap();
    let tasks = add_units_tasks(&app).await;
    let task = &tasks[0];
    assert_eq!(task["state"], "completed", "{task:#}");
    assert!(task["worker"].is_string(), "ran on a worker: {task:#}");
    assert_eq!(
        filenames(&app, &repository).await,
        [
            "granary_demo-1.0-py3-none-any.whl",
            "granary_dep-0.2.0-py3-none-any.whl",
            "granary_dep-0.2.0.tar.gz",
        ]
    );

    // An upload refused when its version is made is rolled back whole and recorded failed.
    app.create(
        &format!("{repository}blocklist_entries/"),
        json!({"name": "granary-dep", "version": "0.3.0"}),
    )
    .await;
    let before = app.latest_version_href(&repository).await;
    let refused = run_failing(&mut twine_upload(
        &tools,
        &legacy,
        app.credentials(),
        &[&built[3]],
        &["--verbose"],
    ));
    let message = format!(
        "Blocklisted packages cannot be added to this repository: {}",
        file_name(&built[3])
    );
    // twine wraps the answer's lines.
    let refused = refused.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(refused.contains(&message), "{refused}");
    let tasks = add_units_tasks(&app).await;
    let task = &tasks[0];
    assert_eq!(task["state"], "failed", "{task:#}");
    assert_eq!(task["worker"], Value::Null, "{task:#}");
    assert_eq!(
        str_field(&task["error"], "description"),
        message,
        "{task:#}"
    );
    assert_eq!(app.latest_version_href(&repository).await, before);
    assert_eq!(filenames(&app, &repository).await.len(), 3);
    let refused_wheel = sha256_hex(&std::fs::read(&built[3]).unwrap());
    assert_eq!(
        app.artifacts_with_sha256(&refused_wheel).await,
        1,
        "the refused upload's wheel is stored and recorded, for orphan cleanup to remove"
    );
}

/// The names of the packages a `pulp python content list` printed.
fn listed_filenames(listed: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = (listed.as_array().expect("a list").iter())
        .map(|unit| str_field(unit, "filename"))
        .collect();
    names.sort_unstable();
    names
}

/// The python commands a pulp_python user runs first, as pulp-cli runs them: each reads back
/// what it made through the href parameter pulp_python's document names
/// (`python_python_distribution_href` for `distributions/python/pypi/`), and the content list
/// sends its type's filters (`packagetype__in`) even when none is given.
async fn pulp_cli_publishes_distributes_and_lists_python_content(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tools = tools().await;
    let dir = tempfile::tempdir().unwrap();
    let (wheel, sdist) = build_demo_and_dep(&tools, dir.path());
    let pulp = crate::pulp_cli::PulpCli::new(&app);
    pulp.run(&["python", "repository", "create", "--name", "cli-py"])
        .await;
    for file in [&wheel, &sdist] {
        pulp.run(&content_upload(file, Some("cli-py"))).await;
    }

    let publication = pulp
        .run(&["python", "publication", "create", "--repository", "cli-py"])
        .await;
    assert!(
        str_field(&publication, "pulp_href")
            .starts_with(&format!("{API}/publications/python/pypi/")),
        "{publication:#}"
    );
    assert!(
        str_field(&publication, "repository_version").ends_with("/versions/2/"),
        "{publication:#}"
    );
    let distribution = pulp
        .run(&[
            "python",
            "distribution",
            "create",
            "--name",
            "cli-py",
            "--base-path",
            "cli-py",
            "--repository",
            "cli-py",
        ])
        .await;
    assert_eq!(distribution["base_path"], "cli-py", "{distribution:#}");
    assert_eq!(distribution["allow_uploads"], true, "{distribution:#}");
    pulp.run(&[
        "python",
        "distribution",
        "update",
        "--name",
        "cli-py",
        "--block-uploads",
    ])
    .await;
    let distribution = pulp
        .run(&["python", "distribution", "show", "--name", "cli-py"])
        .await;
    assert_eq!(distribution["allow_uploads"], false, "{distribution:#}");

    let (wheel_name, sdist_name) = (file_name(&wheel), file_name(&sdist));
    let all = pulp.run(&["python", "content", "list"]).await;
    let mut both = vec![wheel_name, sdist_name];
    both.sort_unstable();
    assert_eq!(listed_filenames(&all), both);
    for (filter, expected) in [
        (vec!["--packagetype", "bdist_wheel"], vec![wheel_name]),
        (vec!["--packagetype-in", "sdist"], vec![sdist_name]),
        (vec!["--packagetype", "bdist_egg"], vec![]),
        (vec!["--name-in", "granary-dep"], vec![sdist_name]),
    ] {
        let mut args = vec!["python", "content", "list"];
        args.extend(&filter);
        let listed = pulp.run(&args).await;
        assert_eq!(listed_filenames(&listed), expected, "{filter:?}");
    }

    // A remote whose includes are no requirements is refused on the field, as pulp_python
    // refuses it, rather than made and failing at its first sync.
    let remote = ["python", "remote", "create", "--name", "cli-upstream"];
    let url = ["--url", "http://127.0.0.1:9/simple/"];
    let error = pulp
        .fails(
            &[
                &remote[..],
                &url[..],
                &["--includes", r#"["not a valid req!!"]"#],
            ]
            .concat(),
        )
        .await;
    assert!(
        error.contains(r#"{"includes":["Item 0: \"not a valid req!!\" does not have the form"#),
        "{error}"
    );
    let made = pulp
        .run(
            &[
                &remote[..],
                &url[..],
                &["--includes", r#"["shelf-reader (>=0.1)"]"#],
            ]
            .concat(),
        )
        .await;
    assert_eq!(
        made["includes"],
        json!(["shelf-reader (>=0.1)"]),
        "{made:#}"
    );
}
