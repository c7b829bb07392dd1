//! The role actions every object answers, as Pulp's `RolesMixin`: `{href}list_roles/` (who holds
//! which role on it), `add_role/` and `remove_role/` (give a role on it to users and groups, or
//! take it back), and `my_permissions/` (what the caller may do with it).
//!
//! They are free functions of the object's access policy (`viewset`), id and href, so each
//! object route adds them after locating its object (a caller who may not view it gets 404
//! there); [`act`] dispatches one [`RoleAction`]. The href also names the object's model, and a
//! role given on an object must hold at least one permission of that model, as in Pulp.

use std::collections::BTreeMap;

use axum::handler::Handler;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Caller;
use super::core_objects;
use super::list;
use super::routes::Routes;
use super::support::Fields;
use crate::db::Db;
use crate::domain::hrefs::{self, Collection, Href, RestNames};
use crate::error::{ApiError, ApiResult};
use crate::rbac::catalog::{Kind, Model};
use crate::rbac::{self, Holder, Object};
use crate::state::{App, AppState};

/// One of the role actions of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleAction {
    /// `GET list_roles/`
    ListRoles,
    /// `POST add_role/`
    AddRole,
    /// `POST remove_role/`
    RemoveRole,
    /// `GET my_permissions/`
    MyPermissions,
}

impl RoleAction {
    /// Every role action, in the order their routes are registered.
    pub const ALL: [RoleAction; 4] = [
        RoleAction::ListRoles,
        RoleAction::AddRole,
        RoleAction::RemoveRole,
        RoleAction::MyPermissions,
    ];

    /// The routes of every role action on the objects under `object` (a template ending in
    /// `/`), each served by what `handlers` makes of it.
    pub fn routes(
        mut routes: Routes,
        object: &str,
        handlers: impl Fn(RoleAction) -> MethodRouter<AppState>,
    ) -> Routes {
        for action in RoleAction::ALL {
            routes = routes.route(format!("{object}{}/", action.name()), handlers(action));
        }
        routes
    }

    /// `handler` routed with the action's method (`GET` to read, `POST` to change).
    pub fn route<H, T>(self, handler: H) -> MethodRouter<AppState>
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        match self {
            RoleAction::ListRoles | RoleAction::MyPermissions => get(handler),
            RoleAction::AddRole | RoleAction::RemoveRole => post(handler),
        }
    }

    /// The access-policy action it is checked as.
    pub fn name(self) -> &'static str {
        match self {
            RoleAction::ListRoles => "list_roles",
            RoleAction::AddRole => "add_role",
            RoleAction::RemoveRole => "remove_role",
            RoleAction::MyPermissions => "my_permissions",
        }
    }
}

/// Runs `action` on the object `id` at `href`, whose access policy is `viewset`; `fields` is the
/// request body of `add_role/` and `remove_role/`.
pub async fn act(
    app: &App,
    caller: &Caller,
    action: RoleAction,
    viewset: &str,
    object: Object<'_>,
    fields: &Fields,
) -> ApiResult<Response> {
    let subject = core_objects::on(object.id);
    caller
        .authorize(app, viewset, action.name(), &subject)
        .await?;
    let model = RoleObject::parse(&app.plugins.rest_names(), object.href)
        .ok_or_else(|| ApiError::internal(format!("{} names no model", object.href)))?
        .model;
    match action {
        RoleAction::ListRoles => {
            Ok(list::json(&list_roles(&app.db, object.id).await?).into_response())
        }
        RoleAction::MyPermissions => {
            let mut held = caller.permissions(app);
            let mut permissions = Vec::new();
            for permission in model.permissions() {
                if held.has_on(&permission, object.id).await? {
                    permissions.push(permission);
                }
            }
            Ok(list::json(&MyPermissions { permissions }).into_response())
        }
        RoleAction::AddRole | RoleAction::RemoveRole => {
            let adding = action == RoleAction::AddRole;
            let request = NestedRole::read(&app.db, fields, &model).await?;
            change_roles(&app.db, &request, object, adding).await?;
            Ok((StatusCode::CREATED, list::json(&request.view())).into_response())
        }
    }
}

/// An object roles are given on: its id, its model, and the table it lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleObject {
    /// Its uuid.
    pub id: String,
    /// Its model, which names its permissions.
    pub model: Model,
    /// Its table.
    pub table: &'static str,
}

impl RoleObject {
    /// The object `href` names, if roles can be given on that kind of object.
    pub fn parse(names: &RestNames, href: &str) -> Option<RoleObject> {
        if let Some((kind, id)) = crate::domain::content_guards::parse_href(href) {
            return Some(RoleObject {
                id,
                model: crate::rbac::catalog::guard_model(kind),
                table: "content_guards",
            });
        }
        if let Some(id) = super::groups::id_of(href) {
            return Some(RoleObject {
                id,
                model: Model::core("group", Kind::Group),
                table: "groups",
            });
        }
        let typed = |plugin: String, collection: Collection, id: String| {
            let table = collection.path();
            Some(RoleObject {
                model: Model::of_plugin(names.plugin(&plugin)?, collection),
                id,
                table,
            })
        };
        match hrefs::parse(names, href)? {
            Href::Repository { plugin, id, .. } => typed(plugin, Collection::Repositories, id),
            Href::Remote { plugin, id, .. } => typed(plugin, Collection::Remotes, id),
            Href::Publication { plugin, id, .. } => typed(plugin, Collection::Publications, id),
            Href::Distribution { plugin, id, .. } => typed(plugin, Collection::Distributions, id),
            Href::Task { id } => Some(RoleObject {
                id,
                model: Model::core("task", Kind::Task),
                table: "tasks",
            }),
            Href::Upload { id } => Some(RoleObject {
                id,
                model: Model::core("upload", Kind::Upload),
                table: "uploads",
            }),
            Href::AlternateContentSource { plugin, id } => Some(RoleObject {
                model: Model::alternate_content_source(names.plugin(&plugin)?),
                id,
                table: "acs_sources",
            }),
            Href::UpstreamPulp { id } => Some(RoleObject {
                id,
                model: Model::core("upstreampulp", Kind::UpstreamPulp),
                table: "upstream_pulps",
            }),
            _ => None,
        }
    }

    /// Whether the object exists.
    pub async fn exists(&self, db: &Db) -> ApiResult<bool> {
        let found = sqlx::query(&format!("SELECT 1 FROM {} WHERE id = $1", self.table))
            .bind(&self.id)
            .fetch_optional(db.pool())
            .await?;
        Ok(found.is_some())
    }
}

/// A role, with its id, looked up by name for a request field.
#[derive(Debug, Clone)]
pub struct NamedRole {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
}

impl NamedRole {
    /// The role called `name`, or a 400 on `field`.
    pub async fn find(db: &Db, field: &str, name: &str) -> ApiResult<NamedRole> {
        match rbac::role_id(db, name).await? {
            Some(id) => Ok(NamedRole {
                id,
                name: name.to_owned(),
            }),
            None => Err(ApiError::field(
                field,
                format!("Object with name={name} does not exist."),
            )),
        }
    }

    /// Refuses (400 on `field`) a role that holds no permission of `model`: given on an object
    /// of that model it would grant nothing.
    pub async fn check_about(&self, db: &Db, field: &str, model: &Model) -> ApiResult<()> {
        let held: Vec<String> =
            sqlx::query_scalar("SELECT permission FROM role_permissions WHERE role_id = $1")
                .bind(&self.id)
                .fetch_all(db.pool())
                .await?;
        let about = model.permissions();
        if held.iter().any(|permission| about.contains(permission)) {
            return Ok(());
        }
        // Pulp's words, on the field that is wrong.
        Err(ApiError::field(
            field,
            "The role does not contain any permission for that object.",
        ))
    }
}

/// `{"roles": [...]}`: who holds which role on an object.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ObjectRoles {
    roles: Vec<HeldRole>,
}

/// One role held on an object.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HeldRole {
    role: String,
    /// Usernames.
    users: Vec<String>,
    /// Group names.
    groups: Vec<String>,
}

/// `{"permissions": [...]}`: what the caller may do with an object.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MyPermissions {
    permissions: Vec<String>,
}

async fn list_roles(db: &Db, object_id: &str) -> ApiResult<ObjectRoles> {
    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT r.name, u.username, g.name FROM role_assignments ra
           JOIN roles r ON r.id = ra.role_id
           LEFT JOIN users u ON u.id = ra.user_id
           LEFT JOIN groups g ON g.id = ra.group_id
         WHERE ra.object_id = $1 ORDER BY r.name, u.username, g.name",
    )
    .bind(object_id)
    .fetch_all(db.pool())
    .await?;
    let mut roles: BTreeMap<String, HeldRole> = BTreeMap::new();
    for (role, user, group) in rows {
        let held = roles.entry(role.clone()).or_insert_with(|| HeldRole {
            role,
            users: Vec::new(),
            groups: Vec::new(),
        });
        held.users.extend(user);
        held.groups.extend(group);
    }
    Ok(ObjectRoles {
        roles: roles.into_values().collect(),
    })
}

/// The body of `add_role/` and `remove_role/`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct NestedRoleInput {
    role: String,
    /// Usernames.
    #[serde(default)]
    users: Vec<String>,
    /// Group names.
    #[serde(default)]
    groups: Vec<String>,
}

/// A checked `add_role/` or `remove_role/` request: the role and who, by id and name.
struct NestedRole {
    role: NamedRole,
    users: Vec<(String, String)>,
    groups: Vec<(String, String)>,
}

impl NestedRole {
    async fn read(db: &Db, fields: &Fields, model: &Model) -> ApiResult<NestedRole> {
        let input: NestedRoleInput = fields.parse()?;
        if input.users.is_empty() && input.groups.is_empty() {
            return Err(ApiError::bad_request(
                "Either 'users' or 'groups' need to be specified.",
            ));
        }
        let role = NamedRole::find(db, "role", &input.role).await?;
        role.check_about(db, "role", model).await?;
        Ok(NestedRole {
            role,
            users: ids_by_name(db, "users", "username", &input.users).await?,
            groups: ids_by_name(db, "groups", "name", &input.groups).await?,
        })
    }

    fn view(&self) -> HeldRole {
        let names =
            |named: &[(String, String)]| named.iter().map(|(_, name)| name.clone()).collect();
        HeldRole {
            role: self.role.name.clone(),
            users: names(&self.users),
            groups: names(&self.groups),
        }
    }

    fn holders(&self) -> impl Iterator<Item = (Holder<'_>, &str, &'static str)> {
        let users = self
            .users
            .iter()
            .map(|(id, name)| (Holder::User(id), name.as_str(), "user"));
        let groups = self
            .groups
            .iter()
            .map(|(id, name)| (Holder::Group(id), name.as_str(), "group"));
        users.chain(groups)
    }
}

/// The id of each of `names` in `table` (looked up by `column`), or a 400 on `table` naming the
/// first that does not exist.
async fn ids_by_name(
    db: &Db,
    table: &str,
    column: &str,
    names: &[String],
) -> ApiResult<Vec<(String, String)>> {
    let mut found = Vec::new();
    for name in names {
        let id: Option<String> =
            sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE {column} = $1"))
                .bind(name)
                .fetch_optional(db.pool())
                .await?;
        let id = id.ok_or_else(|| {
            ApiError::field(
                table,
                format!("Object with {column}={name} does not exist."),
            )
        })?;
        found.push((id, name.clone()));
    }
    Ok(found)
}

/// Gives (`adding`) or takes back the request's role on `object`. As Pulp, a role one of them
/// already holds (or, to take back, does not hold) is a 400 naming the first such user, else
/// group, in Pulp's words, and nothing changes.
async fn change_roles(
    db: &Db,
    request: &NestedRole,
    object: Object<'_>,
    adding: bool,
) -> ApiResult<()> {
    let mut existing = Vec::new();
    for (holder, name, kind) in request.holders() {
        let assignment =
            rbac::find_assignment(db, &request.role.id, holder, Some(object.id)).await?;
        if assignment.is_some() == adding {
            let state = if adding { "already" } else { "not" };
            return Err(ApiError::bad_request(format!(
                "The role is {state} assigned to {kind} '{name}'."
            )));
        }
        existing.push((holder, assignment));
    }
    if adding {
        for (holder, _) in existing {
            rbac::assign(db, &request.role.id, holder, Some(object)).await?;
        }
    } else {
        let ids: Vec<String> = existing
            .into_iter()
            .filter_map(|(_, assignment)| assignment)
            .collect();
        rbac::unassign(db, ids).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_name_the_model_roles_are_given_on() {
        let names = RestNames::default();
        let id = "8f0c2d9e-5b1a-4c3e-9d2f-0a1b2c3d4e5f";
        let group = RoleObject::parse(&names, &format!("http://host/pulp/api/v3/groups/{id}/"))
            .expect("a group");
        assert_eq!((group.id.as_str(), group.table), (id, "groups"));
        assert_eq!(group.model.permission("view"), "core.view_group");
        let task = RoleObject::parse(&names, &hrefs::task(id)).expect("a task");
        assert_eq!(task.model.role("owner"), "core.task_owner");
        assert_eq!(
            RoleObject::parse(&names, &hrefs::artifact(id)),
            None,
            "roles are not given on artifacts"
        );
        assert_eq!(
            RoleObject::parse(&names, "/pulp/api/v3/groups/not-a-uuid/"),
            None
        );
        assert_eq!(
            RoleObject::parse(
                &names,
                &format!("/pulp/api/v3/repositories/nope/nope/{id}/")
            ),
            None,
            "a plugin that is not loaded has no models"
        );
    }
}
