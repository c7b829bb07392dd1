//! Item 2: ingest against the machine's hashing limit, `openssl speed -bytes 1048576 sha256`
//! (one process, so one core).
//!
//! - Hashing alone: the `sha2` crate the host uses, 1 MiB blocks, one thread.
//! - Upload: files posted to `content/file/files/` into a repository, one after another, timed
//!   from the first byte sent to the last task completed (upload, hash, commit, content unit,
//!   new repository version).
//! - The same uploads against [`sink`], a minimal receiver that hashes, writes and flushes: the
//!   least a server that keeps uploads durably does, on this machine with this client. Granary
//!   and the receiver take turns for three rounds of new bodies; the rows give the medians.
//! - Sync: policy `immediate` from the local nginx, timed from the sync request to the task
//!   completed (manifest, downloads, hashes, commits, units, version).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use crate::procs::write_back;
use crate::report::{Row, Spread};
use crate::{Bench, LARGE, SMALL, api, fixture, sink};

/// Uploaded files: count and size (distinct from the synced ones).
const UPLOADS: (usize, usize) = (4, 64 * 1024 * 1024);

/// Bytes of one round of uploads.
const UPLOAD_BYTES: usize = UPLOADS.0 * UPLOADS.1;

/// Measured upload rounds, Granary and the minimal receiver taking turns: one round is about a
/// third of a second here, short enough for one busy moment of the VM to move it by a third.
const UPLOAD_ROUNDS: usize = 3;

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
    let sink_dir = bench.dir("sink");
    let sink = sink::start(sink_dir.clone())?;
    let mut rounds = Vec::new();
    for round in 0..UPLOAD_ROUNDS {
        let bodies = upload_bodies(&repository, round);
        // Who goes first alternates, as for the content app (see `serving`), and each run starts
        // with the writes of the one before it on disk.
        let (granary, minimal) = if round % 2 == 0 {
            write_back()?;
            let granary = upload_rate(&api, bodies.clone()).await?;
            write_back()?;
            (
                granary,
                sink::upload_rate(&sink, bodies.clone(), UPLOAD_BYTES).await?,
            )
        } else {
            write_back()?;
            let minimal = sink::upload_rate(&sink, bodies.clone(), UPLOAD_BYTES).await?;
            write_back()?;
            (upload_rate(&api, bodies.clone()).await?, minimal)
        };
        write_back()?;
        let disk = disk_rate(bench.dir(&format!("disk-{round}")), bodies).await?;
        eprintln!(
            "  upload round {round}: Granary {:.0} MB/s, minimal receiver {:.0} MB/s, disk alone {:.0} MB/s",
            granary / 1e6,
            minimal / 1e6,
            disk / 1e6
        );
        rounds.push(UploadRound {
            granary,
            minimal,
            disk,
        });
    }
    drop(sink);

    let upload = Spread::of(rounds.iter().map(|round| round.granary)).median;
    let minimal = Spread::of(rounds.iter().map(|round| round.minimal)).median;
    let upload_range = Spread::of(rounds.iter().map(|round| round.granary / openssl)).ratio_range();
    let against_minimal = Spread::of(rounds.iter().map(|round| round.granary / round.minimal));
    let disk = Spread::of(rounds.iter().map(|round| round.disk / openssl));
    bench.row(Row {
        item: 2,
        measure: format!(
            "upload end to end, {} × {} MiB into a repository; median of {UPLOAD_ROUNDS} rounds ({upload_range})",
            UPLOADS.0,
            UPLOADS.1 >> 20
        ),
        granary: format!("{:.0} MB/s", upload / 1e6),
        reference: limit.clone(),
        ratio: Some(upload / openssl),
        target: "≥ 0.5×",
        holds: Some(upload / openssl >= 0.5),
    });
    bench.row(Row {
        item: 2,
        measure: format!(
            "upload, same bodies and client, against a minimal receiver that only hashes, \
             writes and fdatasyncs each body (hyper, one thread); taking turns, median of \
             {UPLOAD_ROUNDS} rounds ({})",
            against_minimal.ratio_range()
        ),
        granary: format!("{:.0} MB/s", upload / 1e6),
        reference: format!(
            "{:.0} MB/s minimal receiver ({:.2}× openssl)",
            minimal / 1e6,
            minimal / openssl
        ),
        ratio: Some(against_minimal.median),
        target: "",
        holds: None,
    });
    bench.row(Row {
        item: 2,
        measure: format!(
            "the disk alone: the same bodies written to new files and fdatasynced, no network, \
             no hashing; median of {UPLOAD_ROUNDS} rounds ({})",
            disk.ratio_range()
        ),
        granary: String::new(),
        reference: format!("{:.0} MB/s disk", disk.median * openssl / 1e6),
        ratio: Some(disk.median),
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
    // Removed only now: blocks freed on this VM's disk are rewritten 3–4× faster than new ones
    // (see `sink`), and the syncs above would have written into them.
    let _ = std::fs::remove_dir_all(sink_dir);
    for round in 0..UPLOAD_ROUNDS {
        let _ = std::fs::remove_dir_all(bench.dir(&format!("disk-{round}")));
    }
    Ok(())
}

/// Bytes per second of one round of uploads.
struct UploadRound {
    granary: f64,
    minimal: f64,
    /// The same bodies written to new files without network or hashing.
    disk: f64,
}

/// Writes `bodies` to new files in `dir`, flushing each, on a blocking thread: bytes per second.
/// The files stay until the end of the run, like the uploads and the minimal receiver's files.
async fn disk_rate(dir: std::path::PathBuf, bodies: Vec<bytes::Bytes>) -> anyhow::Result<f64> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        std::fs::create_dir_all(&dir)?;
        let started = Instant::now();
        for (index, body) in bodies.iter().enumerate() {
            let mut file = std::fs::File::create(dir.join(format!("body-{index}")))?;
            file.write_all(body)?;
            file.sync_data()?;
        }
        Ok(UPLOAD_BYTES as f64 / started.elapsed().as_secs_f64())
    })
    .await?
}

/// The multipart bodies of one round of uploads: new bytes each round, so no upload finds its
/// artifact stored already.
fn upload_bodies(repository: &str, round: usize) -> Vec<bytes::Bytes> {
    (0..UPLOADS.0)
        .map(|index| {
            let mut data = vec![0u8; UPLOADS.1];
            let seed = 1_000_000 + (round * UPLOADS.0 + index) as u64;
            fixture::fill(&mut data, seed);
            api::upload_body(&format!("upload-{round}-{index}.bin"), repository, &data)
        })
        .collect()
}

/// Uploads `bodies` one after another and waits for their tasks: bytes per second from the
/// first byte sent to the last task completed.
async fn upload_rate(api: &api::Api, bodies: Vec<bytes::Bytes>) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut accepted = Vec::new();
    for body in bodies {
        accepted.push(api.upload(body).await?);
    }
    for answer in &accepted {
        api.wait(answer).await?;
    }
    Ok(UPLOAD_BYTES as f64 / started.elapsed().as_secs_f64())
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
