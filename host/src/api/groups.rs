//! `groups/`: groups of users, who hold the roles given to the group; their members under
//! `groups/<id>/users/`, and the role actions of a group (`list_roles/`, `add_role/`,
//! `remove_role/`, `my_permissions/`, see [`super::object_roles`]).
//!
//! A group's creator gets its owner role (the `groups` policy's creation hook); lists and shows
//! answer only the groups the caller may view, so another's group is a 404. Membership follows
//! the `groups/users` policy: listing members needs view on the group, adding and removing
//! them change.

use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};

use super::routes::Routes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{Caller, Nested, Parent};
use super::core_objects::{self, CoreObject, Creatable, Deletable, Editable};
use super::input::{self, Input};
use super::list::{self, Bind, Conditions, ListRequest, Visibility, fetch_by_id, resource};
use super::object_roles::RoleAction;
use super::support::{self, ColumnValue, Fields, set_columns};
use crate::db::{WriteTx, new_id, now};
use crate::domain::hrefs::{self, API_ROOT};
use crate::error::{ApiError, ApiResult};
use crate::state::App;

/// The access policy of their members.
const MEMBERS: &str = "groups/users";

/// Routes.
pub fn router() -> Routes {
    let routes = Routes::new()
        .route("/pulp/api/v3/groups/", core_objects::collection::<Group>())
        .route(
            "/pulp/api/v3/groups/{id}/",
            core_objects::object::<Group>().delete(core_objects::destroy::<Group>),
        )
        .route(
            "/pulp/api/v3/groups/{id}/users/",
            get(list_members).post(add_member),
        )
        .route(
            "/pulp/api/v3/groups/{id}/users/{token}/",
            delete(remove_member),
        );
    RoleAction::routes(routes, "/pulp/api/v3/groups/{id}/", |action| {
        core_objects::role_action::<Group>(action, href)
    })
}

/// `/pulp/api/v3/groups/<id>/`
pub fn href(id: &str) -> String {
    format!("{API_ROOT}groups/{id}/")
}

/// The id of the group `href` names, if it names one.
pub fn id_of(href: &str) -> Option<String> {
    let path = &href[href.find(API_ROOT)? + API_ROOT.len()..];
    let id = path.strip_prefix("groups/")?.strip_suffix('/')?;
    uuid::Uuid::parse_str(id).ok().map(|uuid| uuid.to_string())
}

resource! {
    /// A row of `groups`.
    pub(crate) struct Group in "groups" {
        name: String,
    }
    filters: text name, text id;
    orderings: name, id;
    default_ordering: "name";
}

/// A group as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GroupView {
    pulp_href: String,
    prn: String,
    id: String,
    name: String,
}

impl From<Group> for GroupView {
    fn from(group: Group) -> Self {
        GroupView {
            pulp_href: href(&group.id),
            prn: format!("prn:core.group:{}", group.id),
            id: group.id,
            name: group.name,
        }
    }
}

impl CoreObject for Group {
    const VIEWSET: &'static str = "groups";
    const VIEW_PERMISSION: Option<&'static str> = Some("core.view_group");
    type View = GroupView;

    async fn views(_app: &App, groups: Vec<Group>) -> ApiResult<Vec<GroupView>> {
        Ok(groups.into_iter().map(GroupView::from).collect())
    }
}

/// The group `id` when the caller may see it; 404 otherwise.
pub(crate) async fn visible(app: &App, caller: &Caller, id: &str) -> ApiResult<Group> {
    core_objects::visible(app, caller, id).await
}

/// A group's writable fields.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct GroupInput {
    /// Unique; 150 characters at most.
    #[serde(default, deserialize_with = "input::optional")]
    #[schema(value_type = String)]
    name: Option<String>,
}

impl Input for GroupInput {
    const REQUIRED: &'static [&'static str] = &["name"];
}

/// The longest group name, as Django's.
const NAME_MAX: usize = 150;

/// The name of a create (`creating`) or update: not blank, not too long, not another group's.
async fn group_name(
    tx: &mut WriteTx,
    fields: &Fields,
    creating: bool,
    id: &str,
) -> ApiResult<Option<String>> {
    let values: GroupInput = fields.parse()?;
    let name = input::required(creating, "name", values.name.map(Some))?;
    let Some(name) = name else {
        return Ok(None);
    };
    if name.chars().count() > NAME_MAX {
        return Err(ApiError::field(
            "name",
            format!("Ensure this field has no more than {NAME_MAX} characters."),
        ));
    }
    // pulpcore's words for a name another group has.
    let message = "This field must be unique.";
    support::ensure_free(tx, "groups", "name", &name, id, message).await?;
    Ok(Some(name))
}

/// Creating a group: its creator gets the roles the policy's creation hooks name (its owner).
impl Creatable for Group {
    async fn insert(app: &App, caller: &Caller, fields: &Fields) -> ApiResult<String> {
        let id = new_id();
        let stamp = now();
        let mut tx = app.db.begin_write().await?;
        let name = group_name(&mut tx, fields, true, &id).await?;
        sqlx::query("INSERT INTO groups (id, name, created, updated) VALUES ($1, $2, $3, $3)")
            .bind(&id)
            .bind(name)
            .bind(&stamp)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        core_objects::give_creator_roles::<Self>(app, caller, &id, &href(&id)).await?;
        Ok(id)
    }
}

impl Editable for Group {
    async fn change(app: &App, group: Group, fields: &Fields, whole: bool) -> ApiResult<()> {
        let mut tx = app.db.begin_write().await?;
        if let Some(name) = group_name(&mut tx, fields, whole, &group.id).await? {
            let changes = [
                ("name".into(), ColumnValue::Text(Some(name))),
                ("updated".into(), ColumnValue::Text(Some(now()))),
            ];
            set_columns(&mut tx, "groups", &group.id, &changes).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Deleting a group: its members leave it, and the roles it held and those held on it go.
impl Deletable for Group {
    async fn delete(app: &App, group: Group) -> ApiResult<()> {
        core_objects::delete_rows(
            app,
            &group.id,
            &[
                ("group_users", "group_id"),
                ("role_assignments", "group_id"),
                ("role_assignments", "object_id"),
                ("groups", "id"),
            ],
        )
        .await
    }
}

resource! {
    /// A member of a group: a row of `users` joined to `group_users`.
    pub(crate) struct Member in "group_users gu JOIN users u ON u.id = gu.user_id" as u {
        username: String,
    }
    filters: text username;
    orderings: username;
    default_ordering: "username";
}

/// A member as the API shows it: the user's href and name.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MemberView {
    pulp_href: String,
    prn: String,
    id: String,
    username: String,
}

impl From<Member> for MemberView {
    fn from(member: Member) -> Self {
        MemberView {
            pulp_href: hrefs::user(&member.id),
            prn: format!("prn:auth.user:{}", member.id),
            id: member.id,
            username: member.username,
        }
    }
}

/// The members of group `group_id`.
fn members_of(group_id: &str) -> Conditions {
    Conditions::of("gu.group_id = ?", [Bind::from(group_id)])
}

/// The group whose members a `groups/<id>/users/` route lists or changes.
struct Members(Group);

/// The group, when the caller may see it and the `groups/users` policy allows the action the
/// method names (as Pulp's viewset maps them: `GET` lists, `POST` creates, `DELETE` destroys).
impl Parent for Members {
    async fn locate(app: &App, caller: &Caller, id: &str, method: &Method) -> ApiResult<Members> {
        let action = match *method {
            Method::GET => "list",
            Method::POST => "create",
            _ => "destroy",
        };
        let group = visible(app, caller, id).await?;
        caller
            .authorize(app, MEMBERS, action, &core_objects::on(&group.id))
            .await?;
        Ok(Members(group))
    }
}

async fn list_members(
    Nested { app, parent }: Nested<Members>,
    request: ListRequest,
) -> ApiResult<Response> {
    list::list_all::<Member, MemberView>(&app, &request, members_of(&parent.0.id)).await
}

/// The body of `POST groups/<id>/users/`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct MemberInput {
    /// The user to add.
    #[serde(default, deserialize_with = "input::optional")]
    #[schema(value_type = String)]
    username: Option<String>,
}

impl Input for MemberInput {
    const REQUIRED: &'static [&'static str] = &["username"];
}

/// Adds a user to the group (adding a member again changes nothing).
async fn add_member(
    Nested { app, parent }: Nested<Members>,
    fields: Fields,
) -> ApiResult<Response> {
    let Members(group) = parent;
    let values: MemberInput = fields.parse()?;
    let username =
        input::required(true, "username", values.username.map(Some))?.unwrap_or_default();
    let user_id: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
        .bind(&username)
        .fetch_optional(app.db.pool())
        .await?;
    let user_id = user_id.ok_or_else(|| {
        ApiError::field(
            "username",
            format!("Object with username={username} does not exist."),
        )
    })?;
    let mut tx = app.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO group_users (group_id, user_id) VALUES ($1, $2)
         ON CONFLICT (group_id, user_id) DO NOTHING",
    )
    .bind(&group.id)
    .bind(&user_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let member =
        fetch_by_id::<Member>(&app.db, &user_id, members_of(&group.id), &Visibility::all()).await?;
    Ok((StatusCode::CREATED, list::json(&MemberView::from(member))).into_response())
}

/// Removes user `user_id` from the group; 404 when they are not a member.
async fn remove_member(
    Nested { app, parent }: Nested<Members>,
    Path((_, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let Members(group) = parent;
    let member =
        fetch_by_id::<Member>(&app.db, &user_id, members_of(&group.id), &Visibility::all()).await?;
    let mut tx = app.db.begin_write().await?;
    sqlx::query("DELETE FROM group_users WHERE group_id = $1 AND user_id = $2")
        .bind(&group.id)
        .bind(&member.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
