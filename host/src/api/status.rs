//! `status/` and `livez/`: versions, the online processes, database and storage health.
//! Readable without credentials, as in Pulp, so load balancers can probe it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use super::routes::Routes;
use super::support::json_column;
use crate::db::{Backend, Db};
use crate::domain::app_statuses::AppType;
use crate::state::AppState;

/// Routes.
pub fn router() -> Routes {
    Routes::new()
        .route("/pulp/api/v3/status/", get(status))
        .route("/pulp/api/v3/livez/", get(livez))
}

/// `status/`, shaped as Pulp's.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusView {
    versions: Vec<VersionView>,
    /// The task workers whose heartbeat is recent.
    online_workers: Vec<AppStatusView>,
    /// The processes serving the REST API whose heartbeat is recent.
    online_api_apps: Vec<AppStatusView>,
    /// The processes serving content whose heartbeat is recent.
    online_content_apps: Vec<AppStatusView>,
    database_connection: DatabaseView,
    storage: StorageView,
    content_settings: ContentSettingsView,
    /// Pulp's domains (multi-tenancy by URL prefix); Granary has none.
    domain_enabled: bool,
}

/// The API level of core or of one plugin, and the package that provides it.
#[derive(Debug, Serialize, ToSchema)]
struct VersionView {
    component: String,
    version: String,
    package: String,
    package_version: String,
}

/// An online process, as Pulp's `AppStatusSerializer` shows it.
#[derive(Debug, Serialize, ToSchema)]
struct AppStatusView {
    name: String,
    #[schema(format = DateTime)]
    last_heartbeat: String,
    /// `{component: version}` of what the process has loaded.
    #[schema(value_type = Object)]
    versions: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
struct DatabaseView {
    connected: bool,
    backend: &'static str,
}

/// Bytes of the filesystem that holds local storage; null for object storage.
#[derive(Debug, Serialize, ToSchema)]
struct StorageView {
    backend: &'static str,
    total: Option<u64>,
    used: Option<u64>,
    free: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ContentSettingsView {
    content_origin: String,
    content_path_prefix: &'static str,
}

/// The online processes of `app_type`, by name; empty when the database does not answer.
async fn online(db: &Db, app_type: AppType) -> Vec<AppStatusView> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT name, heartbeat, versions FROM app_statuses
         WHERE app_type = $1 AND heartbeat >= $2 ORDER BY name",
    )
    .bind(app_type.name())
    .bind(app_type.online_since())
    .fetch_all(db.pool())
    .await
    .unwrap_or_default();
    rows.into_iter()
        .map(|(name, last_heartbeat, versions)| AppStatusView {
            name,
            last_heartbeat,
            versions: json_column(&versions),
        })
        .collect()
}

async fn status(State(app): State<AppState>) -> Response {
    let database = sqlx::query("SELECT 1")
        .fetch_one(app.db.pool())
        .await
        .is_ok();
    let (total, used, free) = match app.blobs.disk_usage() {
        Some((total, used, free)) => (Some(total), Some(used), Some(free)),
        None => (None, None, None),
    };
    let body = StatusView {
        versions: super::openapi::components(&app.plugins)
            .into_iter()
            .map(|component| VersionView {
                component: component.name,
                version: component.version,
                package: component.package,
                package_version: component.package_version,
            })
            .collect(),
        online_workers: online(&app.db, AppType::Worker).await,
        online_api_apps: online(&app.db, AppType::Api).await,
        online_content_apps: online(&app.db, AppType::Content).await,
        database_connection: DatabaseView {
            connected: database,
            backend: match app.db.backend() {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgresql",
            },
        },
        storage: StorageView {
            backend: app.blobs.backend_name(),
            total,
            used,
            free,
        },
        content_settings: ContentSettingsView {
            content_origin: app.origin.clone(),
            content_path_prefix: crate::content::CONTENT_ROOT,
        },
        domain_enabled: false,
    };
    let status = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn livez() -> StatusCode {
    StatusCode::OK
}
