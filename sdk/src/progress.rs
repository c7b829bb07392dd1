//! Progress reports that surface on the task (`progress_reports` in the REST API).

#[cfg(not(target_arch = "wasm32"))]
use crate::harness::imports::progress as raw;
#[cfg(target_arch = "wasm32")]
use crate::wit::granary::plugin::progress as raw;

/// Sets the report identified by `code` (e.g. `sync.parsing.metadata`): a human `message`, how
/// many items are `done`, and the `total` when known. Reporting the same code again updates it.
///
/// ```no_run
/// granary_sdk::progress::report("sync.parsing.metadata", "Parsing Metadata Lines", 1000, None);
/// ```
pub fn report(code: &str, message: &str, done: u64, total: Option<u64>) {
    raw::report(code, message, done, total);
}
