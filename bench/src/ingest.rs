//! Item 2: ingest against the machine's hashing limit, `openssl speed -bytes 1048576 sha256`
//! (one process, so one core).
//!
//! - Hashing alone: the `sha2` crate the host uses, 1 MiB blocks, one thread.
//! - Upload: files posted to `content/file/files/` into a repository, one after another, timed
//!   from the first byte sent to the last task completed (upload, hash, commit, content unit,
//!   new repository version).
//! - The same uploads against [`sink`], a minimal receiver that hashes, writes and flushes: the
//!   least a server that keeps uploads durably does, on this machine with this client.
//! - Sync: policy `immediate` from the local nginx, timed from the sync request to the task
//!   completed (manifest, downloads, hashes, commits, units, version).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use crate::report::Row;
use crate::{Bench, LARGE, SMALL, api, fixture, sink};

/// Uploaded files: count and size (distinct from the synced ones).
const UPLOADS: (usize, usize) = (4, 64 * 1024 * 1024);

/// Hashing loop length.
const HASH_FOR: Duration = Duration::from_secs(3);

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let openssl = openssl_sha256()?;
    let sha2 = tokio::task::spawn_blocking(sha2_speed).await?;
    let limit = format!("{:.0} MB/s openssl", openssl / 1e6);
    bench.row(Row {
        item: 2,
        measure: "sha256 of 1 MiB blocks, one core: `sha2` crate".into(),
        granary: format!("{:.0} MB/s", sha2 / 1e6),
        reference: limit.clone(),
        ratio: Some(sha2 / openssl),
        target: "≥ 0.8×",
        holds: Some(sha2 / openssl >= 0.8),
    });

    let api = api::Api::new(bench.granary()?)?;
    let repository = api.repository("uploads").await?;
    let bodies: Vec<_> = (0..UPLOADS.0)
        .map(|index| {
            let mut data = vec![0u8; UPLOADS.1];
            fixture::fill(&mut data, 1_000_000 + index as u64);
            api::upload_body(&format!("upload-{index}.bin"), &repository, &data)
        })
        .collect();
    let sink_bodies = bodies.clone();
    let started = Instant::now();
    let mut accepted = Vec::new();
    for body in bodies {
        accepted.push(api.upload(body).await?);
    }
    for answer in &accepted {
        api.wait(answer).await?;
    }
    let upload = (UPLOADS.0 * UPLOADS.1) as f64 / started.elapsed().as_secs_f64();
    bench.row(Row {
        item: 2,
        measure: format!(
            "upload end to end, {} × {} MiB into a repository",
            UPLOADS.0,
            UPLOADS.1 >> 20
        ),
        granary: format!("{:.0} MB/s", upload / 1e6),
        reference: limit.clone(),
        ratio: Some(upload / openssl),
        target: "≥ 0.5×",
        holds: Some(upload / openssl >= 0.5),
    });
    let sink = sink::start(bench.dir("sink.bin"))?;
    let minimal = sink::upload_rate(&sink, sink_bodies, UPLOADS.0 * UPLOADS.1).await?;
    drop(sink);
    let _ = std::fs::remove_file(bench.dir("sink.bin"));
    bench.row(Row {
        item: 2,
        measure: "upload, same bodies and client, against a minimal receiver that only hashes, \
                  writes and fdatasyncs each body (hyper, one thread)"
            .into(),
        granary: format!("{:.0} MB/s", upload / 1e6),
        reference: format!(
            "{:.0} MB/s minimal receiver ({:.2}× openssl)",
            minimal / 1e6,
            minimal / openssl
        ),
        ratio: Some(upload / minimal),
        target: "",
        holds: None,
    });

    let elapsed = bench.large_mirror().await?;
    let sync = (LARGE.0 * LARGE.1) as f64 / elapsed.as_secs_f64();
    bench.row(Row {
        item: 2,
        measure: format!(
            "sync immediate from nginx, {} × {} MiB",
            LARGE.0,
            LARGE.1 >> 20
        ),
        granary: format!("{:.0} MB/s", sync / 1e6),
        reference: limit,
        ratio: Some(sync / openssl),
        target: "≥ 0.5×",
        holds: Some(sync / openssl >= 0.5),
    });

    let elapsed = bench.small_mirror().await?;
    bench.row(Row {
        item: 2,
        measure: format!(
            "sync immediate from nginx, {} × {} KiB (per-file cost)",
            SMALL.0,
            SMALL.1 >> 10
        ),
        granary: format!("{:.0} files/s", SMALL.0 as f64 / elapsed.as_secs_f64()),
        reference: String::new(),
        ratio: None,
        target: "",
        holds: None,
    });
    Ok(())
}

/// Bytes per second `openssl speed` reports for sha256 over 1 MiB blocks.
fn openssl_sha256() -> anyhow::Result<f64> {
    let output = Command::new("openssl")
        .args(["speed", "-seconds", "3", "-bytes", "1048576", "sha256"])
        .output()
        .context("running openssl speed (apt-get install -y openssl)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    // The last line reads `sha256   1234567.89k`: thousands of bytes per second.
    text.lines()
        .rev()
        .find(|line| line.starts_with("sha256"))
        .and_then(|line| line.split_whitespace().last())
        .and_then(|value| value.trim_end_matches('k').parse::<f64>().ok())
        .map(|thousands| thousands * 1000.0)
        .with_context(|| format!("unexpected openssl speed output: {text}"))
}

/// Bytes per second of the `sha2` crate over 1 MiB blocks, one thread.
fn sha2_speed() -> f64 {
    let mut block = vec![0u8; 1024 * 1024];
    fixture::fill(&mut block, 7);
    let started = Instant::now();
    let mut hashed = 0u64;
    while started.elapsed() < HASH_FOR {
        std::hint::black_box(Sha256::digest(&block));
        hashed += block.len() as u64;
    }
    hashed as f64 / started.elapsed().as_secs_f64()
}
