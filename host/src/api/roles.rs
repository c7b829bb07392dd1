//! `roles/`: Pulp's roles, named sets of permissions (`file.view_filerepository`).
//!
//! The server writes the built-in roles from the resource types of core and the loaded plugins
//! ([`crate::rbac::sync_builtins`]); they are `locked`, and a change or delete of one is refused
//! (403), as in Pulp. Users create the others, from permissions that exist
//! ([`crate::rbac::catalog::permissions`]). Every action checks the `roles` access policy.

use std::collections::{BTreeSet, HashMap};

use axum::http::StatusCode;

use super::routes::Routes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Caller;
use super::core_objects::{self, CoreObject, Creatable, Deletable, Editable};
use super::input::{self, Input};
use super::list::{
    Bind, Conditions, ExtraFilter, Identity, ListQuery, in_list, resource, split_list,
};
use super::support::{self, Changes, ColumnValue, Fields, set_columns};
use crate::db::{Db, WriteTx, new_id, now};
use crate::domain::hrefs::API_ROOT;
use crate::error::{ApiError, ApiResult};
use crate::rbac::catalog;
use crate::state::App;

/// Routes.
pub fn router() -> Routes {
    Routes::new()
        .route("/pulp/api/v3/roles/", core_objects::collection::<Role>())
        .route(
            "/pulp/api/v3/roles/{id}/",
            core_objects::object::<Role>().delete(core_objects::destroy::<Role>),
        )
}

/// `/pulp/api/v3/roles/<id>/`
pub fn href(id: &str) -> String {
    format!("{API_ROOT}roles/{id}/")
}

resource! {
    /// A row of `roles` (its permissions are in `role_permissions`).
    pub(crate) struct Role in "roles" {
        name: String,
        description: Option<String>,
        locked: i64,
        created: String,
        updated: String,
    }
    filters: text name, text description, bool locked, time pulp_created = created;
    orderings: name, description, locked, pulp_created = created, pulp_last_updated = updated;
    default_ordering: "name";
}

/// The list filters [`list`] reads itself.
pub const FILTERS: &[ExtraFilter] = &[ExtraFilter::many(
    "contains_permission",
    "Only roles holding one of these permissions.",
)];

/// A role as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RoleView {
    #[serde(flatten)]
    identity: Identity,
    name: String,
    description: Option<String>,
    /// `<app>.<action>_<model>`, e.g. `file.view_filerepository`.
    permissions: Vec<String>,
    /// Built-in: the server keeps it, users cannot change or delete it.
    locked: bool,
}

impl RoleView {
    fn of(role: Role, permissions: Vec<String>) -> RoleView {
        RoleView {
            identity: Identity::core(
                href(&role.id),
                "role",
                &role.id,
                &role.created,
                &role.updated,
            ),
            name: role.name,
            description: role.description,
            permissions,
            locked: role.locked != 0,
        }
    }
}

/// The permissions of each of the roles `ids`, sorted.
pub(crate) async fn permissions_of(
    db: &Db,
    ids: impl IntoIterator<Item = &str>,
) -> ApiResult<HashMap<String, Vec<String>>> {
    let mut conditions = Conditions::new();
    in_list(
        &mut conditions,
        "role_id",
        ids.into_iter().map(Bind::from).collect(),
    );
    let sql = format!(
        "SELECT role_id, permission FROM role_permissions{} ORDER BY permission",
        conditions.where_clause()
    );
    let rows: Vec<(String, String)> = conditions
        .bind_as(sqlx::query_as(&sql))
        .fetch_all(db.pool())
        .await?;
    let mut permissions: HashMap<String, Vec<String>> = HashMap::new();
    for (role_id, permission) in rows {
        permissions.entry(role_id).or_default().push(permission);
    }
    Ok(permissions)
}

impl CoreObject for Role {
    const VIEWSET: &'static str = "roles";
    type View = RoleView;

    /// `contains_permission`: the roles holding one of these permissions.
    fn filters(query: &ListQuery) -> ApiResult<Conditions> {
        let mut conditions = Conditions::new();
        let wanted: Vec<Bind> = query
            .get("contains_permission")
            .map(|wanted| split_list(wanted).map(Bind::from).collect())
            .unwrap_or_default();
        // As every filter, an empty value filters nothing.
        if !wanted.is_empty() {
            let marks = vec!["?"; wanted.len()].join(", ");
            conditions.push(
                &format!(
                    "id IN (SELECT role_id FROM role_permissions WHERE permission IN ({marks}))"
                ),
                wanted,
            );
        }
        Ok(conditions)
    }

    /// The permissions of all of `roles` are read in one query.
    async fn views(app: &App, roles: Vec<Role>) -> ApiResult<Vec<RoleView>> {
        let mut permissions =
            permissions_of(&app.db, roles.iter().map(|role| role.id.as_str())).await?;
        Ok(roles
            .into_iter()
            .map(|role| {
                let held = permissions.remove(&role.id).unwrap_or_default();
                RoleView::of(role, held)
            })
            .collect())
    }
}

/// A role's writable fields.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct RoleInput {
    /// Unique; 128 characters at most.
    #[serde(default, deserialize_with = "input::optional")]
    #[schema(value_type = String)]
    name: Option<String>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    /// Permissions that exist, `<app>.<action>_<model>`; a change replaces them all.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    permissions: Option<Vec<String>>,
}

impl Input for RoleInput {
    const REQUIRED: &'static [&'static str] = &["name"];
}

/// The longest role name, as Pulp's column.
const NAME_MAX: usize = 128;

/// The input's checks: a name (required when `creating`) that is not blank, and permissions
/// that exist.
fn role_input(app: &App, fields: &Fields, creating: bool) -> ApiResult<RoleInput> {
    let mut values: RoleInput = fields.parse()?;
    values.name = input::required(creating, "name", values.name.map(Some))?;
    if values
        .name
        .as_ref()
        .is_some_and(|name| name.len() > NAME_MAX)
    {
        return Err(ApiError::field(
            "name",
            format!("Ensure this field has no more than {NAME_MAX} characters."),
        ));
    }
    if let Some(wanted) = &values.permissions {
        let known = catalog::permissions(&app.plugins.rest_names());
        if let Some(unknown) = wanted
            .iter()
            .find(|permission| !known.contains(*permission))
        {
            return Err(ApiError::field(
                "permissions",
                format!("Permission '{unknown}' does not exist."),
            ));
        }
    }
    Ok(values)
}

/// Refuses (400) a name another role has.
async fn check_name_free(tx: &mut WriteTx, name: &str, id: &str) -> ApiResult<()> {
    support::ensure_free(tx, "roles", "name", name, id, "This field must be unique.").await
}

/// Makes `permissions` the permissions of role `id`.
async fn set_permissions(tx: &mut WriteTx, id: &str, permissions: &[String]) -> ApiResult<()> {
    sqlx::query("DELETE FROM role_permissions WHERE role_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    for permission in permissions.iter().collect::<BTreeSet<_>>() {
        sqlx::query("INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2)")
            .bind(id)
            .bind(permission)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl Creatable for Role {
    async fn insert(app: &App, _caller: &Caller, fields: &Fields) -> ApiResult<String> {
        let values = role_input(app, fields, true)?;
        let name = values.name.unwrap_or_default();
        let id = new_id();
        let stamp = now();
        let mut tx = app.db.begin_write().await?;
        check_name_free(&mut tx, &name, &id).await?;
        sqlx::query(
            "INSERT INTO roles (id, name, description, locked, created, updated)
             VALUES ($1, $2, $3, 0, $4, $4)",
        )
        .bind(&id)
        .bind(&name)
        .bind(values.description.flatten())
        .bind(&stamp)
        .execute(&mut *tx)
        .await?;
        set_permissions(&mut tx, &id, &values.permissions.unwrap_or_default()).await?;
        tx.commit().await?;
        Ok(id)
    }
}

/// Refuses (403) a change to a built-in role, as Pulp does.
fn unlocked(role: &Role, change: &str) -> ApiResult<()> {
    if role.locked == 0 {
        return Ok(());
    }
    Err(ApiError::detail(
        StatusCode::FORBIDDEN,
        format!(
            "{} is a locked (built-in) role and cannot be {change}.",
            role.name
        ),
    ))
}

impl Editable for Role {
    async fn change(app: &App, role: Role, fields: &Fields, whole: bool) -> ApiResult<()> {
        unlocked(&role, "changed")?;
        let values = role_input(app, fields, whole)?;
        let mut tx = app.db.begin_write().await?;
        let mut changes: Changes = Vec::new();
        if let Some(name) = values.name {
            check_name_free(&mut tx, &name, &role.id).await?;
            changes.push(("name".into(), ColumnValue::Text(Some(name))));
        }
        if let Some(description) = values.description {
            changes.push(("description".into(), ColumnValue::Text(description)));
        }
        if let Some(permissions) = &values.permissions {
            set_permissions(&mut tx, &role.id, permissions).await?;
        }
        changes.push(("updated".into(), ColumnValue::Text(Some(now()))));
        set_columns(&mut tx, "roles", &role.id, &changes).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Deleting a role: whoever held it no longer does.
impl Deletable for Role {
    async fn delete(app: &App, role: Role) -> ApiResult<()> {
        unlocked(&role, "deleted")?;
        core_objects::delete_rows(
            app,
            &role.id,
            &[
                ("role_assignments", "role_id"),
                ("role_permissions", "role_id"),
                ("roles", "id"),
            ],
        )
        .await
    }
}
