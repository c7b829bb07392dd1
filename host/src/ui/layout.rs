//! The page every screen is drawn in: the head, a navigation bar, the user and the log-out
//! button, the content, and small pieces pages share (tables of objects, pagination, forms'
//! hidden CSRF field). Markup is `maud`'s, which escapes every value it interpolates.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use super::session::Session;

/// The stylesheet, inline in every page (small, and one request fewer).
const STYLE: &str = include_str!("style.css");

/// Results per page of every list.
pub const PAGE_SIZE: u64 = 25;

/// The links of the navigation bar: (path, label, staff only).
const NAVIGATION: &[(&str, &str, bool)] = &[
    ("/ui/", "Dashboard", false),
    ("/ui/repositories/", "Repositories", false),
    ("/ui/remotes/", "Remotes", false),
    ("/ui/distributions/", "Distributions", false),
    ("/ui/tasks/", "Tasks", false),
    ("/ui/plugins/", "Plugins", false),
    ("/ui/users/", "Users", true),
];

/// A whole page titled `title`, for `session` (none: the log-in page).
pub fn page(session: Option<&Session>, title: &str, content: Markup) -> Markup {
    page_with(session, title, content, None)
}

/// [`page`], reloading itself every `refresh` seconds (a task that has not finished).
pub fn page_with(
    session: Option<&Session>,
    title: &str,
    content: Markup,
    refresh: Option<u32>,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = refresh {
                    meta http-equiv="refresh" content=(seconds);
                }
                title { (title) " · Granary" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a.brand href="/ui/" { "Granary" }
                    @if let Some(session) = session {
                        nav aria-label="Main" {
                            ul {
                                @for (path, label, staff) in NAVIGATION {
                                    @if !staff || session.user.is_staff {
                                        li { a href=(path) { (label) } }
                                    }
                                }
                            }
                        }
                        form.logout method="post" action="/ui/logout" {
                            (csrf_field(session))
                            span { "Signed in as " strong { (session.user.username) } }
                            " "
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (content)
                }
            }
        }
    }
}

/// The hidden field every form of a session carries.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf()); }
}

/// A page as a response.
pub fn respond(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// A page as a response with `status`.
pub fn respond_with(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// A notice: what an action did or why it failed.
pub fn notice(kind: &str, message: &str) -> Markup {
    html! { p class=(format!("notice {kind}")) role="status" { (message) } }
}

/// The text of a JSON field (strings as they are, `null` and absent as `—`).
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "—".into(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A timestamp shortened to the second, in UTC.
pub fn when(value: &Value) -> String {
    value.as_str().map_or_else(
        || "—".into(),
        |stamp| stamp.get(..19).unwrap_or(stamp).replace('T', " "),
    )
}

/// The previous / next links of a list page at `offset` of `count` results, for `base` (a
/// path whose query already holds the list's other parameters, ending in `?` or `&`).
pub fn pagination(base: &str, offset: u64, count: u64) -> Markup {
    let shown_to = (offset + PAGE_SIZE).min(count);
    html! {
        nav.pages aria-label="Pages" {
            @if count == 0 {
                span { "Nothing here yet." }
            } @else {
                span { (offset + 1) "–" (shown_to) " of " (count) }
            }
            @if offset > 0 {
                " " a rel="prev" href=(format!("{base}offset={}", offset.saturating_sub(PAGE_SIZE))) { "Previous" }
            }
            @if shown_to < count {
                " " a rel="next" href=(format!("{base}offset={shown_to}")) { "Next" }
            }
        }
    }
}

/// The UI path of an object's REST href (`/pulp/api/v3/repositories/…` → `/ui/repositories/…`).
pub fn ui_path(href: &str) -> String {
    href.strip_prefix(crate::domain::hrefs::API_ROOT)
        .map_or_else(|| "/ui/".into(), |rest| format!("/ui/{rest}"))
}

/// A query value, encoded as forms encode it.
pub fn encoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_map_to_ui_paths_and_values_are_encoded() {
        assert_eq!(
            ui_path("/pulp/api/v3/repositories/file/file/1/"),
            "/ui/repositories/file/file/1/"
        );
        assert_eq!(ui_path("elsewhere"), "/ui/");
        assert_eq!(encoded("a b&c/é"), "a+b%26c%2F%C3%A9");
    }

    #[test]
    fn values_interpolated_into_pages_are_escaped() {
        let markup = notice("error", "<script>alert(1)</script>");
        assert!(!markup.into_string().contains("<script>"));
    }
}
