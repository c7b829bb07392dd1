//! Docker's token authentication, as a client: a registry answers 401 with
//! `WWW-Authenticate: Bearer realm="…",service="…",scope="…"`, the client asks the realm for a
//! token (with its credentials, or anonymously), and sends the request again with
//! `Authorization: Bearer <token>`. Registries (Docker Hub, GHCR, Quay, Granary's own `/v2/`)
//! ask for it even for anonymous pulls, so every request to an upstream may need it: the
//! plugins' `http` calls during a sync and the host's own downloads alike.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use url::Url;

/// Largest token answer read.
pub const MAX_TOKEN_ANSWER: usize = 64 * 1024;

/// Lifetime of a token whose answer names none (the spec's default).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// A token is renewed this long before it expires, so it does not expire in flight.
const RENEW_EARLY: Duration = Duration::from_secs(10);

/// A parsed `WWW-Authenticate: Bearer …` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The token endpoint.
    pub realm: String,
    /// `service`, when given.
    pub service: Option<String>,
    /// `scope`, when given (`repository:<name>:pull`).
    pub scope: Option<String>,
}

impl Challenge {
    /// The Bearer challenge among `headers`' `WWW-Authenticate`, if there is one with a realm.
    pub fn from_headers(headers: &HeaderMap) -> Option<Challenge> {
        headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(Challenge::parse)
    }

    /// Parses `Bearer realm="…",service="…",scope="…"` (parameters in any order, quoted or not).
    pub fn parse(text: &str) -> Option<Challenge> {
        let (scheme, parameters) = text.trim().split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut challenge = Challenge {
            realm: String::new(),
            service: None,
            scope: None,
        };
        for (name, value) in parameters_of(parameters) {
            match name.to_ascii_lowercase().as_str() {
                "realm" => challenge.realm = value,
                "service" => challenge.service = Some(value),
                "scope" => challenge.scope = Some(value),
                _ => {}
            }
        }
        (!challenge.realm.is_empty()).then_some(challenge)
    }

    /// The URL to ask for a token: the realm with `service` and `scope` added to its query.
    pub fn token_url(&self) -> Result<Url, String> {
        let mut url = Url::parse(&self.realm)
            .map_err(|error| format!("the token realm {:?} is not a URL: {error}", self.realm))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = &self.service {
                query.append_pair("service", service);
            }
            if let Some(scope) = &self.scope {
                query.append_pair("scope", scope);
            }
        }
        Ok(url)
    }
}

/// The `name=value` parameters of a challenge, values unquoted (commas inside quotes kept).
fn parameters_of(text: &str) -> Vec<(String, String)> {
    let mut parameters = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let name = name.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, remainder) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            },
            None => match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            },
        };
        parameters.push((name, value.to_owned()));
        rest = remainder.trim_start().trim_start_matches(',').trim_start();
    }
    parameters
}

/// The token in a token endpoint's answer (`token`, or OAuth's `access_token`) and how long it
/// is valid.
pub fn token_of(answer: &[u8]) -> Result<(String, Duration), String> {
    let answer: serde_json::Value = serde_json::from_slice(answer)
        .map_err(|error| format!("the token answer is not JSON: {error}"))?;
    let token = answer["token"]
        .as_str()
        .or_else(|| answer["access_token"].as_str())
        .filter(|token| !token.is_empty())
        .ok_or("the token answer has no token")?;
    let lifetime = answer["expires_in"]
        .as_u64()
        .map_or(DEFAULT_LIFETIME, Duration::from_secs);
    Ok((token.to_owned(), lifetime))
}

/// The last token a remote's client obtained, shared by its clones (a sync's concurrent
/// downloads ask for the same scope; one challenge serves them all).
#[derive(Clone, Debug, Default)]
pub struct TokenCache {
    token: Arc<Mutex<Option<(String, Instant)>>>,
}

impl TokenCache {
    /// The token to send ahead of any challenge, while it is valid.
    pub fn current(&self) -> Option<String> {
        let token = self.token.lock().expect("token cache");
        token
            .as_ref()
            .filter(|(_, expires)| Instant::now() + RENEW_EARLY < *expires)
            .map(|(token, _)| token.clone())
    }

    /// Keeps `token`, valid for `lifetime`.
    pub fn keep(&self, token: &str, lifetime: Duration) {
        *self.token.lock().expect("token cache") =
            Some((token.to_owned(), Instant::now() + lifetime));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_as_registries_write_them() {
        let challenge = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        )
        .unwrap();
        assert_eq!(challenge.realm, "https://auth.docker.io/token");
        assert_eq!(challenge.service.as_deref(), Some("registry.docker.io"));
        assert_eq!(
            challenge.scope.as_deref(),
            Some("repository:library/alpine:pull")
        );
        assert_eq!(
            challenge.token_url().unwrap().as_str(),
            "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Falpine%3Apull"
        );

        // Several actions in a quoted scope, parameters in another order, spaces after commas.
        let challenge = Challenge::parse(
            r#"bearer scope="repository:a/b:pull,push", realm="http://127.0.0.1:5000/token/""#,
        )
        .unwrap();
        assert_eq!(challenge.scope.as_deref(), Some("repository:a/b:pull,push"));
        assert_eq!(challenge.realm, "http://127.0.0.1:5000/token/");
        assert_eq!(challenge.service, None);

        assert_eq!(Challenge::parse(r#"Basic realm="granary""#), None);
        assert_eq!(Challenge::parse("Bearer"), None);
        assert_eq!(Challenge::parse(r#"Bearer service="x""#), None);
    }

    #[test]
    fn token_answers_give_the_token_and_its_lifetime() {
        assert_eq!(
            token_of(br#"{"token":"t1","expires_in":300}"#).unwrap(),
            ("t1".to_owned(), Duration::from_secs(300))
        );
        assert_eq!(
            token_of(br#"{"access_token":"t2"}"#).unwrap(),
            ("t2".to_owned(), DEFAULT_LIFETIME)
        );
        assert!(token_of(br#"{"token":""}"#).is_err());
        assert!(token_of(b"<html>").is_err());
    }

    #[test]
    fn an_expiring_token_is_not_sent() {
        let cache = TokenCache::default();
        assert_eq!(cache.current(), None);
        cache.keep("fresh", Duration::from_secs(300));
        assert_eq!(cache.current().as_deref(), Some("fresh"));
        cache.keep("stale", RENEW_EARLY / 2);
        assert_eq!(cache.current(), None);
    }
}
