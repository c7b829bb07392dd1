//! The body of a request to [`crate::Plugin::handle`], read from the client as the plugin asks for
//! it.
//!
//! A small body (a manifest, a JSON document) is read whole with [`Body::bytes`], which refuses
//! one longer than the plugin expects; a large one is read with [`std::io::Read`] or in chunks
//! with [`Body::read_chunk`], or handed to the host with [`Body::store`] (stored as an artifact,
//! hashed as it streams, never entering the plugin's memory) or [`crate::uploads::append`]. A
//! form body arrives parsed in [`crate::HttpRequest`]'s `form` and `files`, and this one is then
//! empty.
//!
//! Plugins built with the feature `wit-v0_2` (against `granary:plugin@0.2.0`) get the body as
//! bytes the host read (at most 2 MiB); `read_chunk`, `bytes` and `Read` work alike there, and
//! `store` does not exist.

use std::io::{self, Read};

#[cfg(not(feature = "wit-v0_2"))]
use crate::ArtifactRef;
use crate::PluginError;

#[cfg(all(not(feature = "wit-v0_2"), not(target_arch = "wasm32")))]
pub(crate) use crate::harness::imports::types::IncomingBody as RawBody;
#[cfg(all(not(feature = "wit-v0_2"), target_arch = "wasm32"))]
pub(crate) use crate::wit::granary::plugin::types::IncomingBody as RawBody;

/// How many bytes [`Body::read_chunk`] asks the host for at a time (64 KiB).
pub const CHUNK_SIZE: u32 = 64 * 1024;

/// A request body.
pub struct Body {
    #[cfg(not(feature = "wit-v0_2"))]
    raw: RawBody,
    #[cfg(feature = "wit-v0_2")]
    raw: io::Cursor<Vec<u8>>,
    /// Read and not yet handed out (by `Read`, which may ask for less than a chunk).
    pending: Vec<u8>,
    finished: bool,
}

impl Body {
    /// The body the host handed to the export.
    #[doc(hidden)]
    #[cfg(not(feature = "wit-v0_2"))]
    pub fn from_raw(raw: RawBody) -> Self {
        Self {
            raw,
            pending: Vec::new(),
            finished: false,
        }
    }

    /// A body of `bytes`: the whole body of a 0.2.0 request, or a test's (the harness's) body.
    #[cfg(any(feature = "wit-v0_2", not(target_arch = "wasm32")))]
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        #[cfg(feature = "wit-v0_2")]
        let raw = io::Cursor::new(bytes.into());
        #[cfg(not(feature = "wit-v0_2"))]
        let raw = RawBody::new(bytes.into());
        Self {
            raw,
            pending: Vec::new(),
            finished: false,
        }
    }

    /// An empty body (tests).
    #[cfg(any(feature = "wit-v0_2", not(target_arch = "wasm32")))]
    pub fn empty() -> Self {
        Self::from_bytes(Vec::new())
    }

    /// The next bytes of the body (at most [`CHUNK_SIZE`]), or `None` at its end. A body the
    /// client stopped sending, or one longer than the server accepts, is an error (and the
    /// client gets the host's answer, 408 or 413, whatever the plugin answers).
    pub fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, PluginError> {
        if !self.pending.is_empty() {
            return Ok(Some(std::mem::take(&mut self.pending)));
        }
        if self.finished {
            return Ok(None);
        }
        let chunk = self.raw_read(CHUNK_SIZE)?;
        if chunk.is_empty() {
            self.finished = true;
            return Ok(None);
        }
        Ok(Some(chunk))
    }

    #[cfg(not(feature = "wit-v0_2"))]
    fn raw_read(&mut self, max: u32) -> Result<Vec<u8>, PluginError> {
        Ok(self.raw.read(max)?)
    }

    #[cfg(feature = "wit-v0_2")]
    fn raw_read(&mut self, max: u32) -> Result<Vec<u8>, PluginError> {
        let mut chunk = vec![0; max as usize];
        let n = self.raw.read(&mut chunk)?;
        chunk.truncate(n);
        Ok(chunk)
    }

    /// The rest of the body, refused (with an error on the field `body`) when it is longer than
    /// `limit` bytes: read no more than the format allows.
    ///
    /// ```no_run
    /// # fn demo(body: granary_sdk::Body) -> Result<(), granary_sdk::PluginError> {
    /// let manifest = body.bytes(4 * 1024 * 1024)?;
    /// # let _ = manifest; Ok(()) }
    /// ```
    pub fn bytes(mut self, limit: usize) -> Result<Vec<u8>, PluginError> {
        let mut bytes = Vec::new();
        while let Some(chunk) = self.read_chunk()? {
            if bytes.len() + chunk.len() > limit {
                return Err(PluginError::field(
                    "body",
                    format!("the request body is longer than {limit} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// Exactly the next `len` bytes of the body, asking the host for no more than that, so that
    /// what follows can still be stored with [`Body::store`]: a header ahead of its payload
    /// (cargo's publish sends a length-prefixed JSON document, then the `.crate`). A body that
    /// ends sooner is an error on the field `body`.
    ///
    /// ```
    /// let mut body = granary_sdk::Body::from_bytes(*b"\x03\0\0\0abc");
    /// let len = u32::from_le_bytes(body.read_len(4)?.try_into().unwrap());
    /// assert_eq!(body.read_len(len as usize)?, b"abc");
    /// assert!(body.read_len(1).is_err());
    /// # Ok::<(), granary_sdk::PluginError>(())
    /// ```
    pub fn read_len(&mut self, len: usize) -> Result<Vec<u8>, PluginError> {
        let from_pending = len.min(self.pending.len());
        let mut bytes: Vec<u8> = self.pending.drain(..from_pending).collect();
        while bytes.len() < len {
            let missing = u32::try_from(len - bytes.len()).unwrap_or(u32::MAX);
            let chunk = if self.finished {
                Vec::new()
            } else {
                self.raw_read(missing.min(CHUNK_SIZE))?
            };
            if chunk.is_empty() {
                self.finished = true;
                return Err(PluginError::field(
                    "body",
                    format!(
                        "the request body ended after {} of the {len} bytes expected",
                        bytes.len()
                    ),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        // A host that answered more than was asked: keep the excess for the next read (the
        // loop ran only once `pending` was empty).
        let excess = bytes.split_off(len);
        if !excess.is_empty() {
            self.pending = excess;
        }
        Ok(bytes)
    }

    /// Stores the rest of the body as an artifact, hashed by the host as it streams in, and
    /// returns it; the bytes never enter the plugin. With `expected_sha256` (lower-case hex),
    /// a body with another digest is refused (an error on the field `digest`) and nothing is
    /// kept. The artifact may be read back and added with [`crate::HandleOutcome::with_units`].
    /// Only in requests that may change the repository (not GET or HEAD).
    ///
    /// ```no_run
    /// # fn demo(mut body: granary_sdk::Body, digest: &str) -> Result<(), granary_sdk::PluginError> {
    /// let layer = body.store(Some(digest))?;
    /// # let _ = layer; Ok(()) }
    /// ```
    #[cfg(not(feature = "wit-v0_2"))]
    pub fn store(&mut self, expected_sha256: Option<&str>) -> Result<ArtifactRef, PluginError> {
        if !self.pending.is_empty() {
            return Err(PluginError::new(
                "the body was partly read: only the whole rest of a body can be stored",
            ));
        }
        Ok(crate::artifacts::raw::store_body(
            &self.raw,
            expected_sha256,
        )?)
    }

    /// The host's resource, for the imports that take it.
    #[cfg(not(feature = "wit-v0_2"))]
    pub(crate) fn raw(&self) -> Result<&RawBody, PluginError> {
        if self.pending.is_empty() {
            Ok(&self.raw)
        } else {
            Err(PluginError::new(
                "the body was partly read: only the whole rest of a body can be handed to the host",
            ))
        }
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            match self.read_chunk()? {
                Some(chunk) => self.pending = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
