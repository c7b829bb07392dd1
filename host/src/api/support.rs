//! Helpers shared by the REST resources: JSON bodies with field-level errors, pagination, and
//! answering `202 {"task": href}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::domain::hrefs::{self, Href};
use crate::error::{ApiError, ApiResult};
use crate::tasks::{self, ResourceLock, kinds::TaskArgs};

/// Largest JSON request body.
const MAX_JSON_BODY: usize = 4 * 1024 * 1024;

/// A JSON object request body, read field by field so each problem names its field.
#[derive(Debug, Default)]
pub struct Fields(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::bad_request("The request body could not be read."))?;
        if bytes.len() > MAX_JSON_BODY {
            return Err(ApiError::bad_request("The request body is too large."));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Fields::default());
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Fields(map)),
            Ok(_) => Err(ApiError::bad_request(
                "The request body must be a JSON object.",
            )),
            Err(error) => Err(ApiError::bad_request(format!("JSON parse error: {error}"))),
        }
    }
}

impl Fields {
    /// Whether the field is present (and not null).
    pub fn has(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|value| !value.is_null())
    }

    /// A required, non-empty string.
    pub fn required_str(&self, name: &str) -> ApiResult<String> {
        match self.opt_str(name)? {
            Some(value) if !value.trim().is_empty() => Ok(value),
            Some(_) => Err(ApiError::field(name, "This field may not be blank.")),
            None => Err(ApiError::field(name, "This field is required.")),
        }
    }

    /// An optional string.
    pub fn opt_str(&self, name: &str) -> ApiResult<Option<String>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.clone())),
            Some(_) => Err(ApiError::field(name, "Not a valid string.")),
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&self, name: &str) -> ApiResult<Option<bool>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(value)) => Ok(Some(*value)),
            Some(Value::String(text)) if text == "true" || text == "false" => {
                Ok(Some(text == "true"))
            }
            Some(_) => Err(ApiError::field(name, "Must be a valid boolean.")),
        }
    }

    /// An optional integer within `min..=max`.
    pub fn opt_int(&self, name: &str, min: i64, max: i64) -> ApiResult<Option<i64>> {
        let value = match self.0.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(number)) => number.as_i64(),
            Some(Value::String(text)) => text.parse().ok(),
            Some(_) => None,
        };
        match value {
            Some(value) if (min..=max).contains(&value) => Ok(Some(value)),
            Some(_) => Err(ApiError::field(
                name,
                format!("Ensure this value is between {min} and {max}."),
            )),
            None => Err(ApiError::field(name, "A valid integer is required.")),
        }
    }

    /// An optional href, parsed.
    pub fn opt_href(&self, name: &str) -> ApiResult<Option<Href>> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(text) => hrefs::parse(&text).map(Some).ok_or_else(|| {
                ApiError::field(
                    name,
                    format!("Invalid hyperlink - {text} is not a valid href."),
                )
            }),
        }
    }

    /// An optional list of hrefs.
    pub fn href_list(&self, name: &str) -> ApiResult<Vec<Href>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().and_then(hrefs::parse).ok_or_else(|| {
                        ApiError::field(
                            name,
                            format!("Invalid hyperlink - {item} is not a valid href."),
                        )
                    })
                })
                .collect(),
            Some(_) => Err(ApiError::field(name, "Expected a list of hrefs.")),
        }
    }

    /// `pulp_labels`: an object of strings.
    pub fn labels(&self) -> ApiResult<Option<String>> {
        match self.0.get("pulp_labels") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) if map.values().all(Value::is_string) => {
                Ok(Some(Value::Object(map.clone()).to_string()))
            }
            Some(_) => Err(ApiError::field(
                "pulp_labels",
                "Labels must be an object of strings.",
            )),
        }
    }
}

/// `limit`/`offset` of a list request.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Items per page.
    pub limit: i64,
    /// Items skipped.
    pub offset: i64,
}

/// Default items per page, as in Pulp.
const DEFAULT_LIMIT: i64 = 100;
/// Most items per page.
const MAX_LIMIT: i64 = 1000;

impl Page {
    /// Reads `limit` and `offset` from query parameters.
    pub fn from_query(query: &std::collections::HashMap<String, String>) -> ApiResult<Page> {
        let parse = |name: &str, default: i64| match query.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|value| *value >= 0)
                .ok_or_else(|| ApiError::field(name, "A valid non-negative integer is required.")),
        };
        Ok(Page {
            limit: parse("limit", DEFAULT_LIMIT)?.clamp(1, MAX_LIMIT),
            offset: parse("offset", 0)?,
        })
    }

    /// The paginated response `{count, next, previous, results}`.
    pub fn respond(&self, app: &App, uri: &Uri, count: i64, results: Vec<Value>) -> Response {
        let link = |offset: i64| {
            let mut query: Vec<(String, String)> = uri
                .query()
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .collect()
                })
                .unwrap_or_default();
            query.retain(|(key, _)| key != "offset" && key != "limit");
            query.push(("limit".into(), self.limit.to_string()));
            query.push(("offset".into(), offset.to_string()));
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query)
                .finish();
            format!("{}{}?{encoded}", app.origin, uri.path())
        };
        let end = self.offset.saturating_add(self.limit);
        let next = (end < count).then(|| link(end));
        let previous = (self.offset > 0).then(|| link((self.offset - self.limit).max(0)));
        Json(json!({ "count": count, "next": next, "previous": previous, "results": results }))
            .into_response()
    }
}

/// Queues a task and answers `202 {"task": href}`.
pub async fn spawn_task(
    app: &App,
    name: &str,
    args: TaskArgs,
    locks: &[ResourceLock],
) -> ApiResult<Response> {
    let id = tasks::enqueue(&app.db, name, &args, locks).await?;
    app.task_wakeup.notify_waiters();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "task": hrefs::task(&id) })),
    )
        .into_response())
}

/// Parses a JSON text column.
pub fn json_column(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The plugin behind `/<plugin>/<type>/` routes of repositories, remotes, publications and
/// distributions. A plugin's repository type is named after its first content type
/// (`repositories/file/file/`).
pub fn repository_type(
    app: &App,
    plugin: &str,
    type_name: &str,
) -> ApiResult<std::sync::Arc<crate::plugins::LoadedPlugin>> {
    app.plugins
        .get(plugin)
        .filter(|loaded| {
            loaded
                .info
                .content_types
                .first()
                .is_some_and(|t| t.name == type_name)
        })
        .ok_or_else(ApiError::not_found)
}

/// A path id that must be a UUID; anything else is a 404 before any SQL runs.
pub fn object_id(id: &str) -> ApiResult<String> {
    uuid::Uuid::parse_str(id)
        .map(|uuid| uuid.to_string())
        .map_err(|_| ApiError::not_found())
}

/// SQL filters for `name`, `name__contains`, `name__icontains` and `name__startswith`, starting
/// at placeholder `$next`. Returns the condition and the values to bind.
pub fn name_filters(
    query: &std::collections::HashMap<String, String>,
    next: usize,
) -> (String, Vec<String>) {
    let escape = |value: &str| {
        value
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    };
    let mut sql = String::new();
    let mut values = Vec::new();
    for (key, condition) in [
        ("name", "name = $N"),
        ("name__contains", "name LIKE $N ESCAPE '\\'"),
        ("name__icontains", "LOWER(name) LIKE LOWER($N) ESCAPE '\\'"),
        ("name__startswith", "name LIKE $N ESCAPE '\\'"),
    ] {
        let Some(value) = query.get(key) else {
            continue;
        };
        sql.push_str(&format!(
            " AND {}",
            condition.replace("$N", &format!("${}", next + values.len()))
        ));
        values.push(match key {
            "name" => value.clone(),
            "name__startswith" => format!("{}%", escape(value)),
            _ => format!("%{}%", escape(value)),
        });
    }
    (sql, values)
}

/// The REST path segments of a plugin's types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestNames {
    /// The plugin's name, the first segment of each path (`repositories/<plugin>/…`).
    pub plugin: String,
    /// `repositories/<plugin>/<repository>/`
    pub repository: String,
    /// `remotes/<plugin>/<remote>/`
    pub remote: String,
    /// `publications/<plugin>/<publication>/`
    pub publication: String,
    /// `distributions/<plugin>/<distribution>/`
    pub distribution: String,
    /// `content/<plugin>/<endpoint>/`, one per content type.
    pub content: Vec<ContentEndpoint>,
}

/// The REST endpoint of one content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentEndpoint {
    /// The content type's name (`file`).
    pub type_name: String,
    /// Its path segment (`files`).
    pub endpoint: String,
}

/// The REST names of a plugin's types; `None` for a plugin without content types. The one place
/// they are derived: today the repository, remote, publication and distribution types are named
/// after the first content type, and content endpoints are the type name plus `s`; plugins that
/// declare their own names (WIT 0.2.0 `rest-names`, content types' `endpoint`) change only this.
pub fn rest_names(info: &crate::plugins::PluginInfo) -> Option<RestNames> {
    let first = info.content_types.first()?;
    Some(RestNames {
        plugin: info.name.clone(),
        repository: first.name.clone(),
        remote: first.name.clone(),
        publication: first.name.clone(),
        distribution: first.name.clone(),
        content: info
            .content_types
            .iter()
            .map(|content_type| ContentEndpoint {
                type_name: content_type.name.clone(),
                endpoint: format!("{}s", content_type.name),
            })
            .collect(),
    })
}
