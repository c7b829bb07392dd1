//! `granary-bench`: measures Granary side by side with the references on the same machine, in one
//! run, and prints a table of ratios (see `docs/performance.md`).
//!
//! ```sh
//! cargo run --release -p granary-bench -- all      # or: startup ingest serve scale python container cargo npm plugin pypi
//! ```
//!
//! It builds and starts the release `granary` binary and a private nginx (Debian's package, with
//! its own configuration in a temporary directory), talks only to 127.0.0.1, bounds every load by
//! a request count and a duration, and removes what it created when it ends. Nothing here asserts
//! a timing: CI only builds this crate.
//!
//! # Layout
//! - `procs`: the processes under test (`granary serve`, nginx) and their memory.
//! - `load`: the HTTP load generator, the same for both servers.
//! - `api`: the Pulp REST calls the benchmarks need.
//! - `fixture`: generated files and `PULP_MANIFEST`s.
//! - `startup`, `ingest`, `serving`, `scaling`, `plugin`: one module per measured item.
//! - `python`: pages and wheels the python plugin serves, beside nginx (issue #20's table).
//! - `container`: a 1 GiB layer pushed and pulled, and manifest GETs, beside the disk, nginx and
//!   docker-registry (issue #22's figures).
//! - `cargo`: index-file GETs beside nginx, and cargo resolving and fetching a 100-crate tree
//!   through a pull-through distribution, cold and warm (issue #24's figures).
//! - `npm`: abbreviated packuments and tarballs beside Verdaccio and nginx (issue #23's figures).
//! - `pypi`: pip through a pull-through cache of the public Python index (needs the network, so
//!   `all` leaves it out: name it).
//! - `sink`: the minimal upload receiver the ingest item compares uploads with.
//! - `report`: the result table.

mod api;
mod cargo;
mod container;
mod fixture;
mod floor;
mod ingest;
mod load;
mod npm;
mod plugin;
mod procs;
mod pypi;
mod python;
mod report;
mod scaling;
mod serving;
mod sink;
mod startup;
mod transfer;
mod ui;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::procs::{Granary, Nginx};
use crate::report::Row;

/// Sections in the order `all` runs them: start-up first, so idle memory is measured before any
/// load, and the in-process plugin loop last, after the servers are stopped.
const SECTIONS: &[&str] = &[
    "startup",
    "ingest",
    "serve",
    "transfer",
    "scale",
    "python",
    "container",
    "cargo",
    "npm",
    "ui",
    "plugin",
];
/// Sections that need the public internet, run only when named.
const NETWORK_SECTIONS: &[&str] = &["pypi"];

/// Shared state of a run: the working directory, the processes started so far, the rows.
pub struct Bench {
    work: tempfile::TempDir,
    server_binary: PathBuf,
    nginx: Option<Nginx>,
    granary: Option<Granary>,
    /// The peak RSS (KiB) of the first start of the shared server's data directory.
    first_start_peak_kib: Option<u64>,
    /// Fixture file names, created on first use.
    small: Option<Vec<String>>,
    large: Option<Vec<String>>,
    /// Sync durations, measured once (the serving section needs the repositories too).
    small_sync: Option<Duration>,
    large_sync: Option<Duration>,
    rows: Vec<Row>,
}

/// Small files: count and size.
pub const SMALL: (usize, usize) = (1000, 4 * 1024);
/// Large files: count and size.
pub const LARGE: (usize, usize) = (4, 100 * 1024 * 1024);

impl Bench {
    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// Where nginx serves from: `www/small`, `www/large`, `www/scale/<n>`.
    pub fn www(&self) -> PathBuf {
        self.path("www")
    }

    /// The nginx serving `www`, started on first use.
    pub fn nginx(&mut self) -> anyhow::Result<SocketAddr> {
        if self.nginx.is_none() {
            std::fs::create_dir_all(self.www())?;
            self.nginx = Some(Nginx::start(&self.www(), &self.path("nginx"))?);
        }
        Ok(self.nginx.as_ref().expect("started above").addr)
    }

    /// The shared Granary (data in `data`), started on first use. The first start of a data
    /// directory compiles the built-in plugins, once per installation and upgrade (the compile
    /// cache keeps them); every later start loads them. The shared server is such a later start,
    /// as a running installation is: the data directory is started once, stopped, and started
    /// again. The first start's peak is kept for the report ([`Bench::first_start_peak_kib`]).
    pub fn granary(&mut self) -> anyhow::Result<SocketAddr> {
        if self.granary.is_none() {
            let first = Granary::start(&self.server_binary, &self.path("data"))?;
            self.first_start_peak_kib = Some(first.memory()?.peak_kib);
            drop(first);
            self.granary = Some(Granary::start(&self.server_binary, &self.path("data"))?);
        }
        Ok(self.granary.as_ref().expect("started above").addr)
    }

    /// The peak RSS (KiB) of the first start of the shared server's data directory, once the
    /// shared server has started.
    pub fn first_start_peak_kib(&self) -> Option<u64> {
        self.first_start_peak_kib
    }

    /// Starts a Granary of its own on `data_dir` (not the shared one).
    pub fn start_granary(&self, data_dir: &Path) -> anyhow::Result<Granary> {
        Granary::start(&self.server_binary, data_dir)
    }

    /// A fresh directory under the working directory.
    pub fn dir(&self, name: &str) -> PathBuf {
        self.path(name)
    }

    /// The small files under `www/small`, written on first use.
    pub fn small_files(&mut self) -> anyhow::Result<Vec<String>> {
        if self.small.is_none() {
            self.small = Some(fixture::files(
                &self.www().join("small"),
                SMALL.0,
                SMALL.1,
                1,
            )?);
        }
        Ok(self.small.clone().expect("written above"))
    }

    /// The large files under `www/large`, written on first use.
    pub fn large_files(&mut self) -> anyhow::Result<Vec<String>> {
        if self.large.is_none() {
            self.large = Some(fixture::files(
                &self.www().join("large"),
                LARGE.0,
                LARGE.1,
                2,
            )?);
        }
        Ok(self.large.clone().expect("written above"))
    }

    /// Syncs `www/<name>` into the shared Granary with policy `immediate`, publishes and
    /// distributes it at `/pulp/content/<name>/`. Returns the sync's duration (request to task
    /// completed).
    async fn mirror(&mut self, name: &str) -> anyhow::Result<Duration> {
        let nginx = self.nginx()?;
        let api = api::Api::new(self.granary()?)?;
        let (repository, remote) = api
            .repository_and_remote(
                name,
                &format!("http://{nginx}/{name}/PULP_MANIFEST"),
                "immediate",
            )
            .await?;
        let started = Instant::now();
        api.sync(&repository, &remote).await?;
        let elapsed = started.elapsed();
        let publication = api::created(&api.publish(&repository).await?)?;
        api.distribute(name, &publication).await?;
        Ok(elapsed)
    }

    /// The small files mirrored (once); returns the sync's duration.
    pub async fn small_mirror(&mut self) -> anyhow::Result<Duration> {
        if self.small_sync.is_none() {
            self.small_files()?;
            self.small_sync = Some(self.mirror("small").await?);
        }
        Ok(self.small_sync.expect("synced above"))
    }

    /// The large files mirrored (once); returns the sync's duration.
    pub async fn large_mirror(&mut self) -> anyhow::Result<Duration> {
        if self.large_sync.is_none() {
            self.large_files()?;
            self.large_sync = Some(self.mirror("large").await?);
        }
        Ok(self.large_sync.expect("synced above"))
    }

    /// Adds a row to the table.
    pub fn row(&mut self, row: Row) {
        eprintln!(
            "  {}: granary {} | reference {}",
            row.measure, row.granary, row.reference
        );
        self.rows.push(row);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        bail!("run the benchmarks from a release build: cargo run --release -p granary-bench");
    }
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let sections: Vec<&str> = if arguments.is_empty() || arguments.iter().any(|a| a == "all") {
        SECTIONS.to_vec()
    } else {
        for argument in &arguments {
            if !SECTIONS.contains(&argument.as_str())
                && !NETWORK_SECTIONS.contains(&argument.as_str())
            {
                bail!(
                    "unknown section {argument:?}; use `all` or some of: {} {}",
                    SECTIONS.join(" "),
                    NETWORK_SECTIONS.join(" ")
                );
            }
        }
        SECTIONS
            .iter()
            .chain(NETWORK_SECTIONS)
            .copied()
            .filter(|section| arguments.iter().any(|a| a == section))
            .collect()
    };

    let server_binary = server_binary()?;
    let work = tempfile::Builder::new()
        .prefix("granary-bench-")
        .tempdir()
        .context("creating the working directory")?;
    // nginx's workers drop root privileges and must still read the fixture.
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755))?;
    let mut bench = Bench {
        work,
        server_binary,
        nginx: None,
        granary: None,
        first_start_peak_kib: None,
        small: None,
        large: None,
        small_sync: None,
        large_sync: None,
        rows: Vec::new(),
    };
    let started = Instant::now();
    for section in &sections {
        eprintln!("== {section}");
        match *section {
            "startup" => startup::run(&mut bench).await?,
            "ingest" => ingest::run(&mut bench).await?,
            "serve" => serving::run(&mut bench).await?,
            "scale" => {
                // Each size gets a server of its own: stop the shared one first.
                bench.granary = None;
                scaling::run(&mut bench).await?;
            }
            "plugin" => {
                bench.granary = None;
                bench.nginx = None;
                plugin::run(&mut bench).await?;
            }
            "python" => python::run(&mut bench).await?,
            "container" => container::run(&mut bench).await?,
            "cargo" => cargo::run(&mut bench).await?,
            "npm" => npm::run(&mut bench).await?,
            "ui" => ui::run(&mut bench).await?,
            "transfer" => transfer::run(&mut bench).await?,
            "pypi" => pypi::run(&mut bench).await?,
            _ => unreachable!("checked above"),
        }
    }
    bench.granary = None;
    bench.nginx = None;

    println!();
    println!("{}", machine());
    println!(
        "Sections: {}; run time {:.0} s.",
        sections.join(", "),
        started.elapsed().as_secs_f64()
    );
    println!();
    report::print(&bench.rows);
    Ok(())
}

/// The release `granary` binary next to this one, built first so it matches the source tree;
/// `GRANARY_BENCH_SERVER` names another binary instead.
fn server_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("GRANARY_BENCH_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("== building the release server (cargo build --release -p granary)");
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--release", "-p", "granary", "--bin", "granary"])
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("building the release server failed");
    }
    let exe = std::env::current_exe()?;
    let binary = exe
        .parent()
        .context("the benchmark's directory")?
        .join("granary");
    if !binary.exists() {
        bail!("no server binary at {}", binary.display());
    }
    Ok(binary)
}

/// A line describing the machine and the software compared.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| {
            meminfo
                .lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let output = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .map(|out| {
                let text = [out.stdout, out.stderr].concat();
                String::from_utf8_lossy(&text).trim().to_owned()
            })
            .unwrap_or_default()
    };
    format!(
        "{} UTC; {model}, {cores} cores, {memory_gib:.1} GiB, Linux {}; {}; {}; granary {}",
        output("date", &["-u", "+%Y-%m-%d %H:%M"]),
        kernel.trim(),
        output("/usr/sbin/nginx", &["-v"]),
        output("openssl", &["version"]),
        env!("CARGO_PKG_VERSION"),
    )
}
