//! `status/` and `livez/`: versions, database and storage health. Readable without credentials,
//! as in Pulp, so load balancers can probe it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::db::Backend;
use crate::state::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pulp/api/v3/status/", get(status))
        .route("/pulp/api/v3/livez/", get(livez))
}

async fn status(State(app): State<AppState>) -> Response {
    let database = sqlx::query("SELECT 1")
        .fetch_one(app.db.pool())
        .await
        .is_ok();
    let versions: Vec<_> = super::openapi::components(&app)
        .into_iter()
        .map(|component| {
            json!({
                "component": component.name,
                "version": component.version,
                "package": component.package,
                "package_version": component.package_version,
            })
        })
        .collect();
    let body = json!({
        "versions": versions,
        "online_workers": [{ "name": app.worker_name }],
        "database_connection": { "connected": database, "backend": match app.db.backend() { Backend::Sqlite => "sqlite", Backend::Postgres => "postgresql" } },
        "storage": { "backend": app.blobs.backend_name() },
        "content_settings": { "content_origin": app.origin, "content_path_prefix": crate::content::CONTENT_ROOT },
    });
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
