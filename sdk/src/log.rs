//! Structured logs that surface in the server log, tagged with the task.
//!
//! ```no_run
//! granary_sdk::log::info(format!("fetched {} lines", 42));
//! ```

#[cfg(not(target_arch = "wasm32"))]
use crate::harness::imports::log as raw;
#[cfg(target_arch = "wasm32")]
use crate::wit::granary::plugin::log as raw;

/// Logs `message` at trace level.
pub fn trace(message: impl AsRef<str>) {
    raw::log(raw::Level::Trace, message.as_ref());
}

/// Logs `message` at debug level.
pub fn debug(message: impl AsRef<str>) {
    raw::log(raw::Level::Debug, message.as_ref());
}

/// Logs `message` at info level.
pub fn info(message: impl AsRef<str>) {
    raw::log(raw::Level::Info, message.as_ref());
}

/// Logs `message` at warn level.
pub fn warn(message: impl AsRef<str>) {
    raw::log(raw::Level::Warn, message.as_ref());
}

/// Logs `message` at error level.
pub fn error(message: impl AsRef<str>) {
    raw::log(raw::Level::Error, message.as_ref());
}
