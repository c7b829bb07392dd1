//! Downloads through the real `curl` binary: what a user would run against the content app.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use tokio::process::Command;

use super::fixture::{FixtureFile, sha256_hex};

/// A response as `curl -D` saw it.
#[derive(Debug)]
pub struct CurlResponse {
    pub status: u16,
    /// Header names are lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl CurlResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == &name.to_ascii_lowercase())
            .map(|(_, value)| value.as_str())
    }
}

/// A scratch directory for downloaded files.
pub struct Downloads {
    dir: tempfile::TempDir,
    counter: std::sync::atomic::AtomicUsize,
}

impl Downloads {
    pub fn new() -> Downloads {
        Downloads {
            dir: tempfile::tempdir().expect("create the download directory"),
            counter: Default::default(),
        }
    }

    fn next_path(&self, suffix: &str) -> PathBuf {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.dir.path().join(format!("{n}.{suffix}"))
    }

    /// `curl -sS -f -o <file> <url>`: the body of a successful response, or curl's complaint.
    pub async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let out = self.next_path("body");
        let output = Command::new("curl")
            .args(["-sS", "-f", "-o"])
            .arg(&out)
            .arg(url)
            .output()
            .await
            .expect("run curl (is it installed?)");
        if !output.status.success() {
            return Err(format!(
                "curl {url} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        // A zero-byte body leaves no file behind on some curl versions.
        Ok(read_or_empty(&out).await)
    }

    /// Runs curl with `extra` arguments (`-I`, `-r 0-9`, `-H ...`), without `-f`, and returns the
    /// status, headers and body of the final response. (With `-I`, curl writes the headers where
    /// the body would go.)
    pub async fn request(&self, url: &str, extra: &[&str]) -> CurlResponse {
        let headers_path = self.next_path("headers");
        let body_path = self.next_path("body");
        let output = Command::new("curl")
            .arg("-sS")
            .args(extra)
            .arg("-D")
            .arg(&headers_path)
            .arg("-o")
            .arg(&body_path)
            .arg(url)
            .output()
            .await
            .expect("run curl (is it installed?)");
        assert!(
            output.status.success(),
            "curl {extra:?} {url} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let raw = String::from_utf8_lossy(&read_or_empty(&headers_path).await).into_owned();
        // The final response: interim ones (`100 Continue`) come first in the dump.
        let last = raw.rfind("HTTP/").unwrap_or(0);
        let raw = raw[last..].to_owned();
        let mut lines = raw.lines();
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in curl's header dump: {raw:?}"));
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(key, value)| (key.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        CurlResponse {
            status,
            headers,
            body: read_or_empty(&body_path).await,
        }
    }

    /// Downloads every file from `base_url` with curl, eight at a time, and checks each against
    /// its sha256. Returns the failures (empty when everything matched).
    pub async fn check_all(&self, base_url: &str, files: &[FixtureFile]) -> Vec<String> {
        futures::stream::iter(files)
            .map(|file| async move {
                let url = format!("{base_url}{}", file.relative_path);
                match self.get(&url).await {
                    Err(err) => Some(err),
                    Ok(bytes) if sha256_hex(&bytes) != file.sha256 => Some(format!(
                        "{url}: got {} bytes with sha256 {}, expected {} bytes with sha256 {}",
                        bytes.len(),
                        sha256_hex(&bytes),
                        file.size(),
                        file.sha256
                    )),
                    Ok(_) => None,
                }
            })
            .buffer_unordered(8)
            .filter_map(|failure| async move { failure })
            .collect()
            .await
    }

    /// Like [`Downloads::check_all`], panicking with every failure.
    pub async fn assert_all_served(&self, base_url: &str, files: &[FixtureFile]) {
        let failures = self.check_all(base_url, files).await;
        assert!(
            failures.is_empty(),
            "{} of {} files were not served correctly:\n{}",
            failures.len(),
            files.len(),
            failures.join("\n")
        );
    }
}

async fn read_or_empty(path: &Path) -> Vec<u8> {
    tokio::fs::read(path).await.unwrap_or_default()
}
