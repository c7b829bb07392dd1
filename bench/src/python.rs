//! Issue #20's table: what the python plugin serves (the simple index, project pages, wheel
//! downloads) side by side with nginx serving the same pages as static files, on the same
//! machine with the same client and concurrency. The fixture is `GRANARY_BENCH_PYTHON_PROJECTS`
//! projects (default 100) × `GRANARY_BENCH_PYTHON_VERSIONS` versions (default 20) of a tiny
//! wheel, uploaded one by one through the
//! legacy upload API as twine does; the uploads' rate is compared with the minimal durable
//! receiver (`sink`) taking the same bodies, and with the flushes alone that such an upload
//! must make (`floor`): one commit holding both files, as Granary's blob journal makes, and, for
//! comparison, the flushes of keeping both as files.
//!
//! nginx serves `www/python/simple/index.html`, `simple/<project>/index.html` (PEP 503 pages with
//! the same links Granary's have) and `files/<wheel>`; Granary serves `/pypi/python/simple/`,
//! `/pypi/python/simple/<project>/` and `/pypi/python/packages/<project>/<wheel>`; pypiserver
//! (cached-directory backend, waitress) serves the same wheels at `/simple/...` and `/packages/`.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;

use crate::Bench;
use crate::api::{self, Api};
use crate::load::{self, Load};
use crate::procs::PypiServer;
use crate::report::{Row, Spread};
use crate::{floor, sink};

/// Versions per project unless `GRANARY_BENCH_PYTHON_VERSIONS` says otherwise: one wheel each.
const VERSIONS: usize = 20;
/// Measured runs per server and page kind, taking turns.
const ROUNDS: usize = 3;
const LOAD: Load = Load {
    connections: 32,
    duration: Duration::from_secs(3),
    max_requests: 1_000_000,
};
/// Before the measured runs every path is asked for twice (a server that keeps answers keeps
/// one asked for twice), within this time.
const WARMUP: Load = Load {
    duration: Duration::from_secs(120),
    ..LOAD
};

/// Writes the wheels under `files/` and nginx's static pages under `simple/` of `dir`; prints
/// one line per wheel: `project<TAB>version<TAB>file name<TAB>sha256`.
const GENERATE: &str = r#"
import hashlib, io, os, sys, zipfile
root, projects, versions = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(os.path.join(root, "files"), exist_ok=True)
index = ['<!DOCTYPE html><html><body>']
for p in range(projects):
    project = f"bench-pkg-{p:05}"
    module = project.replace("-", "_")
    links = [f'<!DOCTYPE html><html><body><h1>Links for {project}</h1>']
    for v in range(versions):
        version = f"1.{v}"
        dist_info = f"{module}-{version}.dist-info"
        members = {
            f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
            f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\nSummary: benchmark package\n".encode(),
            f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: granary-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        }
        record = "".join(f"{name},,\n" for name in members) + f"{dist_info}/RECORD,,\n"
        members[f"{dist_info}/RECORD"] = record.encode()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
            for name, data in members.items():
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                wheel.writestr(info, data)
        data = buffer.getvalue()
        filename = f"{module}-{version}-py3-none-any.whl"
        with open(os.path.join(root, "files", filename), "wb") as out:
            out.write(data)
        digest = hashlib.sha256(data).hexdigest()
        links.append(f'<a href="../../files/{filename}#sha256={digest}">{filename}</a><br/>')
        print(f"{project}\t{version}\t{filename}\t{digest}")
    links.append("</body></html>")
    os.makedirs(os.path.join(root, "simple", project), exist_ok=True)
    with open(os.path.join(root, "simple", project, "index.html"), "w") as page:
        page.write("\n".join(links))
    index.append(f'<a href="{project}/">{project}</a><br/>')
index.append("</body></html>")
with open(os.path.join(root, "simple", "index.html"), "w") as page:
    page.write("\n".join(index))
"#;

/// One generated wheel.
struct Wheel {
    project: String,
    version: String,
    filename: String,
    sha256: String,
}

fn generate(bench: &Bench, projects: usize, versions: usize) -> anyhow::Result<Vec<Wheel>> {
    let root = bench.www().join("python");
    let output = Command::new("python3")
        .args(["-c", GENERATE])
        .arg(&root)
        .args([projects.to_string(), versions.to_string()])
        .output()
        .context("running python3 to write the wheels")?;
    if !output.status.success() {
        bail!(
            "writing the wheels failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout)?
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [project, version, filename, sha256] = fields[..] else {
                bail!("unexpected line {line:?}");
            };
            Ok(Wheel {
                project: project.into(),
                version: version.into(),
                filename: filename.into(),
                sha256: sha256.into(),
            })
        })
        .collect()
}

/// The legacy-upload body twine sends for `wheel`.
fn upload_body(wheel: &Wheel, data: &[u8]) -> Bytes {
    api::multipart(
        &[
            (":action", "file_upload"),
            ("protocol_version", "1"),
            ("metadata_version", "2.1"),
            ("name", &wheel.project),
            ("version", &wheel.version),
            ("filetype", "bdist_wheel"),
            ("pyversion", "py3"),
            ("sha256_digest", &wheel.sha256),
        ],
        ("content", &wheel.filename),
        data,
    )
}

/// Where a server answers: its simple index, and a wheel's URL.
struct Layout {
    simple: &'static str,
    wheel: fn(&Wheel) -> String,
}

const GRANARY: Layout = Layout {
    simple: "/pypi/python/simple/",
    wheel: |wheel| format!("/pypi/python/packages/{}/{}", wheel.project, wheel.filename),
};
const NGINX: Layout = Layout {
    simple: "/python/simple/",
    wheel: |wheel| format!("/python/files/{}", wheel.filename),
};
const PYPISERVER: Layout = Layout {
    simple: "/simple/",
    wheel: |wheel| format!("/packages/{}", wheel.filename),
};

/// The kinds of request, with #20's goal for each (a ratio to nginx).
const KINDS: [(&str, f64); 3] = [
    ("`simple/` (the project list)", 0.3),
    (
        "`simple/<project>/` (a page of a link per version), every project in turn",
        0.3,
    ),
    ("a wheel download, one per project in turn", 0.5),
];

impl Layout {
    /// The paths of the [`KINDS`] of request on this server, one wheel per project.
    fn paths(&self, wheels: &[&Wheel]) -> [Vec<String>; 3] {
        [
            vec![self.simple.to_owned()],
            wheels
                .iter()
                .map(|wheel| format!("{}{}/", self.simple, wheel.project))
                .collect(),
            wheels.iter().map(|wheel| (self.wheel)(wheel)).collect(),
        ]
    }
}

/// Requests per second of `paths` at `addr`: the median of [`ROUNDS`] runs after a warm-up that
/// asks for every path twice.
async fn rate(addr: SocketAddr, paths: &Arc<Vec<String>>) -> anyhow::Result<Vec<f64>> {
    let warmup = Load {
        max_requests: 2 * paths.len() as u64,
        ..WARMUP
    };
    let warm = load::run(addr, paths.clone(), None, warmup).await?;
    anyhow::ensure!(
        warm.failures == 0,
        "{} failed requests for {}",
        warm.failures,
        paths[0]
    );
    let mut rates = Vec::new();
    for _ in 0..ROUNDS {
        let outcome = load::run(addr, paths.clone(), None, LOAD).await?;
        anyhow::ensure!(
            outcome.failures == 0,
            "{} failed requests for {}",
            outcome.failures,
            paths[0]
        );
        rates.push(outcome.requests_per_second());
    }
    Ok(rates)
}

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let projects: usize = std::env::var("GRANARY_BENCH_PYTHON_PROJECTS")
        .ok()
        .map(|value| value.parse())
        .transpose()
        .context("GRANARY_BENCH_PYTHON_PROJECTS")?
        .unwrap_or(100);
    let versions: usize = std::env::var("GRANARY_BENCH_PYTHON_VERSIONS")
        .ok()
        .map(|value| value.parse())
        .transpose()
        .context("GRANARY_BENCH_PYTHON_VERSIONS")?
        .unwrap_or(VERSIONS);
    let wheels = generate(bench, projects, versions)?;
    let files = bench.www().join("python").join("files");
    let bodies: Vec<Bytes> = wheels
        .iter()
        .map(|wheel| {
            let data = std::fs::read(files.join(&wheel.filename))?;
            Ok(upload_body(wheel, &data))
        })
        .collect::<anyhow::Result<_>>()?;
    let total_bytes: usize = bodies.iter().map(Bytes::len).sum();

    // Uploads, one after another as twine sends them, each its own repository version.
    let granary = bench.granary()?;
    let before = bench
        .granary
        .as_ref()
        .context("the shared server")?
        .restart_peak()?;
    if let Some(first_start) = bench.first_start_peak_kib() {
        bench.row(Row {
            item: 1,
            measure: "peak RSS of the first start of a data directory (compiles the built-in plugins, once per installation and upgrade)"
                .to_owned(),
            granary: format!("{:.0} MiB", first_start as f64 / 1024.0),
            reference: String::new(),
            ratio: None,
            target: "",
            holds: None,
        });
    }
    bench.row(Row {
        item: 1,
        measure: "server peak RSS before this section (a later start, then the earlier sections)"
            .to_owned(),
        granary: format!("{:.0} MiB", before.peak_kib as f64 / 1024.0),
        reference: String::new(),
        ratio: None,
        target: "",
        holds: None,
    });
    let api = Api::new(granary)?;
    api.python_distribution("python").await?;
    let started = Instant::now();
    for body in &bodies {
        api.post_multipart("/pypi/python/legacy/", body.clone())
            .await?;
    }
    let granary_uploads = bodies.len() as f64 / started.elapsed().as_secs_f64();
    let sink_dir = bench.dir("python-sink");
    let receiver = sink::start(sink_dir.clone())?;
    let sink_bytes_per_second = sink::upload_rate(&receiver, bodies.clone(), total_bytes).await?;
    drop(receiver);
    let _ = std::fs::remove_dir_all(&sink_dir);
    let sink_uploads = sink_bytes_per_second / (total_bytes as f64 / bodies.len() as f64);
    bench.row(Row {
        item: 4,
        measure: format!(
            "legacy uploads of {} wheels ({projects} projects × {versions}), one version each",
            bodies.len()
        ),
        granary: format!("{granary_uploads:.0} uploads/s"),
        reference: format!("{sink_uploads:.0} uploads/s (minimal durable receiver)"),
        ratio: Some(granary_uploads / sink_uploads),
        target: "≥ 0.5×",
        holds: Some(granary_uploads / sink_uploads >= 0.5),
    });
    // A floor row: Granary's rate beside `floor` uploads/s, with the floor's own ratio to the
    // receiver.
    let floor_row = |measure: &str, floor: f64| Row {
        item: 4,
        measure: measure.to_owned(),
        granary: format!("{granary_uploads:.0} uploads/s"),
        reference: format!(
            "{floor:.0} uploads/s (durable floor; {:.2}× the minimal receiver)",
            floor / sink_uploads
        ),
        ratio: Some(granary_uploads / floor),
        target: "",
        holds: None,
    };
    let journal_floor =
        floor::journal_uploads_per_second(&bench.dir("python-floor"), bodies.len()).await?;
    bench.row(floor_row(
        "the same uploads against their flush alone: one commit holding both files (the blob journal), no server",
        journal_floor,
    ));
    let files_floor = floor::uploads_per_second(&bench.dir("python-floor"), bodies.len()).await?;
    bench.row(floor_row(
        "the same uploads against the flushes of keeping both as files: two kept files (data, rename, directory) and one commit each, no server",
        files_floor,
    ));

    let nginx = bench.nginx()?;
    let mut seen = std::collections::BTreeSet::new();
    let first_wheels: Vec<&Wheel> = wheels
        .iter()
        .filter(|wheel| seen.insert(wheel.project.clone()))
        .collect();
    let pypiserver = PypiServer::start(&files)?;
    let [granary_paths, nginx_paths, pypiserver_paths] =
        [GRANARY, NGINX, PYPISERVER].map(|layout| layout.paths(&first_wheels));
    let servers = granary_paths
        .into_iter()
        .zip(nginx_paths)
        .zip(pypiserver_paths);
    for ((measure, goal), ((granary_paths, nginx_paths), pypiserver_paths)) in
        KINDS.into_iter().zip(servers)
    {
        let granary_rates = rate(granary, &Arc::new(granary_paths)).await?;
        let nginx_rates = rate(nginx, &Arc::new(nginx_paths)).await?;
        let pypiserver_rates = rate(pypiserver.addr, &Arc::new(pypiserver_paths)).await?;
        let pypiserver_median = Spread::of(pypiserver_rates.iter().copied()).median;
        let ratios = Spread::of(
            granary_rates
                .iter()
                .zip(&nginx_rates)
                .map(|(granary, nginx)| granary / nginx),
        );
        let granary_median = Spread::of(granary_rates.iter().copied()).median;
        let nginx_median = Spread::of(nginx_rates.iter().copied()).median;
        bench.row(Row {
            item: 1,
            measure: format!(
                "{measure}, {projects} projects, {} connections, ratio range {}",
                LOAD.connections,
                ratios.ratio_range()
            ),
            granary: format!("{granary_median:.0} req/s"),
            reference: format!(
                "{nginx_median:.0} req/s (nginx, static pages); pypiserver {pypiserver_median:.0} req/s ({:.2}× of Granary)",
                pypiserver_median / granary_median
            ),
            ratio: Some(ratios.median),
            target: if goal == 0.3 {
                "≥ 0.3×"
            } else {
                "≥ 0.5×"
            },
            holds: Some(ratios.median >= goal),
        });
    }
    let memory = bench
        .granary
        .as_ref()
        .context("the shared server")?
        .memory()?;
    bench.row(Row {
        item: 1,
        measure: format!(
            "server peak RSS during this section's uploads and page load, {projects} projects"
        ),
        granary: format!("{:.0} MiB", memory.peak_kib as f64 / 1024.0),
        reference: String::new(),
        ratio: None,
        target: "≤ 64 MiB",
        holds: Some(memory.peak_kib as f64 / 1024.0 <= 64.0),
    });
    Ok(())
}
