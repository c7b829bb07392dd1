//! Plugin routes: a request a distribution's publication does not answer goes to its plugin's
//! `handle` export, at `/pulp/content/<base_path>/…` and at `/<rest-names.distribution>/<base_path>/…`.
//!
//! The host does everything that is not format knowledge before and after the call: it requires
//! credentials for anything but GET and HEAD, parses form bodies (text fields, and file parts
//! streamed into storage as artifacts), hands any other body to a 0.3.0 plugin as a stream under
//! the upload limit (and answers 413 or 408 itself when the body fails) and to an older one as
//! bytes, grants `http` to the distribution's remote origin and the repository's upload sessions,
//! runs the outcome's `add-units` as one new repository version (through the task system), and
//! streams stored or pulled-through files with Range, HEAD and ETag.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::multipart::Field;
use axum::extract::{FromRequest as _, Multipart, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};

use super::ContentApp;
use super::admission::{Requester, Work};
use super::answers::{self, Answer, AnswerBody};
use super::form::{TextError, bounded_text};
use super::{Matched, pull_through};
use crate::auth;
use crate::domain::additions::AddError;
use crate::domain::artifacts;
use crate::domain::declarations::REACHABLE;
use crate::domain::remotes::Remote;
use crate::domain::upload_sessions::Sessions;
use crate::error::{ApiError, ApiResult};
use crate::plugins::host_body::IncomingBody;
use crate::plugins::host_sync_sink::validate_declaration;
use crate::plugins::rest_names::Collection;
use crate::plugins::{
    Accounts, ArtifactRef, CallError, CallScope, CallerAccess, CatalogScope, ContentScope,
    DistributionInfo, FormField, FormFile, HttpBody, HttpRequest, LoadedPlugin, UnitDeclaration,
    UnitRef, UploadSessions,
};
use crate::rbac::Permissions;
use crate::rbac::catalog::Model;
use crate::storage::{INLINE_READ_LIMIT, ReceivedBlob};

/// Most bytes of a body handed to the plugin as is (not a form).
const MAX_RAW_BODY: usize = 2 * 1024 * 1024;
/// Most bytes of all the text fields of one form body together.
const MAX_FORM_TEXT: usize = 1024 * 1024;
/// Most file parts in one form body.
const MAX_FORM_FILES: usize = 64;
/// Most parts (text fields and files) in one form body.
const MAX_FORM_PARTS: usize = 256;

/// A plugin route request, as [`super::serve_matched`] resolved it.
pub(super) struct Route<'a> {
    pub matched: &'a Matched,
    pub requester: &'a Requester,
    /// The path below the distribution's base path.
    pub rest: &'a str,
    /// Where the distribution's links start.
    pub base_url: String,
    /// Who sent the request, when it carried valid credentials.
    pub caller: Option<auth::User>,
    /// The content generation the served version was read at (see [`answers::AnswerCache`]).
    pub generation: u64,
}

/// What the answer to a request of `caller` for `rest` at `matched`, reached at `base_url`, is
/// kept under.
fn answer_key<'a>(
    matched: &'a Matched,
    plugin: &'a LoadedPlugin,
    base_url: &'a str,
    method: &'a Method,
    caller: Option<&'a auth::User>,
    rest: &'a str,
    query: Option<&'a str>,
) -> answers::Key<'a> {
    answers::Key {
        plugin: &matched.plugin,
        component: &plugin.sha256,
        base_url,
        repository_id: matched.repository_id.as_deref(),
        version: matched.version,
        method: method.as_str(),
        user: caller.map(|caller| caller.username.as_str()),
        granted: caller.and_then(|caller| caller.granted.as_deref()),
        path: rest,
        query,
    }
}

/// What [`kept_answer`] found.
pub(super) enum Kept {
    /// The kept answer's response.
    Answer(Response),
    /// No kept answer: the plugin is to be called, holding the key's lock when given.
    Lead(Option<tokio::sync::OwnedMutexGuard<()>>),
}

/// The answer kept for a GET or HEAD of `rest` with this `uri` and `headers`, served without
/// calling the plugin. When there is none and the same request is being answered by the plugin
/// already, waits for that answer and serves it if it was kept; otherwise leads: the caller
/// calls the plugin, holding the key's lock while it does. (Not `&Request`: a request is not
/// `Sync`, so the future would not be `Send`.)
pub(super) async fn kept_answer(
    app: &Arc<ContentApp>,
    (matched, base_url, rest): (&Matched, &str, &str),
    caller: Option<&auth::User>,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> ApiResult<Kept> {
    if method != Method::GET && method != Method::HEAD {
        return Ok(Kept::Lead(None));
    }
    let Some(plugin) = app.plugins.get(&matched.plugin) else {
        return Ok(Kept::Lead(None));
    };
    let key = answer_key(
        matched,
        &plugin,
        base_url,
        method,
        caller,
        rest,
        uri.query(),
    );
    if let Some(answer) = app.answers.get(&key, headers) {
        return Ok(Kept::Answer(reply_with(app, &answer, rest, headers).await?));
    }
    let lock = app.answer_calls.lock_for(&key.id());
    if let Ok(leading) = lock.clone().try_lock_owned() {
        return Ok(Kept::Lead(Some(leading)));
    }
    // Another request is asking the plugin this: its answer, once kept, is this one's too. An
    // answer the plugin does not let the host keep is asked for again, without waiting in turn.
    // The wait is bounded like a wait for a plugin turn: a call that hangs (a stalled upstream)
    // must not hold any number of requests outside the admission limits, which then decide.
    let waited = Duration::from_millis(app.config.content_queue_timeout_ms);
    if let Ok(finished) = tokio::time::timeout(waited, lock.lock()).await {
        drop(finished);
    }
    match app.answers.get(&key, headers) {
        Some(answer) => Ok(Kept::Answer(reply_with(app, &answer, rest, headers).await?)),
        None => Ok(Kept::Lead(None)),
    }
}

/// The response to a request with headers `asked` from a kept (or about to be kept) answer.
async fn reply_with(
    app: &ContentApp,
    answer: &Answer,
    rest: &str,
    asked: &HeaderMap,
) -> ApiResult<Response> {
    let mut reply = match &answer.body {
        AnswerBody::Bytes(_) if answer.not_modified(asked) => {
            with_status(StatusCode::NOT_MODIFIED, Body::empty())
        }
        AnswerBody::Bytes(bytes) => with_status(answer.status, Body::from(bytes.clone())),
        AnswerBody::Stored { sha256, size } => {
            super::stored(app, sha256, *size, rest, asked).await?
        }
    };
    add_headers(
        &mut reply,
        answer.headers.iter().map(|(name, value)| (name, value)),
    );
    Ok(reply)
}

/// A response of `body` with `status`.
fn with_status(status: StatusCode, body: Body) -> Response {
    let mut reply = Response::new(body);
    *reply.status_mut() = status;
    reply
}

/// Sets the plugin's `headers` on `reply`, over the host's own of the same name.
fn add_headers<'a>(
    reply: &mut Response,
    headers: impl IntoIterator<Item = (&'a HeaderName, &'a HeaderValue)> + Clone,
) {
    for (name, _) in headers.clone() {
        reply.headers_mut().remove(name);
    }
    for (name, value) in headers {
        reply.headers_mut().append(name, value.clone());
    }
}

/// Calls the plugin's `handle` for `request` on `route`, and keeps the answer when the plugin
/// allows it.
pub(super) async fn plugin_route(
    app: &Arc<ContentApp>,
    route: Route<'_>,
    request: Request,
) -> ApiResult<Response> {
    let Route {
        matched,
        requester,
        rest,
        base_url,
        caller,
        generation,
    } = route;
    let Some(plugin) = app.plugins.get(&matched.plugin) else {
        return Err(ApiError::not_found());
    };
    let method = request.method().clone();
    let headers = request.headers().clone();
    let may_modify = may_modify(app, matched, caller.as_ref()).await?;
    // A format's own log-in (`npm login`) arrives without credentials, as a write: it reaches
    // the plugin, which may check one password and changes nothing.
    let log_in = method != Method::GET && method != Method::HEAD && plugin.is_log_in_path(rest);
    let client = auth::client_address(request.extensions());
    if method != Method::GET && method != Method::HEAD && !log_in {
        // Anything but a read may change the repository: decided before a byte of the body is
        // read, so a stranger cannot make the server store an upload it will refuse.
        let action = if method == Method::DELETE {
            "delete"
        } else {
            "push"
        };
        // At a plugin's root (a registry), and for a registry token without the action (an
        // anonymous client's, or one for other actions): a 401 with the Bearer challenge of the
        // scope needed, so that the client asks for a token that has it, as registry clients
        // (docker, oras) expect.
        let at_root = plugin
            .root()
            .is_some_and(|root| base_url.starts_with(&format!("{}/{root}/", app.origin)));
        let unauthorized = || {
            let refused = ApiError::unauthorized();
            if at_root || auth::carries_registry_token(&headers) {
                let at = Some((matched.base_path.as_str(), &method));
                refused.with_challenge(bearer_challenge(&app.origin, at))
            } else {
                refused
            }
        };
        match &caller {
            None => return Err(unauthorized()),
            Some(caller) if !caller.credentials_allow(action) => return Err(unauthorized()),
            Some(_) if may_modify == Some(false) => return Err(ApiError::forbidden()),
            Some(_) => {}
        }
    }
    let allows = |action: &str| {
        may_modify == Some(true)
            && caller
                .as_ref()
                .is_some_and(|caller| caller.credentials_allow(action))
    };
    let access = CallerAccess {
        pull: true,
        push: allows("push"),
        delete: allows("delete"),
    };
    let query = request.uri().query().map(str::to_owned);
    let key = answer_key(
        matched,
        &plugin,
        &base_url,
        &method,
        caller.as_ref(),
        rest,
        query.as_deref(),
    );
    let kept_for = if method == Method::GET || method == Method::HEAD {
        Some(key)
    } else {
        None
    };
    let user = caller.as_ref().map(|caller| caller.username.clone());
    let remote = match &matched.remote_id {
        Some(remote_id) => Some(Remote::load(app.db.pool(), &app.secrets, remote_id).await?),
        None => None,
    };
    let (body, incoming) = read_body(app, request, plugin.streams_bodies()).await?;
    let ParsedBody {
        form,
        files,
        unrecorded: mut kept,
    } = body;
    // What the plugin stores is recorded with the change it makes, if it makes one.
    let creator = Arc::new(artifacts::DeferredCreator::new(app.blobs.clone()));
    let content = match (&matched.repository_id, matched.version) {
        (Some(repository_id), Some(version)) => Some(ContentScope::new(
            app.db.clone(),
            &plugin,
            repository_id,
            version,
        )),
        _ => None,
    };
    let http = match &remote {
        Some(remote) if plugin.has_capability("http") => {
            Some(remote.http_scope(app.remote_clients.client(remote)?, app.db.clone()))
        }
        _ => None,
    };
    // The checks above let a write through: the caller may modify the repository.
    let write_request = method != Method::GET
        && method != Method::HEAD
        && !log_in
        && matched.writable
        && matched.repository_id.is_some();
    let accounts = log_in.then(|| {
        Arc::new(LogIns {
            app: app.clone(),
            client,
        }) as Arc<dyn Accounts>
    });
    let scope = CallScope {
        content,
        http,
        artifacts: files
            .iter()
            .map(|file| (file.artifact.sha256.clone(), file.artifact.size))
            .collect(),
        blobs: Some(app.blobs.clone()),
        create_in: Some(creator.clone()),
        content_types: plugin.content_type_names(),
        write_request,
        catalog: Some(CatalogScope {
            db: app.db.clone(),
            plugin: plugin.info.name.clone(),
        }),
        elsewhere: write_request.then(|| {
            Arc::new(super::mounts::Readable {
                app: app.clone(),
                plugin: plugin.clone(),
                caller: caller.clone(),
            }) as Arc<dyn crate::plugins::OtherDistributions>
        }),
        uploads: matched.repository_id.as_ref().map(|repository_id| {
            Arc::new(Sessions {
                db: app.db.clone(),
                blobs: app.blobs.clone(),
                plugin: plugin.info.name.clone(),
                repository_id: repository_id.clone(),
                ttl: Duration::from_secs(app.config.upload_session_ttl_secs),
                limit: app.config.max_upload_bytes,
            }) as Arc<dyn UploadSessions>
        }),
        accounts,
        ..CallScope::default()
    };
    let call = HttpRequest {
        method: method.to_string(),
        path: rest.to_owned(),
        query: query.clone(),
        headers: forwarded(&headers),
        base_url: base_url.clone(),
        form,
        files,
        user: user.clone(),
        access,
        distribution: Some(DistributionInfo {
            name: matched.name.clone(),
            base_path: matched.base_path.clone(),
            extra: matched.extra.clone(),
            writable: matched.writable,
            remote: remote.as_ref().map(Remote::config),
        }),
    };
    // The call holds a plugin instance until it returns: one turn of the pool's share each.
    let turn = app.admission.turn(Work::PluginCall, requester).await?;
    let (result, scope) = app.plugins.handle(&plugin, scope, &call, incoming).await;
    drop(turn);
    kept.extend(creator.take());
    // An answer that changes the repository is not one to repeat.
    let changes = matches!(&result, Ok(outcome) if !outcome.add_units.is_empty() || !outcome.remove_units.is_empty());
    // Anything but a change that goes ahead records the stored files now.
    if !changes || log_in || scope.body_fault.is_some() {
        artifacts::record_all(&app.db, &kept).await?;
    }
    // A body that failed is the client's doing: the answer is the host's, whatever the plugin
    // made of the failed read.
    if let Some(fault) = scope.body_fault.clone() {
        return Err(fault.into());
    }
    let outcome = result.map_err(|error| call_error(&matched.plugin, error))?;
    if log_in && (changes || matches!(outcome.response.body, HttpBody::FetchUpstream(_))) {
        return Err(plugin_failed(
            &matched.plugin,
            "the plugin changed units in answer to a log-in",
        ));
    }
    let kept_for = kept_for.filter(|_| !changes);
    if changes {
        let made_here: BTreeSet<&str> = (scope.artifacts.keys().map(String::as_str))
            .chain(
                scope
                    .created
                    .iter()
                    .map(|artifact| artifact.sha256.as_str()),
            )
            .collect();
        let named = Named {
            plugin: &plugin,
            made_here: &made_here,
            remote_id: matched.remote_id.as_deref(),
        };
        let change = Change {
            add: outcome.add_units,
            remove: outcome.remove_units,
        };
        change_units(app, matched, &named, user.as_deref(), change, &kept).await?;
    }
    let response = outcome.response;
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
    if status == StatusCode::NOT_FOUND
        && matches!(&response.body, HttpBody::Bytes(bytes) if bytes.is_empty())
    {
        return Err(ApiError::not_found());
    }
    let mut answered = answered_headers(response.headers);
    complete_challenge(
        &app.origin,
        status,
        &mut answered,
        Some((&matched.base_path, &method)),
    );
    // Files fetched from upstream add to the repository: each request goes to the plugin.
    let keep = kept_for
        .filter(|_| !matches!(response.body, HttpBody::FetchUpstream(_)))
        .and_then(|key| {
            let lifetime = answers::lifetime(status, &answered)?;
            Some((key, lifetime, answers::varies_on(&answered)?))
        });
    drop_host_decided(&mut answered, &matched.plugin);
    let Some((key, lifetime, vary)) = keep else {
        let mut reply = match response.body {
            HttpBody::Bytes(bytes) => with_status(status, Body::from(bytes)),
            // Streamed files keep the status the host gives them (206, 304...).
            HttpBody::ContentArtifact(id) => {
                super::served_content_artifact(app, matched, requester, &id, rest, &headers).await?
            }
            HttpBody::FetchUpstream(file) => {
                let remote = remote.as_ref();
                pull_through::serve(app, matched, requester, &plugin, remote, file, &headers)
                    .await?
            }
        };
        add_headers(&mut reply, &answered);
        return Ok(reply);
    };
    let body = match response.body {
        HttpBody::ContentArtifact(id) => {
            match super::content_artifact_file(app, matched, &id).await? {
                (Some(sha256), Some(size)) => AnswerBody::Stored {
                    sha256,
                    size: size as u64,
                },
                // Not downloaded yet: the download stores it, which changes the content tables.
                _ => {
                    let mut reply = super::from_remote(app, requester, &id, rest).await?;
                    add_headers(&mut reply, &answered);
                    return Ok(reply);
                }
            }
        }
        HttpBody::Bytes(bytes) => AnswerBody::Bytes(Bytes::from(bytes)),
        HttpBody::FetchUpstream(_) => {
            return Err(ApiError::internal("an upstream fetch is never kept"));
        }
    };
    let answer = Answer::new(status, answered, body, lifetime);
    let reply = reply_with(app, &answer, rest, &headers).await?;
    app.answers.keep(generation, &key, vary, &headers, answer);
    Ok(reply)
}

/// Calls the `handle` of `plugin` for a request at its root (`/<root>/<rest>`) that matches none
/// of its distributions: the API version check and catalogue of a registry, a push to a name
/// that has no distribution yet. The plugin reads no content, gets an empty body and changes
/// nothing; it answers, or asks for a distribution to be created for the request
/// ([`create_and_serve`]).
pub(super) async fn root_route(
    app: &Arc<ContentApp>,
    plugin: &LoadedPlugin,
    rest: &str,
    request: Request,
) -> ApiResult<Response> {
    let client = auth::client_address(request.extensions());
    // A registry token names the user here too (a registry's version check), granting nothing.
    let caller = app
        .authenticator
        .authenticate_at(request.headers(), client, "")
        .await?;
    let method = request.method().clone();
    // An anonymous write is refused whatever the plugin answers; the plugin is still asked (it
    // changes nothing here and the body stays unread) so that a push to a new name gets the
    // Bearer challenge of that name's scope, the one registry clients that follow challenges
    // (oras) need before they can push there.
    let anonymous_write = method != Method::GET && method != Method::HEAD && caller.is_none();
    let root = plugin.root().unwrap_or_default();
    let requester = Requester::new(&format!("/{root}/"), request.extensions());
    let call = HttpRequest {
        method: method.to_string(),
        path: rest.to_owned(),
        query: request.uri().query().map(str::to_owned),
        headers: forwarded(request.headers()),
        base_url: format!("{}/{root}/", app.origin),
        form: Vec::new(),
        files: Vec::new(),
        user: caller.as_ref().map(|caller| caller.username.clone()),
        access: CallerAccess {
            pull: true,
            push: false,
            delete: false,
        },
        distribution: None,
    };
    let scope = CallScope {
        content_types: plugin.content_type_names(),
        catalog: Some(CatalogScope {
            db: app.db.clone(),
            plugin: plugin.info.name.clone(),
        }),
        ..CallScope::default()
    };
    // The body stays unread: it is the request's at the distribution a push creates.
    let turn = app.admission.turn(Work::PluginCall, &requester).await?;
    let (result, _) = app
        .plugins
        .handle(plugin, scope, &call, IncomingBody::empty())
        .await;
    drop(turn);
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(_) if anonymous_write => return Err(ApiError::unauthorized()),
        Err(error) => return Err(call_error(&plugin.info.name, error)),
    };
    if anonymous_write {
        let refused = ApiError::unauthorized();
        return Err(match &outcome.create_distribution {
            Some(base_path) if leads(rest, base_path) => {
                refused.with_challenge(bearer_challenge(&app.origin, Some((base_path, &method))))
            }
            _ => refused,
        });
    }
    if !outcome.add_units.is_empty() || !outcome.remove_units.is_empty() {
        return Err(plugin_failed(
            &plugin.info.name,
            "the plugin changed units in answer to a request that matches no distribution",
        ));
    }
    if let Some(base_path) = outcome.create_distribution {
        return create_and_serve(app, plugin, (rest, &base_path), caller, request).await;
    }
    let response = outcome.response;
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let HttpBody::Bytes(bytes) = response.body else {
        return Err(plugin_failed(
            &plugin.info.name,
            "the plugin answered a stored or upstream file to a request that matches no distribution",
        ));
    };
    if status == StatusCode::NOT_FOUND && bytes.is_empty() {
        return Err(ApiError::not_found());
    }
    let mut answered = answered_headers(response.headers);
    complete_challenge(&app.origin, status, &mut answered, None);
    drop_host_decided(&mut answered, &plugin.info.name);
    let mut reply = with_status(status, Body::from(bytes));
    add_headers(&mut reply, &answered);
    Ok(reply)
}

/// `accounts.log-in` for one request: the authenticator's password check, throttled by the
/// username and the request's address, and a new API token for the user.
struct LogIns {
    app: Arc<ContentApp>,
    client: Option<std::net::IpAddr>,
}

impl Accounts for LogIns {
    fn log_in<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
        client: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move {
            let user = self
                .app
                .authenticator
                .check_password(username, password, self.client)
                .await
                .map_err(|error| error.message())?;
            let Some(user) = user else {
                return Ok(None);
            };
            let name: String = format!("{client} ({})", crate::db::now())
                .chars()
                .take(255)
                .collect();
            let (_, secret) = auth::issue_api_token(&self.app.db, &user.id, &name, None)
                .await
                .map_err(|error| {
                    tracing::error!(%error, "issuing an API token for a log-in");
                    "the token could not be issued (see the server log)".to_owned()
                })?;
            tracing::info!(user = %user.username, %client, "logged in, API token issued");
            Ok(Some(secret))
        })
    }
}

/// Whether `base_path`, which a plugin asked for, is a safe relative path made of the leading
/// segments of `rest`, the request's path below the root.
fn leads(rest: &str, base_path: &str) -> bool {
    !base_path.is_empty()
        && (rest == base_path || rest.starts_with(&format!("{base_path}/")))
        && crate::plugins::validate_relative_path(base_path).is_ok()
}

/// Whether `user` may add repositories and distributions of `plugin` (globally): what a push to a
/// new name creates.
pub(super) async fn may_create(
    app: &ContentApp,
    plugin: &str,
    user: &auth::User,
) -> ApiResult<bool> {
    let names = app.plugins.rest_names();
    let Some(plugin_names) = names.plugin(plugin) else {
        return Ok(false);
    };
    let mut permissions = Permissions::of(app.db.clone(), &user.id, user.is_staff);
    for collection in [Collection::Repositories, Collection::Distributions] {
        let add = Model::of_plugin(plugin_names, collection).permission("add");
        if !permissions.has_globally(&add).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Creates the repository and distribution at `base_path` that `plugin` asked for, for the push
/// of `caller` to `rest` (below the root), and serves the request there. The caller must be
/// allowed to add repositories and distributions of the plugin, and, with a registry token, be
/// granted push at the new name; `base_path` must be the leading segments of `rest`.
async fn create_and_serve(
    app: &Arc<ContentApp>,
    plugin: &LoadedPlugin,
    (rest, base_path): (&str, &str),
    caller: Option<auth::User>,
    request: Request,
) -> ApiResult<Response> {
    if !leads(rest, base_path) {
        return Err(plugin_failed(
            &plugin.info.name,
            &format!(
                "the plugin asked for a distribution at {base_path:?}, which does not lead the path {rest:?}"
            ),
        ));
    }
    let client = auth::client_address(request.extensions());
    let pusher = match caller {
        // A registry token is judged at the new name, where it must grant push.
        Some(caller) if caller.granted.is_some() => app
            .authenticator
            .authenticate_at(request.headers(), client, base_path)
            .await?
            .filter(|caller| caller.credentials_allow("push")),
        caller => caller,
    };
    let Some(pusher) = pusher else {
        return Err(ApiError::unauthorized());
    };
    if !may_create(app, &plugin.info.name, &pusher).await? {
        return Err(ApiError::forbidden());
    }
    let names = app.plugins.rest_names();
    let created = crate::domain::distributions::create_for_push(
        &app.db,
        &names,
        &plugin.info.name,
        base_path,
        &pusher.id,
    )
    .await;
    // A concurrent push may have created it first: then it is served all the same.
    let found = super::find_distribution(app, rest, Some(&plugin.info.name)).await?;
    match (found, created) {
        (Some(found), _) => {
            let root = plugin.root().unwrap_or_default();
            super::serve_matched(app, &found, &format!("/{root}/"), request).await
        }
        (None, Err(error)) => Err(ApiError::detail(
            StatusCode::CONFLICT,
            format!("No distribution could be created at {base_path:?}: {error:#}"),
        )),
        (None, Ok(())) => Err(ApiError::internal(
            "a distribution created for a push was not found",
        )),
    }
}

/// Replaces the `www-authenticate` of a plugin's answer with the challenge the host gives: for a
/// 401 that names the scheme `Basic` or `Bearer`, that challenge, completed (Bearer: the token
/// endpoint, and the scope of the distribution at `at`, `(base path, method)`, when the request
/// reached one); otherwise none.
fn complete_challenge(
    origin: &str,
    status: StatusCode,
    answered: &mut HeaderMap,
    at: Option<(&str, &Method)>,
) {
    let asked = answered.remove(header::WWW_AUTHENTICATE);
    if status != StatusCode::UNAUTHORIZED {
        return;
    }
    let scheme = asked
        .as_ref()
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_ascii_lowercase());
    let challenge = match scheme.as_deref() {
        Some("basic") => "Basic realm=\"granary\"".to_owned(),
        Some("bearer") => bearer_challenge(origin, at),
        _ => return,
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        answered.insert(header::WWW_AUTHENTICATE, value);
    }
}

/// The Bearer challenge of the server's token endpoint, with the scope a request of `method` at
/// the distribution at `base_path` needs, when it reached one: `(base path, method)`.
pub(super) fn bearer_challenge(origin: &str, at: Option<(&str, &Method)>) -> String {
    let service = origin.split_once("://").map_or(origin, |(_, host)| host);
    let mut challenge = format!("Bearer realm=\"{origin}/token/\",service=\"{service}\"");
    if let Some((base_path, method)) = at {
        let actions = match *method {
            Method::GET | Method::HEAD => "pull",
            Method::DELETE => "delete",
            _ => "pull,push",
        };
        challenge.push_str(&format!(",scope=\"repository:{base_path}:{actions}\""));
    }
    challenge
}

/// The request headers a plugin sees: all but the caller's credentials.
fn forwarded(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| *name != header::AUTHORIZATION && *name != header::COOKIE)
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// A plugin's response headers, those that are valid HTTP.
fn answered_headers(headers: Vec<(String, String)>) -> HeaderMap {
    let mut answered = HeaderMap::new();
    for (name, value) in headers {
        let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) else {
            continue;
        };
        answered.append(name, value);
    }
    answered
}

/// Drops the headers of `plugin`'s answer that are the host's to decide.
fn drop_host_decided(headers: &mut HeaderMap, plugin: &str) {
    let dropped: Vec<header::HeaderName> = headers
        .keys()
        .filter(|name| host_decides(name))
        .cloned()
        .collect();
    for name in dropped {
        tracing::debug!(%plugin, header = %name, "plugin response header dropped");
        headers.remove(&name);
    }
}

/// Whether the header `name` of a plugin's answer is the host's to decide, so the plugin's value
/// is dropped.
///
/// A deny list rather than an allow list: formats speak their own headers (`X-PyPI-Last-Serial`,
/// `Docker-Content-Digest`, `Docker-Distribution-API-Version`, `npm-notice`...), which the host
/// cannot enumerate for plugins not written yet, and an allow list would make every new format
/// wait for a host release. What a plugin must not touch is a closed class the host knows: state
/// on the API origin (cookies), the connection and its framing (hop-by-hop headers and lengths
/// the host computes), and what a browser may do with the answer (the security headers, which
/// [`super::security_headers`] sets on every served response). `WWW-Authenticate` is the host's
/// too, completed from what the plugin asks for by [`complete_challenge`] before this runs.
fn host_decides(name: &header::HeaderName) -> bool {
    // Header names are lower case once parsed.
    let name = name.as_str();
    matches!(
        name,
        "set-cookie"
            | "set-cookie2"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "content-length"
            | "alt-svc"
            | "strict-transport-security"
            | "content-security-policy"
            | "content-security-policy-report-only"
            | "x-content-type-options"
            | "x-frame-options"
            | "x-xss-protection"
            | "referrer-policy"
            | "permissions-policy"
            | "feature-policy"
            | "clear-site-data"
            | "service-worker-allowed"
            | "origin-agent-cluster"
            | "refresh"
            | "correlation-id"
            | answers::HOST_CACHE_CONTROL
    ) || name.starts_with("proxy-")
        || name.starts_with("access-control-")
        || name.starts_with("cross-origin-")
}

/// A plugin error is the client's answer (400, on the field it names); anything else means the
/// plugin failed.
fn call_error(plugin: &str, error: CallError) -> ApiError {
    match error {
        CallError::Plugin(error) => ApiError::field(
            error.field.as_deref().unwrap_or("non_field_errors"),
            error.message,
        ),
        CallError::Sandbox(message) => plugin_failed(plugin, &message),
    }
}

/// 502 for a plugin that crashed, hit a limit or answered something invalid. What went wrong
/// (trap text, the guest's stderr, limits) is for the operator: it goes to the log under the
/// request's correlation id, and the client gets only that id to quote.
pub(super) fn plugin_failed(plugin: &str, cause: &str) -> ApiError {
    let correlation_id = crate::tasks::LOGGING_CID
        .try_with(Clone::clone)
        .unwrap_or_default();
    tracing::warn!(%plugin, %correlation_id, %cause, "plugin call failed");
    ApiError::detail(
        StatusCode::BAD_GATEWAY,
        format!(
            "The {plugin} plugin failed to answer this request (correlation id {correlation_id})."
        ),
    )
}

/// Whether `caller` may modify the repository `matched` serves (the plugin's `modify_<repository>`
/// permission on it, globally or on the repository); `None` when it serves no repository, so
/// there is nothing to change and what the plugin answers is its own affair.
pub(super) async fn may_modify(
    app: &ContentApp,
    matched: &Matched,
    caller: Option<&auth::User>,
) -> ApiResult<Option<bool>> {
    let names = app.plugins.rest_names();
    let (Some(repository_id), Some(plugin)) =
        (&matched.repository_id, names.plugin(&matched.plugin))
    else {
        return Ok(None);
    };
    let Some(caller) = caller else {
        return Ok(Some(false));
    };
    let modify = Model::of_plugin(plugin, Collection::Repositories).permission("modify");
    let mut permissions = Permissions::of(app.db.clone(), &caller.id, caller.is_staff);
    Ok(Some(permissions.has_on(&modify, repository_id).await?))
}

/// Whether `caller` may view the repository `matched` serves (a private distribution's reads);
/// a distribution without a repository (a publication's) by staff only.
pub(super) async fn may_view(
    app: &ContentApp,
    matched: &Matched,
    caller: &auth::User,
) -> ApiResult<bool> {
    let names = app.plugins.rest_names();
    let (Some(repository_id), Some(plugin)) =
        (&matched.repository_id, names.plugin(&matched.plugin))
    else {
        return Ok(caller.is_staff);
    };
    let view = Model::of_plugin(plugin, Collection::Repositories).permission("view");
    let mut permissions = Permissions::of(app.db.clone(), &caller.id, caller.is_staff);
    Ok(permissions.has_on(&view, repository_id).await?)
}

/// The artifacts a `handle` outcome may name without looking further: those of this request's
/// form body and those the call created.
struct Named<'a> {
    plugin: &'a LoadedPlugin,
    made_here: &'a BTreeSet<&'a str>,
    remote_id: Option<&'a str>,
}

/// What a `handle` outcome changes in the distribution's repository.
struct Change {
    /// Units to add.
    add: Vec<UnitDeclaration>,
    /// Units to remove.
    remove: Vec<UnitRef>,
}

/// Adds and removes the units a `handle` outcome names in the distribution's repository, as one
/// new version, before the response goes out; records the files the request stored (`kept`)
/// with it, or on their own when it is refused.
async fn change_units(
    app: &Arc<ContentApp>,
    matched: &Matched,
    named: &Named<'_>,
    user: Option<&str>,
    change: Change,
    kept: &[artifacts::Unrecorded],
) -> ApiResult<()> {
    let (units, removed) = match checked_change(app, matched, named, user, change).await {
        Ok(checked) => checked,
        Err(refused) => {
            artifacts::record_all(&app.db, kept).await?;
            return Err(refused);
        }
    };
    let target = (matched, named.plugin.info.name.as_str());
    match app.add_units(target, None, &units, &removed, kept).await {
        Ok(_) => Ok(()),
        Err(AddError::Refused(message)) => Err(ApiError::bad_request(message)),
        Err(AddError::Internal(error)) => Err(error.into()),
    }
}

/// The units a `handle` outcome adds to the distribution's repository (checked) and those it
/// removes.
async fn checked_change(
    app: &Arc<ContentApp>,
    matched: &Matched,
    named: &Named<'_>,
    user: Option<&str>,
    change: Change,
) -> ApiResult<(Vec<UnitDeclaration>, Vec<(String, String)>)> {
    let Change {
        add: mut units,
        remove,
    } = change;
    let plugin = named.plugin;
    if user.is_none() {
        return Err(ApiError::unauthorized());
    }
    let (true, Some(repository_id)) = (matched.writable, &matched.repository_id) else {
        return Err(ApiError::detail(
            StatusCode::CONFLICT,
            format!(
                "The distribution {:?} does not serve the latest version of a repository, so nothing can be added or removed through it.",
                matched.name
            ),
        ));
    };
    for unit in &mut units {
        // Added units name stored artifacts; where to download them from is not theirs to say.
        for artifact in &mut unit.artifacts {
            artifact.url = None;
        }
        validate_declaration(unit, &plugin.content_type_names(), None).map_err(|message| {
            ApiError::detail(
                StatusCode::BAD_GATEWAY,
                format!(
                    "The {} plugin declared an invalid unit: {message}",
                    plugin.info.name
                ),
            )
        })?;
        if let Some(file) = unit.artifacts.iter().find(|a| a.sha256.is_none()) {
            return Err(ApiError::detail(
                StatusCode::BAD_GATEWAY,
                format!(
                    "The {} plugin added file {:?} without the sha256 of a stored artifact.",
                    plugin.info.name, file.relative_path
                ),
            ));
        }
    }
    // A sha256 is not a capability: storage is shared by every repository, so an artifact of
    // another repository (another tenant's private file) must not be added by naming its digest.
    // It is refused as a missing one is, so the answer does not tell whether the digest is stored.
    let mut checked = BTreeSet::new();
    for artifact in units.iter().flat_map(|unit| &unit.artifacts) {
        let Some(sha256) = artifact.sha256.as_deref() else {
            continue;
        };
        if named.made_here.contains(sha256) || !checked.insert(sha256) {
            continue;
        }
        if !reachable(app, sha256, repository_id, named.remote_id).await? {
            tracing::warn!(
                plugin = %plugin.info.name,
                sha256,
                "add-units named an artifact that is not of this request, this repository or its remote"
            );
            return Err(ApiError::bad_request(format!(
                "The {} plugin added file {:?}, which names no stored artifact of this request, this repository or its remote.",
                plugin.info.name, artifact.relative_path
            )));
        }
    }
    if let Some(unit) = remove
        .iter()
        .find(|unit| !plugin.has_content_type(&unit.content_type))
    {
        return Err(ApiError::detail(
            StatusCode::BAD_GATEWAY,
            format!(
                "The {} plugin removed a unit of the unknown content type {:?}.",
                plugin.info.name, unit.content_type
            ),
        ));
    }
    let removed: Vec<(String, String)> = remove
        .into_iter()
        .map(|unit| (unit.content_type, unit.natural_key))
        .collect();
    Ok((units, removed))
}

/// Whether the stored artifact `sha256` belongs to the repository `repository_id` (a file of its
/// latest version) or was fetched from the remote `remote_id` (a file of a unit that remote
/// serves): the artifacts, besides its own request's, a plugin call may put into the repository.
pub(super) async fn reachable(
    app: &ContentApp,
    sha256: &str,
    repository_id: &str,
    remote_id: Option<&str>,
) -> ApiResult<bool> {
    let sql = format!("SELECT 1 FROM artifacts a WHERE a.sha256 = $3 AND {REACHABLE} LIMIT 1");
    let found = sqlx::query(&sql)
        .bind(repository_id)
        .bind(remote_id)
        .bind(sha256)
        .fetch_optional(app.db.pool())
        .await?;
    Ok(found.is_some())
}

/// A form body as `handle` receives it: parsed, its files stored (their rows not written yet).
#[derive(Default)]
struct ParsedBody {
    form: Vec<FormField>,
    files: Vec<FormFile>,
    unrecorded: Vec<artifacts::Unrecorded>,
}

/// Parses form bodies (storing file parts as artifacts); any other body is handed to the plugin
/// as it arrives when it `streams` bodies (0.3.0), up to the upload limit, else read first up
/// to [`MAX_RAW_BODY`].
async fn read_body(
    app: &ContentApp,
    request: Request,
    streams: bool,
) -> ApiResult<(ParsedBody, IncomingBody)> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(request, &())
            .await
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
        return Ok((read_multipart(app, multipart).await?, IncomingBody::empty()));
    }
    let form = content_type.starts_with("application/x-www-form-urlencoded");
    if streams && !form {
        let limit = app.config.max_upload_bytes;
        let chunks = request
            .into_body()
            .into_data_stream()
            .map_err(move |error| crate::error::body_fault(&error, limit))
            .boxed();
        return Ok((ParsedBody::default(), IncomingBody::new(chunks, limit)));
    }
    let bytes = axum::body::to_bytes(request.into_body(), MAX_RAW_BODY)
        .await
        .map_err(|error| ApiError::unread_body(&error, MAX_RAW_BODY as u64))?;
    if form {
        let form = url::form_urlencoded::parse(&bytes)
            .map(|(name, value)| FormField {
                name: name.into_owned(),
                value: value.into_owned(),
            })
            .collect();
        return Ok((
            ParsedBody {
                form,
                ..ParsedBody::default()
            },
            IncomingBody::empty(),
        ));
    }
    Ok((
        ParsedBody::default(),
        IncomingBody::from_bytes(bytes.to_vec()),
    ))
}

async fn read_multipart(app: &ContentApp, multipart: Multipart) -> ApiResult<ParsedBody> {
    let mut body = ParsedBody::default();
    if let Err(refused) = read_parts(app, multipart, &mut body).await {
        // The files stored before the refusal are recorded, as stored files are.
        artifacts::record_all(&app.db, &body.unrecorded).await?;
        return Err(refused);
    }
    Ok(body)
}

/// A form's file part, up to [`INLINE_READ_LIMIT`] bytes, is held in memory and stored whole
/// in one trip to the blocking pool (most uploads: a wheel, a small package's tarball); a larger
/// one is streamed to a staged file as it arrives.
async fn receive_file(app: &ContentApp, field: &mut Field<'_>) -> ApiResult<ReceivedBlob> {
    let limit = app.config.max_upload_bytes;
    let mut held = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(malformed)? {
        let received = (held.len() + chunk.len()) as u64;
        if received > limit {
            return Err(ApiError::too_large(limit));
        }
        if received <= INLINE_READ_LIMIT {
            held.extend_from_slice(&chunk);
            continue;
        }
        let mut staged = app.blobs.stage().await.map_err(ApiError::internal)?;
        staged.write(&held).await.map_err(ApiError::internal)?;
        staged.write(&chunk).await.map_err(ApiError::internal)?;
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            staged.write(&chunk).await.map_err(ApiError::internal)?;
            if staged.size() > limit {
                return Err(ApiError::too_large(limit));
            }
        }
        return staged.finish().await.map_err(ApiError::internal);
    }
    app.blobs
        .keep_bytes(Bytes::from(held))
        .await
        .map_err(ApiError::internal)
}

fn malformed(error: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::bad_request(format!("The form body is malformed: {}", error.body_text()))
}

/// Reads the parts of a form into `body`, storing file parts.
async fn read_parts(
    app: &ContentApp,
    mut multipart: Multipart,
    body: &mut ParsedBody,
) -> ApiResult<()> {
    let mut text_bytes = 0usize;
    let mut parts = 0usize;
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        parts += 1;
        if parts > MAX_FORM_PARTS {
            return Err(ApiError::field(
                &name,
                format!("A form may carry at most {MAX_FORM_PARTS} fields."),
            ));
        }
        match field.file_name().map(str::to_owned) {
            Some(filename) => {
                if body.files.len() == MAX_FORM_FILES {
                    return Err(ApiError::field(
                        &name,
                        format!("A form may carry at most {MAX_FORM_FILES} files."),
                    ));
                }
                let received = receive_file(app, &mut field).await?;
                let kept = artifacts::keep(&app.blobs, received, &Default::default(), &filename)
                    .await
                    .map_err(ApiError::internal)?;
                body.files.push(FormFile {
                    name,
                    filename,
                    artifact: ArtifactRef {
                        sha256: kept.sha256.clone(),
                        size: kept.size,
                    },
                });
                body.unrecorded.push(kept);
            }
            None => {
                // Read within what is left of the budget: a longer field is refused before the
                // rest of it is read.
                let left = MAX_FORM_TEXT.saturating_sub(text_bytes + name.len());
                let value = match bounded_text(&mut field, left).await {
                    Ok(value) => value,
                    Err(TextError::TooLong) => {
                        return Err(ApiError::detail(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!("The text fields of the form exceed {MAX_FORM_TEXT} bytes."),
                        ));
                    }
                    Err(TextError::Unreadable(message)) => {
                        return Err(ApiError::field(&name, message));
                    }
                };
                text_bytes += name.len() + value.len();
                body.form.push(FormField { name, value });
            }
        }
    }
    Ok(())
}
