//! The permission check of every REST action: the endpoint's access policy ([`crate::rbac`])
//! evaluated for the caller, the rows a list or show may answer (queryset scoping), and the
//! owner role a creator gets.
//!
//! Object actions check in Pulp's order: an object the caller may not view does not exist for
//! them (404), and one they may view but not change refuses the change (403).

use std::future::Future;

use axum::extract::{FromRequestParts, Path};
use axum::http::Method;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::list::{Bind, Conditions, Visibility};
use crate::auth::User;
use crate::error::{ApiError, ApiResult};
use crate::rbac::policy::{self, Principal, Subject};
use crate::rbac::{self, Object, Permissions};
use crate::state::{App, AppState};

/// The authenticated caller of a protected route, with their permissions as checks read them.
#[derive(Debug)]
pub struct Caller {
    /// Who they are.
    pub user: User,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<User>()
            .cloned()
            .map(|user| Caller { user })
            .ok_or_else(ApiError::unauthorized)
    }
}

/// What a protected handler starts from: the shared state and the authenticated [`Caller`],
/// extracted together because nearly every REST handler needs both.
#[derive(Debug)]
pub struct Call {
    /// The state handlers share.
    pub app: AppState,
    /// Who is calling.
    pub caller: Caller,
}

impl FromRequestParts<AppState> for Call {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        Ok(Call {
            app: state.clone(),
            caller,
        })
    }
}

/// An object that routes hang under (`groups/<id>/users/`, `users/<id>/tokens/`), as the caller
/// may reach it.
pub trait Parent: Sized + Send {
    /// The object `id` that the route's path names, for a request with `method`: 404 when the
    /// caller may not see it, 403 when they may not act under it.
    fn locate(
        app: &App,
        caller: &Caller,
        id: &str,
        method: &Method,
    ) -> impl Future<Output = ApiResult<Self>> + Send;
}

/// A request on what hangs under an object: the state and the object the path's `{id}` names,
/// located for the caller before the handler runs (so no handler can skip the check).
#[derive(Debug)]
pub struct Nested<P> {
    /// The state handlers share.
    pub app: AppState,
    /// The object the route hangs under.
    pub parent: P,
}

impl<P: Parent> FromRequestParts<AppState> for Nested<P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        /// The parent's id among the path's parameters (a nested object's id may follow).
        #[derive(Deserialize)]
        struct ParentId {
            id: String,
        }
        let Call { app, caller } = Call::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Path(ParentId { id }) = Path::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let parent = P::locate(&app, &caller, &id, &parts.method)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Nested { app, parent })
    }
}

impl Caller {
    /// The caller's permissions.
    pub fn permissions(&self, app: &App) -> Permissions {
        Permissions::of(app.db.clone(), &self.user.id, self.user.is_staff)
    }

    /// Refuses (403) unless the access policy of `viewset` allows `action` on `subject`.
    pub async fn authorize(
        &self,
        app: &App,
        viewset: &str,
        action: &str,
        subject: &Subject,
    ) -> ApiResult<()> {
        if self.allows(app, viewset, action, subject).await? {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// Refuses (403) unless the access policy of `viewset` allows `action`, which names no object
    /// (a list, a create, a maintenance run).
    pub async fn authorize_action(&self, app: &App, viewset: &str, action: &str) -> ApiResult<()> {
        self.authorize(app, viewset, action, &Subject::default())
            .await
    }

    /// Whether the access policy of `viewset` allows `action` on `subject`. An endpoint without
    /// a policy (a plugin's, before the server wrote its policies) is for staff only.
    pub async fn allows(
        &self,
        app: &App,
        viewset: &str,
        action: &str,
        subject: &Subject,
    ) -> ApiResult<bool> {
        let Some(row) = rbac::policy(&app.db, viewset).await? else {
            return Ok(self.user.is_staff);
        };
        let statements = stored_statements(&row.statements)?;
        let mut permissions = self.permissions(app);
        let groups = if statements.iter().any(|statement| {
            statement
                .principal
                .items()
                .iter()
                .any(|principal| principal.starts_with("group:"))
        }) {
            permissions.groups().await?
        } else {
            Vec::new()
        };
        let principal = Principal {
            user_id: &self.user.id,
            is_staff: self.user.is_staff,
            groups: &groups,
        };
        Ok(policy::allows(&statements, action, &principal, subject, &mut permissions).await?)
    }

    /// The rows of `viewset`'s objects the caller may see: all of them, unless its policy scopes
    /// lists, in which case those they hold `view_permission` on (`id_column` names the id).
    pub async fn visibility(
        &self,
        app: &App,
        viewset: &str,
        view_permission: &str,
        id_column: &str,
    ) -> ApiResult<Visibility> {
        let visible = self
            .visible_rows(app, viewset, view_permission, id_column)
            .await?;
        Ok(match visible {
            None => Visibility::all(),
            Some((sql, binds)) => {
                Visibility::only(Conditions::of(&sql, binds.into_iter().map(Bind::from)))
            }
        })
    }

    /// [`Caller::visibility`] as SQL: `None` for every row, else a condition with `?`
    /// placeholders and their values.
    pub async fn visible_rows(
        &self,
        app: &App,
        viewset: &str,
        view_permission: &str,
        id_column: &str,
    ) -> ApiResult<Option<(String, Vec<String>)>> {
        let scoped = match rbac::policy(&app.db, viewset).await? {
            Some(row) => row.queryset_scoping.is_some(),
            // Without a policy only staff act; others see nothing.
            None if self.user.is_staff => false,
            None => return Ok(Some(("1 = 0".into(), Vec::new()))),
        };
        if !scoped {
            return Ok(None);
        }
        Ok(self
            .permissions(app)
            .visible(view_permission, id_column)
            .await?)
    }

    /// Runs the creation hooks of `viewset`'s policy for a new object: its creator (the caller)
    /// gets the roles they name.
    pub async fn created(&self, app: &App, viewset: &str, object: Object<'_>) -> ApiResult<()> {
        let Some(row) = rbac::policy(&app.db, viewset).await? else {
            return Ok(());
        };
        let hooks: Value = serde_json::from_str(&row.creation_hooks).unwrap_or_default();
        rbac::run_creation_hooks(&app.db, &hooks, &self.user.id, object).await?;
        Ok(())
    }
}

/// The statements of a stored policy (checked when they were written).
fn stored_statements(text: &str) -> ApiResult<Vec<policy::Statement>> {
    let value: Value = serde_json::from_str(text).map_err(ApiError::internal)?;
    policy::parse_statements(&value).map_err(ApiError::internal)
}
