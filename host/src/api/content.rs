//! `content/<plugin>/<type>s/`: list and read content units; create one from an uploaded file.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, Multipart, OriginalUri, Path, RawPathParams,
    Request,
};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::access::{Call, Caller};
use super::list::{
    self, Bind, Conditions, ExtraFilter, Identity, ListQuery, ListRequest, Visibility, fetch_by_id,
    resource, shaped,
};
use super::routes::Routes;
use super::support::{
    self, Fields, Form, LabelChange, MAX_FORM_TEXT, referenced, spawn_task, stage_file, text_field,
};
use super::typed::{self, PluginScope};
use crate::domain::artifacts::{self};
use crate::domain::hrefs::{self, Collection, Href, RestNames};
use crate::error::{ApiError, ApiResult};
use crate::plugins::LoadedPlugin;
use crate::plugins::rest_names::PluginNames;
use crate::state::{App, AppState};
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Routes.
pub fn router() -> Routes {
    Routes::new()
        .route(
            "/pulp/api/v3/content/{plugin}/{plural}/",
            get(list).post(create).layer(DefaultBodyLimit::disable()),
        )
        .route("/pulp/api/v3/content/{plugin}/{plural}/{id}/", get(read))
        .route(
            "/pulp/api/v3/content/{plugin}/{plural}/{id}/set_label/",
            post(label::<true>),
        )
        .route(
            "/pulp/api/v3/content/{plugin}/{plural}/{id}/unset_label/",
            post(label::<false>),
        )
        .route("/pulp/api/v3/content/", get(list))
}

/// A `content/<plugin>/<plural>/` route: the loaded plugin and the content type it answers as
/// `plural`, found before a handler runs (404 for any other).
struct ContentRoute {
    plugin: String,
    plural: String,
    loaded: Arc<LoadedPlugin>,
    type_name: String,
}

impl FromRequestParts<AppState> for ContentRoute {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        /// The route's type segments (an object's id may follow).
        #[derive(Deserialize)]
        struct Segments {
            plugin: String,
            plural: String,
        }
        let Path(Segments { plugin, plural }) = Path::from_request_parts(parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let loaded = app
            .plugins
            .get(&plugin)
            .ok_or_else(|| ApiError::not_found().into_response())?;
        let type_name = PluginNames::of(&loaded.info)
            .and_then(|names| {
                names
                    .content
                    .into_iter()
                    .find(|content| content.endpoint == plural)
            })
            .map(|content| content.type_name)
            .ok_or_else(|| ApiError::not_found().into_response())?;
        Ok(ContentRoute {
            plugin,
            plural,
            loaded,
            type_name,
        })
    }
}

/// No type on the route that names none (`content/`).
impl axum::extract::OptionalFromRequestParts<AppState> for ContentRoute {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Option<Self>, Response> {
        let params = RawPathParams::from_request_parts(parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        if params.iter().next().is_none() {
            return Ok(None);
        }
        <Self as FromRequestParts<AppState>>::from_request_parts(parts, app)
            .await
            .map(Some)
    }
}

/// The condition keeping the units of one type: the plugin, then the type's name.
pub(crate) const OF_TYPE: &str = "c.plugin = ? AND c.type_name = ?";

impl ContentRoute {
    /// The conditions of the filters on its type's indexed fields, each `<field>` and
    /// `<field>__in` (pulp_container's `digest`, `name__in`), answered from `content_keys`
    /// without reading the units. A field one of [`FILTERS`] names keeps that filter's meaning.
    fn indexed_filters(&self, query: &ListQuery) -> Conditions {
        let mut conditions = Conditions::new();
        let Some(content_type) = (self.loaded.info.content_types.iter())
            .find(|content_type| content_type.name == self.type_name)
        else {
            return conditions;
        };
        let fields = (content_type.indexed_fields.iter())
            .filter(|field| !FILTERS.iter().any(|filter| filter.name == field.as_str()));
        for field in fields {
            let exact = query.get(field.as_str()).map(|value| vec![value.as_str()]);
            let listed = query
                .get(&format!("{field}__in"))
                .map(|value| list::split_list(value).collect::<Vec<_>>());
            // As django-filter: an empty value filters nothing.
            for values in [exact, listed].into_iter().flatten() {
                let values: Vec<&str> = values.into_iter().filter(|v| !v.is_empty()).collect();
                if values.is_empty() {
                    continue;
                }
                let marks = vec!["?"; values.len()].join(", ");
                let mut binds = vec![
                    Bind::from(self.plugin.as_str()),
                    Bind::from(self.type_name.as_str()),
                    Bind::from(field.as_str()),
                ];
                binds.extend(values.into_iter().map(Bind::from));
                conditions.push(
                    &format!(
                        "EXISTS (SELECT 1 FROM content_keys k WHERE k.content_id = c.id
                         AND k.plugin = ? AND k.type_name = ? AND k.field = ? AND k.value IN ({marks}))"
                    ),
                    binds,
                );
            }
        }
        conditions
    }

    /// The conditions keeping the units of its type.
    fn conditions(&self) -> Conditions {
        Conditions::of(
            OF_TYPE,
            [
                Bind::from(self.plugin.as_str()),
                Bind::from(self.type_name.as_str()),
            ],
        )
    }
}

resource! {
    /// A row of `content`, with the artifact of its first content-artifact.
    pub(crate) struct Content in "content c" as c {
        plugin: String,
        type_name: String,
        natural_key: String,
        metadata: String,
        labels: String,
        created: String,
        updated: Option<String>,
        artifact_id: Option<String> = "(SELECT ca.artifact_id FROM content_artifacts ca
            WHERE ca.content_id = c.id ORDER BY ca.relative_path LIMIT 1)",
    }
    filters: time pulp_created = created;
    labels: labels;
    orderings: pulp_created = created, pk = id, pulp_id = id;
    default_ordering: "pulp_created";
}

/// A unit as Pulp shows it: its identity fields, then the plugin's metadata and key fields (which
/// follow, so in the object every response is shaped through they win over an identity field of
/// the same name, the key over the metadata).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ContentView {
    #[serde(flatten)]
    identity: Identity,
    #[schema(value_type = BTreeMap<String, String>)]
    pulp_labels: Map<String, Value>,
    artifact: Option<String>,
    /// The plugin's metadata and key fields, which differ by content type.
    #[serde(flatten)]
    #[schema(ignore)]
    metadata: Map<String, Value>,
    #[serde(flatten)]
    #[schema(ignore)]
    natural_key: Map<String, Value>,
}

impl ContentView {
    fn new(names: &RestNames, content: Content) -> Self {
        let object = |text: &str| match serde_json::from_str(text) {
            Ok(Value::Object(fields)) => fields,
            _ => Map::new(),
        };
        let mut identity = Identity::immutable(
            hrefs::content(names, &content.plugin, &content.type_name, &content.id),
            format!(
                "prn:{}.{}content:{}",
                content.plugin, content.type_name, content.id
            ),
            content.created,
        );
        if let Some(updated) = content.updated {
            identity.pulp_last_updated = updated;
        }
        ContentView {
            identity,
            pulp_labels: object(&content.labels),
            artifact: content
                .artifact_id
                .map(|artifact| hrefs::artifact(&artifact)),
            metadata: object(&content.metadata),
            natural_key: object(&content.natural_key),
        }
    }
}

/// The content the caller may see, scoped as Pulp scopes it: staff see every unit; others, the
/// units of the repositories they may view (of `plugin`, or of every plugin), so that a private
/// repository does not show its package names through `content/`. A unit in no repository is
/// for staff only.
async fn visible_content(
    app: &App,
    caller: &Caller,
    plugin: Option<&str>,
) -> ApiResult<Visibility> {
    let scope = PluginScope {
        collection: Collection::Repositories,
        only: plugin,
        plugin_column: "c.plugin",
        id_column: "rc.repository_id",
    };
    scope
        .visibility(app, caller, |repositories| {
            Some(format!(
                "EXISTS (SELECT 1 FROM repository_content rc WHERE rc.content_id = c.id AND {})",
                repositories.unwrap_or("1 = 1")
            ))
        })
        .await
}

/// `content/<plugin>/<plural>/`: the units of one type; `content/`: of every type. Either way
/// those the caller may see.
async fn list(
    Call { app, caller }: Call,
    route: Option<ContentRoute>,
    request: ListRequest,
) -> ApiResult<Response> {
    let plugin = route.as_ref().map(|route| route.plugin.as_str());
    let visibility = visible_content(&app, &caller, plugin).await?;
    let names = app.plugins.rest_names();
    let mut conditions = route
        .as_ref()
        .map_or_else(Conditions::new, ContentRoute::conditions);
    conditions.extend(filters(&names, &request.query)?);
    if let Some(route) = &route {
        conditions.extend(route.indexed_filters(&request.query));
    }
    let total = match route {
        None if visibility.is_all() => membership_count(&app, &names, &request.query).await?,
        _ => None,
    };
    list::list_with_total::<Content, _>(
        &app,
        &request,
        (conditions, &visibility),
        |content| ContentView::new(&names, content),
        total,
    )
    .await
}

/// The count of a list of every type's units in, added to or removed from one version, read from
/// `repository_content` alone when that filter is the list's only one and the caller sees every
/// unit: the same number the list's conditions would count (a unit has one row per stretch of
/// versions it is in, and those never overlap), without looking up each unit in `content`
/// (0.03 s instead of 0.25 s for 100,000 units on SQLite). `None`: count as usual.
async fn membership_count(
    app: &App,
    names: &RestNames,
    query: &ListQuery,
) -> ApiResult<Option<i64>> {
    const PAGING: [&str; 5] = ["limit", "offset", "ordering", "fields", "exclude_fields"];
    let mut narrowing = query
        .iter()
        .filter(|(param, value)| !PAGING.contains(&param.as_str()) && !value.is_empty());
    let (Some((param, href)), None) = (narrowing.next(), narrowing.next()) else {
        return Ok(None);
    };
    let Some((_, condition, binds_number_twice)) = VERSION_FILTERS
        .iter()
        .find(|(name, ..)| name == param && !name.starts_with("not_"))
    else {
        return Ok(None);
    };
    let Some(Href::Version { id, number, .. }) = hrefs::parse(names, href) else {
        return Ok(None);
    };
    let mut binds = vec![Bind::Text(id), Bind::Int(number)];
    if *binds_number_twice {
        binds.push(Bind::Int(number));
    }
    let conditions = Conditions::of(&format!("rc.repository_id = ? AND {condition}"), binds);
    let sql = format!(
        "SELECT COUNT(*) FROM repository_content rc{}",
        conditions.where_clause()
    );
    let row = conditions
        .bind(sqlx::query(&sql))
        .fetch_one(app.db.pool())
        .await?;
    Ok(Some(sqlx::Row::get(&row, 0)))
}

/// The list filters [`filters`] reads besides the spec's.
pub(crate) const FILTERS: &[ExtraFilter] = &[
    ExtraFilter::one(
        "repository_version",
        "Content in this repository version (an href).",
    ),
    ExtraFilter::one(
        "repository_version_added",
        "Content this version added (an href).",
    ),
    ExtraFilter::one(
        "repository_version_removed",
        "Content this version removed (an href).",
    ),
    ExtraFilter::one(
        "not_in_repository_version",
        "Content not in this repository version (an href; with `repository_version`, the difference between two versions).",
    ),
    ExtraFilter::one("relative_path", "Content with an artifact at this path."),
    ExtraFilter::one(
        "relative_path__contains",
        "Content with an artifact whose path contains this text (case-sensitive).",
    ),
    ExtraFilter::one(
        "relative_path__icontains",
        "Content with an artifact whose path contains this text, ignoring case.",
    ),
    ExtraFilter::one(
        "relative_path__startswith",
        "Content with an artifact whose path starts with this text.",
    ),
    ExtraFilter::one("sha256", "Content with an artifact of this sha256."),
];

/// Content in a version: added at or before it and not removed by then.
const IN_VERSION: &str =
    "rc.version_added <= ? AND (rc.version_removed IS NULL OR rc.version_removed > ?)";

/// The filters that name a repository version: each one's condition on a row `rc` of
/// `repository_content` (after its repository), and whether it binds the number twice.
const VERSION_FILTERS: [(&str, &str, bool); 4] = [
    ("repository_version", IN_VERSION, true),
    ("not_in_repository_version", IN_VERSION, true),
    ("repository_version_added", "rc.version_added = ?", false),
    (
        "repository_version_removed",
        "rc.version_removed = ?",
        false,
    ),
];

/// The conditions of the list filters in [`FILTERS`], which name other objects.
fn filters(names: &RestNames, query: &ListQuery) -> ApiResult<Conditions> {
    let mut conditions = Conditions::new();
    for (param, condition, binds_number_twice) in VERSION_FILTERS {
        let Some(href) = query.get(param) else {
            continue;
        };
        let Some(Href::Version { id, number, .. }) = hrefs::parse(names, href) else {
            return Err(ApiError::field(
                param,
                "Invalid hyperlink - not a repository version href.",
            ));
        };
        let mut binds = vec![Bind::Text(id), Bind::Int(number)];
        if binds_number_twice {
            binds.push(Bind::Int(number));
        }
        let negation = if param.starts_with("not_") {
            "NOT "
        } else {
            ""
        };
        conditions.push(
            &format!(
                "{negation}EXISTS (SELECT 1 FROM repository_content rc WHERE rc.content_id = c.id AND rc.repository_id = ? AND {condition})"
            ),
            binds,
        );
    }
    for field in ["relative_path", "sha256"] {
        if let Some(value) = query.get(field) {
            conditions.push(
                &format!(
                    "EXISTS (SELECT 1 FROM content_artifacts ca LEFT JOIN artifacts a ON a.id = ca.artifact_id
                     WHERE ca.content_id = c.id AND {} = ?)",
                    if field == "sha256" { "a.sha256" } else { "ca.relative_path" },
                ),
                [Bind::from(value.as_str())],
            );
        }
    }
    // pulp_file's lookups on a path (the web UI's search is `icontains`).
    for lookup in ["contains", "icontains", "startswith"] {
        let Some(value) = query.get(&format!("relative_path__{lookup}")) else {
            continue;
        };
        if let Some((condition, binds)) = list::text_condition("ca.relative_path", lookup, value) {
            conditions.push(
                &format!(
                    "EXISTS (SELECT 1 FROM content_artifacts ca WHERE ca.content_id = c.id AND {condition})"
                ),
                binds,
            );
        }
    }
    Ok(conditions)
}

async fn read(
    Call { app, caller }: Call,
    route: ContentRoute,
    Path((_, _, id)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<Value>> {
    let visibility = visible_content(&app, &caller, Some(&route.plugin)).await?;
    let content: Content = fetch_by_id(&app.db, &id, route.conditions(), &visibility).await?;
    Ok(shaped(
        &uri,
        &ContentView::new(&app.plugins.rest_names(), content),
    ))
}

/// `POST set_label/ {key, value}` (`SET`) or `unset_label/ {key}`: changes one label of a unit
/// the caller may see (404 otherwise), when their policy allows it (Pulp's default: holding
/// `core.manage_content_labels`, the `core.content_labeler` role).
async fn label<const SET: bool>(
    Call { app, caller }: Call,
    route: ContentRoute,
    Path((_, _, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let visibility = visible_content(&app, &caller, Some(&route.plugin)).await?;
    let content: Content = fetch_by_id(&app.db, &id, route.conditions(), &visibility).await?;
    let (action, change) = if SET {
        ("set_label", LabelChange::Set)
    } else {
        ("unset_label", LabelChange::Unset)
    };
    caller
        .authorize_action(
            &app,
            &format!("content/{}/{}", route.plugin, route.plural),
            action,
        )
        .await?;
    support::change_label(&app, "content", &content.id, &fields, change).await
}

/// `POST` multipart: `file` (or an `artifact` href, or an uncommitted `upload` href),
/// `relative_path`, optional `repository`.
async fn create(
    Call { app, caller }: Call,
    ContentRoute {
        plugin,
        plural,
        loaded,
        ..
    }: ContentRoute,
    request: Request,
) -> ApiResult<Response> {
    let creator = Creator {
        caller: &caller,
        viewset: format!("content/{plugin}/{plural}"),
    };
    let mut artifact: Option<artifacts::Artifact> = None;
    let mut text: HashMap<String, String> = HashMap::new();
    let media = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !media.starts_with("multipart/form-data") {
        // Without a file the fields may come as a form or as JSON, as Pulp accepts them
        // (pulp-glue sends an `upload` href as a form).
        return create_from(
            &app,
            &creator,
            &plugin,
            &loaded,
            None,
            text_fields(&media, request).await?,
        )
        .await;
    }
    let multipart = Multipart::from_request(request, &app)
        .await
        .map_err(|error| ApiError::bad_request(format!("Invalid multipart body: {error}")))?;
    let mut form = Form::from(multipart);
    while let Some(mut field) = form.next().await? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let received =
                stage_file(&app, &mut field, app.config.max_upload_bytes, |_| {}).await?;
            artifact = Some(super::artifacts::store_received(&app, received, "upload").await?);
        } else {
            let value = text_field(&mut field, MAX_FORM_TEXT).await?;
            text.insert(name, value);
        }
    }
    create_from(&app, &creator, &plugin, &loaded, artifact, text).await
}

/// Who creates content, through which endpoint (its access policy).
struct Creator<'a> {
    caller: &'a Caller,
    viewset: String,
}

/// Largest form or JSON body of a content create (it has no file, only a few hrefs).
const MAX_FIELDS_BODY: usize = 64 * 1024;

/// The fields of a non-multipart content create: `application/x-www-form-urlencoded` or JSON.
async fn text_fields(media: &str, request: Request) -> ApiResult<HashMap<String, String>> {
    let bytes = axum::body::to_bytes(request.into_body(), MAX_FIELDS_BODY)
        .await
        .map_err(|error| ApiError::unread_body(&error, MAX_FIELDS_BODY as u64))?;
    if media.starts_with("application/x-www-form-urlencoded") {
        return Ok(url::form_urlencoded::parse(&bytes).into_owned().collect());
    }
    if media.starts_with("application/json") {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(ApiError::bad_request(
                "The request body must be a JSON object.",
            ));
        };
        return Ok(map
            .into_iter()
            .filter_map(|(key, value)| match value {
                Value::Null => None,
                Value::String(text) => Some((key, text)),
                other => Some((key, other.to_string())),
            })
            .collect());
    }
    Err(ApiError::detail(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Send multipart/form-data, application/x-www-form-urlencoded or application/json.",
    ))
}

/// Queues the upload task for a content create, from its file (already stored) or its text
/// fields.
async fn create_from(
    app: &App,
    creator: &Creator<'_>,
    plugin: &str,
    loaded: &LoadedPlugin,
    artifact: Option<artifacts::Artifact>,
    text: HashMap<String, String>,
) -> ApiResult<Response> {
    let names = app.plugins.rest_names();
    // The repository it goes into and the upload it comes from must be the caller's to use.
    // (A file part is stored before the form's other fields are read, as any multipart
    // server reads them in order; refused, it is an orphan that orphan cleanup removes.)
    let fields = Fields(
        text.iter()
            .map(|(name, value)| (name.clone(), Value::String(value.clone())))
            .collect(),
    );
    let references = typed::references(&names, &fields);
    creator
        .caller
        .authorize(app, &creator.viewset, "create", &references)
        .await?;
    // A path that would leave the distribution is the client's error, answered now rather than
    // by a task that fails.
    if let Some(path) = text.get("relative_path") {
        crate::plugins::validate_relative_path(path)
            .map_err(|message| ApiError::field("relative_path", message))?;
    }
    let mut locks = Vec::new();
    // An uncommitted chunked upload (pulp-cli sends large files this way): the task assembles it.
    let upload_id = match text.get("upload").filter(|value| !value.is_empty()) {
        Some(href) if artifact.is_none() => {
            let Some(Href::Upload { id }) = hrefs::parse(&names, href) else {
                return Err(ApiError::field(
                    "upload",
                    "Invalid hyperlink - not an upload href.",
                ));
            };
            let _: (String,) =
                referenced(app, "upload", "SELECT id FROM uploads WHERE id = $1", &id).await?;
            locks.push(ResourceLock::exclusive(hrefs::upload(&id)));
            Some(id)
        }
        _ => None,
    };
    let source = match (artifact, text.get("artifact"), upload_id) {
        (Some(artifact), _, _) => Source::Artifact(artifact.sha256),
        (None, Some(href), None) => Source::Artifact(artifact_by_href(app, href).await?.sha256),
        (None, None, Some(upload_id)) => Source::Upload(upload_id),
        (None, Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "Only one of file, artifact and upload may be given.",
            ));
        }
        (None, None, None) => {
            return Err(ApiError::field(
                "file",
                "Either a file, an artifact or an upload must be given.",
            ));
        }
    };
    let repository_id = match text.get("repository").filter(|value| !value.is_empty()) {
        None => None,
        Some(href) => match hrefs::parse(&names, href) {
            Some(Href::Repository {
                plugin: repo_plugin,
                type_name,
                id,
            }) if repo_plugin == plugin => {
                let sql = "SELECT id FROM repositories WHERE id = $1";
                let _: (String,) = referenced(app, "repository", sql, &id).await?;
                locks.push(ResourceLock::exclusive(hrefs::repository(
                    &names,
                    &repo_plugin,
                    &type_name,
                    &id,
                )));
                Some(id)
            }
            _ => {
                return Err(ApiError::field(
                    "repository",
                    format!("Expected the href of a {plugin} repository."),
                ));
            }
        },
    };
    let args = match source {
        Source::Artifact(sha256) => TaskArgs::Upload {
            plugin: loaded.info.name.clone(),
            sha256,
            relative_path: text.get("relative_path").cloned(),
            repository_id,
        },
        Source::Upload(upload_id) => TaskArgs::UploadFromChunks {
            plugin: loaded.info.name.clone(),
            upload_id,
            relative_path: text.get("relative_path").cloned(),
            repository_id,
        },
    };
    spawn_task(app, "granary.tasks.upload", args, &locks).await
}

/// Where the bytes of a unit being created come from.
enum Source {
    /// A stored artifact, by sha256.
    Artifact(String),
    /// An uncommitted chunked upload, by id.
    Upload(String),
}

async fn artifact_by_href(app: &App, href: &str) -> ApiResult<artifacts::Artifact> {
    let Some(Href::Artifact { id }) = hrefs::parse(&app.plugins.rest_names(), href) else {
        return Err(ApiError::field(
            "artifact",
            "Invalid hyperlink - not an artifact href.",
        ));
    };
    let sql = "SELECT id, sha256, size FROM artifacts WHERE id = $1";
    let (id, sha256, size): (String, String, i64) = referenced(app, "artifact", sql, &id).await?;
    Ok(artifacts::Artifact {
        id,
        sha256,
        size: size as u64,
    })
}
