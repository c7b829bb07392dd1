//! The screens: each reads what it shows from the REST API as the visitor, and draws it.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::Value;

use super::Visit;
use super::clients;
use super::layout::{
    self, PAGE_SIZE, csrf_field, encoded, notice, page, page_with, pagination, respond, text,
    ui_path, when,
};
use super::rest::Answer;
use super::session::{self, Session};
use crate::domain::hrefs::API_ROOT;
use crate::state::AppState;

/// A page's query: `q` (a search), `offset` (the list's page), `done` / `error` (an action's
/// outcome, shown once), `next` (where the log-in leads).
type Params = Query<HashMap<String, String>>;

/// The list offset a query asks for.
fn offset_of(params: &HashMap<String, String>) -> u64 {
    params
        .get("offset")
        .and_then(|offset| offset.parse().ok())
        .unwrap_or(0)
}

/// The results of a page of a REST list, and its count.
fn results(answer: &Answer) -> (Vec<Value>, u64) {
    let results = answer.body["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let count = answer.body["count"].as_u64().unwrap_or(0);
    (results, count)
}

/// A page of a REST list: `list` is its path and query up to the paging, which this adds from
/// the page's `offset`.
struct Listed {
    answer: Answer,
    rows: Vec<Value>,
    count: u64,
    offset: u64,
}

impl Listed {
    async fn fetch(visit: &Visit, params: &HashMap<String, String>, list: &str) -> Listed {
        let offset = offset_of(params);
        let answer = visit
            .rest
            .get(&format!("{list}&limit={PAGE_SIZE}&offset={offset}"))
            .await;
        let (rows, count) = results(&answer);
        Listed {
            answer,
            rows,
            count,
            offset,
        }
    }
}

/// An action's outcome carried to the page it leads to.
fn outcome(params: &HashMap<String, String>) -> Markup {
    html! {
        @if let Some(done) = params.get("done") { (notice("done", done)) }
        @if let Some(error) = params.get("error") { (notice("error", error)) }
    }
}

/// A failed read, shown in place of what it would have drawn.
fn failed(answer: &Answer) -> Markup {
    notice("error", &answer.problem())
}

/// A repository's type as the UI names it (`file`, `python`, `container push`) from its href.
fn kind_of(href: &str) -> String {
    let parts: Vec<&str> = href
        .trim_start_matches(API_ROOT)
        .split('/')
        .filter(|part| !part.is_empty())
        .collect();
    match parts.as_slice() {
        [_, plugin, segment, ..] if plugin == segment => (*plugin).to_owned(),
        [_, plugin, segment, ..] => format!("{plugin} ({segment})"),
        _ => String::new(),
    }
}

/// `GET /ui/login`: the log-in form (a visitor with a session goes to the dashboard).
pub async fn log_in_form(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    if Session::of(&app, &headers).await.is_some() {
        return Redirect::to("/ui/").into_response();
    }
    log_in_page(&params, StatusCode::OK, None)
}

/// The log-in page, with a new CSRF cookie and, after a failed attempt, why.
pub fn log_in_page(
    params: &HashMap<String, String>,
    status: StatusCode,
    problem: Option<&str>,
) -> Response {
    let token = session::new_log_in_token();
    let next = params
        .get("next")
        .filter(|next| next.starts_with("/ui/"))
        .cloned()
        .unwrap_or_else(|| "/ui/".into());
    let content = html! {
        @if let Some(problem) = problem { (notice("error", problem)) }
        form.card method="post" action="/ui/login" {
            input type="hidden" name="csrf" value=(token);
            input type="hidden" name="next" value=(next);
            label for="username" { "Username" }
            input id="username" type="text" name="username" autocomplete="username" required autofocus;
            label for="password" { "Password" }
            input id="password" type="password" name="password" autocomplete="current-password" required;
            p { button type="submit" { "Log in" } }
        }
    };
    let mut response = layout::respond_with(status, page(None, "Log in", content));
    if let Ok(cookie) = session::log_in_cookie(&token).parse() {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    response
}

/// `GET /ui/`: the server's state, storage, and the visitor's recent tasks.
pub async fn dashboard(visit: Visit) -> Response {
    let status = visit.rest.get(&format!("{API_ROOT}status/")).await;
    let tasks = visit
        .rest
        .get(&format!("{API_ROOT}tasks/?limit=10&ordering=-pulp_created"))
        .await;
    let repositories = visit
        .rest
        .get(&format!("{API_ROOT}repositories/?limit=1"))
        .await;
    let distributions = visit
        .rest
        .get(&format!("{API_ROOT}distributions/?limit=1"))
        .await;
    let storage = &status.body["storage"];
    let workers = status.body["online_workers"].as_array().map_or(0, Vec::len);
    let content = html! {
        section.card aria-labelledby="server" {
            h2 id="server" { "Server" }
            dl.facts {
                dt { "Version" } dd { (text(&status.body["versions"][0]["version"])) }
                dt { "Online workers" } dd { (workers) }
                dt { "Storage used" } dd { (bytes(&storage["used"])) " of " (bytes(&storage["total"])) }
                dt { "Repositories you may see" } dd { a href="/ui/repositories/" { (text(&repositories.body["count"])) } }
                dt { "Distributions you may see" } dd { a href="/ui/distributions/" { (text(&distributions.body["count"])) } }
            }
        }
        h2 { "Recent tasks" }
        (task_table(&results(&tasks).0))
    };
    respond(page(Some(&visit.session), "Dashboard", content))
}

/// A byte count in binary units.
fn bytes(value: &Value) -> String {
    let Some(mut amount) = value.as_f64() else {
        return "—".into();
    };
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
        if amount < 1024.0 || unit == "TiB" {
            return format!("{amount:.1} {unit}");
        }
        amount /= 1024.0;
    }
    unreachable!("the loop returns at its last unit")
}

fn task_table(tasks: &[Value]) -> Markup {
    html! {
        table {
            thead { tr { th { "Task" } th { "State" } th { "Created" } th { "Finished" } } }
            tbody {
                @for task in tasks {
                    @let state = text(&task["state"]);
                    tr {
                        td { a href=(ui_path(&text(&task["pulp_href"]))) { (text(&task["name"])) } }
                        td class=(format!("state-{state}")) { (state) }
                        td { (when(&task["pulp_created"])) }
                        td { (when(&task["finished_at"])) }
                    }
                }
            }
        }
    }
}

/// `GET /ui/repositories/`: the repositories the visitor may see, searched by name, and the
/// form that creates one (with a remote to sync from, if a URL is given).
pub async fn repositories(visit: Visit, Query(params): Params) -> Response {
    let offset = offset_of(&params);
    let search = params.get("q").cloned().unwrap_or_default();
    let answer = visit
        .rest
        .get(&format!(
            "{API_ROOT}repositories/?ordering=name&limit={PAGE_SIZE}&offset={offset}&name__icontains={}",
            encoded(&search)
        ))
        .await;
    let (rows, count) = results(&answer);
    let types: Vec<String> = visit
        .app
        .plugins
        .rest_names()
        .all()
        .map(|names| names.plugin.clone())
        .collect();
    let content = html! {
        (outcome(&params))
        form role="search" method="get" action="/ui/repositories/" {
            label for="q" { "Search by name" }
            input id="q" type="search" name="q" value=(search);
            " " button type="submit" { "Search" }
        }
        @if !answer.ok() { (failed(&answer)) }
        table {
            thead { tr { th { "Name" } th { "Type" } th { "Latest version" } th { "Description" } } }
            tbody {
                @for repository in &rows {
                    @let href = text(&repository["pulp_href"]);
                    tr {
                        td { a href=(ui_path(&href)) { (text(&repository["name"])) } }
                        td { (kind_of(&href)) }
                        td { (text(&repository["latest_version_href"]).trim_end_matches('/').rsplit('/').next().unwrap_or_default()) }
                        td { (text(&repository["description"])) }
                    }
                }
            }
        }
        (pagination(&format!("/ui/repositories/?q={}&", encoded(&search)), offset, count))
        form.card method="post" action="/ui/repositories/" aria-labelledby="new-repository" {
            h2 id="new-repository" { "New repository" }
            (csrf_field(&visit.session))
            label for="name" { "Name" }
            input id="name" type="text" name="name" required;
            label for="plugin" { "Type" }
            select id="plugin" name="plugin" {
                @for plugin in &types { option value=(plugin) { (plugin) } }
            }
            label for="remote_url" { "Sync from (a remote's URL; optional)" }
            input id="remote_url" type="url" name="remote_url";
            label for="policy" { "Download policy" }
            select id="policy" name="policy" {
                option value="immediate" { "immediate" }
                option value="on_demand" { "on_demand" }
                option value="streamed" { "streamed" }
            }
            p { button type="submit" { "Create" } }
        }
    };
    respond(page(Some(&visit.session), "Repositories", content))
}

/// `GET /ui/repositories/<plugin>/<type>/<id>/`: a repository, its versions, what serves it,
/// and its actions.
pub async fn repository(
    visit: Visit,
    Path((plugin, segment, id)): Path<(String, String, String)>,
    Query(params): Params,
) -> Response {
    let href = format!("{API_ROOT}repositories/{plugin}/{segment}/{id}/");
    let answer = visit.rest.get(&href).await;
    if !answer.ok() {
        return not_shown(&visit, &answer);
    }
    let repository = answer.body;
    let offset = offset_of(&params);
    let versions = visit
        .rest
        .get(&format!(
            "{href}versions/?limit={PAGE_SIZE}&offset={offset}"
        ))
        .await;
    let (version_rows, version_count) = results(&versions);
    let serving = visit
        .rest
        .get(&format!(
            "{API_ROOT}distributions/?repository={}",
            encoded(&href)
        ))
        .await;
    let endpoints = visit
        .app
        .plugins
        .rest_names()
        .plugin(&plugin)
        .map(|names| names.content.clone())
        .unwrap_or_default();
    let csrf = visit.session.csrf();
    let name = text(&repository["name"]);
    let content = html! {
        (outcome(&params))
        dl.facts {
            dt { "Type" } dd { (kind_of(&href)) }
            dt { "Description" } dd { (text(&repository["description"])) }
            dt { "Remote" } dd { (text(&repository["remote"])) }
            dt { "REST" } dd { code { (href) } }
        }
        h2 { "Versions" }
        table {
            thead { tr { th { "Number" } th { "Created" } th { "Added" } th { "Removed" } th { "Present" } } }
            tbody {
                @for version in &version_rows {
                    tr {
                        td { a href=(ui_path(&text(&version["pulp_href"]))) { (text(&version["number"])) } }
                        td { (when(&version["pulp_created"])) }
                        td { (summary_total(&version["content_summary"]["added"])) }
                        td { (summary_total(&version["content_summary"]["removed"])) }
                        td { (summary_total(&version["content_summary"]["present"])) }
                    }
                }
            }
        }
        (pagination(&format!("{}?", ui_path(&href)), offset, version_count))
        h2 { "Served by" }
        @let (distributions, _) = results(&serving);
        @if distributions.is_empty() { p { "No distribution serves it yet." } }
        @for distribution in &distributions {
            (clients::settings(&visit.app.origin, &plugin, distribution))
        }
        @if repository["remote"].is_string() {
            form.card method="post" action=(format!("{}sync", ui_path(&href))) {
                h2 { "Sync" }
                input type="hidden" name="csrf" value=(csrf);
                p { "Fetch what its remote has now." }
                button type="submit" { "Sync" }
            }
        }
        form.card method="post" action=(format!("{}distribute", ui_path(&href))) {
            h2 { "Publish and distribute" }
            input type="hidden" name="csrf" value=(csrf);
            label for="base_path" { "Base path" }
            input id="base_path" type="text" name="base_path" value=(name) required;
            p { "Publishes its latest version and serves the repository at that path (a distribution named after it)." }
            button type="submit" { "Publish and distribute" }
        }
        @if let Some(first) = endpoints.first() {
            // The CSRF token rides in the action's query: the body streams on to the API untouched.
            form.card method="post" enctype="multipart/form-data"
                action=(format!("{}upload?csrf={csrf}&endpoint={}", ui_path(&href), first.endpoint)) {
                h2 { "Upload" }
                input type="hidden" name="repository" value=(href);
                label for="file" { "File" }
                input id="file" type="file" name="file" required;
                label for="relative_path" { "Path in the repository" }
                input id="relative_path" type="text" name="relative_path" required;
                p { button type="submit" { "Upload" } }
            }
        }
        form.card method="post" action=(format!("{}delete", ui_path(&href))) {
            h2 { "Delete" }
            input type="hidden" name="csrf" value=(csrf);
            p { "Deletes the repository and its versions (content stays until orphan clean-up)." }
            button.danger type="submit" { "Delete " (name) }
        }
    };
    respond(page(
        Some(&visit.session),
        &format!("Repository {name}"),
        content,
    ))
}

/// The total of a version's content summary section (`{type: {count, href}}`).
fn summary_total(section: &Value) -> u64 {
    section
        .as_object()
        .map(|types| {
            types
                .values()
                .filter_map(|entry| entry["count"].as_u64())
                .sum()
        })
        .unwrap_or(0)
}

/// A page for an object the visitor may not see (or that does not exist): the API's answer.
fn not_shown(visit: &Visit, answer: &Answer) -> Response {
    let status = if answer.status.is_client_error() {
        answer.status
    } else {
        StatusCode::BAD_GATEWAY
    };
    layout::respond_with(
        status,
        page(Some(&visit.session), "Not available", failed(answer)),
    )
}

/// `GET …/versions/<n>/`: the content of a version, searched by path, and what it changed.
pub async fn version(
    visit: Visit,
    Path((plugin, segment, id, number)): Path<(String, String, String, u64)>,
    Query(params): Params,
) -> Response {
    let href = format!("{API_ROOT}repositories/{plugin}/{segment}/{id}/versions/{number}/");
    let answer = visit.rest.get(&href).await;
    if !answer.ok() {
        return not_shown(&visit, &answer);
    }
    let offset = offset_of(&params);
    let search = params.get("path").cloned().unwrap_or_default();
    let mut query = format!(
        "{API_ROOT}content/?repository_version={}&limit={PAGE_SIZE}&offset={offset}",
        encoded(&href)
    );
    if !search.is_empty() {
        query.push_str(&format!("&relative_path__icontains={}", encoded(&search)));
    }
    let units = visit.rest.get(&query).await;
    let (rows, count) = results(&units);
    let changes = |filter: &str| {
        let rest = visit.rest.clone();
        let href = href.clone();
        let filter = filter.to_owned();
        async move {
            rest.get(&format!(
                "{API_ROOT}content/?{filter}={}&limit={PAGE_SIZE}",
                encoded(&href)
            ))
            .await
        }
    };
    // The version's summary says how much it changed: a list is asked for only when it says
    // something the content above does not (a first sync adds the whole version).
    let summary = &answer.body["content_summary"];
    let (added_count, removed_count) = (
        summary_total(&summary["added"]),
        summary_total(&summary["removed"]),
    );
    let whole_version_added = added_count > 0 && added_count == summary_total(&summary["present"]);
    let added = if added_count > 0 && !whole_version_added {
        Some(changes("repository_version_added").await)
    } else {
        None
    };
    let removed = if removed_count > 0 {
        Some(changes("repository_version_removed").await)
    } else {
        None
    };
    // The difference with another version of the repository, each way.
    let against = params
        .get("against")
        .and_then(|number| number.parse::<u64>().ok());
    let versions_href = format!("{API_ROOT}repositories/{plugin}/{segment}/{id}/versions/");
    let mut compared = None;
    if let Some(other) = against {
        let other_href = format!("{versions_href}{other}/");
        let only = |(this, that): (&str, &str)| {
            let rest = visit.rest.clone();
            let query = format!(
                "{API_ROOT}content/?repository_version={}&not_in_repository_version={}&limit={PAGE_SIZE}",
                encoded(this),
                encoded(that)
            );
            async move { rest.get(&query).await }
        };
        let here = only((&href, &other_href)).await;
        let there = only((&other_href, &href)).await;
        compared = Some((other, here, there));
    }
    let repository_path = ui_path(&format!("{API_ROOT}repositories/{plugin}/{segment}/{id}/"));
    let content = html! {
        p { a href=(repository_path) { "Back to the repository" } }
        form role="search" method="get" {
            label for="path" { "Find files whose path contains" }
            input id="path" type="search" name="path" value=(search);
            " " button type="submit" { "Find" }
        }
        @if !units.ok() { (failed(&units)) }
        (unit_table(&rows))
        (pagination(&format!("{}?path={}&", ui_path(&href), encoded(&search)), offset, count))
        form method="get" aria-labelledby="compare" {
            h2 id="compare" { "Compare with another version" }
            label for="against" { "Version number" }
            input id="against" type="number" min="0" name="against" value=[against];
            " " button type="submit" { "Compare" }
        }
        @if let Some((other, here, there)) = &compared {
            @if !here.ok() { (failed(here)) }
            h3 { "In version " (number) ", not in version " (other) " (" (text(&here.body["count"])) ")" }
            (unit_table(&results(here).0))
            h3 { "In version " (other) ", not in version " (number) " (" (text(&there.body["count"])) ")" }
            (unit_table(&results(there).0))
        }
        h2 { "Added in this version (" (added_count) ")" }
        @if whole_version_added {
            p { "Every unit of this version was added in it: they are listed above." }
        }
        (change_table(added.as_ref(), added_count))
        h2 { "Removed in this version (" (removed_count) ")" }
        (change_table(removed.as_ref(), removed_count))
    };
    respond(page(
        Some(&visit.session),
        &format!("Version {number}"),
        content,
    ))
}

/// What a version added or removed: the first page of units when the API was asked for them,
/// with a note when there are more than a page shows.
fn change_table(answer: Option<&Answer>, count: u64) -> Markup {
    let Some(answer) = answer else {
        return html! {};
    };
    let rows = results(answer).0;
    html! {
        @if !answer.ok() { (failed(answer)) }
        (unit_table(&rows))
        @if count > rows.len() as u64 {
            p { "The first " (rows.len()) " of " (count) " are shown." }
        }
    }
}

/// A table of content units: their type, what identifies them, and when they were made.
fn unit_table(units: &[Value]) -> Markup {
    html! {
        table {
            thead { tr { th { "Unit" } th { "Type" } th { "Created" } } }
            tbody {
                @for unit in units {
                    tr {
                        td { (unit_name(unit)) }
                        td { (kind_of(&text(&unit["pulp_href"])).replace("content ", "")) }
                        td { (when(&unit["pulp_created"])) }
                    }
                }
            }
        }
    }
}

/// What names a unit for people: its path, file name, name and version, or digest.
fn unit_name(unit: &Value) -> String {
    for field in ["relative_path", "filename", "digest"] {
        if let Some(name) = unit[field].as_str() {
            return name.to_owned();
        }
    }
    match (unit["name"].as_str(), unit["version"].as_str()) {
        (Some(name), Some(version)) => format!("{name} {version}"),
        (Some(name), None) => name.to_owned(),
        _ => text(&unit["pulp_href"]),
    }
}

/// A page that is one REST list (`list`, up to its paging): its rows as `draw` draws them, the
/// list's problem if it failed, and links to the other pages (`base` with the offset added).
async fn list_page(
    visit: &Visit,
    params: &HashMap<String, String>,
    (title, list, base): (&str, &str, &str),
    draw: impl FnOnce(&[Value]) -> Markup,
) -> Response {
    let listed = Listed::fetch(visit, params, list).await;
    let content = html! {
        @if !listed.answer.ok() { (failed(&listed.answer)) }
        (draw(&listed.rows))
        (pagination(base, listed.offset, listed.count))
    };
    respond(page(Some(&visit.session), title, content))
}

/// `GET /ui/remotes/`.
pub async fn remotes(visit: Visit, Query(params): Params) -> Response {
    let list = format!("{API_ROOT}remotes/?ordering=name");
    list_page(
        &visit,
        &params,
        ("Remotes", &list, "/ui/remotes/?"),
        |rows| {
            html! {
                table {
                    thead { tr { th { "Name" } th { "Type" } th { "URL" } th { "Policy" } } }
                    tbody {
                        @for remote in rows {
                            tr {
                                td { (text(&remote["name"])) }
                                td { (kind_of(&text(&remote["pulp_href"]))) }
                                td { code { (text(&remote["url"])) } }
                                td { (text(&remote["policy"])) }
                            }
                        }
                    }
                }
            }
        },
    )
    .await
}

/// `GET /ui/distributions/`: each with its URL and the settings its clients need.
pub async fn distributions(visit: Visit, Query(params): Params) -> Response {
    let list = format!("{API_ROOT}distributions/?ordering=base_path");
    let origin = visit.app.origin.clone();
    list_page(
        &visit,
        &params,
        ("Distributions", &list, "/ui/distributions/?"),
        |rows| {
            html! {
                @for distribution in rows {
                    @let plugin = kind_of(&text(&distribution["pulp_href"]));
                    @let plugin = plugin.split(' ').next().unwrap_or_default();
                    (clients::settings(&origin, plugin, distribution))
                }
            }
        },
    )
    .await
}

/// `GET /ui/tasks/`.
pub async fn tasks(visit: Visit, Query(params): Params) -> Response {
    let list = format!("{API_ROOT}tasks/?ordering=-pulp_created");
    list_page(&visit, &params, ("Tasks", &list, "/ui/tasks/?"), task_table).await
}

/// `GET /ui/tasks/<id>/`: a task's state, progress and error; the page reloads itself every two
/// seconds until the task ends.
pub async fn task(visit: Visit, Path(id): Path<String>, Query(params): Params) -> Response {
    let answer = visit.rest.get(&format!("{API_ROOT}tasks/{id}/")).await;
    if !answer.ok() {
        return not_shown(&visit, &answer);
    }
    let task = answer.body;
    let state = text(&task["state"]);
    let running = matches!(state.as_str(), "waiting" | "running" | "canceling");
    let reports = task["progress_reports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let created = task["created_resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let content = html! {
        (outcome(&params))
        dl.facts {
            dt { "Name" } dd { (text(&task["name"])) }
            dt { "State" } dd class=(format!("state-{state}")) { (state) }
            dt { "Created" } dd { (when(&task["pulp_created"])) }
            dt { "Started" } dd { (when(&task["started_at"])) }
            dt { "Finished" } dd { (when(&task["finished_at"])) }
        }
        @if let Some(description) = task["error"]["description"].as_str() {
            (notice("error", description))
        }
        @if !reports.is_empty() {
            h2 { "Progress" }
            table {
                thead { tr { th { "Step" } th { "State" } th { "Done" } th { "Total" } } }
                tbody {
                    @for report in &reports {
                        tr {
                            td { (text(&report["message"])) }
                            td { (text(&report["state"])) }
                            td { (text(&report["done"])) }
                            td { (text(&report["total"])) }
                        }
                    }
                }
            }
        }
        @if !created.is_empty() {
            h2 { "Created" }
            ul {
                @for resource in &created {
                    @let href = text(resource);
                    li { a href=(ui_path(&href)) { (href) } }
                }
            }
        }
    };
    let title = format!("Task {}", text(&task["name"]));
    respond(page_with(
        Some(&visit.session),
        &title,
        content,
        running.then_some(2),
    ))
}

/// `GET /ui/plugins/`: the installed content types; staff install, upgrade and remove them.
pub async fn plugins(visit: Visit, Query(params): Params) -> Response {
    let answer = visit.rest.get(&format!("{API_ROOT}plugins/")).await;
    let rows = answer.body["results"]
        .as_array()
        .or(answer.body.as_array())
        .cloned()
        .unwrap_or_default();
    let staff = visit.session.user.is_staff;
    let csrf = visit.session.csrf();
    let content = html! {
        (outcome(&params))
        @if !answer.ok() { (failed(&answer)) }
        table {
            thead { tr { th { "Name" } th { "Version" } th { "WIT" } th { "Content types" } th { "Built in" } @if staff { th { "Remove" } } } }
            tbody {
                @for plugin in &rows {
                    @let name = text(&plugin["name"]);
                    @let builtin = plugin["builtin"].as_bool() == Some(true);
                    tr {
                        td { (name) }
                        td { (text(&plugin["version"])) }
                        td { (text(&plugin["wit_version"])) }
                        td { (plugin["content_types"].as_array().map(|types| types.iter().map(|t| text(&t["name"])).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                        td { (if builtin { "yes" } else { "no" }) }
                        @if staff {
                            td {
                                @if !builtin {
                                    form.inline method="post" action="/ui/plugins/remove" {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="name" value=(name);
                                        button.danger type="submit" aria-label=(format!("Remove {name}")) { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if staff {
            // The CSRF token rides in the action's query: the component streams on to the API.
            form.card method="post" enctype="multipart/form-data" action=(format!("/ui/plugins/?csrf={csrf}")) {
                h2 { "Install or upgrade a plugin" }
                label for="component" { "Component (.wasm)" }
                input id="component" type="file" name="file" accept=".wasm" required;
                p { button type="submit" { "Install" } }
            }
        }
    };
    respond(page(Some(&visit.session), "Plugins", content))
}

/// `GET /ui/users/`: the users the visitor may see (staff: all; others: themselves).
pub async fn users(visit: Visit, Query(params): Params) -> Response {
    let listed = Listed::fetch(
        &visit,
        &params,
        &format!("{API_ROOT}users/?ordering=username"),
    )
    .await;
    if !listed.answer.ok() {
        return not_shown(&visit, &listed.answer);
    }
    let Listed {
        rows,
        count,
        offset,
        ..
    } = listed;
    // Each user's roles, as `users/<id>/roles/` lists them: the role, and its object if any.
    let mut roles = Vec::with_capacity(rows.len());
    for user in &rows {
        let held = visit
            .rest
            .get(&format!("{}roles/?limit=100", text(&user["pulp_href"])))
            .await;
        let (held, _) = results(&held);
        roles.push(
            held.iter()
                .map(|role| match role["content_object"].as_str() {
                    Some(object) => format!("{} on {object}", text(&role["role"])),
                    None => text(&role["role"]),
                })
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    let content = html! {
        table {
            thead { tr { th { "Username" } th { "Staff" } th { "Active" } th { "Joined" } th { "Roles" } } }
            tbody {
                @for (user, roles) in rows.iter().zip(&roles) {
                    tr {
                        td { (text(&user["username"])) }
                        td { (text(&user["is_staff"])) }
                        td { (text(&user["is_active"])) }
                        td { (when(&user["date_joined"])) }
                        td { (roles) }
                    }
                }
            }
        }
        (pagination("/ui/users/?", offset, count))
    };
    respond(page(Some(&visit.session), "Users", content))
}
