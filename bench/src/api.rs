//! The few Pulp REST calls the benchmarks make, with task waiting.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::procs::PASSWORD;

pub const API: &str = "/pulp/api/v3";

/// How often a task is polled: small against the durations measured.
const POLL: Duration = Duration::from_millis(10);

/// No task in the benchmarks may take longer than this.
const TASK_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A client of one server's REST API, as `admin`.
pub struct Api {
    client: reqwest::Client,
    origin: String,
}

impl Api {
    /// A client for the server at `addr`.
    pub fn new(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder().no_proxy().build()?,
            origin: format!("http://{addr}"),
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.basic_auth("admin", Some(PASSWORD)).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(serde_json::from_slice(&body)?)
    }

    /// GETs `href`.
    pub async fn get(&self, href: &str) -> anyhow::Result<Value> {
        let request = self.client.get(format!("{}{href}", self.origin));
        self.send(request)
            .await
            .with_context(|| format!("GET {href}"))
    }

    /// POSTs a JSON body to `href`; answers the JSON answer.
    pub async fn post(&self, href: &str, body: Value) -> anyhow::Result<Value> {
        let request = self
            .client
            .post(format!("{}{href}", self.origin))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body)?);
        self.send(request)
            .await
            .with_context(|| format!("POST {href}"))
    }

    /// Waits for the task a `202` answer names; returns the finished task.
    pub async fn wait(&self, accepted: &Value) -> anyhow::Result<Value> {
        let href = accepted["task"].as_str().context("no task in the answer")?;
        let started = Instant::now();
        loop {
            let request = self.client.get(format!("{}{href}", self.origin));
            let task = self.send(request).await?;
            match task["state"].as_str() {
                Some("completed") => return Ok(task),
                Some("failed" | "canceled") => bail!("task {href} ended: {}", task["error"]),
                _ if started.elapsed() > TASK_TIMEOUT => bail!("task {href} timed out"),
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Creates a file remote; returns its href.
    pub async fn remote(&self, name: &str, url: &str, policy: &str) -> anyhow::Result<String> {
        let remote = self
            .post(
                &format!("{API}/remotes/file/file/"),
                json!({"name": name, "url": url, "policy": policy}),
            )
            .await?;
        href(&remote)
    }

    /// Creates a file repository; returns its href.
    pub async fn repository(&self, name: &str) -> anyhow::Result<String> {
        let repository = self
            .post(
                &format!("{API}/repositories/file/file/"),
                json!({"name": name}),
            )
            .await?;
        href(&repository)
    }

    /// Creates a file remote for `url` and a repository, both called `name`; returns the
    /// repository's href and the remote's.
    pub async fn repository_and_remote(
        &self,
        name: &str,
        url: &str,
        policy: &str,
    ) -> anyhow::Result<(String, String)> {
        let remote = self.remote(name, url, policy).await?;
        Ok((self.repository(name).await?, remote))
    }

    /// Syncs `repository` from `remote` (mirror), waits for the task and returns it.
    pub async fn sync(&self, repository: &str, remote: &str) -> anyhow::Result<Value> {
        let accepted = self
            .post(
                &format!("{repository}sync/"),
                json!({"remote": remote, "mirror": true}),
            )
            .await?;
        self.wait(&accepted).await
    }

    /// Publishes the latest version of `repository`, waits for the task and returns it.
    pub async fn publish(&self, repository: &str) -> anyhow::Result<Value> {
        let accepted = self
            .post(
                &format!("{API}/publications/file/file/"),
                json!({"repository": repository}),
            )
            .await?;
        self.wait(&accepted).await
    }

    /// Serves `publication` at `/pulp/content/<base_path>/`.
    pub async fn distribute(&self, base_path: &str, publication: &str) -> anyhow::Result<()> {
        let accepted = self
            .post(
                &format!("{API}/distributions/file/file/"),
                json!({"name": base_path, "base_path": base_path, "publication": publication}),
            )
            .await?;
        self.wait(&accepted).await?;
        Ok(())
    }

    /// A python remote with `fields` and a python repository, both called `name`; returns the
    /// repository's href and the remote's.
    async fn python_repository_and_remote(
        &self,
        name: &str,
        mut fields: Value,
    ) -> anyhow::Result<(String, String)> {
        fields["name"] = json!(name);
        let remote = self
            .post(&format!("{API}/remotes/python/python/"), fields)
            .await?;
        let repository = self
            .post(
                &format!("{API}/repositories/python/python/"),
                json!({"name": name}),
            )
            .await?;
        Ok((href(&repository)?, href(&remote)?))
    }

    /// A python repository and a remote of `url` (policy `on_demand`), both called `name`, and a
    /// distribution of the repository with the remote at `/pypi/<name>/`: a pull-through cache.
    pub async fn python_pull_through(&self, name: &str, url: &str) -> anyhow::Result<()> {
        let (repository, remote) = self
            .python_repository_and_remote(name, json!({"url": url, "policy": "on_demand"}))
            .await?;
        let accepted = self
            .post(
                &format!("{API}/distributions/python/pypi/"),
                json!({"name": name, "base_path": name, "repository": repository,
                       "remote": remote}),
            )
            .await?;
        self.wait(&accepted).await?;
        Ok(())
    }

    /// A python repository and a distribution of it at `/pypi/<name>/` (uploads allowed).
    pub async fn python_distribution(&self, name: &str) -> anyhow::Result<()> {
        let repository = self
            .post(
                &format!("{API}/repositories/python/python/"),
                json!({"name": name}),
            )
            .await?;
        let accepted = self
            .post(
                &format!("{API}/distributions/python/pypi/"),
                json!({"name": name, "base_path": name, "repository": href(&repository)?}),
            )
            .await?;
        self.wait(&accepted).await?;
        Ok(())
    }

    /// PUTs `body` as it is to `path` as `admin` (cargo's publish frame); answers the JSON answer.
    pub async fn put_raw(&self, path: &str, body: Vec<u8>) -> anyhow::Result<Value> {
        let request = self.client.put(format!("{}{path}", self.origin)).body(body);
        self.send(request)
            .await
            .with_context(|| format!("PUT {path}"))
    }

    /// POSTs a `multipart` body to `path` as `admin` (a twine upload to the legacy API).
    pub async fn post_multipart(&self, path: &str, body: Bytes) -> anyhow::Result<()> {
        let response = self
            .client
            .post(format!("{}{path}", self.origin))
            .basic_auth("admin", Some(PASSWORD))
            .header("content-type", multipart_type())
            .body(body)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            bail!("POST {path}: HTTP {status}: {}", response.text().await?);
        }
        Ok(())
    }

    /// A python repository and an `immediate` remote of `url` with `includes`, both called
    /// `name`, synced; returns the sync's duration (request to task completed).
    pub async fn python_mirror(
        &self,
        name: &str,
        url: &str,
        includes: &[&str],
    ) -> anyhow::Result<Duration> {
        let (repository, remote) = self
            .python_repository_and_remote(
                name,
                json!({"url": url, "policy": "immediate", "includes": includes}),
            )
            .await?;
        let started = Instant::now();
        let accepted = self
            .post(&format!("{repository}sync/"), json!({"remote": remote}))
            .await?;
        self.wait(&accepted).await?;
        Ok(started.elapsed())
    }

    /// Uploads a file into `repository` (multipart, as `pulp file content upload` does); returns
    /// the `202` answer naming the task that creates the unit and the new version.
    pub async fn upload(&self, body: Bytes) -> anyhow::Result<Value> {
        let request = self
            .client
            .post(format!("{}{API}/content/file/files/", self.origin))
            .header("content-type", multipart_type())
            .body(body);
        self.send(request).await.context("uploading a file")
    }
}

/// The first resource a finished task created (a publication's href, say).
pub fn created(task: &Value) -> anyhow::Result<String> {
    task["created_resources"][0]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the task created nothing: {task}"))
}

/// How long a finished task ran, from the server's own `started_at` and `finished_at`: without
/// the time it queued and without the up to [`POLL`] the client took to notice it had finished.
pub fn run_time(task: &Value) -> anyhow::Result<Duration> {
    let at = |field: &str| {
        let text = task[field]
            .as_str()
            .with_context(|| format!("the task has no {field}: {task}"))?;
        chrono::DateTime::parse_from_rfc3339(text)
            .with_context(|| format!("the task's {field} {text:?} is not RFC 3339"))
    };
    Ok((at("finished_at")? - at("started_at")?).to_std()?)
}

const BOUNDARY: &str = "granary-bench-boundary-7d1f0c";

/// The multipart body of an upload of `data` at `relative_path` into `repository`.
pub fn upload_body(relative_path: &str, repository: &str, data: &[u8]) -> Bytes {
    multipart(
        &[("relative_path", relative_path), ("repository", repository)],
        ("file", relative_path),
        data,
    )
}

/// A `multipart/form-data` body (boundary [`BOUNDARY`]) of text `fields` and one file part
/// `(field name, file name)` holding `data`.
pub fn multipart(fields: &[(&str, &str)], file: (&str, &str), data: &[u8]) -> Bytes {
    let mut body = Vec::with_capacity(data.len() + 1024);
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    let (field, filename) = file;
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    Bytes::from(body)
}

/// The `Content-Type` of a [`multipart`] body.
pub fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

fn href(object: &Value) -> anyhow::Result<String> {
    object["pulp_href"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no pulp_href in {object}"))
}
