//! `importers/core/pulp/` with its `imports/`, and `importers/core/pulp/import-check/`, as
//! Pulp's: an importer maps repository names of an export to local ones (`repo_mapping`);
//! `POST imports/ {path | toc, create_repositories?}` queues the import in a task group and
//! answers `202 {"task_group": href}`. Staff only (default policies): an import reads the
//! server's disks. The work is in [`crate::domain::transfer::import`].

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{OriginalUri, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::access::{Call, Caller};
use super::core_objects::{self, CoreObject, Creatable, Deletable, Editable};
use super::list::{self, Conditions, Identity, ListRequest, Visibility, fetch_by_id, resource};
use super::routes::Routes;
use super::support::{Fields, ensure_unique, json_column};
use crate::db::{new_id, now};
use crate::domain::hrefs::{self, API_ROOT};
use crate::domain::transfer::import::{self, ImportRequest};
use crate::error::{ApiError, ApiResult};
use crate::state::App;
use crate::tasks::kinds::TaskArgs;
use crate::tasks::{self, ResourceLock};

/// The access policy of imports.
const IMPORTS: &str = "importers/core/pulp/imports";
/// The access policy of `import-check/`.
const IMPORT_CHECK: &str = "importers/core/pulp/import-check";

/// Routes.
pub fn router() -> Routes {
    Routes::new()
        .route(
            "/pulp/api/v3/importers/core/pulp/",
            core_objects::collection::<Importer>(),
        )
        .route(
            "/pulp/api/v3/importers/core/pulp/import-check/",
            post(import_check),
        )
        .route(
            "/pulp/api/v3/importers/core/pulp/{id}/",
            core_objects::object::<Importer>().delete(core_objects::destroy::<Importer>),
        )
        .route(
            "/pulp/api/v3/importers/core/pulp/{id}/imports/",
            get(list_imports).post(create_import),
        )
        .route(
            "/pulp/api/v3/importers/core/pulp/{id}/imports/{token}/",
            get(read_import).delete(destroy_import),
        )
}

/// `/pulp/api/v3/importers/core/pulp/<id>/`
pub fn href(id: &str) -> String {
    format!("{API_ROOT}importers/core/pulp/{id}/")
}

resource! {
    /// A row of `importers`.
    pub(crate) struct Importer in "importers" {
        name: String,
        repo_mapping: String,
        created: String,
        updated: String,
    }
    filters: text name, time pulp_created = created;
    orderings: name, pulp_created = created;
    default_ordering: "name";
}

resource! {
    /// A row of `imports`.
    pub(crate) struct Import in "imports i" as i {
        importer_id: String,
        task_id: Option<String>,
        params: String,
        created: String,
    }
    filters: time pulp_created = created;
    orderings: pulp_created = created;
    default_ordering: "-pulp_created";
}

/// A pulp importer as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImporterView {
    #[serde(flatten)]
    identity: Identity,
    name: String,
    /// `{repository name in an export: local repository name}`.
    #[schema(value_type = Object)]
    repo_mapping: Value,
}

/// An import as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportView {
    #[serde(flatten)]
    identity: Identity,
    /// The task that ran it.
    task: Option<String>,
    /// The request's parameters.
    #[schema(value_type = Object)]
    params: Value,
}

impl CoreObject for Importer {
    const VIEWSET: &'static str = "importers/core/pulp";
    type View = ImporterView;

    async fn views(_app: &App, importers: Vec<Importer>) -> ApiResult<Vec<ImporterView>> {
        Ok(importers
            .into_iter()
            .map(|importer| ImporterView {
                identity: Identity::core(
                    href(&importer.id),
                    "pulpimporter",
                    &importer.id,
                    &importer.created,
                    &importer.updated,
                ),
                name: importer.name,
                repo_mapping: json_column(&importer.repo_mapping),
            })
            .collect())
    }
}

/// `repo_mapping`: an object of strings whose values name existing repositories (Pulp's
/// message otherwise), as JSON text.
async fn mapping_field(app: &App, fields: &Fields) -> ApiResult<Option<String>> {
    let mapping = match fields.0.get("repo_mapping") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(mapping)) => mapping,
        Some(_) => {
            return Err(ApiError::field(
                "repo_mapping",
                "Expected a dictionary of items.",
            ));
        }
    };
    let mut checked = BTreeMap::new();
    for (source, destination) in mapping {
        let Some(destination) = destination.as_str() else {
            return Err(ApiError::field("repo_mapping", "Not a valid string."));
        };
        let exists: Option<String> =
            sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                .bind(destination)
                .fetch_optional(app.db.pool())
                .await?;
        if exists.is_none() {
            return Err(ApiError::field(
                "repo_mapping",
                format!(
                    "Failed to find repositories from repo_mapping: no repository is named '{destination}'."
                ),
            ));
        }
        checked.insert(source.clone(), destination.to_owned());
    }
    Ok(Some(
        serde_json::to_string(&checked).unwrap_or_else(|_| "{}".into()),
    ))
}

impl Creatable for Importer {
    async fn insert(app: &App, _caller: &Caller, fields: &Fields) -> ApiResult<String> {
        let name = fields.required_str("name")?;
        let mapping = mapping_field(app, fields)
            .await?
            .unwrap_or_else(|| "{}".into());
        ensure_unique(app, "importers", "name", "name", &name, None).await?;
        let id = new_id();
        app.db
            .write_one(
                sqlx::query(
                    "INSERT INTO importers (id, name, repo_mapping, created, updated)
                     VALUES ($1, $2, $3, $4, $4)",
                )
                .bind(&id)
                .bind(&name)
                .bind(&mapping)
                .bind(now()),
            )
            .await?;
        Ok(id)
    }
}

impl Editable for Importer {
    async fn change(app: &App, importer: Importer, fields: &Fields, whole: bool) -> ApiResult<()> {
        let name = if whole {
            Some(fields.required_str("name")?)
        } else {
            fields.opt_str("name")?
        };
        if let Some(name) = &name {
            ensure_unique(app, "importers", "name", "name", name, Some(&importer.id)).await?;
        }
        let mapping = mapping_field(app, fields).await?;
        app.db
            .write_one(
                sqlx::query(
                    "UPDATE importers SET name = $2, repo_mapping = $3, updated = $4 WHERE id = $1",
                )
                .bind(&importer.id)
                .bind(name.unwrap_or(importer.name))
                .bind(mapping.unwrap_or(importer.repo_mapping))
                .bind(now()),
            )
            .await?;
        Ok(())
    }
}

impl Deletable for Importer {
    async fn delete(app: &App, importer: Importer) -> ApiResult<()> {
        core_objects::delete_rows(
            app,
            &importer.id,
            &[("imports", "importer_id"), ("importers", "id")],
        )
        .await
    }
}

fn import_view(import: Import) -> ImportView {
    ImportView {
        identity: Identity::immutable(
            import::href(&import.importer_id, &import.id),
            format!("prn:core.pulpimport:{}", import.id),
            import.created,
        ),
        task: import.task_id.as_deref().map(hrefs::task),
        params: json_column(&import.params),
    }
}

fn of_importer(importer_id: &str) -> Conditions {
    Conditions::of("i.importer_id = ?", [importer_id.into()])
}

async fn list_imports(
    Call { app, caller }: Call,
    Path(id): Path<String>,
    request: ListRequest,
) -> ApiResult<Response> {
    let importer: Importer = core_objects::authorized(&app, &caller, &id, "retrieve").await?;
    caller.authorize_action(&app, IMPORTS, "list").await?;
    list::list::<Import, _>(
        &app,
        &request,
        of_importer(&importer.id),
        &Visibility::all(),
        import_view,
    )
    .await
}

/// The import of the route, once the caller may take `action` on it.
async fn authorized_import(
    app: &App,
    caller: &Caller,
    (id, import_id): (&str, &str),
    action: &str,
) -> ApiResult<Import> {
    let importer: Importer = core_objects::authorized(app, caller, id, "retrieve").await?;
    caller.authorize_action(app, IMPORTS, action).await?;
    fetch_by_id(
        &app.db,
        import_id,
        of_importer(&importer.id),
        &Visibility::all(),
    )
    .await
}

async fn read_import(
    Call { app, caller }: Call,
    Path((id, import_id)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<Value>> {
    let import = authorized_import(&app, &caller, (&id, &import_id), "retrieve").await?;
    Ok(list::shaped(&uri, &import_view(import)))
}

async fn destroy_import(
    Call { app, caller }: Call,
    Path((id, import_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let import = authorized_import(&app, &caller, (&id, &import_id), "destroy").await?;
    core_objects::delete_rows(&app, &import.id, &[("imports", "id")]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST imports/ {path | toc, create_repositories?}`: validated as Pulp validates it, then
/// queued in a new task group; `202 {"task_group": href}`.
async fn create_import(
    Call { app, caller }: Call,
    Path(id): Path<String>,
    fields: Fields,
) -> ApiResult<Response> {
    let importer: Importer = core_objects::authorized(&app, &caller, &id, "retrieve").await?;
    caller.authorize_action(&app, IMPORTS, "create").await?;
    let path = fields.opt_str("path")?;
    let toc = fields.opt_str("toc")?;
    let create_repositories = fields.opt_bool("create_repositories")?.unwrap_or(false);
    for (param, value) in [("path", &path), ("toc", &toc)] {
        if let Some(value) = value {
            app.allowed_paths
                .import_file(param, value)
                .map_err(|message| ApiError::field(param, message))?;
        }
    }
    match (&path, &toc) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "Only one of 'path' and 'toc' may be specified.",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "One of 'path' or 'toc' must be specified.",
            ));
        }
        _ => {}
    }
    if create_repositories
        && json_column(&importer.repo_mapping)
            .as_object()
            .is_some_and(|m| !m.is_empty())
    {
        return Err(ApiError::bad_request(
            "The option 'create_repositories' is not compatible with 'repo_mapping'.",
        ));
    }
    let described = path.clone().or_else(|| toc.clone()).unwrap_or_default();
    let group = tasks::create_group(&app.db, &format!("Import of {described}")).await?;
    let request = ImportRequest {
        importer_id: importer.id.clone(),
        path,
        toc,
        create_repositories,
        group_id: group.clone(),
        params: Value::Object(fields.0.clone()),
    };
    tasks::enqueue_in_group(
        &app.db,
        "granary.tasks.importer.pulp_import",
        &TaskArgs::PulpImport(request),
        &[ResourceLock::exclusive(href(&importer.id))],
        Some(&group),
    )
    .await?;
    app.task_wakeup.notify_waiters();
    let accepted = serde_json::json!({ "task_group": super::task_groups::href(&group) });
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// The evaluation of one proposed parameter of an import (Pulp's `EvaluationSerializer`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Evaluation {
    /// The value evaluated.
    context: String,
    /// Whether it passed.
    is_valid: bool,
    /// What was found wrong (empty when valid).
    messages: Vec<String>,
}

/// `POST import-check/ {path?, toc?, repo_mapping?}`: whether each would do for an import,
/// without importing (Pulp's checks: allowed, exists, is a readable file; the directory of a
/// table of contents writable; a mapping valid JSON).
async fn import_check(Call { app, caller }: Call, fields: Fields) -> ApiResult<Json<Value>> {
    caller
        .authorize_action(&app, IMPORT_CHECK, "create")
        .await?;
    let path = fields.opt_str("path")?;
    let toc = fields.opt_str("toc")?;
    let mapping = fields.opt_str("repo_mapping")?;
    if path.is_none() && toc.is_none() && mapping.is_none() {
        return Err(ApiError::bad_request(
            "One of 'path', 'toc', or 'repo_mapping' must be specified.",
        ));
    }
    let mut answer = serde_json::Map::new();
    for (param, value) in [("toc", toc), ("path", path)] {
        if let Some(value) = value {
            let evaluation = evaluate_file(&app, param, value).await;
            answer.insert(
                param.into(),
                serde_json::to_value(evaluation).unwrap_or_default(),
            );
        }
    }
    if let Some(mapping) = mapping {
        let valid = serde_json::from_str::<Value>(&mapping).is_ok();
        let evaluation = Evaluation {
            context: mapping,
            is_valid: valid,
            messages: if valid {
                Vec::new()
            } else {
                vec!["invalid JSON".into()]
            },
        };
        answer.insert(
            "repo_mapping".into(),
            serde_json::to_value(evaluation).unwrap_or_default(),
        );
    }
    Ok(Json(Value::Object(answer)))
}

/// Pulp's checks of a proposed file: outside the allowed directories nothing else is said
/// (no information about arbitrary paths leaks).
async fn evaluate_file(app: &App, param: &str, value: String) -> Evaluation {
    let mut messages = Vec::new();
    let real = match app.allowed_paths.import_file(param, &value) {
        Ok(real) => real,
        Err(message) => {
            return Evaluation {
                context: value,
                is_valid: false,
                messages: vec![message],
            };
        }
    };
    let dir = real
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    if let Err(error) = tokio::fs::metadata(&dir).await {
        messages.push(error.to_string());
        return Evaluation {
            context: value,
            is_valid: false,
            messages,
        };
    }
    let meta = match tokio::fs::metadata(&real).await {
        Ok(meta) => meta,
        Err(_) => {
            return Evaluation {
                context: value,
                is_valid: false,
                messages: vec![format!("file {} does not exist", real.display())],
            };
        }
    };
    let mut valid = true;
    if !meta.is_file() {
        valid = false;
        messages.push(format!("{} is not a file", real.display()));
    } else if tokio::fs::File::open(&real).await.is_err() {
        valid = false;
        messages.push(format!("{} exists but cannot be read", real.display()));
    }
    if param == "toc" && !writable(&dir) {
        valid = false;
        messages.push(format!(
            "directory {} must allow pulp write-access",
            dir.display()
        ));
    }
    Evaluation {
        context: value,
        is_valid: valid,
        messages,
    }
}

/// Whether this process may write in `dir` (a file created there and removed again).
fn writable(dir: &std::path::Path) -> bool {
    let probe = dir.join(format!(".granary-write-check-{}", new_id()));
    let created = std::fs::File::create(&probe).is_ok();
    let _ = std::fs::remove_file(&probe);
    created
}
