//! Reading the repository version in scope (`publish`, `handle`): its units, all of them or those
//! the host finds from an index, and the distinct values of an indexed field.

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
    Units::of(Selection::All)
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
    Units::of(Selection::Prefix(prefix.to_owned()))
}

/// The units of `content_type` in the version whose indexed field `field` is `value` (e.g. a
/// manifest by its digest), a page at a time like [`units`]. The host answers from its index of
/// the field, which the content type must declare with
/// [`ContentTypeInfo::with_indexed_fields`](crate::ContentTypeInfo::with_indexed_fields).
///
/// ```no_run
/// # fn demo() -> Result<(), granary_sdk::PluginError> {
/// for unit in granary_sdk::content::units_with_value("manifest", "digest", "sha256:ab12") {
///     granary_sdk::log::debug(unit?.natural_key);
/// }
/// # Ok(()) }
/// ```
#[cfg(not(feature = "wit-v0_2"))]
pub fn units_with_value(content_type: &str, field: &str, value: &str) -> Units {
    Units::of(Selection::Value {
        content_type: content_type.to_owned(),
        field: field.to_owned(),
        value: value.to_owned(),
    })
}

/// The distinct values that the units of `content_type` in the version have in the indexed field
/// `field`, in ascending byte order, fetched [`PAGE_SIZE`] at a time (e.g. the project names of a
/// Python index, without reading its units). The field must be declared with
/// [`ContentTypeInfo::with_indexed_fields`](crate::ContentTypeInfo::with_indexed_fields).
///
/// An error from the host is yielded once and ends the iteration.
///
/// ```no_run
/// # fn demo() -> Result<(), granary_sdk::PluginError> {
/// for name in granary_sdk::content::distinct_values("python", "name") {
///     granary_sdk::log::debug(name?);
/// }
/// # Ok(()) }
/// ```
#[cfg(not(feature = "wit-v0_2"))]
pub fn distinct_values(content_type: &str, field: &str) -> DistinctValues {
    let (content_type, field) = (content_type.to_owned(), field.to_owned());
    ValuePages::new(move |after, limit| {
        Ok(raw::distinct_values(&content_type, &field, after, limit)?)
    })
}

/// Iterator over the distinct values of an indexed field; see [`distinct_values`].
#[cfg(not(feature = "wit-v0_2"))]
pub type DistinctValues = ValuePages;

/// Fetches a page of values after a value (none: from the first), at most a number of them.
#[cfg(not(feature = "wit-v0_2"))]
type FetchPage = Box<dyn FnMut(Option<&str>, u32) -> Result<Vec<String>, PluginError>>;

/// Iterator over values in ascending byte order that the host answers a page at a time, each
/// page after the last value of the one before: [`distinct_values`] and
/// [`crate::distributions::base_paths`].
#[cfg(not(feature = "wit-v0_2"))]
pub struct ValuePages {
    fetch: FetchPage,
    page: std::vec::IntoIter<String>,
    /// The last value handed out: the next page starts after it.
    after: Option<String>,
    /// No page is left to fetch (or fetching failed).
    exhausted: bool,
}

#[cfg(not(feature = "wit-v0_2"))]
impl ValuePages {
    /// Pages fetched by `fetch`, [`PAGE_SIZE`] values at a time.
    pub(crate) fn new(
        fetch: impl FnMut(Option<&str>, u32) -> Result<Vec<String>, PluginError> + 'static,
    ) -> Self {
        Self {
            fetch: Box::new(fetch),
            page: Vec::new().into_iter(),
            after: None,
            exhausted: false,
        }
    }

    /// Starts after `value` instead of at the first value (paging as OCI's `_catalog?last=` does).
    pub fn after(mut self, value: &str) -> Self {
        self.after = Some(value.to_owned());
        self
    }
}

#[cfg(not(feature = "wit-v0_2"))]
impl Iterator for ValuePages {
    type Item = Result<String, PluginError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(value) = self.page.next() {
                self.after = Some(value.clone());
                return Some(Ok(value));
            }
            if self.exhausted {
                return None;
            }
            match (self.fetch)(self.after.as_deref(), PAGE_SIZE) {
                Ok(values) => {
                    self.exhausted = values.len() < PAGE_SIZE as usize;
                    self.page = values.into_iter();
                }
                Err(error) => {
                    self.exhausted = true;
                    return Some(Err(error));
                }
            }
        }
    }
}

/// The units of `content_type` whose indexed `field` is `value` (at most 1000) in what another
/// distribution of the plugin serves, the one at exactly `base_path`, when the caller of this
/// request may read it; `None` when there is no such distribution or the caller may not. Their
/// files may then be named in this call's [`crate::HandleOutcome`] `add_units`: a registry's
/// cross-repository blob mount. Only in `handle`, in requests that may change the repository.
///
/// ```no_run
/// # fn demo() -> Result<(), granary_sdk::PluginError> {
/// if let Some(found) = granary_sdk::content::find_at("team/base", "blob", "digest", "sha256:ab")? {
///     // found[0].artifacts[0].sha256 may go into a unit this request adds
/// }
/// # Ok(()) }
/// ```
#[cfg(not(feature = "wit-v0_2"))]
pub fn find_at(
    base_path: &str,
    content_type: &str,
    field: &str,
    value: &str,
) -> Result<Option<Vec<StoredUnit>>, PluginError> {
    Ok(raw::find_at(base_path, content_type, field, value, 1000)?)
}

/// The units of the version that have a file at `relative_path`.
pub fn find_by_path(relative_path: &str) -> Result<Vec<StoredUnit>, PluginError> {
    Ok(raw::find_by_path(relative_path)?)
}

/// Which units of the version a [`Units`] iterator walks.
enum Selection {
    /// All of them.
    All,
    /// Those with a file under this path prefix.
    Prefix(String),
    /// Those whose indexed field has this value.
    #[cfg(not(feature = "wit-v0_2"))]
    Value {
        content_type: String,
        field: String,
        value: String,
    },
}

/// Iterator over the units of the version; see [`units`] and [`units_with_prefix`].
pub struct Units {
    selection: Selection,
    page: std::vec::IntoIter<StoredUnit>,
    /// Where the next page starts; `None` before the first page and after the last.
    cursor: Option<String>,
    /// No page is left to fetch (or fetching failed).
    exhausted: bool,
}

impl Units {
    fn of(selection: Selection) -> Self {
        Self {
            selection,
            page: Vec::new().into_iter(),
            cursor: None,
            exhausted: false,
        }
    }
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
            let cursor = self.cursor.as_deref();
            let page = match &self.selection {
                Selection::All => raw::list_units(cursor, PAGE_SIZE),
                Selection::Prefix(prefix) => raw::list_by_prefix(prefix, cursor, PAGE_SIZE),
                #[cfg(not(feature = "wit-v0_2"))]
                Selection::Value {
                    content_type,
                    field,
                    value,
                } => raw::find_by_field(content_type, field, value, cursor, PAGE_SIZE),
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
