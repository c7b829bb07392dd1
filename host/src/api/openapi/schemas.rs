//! What the document says about each resource, derived from its types: the response schema from
//! its view, the request schema from its input (both `utoipa::ToSchema`), the list parameters from
//! its [`ListSpec`] and the filters it declares, and the fields each plugin declares.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn, ParameterStyle};
use utoipa::openapi::schema::{
    AdditionalProperties, AllOf, Array, ArrayItems, Object, ObjectBuilder, Schema, SchemaFormat,
    SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr, Required};

use super::operations::Resource as R;
use crate::api::input::Input;
use crate::api::list::{ExtraFilter, Kind, ListSpec, Resource, Takes};
use crate::api::plugin_fields;
use crate::api::typed::Typed;
use crate::api::{
    access_policies, acs, artifacts, blocklists, content, content_guards, distributions, exporters,
    groups, importers, plugins, publications, remotes, repositories, role_assignments, roles,
    status, support, task_groups, tasks, uploads, upstream_pulps, users, workers,
};

/// A schema, derived when the document is built.
pub type Derive = fn() -> RefOr<Schema>;

/// What the document derives for one resource.
#[derive(Default)]
pub struct Doc {
    /// The schema of its response view.
    pub view: Option<Derive>,
    /// The schema of its request body, and the fields a create must give.
    pub request: Option<(Derive, &'static [&'static str])>,
    /// How it is listed.
    pub spec: Option<ListSpec>,
    /// The list filters it reads itself.
    pub filters: &'static [ExtraFilter],
    /// The fields its plugin declares, added to its request and response.
    pub plugin_fields: Option<plugin_fields::Kind>,
}

impl Doc {
    /// A resource listed through `T`'s spec and `filters`, answered as `V`.
    fn listed<T: Resource, V: ToSchema>(filters: &'static [ExtraFilter]) -> Doc {
        Doc {
            spec: Some(T::SPEC),
            filters,
            ..Doc::default().view::<V>()
        }
    }

    /// A plugin resource (`T`, answered as `V`), listed with the filters its type declares.
    fn typed<T: Typed, V: ToSchema>() -> Doc {
        Doc::listed::<T, V>(T::FILTERS)
    }

    /// A kind of content guard: listed as every guard is, answered as `V`, created from `I`.
    fn guard<V: ToSchema, I: Input>() -> Doc {
        Doc::listed::<content_guards::Guard, V>(&[]).input::<I>()
    }

    fn view<V: ToSchema>(self) -> Doc {
        Doc {
            view: Some(of::<V>),
            ..self
        }
    }

    fn request<I: ToSchema>(self, required: &'static [&'static str]) -> Doc {
        Doc {
            request: Some((of::<I>, required)),
            ..self
        }
    }

    fn input<I: Input>(self) -> Doc {
        self.request::<I>(I::REQUIRED)
    }

    /// Adds the fields each plugin declares for its objects of `kind`.
    fn declaring(self, kind: plugin_fields::Kind) -> Doc {
        Doc {
            plugin_fields: Some(kind),
            ..self
        }
    }
}

/// What the document derives for `resource`.
pub fn doc(resource: R) -> Doc {
    match resource {
        R::Repository | R::AllRepositories | R::PushRepository => {
            Doc::typed::<repositories::Repository, repositories::RepositoryView>()
                .request::<RepositoryRequest>(&["name"])
        }
        R::RepositoryVersion | R::AllRepositoryVersions | R::PushRepositoryVersion => {
            Doc::listed::<repositories::Version, repositories::VersionView>(
                repositories::VERSION_FILTERS,
            )
        }
        R::BlocklistEntry => Doc::listed::<
            blocklists::BlocklistEntry,
            blocklists::BlocklistEntryView,
        >(blocklists::FILTERS)
        .request::<BlocklistEntryRequest>(&[]),
        R::Remote | R::AllRemotes => Doc::typed::<remotes::Remote, remotes::RemoteView>()
            .input::<remotes::RemoteInput>()
            .declaring(plugin_fields::Kind::Remote),
        R::Publication | R::AllPublications => {
            Doc::typed::<publications::Publication, publications::PublicationView>()
                .request::<PublicationRequest>(&[])
        }
        R::Distribution | R::AllDistributions => {
            Doc::typed::<distributions::Distribution, distributions::DistributionView>()
                .request::<DistributionRequest>(&["name", "base_path"])
                .declaring(plugin_fields::Kind::Distribution)
        }
        R::Content => Doc::listed::<content::Content, content::ContentView>(content::FILTERS)
            .request::<ContentRequest>(&[]),
        R::AllContent => Doc::listed::<content::Content, content::ContentView>(content::FILTERS),
        R::Artifact => Doc::listed::<artifacts::Artifact, artifacts::ArtifactView>(&[])
            .request::<ArtifactRequest>(&["file"]),
        R::Task => Doc::listed::<tasks::Task, tasks::TaskView>(tasks::FILTERS),
        R::Worker => Doc::listed::<workers::Worker, workers::WorkerView>(workers::FILTERS),
        R::TaskGroup => Doc::listed::<task_groups::TaskGroup, task_groups::TaskGroupView>(&[]),
        R::Acs => Doc::listed::<acs::Source, acs::SourceView>(&[])
            .request::<AcsRequest>(&["name", "remote"]),
        R::PulpExporter => Doc::listed::<exporters::Exporter, exporters::PulpExporterView>(&[])
            .request::<PulpExporterRequest>(&["name", "path", "repositories"]),
        R::FilesystemExporter => {
            Doc::listed::<exporters::Exporter, exporters::FilesystemExporterView>(&[])
                .request::<FilesystemExporterRequest>(&["name", "path"])
        }
        R::PulpExport => Doc::listed::<exporters::Export, exporters::ExportView>(&[])
            .request::<PulpExportRequest>(&[]),
        R::FilesystemExport => Doc::listed::<exporters::Export, exporters::ExportView>(&[])
            .request::<FilesystemExportRequest>(&[]),
        R::PulpImporter => Doc::listed::<importers::Importer, importers::ImporterView>(&[])
            .request::<PulpImporterRequest>(&["name"]),
        R::PulpImport => Doc::listed::<importers::Import, importers::ImportView>(&[])
            .request::<PulpImportRequest>(&[]),
        R::PulpImportCheck => Doc::default(),
        R::UpstreamPulp => {
            Doc::listed::<upstream_pulps::UpstreamPulp, upstream_pulps::UpstreamPulpView>(&[])
                .request::<UpstreamPulpRequest>(&["name", "base_url"])
        }
        R::Upload => Doc::listed::<uploads::Upload, uploads::UploadView>(&[])
            .request::<UploadRequest>(&["size"]),
        R::User => Doc::listed::<users::UserRow, users::UserView>(&[]).input::<users::UserInput>(),
        R::UserToken => {
            Doc::listed::<users::Token, users::TokenView>(&[]).input::<users::TokenInput>()
        }
        R::Plugin => Doc {
            filters: plugins::FILTERS,
            ..Doc::default()
                .view::<plugins::PluginView>()
                .request::<PluginRequest>(&["file"])
        },
        R::OrphansCleanup | R::ReclaimSpace | R::Repair | R::TaskPurge | R::Status | R::Livez => {
            Doc::default()
        }
        R::Role => {
            Doc::listed::<roles::Role, roles::RoleView>(roles::FILTERS).input::<roles::RoleInput>()
        }
        R::Group => {
            Doc::listed::<groups::Group, groups::GroupView>(&[]).input::<groups::GroupInput>()
        }
        R::GroupUser => {
            Doc::listed::<groups::Member, groups::MemberView>(&[]).input::<groups::MemberInput>()
        }
        R::GroupRole | R::UserRole => Doc::listed::<
            role_assignments::Assignment,
            role_assignments::AssignmentView,
        >(role_assignments::FILTERS)
        .input::<role_assignments::AssignmentInput>(),
        R::AccessPolicy => Doc::listed::<crate::rbac::PolicyRow, access_policies::PolicyView>(&[])
            .input::<access_policies::PolicyInput>(),
        R::AllContentGuards => Doc::listed::<content_guards::Guard, content_guards::GuardView>(&[]),
        R::RbacContentGuard => {
            Doc::guard::<content_guards::RbacGuardView, content_guards::GuardInput>()
        }
        R::ContentRedirectContentGuard => {
            Doc::guard::<content_guards::GuardView, content_guards::GuardInput>()
        }
        R::HeaderContentGuard => {
            Doc::guard::<content_guards::HeaderGuardView, content_guards::HeaderGuardInput>()
        }
        R::X509CertGuard => {
            Doc::guard::<content_guards::X509GuardView, content_guards::X509GuardInput>()
        }
        R::CompositeContentGuard => {
            Doc::guard::<content_guards::CompositeGuardView, content_guards::CompositeGuardInput>()
        }
    }
}

/// The schema of `T`, standing alone: the schemas it refers to are inlined, and the `allOf` of a
/// flattened struct merged into one object.
pub fn of<T: ToSchema>() -> RefOr<Schema> {
    let mut named = Vec::new();
    T::schemas(&mut named);
    let named: BTreeMap<String, RefOr<Schema>> = named.into_iter().collect();
    let mut schema = T::schema();
    inline(&mut schema, &named);
    schema
}

fn inline(schema: &mut RefOr<Schema>, named: &BTreeMap<String, RefOr<Schema>>) {
    match schema {
        RefOr::Ref(reference) => {
            let target = reference
                .ref_location
                .strip_prefix("#/components/schemas/")
                .and_then(|name| named.get(name));
            if let Some(target) = target {
                *schema = target.clone();
                inline(schema, named);
            }
        }
        RefOr::T(schema) => inline_within(schema, named),
    }
}

/// Inlines the references of the schemas `schema` is made of.
fn inline_within(schema: &mut Schema, named: &BTreeMap<String, RefOr<Schema>>) {
    match schema {
        Schema::Object(object) => {
            for property in object.properties.values_mut() {
                inline(property, named);
            }
            if let Some(AdditionalProperties::RefOr(values)) =
                object.additional_properties.as_deref_mut()
            {
                inline(values, named);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                inline(items, named);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(|item| inline(item, named)),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(|item| inline(item, named)),
        Schema::AllOf(all_of) => {
            all_of.items.iter_mut().for_each(|item| inline(item, named));
            if let Some(merged) = merged(all_of) {
                *schema = Schema::Object(merged);
            }
        }
        _ => {}
    }
}

/// The `allOf` of objects that a flattened struct derives, as the one object it describes.
fn merged(all_of: &AllOf) -> Option<Object> {
    let mut object = Object::with_type(Type::Object);
    for part in &all_of.items {
        match part {
            RefOr::T(Schema::Object(part)) if !part.properties.is_empty() => {
                add_properties(&mut object, part);
            }
            _ => return None,
        }
    }
    object.title.clone_from(&all_of.title);
    object.description.clone_from(&all_of.description);
    object.default.clone_from(&all_of.default);
    object.example.clone_from(&all_of.example);
    object.examples.clone_from(&all_of.examples);
    object.extensions.clone_from(&all_of.extensions);
    Some(object)
}

/// The object `schema` describes, when it is one.
pub fn object_mut(schema: &mut RefOr<Schema>) -> Option<&mut Object> {
    match schema {
        RefOr::T(Schema::Object(object)) => Some(object),
        _ => None,
    }
}

/// Adds the properties (and required names) of `from` that `to` lacks: a host field wins over a
/// plugin's of the same name, as in the objects the API answers.
pub fn add_properties(to: &mut Object, from: &Object) {
    for (name, schema) in &from.properties {
        to.properties
            .entry(name.clone())
            .or_insert_with(|| schema.clone());
    }
    to.required.extend(from.required.iter().cloned());
}

/// `schema` requiring exactly `required` (none: a `PATCH` body).
pub fn requiring(mut schema: RefOr<Schema>, required: &[&str]) -> RefOr<Schema> {
    if let Some(object) = object_mut(&mut schema) {
        object.required = required.iter().map(ToString::to_string).collect();
    }
    schema
}

/// The fields a plugin declares for `kind`, as an object schema with their properties (its
/// schema language is a subset of JSON Schema, validated when the plugin was loaded; keywords
/// the OpenAPI model has no place for are left out).
pub fn plugin_schema(info: &crate::plugins::PluginInfo, kind: plugin_fields::Kind) -> Object {
    let text = match kind {
        plugin_fields::Kind::Remote => &info.remote_fields,
        plugin_fields::Kind::Distribution => &info.distribution_fields,
    };
    let declared: Value = serde_json::from_str(text).unwrap_or_default();
    let mut object = Object::with_type(Type::Object);
    // Declared fields are never required: a create takes their defaults, so `required` is not
    // read.
    if let Some(properties) = declared.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            if let Ok(property) = RefOr::<Schema>::deserialize(property) {
                object.properties.insert(name.clone(), property);
            }
        }
    }
    object
}

/// A schema of `schema_type`, to build on.
pub fn typed(schema_type: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(schema_type)
}

fn string() -> Schema {
    Object::with_type(Type::String).into()
}

/// A string in `format` (`uuid`, `uri`, `date-time`; the model names the first two only with
/// features this crate leaves off, so all are spelled out).
pub fn formatted(format: &str) -> ObjectBuilder {
    typed(Type::String).format(Some(SchemaFormat::Custom(format.into())))
}

/// The page `{count, next, previous, results}` of `item`s.
pub fn page(item: &str) -> RefOr<Schema> {
    let link = || formatted("uri").schema_type(SchemaType::from_iter([Type::String, Type::Null]));
    typed(Type::Object)
        .required("count")
        .required("results")
        .property("count", Object::with_type(Type::Integer))
        .property("next", link())
        .property("previous", link())
        .property(
            "results",
            Array::new(Ref::from_schema_name(format!("{item}Response"))),
        )
        .into()
}

fn query(name: &str, schema: impl Into<Schema>, description: &str) -> Parameter {
    let schema = schema.into();
    // Lists are comma-separated, as Pulp's `__in` filters.
    let list = matches!(schema, Schema::Array(_));
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .style(list.then_some(ParameterStyle::Form))
        .explode(list.then_some(false))
        .build()
}

fn list_of(item: impl Into<RefOr<Schema>>) -> Array {
    Array::new(item)
}

/// The filters of an indexed field of a plugin's content: `<field>` and `<field>__in`.
pub fn value_filters(field: &str) -> [Parameter; 2] {
    [
        query(field, string(), &format!("`{field}` is this value.")),
        query(
            &format!("{field}__in"),
            list_of(string()),
            &format!("`{field}` is one of these values."),
        ),
    ]
}

/// The query parameters of a list: pagination and field selection, each lookup of each filter of
/// the spec, `ordering`, and the filters the resource reads itself.
pub fn list_parameters(doc: &Doc) -> Vec<Parameter> {
    let mut parameters = vec![
        query(
            "limit",
            typed(Type::Integer).minimum(Some(1)).build(),
            "Results per page.",
        ),
        query(
            "offset",
            typed(Type::Integer).minimum(Some(0)).build(),
            "Results to skip.",
        ),
        query(
            "fields",
            list_of(string()),
            "Only these fields of each result.",
        ),
        query(
            "exclude_fields",
            list_of(string()),
            "All fields of each result but these.",
        ),
    ];
    if let Some(spec) = &doc.spec {
        let orderings = spec
            .orderings
            .iter()
            .flat_map(|(name, _)| [name.to_string(), format!("-{name}")]);
        parameters.push(query(
            "ordering",
            list_of(typed(Type::String).enum_values(Some(orderings))),
            "Fields to order by, `-` first for descending.",
        ));
        for filter in spec.filters {
            let schema: Schema = match filter.kind {
                Kind::Text => string(),
                Kind::Int => Object::with_type(Type::Integer).into(),
                Kind::Time => formatted("date-time").into(),
                Kind::Bool => Object::with_type(Type::Boolean).into(),
            };
            for lookup in filter.kind.lookups() {
                let (name, schema) = match *lookup {
                    "exact" => (filter.name.to_owned(), schema.clone()),
                    "in" => (
                        format!("{}__in", filter.name),
                        list_of(schema.clone()).into(),
                    ),
                    lookup => (format!("{}__{lookup}", filter.name), schema.clone()),
                };
                parameters.push(query(
                    &name,
                    schema,
                    &format!("`{}`, {lookup}.", filter.name),
                ));
            }
        }
        parameters.push(query(
            "pulp_href__in",
            list_of(string()),
            "Only these objects (hrefs).",
        ));
        parameters.push(query(
            "prn__in",
            list_of(string()),
            "Only these objects (PRNs).",
        ));
        parameters.push(query(
            "q",
            string(),
            "The other filters of this list combined with NOT, AND, OR and parentheses, e.g. `name=\"a\" OR pulp_label_select=\"env=prod\"`.",
        ));
        if spec.labels.is_some() {
            parameters.push(query(
                "pulp_label_select",
                string(),
                "Label conditions, e.g. `env=prod,!legacy`.",
            ));
        }
    }
    for filter in doc.filters {
        let schema: Schema = match filter.takes {
            Takes::One => string(),
            Takes::Many => list_of(string()).into(),
            Takes::Flag => Object::with_type(Type::Boolean).into(),
        };
        parameters.push(query(filter.name, schema, filter.description));
    }
    parameters
}

/// The schemas operations name that are not a resource's object.
pub fn named() -> Vec<(&'static str, RefOr<Schema>)> {
    let error = typed(Type::Object)
        .description(Some(
            "`{\"field\": [\"message\"]}` for a 400, `{\"detail\": \"message\"}` otherwise.",
        ))
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .into();
    vec![
        ("AsyncOperationResponse", of::<support::TaskAccepted>()),
        ("SetLabelResponse", of::<support::LabelChanged>()),
        ("StatusResponse", of::<status::StatusView>()),
        ("ErrorResponse", error),
        ("SetLabel", requiring(of::<SetLabel>(), &["key"])),
        ("UnsetLabel", requiring(of::<UnsetLabel>(), &["key"])),
        (
            "RepositorySyncURL",
            requiring(of::<RepositorySyncUrl>(), &[]),
        ),
        (
            "RepositoryAddRemoveContent",
            requiring(of::<RepositoryAddRemoveContent>(), &[]),
        ),
        ("UploadChunk", requiring(of::<UploadChunk>(), &["file"])),
        ("UploadCommit", requiring(of::<UploadCommit>(), &["sha256"])),
        ("OrphansCleanup", requiring(of::<OrphansCleanup>(), &[])),
        (
            "ReclaimSpace",
            requiring(of::<ReclaimSpace>(), &["repo_hrefs"]),
        ),
        ("Repair", requiring(of::<Repair>(), &[])),
        ("Purge", requiring(of::<Purge>(), &[])),
        ("TaskGroupOperationResponse", of::<TaskGroupAccepted>()),
        ("PulpImportCheck", requiring(of::<PulpImportCheck>(), &[])),
        (
            "UpstreamPulpReplicate",
            requiring(of::<UpstreamPulpReplicate>(), &[]),
        ),
        ("PulpImportCheckResponse", of::<PulpImportCheckResponse>()),
        (
            "PatchedTaskCancel",
            requiring(of::<TaskCancel>(), &["state"]),
        ),
        ("PatchedPlugin", requiring(of::<PluginPatch>(), &[])),
        (
            "NestedRole",
            requiring(of::<crate::api::object_roles::NestedRoleInput>(), &["role"]),
        ),
        (
            "NestedRoleResponse",
            of::<crate::api::object_roles::HeldRole>(),
        ),
        (
            "ObjectRolesResponse",
            of::<crate::api::object_roles::ObjectRoles>(),
        ),
        (
            "MyPermissionsResponse",
            of::<crate::api::object_roles::MyPermissions>(),
        ),
        (
            "PreauthenticateURL",
            requiring(of::<content_guards::PreauthenticateInput>(), &["url"]),
        ),
        (
            "PreauthenticatedURLResponse",
            of::<content_guards::PreauthenticatedUrl>(),
        ),
    ]
}

// The request bodies of the resources whose handlers still read their body field by field
// (`support::Fields`): declared here as types for their schemas only, until each resource reads
// its body into its own input type (as remotes and users do, `api::input`).

/// A repository's writable fields.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct RepositoryRequest {
    name: String,
    description: Option<String>,
    /// How many versions to keep; null keeps all.
    #[schema(minimum = 1)]
    retain_repo_versions: Option<i64>,
    /// The remote a sync uses when it names none (an href).
    remote: Option<String>,
    /// Publish each new version in the task that makes it.
    autopublish: bool,
    pulp_labels: BTreeMap<String, String>,
}

/// What a distribution serves and where: one of `publication`, `repository`,
/// `repository_version`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct DistributionRequest {
    name: String,
    /// Its path under the content app's prefix.
    base_path: String,
    publication: Option<String>,
    repository: Option<String>,
    repository_version: Option<String>,
    /// A remote to fetch missing content from (pull-through).
    remote: Option<String>,
    content_guard: Option<String>,
    hidden: bool,
    /// Readable only by users who may view its repository.
    private: bool,
    pulp_labels: BTreeMap<String, String>,
}

/// The version to publish: a repository's latest, or one version.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct PublicationRequest {
    repository: Option<String>,
    repository_version: Option<String>,
}

/// A content unit from an uploaded `file` or an existing `artifact`, optionally added to a
/// `repository` in the same task.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct ContentRequest {
    #[schema(value_type = String, format = Binary)]
    file: (),
    artifact: Option<String>,
    relative_path: String,
    repository: String,
}

/// An uploaded file, with the size and digest it must have.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct ArtifactRequest {
    #[schema(value_type = String, format = Binary)]
    file: (),
    size: i64,
    sha256: String,
}

/// A chunked upload of `size` bytes.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct UploadRequest {
    #[schema(minimum = 0)]
    size: i64,
}

/// A plugin component (`.wasm`) to install or upgrade to.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct PluginRequest {
    #[schema(value_type = String, format = Binary)]
    file: (),
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct SetLabel {
    key: String,
    value: Option<String>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct UnsetLabel {
    key: String,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct RepositorySyncUrl {
    remote: Option<String>,
    mirror: bool,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct RepositoryAddRemoveContent {
    add_content_units: Vec<String>,
    remove_content_units: Vec<String>,
    base_version: Option<String>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct UploadChunk {
    #[schema(value_type = String, format = Binary)]
    file: (),
    sha256: String,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct UploadCommit {
    sha256: String,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct OrphansCleanup {
    content_hrefs: Vec<String>,
    #[schema(minimum = 0)]
    orphan_protection_time: Option<i64>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct ReclaimSpace {
    repo_hrefs: Vec<String>,
    repo_versions_keeplist: Vec<String>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct Repair {
    verify_checksums: bool,
}

/// An alternate content source's writable fields.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct AcsRequest {
    name: String,
    /// A remote of the same plugin whose policy is `on_demand` (an href).
    remote: String,
    /// Paths below the remote's URL where files are looked for.
    paths: Vec<String>,
}

/// A pulp exporter's writable fields.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct PulpExporterRequest {
    /// Unique.
    name: String,
    /// A directory below one of the server's allowed export paths.
    path: String,
    /// The repositories to export (hrefs).
    repositories: Vec<String>,
}

/// A filesystem exporter's writable fields.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct FilesystemExporterRequest {
    /// Unique.
    name: String,
    /// A directory below one of the server's allowed export paths.
    path: String,
    /// `write` (the default), `hardlink` or `symlink`.
    method: Option<String>,
}

/// What a pulp export is asked for.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct PulpExportRequest {
    /// Every artifact (true, the default) or those added since the start versions.
    full: Option<bool>,
    /// Check and count what would be exported; write nothing.
    dry_run: Option<bool>,
    /// The versions to export (hrefs, one per repository) instead of the latest.
    versions: Option<Vec<String>>,
    /// Cut the tar into files of at most this size (`512MB`, `1GB`; units B/KB/MB/GB/TB).
    chunk_size: Option<String>,
    /// Where an incremental export starts (hrefs, one per repository) instead of the last
    /// export.
    start_versions: Option<Vec<String>>,
    /// Copied into the table of contents.
    #[schema(value_type = Option<Object>)]
    meta: Option<Value>,
}

/// What a filesystem export is asked for: a publication or a repository version.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct FilesystemExportRequest {
    /// A publication (href).
    publication: Option<String>,
    /// A repository version (href).
    repository_version: Option<String>,
    /// Only files whose artifacts this version lacks (href).
    start_repository_version: Option<String>,
}

/// A pulp importer's writable fields.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct PulpImporterRequest {
    /// Unique.
    name: String,
    /// `{repository name in an export: local repository name}`.
    #[schema(value_type = Option<Object>)]
    repo_mapping: Option<Value>,
}

/// What an import is asked for: an export's tar, or its table of contents.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct PulpImportRequest {
    /// The export's tar (below an allowed import path).
    path: Option<String>,
    /// The export's table of contents (below an allowed import path).
    toc: Option<String>,
    /// Create the repositories the server lacks.
    create_repositories: Option<bool>,
}

/// What `import-check/` is asked about.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct PulpImportCheck {
    /// A proposed `path`.
    path: Option<String>,
    /// A proposed `toc`.
    toc: Option<String>,
    /// A proposed mapping, as JSON text.
    repo_mapping: Option<String>,
}

/// What `import-check/` answers: each proposed parameter evaluated.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a response schema only")]
struct PulpImportCheckResponse {
    toc: Option<importers::Evaluation>,
    path: Option<importers::Evaluation>,
    repo_mapping: Option<importers::Evaluation>,
}

/// A blocklist entry's fields: a `name` (with a `version` or not) or a `filename`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct BlocklistEntryRequest {
    /// A project to refuse in every version (compared after PEP 503 normalization).
    name: Option<String>,
    /// The one version of `name` to refuse (the exact string, a PEP 440 version).
    version: Option<String>,
    /// A file name to refuse.
    filename: Option<String>,
}

/// An upstream Pulp's writable fields.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct UpstreamPulpRequest {
    /// Unique.
    name: String,
    /// Scheme, host and port, e.g. `https://pulp.example.com`.
    base_url: String,
    /// The API root; `/pulp/` when not given.
    api_root: Option<String>,
    domain: Option<String>,
    username: Option<String>,
    password: Option<String>,
    /// PEM.
    ca_cert: Option<String>,
    /// PEM.
    client_cert: Option<String>,
    /// PEM.
    client_key: Option<String>,
    tls_validation: Option<bool>,
    download_concurrency: Option<i64>,
    max_retries: Option<i64>,
    total_timeout: Option<f64>,
    connect_timeout: Option<f64>,
    sock_connect_timeout: Option<f64>,
    sock_read_timeout: Option<f64>,
    /// `pulp_label_select="key=value"`: only the upstream distributions with that label.
    q_select: Option<String>,
    /// `all` (the default), `labeled` or `nodelete`.
    policy: Option<String>,
    /// Origins (`scheme://host[:port]`) the replicated remotes may reach besides the
    /// upstream's own, even on loopback or private addresses: a content app of the upstream
    /// that answers on another origin than its API. A Granary field.
    allowed_origins: Option<Vec<String>>,
}

/// What `replicate/` may be given.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct UpstreamPulpReplicate {
    /// A selection for this run only; nothing is deleted.
    q_select: Option<String>,
}

/// `202 {"task_group": href}`: work queued as a group of tasks.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a response schema only")]
struct TaskGroupAccepted {
    task_group: String,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct Purge {
    /// Purge tasks that finished before this time (30 days ago when not given).
    #[schema(format = DateTime)]
    finished_before: String,
    /// The (final) states of the tasks to purge; `["completed"]` when not given.
    states: Vec<PurgeState>,
}

/// A state a purge may delete tasks in.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[expect(dead_code, reason = "a request schema only")]
enum PurgeState {
    Skipped,
    Completed,
    Failed,
    Canceled,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct TaskCancel {
    state: Canceled,
}

/// The one state a client may set a task to.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[expect(dead_code, reason = "a request schema only")]
enum Canceled {
    Canceled,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a request schema only")]
struct PluginPatch {
    enabled: bool,
}
