//! Item 1: the content app against nginx, serving the same files from disk to the same client
//! with the same concurrency. nginx reads `www/`; Granary serves the same files, mirrored into
//! its own storage, from a publication.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::load::{self, Load, Outcome};
use crate::report::Row;
use crate::{Bench, LARGE, SMALL};

const SMALL_LOAD: Load = Load {
    connections: 16,
    duration: Duration::from_secs(5),
    max_requests: 500_000,
};
const LARGE_LOAD: Load = Load {
    connections: 4,
    duration: Duration::from_secs(8),
    max_requests: 40,
};
/// Before each measured run: fills caches, opens connections, lets the server's pools grow.
const SMALL_WARMUP: Load = Load {
    duration: Duration::from_secs(1),
    ..SMALL_LOAD
};
const LARGE_WARMUP: Load = Load {
    max_requests: 4,
    ..LARGE_LOAD
};

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let small = bench.small_files()?;
    let large = bench.large_files()?;
    bench.small_mirror().await?;
    bench.large_mirror().await?;
    let nginx = bench.nginx()?;
    let granary = bench.granary()?;

    let (ours, theirs) = compare(
        nginx,
        granary,
        "small",
        &small,
        SMALL.1,
        SMALL_WARMUP,
        SMALL_LOAD,
    )
    .await?;
    let ratio = ours.requests_per_second() / theirs.requests_per_second();
    bench.row(Row {
        item: 1,
        measure: format!(
            "GET {} KiB files, {} connections",
            SMALL.1 >> 10,
            SMALL_LOAD.connections
        ),
        granary: format!("{:.0} req/s", ours.requests_per_second()),
        reference: format!("{:.0} req/s nginx", theirs.requests_per_second()),
        ratio: Some(ratio),
        target: "≥ 0.8×",
        holds: Some(ratio >= 0.8 && ours.failures == 0),
    });

    let (ours, theirs) = compare(
        nginx,
        granary,
        "large",
        &large,
        LARGE.1,
        LARGE_WARMUP,
        LARGE_LOAD,
    )
    .await?;
    let ratio = ours.megabytes_per_second() / theirs.megabytes_per_second();
    bench.row(Row {
        item: 1,
        measure: format!(
            "GET {} MiB files, {} connections",
            LARGE.1 >> 20,
            LARGE_LOAD.connections
        ),
        granary: format!("{:.0} MB/s", ours.megabytes_per_second()),
        reference: format!("{:.0} MB/s nginx", theirs.megabytes_per_second()),
        ratio: Some(ratio),
        target: "≥ 0.9×",
        holds: Some(ratio >= 0.9 && ours.failures == 0),
    });
    Ok(())
}

/// Runs the same load against nginx (`/<dir>/<name>`) then Granary
/// (`/pulp/content/<dir>/<name>`); returns (Granary, nginx).
async fn compare(
    nginx: SocketAddr,
    granary: SocketAddr,
    dir: &str,
    names: &[String],
    size: usize,
    warmup: Load,
    measured: Load,
) -> anyhow::Result<(Outcome, Outcome)> {
    let nginx_paths: Arc<Vec<String>> =
        Arc::new(names.iter().map(|name| format!("/{dir}/{name}")).collect());
    let granary_paths: Arc<Vec<String>> = Arc::new(
        names
            .iter()
            .map(|name| format!("/pulp/content/{dir}/{name}"))
            .collect(),
    );
    let mut outcomes = Vec::new();
    for (addr, paths) in [(nginx, nginx_paths), (granary, granary_paths)] {
        load::run(addr, paths.clone(), size as u64, warmup).await?;
        let outcome = load::run(addr, paths, size as u64, measured).await?;
        eprintln!(
            "  {addr}: {} requests, {} failed, {:.2} s",
            outcome.requests,
            outcome.failures,
            outcome.elapsed.as_secs_f64()
        );
        anyhow::ensure!(outcome.requests > 0, "no request to {addr} succeeded");
        outcomes.push(outcome);
    }
    Ok((outcomes[1], outcomes[0]))
}
