//! Content guards, enforced for every request to a guarded distribution, at `/pulp/content/…`
//! and at a plugin's own prefix alike (both reach `serve_matched`), before anything is served.
//!
//! A request that shows nothing the guard asks for (no credentials, no header, no signed URL,
//! no client certificate) is answered 401 with a `WWW-Authenticate` challenge, so that pip, npm,
//! cargo and container clients retry with the credentials they are configured with; one that
//! shows something the guard refuses is answered 403. (Pulp answers 403 to both; its clients
//! only send credentials unasked.)

use axum::http::{HeaderMap, Uri};
use rustls_pki_types::UnixTime;

use super::ContentApp;
use crate::domain::content_guards::{self, GuardKind, GuardRow, Settings};
use crate::error::{ApiError, ApiResult};
use crate::rbac::Permissions;

/// The header a TLS proxy forwards the client certificate in (URL-encoded PEM), as Pulp's
/// certguard reads it.
const CLIENT_CERT_HEADER: &str = "x-client-cert";

/// The query parameter of a URL signed by a `content_redirect` guard.
const TOKEN_PARAMETER: &str = "validate_token";

/// What a guard says about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Serve it.
    Allow,
    /// It shows nothing the guard asks for: 401, with a challenge.
    Unauthenticated,
    /// What it shows is refused: 403.
    Forbidden,
}

/// What a guard reads of a request.
#[derive(Clone, Copy, Debug)]
pub(super) struct Shown<'a> {
    /// Its headers.
    pub headers: &'a HeaderMap,
    /// Its URI (path and query).
    pub uri: &'a Uri,
    /// The client's address, for the failed log-in counts of `rbac` guards.
    pub client: Option<std::net::IpAddr>,
    /// The base path of the distribution asked for: a registry token must grant `pull` there.
    pub base_path: &'a str,
}

/// Refuses a request showing `shown` unless the guard `guard_id` lets it through.
pub(super) async fn check(app: &ContentApp, guard_id: &str, shown: Shown<'_>) -> ApiResult<()> {
    let verdict = match content_guards::load(&app.db, guard_id).await? {
        // Deleting a guard unguards its distributions in the same transaction; a guard that is
        // gone all the same fails closed.
        None => Verdict::Forbidden,
        Some(guard) if guard.kind == GuardKind::Composite.segment() => {
            composite(app, &guard, shown).await?
        }
        Some(guard) => single(app, &guard, shown).await?,
    };
    match verdict {
        Verdict::Allow => Ok(()),
        Verdict::Unauthenticated => Err(ApiError::unauthorized()),
        Verdict::Forbidden => Err(ApiError::forbidden()),
    }
}

/// A composite guard lets a request through when any of its guards does, as Pulp's (which also
/// lets everything through when it has no guards). Refused, it answers 401 only when the request
/// showed none of its guards anything, so that clients retry with credentials; 403 when one of
/// them refused what it was shown.
async fn composite(app: &ContentApp, guard: &GuardRow, shown: Shown<'_>) -> ApiResult<Verdict> {
    let members = Settings::stored(&guard.settings).guards;
    if members.is_empty() {
        return Ok(Verdict::Allow);
    }
    let mut verdict = Verdict::Unauthenticated;
    for id in members {
        let Some(member) = content_guards::load(&app.db, &id).await? else {
            continue;
        };
        match single(app, &member, shown).await? {
            Verdict::Allow => return Ok(Verdict::Allow),
            Verdict::Forbidden => verdict = Verdict::Forbidden,
            Verdict::Unauthenticated => {}
        }
    }
    Ok(verdict)
}

/// The verdict of a guard that is not composite (a composite inside one refuses: the REST API
/// does not let one in).
async fn single(app: &ContentApp, guard: &GuardRow, shown: Shown<'_>) -> ApiResult<Verdict> {
    let settings = Settings::stored(&guard.settings);
    let headers = shown.headers;
    let verdict = match GuardKind::from_segment(&guard.kind) {
        Some(GuardKind::Rbac) => rbac(app, &guard.id, &shown).await?,
        Some(GuardKind::Header) => header(&settings, headers),
        Some(GuardKind::ContentRedirect) => signed_url(&settings, shown.uri),
        Some(GuardKind::X509) => client_certificate(&settings, headers),
        Some(GuardKind::Composite) | None => Verdict::Forbidden,
    };
    Ok(verdict)
}

/// `rbac`: the caller (HTTP Basic, an API token, or a registry token granting `pull` at the
/// distribution) holds the download permission on the guard, globally or on it; staff always do.
async fn rbac(app: &ContentApp, guard_id: &str, shown: &Shown<'_>) -> ApiResult<Verdict> {
    let caller = app
        .authenticator
        .authenticate_at(shown.headers, shown.client, shown.base_path)
        .await?;
    let Some(user) = caller.filter(|user| user.credentials_allow("pull")) else {
        return Ok(Verdict::Unauthenticated);
    };
    let mut permissions = Permissions::of(app.db.clone(), &user.id, user.is_staff);
    let download = content_guards::download_permission();
    Ok(if permissions.has_on(&download, guard_id).await? {
        Verdict::Allow
    } else {
        Verdict::Forbidden
    })
}

/// `header`: the guard's header has its value.
fn header(settings: &Settings, headers: &HeaderMap) -> Verdict {
    let Some(name) = &settings.header_name else {
        return Verdict::Forbidden;
    };
    match headers.get(name.as_str()).map(|value| value.to_str()) {
        None => Verdict::Unauthenticated,
        Some(Ok(value)) if content_guards::header_matches(settings, value) => Verdict::Allow,
        Some(_) => Verdict::Forbidden,
    }
}

/// `content_redirect`: the URL carries a `validate_token` the guard signed for this path, not
/// expired.
fn signed_url(settings: &Settings, uri: &Uri) -> Verdict {
    let token = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(name, _)| name == TOKEN_PARAMETER)
        .map(|(_, value)| value.into_owned());
    let (Some(token), Some(secret)) = (token, &settings.secret) else {
        return Verdict::Unauthenticated;
    };
    let now = chrono::Utc::now().timestamp();
    if content_guards::token_valid(secret, uri.path(), &token, now) {
        Verdict::Allow
    } else {
        Verdict::Forbidden
    }
}

/// `x509`: the client certificate the TLS proxy forwards chains to the guard's authority and is
/// valid now.
fn client_certificate(settings: &Settings, headers: &HeaderMap) -> Verdict {
    let Some(forwarded) = headers.get(CLIENT_CERT_HEADER) else {
        return Verdict::Unauthenticated;
    };
    let pem = forwarded.to_str().ok().and_then(super::percent_decode);
    let (Some(pem), Some(authority)) = (pem, &settings.ca_certificate) else {
        return Verdict::Forbidden;
    };
    match content_guards::verify_client(authority, &pem, UnixTime::now()) {
        Ok(()) => Verdict::Allow,
        Err(reason) => {
            tracing::debug!(%reason, "client certificate refused");
            Verdict::Forbidden
        }
    }
}
