//! Who is making a request: the one place credentials are checked, for the REST API and for the
//! format routes plugins serve (uploads through `handle`).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine as _;

use crate::app::App;
use crate::error::ApiError;

/// The user the request's credentials name, when they are valid; `None` when the request has no
/// credentials or wrong ones (callers decide whether anonymous access is allowed).
pub async fn authenticated_user(
    app: &App,
    headers: &HeaderMap,
) -> Result<Option<String>, ApiError> {
    let Some(credentials) = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|token| {
            base64::engine::general_purpose::STANDARD
                .decode(token.trim())
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
    else {
        return Ok(None);
    };
    let Some((user, password)) = credentials.split_once(':') else {
        return Ok(None);
    };
    if app.check_password(user, password).await? {
        Ok(Some(user.to_string()))
    } else {
        Ok(None)
    }
}
