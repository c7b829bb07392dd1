//! Host side of `granary:plugin/artifacts`: chunked reads of the artifacts a call was given,
//! small artifacts a plugin derives (`create`), request bodies stored as they stream in
//! (`store-body`), and artifacts a plugin writes in pieces (`artifact-writer`).

use wasmtime::component::Resource;

use super::bindings::current::granary::plugin::artifacts;
use super::host_body::{IncomingBody, StoreFault};
use super::runtime::{SandboxViolation, guest_error};
use super::scope::{CallState, CreateArtifact};
use super::{ArtifactRef, PluginError};
use crate::storage::{ReceivedBlob, StagedBlob};

/// Artifact writers one call may hold open at once: each holds a staged file (a descriptor and
/// disk space), and a format needs one or two (npm's publish has one tarball).
const MAX_OPEN_WRITERS: usize = 16;

/// An artifact a plugin writes in pieces (`artifacts.artifact-writer`): staged, and hashed by the
/// staging, as it is written; stored at `finish`; its staged file removed when dropped before.
pub struct ArtifactWriter {
    /// None once `finish` was called.
    staged: Option<StagedBlob>,
}

impl CallState {
    /// The guest's error for a call that needs a request that may change the repository (or,
    /// with `in_sync`, a sync, which stores what it reads like `artifacts.create`), or the
    /// artifact store and creator when it is one.
    fn writable_store(
        &self,
        operation: &str,
        in_sync: bool,
    ) -> Result<
        (
            std::sync::Arc<dyn CreateArtifact>,
            std::sync::Arc<crate::storage::BlobStore>,
        ),
        PluginError,
    > {
        let writing = self.scope.write_request || (in_sync && self.scope.sink.is_some());
        match (
            writing,
            self.scope.create_in.clone(),
            self.scope.blobs.clone(),
        ) {
            (true, Some(creator), Some(blobs)) => Ok((creator, blobs)),
            _ if in_sync => Err(guest_error(format!(
                "artifacts.{operation} is available in sync, and in handle in requests that may change the repository"
            ))),
            _ => Err(guest_error(format!(
                "artifacts.{operation} is available in handle, in requests that may change the repository"
            ))),
        }
    }
}

impl artifacts::Host for CallState {
    async fn read(
        &mut self,
        sha256: String,
        offset: u64,
        len: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        let Some(&size) = self.scope.artifacts.get(&sha256) else {
            return Err(SandboxViolation::new(format!(
                "plugin tried to read artifact {sha256}, which this call was not given"
            ))
            .into());
        };
        let Some(blobs) = self.scope.blobs.clone() else {
            return Ok(Err(guest_error("no artifact storage in this call")));
        };
        let len = u64::from(len.min(super::MAX_READ_CHUNK));
        let end = offset.saturating_add(len).min(size);
        // A small read (a wheel's zip directory, its metadata) is made on this thread, or
        // answered from memory, as the content app's are: a trip to the blocking pool each
        // was most of its cost.
        let read = match blobs.read_small(&sha256, size, offset.min(end)..end).await {
            Some(small) => small.map(Vec::from),
            None => blobs.read_range(&sha256, offset, len, size).await,
        };
        match read {
            Ok(bytes) => Ok(Ok(bytes)),
            Err(error) => Ok(Err(guest_error(format!(
                "reading artifact {sha256} failed: {error:#}"
            )))),
        }
    }

    async fn create(
        &mut self,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<ArtifactRef, PluginError>> {
        let (Some(creator), Some(blobs)) = (self.scope.create_in.clone(), self.scope.blobs.clone())
        else {
            return Err(SandboxViolation::new(
                "plugin called artifacts.create outside parse-upload or handle",
            )
            .into());
        };
        if data.len() > super::MAX_CREATE_BYTES {
            return Ok(Err(guest_error(format!(
                "artifacts.create got {} bytes; the limit is {} bytes",
                data.len(),
                super::MAX_CREATE_BYTES
            ))));
        }
        self.charge_output(data.len())?;
        let received = match blobs.keep_bytes(data.into()).await {
            Ok(received) => received,
            Err(error) => {
                return Ok(Err(guest_error(format!(
                    "staging the artifact failed: {error}"
                ))));
            }
        };
        Ok(self.record_created(&*creator, received).await)
    }

    async fn store_body(
        &mut self,
        body: Resource<IncomingBody>,
        expected_sha256: Option<String>,
    ) -> wasmtime::Result<Result<ArtifactRef, PluginError>> {
        let (creator, blobs) = match self.writable_store("store-body", false) {
            Ok(store) => store,
            Err(error) => return Ok(Err(error)),
        };
        let mut staged = match blobs.stage().await {
            Ok(staged) => staged,
            Err(error) => {
                return Ok(Err(self.store_failed(
                    StoreFault::Storage(error),
                    "staging a request body",
                )));
            }
        };
        if let Err(fault) = self.table.get_mut(&body)?.copy_into(&mut staged).await {
            return Ok(Err(self.store_failed(fault, "storing a request body")));
        }
        let received = match staged.finish().await {
            Ok(received) => received,
            Err(error) => {
                return Ok(Err(self.store_failed(
                    StoreFault::Storage(error),
                    "storing a request body",
                )));
            }
        };
        if let Some(expected) = expected_sha256
            && !expected.eq_ignore_ascii_case(&received.sha256)
        {
            return Ok(Err(digest_mismatch(&received.sha256, &expected)));
        }
        Ok(self.record_created(&*creator, received).await)
    }

    async fn start_artifact(
        &mut self,
    ) -> wasmtime::Result<Result<Resource<ArtifactWriter>, PluginError>> {
        let (_, blobs) = match self.writable_store("start-artifact", true) {
            Ok(store) => store,
            Err(error) => return Ok(Err(error)),
        };
        if self.open_writers >= MAX_OPEN_WRITERS {
            return Ok(Err(guest_error(format!(
                "at most {MAX_OPEN_WRITERS} artifact writers may be open at once: finish or drop one first"
            ))));
        }
        match blobs.stage().await {
            Ok(staged) => {
                self.open_writers += 1;
                Ok(Ok(self.table.push(ArtifactWriter {
                    staged: Some(staged),
                })?))
            }
            Err(error) => Ok(Err(
                self.store_failed(StoreFault::Storage(error), "staging an artifact")
            )),
        }
    }
}

impl artifacts::HostArtifactWriter for CallState {
    async fn write(
        &mut self,
        writer: Resource<ArtifactWriter>,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        if data.len() > super::MAX_READ_CHUNK as usize {
            return Ok(Err(guest_error(format!(
                "artifact-writer.write got {} bytes; at most {} per call",
                data.len(),
                super::MAX_READ_CHUNK
            ))));
        }
        self.charge_output(data.len())?;
        let written = match self.table.get_mut(&writer)?.staged.as_mut() {
            Some(staged) => staged.write(&data).await,
            None => return Ok(Err(finished())),
        };
        Ok(written
            .map_err(|error| self.store_failed(StoreFault::Storage(error), "writing an artifact")))
    }

    async fn finish(
        &mut self,
        writer: Resource<ArtifactWriter>,
        expected_sha256: Option<String>,
    ) -> wasmtime::Result<Result<ArtifactRef, PluginError>> {
        let Some(staged) = self.table.get_mut(&writer)?.staged.take() else {
            return Ok(Err(finished()));
        };
        self.open_writers -= 1;
        let (creator, _) = match self.writable_store("artifact-writer.finish", true) {
            Ok(store) => store,
            Err(error) => return Ok(Err(error)),
        };
        let received = match staged.finish().await {
            Ok(received) => received,
            Err(error) => {
                return Ok(Err(
                    self.store_failed(StoreFault::Storage(error), "storing an artifact")
                ));
            }
        };
        if let Some(expected) = expected_sha256
            && !expected.eq_ignore_ascii_case(&received.sha256)
        {
            return Ok(Err(digest_mismatch(&received.sha256, &expected)));
        }
        Ok(self.record_created(&*creator, received).await)
    }

    async fn drop(&mut self, writer: Resource<ArtifactWriter>) -> wasmtime::Result<()> {
        if self.table.delete(writer)?.staged.is_some() {
            self.open_writers -= 1;
        }
        Ok(())
    }
}

/// The error for a write or a finish after `finish`.
fn finished() -> PluginError {
    guest_error("the artifact was finished already")
}

/// The error for bytes whose sha256 is `actual` where the plugin expected `expected`.
pub(super) fn digest_mismatch(actual: &str, expected: &str) -> PluginError {
    PluginError {
        message: format!("the bytes' sha256 is {actual}, not the expected {expected}"),
        field: Some("digest".into()),
    }
}

impl CallState {
    /// Commits and records `received` as an artifact the call made: the plugin may read it back
    /// and name it in `add-units`.
    pub(super) async fn record_created(
        &mut self,
        creator: &dyn CreateArtifact,
        received: ReceivedBlob,
    ) -> Result<ArtifactRef, PluginError> {
        match creator.create(received).await {
            Ok(created) => {
                self.note_created(&created);
                Ok(created)
            }
            Err(error) => {
                tracing::error!(%error, "storing an artifact a plugin created");
                Err(guest_error(
                    "storing the artifact failed (see the server log)",
                ))
            }
        }
    }

    /// Notes an artifact stored for the call, so the plugin may read it and add it.
    pub(super) fn note_created(&mut self, created: &ArtifactRef) {
        self.scope
            .artifacts
            .insert(created.sha256.clone(), created.size);
        self.scope.created.push(created.clone());
    }
}
