//! The REST API's `Correlation-ID` middleware (the id itself: `tasks::correlation`).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use crate::tasks::correlation::{echo, pick};

/// Middleware of the REST API: picks the request's correlation id, runs the handler with it in
/// scope and in a tracing span (every log line of the request carries it), echoes it.
pub async fn propagate(request: Request, next: Next) -> Response {
    let id = pick(&request);
    let span = tracing::info_span!("request", correlation_id = %id);
    let response = {
        use tracing::Instrument as _;
        crate::tasks::LOGGING_CID
            .scope(id.clone(), next.run(request).instrument(span))
            .await
    };
    echo(response, &id)
}
