//! Host side of `granary:plugin/artifacts`: chunked reads of the artifacts a call was given, and
//! small artifacts a plugin derives (`create`).

use super::bindings::current::granary::plugin::artifacts;
use super::runtime::{SandboxViolation, guest_error};
use super::scope::CallState;
use super::{ArtifactRef, PluginError};

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
        let received = match blobs.stage_bytes(&data).await {
            Ok(received) => received,
            Err(error) => {
                return Ok(Err(guest_error(format!(
                    "staging the artifact failed: {error}"
                ))));
            }
        };
        match creator.create(received).await {
            Ok(created) => {
                // The plugin may read back what it stored.
                self.scope
                    .artifacts
                    .insert(created.sha256.clone(), created.size);
                self.scope.created.push(created.clone());
                Ok(Ok(created))
            }
            Err(error) => {
                tracing::error!(%error, "storing an artifact a plugin created");
                Ok(Err(guest_error(
                    "storing the artifact failed (see the server log)",
                )))
            }
        }
    }
}
