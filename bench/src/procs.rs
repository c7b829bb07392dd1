//! The processes under test: `granary serve` (release build) and nginx, both on loopback, both
//! stopped when dropped.

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Password of the `admin` user of every Granary the benchmarks start.
pub const PASSWORD: &str = "bench";

/// Task workers of the server, as in a default `granary serve` on this 2-core machine.
const WORKERS: &str = "2";

/// The directory the servers of a run export to and import from: `transfer` beside their data
/// directories.
pub fn transfer_dir(data_dir: &Path) -> PathBuf {
    data_dir.parent().map_or_else(
        || PathBuf::from("transfer"),
        |parent| parent.join("transfer"),
    )
}

/// A running `granary serve`.
pub struct Granary {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// From `spawn` to the "listening" line on stdout.
    pub ready_after: Duration,
}

impl Granary {
    /// Starts the server on a free loopback port and waits until it says it is listening.
    pub fn start(binary: &Path, data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let log_path = data_dir.with_extension("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let started = Instant::now();
        let mut child = Command::new(binary)
            .args(["serve", "--bind", "127.0.0.1:0", "--workers", WORKERS])
            .arg("--data-dir")
            .arg(data_dir)
            .env("GRANARY_ADMIN_PASSWORD", PASSWORD)
            // Every server of a run may export to and import from one directory beside its data.
            .env("GRANARY_ALLOWED_EXPORT_PATHS", transfer_dir(data_dir))
            .env("GRANARY_ALLOWED_IMPORT_PATHS", transfer_dir(data_dir))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = std::sync::mpsc::channel();
        // Keeps draining stdout after the line so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.strip_prefix("granary listening on http://") {
                    let _ = sender.send(address.trim().to_owned());
                }
            }
        });
        let Ok(address) = receiver.recv_timeout(Duration::from_secs(120)) else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("granary did not become ready; see {}", log_path.display());
        };
        let ready_after = started.elapsed();
        Ok(Self {
            child,
            addr: address.parse().context("parsing the listening address")?,
            ready_after,
        })
    }

    /// Resident and peak resident memory of the server process.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        Memory::of(self.child.id())
    }

    /// Starts the peak (`VmHWM`) over from the current resident memory, so that what a section
    /// measures is not what the process did before it (the first start compiles the built-in
    /// plugins), and returns the memory before.
    pub fn restart_peak(&self) -> anyhow::Result<Memory> {
        let before = self.memory()?;
        let pid = self.child.id();
        // `5` resets the peak resident set size (proc(5), /proc/pid/clear_refs).
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
            .with_context(|| format!("resetting the peak RSS of process {pid}"))?;
        Ok(before)
    }
}

impl Drop for Granary {
    fn drop(&mut self) {
        // SIGINT is the server's graceful shutdown (it waits for its workers).
        stop(&mut self.child, "-INT");
    }
}

/// Resident memory of a process, in KiB.
#[derive(Clone, Copy, Debug)]
pub struct Memory {
    /// `VmRSS`.
    pub rss_kib: u64,
    /// `VmHWM`: the peak since the process started.
    pub peak_kib: u64,
}

impl Memory {
    fn of(pid: u32) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .with_context(|| format!("no {name} in /proc/{pid}/status"))
        };
        Ok(Self {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }
}

/// nginx from the distribution, with its own configuration, serving `root` on loopback.
pub struct Nginx {
    child: Child,
    binary: PathBuf,
    prefix: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Nginx {
    /// Writes a configuration under `prefix` and starts nginx in the foreground with it. The
    /// settings are the ones a static file server is deployed with: `sendfile`, open files kept
    /// open between requests (`open_file_cache`: without it nginx served 4 KiB files about 15%
    /// slower here), no access log, as many workers as cores, keep-alive connections that last
    /// for the whole run.
    pub fn start(root: &Path, prefix: &Path) -> anyhow::Result<Self> {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
            .iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
            .context("nginx is not installed: `apt-get install -y nginx` (Debian) first")?;
        std::fs::create_dir_all(prefix)?;
        let port = free_port()?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let config = format!(
            "daemon off;
worker_processes {cores};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    open_file_cache max=10000 inactive=120s;
    open_file_cache_valid 120s;
    client_body_temp_path {prefix}/body;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
",
            prefix = prefix.display(),
            root = root.display(),
        );
        let config_path = prefix.join("nginx.conf");
        std::fs::write(&config_path, config)?;
        let mut child = Command::new(&binary)
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&config_path)
            .arg("-e")
            .arg(prefix.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if child.try_wait()?.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let log = std::fs::read_to_string(prefix.join("error.log")).unwrap_or_default();
                bail!("nginx did not start: {log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            child,
            binary,
            prefix: prefix.to_owned(),
            addr,
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // `-s stop` makes the master stop its workers too; killing only the master would leave
        // them behind.
        let _ = Command::new(&self.binary)
            .arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(self.prefix.join("nginx.conf"))
            .arg("-e")
            .arg(self.prefix.join("error.log"))
            .args(["-s", "stop"])
            .stderr(Stdio::null())
            .status();
        stop(&mut self.child, "-TERM");
    }
}

/// pypiserver, the usual small Python index, serving a directory of packages on loopback with
/// its cached-directory backend and waitress, installed on first use from PyPI into
/// `target/bench-tools/pypiserver`.
pub struct PypiServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl PypiServer {
    /// Starts pypiserver on `packages`, without authentication for reads.
    pub fn start(packages: &Path) -> anyhow::Result<Self> {
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-tools/pypiserver");
        let program = venv.join("bin/pypi-server");
        if !program.exists() {
            for command in [
                Command::new("python3").arg("-m").arg("venv").arg(&venv),
                Command::new(venv.join("bin/pip"))
                    .args(["install", "--quiet", "--disable-pip-version-check"])
                    .args(["pypiserver[cache]>=2,<3", "waitress>=3,<4"]),
            ] {
                let status = command.status().context("installing pypiserver")?;
                anyhow::ensure!(status.success(), "installing pypiserver failed: {status}");
            }
        }
        let port = free_port()?;
        let mut child = Command::new(&program)
            .args(["run", "--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--authenticate",
                ".",
                "--passwords",
                ".",
                "--disable-fallback",
            ])
            // `auto` picks waitress, installed beside it.
            .args(["--backend", "cached-dir", "--server", "auto"])
            .arg(packages)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting pypiserver")?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            if child.try_wait()?.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                bail!("pypiserver did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { child, addr })
    }
}

impl Drop for PypiServer {
    fn drop(&mut self) {
        stop(&mut self.child, "-TERM");
    }
}

/// The reference registry server: Debian's `docker-registry` (the CNCF distribution registry),
/// storing on the local filesystem under `dir`, without authentication.
pub struct DockerRegistry {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl DockerRegistry {
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let binary = Path::new("/usr/bin/docker-registry");
        anyhow::ensure!(
            binary.exists(),
            "docker-registry is not installed: `apt-get install -y docker-registry` (Debian) first"
        );
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("data").display()
            ),
        )?;
        let mut child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting docker-registry")?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            if child.try_wait()?.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                bail!("docker-registry did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self { child, addr })
    }

    /// Resident and peak resident memory of the registry process.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        Memory::of(self.child.id())
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        stop(&mut self.child, "-TERM");
    }
}

/// Verdaccio, the npm registry teams host themselves (the npm package `verdaccio`, installed with
/// the machine's npm into `target/bench-tools/verdaccio` when missing), storing under `dir`;
/// anyone may read and publish. Without uplinks ([`Verdaccio::start`]), or as a caching proxy
/// of another registry ([`Verdaccio::proxy_of`]).
pub struct Verdaccio {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Verdaccio {
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        Self::with_packages(
            dir,
            "uplinks: {}\npackages:\n  '**':\n    access: $all\n    publish: $all\n    unpublish: $all\n",
        )
    }

    /// A Verdaccio that fetches what it does not have from the registry at `upstream` and keeps
    /// it (its uplink, metadata asked again after `max_age_seconds`).
    pub fn proxy_of(dir: &Path, upstream: &str, max_age_seconds: u32) -> anyhow::Result<Self> {
        Self::with_packages(
            dir,
            &format!(
                "uplinks:\n  up:\n    url: {upstream}\n    maxage: {max_age_seconds}s\n    cache: true\npackages:\n  '**':\n    access: $all\n    publish: $all\n    proxy: up\n"
            ),
        )
    }

    fn with_packages(dir: &Path, packages: &str) -> anyhow::Result<Self> {
        let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-tools/verdaccio");
        let binary = tools.join("node_modules/.bin/verdaccio");
        if !binary.exists() {
            std::fs::create_dir_all(&tools)?;
            let status = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&tools)
                .arg("verdaccio@6")
                .status()
                .context("running npm install verdaccio (is npm installed?)")?;
            anyhow::ensure!(status.success(), "npm install verdaccio failed");
        }
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let config = dir.join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "storage: {}\nauth:\n  htpasswd:\n    file: {}\n{packages}max_body_size: 200mb\nlog: {{ type: stdout, format: pretty, level: error }}\n",
                dir.join("storage").display(),
                dir.join("htpasswd").display()
            ),
        )?;
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting verdaccio")?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(addr).is_err() {
            if child.try_wait()?.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                bail!("verdaccio did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { child, addr })
    }
}

impl Drop for Verdaccio {
    fn drop(&mut self) {
        stop(&mut self.child, "-TERM");
    }
}

/// Writes every dirty page of the machine to disk (`sync`), so that a run does not pay for the
/// writeback of the one before it (the kernel writes dirty pages back for up to 30 s).
pub fn write_back() -> anyhow::Result<()> {
    let status = Command::new("sync").status().context("running sync")?;
    anyhow::ensure!(status.success(), "sync failed: {status}");
    Ok(())
}

/// Asks a child to stop with `signal`, then kills it if it has not exited after ten seconds.
fn stop(child: &mut Child, signal: &str) {
    if let Ok(None) = child.try_wait() {
        let _ = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Ok(None) = child.try_wait() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.wait();
}

/// A loopback port free right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
