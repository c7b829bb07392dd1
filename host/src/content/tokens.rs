//! `/token/`: the token endpoint of container registries (the Docker Registry token
//! authentication that docker, podman, skopeo and oras speak). A plugin route that answers 401
//! with a Bearer challenge sends clients here (see `complete_challenge` in `handle.rs`); they ask
//! for `scope=repository:<name>:<actions>` with their credentials (Basic, or none for anonymous
//! pulls) and get a registry token that grants, for a few minutes, those of the actions the
//! caller may do at the distribution whose base path is `<name>`.
//!
//! Reads are granted to anyone: a distribution's content guard still decides each request. Push
//! and delete are granted to a user who may modify the distribution's repository. At a name with
//! no distribution, pull and push are granted to a user who may create repositories and
//! distributions of a plugin that answers at a root (a push there creates them), nothing to
//! others. Tokens are sealed with the server's key (every process
//! opens them) and accepted only by plugin routes, never by the REST API.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use serde_json::{Value, json};

use super::ContentApp;
use super::handle::{may_create, may_modify};
use crate::auth::{self, RegistryClaims};
use crate::error::{ApiError, ApiResult};

/// How long a registry token is valid, in seconds (docker's default is 60; clients renew on 401).
const TOKEN_SECONDS: i64 = 300;

/// Most scopes one token request may ask for.
const MAX_SCOPES: usize = 16;

/// `GET /token/?service=…&scope=repository:<name>:<actions>…`.
pub(super) async fn issue(
    State(app): State<Arc<ContentApp>>,
    request: Request,
) -> ApiResult<Json<Value>> {
    let client = auth::client_address(request.extensions());
    let caller = app
        .authenticator
        .authenticate(request.headers(), client)
        .await?;
    // Credentials that do not check out are refused (that is how `docker login` learns of a
    // wrong password), not taken for an anonymous request.
    if caller.is_none()
        && request
            .headers()
            .contains_key(axum::http::header::AUTHORIZATION)
    {
        return Err(ApiError::unauthorized());
    }
    let query = request.uri().query().unwrap_or_default();
    let scopes: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name == "scope")
        .flat_map(|(_, value)| {
            value
                .split(' ')
                .filter(|scope| !scope.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    if scopes.len() > MAX_SCOPES {
        return Err(ApiError::field(
            "scope",
            format!("A token may be asked for at most {MAX_SCOPES} scopes."),
        ));
    }
    let mut grants = BTreeMap::new();
    for scope in &scopes {
        let Some((name, actions)) = scope
            .strip_prefix("repository:")
            .and_then(|scope| scope.rsplit_once(':'))
        else {
            continue;
        };
        let granted = grant(&app, caller.as_ref(), name, actions).await?;
        grants.insert(name.to_owned(), granted);
    }
    let issued = chrono::Utc::now();
    let claims = RegistryClaims {
        user: caller.map(|caller| caller.id),
        expires: issued.timestamp() + TOKEN_SECONDS,
        grants,
    };
    let token = app
        .authenticator
        .issue_registry_token(&claims)
        .ok_or_else(|| ApiError::internal("this server has no key to seal registry tokens"))?;
    Ok(Json(json!({
        "token": token,
        "access_token": token,
        "expires_in": TOKEN_SECONDS,
        "issued_at": issued.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })))
}

/// The actions of `wanted` (comma-separated; `*` is all) that `caller` may do at the
/// distribution whose base path is `name`.
async fn grant(
    app: &ContentApp,
    caller: Option<&auth::User>,
    name: &str,
    wanted: &str,
) -> ApiResult<Vec<String>> {
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
    let all = wanted.contains(&"*");
    let found = super::find_distribution(app, name, None).await?;
    let Some((matched, _)) =
        found.filter(|(matched, rest)| rest.is_empty() && matched.base_path == name)
    else {
        // No distribution there: a push may create one (see `handle::create_and_serve`) when the
        // caller may create distributions of a plugin that answers at a root.
        let Some(caller) = caller else {
            return Ok(Vec::new());
        };
        if !(all || wanted.contains(&"push")) {
            return Ok(Vec::new());
        }
        for plugin in app
            .plugins
            .list()
            .iter()
            .filter(|plugin| plugin.root().is_some())
        {
            if may_create(app, &plugin.info.name, caller).await? {
                return Ok(vec!["pull".to_owned(), "push".to_owned()]);
            }
        }
        return Ok(Vec::new());
    };
    let mut granted = Vec::new();
    if all || wanted.contains(&"pull") {
        granted.push("pull".to_owned());
    }
    let writes: Vec<&str> = ["push", "delete"]
        .into_iter()
        .filter(|action| all || wanted.contains(action))
        .collect();
    if !writes.is_empty() && may_modify(app, &matched, caller).await? == Some(true) {
        granted.extend(writes.into_iter().map(str::to_owned));
    }
    Ok(granted)
}
