//! The Pulp 3 REST surface of repositories, remotes and distributions: list filters, ordering and
//! pagination, field selection, labels, validation answers, remote settings applied on the wire,
//! retained versions, and base path rules.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::proxy::Proxy;
use crate::support::pulp::{API, created_resources, str_field, summary_count};
use crate::support::tls::Pki;
use crate::support::upstream::Required;
use crate::support::{Backend, Fixture, TestApp, Upstream};

sqlite_and_postgres!(
    repository_lists_filter_order_and_paginate,
    client_mistakes_are_400_and_unknown_urls_404,
    labels_are_set_and_unset_one_key_at_a_time,
    remote_fields_are_validated_and_secrets_never_shown,
    remote_credentials_and_headers_reach_the_upstream,
    remote_proxy_and_its_credentials_carry_every_request,
    failed_requests_are_retried_up_to_max_retries,
    download_concurrency_bounds_parallel_downloads,
    remote_tls_settings_decide_whom_granary_trusts_and_how_it_identifies,
    retained_versions_are_pruned_and_versions_deleted_without_losing_content,
    distribution_base_paths_do_not_overlap,
);

const REPOSITORIES: usize = 250;

fn repository_name(i: usize) -> String {
    format!("repo-{i:03}")
}

/// The labels repository `i` is created with: every one has `env`; every fifth has `tier`;
/// every seventh has a `team`; every tenth is `legacy`.
fn labels_of(i: usize) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert(
        "env".into(),
        json!(if i.is_multiple_of(2) { "prod" } else { "dev" }),
    );
    if i.is_multiple_of(5) {
        labels.insert("tier".into(), json!("gold"));
    }
    if i.is_multiple_of(7) {
        labels.insert("team".into(), json!("Platform-Ops"));
    }
    if i.is_multiple_of(10) {
        labels.insert("legacy".into(), json!("yes"));
    }
    Value::Object(labels)
}

/// The names of a page's results.
fn names(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page:#}"))
        .iter()
        .map(|item| str_field(item, "name").to_owned())
        .collect()
}

/// 250 labelled repositories: counts, a full walk over `next` and back over `previous` with the
/// other parameters kept, ordering both ways, every name lookup, `pulp_label_select` terms,
/// `fields`/`exclude_fields`, `pulp_href__in`/`prn__in`, the cross-type list, and 400 for a bad
/// ordering, label term, limit or offset.
async fn repository_lists_filter_order_and_paginate(backend: Backend) {
    let app = TestApp::start(backend).await;
    let list = format!("{API}/repositories/file/file/");
    let mut created = Vec::new();
    for i in 0..REPOSITORIES {
        let repository = app
            .create(
                &list,
                json!({"name": repository_name(i), "pulp_labels": labels_of(i)}),
            )
            .await;
        created.push(repository);
    }
    let all_names: Vec<String> = (0..REPOSITORIES).map(repository_name).collect();
    let count_where =
        |keep: &dyn Fn(usize) -> bool| (0..REPOSITORIES).filter(|i| keep(*i)).count() as u64;

    // Pages of 100 by default; `next` keeps the other parameters and walks every item once.
    let first = app
        .get_json(&format!("{list}?name__startswith=repo-"))
        .await;
    assert_eq!(first["count"], 250, "{first:#}");
    assert_eq!(names(&first).len(), 100);
    assert!(first["previous"].is_null(), "{first:#}");
    let next = str_field(&first, "next");
    assert!(next.starts_with("http://"), "next is absolute: {next}");
    assert!(
        next.contains("name__startswith=repo-"),
        "next keeps the filter: {next}"
    );
    let mut walked = names(&first);
    let mut page = first.clone();
    while let Some(next) = page["next"].as_str() {
        page = app.get_json(next).await;
        walked.extend(names(&page));
    }
    assert_eq!(walked, all_names, "name order, each repository once");
    let mut back = names(&page);
    while let Some(previous) = page["previous"].as_str() {
        page = app.get_json(previous).await;
        back.splice(0..0, names(&page));
    }
    assert_eq!(back, all_names, "previous walks back to the start");

    let small = app.get_json(&format!("{list}?limit=7&offset=245")).await;
    assert_eq!(names(&small), all_names[245..].to_vec());
    assert!(small["next"].is_null(), "{small:#}");
    assert!(
        str_field(&small, "previous").contains("offset=238"),
        "{small:#}"
    );

    // Ordering both ways, and several keys.
    let descending = app
        .get_json(&format!("{list}?ordering=-name&limit=3"))
        .await;
    assert_eq!(names(&descending), ["repo-249", "repo-248", "repo-247"]);
    let ascending = app.get_json(&format!("{list}?ordering=name&limit=2")).await;
    assert_eq!(names(&ascending), ["repo-000", "repo-001"]);
    let newest = app
        .get_json(&format!("{list}?ordering=-pulp_created,name&limit=1"))
        .await;
    assert_eq!(names(&newest), ["repo-249"]);
    let (status, body) = app.get(&format!("{list}?ordering=-colour")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["ordering"].is_array(), "{body}");

    // Name lookups.
    let count = |query: String| {
        let app = &app;
        let list = list.clone();
        async move { app.count(&format!("{list}?{query}")).await }
    };
    let matching =
        |keep: &dyn Fn(&str) -> bool| all_names.iter().filter(|n| keep(n)).count() as u64;
    assert_eq!(count("name=repo-007".into()).await, 1);
    assert_eq!(count("name__iexact=REPO-042".into()).await, 1);
    assert_eq!(
        count("name__contains=-12".into()).await,
        matching(&|n| n.contains("-12"))
    );
    assert_eq!(
        count("name__icontains=REPO-24".into()).await,
        matching(&|n| n.contains("repo-24"))
    );
    assert_eq!(
        count("name__contains=REPO".into()).await,
        0,
        "contains is case-sensitive"
    );
    assert_eq!(count("name__startswith=repo-1".into()).await, 100);
    assert_eq!(count("name__in=repo-001,repo-002,missing".into()).await, 2);

    // Label selection: =, !=, ~ (case-insensitive), presence, absence, and all of them ANDed.
    assert_eq!(
        count("pulp_label_select=env=prod".into()).await,
        count_where(&|i| i.is_multiple_of(2))
    );
    assert_eq!(
        count("pulp_label_select=env!=prod".into()).await,
        count_where(&|i| !i.is_multiple_of(2))
    );
    assert_eq!(
        count("pulp_label_select=tier".into()).await,
        count_where(&|i| i.is_multiple_of(5))
    );
    assert_eq!(
        count("pulp_label_select=!tier".into()).await,
        count_where(&|i| !i.is_multiple_of(5))
    );
    assert_eq!(
        count("pulp_label_select=team~ops".into()).await,
        count_where(&|i| i.is_multiple_of(7))
    );
    assert_eq!(
        count("pulp_label_select=env=prod,tier=gold,!legacy".into()).await,
        count_where(&|i| i.is_multiple_of(2) && i.is_multiple_of(5) && !i.is_multiple_of(10)),
        "env=prod and tier=gold without legacy is the empty set"
    );
    assert_eq!(
        count("pulp_label_select=env=dev,team~PLATFORM".into()).await,
        count_where(&|i| !i.is_multiple_of(2) && i.is_multiple_of(7))
    );
    let (status, body) = app
        .get(&format!("{list}?pulp_label_select=!env=prod"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["pulp_label_select"].is_array(), "{body}");

    // Field selection.
    let slim = app
        .get_json(&format!("{list}?fields=name,pulp_href&limit=5"))
        .await;
    for item in slim["results"].as_array().unwrap() {
        let keys: BTreeSet<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["name", "pulp_href"]), "{item}");
    }
    let without = app
        .get_json(&format!(
            "{list}?exclude_fields=pulp_labels,description&limit=1"
        ))
        .await;
    let item = &without["results"][0];
    assert!(
        item.get("pulp_labels").is_none() && item.get("description").is_none(),
        "{item}"
    );
    assert!(
        item.get("name").is_some() && item.get("prn").is_some(),
        "{item}"
    );
    let one = app
        .get_json(&format!(
            "{}?fields=name",
            str_field(&created[3], "pulp_href")
        ))
        .await;
    assert_eq!(one, json!({"name": "repo-003"}));

    // Objects by href and by PRN.
    let hrefs: Vec<&str> = created[10..13]
        .iter()
        .map(|r| str_field(r, "pulp_href"))
        .collect();
    assert_eq!(count(format!("pulp_href__in={}", hrefs.join(","))).await, 3);
    let prn = str_field(&created[20], "prn");
    assert!(prn.starts_with("prn:file.filerepository:"), "{prn}");
    let by_prn = app.get_json(&format!("{list}?prn__in={prn}")).await;
    assert_eq!(names(&by_prn), ["repo-020"]);

    // Every repository of every type, with the same filters.
    assert_eq!(app.count(&format!("{API}/repositories/")).await, 250);
    assert_eq!(
        app.count(&format!("{API}/repositories/?pulp_label_select=legacy"))
            .await,
        count_where(&|i| i.is_multiple_of(10))
    );

    for bad in ["limit=ten", "offset=-1"] {
        let (status, body) = app.get(&format!("{list}?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

/// A taken name is a 400 on `name` with Pulp's message; an href to nothing is a 400 on its field;
/// an object URL that names nothing is a 404.
async fn client_mistakes_are_400_and_unknown_urls_404(backend: Backend) {
    let app = TestApp::start(backend).await;
    let list = format!("{API}/repositories/file/file/");
    let repository = app.create_file_repository("taken").await;

    let (status, body) = app.post_json(&list, &json!({"name": "taken"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"name": ["This field must be unique."]}));

    let other = app.create_file_repository("other").await;
    let (status, body) = app.patch_json(&other, &json!({"name": "taken"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"name": ["This field must be unique."]}));

    let (status, body) = app
        .put_json(&other, &json!({"description": "no name"}))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "PUT needs the whole object: {body}"
    );
    assert!(body["name"].is_array(), "{body}");
    let (status, body) = app
        .put_json(&other, &json!({"name": "renamed", "description": "put"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let task = app.wait_task(str_field(&body, "task")).await;
    assert_eq!(task["state"], "completed", "{task:#}");
    let renamed = app.get_json(&other).await;
    assert_eq!(
        (&renamed["name"], &renamed["description"]),
        (&json!("renamed"), &json!("put"))
    );

    let nowhere = "8f0c2d9e-5b1a-4c3e-9d2f-0a1b2c3d4e5f";
    let missing_remote = format!("{API}/remotes/file/file/{nowhere}/");
    let (status, body) = app
        .post_json(&list, &json!({"name": "fresh", "remote": missing_remote}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["remote"].is_array(), "{body}");

    let (status, body) = app
        .post_json(
            &format!("{API}/distributions/file/file/"),
            &json!({"name": "d", "base_path": "d", "repository": format!("{list}{nowhere}/")}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["repository"].is_array(), "{body}");

    for url in [
        format!("{list}{nowhere}/"),
        format!("{list}not-a-uuid/"),
        format!("{repository}versions/9/"),
        format!("{API}/remotes/file/file/{nowhere}/"),
        format!("{API}/distributions/file/file/{nowhere}/"),
        format!("{API}/repositories/nosuchplugin/thing/"),
    ] {
        let (status, body) = app.get(&url).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "GET {url}: {body}");
    }
    let (status, _) = app.delete_json(&format!("{list}{nowhere}/")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// `set_label` and `unset_label` change one label of a repository, a remote and a distribution,
/// answering 201 with the key and value; unsetting a label that is not there is a 400.
async fn labels_are_set_and_unset_one_key_at_a_time(backend: Backend) {
    let app = TestApp::start(backend).await;
    let repository = app.create_file_repository("labelled").await;
    let remote = app
        .create_file_remote("labelled", "http://127.0.0.1:9/PULP_MANIFEST", "immediate")
        .await;
    let distribution = app
        .distribute_file("labelled", "labelled", json!({"repository": repository}))
        .await;
    let distribution = str_field(&distribution, "pulp_href").to_owned();

    for href in [&repository, &remote, &distribution] {
        let before = app.get_json(href).await;
        let (status, body) = app
            .post_json(
                &format!("{href}set_label/"),
                &json!({"key": "env", "value": "prod"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body, json!({"key": "env", "value": "prod"}));
        app.post_json(
            &format!("{href}set_label/"),
            &json!({"key": "owner", "value": "ops"}),
        )
        .await;
        let after = app.get_json(href).await;
        assert_eq!(
            after["pulp_labels"],
            json!({"env": "prod", "owner": "ops"}),
            "{href}"
        );
        assert!(
            str_field(&after, "pulp_last_updated") > str_field(&before, "pulp_last_updated"),
            "a label change moves pulp_last_updated: {before:#} {after:#}"
        );

        let (status, body) = app
            .post_json(&format!("{href}unset_label/"), &json!({"key": "env"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body, json!({"key": "env", "value": "prod"}));
        assert_eq!(
            app.get_json(href).await["pulp_labels"],
            json!({"owner": "ops"})
        );

        let (status, body) = app
            .post_json(&format!("{href}unset_label/"), &json!({"key": "env"}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["key"].is_array(), "{body}");
        let (status, body) = app
            .post_json(
                &format!("{href}set_label/"),
                &json!({"key": "a/b", "value": "x"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let selected = app
        .get_json(&format!("{API}/distributions/?pulp_label_select=owner=ops"))
        .await;
    assert_eq!(selected["count"], 1, "{selected:#}");
}

/// A remote with every common field: the secrets are accepted but never shown (only
/// `hidden_fields` says they are set), timeouts read back as seconds, and each invalid value is
/// a 400 on its own field. An update is a task, and moves `pulp_last_updated`.
async fn remote_fields_are_validated_and_secrets_never_shown(backend: Backend) {
    let app = TestApp::start(backend).await;
    let list = format!("{API}/remotes/file/file/");
    let remote = app
        .create(
            &list,
            json!({
                "name": "full",
                "url": "https://upstream.example/PULP_MANIFEST",
                "policy": "on_demand",
                "tls_validation": false,
                "proxy_url": "http://proxy.example:3128",
                "proxy_username": "proxy-user",
                "proxy_password": "proxy-secret",
                "username": "user",
                "password": "secret",
                "headers": [{"X-Token": "abc"}],
                "download_concurrency": 4,
                "max_retries": 2,
                "rate_limit": 5,
                "total_timeout": 30.5,
                "connect_timeout": 5,
                "sock_connect_timeout": 4.25,
                "sock_read_timeout": 10,
                "pulp_labels": {"env": "test"},
            }),
        )
        .await;
    for secret in [
        "username",
        "password",
        "proxy_username",
        "proxy_password",
        "client_key",
    ] {
        assert!(
            remote.get(secret).is_none(),
            "{secret} is write-only: {remote:#}"
        );
    }
    let hidden: Vec<(String, bool)> = remote["hidden_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| {
            (
                str_field(field, "name").to_owned(),
                field["is_set"].as_bool().unwrap(),
            )
        })
        .collect();
    for (name, set) in [
        ("username", true),
        ("password", true),
        ("proxy_username", true),
        ("proxy_password", true),
        ("client_key", false),
    ] {
        assert!(
            hidden.contains(&(name.to_owned(), set)),
            "{name}: {hidden:?}"
        );
    }
    assert_eq!(remote["total_timeout"], 30.5);
    assert_eq!(remote["sock_connect_timeout"], 4.25);
    assert_eq!(remote["connect_timeout"], 5.0);
    assert_eq!(remote["headers"], json!([{"X-Token": "abc"}]));
    assert_eq!(remote["proxy_url"], "http://proxy.example:3128");
    assert_eq!(remote["tls_validation"], false);
    assert_eq!(remote["rate_limit"], 5);
    assert!(
        str_field(&remote, "prn").starts_with("prn:file.fileremote:"),
        "{remote:#}"
    );

    for (body, field) in [
        (
            json!({"name": "x", "url": "ftp://upstream.example/"}),
            "url",
        ),
        (json!({"name": "x", "url": "not a url"}), "url"),
        (
            json!({"name": "x", "url": "http://u/", "policy": "sometimes"}),
            "policy",
        ),
        (
            json!({"name": "x", "url": "http://u/", "download_concurrency": 0}),
            "download_concurrency",
        ),
        (
            json!({"name": "x", "url": "http://u/", "max_retries": -1}),
            "max_retries",
        ),
        (
            json!({"name": "x", "url": "http://u/", "total_timeout": -1}),
            "total_timeout",
        ),
        (
            json!({"name": "x", "url": "http://u/", "sock_read_timeout": "soon"}),
            "sock_read_timeout",
        ),
        (
            json!({"name": "x", "url": "http://u/", "ca_cert": "not a certificate"}),
            "ca_cert",
        ),
        (
            json!({"name": "x", "url": "http://u/", "client_cert": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"}),
            "client_cert",
        ),
        (
            json!({"name": "x", "url": "http://u/", "client_key": "secret"}),
            "client_key",
        ),
        (
            json!({"name": "x", "url": "http://u/", "proxy_url": "socks://p"}),
            "proxy_url",
        ),
        (
            json!({"name": "x", "url": "http://u/", "headers": {"X-Token": "abc"}}),
            "headers",
        ),
        (
            json!({"name": "x", "url": "http://u/", "headers": [{"Bad Header": "x"}]}),
            "headers",
        ),
        (
            json!({"name": "x", "url": "http://u/", "tls_validation": "maybe"}),
            "tls_validation",
        ),
        (json!({"name": "full", "url": "http://u/"}), "name"),
        (json!({"url": "http://u/"}), "name"),
    ] {
        let (status, answer) = app.post_json(&list, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} answered {answer}");
        assert!(
            answer[field].is_array(),
            "{body}: the error is on {field}: {answer}"
        );
    }

    let href = str_field(&remote, "pulp_href");
    let updated = app
        .update(
            href,
            json!({"download_concurrency": 8, "password": null, "sock_read_timeout": null}),
        )
        .await;
    assert_eq!(updated["download_concurrency"], 8);
    assert!(updated["sock_read_timeout"].is_null(), "{updated:#}");
    assert!(
        updated["hidden_fields"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "password", "is_set": false}))
    );
    assert!(
        str_field(&updated, "pulp_last_updated") > str_field(&remote, "pulp_last_updated"),
        "{updated:#}"
    );
    assert_eq!(updated["pulp_created"], remote["pulp_created"]);
    let (status, body) = app.patch_json(href, &json!({"url": "gopher://u/"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    assert_eq!(
        app.count(&format!("{API}/remotes/?policy=on_demand")).await,
        1
    );
    app.remove(href).await;
    let (status, _) = app.get(href).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// An upstream that insists on basic-auth credentials and a token header: a sync through a
/// remote without them fails on the 401, and through a remote with them fetches the manifest and
/// every file.
async fn remote_credentials_and_headers_reach_the_upstream(backend: Backend) {
    let fixture = Fixture::generate(12, 31);
    let upstream = Upstream::serve(&fixture).await;
    upstream.require(Required {
        basic_auth: ("mirror".into(), "s3cret".into()),
        header: ("X-Upstream-Token".into(), "t0ken".into()),
    });
    let app = TestApp::start(backend).await;
    let repository = app.create_file_repository("guarded").await;

    let bare = app
        .create_file_remote("bare", &upstream.manifest_url(), "immediate")
        .await;
    let task = app.sync(&repository, &bare, false).await;
    assert_eq!(task["state"], "failed", "{task:#}");
    assert!(upstream.refused_requests() > 0);

    let only_password = app
        .create(
            &format!("{API}/remotes/file/file/"),
            json!({"name": "half", "url": upstream.manifest_url(), "username": "mirror", "password": "s3cret"}),
        )
        .await;
    let task = app
        .sync(&repository, str_field(&only_password, "pulp_href"), false)
        .await;
    assert_eq!(
        task["state"], "failed",
        "the header is required too: {task:#}"
    );

    let refused_before = upstream.refused_requests();
    let remote = app
        .create(
            &format!("{API}/remotes/file/file/"),
            json!({
                "name": "guarded",
                "url": upstream.manifest_url(),
                "username": "mirror",
                "password": "s3cret",
                "headers": [{"X-Upstream-Token": "t0ken"}],
                "download_concurrency": 2,
            }),
        )
        .await;
    let task = app
        .sync(&repository, str_field(&remote, "pulp_href"), false)
        .await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(
        upstream.refused_requests(),
        refused_before,
        "nothing was refused"
    );
    let version = app.get_json(&format!("{repository}versions/1/")).await;
    assert_eq!(
        summary_count(&version, "present", "file.file"),
        fixture.files.len() as u64
    );
    for file in &fixture.files {
        assert_eq!(
            upstream.requests_for(&file.relative_path),
            1,
            "{}",
            file.relative_path
        );
    }
}

/// A remote with `proxy_url` and proxy credentials reaches the upstream only through the proxy:
/// without the credentials the proxy refuses (407) and the sync fails; with them the manifest and
/// every file go through it.
async fn remote_proxy_and_its_credentials_carry_every_request(backend: Backend) {
    let fixture = Fixture::generate(8, 32);
    let upstream = Upstream::serve(&fixture).await;
    let proxy = Proxy::start("gate", "keeper").await;
    let app = TestApp::start(backend).await;
    let repository = app.create_file_repository("proxied").await;
    let remotes = format!("{API}/remotes/file/file/");

    let no_credentials = app
        .create(
            &remotes,
            json!({"name": "no-credentials", "url": upstream.manifest_url(), "proxy_url": proxy.url()}),
        )
        .await;
    let task = app
        .sync(&repository, str_field(&no_credentials, "pulp_href"), false)
        .await;
    assert_eq!(task["state"], "failed", "{task:#}");
    assert!(
        proxy.refused() > 0,
        "the proxy saw the request and refused it"
    );
    assert_eq!(
        upstream.manifest_requests(),
        0,
        "nothing bypassed the proxy"
    );

    let remote = app
        .create(
            &remotes,
            json!({
                "name": "proxied",
                "url": upstream.manifest_url(),
                "proxy_url": proxy.url(),
                "proxy_username": "gate",
                "proxy_password": "keeper",
            }),
        )
        .await;
    let task = app
        .sync(&repository, str_field(&remote, "pulp_href"), false)
        .await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(
        proxy.carried(),
        1 + fixture.files.len(),
        "the manifest and every file"
    );
    assert_eq!(upstream.manifest_requests(), 1);
    assert_eq!(upstream.file_requests(), fixture.files.len());
}

/// An upstream that answers 503 to the first two requests for every path: a remote allowed two
/// retries syncs everything (three requests a path), one allowed a single retry fails.
async fn failed_requests_are_retried_up_to_max_retries(backend: Backend) {
    let fixture = Fixture::generate(6, 33);
    let upstream = Upstream::serve(&fixture).await;
    upstream.fail_first_requests(2);
    let app = TestApp::start(backend).await;
    let remotes = format!("{API}/remotes/file/file/");

    let impatient = app
        .create(
            &remotes,
            json!({"name": "impatient", "url": upstream.manifest_url(), "max_retries": 1}),
        )
        .await;
    let repository = app.create_file_repository("retried").await;
    let task = app
        .sync(&repository, str_field(&impatient, "pulp_href"), false)
        .await;
    assert_eq!(task["state"], "failed", "{task:#}");
    assert_eq!(upstream.manifest_requests(), 2, "one try and one retry");

    let patient = app
        .create(
            &remotes,
            json!({"name": "patient", "url": upstream.manifest_url(), "max_retries": 2}),
        )
        .await;
    let task = app
        .sync(&repository, str_field(&patient, "pulp_href"), false)
        .await;
    assert_eq!(task["state"], "completed", "{task:#}");
    for file in &fixture.files {
        assert_eq!(
            upstream.requests_for(&file.relative_path),
            3,
            "two 503s, then the file: {}",
            file.relative_path
        );
    }
    let version = app.get_json(&format!("{repository}versions/1/")).await;
    assert_eq!(
        summary_count(&version, "present", "file.file"),
        fixture.files.len() as u64
    );
}

/// An HTTPS upstream with a certificate from a private authority, requiring a client
/// certificate: a remote that validates TLS without the authority fails; one trusting it through
/// `ca_cert` but without a client certificate is refused; with `client_cert` and `client_key` it
/// syncs. `tls_validation: false` skips the server check (the client certificate is still sent).
async fn remote_tls_settings_decide_whom_granary_trusts_and_how_it_identifies(backend: Backend) {
    let pki = tokio::task::spawn_blocking(Pki::generate)
        .await
        .expect("generate certificates");
    let fixture = Fixture::generate(5, 34);
    let upstream = Upstream::serve_tls(&fixture, pki.server_config()).await;
    let app = TestApp::start(backend).await;
    let remotes = format!("{API}/remotes/file/file/");
    let url = upstream.manifest_url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let attempts = [
        ("untrusted", json!({}), "failed"),
        ("anonymous", json!({"ca_cert": pki.ca_cert}), "failed"),
        (
            "unchecked",
            json!({"tls_validation": false, "client_cert": pki.client_cert, "client_key": pki.client_key}),
            "completed",
        ),
        (
            "identified",
            json!({"ca_cert": pki.ca_cert, "client_cert": pki.client_cert, "client_key": pki.client_key}),
            "completed",
        ),
    ];
    for (name, settings, outcome) in attempts {
        let mut body = json!({"name": name, "url": url});
        body.as_object_mut()
            .unwrap()
            .extend(settings.as_object().unwrap().clone());
        let remote = app.create(&remotes, body).await;
        let repository = app.create_file_repository(name).await;
        let task = app
            .sync(&repository, str_field(&remote, "pulp_href"), false)
            .await;
        assert_eq!(task["state"], outcome, "{name}: {task:#}");
    }
    let identified = app.get_json(&format!("{remotes}?name=identified")).await;
    let shown = &identified["results"][0];
    assert_eq!(shown["ca_cert"], json!(pki.ca_cert));
    assert_eq!(shown["client_cert"], json!(pki.client_cert));
    assert!(shown.get("client_key").is_none(), "{shown:#}");
    assert!(
        shown["hidden_fields"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "client_key", "is_set": true}))
    );
}

/// A remote's `download_concurrency` is the most file downloads a sync has open at once.
async fn download_concurrency_bounds_parallel_downloads(backend: Backend) {
    let fixture = Fixture::generate(16, 35);
    let upstream = Upstream::serve(&fixture).await;
    // Slow answers make downloads overlap, so the bound is what limits them.
    upstream.set_file_delay(std::time::Duration::from_millis(100));
    let app = TestApp::start(backend).await;
    let remote = app
        .create(
            &format!("{API}/remotes/file/file/"),
            json!({"name": "narrow", "url": upstream.manifest_url(), "download_concurrency": 2}),
        )
        .await;
    let repository = app.create_file_repository("narrow").await;
    let task = app
        .sync(&repository, str_field(&remote, "pulp_href"), false)
        .await;
    assert_eq!(task["state"], "completed", "{task:#}");
    assert_eq!(upstream.file_requests(), fixture.files.len());
    let most = upstream.most_concurrent_file_requests();
    assert!(
        (1..=2).contains(&most),
        "at most two downloads at once, saw {most}"
    );
}

/// With `retain_repo_versions` 2, each new version prunes the oldest beyond two and the kept
/// ones keep their content. Deleting a middle version (a task) squashes it into the next one
/// (the latest version and served ones: `repository_versions.rs`). Version lists filter by
/// number and content.
async fn retained_versions_are_pruned_and_versions_deleted_without_losing_content(
    backend: Backend,
) {
    let app = TestApp::start(backend).await;
    let retained = app
        .create(
            &format!("{API}/repositories/file/file/"),
            json!({"name": "retained", "retain_repo_versions": 2}),
        )
        .await;
    let retained = str_field(&retained, "pulp_href").to_owned();
    for i in 0..4 {
        app.upload_content(
            "file/files",
            &retained,
            &format!("f{i}.txt"),
            format!("file {i}").as_bytes(),
        )
        .await;
    }
    let versions = app.get_json(&format!("{retained}versions/")).await;
    let numbers: Vec<i64> = versions["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["number"].as_i64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        [4, 3],
        "only the two newest versions are kept: {versions:#}"
    );
    assert_eq!(
        app.file_content_in(&format!("{retained}versions/3/"))
            .await
            .len(),
        3
    );
    assert_eq!(
        app.file_content_in(&format!("{retained}versions/4/"))
            .await
            .len(),
        4
    );
    let oldest = app.get_json(&format!("{retained}versions/3/")).await;
    assert!(oldest["base_version"].is_null(), "{oldest:#}");
    let (status, _) = app.get(&format!("{retained}versions/2/")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let repository = app.create_file_repository("squashed").await;
    for i in 0..3 {
        app.upload_content(
            "file/files",
            &repository,
            &format!("g{i}.txt"),
            format!("unit {i}").as_bytes(),
        )
        .await;
    }
    let units = app
        .file_content_in(&format!("{repository}versions/3/"))
        .await;
    let first_unit = str_field(
        units
            .iter()
            .find(|u| u["relative_path"] == "g0.txt")
            .unwrap(),
        "pulp_href",
    )
    .to_owned();
    let third_unit = str_field(
        units
            .iter()
            .find(|u| u["relative_path"] == "g2.txt")
            .unwrap(),
        "pulp_href",
    )
    .to_owned();
    let numbers_of = |page: &Value| -> Vec<i64> {
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["number"].as_i64().unwrap())
            .collect()
    };
    let versions = format!("{repository}versions/");
    assert_eq!(
        numbers_of(&app.get_json(&format!("{versions}?number__gte=2")).await),
        [3, 2]
    );
    assert_eq!(
        numbers_of(
            &app.get_json(&format!("{versions}?number__lte=1&ordering=number"))
                .await
        ),
        [0, 1]
    );
    assert_eq!(
        numbers_of(
            &app.get_json(&format!("{versions}?content={first_unit}"))
                .await
        ),
        [3, 2, 1]
    );
    assert_eq!(
        numbers_of(
            &app.get_json(&format!("{versions}?content={third_unit}"))
                .await
        ),
        [3]
    );
    let (status, _) = app.get(&format!("{versions}?ordering=size")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    app.remove(&format!("{versions}2/")).await;
    assert_eq!(numbers_of(&app.get_json(&versions).await), [3, 1, 0]);
    assert_eq!(app.file_content_in(&format!("{versions}1/")).await.len(), 1);
    assert_eq!(app.file_content_in(&format!("{versions}3/")).await.len(), 3);
    let successor = app.get_json(&format!("{versions}3/")).await;
    assert_eq!(
        summary_count(&successor, "added", "file.file"),
        2,
        "{successor:#}"
    );
    assert_eq!(successor["base_version"], format!("{versions}1/"));
    assert_eq!(app.count(&format!("{API}/repository_versions/")).await, 5);
}

/// Base paths are unique and may not nest in one another; distributions are created, updated
/// and deleted by tasks; at most one of repository, repository version and publication; no
/// content guard but null; hidden distributions stay out of the content app's root listing.
async fn distribution_base_paths_do_not_overlap(backend: Backend) {
    let app = TestApp::start(backend).await;
    let list = format!("{API}/distributions/file/file/");
    let repository = app.create_file_repository("served").await;
    let distribution = app
        .distribute_file("nested", "teams/web", json!({"repository": repository}))
        .await;
    let href = str_field(&distribution, "pulp_href").to_owned();
    assert!(str_field(&distribution, "prn").starts_with("prn:file.filedistribution:"));

    for base_path in ["teams", "teams/web/assets", "teams/web", "/teams/web/"] {
        let (status, body) = app
            .post_json(
                &list,
                &json!({"name": format!("n-{base_path}"), "base_path": base_path}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{base_path}: {body}");
        assert!(body["base_path"].is_array(), "{base_path}: {body}");
    }
    let sibling = app
        .distribute_file(
            "sibling",
            "teams/website",
            json!({"repository": repository, "hidden": true}),
        )
        .await;
    assert_eq!(sibling["hidden"], true);

    let (status, body) = app
        .patch_json(&href, &json!({"base_path": "teams/website/x"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let publication = app.publish_file(&repository).await;
    let (status, body) = app
        .patch_json(&href, &json!({"publication": publication}))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "repository and publication at once: {body}"
    );
    let (status, body) = app
        .patch_json(&href, &json!({"content_guard": format!("{API}/contentguards/core/rbac/8f0c2d9e-5b1a-4c3e-9d2f-0a1b2c3d4e5f/")}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["content_guard"].is_array(), "{body}");

    let moved = app
        .update(
            &href,
            json!({"base_path": "teams/app", "repository": null, "publication": publication}),
        )
        .await;
    assert_eq!(moved["base_path"], "teams/app");
    assert_eq!(moved["publication"], publication);
    assert!(moved["repository"].is_null(), "{moved:#}");
    let version = app
        .update(
            &href,
            json!({"publication": null, "repository_version": format!("{repository}versions/0/")}),
        )
        .await;
    assert_eq!(
        version["repository_version"],
        format!("{repository}versions/0/")
    );

    let root = reqwest::get(app.url("/pulp/content/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(root.contains("teams/app/"), "{root}");
    assert!(!root.contains("teams/website/"), "hidden: {root}");

    let page = app
        .get_json(&format!(
            "{list}?base_path__contains=teams&ordering=-base_path"
        ))
        .await;
    let base_paths: Vec<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| str_field(d, "base_path"))
        .collect();
    assert_eq!(base_paths, ["teams/website", "teams/app"]);

    app.remove(&href).await;
    let (status, _) = app.get(&href).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let task = app
        .run_task(&list, json!({"name": "again", "base_path": "teams/web"}))
        .await;
    assert_eq!(created_resources(&task).len(), 1, "{task:#}");
}
