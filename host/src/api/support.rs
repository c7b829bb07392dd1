//! Helpers shared by the REST resources: JSON bodies with field-level errors, labels, answering
//! `202 {"task": href}`, and the update and delete tasks. Lists go through [`super::list`].

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use std::sync::Arc;

use sqlx::any::AnyRow;

use crate::db::{Backend, WriteTx};
use crate::domain::hrefs::{self, Href, RestNames};
use crate::error::{ApiError, ApiResult};
use crate::plugins::LoadedPlugin;
use crate::plugins::rest_names::{Collection, PluginNames};
use crate::state::App;
use crate::tasks::{self, ResourceLock, kinds::TaskArgs};

/// Largest JSON request body: 2.5 MiB, Django's `DATA_UPLOAD_MAX_MEMORY_SIZE`, which Pulp keeps.
const MAX_JSON_BODY: usize = 5 * 512 * 1024;

/// Longest `name`, in characters (Pulp's `max_length` for names).
pub const MAX_NAME_CHARS: usize = 255;
/// Longest label key, in characters.
pub const MAX_LABEL_KEY_CHARS: usize = 255;
/// Longest label value, in characters.
pub const MAX_LABEL_VALUE_CHARS: usize = 4096;

/// Refuses `text` in `field` longer than `max` characters, with Django REST framework's message.
pub fn check_length(field: &str, text: &str, max: usize) -> ApiResult<()> {
    if text.chars().count() > max {
        return Err(ApiError::field(
            field,
            format!("Ensure this field has no more than {max} characters."),
        ));
    }
    Ok(())
}

/// A JSON object request body, read field by field so each problem names its field.
#[derive(Debug, Default)]
pub struct Fields(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        // Read here with its own limit: axum's default one would answer first, with a 400.
        let bytes = read_limited(request.into_body(), MAX_JSON_BODY).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Fields::default());
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => {
                let fields = Fields(map);
                fields.check_lengths()?;
                Ok(fields)
            }
            Ok(_) => Err(ApiError::bad_request(
                "The request body must be a JSON object.",
            )),
            Err(error) => Err(ApiError::bad_request(format!("JSON parse error: {error}"))),
        }
    }
}

/// More of an oversized body read and dropped before the 413 goes out: a client still sending
/// when the connection closes sees a reset instead of the answer (what nginx's lingering close
/// is for). Bounded, and the listener's body timeout still applies.
const MAX_DRAINED: usize = 16 * 1024 * 1024;

/// The body, if it is at most `limit` bytes; 413 otherwise.
async fn read_limited(body: axum::body::Body, limit: usize) -> ApiResult<axum::body::Bytes> {
    use futures::StreamExt as _;
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| ApiError::unread_body(&error, limit as u64))?;
        if bytes.len() + chunk.len() > limit {
            let mut drained = 0;
            while drained < MAX_DRAINED
                && let Some(Ok(chunk)) = stream.next().await
            {
                drained += chunk.len();
            }
            return Err(ApiError::too_large(limit as u64));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes.into())
}

impl Fields {
    /// Refuses a `name` or `pulp_labels` longer than any resource keeps.
    fn check_lengths(&self) -> ApiResult<()> {
        if let Some(Value::String(name)) = self.0.get("name") {
            check_length("name", name, MAX_NAME_CHARS)?;
        }
        if let Some(Value::Object(labels)) = self.0.get("pulp_labels") {
            for (key, value) in labels {
                check_length("pulp_labels", key, MAX_LABEL_KEY_CHARS)?;
                if let Value::String(value) = value {
                    check_length("pulp_labels", value, MAX_LABEL_VALUE_CHARS)?;
                }
            }
        }
        Ok(())
    }

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
    pub fn opt_href(&self, names: &RestNames, name: &str) -> ApiResult<Option<Href>> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(text) => hrefs::parse(names, &text).map(Some).ok_or_else(|| {
                ApiError::field(
                    name,
                    format!("Invalid hyperlink - {text} is not a valid href."),
                )
            }),
        }
    }

    /// An optional list of hrefs.
    pub fn href_list(&self, names: &RestNames, name: &str) -> ApiResult<Vec<Href>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .and_then(|href| hrefs::parse(names, href))
                        .ok_or_else(|| {
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

/// Most parts (fields and files) of a multipart body.
pub const MAX_FORM_PARTS: usize = 64;
/// Longest text field of a multipart body, in bytes.
pub const MAX_FORM_TEXT: usize = 64 * 1024;
/// Longest digest field: a sha512 in hex, with room for whitespace.
const MAX_DIGEST_TEXT: usize = 256;

/// A multipart body read part by part: a malformed body is a 400, and so is a part past
/// [`MAX_FORM_PARTS`] (naming it).
#[derive(Debug)]
pub struct Form {
    multipart: axum::extract::Multipart,
    parts: usize,
}

impl From<axum::extract::Multipart> for Form {
    fn from(multipart: axum::extract::Multipart) -> Self {
        Form {
            multipart,
            parts: 0,
        }
    }
}

impl Form {
    /// The next part, if any.
    pub async fn next(&mut self) -> ApiResult<Option<axum::extract::multipart::Field<'_>>> {
        let field =
            self.multipart.next_field().await.map_err(|error| {
                ApiError::bad_request(format!("Invalid multipart body: {error}"))
            })?;
        if let Some(field) = &field {
            self.parts += 1;
            if self.parts > MAX_FORM_PARTS {
                return Err(ApiError::field(
                    field.name().unwrap_or("non_field_errors"),
                    format!("A form may carry at most {MAX_FORM_PARTS} fields."),
                ));
            }
        }
        Ok(field)
    }
}

/// The text of a multipart field, read only as far as `max_bytes`: longer is a 400 naming it.
pub async fn text_field(
    field: &mut axum::extract::multipart::Field<'_>,
    max_bytes: usize,
) -> ApiResult<String> {
    let name = field.name().unwrap_or("non_field_errors").to_owned();
    crate::content::form::bounded_text(field, max_bytes)
        .await
        .map_err(|error| match error {
            crate::content::form::TextError::TooLong => ApiError::field(
                &name,
                format!("Ensure this field has no more than {max_bytes} bytes."),
            ),
            crate::content::form::TextError::Unreadable(message) => {
                ApiError::field(&name, format!("Invalid value: {message}"))
            }
        })
}

/// The text of a multipart field that gives a hex digest, as digests are compared: trimmed and
/// in lowercase.
pub async fn digest_field(mut field: axum::extract::multipart::Field<'_>) -> ApiResult<String> {
    let text = text_field(&mut field, MAX_DIGEST_TEXT).await?;
    Ok(text.trim().to_ascii_lowercase())
}

/// Stages the bytes of a multipart `file` field as they arrive, showing each chunk to `observe`
/// (a hasher of more digests, say) first. More than `max_bytes` is a 413, before the rest is read.
pub async fn stage_file(
    app: &App,
    field: &mut axum::extract::multipart::Field<'_>,
    max_bytes: u64,
    mut observe: impl FnMut(&[u8]),
) -> ApiResult<crate::storage::ReceivedBlob> {
    let mut staged = app.blobs.stage().await.map_err(ApiError::internal)?;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|error| ApiError::field("file", format!("Upload interrupted: {error}")))?
    {
        if staged.size() + chunk.len() as u64 > max_bytes {
            return Err(ApiError::detail(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("The file exceeds {max_bytes} bytes."),
            ));
        }
        observe(&chunk);
        staged.write(&chunk).await.map_err(ApiError::internal)?;
    }
    staged.finish().await.map_err(ApiError::internal)
}

/// The answer to a request that queued a task (Pulp's `AsyncOperationResponse`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskAccepted {
    /// The task's href.
    pub task: String,
}

/// The answer to `set_label/` and `unset_label/` (Pulp's `SetLabelResponse`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LabelChanged {
    /// The label's key.
    pub key: String,
    /// Its value: the new one, or the one removed.
    #[schema(value_type = Option<String>)]
    pub value: Value,
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
    let accepted = TaskAccepted {
        task: hrefs::task(&id),
    };
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
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

/// Sets the `changes` columns of row `id` of `table`: a create inserts the row with its keys,
/// then writes its validated fields as an update would.
pub async fn set_columns(
    conn: &mut sqlx::AnyConnection,
    table: &str,
    id: &str,
    changes: &[(String, ColumnValue)],
) -> ApiResult<()> {
    for (column, value) in changes {
        let sql = format!("UPDATE {table} SET {column} = $2 WHERE id = $1");
        let query = sqlx::query(&sql).bind(id);
        let query = match value {
            ColumnValue::Text(text) => query.bind(text.clone()),
            ColumnValue::Int(int) => query.bind(*int),
        };
        query.execute(&mut *conn).await?;
    }
    Ok(())
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

/// Fails with `message` on `column` when a row of `table` other than `id` has `value` in its
/// unique `column`, checked in the transaction that writes the row (`id`: the row created or
/// changed). For the core objects that answer Django's message of their own rather than
/// [`ensure_unique`]'s.
pub async fn ensure_free(
    tx: &mut WriteTx,
    table: &str,
    column: &str,
    value: &str,
    id: &str,
    message: &str,
) -> ApiResult<()> {
    let taken = sqlx::query(&format!(
        "SELECT 1 FROM {table} WHERE {column} = $1 AND id <> $2"
    ))
    .bind(value)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    match taken {
        Some(_) => Err(ApiError::field(column, message)),
        None => Ok(()),
    }
}

/// The id of version `number` of repository `repository_id`, named by the request's `field`; a
/// 400 on that field when there is no such version.
pub async fn version_id(
    app: &App,
    field: &str,
    repository_id: &str,
    number: i64,
) -> ApiResult<String> {
    sqlx::query_scalar(
        "SELECT id FROM repository_versions WHERE repository_id = $1 AND number = $2",
    )
    .bind(repository_id)
    .bind(number)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(|| missing_object(field))
}

/// Django REST framework's 400 on a hyperlink `field` whose object does not exist.
fn missing_object(field: &str) -> ApiError {
    ApiError::field(field, "Invalid hyperlink - Object does not exist.")
}

/// The row `sql` selects for `id`, an object an href in the request's `field` names; a 400 on
/// that field when there is none.
pub async fn referenced<T>(app: &App, field: &str, sql: &str, id: &str) -> ApiResult<T>
where
    T: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin,
{
    sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(app.db.pool())
        .await?
        .ok_or_else(|| missing_object(field))
}

/// The id of the object the body's href `field` names, which must be one of `collection` of
/// `plugin` that `sql` finds by id (a 400 on the field otherwise); `None` when the field is
/// absent or null.
pub async fn plugin_object(
    app: &App,
    fields: &Fields,
    field: &str,
    collection: Collection,
    plugin: &str,
    sql: &str,
) -> ApiResult<Option<String>> {
    let Some(href) = fields.opt_href(&app.plugins.rest_names(), field)? else {
        return Ok(None);
    };
    let (_, id) = plugin_and_id(href, collection)
        .filter(|(owner, _)| owner == plugin)
        .ok_or_else(|| {
            let object = match collection {
                Collection::Repositories => "repository",
                Collection::Remotes => "remote",
                Collection::Publications => "publication",
                Collection::Distributions => "distribution",
            };
            ApiError::field(field, format!("Expected the href of a {plugin} {object}."))
        })?;
    let _: (String,) = referenced(app, field, sql, &id).await?;
    Ok(Some(id))
}

/// The plugin and id of an href to an object of `collection`; `None` for any other href.
fn plugin_and_id(href: Href, collection: Collection) -> Option<(String, String)> {
    match (collection, href) {
        (Collection::Repositories, Href::Repository { plugin, id, .. })
        | (Collection::Remotes, Href::Remote { plugin, id, .. })
        | (Collection::Publications, Href::Publication { plugin, id, .. })
        | (Collection::Distributions, Href::Distribution { plugin, id, .. }) => Some((plugin, id)),
        _ => None,
    }
}

/// Django REST framework's message for a taken unique value.
pub const UNIQUE_MESSAGE: &str = "This field must be unique.";

/// Which label action a request asks for.
#[derive(Debug, Clone, Copy)]
pub enum LabelChange {
    /// `set_label/`.
    Set,
    /// `unset_label/`.
    Unset,
}

/// The label action `change` on the object `id` of `table`.
pub async fn change_label(
    app: &App,
    table: &str,
    id: &str,
    fields: &Fields,
    change: LabelChange,
) -> ApiResult<Response> {
    match change {
        LabelChange::Set => set_label(app, table, id, fields).await,
        LabelChange::Unset => unset_label(app, table, id, fields).await,
    }
}

/// `POST .../set_label/` `{"key": k, "value": v}`: sets one label, answers `201 {key, value}`.
async fn set_label(app: &App, table: &str, id: &str, fields: &Fields) -> ApiResult<Response> {
    let key = label_key(fields)?;
    let value = match fields.0.get("value") {
        Some(Value::String(value)) => {
            check_length("value", value, MAX_LABEL_VALUE_CHARS)?;
            value.clone()
        }
        None => return Err(ApiError::field("value", "This field is required.")),
        Some(_) => return Err(ApiError::field("value", "Not a valid string.")),
    };
    let value = Value::String(value);
    let new_value = value.clone();
    modify_labels(app, table, id, |labels| {
        labels.insert(key.clone(), new_value);
        Ok(())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(LabelChanged { key, value })).into_response())
}

/// `POST .../unset_label/` `{"key": k}`: removes one label, answers `201 {key, value}` with the
/// value it had.
async fn unset_label(app: &App, table: &str, id: &str, fields: &Fields) -> ApiResult<Response> {
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
    let changed = LabelChanged {
        key,
        value: removed,
    };
    Ok((StatusCode::CREATED, Json(changed)).into_response())
}

/// A label key: word characters and spaces, as `pulp_label_select` can name it.
fn label_key(fields: &Fields) -> ApiResult<String> {
    let key = fields.required_str("key")?;
    check_length("key", &key, MAX_LABEL_KEY_CHARS)?;
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
    let text: String =
        sqlx::query_scalar(&format!("SELECT labels FROM {table} WHERE id = $1{lock}"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(ApiError::not_found)?;
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

/// The loaded plugin `plugin`, or 404.
pub fn plugin_of(app: &App, plugin: &str) -> ApiResult<Arc<LoadedPlugin>> {
    app.plugins.get(plugin).ok_or_else(ApiError::not_found)
}

/// The plugin and the type behind a `/<plugin>/<segment>/` route of repositories, remotes,
/// publications or distributions: `segment` is the name the plugin's `collection` answers at (its
/// first content type's name unless it declares REST names), or its push repositories'; anything
/// else is a 404.
pub fn typed_route(
    app: &App,
    plugin: &str,
    collection: Collection,
    segment: &str,
) -> ApiResult<(Arc<LoadedPlugin>, String)> {
    let loaded = plugin_of(app, plugin)?;
    let type_name = PluginNames::of(&loaded.info)
        .and_then(|names| names.type_at(collection, segment))
        .ok_or_else(ApiError::not_found)?;
    Ok((loaded, type_name))
}

/// The conditions of a `/<plugin>/<segment>/` route on a table whose columns `plugin` and
/// `type_name` carry `prefix` (`p.`, or nothing): the route must name a type (404 otherwise).
pub fn of_type(
    app: &App,
    plugin: &str,
    collection: Collection,
    segment: &str,
    prefix: &str,
) -> ApiResult<super::list::Conditions> {
    let (_, type_name) = typed_route(app, plugin, collection, segment)?;
    Ok(super::list::Conditions::of(
        &format!("{prefix}plugin = ? AND {prefix}type_name = ?"),
        [plugin.into(), type_name.into()],
    ))
}
