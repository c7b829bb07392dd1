//! The REST API as the UI calls it: in process, through the same router, authentication and
//! access policies as any client, with the session's token. The UI has no path of its own to the
//! database for what it shows or changes, so it can show or do nothing the user could not
//! through REST.

use axum::Router;
use axum::body::Body;
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

/// Most bytes of a REST answer the UI reads (a page of a list is far smaller).
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// The REST router, called with one session's token.
#[derive(Clone)]
pub struct Rest {
    router: Router,
    token: String,
}

/// A REST answer: its status and its JSON body (`Null` when it had none).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    /// Whether the call succeeded.
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// What went wrong, as the error envelope says it (`detail`, or each field's messages).
    pub fn problem(&self) -> String {
        match &self.body {
            Value::Object(fields) => match fields.get("detail") {
                Some(Value::String(detail)) => detail.clone(),
                _ => fields
                    .iter()
                    .map(|(field, messages)| {
                        let messages = match messages {
                            Value::Array(items) => items
                                .iter()
                                .map(|item| {
                                    item.as_str()
                                        .map_or_else(|| item.to_string(), str::to_owned)
                                })
                                .collect::<Vec<_>>()
                                .join(" "),
                            Value::String(text) => text.clone(),
                            other => other.to_string(),
                        };
                        format!("{field}: {messages}")
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            },
            Value::Null => format!("the server answered {}", self.status),
            other => other.to_string(),
        }
    }
}

impl Rest {
    /// The API `router` (its state given), called with `token`.
    pub fn new(router: Router, token: &str) -> Rest {
        Rest {
            router,
            token: token.to_owned(),
        }
    }

    /// `GET path` (a path under `/pulp/api/v3/`, or a whole href).
    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None, Body::empty()).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.call(
            Method::POST,
            path,
            Some(("application/json".into(), None)),
            Body::from(body.to_string()),
        )
        .await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None, Body::empty()).await
    }

    /// `POST path` with a body sent as it arrives (a form's multipart upload, passed through).
    pub async fn post_stream(
        &self,
        path: &str,
        content_type: String,
        length: Option<u64>,
        body: Body,
    ) -> Answer {
        self.call(Method::POST, path, Some((content_type, length)), body)
            .await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        content: Option<(String, Option<u64>)>,
        body: Body,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(AUTHORIZATION, format!("Bearer {}", self.token));
        if let Some((content_type, length)) = content {
            request = request.header(CONTENT_TYPE, content_type);
            if let Some(length) = length {
                request = request.header(CONTENT_LENGTH, length);
            }
        }
        let Ok(request) = request.body(body) else {
            return Answer {
                status: StatusCode::BAD_REQUEST,
                body: serde_json::json!({"detail": "the request could not be made"}),
            };
        };
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER)
            .await
            .unwrap_or_default();
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }
}
