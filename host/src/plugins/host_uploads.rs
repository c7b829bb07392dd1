//! Host side of `granary:plugin/uploads`: upload sessions of the distribution's repository, held
//! by the host across requests (see [`super::UploadSessions`]).
//!
//! An append streams the request body into a staged file, hashing it, before the session is
//! touched: the session then grows by the whole body or not at all, and an append that lost a
//! race for the same offset keeps nothing.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::bindings::current::granary::plugin::uploads;
use super::host_body::{IncomingBody, StoreFault};
use super::runtime::guest_error;
use super::scope::{CallState, SessionError, UploadSessions};
use super::{ArtifactRef, PluginError};

impl CallState {
    /// The sessions, for an operation that changes them; the guest's error when this call may not.
    fn sessions_to_change(&self, operation: &str) -> Result<Arc<dyn UploadSessions>, PluginError> {
        match (&self.scope.uploads, self.scope.write_request) {
            (Some(sessions), true) => Ok(sessions.clone()),
            _ => Err(guest_error(format!(
                "uploads.{operation} is available in handle, in requests that may change the repository"
            ))),
        }
    }
}

/// The guest's error for a session operation that did not happen.
fn session_error(error: SessionError, operation: &str) -> PluginError {
    match error {
        SessionError::Refused { field, message } => PluginError {
            message,
            field: Some(field.to_owned()),
        },
        SessionError::Internal(error) => {
            tracing::error!(error = %format!("{error:#}"), "uploads.{operation}");
            guest_error(format!("uploads.{operation} failed (see the server log)"))
        }
    }
}

/// The guest's error for a session that is not there.
fn no_session(id: &str) -> PluginError {
    PluginError {
        message: format!("there is no upload session {id:?} (it may have ended or expired)"),
        field: Some("id".into()),
    }
}

impl uploads::Host for CallState {
    async fn start(&mut self) -> wasmtime::Result<Result<String, PluginError>> {
        let sessions = match self.sessions_to_change("start") {
            Ok(sessions) => sessions,
            Err(error) => return Ok(Err(error)),
        };
        Ok(sessions
            .start()
            .await
            .map_err(|error| session_error(error.into(), "start")))
    }

    async fn size(&mut self, id: String) -> wasmtime::Result<Option<u64>> {
        let Some(sessions) = self.scope.uploads.clone() else {
            return Ok(None);
        };
        Ok(sessions.size(&id).await.unwrap_or_else(|error| {
            tracing::error!(error = %format!("{error:#}"), "uploads.size");
            None
        }))
    }

    async fn append(
        &mut self,
        id: String,
        offset: u64,
        body: Resource<IncomingBody>,
    ) -> wasmtime::Result<Result<u64, PluginError>> {
        let sessions = match self.sessions_to_change("append") {
            Ok(sessions) => sessions,
            Err(error) => return Ok(Err(error)),
        };
        // Checked before a byte is read, so a client that lost track is told at once; checked
        // again when the bytes are added, against a concurrent append.
        match sessions.size(&id).await {
            Ok(Some(size)) if size == offset => {}
            Ok(Some(size)) => {
                return Ok(Err(session_error(
                    SessionError::Refused {
                        field: "offset",
                        message: format!(
                            "the upload session holds {size} bytes: the next append is at offset {size}, not {offset}"
                        ),
                    },
                    "append",
                )));
            }
            Ok(None) => return Ok(Err(no_session(&id))),
            Err(error) => return Ok(Err(session_error(error.into(), "append"))),
        }
        let Some(blobs) = self.scope.blobs.clone() else {
            return Ok(Err(guest_error("no artifact storage in this call")));
        };
        let mut staged = match blobs.stage().await {
            Ok(staged) => staged,
            Err(error) => {
                return Ok(Err(self.store_failed(
                    StoreFault::Storage(error),
                    "staging an upload chunk",
                )));
            }
        };
        if let Err(fault) = self.table.get_mut(&body)?.copy_into(&mut staged).await {
            return Ok(Err(self.store_failed(fault, "receiving an upload chunk")));
        }
        if offset + staged.size() > sessions.limit() {
            return Ok(Err(PluginError {
                message: format!(
                    "the upload session would exceed the limit of {} bytes",
                    sessions.limit()
                ),
                field: Some("size".into()),
            }));
        }
        let received = match staged.finish().await {
            Ok(received) => received,
            Err(error) => {
                return Ok(Err(self.store_failed(
                    StoreFault::Storage(error),
                    "receiving an upload chunk",
                )));
            }
        };
        Ok(sessions
            .append(&id, offset, received)
            .await
            .map_err(|error| session_error(error, "append")))
    }

    async fn complete(
        &mut self,
        id: String,
        expected_sha256: Option<String>,
    ) -> wasmtime::Result<Result<ArtifactRef, PluginError>> {
        let sessions = match self.sessions_to_change("complete") {
            Ok(sessions) => sessions,
            Err(error) => return Ok(Err(error)),
        };
        match sessions.complete(&id, expected_sha256.as_deref()).await {
            Ok(artifact) => {
                self.note_created(&artifact);
                Ok(Ok(artifact))
            }
            Err(error) => Ok(Err(session_error(error, "complete"))),
        }
    }

    async fn cancel(&mut self, id: String) -> wasmtime::Result<Result<bool, PluginError>> {
        let sessions = match self.sessions_to_change("cancel") {
            Ok(sessions) => sessions,
            Err(error) => return Ok(Err(error)),
        };
        Ok(sessions
            .cancel(&id)
            .await
            .map_err(|error| session_error(error.into(), "cancel")))
    }
}
