//! `repositories/python/python/<id>/blocklist_entries/` (pulp_python 3.30, pulp-cli `pulp python
//! repository blocklist add|list|show|remove`): the packages a repository refuses
//! ([`crate::domain::blocklists`] matches them when a version is made). Who may view the
//! repository lists and shows its entries; who may also modify it adds and removes them, as
//! pulp_python's access policy says.

use axum::extract::{OriginalUri, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use super::access::{Call, Caller};
use super::list::{
    self, Bind, Conditions, ExtraFilter, Identity, ListRequest, Page, Visibility, fetch_by_id,
    resource,
};
use super::repositories::Repository;
use super::routes::Routes;
use super::support::Fields;
use super::typed::{self, Typed as _, TypedRow as _};
use crate::db::{new_id, now};
use crate::domain::blocklists;
use crate::error::{ApiError, ApiResult};
use crate::rbac::policy::Subject;
use crate::state::App;

/// Routes.
pub fn router() -> Routes {
    Routes::new()
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/{id}/blocklist_entries/",
            get(list_entries).post(add_entry),
        )
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/{id}/blocklist_entries/{entry}/",
            get(show_entry).delete(remove_entry),
        )
}

resource! {
    /// A row of `blocklist_entries`.
    pub(crate) struct BlocklistEntry in "blocklist_entries" {
        name: Option<String>,
        version: Option<String>,
        filename: Option<String>,
        added_by: String,
        created: String,
        updated: String,
    }
    filters: text name, text version, text filename, time pulp_created = created;
    orderings: name, filename, pulp_created = created;
    default_ordering: "-pulp_created";
}

/// The filter pulp-cli sends to tell a name's entry from its releases'.
pub const FILTERS: &[ExtraFilter] = &[ExtraFilter {
    name: "version__isnull",
    description: "`true`: only entries of a whole project (no version); `false`: only those of one version",
    takes: list::Takes::Flag,
}];

/// A blocklist entry as the API shows it (pulp_python's `PythonBlocklistEntrySerializer`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlocklistEntryView {
    #[serde(flatten)]
    identity: Identity,
    /// The repository it belongs to.
    repository: String,
    /// A project refused in every version, PEP 503 normalized.
    name: Option<String>,
    /// The one version of `name` refused (the exact string).
    version: Option<String>,
    /// A file name refused.
    filename: Option<String>,
    /// The PRN of the user who added it.
    added_by: String,
}

impl BlocklistEntryView {
    fn of(entry: BlocklistEntry, repository: &Repository, repository_href: &str) -> Self {
        BlocklistEntryView {
            identity: Identity::typed(
                format!("{repository_href}blocklist_entries/{}/", entry.id),
                {
                    let (plugin, type_name, _) = repository.key();
                    (plugin, type_name, &entry.id)
                },
                "blocklistentry",
                &entry.created,
                &entry.updated,
            ),
            repository: repository_href.to_owned(),
            name: entry.name,
            version: entry.version,
            filename: entry.filename,
            added_by: entry.added_by,
        }
    }
}

/// The repository of the path once the caller may take `action` on it (404 for a plugin
/// without blocklists, or a repository they may not see; 403 when the policy refuses).
async fn repository(
    app: &App,
    caller: &Caller,
    (plugin, segment, id): (&str, &str, &str),
    action: &str,
) -> ApiResult<(Repository, String)> {
    if !blocklists::applies_to(plugin) {
        return Err(ApiError::not_found());
    }
    let repository: Repository = typed::load_for(
        app,
        caller,
        (plugin, segment, id),
        action,
        Subject::default(),
    )
    .await?;
    let href = repository.href(&app.plugins.rest_names());
    Ok((repository, href))
}

/// The entry `entry` of the repository.
async fn entry(app: &App, repository: &Repository, entry: &str) -> ApiResult<BlocklistEntry> {
    fetch_by_id(
        &app.db,
        entry,
        Conditions::of(
            "repository_id = ?",
            [Bind::from(repository.key().2.to_owned())],
        ),
        &Visibility::all(),
    )
    .await
}

/// `GET blocklist_entries/`
async fn list_entries(
    Call { app, caller }: Call,
    Path((plugin, segment, id)): Path<(String, String, String)>,
    ListRequest { query, uri }: ListRequest,
) -> ApiResult<Response> {
    let (repository, href) =
        repository(&app, &caller, (&plugin, &segment, &id), "retrieve").await?;
    let mut conditions = Conditions::of(
        "repository_id = ?",
        [Bind::from(repository.key().2.to_owned())],
    );
    match query.get("version__isnull").map(String::as_str) {
        None | Some("") => {}
        Some("true" | "True" | "1") => conditions.push("version IS NULL", []),
        Some("false" | "False" | "0") => conditions.push("version IS NOT NULL", []),
        Some(_) => {
            return Err(ApiError::field("version__isnull", "Enter a valid boolean."));
        }
    }
    let page = Page::from_query(&query)?;
    let (total, rows) =
        list::fetch_page::<BlocklistEntry>(&app.db, &query, conditions, &Visibility::all(), &page)
            .await?;
    let views: Vec<BlocklistEntryView> = rows
        .into_iter()
        .map(|row| BlocklistEntryView::of(row, &repository, &href))
        .collect();
    Ok(page.respond(&app, &uri, total, views))
}

/// `GET blocklist_entries/<entry>/`
async fn show_entry(
    Call { app, caller }: Call,
    Path((plugin, segment, id, entry_id)): Path<(String, String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let (repository, href) =
        repository(&app, &caller, (&plugin, &segment, &id), "retrieve").await?;
    let row = entry(&app, &repository, &entry_id).await?;
    Ok(list::shaped(
        &uri,
        &BlocklistEntryView::of(row, &repository, &href),
    ))
}

/// `POST blocklist_entries/ {name, version?} | {filename}`: 201 with the entry; pulp_python's
/// checks and messages.
async fn add_entry(
    Call { app, caller }: Call,
    Path((plugin, segment, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let (repository, href) = repository(&app, &caller, (&plugin, &segment, &id), "modify").await?;
    let given = |field: &str| -> ApiResult<Option<String>> {
        Ok(fields.opt_str(field)?.filter(|value| !value.is_empty()))
    };
    let (name, version, filename) = (given("name")?, given("version")?, given("filename")?);
    if version.is_some() && filename.is_some() {
        return Err(ApiError::bad_request(
            "'version' cannot be used with 'filename'.",
        ));
    }
    if version.is_some() && name.is_none() {
        return Err(ApiError::bad_request(
            "'version' requires 'name' to be provided.",
        ));
    }
    if name.is_some() == filename.is_some() {
        return Err(ApiError::bad_request(
            "Exactly one of 'name' or 'filename' must be provided.",
        ));
    }
    if let Some(version) = &version
        && !blocklists::is_version(version)
    {
        return Err(ApiError::field(
            "version",
            format!("'{version}' is not a valid version."),
        ));
    }
    let name = name.map(|name| blocklists::normalize_name(&name));
    let duplicate: Option<String> = sqlx::query_scalar(
        "SELECT id FROM blocklist_entries WHERE repository_id = $1
         AND ((name = $2 AND COALESCE(version, '') = COALESCE($3, '')) OR filename = $4)",
    )
    .bind(repository.key().2)
    .bind(&name)
    .bind(&version)
    .bind(&filename)
    .fetch_optional(app.db.pool())
    .await?;
    if duplicate.is_some() {
        return Err(ApiError::bad_request(if name.is_some() {
            "A blocklist entry with this name and version already exists."
        } else {
            "A blocklist entry with this filename already exists."
        }));
    }
    let entry_id = new_id();
    let created = now();
    app.db
        .write_one(
            sqlx::query(
                "INSERT INTO blocklist_entries
                 (id, repository_id, name, version, filename, added_by, created, updated)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&entry_id)
            .bind(repository.key().2)
            .bind(&name)
            .bind(&version)
            .bind(&filename)
            .bind(format!("prn:auth.user:{}", caller.user.id))
            .bind(&created),
        )
        .await?;
    let row = entry(&app, &repository, &entry_id).await?;
    let view = BlocklistEntryView::of(row, &repository, &href);
    Ok((StatusCode::CREATED, list::json(&view)).into_response())
}

/// `DELETE blocklist_entries/<entry>/`: 204.
async fn remove_entry(
    Call { app, caller }: Call,
    Path((plugin, segment, id, entry_id)): Path<(String, String, String, String)>,
) -> ApiResult<StatusCode> {
    let (repository, _) = repository(&app, &caller, (&plugin, &segment, &id), "modify").await?;
    let row = entry(&app, &repository, &entry_id).await?;
    app.db
        .write_one(sqlx::query("DELETE FROM blocklist_entries WHERE id = $1").bind(&row.id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
