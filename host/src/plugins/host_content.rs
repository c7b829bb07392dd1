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
            scope.db.pool(),
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
            scope.db.pool(),
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
