//! `distributions/<plugin>/<type>/`: where the content app serves a publication or repository.

use std::collections::HashMap;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::plugin_fields::{self, Kind};
use super::support::{
    Fields, Page, json_column, name_filters, object_id, repository_type, spawn_task,
};
use crate::app::{App, AppState};
use crate::content::CONTENT_ROOT;
use crate::db::{new_id, now};
use crate::domain::hrefs::{self, Href};
use crate::error::{ApiError, ApiResult};
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/pulp/api/v3/distributions/{plugin}/{type}/",
            get(list).post(create_request),
        )
        .route(
            "/pulp/api/v3/distributions/{plugin}/{type}/{id}/",
            get(read).patch(update).put(update).delete(destroy),
        )
}

/// The validated fields of a new distribution (the arguments of its create task).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DistributionFields {
    /// Owning plugin.
    pub plugin: String,
    /// Its repository type.
    pub type_name: String,
    /// Unique name.
    pub name: String,
    /// Unique path under `/pulp/content/`.
    pub base_path: String,
    /// Serve this publication.
    pub publication_id: Option<String>,
    /// Or serve the newest publication of this repository.
    pub repository_id: Option<String>,
    /// Hidden from the content app's root listing.
    pub hidden: bool,
    /// `pulp_labels` as JSON.
    pub labels: String,
    /// The remote pull-through requests fetch from.
    #[serde(default)]
    pub remote_id: Option<String>,
    /// The plugin-declared fields, as a JSON object.
    #[serde(default = "empty_object")]
    pub extra: String,
}

fn empty_object() -> String {
    "{}".into()
}

const COLUMNS: &str = "id, plugin, type_name, name, base_path, publication_id, repository_id, hidden, labels, created, updated, remote_id, extra";

fn to_json(app: &App, row: &AnyRow) -> Value {
    let (id, plugin, type_name): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let base_path: String = row.get(4);
    let mut distribution = json!({
        "pulp_href": hrefs::distribution(&plugin, &type_name, &id),
        "prn": format!("prn:{plugin}.{type_name}distribution:{id}"),
        "pulp_created": row.get::<String, _>(9),
        "pulp_last_updated": row.get::<String, _>(10),
        "name": row.get::<String, _>(3),
        "base_path": base_path,
        "base_url": format!("{}{CONTENT_ROOT}{base_path}/", app.origin),
        "publication": row.get::<Option<String>, _>(5).map(|p| hrefs::publication(&plugin, &type_name, &p)),
        "repository": row.get::<Option<String>, _>(6).map(|r| hrefs::repository(&plugin, &type_name, &r)),
        "content_guard": null,
        "hidden": row.get::<i64, _>(7) != 0,
        "pulp_labels": json_column(&row.get::<String, _>(8)),
        "remote": row.get::<Option<String>, _>(11).map(|r| hrefs::remote(&plugin, &type_name, &r)),
    });
    plugin_fields::show(&mut distribution, &row.get::<String, _>(12));
    distribution
}

async fn list(
    State(app): State<AppState>,
    Path((plugin, type_name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    repository_type(&app, &plugin, &type_name)?;
    let page = Page::from_query(&query)?;
    let (mut filters, mut values) = name_filters(&query, 3);
    if let Some(base_path) = query.get("base_path") {
        filters.push_str(&format!(" AND base_path = ${}", 3 + values.len()));
        values.push(base_path.clone());
    }
    let count_sql =
        format!("SELECT COUNT(*) FROM distributions WHERE plugin = $1 AND type_name = $2{filters}");
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql)
        .bind(&plugin)
        .bind(&type_name);
    for value in &values {
        count = count.bind(value);
    }
    let total = count.fetch_one(app.db.pool()).await?;
    let n = 3 + values.len();
    let sql = format!(
        "SELECT {COLUMNS} FROM distributions WHERE plugin = $1 AND type_name = $2{filters} ORDER BY name LIMIT ${n} OFFSET ${}",
        n + 1
    );
    let mut rows = sqlx::query(&sql).bind(&plugin).bind(&type_name);
    for value in &values {
        rows = rows.bind(value);
    }
    let rows = rows
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(app.db.pool())
        .await?;
    Ok(page.respond(
        &app,
        &uri,
        total,
        rows.iter().map(|row| to_json(&app, row)).collect(),
    ))
}

/// Checks a base path: relative, no empty, `.` or `..` segments.
fn validate_base_path(base_path: &str) -> ApiResult<String> {
    let trimmed = base_path.trim_matches('/');
    crate::plugins::validate_relative_path(trimmed)
        .map_err(|message| ApiError::field("base_path", message))?;
    Ok(trimmed.to_owned())
}

/// Refuses a base path that nests inside another distribution's, or contains one.
async fn check_overlap(app: &App, base_path: &str, except: Option<&str>) -> ApiResult<()> {
    let rows = sqlx::query("SELECT id, base_path FROM distributions")
        .fetch_all(app.db.pool())
        .await?;
    for row in rows {
        let (id, other): (String, String) = (row.get(0), row.get(1));
        if Some(id.as_str()) == except {
            continue;
        }
        if other == base_path {
            return Err(ApiError::field(
                "base_path",
                "This value is already in use; it must be unique.",
            ));
        }
        if base_path.starts_with(&format!("{other}/"))
            || other.starts_with(&format!("{base_path}/"))
        {
            return Err(ApiError::field(
                "base_path",
                format!("Overlaps with existing distribution base path {other:?}."),
            ));
        }
    }
    Ok(())
}

/// Resolves the `publication` and `repository` fields (at most one of them).
async fn target(
    app: &App,
    fields: &Fields,
    plugin: &str,
) -> ApiResult<(Option<String>, Option<String>)> {
    let publication = match fields.opt_href("publication")? {
        None => None,
        Some(Href::Publication { plugin: p, id, .. }) if p == plugin => {
            sqlx::query("SELECT id FROM publications WHERE id = $1 AND complete = 1")
                .bind(&id)
                .fetch_optional(app.db.pool())
                .await?
                .ok_or_else(|| {
                    ApiError::field("publication", "Invalid hyperlink - Object does not exist.")
                })?;
            Some(id)
        }
        Some(_) => {
            return Err(ApiError::field(
                "publication",
                format!("Expected the href of a {plugin} publication."),
            ));
        }
    };
    let repository = match fields.opt_href("repository")? {
        None => None,
        Some(Href::Repository { plugin: p, id, .. }) if p == plugin => {
            sqlx::query("SELECT id FROM repositories WHERE id = $1")
                .bind(&id)
                .fetch_optional(app.db.pool())
                .await?
                .ok_or_else(|| {
                    ApiError::field("repository", "Invalid hyperlink - Object does not exist.")
                })?;
            Some(id)
        }
        Some(_) => {
            return Err(ApiError::field(
                "repository",
                format!("Expected the href of a {plugin} repository."),
            ));
        }
    };
    if publication.is_some() && repository.is_some() {
        return Err(ApiError::bad_request(
            "Only one of the attributes 'repository' and 'publication' may be used simultaneously.",
        ));
    }
    Ok((publication, repository))
}

/// Resolves the `remote` field: the remote pull-through requests fetch from.
async fn remote(app: &App, fields: &Fields, plugin: &str) -> ApiResult<Option<String>> {
    match fields.opt_href("remote")? {
        None => Ok(None),
        Some(Href::Remote { plugin: p, id, .. }) if p == plugin => {
            sqlx::query("SELECT id FROM remotes WHERE id = $1")
                .bind(&id)
                .fetch_optional(app.db.pool())
                .await?
                .ok_or_else(|| {
                    ApiError::field("remote", "Invalid hyperlink - Object does not exist.")
                })?;
            Ok(Some(id))
        }
        Some(_) => Err(ApiError::field(
            "remote",
            format!("Expected the href of a {plugin} remote."),
        )),
    }
}

async fn create_request(
    State(app): State<AppState>,
    Path((plugin, type_name)): Path<(String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let loaded = repository_type(&app, &plugin, &type_name)?;
    let name = fields.required_str("name")?;
    let base_path = validate_base_path(&fields.required_str("base_path")?)?;
    let exists = sqlx::query("SELECT id FROM distributions WHERE name = $1")
        .bind(&name)
        .fetch_optional(app.db.pool())
        .await?;
    if exists.is_some() {
        return Err(ApiError::field(
            "name",
            "This value is already in use; it must be unique.",
        ));
    }
    check_overlap(&app, &base_path, None).await?;
    let (publication_id, repository_id) = target(&app, &fields, &plugin).await?;
    let remote_id = remote(&app, &fields, &plugin).await?;
    let fields = DistributionFields {
        plugin,
        type_name,
        name,
        base_path: base_path.clone(),
        publication_id,
        repository_id,
        hidden: fields.opt_bool("hidden")?.unwrap_or(false),
        labels: fields.labels()?.unwrap_or_else(|| "{}".into()),
        remote_id,
        extra: plugin_fields::extra(&loaded, Kind::Distribution, &fields, None)?
            .unwrap_or_else(empty_object),
    };
    let lock = ResourceLock::exclusive(format!("distribution-base-path:{base_path}"));
    spawn_task(
        &app,
        "granary.tasks.create_distribution",
        TaskArgs::CreateDistribution { fields },
        &[lock],
    )
    .await
}

/// Creates a distribution (the work of its create task); returns its href.
pub async fn create(app: &App, fields: DistributionFields) -> anyhow::Result<String> {
    check_overlap(app, &fields.base_path, None)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "base path {:?} is taken or overlaps another distribution",
                fields.base_path
            )
        })?;
    let id = new_id();
    let mut tx = app.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO distributions (id, plugin, type_name, name, base_path, publication_id, repository_id, hidden, labels, created, updated, remote_id, extra)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12)",
    )
    .bind(&id)
    .bind(&fields.plugin)
    .bind(&fields.type_name)
    .bind(&fields.name)
    .bind(&fields.base_path)
    .bind(&fields.publication_id)
    .bind(&fields.repository_id)
    .bind(i64::from(fields.hidden))
    .bind(&fields.labels)
    .bind(now())
    .bind(&fields.remote_id)
    .bind(&fields.extra)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(hrefs::distribution(&fields.plugin, &fields.type_name, &id))
}

async fn load(app: &AppState, plugin: &str, type_name: &str, id: &str) -> ApiResult<AnyRow> {
    repository_type(app, plugin, type_name)?;
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM distributions WHERE id = $1 AND plugin = $2 AND type_name = $3"
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
) -> ApiResult<Json<Value>> {
    Ok(Json(to_json(
        &app,
        &load(&app, &plugin, &type_name, &id).await?,
    )))
}

/// Updates a distribution in place (a small, atomic change: no task needed).
async fn update(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Json<Value>> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    let id: String = row.get(0);
    let mut tx_updates: Vec<(&str, Option<String>)> = Vec::new();
    if fields.has("name") {
        tx_updates.push(("name", Some(fields.required_str("name")?)));
    }
    if fields.has("base_path") {
        let base_path = validate_base_path(&fields.required_str("base_path")?)?;
        check_overlap(&app, &base_path, Some(&id)).await?;
        tx_updates.push(("base_path", Some(base_path)));
    }
    if fields.0.contains_key("publication") || fields.0.contains_key("repository") {
        let (publication_id, repository_id) = target(&app, &fields, &plugin).await?;
        tx_updates.push(("publication_id", publication_id));
        tx_updates.push(("repository_id", repository_id));
    }
    if let Some(labels) = fields.labels()? {
        tx_updates.push(("labels", Some(labels)));
    }
    if fields.0.contains_key("remote") {
        tx_updates.push(("remote_id", remote(&app, &fields, &plugin).await?));
    }
    let loaded = repository_type(&app, &plugin, &type_name)?;
    let stored = row.get::<String, _>(12);
    if let Some(extra) = plugin_fields::extra(&loaded, Kind::Distribution, &fields, Some(&stored))?
    {
        tx_updates.push(("extra", Some(extra)));
    }
    let mut tx = app.db.begin_write().await?;
    for (column, value) in tx_updates {
        sqlx::query(&format!(
            "UPDATE distributions SET {column} = $2 WHERE id = $1"
        ))
        .bind(&id)
        .bind(value)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(hidden) = fields.opt_bool("hidden")? {
        sqlx::query("UPDATE distributions SET hidden = $2 WHERE id = $1")
            .bind(&id)
            .bind(i64::from(hidden))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE distributions SET updated = $2 WHERE id = $1")
        .bind(&id)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Json(to_json(
        &app,
        &load(&app, &plugin, &type_name, &id).await?,
    )))
}

async fn destroy(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    let href = hrefs::distribution(&plugin, &type_name, &row.get::<String, _>(0));
    spawn_task(
        &app,
        "granary.tasks.delete",
        TaskArgs::Delete { href: href.clone() },
        &[ResourceLock::exclusive(href)],
    )
    .await
}
