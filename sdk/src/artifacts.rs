//! Reading the artifacts a call was given (the uploaded file in `parse-upload`, the `files` of a
//! `handle` request), and storing small derived files with [`create`]. A request body is stored
//! as an artifact with [`crate::Body::store`].
//!
//! [`Reader`] implements [`std::io::Read`] and [`std::io::Seek`], so archive crates (zip, tar,
//! flate2) can open an upload directly. Each `read` is one call to the host: wrap the reader in a
//! [`std::io::BufReader`] when the consumer makes many small reads.

use std::io::{self, Read, Seek, SeekFrom};

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::harness::imports::artifacts as raw;
#[cfg(target_arch = "wasm32")]
pub(crate) use crate::wit::granary::plugin::artifacts as raw;
use crate::{ArtifactRef, PluginError};

/// The most bytes the host returns from one read (1 MiB).
pub const MAX_READ: u32 = 1024 * 1024;

/// Reads up to `len` bytes (capped by the host at [`MAX_READ`]) at `offset` of the artifact whose
/// sha256 is `sha256`. Returns an empty vector past the end.
pub fn read(sha256: &str, offset: u64, len: u32) -> Result<Vec<u8>, PluginError> {
    Ok(raw::read(sha256, offset, len)?)
}

/// The most bytes [`create`] stores in one artifact (4 MiB).
pub const MAX_CREATE: usize = 4 * 1024 * 1024;

/// Stores `data` (at most [`MAX_CREATE`] bytes) as an artifact, e.g. metadata extracted from an
/// uploaded archive, and returns its reference, so a unit declared by `parse-upload` or added by
/// `handle` can name it by sha256. The host counts it against the call's output cap.
///
/// ```no_run
/// # fn demo() -> Result<(), granary_sdk::PluginError> {
/// let metadata = granary_sdk::artifacts::create(b"Metadata-Version: 2.1\nName: demo\n")?;
/// granary_sdk::log::debug(format!("stored {} ({} bytes)", metadata.sha256, metadata.size));
/// # Ok(()) }
/// ```
pub fn create(data: &[u8]) -> Result<ArtifactRef, PluginError> {
    Ok(raw::create(data)?)
}

/// A seekable reader over an artifact's bytes.
///
/// ```no_run
/// use std::io::Read;
/// # fn demo(upload: &granary_sdk::ArtifactRef) -> Result<(), granary_sdk::PluginError> {
/// let mut magic = [0u8; 4];
/// granary_sdk::artifacts::Reader::new(upload).read_exact(&mut magic)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Reader {
    sha256: String,
    size: u64,
    position: u64,
}

impl Reader {
    /// A reader at the start of `artifact`.
    pub fn new(artifact: &ArtifactRef) -> Self {
        Self {
            sha256: artifact.sha256.clone(),
            size: artifact.size,
            position: 0,
        }
    }

    /// The artifact's size in bytes.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether the artifact is empty.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.size.saturating_sub(self.position);
        let want = (buf.len() as u64).min(remaining).min(u64::from(MAX_READ));
        if want == 0 {
            return Ok(0);
        }
        // `want` is at most MAX_READ, so it fits in a u32.
        let chunk = read(&self.sha256, self.position, want as u32)?;
        // Never trust a longer answer than what was asked for.
        let n = chunk.len().min(want as usize);
        buf[..n].copy_from_slice(&chunk[..n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for Reader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        match target {
            Some(position) => {
                self.position = position;
                Ok(position)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )),
        }
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.position)
    }
}
