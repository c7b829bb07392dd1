//! Item 1: the content app against nginx, serving the same files from disk to the same client
//! with the same concurrency. nginx reads `www/`; Granary serves the same files, mirrored into
//! its own storage, from a publication. After a warm-up of each, the servers take turns for
//! [`ROUNDS`] measured runs and the row reports the round with the median ratio, with the lowest
//! and highest ratio beside it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::load::{self, Load, Outcome};
use crate::report::Row;
use crate::{Bench, LARGE, SMALL};

/// Measured runs per server. On a shared 2-core VM one run of either server can land in a busy
/// moment; the rounds alternate the servers and the row reports the median ratio.
const ROUNDS: usize = 3;

const SMALL_LOAD: Load = Load {
    connections: 16,
    duration: Duration::from_secs(3),
    max_requests: 500_000,
};
const LARGE_LOAD: Load = Load {
    connections: 4,
    duration: Duration::from_secs(8),
    max_requests: 40,
};
/// Once per server before the measured rounds: fills caches, opens connections, lets the
/// server's pools grow.
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

    let rounds = compare(
        nginx,
        granary,
        "small",
        &small,
        SMALL.1,
        SMALL_WARMUP,
        SMALL_LOAD,
    )
    .await?;
    bench.row(median_row(
        format!(
            "GET {} KiB files, {} connections",
            SMALL.1 >> 10,
            SMALL_LOAD.connections
        ),
        &rounds,
        Figure::RequestsPerSecond,
        (0.8, "≥ 0.8×"),
    ));

    let rounds = compare(
        nginx,
        granary,
        "large",
        &large,
        LARGE.1,
        LARGE_WARMUP,
        LARGE_LOAD,
    )
    .await?;
    bench.row(median_row(
        format!(
            "GET {} MiB files, {} connections",
            LARGE.1 >> 20,
            LARGE_LOAD.connections
        ),
        &rounds,
        Figure::MegabytesPerSecond,
        (0.9, "≥ 0.9×"),
    ));
    Ok(())
}

/// One measured run of each server under the same load.
struct Round {
    granary: Outcome,
    nginx: Outcome,
}

/// What a row compares.
#[derive(Clone, Copy)]
enum Figure {
    RequestsPerSecond,
    MegabytesPerSecond,
}

impl Figure {
    fn of(self, outcome: &Outcome) -> f64 {
        match self {
            Figure::RequestsPerSecond => outcome.requests_per_second(),
            Figure::MegabytesPerSecond => outcome.megabytes_per_second(),
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Figure::RequestsPerSecond => "req/s",
            Figure::MegabytesPerSecond => "MB/s",
        }
    }
}

/// The row of the round with the median ratio; the measure names the lowest and highest ratio.
/// `target` is the least ratio that holds and how the table writes it.
fn median_row(
    measure: String,
    rounds: &[Round],
    figure: Figure,
    (least, target): (f64, &'static str),
) -> Row {
    let mut ratios: Vec<(f64, &Round)> = rounds
        .iter()
        .map(|round| (figure.of(&round.granary) / figure.of(&round.nginx), round))
        .collect();
    ratios.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (ratio, median) = ratios[ratios.len() / 2];
    let (lowest, highest) = (ratios[0].0, ratios[ratios.len() - 1].0);
    Row {
        item: 1,
        measure: format!(
            "{measure}; median of {} alternating rounds ({lowest:.2}–{highest:.2}×)",
            rounds.len()
        ),
        granary: format!("{:.0} {}", figure.of(&median.granary), figure.unit()),
        reference: format!("{:.0} {} nginx", figure.of(&median.nginx), figure.unit()),
        ratio: Some(ratio),
        target,
        holds: Some(ratio >= least && rounds.iter().all(|round| round.granary.failures == 0)),
    }
}

/// Warms both servers, then runs the same load [`ROUNDS`] times against each, nginx
/// (`/<dir>/<name>`) and Granary (`/pulp/content/<dir>/<name>`) taking turns.
async fn compare(
    nginx: SocketAddr,
    granary: SocketAddr,
    dir: &str,
    names: &[String],
    size: usize,
    warmup: Load,
    measured: Load,
) -> anyhow::Result<Vec<Round>> {
    let nginx_paths: Arc<Vec<String>> =
        Arc::new(names.iter().map(|name| format!("/{dir}/{name}")).collect());
    let granary_paths: Arc<Vec<String>> = Arc::new(
        names
            .iter()
            .map(|name| format!("/pulp/content/{dir}/{name}"))
            .collect(),
    );
    for (addr, paths) in [(nginx, &nginx_paths), (granary, &granary_paths)] {
        load::run(addr, paths.clone(), Some(size as u64), warmup).await?;
    }
    let measure = async |addr: SocketAddr, paths: &Arc<Vec<String>>| {
        let outcome = load::run(addr, paths.clone(), Some(size as u64), measured).await?;
        eprintln!(
            "  {addr}: {} requests, {} failed, {:.2} s",
            outcome.requests,
            outcome.failures,
            outcome.elapsed.as_secs_f64()
        );
        anyhow::ensure!(outcome.requests > 0, "no request to {addr} succeeded");
        anyhow::Ok(outcome)
    };
    let mut rounds = Vec::new();
    for round in 0..ROUNDS {
        // Who goes first alternates, so a machine that gets busier or quieter over the rounds
        // does not favour one server.
        let round = if round % 2 == 0 {
            let nginx = measure(nginx, &nginx_paths).await?;
            let granary = measure(granary, &granary_paths).await?;
            Round { granary, nginx }
        } else {
            let granary = measure(granary, &granary_paths).await?;
            let nginx = measure(nginx, &nginx_paths).await?;
            Round { granary, nginx }
        };
        rounds.push(round);
    }
    Ok(rounds)
}
