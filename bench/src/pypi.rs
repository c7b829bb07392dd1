//! Issue #19: `pip install` of 20 real packages through a pull-through distribution of the public
//! Python index, cold (a new cache: Granary fetches every page and wheel from the index and its
//! files host) and warm (the same cache again: pages are still asked of the index, conditionally
//! where it gives validators, and the wheels come from Granary's storage), side by side with pip
//! straight from the index. Then an `immediate` sync of the same pins (a new remote each round,
//! so every file is fetched again).
//!
//! Each round installs into a fresh `--target` with `--no-cache-dir`, so pip downloads every time;
//! rounds take turns (direct, cold, warm) so the network's mood is shared. Needs `python3 -m pip`
//! and the public index; it talks to nothing else but the local server.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::Bench;
use crate::api::Api;
use crate::report::{Row, Spread};

const ROUNDS: usize = 3;

/// Pure-Python wheels, pinned; installed with `--no-deps`, so exactly these 20.
const PINS: &[&str] = &[
    "six==1.16.0",
    "idna==3.10",
    "packaging==24.2",
    "iniconfig==2.0.0",
    "pluggy==1.5.0",
    "certifi==2024.8.30",
    "attrs==24.2.0",
    "urllib3==2.2.3",
    "requests==2.32.3",
    "click==8.1.7",
    "jinja2==3.1.4",
    "itsdangerous==2.2.0",
    "blinker==1.8.2",
    "werkzeug==3.0.4",
    "flask==3.0.3",
    "pyparsing==3.1.4",
    "python-dateutil==2.9.0.post0",
    "tomli==2.0.2",
    "typing-extensions==4.12.2",
    "zipp==3.20.2",
];

const PUBLIC_INDEX: &str = "https://pypi.org/simple/";

/// Runs pip against `index` into a fresh directory; returns how long it took.
fn pip_install(bench: &Bench, index: &str, target: &str) -> anyhow::Result<Duration> {
    let target = bench.dir(target);
    let started = Instant::now();
    let output = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-cache-dir",
        ])
        .args(["--disable-pip-version-check", "--only-binary", ":all:"])
        .args(["--index-url", index, "--target"])
        .arg(&target)
        .args(PINS)
        // The machine's own wheel directory would answer instead of the index.
        .env("PIP_FIND_LINKS", "")
        .output()
        .context("running python3 -m pip")?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        bail!(
            "pip install from {index} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let installed = std::fs::read_dir(&target)?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".dist-info"))
        .count();
    if installed != PINS.len() {
        bail!(
            "pip installed {installed} distributions from {index}, not {}",
            PINS.len()
        );
    }
    let _ = std::fs::remove_dir_all(&target);
    Ok(elapsed)
}

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let addr = bench.granary()?;
    let api = Api::new(addr)?;
    let (mut direct, mut cold, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        direct.push(pip_install(bench, PUBLIC_INDEX, "pip-direct")?);
        // A new remote each round: a cache only reuses what its own remote fetched.
        let name = format!("pypi-cache-{round}");
        api.python_pull_through(&name, "https://pypi.org/").await?;
        let index = format!("http://{addr}/pypi/{name}/simple/");
        cold.push(pip_install(bench, &index, "pip-cold")?);
        warm.push(pip_install(bench, &index, "pip-warm")?);
        eprintln!(
            "  round {round}: direct {:.2} s, cold {:.2} s, warm {:.2} s",
            direct[round].as_secs_f64(),
            cold[round].as_secs_f64(),
            warm[round].as_secs_f64()
        );
    }
    // A mirror of the same 20 projects, every file of the pinned versions (wheels and sdists).
    let mut syncs = Vec::new();
    for round in 0..ROUNDS {
        syncs.push(
            api.python_mirror(&format!("pypi-mirror-{round}"), "https://pypi.org/", PINS)
                .await?,
        );
    }
    let seconds = |times: &[Duration]| Spread::of(times.iter().map(Duration::as_secs_f64));
    let sync = seconds(&syncs);
    bench.row(Row {
        item: 4,
        measure: format!(
            "`immediate` sync from pypi.org of the same {} pins, wheels and sdists, median of {ROUNDS} ({:.2}–{:.2} s)",
            PINS.len(),
            sync.lowest,
            sync.highest
        ),
        granary: format!("{:.2} s", sync.median),
        reference: String::new(),
        ratio: None,
        target: "",
        holds: None,
    });
    let direct = seconds(&direct);
    for (measure, times) in [("cold", &cold), ("warm", &warm)] {
        let spread = seconds(times);
        bench.row(Row {
            item: 4,
            measure: format!(
                "`pip install` of {} pinned wheels through a {measure} pull-through cache of pypi.org, median of {ROUNDS} ({:.2}–{:.2} s)",
                PINS.len(),
                spread.lowest,
                spread.highest
            ),
            granary: format!("{:.2} s", spread.median),
            reference: format!(
                "{:.2} s (pip from pypi.org, {:.2}–{:.2} s)",
                direct.median, direct.lowest, direct.highest
            ),
            ratio: Some(spread.median / direct.median),
            target: "",
            holds: None,
        });
    }
    Ok(())
}
