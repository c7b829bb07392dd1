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

/// An artifact the plugin writes in pieces, hashed by the host as they arrive: a package decoded
/// from a request body as it streams in (npm's publish carries the tarball base64-encoded inside
/// its JSON). It implements [`std::io::Write`], sending the host [`MAX_READ`] bytes at a time;
/// dropped before [`Writer::finish`], it keeps nothing. Only in `handle`, in requests that may
/// change the repository.
///
/// ```no_run
/// use std::io::Write as _;
/// # fn demo(decoded: &[&[u8]]) -> Result<(), granary_sdk::PluginError> {
/// let mut writer = granary_sdk::artifacts::Writer::new()?;
/// for piece in decoded {
///     writer.write_all(piece)?;
/// }
/// let tarball = writer.finish(None)?;
/// # let _ = tarball; Ok(()) }
/// ```
#[cfg(not(feature = "wit-v0_2"))]
pub struct Writer {
    raw: raw::ArtifactWriter,
    /// Written and not sent yet: the host is called once per [`MAX_READ`] bytes.
    buffer: Vec<u8>,
}

#[cfg(not(feature = "wit-v0_2"))]
impl Writer {
    /// Starts an empty artifact.
    pub fn new() -> Result<Self, PluginError> {
        Ok(Self {
            raw: raw::start_artifact()?,
            buffer: Vec::new(),
        })
    }

    /// Ends the artifact and stores it; with `expected_sha256` (lower-case hex), bytes with
    /// another digest are refused (an error on the field `digest`) and nothing is kept.
    pub fn finish(mut self, expected_sha256: Option<&str>) -> Result<ArtifactRef, PluginError> {
        self.send()?;
        Ok(self.raw.finish(expected_sha256)?)
    }

    /// Sends what is buffered to the host.
    fn send(&mut self) -> Result<(), PluginError> {
        if !self.buffer.is_empty() {
            self.raw.write(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }
}

#[cfg(not(feature = "wit-v0_2"))]
impl std::io::Write for Writer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = MAX_READ as usize - self.buffer.len();
        let n = room.min(data.len());
        self.buffer.extend_from_slice(&data[..n]);
        if self.buffer.len() == MAX_READ as usize {
            self.send().map_err(io::Error::other)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send().map_err(io::Error::other)
    }
}

#[cfg(not(feature = "wit-v0_2"))]
impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
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
