//! `exporters/core/pulp/` and `exporters/core/filesystem/` with their `exports/`, as Pulp's:
//! an exporter names a directory of the server (below an allowed export path) and what it
//! exports; `POST exports/` queues the export task and answers `202 {"task": href}`. Staff
//! only (default policies): an exporter writes to the server's disks. The work is in
//! [`crate::domain::transfer`].
//!
//! As in Pulp, changing or deleting an exporter is a task (`202 {"task": href}`) holding the
//! exporter's exclusive lock, which its exports hold too.

use axum::Json;
use axum::extract::{OriginalUri, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::access::{Call, Caller};
use super::list::{self, Conditions, Identity, ListRequest, Visibility, fetch_by_id, resource};
use super::routes::Routes;
use super::support::{
    Changes, ColumnValue, Fields, ensure_unique, json_column, spawn_delete, spawn_task,
    spawn_update,
};
use crate::db::{new_id, now};
use crate::domain::hrefs::{self, API_ROOT, Href};
use crate::domain::transfer::archive::parse_chunk_size;
use crate::domain::transfer::export::{
    self, ExportRequest, ExportedVersion, ExporterRepository, exported_hrefs,
};
use crate::domain::transfer::filesystem::{self, FilesystemExportRequest, METHODS, Source};
use crate::error::{ApiError, ApiResult};
use crate::state::App;
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Routes.
pub fn router() -> Routes {
    Routes::new()
        .route(
            "/pulp/api/v3/exporters/core/{kind}/",
            get(list).post(create),
        )
        .route(
            "/pulp/api/v3/exporters/core/{kind}/{id}/",
            get(read)
                .put(update::<true>)
                .patch(update::<false>)
                .delete(destroy),
        )
        .route(
            "/pulp/api/v3/exporters/core/{kind}/{id}/exports/",
            get(list_exports).post(create_export),
        )
        .route(
            "/pulp/api/v3/exporters/core/{kind}/{id}/exports/{token}/",
            get(read_export).delete(destroy_export),
        )
}

/// The two kinds of exporter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Repository versions into an archive another server imports.
    Pulp,
    /// A publication's or version's files into a directory tree.
    Filesystem,
}

impl Kind {
    /// The kind a route segment names; 404 for any other.
    fn of(segment: &str) -> ApiResult<Kind> {
        match segment {
            "pulp" => Ok(Kind::Pulp),
            "filesystem" => Ok(Kind::Filesystem),
            _ => Err(ApiError::not_found()),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Pulp => "pulp",
            Kind::Filesystem => "filesystem",
        }
    }

    /// The access policy of its exporters.
    fn viewset(self) -> String {
        format!("exporters/core/{}", self.name())
    }

    /// The access policy of its exports.
    fn exports_viewset(self) -> String {
        format!("exporters/core/{}/exports", self.name())
    }

    fn conditions(self) -> Conditions {
        Conditions::of("e.kind = ?", [self.name().into()])
    }
}

/// `/pulp/api/v3/exporters/core/<kind>/<id>/`
fn href(kind: Kind, id: &str) -> String {
    format!("{API_ROOT}exporters/core/{}/{id}/", kind.name())
}

resource! {
    /// A row of `exporters`.
    pub(crate) struct Exporter in "exporters e" as e {
        name: String,
        path: String,
        method: Option<String>,
        repositories: String,
        last_export_id: Option<String>,
        created: String,
        updated: String,
    }
    filters: text name, time pulp_created = created;
    orderings: name, pulp_created = created;
    default_ordering: "name";
}

resource! {
    /// A row of `exports`.
    pub(crate) struct Export in "exports x" as x {
        exporter_id: String,
        task_id: Option<String>,
        params: String,
        exported_resources: String,
        output_file_info: Option<String>,
        toc_info: Option<String>,
        created: String,
    }
    filters: time pulp_created = created;
    orderings: pulp_created = created;
    default_ordering: "-pulp_created";
}

/// A pulp exporter as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PulpExporterView {
    #[serde(flatten)]
    identity: Identity,
    name: String,
    /// The directory exports are written into.
    path: String,
    /// The repositories exported (hrefs).
    repositories: Vec<String>,
    /// The last export that succeeded, where an incremental export starts.
    last_export: Option<String>,
}

/// A filesystem exporter as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FilesystemExporterView {
    #[serde(flatten)]
    identity: Identity,
    name: String,
    /// The directory files are written into.
    path: String,
    /// `write`, `hardlink` or `symlink`.
    method: String,
}

/// An export as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExportView {
    #[serde(flatten)]
    identity: Identity,
    /// The task that ran it.
    task: Option<String>,
    /// What it exported (repository version or publication hrefs).
    exported_resources: Vec<String>,
    /// The request's parameters.
    #[schema(value_type = Object)]
    params: Value,
    /// `{file: sha256}` of every file written, the table of contents included (pulp exports).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    output_file_info: Option<Value>,
    /// `{file, sha256, meta}` of the table of contents (pulp exports).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    toc_info: Option<Value>,
}

fn exporter_view(app: &App, kind: Kind, exporter: Exporter) -> Value {
    let identity = Identity::core(
        href(kind, &exporter.id),
        &format!("{}exporter", kind.name()),
        &exporter.id,
        &exporter.created,
        &exporter.updated,
    );
    match kind {
        Kind::Pulp => {
            let repositories = repository_hrefs(app, &exporter.repositories);
            serde_json::to_value(PulpExporterView {
                identity,
                name: exporter.name,
                path: exporter.path,
                repositories,
                last_export: exporter
                    .last_export_id
                    .map(|export_id| export::href(&exporter.id, &export_id)),
            })
        }
        Kind::Filesystem => serde_json::to_value(FilesystemExporterView {
            identity,
            name: exporter.name,
            path: exporter.path,
            method: exporter.method.unwrap_or_else(|| "write".into()),
        }),
    }
    .unwrap_or_default()
}

/// The hrefs of an exporter's repositories (its `repositories` column).
fn repository_hrefs(app: &App, column: &str) -> Vec<String> {
    let names = app.plugins.rest_names();
    export::exporter_repositories(column)
        .iter()
        .map(|repository| {
            hrefs::repository(
                &names,
                &repository.plugin,
                &repository.type_name,
                &repository.id,
            )
        })
        .collect()
}

fn export_view(kind: Kind, export: Export) -> ExportView {
    let pulp_href = match kind {
        Kind::Pulp => export::href(&export.exporter_id, &export.id),
        Kind::Filesystem => filesystem::href(&export.exporter_id, &export.id),
    };
    let prn = format!("prn:core.{}export:{}", kind.name(), export.id);
    // A pulp export shows these (null until it succeeded); a filesystem export has none.
    let pulp_only = |column: &Option<String>| {
        (kind == Kind::Pulp).then(|| column.as_deref().map_or(Value::Null, json_column))
    };
    ExportView {
        identity: Identity::immutable(pulp_href, prn, export.created),
        task: export.task_id.as_deref().map(hrefs::task),
        exported_resources: exported_hrefs(&export.exported_resources),
        params: json_column(&export.params),
        output_file_info: pulp_only(&export.output_file_info),
        toc_info: pulp_only(&export.toc_info),
    }
}

async fn list(
    Call { app, caller }: Call,
    Path(kind): Path<String>,
    request: ListRequest,
) -> ApiResult<Response> {
    let kind = Kind::of(&kind)?;
    caller
        .authorize_action(&app, &kind.viewset(), "list")
        .await?;
    let app_ref = &app;
    list::list::<Exporter, _>(
        &app,
        &request,
        kind.conditions(),
        &Visibility::all(),
        |exporter| exporter_view(app_ref, kind, exporter),
    )
    .await
}

/// The exporter `id` of the route, once the caller may take `action` on it.
async fn authorized(
    app: &App,
    caller: &Caller,
    (kind, id): (Kind, &str),
    action: &str,
) -> ApiResult<Exporter> {
    caller
        .authorize_action(app, &kind.viewset(), action)
        .await?;
    fetch_by_id(&app.db, id, kind.conditions(), &Visibility::all()).await
}

async fn read(
    Call { app, caller }: Call,
    Path((kind, id)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<Value>> {
    let kind = Kind::of(&kind)?;
    let exporter = authorized(&app, &caller, (kind, &id), "retrieve").await?;
    Ok(list::shaped(&uri, &exporter_view(&app, kind, exporter)))
}

/// `path`: below an allowed export directory, and not a file (Pulp's messages).
fn path_field(app: &App, fields: &Fields, required: bool) -> ApiResult<Option<String>> {
    let path = if required {
        Some(fields.required_str("path")?)
    } else {
        fields.opt_str("path")?
    };
    if let Some(path) = &path {
        app.allowed_paths
            .export_dir(path)
            .map_err(|message| ApiError::field("path", message))?;
    }
    Ok(path)
}

/// `repositories`: hrefs of existing repositories, as a JSON list of their ids.
async fn repositories_field(app: &App, fields: &Fields) -> ApiResult<Option<String>> {
    if !fields.has("repositories") {
        return Ok(None);
    }
    let names = app.plugins.rest_names();
    let mut repositories: Vec<ExporterRepository> = Vec::new();
    for href in fields.href_list(&names, "repositories")? {
        let Href::Repository { id, .. } = href else {
            return Err(ApiError::field(
                "repositories",
                "Invalid hyperlink - not a repository href.",
            ));
        };
        let (plugin, type_name): (String, String) = super::support::referenced(
            app,
            "repositories",
            "SELECT plugin, type_name FROM repositories WHERE id = $1",
            &id,
        )
        .await?;
        if !repositories.iter().any(|known| known.id == id) {
            repositories.push(ExporterRepository {
                id,
                plugin,
                type_name,
            });
        }
    }
    Ok(Some(
        serde_json::to_string(&repositories).unwrap_or_else(|_| "[]".into()),
    ))
}

/// `method`: one of [`METHODS`].
fn method_field(fields: &Fields) -> ApiResult<Option<String>> {
    match fields.opt_str("method")? {
        Some(method) if !METHODS.contains(&method.as_str()) => Err(ApiError::field(
            "method",
            format!("\"{method}\" is not a valid choice."),
        )),
        method => Ok(method),
    }
}

/// `POST {name, path, repositories}` (pulp) or `{name, path, method?}` (filesystem): 201.
async fn create(
    Call { app, caller }: Call,
    Path(kind): Path<String>,
    fields: Fields,
) -> ApiResult<Response> {
    let kind = Kind::of(&kind)?;
    caller
        .authorize_action(&app, &kind.viewset(), "create")
        .await?;
    let name = fields.required_str("name")?;
    let path = path_field(&app, &fields, true)?.unwrap_or_default();
    let (repositories, method) = match kind {
        Kind::Pulp => {
            let Some(repositories) = repositories_field(&app, &fields).await? else {
                return Err(ApiError::field("repositories", "This field is required."));
            };
            (repositories, None)
        }
        Kind::Filesystem => (
            "[]".to_owned(),
            Some(method_field(&fields)?.unwrap_or_else(|| "write".into())),
        ),
    };
    ensure_unique(&app, "exporters", "name", "name", &name, None).await?;
    let id = new_id();
    let stamp = now();
    app.db
        .write_one(
            sqlx::query(
                "INSERT INTO exporters (id, kind, name, path, method, repositories, created, updated)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&id)
            .bind(kind.name())
            .bind(&name)
            .bind(&path)
            .bind(&method)
            .bind(&repositories)
            .bind(&stamp),
        )
        .await?;
    let exporter = authorized(&app, &caller, (kind, &id), "retrieve").await?;
    Ok((
        StatusCode::CREATED,
        list::json(&exporter_view(&app, kind, exporter)),
    )
        .into_response())
}

/// `PUT` (`WHOLE`: `name` and `path` required, and a pulp exporter's `repositories`) or
/// `PATCH {name?, path?, repositories? | method?}`: validated here, applied by a task under the
/// exporter's exclusive lock (Pulp's `AsyncUpdateMixin`), so it waits for a running export.
async fn update<const WHOLE: bool>(
    Call { app, caller }: Call,
    Path((kind, id)): Path<(String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let kind = Kind::of(&kind)?;
    let action = if WHOLE { "update" } else { "partial_update" };
    let exporter = authorized(&app, &caller, (kind, &id), action).await?;
    if WHOLE {
        fields.required_str("name")?;
        fields.required_str("path")?;
        if kind == Kind::Pulp && !fields.has("repositories") {
            return Err(ApiError::field("repositories", "This field is required."));
        }
    }
    let mut changes = Changes::new();
    if let Some(name) = fields.opt_str("name")? {
        ensure_unique(&app, "exporters", "name", "name", &name, Some(&exporter.id)).await?;
        changes.push(("name".into(), ColumnValue::Text(Some(name))));
    }
    if let Some(path) = path_field(&app, &fields, false)? {
        changes.push(("path".into(), ColumnValue::Text(Some(path))));
    }
    match kind {
        Kind::Pulp => {
            if let Some(repositories) = repositories_field(&app, &fields).await? {
                changes.push(("repositories".into(), ColumnValue::Text(Some(repositories))));
            }
        }
        Kind::Filesystem => {
            if let Some(method) = method_field(&fields)? {
                changes.push(("method".into(), ColumnValue::Text(Some(method))));
            }
        }
    }
    spawn_update(&app, href(kind, &exporter.id), changes, Vec::new()).await
}

/// `DELETE`: a task (Pulp's `AsyncRemoveMixin`, after any running export) deleting the exporter,
/// the records of its exports (their files stay on disk, as in Pulp) and the roles held on it.
async fn destroy(
    Call { app, caller }: Call,
    Path((kind, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let kind = Kind::of(&kind)?;
    let exporter = authorized(&app, &caller, (kind, &id), "destroy").await?;
    spawn_delete(&app, href(kind, &exporter.id)).await
}

fn of_exporter(exporter_id: &str) -> Conditions {
    Conditions::of("x.exporter_id = ?", [exporter_id.into()])
}

async fn list_exports(
    Call { app, caller }: Call,
    Path((kind, id)): Path<(String, String)>,
    request: ListRequest,
) -> ApiResult<Response> {
    let kind = Kind::of(&kind)?;
    let exporter = authorized(&app, &caller, (kind, &id), "retrieve").await?;
    caller
        .authorize_action(&app, &kind.exports_viewset(), "list")
        .await?;
    list::list::<Export, _>(
        &app,
        &request,
        of_exporter(&exporter.id),
        &Visibility::all(),
        |export| export_view(kind, export),
    )
    .await
}

/// The export of the route, once the caller may take `action` on it.
async fn authorized_export(
    app: &App,
    caller: &Caller,
    (kind, id, export_id): (Kind, &str, &str),
    action: &str,
) -> ApiResult<Export> {
    let exporter = authorized(app, caller, (kind, id), "retrieve").await?;
    caller
        .authorize_action(app, &kind.exports_viewset(), action)
        .await?;
    fetch_by_id(
        &app.db,
        export_id,
        of_exporter(&exporter.id),
        &Visibility::all(),
    )
    .await
}

async fn read_export(
    Call { app, caller }: Call,
    Path((kind, id, export_id)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<Value>> {
    let kind = Kind::of(&kind)?;
    let export = authorized_export(&app, &caller, (kind, &id, &export_id), "retrieve").await?;
    Ok(list::shaped(&uri, &export_view(kind, export)))
}

/// `DELETE`: the record of an export (its files stay, as in Pulp).
async fn destroy_export(
    Call { app, caller }: Call,
    Path((kind, id, export_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let kind = Kind::of(&kind)?;
    let export = authorized_export(&app, &caller, (kind, &id, &export_id), "destroy").await?;
    let mut tx = app.db.begin_write().await?;
    sqlx::query("UPDATE exporters SET last_export_id = NULL WHERE last_export_id = $1")
        .bind(&export.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM exports WHERE id = $1")
        .bind(&export.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A field of version hrefs (`versions`, `start_versions`), each of a repository of the
/// exporter, one per repository, all of them (Pulp's rules and messages).
async fn versions_field(
    app: &App,
    fields: &Fields,
    field: &str,
    repository_ids: &[String],
) -> ApiResult<Option<Vec<ExportedVersion>>> {
    if !fields.has(field) {
        return Ok(None);
    }
    let names = app.plugins.rest_names();
    let mut versions = Vec::new();
    for href in fields.href_list(&names, field)? {
        let Href::Version { id, number, .. } = href else {
            return Err(ApiError::field(
                field,
                "Invalid hyperlink - not a repository version href.",
            ));
        };
        super::support::version_id(app, field, &id, number).await?;
        versions.push(ExportedVersion {
            repository_id: id,
            number,
        });
    }
    if versions.len() != repository_ids.len() {
        return Err(ApiError::field(
            field,
            format!(
                "Number of versions ({}) does not match the number of Repositories ({}) for the owning  Exporter!",
                versions.len(),
                repository_ids.len()
            ),
        ));
    }
    let mut named: Vec<&String> = versions.iter().map(|v| &v.repository_id).collect();
    named.sort_unstable();
    named.dedup();
    let mut expected: Vec<&String> = repository_ids.iter().collect();
    expected.sort_unstable();
    if named != expected {
        return Err(ApiError::field(
            field,
            "Requested RepositoryVersions must belong to the Repositories named by the Exporter!",
        ));
    }
    Ok(Some(versions))
}

/// `POST exports/`: validated as Pulp validates it, then queued; `202 {"task": href}`.
async fn create_export(
    Call { app, caller }: Call,
    Path((kind, id)): Path<(String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let kind = Kind::of(&kind)?;
    let exporter = authorized(&app, &caller, (kind, &id), "retrieve").await?;
    caller
        .authorize_action(&app, &kind.exports_viewset(), "create")
        .await?;
    // The exporter's directory may have stopped being allowed since it was set.
    app.allowed_paths
        .export_dir(&exporter.path)
        .map_err(ApiError::bad_request)?;
    let exporter_href = href(kind, &exporter.id);
    match kind {
        Kind::Pulp => create_pulp_export(&app, exporter, exporter_href, &fields).await,
        Kind::Filesystem => create_filesystem_export(&app, exporter, exporter_href, &fields).await,
    }
}

async fn create_pulp_export(
    app: &App,
    exporter: Exporter,
    exporter_href: String,
    fields: &Fields,
) -> ApiResult<Response> {
    let repository_ids = export::repository_ids(&exporter.repositories);
    let full = fields.opt_bool("full")?.unwrap_or(true);
    let dry_run = fields.opt_bool("dry_run")?.unwrap_or(false);
    let chunk_size = fields
        .opt_str("chunk_size")?
        .map(|text| {
            parse_chunk_size(&text).map_err(|message| ApiError::field("chunk_size", message))
        })
        .transpose()?;
    let versions = versions_field(app, fields, "versions", &repository_ids).await?;
    let start_versions = versions_field(app, fields, "start_versions", &repository_ids).await?;
    let meta = match fields.0.get("meta") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(meta)) => meta.clone(),
        Some(_) => {
            return Err(ApiError::field(
                "meta",
                "Expected a dictionary of items but got type \"str\".",
            ));
        }
    };
    if start_versions.is_some() && full {
        return Err(ApiError::bad_request(
            "start_versions is only valid for incremental exports (full=False)",
        ));
    }
    if !full && start_versions.is_none() && exporter.last_export_id.is_none() {
        return Err(ApiError::bad_request(
            "Incremental export can only be requested when there is a previous export or start_versions= has been specified.",
        ));
    }
    let mut locks = vec![ResourceLock::exclusive(exporter_href)];
    locks.extend(
        repository_hrefs(app, &exporter.repositories)
            .into_iter()
            .map(ResourceLock::shared),
    );
    let request = ExportRequest {
        exporter_id: exporter.id,
        full,
        dry_run,
        chunk_size,
        versions,
        start_versions,
        meta,
        params: Value::Object(fields.0.clone()),
    };
    spawn_task(
        app,
        "granary.tasks.export.pulp_export",
        TaskArgs::PulpExport(request),
        &locks,
    )
    .await
}

async fn create_filesystem_export(
    app: &App,
    exporter: Exporter,
    exporter_href: String,
    fields: &Fields,
) -> ApiResult<Response> {
    let names = app.plugins.rest_names();
    let publication = fields.opt_href(&names, "publication")?;
    let version = fields.opt_href(&names, "repository_version")?;
    let source = match (publication, version) {
        (Some(Href::Publication { id, .. }), None) => {
            let href = publication_href(app, &names, &id).await?;
            Source::Publication(id, href)
        }
        (None, Some(Href::Version { id, number, .. })) => {
            super::support::version_id(app, "repository_version", &id, number).await?;
            let href = crate::domain::versions::href(app.db.pool(), &names, &id, number).await?;
            Source::Version(
                ExportedVersion {
                    repository_id: id,
                    number,
                },
                href,
            )
        }
        (Some(_), None) => {
            return Err(ApiError::field(
                "publication",
                "Invalid hyperlink - not a publication href.",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::field(
                "repository_version",
                "Invalid hyperlink - not a repository version href.",
            ));
        }
        _ => {
            return Err(ApiError::bad_request(
                "publication or repository_version must either be supplied but not both.",
            ));
        }
    };
    let start_version = match fields.opt_href(&names, "start_repository_version")? {
        None => None,
        Some(Href::Version { id, number, .. }) => {
            super::support::version_id(app, "start_repository_version", &id, number).await?;
            Some(ExportedVersion {
                repository_id: id,
                number,
            })
        }
        Some(_) => {
            return Err(ApiError::field(
                "start_repository_version",
                "Invalid hyperlink - not a repository version href.",
            ));
        }
    };
    let request = FilesystemExportRequest {
        exporter_id: exporter.id,
        source,
        start_version,
        params: Value::Object(fields.0.clone()),
    };
    let name = match request.source {
        Source::Publication(..) => "granary.tasks.export.fs_publication_export",
        Source::Version(..) => "granary.tasks.export.fs_repo_version_export",
    };
    spawn_task(
        app,
        name,
        TaskArgs::FilesystemExport(request),
        &[ResourceLock::exclusive(exporter_href)],
    )
    .await
}

/// The href of publication `id`; a 400 on `publication` when there is none.
async fn publication_href(
    app: &App,
    names: &crate::domain::hrefs::RestNames,
    id: &str,
) -> ApiResult<String> {
    let (plugin, type_name): (String, String) = super::support::referenced(
        app,
        "publication",
        "SELECT plugin, type_name FROM publications WHERE id = $1",
        id,
    )
    .await?;
    Ok(hrefs::publication(names, &plugin, &type_name, id))
}
