//! Issue #23's npm figures: GETs of the abbreviated packument of a package with 20 versions (what
//! `npm install` asks for) and of one of its tarballs, from an npm distribution (the plugin
//! installed into a server of its own), beside Verdaccio holding the same package and nginx
//! serving Granary's bytes as static files, the servers taking turns.
//!
//! The tarballs are real `npm pack`-shaped archives (`package/package.json`, `package/index.js`,
//! made with `tar`), published to both registries with npm's publish document over HTTP.
//!
//! Then `npm install` of a tree of 200 packages held by an upstream Verdaccio, through a
//! pull-through distribution of Granary and through a second Verdaccio proxying the same
//! upstream, each cold (keeping nothing yet: a new distribution, a new proxy) and warm (a second
//! install), every install with a new npm cache, taking turns.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

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
/// Packages in the install tree: `tree-<i>` depends on `tree-<2i+1>` and `tree-<2i+2>`.
const TREE: usize = 200;
/// Seconds a proxy (Granary's remote, Verdaccio's uplink) keeps a packument before asking its
/// upstream again: the same for both.
const METADATA_MAX_AGE: u32 = 120;

/// The tarball of `version` of `name`, depending on `dependencies`: `package/` with a manifest
/// and 16 KiB of code.
fn tarball(
    dir: &Path,
    name: &str,
    version: &str,
    dependencies: &serde_json::Value,
) -> anyhow::Result<Vec<u8>> {
    let root = dir.join(name).join(version);
    std::fs::create_dir_all(root.join("package"))?;
    let manifest = json!({"name": name, "version": version, "main": "index.js",
                          "dependencies": dependencies});
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

/// npm's publish document of `version` of `name` with its tarball, and the `dist` npm sends
/// (Verdaccio keeps the version without a tarball when it is missing).
fn publish_document(
    name: &str,
    version: &str,
    dependencies: &serde_json::Value,
    tarball: &[u8],
) -> Vec<u8> {
    use sha1::Digest as _;
    let file = format!("{name}-{version}.tgz");
    let base64 = &base64::engine::general_purpose::STANDARD;
    let dist = json!({
        "integrity": format!("sha512-{}", base64.encode(sha2::Sha512::digest(tarball))),
        "shasum": hex::encode(sha1::Sha1::digest(tarball)),
        "tarball": format!("http://registry.invalid/{name}/-/{file}"),
    });
    json!({
        "_id": name,
        "name": name,
        "dist-tags": {"latest": version},
        "versions": {version: {"name": name, "version": version, "main": "index.js",
                               "dependencies": dependencies, "dist": dist,
                               "description": "a bench package"}},
        "_attachments": {file: {"content_type": "application/octet-stream",
                                "data": base64::engine::general_purpose::STANDARD.encode(tarball),
                                "length": tarball.len()}},
    })
    .to_string()
    .into_bytes()
}

/// `PUT` the document of `name` to the registry at `origin`, as `admin` when `credentials` say
/// so.
async fn publish(
    client: &reqwest::Client,
    origin: &str,
    (name, document): (&str, Vec<u8>),
    credentials: bool,
) -> anyhow::Result<()> {
    let mut request = client
        .put(format!("{origin}{name}"))
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
    let dependencies = json!({"left-pad": "^1.3.0"});
    for minor in 0..VERSIONS {
        let version = format!("1.{minor}.0");
        let tarball = tarball(&sources, NAME, &version, &dependencies)?;
        let document = || {
            (
                NAME,
                publish_document(NAME, &version, &dependencies, &tarball),
            )
        };
        publish(&client, &ours, document(), true).await?;
        publish(&client, &theirs, document(), false).await?;
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
    drop(verdaccio);
    installs(bench, &api, granary.addr, &client).await
}

/// The name of package `i` of the install tree.
fn tree_name(i: usize) -> String {
    format!("tree-{i:03}")
}

/// `npm install` of the tree through Granary's pull-through distributions and Verdaccio
/// proxies of one upstream Verdaccio, cold and warm.
async fn installs(
    bench: &mut Bench,
    api: &Api,
    granary: std::net::SocketAddr,
    client: &reqwest::Client,
) -> anyhow::Result<()> {
    let upstream = Verdaccio::start(&bench.dir("verdaccio-upstream"))?;
    let upstream_url = format!("http://{}/", upstream.addr);
    let sources = bench.dir("npm-tree");
    for i in 0..TREE {
        let dependencies: serde_json::Map<String, serde_json::Value> = [2 * i + 1, 2 * i + 2]
            .into_iter()
            .filter(|&child| child < TREE)
            .map(|child| (tree_name(child), "^1.0.0".into()))
            .collect();
        let dependencies = serde_json::Value::Object(dependencies);
        let name = tree_name(i);
        let tarball = tarball(&sources, &name, "1.0.0", &dependencies)?;
        let document = publish_document(&name, "1.0.0", &dependencies, &tarball);
        publish(client, &upstream_url, (&name, document), false).await?;
    }
    let work = bench.dir("npm-installs");
    std::fs::create_dir_all(&work)?;
    let mut times: [[Vec<Duration>; 2]; 2] = Default::default();
    for round in 0..ROUNDS {
        // Granary: a new pull-through distribution keeps nothing yet.
        let base_path = format!("tree{round}");
        let remote = api
            .post(
                "/pulp/api/v3/remotes/npm/npm/",
                json!({"name": base_path, "url": upstream_url, "policy": "on_demand",
                       "metadata_max_age": METADATA_MAX_AGE}),
            )
            .await?;
        let repository = api
            .post(
                "/pulp/api/v3/repositories/npm/npm/",
                json!({"name": base_path}),
            )
            .await?;
        let accepted = api
            .post(
                "/pulp/api/v3/distributions/npm/npm/",
                json!({"name": base_path, "base_path": base_path,
                       "repository": repository["pulp_href"], "remote": remote["pulp_href"]}),
            )
            .await?;
        api.wait(&accepted).await?;
        let ours = format!("http://{granary}/npm/{base_path}/");
        // Verdaccio: a new proxy keeps nothing yet.
        let proxy = Verdaccio::proxy_of(
            &bench.dir(&format!("verdaccio-proxy-{round}")),
            &upstream_url,
            METADATA_MAX_AGE,
        )?;
        let theirs = format!("http://{}/", proxy.addr);
        let [granary_times, verdaccio_times] = &mut times;
        for (registry, kept) in [(&ours, granary_times), (&theirs, verdaccio_times)] {
            for warmth in kept.iter_mut() {
                warmth.push(install(&work, registry)?);
            }
        }
    }
    let seconds = |runs: &[Duration]| Spread::of(runs.iter().map(Duration::as_secs_f64));
    for (warmth, what) in [
        "cold: the proxy keeps nothing yet",
        "warm: the proxy keeps every package",
    ]
    .into_iter()
    .enumerate()
    {
        let (ours, theirs) = (seconds(&times[0][warmth]), seconds(&times[1][warmth]));
        bench.row(Row {
            item: 1,
            measure: format!(
                "#23: npm install of a {TREE}-package tree through a pull-through distribution, {what} (a new npm cache each time, {ROUNDS} rounds)"
            ),
            granary: format!("{:.2} s", ours.median),
            reference: format!(
                "{:.2} s (Verdaccio 6 proxying the same upstream)",
                theirs.median
            ),
            ratio: Some(theirs.median / ours.median),
            target: "—",
            holds: None,
        });
    }
    Ok(())
}

/// A new project depending on the top of the tree, installed by npm with a new cache from
/// `registry`; answers how long npm took.
fn install(work: &Path, registry: &str) -> anyhow::Result<Duration> {
    let home = tempfile::tempdir_in(work)?;
    let project = home.path().join("project");
    std::fs::create_dir_all(&project)?;
    let manifest = json!({"name": "app", "version": "1.0.0", "private": true,
                          "dependencies": {tree_name(0): "^1.0.0"}});
    std::fs::write(project.join("package.json"), manifest.to_string())?;
    let started = Instant::now();
    let output = Command::new("npm")
        .env("HOME", home.path())
        .env("npm_config_cache", home.path().join("cache"))
        .env("npm_config_registry", registry)
        .env("npm_config_update_notifier", "false")
        .args(["install", "--no-audit", "--no-fund", "--ignore-scripts"])
        .current_dir(&project)
        .output()
        .context("running npm install")?;
    let took = started.elapsed();
    if !output.status.success() {
        bail!(
            "npm install from {registry} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let installed = std::fs::read_dir(project.join("node_modules"))?.count();
    anyhow::ensure!(
        installed >= TREE,
        "npm install from {registry} installed {installed} packages, not {TREE}"
    );
    Ok(took)
}
