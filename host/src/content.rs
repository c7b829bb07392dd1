//! The content app: `/pulp/content/<base_path>/<relative_path>`.
//!
//! The distribution is the longest `base_path` that prefixes the request path; it serves a
//! publication (its own, or the newest complete one of its repository). Stored files are served
//! with `HEAD`, `Range` and `ETag`; files not downloaded yet (`on_demand`, `streamed`) are fetched
//! from the remote on request, verified while they stream to the client, and (for `on_demand`)
//! kept. A path the publication does not have goes to the plugin's `handle` export, which is also
//! served at the plugin's own prefix, `/<rest-names.distribution>/<base_path>/…`.
//!
//! # Layout
//! - this file: distribution matching, listings, stored and on-demand files.
//! - `handle`: plugin routes (auth, form bodies, `handle`, units added by the outcome).
//! - `pull_through`: `fetch-upstream` files, fetched once per process and kept.
//! - `inflight`: one download or plugin call per key at a time, the others waiting for it.
//! - `cache`: distribution matches, published files and served versions kept in memory between
//!   changes.
//! - `answers`: plugin answers the plugin marked cacheable, kept per served version.
//! - `guards`: the distribution's content guard, checked before anything is served.
//! - `admission`: turns for plugin calls and upstream fetches, per client, distribution and
//!   process; 503 with `Retry-After` when none comes in time.
//! - `form`: form text fields read within their limit (also used by the REST API).

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::Bytes;
use futures::StreamExt as _;

use crate::db::BindAll as _;
use crate::domain::additions::AddError;
use crate::domain::artifacts::{self, Expected, RemoteArtifactRow};
use crate::domain::declarations::link;
use crate::domain::distributions::{MAX_BASE_PATH_BYTES, MAX_BASE_PATH_SEGMENTS};
use crate::domain::remotes::Remote;
use crate::error::{ApiError, ApiResult};
use crate::state::{App, AppState};
use crate::tasks::correlation;
use crate::tasks::kinds::TargetRepository;

mod admission;
mod answers;
mod cache;
pub mod form;
mod guards;
mod handle;
mod inflight;
mod mounts;
mod pull_through;
mod tokens;

use admission::{Admission, Requester, Work};
use inflight::Inflight;

/// Prefix of the content app.
pub const CONTENT_ROOT: &str = "/pulp/content/";

/// How long a presigned S3 URL handed to a client stays valid.
const PRESIGNED_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

/// The content app's state: the state every handler shares, plus what only the content app keeps
/// in this process. Reads through to the shared [`App`] (`app.db`, `app.blobs`, ...).
#[derive(Debug)]
pub struct ContentApp {
    app: AppState,
    /// Pull-through downloads in progress in this process, one per artifact.
    pull_through: Inflight,
    /// The content app's path resolutions, kept until the content tables change.
    resolutions: Resolutions,
    /// Turns for plugin calls and upstream fetches, per distribution and per client.
    admission: Admission,
    /// Plugin answers kept until the version they were made for is no longer served.
    answers: answers::AnswerCache,
    /// Plugin calls in progress in this process, one per kept-answer key.
    answer_calls: Inflight,
}

impl std::ops::Deref for ContentApp {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

impl ContentApp {
    /// Adds `units` to and removes `remove` from the repository `matched` serves as one new
    /// version of `plugin`'s units, waking and watching this process's workers (see
    /// [`crate::tasks::kinds::add_units_and_wait`]); records `kept`, the files the request
    /// stored, with it.
    async fn add_units(
        &self,
        (matched, plugin): (&Matched, &str),
        remote_id: Option<&str>,
        units: &[crate::plugins::UnitDeclaration],
        remove: &[(String, String)],
        kept: &[artifacts::Unrecorded],
    ) -> Result<Option<String>, AddError> {
        let (Some(id), Some((repository_plugin, type_name))) =
            (&matched.repository_id, &matched.repository_type)
        else {
            // Recorded on their own, as stored files are.
            artifacts::record_all(&self.db, kept).await?;
            return Err(AddError::Refused(
                "the distribution's repository is gone".into(),
            ));
        };
        let repository = TargetRepository {
            id,
            plugin: repository_plugin,
            type_name,
        };
        crate::tasks::kinds::add_units_and_wait(
            &self.db,
            &self.plugins.rest_names(),
            &self.task_wakeup,
            &self.task_finished,
            repository,
            plugin,
            remote_id,
            units,
            remove,
            kept,
        )
        .await
    }
}

/// Routes of the content app. Requests no other route answers go to [`plugin_prefix`]: plugin
/// prefixes come and go with the installed plugins.
pub fn router<S>(app: &AppState) -> Router<S> {
    let state = Arc::new(ContentApp {
        app: app.clone(),
        pull_through: Inflight::default(),
        resolutions: Resolutions::new(
            &app.db,
            app.config.content_resolution_cache_kb.saturating_mul(1024),
        ),
        admission: Admission::new(&app.config),
        answers: answers::AnswerCache::new(
            app.db.content_changes().clone(),
            app.config.content_answer_cache_kb.saturating_mul(1024),
        ),
        answer_calls: Inflight::default(),
    });
    Router::new()
        .route("/pulp/content/", get(root))
        .route("/pulp/content/{*path}", any(serve))
        .route("/token/", get(tokens::issue))
        .fallback(plugin_prefix)
        // Form bodies stream file parts into storage; other bodies are capped by `handle`.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::map_response(with_security_headers))
        .with_state(state)
}

/// Sets the security headers of every response the content app gives (stored files, on-demand
/// and pull-through relays, plugin answers, listings, errors): the one place that decides them.
async fn with_security_headers(mut response: Response) -> Response {
    security_headers(response.headers_mut());
    response
}

/// What a browser may do with served content. The content app serves what anyone uploaded on the
/// API's origin, so an uploaded `.html` or `.svg` must not run as a page of that origin (its
/// scripts would act with the visitor's credentials).
///
/// `nosniff` stops a browser from promoting a file to a type it renders. `Content-Security-Policy:
/// sandbox` rather than `Content-Disposition: attachment`: both keep a document off the origin,
/// but sandbox still shows the pages people browse (PEP 503 indexes, directory listings, a
/// plugin's HTML), with no scripts and an opaque origin, while attachment would download them.
/// It is set on every response, not only on the types a browser renders as documents: CSP means
/// nothing to an image, a tarball or to pip, curl and npm, and matching no type leaves no type
/// (XML dialects, `+xml` suffixes, a plugin's odd `Content-Type`) to forget. Static values: no
/// allocation per request.
pub(crate) fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
}

/// What this process has resolved request paths to, until the content tables change: the
/// distribution per base path, and the published file per publication and path (only those
/// found).
#[derive(Debug)]
struct Resolutions(cache::ResolutionCache<Arc<Matched>, Arc<PublishedFile>>);

/// A distribution matched by a request path, and the rest of the path below its base path.
type MatchedPath = (Arc<Matched>, String);

impl Resolutions {
    /// Empty, following `app.db`'s content changes, keeping at most `budget` bytes.
    fn new(db: &crate::db::Db, budget: usize) -> Self {
        Resolutions(cache::ResolutionCache::new(
            db.content_changes().clone(),
            budget,
        ))
    }
}

fn text_weight(text: &Option<String>) -> usize {
    text.as_ref().map_or(0, String::len)
}

impl cache::Weigh for Arc<Matched> {
    fn weight(&self) -> usize {
        let matched = &**self;
        std::mem::size_of::<Matched>()
            + matched.plugin.len()
            + matched.name.len()
            + matched.base_path.len()
            + matched.extra.len()
            + [
                &matched.publication_id,
                &matched.repository_id,
                &matched.repository_version_id,
                &matched.remote_id,
                &matched.content_guard,
            ]
            .into_iter()
            .map(text_weight)
            .sum::<usize>()
    }
}

impl cache::Weigh for Arc<PublishedFile> {
    fn weight(&self) -> usize {
        std::mem::size_of::<PublishedFile>()
            + text_weight(&self.content_artifact_id)
            + text_weight(&self.sha256)
    }
}

/// A distribution matched by a request path.
#[derive(Clone, Debug)]
struct Matched {
    plugin: String,
    name: String,
    base_path: String,
    publication_id: Option<String>,
    repository_id: Option<String>,
    repository_version_id: Option<String>,
    remote_id: Option<String>,
    /// The distribution's plugin-specific fields (JSON object).
    extra: String,
    /// The content guard protecting it (`content_guards.id`). Kept with the match: changing a
    /// distribution's guard changes `distributions`, which empties the cache.
    content_guard: Option<String>,
    /// Readable only by users who may view its repository.
    private: bool,
    /// Serves the latest version of its repository (no publication of its own).
    writable: bool,
    /// Its repository's latest version, read with it (so kept as long as the match is: both
    /// go when the content tables change).
    latest_version: Option<i64>,
    /// Its repository's plugin and type, read with it: what the href of the repository (the
    /// lock of a task that changes it) is made of.
    repository_type: Option<(String, String)>,
    /// The content generation it was read at.
    read_at: u64,
    version: Option<i64>,
}

/// A `distributions` row, as far as the content app serves it.
#[derive(Debug, sqlx::FromRow)]
struct DistributionRow {
    plugin: String,
    base_path: String,
    publication_id: Option<String>,
    repository_id: Option<String>,
    name: String,
    remote_id: Option<String>,
    extra: String,
    repository_version_id: Option<String>,
    content_guard: Option<String>,
    private: i64,
    /// The publication served: the distribution's own, else the newest complete one of its
    /// repository version, else of its repository.
    served_publication: Option<String>,
    /// Its repository's latest version.
    latest_version: Option<i64>,
    /// Its repository's plugin and type.
    repository_plugin: Option<String>,
    repository_type: Option<String>,
}

async fn root(State(app): State<Arc<ContentApp>>) -> ApiResult<Response> {
    let base_paths: Vec<String> = sqlx::query_scalar(
        "SELECT base_path FROM distributions WHERE hidden = 0 AND private = 0 ORDER BY base_path",
    )
    .fetch_all(app.db.pool())
    .await?;
    let entries: Vec<String> = base_paths
        .iter()
        .map(|base_path| format!("{base_path}/"))
        .collect();
    Ok(listing(CONTENT_ROOT, &entries))
}

async fn serve(
    State(app): State<Arc<ContentApp>>,
    Path(path): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let Some(found) = find_distribution(&app, &path, None).await? else {
        return Err(ApiError::not_found());
    };
    serve_matched(&app, &found, CONTENT_ROOT, request).await
}

/// `/<rest-names.distribution>/<base_path>/…`: the distributions of the plugin whose distribution
/// REST name is the first segment, served like `/pulp/content/` (plugins that declare no REST
/// names have no prefix of their own). `/<root>/…`: the same for the plugin whose `root` it is,
/// and where no distribution of it matches, the plugin itself ([`handle::root_route`]).
async fn plugin_prefix(
    State(app): State<Arc<ContentApp>>,
    request: Request,
) -> ApiResult<Response> {
    // Decoded like the `{*path}` of `/pulp/content/`, so both routes hand the plugin one path.
    let path = percent_decode(request.uri().path().trim_start_matches('/'))
        .ok_or_else(ApiError::not_found)?;
    let Some((prefix, rest)) = path.split_once('/') else {
        return Err(ApiError::not_found());
    };
    let Some(plugin) = app.plugins.list().into_iter().find(|plugin| {
        plugin.distribution_prefix() == Some(prefix) || plugin.root() == Some(prefix)
    }) else {
        return Err(ApiError::not_found());
    };
    let at_root = plugin.root() == Some(prefix);
    match find_distribution(&app, rest, Some(&plugin.info.name)).await? {
        Some(found) => serve_matched(&app, &found, &format!("/{prefix}/"), request).await,
        None if at_root => {
            let id = correlation::pick(&request);
            let answer = crate::tasks::LOGGING_CID
                .scope(id.clone(), handle::root_route(&app, &plugin, rest, request))
                .await;
            Ok(correlation::echo(answer.into_response(), &id))
        }
        None => Err(ApiError::not_found()),
    }
}

/// `%XX` escapes decoded; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            // Two hex digits: `from_str_radix` alone would take `%+1`.
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            decoded.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// A private distribution's check: a caller who may view its repository (staff may), else 401
/// for an anonymous caller (with the Bearer challenge at a registry's root, which registry
/// clients follow) and 403 for one who may not.
/// `at` is the request's path and the client's address.
async fn private_check(
    app: &ContentApp,
    matched: &Matched,
    headers: &HeaderMap,
    (path, client): (&str, Option<std::net::IpAddr>),
) -> ApiResult<()> {
    let caller = app
        .authenticator
        .authenticate_at(headers, client, &matched.base_path)
        .await?;
    let Some(caller) = caller.filter(|caller| caller.credentials_allow("pull")) else {
        let refused = ApiError::unauthorized();
        let at_root = app.plugins.get(&matched.plugin).is_some_and(|plugin| {
            plugin
                .root()
                .is_some_and(|root| path.starts_with(&format!("/{root}/")))
        });
        return Err(if at_root {
            refused.with_challenge(handle::bearer_challenge(
                &app.origin,
                Some((&matched.base_path, &Method::GET)),
            ))
        } else {
            refused
        });
    };
    if handle::may_view(app, matched, &caller).await? {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// Serves `rest` of a matched distribution reached under `route_prefix` (`/pulp/content/` or a
/// plugin's `/<prefix>/`).
async fn serve_matched(
    app: &Arc<ContentApp>,
    (matched, rest): &MatchedPath,
    route_prefix: &str,
    request: Request,
) -> ApiResult<Response> {
    if let Some(guard) = &matched.content_guard {
        let shown = guards::Shown {
            headers: request.headers(),
            uri: request.uri(),
            client: crate::auth::client_address(request.extensions()),
            base_path: &matched.base_path,
        };
        guards::check(app, guard, shown).await?;
    }
    if matched.private {
        let client = crate::auth::client_address(request.extensions());
        let at = (request.uri().path(), client);
        private_check(app, matched, request.headers(), at).await?;
    }
    let requester = Requester::new(&matched.name, request.extensions());
    let method = request.method();
    let headers = request.headers();
    if (method == Method::GET || method == Method::HEAD)
        && let Some(publication_id) = &matched.publication_id
    {
        if rest.is_empty() || rest.ends_with('/') {
            // A directory with a published `index.html` serves it, as web servers and Pulp's
            // content app do: that is how static indexes (PEP 503 pages) are found.
            let index = format!("{rest}index.html");
            if let Some(response) =
                published_file(app, &requester, publication_id, &index, headers).await?
            {
                return Ok(response);
            }
            if let Some(entries) = directory(app, publication_id, rest).await? {
                return Ok(listing(
                    &format!("{CONTENT_ROOT}{}/{rest}", matched.base_path),
                    &entries,
                ));
            }
        } else if let Some(response) =
            published_file(app, &requester, publication_id, rest, headers).await?
        {
            return Ok(response);
        } else if directory(app, publication_id, &format!("{rest}/"))
            .await?
            .is_some()
        {
            let location = format!("{CONTENT_ROOT}{}/{rest}/", matched.base_path);
            return Ok((
                StatusCode::MOVED_PERMANENTLY,
                [(header::LOCATION, location)],
            )
                .into_response());
        }
    }
    // Only plugin routes need the version, so only they pay for the copy it is written into.
    let mut matched = Matched::clone(matched);
    // Taken before the version is read (the latest version came with the distribution, read at
    // `read_at`): an answer made from an older read is not kept.
    let generation = app.answers.generation().min(matched.read_at);
    resolve_version(app, &mut matched).await?;
    let client = crate::auth::client_address(request.extensions());
    let caller = app
        .authenticator
        .authenticate_at(request.headers(), client, &matched.base_path)
        .await?;
    let base_url = format!("{}{route_prefix}{}/", app.origin, matched.base_path);
    let kept = handle::kept_answer(
        app,
        (&matched, &base_url, rest),
        caller.as_ref(),
        request.method(),
        request.uri(),
        request.headers(),
    )
    .await?;
    // Held until the plugin has answered (and its answer is kept), so that the same request
    // arriving meanwhile waits for that answer instead of calling the plugin too.
    let _leading = match kept {
        handle::Kept::Answer(kept) => return Ok(kept),
        handle::Kept::Lead(leading) => leading,
    };
    let route = handle::Route {
        matched: &matched,
        requester: &requester,
        rest,
        base_url,
        caller,
        generation,
    };
    // A plugin route runs under a correlation id, as a REST request does: the tasks it queues
    // record it, a plugin's failure is logged under it and the client gets it to quote. Stored
    // files and kept answers do without: the id, its scope and its header cost them about a
    // fifth of their speed.
    let id = correlation::pick(&request);
    let answer = crate::tasks::LOGGING_CID
        .scope(id.clone(), handle::plugin_route(app, route, request))
        .await;
    Ok(correlation::echo(answer.into_response(), &id))
}

/// Finds the distribution with the longest base path that prefixes `path` (of `plugin` only, when
/// given), and the rest of the path below it.
async fn find_distribution(
    app: &ContentApp,
    path: &str,
    plugin: Option<&str>,
) -> ApiResult<Option<MatchedPath>> {
    let candidates = base_path_candidates(path);
    if candidates.is_empty() {
        return Ok(None);
    }
    let cache = &app.resolutions.0;
    let matched = match cache.distribution(&candidates) {
        Some(found) => found,
        None => {
            let generation = cache.generation();
            let Some(found) = query_distribution(app, &candidates, generation)
                .await?
                .map(Arc::new)
            else {
                return Ok(None);
            };
            cache.keep_distribution(generation, &found.base_path, found.clone());
            found
        }
    };
    // Base paths do not nest, whatever their plugins: a distribution of another plugin here
    // means that none of `plugin`'s prefixes the path.
    if plugin.is_some_and(|plugin| plugin != matched.plugin) {
        return Ok(None);
    }
    let rest = path[matched.base_path.len()..]
        .trim_start_matches('/')
        .to_owned();
    Ok(Some((matched, rest)))
}

/// The prefixes of `path` that may be a base path, longest first: whole segments, none empty,
/// at most [`MAX_BASE_PATH_SEGMENTS`] of them and none longer than [`MAX_BASE_PATH_BYTES`]. Their
/// number and total length are bounded whatever the path, and they are slices of it, found in one
/// pass.
fn base_path_candidates(path: &str) -> Vec<&str> {
    let mut candidates = Vec::new();
    let mut segment_start = 0;
    let ends = path
        .match_indices('/')
        .map(|(slash, _)| slash)
        .chain(std::iter::once(path.len()));
    for end in ends {
        if end == segment_start
            || end > MAX_BASE_PATH_BYTES
            || candidates.len() == MAX_BASE_PATH_SEGMENTS
        {
            break;
        }
        candidates.push(&path[..end]);
        segment_start = end + 1;
    }
    candidates.reverse();
    candidates
}

/// The longest of `candidates` (longest first, as [`base_path_candidates`] gives them) that
/// `is_base_path` accepts.
fn longest_base_path<'a>(
    candidates: &[&'a str],
    is_base_path: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    candidates
        .iter()
        .copied()
        .find(|candidate| is_base_path(candidate))
}

/// The distribution at the longest of `candidates` (longest first, none empty), with the
/// publication it serves and its repository's latest version and type, read at content
/// generation `read_at`.
async fn query_distribution(
    app: &ContentApp,
    candidates: &[&str],
    read_at: u64,
) -> ApiResult<Option<Matched>> {
    let sql = distribution_sql(candidates.len());
    let mut rows = sqlx::query_as::<_, DistributionRow>(&sql)
        .bind_all(candidates)
        .fetch_all(&mut *app.db.reader().await?)
        .await?;
    let Some(longest) = longest_base_path(candidates, |candidate| {
        rows.iter().any(|row| row.base_path == candidate)
    }) else {
        return Ok(None);
    };
    let Some(row) = rows.drain(..).find(|row| row.base_path == longest) else {
        return Ok(None);
    };
    let matched = Matched {
        plugin: row.plugin,
        name: row.name,
        base_path: row.base_path,
        writable: row.publication_id.is_none() && row.repository_id.is_some(),
        publication_id: row.served_publication,
        repository_id: row.repository_id,
        remote_id: row.remote_id,
        extra: row.extra,
        repository_version_id: row.repository_version_id,
        content_guard: row.content_guard,
        private: row.private != 0,
        latest_version: row.latest_version,
        repository_type: row.repository_plugin.zip(row.repository_type),
        read_at,
        version: None,
    };
    Ok(Some(matched))
}

/// The distribution lookup of [`query_distribution`] for `candidates` base paths (`$1`...).
///
/// One query with at most [`MAX_BASE_PATH_SEGMENTS`] parameters; base paths do not nest, so it
/// finds at most one row, but the longest would win if they did. The publication served and the
/// repository's latest version and type come with it (one round trip to the database, not four).
/// Each lookup finds its rows by index whatever the number of publications (see
/// `tests::a_distribution_lookup_walks_no_table_whole`): it runs after every change to content.
fn distribution_sql(candidates: usize) -> String {
    let newest = |column: &str| {
        format!(
            "(SELECT p.id FROM publications p WHERE p.{column} = d.{column} AND p.complete = 1
              ORDER BY p.created DESC LIMIT 1)"
        )
    };
    format!(
        "SELECT d.plugin, d.base_path, d.publication_id, d.repository_id, d.name, d.remote_id, d.extra,
           d.repository_version_id, d.content_guard, d.private,
           COALESCE(d.publication_id, {}, {}) AS served_publication,
           r.latest_version, r.plugin AS repository_plugin, r.type_name AS repository_type
         FROM distributions d LEFT JOIN repositories r ON r.id = d.repository_id
         WHERE d.base_path IN ({})",
        newest("repository_version_id"),
        newest("repository_id"),
        crate::db::placeholders(1, candidates),
    )
}

/// Sets the repository version a plugin route sees: the latest version of a writable
/// distribution's repository, else the version of the publication served. Only plugin routes need
/// it, so a stored file is served without this query (each query is a round trip to a database
/// thread).
async fn resolve_version(app: &ContentApp, matched: &mut Matched) -> ApiResult<()> {
    const LATEST: &str = "SELECT id, latest_version FROM repositories WHERE id = $1";
    const OF_PUBLICATION: &str = "SELECT p.repository_id, v.number FROM publications p
         JOIN repository_versions v ON v.id = p.repository_version_id WHERE p.id = $1";
    const OF_VERSION: &str = "SELECT repository_id, number FROM repository_versions WHERE id = $1";
    // The latest version, when that is what is served, came with the distribution.
    let serves_latest = matched.writable
        || (matched.publication_id.is_none() && matched.repository_version_id.is_none());
    if serves_latest && let Some(latest) = matched.latest_version {
        matched.version = Some(latest);
        return Ok(());
    }
    let lookup = match (
        &matched.publication_id,
        &matched.repository_version_id,
        &matched.repository_id,
    ) {
        (_, _, Some(repository_id)) if matched.writable => Some((LATEST, repository_id)),
        (Some(publication_id), _, _) => Some((OF_PUBLICATION, publication_id)),
        (None, Some(version_id), _) => Some((OF_VERSION, version_id)),
        (None, None, Some(repository_id)) => Some((LATEST, repository_id)),
        (None, None, None) => None,
    };
    let Some((sql, id)) = lookup else {
        return Ok(());
    };
    // Kept per distribution and served object until the content tables (repositories included:
    // their latest version) change, so a cached plugin answer costs no query at all.
    let cache = &app.resolutions.0;
    let key = format!("{}:{}{id}", matched.base_path.len(), matched.base_path);
    let (repository_id, version) = match cache.version(&key) {
        Some(served) => served,
        None => {
            let generation = cache.generation();
            let served = sqlx::query_as::<_, (String, i64)>(sql)
                .bind(id)
                .fetch_one(app.db.pool())
                .await?;
            cache.keep_version(generation, &key, served.clone());
            served
        }
    };
    matched.repository_id = Some(repository_id);
    matched.version = Some(version);
    Ok(())
}

/// The entries directly under `prefix` in a publication (`name` or `name/`), if any exist.
async fn directory(
    app: &ContentApp,
    publication_id: &str,
    prefix: &str,
) -> ApiResult<Option<Vec<String>>> {
    let paths: Vec<String> = sqlx::query_scalar(
        "SELECT relative_path FROM published_files WHERE publication_id = $1 AND SUBSTR(relative_path, 1, CAST($2 AS INTEGER)) = $3
         ORDER BY relative_path",
    )
    .bind(publication_id)
    .bind(prefix.chars().count() as i64)
    .bind(prefix)
    .fetch_all(app.db.pool())
    .await?;
    if paths.is_empty() && !prefix.is_empty() {
        return Ok(None);
    }
    let mut entries: Vec<String> = Vec::new();
    for path in paths {
        let rest = &path[prefix.len()..];
        let entry = match rest.find('/') {
            Some(slash) => &rest[..=slash],
            None => rest,
        };
        if entries.last().map(String::as_str) != Some(entry) {
            entries.push(entry.to_owned());
        }
    }
    Ok(Some(entries))
}

fn listing(title: &str, entries: &[String]) -> Response {
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><title>Index of {0}</title></head><body>\n<h1>Index of {0}</h1>\n<ul>\n",
        escape(title)
    );
    for entry in entries {
        let escaped = escape(entry);
        html.push_str(&format!("<li><a href=\"{escaped}\">{escaped}</a></li>\n"));
    }
    html.push_str("</ul></body></html>\n");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A path of a publication: a stored artifact, or a unit's file still at its remote.
#[derive(Debug, sqlx::FromRow)]
struct PublishedFile {
    content_artifact_id: Option<String>,
    sha256: Option<String>,
    size: Option<i64>,
}

async fn published_file(
    app: &Arc<ContentApp>,
    requester: &Requester,
    publication_id: &str,
    path: &str,
    headers: &HeaderMap,
) -> ApiResult<Option<Response>> {
    let cache = &app.resolutions.0;
    let file = match cache.file(publication_id, path) {
        Some(file) => file,
        None => {
            let generation = cache.generation();
            let Some(file) = query_published_file(app, publication_id, path).await? else {
                return Ok(None);
            };
            let file = Arc::new(file);
            cache.keep_file(generation, publication_id, path, file.clone());
            file
        }
    };
    match (&file.sha256, file.size, &file.content_artifact_id) {
        (Some(sha256), Some(size), _) => {
            Ok(Some(stored(app, sha256, size as u64, path, headers).await?))
        }
        (_, _, Some(content_artifact_id)) => Ok(Some(
            from_remote(app, requester, content_artifact_id, path).await?,
        )),
        _ => Err(ApiError::internal(format!(
            "published file {path} has neither artifact nor content"
        ))),
    }
}

async fn query_published_file(
    app: &ContentApp,
    publication_id: &str,
    path: &str,
) -> ApiResult<Option<PublishedFile>> {
    let file = sqlx::query_as::<_, PublishedFile>(
        "SELECT pf.content_artifact_id, COALESCE(a1.sha256, a2.sha256) AS sha256, COALESCE(a1.size, a2.size) AS size
         FROM published_files pf
         LEFT JOIN artifacts a1 ON a1.id = pf.artifact_id
         LEFT JOIN content_artifacts ca ON ca.id = pf.content_artifact_id
         LEFT JOIN artifacts a2 ON a2.id = ca.artifact_id
         WHERE pf.publication_id = $1 AND pf.relative_path = $2",
    )
    .bind(publication_id)
    .bind(path)
    .fetch_optional(app.db.pool())
    .await?;
    Ok(file)
}

/// Serves a stored artifact, honouring `If-None-Match` and one `Range`.
pub async fn stored(
    app: &ContentApp,
    sha256: &str,
    size: u64,
    path: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let etag = format!("\"{sha256}\"");
    let content_type = mime_guess::from_path(path)
        .first_or_octet_stream()
        .to_string();
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        })
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    if app.config.s3_presigned_redirects
        && let Some(url) = app
            .blobs
            .presigned_url(sha256, PRESIGNED_URL_LIFETIME)
            .await
    {
        return Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response());
    }
    let range = match headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
    {
        Some(value) => match parse_range(value, size) {
            Some(range) => Some(range),
            None => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                )
                    .into_response());
            }
        },
        None => None,
    };
    let body = match app
        .blobs
        .read_small(sha256, size, range.clone().unwrap_or(0..size))
        .await
    {
        Some(read) => Body::from(read.with_context(|| format!("reading artifact {sha256}"))?),
        None => Body::from_stream(app.blobs.read(sha256, range.clone()).await?),
    };
    let mut response = Response::new(body);
    let response_headers = response.headers_mut();
    response_headers.insert(header::ETAG, header_value(&etag));
    response_headers.insert(header::CONTENT_TYPE, header_value(&content_type));
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    match range {
        Some(range) => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_LENGTH,
                HeaderValue::from(range.end - range.start),
            );
            headers.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {}-{}/{size}", range.start, range.end - 1)),
            );
        }
        None => {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        }
    }
    Ok(response)
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// Parses one `bytes=` range against `size`: `a-b`, `a-` or `-n`. None when unsatisfiable.
fn parse_range(value: &str, size: u64) -> Option<std::ops::Range<u64>> {
    let spec = value.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let range = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            size.saturating_sub(n)..size
        }
        (start, "") => start.parse().ok()?..size,
        (start, end) => start.parse().ok()?..end.parse::<u64>().ok()?.saturating_add(1).min(size),
    };
    (range.start < range.end && range.start < size).then_some(range)
}

/// Fetches a file that is not stored yet from its remote, streams it to the client while
/// verifying it, and keeps it unless the remote's policy is `streamed`. The last chunk is held
/// back until the digest is checked (and the file kept), so a client never receives a complete
/// body with wrong bytes.
async fn from_remote(
    app: &Arc<ContentApp>,
    requester: &Requester,
    content_artifact_id: &str,
    path: &str,
) -> ApiResult<Response> {
    let Some(row) = sqlx::query_as::<_, RemoteArtifactRow>(
        "SELECT url, size, sha256, sha512, remote_id FROM remote_artifacts WHERE content_artifact_id = $1 LIMIT 1",
    )
    .bind(content_artifact_id)
    .fetch_optional(app.db.pool())
    .await?
    else {
        return Err(ApiError::not_found());
    };
    let url = row.url;
    let expected = Expected {
        size: row.size.map(|s| s as u64),
        sha256: row.sha256,
        sha512: row.sha512,
    };
    let remote = Remote::load(app.db.pool(), &app.secrets, &row.remote_id).await?;
    // Held until the relay below ends: the download goes on after the response has started.
    let turn = app.admission.turn(Work::UpstreamFetch, requester).await?;
    let client = app.remote_clients.client(&remote)?;
    let upstream = client.get(&url).await.map_err(|error| {
        tracing::warn!(%url, %error, "on-demand fetch failed");
        ApiError::detail(
            StatusCode::BAD_GATEWAY,
            format!("The upstream of {path} could not be reached."),
        )
    })?;
    if !upstream.status().is_success() {
        return Err(ApiError::detail(
            StatusCode::BAD_GATEWAY,
            format!("The upstream answered {} for {path}.", upstream.status()),
        ));
    }
    // Kept unless the remote is `streamed`, as in Pulp: an `immediate` remote's file lands here
    // after reclaim_space dropped its bytes, and is stored again on first request.
    let keep = remote.row.policy != "streamed";
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let task_app = app.clone();
    let task_path = path.to_owned();
    let content_artifact_id = content_artifact_id.to_owned();
    let task_expected = expected.clone();
    tokio::spawn(async move {
        let outcome = relay(
            &task_app,
            upstream,
            &sender,
            &task_expected,
            &task_path,
            keep,
            &content_artifact_id,
        )
        .await;
        drop(turn);
        if let Err(message) = outcome {
            tracing::warn!(path = %task_path, %message, "on-demand download failed");
            let _ = sender.send(Err(std::io::Error::other(message))).await;
        }
    });
    let stream = tokio_stream_from(receiver);
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header_value(mime_guess::from_path(path).first_or_octet_stream().as_ref()),
    );
    if let Some(size) = expected.size {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    if let Some(sha256) = &expected.sha256 {
        headers.insert(header::ETAG, header_value(&format!("\"{sha256}\"")));
    }
    Ok(response)
}

async fn relay(
    app: &ContentApp,
    upstream: reqwest::Response,
    sender: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    expected: &Expected,
    path: &str,
    keep: bool,
    content_artifact_id: &str,
) -> Result<(), String> {
    let mut staged = artifacts::stage_for(&app.blobs, expected)
        .await
        .map_err(|error| error.to_string())?;
    let mut body = upstream.bytes_stream();
    let mut held: Option<Bytes> = None;
    let mut client_gone = false;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| {
            format!(
                "upstream transfer of {path} failed: {}",
                crate::plugins::upstream::describe(&error)
            )
        })?;
        staged
            .write(&chunk)
            .await
            .map_err(|error| error.to_string())?;
        if let Some(size) = expected.size
            && staged.size() > size
        {
            return Err(format!(
                "size mismatch for {path}: expected {size} bytes, got more"
            ));
        }
        if let Some(previous) = held.replace(chunk)
            && !client_gone
        {
            client_gone = sender.send(Ok(previous)).await.is_err();
            // A streamed file nobody reads any more is not worth finishing.
            if client_gone && !keep {
                return Ok(());
            }
        }
    }
    let received = staged.finish().await.map_err(|error| error.to_string())?;
    artifacts::verify(&received, expected, path).map_err(|error| error.to_string())?;
    // Kept before the last byte goes out: a client that has the whole file can count on the
    // next request being served from storage.
    if keep {
        let artifact = artifacts::store(&app.db, &app.blobs, received, expected, path)
            .await
            .map_err(|error| error.to_string())?;
        link(&app.db, content_artifact_id, &artifact.id)
            .await
            .map_err(|error| error.to_string())?;
    }
    if let Some(last) = held
        && !client_gone
    {
        let _ = sender.send(Ok(last)).await;
    }
    Ok(())
}

fn tokio_stream_from(
    mut receiver: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    futures::stream::poll_fn(move |context| receiver.poll_recv(context))
}

/// Serves a unit's file a plugin pointed at, after checking it is in the distribution's version.
/// Serves the content artifact `id` of the version `matched` serves: stored, or fetched from the
/// remote.
async fn served_content_artifact(
    app: &Arc<ContentApp>,
    matched: &Matched,
    requester: &Requester,
    id: &str,
    path: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    match content_artifact_file(app, matched, id).await? {
        (Some(sha256), Some(size)) => stored(app, &sha256, size as u64, path, headers).await,
        _ => from_remote(app, requester, id, path).await,
    }
}

/// The stored artifact (sha256, size) behind the content artifact `id` of the version `matched`
/// serves; `(None, None)` for a file not downloaded yet, 404 when the version has no such file.
async fn content_artifact_file(
    app: &ContentApp,
    matched: &Matched,
    id: &str,
) -> ApiResult<(Option<String>, Option<i64>)> {
    let (Some(repository_id), Some(version)) = (&matched.repository_id, matched.version) else {
        return Err(ApiError::not_found());
    };
    sqlx::query_as::<_, (Option<String>, Option<i64>)>(&format!(
        "SELECT a.sha256, a.size FROM content_artifacts ca
         JOIN repository_content rc ON rc.content_id = ca.content_id
         LEFT JOIN artifacts a ON a.id = ca.artifact_id
         WHERE {} AND ca.id = $3",
        crate::db::IN_VERSION
    ))
    .bind(repository_id)
    .bind(version)
    .bind(id)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(ApiError::not_found)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{
        MAX_BASE_PATH_BYTES, MAX_BASE_PATH_SEGMENTS, base_path_candidates, distribution_sql,
        longest_base_path, parse_range, percent_decode,
    };
    use crate::db::Batch;
    use crate::db::tests::plans_on_a_new_database;

    /// A distribution is looked up again after every change to content, so the lookup costs the
    /// same beside ten publications or a hundred thousand: every table is searched by index.
    /// (Without an index on the version a publication is of, each lookup walked them all: 337 µs
    /// beside 10,000 publications, against 8 µs.)
    #[tokio::test]
    async fn a_distribution_lookup_walks_no_table_whole() {
        let mut lookup = Batch::new();
        lookup.push(
            distribution_sql(2),
            vec!["team/python".into(), "team".into()],
        );
        let plans = plans_on_a_new_database(lookup).await;
        let plan = &plans[0];
        assert!(
            plan.iter().all(|step| !step.starts_with("SCAN")),
            "no table is walked whole: {plan:#?}"
        );
        assert_eq!(
            plan.iter()
                .filter(|step| step.starts_with("SEARCH p USING"))
                .count(),
            2,
            "both publications served (of a version, of a repository) are found by index: {plan:#?}"
        );
    }

    /// Paths made of few distinct segments, so generated base paths and request paths share
    /// prefixes often; empty segments and long ones included.
    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec(prop_oneof!["a", "b", "", "%2F", "é", "[a-z]{1,300}"], 0..40)
            .prop_map(|segments| segments.join("/"))
    }

    proptest! {
        #[test]
        fn candidates_are_bounded_whole_segment_prefixes(path in any::<String>()) {
            let candidates = base_path_candidates(&path);
            prop_assert!(candidates.len() <= MAX_BASE_PATH_SEGMENTS);
            let total: usize = candidates.iter().map(|candidate| candidate.len()).sum();
            prop_assert!(total <= MAX_BASE_PATH_SEGMENTS * MAX_BASE_PATH_BYTES);
            for pair in candidates.windows(2) {
                prop_assert!(pair[0].len() > pair[1].len(), "longest first");
            }
            for candidate in &candidates {
                prop_assert!(path.starts_with(candidate));
                let after = &path[candidate.len()..];
                prop_assert!(after.is_empty() || after.starts_with('/'));
                prop_assert!(!candidate.split('/').any(str::is_empty));
            }
        }

        #[test]
        fn the_longest_base_path_that_prefixes_the_path_wins(
            path in path(),
            base_paths in prop::collection::vec(path(), 0..8),
        ) {
            let candidates = base_path_candidates(&path);
            let found = longest_base_path(&candidates, |candidate| {
                base_paths.iter().any(|base_path| base_path == candidate)
            });
            // Every base path a distribution may have (short enough, no empty segment) that is a
            // whole-segment prefix of the path.
            let eligible = base_paths.iter().filter(|base_path| {
                !base_path.is_empty()
                    && base_path.len() <= MAX_BASE_PATH_BYTES
                    && base_path.split('/').count() <= MAX_BASE_PATH_SEGMENTS
                    && !base_path.split('/').any(str::is_empty)
                    && path.starts_with(base_path.as_str())
                    && (path.len() == base_path.len()
                        || path.as_bytes()[base_path.len()] == b'/')
            });
            // The resolver looks only at the first segments of a path: those within the limits.
            let reachable = eligible
                .filter(|base_path| {
                    !path[..base_path.len()].split('/').any(str::is_empty)
                })
                .max_by_key(|base_path| base_path.len());
            prop_assert_eq!(found, reachable.map(String::as_str));
        }

        #[test]
        fn percent_decoding_never_panics_and_inverts_encoding(
            text in any::<String>(),
            raw in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let _ = percent_decode(&text);
            let encoded: String = raw.iter().map(|byte| format!("%{byte:02X}")).collect();
            prop_assert_eq!(
                percent_decode(&encoded),
                String::from_utf8(raw).ok()
            );
        }
    }

    #[test]
    fn a_deep_long_path_yields_few_short_candidates() {
        let path = "a/".repeat(32_000);
        let candidates = base_path_candidates(&path);
        assert_eq!(candidates.len(), MAX_BASE_PATH_SEGMENTS);
        assert_eq!(candidates.last(), Some(&"a"));
        assert_eq!(
            base_path_candidates("x".repeat(300).as_str()),
            Vec::<&str>::new()
        );
        assert_eq!(base_path_candidates("repo//file"), vec!["repo"]);
        assert_eq!(base_path_candidates(""), Vec::<&str>::new());
    }

    #[test]
    fn plugin_prefix_paths_are_decoded() {
        assert_eq!(
            percent_decode("pypi/base/simple/pkg-1.0%2Blocal.tar.gz").as_deref(),
            Some("pypi/base/simple/pkg-1.0+local.tar.gz")
        );
        assert_eq!(percent_decode("a%2").as_deref(), None);
        assert_eq!(percent_decode("a%zz").as_deref(), None);
        assert_eq!(percent_decode("a%+1").as_deref(), None);
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some(0..100));
        assert_eq!(parse_range("bytes=900-", 1000), Some(900..1000));
        assert_eq!(parse_range("bytes=-100", 1000), Some(900..1000));
        assert_eq!(parse_range("bytes=990-2000", 1000), Some(990..1000));
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("bytes=5-1", 1000), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
    }
}
