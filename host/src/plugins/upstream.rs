//! Requests to a remote's upstream, shared by the `http` import, sync downloads, on-demand files
//! and pull-through: the remote's client (TLS, proxy, timeouts), its credentials, the origins a
//! request may reach, retries, and redirects followed one hop at a time.
//!
//! reqwest follows redirects on its own and keeps sending a client's default headers (the
//! remote's custom headers) to wherever they lead. Here the client follows none: every hop, the
//! first request and each redirect alike, goes through [`OriginPolicy::reach`], and the remote's
//! credentials and custom headers are attached only to a hop on the remote's own origin.

use std::sync::Arc;

use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};
use url::{Origin, Url};

use super::retry;

/// Redirects followed for one request (aiohttp's default `max_redirects`, as in Pulp).
pub const MAX_REDIRECTS: usize = 10;

/// Which origins a remote's requests may reach, and which of them get its credentials. One hop is
/// decided at a time, so a redirect is judged like the request that led to it.
///
/// Today a remote reaches its own origin only; other origins (a files host, a CDN) are for the
/// operator to allow, and then get no credentials.
#[derive(Clone, Debug)]
pub struct OriginPolicy {
    remote: Origin,
}

/// What a hop that may go ahead carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The remote's own origin: its credentials and custom headers go along.
    Remote,
}

impl OriginPolicy {
    /// The policy of a remote whose URL is on `remote`.
    pub fn new(remote: Origin) -> Self {
        OriginPolicy { remote }
    }

    /// The remote's own origin.
    pub fn remote_origin(&self) -> &Origin {
        &self.remote
    }

    /// Whether a request to `url` may be sent, and with what; the refusal says why.
    pub fn reach(&self, url: &Url) -> Result<Reach, String> {
        if url.origin() == self.remote {
            Ok(Reach::Remote)
        } else {
            Err(format!(
                "{url} is outside the remote's origin {}",
                self.remote.ascii_serialization()
            ))
        }
    }
}

/// Why a request to an upstream got no answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The origin policy refused a hop (the first request or a redirect).
    #[error("{0}")]
    Refused(String),
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("more than {MAX_REDIRECTS} redirects, the last to {0}")]
    TooManyRedirects(Url),
    /// The connection failed or timed out.
    #[error("{}", describe(.0))]
    Http(reqwest::Error),
}

impl UpstreamError {
    /// Whether trying again may help: the connection failed or timed out. A refused hop stays
    /// refused.
    pub fn retryable(&self) -> bool {
        match self {
            UpstreamError::Http(error) => retry::retryable_error(error),
            UpstreamError::Refused(_) | UpstreamError::TooManyRedirects(_) => false,
        }
    }
}

/// A reqwest error with its causes, which say what actually happened ("operation timed out",
/// "connection refused"): reqwest's own text only says which request failed.
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    if error.is_timeout() && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}

/// What a request to the upstream ends in: its answer (any status), or why there was none.
pub type Answer = Result<reqwest::Response, UpstreamError>;

/// A remote's way to its upstream. Cheap to clone (the client and the credentials are shared).
#[derive(Clone, Debug)]
pub struct UpstreamClient {
    /// TLS, proxy and timeouts of the remote; follows no redirects and carries no credentials.
    client: reqwest::Client,
    /// The remote's `Authorization` and custom headers, for hops on its own origin only.
    credentials: Arc<HeaderMap>,
    policy: OriginPolicy,
    max_retries: u32,
}

impl UpstreamClient {
    /// `client` must not follow redirects (`reqwest::redirect::Policy::none()`) nor carry
    /// `credentials` as default headers: both are applied here, hop by hop.
    pub fn new(
        client: reqwest::Client,
        credentials: HeaderMap,
        policy: OriginPolicy,
        max_retries: u32,
    ) -> Self {
        UpstreamClient {
            client,
            credentials: Arc::new(credentials),
            policy,
            max_retries,
        }
    }

    /// The origins this client may reach.
    pub fn policy(&self) -> &OriginPolicy {
        &self.policy
    }

    /// Retries of a request that failed to connect or got a 5xx answer.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// A GET of `url`, retried like [`UpstreamClient::send`].
    pub async fn get(&self, url: &str) -> Answer {
        self.send(Method::GET, url, &[]).await
    }

    /// Sends `method` to `url` with `headers`, following redirects (see
    /// [`UpstreamClient::send_once`]); a failed connection and a 5xx answer are tried again up to
    /// the remote's `max_retries` with exponential backoff. The last outcome is returned as it is
    /// (a 5xx answer stays an answer).
    pub async fn send(&self, method: Method, url: &str, headers: &[(String, String)]) -> Answer {
        let mut attempt = 0;
        loop {
            let outcome = self.send_once(method.clone(), url, headers).await;
            let again = match &outcome {
                Ok(response) => response.status().is_server_error(),
                Err(error) => error.retryable(),
            };
            if !again || attempt >= self.max_retries {
                return outcome;
            }
            attempt += 1;
            tracing::warn!(
                %url,
                attempt,
                outcome = ?outcome.as_ref().map(reqwest::Response::status),
                "upstream request failed, retrying"
            );
            tokio::time::sleep(retry::backoff(attempt)).await;
        }
    }

    /// Sends `method` to `url` once, following up to [`MAX_REDIRECTS`] redirects; each hop is
    /// checked against the policy and gets the credentials only on the remote's origin. `headers`
    /// (the caller's own, never secrets) go to every hop.
    pub async fn send_once(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
    ) -> Answer {
        let mut url = Url::parse(url)
            .map_err(|error| UpstreamError::Refused(format!("invalid URL {url:?}: {error}")))?;
        for _ in 0..=MAX_REDIRECTS {
            let reach = self.policy.reach(&url).map_err(UpstreamError::Refused)?;
            let mut request = self.client.request(method.clone(), url.clone());
            for (name, value) in headers {
                request = request.header(name, value);
            }
            match reach {
                // Added last: the remote's settings win over a caller's header of the same name.
                Reach::Remote => request = request.headers((*self.credentials).clone()),
            }
            let response = request.send().await.map_err(UpstreamError::Http)?;
            let Some(next) = redirect_target(&url, &response)? else {
                return Ok(response);
            };
            tracing::debug!(from = %url, to = %next, "following a redirect");
            url = next;
        }
        Err(UpstreamError::TooManyRedirects(url))
    }
}

/// Where a redirect answer points, resolved against the URL that gave it; `None` for any other
/// answer (304 Not Modified and a 3xx without `Location` are answers).
fn redirect_target(url: &Url, response: &reqwest::Response) -> Result<Option<Url>, UpstreamError> {
    if !matches!(
        response.status(),
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    ) {
        return Ok(None);
    }
    let Some(location) = response.headers().get(LOCATION) else {
        return Ok(None);
    };
    let location = location.to_str().ok().and_then(|text| url.join(text).ok());
    match location {
        Some(next) => Ok(Some(next)),
        None => Err(UpstreamError::Refused(format!(
            "{url} redirected to an invalid location"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_remote_origin_is_reached() {
        let remote = Url::parse("https://index.example:8443/simple/").unwrap();
        let policy = OriginPolicy::new(remote.origin());
        let same = Url::parse("https://index.example:8443/files/a.whl").unwrap();
        assert_eq!(policy.reach(&same), Ok(Reach::Remote));
        for other in [
            "https://files.example:8443/a.whl",
            "http://index.example:8443/a.whl",
            "https://index.example/a.whl",
        ] {
            let refused = policy.reach(&Url::parse(other).unwrap()).unwrap_err();
            assert!(refused.contains("outside the remote's origin"), "{refused}");
        }
    }
}
