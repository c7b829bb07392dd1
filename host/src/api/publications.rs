//! `publications/<plugin>/<type>/`: what a client of a repository version needs, rendered by the
//! plugin.

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::support::{
    Bind, Conditions, Fields, ListQuery, ListSpec, Page, common_filters, fetch_page, object_id,
    order_by, repository_type, shaped, spawn_delete, spawn_task,
};
use crate::domain::hrefs::{self, Href};
use crate::error::{ApiError, ApiResult};
use crate::state::{App, AppState};
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pulp/api/v3/publications/", get(list_all))
        .route(
            "/pulp/api/v3/publications/{plugin}/{type}/",
            get(list).post(create),
        )
        .route(
            "/pulp/api/v3/publications/{plugin}/{type}/{id}/",
            get(read).delete(destroy),
        )
}

const COLUMNS: &str = "p.id, p.plugin, p.type_name, p.repository_id, v.number, p.created";

fn to_json(row: &AnyRow) -> Value {
    let (id, plugin, type_name, repository_id): (String, String, String, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    json!({
        "pulp_href": hrefs::publication(&plugin, &type_name, &id),
        "prn": format!("prn:{plugin}.{type_name}publication:{id}"),
        "pulp_created": row.get::<String, _>(5),
        "pulp_last_updated": row.get::<String, _>(5),
        "repository": hrefs::repository(&plugin, &type_name, &repository_id),
        "repository_version": hrefs::version(&plugin, &type_name, &repository_id, row.get(4)),
    })
}

const SPEC: ListSpec = ListSpec {
    from: "publications p JOIN repository_versions v ON v.id = p.repository_version_id",
    id: "p.id",
    name: None,
    labels: None,
    orderings: &[
        ("pulp_created", "p.created"),
        ("pk", "p.id"),
        ("pulp_id", "p.id"),
    ],
    default_ordering: "-pulp_created",
};

async fn list(
    State(app): State<AppState>,
    Path((plugin, type_name)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    repository_type(&app, &plugin, &type_name)?;
    let mut conditions = Conditions::new();
    conditions.push(
        "p.plugin = ? AND p.type_name = ?",
        [Bind::from(plugin), Bind::from(type_name)],
    );
    respond_list(&app, &query, &uri, conditions).await
}

/// `publications/`: publications of every type.
async fn list_all(
    State(app): State<AppState>,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    respond_list(&app, &query, &uri, Conditions::new()).await
}

async fn respond_list(
    app: &App,
    query: &ListQuery,
    uri: &Uri,
    mut conditions: Conditions,
) -> ApiResult<Response> {
    let page = Page::from_query(query)?;
    conditions.push("p.complete = 1", []);
    common_filters(app, query, &SPEC, &mut conditions)?;
    if let Some(href) = query.get("repository_version") {
        let Some(Href::Version { id, number, .. }) = hrefs::parse(href) else {
            return Err(ApiError::field(
                "repository_version",
                format!("URI not valid: {href}"),
            ));
        };
        conditions.push(
            "p.repository_id = ? AND v.number = ?",
            [Bind::Text(id), Bind::Int(number)],
        );
    }
    if let Some(href) = query.get("repository") {
        let Some(Href::Repository { id, .. }) = hrefs::parse(href) else {
            return Err(ApiError::field(
                "repository",
                format!("URI not valid: {href}"),
            ));
        };
        conditions.push("p.repository_id = ?", [Bind::Text(id)]);
    }
    let order = order_by(query, &SPEC)?;
    let (total, rows) = fetch_page(app, &SPEC, COLUMNS, &conditions, &order, &page).await?;
    Ok(page.respond(app, uri, total, rows.iter().map(to_json).collect()))
}

async fn create(
    State(app): State<AppState>,
    Path((plugin, type_name)): Path<(String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    repository_type(&app, &plugin, &type_name)?;
    let (repository_id, number) = match (
        fields.opt_href("repository")?,
        fields.opt_href("repository_version")?,
    ) {
        (Some(Href::Repository { plugin: p, id, .. }), None) if p == plugin => {
            let row = sqlx::query("SELECT latest_version FROM repositories WHERE id = $1")
                .bind(&id)
                .fetch_optional(app.db.pool())
                .await?
                .ok_or_else(|| {
                    ApiError::field("repository", "Invalid hyperlink - Object does not exist.")
                })?;
            (id, row.get::<i64, _>(0))
        }
        (
            None,
            Some(Href::Version {
                plugin: p,
                id,
                number,
                ..
            }),
        ) if p == plugin => {
            sqlx::query(
                "SELECT id FROM repository_versions WHERE repository_id = $1 AND number = $2",
            )
            .bind(&id)
            .bind(number)
            .fetch_optional(app.db.pool())
            .await?
            .ok_or_else(|| {
                ApiError::field(
                    "repository_version",
                    "Invalid hyperlink - Object does not exist.",
                )
            })?;
            (id, number)
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "Only one of 'repository' and 'repository_version' may be given.",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "Either 'repository' or 'repository_version' must be given.",
            ));
        }
        (Some(_), None) => {
            return Err(ApiError::field(
                "repository",
                format!("Expected the href of a {plugin} repository."),
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::field(
                "repository_version",
                format!("Expected the href of a {plugin} repository version."),
            ));
        }
    };
    let lock = ResourceLock::shared(hrefs::repository(&plugin, &type_name, &repository_id));
    spawn_task(
        &app,
        "granary.tasks.publish",
        TaskArgs::Publish {
            repository_id,
            version: number,
        },
        &[lock],
    )
    .await
}

async fn load(app: &AppState, plugin: &str, type_name: &str, id: &str) -> ApiResult<AnyRow> {
    repository_type(app, plugin, type_name)?;
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM publications p JOIN repository_versions v ON v.id = p.repository_version_id
         WHERE p.id = $1 AND p.plugin = $2 AND p.type_name = $3 AND p.complete = 1"
    ))
    .bind(object_id(id)?)
    .bind(plugin)
    .bind(type_name)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(ApiError::not_found)
}

async fn read(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<Value>> {
    Ok(shaped(
        &uri,
        to_json(&load(&app, &plugin, &type_name, &id).await?),
    ))
}

async fn destroy(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    spawn_delete(
        &app,
        hrefs::publication(&plugin, &type_name, &row.get::<String, _>(0)),
    )
    .await
}
