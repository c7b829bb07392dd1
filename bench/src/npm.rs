//! Issue #23's npm figures: GETs of the abbreviated packument of a package with 20 versions (what
//! `npm install` asks for) and of one of its tarballs, from an npm distribution (the plugin
//! installed into a server of its own), beside Verdaccio holding the same package and nginx
//! serving Granary's bytes as static files, the servers taking turns.
//!
//! The tarballs are real `npm pack`-shaped archives (`package/package.json`, `package/index.js`,
//! made with `tar`), published to both registries with npm's publish document over HTTP.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::json;

use crate::Bench;
use crate::api::{self, Api};
use crate::load::{self, Target};
use crate::procs::{PASSWORD, Verdaccio};
use crate::report::{Row, Spread};

/// The package both registries hold.
const NAME: &str = "bench-pkg";
/// Its versions.
const VERSIONS: usize = 20;
/// What `npm install` asks for.
const ABBREVIATED: &[(&str, &str)] = &[("accept", "application/vnd.npm.install-v1+json")];
/// Measured runs per server, taking turns.
const ROUNDS: usize = 3;
/// The tarball of `version`: `package/` with a manifest and 16 KiB of code.
fn tarball(dir: &Path, version: &str) -> anyhow::Result<Vec<u8>> {
    let root = dir.join(version);
    std::fs::create_dir_all(root.join("package"))?;
    let manifest = json!({"name": NAME, "version": version, "main": "index.js",
                          "dependencies": {"left-pad": "^1.3.0"}});
    std::fs::write(root.join("package/package.json"), manifest.to_string())?;
    let code: String = (0..512)
        .map(|i| format!("exports.f{i} = () => {i};\n"))
        .collect();
    std::fs::write(root.join("package/index.js"), code)?;
    let archive = root.join("package.tgz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&root)
        .arg("package")
        .status()
        .context("running tar")?;
    anyhow::ensure!(status.success(), "tar failed");
    Ok(std::fs::read(archive)?)
}

/// npm's publish document of `version` with its tarball.
fn publish_document(version: &str, tarball: &[u8]) -> Vec<u8> {
    let file = format!("{NAME}-{version}.tgz");
    json!({
        "_id": NAME,
        "name": NAME,
        "dist-tags": {"latest": version},
        "versions": {version: {"name": NAME, "version": version, "main": "index.js",
                               "dependencies": {"left-pad": "^1.3.0"},
                               "description": "a bench package"}},
        "_attachments": {file: {"content_type": "application/octet-stream",
                                "data": base64::engine::general_purpose::STANDARD.encode(tarball),
                                "length": tarball.len()}},
    })
    .to_string()
    .into_bytes()
}

/// `PUT` the document to the registry at `origin`, as `admin` when `credentials` say so.
async fn publish(
    client: &reqwest::Client,
    origin: &str,
    document: Vec<u8>,
    credentials: bool,
) -> anyhow::Result<()> {
    let mut request = client
        .put(format!("{origin}{NAME}"))
        .header("content-type", "application/json")
        .body(document);
    if credentials {
        request = request.basic_auth("admin", Some(PASSWORD));
    }
    let response = request.send().await?;
    if !response.status().is_success() {
        bail!(
            "publishing to {origin}: HTTP {}: {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// The body at `url` as `headers` ask for it.
async fn fetch(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<bytes::Bytes> {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "GET {url}: HTTP {}",
        response.status()
    );
    Ok(response.bytes().await?)
}

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let granary = bench.start_granary(&bench.dir("npm-data"))?;
    let api = Api::new(granary.addr)?;
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm/wasm32-wasip2/plugin/granary_plugin_npm.wasm");
    let component = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    api.post_multipart(
        "/pulp/api/v3/plugins/",
        api::multipart(&[], ("file", "plugin.wasm"), &component),
    )
    .await
    .context("installing the npm plugin")?;
    let repository = api
        .post("/pulp/api/v3/repositories/npm/npm/", json!({"name": "js"}))
        .await?;
    let accepted = api
        .post(
            "/pulp/api/v3/distributions/npm/npm/",
            json!({"name": "js", "base_path": "js", "repository": repository["pulp_href"]}),
        )
        .await?;
    api.wait(&accepted).await?;
    let verdaccio = Verdaccio::start(&bench.dir("verdaccio"))?;

    let client = reqwest::Client::builder().no_proxy().build()?;
    let ours = format!("http://{}/npm/js/", granary.addr);
    let theirs = format!("http://{}/", verdaccio.addr);
    let sources = bench.dir("npm-sources");
    for minor in 0..VERSIONS {
        let version = format!("1.{minor}.0");
        let tarball = tarball(&sources, &version)?;
        publish(&client, &ours, publish_document(&version, &tarball), true).await?;
        publish(
            &client,
            &theirs,
            publish_document(&version, &tarball),
            false,
        )
        .await?;
    }

    // The same bytes at nginx, and each registry's own answer for the lengths.
    let tarball_path = format!("{NAME}/-/{NAME}-1.0.0.tgz");
    let packument = fetch(&client, &format!("{ours}{NAME}"), ABBREVIATED).await?;
    let their_packument = fetch(&client, &format!("{theirs}{NAME}"), ABBREVIATED).await?;
    let tarball = fetch(&client, &format!("{ours}{tarball_path}"), &[]).await?;
    let static_dir = bench.www().join("npm");
    std::fs::create_dir_all(static_dir.join(format!("{NAME}/-")))?;
    std::fs::write(static_dir.join(format!("{NAME}.json")), &packument)?;
    std::fs::write(static_dir.join(&tarball_path), &tarball)?;
    let nginx = bench.nginx()?;

    let target = |addr, path: String, len| Target { addr, path, len };
    let contests = [
        (
            format!(
                "#23: abbreviated packument GET ({VERSIONS} versions, {} bytes)",
                packument.len()
            ),
            [
                target(granary.addr, format!("/npm/js/{NAME}"), packument.len()),
                target(verdaccio.addr, format!("/{NAME}"), their_packument.len()),
                target(nginx, format!("/npm/{NAME}.json"), packument.len()),
            ],
            ABBREVIATED,
            0.3,
            "≥ 0.3×",
        ),
        (
            format!("#23: tarball GET ({} bytes)", tarball.len()),
            [
                target(
                    granary.addr,
                    format!("/npm/js/{tarball_path}"),
                    tarball.len(),
                ),
                target(verdaccio.addr, format!("/{tarball_path}"), tarball.len()),
                target(nginx, format!("/npm/{tarball_path}"), tarball.len()),
            ],
            &[][..],
            0.5,
            "≥ 0.5×",
        ),
    ];
    let median = |rates: &[f64]| Spread::of(rates.iter().copied()).median;
    for (what, targets, headers, goal, target) in contests {
        let rates = load::taking_turns(&targets, headers, ROUNDS).await?;
        let (granary_rates, verdaccio_rates, nginx_rates) = (&rates[0], &rates[1], &rates[2]);
        let to_nginx = Spread::ratios(granary_rates, nginx_rates);
        let to_verdaccio = Spread::ratios(granary_rates, verdaccio_rates);
        bench.row(Row {
            item: 1,
            measure: format!(
                "{what}, {} connections, ratio range {}",
                load::RUN.connections,
                to_nginx.ratio_range()
            ),
            granary: format!("{:.0} req/s", median(granary_rates)),
            reference: format!(
                "{:.0} req/s (nginx, the same bytes as a static file)",
                median(nginx_rates)
            ),
            ratio: Some(to_nginx.median),
            target,
            holds: Some(to_nginx.median >= goal),
        });
        bench.row(Row {
            item: 1,
            measure: format!(
                "{what} beside Verdaccio 6, ratio range {}",
                to_verdaccio.ratio_range()
            ),
            granary: format!("{:.0} req/s", median(granary_rates)),
            reference: format!("{:.0} req/s (Verdaccio)", median(verdaccio_rates)),
            ratio: Some(to_verdaccio.median),
            target: "> 1×",
            holds: Some(to_verdaccio.median > 1.0),
        });
    }
    Ok(())
}
