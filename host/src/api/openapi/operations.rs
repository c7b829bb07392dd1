//! The operations of the document: every REST route with its method, the resource it operates
//! on, its body and answer ([`ENDPOINTS`]), and the names each resource's operations, parameters
//! and schemas take for every installed plugin ([`expansions`]), and how each operation renders
//! ([`path_of`], [`operation`]).

use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder, Responses, ResponsesBuilder};
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, Ref, Required};

use super::{PathStyle, schemas};
use crate::plugins::rest_names::PluginNames as RestNames;

/// What an endpoint operates on. Plugin resources are expanded for every installed plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `repositories/<plugin>/<repository>/`
    Repository,
    /// `<repository>/versions/<n>/`
    RepositoryVersion,
    /// `<repository>/blocklist_entries/<id>/`: the packages a repository refuses, for plugins
    /// whose repositories have blocklists (pulp_python's).
    BlocklistEntry,
    /// `repositories/<plugin>/<push repository>/`: the repositories pushes create, for plugins
    /// that name a type for them (pulp_container's `container-push`).
    PushRepository,
    /// `<push repository>/versions/<n>/`
    PushRepositoryVersion,
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
    /// `tasks/purge/`
    TaskPurge,
    /// `workers/`
    Worker,
    /// `task-groups/`
    TaskGroup,
    /// `acs/<plugin>/<repository type>/`: alternate content sources.
    Acs,
    /// `exporters/core/pulp/`
    PulpExporter,
    /// `exporters/core/pulp/<id>/exports/`
    PulpExport,
    /// `exporters/core/filesystem/`
    FilesystemExporter,
    /// `exporters/core/filesystem/<id>/exports/`
    FilesystemExport,
    /// `importers/core/pulp/`
    PulpImporter,
    /// `importers/core/pulp/<id>/imports/`
    PulpImport,
    /// `importers/core/pulp/import-check/`
    PulpImportCheck,
    /// `upstream-pulps/`
    UpstreamPulp,
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
    /// `roles/`
    Role,
    /// `groups/`
    Group,
    /// `groups/<id>/users/`: a group's members.
    GroupUser,
    /// `groups/<id>/roles/`: the roles a group holds.
    GroupRole,
    /// `users/<id>/roles/`: the roles a user holds.
    UserRole,
    /// `access_policies/`
    AccessPolicy,
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
    /// The method in the OpenAPI model, which keys a path's operations by it.
    pub fn http(self) -> HttpMethod {
        match self {
            Method::Get => HttpMethod::Get,
            Method::Post => HttpMethod::Post,
            Method::Put => HttpMethod::Put,
            Method::Patch => HttpMethod::Patch,
            Method::Delete => HttpMethod::Delete,
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

const PUBLICATIONS: &str = "/pulp/api/v3/publications/{plugin}/{type}/";
const PUBLICATION: &str = "/pulp/api/v3/publications/{plugin}/{type}/{id}/";
const CONTENTS: &str = "/pulp/api/v3/content/{plugin}/{plural}/";
const CONTENT: &str = "/pulp/api/v3/content/{plugin}/{plural}/{id}/";

/// The operations of a kind of plugin objects that carry labels (repositories, remotes,
/// distributions), alike for every such kind: list, create, read, update, partial update and
/// delete, and setting and removing one label. `$collection` is the kind's path segment (and its
/// plural in summaries), `$one` names one object; a create answers `$created` (summary
/// `$create`), and updates and deletes run as tasks.
#[rustfmt::skip]
macro_rules! labelled_objects {
    ($collection:literal, $resource:expr, $one:literal, $create:literal, $created:expr) => {{
        const OBJECTS: &str = concat!("/pulp/api/v3/", $collection, "/{plugin}/{type}/");
        const OBJECT: &str = concat!("/pulp/api/v3/", $collection, "/{plugin}/{type}/{id}/");
        const SET_LABEL: &str = concat!("/pulp/api/v3/", $collection, "/{plugin}/{type}/{id}/set_label/");
        const UNSET_LABEL: &str = concat!("/pulp/api/v3/", $collection, "/{plugin}/{type}/{id}/unset_label/");
        [
            endpoint(OBJECTS, Get, $resource, "list", concat!("List ", $collection), Body::None, Reply::Page),
            endpoint(OBJECTS, Post, $resource, "create", $create, Body::Object(Media::Json), $created),
            endpoint(OBJECT, Get, $resource, "read", concat!("Inspect ", $one), Body::None, Reply::Object(200)),
            endpoint(OBJECT, Put, $resource, "update", concat!("Update ", $one, " (a task)"), Body::Object(Media::Json), Reply::Task),
            endpoint(OBJECT, Patch, $resource, "partial_update", concat!("Update some fields of ", $one, " (a task)"), Body::Patch, Reply::Task),
            endpoint(OBJECT, Delete, $resource, "delete", concat!("Delete ", $one, " (a task)"), Body::None, Reply::Task),
            endpoint(SET_LABEL, Post, $resource, "set_label", "Set one label", Body::Named("SetLabel", Media::Json), Reply::Named(201, "SetLabelResponse")),
            endpoint(UNSET_LABEL, Post, $resource, "unset_label", "Remove one label", Body::Named("UnsetLabel", Media::Json), Reply::Named(201, "SetLabelResponse")),
        ]
    }};
}

/// The role actions of the objects at `$object` (Pulp's `list_roles/`, `add_role/`,
/// `remove_role/` and `my_permissions/`), each object's `$one`.
#[rustfmt::skip]
macro_rules! role_actions {
    ($object:expr, $resource:expr, $one:literal) => {
        [
            endpoint(concat!($object, "list_roles/"), Get, $resource, "list_roles", concat!("Who holds which role on ", $one), Body::None, Reply::Named(200, "ObjectRolesResponse")),
            endpoint(concat!($object, "add_role/"), Post, $resource, "add_role", concat!("Give users and groups a role on ", $one), Body::Named("NestedRole", Media::Json), Reply::Named(201, "NestedRoleResponse")),
            endpoint(concat!($object, "remove_role/"), Post, $resource, "remove_role", concat!("Take a role on ", $one, " back from users and groups"), Body::Named("NestedRole", Media::Json), Reply::Named(201, "NestedRoleResponse")),
            endpoint(concat!($object, "my_permissions/"), Get, $resource, "my_permissions", concat!("The caller's permissions on ", $one), Body::None, Reply::Named(200, "MyPermissionsResponse")),
        ]
    };
}

/// The objects of one kind of content guard (`contentguards/core/$kind/`), each `$one`: list,
/// create, read, update and delete, answered at once as Pulp's guard viewsets do, and the role
/// actions on each.
#[rustfmt::skip]
macro_rules! guard_objects {
    ($kind:literal, $resource:expr, $one:literal) => {
        joined::<10>(&[
            &core_objects!(
                concat!("/pulp/api/v3/contentguards/core/", $kind, "/"),
                concat!("/pulp/api/v3/contentguards/core/", $kind, "/{id}/"),
                $resource,
                Media::Json,
                [concat!("List ", $kind, " content guards"), concat!("Create ", $one), concat!("Inspect ", $one), concat!("Update ", $one), concat!("Update some fields of ", $one), concat!("Delete ", $one)]
            ),
            &role_actions!(concat!("/pulp/api/v3/contentguards/core/", $kind, "/{id}/"), $resource, $one),
        ])
    };
}

/// The list, create, read and delete of a core collection (`$collection`, its objects at
/// `$object`), answered as Pulp's viewsets answer them: a create (a `$media` body) answers the
/// object with 201, a delete answers 204. The four summaries come in that order; six are those of
/// a resource changed in place, whose `PUT` (a `$media` body) and `PATCH` answer the object.
#[rustfmt::skip]
macro_rules! core_objects {
    ($collection:expr, $object:expr, $resource:expr, $media:expr, [$list:expr, $create:expr, $read:expr, $update:expr, $partial_update:expr, $delete:expr]) => {
        [
            endpoint($collection, Get, $resource, "list", $list, Body::None, Reply::Page),
            endpoint($collection, Post, $resource, "create", $create, Body::Object($media), Reply::Object(201)),
            endpoint($object, Get, $resource, "read", $read, Body::None, Reply::Object(200)),
            endpoint($object, Put, $resource, "update", $update, Body::Object($media), Reply::Object(200)),
            endpoint($object, Patch, $resource, "partial_update", $partial_update, Body::Patch, Reply::Object(200)),
            endpoint($object, Delete, $resource, "delete", $delete, Body::None, Reply::Empty),
        ]
    };
    ($collection:expr, $object:expr, $resource:expr, $media:expr, [$list:expr, $create:expr, $read:expr, $delete:expr]) => {
        [
            endpoint($collection, Get, $resource, "list", $list, Body::None, Reply::Page),
            endpoint($collection, Post, $resource, "create", $create, Body::Object($media), Reply::Object(201)),
            endpoint($object, Get, $resource, "read", $read, Body::None, Reply::Object(200)),
            endpoint($object, Delete, $resource, "delete", $delete, Body::None, Reply::Empty),
        ]
    };
}

/// Every REST route, as the routers serve it.
pub const ENDPOINTS: &[Endpoint] = &joined::<{ count(GROUPS) }>(GROUPS);

/// [`ENDPOINTS`], written by groups.
#[rustfmt::skip]
const GROUPS: &[&[Endpoint]] = &[
    &[
        // Every object of a kind, whatever its plugin.
        endpoint("/pulp/api/v3/repositories/", Get, R::AllRepositories, "list", "List repositories of every type", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/repository_versions/", Get, R::AllRepositoryVersions, "list", "List versions of every repository", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/remotes/", Get, R::AllRemotes, "list", "List remotes of every type", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/content/", Get, R::AllContent, "list", "List content of every type", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/publications/", Get, R::AllPublications, "list", "List publications of every type", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/distributions/", Get, R::AllDistributions, "list", "List distributions of every type", Body::None, Reply::Page),
    ],
    // Repositories, their versions, sync and modify.
    &labelled_objects!("repositories", R::Repository, "a repository", "Create a repository", Reply::Object(201)),
    &[
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/sync/", Post, R::Repository, "sync", "Sync a repository from a remote (a task)", Body::Named("RepositorySyncURL", Media::Json), Reply::Task),
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/modify/", Post, R::Repository, "modify", "Add and remove content units (a task)", Body::Named("RepositoryAddRemoveContent", Media::Json), Reply::Task),
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/repair_metadata/", Post, R::Repository, "repair_metadata", "Read the units of the latest version again through their plugin and fix their metadata (a task)", Body::None, Reply::Task),
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/versions/", Get, R::RepositoryVersion, "list", "List the versions of a repository", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/versions/{number}/", Get, R::RepositoryVersion, "read", "Inspect a repository version", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/versions/{number}/", Delete, R::RepositoryVersion, "delete", "Delete a version, its changes squashed into the next (a task)", Body::None, Reply::Task),
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/versions/{number}/repair/", Post, R::RepositoryVersion, "repair", "Check a version's artifacts and fetch or drop broken ones (a task)", Body::Named("Repair", Media::Json), Reply::Task),
    ],
    &role_actions!("/pulp/api/v3/repositories/{plugin}/{type}/{id}/", R::Repository, "a repository"),
    &[
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/blocklist_entries/", Get, R::BlocklistEntry, "list", "List the packages a repository refuses", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/blocklist_entries/", Post, R::BlocklistEntry, "create", "Refuse a project, a release or a file in a repository", Body::Object(Media::Json), Reply::Object(201)),
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/blocklist_entries/{entry}/", Get, R::BlocklistEntry, "read", "Inspect a blocklist entry", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/blocklist_entries/{entry}/", Delete, R::BlocklistEntry, "delete", "Remove a blocklist entry", Body::None, Reply::Empty),
    ],
    // Push repositories: made by pushes, deleted with their distribution, never synced.
    &[
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/", Get, R::PushRepository, "list", "List push repositories", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/", Get, R::PushRepository, "read", "Inspect a push repository", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/", Put, R::PushRepository, "update", "Update a push repository (a task)", Body::Object(Media::Json), Reply::Task),
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/", Patch, R::PushRepository, "partial_update", "Update some fields of a push repository (a task)", Body::Patch, Reply::Task),
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/versions/", Get, R::PushRepositoryVersion, "list", "List the versions of a push repository", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/versions/{number}/", Get, R::PushRepositoryVersion, "read", "Inspect a push repository version", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/repositories/{plugin}/{type}/{id}/versions/{number}/", Delete, R::PushRepositoryVersion, "delete", "Delete a version (refused by the default policy, as pulp_container's)", Body::None, Reply::Task),
    ],
    // Remotes.
    &role_actions!("/pulp/api/v3/remotes/{plugin}/{type}/{id}/", R::Remote, "a remote"),
    &role_actions!("/pulp/api/v3/publications/{plugin}/{type}/{id}/", R::Publication, "a publication"),
    &role_actions!("/pulp/api/v3/distributions/{plugin}/{type}/{id}/", R::Distribution, "a distribution"),
    &labelled_objects!("remotes", R::Remote, "a remote", "Create a remote", Reply::Object(201)),
    &[
        // Content.
        endpoint(CONTENTS, Get, R::Content, "list", "List content units", Body::None, Reply::Page),
        endpoint(CONTENTS, Post, R::Content, "create", "Create a content unit from a file or an artifact (a task)", Body::Object(Media::Multipart), Reply::Task),
        endpoint("/pulp/api/v3/content/{plugin}/{plural}/{id}/set_label/", Post, R::Content, "set_label", "Set one label of a content unit", Body::Named("SetLabel", Media::Json), Reply::Named(201, "SetLabelResponse")),
        endpoint("/pulp/api/v3/content/{plugin}/{plural}/{id}/unset_label/", Post, R::Content, "unset_label", "Remove one label of a content unit", Body::Named("UnsetLabel", Media::Json), Reply::Named(201, "SetLabelResponse")),
        endpoint(CONTENT, Get, R::Content, "read", "Inspect a content unit", Body::None, Reply::Object(200)),
        // Publications.
        endpoint(PUBLICATIONS, Get, R::Publication, "list", "List publications", Body::None, Reply::Page),
        endpoint(PUBLICATIONS, Post, R::Publication, "create", "Publish a repository version (a task)", Body::Object(Media::Json), Reply::Task),
        endpoint(PUBLICATION, Get, R::Publication, "read", "Inspect a publication", Body::None, Reply::Object(200)),
        endpoint(PUBLICATION, Delete, R::Publication, "delete", "Delete a publication (a task)", Body::None, Reply::Task),
    ],
    // Distributions.
    &labelled_objects!("distributions", R::Distribution, "a distribution", "Create a distribution (a task)", Reply::Task),
    // Artifacts.
    &core_objects!("/pulp/api/v3/artifacts/", "/pulp/api/v3/artifacts/{id}/", R::Artifact, Media::Multipart, ["List artifacts", "Upload an artifact", "Inspect an artifact", "Delete an artifact no content refers to"]),
    // Chunked uploads.
    &core_objects!("/pulp/api/v3/uploads/", "/pulp/api/v3/uploads/{id}/", R::Upload, Media::Json, ["List uploads", "Start a chunked upload of `size` bytes", "Inspect an upload and its chunks", "Delete an upload"]),
    &[
        endpoint("/pulp/api/v3/uploads/{id}/", Put, R::Upload, "update", "Upload a chunk (Content-Range: bytes START-END/SIZE)", Body::Named("UploadChunk", Media::Multipart), Reply::Object(200)).with_header("Content-Range"),
        endpoint("/pulp/api/v3/uploads/{id}/commit/", Post, R::Upload, "commit", "Assemble the chunks into an artifact (a task)", Body::Named("UploadCommit", Media::Json), Reply::Task),
        // Maintenance.
        endpoint("/pulp/api/v3/orphans/cleanup/", Post, R::OrphansCleanup, "cleanup", "Delete content and artifacts no repository version holds (a task)", Body::Named("OrphansCleanup", Media::Json), Reply::Task),
        endpoint("/pulp/api/v3/repositories/reclaim_space/", Post, R::ReclaimSpace, "reclaim", "Drop the stored bytes of content only old versions hold (a task)", Body::Named("ReclaimSpace", Media::Json), Reply::Task),
        endpoint("/pulp/api/v3/repair/", Post, R::Repair, "post", "Check every artifact and fetch or drop broken ones (a task)", Body::Named("Repair", Media::Json), Reply::Task),
    ],
    // Users and their API tokens.
    &core_objects!("/pulp/api/v3/users/", "/pulp/api/v3/users/{id}/", R::User, Media::Json, ["List users", "Create a user", "Inspect a user", "Update a user", "Update some fields of a user", "Delete a user"]),
    &core_objects!("/pulp/api/v3/users/{id}/tokens/", "/pulp/api/v3/users/{id}/tokens/{token}/", R::UserToken, Media::Json, ["List a user's API tokens", "Create an API token; the answer holds its secret, once", "Inspect an API token", "Revoke an API token"]),
    // Plugins (WebAssembly content types).
    &core_objects!("/pulp/api/v3/plugins/", "/pulp/api/v3/plugins/{name}/", R::Plugin, Media::Multipart, ["List plugins", "Install or upgrade a plugin component", "Inspect a plugin", "Remove an installed plugin"]),
    &[
        endpoint("/pulp/api/v3/plugins/{name}/", Patch, R::Plugin, "partial_update", "Enable or disable a plugin", Body::Named("PatchedPlugin", Media::Json), Reply::Object(200)),
        // Tasks.
        endpoint("/pulp/api/v3/tasks/", Get, R::Task, "list", "List tasks", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/tasks/{id}/", Get, R::Task, "read", "Inspect a task", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/tasks/{id}/", Patch, R::Task, "cancel", "Cancel a task", Body::Named("PatchedTaskCancel", Media::Json), Reply::Object(200)),
        endpoint("/pulp/api/v3/tasks/{id}/", Delete, R::Task, "delete", "Delete a finished task", Body::None, Reply::Empty),
        endpoint("/pulp/api/v3/tasks/purge/", Post, R::TaskPurge, "purge", "Delete the records of tasks that finished before a time (a task)", Body::Named("Purge", Media::Json), Reply::Task),
        // Workers.
        endpoint("/pulp/api/v3/workers/", Get, R::Worker, "list", "List workers", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/workers/{id}/", Get, R::Worker, "read", "Inspect a worker", Body::None, Reply::Object(200)),
        // Task groups.
        endpoint("/pulp/api/v3/task-groups/", Get, R::TaskGroup, "list", "List task groups", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/task-groups/{id}/", Get, R::TaskGroup, "read", "Inspect a task group", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/task-groups/{id}/", Patch, R::TaskGroup, "cancel", "Cancel every unfinished task of a group", Body::Named("PatchedTaskCancel", Media::Json), Reply::Object(200)),
        // Alternate content sources.
        endpoint("/pulp/api/v3/acs/{plugin}/{type}/", Get, R::Acs, "list", "List alternate content sources", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/acs/{plugin}/{type}/", Post, R::Acs, "create", "Create an alternate content source", Body::Object(Media::Json), Reply::Object(201)),
        endpoint("/pulp/api/v3/acs/{plugin}/{type}/{id}/", Get, R::Acs, "read", "Inspect an alternate content source", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/acs/{plugin}/{type}/{id}/", Put, R::Acs, "update", "Update an alternate content source (a task)", Body::Object(Media::Json), Reply::Task),
        endpoint("/pulp/api/v3/acs/{plugin}/{type}/{id}/", Patch, R::Acs, "partial_update", "Update some fields of an alternate content source (a task)", Body::Patch, Reply::Task),
        endpoint("/pulp/api/v3/acs/{plugin}/{type}/{id}/", Delete, R::Acs, "delete", "Delete an alternate content source", Body::None, Reply::Empty),
        endpoint("/pulp/api/v3/acs/{plugin}/{type}/{id}/refresh/", Post, R::Acs, "refresh", "Record what each path offers (a task group)", Body::None, Reply::Named(202, "TaskGroupOperationResponse")),
        // Export and import (each exporter kind expands `{kind}`).
        endpoint("/pulp/api/v3/exporters/core/{kind}/", Get, R::PulpExporter, "list", "List pulp exporters", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/exporters/core/{kind}/", Post, R::PulpExporter, "create", "Create a pulp exporter", Body::Object(Media::Json), Reply::Object(201)),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/", Get, R::PulpExporter, "read", "Inspect a pulp exporter", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/", Put, R::PulpExporter, "update", "Update a pulp exporter (a task)", Body::Object(Media::Json), Reply::Task),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/", Patch, R::PulpExporter, "partial_update", "Update some fields of a pulp exporter (a task)", Body::Patch, Reply::Task),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/", Delete, R::PulpExporter, "delete", "Delete a pulp exporter (a task)", Body::None, Reply::Task),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/exports/", Get, R::PulpExport, "list", "List the exports of a pulp exporter", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/exports/", Post, R::PulpExport, "create", "Export the exporter's repositories (a task)", Body::Object(Media::Json), Reply::Task),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/exports/{token}/", Get, R::PulpExport, "read", "Inspect an export", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/exports/{token}/", Delete, R::PulpExport, "delete", "Delete the record of an export", Body::None, Reply::Empty),
        endpoint("/pulp/api/v3/exporters/core/{kind}/", Get, R::FilesystemExporter, "list", "List filesystem exporters", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/exporters/core/{kind}/", Post, R::FilesystemExporter, "create", "Create a filesystem exporter", Body::Object(Media::Json), Reply::Object(201)),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/", Get, R::FilesystemExporter, "read", "Inspect a filesystem exporter", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/", Put, R::FilesystemExporter, "update", "Update a filesystem exporter (a task)", Body::Object(Media::Json), Reply::Task),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/", Patch, R::FilesystemExporter, "partial_update", "Update some fields of a filesystem exporter (a task)", Body::Patch, Reply::Task),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/", Delete, R::FilesystemExporter, "delete", "Delete a filesystem exporter (a task)", Body::None, Reply::Task),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/exports/", Get, R::FilesystemExport, "list", "List the exports of a filesystem exporter", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/exports/", Post, R::FilesystemExport, "create", "Write a publication's or repository version's files (a task)", Body::Object(Media::Json), Reply::Task),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/exports/{token}/", Get, R::FilesystemExport, "read", "Inspect a filesystem export", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/exporters/core/{kind}/{id}/exports/{token}/", Delete, R::FilesystemExport, "delete", "Delete the record of a filesystem export", Body::None, Reply::Empty),
        endpoint("/pulp/api/v3/importers/core/pulp/", Get, R::PulpImporter, "list", "List pulp importers", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/importers/core/pulp/", Post, R::PulpImporter, "create", "Create a pulp importer", Body::Object(Media::Json), Reply::Object(201)),
        endpoint("/pulp/api/v3/importers/core/pulp/{id}/", Get, R::PulpImporter, "read", "Inspect a pulp importer", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/importers/core/pulp/{id}/", Put, R::PulpImporter, "update", "Update a pulp importer", Body::Object(Media::Json), Reply::Object(200)),
        endpoint("/pulp/api/v3/importers/core/pulp/{id}/", Patch, R::PulpImporter, "partial_update", "Update some fields of a pulp importer", Body::Patch, Reply::Object(200)),
        endpoint("/pulp/api/v3/importers/core/pulp/{id}/", Delete, R::PulpImporter, "delete", "Delete a pulp importer", Body::None, Reply::Empty),
        endpoint("/pulp/api/v3/importers/core/pulp/{id}/imports/", Get, R::PulpImport, "list", "List the imports of a pulp importer", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/importers/core/pulp/{id}/imports/", Post, R::PulpImport, "create", "Import an export (a task group)", Body::Object(Media::Json), Reply::Named(202, "TaskGroupOperationResponse")),
        endpoint("/pulp/api/v3/importers/core/pulp/{id}/imports/{token}/", Get, R::PulpImport, "read", "Inspect an import", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/importers/core/pulp/{id}/imports/{token}/", Delete, R::PulpImport, "delete", "Delete the record of an import", Body::None, Reply::Empty),
        endpoint("/pulp/api/v3/importers/core/pulp/import-check/", Post, R::PulpImportCheck, "post", "Check the parameters of an import without importing", Body::Named("PulpImportCheck", Media::Json), Reply::Named(200, "PulpImportCheckResponse")),
        // Replication.
        endpoint("/pulp/api/v3/upstream-pulps/", Get, R::UpstreamPulp, "list", "List upstream Pulps", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/upstream-pulps/", Post, R::UpstreamPulp, "create", "Register an upstream Pulp", Body::Object(Media::Json), Reply::Object(201)),
        endpoint("/pulp/api/v3/upstream-pulps/{id}/", Get, R::UpstreamPulp, "read", "Inspect an upstream Pulp", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/upstream-pulps/{id}/", Put, R::UpstreamPulp, "update", "Update an upstream Pulp", Body::Object(Media::Json), Reply::Object(200)),
        endpoint("/pulp/api/v3/upstream-pulps/{id}/", Patch, R::UpstreamPulp, "partial_update", "Update some fields of an upstream Pulp", Body::Patch, Reply::Object(200)),
        endpoint("/pulp/api/v3/upstream-pulps/{id}/", Delete, R::UpstreamPulp, "delete", "Delete an upstream Pulp", Body::None, Reply::Empty),
        endpoint("/pulp/api/v3/upstream-pulps/{id}/replicate/", Post, R::UpstreamPulp, "replicate", "Mirror the upstream's distributions (a task group)", Body::Named("UpstreamPulpReplicate", Media::Json), Reply::Named(202, "TaskGroupOperationResponse")),
        // Health.
        endpoint("/pulp/api/v3/status/", Get, R::Status, "read", "Versions, workers, database and storage health", Body::None, Reply::Named(200, "StatusResponse")),
        endpoint("/pulp/api/v3/livez/", Get, R::Livez, "read", "Whether the server answers", Body::None, Reply::Empty),
    ],
    &role_actions!("/pulp/api/v3/upstream-pulps/{id}/", R::UpstreamPulp, "an upstream Pulp"),
    &role_actions!("/pulp/api/v3/acs/{plugin}/{type}/{id}/", R::Acs, "an alternate content source"),
    // Roles.
    &core_objects!("/pulp/api/v3/roles/", "/pulp/api/v3/roles/{id}/", R::Role, Media::Json, ["List roles", "Create a role", "Inspect a role", "Update a role (not a locked one)", "Update some fields of a role (not a locked one)", "Delete a role (not a locked one)"]),
    // Groups, their members, the roles they hold and the roles held on them.
    &core_objects!("/pulp/api/v3/groups/", "/pulp/api/v3/groups/{id}/", R::Group, Media::Json, ["List groups", "Create a group", "Inspect a group", "Update a group", "Update some fields of a group", "Delete a group"]),
    &[
        endpoint("/pulp/api/v3/groups/{id}/users/", Get, R::GroupUser, "list", "List the members of a group", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/groups/{id}/users/", Post, R::GroupUser, "create", "Add a user to a group", Body::Object(Media::Json), Reply::Object(201)),
        endpoint("/pulp/api/v3/groups/{id}/users/{token}/", Delete, R::GroupUser, "delete", "Remove a user from a group", Body::None, Reply::Empty),
        endpoint("/pulp/api/v3/groups/{id}/roles/", Get, R::GroupRole, "list", "List the roles a group holds", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/groups/{id}/roles/", Post, R::GroupRole, "create", "Give a group a role, globally or on one object", Body::Object(Media::Json), Reply::Object(201)),
        endpoint("/pulp/api/v3/groups/{id}/roles/{token}/", Get, R::GroupRole, "read", "Inspect a role a group holds", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/groups/{id}/roles/{token}/", Delete, R::GroupRole, "delete", "Take a role back from a group", Body::None, Reply::Empty),
        // The roles users hold.
        endpoint("/pulp/api/v3/users/{id}/roles/", Get, R::UserRole, "list", "List the roles a user holds", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/users/{id}/roles/", Post, R::UserRole, "create", "Give a user a role, globally or on one object", Body::Object(Media::Json), Reply::Object(201)),
        endpoint("/pulp/api/v3/users/{id}/roles/{token}/", Get, R::UserRole, "read", "Inspect a role a user holds", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/users/{id}/roles/{token}/", Delete, R::UserRole, "delete", "Take a role back from a user", Body::None, Reply::Empty),
        // Access policies.
        endpoint("/pulp/api/v3/access_policies/", Get, R::AccessPolicy, "list", "List access policies", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/access_policies/{id}/", Get, R::AccessPolicy, "read", "Inspect an access policy", Body::None, Reply::Object(200)),
        endpoint("/pulp/api/v3/access_policies/{id}/", Put, R::AccessPolicy, "update", "Replace the statements and creation hooks of an access policy", Body::Object(Media::Json), Reply::Object(200)),
        endpoint("/pulp/api/v3/access_policies/{id}/", Patch, R::AccessPolicy, "partial_update", "Change the statements or creation hooks of an access policy", Body::Patch, Reply::Object(200)),
        endpoint("/pulp/api/v3/access_policies/{id}/reset/", Post, R::AccessPolicy, "reset", "Restore the default of an access policy", Body::None, Reply::Object(200)),
    ],
    &role_actions!("/pulp/api/v3/groups/{id}/", R::Group, "a group"),
    // Content guards: every kind, then each kind's objects.
    &[
        endpoint("/pulp/api/v3/contentguards/", Get, R::AllContentGuards, "list", "List content guards of every kind", Body::None, Reply::Page),
        endpoint("/pulp/api/v3/contentguards/core/content_redirect/{id}/preauthenticate_url/", Post, R::ContentRedirectContentGuard, "preauthenticate_url", "Sign a content URL the guard protects, until it expires", Body::Named("PreauthenticateURL", Media::Json), Reply::Named(200, "PreauthenticatedURLResponse")),
    ],
    &guard_objects!("rbac", R::RbacContentGuard, "an RBAC content guard"),
    &guard_objects!("content_redirect", R::ContentRedirectContentGuard, "a content redirect content guard"),
    &guard_objects!("header", R::HeaderContentGuard, "a header content guard"),
    &guard_objects!("x509", R::X509CertGuard, "an X.509 certificate guard"),
    &guard_objects!("composite", R::CompositeContentGuard, "a composite content guard"),
];

/// How many endpoints `groups` hold.
const fn count(groups: &[&[Endpoint]]) -> usize {
    let (mut total, mut group) = (0, 0);
    while group < groups.len() {
        total += groups[group].len();
        group += 1;
    }
    total
}

/// The `N` endpoints of `groups`, one group after the other.
const fn joined<const N: usize>(groups: &[&[Endpoint]]) -> [Endpoint; N] {
    // Every element is overwritten; the first endpoint only fills the array until then.
    let mut all = [groups[0][0]; N];
    let (mut at, mut group) = (0, 0);
    while group < groups.len() {
        let mut index = 0;
        while index < groups[group].len() {
            all[at] = groups[group][index];
            at += 1;
            index += 1;
        }
        group += 1;
    }
    all
}

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
    /// Fields its list filters by value, `<field>` and `<field>__in`, besides its resource's
    /// filters: a plugin content type's indexed fields.
    pub indexed_fields: Vec<String>,
}

fn capitalized(name: &str) -> String {
    name.split(['_', '-'])
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The name written out in `table` for `plugin`'s `name`, where Pulp's differs from the one
/// Granary derives.
fn written_out(
    table: &[(&str, &str, &'static str)],
    plugin: &str,
    name: &str,
) -> Option<&'static str> {
    table
        .iter()
        .find(|(named_plugin, named, _)| *named_plugin == plugin && *named == name)
        .map(|(_, _, written)| *written)
}

/// The path parameter of a content unit's href, as Pulp names it from the content model's class
/// (`FileContent`: `file_file_content_href`). Where Pulp's class is not `<Type>Content`, its
/// name is written out: pulp-glue looks the parameter up by name (`pulp python content upload`
/// reads the unit it made through `{python_python_package_content_href}`).
fn content_href_param(plugin: &str, type_name: &str) -> String {
    const PULP_NAMES: &[(&str, &str, &str)] = &[
        ("python", "python", "python_python_package_content_href"),
        ("container", "blob", "container_blob_href"),
        ("container", "manifest", "container_manifest_href"),
        ("container", "tag", "container_tag_href"),
    ];
    written_out(PULP_NAMES, plugin, type_name).map_or_else(
        || format!("{plugin}_{type_name}_content_href"),
        str::to_owned,
    )
}

/// The model name Pulp's href parameters and schemas use for a plugin's objects at `segment`:
/// the segment, except where Pulp's class is named otherwise. pulp-glue looks the parameter up
/// by name (`pulp python distribution create` reads what it made through
/// `{python_python_distribution_href}`, though the route is `distributions/python/pypi/`).
fn pulp_model<'a>(plugin: &str, segment: &'a str) -> &'a str {
    const PULP_NAMES: &[(&str, &str, &str)] = &[("python", "pypi", "python")];
    written_out(PULP_NAMES, plugin, segment).unwrap_or(segment)
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
            indexed_fields: Vec::new(),
        }]
    };
    // A kind of content guard: its operations are prefixed by its segment, and its href parameter
    // is its schema's name in snake case, a `_` before each capital (`r_b_a_c_content_guard`).
    let guard = |segment: &str, schema: &str| {
        let mut href = String::new();
        for (index, letter) in schema.char_indices() {
            if index > 0 && letter.is_ascii_uppercase() {
                href.push('_');
            }
            href.push(letter.to_ascii_lowercase());
        }
        core(
            &format!("contentguards_core_{segment}"),
            &format!("{href}_href"),
            schema,
        )
    };
    let typed = |collection: &str, kind: &str, name: fn(&RestNames) -> &String| {
        plugins
            .iter()
            .map(|names| {
                let (plugin, type_name) = (&names.plugin, name(names));
                let model = pulp_model(plugin, type_name);
                Names {
                    prefix: format!("{collection}_{plugin}_{type_name}"),
                    href_param: format!("{plugin}_{model}_{kind}_href"),
                    parent_href_param: None,
                    schema: format!("{plugin}.{}{}", capitalized(model), capitalized(kind)),
                    route_values: vec![("plugin", plugin.clone()), ("type", type_name.clone())],
                    plugin: Some(plugin.clone()),
                    indexed_fields: Vec::new(),
                }
            })
            .collect()
    };
    match resource {
        R::Repository => typed("repositories", "repository", |n| &n.repository),
        R::PushRepository | R::PushRepositoryVersion => plugins
            .iter()
            .filter_map(|names| {
                let (plugin, segment) = (&names.plugin, names.push_type()?);
                // Pulp's names write the segment's `-` as `_`: `container_container_push_…`,
                // `container.ContainerPushRepository`.
                let type_name = segment.replace('-', "_");
                let repository = Names {
                    prefix: format!("repositories_{plugin}_{type_name}"),
                    href_param: format!("{plugin}_{type_name}_repository_href"),
                    parent_href_param: None,
                    schema: format!("{plugin}.{}Repository", capitalized(&type_name)),
                    route_values: vec![("plugin", plugin.clone()), ("type", segment.to_owned())],
                    plugin: Some(plugin.clone()),
                    indexed_fields: Vec::new(),
                };
                Some(if resource == R::PushRepository {
                    repository
                } else {
                    Names {
                        prefix: format!("{}_versions", repository.prefix),
                        href_param: format!("{plugin}_{type_name}_repository_version_href"),
                        parent_href_param: Some(repository.href_param),
                        schema: format!("{plugin}.{}RepositoryVersion", capitalized(&type_name)),
                        ..repository
                    }
                })
            })
            .collect(),
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
                    indexed_fields: Vec::new(),
                }
            })
            .collect(),
        R::BlocklistEntry => plugins
            .iter()
            .filter(|names| crate::domain::blocklists::applies_to(&names.plugin))
            .map(|names| {
                let (plugin, type_name) = (&names.plugin, &names.repository);
                Names {
                    prefix: format!("repositories_{plugin}_{type_name}_blocklist_entries"),
                    href_param: format!("{plugin}_{type_name}_{plugin}_blocklist_entry_href"),
                    parent_href_param: Some(format!("{plugin}_{type_name}_repository_href")),
                    schema: format!("{plugin}.{}BlocklistEntry", capitalized(plugin)),
                    route_values: vec![("plugin", plugin.clone()), ("type", type_name.clone())],
                    plugin: Some(plugin.clone()),
                    indexed_fields: Vec::new(),
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
                        href_param: content_href_param(plugin, &content.type_name),
                        parent_href_param: None,
                        schema: format!("{plugin}.{}", capitalized(&content.type_name)),
                        route_values: vec![
                            ("plugin", plugin.clone()),
                            ("plural", content.endpoint.clone()),
                        ],
                        plugin: Some(plugin.clone()),
                        indexed_fields: content.indexed_fields.clone(),
                    }
                })
            })
            .collect(),
        R::Artifact => core("artifacts", "artifact_href", "Artifact"),
        R::Task => core("tasks", "task_href", "Task"),
        R::TaskPurge => core("tasks", "", "Purge"),
        R::Worker => core("workers", "worker_href", "Worker"),
        R::TaskGroup => core("task_groups", "task_group_href", "TaskGroup"),
        R::Acs => plugins
            .iter()
            .map(|names| {
                let (plugin, type_name) = (&names.plugin, &names.repository);
                Names {
                    prefix: format!("acs_{plugin}_{type_name}"),
                    href_param: format!("{plugin}_{type_name}_alternate_content_source_href"),
                    parent_href_param: None,
                    schema: format!("{plugin}.{}AlternateContentSource", capitalized(type_name)),
                    route_values: vec![("plugin", plugin.clone()), ("type", type_name.clone())],
                    plugin: Some(plugin.clone()),
                    indexed_fields: Vec::new(),
                }
            })
            .collect(),
        R::PulpExporter | R::FilesystemExporter | R::PulpExport | R::FilesystemExport => {
            let kind = if matches!(resource, R::PulpExporter | R::PulpExport) {
                "pulp"
            } else {
                "filesystem"
            };
            let exporter = capitalized(kind);
            let (prefix, href_param, parent, schema) = match resource {
                R::PulpExporter | R::FilesystemExporter => (
                    format!("exporters_core_{kind}"),
                    format!("{kind}_exporter_href"),
                    None,
                    format!("{exporter}Exporter"),
                ),
                _ => (
                    format!("exporters_core_{kind}_exports"),
                    format!("{kind}_{kind}_export_href"),
                    Some(format!("{kind}_exporter_href")),
                    format!("{exporter}Export"),
                ),
            };
            vec![Names {
                prefix,
                href_param,
                parent_href_param: parent,
                schema,
                route_values: vec![("kind", kind.to_owned())],
                plugin: None,
                indexed_fields: Vec::new(),
            }]
        }
        R::PulpImporter => core("importers_core_pulp", "pulp_importer_href", "PulpImporter"),
        R::PulpImport => vec![Names {
            prefix: "importers_core_pulp_imports".into(),
            href_param: "pulp_pulp_import_href".into(),
            parent_href_param: Some("pulp_importer_href".into()),
            schema: "PulpImport".into(),
            route_values: Vec::new(),
            plugin: None,
            indexed_fields: Vec::new(),
        }],
        R::PulpImportCheck => core("pulp_import_check", "", "PulpImportCheck"),
        R::UpstreamPulp => core("upstream_pulps", "upstream_pulp_href", "UpstreamPulp"),
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
            indexed_fields: Vec::new(),
        }],
        R::OrphansCleanup => core("orphans_cleanup", "", "OrphansCleanup"),
        R::ReclaimSpace => core("repositories_reclaim_space", "", "ReclaimSpace"),
        R::Repair => core("repair", "", "Repair"),
        R::Plugin => core("plugins", "plugin_href", "Plugin"),
        R::Status => core("status", "", "Status"),
        R::Livez => core("livez", "", "Livez"),
        R::Role => core("roles", "role_href", "Role"),
        R::Group => core("groups", "group_href", "Group"),
        R::AccessPolicy => core("access_policies", "access_policy_href", "AccessPolicy"),
        R::GroupUser | R::GroupRole | R::UserRole => {
            // Objects inside a user or a group, named as Pulp names them.
            let (prefix, href_param, parent, schema) = match resource {
                R::GroupUser => (
                    "groups_users",
                    "groups_user_href",
                    "group_href",
                    "GroupUser",
                ),
                R::GroupRole => (
                    "groups_roles",
                    "groups_group_role_href",
                    "group_href",
                    "GroupRole",
                ),
                _ => (
                    "users_roles",
                    "auth_users_user_role_href",
                    "auth_user_href",
                    "UserRole",
                ),
            };
            vec![Names {
                prefix: prefix.into(),
                href_param: href_param.into(),
                parent_href_param: Some(parent.into()),
                schema: schema.into(),
                route_values: Vec::new(),
                plugin: None,
                indexed_fields: Vec::new(),
            }]
        }
        R::AllContentGuards => core("contentguards", "", "ContentGuard"),
        R::RbacContentGuard => guard("rbac", "RBACContentGuard"),
        R::ContentRedirectContentGuard => guard("content_redirect", "ContentRedirectContentGuard"),
        R::HeaderContentGuard => guard("header", "HeaderContentGuard"),
        R::X509CertGuard => guard("x509", "X509CertGuard"),
        R::CompositeContentGuard => guard("composite", "CompositeContentGuard"),
    }
}

/// The tag grouping an operation: the resource's kind, and for a plugin resource its plugin.
pub fn tag(resource: Resource, names: &Names) -> String {
    let kind = match resource {
        R::Repository
        | R::RepositoryVersion
        | R::PushRepository
        | R::PushRepositoryVersion
        | R::BlocklistEntry => "Repositories",
        R::Remote => "Remotes",
        R::Publication => "Publications",
        R::Distribution => "Distributions",
        R::Content => "Content",
        R::Artifact => return "Artifacts".into(),
        R::Task | R::TaskPurge => return "Tasks".into(),
        R::Worker => return "Workers".into(),
        R::TaskGroup => return "Task-Groups".into(),
        R::Acs => "Acs",
        R::PulpExporter | R::PulpExport => return "Exporters: Pulp".into(),
        R::FilesystemExporter | R::FilesystemExport => return "Exporters: Filesystem".into(),
        R::PulpImporter | R::PulpImport | R::PulpImportCheck => return "Importers: Pulp".into(),
        R::UpstreamPulp => return "Upstream-Pulps".into(),
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
        R::Role => return "Roles".into(),
        R::Group | R::GroupUser | R::GroupRole => return "Groups".into(),
        R::UserRole => return "Users".into(),
        R::AccessPolicy => return "Access Policies".into(),
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
pub fn path_of(endpoint: &Endpoint, names: &Names, style: PathStyle) -> (String, Vec<Parameter>) {
    let mut route = endpoint.route.to_string();
    for (placeholder, value) in &names.route_values {
        route = route.replace(&format!("{{{placeholder}}}"), value);
    }
    let object_params = ["{id}", "{number}", "{name}", "{token}", "{entry}"];
    let last = object_params
        .iter()
        .filter_map(|param| route.find(param).map(|at| (at, *param)))
        .max();
    let Some((at, param)) = last else {
        return (route, Vec::new());
    };
    let in_path = |name: &str, schema: ObjectBuilder| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .schema(Some(schema))
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
            let parameter = in_path(href, schemas::typed(Type::String))
                .description(Some("The object's pulp_href."))
                .build();
            (format!("{{{href}}}{rest}"), vec![parameter])
        }
        PathStyle::Id => {
            let parameters = object_params
                .iter()
                .filter(|param| route.contains(*param))
                .map(|param| {
                    let name = param.trim_matches(|c| c == '{' || c == '}');
                    let schema = match name {
                        "id" | "token" | "entry" => schemas::formatted("uuid"),
                        "number" => schemas::typed(Type::Integer).minimum(Some(0)),
                        _ => schemas::typed(Type::String),
                    };
                    in_path(name, schema).build()
                })
                .collect();
            (route, parameters)
        }
    }
}

/// The operation `endpoint` is for one expansion of its resource.
pub fn operation(
    endpoint: &Endpoint,
    doc: &schemas::Doc,
    names: &Names,
    mut parameters: Vec<Parameter>,
) -> Operation {
    if endpoint.action == "list" {
        parameters.extend(schemas::list_parameters(doc));
        for field in &names.indexed_fields {
            // A resource filter of the same name keeps its meaning (the handler's rule too).
            if parameters.iter().any(|parameter| &parameter.name == field) {
                continue;
            }
            parameters.extend(schemas::value_filters(field));
        }
    }
    if let Some(header) = endpoint.header {
        parameters.push(
            ParameterBuilder::new()
                .name(header)
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .schema(Some(Schema::from(Object::with_type(Type::String))))
                .build(),
        );
    }
    let mut operation = OperationBuilder::new()
        .operation_id(Some(format!("{}_{}", names.prefix, endpoint.action)))
        .summary(Some(endpoint.summary))
        .tag(tag(endpoint.resource, names))
        .parameters(Some(parameters))
        .responses(responses(endpoint, names));
    if matches!(endpoint.resource, R::Status | R::Livez) {
        // No credentials needed: an empty requirement.
        operation = operation.security(SecurityRequirement::default());
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
        let required = if endpoint.body == Body::Patch {
            Required::False
        } else {
            Required::True
        };
        let body = RequestBodyBuilder::new()
            .required(Some(required))
            .content(media, Content::new(Some(Ref::from_schema_name(schema))));
        operation = operation.request_body(Some(body.build()));
    }
    operation.build()
}

/// A response described by `description`, with a JSON body of the component `schema`.
fn response(description: &str, schema: Option<String>) -> Response {
    let response = ResponseBuilder::new().description(description);
    match schema {
        Some(schema) => response.content(
            "application/json",
            Content::new(Some(Ref::from_schema_name(schema))),
        ),
        None => response,
    }
    .build()
}

fn responses(endpoint: &Endpoint, names: &Names) -> Responses {
    let (status, description, schema) = match endpoint.reply {
        Reply::Object(status) => (
            status,
            "The object.",
            Some(format!("{}Response", names.schema)),
        ),
        Reply::Page => (
            200,
            "A page of objects.",
            Some(format!("Paginated{}ResponseList", names.schema)),
        ),
        Reply::Task => (
            202,
            "The task doing the work.",
            Some("AsyncOperationResponse".into()),
        ),
        Reply::Empty if endpoint.resource == R::Livez => (200, "Done.", None),
        Reply::Empty => (204, "Done.", None),
        Reply::Named(status, schema) => (status, "The result.", Some(schema.into())),
    };
    let mut responses = vec![(status, response(description, schema))];
    // Errors share one envelope: `{"field": ["message"]}` for 400, `{"detail": "…"}` otherwise.
    let mut error = |status: u16, description: &str| {
        responses.push((status, response(description, Some("ErrorResponse".into()))));
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
    ResponsesBuilder::new()
        .responses_from_iter(
            responses
                .into_iter()
                .map(|(status, response)| (status.to_string(), response)),
        )
        .build()
}

/// How many `{…}` placeholders the endpoint's route has.
fn count_placeholders(endpoint: &Endpoint) -> usize {
    endpoint.route.matches('{').count()
}
