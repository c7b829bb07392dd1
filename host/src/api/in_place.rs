//! `PUT` and `PATCH` of the resources changed in place rather than in a task (roles, groups,
//! access policies): both routes take the same path and body and differ only in whether the
//! fields a create requires must be given, so a resource writes that change once
//! ([`Editable::change`]) and routes to [`replace`] and [`update`].

use std::future::Future;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

use super::access::Caller;
use super::support::Fields;
use crate::error::ApiResult;
use crate::state::{App, AppState};

/// A resource whose objects are changed in place.
pub trait Editable {
    /// Changes object `id` as the caller asks, answering it as it is then; `whole` is a `PUT`
    /// (its required fields must be given, and the policy action is `update`, not
    /// `partial_update`).
    fn change(
        app: &App,
        caller: &Caller,
        id: &str,
        fields: &Fields,
        whole: bool,
    ) -> impl Future<Output = ApiResult<Json<Value>>> + Send;
}

/// The access-policy action of a change.
pub fn action(whole: bool) -> &'static str {
    if whole { "update" } else { "partial_update" }
}

/// `PUT …/<id>/`: the whole object.
pub async fn replace<E: Editable>(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    fields: Fields,
) -> ApiResult<Json<Value>> {
    E::change(&app, &caller, &id, &fields, true).await
}

/// `PATCH …/<id>/`: the fields given.
pub async fn update<E: Editable>(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    fields: Fields,
) -> ApiResult<Json<Value>> {
    E::change(&app, &caller, &id, &fields, false).await
}
