//! The operations of the document: every REST route with its method, the resource it operates
//! on, its body and answer ([`ENDPOINTS`]), and the names each resource's operations, parameters
//! and schemas take for every installed plugin ([`expansions`]), and how each operation renders
//! ([`path_of`], [`operation`]).

use serde_json::{Value, json};

use super::{PathStyle, schemas};
use crate::plugins::rest_names::PluginNames as RestNames;

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
    /// `contentguards/`: every content guard, whatever its kind.
    AllContentGuards,
    /// `contentguards/core/rbac/`
    RbacContentGuard,
    /// `contentguards/core/content_redirect/`
    ContentRedirectContentGuard,
    /// `contentguards/core/header/`
    HeaderContentGuard,
    /// `contentguards/core/x509/`
    X509CertGuard,
    /// `contentguards/core/composite/`
    CompositeContentGuard,
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
    /// A schema of [`super::schemas::named`].
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
    /// A schema of [`super::schemas::named`], with this status.
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
    pub const fn with_header(self, name: &'static str) -> Endpoint {
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
    // Content guards.
    endpoint("/pulp/api/v3/contentguards/", Get, R::AllContentGuards, "list", "List content guards of every kind", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/contentguards/core/rbac/", Get, R::RbacContentGuard, "list", "List RBAC content guards", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/contentguards/core/rbac/", Post, R::RbacContentGuard, "create", "Create an RBAC content guard", Body::Object(Media::Json), Reply::Object(201)),
    endpoint("/pulp/api/v3/contentguards/core/rbac/{id}/", Get, R::RbacContentGuard, "read", "Inspect an RBAC content guard", Body::None, Reply::Object(200)),
    endpoint("/pulp/api/v3/contentguards/core/rbac/{id}/", Put, R::RbacContentGuard, "update", "Update an RBAC content guard", Body::Object(Media::Json), Reply::Object(200)),
    endpoint("/pulp/api/v3/contentguards/core/rbac/{id}/", Patch, R::RbacContentGuard, "partial_update", "Update some fields of an RBAC content guard", Body::Patch, Reply::Object(200)),
    endpoint("/pulp/api/v3/contentguards/core/rbac/{id}/", Delete, R::RbacContentGuard, "delete", "Delete an RBAC content guard", Body::None, Reply::Empty),
    endpoint("/pulp/api/v3/contentguards/core/content_redirect/", Get, R::ContentRedirectContentGuard, "list", "List content redirect content guards", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/contentguards/core/content_redirect/", Post, R::ContentRedirectContentGuard, "create", "Create a content redirect content guard", Body::Object(Media::Json), Reply::Object(201)),
    endpoint("/pulp/api/v3/contentguards/core/content_redirect/{id}/", Get, R::ContentRedirectContentGuard, "read", "Inspect a content redirect content guard", Body::None, Reply::Object(200)),
    endpoint("/pulp/api/v3/contentguards/core/content_redirect/{id}/", Put, R::ContentRedirectContentGuard, "update", "Update a content redirect content guard", Body::Object(Media::Json), Reply::Object(200)),
    endpoint("/pulp/api/v3/contentguards/core/content_redirect/{id}/", Patch, R::ContentRedirectContentGuard, "partial_update", "Update some fields of a content redirect content guard", Body::Patch, Reply::Object(200)),
    endpoint("/pulp/api/v3/contentguards/core/content_redirect/{id}/", Delete, R::ContentRedirectContentGuard, "delete", "Delete a content redirect content guard", Body::None, Reply::Empty),
    endpoint("/pulp/api/v3/contentguards/core/header/", Get, R::HeaderContentGuard, "list", "List header content guards", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/contentguards/core/header/", Post, R::HeaderContentGuard, "create", "Create a header content guard", Body::Object(Media::Json), Reply::Object(201)),
    endpoint("/pulp/api/v3/contentguards/core/header/{id}/", Get, R::HeaderContentGuard, "read", "Inspect a header content guard", Body::None, Reply::Object(200)),
    endpoint("/pulp/api/v3/contentguards/core/header/{id}/", Put, R::HeaderContentGuard, "update", "Update a header content guard", Body::Object(Media::Json), Reply::Object(200)),
    endpoint("/pulp/api/v3/contentguards/core/header/{id}/", Patch, R::HeaderContentGuard, "partial_update", "Update some fields of a header content guard", Body::Patch, Reply::Object(200)),
    endpoint("/pulp/api/v3/contentguards/core/header/{id}/", Delete, R::HeaderContentGuard, "delete", "Delete a header content guard", Body::None, Reply::Empty),
    endpoint("/pulp/api/v3/contentguards/core/x509/", Get, R::X509CertGuard, "list", "List X.509 certificate guards", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/contentguards/core/x509/", Post, R::X509CertGuard, "create", "Create an X.509 certificate guard", Body::Object(Media::Json), Reply::Object(201)),
    endpoint("/pulp/api/v3/contentguards/core/x509/{id}/", Get, R::X509CertGuard, "read", "Inspect an X.509 certificate guard", Body::None, Reply::Object(200)),
    endpoint("/pulp/api/v3/contentguards/core/x509/{id}/", Put, R::X509CertGuard, "update", "Update an X.509 certificate guard", Body::Object(Media::Json), Reply::Object(200)),
    endpoint("/pulp/api/v3/contentguards/core/x509/{id}/", Patch, R::X509CertGuard, "partial_update", "Update some fields of an X.509 certificate guard", Body::Patch, Reply::Object(200)),
    endpoint("/pulp/api/v3/contentguards/core/x509/{id}/", Delete, R::X509CertGuard, "delete", "Delete an X.509 certificate guard", Body::None, Reply::Empty),
    endpoint("/pulp/api/v3/contentguards/core/composite/", Get, R::CompositeContentGuard, "list", "List composite content guards", Body::None, Reply::Page),
    endpoint("/pulp/api/v3/contentguards/core/composite/", Post, R::CompositeContentGuard, "create", "Create a composite content guard", Body::Object(Media::Json), Reply::Object(201)),
    endpoint("/pulp/api/v3/contentguards/core/composite/{id}/", Get, R::CompositeContentGuard, "read", "Inspect a composite content guard", Body::None, Reply::Object(200)),
    endpoint("/pulp/api/v3/contentguards/core/composite/{id}/", Put, R::CompositeContentGuard, "update", "Update a composite content guard", Body::Object(Media::Json), Reply::Object(200)),
    endpoint("/pulp/api/v3/contentguards/core/composite/{id}/", Patch, R::CompositeContentGuard, "partial_update", "Update some fields of a composite content guard", Body::Patch, Reply::Object(200)),
    endpoint("/pulp/api/v3/contentguards/core/composite/{id}/", Delete, R::CompositeContentGuard, "delete", "Delete a composite content guard", Body::None, Reply::Empty),
    endpoint("/pulp/api/v3/contentguards/core/content_redirect/{id}/preauthenticate_url/", Post, R::ContentRedirectContentGuard, "preauthenticate_url", "Sign a content URL the guard protects, until it expires", Body::Named("PreauthenticateURL", Media::Json), Reply::Named(200, "PreauthenticatedURLResponse")),
];

/// Routes that are not operations of the document: the document itself.
pub const UNDOCUMENTED_ROUTES: &[&str] =
    &["/pulp/api/v3/docs/api.json", "/pulp/api/v3/docs/api.yaml"];

/// One expansion of a resource: the names its operations, parameters and schemas take.
pub struct Names {
    /// operationId prefix: `repositories_file_file`, `tasks`.
    pub prefix: String,
    /// The href-valued path parameter: `file_file_repository_href`, `task_href`.
    pub href_param: String,
    /// For objects inside another (repository versions), the parent's href parameter, which
    /// addresses their collection: `{file_file_repository_href}versions/`.
    pub parent_href_param: Option<String>,
    /// Base name of its schemas: `file.FileRepository`, `Task`.
    pub schema: String,
    /// Values of the route's placeholders other than the object's id (`plugin`, `type`).
    pub route_values: Vec<(&'static str, String)>,
    /// The plugin, for plugin resources.
    pub plugin: Option<String>,
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
pub fn expansions(resource: Resource, plugins: &[RestNames]) -> Vec<Names> {
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
        R::AllContentGuards => core("contentguards", "", "ContentGuard"),
        R::RbacContentGuard => core(
            "contentguards_core_rbac",
            "r_b_a_c_content_guard_href",
            "RBACContentGuard",
        ),
        R::ContentRedirectContentGuard => core(
            "contentguards_core_content_redirect",
            "content_redirect_content_guard_href",
            "ContentRedirectContentGuard",
        ),
        R::HeaderContentGuard => core(
            "contentguards_core_header",
            "header_content_guard_href",
            "HeaderContentGuard",
        ),
        R::X509CertGuard => core(
            "contentguards_core_x509",
            "x509_cert_guard_href",
            "X509CertGuard",
        ),
        R::CompositeContentGuard => core(
            "contentguards_core_composite",
            "composite_content_guard_href",
            "CompositeContentGuard",
        ),
    }
}

pub fn tag(resource: Resource, names: &Names) -> String {
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
        R::AllContentGuards => return "Contentguards".into(),
        R::RbacContentGuard => return "Contentguards: Rbac".into(),
        R::ContentRedirectContentGuard => return "Contentguards: Content Redirect".into(),
        R::HeaderContentGuard => return "Contentguards: Header".into(),
        R::X509CertGuard => return "Contentguards: X509".into(),
        R::CompositeContentGuard => return "Contentguards: Composite".into(),
    };
    format!("{kind}: {}", names.plugin.as_deref().unwrap_or_default())
}

/// The document path of `endpoint` for one expansion, and its path parameters.
pub fn path_of(endpoint: &Endpoint, names: &Names, style: PathStyle) -> (String, Vec<Value>) {
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

pub fn operation(
    endpoint: &Endpoint,
    doc: &schemas::Doc,
    names: &Names,
    mut parameters: Vec<Value>,
) -> Value {
    if endpoint.action == "list" {
        parameters.extend(schemas::list_parameters(doc));
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

/// A reference to a schema of the document's components.
pub fn reference(schema: &str) -> Value {
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
