//! Upload sessions held by the host (`granary:plugin/uploads`): bytes that arrive over several
//! requests, possibly at different server processes, and become one artifact. OCI's chunked blob
//! uploads are the model: `POST` starts a session, each `PATCH` appends its body at the offset
//! the client says, `PUT ?digest=` completes it against the digest.
//!
//! A session belongs to the repository of the distribution it was started at and is seen only
//! through that repository's distributions; it expires after the server's
//! `--upload-session-ttl-secs` without an append. [`size`] works in any request; the others
//! only in requests that may change the repository (not GET or HEAD).
//!
//! ```no_run
//! use granary_sdk::{uploads, Body, PluginError};
//!
//! /// `PATCH uploads/<id>`: appends the body at the client's offset and answers the new size.
//! fn patch(id: &str, offset: u64, body: &Body) -> Result<u64, PluginError> {
//!     uploads::append(id, offset, body)
//! }
//! ```

#[cfg(not(target_arch = "wasm32"))]
use crate::harness::imports::uploads as raw;
#[cfg(target_arch = "wasm32")]
use crate::wit::granary::plugin::uploads as raw;
use crate::{ArtifactRef, Body, PluginError};

/// Starts an empty session and returns its id (32 lower-case hex digits, safe in a URL).
pub fn start() -> Result<String, PluginError> {
    Ok(raw::start()?)
}

/// The number of bytes session `id` holds; `None` for a session that does not exist, has ended
/// or expired, or belongs to another repository.
pub fn size(id: &str) -> Option<u64> {
    raw::size(id)
}

/// Appends what is left of `body` to session `id` at `offset`, which must be the session's size
/// (otherwise an error on the field `offset`, and nothing is kept); returns the new size. The
/// bytes go from the client to storage without entering the plugin.
pub fn append(id: &str, offset: u64, body: &Body) -> Result<u64, PluginError> {
    Ok(raw::append(id, offset, body.raw()?)?)
}

/// Ends session `id`, its bytes becoming one artifact. With `expected_sha256` (lower-case hex),
/// bytes with another digest are refused (an error on the field `digest`) and the session stays.
pub fn complete(id: &str, expected_sha256: Option<&str>) -> Result<ArtifactRef, PluginError> {
    Ok(raw::complete(id, expected_sha256)?)
}

/// Ends session `id` and drops its bytes. Returns false when there was no such session.
pub fn cancel(id: &str) -> Result<bool, PluginError> {
    Ok(raw::cancel(id)?)
}
