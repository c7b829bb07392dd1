//! Item 3: sync and publish of file repositories of 1k, 10k and 100k units, each in a fresh
//! server process: time per unit and peak RSS.
//!
//! The remotes use policy `on_demand`, so a sync reads the manifest and records units and remote
//! artifacts without downloading files. This isolates what grows with the number of units (the
//! manifest stream, the database writes, the publish pass over the version); the cost per byte is
//! item 2's. It also keeps 100k units feasible here: `immediate` would mean 100k downloads and
//! 100k fsynced files, dominated by the disk rather than by Granary.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::report::Row;
use crate::{Bench, api, fixture};

const SIZES: &[usize] = &[1_000, 10_000, 100_000];

/// A size that takes longer than this is reported as not finished, and the run goes on.
const SIZE_TIMEOUT: Duration = Duration::from_secs(180);

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let nginx = bench.nginx()?;
    let mut baseline: Option<(f64, f64, f64)> = None;
    for &units in SIZES {
        fixture::manifest_only(&bench.www().join(format!("scale/{units}")), units)?;
        let data = bench.dir(&format!("scale-{units}"));
        // A first start compiles the plugin into the data directory's cache; the measured process
        // starts from that cache, so its peak is the sync's and the publish's, not Cranelift's.
        drop(bench.start_granary(&data)?);
        let granary = bench.start_granary(&data)?;
        let measured =
            tokio::time::timeout(SIZE_TIMEOUT, sync_and_publish(granary.addr, nginx, units)).await;
        let peak = granary.memory()?.peak_kib as f64 / 1024.0;
        drop(granary);
        let _ = std::fs::remove_dir_all(&data);
        let (sync, publish) = match measured {
            Ok(Ok(times)) => times,
            Ok(Err(error)) => {
                failed(bench, units, format!("failed: {error:#}"));
                continue;
            }
            Err(_) => {
                failed(
                    bench,
                    units,
                    format!("not finished after {} s", SIZE_TIMEOUT.as_secs()),
                );
                continue;
            }
        };

        let (base_sync, base_publish, base_peak) = *baseline.get_or_insert((sync, publish, peak));
        let first = units == SIZES[0];
        let reference = |value: f64, unit: &str| {
            if first {
                String::new()
            } else {
                format!("{value:.0} {unit} at {}k", SIZES[0] / 1000)
            }
        };
        for (what, value, base) in [
            ("sync on_demand", sync, base_sync),
            ("publish", publish, base_publish),
        ] {
            let ratio = value / base;
            bench.row(Row {
                item: 3,
                measure: format!("{what}, {}k units", units / 1000),
                granary: format!("{value:.0} µs/unit"),
                reference: reference(base, "µs/unit"),
                ratio: (!first).then_some(ratio),
                target: "flat (±20%)",
                holds: (!first).then_some((0.8..=1.2).contains(&ratio)),
            });
        }
        let ratio = peak / base_peak;
        bench.row(Row {
            item: 3,
            measure: format!("peak RSS of the process, {}k units", units / 1000),
            granary: format!("{peak:.0} MiB"),
            reference: reference(base_peak, "MiB"),
            ratio: (!first).then_some(ratio),
            target: "flat (≤ 1.2×)",
            holds: (!first).then_some(ratio <= 1.2),
        });
    }
    Ok(())
}

/// Syncs (`on_demand`) and publishes `units` units; returns µs per unit for each.
async fn sync_and_publish(
    granary: SocketAddr,
    nginx: SocketAddr,
    units: usize,
) -> anyhow::Result<(f64, f64)> {
    let api = api::Api::new(granary)?;
    let remote = api
        .remote(
            "scale",
            &format!("http://{nginx}/scale/{units}/PULP_MANIFEST"),
            "on_demand",
        )
        .await?;
    let repository = api.repository("scale").await?;
    let started = Instant::now();
    api.sync(&repository, &remote).await?;
    let sync = started.elapsed().as_secs_f64() * 1e6 / units as f64;
    let started = Instant::now();
    api.publish(&repository).await?;
    let publish = started.elapsed().as_secs_f64() * 1e6 / units as f64;
    Ok((sync, publish))
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
