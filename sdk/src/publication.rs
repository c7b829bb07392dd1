//! Building the publication in scope (`publish` only).
//!
//! Metadata files are appended to with [`write_file`] (or a buffered [`FileWriter`]); stored files
//! are published at a path with a [`Publisher`], which batches the host calls.

use std::io;

use crate::PluginError;
#[cfg(not(target_arch = "wasm32"))]
use crate::harness::imports::publication as raw;
#[cfg(target_arch = "wasm32")]
use crate::wit::granary::plugin::publication as raw;

/// How many entries a [`Publisher`] hands to the host at a time.
pub const BATCH_SIZE: usize = 500;

/// How many bytes a [`FileWriter`] buffers before writing them to the host (64 KiB).
pub const WRITE_CHUNK: usize = 64 * 1024;

/// Appends `data` to the metadata file at `relative_path` of the publication, creating it.
///
/// The host caps the total size of a publication; past the cap this returns its error.
pub fn write_file(relative_path: &str, data: &[u8]) -> Result<(), PluginError> {
    Ok(raw::write_file(relative_path, data)?)
}

/// Publishes stored files at paths of the publication, [`BATCH_SIZE`] at a time.
///
/// Call [`Publisher::finish`] at the end: entries still buffered when a `Publisher` is dropped are
/// not published.
///
/// ```no_run
/// # fn demo() -> Result<(), granary_sdk::PluginError> {
/// let mut publisher = granary_sdk::publication::Publisher::new();
/// for unit in granary_sdk::content::units() {
///     for artifact in unit?.artifacts {
///         publisher.publish(&artifact.relative_path, &artifact.content_artifact)?;
///     }
/// }
/// publisher.finish()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
#[must_use = "call `finish` to publish the last batch"]
pub struct Publisher {
    pending: Vec<(String, String)>,
    published: u64,
}

impl Publisher {
    /// A publisher with nothing published yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes the stored file `content_artifact` (a [`crate::StoredArtifact::content_artifact`]
    /// handle) at `relative_path`. Sends a batch to the host when [`BATCH_SIZE`] are pending.
    pub fn publish(
        &mut self,
        relative_path: &str,
        content_artifact: &str,
    ) -> Result<(), PluginError> {
        self.pending
            .push((relative_path.to_owned(), content_artifact.to_owned()));
        if self.pending.len() >= BATCH_SIZE {
            self.flush()?;
        }
        Ok(())
    }

    /// How many entries were accepted so far (sent or pending).
    pub fn published(&self) -> u64 {
        self.published + self.pending.len() as u64
    }

    /// Sends the pending entries to the host.
    pub fn flush(&mut self) -> Result<(), PluginError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        raw::publish_content(&self.pending)?;
        self.published += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Sends the last batch; returns how many entries were published in all.
    pub fn finish(mut self) -> Result<u64, PluginError> {
        self.flush()?;
        Ok(self.published)
    }
}

/// A metadata file written through [`write_file`] in chunks of [`WRITE_CHUNK`] bytes, so a large
/// index never sits in memory whole. Implements [`std::io::Write`], so `write!` works.
///
/// Call [`FileWriter::finish`] at the end: bytes still buffered when a `FileWriter` is dropped are
/// not written. A file nothing was written to is still created (empty) by `finish`.
///
/// ```no_run
/// use std::io::Write;
/// # fn demo() -> Result<(), granary_sdk::PluginError> {
/// let mut index = granary_sdk::publication::FileWriter::new("index.txt");
/// writeln!(index, "a.txt")?;
/// index.finish()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "call `finish` to write the end of the file"]
pub struct FileWriter {
    relative_path: String,
    buf: Vec<u8>,
    created: bool,
}

impl FileWriter {
    /// A writer appending to the publication's file at `relative_path`.
    pub fn new(relative_path: &str) -> Self {
        Self {
            relative_path: relative_path.to_owned(),
            buf: Vec::with_capacity(WRITE_CHUNK),
            created: false,
        }
    }

    /// Appends `data`, writing to the host each time [`WRITE_CHUNK`] bytes are buffered.
    pub fn append(&mut self, mut data: &[u8]) -> Result<(), PluginError> {
        while !data.is_empty() {
            let n = data.len().min(WRITE_CHUNK - self.buf.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == WRITE_CHUNK {
                self.write_buffer()?;
            }
        }
        Ok(())
    }

    fn write_buffer(&mut self) -> Result<(), PluginError> {
        write_file(&self.relative_path, &self.buf)?;
        self.buf.clear();
        self.created = true;
        Ok(())
    }

    /// Writes what is still buffered (creating the file if nothing was written yet).
    pub fn finish(mut self) -> Result<(), PluginError> {
        if !self.buf.is_empty() || !self.created {
            self.write_buffer()?;
        }
        Ok(())
    }
}

impl io::Write for FileWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.append(data)?;
        Ok(data.len())
    }

    /// Writes the buffered bytes to the host now.
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.write_buffer()?;
        }
        Ok(())
    }
}
