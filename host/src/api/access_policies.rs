//! `access_policies/`: the access policy of each endpoint, as Pulp's. The server writes the
//! defaults ([`crate::rbac::sync_builtins`]); a partial update of `statements` or
//! `creation_hooks` marks a policy `customized` (later defaults leave it alone), and
//! `{href}reset/` restores its default. Statements are checked before they are stored
//! ([`crate::rbac::policy::parse_statements`]), so a policy in force always evaluates.

use axum::Json;
use axum::extract::Path;
use axum::routing::{get, post};

use super::routes::Routes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::access::Call;
use super::core_objects::{self, CoreObject, Editable};
use super::list::{Identity, resource};
use super::support::Fields;
use crate::db::now;
use crate::domain::hrefs::API_ROOT;
use crate::error::{ApiError, ApiResult};
use crate::rbac::policy::{self};
use crate::rbac::{self, POLICY_COLUMNS, PolicyRow};
use crate::state::App;

/// Routes.
pub fn router() -> Routes {
    Routes::new()
        .route(
            "/pulp/api/v3/access_policies/",
            get(core_objects::list::<PolicyRow>),
        )
        .route(
            "/pulp/api/v3/access_policies/{id}/",
            core_objects::object::<PolicyRow>(),
        )
        .route("/pulp/api/v3/access_policies/{id}/reset/", post(reset))
}

/// `/pulp/api/v3/access_policies/<id>/`
pub fn href(id: &str) -> String {
    format!("{API_ROOT}access_policies/{id}/")
}

resource! {
    impl PolicyRow in "access_policies" columns POLICY_COLUMNS;
    filters: text viewset_name, bool customized;
    orderings: viewset_name, customized, pulp_created = created, pulp_last_updated = updated;
    default_ordering: "viewset_name";
}

/// An access policy as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    #[serde(flatten)]
    identity: Identity,
    /// The endpoint it governs: `repositories/file/file`, `tasks`.
    viewset_name: String,
    /// drf-access-policy statements.
    #[schema(value_type = Vec<Object>)]
    statements: Value,
    /// What happens when an object is created (its creator gets roles).
    #[schema(value_type = Vec<Object>)]
    creation_hooks: Value,
    /// `creation_hooks` under its former name, which older clients read.
    #[schema(value_type = Vec<Object>)]
    permissions_assignment: Value,
    /// Whether lists answer only what the caller may view.
    #[schema(value_type = Option<Object>)]
    queryset_scoping: Value,
    /// Whether a user changed it from its default.
    customized: bool,
}

impl From<PolicyRow> for PolicyView {
    fn from(row: PolicyRow) -> Self {
        // Stored JSON was written by the server or checked on the way in.
        let parse = |text: &str| serde_json::from_str(text).unwrap_or(Value::Null);
        let creation_hooks = parse(&row.creation_hooks);
        PolicyView {
            identity: Identity::core(
                href(&row.id),
                "accesspolicy",
                &row.id,
                &row.created,
                &row.updated,
            ),
            viewset_name: row.viewset_name,
            statements: parse(&row.statements),
            permissions_assignment: creation_hooks.clone(),
            creation_hooks,
            queryset_scoping: row.queryset_scoping.as_deref().map_or(Value::Null, parse),
            customized: row.customized != 0,
        }
    }
}

impl CoreObject for PolicyRow {
    const VIEWSET: &'static str = "access_policies";
    type View = PolicyView;

    async fn views(_app: &App, rows: Vec<PolicyRow>) -> ApiResult<Vec<PolicyView>> {
        Ok(rows.into_iter().map(PolicyView::from).collect())
    }
}

/// The writable fields of a policy.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct PolicyInput {
    /// drf-access-policy statements: `{action, principal, effect, condition?}` objects.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    statements: Option<Value>,
    /// `{function, parameters}` objects; `add_roles_for_object_creator` gives the creator of
    /// an object the roles its `parameters.roles` names.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    creation_hooks: Option<Value>,
    /// `creation_hooks` under its former name.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    permissions_assignment: Option<Value>,
}

impl super::input::Input for PolicyInput {
    const REQUIRED: &'static [&'static str] = &["statements"];
}

/// Checks creation hooks: a list of `{function, parameters?}` objects naming a hook the server
/// runs.
fn check_hooks(field: &str, hooks: &Value) -> ApiResult<()> {
    let Some(hooks) = hooks.as_array() else {
        return Err(ApiError::field(field, "Expected a list of hooks."));
    };
    for (index, hook) in hooks.iter().enumerate() {
        let function = hook.get("function").and_then(Value::as_str);
        if function != Some("add_roles_for_object_creator") {
            return Err(ApiError::field(
                field,
                format!(
                    "hook {index}: unknown function {} (known: add_roles_for_object_creator)",
                    hook.get("function").unwrap_or(&Value::Null)
                ),
            ));
        }
        let roles = &hook["parameters"]["roles"];
        let named = roles.is_string()
            || roles
                .as_array()
                .is_some_and(|roles| roles.iter().all(Value::is_string));
        if !named {
            return Err(ApiError::field(
                field,
                format!("hook {index}: parameters.roles must be a role name or a list of them"),
            ));
        }
    }
    Ok(())
}

impl Editable for PolicyRow {
    async fn change(app: &App, row: PolicyRow, fields: &Fields, whole: bool) -> ApiResult<()> {
        let values: PolicyInput = fields.parse()?;
        if whole && values.statements.is_none() {
            return Err(ApiError::field("statements", "This field is required."));
        }
        let statements = match &values.statements {
            Some(statements) => {
                policy::parse_statements(statements)
                    .map_err(|message| ApiError::field("statements", message))?;
                Some(statements.to_string())
            }
            None => None,
        };
        let hooks = match (values.creation_hooks, values.permissions_assignment) {
            (Some(hooks), _) => Some(("creation_hooks", hooks)),
            (None, Some(hooks)) => Some(("permissions_assignment", hooks)),
            (None, None) if whole => Some(("creation_hooks", Value::Array(Vec::new()))),
            (None, None) => None,
        };
        if let Some((field, hooks)) = &hooks {
            check_hooks(field, hooks)?;
        }
        let mut tx = app.db.begin_write().await?;
        sqlx::query(
            "UPDATE access_policies SET statements = COALESCE($2, statements),
               creation_hooks = COALESCE($3, creation_hooks), customized = 1, updated = $4
             WHERE id = $1",
        )
        .bind(&row.id)
        .bind(statements)
        .bind(hooks.map(|(_, hooks)| hooks.to_string()))
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// `POST {href}reset/`: the policy's default again, no longer customized.
async fn reset(Call { app, caller }: Call, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let row: PolicyRow = core_objects::authorized(&app, &caller, &id, "reset").await?;
    if !rbac::reset_policy(&app.db, &app.plugins.rest_names(), &row.viewset_name).await? {
        return Err(ApiError::bad_request(format!(
            "{} has no default policy to reset to.",
            row.viewset_name
        )));
    }
    core_objects::answer::<PolicyRow>(&app, &row.id).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn creation_hooks_name_a_known_function_and_roles() {
        let good = json!([{
            "function": "add_roles_for_object_creator",
            "parameters": { "roles": ["core.group_owner"] },
        }]);
        assert!(check_hooks("creation_hooks", &good).is_ok());
        let one_role = json!([{
            "function": "add_roles_for_object_creator",
            "parameters": { "roles": "core.group_owner" },
        }]);
        assert!(check_hooks("creation_hooks", &one_role).is_ok());
        for bad in [
            json!({ "function": "add_roles_for_object_creator" }),
            json!([{ "function": "run_anything", "parameters": { "roles": [] } }]),
            json!([{ "function": "add_roles_for_object_creator", "parameters": { "roles": 3 } }]),
        ] {
            let error = check_hooks("creation_hooks", &bad).expect_err("refused");
            assert_eq!(error.status(), axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
