//! Replication (Pulp's `upstream-pulps/<id>/replicate/`): the distributions of another Granary,
//! or of a Pulp, mirrored into local remotes, repositories and distributions of the same names.
//!
//! In Pulp's three steps, in one task group: [`plan`] reads the upstream's distributions (those
//! of the plugins that know how to replicate, [`replica`]), creates or updates a remote and
//! a repository for each, creates the distributions that are new (serving nothing yet) and
//! deletes what the upstream no longer has (as the upstream's `policy` allows); the task layer
//! then queues a mirror sync per repository and [`finalize`], which, only when every sync
//! completed, points each distribution at its repository's new version, all in one transaction.
//! A failed replication leaves every distribution serving what it served before.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::hrefs::{self, RestNames};
use super::remotes::{Remote, RemoteRow};
use super::{Backends, distributions, objects};
use crate::db::{new_id, now};
use crate::progress::TaskHandle;

/// The label that marks what a replication created (Pulp's), valued with the upstream's id.
pub const LABEL: &str = "UpstreamPulp";

/// The plugins that know how to replicate (see [`replica`]), as Pulp's replicators do for
/// pulp_file and pulp_python.
pub const REPLICATED_PLUGINS: [&str; 2] = ["file", "python"];

/// How many upstream distributions are read per page.
const PAGE: usize = 100;
/// The most upstream distributions one replication reads (an upstream that pages forever is
/// stopped here).
const MAX_DISTRIBUTIONS: usize = 100_000;
/// The largest page of the upstream's API read.
const PAGE_LIMIT: usize = 32 << 20;

/// `/pulp/api/v3/upstream-pulps/<id>/`
pub fn href(id: &str) -> String {
    format!("{}upstream-pulps/{id}/", hrefs::API_ROOT)
}

/// A row of `upstream_pulps`, secrets sealed.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UpstreamRow {
    pub id: String,
    pub name: String,
    pub base_url: String,
    pub api_root: String,
    pub domain: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ca_cert: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub tls_validation: i64,
    pub download_concurrency: Option<i64>,
    pub max_retries: Option<i64>,
    pub total_timeout_ms: Option<i64>,
    pub connect_timeout_ms: Option<i64>,
    pub sock_connect_timeout_ms: Option<i64>,
    pub sock_read_timeout_ms: Option<i64>,
    pub q_select: Option<String>,
    pub policy: String,
    pub allowed_origins: String,
    pub last_replication: Option<String>,
    pub created: String,
    pub updated: String,
}

/// What a replication planned: the syncs the task layer queues, and the distributions
/// [`finalize`] points at their repositories' new versions.
#[derive(Debug, Serialize, Deserialize)]
pub struct Plan {
    /// `(repository id, remote id, repository href, remote href)` of each sync.
    pub syncs: Vec<(String, String, String, String)>,
    /// `(distribution id, repository id)` pairs.
    pub pairs: Vec<(String, String)>,
}

/// A distribution of the upstream, as its API shows it.
#[derive(Debug, Deserialize)]
struct UpstreamDistribution {
    name: String,
    base_path: String,
    base_url: Option<String>,
    #[serde(default)]
    pulp_labels: serde_json::Map<String, Value>,
    repository: Option<String>,
    publication: Option<String>,
    repository_version: Option<String>,
    /// Since when what it serves has not changed (`null`: no promise; older servers omit it).
    #[serde(default)]
    no_content_change_since: Option<String>,
}

/// Whether the last replication of `upstream` already brought `distribution`'s content, so its
/// sync can be skipped (Pulp's `requires_syncing`, reversed): the upstream promises nothing
/// changed since before that replication started, and the upstream's own settings have not
/// changed since either. A local repository that has no version yet is synced regardless.
fn unchanged_since_last_replication(
    upstream: &UpstreamRow,
    distribution: &UpstreamDistribution,
    local_versions: i64,
) -> bool {
    let time = |text: &str| chrono::DateTime::parse_from_rfc3339(text).ok();
    let (Some(replicated), Some(unchanged_since), Some(configured)) = (
        upstream.last_replication.as_deref().and_then(time),
        distribution
            .no_content_change_since
            .as_deref()
            .and_then(time),
        time(&upstream.updated),
    ) else {
        return false;
    };
    local_versions > 0 && replicated >= configured && replicated > unchanged_since
}

/// The upstream's API as one of its remotes would reach it: its TLS settings and credentials,
/// sent to its own origin only.
fn client_of(
    backends: &Backends,
    upstream: &UpstreamRow,
) -> anyhow::Result<crate::plugins::upstream::UpstreamClient> {
    let open = |sealed: &Option<String>| -> anyhow::Result<Option<String>> {
        sealed
            .as_deref()
            .map(|sealed| backends.secrets.open(sealed).map_err(anyhow::Error::from))
            .transpose()
    };
    let remote = Remote {
        row: RemoteRow {
            id: upstream.id.clone(),
            plugin: String::new(),
            type_name: String::new(),
            name: upstream.name.clone(),
            url: upstream.base_url.clone(),
            policy: "immediate".into(),
            download_concurrency: upstream.download_concurrency,
            tls_validation: upstream.tls_validation,
            username: upstream.username.clone(),
            password: open(&upstream.password)?,
            headers: "[]".into(),
            total_timeout_ms: upstream.total_timeout_ms,
            max_retries: upstream.max_retries,
            labels: "{}".into(),
            created: upstream.created.clone(),
            updated: upstream.updated.clone(),
            ca_cert: upstream.ca_cert.clone(),
            client_cert: upstream.client_cert.clone(),
            client_key: open(&upstream.client_key)?,
            proxy_url: None,
            proxy_username: None,
            proxy_password: None,
            rate_limit: None,
            connect_timeout_ms: upstream.connect_timeout_ms,
            sock_connect_timeout_ms: upstream.sock_connect_timeout_ms,
            sock_read_timeout_ms: upstream.sock_read_timeout_ms,
            extra: "{}".into(),
            allowed_origins: "[]".into(),
        },
    };
    backends.remote_clients.client(&remote)
}

/// GETs `url` from the upstream and reads its JSON answer (at most [`PAGE_LIMIT`] bytes).
async fn get_json(
    client: &crate::plugins::upstream::UpstreamClient,
    url: &str,
) -> anyhow::Result<Value> {
    let response = client
        .send_once(reqwest::Method::GET, url, &[])
        .await
        .map_err(|error| {
            anyhow::anyhow!("the upstream Pulp at {url} cannot be reached: {error}")
        })?;
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!("the upstream Pulp answered {url} with HTTP {status}");
    }
    let body = crate::plugins::upstream::read_bounded(response, PAGE_LIMIT)
        .await
        .context("reading the upstream's answer")?
        .with_context(|| {
            format!("the upstream's answer to {url} is larger than {PAGE_LIMIT} bytes")
        })?;
    serde_json::from_slice(&body).with_context(|| format!("the upstream's answer to {url}"))
}

/// The URL of the upstream's `path` (an href such as `/pulp/api/v3/…`).
fn upstream_url(upstream: &UpstreamRow, path: &str) -> String {
    format!("{}{path}", upstream.base_url.trim_end_matches('/'))
}

/// The upstream's API path `path` below its API root and domain (`api/v3/status/`).
fn api_url(upstream: &UpstreamRow, path: &str) -> String {
    let root = format!("/{}/", upstream.api_root.trim_matches('/'));
    let domain = upstream
        .domain
        .as_deref()
        .map(|domain| format!("{domain}/"))
        .unwrap_or_default();
    upstream_url(upstream, &format!("{root}{domain}api/v3/{path}"))
}

/// Which of `plugins` the upstream has, by the components its `status/` lists (as Pulp's
/// replicator asks `has_plugin` of the upstream before it reads that plugin's distributions: a
/// Pulp without pulp_python has no `distributions/python/pypi/`).
fn plugins_upstream(status: &Value, plugins: &BTreeSet<String>) -> BTreeSet<String> {
    let components: BTreeSet<&str> = status["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|version| version["component"].as_str())
        .collect();
    plugins
        .iter()
        .filter(|plugin| components.contains(plugin.as_str()))
        .cloned()
        .collect()
}

/// Every distribution of the upstream's list `list` (`distributions/file/file/`) its `q` filter
/// selects (all of them without one). Each plugin's own list, as Pulp's replicators read them:
/// its `base_url` is where that plugin's clients go (pulp_python's is the `/pypi/` index, the
/// generic list's the content app).
async fn upstream_distributions(
    client: &crate::plugins::upstream::UpstreamClient,
    upstream: &UpstreamRow,
    list: &str,
    q: Option<&str>,
) -> anyhow::Result<Vec<UpstreamDistribution>> {
    let mut distributions = Vec::new();
    let mut offset = 0;
    loop {
        let mut url =
            url::Url::parse(&api_url(upstream, list)).context("the upstream's base_url")?;
        url.query_pairs_mut()
            .append_pair("limit", &PAGE.to_string())
            .append_pair("offset", &offset.to_string());
        if let Some(q) = q {
            url.query_pairs_mut().append_pair("q", q);
        }
        let page = get_json(client, url.as_str()).await?;
        let results = page["results"]
            .as_array()
            .context("the upstream's distribution list has no results")?;
        for result in results {
            distributions.push(
                serde_json::from_value(result.clone())
                    .context("an upstream distribution is unreadable")?,
            );
        }
        offset += results.len();
        if results.is_empty() || page["next"].is_null() {
            return Ok(distributions);
        }
        if distributions.len() > MAX_DISTRIBUTIONS {
            anyhow::bail!("the upstream lists more than {MAX_DISTRIBUTIONS} distributions");
        }
    }
}

/// How one upstream distribution is replicated.
struct Replica {
    /// Where the local remote syncs from.
    url: String,
    /// The remote's plugin fields.
    remote_extra: &'static str,
    /// Whether the local repository publishes each version it gets: a file distribution of a
    /// repository version serves that version's publication.
    autopublish: bool,
}

/// How an upstream distribution of `plugin` is replicated, as Pulp's replicators do it
/// (`None`: the plugin does not replicate, or the distribution serves nothing): pulp_file's
/// remote reads the distribution's `PULP_MANIFEST` (the manifest its repository or publication
/// names); pulp_python's reads the distribution's index, prereleases included.
async fn replica(
    client: &crate::plugins::upstream::UpstreamClient,
    upstream: &UpstreamRow,
    plugin: &str,
    distribution: &UpstreamDistribution,
) -> anyhow::Result<Option<Replica>> {
    let Some(base_url) = &distribution.base_url else {
        return Ok(None);
    };
    // A relative base URL is the upstream's own origin's (as Pulp's replicator joins it).
    let base_url = if base_url.starts_with('/') {
        upstream_url(upstream, base_url)
    } else {
        base_url.clone()
    };
    let serves = distribution.repository.is_some()
        || distribution.publication.is_some()
        || distribution.repository_version.is_some();
    if !serves {
        return Ok(None);
    }
    match plugin {
        "file" => {
            let source = distribution
                .repository
                .clone()
                .or_else(|| distribution.publication.clone())
                .or_else(|| {
                    distribution
                        .repository_version
                        .as_deref()
                        .and_then(|version| version.rsplit_once("versions/"))
                        .map(|(repository, _)| repository.to_owned())
                });
            let manifest = match source {
                Some(href) => get_json(client, &upstream_url(upstream, &href)).await?["manifest"]
                    .as_str()
                    .map(str::to_owned),
                None => None,
            };
            let manifest = manifest.unwrap_or_else(|| "PULP_MANIFEST".into());
            Ok(Some(Replica {
                url: format!("{base_url}{manifest}"),
                remote_extra: "{}",
                autopublish: true,
            }))
        }
        "python" => Ok(Some(Replica {
            url: base_url,
            remote_extra: r#"{"prereleases": true}"#,
            autopublish: false,
        })),
        _ => Ok(None),
    }
}

/// A local object a replication may change: it has the name, and under the `labeled` policy it
/// must carry this upstream's label.
fn managed(policy: &str, labels: &str, upstream_id: &str) -> bool {
    policy != "labeled"
        || serde_json::from_str::<serde_json::Map<String, Value>>(labels)
            .ok()
            .and_then(|labels| labels.get(LABEL).cloned())
            == Some(Value::String(upstream_id.to_owned()))
}

/// Labels as stored, with this upstream's mark added.
fn marked(labels: &serde_json::Map<String, Value>, upstream_id: &str) -> String {
    let mut labels = labels.clone();
    labels.insert(LABEL.into(), upstream_id.into());
    Value::Object(labels).to_string()
}

/// Reads the upstream and brings the local remotes, repositories and distributions in line;
/// answers the syncs to run and the distributions to point at their new versions.
pub async fn plan(
    backends: &Backends,
    task: &Arc<TaskHandle>,
    upstream_id: &str,
    q_select: Option<&str>,
) -> anyhow::Result<Plan> {
    let db = &backends.db;
    let upstream = sqlx::query_as::<_, UpstreamRow>("SELECT * FROM upstream_pulps WHERE id = $1")
        .bind(upstream_id)
        .fetch_optional(db.pool())
        .await?
        .context("the upstream Pulp no longer exists")?;
    let overridden = q_select.is_some();
    // Sent as the upstream's `q` filter, as Pulp's replicator sends it (checked when it was
    // given; the upstream checks it again).
    let selection = q_select
        .or(upstream.q_select.as_deref())
        .map(str::trim)
        .filter(|q| !q.is_empty());
    let client = client_of(backends, &upstream)?;
    let names = backends.plugins.rest_names();
    let mut plan = Plan {
        syncs: Vec::new(),
        pairs: Vec::new(),
    };
    let replicated_plugins: BTreeSet<String> = REPLICATED_PLUGINS
        .iter()
        .filter(|plugin| names.plugin(plugin).is_some())
        .map(|plugin| (*plugin).to_owned())
        .collect();
    // Only the plugins both sides have are replicated, and only theirs removed.
    let status = get_json(&client, &api_url(&upstream, "status/")).await?;
    let replicated_plugins = plugins_upstream(&status, &replicated_plugins);
    let mut listed = Vec::new();
    for plugin in &replicated_plugins {
        let Some(named) = names.plugin(plugin) else {
            continue;
        };
        let list = format!("distributions/{plugin}/{}/", named.distribution);
        for distribution in upstream_distributions(&client, &upstream, &list, selection).await? {
            listed.push((plugin.clone(), distribution));
        }
    }
    let mut kept = BTreeSet::new();
    let mut unchanged = 0;
    let total = listed.len() as u64;
    for (done, (plugin, distribution)) in listed.iter().enumerate() {
        task.report(
            "replicate.distributions",
            "Replicating distributions",
            done as u64,
            Some(total),
        );
        // What the upstream says is checked as a request would be: a distribution this server
        // could not have is skipped, and said so.
        if let Err(why) = acceptable(db, distribution).await? {
            tracing::warn!(distribution = %distribution.name, %why, "upstream distribution skipped");
            task.report(
                &format!("replicate.skipped.{}", distribution.name),
                &format!("Skipped '{}': {why}", distribution.name),
                1,
                Some(1),
            );
            continue;
        }
        let Some(replica) = replica(&client, &upstream, plugin, distribution).await? else {
            continue;
        };
        let type_name = names
            .plugin(plugin)
            .map(|named| named.type_name.clone())
            .context("a plugin that replicates has REST names")?;
        let Some(remote_id) = ensure_remote(
            backends,
            &upstream,
            (plugin, &type_name),
            distribution,
            &replica,
        )
        .await?
        else {
            continue;
        };
        let Some(repository_id) = ensure_repository(
            backends,
            &upstream,
            (plugin, &type_name),
            distribution,
            (&remote_id, replica.autopublish),
        )
        .await?
        else {
            continue;
        };
        let Some(distribution_id) = ensure_distribution(
            backends,
            &names,
            &upstream,
            (plugin, &type_name),
            distribution,
        )
        .await?
        else {
            continue;
        };
        kept.insert(distribution.name.clone());
        let local_versions: i64 =
            sqlx::query_scalar("SELECT latest_version FROM repositories WHERE id = $1")
                .bind(&repository_id)
                .fetch_one(db.pool())
                .await?;
        if unchanged_since_last_replication(&upstream, distribution, local_versions) {
            unchanged += 1;
        } else {
            plan.syncs.push((
                repository_id.clone(),
                remote_id.clone(),
                hrefs::repository(&names, plugin, &type_name, &repository_id),
                hrefs::remote(&names, plugin, &type_name, &remote_id),
            ));
        }
        plan.pairs.push((distribution_id, repository_id));
    }
    task.report(
        "replicate.distributions",
        "Replicating distributions",
        total,
        Some(total),
    );
    task.report(
        "replicate.unchanged",
        "Distributions unchanged upstream since the last replication (not synced)",
        unchanged,
        Some(unchanged),
    );
    // A selective run (a `q_select` given with the request) leaves the rest alone, as in Pulp.
    if !overridden && upstream.policy != "nodelete" {
        let removed =
            remove_missing(backends, &names, &upstream, &replicated_plugins, &kept).await?;
        task.report(
            "replicate.removed",
            "Removing what the upstream no longer has",
            removed,
            Some(removed),
        );
    }
    Ok(plan)
}

/// Whether a local distribution may have the upstream distribution's name and base path (as
/// the REST API checks them), and the base path overlaps no other local distribution.
async fn acceptable(
    db: &crate::db::Db,
    distribution: &UpstreamDistribution,
) -> anyhow::Result<Result<(), String>> {
    let name = &distribution.name;
    if name.trim().is_empty() || name.chars().count() > 255 {
        return Ok(Err("its name is empty or longer than 255 characters".into()));
    }
    let base_path = distribution.base_path.trim_matches('/');
    if base_path != distribution.base_path {
        return Ok(Err("its base path starts or ends with a slash".into()));
    }
    if let Some(why) = distributions::base_path_too_long(base_path) {
        return Ok(Err(why));
    }
    if let Err(why) = crate::plugins::validate_relative_path(base_path) {
        return Ok(Err(why));
    }
    // The same base path is the same distribution; another one nested in it or around it
    // could not be served beside it.
    let overlap = distributions::overlap(db, base_path, None).await?;
    if let Some(distributions::Overlap::Nested { name, base_path }) = overlap {
        return Ok(Err(format!(
            "its base path overlaps the distribution '{name}' (base path '{base_path}')"
        )));
    }
    Ok(Ok(()))
}

/// A local object with a replicated distribution's name.
enum Named {
    /// None has it.
    Missing,
    /// One the replication may change (its id).
    Managed(String),
    /// One of another plugin, or one the `labeled` policy leaves alone.
    Foreign,
}

/// The row of `table` (`remotes`, `repositories`) named `name`, as a replication of `plugin`
/// from `upstream` may treat it.
async fn named(
    db: &crate::db::Db,
    table: &str,
    name: &str,
    plugin: &str,
    upstream: &UpstreamRow,
) -> anyhow::Result<Named> {
    let existing: Option<(String, String, String)> = sqlx::query_as(&format!(
        "SELECT id, plugin, labels FROM {table} WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(db.pool())
    .await?;
    Ok(match existing {
        None => Named::Missing,
        Some((id, existing_plugin, labels))
            if existing_plugin == plugin && managed(&upstream.policy, &labels, &upstream.id) =>
        {
            Named::Managed(id)
        }
        Some(_) => Named::Foreign,
    })
}

/// The local remote named as the distribution, created or set to `url` and the upstream's
/// download settings; `None` when the policy leaves an unmarked one alone.
async fn ensure_remote(
    backends: &Backends,
    upstream: &UpstreamRow,
    (plugin, type_name): (&str, &str),
    distribution: &UpstreamDistribution,
    replica: &Replica,
) -> anyhow::Result<Option<String>> {
    let db = &backends.db;
    let id = match named(db, "remotes", &distribution.name, plugin, upstream).await? {
        Named::Foreign => return Ok(None),
        Named::Managed(id) => id,
        Named::Missing => {
            let id = new_id();
            db.write_one(
                sqlx::query(
                    "INSERT INTO remotes (id, plugin, type_name, name, url, policy, headers, labels,
                     created, updated) VALUES ($1, $2, $3, $4, '', 'immediate', $5, $6, $7, $7)",
                )
                .bind(&id)
                .bind(plugin)
                .bind(type_name)
                .bind(&distribution.name)
                .bind(backends.secrets.seal("[]"))
                .bind(marked(&serde_json::Map::new(), &upstream.id))
                .bind(now()),
            )
            .await?;
            id
        }
    };
    // The URL, the plugin fields and the upstream's download settings, new or not.
    db.write_one(
        sqlx::query(
            "UPDATE remotes SET url = $2, tls_validation = $3, ca_cert = $4, client_cert = $5,
             client_key = $6, download_concurrency = $7, max_retries = $8,
             total_timeout_ms = $9, connect_timeout_ms = $10, sock_connect_timeout_ms = $11,
             sock_read_timeout_ms = $12, updated = $13, extra = $14, allowed_origins = $15
             WHERE id = $1",
        )
        .bind(&id)
        .bind(&replica.url)
        .bind(upstream.tls_validation)
        .bind(&upstream.ca_cert)
        .bind(&upstream.client_cert)
        // Sealed in `upstream_pulps` as in `remotes`, with the same key.
        .bind(&upstream.client_key)
        .bind(upstream.download_concurrency)
        .bind(upstream.max_retries)
        .bind(upstream.total_timeout_ms)
        .bind(upstream.connect_timeout_ms)
        .bind(upstream.sock_connect_timeout_ms)
        .bind(upstream.sock_read_timeout_ms)
        .bind(now())
        .bind(replica.remote_extra)
        .bind(&upstream.allowed_origins),
    )
    .await?;
    Ok(Some(id))
}

/// The local repository named as the distribution, created (marked) or given the remote.
async fn ensure_repository(
    backends: &Backends,
    upstream: &UpstreamRow,
    (plugin, type_name): (&str, &str),
    distribution: &UpstreamDistribution,
    (remote_id, autopublish): (&str, bool),
) -> anyhow::Result<Option<String>> {
    let db = &backends.db;
    let id = match named(db, "repositories", &distribution.name, plugin, upstream).await? {
        Named::Foreign => return Ok(None),
        Named::Managed(id) => id,
        Named::Missing => {
            objects::create_repository(
                db,
                (plugin, type_name),
                &distribution.name,
                None,
                &marked(&serde_json::Map::new(), &upstream.id),
            )
            .await?
        }
    };
    db.write_one(
        sqlx::query(
            "UPDATE repositories SET remote_id = $2, autopublish = $3, updated = $4 WHERE id = $1",
        )
        .bind(&id)
        .bind(remote_id)
        .bind(i64::from(autopublish))
        .bind(now()),
    )
    .await?;
    Ok(Some(id))
}

/// The local distribution at the upstream's base path or with its name: renamed and
/// relabelled to match (it keeps serving what it serves), or created serving nothing until
/// [`finalize`].
async fn ensure_distribution(
    backends: &Backends,
    names: &RestNames,
    upstream: &UpstreamRow,
    (plugin, type_name): (&str, &str),
    distribution: &UpstreamDistribution,
) -> anyhow::Result<Option<String>> {
    let db = &backends.db;
    let existing: Option<(String, String, String)> = sqlx::query_as(
        "SELECT id, plugin, labels FROM distributions WHERE base_path = $1 OR name = $2
         ORDER BY CASE WHEN base_path = $1 THEN 0 ELSE 1 END LIMIT 1",
    )
    .bind(&distribution.base_path)
    .bind(&distribution.name)
    .fetch_optional(db.pool())
    .await?;
    let labels = marked(&distribution.pulp_labels, &upstream.id);
    match existing {
        Some((id, existing_plugin, current)) => {
            if existing_plugin != plugin || !managed(&upstream.policy, &current, &upstream.id) {
                return Ok(None);
            }
            db.write_one(
                // Touched only when something changes, as `finalize` moves it only when its
                // content does.
                sqlx::query(
                    "UPDATE distributions SET name = $2, base_path = $3, labels = $4, updated = $5
                     WHERE id = $1 AND (name <> $2 OR base_path <> $3 OR labels <> $4)",
                )
                .bind(&id)
                .bind(&distribution.name)
                .bind(&distribution.base_path)
                .bind(&labels)
                .bind(now()),
            )
            .await?;
            Ok(Some(id))
        }
        None => {
            let href = distributions::create(
                db,
                names,
                distributions::DistributionFields {
                    plugin: plugin.to_owned(),
                    type_name: type_name.to_owned(),
                    name: distribution.name.clone(),
                    base_path: distribution.base_path.clone(),
                    publication_id: None,
                    repository_id: None,
                    repository_version_id: None,
                    remote_id: None,
                    content_guard: None,
                    hidden: false,
                    private: false,
                    labels,
                    extra: "{}".into(),
                },
            )
            .await?;
            let id = hrefs::endpoint_of(&href)
                .map(|(_, id)| id.to_owned())
                .context("the new distribution's href")?;
            Ok(Some(id))
        }
    }
}

/// Deletes the local distributions of the replicated plugins that the upstream no longer has
/// (all of them, or under `labeled` only those marked for this upstream), with the remote and
/// repository of the same name. Answers how many distributions went.
async fn remove_missing(
    backends: &Backends,
    names: &RestNames,
    upstream: &UpstreamRow,
    plugins: &BTreeSet<String>,
    kept: &BTreeSet<String>,
) -> anyhow::Result<u64> {
    let db = &backends.db;
    let mut removed = 0;
    for plugin in plugins {
        let local: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT id, type_name, name, labels FROM distributions WHERE plugin = $1",
        )
        .bind(plugin)
        .fetch_all(db.pool())
        .await?;
        for (id, type_name, name, labels) in local {
            if kept.contains(&name) || !managed(&upstream.policy, &labels, &upstream.id) {
                continue;
            }
            let href = hrefs::distribution(names, plugin, &type_name, &id);
            objects::delete_object(db, names, &href).await?;
            removed += 1;
            for table in ["repositories", "remotes"] {
                let twin: Option<(String, String, String)> = sqlx::query_as(&format!(
                    "SELECT id, type_name, labels FROM {table} WHERE name = $1 AND plugin = $2"
                ))
                .bind(&name)
                .bind(plugin)
                .fetch_optional(db.pool())
                .await?;
                let Some((twin_id, twin_type, twin_labels)) = twin else {
                    continue;
                };
                if !managed(&upstream.policy, &twin_labels, &upstream.id) {
                    continue;
                }
                let twin_href = if table == "repositories" {
                    hrefs::repository(names, plugin, &twin_type, &twin_id)
                } else {
                    hrefs::remote(names, plugin, &twin_type, &twin_id)
                };
                objects::delete_object(db, names, &twin_href).await?;
            }
        }
    }
    Ok(removed)
}

/// The last step: when every other task of the group completed, each distribution serves its
/// repository's latest version (in one transaction), and the upstream records when the
/// replication started. Otherwise nothing moves and the task fails naming what failed.
pub async fn finalize(
    backends: &Backends,
    task: &Arc<TaskHandle>,
    upstream_id: &str,
    group_id: &str,
    pairs: &[(String, String)],
) -> anyhow::Result<()> {
    let db = &backends.db;
    let unfinished: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT name, state, error FROM tasks WHERE task_group_id = $1 AND id <> $2
         AND state <> 'completed' ORDER BY created",
    )
    .bind(group_id)
    .bind(&task.id)
    .fetch_all(db.pool())
    .await?;
    if !unfinished.is_empty() {
        let details: Vec<String> = unfinished
            .iter()
            .map(|(name, state, error)| {
                let description = error
                    .as_deref()
                    .and_then(|error| serde_json::from_str::<Value>(error).ok())
                    .and_then(|error| error["description"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| state.clone());
                format!("  {name}: {description}")
            })
            .collect();
        anyhow::bail!(
            "Replication failed. {} subtask(s) did not complete successfully:\n{}",
            unfinished.len(),
            details.join("\n")
        );
    }
    let mut tx = db.begin_write().await?;
    for (distribution_id, repository_id) in pairs {
        let version: Option<String> = sqlx::query_scalar(
            "SELECT v.id FROM repository_versions v JOIN repositories r ON r.id = v.repository_id
             WHERE r.id = $1 AND v.number = r.latest_version",
        )
        .bind(repository_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(version) = version else { continue };
        // Only a distribution whose content moves is changed, so that its own
        // `no_content_change_since` holds for servers replicating from this one.
        sqlx::query(
            "UPDATE distributions SET repository_version_id = $2, repository_id = NULL,
             publication_id = NULL, updated = $3
             WHERE id = $1 AND (COALESCE(repository_version_id, '') <> $2
                 OR repository_id IS NOT NULL OR publication_id IS NOT NULL)",
        )
        .bind(distribution_id)
        .bind(version)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    }
    let started: Option<String> =
        sqlx::query_scalar("SELECT MIN(started) FROM tasks WHERE task_group_id = $1")
            .bind(group_id)
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query("UPDATE upstream_pulps SET last_replication = $2 WHERE id = $1")
        .bind(upstream_id)
        .bind(started.unwrap_or_else(now))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::plugins_upstream;

    #[test]
    fn only_the_plugins_the_upstream_has_are_replicated() {
        let ours: BTreeSet<String> = ["file".to_owned(), "python".to_owned()].into();
        let pulp_file_only = json!({"versions": [
            {"component": "core", "version": "3.123.1"},
            {"component": "file", "version": "3.123.1"},
            {"component": "certguard", "version": "3.123.1"},
        ]});
        assert_eq!(
            plugins_upstream(&pulp_file_only, &ours),
            BTreeSet::from(["file".to_owned()])
        );
        assert!(plugins_upstream(&json!({}), &ours).is_empty());
    }
}
