//! The REST API under `/pulp/api/v3/`, shaped like Pulp 3's so Pulp users' scripts keep working.
//!
//! # Layout
//! One module per resource, each with a `router()` (a [`routes::Routes`], which records the
//! template of each route so a test can compare them with the API document; the standard routes
//! of a plugin-typed resource come from [`typed::routes`]), merged here once behind authentication
//! (`status/` excepted): [`repositories`] (with versions, sync, modify), [`remotes`], [`content`]
//! (with uploads), [`publications`], [`distributions`], [`content_guards`], [`artifacts`],
//! [`uploads`] (chunked), [`tasks`], [`maintenance`] (orphan cleanup, reclaim, repair), [`users`]
//! (with API tokens), [`plugins`], [`status`], and [`openapi`] (the document describing all of
//! them; public, as `status/`).
//! [`crate::auth`] checks credentials; [`correlation`] gives every request a `Correlation-ID`.
//! Shared request/response helpers live in [`support`]: list filters, ordering and pagination,
//! `fields`/`exclude_fields`, labels, and queueing the update/delete tasks (whose work is in
//! [`crate::domain::objects`]). `docs/rest-api.md` says how
//! each behaviour matches Pulp's.

pub mod access;
pub mod access_policies;
pub mod acs;
pub mod artifacts;
pub mod blocklists;
pub mod content;
pub mod content_guards;
pub mod core_objects;
pub mod correlation;
pub mod distributions;
pub mod exporters;
pub mod groups;
pub mod importers;
pub mod input;
pub mod list;
pub mod list_expression;
pub mod maintenance;
pub mod object_roles;
pub mod openapi;
pub mod plugin_fields;
pub mod plugins;
pub mod publications;
pub mod remotes;
pub mod repositories;
pub mod role_assignments;
pub mod roles;
pub mod routes;
pub mod status;
pub mod support;
pub mod task_groups;
pub mod tasks;
pub mod typed;
pub mod uploads;
pub mod upstream_pulps;
pub mod users;
pub mod workers;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;

use self::routes::Routes;
use crate::error::ApiError;
use crate::state::AppState;

/// All REST routes.
pub fn router(app: &AppState) -> Router<AppState> {
    let protected = protected_routes()
        .into_router()
        .route_layer(middleware::from_fn_with_state(app.clone(), authenticate));
    Router::new()
        .merge(public_routes())
        .merge(openapi::router())
        .merge(protected)
        .layer(middleware::from_fn(correlation::propagate))
}

/// The routes that require credentials.
fn protected_routes() -> Routes {
    Routes::new()
        .merge(repositories::router())
        .merge(blocklists::router())
        .merge(remotes::router())
        .merge(content::router())
        .merge(publications::router())
        .merge(distributions::router())
        .merge(artifacts::router())
        .merge(tasks::router())
        .merge(workers::router())
        .merge(task_groups::router())
        .merge(acs::router())
        .merge(exporters::router())
        .merge(importers::router())
        .merge(upstream_pulps::router())
        .merge(plugins::router())
        .merge(uploads::router())
        .merge(maintenance::router())
        .merge(users::router())
        .merge(roles::router())
        .merge(groups::router())
        .merge(role_assignments::router())
        .merge(access_policies::router())
        .merge(content_guards::router())
}

/// The routes anyone may call, as in Pulp (the document's own are [`openapi::router`]'s).
fn public_routes() -> Routes {
    status::router()
}

/// The template of every route [`router`] registers through [`Routes`], for the test that
/// compares them with the API document.
#[cfg(test)]
pub(crate) fn route_templates() -> Vec<String> {
    let routes = protected_routes().merge(public_routes());
    routes.templates().to_vec()
}

/// Requires valid credentials of a user on every protected route, and hands the user to the
/// handler as an [`crate::auth::User`] extension.
async fn authenticate(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let client = crate::auth::client_address(request.extensions());
    let Some(user) = app
        .authenticator
        .authenticate(request.headers(), client)
        .await?
    else {
        return Err(ApiError::unauthorized());
    };
    request.extensions_mut().insert(user.clone());
    Ok(crate::auth::CURRENT_USER
        .scope(user, next.run(request))
        .await)
}
