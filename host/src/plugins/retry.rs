//! Retrying outbound requests: connection failures, 5xx and 429 answers are tried again with
//! exponential backoff, or after the wait the upstream asks for in `Retry-After`. Shared by every upstream request ([`super::upstream`]) and the sync
//! downloads that retry a body cut short, so every upstream request retries the same way.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// First retry delay; each further retry waits twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The longest `Retry-After` waited for. An upstream that asks for longer gets no retry: its
/// answer (a 429 or 503) is the outcome, rather than a task that sleeps for an hour.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Whether an answer is worth another try: the upstream failed (5xx) or asks the client to slow
/// down (429 Too Many Requests).
pub fn retryable_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// The wait an answer asks for in `Retry-After`: a number of seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The delay before retry number `attempt` (1-based) of an answer with `headers` (`None` for a
/// request that got no answer): the answer's `Retry-After` if it has one, else the backoff.
/// `None` when the upstream asks for more than [`MAX_RETRY_AFTER`].
pub fn delay(attempt: u32, headers: Option<&HeaderMap>) -> Option<Duration> {
    match headers.and_then(retry_after) {
        Some(wait) if wait > MAX_RETRY_AFTER => None,
        Some(wait) => Some(wait),
        None => Some(backoff(attempt)),
    }
}

/// Whether a request that got no answer is worth another try: the connection failed or timed
/// out. (A 5xx answer is retried too; the caller sees its status.)
pub fn retryable_error(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_timeout() || error.is_request()
}

/// The delay before retry number `attempt` (1-based): exponential, capped.
pub fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }

    fn headers(retry_after: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, retry_after.parse().unwrap());
        headers
    }

    #[test]
    fn retry_after_is_honoured_in_seconds_or_as_a_date_up_to_a_cap() {
        assert_eq!(delay(1, Some(&headers("3"))), Some(Duration::from_secs(3)));
        assert_eq!(delay(2, Some(&headers("0"))), Some(Duration::ZERO));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(20));
        let wait = delay(1, Some(&headers(&soon))).unwrap();
        assert!(
            wait <= Duration::from_secs(20) && wait >= Duration::from_secs(18),
            "{wait:?}"
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(20));
        assert_eq!(delay(1, Some(&headers(&past))), Some(Duration::ZERO));
        assert_eq!(
            delay(1, Some(&headers("3600"))),
            None,
            "longer than the cap"
        );
        // No header, or one that is not a wait: the backoff.
        assert_eq!(delay(2, Some(&HeaderMap::new())), Some(backoff(2)));
        assert_eq!(delay(2, Some(&headers("soon"))), Some(backoff(2)));
        assert_eq!(delay(3, None), Some(backoff(3)));
    }

    #[test]
    fn failures_and_slow_downs_are_retried() {
        assert!(retryable_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(retryable_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(!retryable_status(StatusCode::NOT_FOUND));
        assert!(!retryable_status(StatusCode::FORBIDDEN));
    }
}
