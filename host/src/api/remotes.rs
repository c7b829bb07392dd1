//! `remotes/<plugin>/<type>/`: where repositories sync from, with Pulp's common remote fields
//! (TLS, proxy, credentials, headers, timeouts, retries). Create answers 201; update and delete
//! are tasks (202), as in Pulp. `remotes/` lists the remotes of every type.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::input::{self, Input};
use super::list::{self, Identity, resource};
use super::plugin_fields::{self, Kind};
use super::routes::Routes;
use super::support::{
    Changes, ColumnValue, Fields, ensure_unique, json_column, plugin_object, plugin_of, set_columns,
};
use super::typed::{self, TypeRoute, Typed, TypedRow, Update};
use crate::db::{new_id, now};
use crate::domain::hrefs::{self, Collection, RestNames};
use crate::error::{ApiError, ApiResult};
use crate::rbac::Permissions;
use crate::rbac::catalog::Model;
use crate::secrets::{FieldCipher, REMOTE_SECRET_COLUMNS};
use crate::state::App;

/// Routes.
pub fn router() -> Routes {
    typed::routes::<Remote>()
}

/// A row of `remotes` (the domain's: the same row configures downloads).
pub(crate) type Remote = crate::domain::remotes::RemoteRow;

resource! {
    impl Remote in "remotes" columns Remote::COLUMNS;
    filters: text name, text url, text policy, int download_concurrency, bool tls_validation,
        time pulp_created = created, time pulp_last_updated = updated;
    labels: labels;
    orderings: name, pulp_created = created, pulp_last_updated = updated, pk = id, pulp_id = id,
        url, policy;
    default_ordering: "name";
    collection: Remotes;
}

/// The remote a repository or a distribution names, as their lists join it: its id and, for
/// its href, its plugin and type (all `None` when they name none).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JoinedRemote {
    #[sqlx(rename = "remote_id")]
    pub(crate) id: Option<String>,
    #[sqlx(rename = "remote_plugin")]
    plugin: Option<String>,
    #[sqlx(rename = "remote_type")]
    type_name: Option<String>,
}

impl JoinedRemote {
    /// Its `pulp_href`, when there is a remote.
    pub(crate) fn href(&self, names: &RestNames) -> Option<String> {
        let (plugin, type_name, id) = (
            self.plugin.as_deref()?,
            self.type_name.as_deref()?,
            self.id.as_deref()?,
        );
        Some(hrefs::remote(names, plugin, type_name, id))
    }
}

/// A remote as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemoteView {
    /// Plugin-declared fields, first so that a core field of the same name wins in the object
    /// every response is shaped through. The document adds each plugin's own.
    #[serde(flatten)]
    #[schema(ignore)]
    extra: Map<String, Value>,
    #[serde(flatten)]
    identity: Identity,
    name: String,
    url: String,
    ca_cert: Option<String>,
    client_cert: Option<String>,
    tls_validation: bool,
    proxy_url: Option<String>,
    #[schema(value_type = BTreeMap<String, String>)]
    pulp_labels: Value,
    download_concurrency: Option<i64>,
    max_retries: Option<i64>,
    policy: String,
    total_timeout: Option<f64>,
    connect_timeout: Option<f64>,
    sock_connect_timeout: Option<f64>,
    sock_read_timeout: Option<f64>,
    /// Shown only to those who may change the remote (headers often carry tokens); the others
    /// find it in `hidden_fields`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<BTreeMap<String, String>>>)]
    headers: Option<Value>,
    rate_limit: Option<i64>,
    /// Origins the remote reaches besides its own whatever their addresses, and that its
    /// plugin's requests may reach (Granary's, not Pulp's).
    allowed_origins: Vec<String>,
    hidden_fields: Vec<HiddenField>,
}

/// A field a response never shows, only whether it is set (Pulp's `hidden_fields`).
#[derive(Debug, Serialize, ToSchema)]
struct HiddenField {
    name: &'static str,
    is_set: bool,
}

const POLICIES: &[&str] = &["immediate", "on_demand", "streamed"];

impl RemoteView {
    fn new(names: &RestNames, secrets: &FieldCipher, remote: Remote) -> Self {
        let seconds = |ms: Option<i64>| ms.map(|ms| ms as f64 / 1000.0);
        let hidden = |name, value: &Option<String>| HiddenField {
            name,
            is_set: value.is_some(),
        };
        RemoteView {
            hidden_fields: vec![
                hidden("client_key", &remote.client_key),
                hidden("proxy_username", &remote.proxy_username),
                hidden("proxy_password", &remote.proxy_password),
                hidden("username", &remote.username),
                hidden("password", &remote.password),
            ],
            identity: Identity::typed(
                remote.href(names),
                remote.key(),
                "remote",
                &remote.created,
                &remote.updated,
            ),
            extra: plugin_fields::stored(&remote.extra),
            name: remote.name,
            url: remote.url,
            ca_cert: remote.ca_cert,
            client_cert: remote.client_cert,
            tls_validation: remote.tls_validation != 0,
            proxy_url: remote.proxy_url,
            pulp_labels: json_column(&remote.labels),
            download_concurrency: remote.download_concurrency,
            max_retries: remote.max_retries,
            policy: remote.policy,
            total_timeout: seconds(remote.total_timeout_ms),
            connect_timeout: seconds(remote.connect_timeout_ms),
            sock_connect_timeout: seconds(remote.sock_connect_timeout_ms),
            sock_read_timeout: seconds(remote.sock_read_timeout_ms),
            // Sealed at rest; a database whose key this server lacks does not start.
            headers: Some(json_column(
                &secrets.open(&remote.headers).unwrap_or_default(),
            )),
            rate_limit: remote.rate_limit,
            allowed_origins: serde_json::from_str(&remote.allowed_origins).unwrap_or_default(),
        }
    }
}

impl Typed for Remote {
    type View = RemoteView;

    fn view(self, app: &App, names: &RestNames) -> RemoteView {
        RemoteView::new(names, &app.secrets, self)
    }

    async fn view_for(
        self,
        app: &App,
        names: &RestNames,
        permissions: &mut Permissions,
    ) -> ApiResult<RemoteView> {
        // A plugin no longer loaded has no permission names: only staff see its headers.
        let change = names
            .plugin(&self.plugin)
            .map(|plugin| Model::of_plugin(plugin, Collection::Remotes).permission("change"));
        let may_change = match change {
            Some(change) => permissions.has_on(&change, &self.id).await?,
            None => permissions.is_staff(),
        };
        let mut view = self.view(app, names);
        if !may_change {
            let headers = view.headers.take();
            view.hidden_fields.push(HiddenField {
                name: "headers",
                is_set: headers.is_some_and(|headers| {
                    headers.as_array().is_some_and(|items| !items.is_empty())
                }),
            });
        }
        Ok(view)
    }

    async fn changes(&self, app: &App, fields: &Fields, whole: bool) -> ApiResult<Update> {
        let mut changes = sealed(&app.secrets, remote_changes(fields.parse()?, whole)?);
        if let Some(name) = name_change(&changes) {
            ensure_unique(app, "remotes", "name", "name", name, Some(&self.id)).await?;
        }
        let loaded = plugin_of(app, &self.plugin)?;
        if let Some(extra) = plugin_fields::extra(&loaded, Kind::Remote, fields, Some(&self.extra))?
        {
            changes.push(("extra".into(), ColumnValue::Text(Some(extra))));
        }
        Ok((changes, Vec::new()))
    }

    async fn create(app: &App, route: TypeRoute, fields: Fields) -> ApiResult<Response> {
        let mut changes = sealed(&app.secrets, remote_changes(fields.parse()?, true)?);
        if let Some(name) = name_change(&changes) {
            ensure_unique(app, "remotes", "name", "name", name, None).await?;
        }
        if let Some(extra) = plugin_fields::extra(&route.loaded, Kind::Remote, &fields, None)? {
            changes.push(("extra".into(), ColumnValue::Text(Some(extra))));
        }
        let id = new_id();
        let created = now();
        let mut tx = app.db.begin_write().await?;
        sqlx::query("INSERT INTO remotes (id, plugin, type_name, name, url, policy, created, updated) VALUES ($1, $2, $3, $1, '', '', $4, $4)")
            .bind(&id)
            .bind(&route.plugin)
            .bind(&route.type_name)
            .bind(&created)
            .execute(&mut *tx)
            .await?;
        set_columns(&mut tx, "remotes", &id, &changes).await?;
        tx.commit().await?;
        let remote: Remote = route.created(app, &id).await?;
        let mut permissions = route.caller.permissions(app);
        let names = app.plugins.rest_names();
        let view = remote.view_for(app, &names, &mut permissions).await?;
        Ok((StatusCode::CREATED, list::json(&view)).into_response())
    }
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

/// A number of seconds (Pulp's float timeouts), as milliseconds.
fn milliseconds(name: &str, seconds: Option<f64>) -> ApiResult<Option<i64>> {
    match seconds {
        None => Ok(None),
        Some(seconds) if seconds.is_finite() && (0.0..=31_536_000.0).contains(&seconds) => {
            Ok(Some((seconds * 1000.0).round() as i64))
        }
        Some(_) => Err(ApiError::field(
            name,
            "Ensure this value is greater than or equal to 0.0.",
        )),
    }
}

/// An optional PEM text that must hold one or more certificates.
fn certificates(name: &str, pem: Option<String>) -> ApiResult<Option<String>> {
    let Some(pem) = pem.filter(|pem| !pem.trim().is_empty()) else {
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

/// A remote's writable fields, as a create (`POST`, `PUT`) or an update (`PATCH`) gives them:
/// an absent field is left alone, a null one cleared (or set to its default).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct RemoteInput {
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = String)]
    name: Option<Option<String>>,
    /// The upstream's `http://` or `https://` URL.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = String)]
    url: Option<Option<String>>,
    /// `immediate` (the default), `on_demand` or `streamed`.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<Policy>)]
    policy: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 64)]
    download_concurrency: Option<Option<i64>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 10)]
    max_retries: Option<Option<i64>>,
    /// Requests per second.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<i64>, minimum = 1)]
    rate_limit: Option<Option<i64>>,
    /// Seconds; null for the default.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<f64>, minimum = 0)]
    total_timeout: Option<Option<f64>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<f64>, minimum = 0)]
    connect_timeout: Option<Option<f64>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<f64>, minimum = 0)]
    sock_connect_timeout: Option<Option<f64>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<f64>, minimum = 0)]
    sock_read_timeout: Option<Option<f64>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<bool>)]
    tls_validation: Option<Option<bool>>,
    /// PEM certificates the upstream's must chain to.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>)]
    ca_cert: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>)]
    client_cert: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, write_only)]
    client_key: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>)]
    proxy_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, write_only)]
    proxy_username: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, write_only)]
    proxy_password: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, write_only)]
    username: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, write_only)]
    password: Option<Option<String>>,
    /// `[{"Header-Name": "value"}, ...]`, sent with every request to the upstream.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Vec<BTreeMap<String, String>>)]
    headers: Option<Option<Value>>,
    #[serde(default, deserialize_with = "input::optional")]
    pulp_labels: Option<BTreeMap<String, String>>,
    /// Origins (`scheme://host[:port]`) the remote may reach besides its own, even on loopback,
    /// private or link-local addresses, which are otherwise refused; its plugin's requests reach
    /// only its own origin and these. Files on other public origins need no listing.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Vec<String>)]
    allowed_origins: Option<Option<Vec<String>>>,
}

impl Input for RemoteInput {
    const REQUIRED: &'static [&'static str] = &["name", "url"];
}

/// A remote's download policy.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[expect(
    dead_code,
    reason = "the schema of `policy`, which is read as text and checked"
)]
enum Policy {
    Immediate,
    OnDemand,
    Streamed,
}

/// The validated columns a create or update sets, in the order they appear below. Plugins' extra
/// fields are validated separately and added to the same list.
/// `changes` with the credentials among them sealed for storage (see [`crate::secrets`]).
fn sealed(secrets: &FieldCipher, mut changes: Changes) -> Changes {
    for (column, value) in &mut changes {
        if let ColumnValue::Text(Some(text)) = value
            && REMOTE_SECRET_COLUMNS.contains(&column.as_str())
        {
            *text = secrets.seal(text);
        }
    }
    changes
}

fn remote_changes(input: RemoteInput, creating: bool) -> ApiResult<Changes> {
    let mut changes: Changes = Vec::new();
    let text = |changes: &mut Changes, column: &str, value: Option<String>| {
        changes.push((column.to_owned(), ColumnValue::Text(value)));
    };
    if let Some(name) = input::required(creating, "name", input.name)? {
        text(&mut changes, "name", Some(name));
    }
    if let Some(url) = input::required(creating, "url", input.url)? {
        validate_url("url", &url)?;
        text(&mut changes, "url", Some(url));
    }
    if creating || input.policy.is_some() {
        let policy = input.policy.flatten().unwrap_or_else(|| "immediate".into());
        if !POLICIES.contains(&policy.as_str()) {
            return Err(ApiError::field(
                "policy",
                format!("\"{policy}\" is not a valid choice."),
            ));
        }
        text(&mut changes, "policy", Some(policy));
    }
    for (name, value, min, max) in [
        ("download_concurrency", input.download_concurrency, 1, 64),
        ("max_retries", input.max_retries, 0, 10),
        ("rate_limit", input.rate_limit, 1, i64::from(u32::MAX)),
    ] {
        if let Some(value) = value {
            let value = input::within(name, value, min, max)?;
            changes.push((name.to_owned(), ColumnValue::Int(value)));
        }
    }
    for (name, value) in [
        ("total_timeout", input.total_timeout),
        ("connect_timeout", input.connect_timeout),
        ("sock_connect_timeout", input.sock_connect_timeout),
        ("sock_read_timeout", input.sock_read_timeout),
    ] {
        if let Some(seconds) = value {
            let value = milliseconds(name, seconds)?;
            changes.push((format!("{name}_ms"), ColumnValue::Int(value)));
        }
    }
    if let Some(validate) = input.tls_validation {
        let validate = i64::from(validate.unwrap_or(true));
        changes.push(("tls_validation".into(), ColumnValue::Int(Some(validate))));
    }
    let client_cert = input.client_cert.clone().flatten();
    for (name, value) in [
        ("ca_cert", input.ca_cert),
        ("client_cert", input.client_cert),
    ] {
        if let Some(pem) = value {
            text(&mut changes, name, certificates(name, pem)?);
        }
    }
    if let Some(key) = input.client_key {
        let key = key.filter(|key| !key.trim().is_empty());
        if let Some(key) = &key {
            validate_client_key(key, client_cert.as_deref())?;
        }
        text(&mut changes, "client_key", key);
    }
    if let Some(proxy) = input.proxy_url {
        let proxy = proxy.filter(|url| !url.is_empty());
        if let Some(proxy) = &proxy {
            validate_url("proxy_url", proxy)?;
        }
        text(&mut changes, "proxy_url", proxy);
    }
    for (name, value) in [
        ("proxy_username", input.proxy_username),
        ("proxy_password", input.proxy_password),
        ("username", input.username),
        ("password", input.password),
    ] {
        if let Some(value) = value {
            text(&mut changes, name, value);
        }
    }
    if let Some(headers) = input.headers {
        let headers = headers.unwrap_or_else(|| Value::Array(Vec::new()));
        validate_headers(&headers)?;
        text(&mut changes, "headers", Some(headers.to_string()));
    }
    if let Some(labels) = input.pulp_labels {
        text(&mut changes, "labels", Some(json_text(&labels)));
    }
    if let Some(origins) = input.allowed_origins {
        let origins = allowed_origins(origins.unwrap_or_default())?;
        text(&mut changes, "allowed_origins", Some(json_text(&origins)));
    }
    Ok(changes)
}

/// Most entries of `allowed_origins`.
const MAX_ALLOWED_ORIGINS: usize = 100;

/// `allowed_origins`: each an http(s) origin, written as the browser writes one (lower-case
/// host, no default port); a URL with a path, query or credentials is refused rather than
/// silently cut to its origin.
pub(crate) fn allowed_origins(origins: Vec<String>) -> ApiResult<Vec<String>> {
    if origins.len() > MAX_ALLOWED_ORIGINS {
        return Err(ApiError::field(
            "allowed_origins",
            format!("Ensure this field has no more than {MAX_ALLOWED_ORIGINS} elements."),
        ));
    }
    let mut normalized: Vec<String> = Vec::with_capacity(origins.len());
    for origin in origins {
        let parsed = url::Url::parse(&origin).ok().filter(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.has_host()
                && url.path() == "/"
                && url.query().is_none()
                && url.fragment().is_none()
                && url.username().is_empty()
                && url.password().is_none()
        });
        let Some(parsed) = parsed.filter(|_| !origin.trim_end_matches('/').ends_with(':')) else {
            return Err(ApiError::field(
                "allowed_origins",
                format!(
                    "{origin:?} is not an origin: give a scheme, a host and a port if it is not the default, such as https://files.example:8443."
                ),
            ));
        };
        let origin = parsed.origin().ascii_serialization();
        if !normalized.contains(&origin) {
            normalized.push(origin);
        }
    }
    Ok(normalized)
}

/// A value as JSON text (plain data: serializing it cannot fail).
fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
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

/// The `remote` field of a repository or a distribution: the id of a remote of its plugin.
pub(crate) async fn remote_field(
    app: &App,
    fields: &Fields,
    plugin: &str,
) -> ApiResult<Option<String>> {
    let sql = "SELECT id FROM remotes WHERE id = $1";
    plugin_object(app, fields, "remote", Collection::Remotes, plugin, sql).await
}

fn name_change(changes: &Changes) -> Option<&str> {
    changes.iter().find_map(|(column, value)| match value {
        ColumnValue::Text(Some(name)) if column == "name" => Some(name.as_str()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::{allowed_origins, is_der_sequence, pem_blocks};

    #[test]
    fn allowed_origins_are_origins_written_one_way() {
        let given = [
            "https://Files.Example:443/",
            "http://127.0.0.1:9000",
            "https://files.example",
            "http://[::1]:8080/",
        ];
        assert_eq!(
            allowed_origins(given.map(String::from).to_vec()).unwrap(),
            [
                "https://files.example",
                "http://127.0.0.1:9000",
                "http://[::1]:8080"
            ]
        );
        for refused in [
            "files.example",
            "https://files.example/packages/",
            "https://files.example/?x=1",
            "https://user:secret@files.example",
            "ftp://files.example",
            "https://",
        ] {
            assert!(
                allowed_origins(vec![refused.to_owned()]).is_err(),
                "{refused} was accepted"
            );
        }
    }

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
