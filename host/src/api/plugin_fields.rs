//! Plugin-declared fields of remotes and distributions (`plugin-info.remote-fields` and
//! `distribution-fields`): validated against the plugin's JSON schema, stored as one JSON object
//! (`extra`), handed to the plugin, and shown at the top level of the REST object.
//!
//! The schema language is described and parsed in [`crate::plugins::fields`].

use serde_json::{Map, Value};

use super::support::Fields;
use crate::error::ApiResult;
use crate::plugins::LoadedPlugin;
pub use crate::plugins::fields::Schema;

/// Which object's fields.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// `plugin-info.remote-fields`.
    Remote,
    /// `plugin-info.distribution-fields`.
    Distribution,
}

/// The plugin's schema for `kind`. Validated when the plugin was loaded.
fn schema(plugin: &LoadedPlugin, kind: Kind) -> Schema {
    let text = match kind {
        Kind::Remote => &plugin.info.remote_fields,
        Kind::Distribution => &plugin.info.distribution_fields,
    };
    Schema::parse(text).unwrap_or_default()
}

/// The `extra` JSON to store for a create (`existing` none) or an update (`existing` the stored
/// `extra`) of a remote or distribution of `plugin`; none when an update sets no plugin field.
/// A declared field of the wrong type is a 400 on that field.
pub fn extra(
    plugin: &LoadedPlugin,
    kind: Kind,
    fields: &Fields,
    existing: Option<&str>,
) -> ApiResult<Option<String>> {
    let existing = existing.map(|text| match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    });
    Ok(schema(plugin, kind)
        .extract(&fields.0, existing.as_ref())?
        .map(|extra| Value::Object(extra).to_string()))
}

/// The stored plugin fields of an object (its `extra` column), for its response view (which
/// flattens them first, so the host's own fields win).
pub fn stored(extra: &str) -> Map<String, Value> {
    match serde_json::from_str(extra) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    }
}
