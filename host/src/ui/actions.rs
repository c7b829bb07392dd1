//! What the forms do: each checks the session's CSRF token, then makes its REST calls as the
//! visitor and leads to the page that shows the outcome (the task it started, or the object
//! with a notice).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use super::layout::{encoded, ui_path};
use super::pages::log_in_page;
use super::rest::{Answer, Rest};
use super::session::{self, Session};
use super::{Visit, forbidden_form};
use crate::domain::hrefs::{API_ROOT, Collection};
use crate::state::AppState;

type Fields = Form<HashMap<String, String>>;

/// Leads to `path` with a notice of what happened (`done`) or why it did not (`error`).
fn back(path: &str, kind: &str, message: &str) -> Response {
    let separator = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{separator}{kind}={}", encoded(message))).into_response()
}

/// Leads to the task an accepted call started, or back to `path` with the call's problem.
fn to_task(path: &str, answer: &Answer) -> Response {
    match answer.body["task"].as_str() {
        Some(task) if answer.ok() => Redirect::to(&ui_path(task)).into_response(),
        _ => back(path, "error", &answer.problem()),
    }
}

/// `POST /ui/login`: checks the password (throttled as any log-in), opens a session and leads
/// where the visitor was going.
pub async fn log_in(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(fields): Fields,
) -> Response {
    let expected = session::cookie(&headers, session::LOG_IN_COOKIE);
    let given = fields.get("csrf").map(String::as_str).unwrap_or_default();
    if expected
        .is_none_or(|expected| !session::constant_time_eq(expected.as_bytes(), given.as_bytes()))
    {
        return forbidden_form();
    }
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    match session::log_in(&app, field("username"), field("password"), Some(peer.ip())).await {
        Ok(Some(token)) => {
            let next = Some(field("next"))
                .filter(|next| next.starts_with("/ui/") && !next.starts_with("/ui//"))
                .unwrap_or("/ui/");
            let mut response = Redirect::to(next).into_response();
            if let Ok(cookie) = session::session_cookie(&app, Some(&token)).parse() {
                response.headers_mut().insert(SET_COOKIE, cookie);
            }
            response
        }
        Ok(None) => log_in_page(
            &fields,
            StatusCode::UNAUTHORIZED,
            Some("The username or the password is wrong."),
        ),
        Err(error) => log_in_page(&fields, error.status(), Some(&error.message())),
    }
}

/// `POST /ui/logout`: ends the session (its token is deleted).
pub async fn log_out(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(fields): Fields,
) -> Response {
    if let Some(current) = Session::of(&app, &headers).await {
        if !current.csrf_matches(fields.get("csrf").map(String::as_str).unwrap_or_default()) {
            return forbidden_form();
        }
        if let Err(error) = session::log_out(&app, &current.token).await {
            return error.into_response();
        }
    }
    let mut response = Redirect::to("/ui/login").into_response();
    if let Ok(cookie) = session::session_cookie(&app, None).parse() {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    response
}

/// `POST /ui/repositories/`: a repository of the chosen plugin, with a remote to sync from
/// when a URL is given.
pub async fn create_repository(visit: Visit, Form(fields): Fields) -> Response {
    if !visit.sent_by_session(fields.get("csrf")) {
        return forbidden_form();
    }
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let names = visit.app.plugins.rest_names();
    let Some(plugin) = names.plugin(field("plugin")) else {
        return back("/ui/repositories/", "error", "plugin: no such plugin");
    };
    let segment = |collection| plugin.segment(collection);
    let mut body = json!({"name": field("name")});
    if !field("remote_url").is_empty() {
        let remote = visit
            .rest
            .post(
                &format!(
                    "{API_ROOT}remotes/{}/{}/",
                    plugin.plugin,
                    segment(Collection::Remotes)
                ),
                &json!({"name": field("name"), "url": field("remote_url"), "policy": field("policy")}),
            )
            .await;
        if !remote.ok() {
            return back("/ui/repositories/", "error", &remote.problem());
        }
        body["remote"] = remote.body["pulp_href"].clone();
    }
    let created = visit
        .rest
        .post(
            &format!(
                "{API_ROOT}repositories/{}/{}/",
                plugin.plugin,
                segment(Collection::Repositories)
            ),
            &body,
        )
        .await;
    match created.body["pulp_href"].as_str() {
        Some(href) if created.ok() => back(&ui_path(href), "done", "Repository created."),
        _ => back("/ui/repositories/", "error", &created.problem()),
    }
}

/// The REST href of the repository a `…/<plugin>/<type>/<id>/…` UI route names.
fn repository_href(plugin: &str, segment: &str, id: &str) -> String {
    format!("{API_ROOT}repositories/{plugin}/{segment}/{id}/")
}

type RepositoryPath = Path<(String, String, String)>;

/// A repository action that is one REST call answering with a task: the form's CSRF token
/// checked, then `call` made with the repository's href; leads to the task.
async fn one_call(
    visit: &Visit,
    (plugin, segment, id): (String, String, String),
    fields: &HashMap<String, String>,
    call: impl AsyncFnOnce(&Rest, &str) -> Answer,
) -> Response {
    if !visit.sent_by_session(fields.get("csrf")) {
        return forbidden_form();
    }
    let href = repository_href(&plugin, &segment, &id);
    let answer = call(&visit.rest, &href).await;
    to_task(&ui_path(&href), &answer)
}

/// `POST …/sync`: syncs the repository from its remote.
pub async fn sync(visit: Visit, Path(route): RepositoryPath, Form(fields): Fields) -> Response {
    one_call(&visit, route, &fields, async |rest, href| {
        rest.post(&format!("{href}sync/"), &json!({})).await
    })
    .await
}

/// `POST …/distribute`: publishes the repository's latest version and distributes the
/// repository at a base path (the distribution follows its latest publication, or serves its
/// latest version where the plugin serves versions itself): two tasks, queued together; the
/// page of the distribution's follows.
pub async fn distribute(
    visit: Visit,
    Path((plugin, segment, id)): RepositoryPath,
    Form(fields): Fields,
) -> Response {
    if !visit.sent_by_session(fields.get("csrf")) {
        return forbidden_form();
    }
    let href = repository_href(&plugin, &segment, &id);
    let names = visit.app.plugins.rest_names();
    let at = |collection| names.segment(&plugin, collection, &segment);
    let publication = visit
        .rest
        .post(
            &format!(
                "{API_ROOT}publications/{plugin}/{}/",
                at(Collection::Publications)
            ),
            &json!({"repository": href}),
        )
        .await;
    let base_path = fields.get("base_path").cloned().unwrap_or_default();
    let distribution = visit
        .rest
        .post(
            &format!(
                "{API_ROOT}distributions/{plugin}/{}/",
                at(Collection::Distributions)
            ),
            &json!({"name": base_path, "base_path": base_path, "repository": href}),
        )
        .await;
    match distribution.body["task"].as_str() {
        Some(task) if distribution.ok() && !publication.ok() => back(
            &ui_path(task),
            "error",
            &format!("Not published: {}", publication.problem()),
        ),
        _ => to_task(&ui_path(&href), &distribution),
    }
}

/// `POST …/upload?csrf=…&endpoint=…`: the form's multipart body (a `file`, the `repository`
/// and the plugin's fields) passed on as it streams to `content/<plugin>/<endpoint>/`.
pub async fn upload(
    visit: Visit,
    Path((plugin, segment, id)): RepositoryPath,
    Query(params): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    if !visit.sent_by_session(params.get("csrf")) {
        return forbidden_form();
    }
    let href = repository_href(&plugin, &segment, &id);
    let Some(endpoint) = params.get("endpoint").filter(|endpoint| {
        endpoint
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }) else {
        return back(&ui_path(&href), "error", "endpoint: not a content endpoint");
    };
    let answer = pass_on(
        &visit,
        &format!("{API_ROOT}content/{plugin}/{endpoint}/"),
        request,
    )
    .await;
    to_task(&ui_path(&href), &answer)
}

/// `POST …/delete`: deletes the repository (a task).
pub async fn delete_repository(
    visit: Visit,
    Path(route): RepositoryPath,
    Form(fields): Fields,
) -> Response {
    one_call(&visit, route, &fields, async |rest, href| {
        rest.delete(href).await
    })
    .await
}

/// `POST /ui/plugins/?csrf=…`: the form's component passed on as it streams to `POST plugins/`
/// (an install, or an upgrade of the plugin of that name).
pub async fn install_plugin(
    visit: Visit,
    Query(params): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    if !visit.sent_by_session(params.get("csrf")) {
        return forbidden_form();
    }
    let answer = pass_on(&visit, &format!("{API_ROOT}plugins/"), request).await;
    if answer.ok() {
        let installed = format!(
            "Installed {} {}.",
            answer.body["name"].as_str().unwrap_or_default(),
            answer.body["version"].as_str().unwrap_or_default()
        );
        back("/ui/plugins/", "done", &installed)
    } else {
        back("/ui/plugins/", "error", &answer.problem())
    }
}

/// `POST /ui/plugins/remove`: removes a plugin (refused by the API while its content exists).
pub async fn remove_plugin(visit: Visit, Form(fields): Fields) -> Response {
    if !visit.sent_by_session(fields.get("csrf")) {
        return forbidden_form();
    }
    let name = fields.get("name").cloned().unwrap_or_default();
    let answer = visit
        .rest
        .delete(&format!("{API_ROOT}plugins/{}/", encoded(&name)))
        .await;
    if answer.ok() {
        back("/ui/plugins/", "done", &format!("Removed {name}."))
    } else {
        back("/ui/plugins/", "error", &answer.problem())
    }
}

/// POSTs the request's body to `path` as it streams in, with its content type and length (a
/// form's multipart upload).
async fn pass_on(visit: &Visit, path: &str, request: Request) -> Answer {
    let headers = request.headers();
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let length = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    visit
        .rest
        .post_stream(path, content_type, length, request.into_body())
        .await
}
