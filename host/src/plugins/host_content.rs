//! Host side of `granary:plugin/content`: read-only paging through the version in scope.

use super::bindings::current::granary::plugin::content;
use super::runtime::{SandboxViolation, guest_error};
use super::scope::{CallState, ContentScope};
use super::units;
use super::{PluginError, StoredUnit};
use crate::plugins::bindings::types::UnitPage;

impl content::Host for CallState {
    async fn list_units(
        &mut self,
        cursor: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<UnitPage, PluginError>> {
        let scope = content_scope(self, "listed")?;
        let page = units::page(
            &scope.db,
            &scope.repository_id,
            scope.version,
            cursor.as_deref().unwrap_or(""),
            page_limit(limit),
        )
        .await;
        Ok(unit_page(page, "listing units for a plugin"))
    }

    async fn find_by_path(
        &mut self,
        relative_path: String,
    ) -> wasmtime::Result<Result<Vec<StoredUnit>, PluginError>> {
        let scope = content_scope(self, "looked up")?;
        let units = units::by_path(
            &scope.db,
            &scope.repository_id,
            scope.version,
            &relative_path,
        )
        .await;
        Ok(answer(units, "finding units for a plugin", "finding units"))
    }

    async fn list_by_prefix(
        &mut self,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<UnitPage, PluginError>> {
        let scope = content_scope(self, "listed")?;
        let page = units::page_by_prefix(
            &scope.db,
            &scope.repository_id,
            scope.version,
            &prefix,
            cursor.as_deref().unwrap_or(""),
            page_limit(limit),
        )
        .await;
        Ok(unit_page(page, "listing units by prefix for a plugin"))
    }

    async fn distinct_values(
        &mut self,
        content_type: String,
        field: String,
        after: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<String>, PluginError>> {
        let scope = content_scope(self, "looked up")?;
        let key = match key_field(scope, &content_type, &field) {
            Ok(key) => key,
            Err(error) => return Ok(Err(error)),
        };
        let values = units::distinct_values(
            &scope.db,
            &scope.repository_id,
            scope.version,
            key,
            after.as_deref().unwrap_or(""),
            page_limit(limit),
        )
        .await;
        Ok(answer(
            values,
            "listing distinct values for a plugin",
            "listing distinct values",
        ))
    }

    async fn find_by_field(
        &mut self,
        content_type: String,
        field: String,
        value: String,
        cursor: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<UnitPage, PluginError>> {
        let scope = content_scope(self, "looked up")?;
        let cursor = cursor.as_deref().unwrap_or("");
        Ok(page_by_field(scope, (&content_type, &field, &value), cursor, limit).await)
    }

    async fn find_at(
        &mut self,
        base_path: String,
        content_type: String,
        field: String,
        value: String,
        limit: u32,
    ) -> wasmtime::Result<Result<Option<Vec<StoredUnit>>, PluginError>> {
        let (Some(elsewhere), true) = (self.scope.elsewhere.clone(), self.scope.write_request)
        else {
            return Err(SandboxViolation::new(
                "plugin called content.find-at outside a handle request that may change the repository",
            )
            .into());
        };
        let other = match elsewhere.readable(&base_path).await {
            Ok(Some(other)) => other,
            Ok(None) => return Ok(Ok(None)),
            Err(error) => {
                return Ok(answer(
                    Err(error),
                    "finding another distribution for a plugin",
                    "finding the distribution",
                ));
            }
        };
        let found = match page_by_field(&other, (&content_type, &field, &value), "", limit).await {
            Ok(page) => page.units,
            Err(error) => return Ok(Err(error)),
        };
        // The caller may read them there: their stored files may be read and added here (a file
        // not downloaded yet is not the caller's to add by its digest).
        let handles: Vec<&str> = found
            .iter()
            .flat_map(|unit| &unit.artifacts)
            .map(|file| file.content_artifact.as_str())
            .collect();
        let stored = units::stored_files(other.db.pool(), &handles).await;
        match answer(stored, "finding stored files for a plugin", "finding units") {
            Ok(stored) => self.scope.artifacts.extend(stored),
            Err(error) => return Ok(Err(error)),
        }
        Ok(Ok(Some(found)))
    }
}

/// A page of the units of `scope`'s version whose indexed field has a value: `(content type,
/// field, value)`, from `cursor`.
async fn page_by_field(
    scope: &ContentScope,
    (content_type, field, value): (&str, &str, &str),
    cursor: &str,
    limit: u32,
) -> Result<UnitPage, PluginError> {
    let key = key_field(scope, content_type, field)?;
    let page = units::page_by_field(
        &scope.db,
        &scope.repository_id,
        scope.version,
        key,
        value,
        cursor,
        page_limit(limit),
    )
    .await;
    unit_page(page, "finding units by field for a plugin")
}

/// The indexed field `field` of the plugin's `content_type`, or the error a guest gets for a
/// field its `describe` does not index (a plugin bug it can fix, not a sandbox violation).
fn key_field<'a>(
    scope: &'a ContentScope,
    content_type: &'a str,
    field: &'a str,
) -> Result<units::KeyField<'a>, PluginError> {
    if !scope.indexes(content_type, field) {
        return Err(guest_error(format!(
            "content type {content_type:?} does not index the field {field:?}: declare it in content-type-info.indexed-fields"
        )));
    }
    Ok(units::KeyField {
        plugin: &scope.plugin,
        type_name: content_type,
        field,
    })
}

/// The page size a guest asked for, within what one answer may carry.
fn page_limit(asked: u32) -> i64 {
    i64::from(asked.clamp(1, super::MAX_LIST_PAGE))
}

/// A page of units as the guest sees it (see [`answer`]; `logged` says what failed).
fn unit_page(
    page: Result<(Vec<StoredUnit>, Option<String>), sqlx::Error>,
    logged: &str,
) -> Result<UnitPage, PluginError> {
    let page = page.map(|(units, next)| UnitPage { units, next });
    answer(page, logged, "listing units")
}

/// The repository version the call may read, or a sandbox violation naming what the plugin `did`.
fn content_scope<'a>(
    state: &'a CallState,
    did: &str,
) -> Result<&'a ContentScope, SandboxViolation> {
    state.scope.content.as_ref().ok_or_else(|| {
        SandboxViolation::new(format!(
            "plugin {did} content outside a call that has a repository version"
        ))
    })
}

/// A database outcome as the guest sees it: the error goes to the server log (`logged`), the
/// guest hears only that `failed` failed.
fn answer<T, E: std::fmt::Display>(
    outcome: Result<T, E>,
    logged: &str,
    failed: &str,
) -> Result<T, PluginError> {
    outcome.map_err(|error| {
        tracing::error!(%error, "{logged}");
        guest_error(format!("{failed} failed (see the server log)"))
    })
}
