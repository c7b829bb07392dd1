//! Host side of `granary:plugin/sync-sink`: validates each declared batch, then hands it to the
//! sync pipeline over a bounded channel (a full channel makes the guest wait: back-pressure).

use super::bindings::current::granary::plugin::sync_sink;
use super::runtime::SandboxViolation;
use super::scope::{CallState, EmittedBatch};
use super::upstream::OriginPolicy;
use super::{PluginError, UnitDeclaration, validate_relative_path};

/// Most files one unit may declare.
const MAX_ARTIFACTS_PER_UNIT: usize = 1000;

impl sync_sink::Host for CallState {
    async fn emit(
        &mut self,
        units: Vec<UnitDeclaration>,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        if units.len() > super::MAX_EMIT_BATCH {
            return Err(SandboxViolation::new(format!(
                "plugin emitted a batch of {} units; the limit is {} units per batch",
                units.len(),
                super::MAX_EMIT_BATCH
            ))
            .into());
        }
        let origins = self.scope.http.as_ref().map(|http| http.upstream.policy());
        for unit in &units {
            if let Err(message) = validate_declaration(unit, &self.scope.content_types, origins) {
                return Err(SandboxViolation::new(format!(
                    "plugin declared an invalid unit: {message}"
                ))
                .into());
            }
        }
        let Some(sink) = &self.scope.sink else {
            return Err(
                SandboxViolation::new("plugin called sync-sink.emit outside a sync").into(),
            );
        };
        // The artifacts the call may read are those it created (a sync is given none), as in
        // `handle`, whose outcomes may name them the same way.
        let created = units
            .iter()
            .flat_map(|unit| &unit.artifacts)
            .filter(|file| file.url.is_none())
            .filter_map(|file| file.sha256.as_ref())
            .filter(|sha256| self.scope.artifacts.contains_key(*sha256))
            .cloned()
            .collect();
        if sink.send(EmittedBatch { units, created }).await.is_err() {
            return Err(SandboxViolation::new("the sync was stopped by the host").into());
        }
        Ok(Ok(()))
    }
}

/// Checks a unit declared by a plugin: a content type it declared, JSON objects within size,
/// safe relative paths, well-formed digests, and download URLs that the remote's `origins` may
/// reach (a unit declared without a remote may carry no URL).
pub fn validate_declaration(
    unit: &UnitDeclaration,
    content_types: &[String],
    origins: Option<&OriginPolicy>,
) -> Result<(), String> {
    if !content_types.contains(&unit.content_type) {
        return Err(format!("unknown content type {:?}", unit.content_type));
    }
    if unit.natural_key.len() + unit.metadata.len() > super::MAX_UNIT_JSON_BYTES {
        return Err(format!(
            "natural key and metadata exceed {} bytes",
            super::MAX_UNIT_JSON_BYTES
        ));
    }
    for (what, text) in [
        ("natural key", &unit.natural_key),
        ("metadata", &unit.metadata),
    ] {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(_)) => {}
            _ => return Err(format!("{what} {text:.200} is not a JSON object")),
        }
    }
    if unit.artifacts.len() > MAX_ARTIFACTS_PER_UNIT {
        return Err(format!(
            "{} artifacts in one unit; the limit is {MAX_ARTIFACTS_PER_UNIT}",
            unit.artifacts.len()
        ));
    }
    for artifact in &unit.artifacts {
        validate_relative_path(&artifact.relative_path)?;
        if let Some(sha256) = &artifact.sha256
            && !is_sha256(sha256)
        {
            return Err(format!(
                "sha256 {sha256:?} of {:?} is not 64 lower-case hex digits",
                artifact.relative_path
            ));
        }
        if let Some(sha512) = &artifact.sha512
            && !is_lower_hex(sha512, 128)
        {
            return Err(format!(
                "sha512 {sha512:?} of {:?} is not 128 lower-case hex digits",
                artifact.relative_path
            ));
        }
        if let Some(url) = &artifact.url {
            let parsed =
                url::Url::parse(url).map_err(|error| format!("artifact URL {url:?}: {error}"))?;
            let Some(origins) = origins else {
                return Err(format!(
                    "artifact URL {url} is declared without a remote to fetch it from"
                ));
            };
            origins
                .reach(&parsed)
                .map_err(|refused| format!("artifact URL {refused}"))?;
        }
    }
    Ok(())
}

/// Whether `text` is a sha256 in lower-case hex.
pub fn is_sha256(text: &str) -> bool {
    is_lower_hex(text, 64)
}

/// Whether `text` is `digits` lower-case hex digits.
fn is_lower_hex(text: &str, digits: usize) -> bool {
    text.len() == digits
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
