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

use axum::extract::{DefaultBodyLimit, Multipart, OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::support::{Fields, Page};
use crate::domain::hrefs::{API_ROOT, artifact};
use crate::domain::registry::{self, InstalledRow, RegistryError, info_json};
use crate::error::{ApiError, ApiResult};
use crate::plugins::{LoadedPlugin, PluginSource};
use crate::state::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
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

/// A built-in or plugin-directory plugin.
fn loaded_json(plugin: &LoadedPlugin) -> Value {
    let mut body = info_json(&plugin.info);
    let source = match plugin.source {
        PluginSource::Builtin => "builtin",
        PluginSource::Directory => "directory",
        PluginSource::Installed => "installed",
    };
    let object = body.as_object_mut().expect("info is an object");
    object.insert("pulp_href".into(), json!(href(&plugin.info.name)));
    object.insert("sha256".into(), json!(plugin.sha256));
    object.insert("size".into(), json!(plugin.size));
    object.insert("builtin".into(), json!(plugin.builtin));
    object.insert("source".into(), json!(source));
    object.insert("enabled".into(), json!(true));
    object.insert("artifact".into(), Value::Null);
    body
}

/// An installed plugin, enabled or not, from its row.
fn row_json(row: &InstalledRow, size: Option<u64>) -> Value {
    let mut body = row.info.clone();
    let object = body.as_object_mut().expect("info is an object");
    object.insert("pulp_href".into(), json!(href(&row.name)));
    object.insert("pulp_created".into(), json!(row.created));
    object.insert("pulp_last_updated".into(), json!(row.updated));
    object.insert("sha256".into(), json!(row.sha256));
    object.insert("size".into(), json!(size));
    object.insert("builtin".into(), json!(false));
    object.insert("source".into(), json!("installed"));
    object.insert("enabled".into(), json!(row.enabled));
    object.insert("artifact".into(), json!(artifact(&row.artifact_id)));
    body
}

/// Every plugin, by name: the loaded built-in and plugin-directory ones, and every installed one.
async fn all(app: &AppState) -> ApiResult<Vec<(String, Value)>> {
    let mut plugins: Vec<(String, Value)> = app
        .plugins
        .list()
        .iter()
        .filter(|plugin| plugin.source != PluginSource::Installed)
        .map(|plugin| (plugin.info.name.clone(), loaded_json(plugin)))
        .collect();
    for row in registry::rows(&app.db).await? {
        let size = app.plugins.get(&row.name).map(|p| p.size);
        plugins.push((row.name.clone(), row_json(&row, size)));
    }
    plugins.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(plugins)
}

async fn list(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
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
        .map(|(_, body)| body)
        .collect();
    Ok(page.respond(&app, &uri, count, results))
}

async fn read(State(app): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    all(&app)
        .await?
        .into_iter()
        .find(|(plugin, _)| *plugin == name)
        .map(|(_, body)| Json(body))
        .ok_or_else(ApiError::not_found)
}

/// `POST` multipart `file`: the component. Read into memory (components are small and must be
/// whole to be compiled), refusing it as soon as it passes the size limit.
async fn install(State(app): State<AppState>, mut multipart: Multipart) -> ApiResult<Response> {
    let limit = app.config.plugin_max_bytes;
    let mut component = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|error| ApiError::bad_request(format!("Invalid multipart body: {error}")))?
    {
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
                return Err(ApiError::field("file", registry::too_large(limit)));
            }
            bytes.extend_from_slice(&chunk);
        }
        component = Some(bytes);
    }
    let component = component.ok_or_else(|| ApiError::field("file", "This field is required."))?;
    let installed =
        registry::install(&app.backends(), app.config.plugin_max_bytes, component).await?;
    let status = if installed.replaced_version.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let row = registry::row(&app.db, &installed.plugin.info.name)
        .await?
        .ok_or_else(|| ApiError::internal("an installed plugin has no row"))?;
    let mut body = row_json(&row, Some(installed.plugin.size));
    body["replaced_version"] = json!(installed.replaced_version);
    Ok((status, Json(body)).into_response())
}

/// `PATCH {"enabled": bool}`.
async fn update(
    State(app): State<AppState>,
    Path(name): Path<String>,
    fields: Fields,
) -> ApiResult<Json<Value>> {
    for key in fields.0.keys() {
        if key != "enabled" {
            return Err(ApiError::field(key, "Only `enabled` can be changed."));
        }
    }
    if let Some(enabled) = fields.opt_bool("enabled")? {
        registry::set_enabled(&app.backends(), &name, enabled).await?;
    }
    read(State(app), Path(name)).await
}

async fn remove(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<StatusCode> {
    let force = match query.get("force").map(String::as_str) {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => return Err(ApiError::field("force", "Must be true or false.")),
    };
    registry::remove(&app.backends(), &name, force).await?;
    Ok(StatusCode::NO_CONTENT)
}
