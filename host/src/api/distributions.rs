//! `distributions/<plugin>/<type>/`: where the content app serves a publication, a repository
//! version, or the latest of a repository. Create, update and delete are tasks (202), as in
//! Pulp. `distributions/` lists every type.

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::plugin_fields::{self, Kind};
use super::support::{
    Bind, Changes, ColumnValue, Conditions, Fields, ListQuery, ListSpec, Page, common_filters,
    contains, ensure_unique, fetch_page, icontains, in_list, json_column, object_id, order_by,
    repository_type, shaped, spawn_delete, spawn_task, spawn_update, split_list,
};
use crate::content::CONTENT_ROOT;
use crate::domain::distributions::{self, DistributionFields, Overlap};
use crate::domain::hrefs::{self, Href};
use crate::error::{ApiError, ApiResult};
use crate::state::{App, AppState};
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pulp/api/v3/distributions/", get(list_all))
        .route(
            "/pulp/api/v3/distributions/{plugin}/{type}/",
            get(list).post(create_request),
        )
        .route(
            "/pulp/api/v3/distributions/{plugin}/{type}/{id}/",
            get(read).patch(update).put(replace).delete(destroy),
        )
        .route(
            "/pulp/api/v3/distributions/{plugin}/{type}/{id}/set_label/",
            post(set_label),
        )
        .route(
            "/pulp/api/v3/distributions/{plugin}/{type}/{id}/unset_label/",
            post(unset_label),
        )
}

const COLUMNS: &str = "d.id, d.plugin, d.type_name, d.name, d.base_path, d.publication_id, d.repository_id, d.hidden,
    d.labels, d.created, d.updated, d.repository_version_id, rv.repository_id, rv.number, d.remote_id, m.plugin, m.type_name, d.extra";

fn empty_object() -> String {
    "{}".into()
}

const SPEC: ListSpec = ListSpec {
    from: "distributions d LEFT JOIN repository_versions rv ON rv.id = d.repository_version_id
           LEFT JOIN remotes m ON m.id = d.remote_id",
    id: "d.id",
    name: Some("d.name"),
    labels: Some("d.labels"),
    orderings: &[
        ("name", "d.name"),
        ("base_path", "d.base_path"),
        ("pulp_created", "d.created"),
        ("pulp_last_updated", "d.updated"),
        ("pk", "d.id"),
        ("pulp_id", "d.id"),
    ],
    default_ordering: "name",
};

fn to_json(app: &App, row: &AnyRow) -> Value {
    let (id, plugin, type_name): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let base_path: String = row.get(4);
    let version = match (
        row.get::<Option<String>, _>(12),
        row.get::<Option<i64>, _>(13),
    ) {
        (Some(repository_id), Some(number)) => {
            Some(hrefs::version(&plugin, &type_name, &repository_id, number))
        }
        _ => None,
    };
    let remote = match (
        row.get::<Option<String>, _>(14),
        row.get::<Option<String>, _>(15),
        row.get::<Option<String>, _>(16),
    ) {
        (Some(remote_id), Some(remote_plugin), Some(remote_type)) => {
            Some(hrefs::remote(&remote_plugin, &remote_type, &remote_id))
        }
        _ => None,
    };
    let mut distribution = json!({
        "pulp_href": hrefs::distribution(&plugin, &type_name, &id),
        "prn": format!("prn:{plugin}.{type_name}distribution:{id}"),
        "pulp_created": row.get::<String, _>(9),
        "pulp_last_updated": row.get::<String, _>(10),
        "base_path": base_path,
        "base_url": format!("{}{CONTENT_ROOT}{base_path}/", app.origin),
        "content_guard": null,
        "hidden": row.get::<i64, _>(7) != 0,
        "pulp_labels": json_column(&row.get::<String, _>(8)),
        "name": row.get::<String, _>(3),
        "repository": row.get::<Option<String>, _>(6).map(|r| hrefs::repository(&plugin, &type_name, &r)),
        "repository_version": version,
        "publication": row.get::<Option<String>, _>(5).map(|p| hrefs::publication(&plugin, &type_name, &p)),
        "remote": remote,
    });
    plugin_fields::show(&mut distribution, &row.get::<String, _>(17));
    distribution
}

async fn list(
    State(app): State<AppState>,
    Path((plugin, type_name)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    repository_type(&app, &plugin, &type_name)?;
    let mut conditions = Conditions::new();
    conditions.push(
        "d.plugin = ? AND d.type_name = ?",
        [Bind::from(plugin), Bind::from(type_name)],
    );
    respond_list(&app, &query, &uri, conditions).await
}

/// `distributions/`: every distribution, whatever its type.
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
    common_filters(app, query, &SPEC, &mut conditions)?;
    if let Some(base_path) = query.get("base_path") {
        conditions.push("d.base_path = ?", [Bind::from(base_path.as_str())]);
    }
    if let Some(value) = query.get("base_path__contains") {
        contains(&mut conditions, "d.base_path", value);
    }
    if let Some(value) = query.get("base_path__icontains") {
        icontains(&mut conditions, "d.base_path", value);
    }
    if let Some(list) = query.get("base_path__in") {
        in_list(
            &mut conditions,
            "d.base_path",
            split_list(list).map(str::to_owned).collect(),
        );
    }
    if let Some(href) = query.get("repository") {
        let Some(Href::Repository { id, .. }) = hrefs::parse(href) else {
            return Err(ApiError::field(
                "repository",
                format!("URI not valid: {href}"),
            ));
        };
        conditions.push("d.repository_id = ?", [Bind::Text(id)]);
    }
    let order = order_by(query, &SPEC)?;
    let (total, rows) = fetch_page(app, &SPEC, COLUMNS, &conditions, &order, &page).await?;
    Ok(page.respond(
        app,
        uri,
        total,
        rows.iter().map(|row| to_json(app, row)).collect(),
    ))
}

/// Checks a base path: relative, no empty, `.` or `..` segments.
fn validate_base_path(base_path: &str) -> ApiResult<String> {
    let trimmed = base_path.trim_matches('/');
    crate::plugins::validate_relative_path(trimmed)
        .map_err(|message| ApiError::field("base_path", message))?;
    Ok(trimmed.to_owned())
}

/// Refuses a base path that another distribution has, nests inside, or contains (Pulp forbids
/// overlapping base paths: the content app could not tell which one a path belongs to).
async fn check_overlap(app: &App, base_path: &str, except: Option<&str>) -> ApiResult<()> {
    match distributions::overlap(&app.db, base_path, except).await? {
        None => Ok(()),
        Some(Overlap::Same) => Err(ApiError::field("base_path", super::support::UNIQUE_MESSAGE)),
        Some(Overlap::Nested {
            name,
            base_path: other,
        }) => Err(ApiError::field(
            "base_path",
            format!("Overlaps with existing distribution '{name}' (base path '{other}')."),
        )),
    }
}

/// What a distribution serves: at most one of a publication, a repository (its latest), or a
/// repository version.
#[derive(Debug, Default, Clone, PartialEq)]
struct Target {
    publication_id: Option<String>,
    repository_id: Option<String>,
    repository_version_id: Option<String>,
}

const ONLY_ONE: &str = "Only one of the attributes 'repository', 'repository_version' and 'publication' may be used simultaneously.";

/// Resolves the `publication`, `repository` and `repository_version` fields given in the body;
/// those not given keep the values of `current`.
async fn target(app: &App, fields: &Fields, plugin: &str, current: Target) -> ApiResult<Target> {
    let mut target = current;
    if fields.0.contains_key("publication") {
        target.publication_id = match fields.opt_href("publication")? {
            None => None,
            Some(Href::Publication { plugin: p, id, .. }) if p == plugin => {
                exists(
                    app,
                    "SELECT id FROM publications WHERE id = $1 AND complete = 1",
                    &id,
                    "publication",
                )
                .await?;
                Some(id)
            }
            Some(_) => {
                return Err(ApiError::field(
                    "publication",
                    format!("Expected the href of a {plugin} publication."),
                ));
            }
        };
    }
    if fields.0.contains_key("repository") {
        target.repository_id = match fields.opt_href("repository")? {
            None => None,
            Some(Href::Repository { plugin: p, id, .. }) if p == plugin => {
                exists(
                    app,
                    "SELECT id FROM repositories WHERE id = $1",
                    &id,
                    "repository",
                )
                .await?;
                Some(id)
            }
            Some(_) => {
                return Err(ApiError::field(
                    "repository",
                    format!("Expected the href of a {plugin} repository."),
                ));
            }
        };
    }
    if fields.0.contains_key("repository_version") {
        target.repository_version_id = match fields.opt_href("repository_version")? {
            None => None,
            Some(Href::Version {
                plugin: p,
                id,
                number,
                ..
            }) if p == plugin => {
                let row = sqlx::query(
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
                Some(row.get(0))
            }
            Some(_) => {
                return Err(ApiError::field(
                    "repository_version",
                    format!("Expected the href of a {plugin} repository version."),
                ));
            }
        };
    }
    let set = [
        &target.publication_id,
        &target.repository_id,
        &target.repository_version_id,
    ]
    .iter()
    .filter(|value| value.is_some())
    .count();
    if set > 1 {
        return Err(ApiError::bad_request(ONLY_ONE));
    }
    Ok(target)
}

async fn exists(app: &App, sql: &str, id: &str, field: &str) -> ApiResult<()> {
    sqlx::query(sql)
        .bind(id)
        .fetch_optional(app.db.pool())
        .await?
        .map(|_| ())
        .ok_or_else(|| ApiError::field(field, "Invalid hyperlink - Object does not exist."))
}

/// The `remote` field: a remote of the plugin, for pull-through.
async fn remote_field(app: &App, fields: &Fields, plugin: &str) -> ApiResult<Option<String>> {
    match fields.opt_href("remote")? {
        None => Ok(None),
        Some(Href::Remote { plugin: p, id, .. }) if p == plugin => {
            exists(app, "SELECT id FROM remotes WHERE id = $1", &id, "remote").await?;
            Ok(Some(id))
        }
        Some(_) => Err(ApiError::field(
            "remote",
            format!("Expected the href of a {plugin} remote."),
        )),
    }
}

/// No content guard types exist yet, so only `null` is a valid `content_guard`.
fn check_content_guard(fields: &Fields) -> ApiResult<()> {
    if fields.has("content_guard") {
        return Err(ApiError::field(
            "content_guard",
            "No content guards exist on this server; content_guard must be null.",
        ));
    }
    Ok(())
}

async fn create_request(
    State(app): State<AppState>,
    Path((plugin, type_name)): Path<(String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let loaded = repository_type(&app, &plugin, &type_name)?;
    let name = fields.required_str("name")?;
    let base_path = validate_base_path(&fields.required_str("base_path")?)?;
    ensure_unique(&app, "distributions", "name", "name", &name, None).await?;
    check_overlap(&app, &base_path, None).await?;
    check_content_guard(&fields)?;
    let target = target(&app, &fields, &plugin, Target::default()).await?;
    let remote_id = remote_field(&app, &fields, &plugin).await?;
    let fields = DistributionFields {
        plugin,
        type_name,
        name,
        base_path: base_path.clone(),
        publication_id: target.publication_id,
        repository_id: target.repository_id,
        repository_version_id: target.repository_version_id,
        remote_id,
        hidden: fields.opt_bool("hidden")?.unwrap_or(false),
        labels: fields.labels()?.unwrap_or_else(|| "{}".into()),
        extra: plugin_fields::extra(&loaded, Kind::Distribution, &fields, None)?
            .unwrap_or_else(empty_object),
    };
    let lock = ResourceLock::exclusive(base_path_lock(&base_path));
    spawn_task(
        &app,
        "granary.tasks.general_create",
        TaskArgs::CreateDistribution { fields },
        &[lock],
    )
    .await
}

/// Creating or moving distributions to the same base path at once is serialised on this lock.
fn base_path_lock(base_path: &str) -> String {
    format!("distribution-base-path:{base_path}")
}

async fn load(app: &App, plugin: &str, type_name: &str, id: &str) -> ApiResult<AnyRow> {
    repository_type(app, plugin, type_name)?;
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM {} WHERE d.id = $1 AND d.plugin = $2 AND d.type_name = $3",
        SPEC.from
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
    let row = load(&app, &plugin, &type_name, &id).await?;
    Ok(shaped(&uri, to_json(&app, &row)))
}

/// `PATCH`: changes the fields given.
async fn update(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    dispatch_update(&app, &plugin, &type_name, &id, &fields, false).await
}

/// `PUT`: the whole distribution; `name` and `base_path` must be given.
async fn replace(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    dispatch_update(&app, &plugin, &type_name, &id, &fields, true).await
}

async fn dispatch_update(
    app: &App,
    plugin: &str,
    type_name: &str,
    id: &str,
    fields: &Fields,
    whole: bool,
) -> ApiResult<Response> {
    let row = load(app, plugin, type_name, id).await?;
    let id: String = row.get(0);
    let mut changes: Changes = Vec::new();
    let mut locks = Vec::new();
    if whole || fields.0.contains_key("name") {
        let name = fields.required_str("name")?;
        ensure_unique(app, "distributions", "name", "name", &name, Some(&id)).await?;
        changes.push(("name".into(), ColumnValue::Text(Some(name))));
    }
    if whole || fields.0.contains_key("base_path") {
        let base_path = validate_base_path(&fields.required_str("base_path")?)?;
        check_overlap(app, &base_path, Some(&id)).await?;
        locks.push(ResourceLock::exclusive(base_path_lock(&base_path)));
        changes.push(("base_path".into(), ColumnValue::Text(Some(base_path))));
    }
    check_content_guard(fields)?;
    let current = Target {
        publication_id: row.get(5),
        repository_id: row.get(6),
        repository_version_id: row.get(11),
    };
    let target = target(app, fields, plugin, current.clone()).await?;
    if target != current {
        changes.push((
            "publication_id".into(),
            ColumnValue::Text(target.publication_id),
        ));
        changes.push((
            "repository_id".into(),
            ColumnValue::Text(target.repository_id),
        ));
        changes.push((
            "repository_version_id".into(),
            ColumnValue::Text(target.repository_version_id),
        ));
    }
    if fields.0.contains_key("remote") {
        changes.push((
            "remote_id".into(),
            ColumnValue::Text(remote_field(app, fields, plugin).await?),
        ));
    }
    if fields.0.contains_key("hidden") {
        let hidden = fields.opt_bool("hidden")?.unwrap_or(false);
        changes.push(("hidden".into(), ColumnValue::Int(Some(i64::from(hidden)))));
    }
    if let Some(labels) = fields.labels()? {
        changes.push(("labels".into(), ColumnValue::Text(Some(labels))));
    }
    let loaded = repository_type(app, plugin, type_name)?;
    let stored = row.get::<String, _>(17);
    if let Some(extra) = plugin_fields::extra(&loaded, Kind::Distribution, fields, Some(&stored))? {
        changes.push(("extra".into(), ColumnValue::Text(Some(extra))));
    }
    spawn_update(
        app,
        hrefs::distribution(plugin, type_name, &id),
        changes,
        locks,
    )
    .await
}

async fn destroy(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    spawn_delete(
        &app,
        hrefs::distribution(&plugin, &type_name, &row.get::<String, _>(0)),
    )
    .await
}

async fn set_label(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    super::support::set_label(&app, "distributions", &row.get::<String, _>(0), &fields).await
}

async fn unset_label(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    super::support::unset_label(&app, "distributions", &row.get::<String, _>(0), &fields).await
}
