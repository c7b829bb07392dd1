//! `remotes/<plugin>/<type>/`: where repositories sync from, with Pulp's common remote fields
//! (TLS, proxy, credentials, headers, timeouts, retries). Create answers 201; update and delete
//! are tasks (202), as in Pulp. `remotes/` lists the remotes of every type.

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::plugin_fields::{self, Kind};
use super::support::{
    Bind, Changes, ColumnValue, Conditions, Fields, ListQuery, ListSpec, Page, common_filters,
    ensure_unique, fetch_page, json_column, object_id, order_by, repository_type, shaped,
    spawn_delete, spawn_update,
};
use crate::db::{new_id, now};
use crate::domain::hrefs;
use crate::error::{ApiError, ApiResult};
use crate::state::{App, AppState};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pulp/api/v3/remotes/", get(list_all))
        .route(
            "/pulp/api/v3/remotes/{plugin}/{type}/",
            get(list).post(create),
        )
        .route(
            "/pulp/api/v3/remotes/{plugin}/{type}/{id}/",
            get(read).patch(update).put(replace).delete(destroy),
        )
        .route(
            "/pulp/api/v3/remotes/{plugin}/{type}/{id}/set_label/",
            post(set_label),
        )
        .route(
            "/pulp/api/v3/remotes/{plugin}/{type}/{id}/unset_label/",
            post(unset_label),
        )
}

const COLUMNS: &str = "id, plugin, type_name, name, url, policy, download_concurrency, tls_validation, username, password,
    headers, total_timeout_ms, max_retries, labels, created, updated, ca_cert, client_cert, client_key, proxy_url,
    proxy_username, proxy_password, rate_limit, connect_timeout_ms, sock_connect_timeout_ms, sock_read_timeout_ms, extra";

const SPEC: ListSpec = ListSpec {
    from: "remotes",
    id: "id",
    name: Some("name"),
    labels: Some("labels"),
    orderings: &[
        ("name", "name"),
        ("pulp_created", "created"),
        ("pulp_last_updated", "updated"),
        ("pk", "id"),
        ("pulp_id", "id"),
        ("url", "url"),
        ("policy", "policy"),
    ],
    default_ordering: "name",
};

const POLICIES: &[&str] = &["immediate", "on_demand", "streamed"];

/// Fields a response never shows, only whether they are set (Pulp's `hidden_fields`).
const HIDDEN: &[&str] = &[
    "client_key",
    "proxy_username",
    "proxy_password",
    "username",
    "password",
];

fn seconds(row: &AnyRow, index: usize) -> Value {
    match row.get::<Option<i64>, _>(index) {
        Some(ms) => json!(ms as f64 / 1000.0),
        None => Value::Null,
    }
}

fn to_json(row: &AnyRow) -> Value {
    let (id, plugin, type_name): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let is_set = |index: usize| row.get::<Option<String>, _>(index).is_some();
    let hidden: Vec<Value> = HIDDEN
        .iter()
        .zip([18, 20, 21, 8, 9])
        .map(|(name, index)| json!({ "name": name, "is_set": is_set(index) }))
        .collect();
    let mut remote = json!({
        "pulp_href": hrefs::remote(&plugin, &type_name, &id),
        "prn": format!("prn:{plugin}.{type_name}remote:{id}"),
        "pulp_created": row.get::<String, _>(14),
        "pulp_last_updated": row.get::<String, _>(15),
        "name": row.get::<String, _>(3),
        "url": row.get::<String, _>(4),
        "ca_cert": row.get::<Option<String>, _>(16),
        "client_cert": row.get::<Option<String>, _>(17),
        "tls_validation": row.get::<i64, _>(7) != 0,
        "proxy_url": row.get::<Option<String>, _>(19),
        "pulp_labels": json_column(&row.get::<String, _>(13)),
        "download_concurrency": row.get::<Option<i64>, _>(6),
        "max_retries": row.get::<Option<i64>, _>(12),
        "policy": row.get::<String, _>(5),
        "total_timeout": seconds(row, 11),
        "connect_timeout": seconds(row, 23),
        "sock_connect_timeout": seconds(row, 24),
        "sock_read_timeout": seconds(row, 25),
        "headers": json_column(&row.get::<String, _>(10)),
        "rate_limit": row.get::<Option<i64>, _>(22),
        "hidden_fields": hidden,
    });
    plugin_fields::show(&mut remote, &row.get::<String, _>(26));
    remote
}

async fn load(app: &App, plugin: &str, type_name: &str, id: &str) -> ApiResult<AnyRow> {
    repository_type(app, plugin, type_name)?;
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM remotes WHERE id = $1 AND plugin = $2 AND type_name = $3"
    ))
    .bind(object_id(id)?)
    .bind(plugin)
    .bind(type_name)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(ApiError::not_found)
}

async fn list(
    State(app): State<AppState>,
    Path((plugin, type_name)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    repository_type(&app, &plugin, &type_name)?;
    let mut conditions = Conditions::new();
    conditions.push(
        "plugin = ? AND type_name = ?",
        [Bind::from(plugin), Bind::from(type_name)],
    );
    respond_list(&app, &query, &uri, conditions).await
}

/// `remotes/`: every remote, whatever its type.
async fn list_all(
    State(app): State<AppState>,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    respond_list(&app, &query, &uri, Conditions::new()).await
}

async fn respond_list(
    app: &App,
    query: &ListQuery,
    uri: &Uri,
    mut conditions: Conditions,
) -> ApiResult<Response> {
    let page = Page::from_query(query)?;
    common_filters(app, query, &SPEC, &mut conditions)?;
    if let Some(policy) = query.get("policy") {
        conditions.push("policy = ?", [Bind::from(policy.as_str())]);
    }
    let order = order_by(query, &SPEC)?;
    let (total, rows) = fetch_page(app, &SPEC, COLUMNS, &conditions, &order, &page).await?;
    Ok(page.respond(app, uri, total, rows.iter().map(to_json).collect()))
}

fn validate_url(field: &str, url: &str) -> ApiResult<()> {
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {
            Ok(())
        }
        _ => Err(ApiError::field(
            field,
            "Enter a valid http:// or https:// URL.",
        )),
    }
}

/// An optional number of seconds (Pulp's float timeouts), as milliseconds.
fn opt_seconds(fields: &Fields, name: &str) -> ApiResult<Option<i64>> {
    let value = match fields.0.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(number)) => number.as_f64(),
        Some(Value::String(text)) => text.parse::<f64>().ok(),
        Some(_) => None,
    };
    match value {
        Some(seconds) if seconds.is_finite() && (0.0..=31_536_000.0).contains(&seconds) => {
            Ok(Some((seconds * 1000.0).round() as i64))
        }
        Some(_) => Err(ApiError::field(
            name,
            "Ensure this value is greater than or equal to 0.0.",
        )),
        None => Err(ApiError::field(name, "A valid number is required.")),
    }
}

/// An optional PEM text that must hold one or more certificates.
fn opt_certificates(fields: &Fields, name: &str) -> ApiResult<Option<String>> {
    let Some(pem) = fields.opt_str(name)?.filter(|pem| !pem.trim().is_empty()) else {
        return Ok(None);
    };
    let blocks = pem_blocks(&pem, "CERTIFICATE");
    let parsed = reqwest::Certificate::from_pem_bundle(pem.as_bytes());
    match (blocks, parsed) {
        (Some(count), Ok(certificates)) if count > 0 && certificates.len() == count => {
            Ok(Some(pem))
        }
        _ => Err(ApiError::field(
            name,
            "Must be one or more PEM-encoded certificates.",
        )),
    }
}

/// How many PEM blocks whose label ends in `label` the text holds, if each is base64 of one
/// whole DER structure (a SEQUENCE whose length matches), the shape certificates and keys have.
/// None when a block is malformed.
fn pem_blocks(pem: &str, label: &str) -> Option<usize> {
    use base64::Engine as _;
    let mut count = 0;
    let mut lines = pem.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(begin) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        else {
            continue;
        };
        if !begin.ends_with(label) {
            continue;
        }
        let mut body = String::new();
        loop {
            let line = lines.next()?;
            if line.starts_with("-----END ") {
                break;
            }
            body.push_str(line);
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .ok()?;
        if !is_der_sequence(&der) {
            return None;
        }
        count += 1;
    }
    Some(count)
}

/// Whether `der` is exactly one DER SEQUENCE.
fn is_der_sequence(der: &[u8]) -> bool {
    let (Some(&0x30), Some(&first)) = (der.first(), der.get(1)) else {
        return false;
    };
    let (length, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || der.len() < 2 + octets {
            return false;
        }
        let length = der[2..2 + octets]
            .iter()
            .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
        (length, 2 + octets)
    };
    der.len() == header + length
}

/// The validated columns a create or update sets, in the order they appear below. Plugins' extra
/// fields are validated separately and added to the same list.
fn remote_changes(fields: &Fields, creating: bool) -> ApiResult<Changes> {
    let mut changes: Changes = Vec::new();
    let text = |changes: &mut Changes, column: &str, value: Option<String>| {
        changes.push((column.to_owned(), ColumnValue::Text(value)));
    };
    if creating || fields.0.contains_key("name") {
        text(&mut changes, "name", Some(fields.required_str("name")?));
    }
    if creating || fields.0.contains_key("url") {
        let url = fields.required_str("url")?;
        validate_url("url", &url)?;
        text(&mut changes, "url", Some(url));
    }
    if creating || fields.0.contains_key("policy") {
        let policy = fields
            .opt_str("policy")?
            .unwrap_or_else(|| "immediate".into());
        if !POLICIES.contains(&policy.as_str()) {
            return Err(ApiError::field(
                "policy",
                format!("\"{policy}\" is not a valid choice."),
            ));
        }
        text(&mut changes, "policy", Some(policy));
    }
    for (name, min, max) in [
        ("download_concurrency", 1, 64),
        ("max_retries", 0, 10),
        ("rate_limit", 1, i64::from(u32::MAX)),
    ] {
        if fields.0.contains_key(name) {
            changes.push((
                name.to_owned(),
                ColumnValue::Int(fields.opt_int(name, min, max)?),
            ));
        }
    }
    for name in [
        "total_timeout",
        "connect_timeout",
        "sock_connect_timeout",
        "sock_read_timeout",
    ] {
        if fields.0.contains_key(name) {
            changes.push((
                format!("{name}_ms"),
                ColumnValue::Int(opt_seconds(fields, name)?),
            ));
        }
    }
    if fields.0.contains_key("tls_validation") {
        let validate = fields.opt_bool("tls_validation")?.unwrap_or(true);
        changes.push((
            "tls_validation".into(),
            ColumnValue::Int(Some(i64::from(validate))),
        ));
    }
    for name in ["ca_cert", "client_cert"] {
        if fields.0.contains_key(name) {
            text(&mut changes, name, opt_certificates(fields, name)?);
        }
    }
    if fields.0.contains_key("client_key") {
        let key = fields
            .opt_str("client_key")?
            .filter(|key| !key.trim().is_empty());
        if let Some(key) = &key {
            validate_client_key(key, fields.opt_str("client_cert")?.as_deref())?;
        }
        text(&mut changes, "client_key", key);
    }
    if fields.0.contains_key("proxy_url") {
        let proxy = fields.opt_str("proxy_url")?.filter(|url| !url.is_empty());
        if let Some(proxy) = &proxy {
            validate_url("proxy_url", proxy)?;
        }
        text(&mut changes, "proxy_url", proxy);
    }
    for name in ["proxy_username", "proxy_password", "username", "password"] {
        if fields.0.contains_key(name) {
            text(&mut changes, name, fields.opt_str(name)?);
        }
    }
    if fields.0.contains_key("headers") {
        let headers = match fields.0.get("headers") {
            None | Some(Value::Null) => Value::Array(Vec::new()),
            Some(headers) => headers.clone(),
        };
        validate_headers(&headers)?;
        text(&mut changes, "headers", Some(headers.to_string()));
    }
    if let Some(labels) = fields.labels()? {
        text(&mut changes, "labels", Some(labels));
    }
    Ok(changes)
}

/// A private key in PEM; with the certificate of the same request, they must form an identity.
fn validate_client_key(key: &str, cert: Option<&str>) -> ApiResult<()> {
    let invalid = || ApiError::field("client_key", "Must be a PEM-encoded private key.");
    if pem_blocks(key, "PRIVATE KEY") != Some(1) {
        return Err(invalid());
    }
    if let Some(cert) = cert.filter(|cert| !cert.trim().is_empty()) {
        reqwest::Identity::from_pem(format!("{cert}\n{key}").as_bytes()).map_err(|_| {
            ApiError::field(
                "client_key",
                "The key does not form a valid identity with client_cert.",
            )
        })?;
    }
    Ok(())
}

/// `headers`: a list of single-key objects of strings, each a valid HTTP header.
fn validate_headers(headers: &Value) -> ApiResult<()> {
    let invalid = || {
        ApiError::field(
            "headers",
            "Expected a list of {\"Header-Name\": \"value\"} objects.",
        )
    };
    for item in headers.as_array().ok_or_else(invalid)? {
        let map = item
            .as_object()
            .filter(|map| map.len() == 1)
            .ok_or_else(invalid)?;
        for (name, value) in map {
            let value = value.as_str().ok_or_else(invalid)?;
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(value).is_err()
            {
                return Err(ApiError::field(
                    "headers",
                    format!("{name:?} is not a valid HTTP header."),
                ));
            }
        }
    }
    Ok(())
}

fn name_change(changes: &Changes) -> Option<&str> {
    changes.iter().find_map(|(column, value)| match value {
        ColumnValue::Text(Some(name)) if column == "name" => Some(name.as_str()),
        _ => None,
    })
}

async fn create(
    State(app): State<AppState>,
    Path((plugin, type_name)): Path<(String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let loaded = repository_type(&app, &plugin, &type_name)?;
    let mut changes = remote_changes(&fields, true)?;
    if let Some(name) = name_change(&changes) {
        ensure_unique(&app, "remotes", "name", "name", name, None).await?;
    }
    if let Some(extra) = plugin_fields::extra(&loaded, Kind::Remote, &fields, None)? {
        changes.push(("extra".into(), ColumnValue::Text(Some(extra))));
    }
    let id = new_id();
    let created = now();
    let mut tx = app.db.begin_write().await?;
    sqlx::query("INSERT INTO remotes (id, plugin, type_name, name, url, policy, created, updated) VALUES ($1, $2, $3, $1, '', '', $4, $4)")
        .bind(&id)
        .bind(&plugin)
        .bind(&type_name)
        .bind(&created)
        .execute(&mut *tx)
        .await?;
    for (column, value) in &changes {
        let sql = format!("UPDATE remotes SET {column} = $2 WHERE id = $1");
        let query = sqlx::query(&sql).bind(&id);
        let query = match value {
            ColumnValue::Text(text) => query.bind(text.clone()),
            ColumnValue::Int(int) => query.bind(*int),
        };
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let row = load(&app, &plugin, &type_name, &id).await?;
    Ok((StatusCode::CREATED, Json(to_json(&row))).into_response())
}

async fn read(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<Value>> {
    Ok(shaped(
        &uri,
        to_json(&load(&app, &plugin, &type_name, &id).await?),
    ))
}

/// `PATCH`: changes the fields given.
async fn update(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    dispatch_update(&app, &plugin, &type_name, &id, &fields, false).await
}

/// `PUT`: the whole remote; the required fields must be given.
async fn replace(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    dispatch_update(&app, &plugin, &type_name, &id, &fields, true).await
}

async fn dispatch_update(
    app: &App,
    plugin: &str,
    type_name: &str,
    id: &str,
    fields: &Fields,
    whole: bool,
) -> ApiResult<Response> {
    let row = load(app, plugin, type_name, id).await?;
    let id: String = row.get(0);
    let mut changes = remote_changes(fields, whole)?;
    if let Some(name) = name_change(&changes) {
        ensure_unique(app, "remotes", "name", "name", name, Some(&id)).await?;
    }
    let loaded = repository_type(app, plugin, type_name)?;
    let stored = row.get::<String, _>(26);
    if let Some(extra) = plugin_fields::extra(&loaded, Kind::Remote, fields, Some(&stored))? {
        changes.push(("extra".into(), ColumnValue::Text(Some(extra))));
    }
    spawn_update(
        app,
        hrefs::remote(plugin, type_name, &id),
        changes,
        Vec::new(),
    )
    .await
}

async fn destroy(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    spawn_delete(
        &app,
        hrefs::remote(&plugin, &type_name, &row.get::<String, _>(0)),
    )
    .await
}

async fn set_label(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    super::support::set_label(&app, "remotes", &row.get::<String, _>(0), &fields).await
}

async fn unset_label(
    State(app): State<AppState>,
    Path((plugin, type_name, id)): Path<(String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    let row = load(&app, &plugin, &type_name, &id).await?;
    super::support::unset_label(&app, "remotes", &row.get::<String, _>(0), &fields).await
}

#[cfg(test)]
mod tests {
    use super::{is_der_sequence, pem_blocks};

    #[test]
    fn der_sequences_must_be_whole() {
        assert!(is_der_sequence(&[0x30, 0x03, 1, 2, 3]));
        assert!(is_der_sequence(&[0x30, 0x81, 0x01, 9]));
        assert!(!is_der_sequence(&[0x30, 0x04, 1, 2, 3]), "short");
        assert!(!is_der_sequence(&[0x31, 0x00]), "a SET, not a SEQUENCE");
        assert!(!is_der_sequence(b"nope"));
    }

    #[test]
    fn pem_blocks_are_counted_by_label() {
        let block =
            |label: &str| format!("-----BEGIN {label}-----\nMAMCAQE=\n-----END {label}-----\n");
        let two = format!("{}{}", block("CERTIFICATE"), block("CERTIFICATE"));
        assert_eq!(pem_blocks(&two, "CERTIFICATE"), Some(2));
        assert_eq!(pem_blocks(&block("PRIVATE KEY"), "PRIVATE KEY"), Some(1));
        assert_eq!(pem_blocks(&block("PRIVATE KEY"), "CERTIFICATE"), Some(0));
        assert_eq!(
            pem_blocks(
                "-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n",
                "CERTIFICATE"
            ),
            None,
            "base64 of something that is not DER"
        );
        assert_eq!(
            pem_blocks("-----BEGIN CERTIFICATE-----\nMAMCAQE=\n", "CERTIFICATE"),
            None,
            "unterminated"
        );
    }
}
