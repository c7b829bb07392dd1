//! WIT 0.2.0 end to end, with the `handler` test component (`tests/components/handler`): REST
//! names and plugin-declared fields, uploads through a format route that add units as a new
//! repository version, `artifacts.create`, `content.list-by-prefix`, and pull-through caching.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::fixture::{FixtureFile, sha256_hex};
use crate::support::pulp::{API, created_resources, str_field};
use crate::support::requests::As;
use crate::support::{Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    declared_rest_names_and_fields_shape_the_api,
    uploads_through_handle_add_a_repository_version,
    pull_through_fetches_once_and_serves_from_the_cache,
    plugin_answers_carry_only_the_headers_the_host_allows,
    handle_reaches_only_this_repositorys_artifacts,
    a_crashing_handle_answers_502_with_only_the_correlation_id,
    every_call_starts_from_a_clean_instance,
    kept_answers_follow_the_served_version_and_never_cross_users,
);

const HANDLER: &str = env!("GRANARY_TEST_HANDLER_WASM");

/// Installs the handler plugin; returns the app.
async fn app_with_handler(backend: Backend) -> TestApp {
    let app = TestApp::start(backend).await;
    let bytes = std::fs::read(HANDLER).expect("the handler component is built");
    let (status, plugin) = app.install_plugin(&bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{plugin:#}");
    assert_eq!(plugin["wit_version"], "0.2.0", "{plugin:#}");
    app
}

/// A repository (`stash`), optionally a remote (`source`) on `remote_url`, and a distribution
/// (`shelf`) of the repository's latest version at `base_path`; returns (repository, distribution).
async fn repository_and_distribution(
    app: &TestApp,
    base_path: &str,
    remote_url: Option<&str>,
) -> (Value, Value) {
    let repository = app
        .create(
            &format!("{API}/repositories/handler/stash/"),
            json!({"name": base_path}),
        )
        .await;
    let mut body = json!({
        "name": base_path,
        "base_path": base_path,
        "repository": repository["pulp_href"],
    });
    if let Some(url) = remote_url {
        let remote = app
            .create(
                &format!("{API}/remotes/handler/source/"),
                json!({"name": base_path, "url": url}),
            )
            .await;
        body["remote"] = remote["pulp_href"].clone();
    }
    let task = app
        .run_task(&format!("{API}/distributions/handler/shelf/"), body)
        .await;
    let href = created_resources(&task)
        .into_iter()
        .find(|href| href.contains("/distributions/"))
        .unwrap_or_else(|| panic!("no distribution: {task:#}"));
    (repository, app.get_json(&href).await)
}

/// A `multipart/form-data` body of a `project` field and, when given, a `content` file: returns
/// the content type and the body.
fn form(project: &str, file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "granary-handler-test";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"project\"\r\n\r\n{project}\r\n"
    )
    .into_bytes();
    if let Some((name, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Posts the form of `project` and `file` (name, bytes) to `url` as the admin; returns the status
/// and the body.
async fn post_form_as_admin(
    app: &TestApp,
    url: String,
    project: &str,
    file: (&str, &[u8]),
) -> (StatusCode, String) {
    let (user, password) = app.credentials();
    let (content_type, body) = form(project, Some(file));
    let request = app
        .anonymous()
        .post(url)
        .basic_auth(user, Some(password))
        .header("content-type", content_type)
        .body(body);
    text(request.send().await.unwrap()).await
}

async fn text(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    (status, response.text().await.expect("read the body"))
}

/// The plugin named its collections `stash`, `source`, `snapshot` and `shelf` and its content
/// endpoint `items`; its remote has `tags` and `priority` fields and its distribution an
/// `allow_uploads` field. The API serves those names, validates those fields (a wrong type is a
/// 400 naming the field) and shows them at the top level.
async fn declared_rest_names_and_fields_shape_the_api(backend: Backend) {
    let app = app_with_handler(backend).await;

    // Installed at run time, its types have their built-in roles and access policies at once.
    for query in [
        "roles/?name=handler.stashrepository_owner",
        "roles/?name=handler.stashremote_creator",
        "access_policies/?viewset_name=repositories/handler/stash",
        "access_policies/?viewset_name=distributions/handler/shelf",
    ] {
        assert_eq!(app.count(&format!("{API}/{query}")).await, 1, "{query}");
    }

    let (status, _) = app.get(&format!("{API}/repositories/handler/blob/")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the type is not a REST name");
    let repository = app
        .create(
            &format!("{API}/repositories/handler/stash/"),
            json!({"name": "names"}),
        )
        .await;
    let repository_href = str_field(&repository, "pulp_href");
    assert!(
        repository_href.starts_with(&format!("{API}/repositories/handler/stash/")),
        "{repository:#}"
    );
    assert_eq!(app.get_json(repository_href).await["name"], "names");

    let remotes = format!("{API}/remotes/handler/source/");
    let url = "http://127.0.0.1:9/PULP_MANIFEST";
    for (field, bad) in [
        ("tags", json!("one")),
        ("tags", json!([1])),
        ("priority", json!("high")),
    ] {
        let (status, body) = app
            .post_json(&remotes, &json!({"name": "bad", "url": url, field: bad}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={bad}: {body}");
        assert!(
            body[field][0].is_string(),
            "the error names {field}: {body}"
        );
    }
    let remote = app
        .create(&remotes, json!({"name": "good", "url": url, "priority": 3}))
        .await;
    assert_eq!(remote["priority"], 3, "{remote:#}");
    assert_eq!(
        remote["tags"],
        json!([]),
        "the schema's default: {remote:#}"
    );
    let remote_href = str_field(&remote, "pulp_href");
    assert!(remote_href.starts_with(&remotes), "{remote:#}");
    let updated = app.update(remote_href, json!({"tags": ["stable"]})).await;
    assert_eq!(updated["tags"], json!(["stable"]));
    assert_eq!(updated["priority"], 3, "an update keeps the other fields");

    let (repository, distribution) = repository_and_distribution(&app, "shelved", None).await;
    let distribution_href = str_field(&distribution, "pulp_href");
    assert!(
        distribution_href.starts_with(&format!("{API}/distributions/handler/shelf/")),
        "{distribution:#}"
    );
    assert_eq!(distribution["allow_uploads"], true, "{distribution:#}");
    assert_eq!(distribution["repository"], repository["pulp_href"]);
    let (status, body) = app
        .patch_json(distribution_href, &json!({"allow_uploads": "no"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["allow_uploads"][0].is_string(), "{body}");

    // The names belong to the installed plugin: removed, its repositories (kept by `force`) are
    // shown by their type, and its names answer nothing; installed again, the names are back.
    let list = format!("{API}/repositories/?name=names");
    let listed = || async {
        let page = app.get_json(&list).await;
        str_field(&page["results"][0], "pulp_href").to_owned()
    };
    let (status, body) = app
        .delete_json(&format!("{API}/plugins/handler/?force=true"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let orphaned = listed().await;
    assert!(
        orphaned.starts_with(&format!("{API}/repositories/handler/blob/")),
        "{orphaned}"
    );
    let (status, _) = app.get(&format!("{API}/repositories/handler/stash/")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let bytes = std::fs::read(HANDLER).expect("the handler component is built");
    let (status, plugin) = app.install_plugin(&bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{plugin:#}");
    assert_eq!(listed().await, repository_href);
    assert_eq!(app.get_json(repository_href).await["name"], "names");
}

/// An upload through the plugin's own route (`/shelf/<base_path>/upload/`, multipart like twine)
/// needs credentials, and becomes one new repository version holding the unit the plugin
/// declared: the uploaded file plus a file the plugin derived with `artifacts.create`.
async fn uploads_through_handle_add_a_repository_version(backend: Backend) {
    let app = app_with_handler(backend).await;
    let (repository, _) = repository_and_distribution(&app, "uploads", None).await;
    let repository_href = str_field(&repository, "pulp_href").to_owned();
    let route = app.url("/shelf/uploads/");

    // What the plugin is told about the distribution and the user.
    let (status, anonymous) = text(
        app.anonymous()
            .get(format!("{route}whoami"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{anonymous}");
    assert!(anonymous.contains("user=-\n"), "{anonymous}");
    assert!(anonymous.contains("distribution=uploads\n"), "{anonymous}");
    assert!(anonymous.contains("writable=true\n"), "{anonymous}");
    assert!(
        anonymous.contains(r#"extra={"allow_uploads":true}"#),
        "{anonymous}"
    );
    let (user, password) = app.credentials();
    let (_, signed_in) = text(
        app.anonymous()
            .get(app.url("/pulp/content/uploads/whoami"))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(signed_in.contains("user=admin\n"), "{signed_in}");

    // Form bodies arrive parsed: urlencoded pairs as fields, multipart files as stored files.
    let (status, echoed) = text(
        app.anonymous()
            .post(format!("{route}echo"))
            .basic_auth(user, Some(password))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("a=1&b=two+words&c=%2Fslash")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{echoed}");
    assert_eq!(echoed, "a=1\nb=two words\nc=/slash\n");
    let (_, echoed) =
        post_form_as_admin(&app, format!("{route}echo"), "demo", ("echo.txt", b"echo")).await;
    assert_eq!(echoed, "project=demo\nfile:content=echo.txt\n");

    // Without credentials, the plugin is not even asked.
    let (content_type, body) = form("demo", Some(("hello.txt", b"hello world")));
    let refused = app
        .anonymous()
        .post(format!("{route}upload/"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.headers()["www-authenticate"],
        "Basic realm=\"granary\""
    );
    assert_eq!(
        app.get_json(&repository_href).await["latest_version_href"],
        format!("{repository_href}versions/0/")
    );

    // A plugin error names the form field.
    let (content_type, body) = form("demo", None);
    let (status, body) = text(
        app.anonymous()
            .post(format!("{route}upload/"))
            .basic_auth(user, Some(password))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("\"content\""), "{body}");

    let upload = |project: &'static str, name: &'static str, bytes: &'static [u8]| {
        post_form_as_admin(&app, format!("{route}upload/"), project, (name, bytes))
    };
    let (status, body) = upload("demo", "hello.txt", b"hello world").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, "stored demo/hello.txt");

    let repository = app.get_json(&repository_href).await;
    let version_href = format!("{repository_href}versions/1/");
    assert_eq!(repository["latest_version_href"], version_href);
    let version = app.get_json(&version_href).await;
    assert_eq!(
        version["content_summary"]["added"]["handler.blob"]["count"], 1,
        "{version:#}"
    );
    let listed = str_field(&version["content_summary"]["added"]["handler.blob"], "href");
    assert!(
        listed.starts_with(&format!("{API}/content/handler/items/")),
        "the declared endpoint: {listed}"
    );
    let units = app.get_json(listed).await;
    assert_eq!(units["count"], 1, "{units:#}");
    assert_eq!(units["results"][0]["project"], "demo", "{units:#}");

    // Both files are served: the upload and what the plugin derived from it.
    let file = |path: &'static str| {
        let request = app.anonymous().get(format!("{route}files/{path}"));
        async move { text(request.send().await.unwrap()).await }
    };
    let (status, hello) = file("demo/hello.txt").await;
    assert_eq!((status, hello.as_str()), (StatusCode::OK, "hello world"));
    let (status, meta) = file("demo/hello.txt.meta").await;
    assert_eq!(
        (status, meta.as_str()),
        (StatusCode::OK, "hello.txt 11 bytes\n")
    );

    // `list-by-prefix` finds one project's units, and `_` in a prefix is not a wildcard.
    let (status, body) = upload("demo2", "other.txt", b"another file").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let list = |prefix: &'static str| {
        let request = app.anonymous().get(format!("{route}list/{prefix}"));
        async move { text(request.send().await.unwrap()).await.1 }
    };
    assert_eq!(list("demo/").await, "demo/hello.txt\n");
    assert_eq!(list("demo").await.lines().count(), 2);
    assert_eq!(list("dem_/").await, "");
    assert_eq!(
        app.get_json(&repository_href).await["latest_version_href"],
        format!("{repository_href}versions/2/")
    );

    // A file that is exactly what the plugin derives from it: the upload and its `.meta` are one
    // artifact, recorded once with the version (a statement may not write one row twice).
    let same = b"self.txt 18 bytes\n";
    let (status, body) = upload("same", "self.txt", same).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for path in ["same/self.txt", "same/self.txt.meta"] {
        let (status, served) = file(path).await;
        assert_eq!(
            (status, served.as_bytes()),
            (StatusCode::OK, &same[..]),
            "{path}"
        );
    }
    let digest = sha256_hex(same);
    let artifacts = app
        .get_json(&format!("{API}/artifacts/?sha256={digest}"))
        .await;
    assert_eq!(artifacts["count"], 1, "{artifacts:#}");
    assert_eq!(
        app.get_json(&repository_href).await["latest_version_href"],
        format!("{repository_href}versions/3/")
    );

    // A file part too large to be held in memory (64 KiB) is streamed to disk as it arrives, the
    // bytes held until then first: stored and served exactly.
    let large: Vec<u8> = (0..200_003u32).map(|i| (i % 251) as u8).collect();
    let (status, body) = post_form_as_admin(
        &app,
        format!("{route}upload/"),
        "large",
        ("large.bin", &large),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let served = app
        .anonymous()
        .get(format!("{route}files/large/large.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert!(served.bytes().await.unwrap() == large, "served as uploaded");
    assert_eq!(
        file("large/large.bin.meta").await.1,
        "large.bin 200003 bytes\n"
    );
    let digest = sha256_hex(&large);
    let artifacts = app
        .get_json(&format!("{API}/artifacts/?sha256={digest}"))
        .await;
    assert_eq!(artifacts["count"], 1, "{artifacts:#}");

    // Units whose files name no stored artifact are refused, and no version is made.
    let (status, refused) = text(
        app.anonymous()
            .post(format!("{route}bogus"))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.contains("bogus/missing.bin"), "{refused}");
    assert!(refused.contains("no stored artifact"), "{refused}");
    assert_eq!(
        app.get_json(&repository_href).await["latest_version_href"],
        format!("{repository_href}versions/4/")
    );

    // A distribution that refuses uploads (its plugin field) adds nothing.
    let distribution = app
        .get_json(&format!("{API}/distributions/handler/shelf/?name=uploads"))
        .await;
    let distribution_href = str_field(&distribution["results"][0], "pulp_href").to_owned();
    app.update(&distribution_href, json!({"allow_uploads": false}))
        .await;
    let (status, body) = upload("demo", "late.txt", b"too late").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        app.get_json(&repository_href).await["latest_version_href"],
        format!("{repository_href}versions/4/")
    );
}

/// Twenty clients ask at once for a file the repository does not have: the upstream sees one
/// request, every client gets the file, the repository gains it in one new version, and once the
/// upstream is gone the file is still served, Range requests included.
async fn pull_through_fetches_once_and_serves_from_the_cache(backend: Backend) {
    let app = app_with_handler(backend).await;
    let file = FixtureFile::new("pkg/wanted-1.0.tar.gz", vec![7u8; 300 * 1024]);
    let other = FixtureFile::new("pkg/other-1.0.tar.gz", b"not asked for".to_vec());
    let fixture = Fixture {
        files: vec![file.clone(), other],
    };
    let mut upstream = Upstream::serve(&fixture).await;
    // Slow answers make the twenty requests overlap; the assertion does not depend on it.
    upstream.set_file_delay(std::time::Duration::from_millis(300));
    let (repository, _) =
        repository_and_distribution(&app, "cache", Some(&upstream.manifest_url())).await;
    let repository_href = str_field(&repository, "pulp_href").to_owned();
    let url = app.url("/shelf/cache/pull/pkg/wanted-1.0.tar.gz");

    let requests = (0..20).map(|_| {
        let request = app.anonymous().get(&url);
        async move {
            let response = request.send().await.expect("pull-through request");
            (response.status(), response.bytes().await.expect("body"))
        }
    });
    for (status, body) in futures::future::join_all(requests).await {
        assert_eq!(status, StatusCode::OK);
        assert!(body == file.bytes, "every client gets the upstream bytes");
    }
    assert_eq!(
        upstream.requests_for(&file.relative_path),
        1,
        "one upstream download for twenty requests: {:?}",
        upstream.request_counts()
    );
    let repository = app.get_json(&repository_href).await;
    assert_eq!(
        repository["latest_version_href"],
        format!("{repository_href}versions/1/"),
        "one new version holds the pulled file"
    );

    upstream.stop().await;
    let response = app.anonymous().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.unwrap() == file.bytes);
    let partial = app
        .anonymous()
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(partial.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&partial.bytes().await.unwrap()[..], &file.bytes[10..20]);
    assert_eq!(upstream.requests_for(&file.relative_path), 1);
}

/// A plugin answer cannot set a cookie on the server's origin, nor hop-by-hop or security headers;
/// its format's own headers pass, and every served answer, a plugin's or a stored file, comes
/// with `nosniff` and a sandboxing CSP, so an uploaded page never runs as the server's.
async fn plugin_answers_carry_only_the_headers_the_host_allows(backend: Backend) {
    let app = app_with_handler(backend).await;
    repository_and_distribution(&app, "headers", None).await;
    let route = app.url("/shelf/headers/");

    let answer = app
        .anonymous()
        .get(format!("{route}headers"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let headers = answer.headers();
    for dropped in [
        "set-cookie",
        "strict-transport-security",
        "access-control-allow-origin",
    ] {
        assert!(
            !headers.contains_key(dropped),
            "{dropped} passed: {headers:?}"
        );
    }
    assert_ne!(
        headers.get("connection").map(|value| value.as_bytes()),
        Some(&b"close"[..]),
        "the plugin closed the connection: {headers:?}"
    );
    assert_eq!(headers["x-format-serial"], "42", "{headers:?}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-security-policy"], "sandbox");

    // A stored page uploaded through the format route: the same protection.
    let (status, stored) = post_form_as_admin(
        &app,
        format!("{route}upload/"),
        "site",
        ("page.html", b"<script>alert(1)</script>"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let page = app
        .anonymous()
        .get(format!("{route}files/site/page.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.headers()["content-security-policy"], "sandbox");
}

/// A digest is not a capability. A plugin answer that adds a unit naming another repository's
/// artifact is refused exactly as one naming no artifact is (400 naming the file, no version),
/// while naming this repository's own artifact works. A pull-through whose upstream manifest
/// names another repository's digest asks the upstream for the file instead of serving the stored
/// bytes: the upstream has no such file, so the client does not get them.
async fn handle_reaches_only_this_repositorys_artifacts(backend: Backend) {
    let app = app_with_handler(backend).await;
    let secret = FixtureFile::new("secret.bin", b"another team's private file".to_vec());
    repository_and_distribution(&app, "theirs", None).await;
    let (status, body) = post_form_as_admin(
        &app,
        app.url("/shelf/theirs/upload/"),
        "private",
        ("secret.bin", &secret.bytes),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let claimed = FixtureFile {
        relative_path: "stolen.bin".into(),
        ..secret.clone()
    };
    let upstream = Upstream::serve_with_manifest(&[], claimed.manifest_line() + "\n").await;
    let (repository, _) =
        repository_and_distribution(&app, "mine", Some(&upstream.manifest_url())).await;
    let repository_href = str_field(&repository, "pulp_href").to_owned();
    let route = app.url("/shelf/mine/");
    let (user, password) = app.credentials();
    let claim = |sha256: String| {
        let request = app
            .anonymous()
            .post(format!("{route}claim/{sha256}"))
            .basic_auth(user, Some(password));
        async move { text(request.send().await.unwrap()).await }
    };
    let latest = || async {
        app.get_json(&repository_href).await["latest_version_href"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    let (status, refused) = claim(secret.sha256.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.contains("no stored artifact"), "{refused}");
    let nowhere = "1".repeat(64);
    let (status, missing) = claim(nowhere.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{missing}");
    assert_eq!(
        refused.replace(&secret.sha256, "<digest>"),
        missing.replace(&nowhere, "<digest>"),
        "the answer does not tell whether the digest is stored"
    );
    assert_eq!(latest().await, format!("{repository_href}versions/0/"));

    let own = b"this repository's own file";
    let (status, body) =
        post_form_as_admin(&app, format!("{route}upload/"), "own", ("own.bin", own)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = claim(FixtureFile::new("own.bin", own.to_vec()).sha256).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(latest().await, format!("{repository_href}versions/2/"));

    app.assert_not_served(&format!("{route}pull/stolen.bin"), &secret.bytes)
        .await;
    assert_eq!(
        upstream.requests_for("stolen.bin"),
        1,
        "{:?}",
        upstream.request_counts()
    );
    assert_eq!(latest().await, format!("{repository_href}versions/2/"));
}

/// A plugin that panics while answering: the client gets a 502 that gives the request's
/// correlation id and nothing of the crash; the log has the panic message under that id.
async fn a_crashing_handle_answers_502_with_only_the_correlation_id(backend: Backend) {
    let app = app_with_handler(backend).await;
    repository_and_distribution(&app, "crash", None).await;
    let answer = app
        .anonymous()
        .get(app.url("/shelf/crash/crash"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
    let correlation_id = answer.headers()["correlation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = answer.text().await.unwrap();
    assert!(body.contains(&correlation_id), "{body}");
    assert!(
        !body.contains("0x5eed"),
        "the crash text reached the client: {body}"
    );
    let logged = app
        .log_line(&correlation_id, |line| {
            line.contains(&correlation_id) && line.contains("plugin call failed")
        })
        .await;
    assert!(logged.contains("0x5eed"), "{logged}");
}

/// The host recycles instance memory (kept resident and reset rather than unmapped): call after
/// call, the plugin finds its static state at its start and its new memory zeroed, never what
/// the call before it left there.
async fn every_call_starts_from_a_clean_instance(backend: Backend) {
    let app = app_with_handler(backend).await;
    repository_and_distribution(&app, "clean", None).await;
    for _ in 0..5 {
        let (status, body) = get_as(&app, &app.url("/shelf/clean/leftovers"), As::Anonymous).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, "calls-before=0 dirty-bytes=0");
    }
}

/// GET `url` as `who`: the status and the body.
async fn get_as(app: &TestApp, url: &str, who: As<'_>) -> (StatusCode, String) {
    let request = app.sent_as(app.anonymous().get(url), who);
    text(request.send().await.unwrap()).await
}

/// The `made=` line of a `kept/` answer: when the plugin made it.
fn made(answer: &str) -> &str {
    answer
        .lines()
        .find(|line| line.starts_with("made="))
        .unwrap_or_else(|| panic!("no made= line: {answer}"))
}

/// The plugin lets the host keep its `kept/<project>` answers (the user, when it made the answer,
/// the project's files). The host serves them again without calling the plugin, makes one call
/// for concurrent requests, drops them as soon as the distribution serves a new version, keeps
/// one per user, and lets a content guard decide every request before any kept answer is looked
/// at.
async fn kept_answers_follow_the_served_version_and_never_cross_users(backend: Backend) {
    let app = app_with_handler(backend).await;
    let (_, distribution) = repository_and_distribution(&app, "kept", None).await;
    let distribution = str_field(&distribution, "pulp_href").to_owned();
    let url = app.url("/shelf/kept/kept/demo/");
    for user in ["alice", "bob"] {
        app.create(
            &format!("{API}/users/"),
            json!({"username": user, "password": format!("{user}-password")}),
        )
        .await;
    }
    let alice = As::Basic("alice", "alice-password");
    let bob = As::Basic("bob", "bob-password");

    let (status, first) = get_as(&app, &url, As::Anonymous).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(first.starts_with("user=-\n"), "{first}");
    assert!(!first.contains("demo/"), "nothing uploaded yet: {first}");
    let (_, again) = get_as(&app, &url, As::Anonymous).await;
    assert_eq!(again, first, "kept: the plugin was not asked again");

    // An upload is a new version: the next answer is made afresh and lists the file.
    let (status, stored) = post_form_as_admin(
        &app,
        app.url("/shelf/kept/upload/"),
        "demo",
        ("a.txt", b"a"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    // Sixteen clients ask at once: the plugin answers one of them, and the others wait for that
    // answer rather than calling the plugin too.
    let asked = (0..16).map(|_| get_as(&app, &url, As::Anonymous));
    let answers = futures::future::join_all(asked).await;
    let after = answers[0].1.clone();
    assert!(after.contains("demo/a.txt\n"), "{after}");
    assert_ne!(made(&after), made(&first));
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        assert_eq!(made(answer), made(&after), "one answer made for all");
    }

    // Each user gets the answer made for them, however often and in whichever order they ask.
    let (_, for_alice) = get_as(&app, &url, alice).await;
    let (_, for_bob) = get_as(&app, &url, bob).await;
    for _ in 0..3 {
        assert_eq!(get_as(&app, &url, alice).await.1, for_alice);
        assert_eq!(get_as(&app, &url, bob).await.1, for_bob);
        assert_eq!(get_as(&app, &url, As::Anonymous).await.1, after);
    }
    assert!(for_alice.starts_with("user=alice\n"), "{for_alice}");
    assert!(for_bob.starts_with("user=bob\n"), "{for_bob}");

    // A guard only alice may pass: bob and anonymous clients are refused though answers made
    // for others are kept, and alice still gets hers.
    let guard = app
        .create(
            &format!("{API}/contentguards/core/rbac/"),
            json!({"name": "kept"}),
        )
        .await;
    let added = app
        .request(
            reqwest::Method::POST,
            &format!("{}add_role/", str_field(&guard, "pulp_href")),
            As::Admin,
            Some(&json!({"role": "core.rbaccontentguard_downloader", "users": ["alice"]})),
            &[],
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    app.update(&distribution, json!({"content_guard": guard["pulp_href"]}))
        .await;
    let (_, guarded) = get_as(&app, &url, alice).await;
    assert!(guarded.starts_with("user=alice\n"), "{guarded}");
    for _ in 0..2 {
        assert_eq!(get_as(&app, &url, alice).await.1, guarded);
        assert_eq!(get_as(&app, &url, bob).await.0, StatusCode::FORBIDDEN);
        assert_eq!(
            get_as(&app, &url, As::Anonymous).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
}
