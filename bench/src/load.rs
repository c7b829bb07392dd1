//! The load generator used for both servers: `connections` keep-alive HTTP/1.1 connections, each
//! sending GETs one after another (hyper's client connection, no pool, no retries), until a
//! request count or a duration is reached. Bodies are read to the end and counted, not kept.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How much load to apply.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Concurrent connections, each with one request in flight.
    pub connections: usize,
    /// No request starts after this.
    pub duration: Duration,
    /// No more requests than this in total.
    pub max_requests: u64,
}

/// What a run achieved.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    /// Requests answered `200 OK` with the expected body length.
    pub requests: u64,
    /// Body bytes of those requests.
    pub bytes: u64,
    /// Requests that failed (status, short body).
    pub failures: u64,
    /// From the first request to the end of the last body.
    pub elapsed: Duration,
}

impl Outcome {
    /// Requests per second.
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Body bytes per second, in MB (10^6 bytes) as `openssl speed` counts.
    pub fn megabytes_per_second(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// GETs `paths` round-robin from `addr`; every body must be `expected_len` bytes when that is
/// given (pages of different lengths give none: any `200 OK` counts).
pub async fn run(
    addr: SocketAddr,
    paths: Arc<Vec<String>>,
    expected_len: Option<u64>,
    load: Load,
) -> anyhow::Result<Outcome> {
    run_with(addr, paths, expected_len, load, &[]).await
}

/// [`run`], every request carrying `headers` (a registry client's `Accept`).
pub async fn run_with(
    addr: SocketAddr,
    paths: Arc<Vec<String>>,
    expected_len: Option<u64>,
    load: Load,
    headers: &'static [(&'static str, &'static str)],
) -> anyhow::Result<Outcome> {
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + load.duration;
    let mut connections = tokio::task::JoinSet::new();
    for _ in 0..load.connections {
        let (paths, issued) = (paths.clone(), issued.clone());
        connections.spawn(async move {
            connection(
                addr,
                &paths,
                expected_len,
                &issued,
                (load.max_requests, deadline),
                headers,
            )
            .await
        });
    }
    let mut total = Outcome::default();
    while let Some(result) = connections.join_next().await {
        let outcome = result??;
        total.requests += outcome.requests;
        total.bytes += outcome.bytes;
        total.failures += outcome.failures;
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

async fn connection(
    addr: SocketAddr,
    paths: &[String],
    expected_len: Option<u64>,
    issued: &AtomicU64,
    (max_requests, deadline): (u64, Instant),
    headers: &[(&str, &str)],
) -> anyhow::Result<Outcome> {
    let mut sender = connect(addr).await?;
    let mut outcome = Outcome::default();
    loop {
        let n = issued.fetch_add(1, Ordering::Relaxed);
        if n >= max_requests || Instant::now() >= deadline {
            return Ok(outcome);
        }
        if sender.ready().await.is_err() {
            // The server closed the keep-alive connection: open another, as any client would.
            sender = connect(addr).await?;
        }
        let path = &paths[(n % paths.len() as u64) as usize];
        let mut request = Request::get(path.as_str()).header(header::HOST, addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::<Bytes>::new())?;
        let response = sender
            .send_request(request)
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let mut body = response.into_body();
        let mut received = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                received += data.len() as u64;
            }
        }
        if status == StatusCode::OK && expected_len.is_none_or(|len| received == len) {
            outcome.requests += 1;
            outcome.bytes += received;
        } else {
            outcome.failures += 1;
        }
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// The load of each measured run of the registry sections (`container`, `cargo`, `npm`).
pub const RUN: Load = Load {
    connections: 32,
    duration: Duration::from_secs(3),
    max_requests: 10_000_000,
};
/// The warm-up of each server before those runs.
pub const WARMUP: Load = Load {
    duration: Duration::from_secs(1),
    ..RUN
};

/// One server's side of a comparison: GETs of `path` at `addr`, whose answers must all be `len`
/// bytes long.
pub struct Target {
    pub addr: SocketAddr,
    pub path: String,
    pub len: usize,
}

/// Requests per second of each target, every request carrying `headers`: a [`WARMUP`] of each,
/// then `rounds` runs of [`RUN`] in which they take turns (first to last, then last to first, so
/// that none always goes first). Every request must succeed.
pub async fn taking_turns(
    targets: &[Target],
    headers: &'static [(&'static str, &'static str)],
    rounds: usize,
) -> anyhow::Result<Vec<Vec<f64>>> {
    for target in targets {
        target_rate(target, headers, WARMUP).await?;
    }
    let mut rates = vec![Vec::new(); targets.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..targets.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for index in order {
            rates[index].push(target_rate(&targets[index], headers, RUN).await?);
        }
    }
    Ok(rates)
}

/// Requests per second of `target` under `load`.
async fn target_rate(
    target: &Target,
    headers: &'static [(&'static str, &'static str)],
    load: Load,
) -> anyhow::Result<f64> {
    let paths = Arc::new(vec![target.path.clone()]);
    let outcome = run_with(target.addr, paths, Some(target.len as u64), load, headers).await?;
    anyhow::ensure!(
        outcome.failures == 0,
        "{} failed requests for {}",
        outcome.failures,
        target.path
    );
    Ok(outcome.requests_per_second())
}
