//! Pulp's list filter grammar, one table of cases answered alike by SQLite and PostgreSQL: every
//! list goes through the same machinery, so the lookups of each kind of field (text, number,
//! flag, time, labels, hrefs) are checked once here, on remotes, and the case-sensitivity that
//! used to differ between the engines on tasks and users.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::pulp::{API, str_field};
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(filters_answer_the_same_on_both_databases);

/// The remotes the table filters: names with upper case, `_` and `%` (which `LIKE` would take
/// as wildcards), and one field of each kind set differently on each.
const REMOTES: &[(&str, &str, &str, i64, bool, &str)] = &[
    // name, url path, policy, download_concurrency, tls_validation, env label
    ("alpha", "/a/", "immediate", 2, true, "prod"),
    ("Alpha-2", "/b/", "on_demand", 5, false, "dev"),
    ("beta_1", "/c/", "streamed", 10, true, "prod"),
    ("betaX1", "/d/", "on_demand", 10, true, "Prod"),
    ("gamma%x", "/e/", "immediate", 1, false, "dev"),
];

/// `remotes/file/file/?<query>` and the names it must answer, in any order.
const CASES: &[(&str, &[&str])] = &[
    ("name=alpha", &["alpha"]),
    ("name=ALPHA", &[]),
    ("name__iexact=ALPHA", &["alpha"]),
    ("name__contains=lpha", &["alpha", "Alpha-2"]),
    ("name__contains=Alpha", &["Alpha-2"]),
    ("name__contains=ALPHA", &[]),
    ("name__icontains=ALPHA", &["alpha", "Alpha-2"]),
    ("name__contains=_", &["beta_1"]),
    ("name__icontains=A_1", &["beta_1"]),
    ("name__contains=%25", &["gamma%x"]),
    ("name__startswith=a", &["alpha"]),
    ("name__startswith=A", &["Alpha-2"]),
    ("name__istartswith=a", &["alpha", "Alpha-2"]),
    ("name__in=alpha,beta_1,missing", &["alpha", "beta_1"]),
    ("name__in=missing", &[]),
    (
        "name=",
        &["alpha", "Alpha-2", "beta_1", "betaX1", "gamma%x"],
    ),
    (
        "colour=red",
        &["alpha", "Alpha-2", "beta_1", "betaX1", "gamma%x"],
    ),
    ("url__contains=/c/", &["beta_1"]),
    ("policy=on_demand", &["Alpha-2", "betaX1"]),
    (
        "policy__in=streamed,immediate",
        &["alpha", "beta_1", "gamma%x"],
    ),
    ("download_concurrency=10", &["beta_1", "betaX1"]),
    ("download_concurrency__gt=5", &["beta_1", "betaX1"]),
    (
        "download_concurrency__gte=5",
        &["Alpha-2", "beta_1", "betaX1"],
    ),
    ("download_concurrency__lt=5", &["alpha", "gamma%x"]),
    ("download_concurrency__lte=2", &["alpha", "gamma%x"]),
    ("download_concurrency__in=1,5", &["Alpha-2", "gamma%x"]),
    ("tls_validation=false", &["Alpha-2", "gamma%x"]),
    ("tls_validation=True", &["alpha", "beta_1", "betaX1"]),
    ("pulp_label_select=env=prod", &["alpha", "beta_1"]),
    ("pulp_label_select=env~prod", &["alpha", "beta_1", "betaX1"]),
    ("pulp_label_select=env!=dev,env!=Prod", &["alpha", "beta_1"]),
    ("name__startswith=beta&policy=on_demand", &["betaX1"]),
    // Pulp's `q`: the same filters combined (URL-encoded: `%22` is `"`, `%3D` is `=`).
    ("q=name=alpha OR name=beta_1", &["alpha", "beta_1"]),
    (
        "q=NOT pulp_label_select=%22env%3Dprod%22",
        &["Alpha-2", "betaX1", "gamma%x"],
    ),
    (
        "q=(policy=on_demand OR policy=streamed) AND NOT tls_validation=false",
        &["beta_1", "betaX1"],
    ),
    (
        "q=name__startswith=beta AND download_concurrency__gte=10&policy=streamed",
        &["beta_1"],
    ),
];

/// Requests a client gets a 400 for, and the field it names.
const MISTAKES: &[(&str, &str)] = &[
    ("download_concurrency__gt=many", "download_concurrency__gt"),
    ("tls_validation=perhaps", "tls_validation"),
    ("pulp_created__gte=yesterday", "pulp_created__gte"),
    ("pulp_label_select=!env=prod", "pulp_label_select"),
    ("ordering=-colour", "ordering"),
    ("pulp_href__in=/nowhere/", "pulp_href__in"),
    ("prn__in=prn:nope", "prn__in"),
    ("q=name=alpha OR", "q"),
    ("q=colour=red", "q"),
    ("q=q=name", "q"),
    ("q=ordering=name", "q"),
    (
        "q=NOT (NOT (NOT (NOT (NOT (NOT (NOT (NOT name=a)))))))",
        "q",
    ),
    ("q=tls_validation=perhaps", "tls_validation"),
];

fn names(items: &[Value], field: &str) -> BTreeSet<String> {
    items
        .iter()
        .map(|item| str_field(item, field).to_owned())
        .collect()
}

fn expected(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

async fn filters_answer_the_same_on_both_databases(backend: Backend) {
    let app = TestApp::start(backend).await;
    let list = format!("{API}/remotes/file/file/");
    let mut created = Vec::new();
    for (name, path, policy, concurrency, tls, env) in REMOTES {
        let remote = app
            .create(
                &list,
                json!({
                    "name": name,
                    "url": format!("http://127.0.0.1:9{path}PULP_MANIFEST"),
                    "policy": policy,
                    "download_concurrency": concurrency,
                    "tls_validation": tls,
                    "pulp_labels": {"env": env},
                }),
            )
            .await;
        created.push(remote);
    }

    for (query, answer) in CASES {
        let found = app.list_all(&format!("{list}?{query}")).await;
        assert_eq!(names(&found, "name"), expected(answer), "?{query}");
    }

    // Times: what was created at or after the third remote, and strictly before it.
    let third = str_field(&created[2], "pulp_created");
    let since = app
        .list_all(&format!("{list}?pulp_created__gte={third}"))
        .await;
    assert_eq!(
        names(&since, "name"),
        expected(&["beta_1", "betaX1", "gamma%x"])
    );
    let before = app
        .list_all(&format!("{list}?pulp_created__lt={third}"))
        .await;
    assert_eq!(names(&before, "name"), expected(&["alpha", "Alpha-2"]));

    // hrefs and PRNs name objects.
    let hrefs = format!(
        "{},{}",
        str_field(&created[0], "pulp_href"),
        str_field(&created[4], "pulp_href")
    );
    let by_href = app.list_all(&format!("{list}?pulp_href__in={hrefs}")).await;
    assert_eq!(names(&by_href, "name"), expected(&["alpha", "gamma%x"]));
    let by_prn = app
        .list_all(&format!("{list}?prn__in={}", str_field(&created[1], "prn")))
        .await;
    assert_eq!(names(&by_prn, "name"), expected(&["Alpha-2"]));

    for (query, field) in MISTAKES {
        let (status, body) = app.get(&format!("{list}?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "?{query}: {body}");
        assert!(body[field].is_array(), "?{query} names {field}: {body}");
    }

    // Tasks and users go through the same lookups: `__contains` is case-sensitive there too.
    app.update(
        str_field(&created[0], "pulp_href"),
        json!({"policy": "on_demand"}),
    )
    .await;
    let tasks = format!("{API}/tasks/");
    for (query, count) in [
        ("name__contains=general_update", 1),
        ("name__contains=General_Update", 0),
        ("name__icontains=General_Update", 1),
        ("name__startswith=granary.tasks.general", 1),
        ("state__in=completed,failed", 1),
    ] {
        assert_eq!(
            app.count(&format!("{tasks}?{query}")).await,
            count,
            "tasks/?{query}"
        );
    }
    for username in ["Carol", "carolyn"] {
        app.create(
            &format!("{API}/users/"),
            json!({"username": username, "password": "a long enough password"}),
        )
        .await;
    }
    let users = format!("{API}/users/");
    for (query, answer) in [
        ("username__contains=Carol", &["Carol"][..]),
        ("username__contains=carol", &["carolyn"]),
        ("username__icontains=CAROL", &["Carol", "carolyn"]),
        ("username=carolyn", &["carolyn"]),
        ("username__in=Carol,admin", &["Carol", "admin"]),
    ] {
        let found = app.list_all(&format!("{users}?{query}")).await;
        assert_eq!(
            names(&found, "username"),
            expected(answer),
            "users/?{query}"
        );
    }

    // Content paths take pulp_file's lookups, through the same conditions.
    let repository = app.create_file_repository("paths").await;
    for path in ["docs/Guide.txt", "docs/guide-2.txt", "src/main_100%.rs"] {
        app.upload_content("file/files", &repository, path, path.as_bytes())
            .await;
    }
    let content = format!("{API}/content/file/files/");
    for (query, answer) in [
        ("relative_path__contains=Guide", &["docs/Guide.txt"][..]),
        (
            "relative_path__icontains=GUIDE",
            &["docs/Guide.txt", "docs/guide-2.txt"],
        ),
        (
            "relative_path__startswith=docs/",
            &["docs/Guide.txt", "docs/guide-2.txt"],
        ),
        ("relative_path__icontains=100%25", &["src/main_100%.rs"]),
        ("relative_path__icontains=e_", &[]),
    ] {
        let found = app.list_all(&format!("{content}?{query}")).await;
        assert_eq!(
            names(&found, "relative_path"),
            expected(answer),
            "content/?{query}"
        );
    }
}
