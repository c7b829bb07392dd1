//! Retrying outbound requests: connection failures and 5xx answers are tried again with
//! exponential backoff. Shared by every upstream request ([`super::upstream`]) and the sync
//! downloads that retry a body cut short, so every upstream request retries the same way.

use std::time::Duration;

/// First retry delay; each further retry waits twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

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
}
