//! Issue #24's cargo figures: GETs of the index file of a crate with 20 versions from a cargo
//! distribution (the plugin installed into a server of its own), beside nginx serving the same
//! bytes as a static file; then `cargo generate-lockfile` + `cargo fetch` of a 100-crate
//! dependency tree through a pull-through distribution, cold (it keeps nothing yet) and warm
//! (it keeps every crate), beside the same straight from the distribution it mirrors.
//!
//! The crates are real `.crate` archives (made with `tar`), published with cargo's publish frame
//! over HTTP: what `cargo publish` sends, without building each crate first. Each cargo run has a
//! new `CARGO_HOME`, so cargo's own caches play no part.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::Bench;
use crate::api::{self, Api};
use crate::load::{self, Target};
use crate::report::{Row, Spread};

/// Crates in the dependency tree: `tree-000` … `tree-099`, each depending on the next two.
const TREE: usize = 100;
/// Versions of the crate whose index file is measured.
const VERSIONS: usize = 20;
/// Measured runs per server for the index-file GETs, taking turns.
const ROUNDS: usize = 3;
/// Writes the crate `name` `version` depending on `deps` (name, requirement) under `dir` and
/// packs it as cargo does (`<name>-<version>/…`, gzipped tar); answers the archive's bytes.
fn crate_archive(
    dir: &Path,
    name: &str,
    version: &str,
    deps: &[(String, &str)],
) -> anyhow::Result<Vec<u8>> {
    let root = format!("{name}-{version}");
    std::fs::create_dir_all(dir.join(&root).join("src"))?;
    let mut manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n\n[dependencies]\n"
    );
    for (dep, requirement) in deps {
        manifest.push_str(&format!("{dep} = \"{requirement}\"\n"));
    }
    std::fs::write(dir.join(&root).join("Cargo.toml"), manifest)?;
    std::fs::write(
        dir.join(&root).join("src/lib.rs"),
        "pub fn answer() -> u32 { 42 }\n",
    )?;
    let archive = dir.join(format!("{root}.crate"));
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(dir)
        .arg(&root)
        .status()
        .context("running tar")?;
    anyhow::ensure!(status.success(), "tar failed for {root}");
    Ok(std::fs::read(archive)?)
}

/// Cargo's publish frame: the metadata document and the archive, each after its length.
fn publish_frame(name: &str, version: &str, deps: &[(String, &str)], archive: &[u8]) -> Vec<u8> {
    let deps: Vec<Value> = deps
        .iter()
        .map(|(dep, requirement)| {
            json!({"name": dep, "version_req": requirement, "features": [], "optional": false,
                   "default_features": true, "target": null, "kind": "normal", "registry": null,
                   "explicit_name_in_toml": null})
        })
        .collect();
    let metadata = json!({"name": name, "vers": version, "deps": deps, "features": {},
                          "description": "a bench crate"})
    .to_string();
    let mut frame = (metadata.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(metadata.as_bytes());
    frame.extend_from_slice(&(archive.len() as u32).to_le_bytes());
    frame.extend_from_slice(archive);
    frame
}

/// Publishes version `version` of `name` to the distribution at `base_path`.
async fn publish(
    api: &Api,
    dir: &Path,
    base_path: &str,
    name: &str,
    version: &str,
    deps: &[(String, &str)],
) -> anyhow::Result<()> {
    let archive = crate_archive(dir, name, version, deps)?;
    api.put_raw(
        &format!("/cargo/{base_path}/api/v1/crates/new"),
        publish_frame(name, version, deps, &archive),
    )
    .await
    .with_context(|| format!("publishing {name} {version}"))?;
    Ok(())
}

/// Creates a cargo repository and a distribution of it at `base_path`, with `remote` if given.
async fn distribution(api: &Api, base_path: &str, remote: Option<&str>) -> anyhow::Result<String> {
    let repository = api
        .post(
            "/pulp/api/v3/repositories/cargo/cargo/",
            json!({"name": base_path}),
        )
        .await?;
    let mut fields =
        json!({"name": base_path, "base_path": base_path, "repository": repository["pulp_href"]});
    if let Some(remote) = remote {
        fields["remote"] = remote.into();
    }
    let accepted = api
        .post("/pulp/api/v3/distributions/cargo/cargo/", fields)
        .await?;
    api.wait(&accepted).await?;
    Ok(repository["pulp_href"]
        .as_str()
        .context("no repository href")?
        .to_owned())
}

/// A project depending on the top of the tree, resolved and fetched by a cargo with a new home
/// whose crates.io is replaced by the registry at `index`; answers how long both took.
fn generate_and_fetch(work: &Path, index: &str) -> anyhow::Result<Duration> {
    let home = tempfile::tempdir_in(work)?;
    let cargo_home = home.path().join("cargo-home");
    std::fs::create_dir_all(&cargo_home)?;
    std::fs::write(
        cargo_home.join("config.toml"),
        format!(
            "[source.crates-io]\nreplace-with = \"bench\"\n\n[source.bench]\nregistry = \"sparse+{index}\"\n"
        ),
    )?;
    let project = home.path().join("project");
    std::fs::create_dir_all(project.join("src"))?;
    std::fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"consumer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ntree-000 = \"1\"\n",
    )?;
    std::fs::write(project.join("src/main.rs"), "fn main() {}\n")?;
    let started = Instant::now();
    for args in [&["generate-lockfile"][..], &["fetch"][..]] {
        let output = cargo(&cargo_home, &project, args)?;
        if !output.status.success() {
            bail!(
                "cargo {args:?} against {index}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    Ok(started.elapsed())
}

/// cargo with `args` in `project` and `cargo_home`, with nothing of the bench's own cargo.
fn cargo(cargo_home: &Path, project: &Path, args: &[&str]) -> anyhow::Result<std::process::Output> {
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("CARGO_HOME", cargo_home)
        .env("CARGO_TERM_COLOR", "never")
        .current_dir(project)
        .args(args);
    for variable in ["RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
        if let Ok(value) = std::env::var(variable) {
            command.env(variable, value);
        }
    }
    command.output().context("running cargo")
}

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let granary = bench.start_granary(&bench.dir("cargo-data"))?;
    let api = Api::new(granary.addr)?;
    let wasm: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm/wasm32-wasip2/plugin/granary_plugin_cargo.wasm");
    let component = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    api.post_multipart(
        "/pulp/api/v3/plugins/",
        api::multipart(&[], ("file", "plugin.wasm"), &component),
    )
    .await
    .context("installing the cargo plugin")?;
    distribution(&api, "crates", None).await?;
    let sources = bench.dir("cargo-sources");

    // The crate whose index file is measured, in 20 versions.
    for minor in 0..VERSIONS {
        publish(
            &api,
            &sources,
            "crates",
            "bench-index",
            &format!("1.{minor}.0"),
            &[],
        )
        .await?;
    }
    let index_path = "/cargo/crates/be/nc/bench-index";
    let index_file = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(format!("http://{}{index_path}", granary.addr))
        .send()
        .await?
        .bytes()
        .await?;
    let static_dir = bench.www().join("cargo/be/nc");
    std::fs::create_dir_all(&static_dir)?;
    std::fs::write(static_dir.join("bench-index"), &index_file)?;
    let nginx = bench.nginx()?;
    let targets = [
        (granary.addr, index_path),
        (nginx, "/cargo/be/nc/bench-index"),
    ]
    .map(|(addr, path)| Target {
        addr,
        path: path.to_owned(),
        len: index_file.len(),
    });
    let rates = load::taking_turns(&targets, &[], ROUNDS).await?;
    let (granary_rates, nginx_rates) = (&rates[0], &rates[1]);
    let to_nginx = Spread::ratios(granary_rates, nginx_rates);
    let median = |rates: &[f64]| Spread::of(rates.iter().copied()).median;
    bench.row(Row {
        item: 1,
        measure: format!(
            "#24: index file GET ({VERSIONS} versions, {} bytes), {} connections, ratio range {}",
            index_file.len(),
            load::RUN.connections,
            to_nginx.ratio_range()
        ),
        granary: format!("{:.0} req/s", median(granary_rates)),
        reference: format!(
            "{:.0} req/s (nginx, the index file as a static file)",
            median(nginx_rates)
        ),
        ratio: Some(to_nginx.median),
        target: "≥ 0.3×",
        holds: Some(to_nginx.median >= 0.3),
    });

    // The tree, leaves first: tree-i depends on tree-(i+1) and tree-(i+2).
    let name = |i: usize| format!("tree-{i:03}");
    for i in (0..TREE).rev() {
        let deps: Vec<(String, &str)> = [i + 1, i + 2]
            .into_iter()
            .filter(|dep| *dep < TREE)
            .map(|dep| (name(dep), "1"))
            .collect();
        publish(&api, &sources, "crates", &name(i), "1.0.0", &deps).await?;
    }
    let remote = api
        .post(
            "/pulp/api/v3/remotes/cargo/cargo/",
            json!({"name": "crates", "url": format!("http://{}/cargo/crates/", granary.addr),
                   "policy": "on_demand"}),
        )
        .await?;
    let remote = remote["pulp_href"].as_str().context("no remote href")?;
    distribution(&api, "mirror", Some(remote)).await?;
    let work = bench.dir("cargo-homes");
    std::fs::create_dir_all(&work)?;
    let origin = format!("http://{}", granary.addr);
    let direct = generate_and_fetch(&work, &format!("{origin}/cargo/crates/"))?;
    let cold = generate_and_fetch(&work, &format!("{origin}/cargo/mirror/"))?;
    let warm = generate_and_fetch(&work, &format!("{origin}/cargo/mirror/"))?;
    for (what, took) in [
        ("cold: the mirror keeps nothing yet", cold),
        ("warm: the mirror keeps every crate", warm),
    ] {
        bench.row(Row {
            item: 2,
            measure: format!(
                "#24: cargo generate-lockfile + fetch of a {TREE}-crate tree through a pull-through distribution, {what}"
            ),
            granary: format!("{:.2} s", took.as_secs_f64()),
            reference: format!(
                "{:.2} s (the same, straight from the distribution it mirrors)",
                direct.as_secs_f64()
            ),
            ratio: Some(direct.as_secs_f64() / took.as_secs_f64()),
            target: "—",
            holds: None,
        });
    }
    Ok(())
}
