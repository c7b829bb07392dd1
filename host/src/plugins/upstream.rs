//! Requests to a remote's upstream, shared by the `http` import, sync downloads, on-demand files
//! and pull-through: the remote's client (TLS, proxy, timeouts), its credentials, the origins a
//! request may reach, retries, and redirects followed one hop at a time.
//!
//! reqwest follows redirects on its own and keeps sending a client's default headers (the
//! remote's custom headers) to wherever they lead. Here the client follows none: every hop, the
//! first request and each redirect alike, goes through [`OriginPolicy::reach`], and the remote's
//! credentials and custom headers are attached only to a hop on the remote's own origin.

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};
use url::{Host, Origin, Url};

use super::retry;

pub mod bearer;
pub mod guard;

/// Redirects followed for one request (aiohttp's default `max_redirects`, as in Pulp).
pub const MAX_REDIRECTS: usize = 10;

/// Which origins a remote's requests may reach, and which of them get its credentials. One hop is
/// decided at a time, so a redirect is judged like the request that led to it.
///
/// The host fetches files from any public origin (an index keeps its files on another host, a
/// registry redirects to a CDN), but a plugin's own requests stay on the remote's origin and the
/// origins the operator listed in `allowed_origins`. Addresses that are not public (loopback,
/// private, link-local, see [`guard`]) are reached only on those origins too. Only the remote's
/// own origin gets its credentials and custom headers.
#[derive(Clone, Debug)]
pub struct OriginPolicy {
    remote: Origin,
    /// The remote's `allowed_origins`.
    allowed: Vec<Origin>,
    /// Host names that may resolve to non-public addresses: those of the remote, of its allowed
    /// origins and of the proxies. Another origin on one of them cannot be checked by the
    /// resolver, so it is refused.
    trusted_hosts: BTreeSet<String>,
}

/// What a hop that may go ahead carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The remote's own origin: its credentials and custom headers go along.
    Remote,
    /// An origin of the remote's `allowed_origins`: any address, no credentials.
    Allowed,
    /// Any other origin: public addresses only (the resolver checks names), no credentials.
    Public,
}

impl OriginPolicy {
    /// The policy of a remote whose URL is on `remote`, with the operator's `allowed` origins and
    /// the hosts of the proxies its client uses.
    pub fn new(remote: Origin, allowed: Vec<Origin>, proxy_hosts: &[String]) -> Self {
        let trusted_hosts = std::iter::once(&remote)
            .chain(&allowed)
            .filter_map(|origin| match origin {
                Origin::Tuple(_, host, _) => Some(host.to_string().to_ascii_lowercase()),
                Origin::Opaque(_) => None,
            })
            .chain(proxy_hosts.iter().map(|host| host.to_ascii_lowercase()))
            .collect();
        OriginPolicy {
            remote,
            allowed,
            trusted_hosts,
        }
    }

    /// The remote's own origin.
    pub fn remote_origin(&self) -> &Origin {
        &self.remote
    }

    /// The host names the client's resolver lets resolve to any address.
    pub fn trusted_hosts(&self) -> &BTreeSet<String> {
        &self.trusted_hosts
    }

    /// Whether the host may send a request to `url` (a file to download, a redirect), and with
    /// what; the refusal says why.
    pub fn reach(&self, url: &Url) -> Result<Reach, String> {
        if let Some(reach) = self.listed(url) {
            return Ok(reach);
        }
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{url} is refused: only http and https are fetched"));
        }
        match url.host() {
            Some(Host::Ipv4(ip)) => self.public_address(url, ip.into()),
            Some(Host::Ipv6(ip)) => self.public_address(url, ip.into()),
            Some(Host::Domain(name)) if self.trusted_hosts.contains(&name.to_ascii_lowercase()) => {
                Err(format!(
                    "{url} is refused: its host is reached only at the remote's origin {}{}",
                    self.remote.ascii_serialization(),
                    self.listing_hint(url)
                ))
            }
            Some(Host::Domain(_)) => Ok(Reach::Public),
            None => Err(format!("{url} is refused: it names no host")),
        }
    }

    /// Whether a plugin's own request (the `http` import) may go to `url`: the remote's origin
    /// and its `allowed_origins` only. Redirects from there are the upstream's, judged by
    /// [`OriginPolicy::reach`].
    pub fn reach_from_plugin(&self, url: &Url) -> Result<Reach, String> {
        self.listed(url).ok_or_else(|| {
            format!(
                "{url} is outside the remote's origin {} and its allowed_origins",
                self.remote.ascii_serialization()
            )
        })
    }

    /// The reach of the remote's own origin and of the operator's allowed ones.
    fn listed(&self, url: &Url) -> Option<Reach> {
        let origin = url.origin();
        if origin == self.remote {
            Some(Reach::Remote)
        } else if self.allowed.contains(&origin) {
            Some(Reach::Allowed)
        } else {
            None
        }
    }

    fn public_address(&self, url: &Url, ip: std::net::IpAddr) -> Result<Reach, String> {
        match guard::non_public(ip) {
            None => Ok(Reach::Public),
            Some(kind) => Err(format!(
                "{url} is refused: {ip} is a {kind} address{}",
                self.listing_hint(url)
            )),
        }
    }

    /// How an operator would allow `url`'s origin.
    fn listing_hint(&self, url: &Url) -> String {
        format!(
            "; an operator may list {} in the remote's allowed_origins",
            url.origin().ascii_serialization()
        )
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
    /// The upstream asked for a Bearer token and its token endpoint gave none.
    #[error("{0}")]
    Token(String),
}

impl UpstreamError {
    /// Whether trying again may help: the connection failed or timed out. A refused hop stays
    /// refused.
    pub fn retryable(&self) -> bool {
        match self {
            UpstreamError::Http(error) => retry::retryable_error(error),
            UpstreamError::Refused(_)
            | UpstreamError::TooManyRedirects(_)
            | UpstreamError::Token(_) => false,
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
    /// The registry token the upstream's last Bearer challenge got.
    tokens: bearer::TokenCache,
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
            tokens: bearer::TokenCache::default(),
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
    /// [`UpstreamClient::send_once`]); a failed connection and a 5xx or 429 answer are tried
    /// again up to the remote's `max_retries`, after the answer's `Retry-After` or an exponential
    /// backoff. The last outcome is returned as it is (a 5xx answer stays an answer).
    pub async fn send(&self, method: Method, url: &str, headers: &[(String, String)]) -> Answer {
        let mut attempt = 0;
        loop {
            let outcome = self.send_once(method.clone(), url, headers).await;
            let again = match &outcome {
                Ok(response) => retry::retryable_status(response.status()),
                Err(error) => error.retryable(),
            };
            if !again || attempt >= self.max_retries {
                return outcome;
            }
            attempt += 1;
            let Some(delay) = retry::delay(attempt, outcome.as_ref().ok().map(|r| r.headers()))
            else {
                return outcome;
            };
            tracing::warn!(
                %url,
                attempt,
                ?delay,
                outcome = ?outcome.as_ref().map(reqwest::Response::status),
                "upstream request failed, retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends `method` to `url` once, following up to [`MAX_REDIRECTS`] redirects; each hop is
    /// checked against the policy and gets the credentials only on the remote's origin. `headers`
    /// (the caller's own, never secrets) go to every hop. A 401 with a Bearer challenge (a
    /// registry's token authentication) gets a token from the challenge's realm and the request
    /// is sent again with it; the token is kept for the requests that follow.
    pub async fn send_once(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
    ) -> Answer {
        let kept = self.tokens.current();
        let response = self
            .send_hops(method.clone(), url, headers, kept.as_deref())
            .await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let Some(challenge) = bearer::Challenge::from_headers(response.headers()) else {
            return Ok(response);
        };
        let token = self.token_for(&challenge).await?;
        self.send_hops(method, url, headers, Some(&token)).await
    }

    /// One request and its redirects; `bearer` replaces the remote's `Authorization` on its
    /// own origin.
    async fn send_hops(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        bearer: Option<&str>,
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
                Reach::Remote => request = request.headers(self.credentials_with(bearer)?),
                Reach::Allowed | Reach::Public => {}
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

    /// The remote's credentials and custom headers, a `bearer` token in place of its
    /// `Authorization`.
    fn credentials_with(&self, bearer: Option<&str>) -> Result<HeaderMap, UpstreamError> {
        let mut credentials = (*self.credentials).clone();
        if let Some(token) = bearer {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                UpstreamError::Token("the registry token is not a valid header value".into())
            })?;
            credentials.insert(AUTHORIZATION, value);
        }
        Ok(credentials)
    }

    /// Asks the challenge's realm for a token: with the remote's credentials when the realm is
    /// on the remote's origin or one the operator allowed, anonymously elsewhere (Docker Hub's
    /// public images).
    async fn token_for(&self, challenge: &bearer::Challenge) -> Result<String, UpstreamError> {
        let url = challenge.token_url().map_err(UpstreamError::Token)?;
        let reach = self.policy.reach(&url).map_err(UpstreamError::Refused)?;
        let mut request = self.client.get(url.clone());
        if let (Reach::Remote | Reach::Allowed, Some(authorization)) =
            (reach, self.credentials.get(AUTHORIZATION))
        {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let response = request.send().await.map_err(UpstreamError::Http)?;
        let status = response.status();
        if !status.is_success() {
            return Err(UpstreamError::Token(format!(
                "the upstream asked for a registry token and its token endpoint {} answered HTTP {status}{}",
                challenge.realm,
                if status == StatusCode::UNAUTHORIZED {
                    " (check the remote's username and password)"
                } else {
                    ""
                }
            )));
        }
        let Some(answer) = read_bounded(response, bearer::MAX_TOKEN_ANSWER)
            .await
            .map_err(UpstreamError::Http)?
        else {
            return Err(UpstreamError::Token(format!(
                "the token endpoint {} answered more than {} bytes",
                challenge.realm,
                bearer::MAX_TOKEN_ANSWER
            )));
        };
        let (token, lifetime) = bearer::token_of(&answer)
            .map_err(|why| UpstreamError::Token(format!("{}: {why}", challenge.realm)))?;
        self.tokens.keep(&token, lifetime);
        Ok(token)
    }
}

/// The body of `response` when it is at most `limit` bytes; none as soon as it is longer (the
/// rest is not read).
pub async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > limit {
            return Ok(None);
        }
    }
    Ok(Some(body))
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

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    fn policy(remote: &str, allowed: &[&str], proxies: &[&str]) -> OriginPolicy {
        let allowed = allowed.iter().map(|origin| url(origin).origin()).collect();
        let proxies: Vec<String> = proxies.iter().map(|host| (*host).to_owned()).collect();
        OriginPolicy::new(url(remote).origin(), allowed, &proxies)
    }

    #[test]
    fn the_host_fetches_from_public_origins_without_credentials() {
        let policy = policy("https://index.example:8443/simple/", &[], &[]);
        let reach = |text: &str| policy.reach(&url(text));
        assert_eq!(
            reach("https://index.example:8443/files/a.whl"),
            Ok(Reach::Remote)
        );
        assert_eq!(reach("https://files.example/a.whl"), Ok(Reach::Public));
        assert_eq!(reach("http://151.101.0.223/a.whl"), Ok(Reach::Public));
        assert_eq!(reach("https://[2a04:4e42::223]/a.whl"), Ok(Reach::Public));
        for (refused, why) in [
            ("http://127.0.0.1:6379/", "127.0.0.1 is a loopback address"),
            (
                "http://169.254.169.254/latest/meta-data/",
                "link-local (cloud metadata)",
            ),
            ("http://10.0.0.8/a.whl", "10.0.0.8 is a private address"),
            ("http://[::1]:8080/", "::1 is a loopback address"),
            ("http://[::ffff:192.168.0.1]/", "private address"),
            // The remote's host at another port or scheme: the resolver cannot tell them apart.
            (
                "http://index.example:8443/a.whl",
                "reached only at the remote's origin",
            ),
            (
                "https://index.example/a.whl",
                "reached only at the remote's origin",
            ),
            ("ftp://files.example/a.whl", "only http and https"),
            ("file:///etc/passwd", "only http and https"),
        ] {
            let error = reach(refused).unwrap_err();
            assert!(error.contains(why), "{refused}: {error}");
        }
        let error = reach("http://127.0.0.1:6379/").unwrap_err();
        assert!(
            error.contains("list http://127.0.0.1:6379 in the remote's allowed_origins"),
            "{error}"
        );
    }

    #[test]
    fn allowed_origins_reach_any_address_and_plugins_reach_only_them() {
        let policy = policy(
            "http://127.0.0.1:8000/simple/",
            &["http://127.0.0.1:9000", "http://files.internal:81"],
            &["proxy.internal"],
        );
        assert_eq!(
            policy.reach(&url("http://127.0.0.1:8000/x")),
            Ok(Reach::Remote)
        );
        assert_eq!(
            policy.reach(&url("http://127.0.0.1:9000/x")),
            Ok(Reach::Allowed)
        );
        assert_eq!(
            policy.reach(&url("http://files.internal:81/x")),
            Ok(Reach::Allowed)
        );
        assert!(policy.reach(&url("http://127.0.0.1:9001/x")).is_err());
        assert!(policy.reach(&url("http://files.internal:82/x")).is_err());
        assert!(policy.reach(&url("http://proxy.internal:3128/x")).is_err());
        assert_eq!(
            policy.trusted_hosts(),
            &BTreeSet::from([
                "127.0.0.1".to_owned(),
                "files.internal".to_owned(),
                "proxy.internal".to_owned()
            ])
        );

        assert_eq!(
            policy.reach_from_plugin(&url("http://127.0.0.1:8000/simple/six/")),
            Ok(Reach::Remote)
        );
        assert_eq!(
            policy.reach_from_plugin(&url("http://127.0.0.1:9000/x")),
            Ok(Reach::Allowed)
        );
        let error = policy
            .reach_from_plugin(&url("https://files.example/a.whl"))
            .unwrap_err();
        assert!(error.contains("outside the remote's origin"), "{error}");
    }
}
