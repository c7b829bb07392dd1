//! Who may do what: Pulp's role-based access control.
//!
//! A *permission* is a string (`file.view_filerepository`); a *role* is a named set of them; a
//! user holds a role directly or through a *group*, either on every object (a global
//! assignment) or on one object. An endpoint's *access policy* says which permissions each of
//! its actions needs, as statements with conditions; staff (`is_staff`, Pulp's superuser) may do
//! anything. The creator of an object gets its owner role (the policy's creation hook), and
//! lists answer only what the caller may view (the policy's queryset scoping), so a stranger's
//! show of an object is a 404.
//!
//! # Layout
//! - [`catalog`]: the models, permissions, built-in roles and default policies, derived from the
//!   resource types of core and of the loaded plugins;
//! - [`policy`]: statements and their evaluation;
//! - this module: the tables (roles, groups, assignments, policies) and the permission queries,
//!   and [`sync_builtins`], which writes the built-in roles and default policies whenever the
//!   set of plugins changes.
//!
//! It sits above `db` and `plugins` (whose REST names name the models), below `domain`, `tasks`
//! and the two apps, which ask it.

pub mod catalog;
pub mod policy;

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::db::{Db, new_id, now};
use crate::plugins::rest_names::RestNames;

/// The roles a user holds, directly or through a group: the assignments joined to their
/// permissions (placeholders `$1` = user id).
const HELD: &str = "role_assignments ra JOIN role_permissions rp ON rp.role_id = ra.role_id
     WHERE (ra.user_id = $1 OR ra.group_id IN (SELECT group_id FROM group_users WHERE user_id = $1))";

/// A caller's permissions, read from the database as checks ask for them and kept for the rest
/// of the request.
#[derive(Debug)]
pub struct Permissions {
    db: std::sync::Arc<Db>,
    user_id: String,
    is_staff: bool,
    global: Option<BTreeSet<String>>,
    on_objects: HashMap<String, BTreeSet<String>>,
}

impl Permissions {
    /// The permissions of user `user_id` (staff hold every permission).
    pub fn of(db: std::sync::Arc<Db>, user_id: &str, is_staff: bool) -> Permissions {
        Permissions {
            db,
            user_id: user_id.to_owned(),
            is_staff,
            global: None,
            on_objects: HashMap::new(),
        }
    }

    /// Whether the caller is staff.
    pub fn is_staff(&self) -> bool {
        self.is_staff
    }

    /// The caller's id.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The permissions the caller holds on every object.
    pub async fn global(&mut self) -> Result<&BTreeSet<String>, sqlx::Error> {
        if self.global.is_none() {
            let held: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT DISTINCT rp.permission FROM {HELD} AND ra.object_id IS NULL"
            ))
            .bind(&self.user_id)
            .fetch_all(self.db.pool())
            .await?;
            self.global = Some(held.into_iter().collect());
        }
        Ok(self.global.get_or_insert_default())
    }

    /// The permissions the caller holds on `object` itself (not counting global ones).
    pub async fn on(&mut self, object: &str) -> Result<&BTreeSet<String>, sqlx::Error> {
        if !self.on_objects.contains_key(object) {
            let held: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT DISTINCT rp.permission FROM {HELD} AND ra.object_id = $2"
            ))
            .bind(&self.user_id)
            .bind(object)
            .fetch_all(self.db.pool())
            .await?;
            self.on_objects
                .insert(object.to_owned(), held.into_iter().collect());
        }
        Ok(&self.on_objects[object])
    }

    /// Whether the caller holds `permission` on every object.
    pub async fn has_globally(&mut self, permission: &str) -> Result<bool, sqlx::Error> {
        Ok(self.is_staff || self.global().await?.contains(permission))
    }

    /// Whether the caller holds `permission` on `object`, globally or on it.
    pub async fn has_on(&mut self, permission: &str, object: &str) -> Result<bool, sqlx::Error> {
        Ok(self.has_globally(permission).await? || self.on(object).await?.contains(permission))
    }

    /// Every permission the caller holds on `object`, global ones included (`my_permissions/`).
    pub async fn all_on(&mut self, object: &str) -> Result<BTreeSet<String>, sqlx::Error> {
        let mut all = self.global().await?.clone();
        all.extend(self.on(object).await?.iter().cloned());
        Ok(all)
    }

    /// The condition on `id_column` that keeps the rows the caller holds `permission` on:
    /// `None` when they hold it globally (every row), else a SQL condition with `?`
    /// placeholders and their values.
    pub async fn visible(
        &mut self,
        permission: &str,
        id_column: &str,
    ) -> Result<Option<(String, Vec<String>)>, sqlx::Error> {
        if self.has_globally(permission).await? {
            return Ok(None);
        }
        Ok(Some((
            format!(
                "{id_column} IN (SELECT ra.object_id FROM role_assignments ra
                   JOIN role_permissions rp ON rp.role_id = ra.role_id
                   WHERE rp.permission = ? AND (ra.user_id = ? OR ra.group_id IN
                     (SELECT group_id FROM group_users WHERE user_id = ?)))"
            ),
            vec![
                permission.to_owned(),
                self.user_id.clone(),
                self.user_id.clone(),
            ],
        )))
    }

    /// The names of the caller's groups (for `group:` principals).
    pub async fn groups(&self) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT g.name FROM groups g JOIN group_users gu ON gu.group_id = g.id
             WHERE gu.user_id = $1 ORDER BY g.name",
        )
        .bind(&self.user_id)
        .fetch_all(self.db.pool())
        .await
    }
}

/// Who holds an assignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder<'a> {
    /// A user, by `users.id`.
    User(&'a str),
    /// A group, by `groups.id`.
    Group(&'a str),
}

impl Holder<'_> {
    fn columns(self) -> (Option<String>, Option<String>) {
        match self {
            Holder::User(id) => (Some(id.to_owned()), None),
            Holder::Group(id) => (None, Some(id.to_owned())),
        }
    }
}

/// An object a role is held on: its id, and its href as the API shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Object<'a> {
    /// Its uuid.
    pub id: &'a str,
    /// Its `pulp_href`.
    pub href: &'a str,
}

/// The id of the role named `$1`.
const ROLE_ID: &str = "SELECT id FROM roles WHERE name = $1";

/// The id of the role named `name`, if there is one.
pub async fn role_id(db: &Db, name: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(ROLE_ID)
        .bind(name)
        .fetch_optional(db.pool())
        .await
}

/// Gives `holder` the role `role_id` on `object` (or globally); giving it twice is one
/// assignment. Answers the assignment's id and whether it is new.
pub async fn assign(
    db: &Db,
    role_id: &str,
    holder: Holder<'_>,
    object: Option<Object<'_>>,
) -> Result<(String, bool), sqlx::Error> {
    if let Some(existing) = find_assignment(db, role_id, holder, object.map(|o| o.id)).await? {
        return Ok((existing, false));
    }
    let mut tx = db.begin_write().await?;
    let id = insert_assignment(&mut tx, role_id, holder, object).await?;
    tx.commit().await?;
    Ok((id, true))
}

/// Records a new assignment of `role_id` to `holder` on `object` (or globally) in the
/// transaction `tx`, for an object made in that same transaction (so it has none yet).
/// Answers its id.
pub async fn insert_assignment(
    tx: &mut sqlx::AnyConnection,
    role_id: &str,
    holder: Holder<'_>,
    object: Option<Object<'_>>,
) -> Result<String, sqlx::Error> {
    let (user_id, group_id) = holder.columns();
    let id = new_id();
    sqlx::query(
        "INSERT INTO role_assignments (id, role_id, user_id, group_id, object_id, object_href, created)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(role_id)
    .bind(user_id)
    .bind(group_id)
    .bind(object.map(|object| object.id))
    .bind(object.map(|object| object.href))
    .bind(now())
    .execute(tx)
    .await?;
    Ok(id)
}

/// The assignment of `role_id` to `holder` on `object_id` (or globally), if there is one.
pub async fn find_assignment(
    db: &Db,
    role_id: &str,
    holder: Holder<'_>,
    object_id: Option<&str>,
) -> Result<Option<String>, sqlx::Error> {
    let (user_id, group_id) = holder.columns();
    sqlx::query_scalar(
        "SELECT id FROM role_assignments
         WHERE role_id = $1 AND COALESCE(user_id, '') = COALESCE($2, '')
           AND COALESCE(group_id, '') = COALESCE($3, '') AND COALESCE(object_id, '') = COALESCE($4, '')",
    )
    .bind(role_id)
    .bind(user_id)
    .bind(group_id)
    .bind(object_id)
    .fetch_optional(db.pool())
    .await
}

/// Takes back the role assignments `ids`, all or none.
pub async fn unassign(db: &Db, ids: impl IntoIterator<Item = String>) -> Result<(), sqlx::Error> {
    const UNASSIGN: &str = "DELETE FROM role_assignments WHERE id = $1";
    let mut tx = db.begin_write().await?;
    for id in ids {
        sqlx::query(UNASSIGN).bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Forgets every role held on `object_id` (the object is gone).
pub async fn forget_object(db: &Db, object_id: &str) -> Result<(), sqlx::Error> {
    db.write_one(sqlx::query("DELETE FROM role_assignments WHERE object_id = $1").bind(object_id))
        .await?;
    Ok(())
}

/// Forgets every role and group membership of user `user_id` (the user is gone).
pub async fn forget_user(db: &Db, user_id: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    for table in ["role_assignments", "group_users"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// A stored access policy.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PolicyRow {
    /// Its id.
    pub id: String,
    /// `repositories/file/file`
    pub viewset_name: String,
    /// JSON statements.
    pub statements: String,
    /// JSON creation hooks.
    pub creation_hooks: String,
    /// JSON queryset scoping, if the endpoint scopes its lists.
    pub queryset_scoping: Option<String>,
    /// 1 when a user changed it.
    pub customized: i64,
    /// When it was written first.
    pub created: String,
    /// When it changed last.
    pub updated: String,
}

/// The columns of [`PolicyRow`].
pub const POLICY_COLUMNS: &str =
    "id, viewset_name, statements, creation_hooks, queryset_scoping, customized, created, updated";

/// The access policy of `viewset_name`, if it has one.
pub async fn policy(db: &Db, viewset_name: &str) -> Result<Option<PolicyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {POLICY_COLUMNS} FROM access_policies WHERE viewset_name = $1"
    ))
    .bind(viewset_name)
    .fetch_optional(db.pool())
    .await
}

/// The roles a policy's creation hooks give the creator of a new object
/// (`add_roles_for_object_creator`).
fn creator_roles(hooks: &Value) -> BTreeSet<String> {
    let mut roles = BTreeSet::new();
    for hook in hooks.as_array().into_iter().flatten() {
        if hook["function"] != "add_roles_for_object_creator" {
            continue;
        }
        match &hook["parameters"]["roles"] {
            Value::String(one) => {
                roles.insert(one.clone());
            }
            Value::Array(many) => {
                roles.extend(
                    many.iter()
                        .filter_map(|role| role.as_str().map(str::to_owned)),
                );
            }
            _ => {}
        }
    }
    roles
}

/// Gives the creator of a new object the roles the policy's creation hooks name
/// (`add_roles_for_object_creator`).
pub async fn run_creation_hooks(
    db: &Db,
    hooks: &Value,
    creator: &str,
    object: Object<'_>,
) -> Result<(), sqlx::Error> {
    for role in creator_roles(hooks) {
        if let Some(role_id) = role_id(db, &role).await? {
            assign(db, &role_id, Holder::User(creator), Some(object)).await?;
        }
    }
    Ok(())
}

/// [`run_creation_hooks`] for an object made in the transaction `tx` (so it holds no role yet).
pub async fn run_creation_hooks_in(
    tx: &mut sqlx::AnyConnection,
    hooks: &Value,
    creator: &str,
    object: Object<'_>,
) -> Result<(), sqlx::Error> {
    for role in creator_roles(hooks) {
        let found: Option<String> = sqlx::query_scalar(ROLE_ID)
            .bind(&role)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(role_id) = found {
            insert_assignment(tx, &role_id, Holder::User(creator), Some(object)).await?;
        }
    }
    Ok(())
}

/// Writes the built-in roles and the default access policies of core and of the plugins `names`
/// knows: new ones are added, built-in roles take their current permissions, and policies no
/// user customized take their current default. Run at start-up and whenever plugins change; safe
/// to run from several processes at once.
pub async fn sync_builtins(db: &Db, names: &RestNames) -> Result<(), sqlx::Error> {
    let roles = catalog::builtin_roles(names);
    let policies = catalog::default_policies(names);
    // Comparing the whole catalog with the tables takes some 200 statements, a third of a warm
    // start; the digest of the catalog last written answers "unchanged" with one read. Built-in
    // roles are locked and a customized policy is never overwritten, so the tables cannot have
    // drifted from a catalog whose digest is recorded.
    let digest = catalog_digest(&roles, &policies);
    let written: Option<String> =
        sqlx::query_scalar("SELECT value FROM server_settings WHERE name = $1")
            .bind(CATALOG_DIGEST_SETTING)
            .fetch_optional(db.pool())
            .await?;
    if written.as_deref() == Some(digest.as_str()) {
        return Ok(());
    }
    let stamp = now();
    let mut tx = db.begin_write().await?;
    for role in roles {
        sqlx::query(
            "INSERT INTO roles (id, name, description, locked, created, updated)
             VALUES ($1, $2, $3, 1, $4, $4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(new_id())
        .bind(&role.name)
        .bind(&role.description)
        .bind(&stamp)
        .execute(&mut *tx)
        .await?;
        let id: String = sqlx::query_scalar("SELECT id FROM roles WHERE name = $1")
            .bind(&role.name)
            .fetch_one(&mut *tx)
            .await?;
        let held: Vec<String> =
            sqlx::query_scalar("SELECT permission FROM role_permissions WHERE role_id = $1")
                .bind(&id)
                .fetch_all(&mut *tx)
                .await?;
        if held.iter().collect::<BTreeSet<_>>() == role.permissions.iter().collect() {
            continue;
        }
        sqlx::query("DELETE FROM role_permissions WHERE role_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        for permission in &role.permissions {
            sqlx::query("INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2)")
                .bind(&id)
                .bind(permission)
                .execute(&mut *tx)
                .await?;
        }
    }
    for default in policies {
        // One statement writes a missing policy and brings an uncustomized one up to the
        // server's default; a policy a user changed keeps their change.
        sqlx::query(
            "INSERT INTO access_policies
               (id, viewset_name, statements, creation_hooks, queryset_scoping, customized, created, updated)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $6)
             ON CONFLICT (viewset_name) DO UPDATE SET statements = excluded.statements,
               creation_hooks = excluded.creation_hooks,
               queryset_scoping = excluded.queryset_scoping, updated = excluded.updated
             WHERE access_policies.customized = 0
               AND (access_policies.statements <> excluded.statements
                 OR access_policies.creation_hooks <> excluded.creation_hooks)",
        )
        .bind(new_id())
        .bind(&default.viewset_name)
        .bind(default.statements.to_string())
        .bind(default.creation_hooks.to_string())
        .bind(default.queryset_scoping.as_ref().map(Value::to_string))
        .bind(&stamp)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO server_settings (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(CATALOG_DIGEST_SETTING)
    .bind(&digest)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Name in `server_settings` of the digest of the built-in catalog last written.
const CATALOG_DIGEST_SETTING: &str = "rbac_builtin_catalog_sha256";

/// A digest of everything [`sync_builtins`] writes: the built-in roles with their permissions and
/// the default access policies.
fn catalog_digest(roles: &[catalog::BuiltinRole], policies: &[catalog::DefaultPolicy]) -> String {
    let mut hasher = Sha256::new();
    for role in roles {
        for part in [&role.name, &role.description]
            .into_iter()
            .chain(&role.permissions)
        {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hasher.update([1]);
    }
    for policy in policies {
        let scoping = policy.queryset_scoping.as_ref().map(Value::to_string);
        for part in [
            policy.viewset_name.clone(),
            policy.statements.to_string(),
            policy.creation_hooks.to_string(),
            scoping.unwrap_or_default(),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hasher.update([1]);
    }
    hex::encode(hasher.finalize())
}

/// Restores the default of the policy `viewset_name`: `false` when it has none.
pub async fn reset_policy(
    db: &Db,
    names: &RestNames,
    viewset_name: &str,
) -> Result<bool, sqlx::Error> {
    let Some(default) = catalog::default_policies(names)
        .into_iter()
        .find(|policy| policy.viewset_name == viewset_name)
    else {
        return Ok(false);
    };
    db.write_one(
        sqlx::query(
            "UPDATE access_policies SET statements = $2, creation_hooks = $3, queryset_scoping = $4,
               customized = 0, updated = $5
             WHERE viewset_name = $1",
        )
        .bind(viewset_name)
        .bind(default.statements.to_string())
        .bind(default.creation_hooks.to_string())
        .bind(default.queryset_scoping.as_ref().map(Value::to_string))
        .bind(now()),
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest that lets a start skip an unchanged catalog must change with any role's
    /// permissions and any policy's statements, or a new server version would keep old rules.
    #[test]
    fn the_catalog_digest_follows_every_role_and_policy() {
        let names = RestNames::default();
        let digest = || {
            catalog_digest(
                &catalog::builtin_roles(&names),
                &catalog::default_policies(&names),
            )
        };
        assert_eq!(digest(), digest(), "the same catalog, the same digest");

        let mut roles = catalog::builtin_roles(&names);
        let policies = catalog::default_policies(&names);
        roles[0].permissions.push("core.view_everything".into());
        assert_ne!(catalog_digest(&roles, &policies), digest());

        let roles = catalog::builtin_roles(&names);
        let mut policies = catalog::default_policies(&names);
        policies[0].statements = Value::Array(Vec::new());
        assert_ne!(catalog_digest(&roles, &policies), digest());
    }
}
