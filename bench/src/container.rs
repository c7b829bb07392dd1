//! Issue #22's container figures: a 1 GiB layer pushed to and pulled from the container plugin
//! (`/v2/`, installed into a server of its own), beside the same bytes written to the same disk
//! and pushed to and pulled from Debian's `docker-registry` (the reference registry server),
//! with the growth of each server's memory; then manifest GETs by tag under load, beside nginx
//! serving the same manifest as a static file and `docker-registry` answering the same request.
//!
//! The layer is generated as it is sent (1 MiB blocks of one random block, each with its index
//! written over its start), so the bench holds none of it. A push is what docker, skopeo and
//! oras send for a layer: `POST blobs/uploads/` and one `PUT <location>?digest=` with the whole
//! body, streamed. `GRANARY_BENCH_LAYER_MIB` sets another size.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use crate::Bench;
use crate::api::{self, Api};
use crate::load::{self, Target};
use crate::procs::{DockerRegistry, PASSWORD, write_back};
use crate::report::{Row, Spread};

/// The layer's size in MiB unless `GRANARY_BENCH_LAYER_MIB` says otherwise.
const LAYER_MIB: u64 = 1024;
/// One block of the layer.
const BLOCK: usize = 1 << 20;
/// The repository both registries hold the image in.
const NAME: &str = "bench/app";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// What registry clients send when they ask for a manifest.
const ACCEPT: &[(&str, &str)] = &[("accept", OCI_MANIFEST)];
/// Measured runs per server for the manifest GETs, taking turns.
const ROUNDS: usize = 3;

/// A generated layer: `blocks` blocks of [`BLOCK`] bytes.
struct Layer {
    block: Arc<Vec<u8>>,
    blocks: u64,
    digest: String,
}

impl Layer {
    fn new(blocks: u64) -> Self {
        // xorshift64: random-looking bytes that no compression or dedup shortcut helps with.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let block: Vec<u8> = (0..BLOCK / 8)
            .flat_map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()
            })
            .collect();
        let mut layer = Layer {
            block: Arc::new(block),
            blocks,
            digest: String::new(),
        };
        let mut hasher = Sha256::new();
        for index in 0..blocks {
            hasher.update(layer.block(index));
        }
        layer.digest = format!("sha256:{:x}", hasher.finalize());
        layer
    }

    fn size(&self) -> u64 {
        self.blocks * BLOCK as u64
    }

    /// Block `index`: the shared block with `index` over its first eight bytes.
    fn block(&self, index: u64) -> Bytes {
        let mut block = self.block.as_ref().clone();
        block[..8].copy_from_slice(&index.to_le_bytes());
        Bytes::from(block)
    }

    /// The layer as a request body, generated as it is sent.
    fn body(&self) -> reqwest::Body {
        let (block, blocks) = (self.block.clone(), self.blocks);
        let layer = Layer {
            block,
            blocks,
            digest: String::new(),
        };
        let stream = futures::stream::iter(
            (0..blocks).map(move |index| Ok::<Bytes, std::io::Error>(layer.block(index))),
        );
        reqwest::Body::wrap_stream(stream)
    }
}

/// A registry the bench pushes to and pulls from.
struct Registry {
    origin: String,
    credentials: Option<(&'static str, &'static str)>,
    client: reqwest::Client,
}

impl Registry {
    fn new(
        addr: SocketAddr,
        credentials: Option<(&'static str, &'static str)>,
    ) -> anyhow::Result<Self> {
        Ok(Registry {
            origin: format!("http://{addr}"),
            credentials,
            client: reqwest::Client::builder().no_proxy().build()?,
        })
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.origin)
        };
        let request = self.client.request(method, url);
        match self.credentials {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    /// Pushes a blob of `size` bytes with `digest` as `body`: `POST` a session, `PUT` it whole.
    async fn push(&self, body: reqwest::Body, size: u64, digest: &str) -> anyhow::Result<()> {
        let started = self
            .request(reqwest::Method::POST, &format!("/v2/{NAME}/blobs/uploads/"))
            .send()
            .await?;
        if started.status() != reqwest::StatusCode::ACCEPTED {
            bail!(
                "starting an upload at {}: HTTP {}",
                self.origin,
                started.status()
            );
        }
        let location = started
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .context("no Location for the upload")?
            .to_owned();
        let separator = if location.contains('?') { '&' } else { '?' };
        let finished = self
            .request(
                reqwest::Method::PUT,
                &format!("{location}{separator}digest={digest}"),
            )
            .header("content-type", "application/octet-stream")
            .header("content-length", size)
            .body(body)
            .send()
            .await?;
        if finished.status() != reqwest::StatusCode::CREATED {
            bail!(
                "finishing an upload at {}: HTTP {}: {}",
                self.origin,
                finished.status(),
                finished.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Pulls the blob `digest`, reading it to the end; checks its length.
    async fn pull(&self, digest: &str, size: u64) -> anyhow::Result<()> {
        let mut response = self
            .request(reqwest::Method::GET, &format!("/v2/{NAME}/blobs/{digest}"))
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::OK {
            bail!(
                "pulling {digest} from {}: HTTP {}",
                self.origin,
                response.status()
            );
        }
        let mut received = 0u64;
        while let Some(chunk) = response.chunk().await? {
            received += chunk.len() as u64;
        }
        anyhow::ensure!(received == size, "pulled {received} bytes of {size}");
        Ok(())
    }

    /// Pushes `manifest` as tag `v1`.
    async fn put_manifest(&self, manifest: &[u8]) -> anyhow::Result<()> {
        let response = self
            .request(reqwest::Method::PUT, &format!("/v2/{NAME}/manifests/v1"))
            .header("content-type", OCI_MANIFEST)
            .body(manifest.to_vec())
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::CREATED {
            bail!(
                "pushing the manifest to {}: HTTP {}",
                self.origin,
                response.status()
            );
        }
        Ok(())
    }
}

/// Writes the layer to a new file under `dir` and `fdatasync`s it: the disk's pace.
fn write_to_disk(layer: &Layer, dir: &std::path::Path) -> anyhow::Result<Duration> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("layer");
    let started = Instant::now();
    let mut file = std::fs::File::create(&path)?;
    for index in 0..layer.blocks {
        file.write_all(&layer.block(index))?;
    }
    file.sync_data()?;
    Ok(started.elapsed())
}

fn mb_per_second(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e6
}

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let mib: u64 = std::env::var("GRANARY_BENCH_LAYER_MIB")
        .ok()
        .map(|value| value.parse())
        .transpose()
        .context("GRANARY_BENCH_LAYER_MIB")?
        .unwrap_or(LAYER_MIB);
    let layer = Layer::new(mib);
    let size = layer.size();

    let granary = bench.start_granary(&bench.dir("container-data"))?;
    let api = Api::new(granary.addr)?;
    let wasm = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm/wasm32-wasip2/plugin/granary_plugin_container.wasm");
    let component = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    api.post_multipart(
        "/pulp/api/v3/plugins/",
        api::multipart(&[], ("file", "plugin.wasm"), &component),
    )
    .await
    .context("installing the container plugin")?;
    let repository = api
        .post(
            "/pulp/api/v3/repositories/container/container/",
            serde_json::json!({"name": "app"}),
        )
        .await?;
    let accepted = api
        .post(
            "/pulp/api/v3/distributions/container/container/",
            serde_json::json!({"name": "app", "base_path": NAME, "repository": repository["pulp_href"]}),
        )
        .await?;
    api.wait(&accepted).await?;
    let registry_process = DockerRegistry::start(&bench.dir("docker-registry"))?;
    let ours = Registry::new(granary.addr, Some(("admin", PASSWORD)))?;
    let reference = Registry::new(registry_process.addr, None)?;

    // Push: the disk's pace first, then each registry, each after a `sync`.
    write_back()?;
    let disk = write_to_disk(&layer, &bench.dir("container-disk"))?;
    write_back()?;
    let before = granary.restart_peak()?;
    let started = Instant::now();
    ours.push(layer.body(), size, &layer.digest).await?;
    let granary_push = started.elapsed();
    let granary_push_growth = granary.memory()?.peak_kib.saturating_sub(before.rss_kib);
    write_back()?;
    let registry_before = registry_process.memory()?;
    let started = Instant::now();
    reference.push(layer.body(), size, &layer.digest).await?;
    let registry_push = started.elapsed();
    let registry_push_growth = registry_process
        .memory()?
        .peak_kib
        .saturating_sub(registry_before.rss_kib);

    // Pull: each registry in turn, the layer read to the end.
    let before = granary.restart_peak()?;
    let started = Instant::now();
    ours.pull(&layer.digest, size).await?;
    let granary_pull = started.elapsed();
    let granary_pull_growth = granary.memory()?.peak_kib.saturating_sub(before.rss_kib);
    let started = Instant::now();
    reference.pull(&layer.digest, size).await?;
    let registry_pull = started.elapsed();

    let disk_rate = mb_per_second(size, disk);
    for (what, granary_time, registry_time, growth) in [
        ("push", granary_push, registry_push, granary_push_growth),
        ("pull", granary_pull, registry_pull, granary_pull_growth),
    ] {
        let granary_rate = mb_per_second(size, granary_time);
        let registry_rate = mb_per_second(size, registry_time);
        bench.row(Row {
            item: 1,
            measure: format!("#22: {what} of a {mib} MiB layer (`/v2/`, one streamed request)"),
            granary: format!("{granary_rate:.0} MB/s"),
            reference: format!(
                "{disk_rate:.0} MB/s (the same bytes written to the same disk, fdatasync); docker-registry {registry_rate:.0} MB/s ({:.2}× of Granary)",
                registry_rate / granary_rate
            ),
            ratio: Some(granary_rate / disk_rate),
            target: "≥ 0.5×",
            holds: Some(granary_rate / disk_rate >= 0.5),
        });
        let growth_mib = growth as f64 / 1024.0;
        bench.row(Row {
            item: 1,
            measure: format!("#22: server RSS growth during the {what} of the {mib} MiB layer"),
            granary: format!("{growth_mib:.0} MiB"),
            reference: if what == "push" {
                format!(
                    "docker-registry {:.0} MiB",
                    registry_push_growth as f64 / 1024.0
                )
            } else {
                String::new()
            },
            ratio: None,
            target: "< 64 MiB",
            holds: Some(growth_mib < 64.0),
        });
    }

    // Manifest GETs by tag: an image of a small config and the layer, tagged `v1` at both
    // registries, and the same bytes as a static file at nginx.
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = format!("sha256:{:x}", Sha256::digest(config));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.digest, "size": size}],
    })
    .to_string()
    .into_bytes();
    for registry in [&ours, &reference] {
        registry
            .push(config.to_vec().into(), config.len() as u64, &config_digest)
            .await?;
        registry.put_manifest(&manifest).await?;
    }
    let static_dir = bench.www().join("container");
    std::fs::create_dir_all(&static_dir)?;
    std::fs::write(static_dir.join("manifest.json"), &manifest)?;
    let nginx = bench.nginx()?;
    let manifest_path = format!("/v2/{NAME}/manifests/v1");
    let targets = [
        (granary.addr, manifest_path.clone()),
        (nginx, "/container/manifest.json".to_owned()),
        (registry_process.addr, manifest_path),
    ]
    .map(|(addr, path)| Target {
        addr,
        path,
        len: manifest.len(),
    });
    let rates = load::taking_turns(&targets, ACCEPT, ROUNDS).await?;
    let [granary_rates, nginx_rates, registry_rates] = [&rates[0], &rates[1], &rates[2]];
    let to_nginx = Spread::ratios(granary_rates, nginx_rates);
    let to_registry = Spread::ratios(granary_rates, registry_rates);
    let median = |rates: &[f64]| Spread::of(rates.iter().copied()).median;
    bench.row(Row {
        item: 2,
        measure: format!(
            "#22: manifest GET by tag ({} bytes), {} connections, ratio range {}",
            manifest.len(),
            load::RUN.connections,
            to_nginx.ratio_range()
        ),
        granary: format!("{:.0} req/s", median(granary_rates)),
        reference: format!(
            "{:.0} req/s (nginx, the manifest as a static file)",
            median(nginx_rates)
        ),
        ratio: Some(to_nginx.median),
        target: "≥ 0.3×",
        holds: Some(to_nginx.median >= 0.3),
    });
    bench.row(Row {
        item: 2,
        measure: format!(
            "#22: the same manifest GET beside docker-registry, ratio range {}",
            to_registry.ratio_range()
        ),
        granary: format!("{:.0} req/s", median(granary_rates)),
        reference: format!("{:.0} req/s (docker-registry)", median(registry_rates)),
        ratio: Some(to_registry.median),
        target: "> 1×",
        holds: Some(to_registry.median > 1.0),
    });
    Ok(())
}
