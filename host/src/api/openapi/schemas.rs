//! What the document says about each resource, derived from its types: the response schema from
//! its view, the request schema from its input (both `utoipa::ToSchema`), the list parameters from
//! its [`ListSpec`] and the filters it declares, and the fields each plugin declares.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::operations::Resource as R;
use crate::api::input::Input;
use crate::api::list::{ExtraFilter, Kind, ListSpec, Resource};
use crate::api::plugin_fields;
use crate::api::typed::Typed;
use crate::api::{
    artifacts, content, content_guards, distributions, plugins, publications, remotes,
    repositories, status, support, tasks, uploads, users,
};

/// A schema, derived when the document is built.
pub type Derive = fn() -> Value;

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
    fn listed<T: Resource>(self, filters: &'static [ExtraFilter]) -> Doc {
        Doc {
            spec: Some(T::SPEC),
            filters,
            ..self
        }
    }

    fn typed<T: Typed>(self) -> Doc {
        self.listed::<T>(T::FILTERS)
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
}

/// What the document derives for `resource`.
pub fn doc(resource: R) -> Doc {
    let doc = Doc::default();
    match resource {
        R::Repository | R::AllRepositories => doc
            .typed::<repositories::Repository>()
            .view::<repositories::RepositoryView>()
            .request::<RepositoryRequest>(&["name"]),
        R::RepositoryVersion | R::AllRepositoryVersions => doc
            .listed::<repositories::Version>(repositories::VERSION_FILTERS)
            .view::<repositories::VersionView>(),
        R::Remote | R::AllRemotes => Doc {
            plugin_fields: Some(plugin_fields::Kind::Remote),
            ..doc
                .typed::<remotes::Remote>()
                .view::<remotes::RemoteView>()
                .input::<remotes::RemoteInput>()
        },
        R::Publication | R::AllPublications => doc
            .typed::<publications::Publication>()
            .view::<publications::PublicationView>()
            .request::<PublicationRequest>(&[]),
        R::Distribution | R::AllDistributions => Doc {
            plugin_fields: Some(plugin_fields::Kind::Distribution),
            ..doc
                .typed::<distributions::Distribution>()
                .view::<distributions::DistributionView>()
                .request::<DistributionRequest>(&["name", "base_path"])
        },
        R::Content => doc
            .listed::<content::Content>(content::FILTERS)
            .view::<content::ContentView>()
            .request::<ContentRequest>(&[]),
        R::AllContent => doc
            .listed::<content::Content>(content::FILTERS)
            .view::<content::ContentView>(),
        R::Artifact => doc
            .listed::<artifacts::Artifact>(&[])
            .view::<artifacts::ArtifactView>()
            .request::<ArtifactRequest>(&["file"]),
        R::Task => doc
            .listed::<tasks::Task>(tasks::FILTERS)
            .view::<tasks::TaskView>(),
        R::Upload => doc
            .listed::<uploads::Upload>(&[])
            .view::<uploads::UploadView>()
            .request::<UploadRequest>(&["size"]),
        R::User => doc
            .listed::<users::UserRow>(&[])
            .view::<users::UserView>()
            .input::<users::UserInput>(),
        R::UserToken => doc
            .listed::<users::Token>(&[])
            .view::<users::TokenView>()
            .input::<users::TokenInput>(),
        R::Plugin => Doc {
            filters: plugins::FILTERS,
            ..doc
                .view::<plugins::PluginView>()
                .request::<PluginRequest>(&["file"])
        },
        R::OrphansCleanup | R::ReclaimSpace | R::Repair | R::Status | R::Livez => doc,
        R::AllContentGuards => doc
            .listed::<content_guards::Guard>(&[])
            .view::<content_guards::GuardView>(),
        R::RbacContentGuard => doc
            .listed::<content_guards::Guard>(&[])
            .view::<content_guards::RbacGuardView>()
            .input::<content_guards::GuardInput>(),
        R::ContentRedirectContentGuard => doc
            .listed::<content_guards::Guard>(&[])
            .view::<content_guards::GuardView>()
            .input::<content_guards::GuardInput>(),
        R::HeaderContentGuard => doc
            .listed::<content_guards::Guard>(&[])
            .view::<content_guards::HeaderGuardView>()
            .input::<content_guards::HeaderGuardInput>(),
        R::X509CertGuard => doc
            .listed::<content_guards::Guard>(&[])
            .view::<content_guards::X509GuardView>()
            .input::<content_guards::X509GuardInput>(),
        R::CompositeContentGuard => doc
            .listed::<content_guards::Guard>(&[])
            .view::<content_guards::CompositeGuardView>()
            .input::<content_guards::CompositeGuardInput>(),
    }
}

/// The JSON schema of `T`, standing alone: the schemas it refers to are inlined, and the `allOf`
/// of a flattened struct merged into one object.
pub fn of<T: ToSchema>() -> Value {
    let mut named = Vec::new();
    T::schemas(&mut named);
    let named: BTreeMap<String, Value> = named
        .into_iter()
        .map(|(name, schema)| (name, value(schema)))
        .collect();
    let mut schema = value(T::schema());
    inline(&mut schema, &named);
    schema
}

fn value(schema: impl Serialize) -> Value {
    // Schemas are plain data: serializing one cannot fail.
    serde_json::to_value(schema).unwrap_or_default()
}

fn inline(schema: &mut Value, named: &BTreeMap<String, Value>) {
    match schema {
        Value::Object(map) => {
            let target = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|reference| reference.strip_prefix("#/components/schemas/"))
                .and_then(|name| named.get(name));
            if let Some(target) = target {
                *schema = target.clone();
                return inline(schema, named);
            }
            map.values_mut().for_each(|value| inline(value, named));
            let merged = match map.get("allOf") {
                Some(Value::Array(parts)) => {
                    parts.iter().all(|part| part.get("properties").is_some())
                }
                _ => false,
            };
            if merged && let Some(Value::Array(parts)) = map.remove("allOf") {
                let mut object = object(Map::new(), Vec::new());
                for part in parts {
                    add_properties(&mut object, &part);
                }
                map.extend(object.as_object().cloned().unwrap_or_default());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| inline(item, named)),
        _ => {}
    }
}

fn object(properties: Map<String, Value>, required: Vec<&str>) -> Value {
    let mut object = json!({ "type": "object", "properties": properties });
    if !required.is_empty() {
        object["required"] = json!(required);
    }
    object
}

/// Adds the properties (and required names) of `from` that `to` lacks: a host field wins over a
/// plugin's of the same name, as in the objects the API answers.
pub fn add_properties(to: &mut Value, from: &Value) {
    if let Some(properties) = from.get("properties").and_then(Value::as_object) {
        for (name, schema) in properties {
            if let Some(own) = to["properties"].as_object_mut() {
                own.entry(name.clone()).or_insert_with(|| schema.clone());
            }
        }
    }
    if let Some(required) = from.get("required").and_then(Value::as_array) {
        let own = to["required"].as_array_mut();
        match own {
            Some(own) => own.extend(required.iter().cloned()),
            None => to["required"] = Value::Array(required.clone()),
        }
    }
}

/// `schema` requiring exactly `required` (none: a `PATCH` body).
pub fn requiring(mut schema: Value, required: &[&str]) -> Value {
    if let Some(map) = schema.as_object_mut() {
        map.remove("required");
        if !required.is_empty() {
            map.insert("required".into(), json!(required));
        }
    }
    schema
}

/// The fields a plugin declares for `kind`, as a schema with properties (its schema language is
/// a subset of JSON Schema, validated when the plugin was loaded).
pub fn plugin_schema(info: &crate::plugins::PluginInfo, kind: plugin_fields::Kind) -> Value {
    let text = match kind {
        plugin_fields::Kind::Remote => &info.remote_fields,
        plugin_fields::Kind::Distribution => &info.distribution_fields,
    };
    let mut schema: Value = serde_json::from_str(text).unwrap_or_default();
    // Declared fields are never required: a create takes their defaults.
    if let Some(map) = schema.as_object_mut() {
        map.remove("required");
    }
    schema
}

/// The page `{count, next, previous, results}` of `item`s.
pub fn page(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["count", "results"],
        "properties": {
            "count": { "type": "integer" },
            "next": { "type": ["string", "null"], "format": "uri" },
            "previous": { "type": ["string", "null"], "format": "uri" },
            "results": { "type": "array", "items": super::operations::reference(&format!("{item}Response")) },
        },
    })
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    let mut parameter = json!({
        "name": name, "in": "query", "required": false, "description": description,
        "schema": schema,
    });
    if parameter["schema"]["type"] == "array" {
        // Comma-separated, as Pulp's `__in` filters.
        parameter["style"] = json!("form");
        parameter["explode"] = json!(false);
    }
    parameter
}

fn list_of(item: Value) -> Value {
    json!({ "type": "array", "items": item })
}

/// The query parameters of a list: pagination and field selection, each lookup of each filter of
/// the spec, `ordering`, and the filters the resource reads itself.
pub fn list_parameters(doc: &Doc) -> Vec<Value> {
    let string = || json!({ "type": "string" });
    let mut parameters = vec![
        query(
            "limit",
            json!({ "type": "integer", "minimum": 1 }),
            "Results per page.",
        ),
        query(
            "offset",
            json!({ "type": "integer", "minimum": 0 }),
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
        let orderings: Vec<String> = spec
            .orderings
            .iter()
            .flat_map(|(name, _)| [name.to_string(), format!("-{name}")])
            .collect();
        parameters.push(query(
            "ordering",
            list_of(json!({ "type": "string", "enum": orderings })),
            "Fields to order by, `-` first for descending.",
        ));
        for filter in spec.filters {
            let schema = match filter.kind {
                Kind::Text => string(),
                Kind::Int => json!({ "type": "integer" }),
                Kind::Time => json!({ "type": "string", "format": "date-time" }),
                Kind::Bool => json!({ "type": "boolean" }),
            };
            for lookup in filter.kind.lookups() {
                let (name, schema) = match *lookup {
                    "exact" => (filter.name.to_owned(), schema.clone()),
                    "in" => (format!("{}__in", filter.name), list_of(schema.clone())),
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
        if spec.labels.is_some() {
            parameters.push(query(
                "pulp_label_select",
                string(),
                "Label conditions, e.g. `env=prod,!legacy`.",
            ));
        }
    }
    for filter in doc.filters {
        let schema = if filter.many {
            list_of(string())
        } else {
            string()
        };
        parameters.push(query(filter.name, schema, filter.description));
    }
    parameters
}

/// The schemas operations name that are not a resource's object.
pub fn named() -> Vec<(&'static str, Value)> {
    let error = json!({
        "type": "object",
        "description": "`{\"field\": [\"message\"]}` for a 400, `{\"detail\": \"message\"}` otherwise.",
        "additionalProperties": true,
    });
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
        (
            "PatchedTaskCancel",
            requiring(of::<TaskCancel>(), &["state"]),
        ),
        ("PatchedPlugin", requiring(of::<PluginPatch>(), &[])),
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
