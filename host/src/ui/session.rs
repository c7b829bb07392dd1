//! Who is using the UI: a session is an API token of the user who logged in, kept in an
//! `HttpOnly`, `SameSite=Lax` cookie scoped to `/ui/`. Every page and action calls the REST API
//! with that token, so a session may do exactly what the user's token may; logging out deletes
//! the token (it is listed under the user's tokens while it lives, and revocable there).
//!
//! Forms carry a CSRF token derived from the session's secret (a keyed digest a page from
//! another origin cannot compute, checked on every POST); the log-in form, which has no session
//! yet, carries the value of a random cookie set with it (double submit).

use std::net::IpAddr;

use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::auth::{self, User};
use crate::state::App;

/// The cookie holding a session's token.
pub const SESSION_COOKIE: &str = "granary_ui_session";
/// The cookie the log-in form's CSRF token is checked against.
pub const LOG_IN_COOKIE: &str = "granary_ui_login";
/// How long a session lasts, in seconds (a working day).
pub const SESSION_SECONDS: i64 = 12 * 60 * 60;

/// A logged-in visitor.
#[derive(Debug, Clone)]
pub struct Session {
    /// The API token the UI calls the REST API with.
    pub token: String,
    /// Its user.
    pub user: User,
}

impl Session {
    /// The session of the request's cookie, if it names a live token of an active user.
    pub async fn of(app: &App, headers: &HeaderMap) -> Option<Session> {
        let token = cookie(headers, SESSION_COOKIE)?;
        let mut bearer = HeaderMap::new();
        bearer.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).ok()?,
        );
        let user = app.authenticator.authenticate(&bearer, None).await.ok()??;
        Some(Session { token, user })
    }

    /// The CSRF token of this session's forms.
    pub fn csrf(&self) -> String {
        csrf_of(&self.token)
    }

    /// Whether `given` is this session's CSRF token.
    pub fn csrf_matches(&self, given: &str) -> bool {
        constant_time_eq(self.csrf().as_bytes(), given.as_bytes())
    }
}

/// Checks `username`'s `password` (throttled as every password log-in is) and opens a session:
/// the secret of a new API token that expires with it. `None` for a wrong password.
pub async fn log_in(
    app: &App,
    username: &str,
    password: &str,
    client: Option<IpAddr>,
) -> Result<Option<String>, crate::error::ApiError> {
    let Some(user) = app
        .authenticator
        .check_password(username, password, client)
        .await?
    else {
        return Ok(None);
    };
    let expires = chrono::Utc::now() + chrono::Duration::seconds(SESSION_SECONDS);
    let name = format!("web UI session ({})", crate::db::now());
    let (_, secret) =
        auth::issue_api_token(&app.db, &user.id, &name, Some(crate::db::stamp(expires)))
            .await
            .map_err(crate::error::ApiError::internal)?;
    tracing::info!(user = %user.username, "logged in to the web UI");
    Ok(Some(secret))
}

/// Ends the session of `token`: its API token is deleted.
pub async fn log_out(app: &App, token: &str) -> Result<(), crate::error::ApiError> {
    auth::revoke_api_token(&app.db, token)
        .await
        .map_err(crate::error::ApiError::internal)
}

/// The `Set-Cookie` value of a session (or, with `None`, of its end).
pub fn session_cookie(app: &App, token: Option<&str>) -> String {
    let secure = if app.origin.starts_with("https:") {
        "; Secure"
    } else {
        ""
    };
    match token {
        Some(token) => format!(
            "{SESSION_COOKIE}={token}; Path=/ui/; HttpOnly; SameSite=Lax; Max-Age={SESSION_SECONDS}{secure}"
        ),
        None => format!("{SESSION_COOKIE}=; Path=/ui/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    }
}

/// The `Set-Cookie` value of the log-in form's CSRF cookie.
pub fn log_in_cookie(value: &str) -> String {
    format!("{LOG_IN_COOKIE}={value}; Path=/ui/; HttpOnly; SameSite=Strict; Max-Age=3600")
}

/// A new random value for the log-in form's CSRF cookie.
pub fn new_log_in_token() -> String {
    auth::random_token(32)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// A session's CSRF token: a digest of its secret under a purpose of its own, so it says
/// nothing about the secret and a page that lacks the cookie cannot make it.
fn csrf_of(secret: &str) -> String {
    hex::encode(Sha256::digest(format!("granary web UI CSRF\0{secret}")))
}

/// Whether `given` is `expected`, compared in constant time (as `auth` compares secrets).
pub fn constant_time_eq(expected: &[u8], given: &[u8]) -> bool {
    expected.ct_eq(given).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_empty_ones_are_none() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; granary_ui_session=gt_x"),
        );
        headers.append(COOKIE, HeaderValue::from_static("granary_ui_login="));
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("gt_x"));
        assert_eq!(cookie(&headers, LOG_IN_COOKIE), None);
        assert_eq!(cookie(&headers, "b"), None);
    }

    #[test]
    fn the_csrf_token_is_fixed_per_session_and_differs_between_sessions() {
        assert_eq!(csrf_of("one"), csrf_of("one"));
        assert_ne!(csrf_of("one"), csrf_of("two"));
        assert!(!csrf_of("one").contains("one"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
