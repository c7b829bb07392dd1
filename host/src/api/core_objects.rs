//! The objects of core addressed by id (roles, groups, access policies, uploads, tasks): their
//! list, show, create, `PUT`, `PATCH` and `DELETE` handlers, written once here as
//! [`super::typed`] writes those of plugin-typed resources.
//!
//! Each takes the same steps: the object the caller may see (404 otherwise), the access
//! policy's verdict on the action (403), the change, the object as it is then. A resource says
//! what differs in a [`CoreObject`] impl: its policy, its view, which rows the caller may see,
//! and for the changes [`Creatable::insert`], [`Editable::change`] and [`Deletable::delete`]. `PUT` and `PATCH` take the
//! same path and body and differ only in whether the fields a create requires must be given, so a
//! resource writes that change once and [`change`] routes both.

use std::future::Future;

use axum::Json;
use axum::extract::{OriginalUri, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use serde_json::Value;

use super::access::{Call, Caller};
use super::list::{
    self, Conditions, ListQuery, ListRequest, Page, Resource, Visibility, fetch_by_id,
};
use super::object_roles::{self, RoleAction};
use super::support::Fields;
use crate::error::ApiResult;
use crate::rbac::Object;
use crate::rbac::policy::Subject;
use crate::state::{App, AppState};

/// A core resource whose objects are addressed by id and answered as one view.
pub trait CoreObject: Resource + Sized {
    /// The access policy of its routes.
    const VIEWSET: &'static str;

    /// How the API shows one.
    type View: Serialize + Send;

    /// The permission to view one, when its policy may scope lists to the objects the caller
    /// holds it on; `None`: every caller who may list sees every row.
    const VIEW_PERMISSION: Option<&'static str> = None;

    /// The conditions of the list filters the resource reads itself (none unless it has some).
    fn filters(_query: &ListQuery) -> ApiResult<Conditions> {
        Ok(Conditions::new())
    }

    /// The rows the caller may see: by default those [`CoreObject::VIEW_PERMISSION`] scopes
    /// the policy's lists to; a resource seen through others (a task group through its tasks)
    /// says otherwise.
    fn visibility(
        app: &App,
        caller: &Caller,
    ) -> impl Future<Output = ApiResult<Visibility>> + Send {
        visibility_by_permission::<Self>(app, caller)
    }

    /// The views of `rows`, in their order (one call for a page, so a resource may read what
    /// they need in one query).
    fn views(app: &App, rows: Vec<Self>)
    -> impl Future<Output = ApiResult<Vec<Self::View>>> + Send;
}

/// A resource whose objects the API creates.
pub trait Creatable: CoreObject {
    /// Creates one from `fields` (the policy already allowed it), answering its id; a resource
    /// whose policy has creation hooks runs them here ([`Caller::created`]).
    fn insert(
        app: &App,
        caller: &Caller,
        fields: &Fields,
    ) -> impl Future<Output = ApiResult<String>> + Send;
}

/// A resource whose objects are changed in place.
pub trait Editable: CoreObject {
    /// Changes `object` as the caller asks (the policy already allowed it); `whole` is a `PUT`,
    /// whose required fields must be given.
    fn change(
        app: &App,
        object: Self,
        fields: &Fields,
        whole: bool,
    ) -> impl Future<Output = ApiResult<()>> + Send;
}

/// A resource whose objects the API deletes.
pub trait Deletable: CoreObject {
    /// Deletes `object` and what hangs on it (the policy already allowed it).
    fn delete(app: &App, object: Self) -> impl Future<Output = ApiResult<()>> + Send;
}

/// Deletes the rows of each `(table, column)` whose column is `id`, in order, in one
/// transaction: an object's dependents, then the object.
pub async fn delete_rows(app: &App, id: &str, rows: &[(&str, &str)]) -> ApiResult<()> {
    let mut tx = app.db.begin_write().await?;
    for (table, column) in rows {
        sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Gives the caller the roles the creation hooks of `C`'s policy name on the object `id` they
/// just created, at `href` (Pulp's `add_roles_for_object_creator`), as [`Creatable::insert`]
/// does for a resource whose policy has such hooks.
pub async fn give_creator_roles<C: Creatable>(
    app: &App,
    caller: &Caller,
    id: &str,
    href: &str,
) -> ApiResult<()> {
    caller.created(app, C::VIEWSET, Object { id, href }).await
}

/// The subject of an action on object `id`.
pub fn on(id: &str) -> Subject {
    Subject {
        object: Some(id.to_owned()),
        ..Subject::default()
    }
}

/// The rows of `O` the caller may see by [`CoreObject::VIEW_PERMISSION`].
async fn visibility_by_permission<O: CoreObject>(
    app: &App,
    caller: &Caller,
) -> ApiResult<Visibility> {
    match O::VIEW_PERMISSION {
        Some(permission) => {
            caller
                .visibility(app, O::VIEWSET, permission, O::SPEC.id)
                .await
        }
        None => Ok(Visibility::all()),
    }
}

/// The object `id` when the caller may see it; 404 otherwise.
pub async fn visible<O: CoreObject>(app: &App, caller: &Caller, id: &str) -> ApiResult<O> {
    let visibility = O::visibility(app, caller).await?;
    fetch_by_id(&app.db, id, Conditions::new(), &visibility).await
}

/// The object `id` once the caller may take `action` on it: 404 when they may not see it, 403
/// when the policy refuses them.
pub async fn authorized<O: CoreObject>(
    app: &App,
    caller: &Caller,
    id: &str,
    action: &str,
) -> ApiResult<O> {
    let object: O = visible(app, caller, id).await?;
    caller
        .authorize(app, O::VIEWSET, action, &on(object.id()))
        .await?;
    Ok(object)
}

/// The view of `object`.
async fn view<O: CoreObject>(app: &App, object: O) -> ApiResult<O::View> {
    let mut views = O::views(app, vec![object]).await?;
    Ok(views.pop().expect("a view of every row"))
}

/// The object `id` as the answer to a create or change shows it.
pub async fn answer<O: CoreObject>(app: &App, id: &str) -> ApiResult<Json<Value>> {
    let object: O = fetch_by_id(&app.db, id, Conditions::new(), &Visibility::all()).await?;
    Ok(list::json(&view(app, object).await?))
}

/// `GET …/`: the objects the caller may see.
pub async fn list<O: CoreObject>(
    Call { app, caller }: Call,
    ListRequest { query, uri }: ListRequest,
) -> ApiResult<Response> {
    caller.authorize_action(&app, O::VIEWSET, "list").await?;
    let visibility = O::visibility(&app, &caller).await?;
    let page = Page::from_query(&query)?;
    let (total, rows) =
        list::fetch_page::<O>(&app.db, &query, O::filters(&query)?, &visibility, &page).await?;
    let views = O::views(&app, rows).await?;
    Ok(page.respond(&app, &uri, total, views))
}

/// `GET …/<id>/`
pub async fn read<O: CoreObject>(
    Call { app, caller }: Call,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<Value>> {
    let object: O = authorized(&app, &caller, &id, "retrieve").await?;
    Ok(list::shaped(&uri, &view(&app, object).await?))
}

/// `POST …/`: 201 with the new object.
pub async fn create<C: Creatable>(
    Call { app, caller }: Call,
    fields: Fields,
) -> ApiResult<Response> {
    caller.authorize_action(&app, C::VIEWSET, "create").await?;
    let id = C::insert(&app, &caller, &fields).await?;
    Ok((StatusCode::CREATED, answer::<C>(&app, &id).await?).into_response())
}

/// The access-policy action of a change.
fn action(whole: bool) -> &'static str {
    if whole { "update" } else { "partial_update" }
}

/// `PUT …/<id>/` (`WHOLE`: the whole object, its required fields given) or `PATCH` (the fields
/// given), answered as the object is then.
pub async fn change<E: Editable, const WHOLE: bool>(
    Call { app, caller }: Call,
    Path(id): Path<String>,
    fields: Fields,
) -> ApiResult<Json<Value>> {
    let object: E = authorized(&app, &caller, &id, action(WHOLE)).await?;
    let id = object.id().to_owned();
    E::change(&app, object, &fields, WHOLE).await?;
    answer::<E>(&app, &id).await
}

/// `DELETE …/<id>/`
pub async fn destroy<D: Deletable>(
    Call { app, caller }: Call,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let object: D = authorized(&app, &caller, &id, "destroy").await?;
    D::delete(&app, object).await?;
    // Roles held on the object go with it, so a later object cannot inherit them by id.
    crate::rbac::forget_object(&app.db, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The handlers of a collection `…/`: list and create.
pub fn collection<C: Creatable>() -> MethodRouter<AppState> {
    get(list::<C>).post(create::<C>)
}

/// The route of role action `action` (`list_roles/`, `add_role/`, …) on an object of `O` the
/// caller may see (404 otherwise), whose href `href` makes from its id.
pub fn role_action<O: CoreObject + Send + 'static>(
    action: RoleAction,
    href: fn(&str) -> String,
) -> MethodRouter<AppState> {
    action.route(
        move |Call { app, caller }: Call, Path(id): Path<String>, fields: Fields| async move {
            let row: O = visible(&app, &caller, &id).await?;
            let href = href(row.id());
            let object = Object {
                id: row.id(),
                href: &href,
            };
            object_roles::act(&app, &caller, action, O::VIEWSET, object, &fields).await
        },
    )
}

/// The handlers of `…/<id>/` of an object changed in place: show, `PUT` and `PATCH`.
pub fn object<E: Editable>() -> MethodRouter<AppState> {
    get(read::<E>)
        .put(change::<E, true>)
        .patch(change::<E, false>)
}
