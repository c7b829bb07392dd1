//! Remotes: where a repository's content comes from, and an HTTP client configured like the
//! remote says (TLS validation, timeouts, credentials, headers).

use std::time::Duration;

use anyhow::Context as _;
use sqlx::Row as _;

use crate::plugins::{DownloadPolicy, HttpScope, RemoteConfig};

/// A remote as the sync pipeline and the content app use it.
#[derive(Clone, Debug)]
pub struct Remote {
    /// Row id.
    pub id: String,
    /// Owning plugin.
    pub plugin: String,
    /// Upstream URL.
    pub url: String,
    /// `immediate`, `on_demand` or `streamed`.
    pub policy: String,
    /// Parallel downloads.
    pub download_concurrency: usize,
    /// Verify TLS certificates.
    pub tls_validation: bool,
    /// Basic-auth user.
    pub username: Option<String>,
    /// Basic-auth password.
    pub password: Option<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Timeout of a whole request, in seconds.
    pub total_timeout: Option<u64>,
    /// Retries of a failed download.
    pub max_retries: u32,
    /// Plugin-specific fields (JSON object).
    pub extra: String,
}

/// Parallel downloads when the remote does not say.
pub const DEFAULT_DOWNLOAD_CONCURRENCY: usize = 10;

impl Remote {
    /// Loads a remote.
    pub async fn load(pool: &sqlx::AnyPool, id: &str) -> anyhow::Result<Remote> {
        let row = sqlx::query(
            "SELECT id, plugin, url, policy, download_concurrency, tls_validation, username, password, headers,
                    total_timeout, max_retries, extra FROM remotes WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
        .with_context(|| format!("remote {id} does not exist"))?;
        let headers: String = row.get(8);
        let headers: Vec<serde_json::Map<String, serde_json::Value>> =
            serde_json::from_str(&headers).unwrap_or_default();
        Ok(Remote {
            id: row.get(0),
            plugin: row.get(1),
            url: row.get(2),
            policy: row.get(3),
            download_concurrency: row
                .get::<Option<i64>, _>(4)
                .map_or(DEFAULT_DOWNLOAD_CONCURRENCY, |n| n.clamp(1, 64) as usize),
            tls_validation: row.get::<i64, _>(5) != 0,
            username: row.get(6),
            password: row.get(7),
            headers: headers
                .into_iter()
                .flat_map(|map| {
                    map.into_iter()
                        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
                })
                .collect(),
            total_timeout: row.get::<Option<i64>, _>(9).map(|t| t.max(1) as u64),
            max_retries: row
                .get::<Option<i64>, _>(10)
                .map_or(3, |n| n.clamp(0, 10) as u32),
            extra: row.get(11),
        })
    }

    /// An HTTP client with the remote's settings.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &self.headers {
            headers.insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .context("remote header name")?,
                reqwest::header::HeaderValue::from_str(value).context("remote header value")?,
            );
        }
        if let Some(user) = &self.username {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", self.password.as_deref().unwrap_or("")));
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Basic {token}").parse()?,
            );
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("granary/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(30))
            .danger_accept_invalid_certs(!self.tls_validation);
        if let Some(timeout) = self.total_timeout {
            builder = builder.timeout(Duration::from_secs(timeout));
        }
        Ok(builder.build()?)
    }

    /// The download policy as the WIT names it.
    pub fn download_policy(&self) -> DownloadPolicy {
        match self.policy.as_str() {
            "on_demand" => DownloadPolicy::OnDemand,
            "streamed" => DownloadPolicy::Streamed,
            _ => DownloadPolicy::Immediate,
        }
    }

    /// What the plugin's `sync` sees of the remote.
    pub fn config(&self) -> RemoteConfig {
        RemoteConfig {
            url: self.url.clone(),
            policy: self.download_policy(),
            extra: self.extra.clone(),
        }
    }

    /// The HTTP grant of a sync: this remote's origin, with its settings.
    pub fn http_scope(&self) -> anyhow::Result<HttpScope> {
        let url =
            url::Url::parse(&self.url).with_context(|| format!("remote URL {:?}", self.url))?;
        Ok(HttpScope {
            origin: url.origin(),
            client: self.client()?,
        })
    }
}
