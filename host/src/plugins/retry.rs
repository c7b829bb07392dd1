//! Retrying outbound requests: connection failures and 5xx answers are tried again with
//! exponential backoff. Shared by the `http` import, sync downloads and the content app's
//! pull-through, so every upstream request retries the same way.

use std::time::Duration;

/// First retry delay; each further retry waits twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Whether a failed request is worth another try: the connection failed or timed out, or the
/// upstream answered 5xx.
pub fn retryable(outcome: &reqwest::Result<reqwest::Response>) -> bool {
    match outcome {
        Ok(response) => response.status().is_server_error(),
        Err(error) => error.is_connect() || error.is_timeout() || error.is_request(),
    }
}

/// The delay before retry number `attempt` (1-based): exponential, capped.
pub fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(MAX_BACKOFF)
}

/// Sends a request, retrying connection errors and 5xx answers up to `max_retries` times with
/// exponential backoff. The last outcome is returned as it is (a 5xx answer stays an answer).
pub async fn send_with_retries(
    request: reqwest::RequestBuilder,
    max_retries: u32,
) -> reqwest::Result<reqwest::Response> {
    let mut attempt = 0;
    loop {
        let Some(this_try) = request.try_clone() else {
            // A streamed body cannot be sent twice.
            return request.send().await;
        };
        let outcome = this_try.send().await;
        if attempt >= max_retries || !retryable(&outcome) {
            return outcome;
        }
        attempt += 1;
        tracing::warn!(
            attempt,
            outcome = ?outcome.as_ref().map(reqwest::Response::status),
            "request failed, retrying"
        );
        tokio::time::sleep(backoff(attempt)).await;
    }
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
}
