//! The REST API under `/pulp/api/v3/`, shaped like Pulp 3's so Pulp users' scripts keep working.
//!
//! # Layout
//! One module per resource, each with a `router()`, merged here once behind authentication
//! (`status/` excepted): [`repositories`] (with versions, sync, modify), [`remotes`], [`content`]
//! (with uploads), [`publications`], [`distributions`], [`artifacts`], [`uploads`] (chunked),
//! [`tasks`], [`maintenance`] (orphan cleanup, reclaim, repair), [`users`] (with API tokens),
//! [`plugins`], [`status`], and [`openapi`] (the document describing all of them; public, as
//! `status/`).
//! [`auth`] checks credentials; [`correlation`] gives every request a `Correlation-ID`.
//! Shared request/response helpers live in [`support`]: list filters, ordering and pagination,
//! `fields`/`exclude_fields`, labels, and the update/delete tasks. `docs/rest-api.md` says how
//! each behaviour matches Pulp's.

pub mod artifacts;
pub mod auth;
pub mod content;
pub mod correlation;
pub mod distributions;
pub mod input;
pub mod list;
pub mod maintenance;
pub mod openapi;
pub mod plugin_fields;
pub mod plugins;
pub mod publications;
pub mod remotes;
pub mod repositories;
pub mod status;
pub mod support;
pub mod tasks;
pub mod typed;
pub mod uploads;
pub mod users;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::app::{App, AppState};
use crate::domain::hrefs::{self, Href};
use crate::error::ApiError;

/// All REST routes.
pub fn router(app: &AppState) -> Router<AppState> {
    let protected = Router::new()
        .merge(repositories::router())
        .merge(remotes::router())
        .merge(content::router())
        .merge(publications::router())
        .merge(distributions::router())
        .merge(artifacts::router())
        .merge(tasks::router())
        .merge(plugins::router())
        .merge(uploads::router())
        .merge(maintenance::router())
        .merge(users::router())
        .route_layer(middleware::from_fn_with_state(app.clone(), authenticate));
    Router::new()
        .merge(status::router())
        .merge(openapi::router())
        .merge(protected)
        .layer(middleware::from_fn(correlation::propagate))
}

/// Requires valid credentials of a user on every protected route, and hands the user to the
/// handler as an [`auth::User`] extension.
async fn authenticate(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(user) = auth::authenticate(&app, request.headers()).await? else {
        return Err(ApiError::unauthorized());
    };
    request.extensions_mut().insert(user);
    Ok(next.run(request).await)
}

/// Applies validated changes to a repository, remote or distribution (the work of an update
/// task), and moves its `pulp_last_updated`.
pub async fn update_object(
    app: &App,
    href: &str,
    changes: &support::Changes,
) -> anyhow::Result<()> {
    let (table, id) = match hrefs::parse(&app.plugins.rest_names(), href) {
        Some(Href::Repository { id, .. }) => ("repositories", id),
        Some(Href::Remote { id, .. }) => ("remotes", id),
        Some(Href::Distribution { id, .. }) => ("distributions", id),
        _ => anyhow::bail!("{href} cannot be updated"),
    };
    let mut tx = app.db.begin_write().await?;
    let exists = sqlx::query(&format!("SELECT id FROM {table} WHERE id = $1"))
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await?;
    anyhow::ensure!(exists.is_some(), "{href} no longer exists");
    for (column, value) in changes {
        // Column names come from the API's validation, never from a client; check anyway, as
        // they are spliced into SQL.
        anyhow::ensure!(
            !column.is_empty() && column.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "invalid column {column:?}"
        );
        let sql = format!("UPDATE {table} SET {column} = $2 WHERE id = $1");
        let query = sqlx::query(&sql).bind(&id);
        let query = match value {
            support::ColumnValue::Text(text) => query.bind(text.clone()),
            support::ColumnValue::Int(int) => query.bind(*int),
        };
        query
            .execute(&mut *tx)
            .await
            .map_err(|error| match error.as_database_error() {
                Some(db) if db.is_unique_violation() => {
                    anyhow::anyhow!("{column}: this field must be unique")
                }
                _ => anyhow::Error::from(error),
            })?;
    }
    sqlx::query(&format!("UPDATE {table} SET updated = $2 WHERE id = $1"))
        .bind(&id)
        .bind(crate::db::now())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a repository, remote or distribution (the work of a delete task).
pub async fn delete_object(app: &App, href: &str) -> anyhow::Result<()> {
    let (table, id) = match hrefs::parse(&app.plugins.rest_names(), href) {
        Some(Href::Repository { id, .. }) => ("repositories", id),
        Some(Href::Remote { id, .. }) => ("remotes", id),
        Some(Href::Distribution { id, .. }) => ("distributions", id),
        Some(Href::Publication { id, .. }) => ("publications", id),
        _ => anyhow::bail!("{href} cannot be deleted"),
    };
    let mut tx = app.db.begin_write().await?;
    if table == "repositories" {
        // Content stays (it may be in other repositories); orphan cleanup removes the rest.
        sqlx::query("DELETE FROM repository_content WHERE repository_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE distributions SET repository_id = NULL WHERE repository_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE distributions SET publication_id = NULL WHERE publication_id IN (SELECT id FROM publications WHERE repository_id = $1)",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM published_files WHERE publication_id IN (SELECT id FROM publications WHERE repository_id = $1)")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM publications WHERE repository_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM repository_versions WHERE repository_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
    }
    if table == "publications" {
        sqlx::query("UPDATE distributions SET publication_id = NULL WHERE publication_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM published_files WHERE publication_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
    }
    if table == "remotes" {
        sqlx::query("UPDATE repositories SET remote_id = NULL WHERE remote_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE distributions SET remote_id = NULL WHERE remote_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM remote_artifacts WHERE remote_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
