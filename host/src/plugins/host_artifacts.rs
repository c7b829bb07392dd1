//! Host side of `granary:plugin/artifacts`: chunked reads of the artifacts a call was given.

use super::PluginError;
use super::bindings::granary::plugin::artifacts;
use super::runtime::{SandboxViolation, guest_error};
use super::scope::CallState;

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
        match blobs.read_range(&sha256, offset, len, size).await {
            Ok(bytes) => Ok(Ok(bytes)),
            Err(error) => Ok(Err(guest_error(format!(
                "reading artifact {sha256} failed: {error:#}"
            )))),
        }
    }
}
