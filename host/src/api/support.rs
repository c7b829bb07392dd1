//! Helpers shared by the REST resources: JSON bodies with field-level errors, pagination, and
//! answering `202 {"task": href}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::db::Backend;
use crate::domain::hrefs::{self, Href};
use crate::error::{ApiError, ApiResult};
use crate::state::App;
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
        // `limit=0` means "the default", as in Django REST framework.
        let limit = match parse("limit", DEFAULT_LIMIT)? {
            0 => DEFAULT_LIMIT,
            limit => limit.min(MAX_LIMIT),
        };
        Ok(Page {
            limit,
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
        let shape = Shape::from_uri(uri);
        let results: Vec<Value> = results.into_iter().map(|item| shape.apply(item)).collect();
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

pub use crate::domain::objects::{Changes, ColumnValue};

/// Validated changes of an object, answered `202` with the task that applies them (Pulp updates
/// repositories, remotes and distributions asynchronously, under an exclusive lock on the
/// object).
pub async fn spawn_update(
    app: &App,
    href: String,
    changes: Changes,
    extra_locks: Vec<ResourceLock>,
) -> ApiResult<Response> {
    let mut locks = vec![ResourceLock::exclusive(href.clone())];
    locks.extend(extra_locks);
    spawn_task(
        app,
        "granary.tasks.general_update",
        TaskArgs::Update { href, changes },
        &locks,
    )
    .await
}

/// Answers `202` with a task deleting the object (Pulp deletes asynchronously).
pub async fn spawn_delete(app: &App, href: String) -> ApiResult<Response> {
    spawn_task(
        app,
        "granary.tasks.general_delete",
        TaskArgs::Delete { href: href.clone() },
        &[ResourceLock::exclusive(href)],
    )
    .await
}

/// Fails with Pulp's uniqueness message on `field` when another row of `table` (than `except`)
/// has `value` in `column`.
pub async fn ensure_unique(
    app: &App,
    table: &str,
    column: &str,
    field: &str,
    value: &str,
    except: Option<&str>,
) -> ApiResult<()> {
    let taken = sqlx::query(&format!(
        "SELECT id FROM {table} WHERE {column} = $1 AND id <> $2"
    ))
    .bind(value)
    .bind(except.unwrap_or(""))
    .fetch_optional(app.db.pool())
    .await?;
    match taken {
        Some(_) => Err(ApiError::field(field, UNIQUE_MESSAGE)),
        None => Ok(()),
    }
}

/// Django REST framework's message for a taken unique value.
pub const UNIQUE_MESSAGE: &str = "This field must be unique.";

/// `POST .../set_label/` `{"key": k, "value": v}`: sets one label, answers `201 {key, value}`.
pub async fn set_label(app: &App, table: &str, id: &str, fields: &Fields) -> ApiResult<Response> {
    let key = label_key(fields)?;
    let value = match fields.0.get("value") {
        Some(Value::String(value)) => value.clone(),
        None => return Err(ApiError::field("value", "This field is required.")),
        Some(_) => return Err(ApiError::field("value", "Not a valid string.")),
    };
    let new_value = Value::String(value.clone());
    modify_labels(app, table, id, |labels| {
        labels.insert(key.clone(), new_value);
        Ok(())
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "key": key, "value": value })),
    )
        .into_response())
}

/// `POST .../unset_label/` `{"key": k}`: removes one label, answers `201 {key, value}` with the
/// value it had.
pub async fn unset_label(app: &App, table: &str, id: &str, fields: &Fields) -> ApiResult<Response> {
    let key = label_key(fields)?;
    let mut removed = Value::Null;
    modify_labels(app, table, id, |labels| {
        removed = labels.remove(&key).ok_or_else(|| {
            ApiError::field(
                "key",
                format!("Label with key '{key}' does not exist on this object."),
            )
        })?;
        Ok(())
    })
    .await?;
    let value = removed;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "key": key, "value": value })),
    )
        .into_response())
}

/// A label key: word characters and spaces, as `pulp_label_select` can name it.
fn label_key(fields: &Fields) -> ApiResult<String> {
    let key = fields.required_str("key")?;
    if !key
        .chars()
        .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == ' ')
    {
        return Err(ApiError::field(
            "key",
            "Label keys may contain only letters, digits, underscores and spaces.",
        ));
    }
    Ok(key)
}

/// Changes an object's labels in one write transaction (the row locked on PostgreSQL), so two
/// concurrent label changes both land.
async fn modify_labels(
    app: &App,
    table: &str,
    id: &str,
    change: impl FnOnce(&mut Map<String, Value>) -> ApiResult<()>,
) -> ApiResult<()> {
    let lock = match app.db.backend() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let mut tx = app.db.begin_write().await?;
    let text: String = sqlx::query(&format!("SELECT labels FROM {table} WHERE id = $1{lock}"))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(ApiError::not_found)?
        .get(0);
    let mut labels = match json_column(&text) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    change(&mut labels)?;
    sqlx::query(&format!(
        "UPDATE {table} SET labels = $2, updated = $3 WHERE id = $1"
    ))
    .bind(id)
    .bind(Value::Object(labels).to_string())
    .bind(crate::db::now())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
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

/// `fields` and `exclude_fields` of a request: which top-level fields of each object to answer.
#[derive(Debug, Default)]
pub struct Shape {
    fields: Option<Vec<String>>,
    exclude: Vec<String>,
}

impl Shape {
    /// Reads `fields` and `exclude_fields` (comma-separated, possibly repeated) from a URI.
    pub fn from_uri(uri: &Uri) -> Shape {
        let mut shape = Shape::default();
        let pairs: Vec<(String, String)> = uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        for (key, value) in pairs {
            let names = value
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned);
            match key.as_str() {
                "fields" => shape.fields.get_or_insert_with(Vec::new).extend(names),
                "exclude_fields" => shape.exclude.extend(names),
                _ => {}
            }
        }
        shape
    }

    /// Keeps only the requested fields of an object, minus the excluded ones.
    pub fn apply(&self, value: Value) -> Value {
        let Value::Object(mut map) = value else {
            return value;
        };
        if let Some(fields) = &self.fields {
            map.retain(|key, _| fields.iter().any(|field| field == key));
        }
        for field in &self.exclude {
            map.remove(field);
        }
        Value::Object(map)
    }
}

/// A detail response shaped by the request's `fields` / `exclude_fields`.
pub fn shaped(uri: &Uri, value: Value) -> Json<Value> {
    Json(Shape::from_uri(uri).apply(value))
}

/// A value bound to a placeholder of a list query.
#[derive(Debug, Clone)]
pub enum Bind {
    /// A text value.
    Text(String),
    /// An integer value.
    Int(i64),
}

impl From<&str> for Bind {
    fn from(text: &str) -> Self {
        Bind::Text(text.to_owned())
    }
}

impl From<String> for Bind {
    fn from(text: String) -> Self {
        Bind::Text(text)
    }
}

impl From<i64> for Bind {
    fn from(int: i64) -> Self {
        Bind::Int(int)
    }
}

/// The `WHERE` conditions of a list query and the values they bind. A `?` in a condition becomes
/// the next `$n` placeholder, so filters compose without counting placeholders by hand.
#[derive(Debug, Default)]
pub struct Conditions {
    conditions: Vec<String>,
    binds: Vec<Bind>,
}

/// A query with arguments, as `sqlx::query` makes it.
pub type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

impl Conditions {
    /// No conditions yet.
    pub fn new() -> Conditions {
        Conditions::default()
    }

    /// Adds a condition; each `?` in it takes the next of `binds`.
    pub fn push(&mut self, condition: &str, binds: impl IntoIterator<Item = Bind>) {
        let mut binds = binds.into_iter();
        let mut sql = String::with_capacity(condition.len() + 8);
        for ch in condition.chars() {
            if ch == '?' {
                self.binds
                    .push(binds.next().expect("a bind value for every placeholder"));
                sql.push_str(&format!("${}", self.binds.len()));
            } else {
                sql.push(ch);
            }
        }
        self.conditions.push(sql);
    }

    /// ` WHERE a AND b ...`, or nothing.
    pub fn where_clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// The number the next placeholder gets.
    pub fn next_placeholder(&self) -> usize {
        self.binds.len() + 1
    }

    /// Binds the values of the conditions, in order.
    pub fn bind<'q>(&self, mut query: AnyQuery<'q>) -> AnyQuery<'q> {
        for bind in &self.binds {
            query = match bind {
                Bind::Text(text) => query.bind(text.clone()),
                Bind::Int(int) => query.bind(*int),
            };
        }
        query
    }
}

/// What the shared list filters need to know about a resource's table.
#[derive(Debug, Clone, Copy)]
pub struct ListSpec {
    /// `FROM` clause with joins, e.g. `repositories r`.
    pub from: &'static str,
    /// The id column, e.g. `r.id`.
    pub id: &'static str,
    /// The name column, when the resource has names.
    pub name: Option<&'static str>,
    /// The `pulp_labels` column (a JSON object as text), when the resource has labels.
    pub labels: Option<&'static str>,
    /// `ordering` names the API accepts and the SQL expression each sorts by.
    pub orderings: &'static [(&'static str, &'static str)],
    /// The ordering when the request gives none.
    pub default_ordering: &'static str,
}

/// Query parameters of a list request.
pub type ListQuery = std::collections::HashMap<String, String>;

/// Applies the filters every named resource shares: `name` and its lookups, `pulp_label_select`,
/// `pulp_href__in`, `prn__in`.
pub fn common_filters(
    app: &App,
    query: &ListQuery,
    spec: &ListSpec,
    conditions: &mut Conditions,
) -> ApiResult<()> {
    if let Some(name) = spec.name {
        name_filters(query, name, conditions);
    }
    if let (Some(labels), Some(select)) = (spec.labels, query.get("pulp_label_select")) {
        label_select(app.db.backend(), labels, select, conditions)?;
    }
    if let Some(list) = query.get("pulp_href__in") {
        let ids = split_list(list)
            .map(|href| {
                hrefs::parse(href)
                    .and_then(|parsed| href_id(&parsed))
                    .ok_or_else(|| {
                        ApiError::field(
                            "pulp_href__in",
                            format!("Invalid hyperlink - {href} is not a valid href."),
                        )
                    })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        in_list(conditions, spec.id, ids);
    }
    if let Some(list) = query.get("prn__in") {
        let ids = split_list(list)
            .map(|prn| {
                prn_id(prn)
                    .ok_or_else(|| ApiError::field("prn__in", format!("{prn} is not a valid PRN.")))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        in_list(conditions, spec.id, ids);
    }
    Ok(())
}

/// The comma-separated items of a `__in` filter.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// `column IN (...)`; an empty list matches nothing.
pub fn in_list(conditions: &mut Conditions, column: &str, values: Vec<String>) {
    if values.is_empty() {
        conditions.push("1 = 0", []);
        return;
    }
    let marks = vec!["?"; values.len()].join(", ");
    conditions.push(
        &format!("{column} IN ({marks})"),
        values.into_iter().map(Bind::Text),
    );
}

/// The object id an href names (repository versions have none of their own in the URL).
fn href_id(href: &Href) -> Option<String> {
    match href {
        Href::Repository { id, .. }
        | Href::Remote { id, .. }
        | Href::Publication { id, .. }
        | Href::Distribution { id, .. }
        | Href::Content { id, .. }
        | Href::Artifact { id }
        | Href::Task { id }
        | Href::Upload { id }
        | Href::User { id } => Some(id.clone()),
        Href::Version { .. } => None,
    }
}

/// The id of a Pulp resource name, `prn:<app>.<model>:<uuid>`.
pub fn prn_id(prn: &str) -> Option<String> {
    let rest = prn.strip_prefix("prn:")?;
    let (model, id) = rest.rsplit_once(':')?;
    if !model.contains('.') {
        return None;
    }
    uuid::Uuid::parse_str(id).ok().map(|uuid| uuid.to_string())
}

/// Escapes `LIKE` wildcards (the conditions use `ESCAPE '\'`).
fn like_escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// `name`, `name__contains`, `name__icontains`, `name__startswith`, `name__iexact`, `name__in`.
fn name_filters(query: &ListQuery, column: &str, conditions: &mut Conditions) {
    if let Some(value) = query.get("name") {
        conditions.push(&format!("{column} = ?"), [Bind::from(value.as_str())]);
    }
    if let Some(value) = query.get("name__iexact") {
        conditions.push(
            &format!("LOWER({column}) = LOWER(?)"),
            [Bind::from(value.as_str())],
        );
    }
    if let Some(value) = query.get("name__contains") {
        contains(conditions, column, value);
    }
    if let Some(value) = query.get("name__icontains") {
        icontains(conditions, column, value);
    }
    if let Some(value) = query.get("name__startswith") {
        conditions.push(
            &format!("SUBSTR({column}, 1, LENGTH(CAST(? AS TEXT))) = ?"),
            [Bind::from(value.as_str()), Bind::from(value.as_str())],
        );
    }
    if let Some(value) = query.get("name__in") {
        in_list(
            conditions,
            column,
            split_list(value).map(str::to_owned).collect(),
        );
    }
}

/// Case-sensitive "`column` contains `value`". `LIKE` is case-insensitive on SQLite, so the
/// test is whether removing `value` changes the text, which both engines do alike.
pub fn contains(conditions: &mut Conditions, column: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    conditions.push(
        &format!("REPLACE({column}, CAST(? AS TEXT), '') <> {column}"),
        [Bind::from(value)],
    );
}

/// Case-insensitive "`column` contains `value`" (`LOWER` on both sides, then `LIKE`).
pub fn icontains(conditions: &mut Conditions, column: &str, value: &str) {
    conditions.push(
        &format!("LOWER({column}) LIKE LOWER(?) ESCAPE '\\'"),
        [Bind::Text(format!("%{}%", like_escape(value)))],
    );
}

/// One term of `pulp_label_select`.
#[derive(Debug, PartialEq, Eq)]
enum LabelTerm {
    Equals(String, String),
    NotEquals(String, String),
    Contains(String, String),
    Exists(String),
    Missing(String),
}

/// Parses Pulp's label selection syntax: comma-separated `key=value`, `key!=value`, `key~text`,
/// `key` and `!key`, all of which must hold. Keys are word characters and spaces.
fn parse_label_select(select: &str) -> ApiResult<Vec<LabelTerm>> {
    let invalid = |term: &str| {
        ApiError::field(
            "pulp_label_select",
            format!("Invalid search term: '{term}'."),
        )
    };
    let mut terms = Vec::new();
    for term in select.split(',') {
        let (negated, body) = match term.strip_prefix('!') {
            Some(body) => (true, body),
            None => (false, term),
        };
        let key_end = body
            .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch.is_whitespace()))
            .unwrap_or(body.len());
        let (key, rest) = body.split_at(key_end);
        if key.is_empty() {
            return Err(invalid(term));
        }
        let key = key.to_owned();
        let parsed = if rest.is_empty() {
            if negated {
                LabelTerm::Missing(key)
            } else {
                LabelTerm::Exists(key)
            }
        } else if negated {
            return Err(ApiError::field(
                "pulp_label_select",
                format!("Cannot use an operator with '!{key}'."),
            ));
        } else if let Some(value) = rest.strip_prefix("!=") {
            LabelTerm::NotEquals(key, value.to_owned())
        } else if let Some(value) = rest.strip_prefix('=') {
            LabelTerm::Equals(key, value.to_owned())
        } else if let Some(value) = rest.strip_prefix('~') {
            LabelTerm::Contains(key, value.to_owned())
        } else {
            return Err(invalid(term));
        };
        terms.push(parsed);
    }
    Ok(terms)
}

/// Adds the conditions of a `pulp_label_select`. Labels are a JSON object stored as text; the
/// value of one key is read with the engine's JSON function (`json_extract` on SQLite, `->>` on
/// PostgreSQL), the only part of the SQL that differs between them. Label values are strings, so
/// a missing key and only a missing key reads as NULL.
fn label_select(
    backend: Backend,
    column: &str,
    select: &str,
    conditions: &mut Conditions,
) -> ApiResult<()> {
    let value_of = |key: &str| -> (String, Bind) {
        match backend {
            // Keys are word characters and spaces, so quoting them in a JSON path is safe.
            Backend::Sqlite => (
                format!("json_extract({column}, ?)"),
                Bind::Text(format!("$.\"{key}\"")),
            ),
            Backend::Postgres => (
                format!("(CAST({column} AS jsonb) ->> CAST(? AS TEXT))"),
                Bind::Text(key.to_owned()),
            ),
        }
    };
    for term in parse_label_select(select)? {
        match term {
            LabelTerm::Equals(key, value) => {
                let (expr, key) = value_of(&key);
                conditions.push(&format!("{expr} = ?"), [key, Bind::Text(value)]);
            }
            LabelTerm::NotEquals(key, value) => {
                let (expr, key) = value_of(&key);
                conditions.push(&format!("{expr} <> ?"), [key, Bind::Text(value)]);
            }
            LabelTerm::Contains(key, value) => {
                let (expr, key) = value_of(&key);
                conditions.push(
                    &format!("LOWER({expr}) LIKE LOWER(?) ESCAPE '\\'"),
                    [key, Bind::Text(format!("%{}%", like_escape(&value)))],
                );
            }
            LabelTerm::Exists(key) => {
                let (expr, key) = value_of(&key);
                conditions.push(&format!("{expr} IS NOT NULL"), [key]);
            }
            LabelTerm::Missing(key) => {
                let (expr, key) = value_of(&key);
                conditions.push(&format!("{expr} IS NULL"), [key]);
            }
        }
    }
    Ok(())
}

/// The `ORDER BY` clause of a list: `ordering` is comma-separated field names, `-` for
/// descending, each one the resource allows; the id breaks ties so pages never overlap.
pub fn order_by(query: &ListQuery, spec: &ListSpec) -> ApiResult<String> {
    let requested = query
        .get("ordering")
        .map(String::as_str)
        .filter(|value| !value.trim().is_empty())
        .unwrap_or(spec.default_ordering);
    let mut terms = Vec::new();
    for item in split_list(requested) {
        let (name, direction) = match item.strip_prefix('-') {
            Some(name) => (name, "DESC"),
            None => (item, "ASC"),
        };
        let Some((_, sql)) = spec.orderings.iter().find(|(field, _)| *field == name) else {
            let allowed: Vec<String> = spec
                .orderings
                .iter()
                .flat_map(|(field, _)| [field.to_string(), format!("-{field}")])
                .collect();
            return Err(ApiError::field(
                "ordering",
                format!(
                    "Select a valid choice. {item} is not one of the available choices: {}.",
                    allowed.join(", ")
                ),
            ));
        };
        terms.push(format!("{sql} {direction}"));
    }
    terms.push(format!("{} ASC", spec.id));
    Ok(format!(" ORDER BY {}", terms.join(", ")))
}

/// Runs a list query: the total count and one page of rows.
pub async fn fetch_page(
    app: &App,
    spec: &ListSpec,
    columns: &str,
    conditions: &Conditions,
    order: &str,
    page: &Page,
) -> ApiResult<(i64, Vec<AnyRow>)> {
    let filter = conditions.where_clause();
    let count_sql = format!("SELECT COUNT(*) FROM {}{filter}", spec.from);
    let total: i64 = conditions
        .bind(sqlx::query(&count_sql))
        .fetch_one(app.db.pool())
        .await?
        .get(0);
    let n = conditions.next_placeholder();
    let page_sql = format!(
        "SELECT {columns} FROM {}{filter}{order} LIMIT ${n} OFFSET ${}",
        spec.from,
        n + 1
    );
    let rows = conditions
        .bind(sqlx::query(&page_sql))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(app.db.pool())
        .await?;
    Ok((total, rows))
}

/// One page of `table` rows matching `filters` (SQL appended to `WHERE 1 = 1`, with `$1`, `$2`, …
/// bound to `values` in order) and their total count: for lists whose filters are built as text
/// (artifacts, tasks, users) rather than as [`Conditions`].
pub async fn fetch_text_filtered_page(
    app: &App,
    table: &str,
    columns: &str,
    filters: &str,
    values: &[String],
    order: &str,
    page: &Page,
) -> ApiResult<(i64, Vec<AnyRow>)> {
    let count_sql = format!("SELECT COUNT(*) FROM {table} WHERE 1 = 1{filters}");
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
    for value in values {
        count = count.bind(value);
    }
    let total = count.fetch_one(app.db.pool()).await?;
    let page_sql = format!(
        "SELECT {columns} FROM {table} WHERE 1 = 1{filters} ORDER BY {order} LIMIT ${} OFFSET ${}",
        values.len() + 1,
        values.len() + 2
    );
    let mut rows = sqlx::query(&page_sql);
    for value in values {
        rows = rows.bind(value);
    }
    let rows = rows
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(app.db.pool())
        .await?;
    Ok((total, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_select_follows_pulp_syntax() {
        assert_eq!(
            parse_label_select("env=prod,tier!=gold,team~ops,reviewed,!legacy").unwrap(),
            vec![
                LabelTerm::Equals("env".into(), "prod".into()),
                LabelTerm::NotEquals("tier".into(), "gold".into()),
                LabelTerm::Contains("team".into(), "ops".into()),
                LabelTerm::Exists("reviewed".into()),
                LabelTerm::Missing("legacy".into()),
            ]
        );
        assert!(parse_label_select("!env=prod").is_err());
        assert!(parse_label_select("=prod").is_err());
        assert!(parse_label_select("env>3").is_err());
    }

    #[test]
    fn prns_name_their_object() {
        let id = "8f0c2d9e-5b1a-4c3e-9d2f-0a1b2c3d4e5f";
        assert_eq!(
            prn_id(&format!("prn:file.filerepository:{id}")),
            Some(id.to_owned())
        );
        assert_eq!(prn_id(&format!("file.filerepository:{id}")), None);
        assert_eq!(prn_id("prn:file.filerepository:nope"), None);
    }

    #[test]
    fn conditions_number_their_placeholders() {
        let mut conditions = Conditions::new();
        conditions.push("a = ?", [Bind::from("x")]);
        conditions.push("b BETWEEN ? AND ?", [Bind::Int(1), Bind::Int(2)]);
        assert_eq!(
            conditions.where_clause(),
            " WHERE a = $1 AND b BETWEEN $2 AND $3"
        );
        assert_eq!(conditions.next_placeholder(), 4);
    }
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
/// the document derives them: what the plugin declares (WIT 0.2.0 `rest-names`, content types'
/// `endpoint`), else the first content type's name and the type name plus `s`, as
/// `domain::hrefs` translates them.
pub fn rest_names(info: &crate::plugins::PluginInfo) -> Option<RestNames> {
    let first = info.content_types.first()?;
    let declared = info.rest_names.as_ref();
    let name = |pick: fn(&crate::plugins::RestNames) -> &String| {
        declared.map_or_else(|| first.name.clone(), |names| pick(names).clone())
    };
    Some(RestNames {
        plugin: info.name.clone(),
        repository: name(|names| &names.repository),
        remote: name(|names| &names.remote),
        publication: name(|names| &names.publication),
        distribution: name(|names| &names.distribution),
        content: info
            .content_types
            .iter()
            .map(|content_type| ContentEndpoint {
                type_name: content_type.name.clone(),
                endpoint: content_type
                    .endpoint
                    .clone()
                    .unwrap_or_else(|| format!("{}s", content_type.name)),
            })
            .collect(),
    })
}
