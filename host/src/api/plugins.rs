//! `plugins/`: the content-type plugins of this server. Built-in ones, those of `--plugin-dir`, and
//! those installed at runtime are listed alike; installed ones can be upgraded, disabled, enabled
//! and removed without a restart.
//!
//! - `POST plugins/` (multipart `file`: a `.wasm` component) validates and installs synchronously:
//!   `201` with the plugin for a new name, `200` for an upgrade of an installed plugin of the same
//!   name. A component that fails a check is a `400` naming the check; nothing is installed.
//! - `PATCH plugins/<name>/` with `{"enabled": false|true}` disables or re-enables it.
//! - `DELETE plugins/<name>/` removes it: `409` while repositories of its types exist, unless
//!   `?force=true`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::access::Call;
use super::list::{self, ExtraFilter, ListRequest, Page};
use super::routes::Routes;
use super::support::{Fields, Form};
use crate::domain::hrefs::{API_ROOT, artifact};
use crate::domain::registry::{self, InstalledRow, RegistryError, info_json};
use crate::error::{ApiError, ApiResult};
use crate::plugins::{LoadedPlugin, PluginSource};
use crate::rbac;
use crate::state::AppState;

/// The access policy of these routes: installing, upgrading, disabling and removing plugins
/// need `core.add_plugin`, `core.change_plugin` and `core.delete_plugin`, which only staff hold
/// unless given `core.plugin_manager`.
const POLICY: &str = "plugins";

/// Routes.
pub fn router() -> Routes {
    Routes::new()
        .route(
            "/pulp/api/v3/plugins/",
            get(list).post(install).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/pulp/api/v3/plugins/{name}/",
            get(read).patch(update).delete(remove),
        )
}

/// `/pulp/api/v3/plugins/<name>/`
pub fn href(name: &str) -> String {
    format!("{API_ROOT}plugins/{name}/")
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Rejected(message) => ApiError::field("file", message),
            RegistryError::Conflict(message) => ApiError::conflict(message),
            RegistryError::NotFound(_) => ApiError::not_found(),
            RegistryError::Internal(error) => ApiError::internal(format!("{error:#}")),
        }
    }
}

/// A plugin as the API shows it: what its `describe` answered, and where it comes from.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PluginView {
    /// `describe`'s answer (name, version, content types, ...), first so that the fields below
    /// win in the object every response is shaped through.
    #[serde(flatten)]
    #[schema(ignore)]
    info: Map<String, Value>,
    pulp_href: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pulp_created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pulp_last_updated: Option<String>,
    sha256: String,
    size: Option<u64>,
    builtin: bool,
    source: &'static str,
    enabled: bool,
    artifact: Option<String>,
    /// The version an upgrade replaced, in the answer to an install.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    replaced_version: Option<Option<String>>,
}

fn object(info: Value) -> Map<String, Value> {
    match info {
        Value::Object(fields) => fields,
        _ => Map::new(),
    }
}

impl PluginView {
    /// A built-in or plugin-directory plugin.
    fn loaded(plugin: &LoadedPlugin) -> PluginView {
        PluginView {
            info: object(info_json(&plugin.info)),
            pulp_href: href(&plugin.info.name),
            pulp_created: None,
            pulp_last_updated: None,
            sha256: plugin.sha256.clone(),
            size: Some(plugin.size),
            builtin: plugin.builtin,
            source: match plugin.source {
                PluginSource::Builtin => "builtin",
                PluginSource::Directory => "directory",
                PluginSource::Installed => "installed",
            },
            enabled: true,
            artifact: None,
            replaced_version: None,
        }
    }

    /// An installed plugin, enabled or not, from its row.
    fn installed(row: InstalledRow, size: Option<u64>) -> PluginView {
        PluginView {
            info: object(row.info),
            pulp_href: href(&row.name),
            pulp_created: Some(row.created),
            pulp_last_updated: Some(row.updated),
            sha256: row.sha256,
            size,
            builtin: false,
            source: "installed",
            enabled: row.enabled,
            artifact: Some(artifact(&row.artifact_id)),
            replaced_version: None,
        }
    }
}

/// Every plugin, by name: the loaded built-in and plugin-directory ones, and every installed one.
async fn all(app: &AppState) -> ApiResult<Vec<(String, PluginView)>> {
    let mut plugins: Vec<(String, PluginView)> = app
        .plugins
        .list()
        .iter()
        .filter(|plugin| plugin.source != PluginSource::Installed)
        .map(|plugin| (plugin.info.name.clone(), PluginView::loaded(plugin)))
        .collect();
    for row in registry::rows(&app.db).await? {
        let size = app.plugins.get(&row.name).map(|p| p.size);
        plugins.push((row.name.clone(), PluginView::installed(row, size)));
    }
    plugins.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(plugins)
}

/// The list filters [`list`] reads.
pub(crate) const FILTERS: &[ExtraFilter] = &[ExtraFilter::one("name", "The plugin of this name.")];

async fn list(
    State(app): State<AppState>,
    ListRequest { query, uri }: ListRequest,
) -> ApiResult<Response> {
    let page = Page::from_query(&query)?;
    let mut plugins = all(&app).await?;
    if let Some(name) = query.get("name") {
        plugins.retain(|(plugin, _)| plugin == name);
    }
    let count = plugins.len() as i64;
    let results = plugins
        .into_iter()
        .skip(page.offset as usize)
        .take(page.limit as usize)
        .map(|(_, view)| view);
    Ok(page.respond(&app, &uri, count, results))
}

async fn read(State(app): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    all(&app)
        .await?
        .into_iter()
        .find(|(plugin, _)| *plugin == name)
        .map(|(_, view)| list::json(&view))
        .ok_or_else(ApiError::not_found)
}

/// `POST` multipart `file`: the component. Read into memory (components are small and must be
/// whole to be compiled), refusing it as soon as it passes the size limit.
async fn install(Call { app, caller }: Call, multipart: Multipart) -> ApiResult<Response> {
    // Before a byte of the component is read.
    caller.authorize_action(&app, POLICY, "create").await?;
    let limit = app.config.plugin_max_bytes;
    let mut component = None;
    let mut form = Form::from(multipart);
    while let Some(mut field) = form.next().await? {
        if field.name() != Some("file") {
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|error| ApiError::field("file", format!("Upload interrupted: {error}")))?
        {
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(ApiError::field_too_large(
                    "file",
                    registry::too_large(limit),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        component = Some(bytes);
    }
    let component = component.ok_or_else(|| ApiError::field("file", "This field is required."))?;
    let installed =
        registry::install(&app.backends(), app.config.plugin_max_bytes, component).await?;
    // The plugin's types may be new: their permissions, roles and policies with them.
    rbac::sync_builtins(&app.db, &app.plugins.rest_names()).await?;
    let status = if installed.replaced_version.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let row = registry::row(&app.db, &installed.plugin.info.name)
        .await?
        .ok_or_else(|| ApiError::internal("an installed plugin has no row"))?;
    let view = PluginView {
        replaced_version: Some(installed.replaced_version),
        ..PluginView::installed(row, Some(installed.plugin.size))
    };
    Ok((status, list::json(&view)).into_response())
}

/// `PATCH {"enabled": bool}`.
async fn update(
    Call { app, caller }: Call,
    Path(name): Path<String>,
    fields: Fields,
) -> ApiResult<Json<Value>> {
    caller
        .authorize_action(&app, POLICY, "partial_update")
        .await?;
    for key in fields.0.keys() {
        if key != "enabled" {
            return Err(ApiError::field(key, "Only `enabled` can be changed."));
        }
    }
    if let Some(enabled) = fields.opt_bool("enabled")? {
        registry::set_enabled(&app.backends(), &name, enabled).await?;
        rbac::sync_builtins(&app.db, &app.plugins.rest_names()).await?;
    }
    read(State(app), Path(name)).await
}

async fn remove(
    Call { app, caller }: Call,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<StatusCode> {
    caller.authorize_action(&app, POLICY, "destroy").await?;
    let force = match query.get("force").map(String::as_str) {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => return Err(ApiError::field("force", "Must be true or false.")),
    };
    registry::remove(&app.backends(), &name, force).await?;
    rbac::sync_builtins(&app.db, &app.plugins.rest_names()).await?;
    Ok(StatusCode::NO_CONTENT)
}
