//! `contentguards/`: Pulp's content guards, which a distribution's `content_guard` names and the
//! content app enforces (see [`crate::domain::content_guards`] for the kinds). Each kind has its
//! endpoint, `contentguards/core/<kind>/` (list, create, show, update, delete); `contentguards/`
//! lists every kind. Create and update answer at once (201, 200), as in Pulp.
//!
//! Every action is checked against the kind's access policy; lists and shows answer only the
//! guards the caller may view, and the creator of a guard gets its owner role. An `rbac` guard
//! shows the `users` and `groups` that may download through it; a `content_redirect` guard
//! signs URLs for those who may change it (`preauthenticate_url/`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};

use super::object_roles::{self, RoleAction};
use super::routes::Routes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::access::{Call, Caller};
use super::input::{self, Input};
use super::list::{
    self, Bind, Conditions, Identity, ListRequest, Page, Visibility, fetch_by_id, resource,
};
use super::support::{ColumnValue, Fields, ensure_unique, set_columns};
use crate::db::{Db, new_id, now};
use crate::domain::content_guards::{self, GuardKind, Settings};
use crate::domain::hrefs::{self, API_ROOT};
use crate::error::{ApiError, ApiResult};
use crate::rbac::catalog::guard_model;
use crate::rbac::policy::Subject;
use crate::rbac::{self, Object};
use crate::state::{App, AppState};

/// Routes: every kind's collection and guards, the role actions on each guard (an rbac guard's
/// downloaders are given with `add_role/`), and a redirect guard's `preauthenticate_url/`.
pub fn router() -> Routes {
    let mut routes = Routes::new()
        .route("/pulp/api/v3/contentguards/", get(list_all))
        .route(
            "/pulp/api/v3/contentguards/core/content_redirect/{id}/preauthenticate_url/",
            post(preauthenticate_url),
        );
    for kind in GuardKind::ALL {
        let collection = format!("/pulp/api/v3/contentguards/core/{}/", kind.segment());
        let object = format!("{collection}{{id}}/");
        for action in RoleAction::ALL {
            routes = routes.route(
                format!("{object}{}/", action.name()),
                role_action(kind, action),
            );
        }
        routes = routes
            .route(collection, kind_routes(kind, true))
            .route(object, kind_routes(kind, false));
    }
    routes
}

/// A role action on a guard the caller may see.
fn role_action(kind: GuardKind, action: RoleAction) -> MethodRouter<AppState> {
    action.route(
        move |Call { app, caller }: Call, Path(id): Path<String>, fields: Fields| async move {
            let visibility = visibility(&app, &caller, kind).await?;
            let guard: Guard = fetch_by_id(&app.db, &id, of_kind(kind), &visibility).await?;
            let href = content_guards::href(kind.segment(), &guard.id);
            let object = Object {
                id: &guard.id,
                href: &href,
            };
            object_roles::act(&app, &caller, action, &kind.viewset(), object, &fields).await
        },
    )
}

/// The handlers of one kind's collection (`list`, `create`) or of one of its guards.
fn kind_routes(kind: GuardKind, collection: bool) -> MethodRouter<AppState> {
    if collection {
        return get(move |call, request| list(call, request, kind))
            .post(move |call, fields| create(call, fields, kind));
    }
    get(move |call, id| read(call, id, kind))
        .patch(move |call, id, fields| update(call, id, fields, kind, false))
        .put(move |call, id, fields| update(call, id, fields, kind, true))
        .delete(move |call, id| destroy(call, id, kind))
}

resource! {
    /// A row of `content_guards`.
    pub(crate) struct Guard in "content_guards" {
        kind: String,
        name: String,
        description: Option<String>,
        settings: String,
        created: String,
        updated: String,
    }
    filters: text name, time pulp_created = created, time pulp_last_updated = updated;
    orderings: name, pulp_created = created, pulp_last_updated = updated, pk = id, pulp_id = id;
    default_ordering: "name";
}

/// What every guard shows; all of what `contentguards/` shows.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GuardView {
    #[serde(flatten)]
    identity: Identity,
    name: String,
    description: Option<String>,
}

impl GuardView {
    fn new(guard: &Guard) -> GuardView {
        let model = GuardKind::from_segment(&guard.kind).map_or("contentguard", GuardKind::model);
        GuardView {
            identity: Identity::core(
                content_guards::href(&guard.kind, &guard.id),
                model,
                &guard.id,
                &guard.created,
                &guard.updated,
            ),
            name: guard.name.clone(),
            description: guard.description.clone(),
        }
    }
}

/// A user holding the download role on an `rbac` guard.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GuardUser {
    username: String,
    pulp_href: String,
    prn: String,
}

/// A group holding the download role on an `rbac` guard.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GuardGroup {
    name: String,
    pulp_href: String,
    prn: String,
}

/// An `rbac` guard as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RbacGuardView {
    #[serde(flatten)]
    guard: GuardView,
    /// Who may download through it, directly.
    users: Vec<GuardUser>,
    /// The groups whose members may download through it.
    groups: Vec<GuardGroup>,
}

/// A `header` guard as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HeaderGuardView {
    #[serde(flatten)]
    guard: GuardView,
    header_name: Option<String>,
    header_value: Option<String>,
    jq_filter: Option<String>,
}

/// An `x509` guard as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct X509GuardView {
    #[serde(flatten)]
    guard: GuardView,
    ca_certificate: Option<String>,
}

/// A `composite` guard as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CompositeGuardView {
    #[serde(flatten)]
    guard: GuardView,
    /// The hrefs of its guards.
    guards: Vec<String>,
}

/// A guard of any kind, shown as its kind shows it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum KindView {
    Rbac(RbacGuardView),
    Header(HeaderGuardView),
    X509(X509GuardView),
    Composite(CompositeGuardView),
    /// `content_redirect`: its secret is never shown, so nothing but the common fields.
    Plain(GuardView),
}

/// What the views of some guards show of other rows: who holds the download permission on
/// each `rbac` guard, and the hrefs of the composite guards' members, by guard id.
#[derive(Debug, Default)]
struct Related {
    downloaders: HashMap<String, (Vec<GuardUser>, Vec<GuardGroup>)>,
    member_hrefs: HashMap<String, String>,
}

/// A role assignment giving the download permission on a guard.
#[derive(Debug, sqlx::FromRow)]
struct DownloaderRow {
    object_id: String,
    user_id: Option<String>,
    username: Option<String>,
    group_id: Option<String>,
    group_name: Option<String>,
}

/// Who holds the download permission on each of the `rbac` guards `ids`, by guard id.
async fn downloaders(
    db: &Db,
    ids: &[&str],
) -> ApiResult<HashMap<String, (Vec<GuardUser>, Vec<GuardGroup>)>> {
    let sql = format!(
        "SELECT DISTINCT ra.object_id, u.id AS user_id, u.username, g.id AS group_id,
            g.name AS group_name
         FROM role_assignments ra JOIN role_permissions rp ON rp.role_id = ra.role_id
         LEFT JOIN users u ON u.id = ra.user_id LEFT JOIN groups g ON g.id = ra.group_id
         WHERE rp.permission = $1 AND ra.object_id IN ({})
         ORDER BY u.username, g.name",
        crate::db::placeholders(2, ids.len())
    );
    let mut query =
        sqlx::query_as::<_, DownloaderRow>(&sql).bind(content_guards::download_permission());
    for id in ids {
        query = query.bind(*id);
    }
    let mut downloaders: HashMap<String, (Vec<GuardUser>, Vec<GuardGroup>)> = HashMap::new();
    for row in query.fetch_all(db.pool()).await? {
        let (users, groups) = downloaders.entry(row.object_id).or_default();
        if let (Some(id), Some(username)) = (row.user_id, row.username) {
            users.push(GuardUser {
                pulp_href: hrefs::user(&id),
                prn: format!("prn:auth.user:{id}"),
                username,
            });
        }
        if let (Some(id), Some(name)) = (row.group_id, row.group_name) {
            groups.push(GuardGroup {
                pulp_href: format!("{API_ROOT}groups/{id}/"),
                prn: format!("prn:core.group:{id}"),
                name,
            });
        }
    }
    Ok(downloaders)
}

/// The hrefs of the guards `ids`, by id.
async fn guard_hrefs(db: &Db, ids: &[String]) -> ApiResult<HashMap<String, String>> {
    let sql = format!(
        "SELECT id, kind FROM content_guards WHERE id IN ({})",
        crate::db::placeholders(1, ids.len())
    );
    let mut query = sqlx::query_as::<_, (String, String)>(&sql);
    for id in ids {
        query = query.bind(id);
    }
    let rows = query.fetch_all(db.pool()).await?;
    Ok(rows
        .into_iter()
        .map(|(id, kind)| {
            let href = content_guards::href(&kind, &id);
            (id, href)
        })
        .collect())
}

impl Related {
    /// What the views of `guards` show of other rows.
    async fn of(db: &Db, guards: &[Guard]) -> ApiResult<Related> {
        let of_kind = |kind: GuardKind| {
            guards
                .iter()
                .filter(move |guard| guard.kind == kind.segment())
        };
        let rbac: Vec<&str> = of_kind(GuardKind::Rbac)
            .map(|guard| guard.id.as_str())
            .collect();
        let members: Vec<String> = of_kind(GuardKind::Composite)
            .flat_map(|guard| Settings::stored(&guard.settings).guards)
            .collect();
        let mut related = Related::default();
        if !rbac.is_empty() {
            related.downloaders = downloaders(db, &rbac).await?;
        }
        if !members.is_empty() {
            related.member_hrefs = guard_hrefs(db, &members).await?;
        }
        Ok(related)
    }

    /// The view of `guard`, with what it shows of other rows.
    fn view(&mut self, guard: Guard) -> KindView {
        let common = GuardView::new(&guard);
        let settings = Settings::stored(&guard.settings);
        match GuardKind::from_segment(&guard.kind) {
            Some(GuardKind::Rbac) => {
                let (users, groups) = self.downloaders.remove(&guard.id).unwrap_or_default();
                KindView::Rbac(RbacGuardView {
                    guard: common,
                    users,
                    groups,
                })
            }
            Some(GuardKind::Header) => KindView::Header(HeaderGuardView {
                guard: common,
                header_name: settings.header_name,
                header_value: settings.header_value,
                jq_filter: settings.jq_filter,
            }),
            Some(GuardKind::X509) => KindView::X509(X509GuardView {
                guard: common,
                ca_certificate: settings.ca_certificate,
            }),
            Some(GuardKind::Composite) => KindView::Composite(CompositeGuardView {
                guard: common,
                guards: settings
                    .guards
                    .iter()
                    .filter_map(|id| self.member_hrefs.get(id).cloned())
                    .collect(),
            }),
            Some(GuardKind::ContentRedirect) | None => KindView::Plain(common),
        }
    }
}

/// The guards of `kind` the caller may see.
async fn visibility(app: &App, caller: &Caller, kind: GuardKind) -> ApiResult<Visibility> {
    caller
        .visibility(
            app,
            &kind.viewset(),
            &guard_model(kind).permission("view"),
            "id",
        )
        .await
}

fn of_kind(kind: GuardKind) -> Conditions {
    Conditions::of("kind = ?", [Bind::from(kind.segment())])
}

/// Lists the guards `conditions` select, each shown as its kind shows it.
async fn respond_list(
    app: &App,
    request: &ListRequest,
    conditions: Conditions,
    visibility: &Visibility,
) -> ApiResult<Response> {
    let page = Page::from_query(&request.query)?;
    let (total, guards) =
        list::fetch_page::<Guard>(&app.db, &request.query, conditions, visibility, &page).await?;
    let mut related = Related::of(&app.db, &guards).await?;
    let views: Vec<KindView> = guards
        .into_iter()
        .map(|guard| related.view(guard))
        .collect();
    Ok(page.respond(app, &request.uri, total, views))
}

/// `contentguards/`: the guards of every kind the caller may see, with the fields all kinds
/// share.
async fn list_all(Call { app, caller }: Call, request: ListRequest) -> ApiResult<Response> {
    caller
        .authorize_action(&app, "contentguards", "list")
        .await?;
    let mut visible = Vec::new();
    for kind in GuardKind::ALL {
        visible.push(visibility(&app, &caller, kind).await?.narrow(of_kind(kind)));
    }
    let visibility = Visibility::only(Conditions::any_of(visible));
    list::list::<Guard, _>(&app, &request, Conditions::new(), &visibility, |guard| {
        GuardView::new(&guard)
    })
    .await
}

async fn list(
    Call { app, caller }: Call,
    request: ListRequest,
    kind: GuardKind,
) -> ApiResult<Response> {
    caller
        .authorize_action(&app, &kind.viewset(), "list")
        .await?;
    let visibility = visibility(&app, &caller, kind).await?;
    respond_list(&app, &request, of_kind(kind), &visibility).await
}

/// The guard `id` of `kind` if the caller may see it (404 otherwise), after checking they may
/// `action` it (403).
async fn guard_for(
    app: &App,
    caller: &Caller,
    kind: GuardKind,
    id: &str,
    action: &str,
) -> ApiResult<Guard> {
    let visibility = visibility(app, caller, kind).await?;
    let guard: Guard = fetch_by_id(&app.db, id, of_kind(kind), &visibility).await?;
    let subject = Subject {
        object: Some(guard.id.clone()),
        ..Subject::default()
    };
    caller
        .authorize(app, &kind.viewset(), action, &subject)
        .await?;
    Ok(guard)
}

/// The view of the guard `id`.
async fn show(app: &App, id: &str) -> ApiResult<Json<Value>> {
    let guard: Guard = fetch_by_id(&app.db, id, Conditions::new(), &Visibility::all()).await?;
    let guards = [guard];
    let mut related = Related::of(&app.db, &guards).await?;
    let [guard] = guards;
    Ok(list::json(&related.view(guard)))
}

async fn read(
    Call { app, caller }: Call,
    Path(id): Path<String>,
    kind: GuardKind,
) -> ApiResult<Json<Value>> {
    let guard = guard_for(&app, &caller, kind, &id, "retrieve").await?;
    show(&app, &guard.id).await
}

/// The fields every guard has, as a create or update gives them.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct GuardInput {
    /// Unique among guards of every kind.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = String)]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
}

impl Input for GuardInput {
    const REQUIRED: &'static [&'static str] = &["name"];
}

/// A `header` guard's fields.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct HeaderGuardInput {
    #[serde(flatten)]
    guard: GuardInput,
    /// The request header to check.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = String)]
    header_name: Option<Option<String>>,
    /// The value it must have (or the value `jq_filter` selects in it).
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = String)]
    header_value: Option<Option<String>>,
    /// A jq path, `.a.b` (the only jq Granary supports), into the header's value read as
    /// base64-encoded JSON.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>)]
    jq_filter: Option<Option<String>>,
}

impl Input for HeaderGuardInput {
    const REQUIRED: &'static [&'static str] = &["name", "header_name", "header_value"];
}

/// An `x509` guard's fields.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct X509GuardInput {
    #[serde(flatten)]
    guard: GuardInput,
    /// The PEM certificate(s) of the authority client certificates must chain to.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = String)]
    ca_certificate: Option<Option<String>>,
}

impl Input for X509GuardInput {
    const REQUIRED: &'static [&'static str] = &["name", "ca_certificate"];
}

/// A `composite` guard's fields.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct CompositeGuardInput {
    #[serde(flatten)]
    guard: GuardInput,
    /// The hrefs of its guards (not composite ones); any of them lets a request through.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Vec<String>)]
    guards: Option<Option<Value>>,
}

impl Input for CompositeGuardInput {
    const REQUIRED: &'static [&'static str] = &["name"];
}

/// What a create or update writes.
struct Write {
    name: Option<String>,
    description: Option<Option<String>>,
    settings: Settings,
}

/// Reads a create (`creating`), a `PUT` (`whole`) or a `PATCH` of a guard of `kind` whose
/// settings are `current`; `except` is the guard itself, for the name's uniqueness.
async fn read_write(
    app: &App,
    kind: GuardKind,
    fields: &Fields,
    current: Settings,
    whole: bool,
    except: Option<&str>,
) -> ApiResult<Write> {
    let mut settings = current;
    let common = match kind {
        GuardKind::Rbac => fields.parse::<GuardInput>()?,
        GuardKind::ContentRedirect => {
            settings
                .secret
                .get_or_insert_with(content_guards::new_secret);
            fields.parse::<GuardInput>()?
        }
        GuardKind::Header => {
            let header: HeaderGuardInput = fields.parse()?;
            if let Some(name) = input::required(whole, "header_name", header.header_name)? {
                settings.header_name = Some(name);
            }
            if let Some(value) = input::required(whole, "header_value", header.header_value)? {
                settings.header_value = Some(value);
            }
            match header.jq_filter {
                Some(Some(filter)) => {
                    content_guards::jq_path(&filter)
                        .map_err(|message| ApiError::field("jq_filter", message))?;
                    settings.jq_filter = Some(filter);
                }
                Some(None) => settings.jq_filter = None,
                None if whole => settings.jq_filter = None,
                None => {}
            }
            header.guard
        }
        GuardKind::X509 => {
            let x509: X509GuardInput = fields.parse()?;
            if let Some(pem) = input::required(whole, "ca_certificate", x509.ca_certificate)? {
                content_guards::check_authority(&pem)
                    .map_err(|message| ApiError::field("ca_certificate", message))?;
                settings.ca_certificate = Some(pem);
            }
            x509.guard
        }
        GuardKind::Composite => {
            let composite: CompositeGuardInput = fields.parse()?;
            match composite.guards {
                Some(Some(hrefs)) => {
                    settings.guards = member_ids(&app.db, &hrefs, except).await?;
                }
                Some(None) => settings.guards.clear(),
                None if whole => settings.guards.clear(),
                None => {}
            }
            composite.guard
        }
    };
    let name = input::required(whole, "name", common.name)?;
    if let Some(name) = &name {
        ensure_unique(app, "content_guards", "name", "name", name, except).await?;
    }
    let description = match common.description {
        None if whole => Some(None),
        given => given,
    };
    Ok(Write {
        name,
        description,
        settings,
    })
}

/// The ids of a composite guard's `guards`: hrefs of existing guards, none composite (so a
/// composite never contains itself).
async fn member_ids(db: &Db, hrefs: &Value, except: Option<&str>) -> ApiResult<Vec<String>> {
    let invalid = |message: String| ApiError::field("guards", message);
    let Value::Array(items) = hrefs else {
        return Err(invalid("Expected a list of content guard hrefs.".into()));
    };
    let mut ids = Vec::new();
    for item in items {
        let href = item.as_str().unwrap_or_default();
        let Some((kind, id)) = content_guards::parse_href(href) else {
            return Err(invalid(format!(
                "Invalid hyperlink - {href} is not a content guard."
            )));
        };
        if kind == GuardKind::Composite || except == Some(id.as_str()) {
            return Err(invalid(
                "A composite guard cannot contain composite guards.".into(),
            ));
        }
        let exists: Option<String> =
            sqlx::query_scalar("SELECT id FROM content_guards WHERE id = $1 AND kind = $2")
                .bind(&id)
                .bind(kind.segment())
                .fetch_optional(db.pool())
                .await?;
        if exists.is_none() {
            return Err(invalid(format!(
                "Invalid hyperlink - Object does not exist: {href}."
            )));
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

async fn create(
    Call { app, caller }: Call,
    fields: Fields,
    kind: GuardKind,
) -> ApiResult<Response> {
    caller
        .authorize_action(&app, &kind.viewset(), "create")
        .await?;
    let write = read_write(&app, kind, &fields, Settings::default(), true, None).await?;
    let id = new_id();
    let stamp = now();
    let mut tx = app.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO content_guards (id, kind, name, description, settings, created, updated)
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&id)
    .bind(kind.segment())
    .bind(write.name.unwrap_or_default())
    .bind(write.description.flatten())
    .bind(write.settings.to_column())
    .bind(&stamp)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let href = content_guards::href(kind.segment(), &id);
    caller
        .created(
            &app,
            &kind.viewset(),
            Object {
                id: &id,
                href: &href,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, show(&app, &id).await?).into_response())
}

async fn update(
    Call { app, caller }: Call,
    Path(id): Path<String>,
    fields: Fields,
    kind: GuardKind,
    whole: bool,
) -> ApiResult<Json<Value>> {
    let action = if whole { "update" } else { "partial_update" };
    let guard = guard_for(&app, &caller, kind, &id, action).await?;
    let current = Settings::stored(&guard.settings);
    let write = read_write(&app, kind, &fields, current, whole, Some(&guard.id)).await?;
    let mut tx = app.db.begin_write().await?;
    sqlx::query(
        "UPDATE content_guards SET name = COALESCE($2, name), settings = $3, updated = $4
         WHERE id = $1",
    )
    .bind(&guard.id)
    .bind(write.name)
    .bind(write.settings.to_column())
    .bind(now())
    .execute(&mut *tx)
    .await?;
    if let Some(description) = write.description {
        let change = ("description".into(), ColumnValue::Text(description));
        set_columns(&mut tx, "content_guards", &guard.id, &[change]).await?;
    }
    tx.commit().await?;
    show(&app, &guard.id).await
}

/// Deletes a guard. As in Pulp, the distributions it protected are no longer guarded, and the
/// composite guards holding it no longer do.
async fn destroy(
    Call { app, caller }: Call,
    Path(id): Path<String>,
    kind: GuardKind,
) -> ApiResult<StatusCode> {
    let guard = guard_for(&app, &caller, kind, &id, "destroy").await?;
    let mut tx = app.db.begin_write().await?;
    sqlx::query("UPDATE distributions SET content_guard = NULL WHERE content_guard = $1")
        .bind(&guard.id)
        .execute(&mut *tx)
        .await?;
    let composites: Vec<(String, String)> =
        sqlx::query_as("SELECT id, settings FROM content_guards WHERE kind = $1")
            .bind(GuardKind::Composite.segment())
            .fetch_all(&mut *tx)
            .await?;
    for (composite, settings) in composites {
        let mut settings = Settings::stored(&settings);
        if settings.guards.contains(&guard.id) {
            settings.guards.retain(|member| *member != guard.id);
            sqlx::query("UPDATE content_guards SET settings = $2, updated = $3 WHERE id = $1")
                .bind(&composite)
                .bind(settings.to_column())
                .bind(now())
                .execute(&mut *tx)
                .await?;
        }
    }
    sqlx::query("DELETE FROM content_guards WHERE id = $1")
        .bind(&guard.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    rbac::forget_object(&app.db, &guard.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `preauthenticate_url/`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct PreauthenticateInput {
    /// A content URL (or its path) the guard protects.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = String)]
    url: Option<Option<String>>,
    /// Seconds the signed URL works for; an hour when not given.
    #[serde(default, deserialize_with = "input::optional")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 31_536_000)]
    expires_in: Option<i64>,
}

/// The answer of `preauthenticate_url/`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PreauthenticatedUrl {
    /// The URL with its `validate_token`.
    url: String,
}

/// How long a signed URL works when the request does not say.
const DEFAULT_EXPIRES_IN: i64 = 3600;

/// `POST {content_redirect guard}preauthenticate_url/ {"url", "expires_in"}`: the URL, signed
/// with the guard's secret until it expires (for those who may change the guard).
async fn preauthenticate_url(
    Call { app, caller }: Call,
    Path(id): Path<String>,
    fields: Fields,
) -> ApiResult<Json<Value>> {
    let kind = GuardKind::ContentRedirect;
    let guard = guard_for(&app, &caller, kind, &id, "preauthenticate_url").await?;
    let request: PreauthenticateInput = fields.parse()?;
    let given = input::required(true, "url", request.url)?.unwrap_or_default();
    let expires_in = input::within("expires_in", request.expires_in, 1, 31_536_000)?
        .unwrap_or(DEFAULT_EXPIRES_IN);
    let absolute = if given.starts_with('/') {
        format!("{}{given}", app.origin)
    } else {
        given
    };
    let mut url = url::Url::parse(&absolute)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .ok_or_else(|| ApiError::field("url", "Enter a valid http:// or https:// URL."))?;
    let secret = Settings::stored(&guard.settings)
        .secret
        .ok_or_else(|| ApiError::internal("a content_redirect guard has no secret"))?;
    let expires = chrono::Utc::now().timestamp() + expires_in;
    let token = content_guards::sign(&secret, url.path(), expires);
    url.query_pairs_mut().append_pair("validate_token", &token);
    Ok(list::json(&PreauthenticatedUrl {
        url: url.to_string(),
    }))
}
