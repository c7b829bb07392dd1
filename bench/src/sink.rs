//! The upload's second reference: the least a server that keeps uploads durably has to do, on the
//! same machine and with the same client. A hyper HTTP/1 server on a thread of its own hashes each
//! request body with `sha2` as it arrives, writes it to a new file, flushes the file to disk
//! (`fdatasync`) and answers with the digest. Every body gets a file of its own, kept, as a store
//! keeps what it accepted: rewriting one file was 3–4× faster than writing new ones on the VM of
//! `docs/performance.md` (the disk allocates new blocks at about 320 MB/s there). No multipart
//! parsing, database, task or content unit: what is left of the gap between Granary and openssl
//! once this is subtracted is Granary's.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest as _, Sha256};
use tokio::sync::oneshot;

/// A running receiver; dropping it stops it.
pub struct Sink {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts a receiver on 127.0.0.1 that stores each body it receives in a new file in `dir`.
pub fn start(dir: PathBuf) -> anyhow::Result<Sink> {
    std::fs::create_dir_all(&dir)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the receiver's runtime")?;
    let thread = std::thread::Builder::new()
        .name("upload-sink".into())
        .spawn(move || runtime.block_on(serve(listener, dir, stopped)))?;
    Ok(Sink {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}

async fn serve(listener: std::net::TcpListener, dir: PathBuf, mut stopped: oneshot::Receiver<()>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let received = Arc::new(AtomicU64::new(0));
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { return };
                let (dir, received) = (dir.clone(), received.clone());
                let service = service_fn(move |request| {
                    let number = received.fetch_add(1, Ordering::Relaxed);
                    store(request, dir.join(format!("body-{number}")))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        }
    }
}

/// Hashes, writes and flushes one body; answers with its digest, or 500 and the error.
async fn store(
    request: Request<Incoming>,
    file: PathBuf,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let mut body = request.into_body();
    let mut hasher = Sha256::new();
    let mut written = std::fs::File::create(&file);
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        hasher.update(&data);
        if let Ok(out) = &mut written
            && let Err(error) = out.write_all(&data)
        {
            written = Err(error);
        }
    }
    let (status, body) = match written.and_then(|out| out.sync_data()) {
        Ok(()) => (StatusCode::OK, format!("{:x}", hasher.finalize())),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}

/// Posts `bodies` one after another to the receiver; returns bytes per second of the bodies.
pub async fn upload_rate(sink: &Sink, bodies: Vec<Bytes>, bytes: usize) -> anyhow::Result<f64> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let started = std::time::Instant::now();
    for body in bodies {
        let response = client
            .post(format!("http://{}/", sink.addr))
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "the receiver failed: {text}");
    }
    Ok(bytes as f64 / started.elapsed().as_secs_f64())
}
