//! `acs/<plugin>/<repository type>/` (`acs/file/file/`): alternate content sources, as Pulp's.
//! Create, list, show, update (`paths`, `remote`, `name`; a task, as Pulp's), delete, and
//! `refresh/`, which queues
//! one task per path in a task group and answers `202 {"task_group": href}`. The work is in
//! [`crate::domain::acs`]. Access as pulp_file's: the `<plugin>.<type>alternatecontentsource`
//! roles (creator, owner, viewer), the creator made owner, lists scoped to the sources the
//! caller may view, the remote a create or change names viewable by the caller.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::access::{Call, Caller};
use super::list::{self, Conditions, Identity, ListRequest, fetch_by_id, resource};
use super::object_roles::{self, RoleAction};
use super::routes::Routes;
use super::support::{Changes, ColumnValue, Fields, ensure_unique, json_column, spawn_update};
use crate::db::{new_id, now};
use crate::domain::acs::path_url;
use crate::domain::hrefs::{self, API_ROOT, Href};
use crate::error::{ApiError, ApiResult};
use crate::rbac::Object;
use crate::rbac::catalog::Model;
use crate::rbac::policy::Subject;
use crate::state::{App, AppState};
use crate::tasks::kinds::TaskArgs;
use crate::tasks::{self, ResourceLock};

/// Routes.
pub fn router() -> Routes {
    let routes = Routes::new()
        .route("/pulp/api/v3/acs/{plugin}/{type}/", get(list).post(create))
        .route(
            "/pulp/api/v3/acs/{plugin}/{type}/{id}/",
            get(read).put(update).patch(update).delete(destroy),
        )
        .route(
            "/pulp/api/v3/acs/{plugin}/{type}/{id}/refresh/",
            post(refresh),
        );
    RoleAction::routes(
        routes,
        "/pulp/api/v3/acs/{plugin}/{type}/{id}/",
        role_action,
    )
}

/// The route of a role action on a source, which the caller must be able to see.
fn role_action(action: RoleAction) -> MethodRouter<AppState> {
    action.route(
        move |Call { app, caller }: Call,
              Path((plugin, segment, id)): Path<(String, String, String)>,
              fields: Fields| async move {
            let source = visible(&app, &caller, (&plugin, &segment, &id)).await?;
            let href = href(&plugin, &segment, &source.id);
            let object = Object {
                id: &source.id,
                href: &href,
            };
            let viewset = viewset(&plugin, &segment);
            object_roles::act(&app, &caller, action, &viewset, object, &fields).await
        },
    )
}

/// `/pulp/api/v3/acs/<plugin>/<type>/<id>/`
pub fn href(plugin: &str, segment: &str, id: &str) -> String {
    format!("{API_ROOT}acs/{plugin}/{segment}/{id}/")
}

resource! {
    /// A row of `acs_sources`.
    pub(crate) struct Source in "acs_sources s LEFT JOIN remotes m ON m.id = s.remote_id" as s {
        plugin: String,
        type_name: String,
        name: String,
        remote_id: String,
        remote_type: String => "m.type_name AS remote_type",
        paths: String,
        last_refreshed: Option<String>,
        created: String,
        updated: String,
    }
    filters: text name, time last_refreshed, time pulp_created = created;
    orderings: name, pulp_created = created, last_refreshed;
    default_ordering: "name";
}

/// An alternate content source as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SourceView {
    #[serde(flatten)]
    identity: Identity,
    name: String,
    #[schema(format = DateTime)]
    last_refreshed: Option<String>,
    /// Paths below the remote's URL where files are looked for.
    paths: Vec<String>,
    /// The remote (an href; its policy is `on_demand`).
    remote: String,
}

/// The access policy of a plugin's sources.
fn viewset(plugin: &str, segment: &str) -> String {
    format!("acs/{plugin}/{segment}")
}

/// The plugin and REST segment of a route, checked: 404 for a plugin that is not loaded or a
/// segment that is not its repository type's.
fn route_of(app: &App, plugin: &str, segment: &str) -> ApiResult<String> {
    let names = app.plugins.rest_names();
    let named = names
        .plugin(plugin)
        .filter(|named| named.repository == segment)
        .ok_or_else(ApiError::not_found)?;
    Ok(named.type_name.clone())
}

fn view(app: &App, source: Source) -> SourceView {
    let names = app.plugins.rest_names();
    let segment = names.plugin(&source.plugin).map_or_else(
        || source.type_name.clone(),
        |named| named.repository.clone(),
    );
    let paths = match json_column(&source.paths) {
        Value::Array(paths) => paths
            .into_iter()
            .filter_map(|path| path.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    SourceView {
        identity: Identity::typed(
            href(&source.plugin, &segment, &source.id),
            (&source.plugin, &source.type_name, &source.id),
            "alternatecontentsource",
            &source.created,
            &source.updated,
        ),
        name: source.name,
        last_refreshed: source.last_refreshed,
        paths,
        remote: hrefs::remote(
            &names,
            &source.plugin,
            &source.remote_type,
            &source.remote_id,
        ),
    }
}

fn of_route(plugin: &str, type_name: &str) -> Conditions {
    Conditions::of(
        "s.plugin = ? AND s.type_name = ?",
        [plugin.into(), type_name.into()],
    )
}

/// The sources of the route's plugin the caller may see (`view_…alternatecontentsource` on
/// them, or on the model), and the route's own conditions.
async fn visibility(
    app: &App,
    caller: &Caller,
    (plugin, segment): (&str, &str),
) -> ApiResult<(Conditions, list::Visibility)> {
    let type_name = route_of(app, plugin, segment)?;
    let names = app.plugins.rest_names();
    let named = names.plugin(plugin).ok_or_else(ApiError::not_found)?;
    let permission = Model::alternate_content_source(named).permission("view");
    let visibility = caller
        .visibility(app, &viewset(plugin, segment), &permission, "s.id")
        .await?;
    Ok((of_route(plugin, &type_name), visibility))
}

async fn list(
    Call { app, caller }: Call,
    Path((plugin, segment)): Path<(String, String)>,
    request: ListRequest,
) -> ApiResult<Response> {
    caller
        .authorize_action(&app, &viewset(&plugin, &segment), "list")
        .await?;
    let (conditions, visibility) = visibility(&app, &caller, (&plugin, &segment)).await?;
    list::list::<Source, _>(&app, &request, conditions, &visibility, |source| {
        view(&app, source)
    })
    .await
}

/// The source `id` of the route when the caller may see it; 404 otherwise.
async fn visible(
    app: &App,
    caller: &Caller,
    (plugin, segment, id): (&str, &str, &str),
) -> ApiResult<Source> {
    let (conditions, visibility) = visibility(app, caller, (plugin, segment)).await?;
    fetch_by_id(&app.db, id, conditions, &visibility).await
}

/// The source `id` of the route, once the caller may take `action` on it (naming `remote`,
/// when the request does).
async fn authorized(
    app: &App,
    caller: &Caller,
    (plugin, segment, id): (&str, &str, &str),
    (action, remote): (&str, Option<String>),
) -> ApiResult<Source> {
    let source = visible(app, caller, (plugin, segment, id)).await?;
    let subject = Subject {
        object: Some(source.id.clone()),
        remote,
        ..Subject::default()
    };
    caller
        .authorize(app, &viewset(plugin, segment), action, &subject)
        .await?;
    Ok(source)
}

/// The id of the remote a request names, for the policy's remote condition (checked in full by
/// [`remote_field`]).
fn named_remote(app: &App, fields: &Fields) -> Option<String> {
    match fields.opt_href(&app.plugins.rest_names(), "remote") {
        Ok(Some(Href::Remote { id, .. })) => Some(id),
        _ => None,
    }
}

async fn read(
    Call { app, caller }: Call,
    Path((plugin, segment, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let source = authorized(&app, &caller, (&plugin, &segment, &id), ("retrieve", None)).await?;
    Ok(list::json(&view(&app, source)))
}

/// `remote`: the href of a remote of the route's plugin whose policy is `on_demand` (Pulp's
/// rule: a source is looked up, never mirrored). Answers its id.
async fn remote_field(app: &App, fields: &Fields, plugin: &str) -> ApiResult<String> {
    let names = app.plugins.rest_names();
    let Some(href) = fields.opt_href(&names, "remote")? else {
        return Err(ApiError::field("remote", "This field is required."));
    };
    let Href::Remote {
        plugin: remote_plugin,
        id,
        ..
    } = href
    else {
        return Err(ApiError::field(
            "remote",
            "Invalid hyperlink - not a remote href.",
        ));
    };
    if remote_plugin != plugin {
        return Err(ApiError::field(
            "remote",
            "Type for Remote does not match ACS type.",
        ));
    }
    let policy: Option<String> = sqlx::query_scalar("SELECT policy FROM remotes WHERE id = $1")
        .bind(&id)
        .fetch_optional(app.db.pool())
        .await?;
    match policy.as_deref() {
        None => Err(ApiError::field(
            "remote",
            "Invalid hyperlink - Object does not exist.",
        )),
        Some("on_demand") => Ok(id),
        Some(_) => Err(ApiError::field(
            "remote",
            "Remote used with alternate content source must have the 'on_demand' policy.",
        )),
    }
}

/// `paths`: relative paths below the remote's URL, each at most once. A path that is a URL of
/// its own or starts at the root would leave the remote's origin and is refused.
fn paths_field(fields: &Fields) -> ApiResult<Option<Vec<String>>> {
    let items = match fields.0.get("paths") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ApiError::field("paths", "Expected a list of items.")),
    };
    let mut paths: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Some(path) = item.as_str() else {
            return Err(ApiError::field("paths", "Not a valid string."));
        };
        if path.contains("://") || path.starts_with('/') || path.split('/').any(|part| part == "..")
        {
            return Err(ApiError::field(
                "paths",
                format!("{path:?} is not a relative path below the remote's URL."),
            ));
        }
        if paths.iter().any(|known| known == path) {
            return Err(ApiError::field(
                "paths",
                format!("The path {path:?} is given twice."),
            ));
        }
        paths.push(path.to_owned());
    }
    Ok(Some(paths))
}

/// `POST {name, remote, paths?}`: 201 with the source.
async fn create(
    Call { app, caller }: Call,
    Path((plugin, segment)): Path<(String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let type_name = route_of(&app, &plugin, &segment)?;
    let viewset = viewset(&plugin, &segment);
    let subject = Subject {
        remote: named_remote(&app, &fields),
        ..Subject::default()
    };
    caller.authorize(&app, &viewset, "create", &subject).await?;
    let name = fields.required_str("name")?;
    let remote_id = remote_field(&app, &fields, &plugin).await?;
    let paths = paths_field(&fields)?.unwrap_or_default();
    ensure_unique(&app, "acs_sources", "name", "name", &name, None).await?;
    let id = new_id();
    let stamp = now();
    app.db
        .write_one(
            sqlx::query(
                "INSERT INTO acs_sources (id, plugin, type_name, name, remote_id, paths, created, updated)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&id)
            .bind(&plugin)
            .bind(&type_name)
            .bind(&name)
            .bind(&remote_id)
            .bind(serde_json::to_string(&paths).unwrap_or_else(|_| "[]".into()))
            .bind(&stamp),
        )
        .await?;
    let object_href = href(&plugin, &segment, &id);
    let object = Object {
        id: &id,
        href: &object_href,
    };
    caller.created(&app, &viewset, object).await?;
    let source = authorized(&app, &caller, (&plugin, &segment, &id), ("retrieve", None)).await?;
    Ok((StatusCode::CREATED, list::json(&view(&app, source))).into_response())
}

/// `PUT`/`PATCH {name?, remote?, paths?}`: validated here and applied by a task (Pulp's
/// `AsyncUpdateMixin`) holding the source's exclusive lock, so it waits for a refresh of it;
/// dropping a path or changing the remote forgets what was recorded for it.
async fn update(
    Call { app, caller }: Call,
    Path((plugin, segment, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let remote = named_remote(&app, &fields);
    let source = authorized(
        &app,
        &caller,
        (&plugin, &segment, &id),
        ("partial_update", remote),
    )
    .await?;
    let mut changes = Changes::new();
    if let Some(name) = fields.opt_str("name")? {
        ensure_unique(&app, "acs_sources", "name", "name", &name, Some(&source.id)).await?;
        changes.push(("name".into(), ColumnValue::Text(Some(name))));
    }
    if fields.has("remote") {
        let remote_id = remote_field(&app, &fields, &plugin).await?;
        changes.push(("remote_id".into(), ColumnValue::Text(Some(remote_id))));
    }
    if let Some(paths) = paths_field(&fields)? {
        let paths = serde_json::to_string(&paths).unwrap_or_else(|_| "[]".into());
        changes.push(("paths".into(), ColumnValue::Text(Some(paths))));
    }
    spawn_update(
        &app,
        href(&plugin, &segment, &source.id),
        changes,
        Vec::new(),
    )
    .await
}

async fn destroy(
    Call { app, caller }: Call,
    Path((plugin, segment, id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let source = authorized(&app, &caller, (&plugin, &segment, &id), ("destroy", None)).await?;
    crate::domain::acs::delete(&app.backends(), &source.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST refresh/`: a task group with one refresh task per path (or one for the remote's URL
/// itself when the source has no path), `202 {"task_group": href}`.
async fn refresh(
    Call { app, caller }: Call,
    Path((plugin, segment, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let source = authorized(&app, &caller, (&plugin, &segment, &id), ("refresh", None)).await?;
    let mut paths: Vec<String> = serde_json::from_str(&source.paths).unwrap_or_default();
    if paths.is_empty() {
        paths.push(String::new());
    }
    let names = app.plugins.rest_names();
    let remote_href = hrefs::remote(&names, &plugin, &source.remote_type, &source.remote_id);
    let source_href = href(&plugin, &segment, &source.id);
    let group = tasks::create_group(
        &app.db,
        &format!("Refreshing {} alternate content source paths.", paths.len()),
    )
    .await?;
    let remote_url: String = sqlx::query_scalar("SELECT url FROM remotes WHERE id = $1")
        .bind(&source.remote_id)
        .fetch_one(app.db.pool())
        .await?;
    for path in paths {
        tracing::debug!(url = %path_url(&remote_url, &path), "queueing an ACS refresh");
        let args = TaskArgs::AcsRefresh {
            acs_id: source.id.clone(),
            path,
        };
        tasks::enqueue_in_group(
            &app.db,
            "granary.tasks.acs_refresh",
            &args,
            &[
                ResourceLock::shared(remote_href.clone()),
                ResourceLock::shared(source_href.clone()),
            ],
            Some(&group),
        )
        .await?;
    }
    tasks::all_dispatched(&app.db, &group).await?;
    app.task_wakeup.notify_waiters();
    let accepted = serde_json::json!({ "task_group": super::task_groups::href(&group) });
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}
