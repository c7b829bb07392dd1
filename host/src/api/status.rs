//! `status/` and `livez/`: versions, database and storage health. Readable without credentials,
//! as in Pulp, so load balancers can probe it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use super::routes::Routes;
use crate::db::Backend;
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
    online_workers: [WorkerView; 1],
    database_connection: DatabaseView,
    storage: StorageView,
    content_settings: ContentSettingsView,
}

/// The API level of core or of one plugin, and the package that provides it.
#[derive(Debug, Serialize, ToSchema)]
struct VersionView {
    component: String,
    version: String,
    package: String,
    package_version: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct WorkerView {
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct DatabaseView {
    connected: bool,
    backend: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
struct StorageView {
    backend: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
struct ContentSettingsView {
    content_origin: String,
    content_path_prefix: &'static str,
}

async fn status(State(app): State<AppState>) -> Response {
    let database = sqlx::query("SELECT 1")
        .fetch_one(app.db.pool())
        .await
        .is_ok();
    let body = StatusView {
        versions: super::openapi::components(&app)
            .into_iter()
            .map(|component| VersionView {
                component: component.name,
                version: component.version,
                package: component.package,
                package_version: component.package_version,
            })
            .collect(),
        online_workers: [WorkerView {
            name: app.worker_name.clone(),
        }],
        database_connection: DatabaseView {
            connected: database,
            backend: match app.db.backend() {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgresql",
            },
        },
        storage: StorageView {
            backend: app.blobs.backend_name(),
        },
        content_settings: ContentSettingsView {
            content_origin: app.origin.clone(),
            content_path_prefix: crate::content::CONTENT_ROOT,
        },
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
