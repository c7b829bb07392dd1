//! Content guards (Pulp's `ContentGuard` kinds): what a client must show to be served what a
//! distribution holds. The REST API (`api::content_guards`) writes them, the content app
//! (`content::guards`) enforces them; both read the kinds, hrefs and settings from here, and the
//! checks that need a secret or a certificate authority (signed URLs, client certificates).
//!
//! Kinds, at `contentguards/core/<kind>/`:
//! - `rbac`: the caller holds `core.download_rbaccontentguard` on the guard;
//! - `content_redirect`: the URL carries a `validate_token` signed with the guard's secret;
//! - `header`: a request header has a value (optionally a value inside a base64 JSON header);
//! - `x509`: a client certificate forwarded by a TLS proxy chains to the guard's authority;
//! - `composite`: any of its guards lets the request through.

use hmac::{Hmac, Mac as _};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use super::hrefs::API_ROOT;
use crate::db::Db;
pub use crate::rbac::catalog::GuardKind;

/// The permission an `rbac` guard lets through: `core.download_rbaccontentguard`.
pub fn download_permission() -> String {
    crate::rbac::catalog::guard_model(GuardKind::Rbac).permission("download")
}

/// The href of guard `id` of the kind stored as `segment`.
pub fn href(segment: &str, id: &str) -> String {
    format!("{API_ROOT}contentguards/core/{segment}/{id}/")
}

/// The kind and id of a guard's href, if `href` is one (the id is a UUID).
pub fn parse_href(href: &str) -> Option<(GuardKind, String)> {
    let rest = href
        .strip_prefix(API_ROOT)?
        .strip_prefix("contentguards/core/")?;
    let (segment, id) = rest.strip_suffix('/')?.split_once('/')?;
    let kind = GuardKind::from_segment(segment)?;
    let id = uuid::Uuid::parse_str(id).ok()?.to_string();
    Some((kind, id))
}

/// The kind-specific fields of a guard, stored as one JSON object (`content_guards.settings`);
/// each kind sets its own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// `header`: the header to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    /// `header`: the value it must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_value: Option<String>,
    /// `header`: a path (`.a.b`) into the header's base64-encoded JSON, whose value is compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jq_filter: Option<String>,
    /// `x509`: the PEM certificate(s) of the authority client certificates chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// `composite`: the ids of its guards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<String>,
    /// `content_redirect`: the key URLs are signed with (never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl Settings {
    /// The settings stored as `text` (a guard written by this module, so an unreadable one is
    /// empty: every check of an empty setting refuses).
    pub fn stored(text: &str) -> Settings {
        serde_json::from_str(text).unwrap_or_default()
    }

    /// As stored.
    pub fn to_column(&self) -> String {
        // Plain strings: serializing them cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// A guard as the content app enforces it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct GuardRow {
    /// Its id.
    pub id: String,
    /// Its kind's segment.
    pub kind: String,
    /// Its [`Settings`], as stored.
    pub settings: String,
}

/// The guard `id`, if it exists.
pub async fn load(db: &Db, id: &str) -> Result<Option<GuardRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, kind, settings FROM content_guards WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await
}

/// A new random secret for a `content_redirect` guard (about 280 bits).
pub fn new_secret() -> String {
    crate::auth::random_token(48)
}

/// The `validate_token` of `path` (a URL path as the client requests it) until `expires` (Unix
/// seconds): `<expires>:<hex HMAC-SHA256 of "<path>\n<expires>">`.
pub fn sign(secret: &str, path: &str, expires: i64) -> String {
    format!(
        "{expires}:{}",
        hex::encode(signature(secret, path, expires))
    )
}

fn mac(secret: &str, path: &str, expires: i64) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(path.as_bytes());
    mac.update(b"\n");
    mac.update(expires.to_string().as_bytes());
    mac
}

fn signature(secret: &str, path: &str, expires: i64) -> Vec<u8> {
    mac(secret, path, expires).finalize().into_bytes().to_vec()
}

/// Whether `token` is a `validate_token` of `path` signed with `secret` that has not expired at
/// `now` (Unix seconds). The signature is compared in constant time.
pub fn token_valid(secret: &str, path: &str, token: &str, now: i64) -> bool {
    let Some((expires, signature)) = token.split_once(':') else {
        return false;
    };
    let (Ok(expires), Ok(signature)) = (expires.parse::<i64>(), hex::decode(signature)) else {
        return false;
    };
    expires > now && mac(secret, path, expires).verify_slice(&signature).is_ok()
}

/// Checks the `ca_certificate` of an x509 guard: one or more PEM certificates, each usable as a
/// trust anchor. The error says why not.
pub fn check_authority(pem: &str) -> Result<(), String> {
    authorities(pem).map(|_| ())
}

fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("Not a PEM certificate: {error}."))?;
    if certificates.is_empty() {
        return Err("Must be one or more PEM-encoded certificates.".into());
    }
    Ok(certificates)
}

fn authorities(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = certificates(pem)?;
    for certificate in &certificates {
        webpki::anchor_from_trusted_cert(certificate)
            .map_err(|error| format!("Not a usable certificate authority: {error}."))?;
    }
    Ok(certificates)
}

/// The signature algorithms a client certificate chain may use (those rustls accepts with ring).
static SIGNATURE_ALGORITHMS: &[&dyn rustls_pki_types::SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// Checks a client certificate (PEM: the certificate, then any intermediates) against the
/// authority `ca_pem`: it must chain to it, be valid at `now`, and allow client authentication
/// if it names its uses. The error says why not.
pub fn verify_client(ca_pem: &str, client_pem: &str, now: UnixTime) -> Result<(), String> {
    let authorities = authorities(ca_pem)?;
    let anchors = authorities
        .iter()
        .map(webpki::anchor_from_trusted_cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| error.to_string())?;
    let mut chain = certificates(client_pem)?.into_iter();
    let leaf = chain.next().ok_or("No client certificate.")?;
    let intermediates: Vec<_> = chain.collect();
    let end_entity = webpki::EndEntityCert::try_from(&leaf).map_err(|error| error.to_string())?;
    end_entity
        .verify_for_usage(
            SIGNATURE_ALGORITHMS,
            &anchors,
            &intermediates,
            now,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// The keys of a `jq_filter`: Granary supports the path subset of jq, `.` and `.a.b` (object
/// keys, each a run of characters other than `.`, `[`, `]`, `|` and spaces).
pub fn jq_path(filter: &str) -> Result<Vec<String>, String> {
    let unsupported = || format!("Only jq paths of the form .a.b are supported, not {filter:?}.");
    let rest = filter.trim().strip_prefix('.').ok_or_else(unsupported)?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    rest.split('.')
        .map(|key| {
            let valid = !key.is_empty()
                && !key.contains(|c: char| c.is_whitespace() || "[]|\"'".contains(c));
            valid.then(|| key.to_owned()).ok_or_else(unsupported)
        })
        .collect()
}

/// Whether a `header` guard's settings let a request with header value `given` through: the
/// value itself, or with a `jq_filter` the value its path selects in the base64-encoded JSON of
/// the header (as Pulp decodes it), must equal `header_value`.
pub fn header_matches(settings: &Settings, given: &str) -> bool {
    let Some(expected) = &settings.header_value else {
        return false;
    };
    let Some(filter) = &settings.jq_filter else {
        return given == expected;
    };
    use base64::Engine as _;
    let Ok(path) = jq_path(filter) else {
        return false;
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(given.trim())
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let Some(mut value) = decoded else {
        return false;
    };
    for key in &path {
        value = match value {
            Value::Object(mut map) => map.remove(key).unwrap_or(Value::Null),
            _ => Value::Null,
        };
    }
    match value {
        Value::String(text) => &text == expected,
        Value::Null => false,
        other => &other.to_string() == expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_name_their_kind() {
        let id = "0190b5c6-8f5e-7c3a-9b1d-2e4f6a8c0d12";
        let href = href("content_redirect", id);
        assert_eq!(
            href,
            format!("/pulp/api/v3/contentguards/core/content_redirect/{id}/")
        );
        assert_eq!(
            parse_href(&href),
            Some((GuardKind::ContentRedirect, id.to_owned()))
        );
        assert_eq!(
            parse_href("/pulp/api/v3/contentguards/core/rbac/nope/"),
            None
        );
        assert_eq!(
            parse_href(&format!("/pulp/api/v3/contentguards/core/other/{id}/")),
            None
        );
    }

    #[test]
    fn tokens_are_bound_to_their_path_and_expiry() {
        let token = sign("key", "/pulp/content/a/f.txt", 2_000);
        assert!(token_valid("key", "/pulp/content/a/f.txt", &token, 1_999));
        assert!(
            !token_valid("key", "/pulp/content/a/f.txt", &token, 2_000),
            "expired"
        );
        assert!(
            !token_valid("key", "/pulp/content/a/g.txt", &token, 1_000),
            "another path"
        );
        assert!(
            !token_valid("other", "/pulp/content/a/f.txt", &token, 1_000),
            "another key"
        );
        let (_, signature) = token.split_once(':').unwrap();
        let extended = format!("3000:{signature}");
        assert!(
            !token_valid("key", "/pulp/content/a/f.txt", &extended, 1_000),
            "expiry is signed"
        );
        assert!(!token_valid("key", "/pulp/content/a/f.txt", "junk", 1_000));
    }

    #[test]
    fn jq_filters_are_simple_paths() {
        assert_eq!(jq_path(".").unwrap(), Vec::<String>::new());
        assert_eq!(jq_path(".identity.org_id").unwrap(), ["identity", "org_id"]);
        assert!(jq_path("identity").is_err());
        assert!(jq_path(".a[0]").is_err());
        assert!(jq_path(".a | .b").is_err());
        assert!(jq_path(".a..b").is_err());
    }

    #[test]
    fn a_header_with_a_jq_filter_is_read_as_base64_json() {
        use base64::Engine as _;
        let settings = Settings {
            header_name: Some("x-rh-identity".into()),
            header_value: Some("123".into()),
            jq_filter: Some(".identity.org_id".into()),
            ..Settings::default()
        };
        let encode = |json: &str| base64::engine::general_purpose::STANDARD.encode(json);
        assert!(header_matches(
            &settings,
            &encode(r#"{"identity": {"org_id": "123"}}"#)
        ));
        assert!(
            header_matches(&settings, &encode(r#"{"identity": {"org_id": 123}}"#)),
            "a number compares as its text"
        );
        assert!(!header_matches(
            &settings,
            &encode(r#"{"identity": {"org_id": "456"}}"#)
        ));
        assert!(!header_matches(&settings, &encode(r#"{"identity": {}}"#)));
        assert!(!header_matches(&settings, "not base64!"));
        let plain = Settings {
            jq_filter: None,
            ..settings
        };
        assert!(header_matches(&plain, "123"));
        assert!(!header_matches(&plain, "1234"));
    }
}
