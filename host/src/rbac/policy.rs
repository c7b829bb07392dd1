//! Access policies: the statements that say who may take which action on an endpoint, with
//! drf-access-policy's semantics as Pulp uses them. A statement matches when one of its actions
//! is the request's (or `*`) and one of its principals is the caller (`*`, `authenticated`,
//! `anonymous`, `admin` — a staff user —, `id:<user id>`, `group:<group name>`), and its
//! conditions all hold. A request is allowed when an `allow` statement matches and no `deny`
//! statement does.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Permissions;
use super::catalog::CONDITIONS;

/// One string or a list of them, as statements write `action`, `principal` and `condition`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// `"list"`
    One(String),
    /// `["list", "retrieve"]`
    Many(Vec<String>),
}

impl OneOrMany {
    /// Its strings.
    pub fn items(&self) -> &[String] {
        match self {
            OneOrMany::One(one) => std::slice::from_ref(one),
            OneOrMany::Many(many) => many,
        }
    }
}

/// What a matching statement does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Allows the action (unless a `deny` statement also matches).
    Allow,
    /// Refuses the action, whatever else matches.
    Deny,
}

/// One statement of a policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// The actions it is about (`list`, `create`, `sync`, `*`).
    pub action: OneOrMany,
    /// Who it is about.
    pub principal: OneOrMany,
    /// Allow or deny.
    pub effect: Effect,
    /// Conditions that must all hold (`has_model_or_domain_or_obj_perms:file.view_filerepository`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<OneOrMany>,
}

/// Reads and checks the statements of a policy: each a known shape, principal and condition;
/// the error says which statement is wrong and why.
pub fn parse_statements(value: &Value) -> Result<Vec<Statement>, String> {
    let statements: Vec<Statement> = serde_json::from_value(value.clone()).map_err(|error| {
        format!(
            "statements must be a list of {{action, principal, effect, condition}} objects: {error}"
        )
    })?;
    for (index, statement) in statements.iter().enumerate() {
        for principal in statement.principal.items() {
            let known = matches!(
                principal.as_str(),
                "*" | "authenticated" | "anonymous" | "admin" | "staff"
            ) || principal.starts_with("id:")
                || principal.starts_with("group:");
            if !known {
                return Err(format!(
                    "statement {index}: unknown principal {principal:?} (use *, authenticated, \
                     anonymous, admin, staff, id:<user id> or group:<group name>)"
                ));
            }
        }
        for condition in statement.condition.iter().flat_map(OneOrMany::items) {
            let (name, permission) = condition.split_once(':').unwrap_or((condition, ""));
            if !CONDITIONS.contains(&name) || permission.is_empty() {
                return Err(format!(
                    "statement {index}: unknown condition {condition:?} (known: {}, each \
                     followed by `:<permission>`)",
                    CONDITIONS.join(", ")
                ));
            }
        }
    }
    Ok(statements)
}

/// The objects a request is about, which conditions check permissions on (by id).
#[derive(Clone, Debug, Default)]
pub struct Subject {
    /// The object the action is on (`retrieve`, `update`, `sync`, …).
    pub object: Option<String>,
    /// The repository the object belongs to (a version's, for `has_repository_…` conditions;
    /// a distribution's, for `has_repo_attr_…`).
    pub parent_repository: Option<String>,
    /// The remote the request names (`remote` field of a create, update or sync).
    pub remote: Option<String>,
    /// The repository the request names (`repository`, or a `repository_version`'s).
    pub repository: Option<String>,
    /// The publication the request names.
    pub publication: Option<String>,
    /// The upload the request names.
    pub upload: Option<String>,
}

/// Who is asking, as principals name them.
#[derive(Clone, Debug)]
pub struct Principal<'a> {
    /// `users.id`
    pub user_id: &'a str,
    /// Staff: `admin` and `staff`.
    pub is_staff: bool,
    /// The names of the caller's groups.
    pub groups: &'a [String],
}

impl Principal<'_> {
    fn is(&self, principal: &str) -> bool {
        match principal {
            "*" | "authenticated" => true,
            "admin" | "staff" => self.is_staff,
            "anonymous" => false,
            other => match other.split_once(':') {
                Some(("id", id)) => id == self.user_id,
                Some(("group", group)) => self.groups.iter().any(|name| name == group),
                _ => false,
            },
        }
    }
}

/// Whether `statements` allow `action` on `subject` to the caller whose permissions
/// `permissions` reads.
pub async fn allows(
    statements: &[Statement],
    action: &str,
    principal: &Principal<'_>,
    subject: &Subject,
    permissions: &mut Permissions,
) -> Result<bool, sqlx::Error> {
    let mut allowed = false;
    for statement in statements {
        let acts = statement
            .action
            .items()
            .iter()
            .any(|name| name == "*" || name == action);
        let about = statement
            .principal
            .items()
            .iter()
            .any(|name| principal.is(name));
        // A deny must be checked even when an allow already matched; an allow need not be
        // checked again.
        if !acts || !about || (allowed && statement.effect == Effect::Allow) {
            continue;
        }
        let mut holds = true;
        for condition in statement.condition.iter().flat_map(OneOrMany::items) {
            if !check(condition, subject, permissions).await? {
                holds = false;
                break;
            }
        }
        if holds {
            match statement.effect {
                Effect::Deny => return Ok(false),
                Effect::Allow => allowed = true,
            }
        }
    }
    Ok(allowed)
}

/// One condition (`name:permission`).
async fn check(
    condition: &str,
    subject: &Subject,
    permissions: &mut Permissions,
) -> Result<bool, sqlx::Error> {
    let (name, permission) = condition.split_once(':').unwrap_or((condition, ""));
    let referenced = match name {
        "has_model_perms" | "has_model_or_domain_perms" => {
            return permissions.has_globally(permission).await;
        }
        "has_obj_perms" => {
            return match &subject.object {
                Some(object) => permissions.has_on(permission, object).await,
                None => Ok(false),
            };
        }
        "has_model_or_obj_perms" | "has_model_or_domain_or_obj_perms" => {
            if permissions.has_globally(permission).await? {
                return Ok(true);
            }
            return match &subject.object {
                Some(object) => permissions.has_on(permission, object).await,
                None => Ok(false),
            };
        }
        "has_remote_param_model_or_domain_or_obj_perms" => &subject.remote,
        "has_repo_or_repo_ver_param_model_or_domain_or_obj_perms"
        | "has_required_repo_perms_on_upload" => &subject.repository,
        "has_publication_param_model_or_domain_or_obj_perms" => &subject.publication,
        "has_upload_param_model_or_domain_or_obj_perms" => &subject.upload,
        "has_repository_model_or_domain_or_obj_perms"
        | "has_repo_attr_model_or_domain_or_obj_perms" => &subject.parent_repository,
        _ => return Ok(false),
    };
    // A condition on an object the request names holds when it names none.
    let Some(object) = referenced else {
        return Ok(true);
    };
    Ok(permissions.has_globally(permission).await?
        || permissions.has_on(permission, object).await?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn statements_name_their_mistakes() {
        let unknown_principal = json!([{ "action": "*", "principal": "root", "effect": "allow" }]);
        assert!(
            parse_statements(&unknown_principal)
                .unwrap_err()
                .contains("unknown principal \"root\"")
        );
        let unknown_condition = json!([{
            "action": "list", "principal": "*", "effect": "allow", "condition": "is_lucky:x",
        }]);
        assert!(
            parse_statements(&unknown_condition)
                .unwrap_err()
                .contains("unknown condition \"is_lucky:x\"")
        );
        let bad_effect = json!([{ "action": "list", "principal": "*", "effect": "maybe" }]);
        assert!(parse_statements(&bad_effect).is_err());
        let good = json!([{
            "action": ["list"], "principal": "authenticated", "effect": "allow",
            "condition": ["has_model_perms:core.view_task"],
        }]);
        assert_eq!(parse_statements(&good).unwrap().len(), 1);
    }

    #[test]
    fn principals_match_staff_ids_and_groups() {
        let groups = vec!["team".to_string()];
        let caller = Principal {
            user_id: "u1",
            is_staff: false,
            groups: &groups,
        };
        assert!(caller.is("authenticated"));
        assert!(caller.is("id:u1"));
        assert!(caller.is("group:team"));
        assert!(!caller.is("admin"));
        assert!(!caller.is("group:other"));
        assert!(!caller.is("anonymous"));
    }
}
