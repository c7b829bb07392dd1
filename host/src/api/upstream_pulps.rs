//! `upstream-pulps/` (pulp-cli `pulp upstream-pulp`): other servers whose distributions
//! `replicate/` mirrors here, as Pulp's. `replicate/` answers `202 {"task_group": href}`; the
//! work is in [`crate::domain::replication`]. Access as in Pulp: the `core.upstreampulp_*`
//! roles (creator, owner, viewer, and user: view and replicate), the creator made owner, lists
//! scoped to the upstreams the caller may view. A replication creates and deletes repositories,
//! remotes and distributions, so `replicate` is a permission of its own.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::access::{Call, Caller};
use super::core_objects::{self, CoreObject, Creatable, Deletable, Editable};
use super::list::{Identity, resource};
use super::object_roles::RoleAction;
use super::routes::Routes;
use super::support::{Fields, ensure_unique};
use crate::db::{new_id, now};
use crate::domain::replication;
use crate::error::{ApiError, ApiResult};
use crate::state::App;
use crate::tasks::kinds::TaskArgs;
use crate::tasks::{self, ResourceLock};

/// Routes.
pub fn router() -> Routes {
    let routes = Routes::new()
        .route(
            "/pulp/api/v3/upstream-pulps/",
            core_objects::collection::<UpstreamPulp>(),
        )
        .route(
            "/pulp/api/v3/upstream-pulps/{id}/",
            core_objects::object::<UpstreamPulp>().delete(core_objects::destroy::<UpstreamPulp>),
        )
        .route(
            "/pulp/api/v3/upstream-pulps/{id}/replicate/",
            post(replicate),
        );
    RoleAction::routes(routes, "/pulp/api/v3/upstream-pulps/{id}/", |action| {
        core_objects::role_action::<UpstreamPulp>(action, replication::href)
    })
}

resource! {
    /// A row of `upstream_pulps`.
    pub(crate) struct UpstreamPulp in "upstream_pulps" {
        name: String,
        base_url: String,
        api_root: String,
        domain: Option<String>,
        username: Option<String>,
        password: Option<String>,
        ca_cert: Option<String>,
        client_cert: Option<String>,
        client_key: Option<String>,
        tls_validation: i64,
        download_concurrency: Option<i64>,
        max_retries: Option<i64>,
        total_timeout_ms: Option<i64>,
        connect_timeout_ms: Option<i64>,
        sock_connect_timeout_ms: Option<i64>,
        sock_read_timeout_ms: Option<i64>,
        q_select: Option<String>,
        policy: String,
        allowed_origins: String,
        last_replication: Option<String>,
        created: String,
        updated: String,
    }
    filters: text name, time pulp_created = created;
    orderings: name, pulp_created = created;
    default_ordering: "name";
}

/// A field a response never shows, only whether it is set (Pulp's `hidden_fields`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HiddenField {
    name: &'static str,
    is_set: bool,
}

/// An upstream Pulp as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UpstreamPulpView {
    #[serde(flatten)]
    identity: Identity,
    name: String,
    /// Scheme, host and port of the upstream, e.g. `https://pulp.example.com`.
    base_url: String,
    /// Its API root (`/pulp/`).
    api_root: String,
    domain: Option<String>,
    ca_cert: Option<String>,
    client_cert: Option<String>,
    tls_validation: bool,
    download_concurrency: Option<i64>,
    max_retries: Option<i64>,
    total_timeout: Option<f64>,
    connect_timeout: Option<f64>,
    sock_connect_timeout: Option<f64>,
    sock_read_timeout: Option<f64>,
    /// Which upstream distributions are replicated: `pulp_label_select="…"`.
    q_select: Option<String>,
    /// `all`, `labeled` or `nodelete`: which local objects a replication may delete.
    policy: String,
    /// Origins the replicated remotes may reach besides the upstream's own (a Granary field,
    /// as on remotes): a content app on another origin than the API, on a private or loopback
    /// address.
    allowed_origins: Vec<String>,
    #[schema(format = DateTime)]
    last_replication: Option<String>,
    /// `username`, `password`, `client_key`: whether each is set.
    hidden_fields: Vec<HiddenField>,
}

impl CoreObject for UpstreamPulp {
    const VIEWSET: &'static str = "upstream-pulps";
    const VIEW_PERMISSION: Option<&'static str> = Some("core.view_upstreampulp");
    type View = UpstreamPulpView;

    async fn views(_app: &App, rows: Vec<UpstreamPulp>) -> ApiResult<Vec<UpstreamPulpView>> {
        let seconds = |ms: Option<i64>| ms.map(|ms| ms as f64 / 1000.0);
        Ok(rows
            .into_iter()
            .map(|row| UpstreamPulpView {
                identity: Identity::core(
                    replication::href(&row.id),
                    "upstreampulp",
                    &row.id,
                    &row.created,
                    &row.updated,
                ),
                hidden_fields: vec![
                    HiddenField {
                        name: "username",
                        is_set: row.username.is_some(),
                    },
                    HiddenField {
                        name: "password",
                        is_set: row.password.is_some(),
                    },
                    HiddenField {
                        name: "client_key",
                        is_set: row.client_key.is_some(),
                    },
                ],
                name: row.name,
                base_url: row.base_url,
                api_root: row.api_root,
                domain: row.domain,
                ca_cert: row.ca_cert,
                client_cert: row.client_cert,
                tls_validation: row.tls_validation != 0,
                download_concurrency: row.download_concurrency,
                max_retries: row.max_retries,
                total_timeout: seconds(row.total_timeout_ms),
                connect_timeout: seconds(row.connect_timeout_ms),
                sock_connect_timeout: seconds(row.sock_connect_timeout_ms),
                sock_read_timeout: seconds(row.sock_read_timeout_ms),
                q_select: row.q_select,
                allowed_origins: serde_json::from_str(&row.allowed_origins).unwrap_or_default(),
                policy: row.policy,
                last_replication: row.last_replication,
            })
            .collect())
    }
}

/// A validated column value (`None`: set it to NULL).
enum Column {
    Text(Option<String>),
    Int(Option<i64>),
}

/// The validated columns a create or change sets.
type Columns = Vec<(&'static str, Column)>;

/// Reads and checks the writable fields present in `fields` (`whole`: a create or `PUT`,
/// whose required fields must be given).
fn columns(app: &App, fields: &Fields, whole: bool) -> ApiResult<Columns> {
    let mut columns: Columns = Vec::new();
    if whole {
        fields.required_str("name")?;
        fields.required_str("base_url")?;
    }
    if let Some(name) = fields.opt_str("name")? {
        columns.push(("name", Column::Text(Some(name))));
    }
    if let Some(base_url) = fields.opt_str("base_url")? {
        let parsed = url::Url::parse(&base_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
        if parsed.is_none() {
            return Err(ApiError::field("base_url", "Enter a valid URL."));
        }
        columns.push(("base_url", Column::Text(Some(base_url))));
    }
    if let Some(api_root) = fields.opt_str("api_root")? {
        if api_root.trim_matches('/').is_empty() || api_root.contains(['?', '#']) {
            return Err(ApiError::field(
                "api_root",
                "Enter an API root such as /pulp/.",
            ));
        }
        columns.push(("api_root", Column::Text(Some(api_root))));
    }
    for text in ["domain", "username", "ca_cert", "client_cert"] {
        if fields.0.contains_key(text) {
            columns.push((text, Column::Text(fields.opt_str(text)?)));
        }
    }
    // Sealed as a remote's are.
    for secret in ["password", "client_key"] {
        if fields.0.contains_key(secret) {
            let sealed = fields
                .opt_str(secret)?
                .map(|plain| app.secrets.seal(&plain));
            columns.push((secret, Column::Text(sealed)));
        }
    }
    if let Some(validation) = fields.opt_bool("tls_validation")? {
        columns.push(("tls_validation", Column::Int(Some(i64::from(validation)))));
    }
    if fields.0.contains_key("download_concurrency") {
        columns.push((
            "download_concurrency",
            Column::Int(fields.opt_int("download_concurrency", 1, 64)?),
        ));
    }
    if fields.0.contains_key("max_retries") {
        columns.push((
            "max_retries",
            Column::Int(fields.opt_int("max_retries", 0, 10)?),
        ));
    }
    for (field, column) in [
        ("total_timeout", "total_timeout_ms"),
        ("connect_timeout", "connect_timeout_ms"),
        ("sock_connect_timeout", "sock_connect_timeout_ms"),
        ("sock_read_timeout", "sock_read_timeout_ms"),
    ] {
        match fields.0.get(field) {
            None => {}
            Some(Value::Null) => columns.push((column, Column::Int(None))),
            Some(value) => {
                let seconds = value
                    .as_f64()
                    .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
                    .filter(|seconds| seconds.is_finite() && *seconds >= 0.0 && *seconds < 1e9)
                    .ok_or_else(|| {
                        ApiError::field(field, "Ensure this value is greater than or equal to 0.")
                    })?;
                columns.push((column, Column::Int(Some((seconds * 1000.0) as i64))));
            }
        }
    }
    if fields.0.contains_key("q_select") {
        let q_select = fields.opt_str("q_select")?;
        if let Some(q_select) = &q_select {
            check_q_select(q_select)?;
        }
        columns.push((
            "q_select",
            Column::Text(q_select.filter(|q| !q.trim().is_empty())),
        ));
    }
    if let Some(origins) = fields.0.get("allowed_origins") {
        let origins: Vec<String> = match origins {
            Value::Null => Vec::new(),
            given => serde_json::from_value(given.clone())
                .map_err(|_| ApiError::field("allowed_origins", "Expected a list of items."))?,
        };
        let origins = super::remotes::allowed_origins(origins)?;
        columns.push((
            "allowed_origins",
            Column::Text(Some(serde_json::to_string(&origins).unwrap_or_default())),
        ));
    }
    if let Some(policy) = fields.opt_str("policy")? {
        if !["all", "labeled", "nodelete"].contains(&policy.as_str()) {
            return Err(ApiError::field(
                "policy",
                format!("\"{policy}\" is not a valid choice."),
            ));
        }
        columns.push(("policy", Column::Text(Some(policy))));
    }
    Ok(columns)
}

/// Writes `columns` to row `id`.
async fn write(app: &App, id: &str, columns: &Columns) -> ApiResult<()> {
    let mut tx = app.db.begin_write().await?;
    for (column, value) in columns {
        let sql = format!("UPDATE upstream_pulps SET {column} = $2, updated = $3 WHERE id = $1");
        let query = sqlx::query(&sql).bind(id);
        let query = match value {
            Column::Text(text) => query.bind(text.clone()),
            Column::Int(number) => query.bind(*number),
        };
        query.bind(now()).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

impl Creatable for UpstreamPulp {
    async fn insert(app: &App, caller: &Caller, fields: &Fields) -> ApiResult<String> {
        let columns = columns(app, fields, true)?;
        let name = fields.required_str("name")?;
        ensure_unique(app, "upstream_pulps", "name", "name", &name, None).await?;
        let id = new_id();
        let stamp = now();
        app.db
            .write_one(
                sqlx::query(
                    "INSERT INTO upstream_pulps (id, name, base_url, created, updated)
                     VALUES ($1, $2, '', $3, $3)",
                )
                .bind(&id)
                .bind(&name)
                .bind(&stamp),
            )
            .await?;
        write(app, &id, &columns).await?;
        core_objects::give_creator_roles::<Self>(app, caller, &id, &replication::href(&id)).await?;
        Ok(id)
    }
}

impl Editable for UpstreamPulp {
    async fn change(app: &App, row: UpstreamPulp, fields: &Fields, whole: bool) -> ApiResult<()> {
        let columns = columns(app, fields, whole)?;
        if let Some(name) = fields.opt_str("name")? {
            ensure_unique(app, "upstream_pulps", "name", "name", &name, Some(&row.id)).await?;
        }
        write(app, &row.id, &columns).await
    }
}

impl Deletable for UpstreamPulp {
    async fn delete(app: &App, row: UpstreamPulp) -> ApiResult<()> {
        core_objects::delete_rows(app, &row.id, &[("upstream_pulps", "id")]).await
    }
}

/// A `q_select`, which Pulp's `q` filter syntax must parse (the upstream applies it).
fn check_q_select(q_select: &str) -> ApiResult<()> {
    if q_select.trim().is_empty() {
        return Ok(());
    }
    super::list_expression::parse(q_select)
        .map(drop)
        .map_err(|message| ApiError::field("q_select", message))
}

/// `POST replicate/ {q_select?}`: a task group whose first task reads the upstream; `202
/// {"task_group": href}`.
async fn replicate(
    Call { app, caller }: Call,
    Path(id): Path<String>,
    fields: Fields,
) -> ApiResult<Response> {
    let upstream: UpstreamPulp = core_objects::authorized(&app, &caller, &id, "replicate").await?;
    let q_select = fields.opt_str("q_select")?;
    if let Some(q_select) = &q_select {
        check_q_select(q_select)?;
    }
    let group =
        tasks::create_group(&app.db, &format!("Replication of {}", upstream.base_url)).await?;
    let args = TaskArgs::Replicate {
        upstream_id: upstream.id.clone(),
        q_select,
        group_id: group.clone(),
    };
    tasks::enqueue_in_group(
        &app.db,
        "granary.tasks.replica.replicate_distributions",
        &args,
        &[ResourceLock::exclusive(replication::href(&upstream.id))],
        Some(&group),
    )
    .await?;
    app.task_wakeup.notify_waiters();
    let accepted = serde_json::json!({ "task_group": super::task_groups::href(&group) });
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}
