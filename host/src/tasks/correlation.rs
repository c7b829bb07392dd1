//! `Correlation-ID`: the id that ties one request to the tasks it queues and to their logs, as
//! in Pulp. A client may send one (a token of letters, digits, `.`, `_` and `-`, up to [`MAX_LEN`]
//! characters: enough for any UUID or request id, and nothing a log line or a header would carry
//! further); otherwise, or when it is not such a token, one is generated (32 hex digits, like
//! Pulp's). Either way it is echoed on the response and recorded as the `logging_cid` of the tasks
//! the request queues. (pulpcore accepts any value; a client's arbitrary text echoed back and
//! written into logs is not worth that.) The REST API gives every request one
//! (`api::correlation`); the content app gives one to plugin routes (`handle`, which may queue
//! tasks and whose failures are logged), not to stored files, whose speed it would cost.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::Response;

/// The header, as Pulp names it (header names are case-insensitive).
pub const HEADER: &str = "correlation-id";

/// Longest id accepted from a client; a longer one is replaced by a generated id.
const MAX_LEN: usize = 64;

/// Whether a client's id is kept: a non-empty token of `[A-Za-z0-9._-]`, at most [`MAX_LEN`].
fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

/// The client's id when it is acceptable, otherwise a new one: 128 random bits in 32 hex digits
/// (the form of Pulp's), drawn from the thread's generator rather than the operating system's,
/// which would cost a system call per request, and hex-encoded without `format!`.
pub fn pick(request: &Request) -> String {
    let given = request
        .headers()
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| acceptable(value))
        .map(str::to_owned);
    given.unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>()))
}

pub fn echo(mut response: Response, id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn only_short_tokens_are_kept() {
        assert!(acceptable("3f2c1e0a-9b8d-4c7e-a6f5-0123456789ab"));
        assert!(acceptable("build_42.step-7"));
        assert!(!acceptable(""));
        assert!(!acceptable(&"a".repeat(65)));
        assert!(acceptable(&"a".repeat(64)));
        for bad in ["a b", "a\u{7f}", "<script>", "id;drop", "é"] {
            assert!(!acceptable(bad), "{bad:?}");
        }
    }
}
