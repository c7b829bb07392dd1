//! The API error type and its single JSON error envelope.
//!
//! Validation errors use Pulp's shape, `{"field": ["message"]}` with 400; every other error is
//! `{"detail": "message"}`. Internal errors are logged and answered with a generic message, so
//! their text (SQL, paths) never reaches a client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answered to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
    /// Seconds a client should wait before trying again (`Retry-After`), for 503 and 429.
    retry_after: Option<u64>,
    /// The `WWW-Authenticate` challenge of a 401, when not the server's usual Basic one.
    challenge: Option<String>,
}

/// Result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// 400 with a message attached to one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message: String = message.into();
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({ field: [message] }),
            retry_after: None,
            challenge: None,
        }
    }

    /// 400 not tied to one field (Pulp puts these under `non_field_errors`).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::field("non_field_errors", message)
    }

    /// 404 for a resource or path that does not exist.
    pub fn not_found() -> Self {
        Self::detail(StatusCode::NOT_FOUND, "Not found.")
    }

    /// 401 asking for credentials.
    pub fn unauthorized() -> Self {
        Self::detail(
            StatusCode::UNAUTHORIZED,
            "Authentication credentials were not provided or are invalid.",
        )
    }

    /// 403 for an authenticated user who may not do this (Django REST framework's message).
    pub fn forbidden() -> Self {
        Self::detail(
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        )
    }

    /// 405 for a method a route does not take (Django REST framework's message).
    pub fn method_not_allowed(method: &str) -> Self {
        Self::detail(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method \"{method}\" not allowed."),
        )
    }

    /// 409 for a request that conflicts with the state of a resource.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::detail(StatusCode::CONFLICT, message)
    }

    /// Any status with a `detail` message.
    pub fn detail(status: StatusCode, message: impl Into<String>) -> Self {
        let message: String = message.into();
        Self {
            status,
            body: json!({ "detail": message }),
            retry_after: None,
            challenge: None,
        }
    }

    /// 503 for a request the server has no turn for now; the client may try again in
    /// `retry_after_seconds` (sent as `Retry-After`).
    pub fn unavailable(message: impl Into<String>, retry_after_seconds: u64) -> Self {
        Self::detail(StatusCode::SERVICE_UNAVAILABLE, message).with_retry_after(retry_after_seconds)
    }

    /// The same 401, with `challenge` (a Bearer challenge naming the token endpoint and the
    /// scope a registry client must ask for) in place of the Basic one.
    pub fn with_challenge(mut self, challenge: String) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// The same error, telling the client to try again after `seconds` (`Retry-After`).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// A request body that could not be read whole: 413 past `limit` bytes, 408 when the client
    /// stopped sending it (the listener's body timeout), else 400.
    pub fn unread_body(error: &(dyn std::error::Error + 'static), limit: u64) -> Self {
        body_fault(error, limit).into()
    }

    /// 413 with a message attached to one field: the part of a form that passed its limit.
    pub fn field_too_large(field: &str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            ..Self::field(field, message)
        }
    }

    /// 413: a body (or a part of it) larger than `limit` bytes.
    pub fn too_large(limit: u64) -> Self {
        Self::detail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body exceeds {limit} bytes."),
        )
    }

    /// 500: logs the cause, answers a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `detail` message, or the status's reason when the body has none: what a plugin is
    /// told when a host call it made was refused.
    pub fn message(&self) -> String {
        self.body["detail"].as_str().map_or_else(
            || self.status.canonical_reason().unwrap_or("error").to_owned(),
            str::to_owned,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = self
                .challenge
                .and_then(|challenge| axum::http::HeaderValue::from_str(&challenge).ok())
                .unwrap_or_else(|| axum::http::HeaderValue::from_static("Basic realm=\"granary\""));
            response.headers_mut().insert("www-authenticate", challenge);
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if let Some(db) = error.as_database_error()
            && db.is_unique_violation()
        {
            let field = unique_violation_field(db.message(), db.constraint());
            return Self::field(field, "This field must be unique.");
        }
        Self::internal(error)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        Self::internal(format!("{error:#}"))
    }
}

/// Maps a unique-constraint violation to the field a client should change. PostgreSQL reports the
/// constraint name; SQLite only the columns (`UNIQUE constraint failed: remotes.name`).
fn unique_violation_field(message: &str, constraint: Option<&str>) -> &'static str {
    let text = constraint.unwrap_or(message);
    if text.contains("base_path") {
        "base_path"
    } else if text.contains("name") {
        "name"
    } else {
        "non_field_errors"
    }
}

/// Why a request body could not be read to its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyFault {
    /// It is longer than the limit, in bytes.
    TooLarge(u64),
    /// The client stopped sending it for longer than the server's body timeout.
    Stalled,
    /// The connection failed or the framing was invalid.
    Broken(String),
}

impl std::fmt::Display for BodyFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge(limit) => write!(f, "the request body exceeds {limit} bytes"),
            Self::Stalled => f.write_str("the request body stopped arriving"),
            Self::Broken(cause) => write!(f, "the request body could not be read: {cause}"),
        }
    }
}

/// Why a request body of at most `limit` bytes could not be read, from its reader's `error`.
pub fn body_fault(error: &(dyn std::error::Error + 'static), limit: u64) -> BodyFault {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<http_body_util::LengthLimitError>() {
            return BodyFault::TooLarge(limit);
        }
        if error.is::<tower_http::timeout::TimeoutError>() {
            return BodyFault::Stalled;
        }
        cause = error.source();
    }
    BodyFault::Broken(error.to_string())
}

impl From<BodyFault> for ApiError {
    fn from(fault: BodyFault) -> Self {
        match fault {
            BodyFault::TooLarge(limit) => Self::too_large(limit),
            BodyFault::Stalled => Self::detail(
                StatusCode::REQUEST_TIMEOUT,
                "The request body stopped arriving.",
            ),
            BodyFault::Broken(cause) => {
                Self::bad_request(format!("The request body could not be read: {cause}"))
            }
        }
    }
}
