//! Item 5: start-up time of `granary serve` and its idle memory.
//!
//! A first start on an empty data directory runs the migrations and compiles the built-in plugin
//! with Cranelift; later starts load the compiled plugin from the on-disk cache. Both are timed
//! from `spawn` to the "listening" line, three times each (the median is reported).

use std::time::Duration;

use crate::Bench;
use crate::report::{Row, Spread};

const RUNS: usize = 3;
/// How long the server sits idle before its memory is read.
const IDLE: Duration = Duration::from_secs(2);

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let mut fresh = Vec::new();
    for run in 0..RUNS {
        let data = bench.dir(&format!("startup-{run}"));
        fresh.push(bench.start_granary(&data)?.ready_after);
        let _ = std::fs::remove_dir_all(&data);
    }
    // The shared server's data directory: the first start fills its plugin cache.
    let data = bench.dir("data");
    drop(bench.start_granary(&data)?);
    let mut existing = Vec::new();
    for _ in 0..RUNS {
        existing.push(bench.start_granary(&data)?.ready_after);
    }
    bench.granary()?;
    tokio::time::sleep(IDLE).await;
    let memory = bench.granary.as_ref().expect("started above").memory()?;

    let target_ms = 1000.0;
    for (measure, times) in [
        (
            "start-up to ready, empty data dir (migrations, plugin compile)",
            &fresh,
        ),
        ("start-up to ready, existing data dir", &existing),
    ] {
        let median = Spread::of(times.iter().map(|time| time.as_secs_f64() * 1000.0)).median;
        bench.row(Row {
            item: 5,
            measure: format!("{measure}, median of {RUNS}"),
            granary: format!("{median:.0} ms"),
            reference: String::new(),
            ratio: None,
            target: "< 1 s",
            holds: Some(median < target_ms),
        });
    }
    let idle_mib = memory.rss_kib as f64 / 1024.0;
    bench.row(Row {
        item: 5,
        measure: "idle RSS, 2 s after ready (2 workers)".into(),
        granary: format!("{idle_mib:.1} MiB"),
        reference: String::new(),
        ratio: None,
        target: "< 50 MiB",
        holds: Some(idle_mib < 50.0),
    });
    Ok(())
}
