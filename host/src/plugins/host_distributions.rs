//! Host side of `granary:plugin/distributions`: the base paths of the plugin's public
//! distributions, a page at a time (a registry's `_catalog`).

use super::PluginError;
use super::bindings::current::granary::plugin::distributions;
use super::runtime::guest_error;
use super::scope::CallState;
use super::units::byte_order;

impl distributions::Host for CallState {
    async fn list_base_paths(
        &mut self,
        after: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<String>, PluginError>> {
        let Some(catalog) = self.scope.catalog.clone() else {
            return Ok(Err(guest_error(
                "distributions.list-base-paths is available in handle",
            )));
        };
        let collate = byte_order(&catalog.db);
        let listed = sqlx::query_scalar::<_, String>(&format!(
            "SELECT base_path{collate} FROM distributions
             WHERE plugin = $1 AND hidden = 0 AND private = 0 AND content_guard IS NULL AND base_path{collate} > $2
             ORDER BY 1 LIMIT $3"
        ))
        .bind(&catalog.plugin)
        .bind(after.unwrap_or_default())
        .bind(i64::from(limit.clamp(1, super::MAX_LIST_PAGE)))
        .fetch_all(catalog.db.pool())
        .await;
        Ok(listed.map_err(|error| {
            tracing::error!(%error, "listing distributions for a plugin");
            guest_error("listing distributions failed (see the server log)")
        }))
    }
}
