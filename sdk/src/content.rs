//! Reading the repository version in scope (`publish`, `handle`).

#[cfg(not(target_arch = "wasm32"))]
use crate::harness::imports::content as raw;
#[cfg(target_arch = "wasm32")]
use crate::wit::granary::plugin::content as raw;
use crate::{PluginError, StoredUnit};

/// How many units [`units`] asks the host for at a time.
pub const PAGE_SIZE: u32 = 500;

/// Every unit of the version, in the host's stable order, fetched [`PAGE_SIZE`] at a time: only
/// one page is held in memory.
///
/// An error from the host is yielded once and ends the iteration.
///
/// ```no_run
/// # fn demo() -> Result<(), granary_sdk::PluginError> {
/// for unit in granary_sdk::content::units() {
///     let unit = unit?;
///     granary_sdk::log::debug(format!("{} {}", unit.content_type, unit.natural_key));
/// }
/// # Ok(()) }
/// ```
pub fn units() -> Units {
    Units {
        prefix: None,
        page: Vec::new().into_iter(),
        cursor: None,
        exhausted: false,
    }
}

/// The units of the version that have a file whose relative path starts with `prefix` (e.g.
/// `requests/` for one Python project), in the host's stable order, a page at a time like
/// [`units`]. The host answers from an index, so this is cheap however large the version is.
///
/// ```no_run
/// # fn demo() -> Result<(), granary_sdk::PluginError> {
/// for unit in granary_sdk::content::units_with_prefix("requests/") {
///     granary_sdk::log::debug(unit?.natural_key);
/// }
/// # Ok(()) }
/// ```
pub fn units_with_prefix(prefix: &str) -> Units {
    Units {
        prefix: Some(prefix.to_owned()),
        page: Vec::new().into_iter(),
        cursor: None,
        exhausted: false,
    }
}

/// The units of the version that have a file at `relative_path`.
pub fn find_by_path(relative_path: &str) -> Result<Vec<StoredUnit>, PluginError> {
    Ok(raw::find_by_path(relative_path)?)
}

/// Iterator over the units of the version; see [`units`] and [`units_with_prefix`].
pub struct Units {
    /// Only units with a file under this path prefix, when set.
    prefix: Option<String>,
    page: std::vec::IntoIter<StoredUnit>,
    /// Where the next page starts; `None` before the first page and after the last.
    cursor: Option<String>,
    /// No page is left to fetch (or fetching failed).
    exhausted: bool,
}

impl Iterator for Units {
    type Item = Result<StoredUnit, PluginError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(unit) = self.page.next() {
                return Some(Ok(unit));
            }
            if self.exhausted {
                return None;
            }
            let page = match &self.prefix {
                None => raw::list_units(self.cursor.as_deref(), PAGE_SIZE),
                Some(prefix) => raw::list_by_prefix(prefix, self.cursor.as_deref(), PAGE_SIZE),
            };
            match page {
                Ok(page) => {
                    self.exhausted = page.next.is_none();
                    self.cursor = page.next;
                    self.page = page.units.into_iter();
                }
                Err(error) => {
                    self.exhausted = true;
                    return Some(Err(error.into()));
                }
            }
        }
    }
}
