//! Host side of `granary:plugin/content`: read-only paging through the version in scope.

use super::bindings::current::granary::plugin::content;
use super::runtime::{SandboxViolation, guest_error};
use super::scope::CallState;
use super::{PluginError, StoredUnit};
use crate::domain::units;
use crate::plugins::bindings::types::UnitPage;

impl content::Host for CallState {
    async fn list_units(
        &mut self,
        cursor: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<UnitPage, PluginError>> {
        let Some(scope) = &self.scope.content else {
            return Err(SandboxViolation::new(
                "plugin listed content outside a call that has a repository version",
            )
            .into());
        };
        let limit = i64::from(limit.clamp(1, super::MAX_LIST_PAGE));
        match units::page(
            scope.db.pool(),
            &scope.repository_id,
            scope.version,
            cursor.as_deref().unwrap_or(""),
            limit,
        )
        .await
        {
            Ok((units, next)) => Ok(Ok(UnitPage { units, next })),
            Err(error) => {
                tracing::error!(%error, "listing units for a plugin");
                Ok(Err(guest_error(
                    "listing units failed (see the server log)",
                )))
            }
        }
    }

    async fn find_by_path(
        &mut self,
        relative_path: String,
    ) -> wasmtime::Result<Result<Vec<StoredUnit>, PluginError>> {
        let Some(scope) = &self.scope.content else {
            return Err(SandboxViolation::new(
                "plugin looked up content outside a call that has a repository version",
            )
            .into());
        };
        match units::by_path(
            scope.db.pool(),
            &scope.repository_id,
            scope.version,
            &relative_path,
        )
        .await
        {
            Ok(units) => Ok(Ok(units)),
            Err(error) => {
                tracing::error!(%error, "finding units for a plugin");
                Ok(Err(guest_error(
                    "finding units failed (see the server log)",
                )))
            }
        }
    }

    async fn list_by_prefix(
        &mut self,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<UnitPage, PluginError>> {
        let Some(scope) = &self.scope.content else {
            return Err(SandboxViolation::new(
                "plugin listed content outside a call that has a repository version",
            )
            .into());
        };
        let limit = i64::from(limit.clamp(1, super::MAX_LIST_PAGE));
        match units::page_by_prefix(
            &scope.db,
            &scope.repository_id,
            scope.version,
            &prefix,
            cursor.as_deref().unwrap_or(""),
            limit,
        )
        .await
        {
            Ok((units, next)) => Ok(Ok(UnitPage { units, next })),
            Err(error) => {
                tracing::error!(%error, "listing units by prefix for a plugin");
                Ok(Err(guest_error(
                    "listing units failed (see the server log)",
                )))
            }
        }
    }
}
