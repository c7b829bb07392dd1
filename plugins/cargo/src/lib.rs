//! Granary's Rust crates content type: a cargo registry with a sparse index, on WIT 0.3.0.
//!
//! A distribution at `/cargo/<base_path>/` is a registry cargo uses unchanged
//! (`sparse+http://<host>/cargo/<base_path>/`):
//!
//! - `config.json`: `dl` and `api` pointing back here, `auth-required` for a client that had to
//!   authenticate to read it (a guarded distribution);
//! - the index files at cargo's paths (`1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd…`), built from the
//!   stored units ([`index`]);
//! - the web API under `api/v1/`: `crates/new` (publish), `crates/<name>/<version>/download`,
//!   `…/yank` and `…/unyank`, `crates/<name>/owners`, `crates?q=` (search) ([`registry`]).
//!
//! Content types, each found by an indexed field:
//!
//! - `crate`: a published version, its `.crate` file and its index entry; its repository key is
//!   the version (`name@version` without build metadata), so a version is never held twice;
//! - `yank`: a mark that a version is yanked (resolution skips it); unyanking removes it;
//! - `owner`: a user who may publish new versions of a crate, yank them and manage its owners.
//!   The first publisher of a crate becomes its owner.
//!
//! With a remote, a distribution is a pull-through mirror of an upstream sparse index
//! ([`upstream`]).

use granary_sdk::{
    HandleOutcome, HttpRequest, HttpResponse, Plugin, PluginError, PluginInfo, RemoteConfig,
    StoredUnit, content,
};
use serde_json::{Value, json};

pub mod index;
pub mod registry;
pub mod upstream;

use granary_sdk::ContentTypeInfo;

/// Content type of published versions.
const CRATE: &str = "crate";
/// Content type of yank marks.
const YANK: &str = "yank";
/// Content type of owners.
const OWNER: &str = "owner";
/// The indexed field holding a unit's lower-cased crate name.
const LOWERCASE_NAME: &str = "lowercase_name";
/// The indexed field holding a crate's name lower-cased with `-` as `_`: crates.io's notion of
/// one crate (`Foo-Bar` and `foo_bar` cannot both exist).
const CANONICAL_NAME: &str = "canonical_name";
/// The indexed field every type uses as its repository key.
const KEY: &str = "key";
/// How long the host may keep an answer that depends only on the repository version served: it
/// drops kept answers anyway when the distribution moves to another version (a publish, a yank).
const VERSION_ANSWER_SECONDS: u32 = 24 * 3600;

struct Cargo;

impl Plugin for Cargo {
    fn describe() -> PluginInfo {
        let published = ContentTypeInfo::new(
            CRATE,
            "A published crate version",
            &["name", "version", "cksum"],
        )
        .with_endpoint("crates")
        .with_indexed_fields(&[LOWERCASE_NAME, CANONICAL_NAME, KEY])
        .with_repository_key(KEY);
        let yank = ContentTypeInfo::new(YANK, "A yanked crate version", &["name", "version"])
            .with_indexed_fields(&[LOWERCASE_NAME, KEY])
            .with_repository_key(KEY);
        let owner = ContentTypeInfo::new(OWNER, "An owner of a crate", &["name", "login"])
            .with_indexed_fields(&[LOWERCASE_NAME, KEY])
            .with_repository_key(KEY);
        PluginInfo::new(
            "cargo",
            env!("CARGO_PKG_VERSION"),
            vec![published, yank, owner],
        )
        .with_rest_names("cargo", "cargo", "cargo", "cargo")
        .with_capabilities(&["http"])
    }

    fn sync(_remote: &RemoteConfig) -> Result<(), PluginError> {
        Err(PluginError::new(
            "a cargo remote is used by a pull-through distribution (its `remote`), which fetches \
             the crates clients ask for; a whole sparse index cannot be listed, so it is not synced",
        ))
    }

    fn handle(
        request: &HttpRequest,
        body: granary_sdk::Body,
    ) -> Result<HandleOutcome, PluginError> {
        if request.distribution().is_none() {
            return Ok(HttpResponse::not_found().into());
        }
        let path = request.path.as_str();
        let reading = matches!(request.method.as_str(), "GET" | "HEAD");
        if path == "config.json" && reading {
            return Ok(config(request).into());
        }
        if let Some(api) = path.strip_prefix("api/v1/") {
            return registry::handle(request, api, body);
        }
        match index::name_of_index_path(path) {
            Some(name) if reading => Ok(index_file(request, name)?.into()),
            _ => Ok(HttpResponse::not_found().into()),
        }
    }
}

/// The registry's `config.json`. A client that reads it with credentials had to (cargo sends
/// none until the server answers 401): the distribution is guarded, and cargo must then send its
/// token with every request.
fn config(request: &HttpRequest) -> HttpResponse {
    let api = request.base_url.trim_end_matches('/');
    let config = json!({
        "dl": format!("{api}/api/v1/crates"),
        "api": api,
        "auth-required": request.user.is_some(),
    });
    json_response(200, &config).kept_by_host(VERSION_ANSWER_SECONDS)
}

/// The index file of the crate whose lower-cased name is `name`: from the upstream for a
/// pull-through distribution, from the stored versions otherwise.
fn index_file(request: &HttpRequest, name: &str) -> Result<HttpResponse, PluginError> {
    if let Some(remote) = request.distribution().and_then(|d| d.remote.as_ref()) {
        return upstream::index_file(remote, name);
    }
    let entries = stored_entries(name)?;
    if entries.is_empty() {
        return Ok(HttpResponse::not_found());
    }
    Ok(
        HttpResponse::ok("text/plain; charset=utf-8", index::render(entries))
            .kept_by_host(VERSION_ANSWER_SECONDS),
    )
}

/// The index entries of the stored versions of the crate whose lower-cased name is `name`, each
/// `yanked` as the version's marks say.
fn stored_entries(name: &str) -> Result<Vec<Value>, PluginError> {
    let yanked = yanked_keys(name)?;
    let mut entries = Vec::new();
    for unit in content::units_with_value(CRATE, LOWERCASE_NAME, name) {
        let published = Published::of(&unit?)?;
        let mut entry = published.entry;
        entry["yanked"] = yanked.contains(&published.key).into();
        entries.push(entry);
    }
    Ok(entries)
}

/// The version keys of the yanked versions of the crate whose lower-cased name is `name`.
fn yanked_keys(name: &str) -> Result<Vec<String>, PluginError> {
    content::units_with_value(YANK, LOWERCASE_NAME, name)
        .map(|unit| metadata_string(&unit?, KEY))
        .collect()
}

/// What Granary keeps of a published version (a `crate` unit's metadata).
struct Published {
    /// The version key ([`index::version_key`]).
    key: String,
    /// The index entry, `yanked` false.
    entry: Value,
    /// The description the publisher gave, or null.
    description: Value,
    /// The file's handle, to stream it.
    content_artifact: Option<String>,
}

impl Published {
    fn of(unit: &StoredUnit) -> Result<Self, PluginError> {
        let metadata: Value = serde_json::from_str(&unit.metadata)
            .map_err(|e| PluginError::new(format!("a stored crate's metadata: {e}")))?;
        let key = metadata[KEY]
            .as_str()
            .ok_or_else(|| PluginError::new(format!("a stored crate unit has no {KEY}")))?;
        Ok(Self {
            key: key.to_owned(),
            entry: metadata["entry"].clone(),
            description: metadata["description"].clone(),
            content_artifact: unit
                .artifacts
                .first()
                .map(|artifact| artifact.content_artifact.clone()),
        })
    }

    /// The published name, as the publisher spelled it.
    fn name(&self) -> &str {
        self.entry["name"].as_str().unwrap_or_default()
    }

    fn version(&self) -> Option<semver::Version> {
        index::parse_version(self.entry["vers"].as_str()?).ok()
    }
}

/// The string field `field` of a stored unit's metadata.
fn metadata_string(unit: &StoredUnit, field: &str) -> Result<String, PluginError> {
    serde_json::from_str::<Value>(&unit.metadata)
        .ok()
        .and_then(|metadata| metadata[field].as_str().map(str::to_owned))
        .ok_or_else(|| {
            PluginError::new(format!(
                "a stored {} unit has no {field}",
                unit.content_type
            ))
        })
}

/// A JSON answer.
fn json_response(status: u16, value: &Value) -> HttpResponse {
    HttpResponse::bytes(status, value.to_string()).with_header("content-type", "application/json")
}

/// An error as cargo shows it: `{"errors":[{"detail":…}]}` (cargo prints the detail of any
/// answer that is not a success).
fn cargo_error(status: u16, detail: &str) -> HttpResponse {
    json_response(status, &json!({"errors": [{"detail": detail}]}))
}

granary_sdk::register_plugin!(Cargo);

#[cfg(test)]
mod tests {
    use granary_sdk::harness::{Host, body_bytes, request};
    use granary_sdk::{Body, HttpBody};

    use super::*;

    /// A gzip member header: enough for the publish check, which reads the magic bytes only.
    const CRATE_BYTES: &[u8] = b"\x1f\x8b\x08\0 a crate";

    /// Cargo's publish frame of `metadata` and `file`.
    fn frame(metadata: &Value, file: &[u8]) -> Vec<u8> {
        let metadata = metadata.to_string().into_bytes();
        let mut body = (metadata.len() as u32).to_le_bytes().to_vec();
        body.extend_from_slice(&metadata);
        body.extend_from_slice(&(file.len() as u32).to_le_bytes());
        body.extend_from_slice(file);
        body
    }

    /// A request of `user`, who may publish.
    fn writer(method: &str, path: &str, user: &str) -> HttpRequest {
        let mut request = request(method, path);
        request.user = Some(user.into());
        request.access.push = true;
        request
    }

    fn call(host: &mut Host, request: &HttpRequest, body: Vec<u8>) -> HandleOutcome {
        host.run(|| Cargo::handle(request, Body::from_bytes(body)))
            .unwrap()
    }

    /// Publishes `version` of `name` as `user`; keeps what the outcome adds, as the host would.
    fn publish(host: &mut Host, user: &str, name: &str, version: &str) -> HandleOutcome {
        let metadata = json!({"name": name, "vers": version, "deps": [], "features": {}});
        let outcome = call(
            host,
            &writer("PUT", "api/v1/crates/new", user),
            frame(&metadata, CRATE_BYTES),
        );
        host.apply(&outcome);
        outcome
    }

    fn text(response: &HttpResponse) -> String {
        String::from_utf8_lossy(body_bytes(&response.body).unwrap_or_default()).into_owned()
    }

    /// The index file's entries.
    fn index_entries(host: &mut Host, path: &str) -> Vec<Value> {
        let response = call(host, &request("GET", path), Vec::new()).response;
        assert_eq!(response.status, 200, "{}", text(&response));
        text(&response)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn a_published_version_is_in_the_index_with_its_checksum() {
        let mut host = Host::new();
        let outcome = publish(&mut host, "alice", "Demo-Lib", "0.1.0");
        assert_eq!(outcome.response.status, 200, "{}", text(&outcome.response));
        let types: Vec<&str> = outcome
            .add_units
            .iter()
            .map(|u| u.content_type.as_str())
            .collect();
        assert_eq!(
            types,
            [CRATE, OWNER],
            "the first publisher becomes the owner"
        );
        assert_eq!(
            outcome.add_units[0].artifacts[0].relative_path,
            "crates/demo-lib/demo-lib-0.1.0.crate"
        );
        let entries = index_entries(&mut host, "de/mo/demo-lib");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["name"], "Demo-Lib");
        assert_eq!(
            entries[0]["cksum"].as_str(),
            outcome.add_units[0].artifacts[0].sha256.as_deref()
        );
        let download = call(
            &mut host,
            &request("GET", "api/v1/crates/demo-lib/0.1.0/download"),
            Vec::new(),
        );
        assert!(matches!(
            download.response.body,
            HttpBody::ContentArtifact(_)
        ));
    }

    #[test]
    fn a_version_is_published_once_and_only_by_an_owner() {
        let mut host = Host::new();
        publish(&mut host, "alice", "demo", "1.0.0");
        let again = publish(&mut host, "alice", "demo", "1.0.0+other-build");
        assert_eq!(again.response.status, 400);
        assert!(
            text(&again.response).contains("crate version `1.0.0+other-build` is already uploaded")
        );
        let stranger = publish(&mut host, "bob", "demo", "1.1.0");
        assert_eq!(stranger.response.status, 403);
        assert!(text(&stranger.response).contains("cargo owner --add bob demo"));
        let renamed = publish(&mut host, "alice", "DEMO", "2.0.0");
        assert_eq!(renamed.response.status, 400);
        assert!(text(&renamed.response).contains("already published as `demo`"));
        // Added as an owner, bob may.
        let add = call(
            &mut host,
            &writer("PUT", "api/v1/crates/demo/owners", "alice"),
            br#"{"users":["bob"]}"#.to_vec(),
        );
        host.apply(&add);
        assert_eq!(
            publish(&mut host, "bob", "demo", "1.1.0").response.status,
            200
        );
        let owners = call(
            &mut host,
            &request("GET", "api/v1/crates/demo/owners"),
            Vec::new(),
        );
        let logins: Vec<Value> =
            serde_json::from_str::<Value>(&text(&owners.response)).unwrap()["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|user| user["login"].clone())
                .collect();
        assert_eq!(logins, [json!("alice"), json!("bob")]);
        let remove_all = call(
            &mut host,
            &writer("DELETE", "api/v1/crates/demo/owners", "alice"),
            br#"{"users":["alice","bob"]}"#.to_vec(),
        );
        assert_eq!(remove_all.response.status, 400, "a crate keeps an owner");
    }

    #[test]
    fn a_yanked_version_is_marked_in_the_index_until_unyanked() {
        let mut host = Host::new();
        publish(&mut host, "alice", "abc", "1.0.0");
        publish(&mut host, "alice", "abc", "1.1.0");
        let yank = call(
            &mut host,
            &writer("DELETE", "api/v1/crates/abc/1.1.0/yank", "alice"),
            Vec::new(),
        );
        assert_eq!(yank.response.status, 200);
        host.apply(&yank);
        let yanked: Vec<Value> = index_entries(&mut host, "3/a/abc")
            .iter()
            .map(|e| e["yanked"].clone())
            .collect();
        assert_eq!(yanked, [json!(false), json!(true)]);
        let unyank = call(
            &mut host,
            &writer("PUT", "api/v1/crates/abc/1.1.0/unyank", "alice"),
            Vec::new(),
        );
        assert_eq!(unyank.remove_units.len(), 1);
        host.apply(&unyank);
        assert!(
            index_entries(&mut host, "3/a/abc")
                .iter()
                .all(|e| e["yanked"] == false)
        );
        let missing = call(
            &mut host,
            &writer("DELETE", "api/v1/crates/abc/9.0.0/yank", "alice"),
            Vec::new(),
        );
        assert_eq!(missing.response.status, 404);
    }

    #[test]
    fn bad_publishes_get_cargos_error_and_add_nothing() {
        let mut host = Host::new();
        let metadata = json!({"name": "demo", "vers": "1.0.0"});
        let not_gzip = call(
            &mut host,
            &writer("PUT", "api/v1/crates/new", "alice"),
            frame(&metadata, b"plain text"),
        );
        assert_eq!(not_gzip.response.status, 400);
        assert!(text(&not_gzip.response).contains(r#""detail":"the .crate is not a gzip"#));
        assert!(not_gzip.add_units.is_empty());
        let bad_name = call(
            &mut host,
            &writer("PUT", "api/v1/crates/new", "alice"),
            frame(&json!({"name": "bad name", "vers": "1.0.0"}), CRATE_BYTES),
        );
        assert_eq!(bad_name.response.status, 400);
        let mut short = frame(&metadata, CRATE_BYTES);
        short.truncate(10);
        let truncated = host.run(|| {
            Cargo::handle(
                &writer("PUT", "api/v1/crates/new", "alice"),
                Body::from_bytes(short),
            )
        });
        assert_eq!(truncated.unwrap_err().field_name(), Some("body"));
        let reader = call(
            &mut host,
            &request("PUT", "api/v1/crates/new"),
            frame(&metadata, CRATE_BYTES),
        );
        assert_eq!(reader.response.status, 403);
    }

    #[test]
    fn the_config_points_cargo_back_at_the_distribution() {
        let mut host = Host::new();
        let config = call(&mut host, &request("GET", "config.json"), Vec::new());
        let config: Value = serde_json::from_str(&text(&config.response)).unwrap();
        assert_eq!(
            config["dl"],
            "http://localhost/pulp/content/demo/api/v1/crates"
        );
        assert_eq!(config["api"], "http://localhost/pulp/content/demo");
        assert_eq!(config["auth-required"], false);
        let mut authenticated = request("GET", "config.json");
        authenticated.user = Some("alice".into());
        let config = call(&mut host, &authenticated, Vec::new());
        assert!(text(&config.response).contains(r#""auth-required":true"#));
    }
}
