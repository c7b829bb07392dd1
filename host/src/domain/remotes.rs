//! Remotes: where a repository's content comes from, and HTTP clients configured like the
//! remote says (TLS validation and certificates, proxy, credentials, headers, timeouts with
//! Pulp's defaults), cached per remote configuration; the credentials go only to the remote's
//! origin (`plugins::upstream`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;

use super::upstream_pages::RemotePages;
use crate::db::Db;
use crate::plugins::upstream::guard::GuardedResolver;
use crate::plugins::upstream::{OriginPolicy, UpstreamClient};
use crate::plugins::{DownloadPolicy, HttpScope, RemoteConfig};
use crate::secrets::FieldCipher;

/// A remote as the sync pipeline and the content app use it: its row, with the settings read
/// the way downloads need them (defaults and bounds applied).
#[derive(Clone, Debug)]
pub struct Remote {
    /// The row as stored.
    pub row: RemoteRow,
}

/// The environment variables that name a proxy, as reqwest (and curl) read them (`NO_PROXY`
/// aside).
pub const PROXY_VARIABLES: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The hosts of proxy URLs (a bare `host:port` counts as `http://`): the client connects to
/// them, so they may resolve to the operator's private addresses.
fn proxy_hosts(proxies: &[String]) -> Vec<String> {
    proxies
        .iter()
        .filter_map(|proxy| {
            url::Url::parse(proxy)
                .ok()
                .filter(|url| url.has_host())
                .or_else(|| url::Url::parse(&format!("http://{proxy}")).ok())
        })
        .filter_map(|url| url.host_str().map(str::to_owned))
        .collect()
}

/// Parallel downloads when the remote does not say.
pub const DEFAULT_DOWNLOAD_CONCURRENCY: usize = 10;
/// Retries when the remote does not say.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// The timeouts a remote gets for the fields it leaves null, as Pulp does: its download factory
/// (`pulpcore/download/factory.py`) falls back field by field to `aiohttp.client.DEFAULT_TIMEOUT`,
/// which is `ClientTimeout(total=5 * 60, sock_connect=30)` (no `connect`, no `sock_read`). The
/// values come from the configuration (`Config::remote_*_timeout`, with those defaults), so an
/// operator can change them.
/// `None`: no limit of that kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DefaultTimeouts {
    /// `connect_timeout`: getting a connection, a new one included.
    pub connect: Option<Duration>,
    /// `sock_connect_timeout`: connecting a new socket.
    pub sock_connect: Option<Duration>,
    /// `sock_read_timeout`: the longest wait for the next bytes.
    pub sock_read: Option<Duration>,
    /// `total_timeout`: the whole request, the body included.
    pub total: Option<Duration>,
}

/// A timeout column as a duration; 0 counts as unset, as Pulp's `remote.x or default` does.
fn millis(value: Option<i64>) -> Option<Duration> {
    value
        .filter(|ms| *ms > 0)
        .map(|ms| Duration::from_millis(ms as u64))
}

/// A row of `remotes`, read by column name: the REST API shows it, and [`Remote::load`] turns it
/// into the settings downloads use.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RemoteRow {
    pub id: String,
    pub plugin: String,
    pub type_name: String,
    pub name: String,
    pub url: String,
    pub policy: String,
    pub download_concurrency: Option<i64>,
    pub tls_validation: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    pub headers: String,
    pub total_timeout_ms: Option<i64>,
    pub max_retries: Option<i64>,
    pub labels: String,
    pub created: String,
    pub updated: String,
    pub ca_cert: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub proxy_url: Option<String>,
    pub proxy_username: Option<String>,
    pub proxy_password: Option<String>,
    pub rate_limit: Option<i64>,
    pub connect_timeout_ms: Option<i64>,
    pub sock_connect_timeout_ms: Option<i64>,
    pub sock_read_timeout_ms: Option<i64>,
    pub extra: String,
    /// A JSON list of origins (`scheme://host[:port]`) the remote may reach besides its own,
    /// whatever their addresses.
    pub allowed_origins: String,
}

impl RemoteRow {
    /// Every column of [`RemoteRow`], for `SELECT`.
    pub const COLUMNS: &'static str =
        "id, plugin, type_name, name, url, policy, download_concurrency, tls_validation,
        username, password, headers, total_timeout_ms, max_retries, labels, created, updated,
        ca_cert, client_cert, client_key, proxy_url, proxy_username, proxy_password, rate_limit,
        connect_timeout_ms, sock_connect_timeout_ms, sock_read_timeout_ms, extra, allowed_origins";
}

impl Remote {
    /// Loads a remote, its credentials opened with `secrets`.
    pub async fn load(
        pool: &sqlx::AnyPool,
        secrets: &FieldCipher,
        id: &str,
    ) -> anyhow::Result<Remote> {
        let mut row = sqlx::query_as::<_, RemoteRow>(&format!(
            "SELECT {} FROM remotes WHERE id = $1",
            RemoteRow::COLUMNS
        ))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .with_context(|| format!("remote {id} does not exist"))?;
        for secret in [
            &mut row.password,
            &mut row.proxy_password,
            &mut row.client_key,
        ] {
            if let Some(sealed) = secret.as_deref() {
                *secret = Some(secrets.open(sealed)?);
            }
        }
        row.headers = secrets.open(&row.headers)?;
        Ok(Remote { row })
    }

    /// Parallel downloads.
    pub fn download_concurrency(&self) -> usize {
        self.row
            .download_concurrency
            .map_or(DEFAULT_DOWNLOAD_CONCURRENCY, |n| n.clamp(1, 64) as usize)
    }

    /// Retries of a failed request (connection error or 5xx).
    pub fn max_retries(&self) -> u32 {
        self.row
            .max_retries
            .map_or(DEFAULT_MAX_RETRIES, |n| n.clamp(0, 10) as u32)
    }

    /// Most downloads started per second, if limited.
    pub fn rate_limit(&self) -> Option<u32> {
        self.row
            .rate_limit
            .and_then(|limit| u32::try_from(limit).ok())
            .filter(|limit| *limit > 0)
    }

    /// Extra request headers (the column holds a list of one-entry objects).
    fn headers(&self) -> Vec<(String, String)> {
        let headers: Vec<serde_json::Map<String, serde_json::Value>> =
            serde_json::from_str(&self.row.headers).unwrap_or_default();
        headers
            .into_iter()
            .flat_map(|map| {
                map.into_iter()
                    .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
            })
            .collect()
    }

    /// The remote's credentials and custom headers: sent only to its own origin, hop by hop
    /// (see [`UpstreamClient`]), never as the client's default headers.
    fn credentials(&self) -> anyhow::Result<reqwest::header::HeaderMap> {
        let mut headers = reqwest::header::HeaderMap::new();
        let row = &self.row;
        for (name, value) in self.headers() {
            let mut value =
                reqwest::header::HeaderValue::from_str(&value).context("remote header value")?;
            value.set_sensitive(true);
            headers.insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .context("remote header name")?,
                value,
            );
        }
        if let Some(user) = &row.username {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", row.password.as_deref().unwrap_or("")));
            let mut value: reqwest::header::HeaderValue = format!("Basic {token}").parse()?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        Ok(headers)
    }

    /// Builds the remote's way upstream, its null timeouts taken from `defaults`. Prefer
    /// [`RemoteClients::client`], which reuses one client (and its connection pool) per remote
    /// configuration.
    pub fn build_client(&self, defaults: &DefaultTimeouts) -> anyhow::Result<UpstreamClient> {
        let row = &self.row;
        let or_default = |value: Option<i64>, default: Option<Duration>| millis(value).or(default);
        // The connection must be made within both connect timeouts; reqwest has one for both.
        let connect_timeout = [
            or_default(row.connect_timeout_ms, defaults.connect),
            or_default(row.sock_connect_timeout_ms, defaults.sock_connect),
        ]
        .into_iter()
        .flatten()
        .min();
        let policy = self.origin_policy()?;
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("granary/", env!("CARGO_PKG_VERSION")))
            // Redirects are followed by `UpstreamClient`, which checks every hop.
            .redirect(reqwest::redirect::Policy::none())
            // Names other than the operator's resolve to public addresses only (the SSRF guard).
            .dns_resolver(std::sync::Arc::new(GuardedResolver::new(
                policy.trusted_hosts().clone(),
            )))
            .danger_accept_invalid_certs(row.tls_validation == 0);
        if let Some(timeout) = connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = or_default(row.total_timeout_ms, defaults.total) {
            builder = builder.timeout(timeout);
        }
        if let Some(timeout) = or_default(row.sock_read_timeout_ms, defaults.sock_read) {
            builder = builder.read_timeout(timeout);
        }
        if let Some(ca_cert) = &row.ca_cert {
            for certificate in reqwest::Certificate::from_pem_bundle(ca_cert.as_bytes())
                .context("the remote's ca_cert is not valid PEM")?
            {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let (Some(cert), Some(key)) = (&row.client_cert, &row.client_key) {
            let identity = reqwest::Identity::from_pem(format!("{cert}\n{key}").as_bytes())
                .context("the remote's client_cert and client_key do not form a valid identity")?;
            builder = builder.identity(identity);
        }
        // Without a proxy of its own, the remote goes the way the server's environment says
        // (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`), as curl and pip do.
        if let Some(proxy_url) = &row.proxy_url {
            // Proxy credentials go to the proxy (`Proxy-Authorization`), never to an origin.
            let mut proxy =
                reqwest::Proxy::all(proxy_url).context("the remote's proxy_url is invalid")?;
            if let Some(user) = &row.proxy_username {
                proxy = proxy.basic_auth(user, row.proxy_password.as_deref().unwrap_or(""));
            }
            builder = builder.proxy(proxy);
        }
        Ok(UpstreamClient::new(
            builder.build()?,
            self.credentials()?,
            policy,
            self.max_retries(),
        ))
    }

    /// The origins the remote's requests may reach (see [`OriginPolicy`]): its URL's, its
    /// `allowed_origins`, and any public one for the host's own downloads.
    pub fn origin_policy(&self) -> anyhow::Result<OriginPolicy> {
        let url = &self.row.url;
        let url = url::Url::parse(url).with_context(|| format!("remote URL {url:?}"))?;
        let allowed: Vec<String> = serde_json::from_str(&self.row.allowed_origins)
            .context("the remote's allowed_origins")?;
        let allowed = allowed
            .iter()
            .map(|origin| {
                url::Url::parse(origin)
                    .map(|url| url.origin())
                    .with_context(|| format!("allowed origin {origin:?}"))
            })
            .collect::<anyhow::Result<_>>()?;
        let proxies: Vec<String> = match &self.row.proxy_url {
            Some(proxy_url) => vec![proxy_url.clone()],
            None => PROXY_VARIABLES
                .iter()
                .filter_map(|name| std::env::var(name).ok())
                .filter(|value| !value.trim().is_empty())
                .collect(),
        };
        Ok(OriginPolicy::new(
            url.origin(),
            allowed,
            &proxy_hosts(&proxies),
        ))
    }

    /// The download policy as the WIT names it.
    pub fn download_policy(&self) -> DownloadPolicy {
        match self.row.policy.as_str() {
            "on_demand" => DownloadPolicy::OnDemand,
            "streamed" => DownloadPolicy::Streamed,
            _ => DownloadPolicy::Immediate,
        }
    }

    /// What the plugin's `sync` sees of the remote.
    pub fn config(&self) -> RemoteConfig {
        RemoteConfig {
            url: self.row.url.clone(),
            policy: self.download_policy(),
            extra: self.row.extra.clone(),
        }
    }

    /// The HTTP grant of a plugin call: what `upstream` (the remote's) may reach, with the
    /// remote's kept pages in `db` for conditional requests.
    pub fn http_scope(&self, upstream: UpstreamClient, db: Arc<Db>) -> HttpScope {
        HttpScope {
            upstream,
            pages: Some(Arc::new(RemotePages {
                db,
                remote_id: self.row.id.clone(),
            })),
        }
    }
}

/// One HTTP client per remote configuration, keyed by the remote's id and `pulp_last_updated`:
/// building a client (TLS roots, identity, proxy) is not free, and a shared client reuses
/// connections across the downloads of a sync and the on-demand requests of the content app.
#[derive(Debug)]
pub struct RemoteClients {
    /// The timeouts of remotes that leave theirs null.
    defaults: DefaultTimeouts,
    clients: Mutex<HashMap<String, (String, UpstreamClient)>>,
}

impl RemoteClients {
    /// No clients yet; remotes get `defaults` for the timeouts they leave null.
    pub fn new(defaults: DefaultTimeouts) -> Self {
        RemoteClients {
            defaults,
            clients: Mutex::default(),
        }
    }

    /// The client for `remote` as it is configured now.
    pub fn client(&self, remote: &Remote) -> anyhow::Result<UpstreamClient> {
        let row = &remote.row;
        if let Some((updated, client)) = self.clients.lock().expect("client cache").get(&row.id)
            && *updated == row.updated
        {
            return Ok(client.clone());
        }
        let client = remote.build_client(&self.defaults)?;
        self.clients
            .lock()
            .expect("client cache")
            .insert(row.id.clone(), (row.updated.clone(), client.clone()));
        Ok(client)
    }
}

/// Spaces out the starts of downloads to at most `rate_limit` a second (Pulp's `rate_limit`),
/// across all the concurrent downloads of one sync.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl RateLimiter {
    /// A limiter for `per_second` starts a second.
    pub fn new(per_second: u32) -> RateLimiter {
        RateLimiter {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for the next free slot.
    pub async fn wait(&self) {
        let mut next = self.next.lock().await;
        let now = tokio::time::Instant::now();
        if *next > now {
            tokio::time::sleep_until(*next).await;
        }
        *next = (*next).max(now) + self.interval;
    }
}
