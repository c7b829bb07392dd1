//! `docs/api.json` and `docs/api.yaml`: the OpenAPI 3 document of the REST API, built on each
//! request from [`ENDPOINTS`] and the plugins installed at that moment.
//!
//! The document is shaped the way pulp-glue (and so `pulp-cli`) reads Pulp's:
//! - operationIds `<prefix>_<action>`, the prefix naming the resource and, for plugin resources,
//!   the plugin and type (`repositories_file_file_sync`, `content_file_files_create`);
//! - objects are addressed by href-valued path parameters: the path of an object operation is
//!   `{file_file_repository_href}` or `{file_file_repository_href}sync/`, and a client substitutes
//!   the whole `pulp_href` for it (pulp-glue replaces one parameter and joins the result to its
//!   base URL);
//! - `info.x-pulp-app-versions` names the Pulp API level each app speaks, which pulp-cli checks
//!   its plugin requirements against.
//!
//! Paths that start with a parameter are not valid OpenAPI (paths must start with `/`), so, like
//! Pulp, `?pk_path=1` renders the same operations with id-valued parameters
//! (`/pulp/api/v3/repositories/file/file/{id}/sync/`): that variant is what validators and fuzzers
//! read.
//!
//! [`ENDPOINTS`] names every route by the template its module's `router()` declares; a unit test
//! reads those templates back from the routers' source, so a route added without a row here
//! fails the build's tests.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::support::{RestNames, rest_names};
use crate::state::{App, AppState};

/// The Pulp API level Granary implements, reported for `core` and for every plugin in
/// `info.x-pulp-app-versions`. pulp-cli gates commands and request shapes on these versions
/// (it needs `core>=3.49`; from `core>=3.86` it expects task results inline, from `3.106`
/// distributions' `repository_version`), so this is the level whose shapes the API serves.
pub const PULP_API_VERSION: &str = "3.85.0";

/// An app as `status/` and `info.x-pulp-app-versions` report it: `core` and each plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// `core` or the plugin's name.
    pub name: String,
    /// The Pulp API level it serves ([`PULP_API_VERSION`]). pulp-cli compares `status/`'s
    /// versions with the document's to tell whether its cached copy is current, so both read
    /// this one list.
    pub version: String,
    /// The package that provides it (`granary`, `granary-plugin-file`).
    pub package: String,
    /// That package's own version.
    pub package_version: String,
}

/// `core`, then every loaded plugin.
pub fn components(app: &App) -> Vec<Component> {
    let core = Component {
        name: "core".into(),
        version: PULP_API_VERSION.into(),
        package: "granary".into(),
        package_version: env!("CARGO_PKG_VERSION").into(),
    };
    std::iter::once(core)
        .chain(app.plugins.list().iter().map(|plugin| Component {
            name: plugin.info.name.clone(),
            version: PULP_API_VERSION.into(),
            package: format!("granary-plugin-{}", plugin.info.name),
            package_version: plugin.info.version.clone(),
        }))
        .collect()
}

/// Routes (public, as Pulp's).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pulp/api/v3/docs/api.json", get(api_json))
        .route("/pulp/api/v3/docs/api.yaml", get(api_yaml))
}

fn path_style(query: &HashMap<String, String>) -> PathStyle {
    match query.get("pk_path").map(String::as_str) {
        Some("1" | "true") => PathStyle::Id,
        _ => PathStyle::Href,
    }
}

async fn api_json(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    Json(document(&app, path_style(&query)))
}

async fn api_yaml(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let yaml = to_yaml(&document(&app, path_style(&query)));
    ([(CONTENT_TYPE, "application/yaml")], yaml).into_response()
}

/// How object operations name their object in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStyle {
    /// `{file_file_repository_href}sync/`: what pulp-glue expects.
    Href,
    /// `/pulp/api/v3/repositories/file/file/{id}/sync/`: valid OpenAPI paths.
    Id,
}

/// What an endpoint operates on. Plugin resources are expanded for every installed plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `repositories/<plugin>/<repository>/`
    Repository,
    /// `<repository>/versions/<n>/`
    RepositoryVersion,
    /// `remotes/<plugin>/<remote>/`
    Remote,
    /// `publications/<plugin>/<publication>/`
    Publication,
    /// `distributions/<plugin>/<distribution>/`
    Distribution,
    /// `content/<plugin>/<endpoint>/`, one per content type.
    Content,
    /// `artifacts/`
    Artifact,
    /// `tasks/`
    Task,
    /// `repositories/`: every repository, whatever its type.
    AllRepositories,
    /// `repository_versions/`
    AllRepositoryVersions,
    /// `remotes/`
    AllRemotes,
    /// `content/`
    AllContent,
    /// `publications/`
    AllPublications,
    /// `distributions/`
    AllDistributions,
    /// `uploads/` (chunked uploads)
    Upload,
    /// `users/`
    User,
    /// `users/<id>/tokens/` (Granary's API tokens)
    UserToken,
    /// `orphans/cleanup/`
    OrphansCleanup,
    /// `repositories/reclaim_space/`
    ReclaimSpace,
    /// `repair/`
    Repair,
    /// `plugins/` (Granary's own: installed WebAssembly content types)
    Plugin,
    /// `status/`
    Status,
    /// `livez/`
    Livez,
}

/// HTTP methods, in the spelling OpenAPI uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The lower-case name OpenAPI keys operations by.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
            Method::Patch => "patch",
            Method::Delete => "delete",
        }
    }
}

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/json`
    Json,
    /// `multipart/form-data` (file uploads)
    Multipart,
}

/// The request body of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body.
    None,
    /// The resource's writable fields, the required ones required.
    Object(Media),
    /// Any subset of the resource's writable fields.
    Patch,
    /// A schema of [`core_schemas`].
    Named(&'static str, Media),
}

/// The successful answer of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The resource's object, with this status.
    Object(u16),
    /// A page `{count, next, previous, results}` of the resource's objects.
    Page,
    /// `202 {"task": href}`.
    Task,
    /// `204`, no body.
    Empty,
    /// A schema of [`core_schemas`], with this status.
    Named(u16, &'static str),
}

/// One REST operation.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// The route template, exactly as the module's `router()` declares it.
    pub route: &'static str,
    /// Its method.
    pub method: Method,
    /// What it operates on.
    pub resource: Resource,
    /// The operationId's last part: `list`, `create`, `read`, `update`, `partial_update`,
    /// `delete`, or the action's name.
    pub action: &'static str,
    /// One line for humans.
    pub summary: &'static str,
    /// Its request body.
    pub body: Body,
    /// Its answer.
    pub reply: Reply,
    /// A required request header (`Content-Range` of an upload's chunk).
    pub header: Option<&'static str>,
}

impl Endpoint {
    /// The same endpoint, requiring request header `name`.
    const fn with_header(self, name: &'static str) -> Endpoint {
        Endpoint {
            header: Some(name),
            ..self
        }
    }
}

const fn endpoint(
    route: &'static str,
    method: Method,
    resource: Resource,
    action: &'static str,
    summary: &'static str,
    body: Body,
    reply: Reply,
) -> Endpoint {
    Endpoint {
        route,
        method,
        resource,
        action,
        summary,
        body,
        reply,
        header: None,
    }
}

use Method::{Delete, Get, Patch, Post, Put};
use Resource as R;

const REPOSITORIES: &str = "/pulp/api/v3/repositories/{plugin}/{type}/";
const REPOSITORY: &str = "/pulp/api/v3/repositories/{plugin}/{type}/{id}/";
const REMOTES: &str = "/pulp/api/v3/remotes/{plugin}/{type}/";
const REMOTE: &str = "/pulp/api/v3/remotes/{plugin}/{type}/{id}/";
const PUBLICATIONS: &str = "/pulp/api/v3/publications/{plugin}/{type}/";
const PUBLICATION: &str = "/pulp/api/v3/publications/{plugin}/{type}/{id}/";
const DISTRIBUTIONS: &str = "/pulp/api/v3/distributions/{plugin}/{type}/";
const DISTRIBUTION: &str = "/pulp/api/v3/distributions/{plugin}/{type}/{id}/";
const CONTENTS: &str = "/pulp/api/v3/content/{plugin}/{plural}/";
const CONTENT: &str = "/pulp/api/v3/content/{plugin}/{plural}/{id}/";

/// Every REST route, as the routers serve it.
#[rustfmt::skip]
pub const ENDPOINTS: &[Endpoint] = &[
    // Repositories, their versions, sync and modify.
    endpoint(REPOSITORIES, Get, R::Repository, "list", "List repositories", Body::None, Reply::Page),
    endpoint(REPOSITORIES, Post, R::Repository, "create", "Create a repository", Body::Object(Media::Json), Reply::Object(201)),
    endpoint(REPOSITORY, Get, R::Repository, "read", "Inspect a repository", Body::None, Reply::Object(200)),
    endpoint(REPOSITORY, Put, R::Repository, "update", "Update a repository (a task)", Body::Object(Media::Json), Reply::Task),
    endpoint(REPOSITORY, Patch, R::Repository, "partial_update", "Update some fields of a repository (a task)", Body::Patch, Reply::Task),
    endpoint(REPOSITORY, Delete, R::Repository, "delete", "Delete a repository (a task)", Body::None, Reply::Task),
    endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/set_label/", Post, R::Repository, "set_label", "Set one label", Body::Named("SetLabel", Media::Json), Reply::Named(201, "SetLabelResponse")),
    endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/unset_label/", Post, R::Repository, "unset_label", "Remove one label", Body::Named("UnsetLabel", Media::Json), Reply::Named(201, "SetLabelResponse")),
    endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/sync/", Post, R::Repository, "sync", "Sync a repository from a remote (a task)", Body::Named("RepositorySyncURL", Media::Json), Reply::Task),
    endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/modify/", Post, R::Repository, "modify", "Add and remove content units (a task)", Body::Named("RepositoryAddRemoveContent", Media::Json), Reply::Task),
    endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/versions/", Get, R::RepositoryVersion, "list", "List the versions of a repository", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/versions/{number}/", Get, R::RepositoryVersion, "read", "Inspect a repository version", Body::None, Reply::Object(200)),
    // Remotes.
    endpoint(REMOTES, Get, R::Remote, "list", "List remotes", Body::None, Reply::Page),
    endpoint(REMOTES, Post, R::Remote, "create", "Create a remote", Body::Object(Media::Json), Reply::Object(201)),
    endpoint(REMOTE, Get, R::Remote, "read", "Inspect a remote", Body::None, Reply::Object(200)),
    endpoint(REMOTE, Put, R::Remote, "update", "Update a remote (a task)", Body::Object(Media::Json), Reply::Task),
    endpoint(REMOTE, Patch, R::Remote, "partial_update", "Update some fields of a remote (a task)", Body::Patch, Reply::Task),
    endpoint(REMOTE, Delete, R::Remote, "delete", "Delete a remote (a task)", Body::None, Reply::Task),
    endpoint("/pulp/api/v3/remotes/{plugin}/{type}/{id}/set_label/", Post, R::Remote, "set_label", "Set one label", Body::Named("SetLabel", Media::Json), Reply::Named(201, "SetLabelResponse")),
    endpoint("/pulp/api/v3/remotes/{plugin}/{type}/{id}/unset_label/", Post, R::Remote, "unset_label", "Remove one label", Body::Named("UnsetLabel", Media::Json), Reply::Named(201, "SetLabelResponse")),
    // Content.
    endpoint(CONTENTS, Get, R::Content, "list", "List content units", Body::None, Reply::Page),
    endpoint(CONTENTS, Post, R::Content, "create", "Create a content unit from a file or an artifact (a task)", Body::Object(Media::Multipart), Reply::Task),
    endpoint(CONTENT, Get, R::Content, "read", "Inspect a content unit", Body::None, Reply::Object(200)),
    // Publications.
    endpoint(PUBLICATIONS, Get, R::Publication, "list", "List publications", Body::None, Reply::Page),
    endpoint(PUBLICATIONS, Post, R::Publication, "create", "Publish a repository version (a task)", Body::Object(Media::Json), Reply::Task),
    endpoint(PUBLICATION, Get, R::Publication, "read", "Inspect a publication", Body::None, Reply::Object(200)),
    endpoint(PUBLICATION, Delete, R::Publication, "delete", "Delete a publication (a task)", Body::None, Reply::Task),
    // Distributions.
    endpoint(DISTRIBUTIONS, Get, R::Distribution, "list", "List distributions", Body::None, Reply::Page),
    endpoint(DISTRIBUTIONS, Post, R::Distribution, "create", "Create a distribution (a task)", Body::Object(Media::Json), Reply::Task),
    endpoint(DISTRIBUTION, Get, R::Distribution, "read", "Inspect a distribution", Body::None, Reply::Object(200)),
    endpoint(DISTRIBUTION, Put, R::Distribution, "update", "Update a distribution (a task)", Body::Object(Media::Json), Reply::Task),
    endpoint(DISTRIBUTION, Patch, R::Distribution, "partial_update", "Update some fields of a distribution (a task)", Body::Patch, Reply::Task),
    endpoint(DISTRIBUTION, Delete, R::Distribution, "delete", "Delete a distribution (a task)", Body::None, Reply::Task),
    endpoint("/pulp/api/v3/distributions/{plugin}/{type}/{id}/set_label/", Post, R::Distribution, "set_label", "Set one label", Body::Named("SetLabel", Media::Json), Reply::Named(201, "SetLabelResponse")),
    endpoint("/pulp/api/v3/distributions/{plugin}/{type}/{id}/unset_label/", Post, R::Distribution, "unset_label", "Remove one label", Body::Named("UnsetLabel", Media::Json), Reply::Named(201, "SetLabelResponse")),
    // Every object of a kind, whatever its plugin.
    endpoint("/pulp/api/v3/repositories/", Get, R::AllRepositories, "list", "List repositories of every type", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/repository_versions/", Get, R::AllRepositoryVersions, "list", "List versions of every repository", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/remotes/", Get, R::AllRemotes, "list", "List remotes of every type", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/content/", Get, R::AllContent, "list", "List content of every type", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/publications/", Get, R::AllPublications, "list", "List publications of every type", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/distributions/", Get, R::AllDistributions, "list", "List distributions of every type", Body::None, Reply::Page),
    // Artifacts.
    endpoint("/pulp/api/v3/artifacts/", Get, R::Artifact, "list", "List artifacts", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/artifacts/", Post, R::Artifact, "create", "Upload an artifact", Body::Object(Media::Multipart), Reply::Object(201)),
    endpoint("/pulp/api/v3/artifacts/{id}/", Get, R::Artifact, "read", "Inspect an artifact", Body::None, Reply::Object(200)),
    endpoint("/pulp/api/v3/artifacts/{id}/", Delete, R::Artifact, "delete", "Delete an artifact no content refers to", Body::None, Reply::Empty),
    endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/versions/{number}/", Delete, R::RepositoryVersion, "delete", "Delete a version, its changes squashed into the next (a task)", Body::None, Reply::Task),
    endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/versions/{number}/repair/", Post, R::RepositoryVersion, "repair", "Check a version's artifacts and fetch or drop broken ones (a task)", Body::Named("Repair", Media::Json), Reply::Task),
    // Chunked uploads.
    endpoint("/pulp/api/v3/uploads/", Get, R::Upload, "list", "List uploads", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/uploads/", Post, R::Upload, "create", "Start a chunked upload of `size` bytes", Body::Object(Media::Json), Reply::Object(201)),
    endpoint("/pulp/api/v3/uploads/{id}/", Get, R::Upload, "read", "Inspect an upload and its chunks", Body::None, Reply::Object(200)),
    endpoint("/pulp/api/v3/uploads/{id}/", Put, R::Upload, "update", "Upload a chunk (Content-Range: bytes START-END/SIZE)", Body::Named("UploadChunk", Media::Multipart), Reply::Object(200)).with_header("Content-Range"),
    endpoint("/pulp/api/v3/uploads/{id}/", Delete, R::Upload, "delete", "Delete an upload", Body::None, Reply::Empty),
    endpoint("/pulp/api/v3/uploads/{id}/commit/", Post, R::Upload, "commit", "Assemble the chunks into an artifact (a task)", Body::Named("UploadCommit", Media::Json), Reply::Task),
    // Maintenance.
    endpoint("/pulp/api/v3/orphans/cleanup/", Post, R::OrphansCleanup, "cleanup", "Delete content and artifacts no repository version holds (a task)", Body::Named("OrphansCleanup", Media::Json), Reply::Task),
    endpoint("/pulp/api/v3/repositories/reclaim_space/", Post, R::ReclaimSpace, "reclaim", "Drop the stored bytes of content only old versions hold (a task)", Body::Named("ReclaimSpace", Media::Json), Reply::Task),
    endpoint("/pulp/api/v3/repair/", Post, R::Repair, "post", "Check every artifact and fetch or drop broken ones (a task)", Body::Named("Repair", Media::Json), Reply::Task),
    // Users and their API tokens.
    endpoint("/pulp/api/v3/users/", Get, R::User, "list", "List users", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/users/", Post, R::User, "create", "Create a user", Body::Object(Media::Json), Reply::Object(201)),
    endpoint("/pulp/api/v3/users/{id}/", Get, R::User, "read", "Inspect a user", Body::None, Reply::Object(200)),
    endpoint("/pulp/api/v3/users/{id}/", Put, R::User, "update", "Update a user", Body::Object(Media::Json), Reply::Object(200)),
    endpoint("/pulp/api/v3/users/{id}/", Patch, R::User, "partial_update", "Update some fields of a user", Body::Patch, Reply::Object(200)),
    endpoint("/pulp/api/v3/users/{id}/", Delete, R::User, "delete", "Delete a user", Body::None, Reply::Empty),
    endpoint("/pulp/api/v3/users/{id}/tokens/", Get, R::UserToken, "list", "List a user's API tokens", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/users/{id}/tokens/", Post, R::UserToken, "create", "Create an API token; the answer holds its secret, once", Body::Object(Media::Json), Reply::Object(201)),
    endpoint("/pulp/api/v3/users/{id}/tokens/{token}/", Get, R::UserToken, "read", "Inspect an API token", Body::None, Reply::Object(200)),
    endpoint("/pulp/api/v3/users/{id}/tokens/{token}/", Delete, R::UserToken, "delete", "Revoke an API token", Body::None, Reply::Empty),
    // Tasks.
    endpoint("/pulp/api/v3/tasks/", Get, R::Task, "list", "List tasks", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/tasks/{id}/", Get, R::Task, "read", "Inspect a task", Body::None, Reply::Object(200)),
    endpoint("/pulp/api/v3/tasks/{id}/", Patch, R::Task, "cancel", "Cancel a task", Body::Named("PatchedTaskCancel", Media::Json), Reply::Object(200)),
    endpoint("/pulp/api/v3/tasks/{id}/", Delete, R::Task, "delete", "Delete a finished task", Body::None, Reply::Empty),
    // Plugins (WebAssembly content types).
    endpoint("/pulp/api/v3/plugins/", Get, R::Plugin, "list", "List plugins", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/plugins/", Post, R::Plugin, "create", "Install or upgrade a plugin component", Body::Object(Media::Multipart), Reply::Object(201)),
    endpoint("/pulp/api/v3/plugins/{name}/", Get, R::Plugin, "read", "Inspect a plugin", Body::None, Reply::Object(200)),
    endpoint("/pulp/api/v3/plugins/{name}/", Patch, R::Plugin, "partial_update", "Enable or disable a plugin", Body::Named("PatchedPlugin", Media::Json), Reply::Object(200)),
    endpoint("/pulp/api/v3/plugins/{name}/", Delete, R::Plugin, "delete", "Remove an installed plugin", Body::None, Reply::Empty),
    // Health.
    endpoint("/pulp/api/v3/status/", Get, R::Status, "read", "Versions, workers, database and storage health", Body::None, Reply::Named(200, "StatusResponse")),
    endpoint("/pulp/api/v3/livez/", Get, R::Livez, "read", "Whether the server answers", Body::None, Reply::Empty),
];

/// Routes that are not operations of the document: the document itself.
pub const UNDOCUMENTED_ROUTES: &[&str] =
    &["/pulp/api/v3/docs/api.json", "/pulp/api/v3/docs/api.yaml"];

/// One expansion of a resource: the names its operations, parameters and schemas take.
struct Names {
    /// operationId prefix: `repositories_file_file`, `tasks`.
    prefix: String,
    /// The href-valued path parameter: `file_file_repository_href`, `task_href`.
    href_param: String,
    /// For objects inside another (repository versions), the parent's href parameter, which
    /// addresses their collection: `{file_file_repository_href}versions/`.
    parent_href_param: Option<String>,
    /// Base name of its schemas: `file.FileRepository`, `Task`.
    schema: String,
    /// Values of the route's placeholders other than the object's id (`plugin`, `type`).
    route_values: Vec<(&'static str, String)>,
    /// The plugin, for plugin resources.
    plugin: Option<String>,
}

fn capitalized(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The expansions of `resource`: one per installed plugin (per content type for content), or one
/// for a core resource.
fn expansions(resource: Resource, plugins: &[RestNames]) -> Vec<Names> {
    let core = |prefix: &str, href: &str, schema: &str| {
        vec![Names {
            prefix: prefix.into(),
            href_param: href.into(),
            parent_href_param: None,
            schema: schema.into(),
            route_values: Vec::new(),
            plugin: None,
        }]
    };
    let typed = |collection: &str, kind: &str, name: fn(&RestNames) -> &String| {
        plugins
            .iter()
            .map(|names| {
                let (plugin, type_name) = (&names.plugin, name(names));
                Names {
                    prefix: format!("{collection}_{plugin}_{type_name}"),
                    href_param: format!("{plugin}_{type_name}_{kind}_href"),
                    parent_href_param: None,
                    schema: format!("{plugin}.{}{}", capitalized(type_name), capitalized(kind)),
                    route_values: vec![("plugin", plugin.clone()), ("type", type_name.clone())],
                    plugin: Some(plugin.clone()),
                }
            })
            .collect()
    };
    match resource {
        R::Repository => typed("repositories", "repository", |n| &n.repository),
        R::RepositoryVersion => plugins
            .iter()
            .map(|names| {
                let (plugin, type_name) = (&names.plugin, &names.repository);
                Names {
                    prefix: format!("repositories_{plugin}_{type_name}_versions"),
                    href_param: format!("{plugin}_{type_name}_repository_version_href"),
                    parent_href_param: Some(format!("{plugin}_{type_name}_repository_href")),
                    schema: format!("{plugin}.{}RepositoryVersion", capitalized(type_name)),
                    route_values: vec![("plugin", plugin.clone()), ("type", type_name.clone())],
                    plugin: Some(plugin.clone()),
                }
            })
            .collect(),
        R::Remote => typed("remotes", "remote", |n| &n.remote),
        R::Publication => typed("publications", "publication", |n| &n.publication),
        R::Distribution => typed("distributions", "distribution", |n| &n.distribution),
        R::Content => plugins
            .iter()
            .flat_map(|names| {
                names.content.iter().map(|content| {
                    let plugin = &names.plugin;
                    Names {
                        prefix: format!("content_{plugin}_{}", content.endpoint),
                        href_param: format!("{plugin}_{}_content_href", content.type_name),
                        parent_href_param: None,
                        schema: format!("{plugin}.{}", capitalized(&content.type_name)),
                        route_values: vec![
                            ("plugin", plugin.clone()),
                            ("plural", content.endpoint.clone()),
                        ],
                        plugin: Some(plugin.clone()),
                    }
                })
            })
            .collect(),
        R::Artifact => core("artifacts", "artifact_href", "Artifact"),
        R::Task => core("tasks", "task_href", "Task"),
        R::AllRepositories => core("repositories", "", "Repository"),
        R::AllRepositoryVersions => core("repository_versions", "", "RepositoryVersion"),
        R::AllRemotes => core("remotes", "", "Remote"),
        R::AllContent => core("content", "", "Content"),
        R::AllPublications => core("publications", "", "Publication"),
        R::AllDistributions => core("distributions", "", "Distribution"),
        R::Upload => core("uploads", "upload_href", "Upload"),
        R::User => core("users", "auth_user_href", "User"),
        R::UserToken => vec![Names {
            prefix: "users_tokens".into(),
            href_param: "auth_users_token_href".into(),
            parent_href_param: Some("auth_user_href".into()),
            schema: "UserToken".into(),
            route_values: Vec::new(),
            plugin: None,
        }],
        R::OrphansCleanup => core("orphans_cleanup", "", "OrphansCleanup"),
        R::ReclaimSpace => core("repositories_reclaim_space", "", "ReclaimSpace"),
        R::Repair => core("repair", "", "Repair"),
        R::Plugin => core("plugins", "plugin_href", "Plugin"),
        R::Status => core("status", "", "Status"),
        R::Livez => core("livez", "", "Livez"),
    }
}

/// The OpenAPI document of the REST API as served by `app` now.
pub fn document(app: &App, style: PathStyle) -> Value {
    let plugins: Vec<RestNames> = app
        .plugins
        .list()
        .iter()
        .filter_map(|plugin| rest_names(&plugin.info))
        .collect();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut schemas = core_schemas();
    for endpoint in ENDPOINTS {
        for names in expansions(endpoint.resource, &plugins) {
            let (path, parameters) = path_of(endpoint, &names, style);
            let operation = operation(endpoint, &names, parameters);
            paths
                .entry(path)
                .or_default()
                .insert(endpoint.method.as_str().into(), operation);
            for (name, schema) in resource_schemas(endpoint.resource, &names) {
                schemas.insert(name, schema);
            }
        }
    }
    let mut versions = Map::new();
    let mut package_versions = Map::new();
    for component in components(app) {
        versions.insert(component.name.clone(), json!(component.version));
        package_versions.insert(component.name, json!(component.package_version));
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Granary API",
            "description": "Granary's REST API, shaped like Pulp 3's. Generated from the installed plugins.",
            "version": env!("CARGO_PKG_VERSION"),
            "x-pulp-app-versions": versions,
            "x-granary-package-versions": package_versions,
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "basicAuth": { "type": "http", "scheme": "basic" } },
        },
        "security": [{ "basicAuth": [] }],
    })
}

/// The document path of `endpoint` for one expansion, and its path parameters.
fn path_of(endpoint: &Endpoint, names: &Names, style: PathStyle) -> (String, Vec<Value>) {
    let mut route = endpoint.route.to_string();
    for (placeholder, value) in &names.route_values {
        route = route.replace(&format!("{{{placeholder}}}"), value);
    }
    let object_params = ["{id}", "{number}", "{name}", "{token}"];
    let last = object_params
        .iter()
        .filter_map(|param| route.find(param).map(|at| (at, *param)))
        .max();
    let Some((at, param)) = last else {
        return (route, Vec::new());
    };
    match style {
        PathStyle::Href => {
            let rest = &route[at + param.len() + 1..];
            // An object's own id is the last placeholder of its path; a collection inside a
            // parent (`…/{id}/versions/`) ends at the parent's.
            let href = match &names.parent_href_param {
                Some(parent) if param == "{id}" => parent,
                _ => &names.href_param,
            };
            (
                format!("{{{href}}}{rest}"),
                vec![json!({
                    "name": href, "in": "path", "required": true,
                    "description": "The object's pulp_href.",
                    "schema": { "type": "string" },
                })],
            )
        }
        PathStyle::Id => {
            let parameters = object_params
                .iter()
                .filter(|param| route.contains(*param))
                .map(|param| {
                    let name = param.trim_matches(|c| c == '{' || c == '}');
                    let schema = match name {
                        "id" => json!({ "type": "string", "format": "uuid" }),
                        "number" => json!({ "type": "integer", "minimum": 0 }),
                        "token" => json!({ "type": "string", "format": "uuid" }),
                        _ => json!({ "type": "string" }),
                    };
                    json!({ "name": name, "in": "path", "required": true, "schema": schema })
                })
                .collect();
            (route, parameters)
        }
    }
}

fn operation(endpoint: &Endpoint, names: &Names, mut parameters: Vec<Value>) -> Value {
    if endpoint.action == "list" {
        parameters.extend(list_parameters(endpoint.resource));
    }
    if let Some(header) = endpoint.header {
        parameters.push(json!({
            "name": header, "in": "header", "required": true, "schema": { "type": "string" },
        }));
    }
    let mut operation = json!({
        "operationId": format!("{}_{}", names.prefix, endpoint.action),
        "summary": endpoint.summary,
        "tags": [tag(endpoint.resource, names)],
        "parameters": parameters,
        "responses": responses(endpoint, names),
    });
    if matches!(endpoint.resource, R::Status | R::Livez) {
        operation["security"] = json!([{}]);
    }
    let body = match endpoint.body {
        Body::None => None,
        Body::Object(media) => Some((names.schema.clone(), media)),
        Body::Patch => Some((format!("Patched{}", names.schema), Media::Json)),
        Body::Named(name, media) => Some((name.to_string(), media)),
    };
    if let Some((schema, media)) = body {
        let media = match media {
            Media::Json => "application/json",
            Media::Multipart => "multipart/form-data",
        };
        let required = endpoint.body != Body::Patch;
        operation["requestBody"] = json!({
            "required": required,
            "content": { media: { "schema": reference(&schema) } },
        });
    }
    operation
}

fn tag(resource: Resource, names: &Names) -> String {
    let kind = match resource {
        R::Repository | R::RepositoryVersion => "Repositories",
        R::Remote => "Remotes",
        R::Publication => "Publications",
        R::Distribution => "Distributions",
        R::Content => "Content",
        R::Artifact => return "Artifacts".into(),
        R::Task => return "Tasks".into(),
        R::AllRepositories | R::AllRepositoryVersions => return "Repositories".into(),
        R::AllRemotes => return "Remotes".into(),
        R::AllContent => return "Content".into(),
        R::AllPublications => return "Publications".into(),
        R::AllDistributions => return "Distributions".into(),
        R::Upload => return "Uploads".into(),
        R::User | R::UserToken => return "Users".into(),
        R::OrphansCleanup | R::ReclaimSpace | R::Repair => return "Maintenance".into(),
        R::Plugin => return "Plugins".into(),
        R::Status | R::Livez => return "Status".into(),
    };
    format!("{kind}: {}", names.plugin.as_deref().unwrap_or_default())
}

fn reference(schema: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{schema}") })
}

fn json_content(schema: &str) -> Value {
    json!({ "application/json": { "schema": reference(schema) } })
}

fn responses(endpoint: &Endpoint, names: &Names) -> Value {
    let response = |status: u16, description: &str, schema: Option<String>| {
        let mut response = json!({ "description": description });
        if let Some(schema) = schema {
            response["content"] = json_content(&schema);
        }
        json!({ status.to_string(): response })
    };
    let success = match endpoint.reply {
        Reply::Object(status) => response(
            status,
            "The object.",
            Some(format!("{}Response", names.schema)),
        ),
        Reply::Page => response(
            200,
            "A page of objects.",
            Some(format!("Paginated{}ResponseList", names.schema)),
        ),
        Reply::Task => response(
            202,
            "The task doing the work.",
            Some("AsyncOperationResponse".into()),
        ),
        Reply::Empty => {
            let status = if endpoint.resource == R::Livez {
                200
            } else {
                204
            };
            response(status, "Done.", None)
        }
        Reply::Named(status, schema) => response(status, "The result.", Some(schema.into())),
    };
    let mut responses = success.as_object().cloned().unwrap_or_default();
    // Errors share one envelope: `{"field": ["message"]}` for 400, `{"detail": "…"}` otherwise.
    let mut error = |status: u16, description: &str| {
        responses.insert(
            status.to_string(),
            json!({ "description": description, "content": json_content("ErrorResponse") }),
        );
    };
    if endpoint.body != Body::None || endpoint.action == "list" {
        error(400, "The request is invalid; each field names its problem.");
    }
    if !matches!(endpoint.resource, R::Status | R::Livez) {
        error(401, "Credentials are missing or wrong.");
        error(403, "The user may not do this.");
    }
    if endpoint.route.contains('{') && names.route_values.len() < count_placeholders(endpoint) {
        error(404, "The object does not exist.");
    }
    Value::Object(responses)
}

/// How many `{…}` placeholders the endpoint's route has.
fn count_placeholders(endpoint: &Endpoint) -> usize {
    endpoint.route.matches('{').count()
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn string() -> Value {
    json!({ "type": "string" })
}

/// The query parameters a list of `resource` accepts.
fn list_parameters(resource: Resource) -> Vec<Value> {
    let mut parameters = vec![
        query(
            "limit",
            json!({ "type": "integer", "minimum": 1 }),
            "Number of results to return per page.",
        ),
        query(
            "offset",
            json!({ "type": "integer", "minimum": 0 }),
            "The initial index from which to return the results.",
        ),
        json!({
            "name": "ordering", "in": "query", "required": false,
            "description": "Fields to order by, `-` first for descending; comma-separated.",
            "schema": { "type": "array", "items": string() },
            "style": "form", "explode": false,
        }),
        query(
            "fields",
            json!({ "type": "array", "items": string() }),
            "Only these fields of each result.",
        ),
        query(
            "exclude_fields",
            json!({ "type": "array", "items": string() }),
            "All fields of each result but these.",
        ),
    ];
    let string_list = || json!({ "type": "array", "items": string() });
    let named = matches!(
        resource,
        R::Repository
            | R::Remote
            | R::Distribution
            | R::AllRepositories
            | R::AllRemotes
            | R::AllDistributions
    );
    if named || resource == R::Task {
        parameters.push(query("name", string(), "Filter by exact name."));
    }
    if !matches!(
        resource,
        R::Task | R::Upload | R::User | R::UserToken | R::Plugin | R::Artifact
    ) {
        parameters.push(query(
            "pulp_href__in",
            string_list(),
            "Only these objects (hrefs).",
        ));
        parameters.push(query(
            "prn__in",
            string_list(),
            "Only these objects (PRNs).",
        ));
    }
    if named {
        parameters.push(query(
            "pulp_label_select",
            string(),
            "Label conditions, e.g. `env=prod,!legacy`.",
        ));
        parameters.push(query(
            "name__in",
            string_list(),
            "Filter by any of these names.",
        ));
        parameters.push(query(
            "name__iexact",
            string(),
            "Filter by name, ignoring case.",
        ));
    }
    if named {
        parameters.extend([
            query(
                "name__contains",
                string(),
                "Filter by name containing this.",
            ),
            query(
                "name__icontains",
                string(),
                "Filter by name containing this, ignoring case.",
            ),
            query(
                "name__startswith",
                string(),
                "Filter by name starting with this.",
            ),
        ]);
    }
    match resource {
        R::Repository | R::AllRepositories => {
            parameters.push(query(
                "remote",
                string(),
                "Repositories syncing from this remote (an href).",
            ));
            parameters.push(query(
                "content",
                string(),
                "Repositories whose latest version holds this content (an href).",
            ));
            parameters.push(query(
                "content__in",
                string_list(),
                "Repositories whose latest version holds any of this content.",
            ));
        }
        R::RepositoryVersion | R::AllRepositoryVersions => {
            for (name, description) in [
                ("number", "Filter by number."),
                ("number__gt", "Numbers greater than this."),
                ("number__gte", "Numbers at least this."),
                ("number__lt", "Numbers less than this."),
                ("number__lte", "Numbers at most this."),
            ] {
                parameters.push(query(name, json!({ "type": "integer" }), description));
            }
            parameters.push(query(
                "content",
                string(),
                "Versions holding this content (an href).",
            ));
            parameters.push(query(
                "content__in",
                string_list(),
                "Versions holding any of this content.",
            ));
        }
        R::Remote | R::AllRemotes => {
            parameters.push(query(
                "policy",
                json!({ "type": "string", "enum": ["immediate", "on_demand", "streamed"] }),
                "Filter by download policy.",
            ));
        }
        R::Publication | R::AllPublications => {
            parameters.push(query(
                "repository",
                string(),
                "Publications of this repository (an href).",
            ));
            parameters.push(query(
                "repository_version",
                string(),
                "Publications of this version (an href).",
            ));
        }
        R::Distribution | R::AllDistributions => {
            parameters.push(query("base_path", string(), "Filter by base path."));
            parameters.push(query(
                "base_path__contains",
                string(),
                "Base paths containing this.",
            ));
            parameters.push(query(
                "base_path__icontains",
                string(),
                "Base paths containing this, ignoring case.",
            ));
            parameters.push(query(
                "base_path__in",
                string_list(),
                "Any of these base paths.",
            ));
            parameters.push(query(
                "repository",
                string(),
                "Distributions of this repository (an href).",
            ));
        }
        R::Content => {
            for (name, description) in [
                (
                    "repository_version",
                    "Content in this repository version (an href).",
                ),
                (
                    "repository_version_added",
                    "Content added in this repository version (an href).",
                ),
                (
                    "repository_version_removed",
                    "Content removed in this repository version (an href).",
                ),
                ("relative_path", "Filter by relative path."),
                ("sha256", "Filter by the sha256 of an artifact."),
            ] {
                parameters.push(query(name, string(), description));
            }
        }
        R::Task => {
            let states = json!({ "type": "string", "enum": ["waiting", "skipped", "running", "completed", "failed", "canceled", "canceling"] });
            parameters.extend([
                query("state", states.clone(), "Filter by state."),
                query(
                    "state__in",
                    json!({ "type": "array", "items": states }),
                    "Filter by any of these states.",
                ),
                query("worker", string(), "Filter by worker name."),
                query("name__in", string_list(), "Filter by any of these names."),
                query("logging_cid", string(), "Filter by correlation id."),
                query(
                    "reserved_resources_record",
                    string_list(),
                    "Tasks that reserved these resources.",
                ),
                query(
                    "name__contains",
                    string(),
                    "Filter by name containing this.",
                ),
                query(
                    "logging_cid__contains",
                    string(),
                    "Filter by correlation id.",
                ),
                query(
                    "task_group",
                    string(),
                    "Tasks of this task group (an href).",
                ),
                query("parent_task", string(), "Children of this task (an href)."),
                query("started_at__gte", date_time(), "Started at or after."),
                query("started_at__lte", date_time(), "Started at or before."),
                query("finished_at__gte", date_time(), "Finished at or after."),
                query("finished_at__lte", date_time(), "Finished at or before."),
                query(
                    "created_resources",
                    string(),
                    "Tasks that created this object (an href).",
                ),
            ]);
            for kind in ["reserved", "exclusive", "shared"] {
                let name = format!("{kind}_resources");
                parameters.push(query(
                    &name,
                    string(),
                    "Tasks holding this resource (an href).",
                ));
                parameters.push(query(
                    &format!("{name}__in"),
                    json!({ "type": "array", "items": string() }),
                    "Tasks holding any of these resources (hrefs).",
                ));
            }
            // Comma-separated, as Pulp's `__in` filters.
            for parameter in &mut parameters {
                if parameter["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("__in"))
                {
                    parameter["style"] = json!("form");
                    parameter["explode"] = json!(false);
                }
            }
        }
        _ => {}
    }
    parameters
}

/// A field of a resource.
struct Field {
    name: &'static str,
    schema: Value,
    required: bool,
    access: Access,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    ReadOnly,
    WriteOnly,
}

fn field(name: &'static str, schema: Value, required: bool, access: Access) -> Field {
    Field {
        name,
        schema,
        required,
        access,
    }
}

fn nullable(mut schema: Value) -> Value {
    schema["nullable"] = json!(true);
    schema
}

fn href() -> Value {
    json!({ "type": "string", "format": "uri" })
}

/// A timeout in seconds (fractions allowed), or null for the default.
fn seconds() -> Value {
    nullable(json!({ "type": "number", "minimum": 0 }))
}

fn date_time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

fn labels() -> Value {
    json!({ "type": "object", "additionalProperties": { "type": "string" } })
}

/// `pulp_href`, `prn`, `pulp_created`, `pulp_last_updated`: every object's identity.
fn identity() -> Vec<Field> {
    vec![
        field("pulp_href", href(), false, Access::ReadOnly),
        field("prn", string(), false, Access::ReadOnly),
        field("pulp_created", date_time(), false, Access::ReadOnly),
        field("pulp_last_updated", date_time(), false, Access::ReadOnly),
    ]
}

fn fields(resource: Resource) -> Vec<Field> {
    use Access::{ReadOnly, ReadWrite, WriteOnly};
    let mut own = identity();
    let more = match resource {
        R::Repository => vec![
            field("name", string(), true, ReadWrite),
            field("description", nullable(string()), false, ReadWrite),
            field(
                "retain_repo_versions",
                nullable(json!({ "type": "integer", "minimum": 1 })),
                false,
                ReadWrite,
            ),
            field("remote", nullable(href()), false, ReadWrite),
            field("pulp_labels", labels(), false, ReadWrite),
            field("versions_href", href(), false, ReadOnly),
            field("latest_version_href", href(), false, ReadOnly),
        ],
        R::RepositoryVersion => vec![
            field("number", json!({ "type": "integer" }), false, ReadOnly),
            field("repository", href(), false, ReadOnly),
            field("base_version", nullable(href()), false, ReadOnly),
            field(
                "content_summary",
                json!({ "type": "object", "properties": {
                    "added": { "type": "object" },
                    "removed": { "type": "object" },
                    "present": { "type": "object" },
                } }),
                false,
                ReadOnly,
            ),
        ],
        R::Remote => vec![
            field("name", string(), true, ReadWrite),
            field("url", string(), true, ReadWrite),
            field(
                "policy",
                json!({ "type": "string", "enum": ["immediate", "on_demand", "streamed"] }),
                false,
                ReadWrite,
            ),
            field(
                "download_concurrency",
                nullable(json!({ "type": "integer", "minimum": 1, "maximum": 64 })),
                false,
                ReadWrite,
            ),
            field("total_timeout", seconds(), false, ReadWrite),
            field(
                "max_retries",
                nullable(json!({ "type": "integer", "minimum": 0, "maximum": 10 })),
                false,
                ReadWrite,
            ),
            field(
                "tls_validation",
                json!({ "type": "boolean" }),
                false,
                ReadWrite,
            ),
            field("ca_cert", nullable(string()), false, ReadWrite),
            field("client_cert", nullable(string()), false, ReadWrite),
            field("client_key", nullable(string()), false, WriteOnly),
            field("proxy_url", nullable(string()), false, ReadWrite),
            field("proxy_username", nullable(string()), false, WriteOnly),
            field("proxy_password", nullable(string()), false, WriteOnly),
            field("username", nullable(string()), false, WriteOnly),
            field("password", nullable(string()), false, WriteOnly),
            field("connect_timeout", seconds(), false, ReadWrite),
            field("sock_connect_timeout", seconds(), false, ReadWrite),
            field("sock_read_timeout", seconds(), false, ReadWrite),
            field(
                "rate_limit",
                nullable(json!({ "type": "integer", "minimum": 1 })),
                false,
                ReadWrite,
            ),
            field(
                "headers",
                json!({ "type": "array", "items": { "type": "object", "additionalProperties": { "type": "string" } } }),
                false,
                ReadWrite,
            ),
            field("pulp_labels", labels(), false, ReadWrite),
            field(
                "hidden_fields",
                json!({ "type": "array", "items": { "type": "object", "properties": {
                    "name": { "type": "string" }, "is_set": { "type": "boolean" },
                } } }),
                false,
                ReadOnly,
            ),
        ],
        R::Publication => vec![
            field("repository", nullable(href()), false, ReadWrite),
            field("repository_version", nullable(href()), false, ReadWrite),
        ],
        R::Distribution => vec![
            field("name", string(), true, ReadWrite),
            field("base_path", string(), true, ReadWrite),
            field("base_url", string(), false, ReadOnly),
            field("publication", nullable(href()), false, ReadWrite),
            field("repository", nullable(href()), false, ReadWrite),
            field("repository_version", nullable(href()), false, ReadWrite),
            field("remote", nullable(href()), false, ReadWrite),
            field("content_guard", nullable(href()), false, ReadWrite),
            field("hidden", json!({ "type": "boolean" }), false, ReadWrite),
            field("pulp_labels", labels(), false, ReadWrite),
        ],
        R::Content => vec![
            field(
                "file",
                json!({ "type": "string", "format": "binary" }),
                false,
                WriteOnly,
            ),
            field("artifact", nullable(href()), false, ReadWrite),
            field("relative_path", string(), false, ReadWrite),
            field("repository", href(), false, WriteOnly),
            field("pulp_labels", labels(), false, ReadOnly),
        ],
        R::Artifact => vec![
            field(
                "file",
                json!({ "type": "string", "format": "binary" }),
                true,
                ReadWrite,
            ),
            field("size", json!({ "type": "integer" }), false, ReadWrite),
            field("sha256", string(), false, ReadWrite),
        ],
        R::Task => vec![
            field("name", string(), false, ReadOnly),
            field("state", string(), false, ReadOnly),
            field("logging_cid", string(), false, ReadOnly),
            field("unblocked_at", nullable(date_time()), false, ReadOnly),
            field("started_at", nullable(date_time()), false, ReadOnly),
            field("finished_at", nullable(date_time()), false, ReadOnly),
            field("worker", nullable(string()), false, ReadOnly),
            field(
                "error",
                nullable(json!({ "type": "object" })),
                false,
                ReadOnly,
            ),
            field(
                "progress_reports",
                json!({ "type": "array", "items": { "type": "object" } }),
                false,
                ReadOnly,
            ),
            field(
                "created_resources",
                json!({ "type": "array", "items": href() }),
                false,
                ReadOnly,
            ),
            field(
                "reserved_resources_record",
                json!({ "type": "array", "items": string() }),
                false,
                ReadOnly,
            ),
            field("parent_task", nullable(href()), false, ReadOnly),
            field(
                "child_tasks",
                json!({ "type": "array", "items": href() }),
                false,
                ReadOnly,
            ),
            field("task_group", nullable(href()), false, ReadOnly),
        ],
        R::Plugin => vec![
            field(
                "file",
                json!({ "type": "string", "format": "binary" }),
                true,
                WriteOnly,
            ),
            field("name", string(), false, ReadOnly),
            field("version", string(), false, ReadOnly),
            field("wit_version", string(), false, ReadOnly),
            field(
                "content_types",
                json!({ "type": "array", "items": { "type": "object" } }),
                false,
                ReadOnly,
            ),
            field(
                "capabilities",
                json!({ "type": "array", "items": string() }),
                false,
                ReadOnly,
            ),
            field("sha256", string(), false, ReadOnly),
            field(
                "size",
                nullable(json!({ "type": "integer" })),
                false,
                ReadOnly,
            ),
            field("builtin", json!({ "type": "boolean" }), false, ReadOnly),
            field("source", string(), false, ReadOnly),
            field("enabled", json!({ "type": "boolean" }), false, ReadOnly),
            field("artifact", nullable(href()), false, ReadOnly),
        ],
        R::Upload => vec![
            field(
                "size",
                json!({ "type": "integer", "minimum": 0 }),
                true,
                ReadWrite,
            ),
            field("completed", nullable(date_time()), false, ReadOnly),
            field(
                "chunks",
                json!({ "type": "array", "items": { "type": "object", "properties": {
                    "offset": { "type": "integer" }, "size": { "type": "integer" },
                } } }),
                false,
                ReadOnly,
            ),
        ],
        R::User => vec![
            field("id", string(), false, ReadOnly),
            field("username", string(), true, ReadWrite),
            field("password", nullable(string()), false, WriteOnly),
            field("first_name", string(), false, ReadWrite),
            field("last_name", string(), false, ReadWrite),
            field("email", string(), false, ReadWrite),
            field("is_staff", json!({ "type": "boolean" }), false, ReadWrite),
            field("is_active", json!({ "type": "boolean" }), false, ReadWrite),
            field("date_joined", date_time(), false, ReadOnly),
            field(
                "groups",
                json!({ "type": "array", "items": { "type": "object" } }),
                false,
                ReadOnly,
            ),
            field(
                "hidden_fields",
                json!({ "type": "array", "items": { "type": "object" } }),
                false,
                ReadOnly,
            ),
        ],
        R::UserToken => {
            // Tokens have no prn or pulp_last_updated.
            return vec![
                field("pulp_href", href(), false, ReadOnly),
                field("pulp_created", date_time(), false, ReadOnly),
                field("user", href(), false, ReadOnly),
                field("name", string(), false, ReadWrite),
                field("prefix", string(), false, ReadOnly),
                field("expires_at", nullable(date_time()), false, ReadWrite),
                field("token", string(), false, ReadOnly),
            ];
        }
        R::Status | R::Livez | R::OrphansCleanup | R::ReclaimSpace | R::Repair => {
            return Vec::new();
        }
        // Lists across types show each object as its own type does; these are the common fields.
        R::AllRepositories => return fields(R::Repository),
        R::AllRepositoryVersions => return fields(R::RepositoryVersion),
        R::AllRemotes => return fields(R::Remote),
        R::AllPublications => return fields(R::Publication),
        R::AllDistributions => return fields(R::Distribution),
        R::AllContent => return identity(),
    };
    own.extend(more);
    own
}

fn object_schema<'a>(fields: impl Iterator<Item = &'a Field>, with_required: bool) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in fields {
        properties.insert(field.name.into(), field.schema.clone());
        if with_required && field.required {
            required.push(field.name);
        }
    }
    let mut schema = json!({ "type": "object", "properties": properties });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// The request, patch, response and page schemas of one expansion of `resource`.
fn resource_schemas(resource: Resource, names: &Names) -> Vec<(String, Value)> {
    let fields = fields(resource);
    if fields.is_empty() {
        return Vec::new();
    }
    let writable = || fields.iter().filter(|f| f.access != Access::ReadOnly);
    let readable = fields.iter().filter(|f| f.access != Access::WriteOnly);
    let base = &names.schema;
    vec![
        (base.clone(), object_schema(writable(), true)),
        (format!("Patched{base}"), object_schema(writable(), false)),
        (format!("{base}Response"), object_schema(readable, false)),
        (
            format!("Paginated{base}ResponseList"),
            json!({
                "type": "object",
                "required": ["count", "results"],
                "properties": {
                    "count": { "type": "integer" },
                    "next": nullable(json!({ "type": "string", "format": "uri" })),
                    "previous": nullable(json!({ "type": "string", "format": "uri" })),
                    "results": { "type": "array", "items": reference(&format!("{base}Response")) },
                },
            }),
        ),
    ]
}

/// Schemas that are not a resource's object.
pub fn core_schemas() -> BTreeMap<String, Value> {
    let schemas = [
        (
            "AsyncOperationResponse",
            json!({
                "type": "object",
                "required": ["task"],
                "properties": { "task": href() },
            }),
        ),
        (
            "RepositorySyncURL",
            json!({
                "type": "object",
                "properties": {
                    "remote": nullable(href()),
                    "mirror": { "type": "boolean" },
                },
            }),
        ),
        (
            "RepositoryAddRemoveContent",
            json!({
                "type": "object",
                "properties": {
                    "add_content_units": { "type": "array", "items": string() },
                    "remove_content_units": { "type": "array", "items": string() },
                    "base_version": nullable(href()),
                },
            }),
        ),
        (
            "ErrorResponse",
            json!({
                "type": "object",
                "description": "`{\"field\": [\"message\"]}` for a 400, `{\"detail\": \"message\"}` otherwise.",
                "additionalProperties": true,
            }),
        ),
        (
            "SetLabel",
            json!({
                "type": "object",
                "required": ["key"],
                "properties": { "key": string(), "value": nullable(string()) },
            }),
        ),
        (
            "UnsetLabel",
            json!({
                "type": "object",
                "required": ["key"],
                "properties": { "key": string() },
            }),
        ),
        (
            "SetLabelResponse",
            json!({
                "type": "object",
                "properties": { "key": string(), "value": nullable(string()) },
            }),
        ),
        (
            "UploadChunk",
            json!({
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": { "type": "string", "format": "binary" },
                    "sha256": string(),
                },
            }),
        ),
        (
            "UploadCommit",
            json!({
                "type": "object",
                "required": ["sha256"],
                "properties": { "sha256": string() },
            }),
        ),
        (
            "OrphansCleanup",
            json!({
                "type": "object",
                "properties": {
                    "content_hrefs": { "type": "array", "items": string() },
                    "orphan_protection_time": nullable(json!({ "type": "integer", "minimum": 0 })),
                },
            }),
        ),
        (
            "ReclaimSpace",
            json!({
                "type": "object",
                "required": ["repo_hrefs"],
                "properties": {
                    "repo_hrefs": { "type": "array", "items": string() },
                    "repo_versions_keeplist": { "type": "array", "items": string() },
                },
            }),
        ),
        (
            "Repair",
            json!({
                "type": "object",
                "properties": { "verify_checksums": { "type": "boolean" } },
            }),
        ),
        (
            "PatchedTaskCancel",
            json!({
                "type": "object",
                "required": ["state"],
                "properties": { "state": { "type": "string", "enum": ["canceled"] } },
            }),
        ),
        (
            "PatchedPlugin",
            json!({
                "type": "object",
                "properties": { "enabled": { "type": "boolean" } },
            }),
        ),
        (
            "StatusResponse",
            json!({
                "type": "object",
                "properties": {
                    "versions": { "type": "array", "items": { "type": "object", "properties": {
                        "component": string(), "version": string(), "package": string(),
                        "package_version": string(),
                    } } },
                    "online_workers": { "type": "array", "items": { "type": "object" } },
                    "database_connection": { "type": "object", "properties": {
                        "connected": { "type": "boolean" }, "backend": string(),
                    } },
                    "storage": { "type": "object" },
                    "content_settings": { "type": "object", "properties": {
                        "content_origin": string(), "content_path_prefix": string(),
                    } },
                },
            }),
        ),
    ];
    schemas
        .into_iter()
        .map(|(name, schema)| (name.to_string(), schema))
        .collect()
}

/// Renders a JSON value as block YAML. Every string is written double-quoted with JSON's
/// escapes, which YAML's double-quoted scalars accept, so no string can be misread as another
/// type.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_yaml(value, 0, &mut out);
    out
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) if map.is_empty() => Some("{}".into()),
        Value::Array(items) if items.is_empty() => Some("[]".into()),
        Value::Object(_) | Value::Array(_) => None,
        other => Some(other.to_string()),
    }
}

fn write_yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                let key = Value::String(key.clone()).to_string();
                match scalar(item) {
                    Some(text) => out.push_str(&format!("{pad}{key}: {text}\n")),
                    None => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        write_yaml(item, indent + 2, out);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                match scalar(item) {
                    Some(text) => out.push_str(&format!("{pad}- {text}\n")),
                    None => {
                        out.push_str(&format!("{pad}-\n"));
                        write_yaml(item, indent + 2, out);
                    }
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&scalar(other).unwrap_or_default());
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Route templates the routers declare, read from their source: the string literal after
    /// each `.route(`.
    fn declared_routes() -> Vec<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
        let mut routes = Vec::new();
        for entry in std::fs::read_dir(dir).expect("src/api is readable") {
            let source = std::fs::read_to_string(entry.expect("entry").path()).expect("source");
            for (at, _) in source.match_indices(".route(") {
                let rest = source[at + ".route(".len()..].trim_start();
                if let Some(literal) = rest.strip_prefix("\"/pulp/").map(|_| &rest[1..]) {
                    routes.push(literal[..literal.find('"').expect("closed")].to_string());
                }
            }
        }
        routes
    }

    #[test]
    fn every_route_the_routers_declare_is_in_the_document_table() {
        let routes = declared_routes();
        assert!(
            routes.len() > 10,
            "the routers' routes were found: {routes:?}"
        );
        for route in routes {
            assert!(
                UNDOCUMENTED_ROUTES.contains(&route.as_str())
                    || ENDPOINTS.iter().any(|endpoint| endpoint.route == route),
                "{route} is served but not described in openapi::ENDPOINTS"
            );
        }
    }

    #[test]
    fn every_documented_route_is_declared_by_a_router() {
        let routes = declared_routes();
        for endpoint in ENDPOINTS {
            assert!(
                routes.iter().any(|route| route == endpoint.route),
                "{} is described but no router declares it",
                endpoint.route
            );
        }
    }

    #[test]
    fn yaml_quotes_every_string_and_nests_blocks() {
        let yaml = to_yaml(&json!({ "a": { "b": ["x: y", 1, true, null] }, "c": [] }));
        assert_eq!(
            yaml,
            "\"a\":\n  \"b\":\n    - \"x: y\"\n    - 1\n    - true\n    - null\n\"c\": []\n"
        );
    }
}
