//! Item 3: sync and publish of file repositories of 1k, 10k and 100k units, each size in several
//! fresh server processes: time per unit and peak RSS, the median over them. Then 300k units
//! in one process, to show whether the peak still grows past 100k.
//!
//! The remotes use policy `on_demand`, so a sync reads the manifest and records units and remote
//! artifacts without downloading files. This isolates what grows with the number of units (the
//! manifest stream, the database writes, the publish pass over the version); the cost per byte is
//! item 2's. It also keeps 100k units feasible here: `immediate` would mean 100k downloads and
//! 100k fsynced files, dominated by the disk rather than by Granary.
//!
//! Time per unit is what a task's run time grows by per unit: each process first syncs and
//! publishes three 1-unit repositories, and the median run time of those tasks (as the server
//! records it, `started_at` to `finished_at`) is taken off the measured task's before dividing
//! by the units.
//! That fixed cost per task (an fsync per publication, the plugin's first load in the process,
//! first statements) is printed in its own row; left in, it was 20–40% of a 1k run and made the
//! cost per unit look like it fell as repositories grew. Queueing and the client's polling are
//! left out the same way.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::procs::write_back;
use crate::report::{Row, Spread};
use crate::{Bench, api, fixture};

/// Units per repository, and the fresh server processes each size is measured in; every figure
/// of a size is the median over its processes. A 1k-unit task runs for about 50 ms here, so one
/// stall of the shared VM moves a single run by 20–30%, and the 1k figures are what the others
/// are compared with: the short sizes get more processes (they cost about a second each).
const SIZES: &[(usize, usize)] = &[(1_000, 9), (10_000, 5), (100_000, 3)];

/// A size past the last one, measured in one process after the others: whether the peak keeps
/// growing with the units or has levelled off (the allocator's and SQLite's caches fill once).
const BEYOND: usize = 300_000;

/// 1-unit syncs and publishes whose median run time is the fixed cost per task.
const FIXED_RUNS: usize = 3;

/// A size that takes longer than this is reported as not finished, and the run goes on.
const SIZE_TIMEOUT: Duration = Duration::from_secs(180);

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let nginx = bench.nginx()?;
    let mut baseline: Option<(f64, f64, f64, f64)> = None;
    fixture::manifest_only(&bench.www().join("scale/1"), 1)?;
    for units in SIZES.iter().map(|&(units, _)| units).chain([BEYOND]) {
        fixture::manifest_only(&bench.www().join(format!("scale/{units}")), units)?;
    }
    // The sizes take turns (1k, 10k, 100k, 1k, ...), so writeback left by an earlier section or
    // a busy moment of the VM does not land on one size only. A size that fails once is dropped.
    let mut measured: Vec<Result<Vec<Measured>, String>> =
        SIZES.iter().map(|_| Ok(Vec::new())).collect();
    let rounds = SIZES
        .iter()
        .map(|&(_, processes)| processes)
        .max()
        .unwrap_or(0);
    for process in 0..rounds {
        for (&(units, wanted), outcome) in SIZES.iter().zip(&mut measured) {
            if process >= wanted {
                continue;
            }
            if let Ok(processes) = outcome {
                match measure_in_process(bench, nginx, units, process).await {
                    Ok(one) => processes.push(one),
                    Err(error) => *outcome = Err(format!("{error:#}")),
                }
            }
        }
    }
    let sizes: Vec<Result<Medians, String>> = measured
        .into_iter()
        .map(|outcome| outcome.map(|processes| Medians::of(&processes)))
        .collect();
    let last_peak = sizes
        .last()
        .and_then(|size| size.as_ref().ok())
        .map(|size| size.peak);
    for (&(units, _), outcome) in SIZES.iter().zip(sizes) {
        let Medians {
            processes,
            sync,
            publish,
            peak,
            fixed,
            list_page,
        } = match outcome {
            Ok(medians) => medians,
            Err(why) => {
                failed(bench, units, why);
                continue;
            }
        };
        let (base_sync, base_publish, base_peak, base_list) =
            *baseline.get_or_insert((sync, publish, peak, list_page));
        let first = units == SIZES[0].0;
        bench.row(Row {
            item: 3,
            measure: format!(
                "fixed cost per task in the {}k runs: 1-unit sync / publish",
                units / 1000
            ),
            granary: format!("{:.1} / {:.1} ms", fixed.0 * 1e3, fixed.1 * 1e3),
            reference: String::new(),
            ratio: None,
            target: "",
            holds: None,
        });
        let reference = |value: f64, unit: &str| {
            if first {
                String::new()
            } else {
                format!("{value:.0} {unit} at {}k", SIZES[0].0 / 1000)
            }
        };
        for (what, value, base) in [
            ("sync on_demand", sync, base_sync),
            ("publish", publish, base_publish),
        ] {
            let ratio = value / base;
            bench.row(Row {
                item: 3,
                measure: format!(
                    "{what}, {}k units, median of {processes} processes",
                    units / 1000
                ),
                granary: format!("{value:.0} µs/unit"),
                reference: reference(base, "µs/unit"),
                ratio: (!first).then_some(ratio),
                target: "flat (±20%)",
                holds: (!first).then_some((0.8..=1.2).contains(&ratio)),
            });
        }
        // Shown, not held to flat: the page comes in index order, but its count of the type's
        // units (Pulp's `count`) walks them.
        bench.row(Row {
            item: 3,
            measure: format!(
                "content list, first page of 100 (`content/file/files/`), {}k units, median of {processes} processes",
                units / 1000
            ),
            granary: format!("{list_page:.1} ms"),
            reference: if first {
                String::new()
            } else {
                format!("{base_list:.1} ms at {}k", SIZES[0].0 / 1000)
            },
            ratio: (!first).then_some(list_page / base_list),
            target: "",
            holds: None,
        });
        let ratio = peak / base_peak;
        bench.row(Row {
            item: 3,
            measure: format!(
                "peak RSS of the process, {}k units, median of {processes} processes",
                units / 1000
            ),
            granary: format!("{peak:.0} MiB"),
            reference: reference(base_peak, "MiB"),
            ratio: (!first).then_some(ratio),
            target: "flat (≤ 1.2×)",
            holds: (!first).then_some(ratio <= 1.2),
        });
    }
    if let Some(last_peak) = last_peak {
        beyond(bench, nginx, last_peak, baseline).await;
    }
    Ok(())
}

/// The [`BEYOND`] size in one process: its time per unit against the first size's, and its peak
/// against the last size's.
async fn beyond(
    bench: &mut Bench,
    nginx: SocketAddr,
    last_peak: f64,
    baseline: Option<(f64, f64, f64, f64)>,
) {
    let last = SIZES[SIZES.len() - 1].0 / 1000;
    let measured = match measure_in_process(bench, nginx, BEYOND, 0).await {
        Ok(measured) => measured,
        Err(error) => return failed(bench, BEYOND, format!("{error:#}")),
    };
    let units = BEYOND / 1000;
    if let Some((base_sync, base_publish, _, base_list)) = baseline {
        let list_page = measured.times.list_page.as_secs_f64() * 1e3;
        // (what, value, its value at the first size, unit, decimals)
        for (what, value, base, unit, decimals) in [
            (
                "sync on_demand",
                measured.times.sync,
                base_sync,
                "µs/unit",
                0,
            ),
            (
                "publish",
                measured.times.publish,
                base_publish,
                "µs/unit",
                0,
            ),
            (
                "content list, first page of 100",
                list_page,
                base_list,
                "ms",
                1,
            ),
        ] {
            bench.row(Row {
                item: 3,
                measure: format!("{what}, {units}k units, one process"),
                granary: format!("{:.*} {unit}", decimals, value),
                reference: format!("{:.*} {unit} at {}k", decimals, base, SIZES[0].0 / 1000),
                ratio: Some(value / base),
                target: "",
                holds: None,
            });
        }
    }
    bench.row(Row {
        item: 3,
        measure: format!("peak RSS of the process, {units}k units, one process: against {last}k"),
        granary: format!("{:.0} MiB", measured.peak),
        reference: format!("{last_peak:.0} MiB at {last}k"),
        ratio: Some(measured.peak / last_peak),
        target: "",
        holds: None,
    });
}

/// What one process measured for one size.
struct Measured {
    times: Times,
    /// Peak RSS of the process, MiB.
    peak: f64,
}

/// The figures of one size: the medians over its processes.
struct Medians {
    processes: usize,
    /// µs per unit.
    sync: f64,
    publish: f64,
    /// MiB.
    peak: f64,
    /// Seconds of a 1-unit sync and publish.
    fixed: (f64, f64),
    /// Milliseconds of the content list's first page.
    list_page: f64,
}

impl Medians {
    fn of(processes: &[Measured]) -> Medians {
        let median = |figure: fn(&Measured) -> f64| Spread::of(processes.iter().map(figure)).median;
        Medians {
            processes: processes.len(),
            sync: median(|measured| measured.times.sync),
            publish: median(|measured| measured.times.publish),
            peak: median(|measured| measured.peak),
            fixed: (
                median(|measured| measured.times.fixed.0.as_secs_f64()),
                median(|measured| measured.times.fixed.1.as_secs_f64()),
            ),
            list_page: median(|measured| measured.times.list_page.as_secs_f64() * 1e3),
        }
    }
}

/// Starts a server on a fresh data directory and measures `units` in it.
async fn measure_in_process(
    bench: &mut Bench,
    nginx: SocketAddr,
    units: usize,
    process: usize,
) -> anyhow::Result<Measured> {
    let data = bench.dir(&format!("scale-{units}-{process}"));
    // A first start compiles the plugin into the data directory's cache; the measured process
    // starts from that cache, so its peak is the sync's and the publish's, not Cranelift's.
    drop(bench.start_granary(&data)?);
    // The ingest section leaves a gigabyte to write back, and only the larger sizes pay SQLite
    // checkpoints (with an fsync each) inside their tasks: each process starts on a clean disk.
    write_back()?;
    let granary = bench.start_granary(&data)?;
    let measured =
        tokio::time::timeout(SIZE_TIMEOUT, sync_and_publish(granary.addr, nginx, units)).await;
    let peak = granary.memory()?.peak_kib as f64 / 1024.0;
    drop(granary);
    let _ = std::fs::remove_dir_all(&data);
    match measured {
        Ok(Ok(times)) => Ok(Measured { times, peak }),
        Ok(Err(error)) => Err(error.context("failed")),
        Err(_) => anyhow::bail!("not finished after {} s", SIZE_TIMEOUT.as_secs()),
    }
}

/// What one size measured.
struct Times {
    /// µs per unit of the sync beyond its fixed cost.
    sync: f64,
    /// µs per unit of the publish beyond its fixed cost.
    publish: f64,
    /// Median run times of the 1-unit syncs and publishes.
    fixed: (Duration, Duration),
    /// Median time of the first page of the content list, after the sync.
    list_page: Duration,
}

/// Syncs (`on_demand`) and publishes 1 unit three times, then `units` units, in one server.
async fn sync_and_publish(
    granary: SocketAddr,
    nginx: SocketAddr,
    units: usize,
) -> anyhow::Result<Times> {
    let api = api::Api::new(granary)?;
    let run_times = async |name: &str, manifest_units: usize| -> anyhow::Result<_> {
        let (repository, remote) = api
            .repository_and_remote(
                name,
                &format!("http://{nginx}/scale/{manifest_units}/PULP_MANIFEST"),
                "on_demand",
            )
            .await?;
        let sync = api::run_time(&api.sync(&repository, &remote).await?)?;
        let publish = api::run_time(&api.publish(&repository).await?)?;
        Ok((sync, publish))
    };
    // The median of three, so that one slow fsync does not stand for the fixed cost.
    let mut singles = Vec::new();
    for attempt in 0..FIXED_RUNS {
        singles.push(run_times(&format!("scale-fixed-{attempt}"), 1).await?);
    }
    let median = |times: Vec<Duration>| {
        Duration::from_secs_f64(Spread::of(times.iter().map(Duration::as_secs_f64)).median)
    };
    let fixed = (
        median(singles.iter().map(|times| times.0).collect()),
        median(singles.iter().map(|times| times.1).collect()),
    );
    let (sync, publish) = run_times("scale", units).await?;
    let per_unit = |measured: Duration, fixed: Duration| {
        measured.saturating_sub(fixed).as_secs_f64() * 1e6 / units as f64
    };
    Ok(Times {
        sync: per_unit(sync, fixed.0),
        publish: per_unit(publish, fixed.1),
        fixed,
        list_page: content_list_page(&api).await?,
    })
}

/// Requests of the content list's first page, of which the median is kept.
const LIST_REQUESTS: usize = 21;

/// The median time to answer the first page of the file content list, what `pulp file content
/// list` asks for: 100 units of one type, oldest first, and how many there are.
async fn content_list_page(api: &api::Api) -> anyhow::Result<Duration> {
    let mut times = Vec::with_capacity(LIST_REQUESTS);
    for _ in 0..LIST_REQUESTS {
        let started = Instant::now();
        let page = api
            .get("/pulp/api/v3/content/file/files/?limit=100")
            .await?;
        times.push(started.elapsed().as_secs_f64());
        let results = page["results"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(results == 100, "the first page listed {results} units");
    }
    Ok(Duration::from_secs_f64(Spread::of(times).median))
}

fn failed(bench: &mut Bench, units: usize, why: String) {
    bench.row(Row {
        item: 3,
        measure: format!("sync on_demand + publish, {}k units", units / 1000),
        granary: why,
        reference: String::new(),
        ratio: None,
        target: "finishes, flat",
        holds: Some(false),
    });
}
