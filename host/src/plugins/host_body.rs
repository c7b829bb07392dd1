//! Host side of `granary:plugin/types.incoming-body`: the body of a request routed to `handle`,
//! read from the client as the plugin asks for it, never buffered whole.
//!
//! The content app hands the body over as a stream of chunks whose errors it has already
//! classified ([`BodyFault`]); this side counts the bytes against the server's upload limit. A
//! fault is recorded in the call's scope as well as returned to the guest, so the client gets
//! the host's answer (413, 408, 400) whatever the plugin makes of the failed read.

use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use wasmtime::component::Resource;

use super::PluginError;
use super::bindings::current::granary::plugin::types;
use super::runtime::guest_error;
use super::scope::CallState;
use crate::storage::StagedBlob;

/// Why a request body could not be read to its end (classified where the body is read).
pub use crate::error::BodyFault;

/// The chunks of a request body as they arrive.
pub type BodyChunks = BoxStream<'static, Result<Bytes, BodyFault>>;

/// What stops a body from being stored: the body, or the storage.
#[derive(Debug)]
pub enum StoreFault {
    /// The body failed.
    Body(BodyFault),
    /// Writing the bytes failed.
    Storage(std::io::Error),
}

/// A request body being read.
pub struct IncomingBody {
    /// `None` once the end (or a fault) was reached.
    chunks: Option<BodyChunks>,
    /// Received but not yet handed out.
    pending: Bytes,
    /// Bytes received from the client so far.
    received: u64,
    /// Most bytes the body may have.
    limit: u64,
}

impl IncomingBody {
    /// A body arriving as `chunks`, refused past `limit` bytes.
    pub fn new(chunks: BodyChunks, limit: u64) -> Self {
        Self {
            chunks: Some(chunks),
            pending: Bytes::new(),
            received: 0,
            limit,
        }
    }

    /// A body already read whole.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        let limit = bytes.len() as u64;
        let chunk: Result<Bytes, BodyFault> = Ok(Bytes::from(bytes));
        Self::new(futures::stream::once(async move { chunk }).boxed(), limit)
    }

    /// A body with nothing (left) in it: a form body, which arrives parsed.
    pub fn empty() -> Self {
        Self {
            chunks: None,
            pending: Bytes::new(),
            received: 0,
            limit: 0,
        }
    }

    /// The next bytes of the body; `None` at its end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyFault> {
        if !self.pending.is_empty() {
            return Ok(Some(std::mem::take(&mut self.pending)));
        }
        let Some(chunks) = self.chunks.as_mut() else {
            return Ok(None);
        };
        loop {
            match chunks.next().await {
                None => {
                    self.chunks = None;
                    return Ok(None);
                }
                Some(Err(fault)) => {
                    self.chunks = None;
                    return Err(fault);
                }
                Some(Ok(chunk)) if chunk.is_empty() => {}
                Some(Ok(chunk)) => {
                    self.received += chunk.len() as u64;
                    if self.received > self.limit {
                        self.chunks = None;
                        return Err(BodyFault::TooLarge(self.limit));
                    }
                    return Ok(Some(chunk));
                }
            }
        }
    }

    /// The whole body, for plugins of a version that receives it as bytes.
    pub async fn read_to_end(mut self) -> Result<Vec<u8>, BodyFault> {
        let mut bytes = Vec::new();
        while let Some(chunk) = self.next_chunk().await? {
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// Writes what is left of the body into `staged`.
    pub async fn copy_into(&mut self, staged: &mut StagedBlob) -> Result<(), StoreFault> {
        while let Some(chunk) = self.next_chunk().await.map_err(StoreFault::Body)? {
            staged.write(&chunk).await.map_err(StoreFault::Storage)?;
        }
        Ok(())
    }
}

impl CallState {
    /// Notes that the request body failed: the client's answer is the host's, not the plugin's.
    pub(super) fn body_failed(&mut self, fault: &BodyFault) -> PluginError {
        self.scope.body_fault.get_or_insert_with(|| fault.clone());
        guest_error(fault.to_string())
    }

    /// The guest's error for a body that could not be stored: a body fault is noted like a failed
    /// read; a storage failure is logged and reported without its details.
    pub(super) fn store_failed(&mut self, fault: StoreFault, what: &str) -> PluginError {
        match fault {
            StoreFault::Body(fault) => self.body_failed(&fault),
            StoreFault::Storage(error) => {
                tracing::error!(%error, "{what}");
                guest_error(format!("{what} failed (see the server log)"))
            }
        }
    }
}

impl types::Host for CallState {}

impl types::HostIncomingBody for CallState {
    async fn read(
        &mut self,
        body: Resource<IncomingBody>,
        max_bytes: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        let max = max_bytes.clamp(1, super::MAX_READ_CHUNK) as usize;
        let body = self.table.get_mut(&body)?;
        if body.pending.is_empty() {
            match body.next_chunk().await {
                Ok(Some(chunk)) => body.pending = chunk,
                Ok(None) => return Ok(Ok(Vec::new())),
                Err(fault) => return Ok(Err(self.body_failed(&fault))),
            }
        }
        let take = max.min(body.pending.len());
        Ok(Ok(body.pending.split_to(take).to_vec()))
    }

    async fn drop(&mut self, body: Resource<IncomingBody>) -> wasmtime::Result<()> {
        self.table.delete(body)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(chunks: &[&'static [u8]], limit: u64) -> IncomingBody {
        let chunks: Vec<Result<Bytes, BodyFault>> = chunks
            .iter()
            .map(|chunk| Ok(Bytes::from_static(chunk)))
            .collect();
        IncomingBody::new(futures::stream::iter(chunks).boxed(), limit)
    }

    #[tokio::test]
    async fn a_body_within_the_limit_reads_whole() {
        let body = body_of(&[b"ab", b"", b"cd"], 4);
        assert_eq!(body.read_to_end().await.unwrap(), b"abcd");
    }

    #[tokio::test]
    async fn a_body_past_the_limit_fails_as_too_large() {
        let body = body_of(&[b"ab", b"cd", b"e"], 4);
        assert_eq!(body.read_to_end().await, Err(BodyFault::TooLarge(4)));
    }

    #[tokio::test]
    async fn a_fault_ends_the_body() {
        let chunks = vec![Ok(Bytes::from_static(b"ab")), Err(BodyFault::Stalled)];
        let mut body = IncomingBody::new(futures::stream::iter(chunks).boxed(), 10);
        assert_eq!(body.next_chunk().await.unwrap().unwrap(), "ab");
        assert_eq!(body.next_chunk().await, Err(BodyFault::Stalled));
        assert_eq!(body.next_chunk().await, Ok(None));
    }
}
