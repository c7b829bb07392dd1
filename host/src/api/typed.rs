//! The handlers every plugin-typed resource shares (`repositories/<plugin>/<type>/`, `remotes/…`,
//! `publications/…`, `distributions/…`): list (of one type, and of every type), read, update
//! and replace (tasks, as in Pulp), delete (a task), and the label actions. A resource module
//! implements [`Typed`] for its row type and registers these with [`routes`], writing only what
//! is its own: its response view, the filters that name other objects, what a change of it
//! means, its create and its other routes.

use std::future::Future;
use std::sync::Arc;

use axum::Json;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use serde::Serialize;
use serde_json::Value;

use super::list::{
    self, Conditions, ExtraFilter, ListQuery, Resource, Visibility, fetch_by_id, shaped,
};
use super::routes::Routes;
use super::support::{
    self, Changes, Fields, LabelChange, of_type, spawn_delete, spawn_update, typed_route,
};
use crate::domain::hrefs::{self, API_ROOT, Collection, Href, RestNames};
use crate::error::{ApiError, ApiResult};
use crate::plugins::LoadedPlugin;
use crate::state::{App, AppState};
use crate::tasks::ResourceLock;

/// `/<plugin>/<type>/` of a typed route.
type TypePath = Path<(String, String)>;
/// `/<plugin>/<type>/<id>/` of a typed route.
type ObjectPath = Path<(String, String, String)>;

/// A resource whose routes are typed by a plugin and one of its types.
pub trait Typed: Resource {
    /// Its table (labels are changed there).
    const TABLE: &'static str;
    /// The prefix of the `plugin` and `type_name` columns in [`Resource::SPEC`]'s `FROM`.
    const PREFIX: &'static str;
    /// The collection whose REST name the routes' type segment is.
    const COLLECTION: Collection;
    /// How the API shows it.
    type View: Serialize;
    /// Whether its objects change after they are created: updates (`PATCH`, `PUT`) and labels.
    /// Publications do not.
    const MUTABLE: bool = true;

    /// Its plugin, type and id.
    fn key(&self) -> (&str, &str, &str);

    /// Its id.
    fn id(&self) -> &str {
        self.key().2
    }

    /// Its `pulp_href`.
    fn href(&self, names: &RestNames) -> String {
        let (plugin, type_name, id) = self.key();
        hrefs::typed(names, Self::COLLECTION, plugin, type_name, id)
    }

    /// Its response view.
    fn view(self, app: &App, names: &RestNames) -> Self::View;

    /// The list filters [`Typed::filters`] reads, for the API document.
    const FILTERS: &'static [ExtraFilter] = &[];

    /// Conditions from the list filters that are not fields of its own (hrefs of other objects).
    fn filters(_names: &RestNames, _query: &ListQuery) -> ApiResult<Conditions> {
        Ok(Conditions::new())
    }

    /// Which rows exist for the API at all (publications still being written do not).
    fn shown() -> Conditions {
        Conditions::new()
    }

    /// `POST …/<plugin>/<type>/`: creates an object of the route's type (answering it, or the
    /// task that creates it).
    fn create(
        app: &App,
        route: TypeRoute,
        fields: Fields,
    ) -> impl Future<Output = ApiResult<Response>> + Send;

    /// The validated changes of an update (`whole`: a `PUT`, whose required fields must be
    /// given), and the locks its task takes besides the one on the object. Resources without
    /// update routes (not [`Typed::MUTABLE`]) keep this default, which nothing calls.
    fn changes(
        &self,
        _app: &App,
        _fields: &Fields,
        _whole: bool,
    ) -> impl Future<Output = ApiResult<(Changes, Vec<ResourceLock>)>> + Send {
        async { Err(ApiError::not_found()) }
    }
}

/// The condition list filter `param` puts on a list when the query gives it: `condition` reads it
/// from the href given, `None` for an href of the wrong kind (a 400 on the parameter).
pub fn href_filter(
    names: &RestNames,
    query: &ListQuery,
    param: &str,
    condition: impl FnOnce(Href) -> Option<Conditions>,
) -> ApiResult<Conditions> {
    let Some(href) = query.get(param) else {
        return Ok(Conditions::new());
    };
    hrefs::parse(names, href)
        .and_then(condition)
        .ok_or_else(|| ApiError::field(param, format!("URI not valid: {href}")))
}

/// The plugin type a `…/<plugin>/<type>/` route names.
pub struct TypeRoute {
    /// The plugin.
    pub loaded: Arc<LoadedPlugin>,
    /// Its name.
    pub plugin: String,
    /// The route's type segment: the REST name of the collection's type.
    pub segment: String,
    /// The type objects are recorded under.
    pub type_name: String,
}

/// The routes every typed resource serves under `/pulp/api/v3/<collection>/`: the objects of
/// every type, one type's list and [`Typed::create`], each object's read and delete and, when [`Typed::MUTABLE`], its update, replace, `set_label/` and `unset_label/`. A
/// module adds its own routes to these; a route every object of every typed resource takes
/// belongs here.
pub fn routes<R: Typed>() -> Routes {
    let collection = format!("{API_ROOT}{}/", R::COLLECTION.path());
    let of_type = format!("{collection}{{plugin}}/{{type}}/");
    let object = format!("{of_type}{{id}}/");
    let mut routes = Routes::new()
        .route(collection, get(list_all::<R>))
        .route(of_type, get(list::<R>).post(create::<R>));
    let mut object_handlers = get(read::<R>).delete(destroy::<R>);
    if R::MUTABLE {
        let update = |whole| {
            move |State(app): State<AppState>, object: ObjectPath, fields: Fields| async move {
                update::<R>(&app, object, &fields, whole).await
            }
        };
        object_handlers = object_handlers.patch(update(false)).put(update(true));
        routes = routes
            .route(
                format!("{object}set_label/"),
                label_route::<R>(LabelChange::Set),
            )
            .route(
                format!("{object}unset_label/"),
                label_route::<R>(LabelChange::Unset),
            );
    }
    routes.route(object, object_handlers)
}

/// The object `id` of the route's type (`segment` is the type's REST name), or 404.
pub async fn load<R: Typed>(app: &App, plugin: &str, segment: &str, id: &str) -> ApiResult<R> {
    let mut conditions = of_type(app, plugin, R::COLLECTION, segment, R::PREFIX)?;
    conditions.extend(R::shown());
    fetch_by_id(&app.db, id, conditions, &Visibility::all()).await
}

async fn respond_list<R: Typed>(
    app: &App,
    query: &ListQuery,
    uri: &axum::http::Uri,
    mut conditions: Conditions,
) -> ApiResult<Response> {
    let names = app.plugins.rest_names();
    conditions.extend(R::shown());
    conditions.extend(R::filters(&names, query)?);
    list::list::<R, _>(app, query, uri, conditions, &Visibility::all(), |row| {
        row.view(app, &names)
    })
    .await
}

/// `GET …/<plugin>/<type>/`: the objects of one type.
pub async fn list<R: Typed>(
    State(app): State<AppState>,
    Path((plugin, type_name)): TypePath,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let conditions = of_type(&app, &plugin, R::COLLECTION, &type_name, R::PREFIX)?;
    respond_list::<R>(&app, &query, &uri, conditions).await
}

/// `GET …/`: the objects of every type.
pub async fn list_all<R: Typed>(
    State(app): State<AppState>,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    respond_list::<R>(&app, &query, &uri, Conditions::new()).await
}

/// `POST …/<plugin>/<type>/`.
async fn create<R: Typed>(
    State(app): State<AppState>,
    Path((plugin, segment)): TypePath,
    fields: Fields,
) -> ApiResult<Response> {
    let (loaded, type_name) = typed_route(&app, &plugin, R::COLLECTION, &segment)?;
    let route = TypeRoute {
        loaded,
        plugin,
        segment,
        type_name,
    };
    R::create(&app, route, fields).await
}

/// `GET …/<id>/`.
pub async fn read<R: Typed>(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): ObjectPath,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<Value>> {
    let object = load::<R>(&app, &plugin, &type_name, &id).await?;
    Ok(shaped(&uri, &object.view(&app, &app.plugins.rest_names())))
}

/// `PATCH …/<id>/` (`whole` false: the fields given) or `PUT …/<id>/` (`whole`: the whole
/// object, its required fields given): the validated changes, applied in a task.
async fn update<R: Typed>(
    app: &App,
    object: ObjectPath,
    fields: &Fields,
    whole: bool,
) -> ApiResult<Response> {
    let Path((plugin, type_name, id)) = object;
    let object = load::<R>(app, &plugin, &type_name, &id).await?;
    let (changes, locks) = object.changes(app, fields, whole).await?;
    let href = object.href(&app.plugins.rest_names());
    spawn_update(app, href, changes, locks).await
}

/// `DELETE …/<id>/`: a task.
pub async fn destroy<R: Typed>(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): ObjectPath,
) -> ApiResult<Response> {
    let object = load::<R>(&app, &plugin, &type_name, &id).await?;
    spawn_delete(&app, object.href(&app.plugins.rest_names())).await
}

/// `POST …/<id>/set_label/` or `…/<id>/unset_label/`, as `change` says.
fn label_route<R: Typed>(change: LabelChange) -> MethodRouter<AppState> {
    post(
        move |State(app): State<AppState>, Path((plugin, type_name, id)): ObjectPath, fields| async move {
            let object = load::<R>(&app, &plugin, &type_name, &id).await?;
            support::change_label(&app, R::TABLE, object.id(), &fields, change).await
        },
    )
}
