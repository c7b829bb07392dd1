//! The plugin's distributions (`granary:plugin/distributions`), for a registry's catalogue
//! (`GET /v2/_catalog?n=&last=`): the base paths anyone may read, without listing units.

use crate::content::ValuePages;
#[cfg(not(target_arch = "wasm32"))]
use crate::harness::imports::distributions as raw;
#[cfg(target_arch = "wasm32")]
use crate::wit::granary::plugin::distributions as raw;

/// The base paths of the plugin's distributions that anyone may read (not hidden, without a
/// content guard), in ascending byte order, fetched [`crate::content::PAGE_SIZE`] at a time.
///
/// ```no_run
/// # fn demo() -> Result<(), granary_sdk::PluginError> {
/// // `_catalog?n=10&last=team/app`
/// let names: Vec<String> = granary_sdk::distributions::base_paths()
///     .after("team/app")
///     .take(10)
///     .collect::<Result<_, _>>()?;
/// # let _ = names; Ok(()) }
/// ```
pub fn base_paths() -> ValuePages {
    ValuePages::new(|after, limit| Ok(raw::list_base_paths(after, limit)?))
}
