//! The roles a user or a group holds: `users/<id>/roles/` and `groups/<id>/roles/`, each
//! assignment global (`content_object` null) or on one object (its href).
//!
//! Giving and taking back roles here is for staff only: a global role is power over every
//! object, so nobody may hand one to themselves or to their group. (Owners share their own
//! objects through the object's `add_role/`, which needs `manage_roles` on it.) A user reads
//! their own assignments; a group's are read by whoever may view the group; anyone else gets
//! 404, as for the user or group itself.

use axum::Json;
use axum::extract::{OriginalUri, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::routes::Routes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::access::{Call, Caller};
use super::input::{self, Input};
use super::list::{
    self, Bind, Conditions, ExtraFilter, ListQuery, ListRequest, Page, Resource, Visibility,
    fetch_by_id, resource,
};
use super::object_roles::{NamedRole, RoleObject};
use super::roles::permissions_of;
use super::support::Fields;
use crate::domain::hrefs::{self, API_ROOT};
use crate::error::{ApiError, ApiResult};
use crate::rbac::{self, Holder, Object};
use crate::state::App;

/// Routes.
pub fn router() -> Routes {
    holder_routes::<OfGroup>(holder_routes::<OfUser>(Routes::new()))
}

/// The routes of the assignments of `K`'s holders.
fn holder_routes<K: Of + 'static>(routes: Routes) -> Routes {
    let assignments = format!("/pulp/api/v3/{}/{{id}}/roles/", K::COLLECTION);
    let assignment = format!("{assignments}{{token}}/");
    routes
        .route(assignments, get(list::<K>).post(create::<K>))
        .route(assignment, get(read::<K>).delete(destroy::<K>))
}

/// Who the routes' assignments belong to: a user or a group, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Group,
}

/// The kind of holder a route is about (the routes of users and groups differ only in that).
trait Of {
    const KIND: Kind;
    /// The collection of holders, under the API root.
    const COLLECTION: &'static str;
}

/// `users/<id>/roles/`
struct OfUser;

impl Of for OfUser {
    const KIND: Kind = Kind::User;
    const COLLECTION: &'static str = "users";
}

/// `groups/<id>/roles/`
struct OfGroup;

impl Of for OfGroup {
    const KIND: Kind = Kind::Group;
    const COLLECTION: &'static str = "groups";
}

/// The holder a request is about, once the caller may see it.
struct Owner {
    kind: Kind,
    id: String,
}

impl Owner {
    fn holder(&self) -> Holder<'_> {
        match self.kind {
            Kind::User => Holder::User(&self.id),
            Kind::Group => Holder::Group(&self.id),
        }
    }

    /// The condition keeping its assignments.
    fn assignments(&self) -> Conditions {
        let column = match self.kind {
            Kind::User => "ra.user_id = ?",
            Kind::Group => "ra.group_id = ?",
        };
        Conditions::of(column, [Bind::from(self.id.as_str())])
    }

    /// The holder `id` of `kind`, when the caller may see it (404 otherwise); to change its
    /// roles (`writing`) the caller must be staff (403 otherwise).
    async fn locate(
        app: &App,
        caller: &Caller,
        kind: Kind,
        id: &str,
        writing: bool,
    ) -> ApiResult<Owner> {
        let id = match kind {
            Kind::User => {
                let id = list::object_id(id)?;
                let exists: Option<String> =
                    sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
                        .bind(&id)
                        .fetch_optional(app.db.pool())
                        .await?;
                if exists.is_none() || !(caller.user.is_staff || caller.user.id == id) {
                    return Err(ApiError::not_found());
                }
                id
            }
            Kind::Group => super::groups::visible(app, caller, id)
                .await?
                .id()
                .to_owned(),
        };
        if writing && !caller.user.is_staff {
            return Err(ApiError::forbidden());
        }
        Ok(Owner { kind, id })
    }
}

resource! {
    /// A row of `role_assignments`, with its role's name and description.
    pub(crate) struct Assignment in "role_assignments ra JOIN roles r ON r.id = ra.role_id" as ra {
        role_id: String,
        role_name: String = "r.name",
        description: Option<String> = "r.description",
        user_id: Option<String>,
        group_id: Option<String>,
        object_href: Option<String>,
        created: String,
    }
    filters: text role = "r.name", time pulp_created = created;
    orderings: pulp_created = created, role = "r.name";
    default_ordering: "pulp_created";
}

/// The list filters [`list`] reads itself.
pub const FILTERS: &[ExtraFilter] = &[ExtraFilter::one(
    "content_object",
    "Only assignments on this object (an href); `null`: only global ones.",
)];

/// A role assignment as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssignmentView {
    pulp_href: String,
    prn: String,
    #[schema(format = DateTime)]
    pulp_created: String,
    /// The role's name.
    role: String,
    /// The href of the object it is held on; null: every object.
    content_object: Option<String>,
    description: Option<String>,
    permissions: Vec<String>,
    /// Granary has no domains.
    domain: Option<String>,
}

impl AssignmentView {
    fn of(assignment: Assignment, permissions: Vec<String>) -> AssignmentView {
        let (holder, model) = match (&assignment.user_id, &assignment.group_id) {
            (Some(user), _) => (hrefs::user(user), "userrole"),
            (None, group) => (
                super::groups::href(group.as_deref().unwrap_or_default()),
                "grouprole",
            ),
        };
        AssignmentView {
            pulp_href: format!("{holder}roles/{}/", assignment.id),
            prn: format!("prn:core.{model}:{}", assignment.id),
            pulp_created: assignment.created,
            role: assignment.role_name,
            content_object: assignment.object_href,
            description: assignment.description,
            permissions,
            domain: None,
        }
    }
}

/// The `content_object` filter: `null` keeps global assignments, an href those on its object.
fn content_object_filter(app: &App, query: &ListQuery) -> ApiResult<Conditions> {
    match query.get("content_object").map(String::as_str) {
        None | Some("") => Ok(Conditions::new()),
        Some("null") => Ok(Conditions::of("ra.object_id IS NULL", [])),
        Some(href) => {
            let object = parse_object(app, "content_object", href)?;
            Ok(Conditions::of("ra.object_id = ?", [Bind::from(object.id)]))
        }
    }
}

/// The object an href names, or a 400 on `field`.
fn parse_object(app: &App, field: &str, href: &str) -> ApiResult<RoleObject> {
    RoleObject::parse(&app.plugins.rest_names(), href).ok_or_else(|| {
        ApiError::field(
            field,
            format!("Invalid hyperlink - {href} is not an object roles are given on."),
        )
    })
}

async fn list<K: Of>(
    Call { app, caller }: Call,
    Path(id): Path<String>,
    ListRequest { query, uri }: ListRequest,
) -> ApiResult<Response> {
    let owner = Owner::locate(&app, &caller, K::KIND, &id, false).await?;
    let mut conditions = owner.assignments();
    conditions.extend(content_object_filter(&app, &query)?);
    let page = Page::from_query(&query)?;
    let (total, rows) =
        list::fetch_page::<Assignment>(&app.db, &query, conditions, &Visibility::all(), &page)
            .await?;
    let permissions = permissions_of(&app.db, rows.iter().map(|row| row.role_id.as_str())).await?;
    let views = rows.into_iter().map(|row| {
        // Several assignments may share a role.
        let held = permissions.get(&row.role_id).cloned().unwrap_or_default();
        AssignmentView::of(row, held)
    });
    Ok(page.respond(&app, &uri, total, views))
}

/// The assignment `assignment` of the holder, answered as the API shows it.
async fn view(app: &App, owner: &Owner, assignment: &str) -> ApiResult<AssignmentView> {
    let row: Assignment =
        fetch_by_id(&app.db, assignment, owner.assignments(), &Visibility::all()).await?;
    let permissions = permissions_of(&app.db, [row.role_id.as_str()])
        .await?
        .remove(&row.role_id)
        .unwrap_or_default();
    Ok(AssignmentView::of(row, permissions))
}

async fn read<K: Of>(
    Call { app, caller }: Call,
    Path((id, assignment)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<Value>> {
    let owner = Owner::locate(&app, &caller, K::KIND, &id, false).await?;
    Ok(list::shaped(&uri, &view(&app, &owner, &assignment).await?))
}

/// The body of a new assignment.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct AssignmentInput {
    /// The role's name.
    #[serde(default, deserialize_with = "input::optional")]
    #[schema(value_type = String)]
    role: Option<String>,
    /// The href of the object to hold it on; null: every object.
    #[serde(default, deserialize_with = "input::optional")]
    #[schema(value_type = Option<String>)]
    content_object: Option<String>,
}

impl Input for AssignmentInput {
    const REQUIRED: &'static [&'static str] = &["role"];
}

async fn create<K: Of>(
    Call { app, caller }: Call,
    Path(id): Path<String>,
    fields: Fields,
) -> ApiResult<Response> {
    let app: &App = &app;
    let owner = Owner::locate(app, &caller, K::KIND, &id, true).await?;
    let values: AssignmentInput = fields.parse()?;
    let name = input::required(true, "role", values.role.map(Some))?.unwrap_or_default();
    let role = NamedRole::find(&app.db, "role", &name).await?;
    // An href is kept as its path, whatever URL the client wrote it as.
    let href = values
        .content_object
        .as_deref()
        .map(|href| href.find(API_ROOT).map_or(href, |start| &href[start..]));
    let object = match href {
        None => None,
        Some(href) => {
            let object = parse_object(app, "content_object", href)?;
            if !object.exists(&app.db).await? {
                return Err(ApiError::field(
                    "content_object",
                    format!("Invalid hyperlink - {href}: object does not exist."),
                ));
            }
            role.check_about(&app.db, "role", &object.model).await?;
            Some((object.id, href))
        }
    };
    let object = object.as_ref().map(|(id, href)| Object { id, href });
    let (assignment, new) = rbac::assign(&app.db, &role.id, owner.holder(), object).await?;
    if !new {
        let who = match K::KIND {
            Kind::User => "user",
            Kind::Group => "group",
        };
        return Err(ApiError::bad_request(format!(
            "The role is already assigned to this {who}."
        )));
    }
    let view = view(app, &owner, &assignment).await?;
    Ok((StatusCode::CREATED, list::json(&view)).into_response())
}

async fn destroy<K: Of>(
    Call { app, caller }: Call,
    Path((id, assignment)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let owner = Owner::locate(&app, &caller, K::KIND, &id, true).await?;
    let row: Assignment = fetch_by_id(
        &app.db,
        &assignment,
        owner.assignments(),
        &Visibility::all(),
    )
    .await?;
    rbac::unassign(&app.db, [row.id]).await?;
    Ok(StatusCode::NO_CONTENT)
}
