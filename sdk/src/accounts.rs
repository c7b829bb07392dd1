//! Users' log-ins through a format's own API (`granary:plugin/accounts`), such as `npm login`:
//! available in a [`crate::Plugin::handle`] call at one of the plugin's log-in paths
//! ([`crate::PluginInfo::with_log_in_paths`]), once per call.

use crate::PluginError;
#[cfg(not(target_arch = "wasm32"))]
use crate::harness::imports::accounts as raw;
#[cfg(target_arch = "wasm32")]
use crate::wit::granary::plugin::accounts as raw;

/// Checks `password` as the host checks a log-in (failures count towards its throttling) and,
/// when it is `username`'s, issues an API token for that user: `Some(secret)`, shown to nobody
/// else. `None` for a wrong username or password. `client` names the token for its owner
/// (`"npm login"`).
///
/// ```no_run
/// # fn demo() -> Result<(), granary_sdk::PluginError> {
/// match granary_sdk::accounts::log_in("alice", "secret", "npm login")? {
///     Some(token) => { /* answer the client its token */ let _ = token; }
///     None => { /* 401 */ }
/// }
/// # Ok(()) }
/// ```
pub fn log_in(username: &str, password: &str, client: &str) -> Result<Option<String>, PluginError> {
    Ok(raw::log_in(username, password, client)?)
}
