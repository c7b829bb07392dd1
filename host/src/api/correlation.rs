//! `Correlation-ID`: the id that ties one request to the tasks it queues and to their logs, as
//! in Pulp. A client may send one (any visible ASCII, up to [`MAX_LEN`] characters); otherwise
//! one is generated (32 hex digits, like Pulp's). Either way it is echoed on the response and
//! recorded as the `logging_cid` of the tasks the request queues.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The header, as Pulp names it (header names are case-insensitive).
pub const HEADER: &str = "correlation-id";

/// Longest id accepted from a client; a longer one is replaced by a generated id.
const MAX_LEN: usize = 256;

/// Middleware: picks the request's correlation id, runs the handler with it in scope, echoes it.
pub async fn propagate(request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| {
            !value.is_empty()
                && value.len() <= MAX_LEN
                && value.bytes().all(|byte| byte.is_ascii_graphic())
        })
        .map(str::to_owned);
    let id = given.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!("request", correlation_id = %id);
    let mut response = {
        use tracing::Instrument as _;
        crate::tasks::LOGGING_CID
            .scope(id.clone(), next.run(request).instrument(span))
            .await
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}
