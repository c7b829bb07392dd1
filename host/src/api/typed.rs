//! The handlers every plugin-typed resource shares (`repositories/<plugin>/<type>/`, `remotes/…`,
//! `publications/…`, `distributions/…`): list (of one type, and of every type), read, update
//! and replace (tasks, as in Pulp), delete (a task), and the label actions. A resource module
//! implements [`Typed`] for its row type and registers these with [`routes`], writing only what
//! is its own: its response view, the filters that name other objects, what a change of it
//! means, its create and its other routes.

use std::future::Future;
use std::sync::Arc;

use axum::Json;
use axum::extract::{OriginalUri, Path};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use serde::Serialize;
use serde_json::Value;

use super::access::{Call, Caller};
use super::list::{
    self, Bind, Conditions, ExtraFilter, ListQuery, ListRequest, Page, Resource, Visibility,
    fetch_by_id, shaped,
};
use super::object_roles::{self, RoleAction};
use super::routes::Routes;
use super::support::{
    self, Changes, Fields, LabelChange, of_type, spawn_delete, spawn_update, typed_route,
};
use crate::domain::hrefs::{self, API_ROOT, Collection, Href, RestNames};
use crate::error::{ApiError, ApiResult};
use crate::plugins::LoadedPlugin;
use crate::rbac::catalog::Model;
use crate::rbac::policy::Subject;
use crate::rbac::{Object, Permissions};
use crate::state::{App, AppState};
use crate::tasks::ResourceLock;

/// `/<plugin>/<type>/` of a typed route.
type TypePath = Path<(String, String)>;
/// `/<plugin>/<type>/<id>/` of a typed route.
type ObjectPath = Path<(String, String, String)>;

/// A row of a plugin-typed resource: its collection and key, which `resource!` declares from its
/// `collection:` (the rows of all four have the same `plugin`, `type_name` and `id` columns).
pub trait TypedRow: Resource {
    /// The collection whose REST name the routes' type segment is.
    const COLLECTION: Collection;

    /// Its plugin, type and id.
    fn key(&self) -> (&str, &str, &str);
}

/// What an update of a typed object does: the validated column changes, and the locks its task
/// takes besides the one on the object.
pub type Update = (Changes, Vec<ResourceLock>);

/// A resource whose routes are typed by a plugin and one of its types.
pub trait Typed: TypedRow {
    /// How the API shows it.
    type View: Serialize + Send;
    /// Whether its objects change after they are created: updates (`PATCH`, `PUT`) and labels.
    /// Publications do not.
    const MUTABLE: bool = true;

    /// Its `pulp_href`.
    fn href(&self, names: &RestNames) -> String {
        let (plugin, type_name, id) = self.key();
        hrefs::typed(names, Self::COLLECTION, plugin, type_name, id)
    }

    /// Its response view.
    fn view(self, app: &App, names: &RestNames) -> Self::View;

    /// Its response view as a caller holding `permissions` may see it: by default the whole
    /// view; a resource with fields shown only to those who may change the object (a remote's
    /// `headers`) hides them from the others.
    fn view_for(
        self,
        app: &App,
        names: &RestNames,
        _permissions: &mut Permissions,
    ) -> impl Future<Output = ApiResult<Self::View>> + Send
    where
        Self: Send,
    {
        async move { Ok(self.view(app, names)) }
    }

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
    ) -> impl Future<Output = ApiResult<Update>> + Send {
        async { Err(ApiError::not_found()) }
    }
}

/// The table of `R` (labels are changed there): the first word of its `FROM`.
fn table<R: Typed>() -> &'static str {
    R::SPEC.from.split_whitespace().next().unwrap_or_default()
}

/// The prefix of `R`'s `plugin` and `type_name` columns in its `FROM`: that of its id column
/// (`r.` of `r.id`, none of `id`).
fn prefix<R: Typed>() -> &'static str {
    R::SPEC.id.strip_suffix("id").unwrap_or_default()
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

/// The plugin type a `…/<plugin>/<type>/` route names, and who calls it.
pub struct TypeRoute {
    /// The caller, who owns what they create.
    pub caller: Caller,
    /// The plugin.
    pub loaded: Arc<LoadedPlugin>,
    /// Its name.
    pub plugin: String,
    /// The route's type segment: the REST name of the collection's type.
    pub segment: String,
    /// The type objects are recorded under.
    pub type_name: String,
}

impl TypeRoute {
    /// The object `id` the caller just created on this route, once they got the roles the
    /// creation hooks of `R`'s policy name on it (Pulp's `add_roles_for_object_creator`).
    pub async fn created<R: Typed>(&self, app: &App, id: &str) -> ApiResult<R> {
        let object: R = load(app, &self.plugin, &self.segment, id).await?;
        let href = object.href(&app.plugins.rest_names());
        let viewset = viewset::<R>(&self.plugin, &self.segment);
        self.caller
            .created(app, &viewset, Object { id, href: &href })
            .await?;
        Ok(object)
    }
}

/// The access policy a typed route answers to: `repositories/file/file`.
pub fn viewset<R: Typed>(plugin: &str, segment: &str) -> String {
    collection_viewset(R::COLLECTION, plugin, segment)
}

/// The access policy of `collection`'s routes of one plugin's type.
fn collection_viewset(collection: Collection, plugin: &str, segment: &str) -> String {
    format!("{}/{plugin}/{segment}", collection.path())
}

/// The permission to view `R`'s objects of `plugin`; 404 for a plugin that is not loaded.
fn view_permission<R: Typed>(names: &RestNames, plugin: &str) -> ApiResult<String> {
    let names = names.plugin(plugin).ok_or_else(ApiError::not_found)?;
    Ok(Model::of_plugin(names, R::COLLECTION).permission("view"))
}

/// The objects of `R` the caller may see in a list of one plugin's type.
async fn visible<R: Typed>(
    app: &App,
    caller: &Caller,
    plugin: &str,
    segment: &str,
) -> ApiResult<Visibility> {
    let view = view_permission::<R>(&app.plugins.rest_names(), plugin)?;
    caller
        .visibility(app, &viewset::<R>(plugin, segment), &view, R::SPEC.id)
        .await
}

/// The objects of `R` the caller may see in a list of every type: for each loaded plugin, the
/// ones its policy lets them see; objects of plugins no longer loaded, staff only.
pub async fn visible_of_every_type<R: Typed>(app: &App, caller: &Caller) -> ApiResult<Visibility> {
    let seen = PluginScope {
        collection: R::COLLECTION,
        only: None,
        plugin_column: &format!("{}plugin", prefix::<R>()),
        id_column: R::SPEC.id,
    };
    seen.visibility(app, caller, |visible| visible.map(str::to_owned))
        .await
}

/// Rows that belong to plugins, each seen through an object of one of the plugin's
/// collections: a repository through itself, a content unit through the repositories holding it.
pub struct PluginScope<'a> {
    /// The collection whose view permission and policy decide.
    pub collection: Collection,
    /// One plugin's rows only (a list of one type); `None`: every loaded plugin's.
    pub only: Option<&'a str>,
    /// The column that names a row's plugin.
    pub plugin_column: &'a str,
    /// The column of the collection's object id that [`PluginScope::visibility`]'s `within`
    /// condition tests.
    pub id_column: &'a str,
}

impl PluginScope<'_> {
    /// The rows the caller may see: staff, every row; others, for each plugin, the rows for
    /// which `within` holds, given the condition on [`PluginScope::id_column`] that keeps the
    /// objects they may view (`None`: they may view every object of the plugin). `within`
    /// answers `None` for every row of the plugin. Rows of plugins no longer loaded, staff only.
    pub async fn visibility(
        &self,
        app: &App,
        caller: &Caller,
        within: impl Fn(Option<&str>) -> Option<String>,
    ) -> ApiResult<Visibility> {
        if caller.user.is_staff {
            return Ok(Visibility::all());
        }
        let names = app.plugins.rest_names();
        let mut sql = Vec::new();
        let mut binds = Vec::new();
        for plugin in names
            .all()
            .filter(|plugin| self.only.is_none_or(|only| only == plugin.plugin))
        {
            let view = Model::of_plugin(plugin, self.collection).permission("view");
            let viewset = collection_viewset(
                self.collection,
                &plugin.plugin,
                plugin.segment(self.collection),
            );
            let rows = caller
                .visible_rows(app, &viewset, &view, self.id_column)
                .await?;
            let (visible, values) = match rows {
                Some((condition, values)) => (Some(condition), values),
                None => (None, Vec::new()),
            };
            binds.push(Bind::from(plugin.plugin.as_str()));
            match within(visible.as_deref()) {
                None => sql.push(format!("{} = ?", self.plugin_column)),
                Some(condition) => {
                    sql.push(format!("({} = ? AND {condition})", self.plugin_column));
                    binds.extend(values.into_iter().map(Bind::from));
                }
            }
        }
        if sql.is_empty() {
            return Ok(Visibility::only(Conditions::of("1 = 0", [])));
        }
        Ok(Visibility::only(Conditions::of(
            &format!("({})", sql.join(" OR ")),
            binds,
        )))
    }
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
            move |Call { app, caller }: Call, object: ObjectPath, fields: Fields| async move {
                update::<R>(&app, &caller, object, &fields, whole).await
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
    RoleAction::routes(routes, &object, role_route::<R>).route(object, object_handlers)
}

/// A role action (`list_roles/`, `add_role/`, …) on an object the caller may see.
fn role_route<R: Typed>(action: RoleAction) -> MethodRouter<AppState> {
    action.route(
        move |Call { app, caller }: Call,
              Path((plugin, segment, id)): ObjectPath,
              fields: Fields| async move {
            let object = load_visible::<R>(&app, &caller, &plugin, &segment, &id).await?;
            let href = object.href(&app.plugins.rest_names());
            let target = Object {
                id: object.id(),
                href: &href,
            };
            let viewset = viewset::<R>(&plugin, &segment);
            object_roles::act(&app, &caller, action, &viewset, target, &fields).await
        },
    )
}

/// The object `id` of the route's type (`segment` is the type's REST name), or 404.
pub async fn load<R: Typed>(app: &App, plugin: &str, segment: &str, id: &str) -> ApiResult<R> {
    fetch::<R>(app, plugin, segment, id, &Visibility::all()).await
}

async fn fetch<R: Typed>(
    app: &App,
    plugin: &str,
    segment: &str,
    id: &str,
    visibility: &Visibility,
) -> ApiResult<R> {
    let mut conditions = of_type(app, plugin, R::COLLECTION, segment, prefix::<R>())?;
    conditions.extend(R::shown());
    fetch_by_id(&app.db, id, conditions, visibility).await
}

/// The object `id` of the route's type if the caller may see it; 404 otherwise, as for an
/// object that does not exist.
pub async fn load_visible<R: Typed>(
    app: &App,
    caller: &Caller,
    plugin: &str,
    segment: &str,
    id: &str,
) -> ApiResult<R> {
    let visibility = visible::<R>(app, caller, plugin, segment).await?;
    fetch::<R>(app, plugin, segment, id, &visibility).await
}

/// The object `id` of the route's type, for `action` by the caller: 404 when they may not see
/// it, 403 when its access policy refuses them `action` on it (`references`: the objects the
/// request names, which conditions check too).
pub async fn load_for<R: Typed>(
    app: &App,
    caller: &Caller,
    (plugin, segment, id): (&str, &str, &str),
    action: &str,
    references: Subject,
) -> ApiResult<R> {
    let object = load_visible::<R>(app, caller, plugin, segment, id).await?;
    let subject = Subject {
        object: Some(object.id().to_owned()),
        ..references
    };
    caller
        .authorize(app, &viewset::<R>(plugin, segment), action, &subject)
        .await?;
    Ok(object)
}

async fn respond_list<R: Typed>(
    app: &App,
    caller: &Caller,
    request: &ListRequest,
    mut conditions: Conditions,
    visibility: &Visibility,
) -> ApiResult<Response> {
    let names = app.plugins.rest_names();
    conditions.extend(R::shown());
    conditions.extend(R::filters(&names, &request.query)?);
    let page = Page::from_query(&request.query)?;
    let (total, rows) =
        list::fetch_page::<R>(&app.db, &request.query, conditions, visibility, &page).await?;
    let mut permissions = caller.permissions(app);
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        views.push(row.view_for(app, &names, &mut permissions).await?);
    }
    Ok(page.respond(app, &request.uri, total, views))
}

/// `GET …/<plugin>/<type>/`: the objects of one type.
pub async fn list<R: Typed>(
    Call { app, caller }: Call,
    Path((plugin, segment)): TypePath,
    request: ListRequest,
) -> ApiResult<Response> {
    let conditions = of_type(&app, &plugin, R::COLLECTION, &segment, prefix::<R>())?;
    caller
        .authorize(
            &app,
            &viewset::<R>(&plugin, &segment),
            "list",
            &Subject::default(),
        )
        .await?;
    let visibility = visible::<R>(&app, &caller, &plugin, &segment).await?;
    respond_list::<R>(&app, &caller, &request, conditions, &visibility).await
}

/// `GET …/`: the objects of every type.
pub async fn list_all<R: Typed>(
    Call { app, caller }: Call,
    request: ListRequest,
) -> ApiResult<Response> {
    let visibility = visible_of_every_type::<R>(&app, &caller).await?;
    respond_list::<R>(&app, &caller, &request, Conditions::new(), &visibility).await
}

/// 405 for `method` on the push repositories of a plugin (`segment` of `R`'s collection), which
/// REST neither creates, deletes, syncs nor modifies (pulp_container's rule: a push creates one,
/// its distribution's deletion deletes it).
pub fn refuse_on_push_repositories<R: Typed>(
    app: &App,
    plugin: &str,
    segment: &str,
    method: &str,
) -> ApiResult<()> {
    if app
        .plugins
        .rest_names()
        .is_push_segment(plugin, R::COLLECTION, segment)
    {
        return Err(ApiError::method_not_allowed(method));
    }
    Ok(())
}

/// `POST …/<plugin>/<type>/`.
async fn create<R: Typed>(
    Call { app, caller }: Call,
    Path((plugin, segment)): TypePath,
    fields: Fields,
) -> ApiResult<Response> {
    refuse_on_push_repositories::<R>(&app, &plugin, &segment, "POST")?;
    let (loaded, type_name) = typed_route(&app, &plugin, R::COLLECTION, &segment)?;
    let references = references(&app.plugins.rest_names(), &fields);
    caller
        .authorize(
            &app,
            &viewset::<R>(&plugin, &segment),
            "create",
            &references,
        )
        .await?;
    let route = TypeRoute {
        caller,
        loaded,
        plugin,
        segment,
        type_name,
    };
    R::create(&app, route, fields).await
}

/// `GET …/<id>/`.
pub async fn read<R: Typed>(
    Call { app, caller }: Call,
    Path((plugin, segment, id)): ObjectPath,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<Value>> {
    let key = (plugin.as_str(), segment.as_str(), id.as_str());
    let object = load_for::<R>(&app, &caller, key, "retrieve", Subject::default()).await?;
    let mut permissions = caller.permissions(&app);
    let view = object
        .view_for(&app, &app.plugins.rest_names(), &mut permissions)
        .await?;
    Ok(shaped(&uri, &view))
}

/// `PATCH …/<id>/` (`whole` false: the fields given) or `PUT …/<id>/` (`whole`: the whole
/// object, its required fields given): the validated changes, applied in a task.
async fn update<R: Typed>(
    app: &App,
    caller: &Caller,
    object: ObjectPath,
    fields: &Fields,
    whole: bool,
) -> ApiResult<Response> {
    let Path((plugin, segment, id)) = object;
    let action = if whole { "update" } else { "partial_update" };
    let references = references(&app.plugins.rest_names(), fields);
    let key = (plugin.as_str(), segment.as_str(), id.as_str());
    let object = load_for::<R>(app, caller, key, action, references).await?;
    let (changes, locks) = object.changes(app, fields, whole).await?;
    let href = object.href(&app.plugins.rest_names());
    spawn_update(app, href, changes, locks).await
}

/// `DELETE …/<id>/`: a task.
pub async fn destroy<R: Typed>(
    Call { app, caller }: Call,
    Path((plugin, segment, id)): ObjectPath,
) -> ApiResult<Response> {
    refuse_on_push_repositories::<R>(&app, &plugin, &segment, "DELETE")?;
    let key = (plugin.as_str(), segment.as_str(), id.as_str());
    let object = load_for::<R>(&app, &caller, key, "destroy", Subject::default()).await?;
    spawn_delete(&app, object.href(&app.plugins.rest_names())).await
}

/// `POST …/<id>/set_label/` or `…/<id>/unset_label/`, as `change` says.
fn label_route<R: Typed>(change: LabelChange) -> MethodRouter<AppState> {
    let action = match change {
        LabelChange::Set => "set_label",
        LabelChange::Unset => "unset_label",
    };
    post(
        move |Call { app, caller }: Call, Path((plugin, segment, id)): ObjectPath, fields| async move {
            let key = (plugin.as_str(), segment.as_str(), id.as_str());
            let object = load_for::<R>(&app, &caller, key, action, Subject::default()).await?;
            support::change_label(&app, table::<R>(), object.id(), &fields, change).await
        },
    )
}

/// The objects a create or update names, by id, for the conditions of its policy: the `remote`,
/// the `repository` (or the repository of a `repository_version`), the `publication` and the
/// `upload`. A field that is no href of its kind names nothing here; the request's own
/// validation refuses it.
pub fn references(names: &RestNames, fields: &Fields) -> Subject {
    let href = |field: &str| {
        fields
            .0
            .get(field)
            .and_then(Value::as_str)
            .and_then(|href| hrefs::parse(names, href))
    };
    let repository = match (href("repository"), href("repository_version")) {
        (Some(Href::Repository { id, .. }), _) | (_, Some(Href::Version { id, .. })) => Some(id),
        _ => None,
    };
    Subject {
        remote: match href("remote") {
            Some(Href::Remote { id, .. }) => Some(id),
            _ => None,
        },
        repository,
        publication: match href("publication") {
            Some(Href::Publication { id, .. }) => Some(id),
            _ => None,
        },
        upload: match href("upload") {
            Some(Href::Upload { id }) => Some(id),
            _ => None,
        },
        ..Subject::default()
    }
}
