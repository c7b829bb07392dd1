//! Granary's npm content type: a registry at `/npm/<base_path>/` that npm uses unchanged, on
//! WIT 0.3.0.
//!
//! Content types, each found by its indexed `name` (the package name, `@scope/name` for scoped
//! packages) and identified in a repository version by its `key`:
//!
//! - `package`: a published version, its tarball and its manifest (the `package.json` fields npm
//!   sent); `dist.shasum` (sha1) and `dist.integrity` (sha512) are Granary's, computed from the
//!   bytes as they arrived;
//! - `dist_tag`: a tag (`latest`, `next`) naming a version; tagging again moves it;
//! - `deprecation`: a version's deprecation message (`npm deprecate`).
//!
//! Routes (below the distribution): the packument `<name>` (full, or abbreviated for
//! `Accept: application/vnd.npm.install-v1+json`), a version `<name>/<version-or-tag>`, the
//! tarball `<name>/-/<file>.tgz`; `PUT <name>` (publish, deprecate, and the rewrite of
//! `npm unpublish <name>@<version>`), `DELETE <name>/-rev/<rev>` (unpublish all);
//! `-/package/<name>/dist-tags[/<tag>]`, `-/v1/search`, `-/ping`, `-/whoami`, and `npm login`'s
//! `PUT -/user/org.couchdb.user:<name>` (a log-in path: answered with a Granary API token). A
//! scoped name arrives as `@scope%2fname` or `@scope/name`. Errors are npm's `{"error": …}`.
//!
//! With a remote, a distribution is a pull-through mirror of an upstream registry, and a sync
//! copies the packages the remote `includes` ([`upstream`]).

use std::collections::BTreeMap;

use granary_sdk::{
    Body, ContentTypeInfo, HandleOutcome, HttpRequest, HttpResponse, Plugin, PluginError,
    PluginInfo, RemoteConfig, StoredUnit, UnitRef, content,
};
use serde_json::{Value, json};

pub mod attachments;
mod packument;
mod publish;
pub mod upstream;

/// Content type of published versions.
const PACKAGE: &str = "package";
/// Content type of dist-tags.
const DIST_TAG: &str = "dist_tag";
/// Content type of deprecation messages.
const DEPRECATION: &str = "deprecation";
/// The indexed field with the package name.
const NAME: &str = "name";
/// The indexed field every type uses as its repository key.
const KEY: &str = "key";
/// The media type of abbreviated packuments.
const ABBREVIATED: &str = "application/vnd.npm.install-v1+json";
/// How long the host may keep an answer that depends only on the repository version served: it
/// drops kept answers anyway when the distribution moves to another version.
const VERSION_ANSWER_SECONDS: u32 = 24 * 3600;
/// Where `npm login` sends its credentials (`PUT -/user/org.couchdb.user:<name>`), without
/// any: a log-in path of the host's.
const LOG_IN_PREFIX: &str = "-/user/";
/// The longest log-in document read.
const MAX_LOG_IN_DOCUMENT: usize = 64 * 1024;
/// The longest package name npm accepts.
const MAX_NAME: usize = 214;

struct Npm;

impl Plugin for Npm {
    fn describe() -> PluginInfo {
        let package = ContentTypeInfo::new(
            PACKAGE,
            "A published npm package version",
            &["name", "version", "integrity"],
        )
        .with_indexed_fields(&[NAME, KEY])
        .with_repository_key(KEY);
        let tag = ContentTypeInfo::new(
            DIST_TAG,
            "A dist-tag naming a version",
            &["name", "tag", "version"],
        )
        .with_endpoint("dist_tags")
        .with_indexed_fields(&[NAME, KEY])
        .with_repository_key(KEY);
        let deprecation = ContentTypeInfo::new(
            DEPRECATION,
            "A deprecated version's message",
            &["name", "version", "message"],
        )
        .with_indexed_fields(&[NAME, KEY])
        .with_repository_key(KEY);
        PluginInfo::new(
            "npm",
            env!("CARGO_PKG_VERSION"),
            vec![package, tag, deprecation],
        )
        .with_rest_names("npm", "npm", "npm", "npm")
        .with_capabilities(&["http"])
        .with_log_in_paths(&[LOG_IN_PREFIX])
        .with_remote_fields(upstream::REMOTE_FIELDS)
    }

    fn sync(remote: &RemoteConfig) -> Result<(), PluginError> {
        upstream::sync(remote)
    }

    fn handle(request: &HttpRequest, body: Body) -> Result<HandleOutcome, PluginError> {
        if request.distribution().is_none() {
            return Ok(HttpResponse::not_found().into());
        }
        let path = decode_path(&request.path);
        let method = request.method.as_str();
        let reading = matches!(method, "GET" | "HEAD");
        if let Some(special) = path.strip_prefix("-/") {
            return special_route(request, method, special, body);
        }
        let Some((name, rest)) = split_name(&path) else {
            return Ok(HttpResponse::not_found().into());
        };
        let rest: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let remote = request.distribution().and_then(|d| d.remote.as_ref());
        match (method, rest.as_slice()) {
            (_, []) if reading => Ok(match remote {
                Some(remote) => upstream::packument(request, remote, name)?,
                None => packument::packument(request, name)?,
            }
            .into()),
            ("PUT", []) | ("PUT", ["-rev", _]) => publish::put(request, name, body),
            ("DELETE", ["-rev", _]) => publish::unpublish_all(request, name),
            (_, ["-", file]) if reading => match (tarball(name, file)?, remote) {
                (Some(stored), _) => Ok(stored.into()),
                (None, Some(remote)) => upstream::tarball(remote, name, file),
                (None, None) => Ok(npm_error(404, &format!("no tarball {file} of {name}")).into()),
            },
            ("DELETE", ["-", _file, "-rev", _]) => {
                Ok(json_response(200, &json!({"ok": true})).into())
            }
            (_, [version]) if reading => Ok(packument::version(request, name, version)?.into()),
            _ => Ok(HttpResponse::not_found().into()),
        }
    }
}

/// The routes under `-/`.
fn special_route(
    request: &HttpRequest,
    method: &str,
    path: &str,
    body: Body,
) -> Result<HandleOutcome, PluginError> {
    let reading = matches!(method, "GET" | "HEAD");
    if path == "ping" && reading {
        return Ok(json_response(200, &json!({})).into());
    }
    if path == "whoami" && reading {
        return Ok(match &request.user {
            Some(user) => json_response(200, &json!({"username": user})),
            None => npm_error(401, "you are not logged in"),
        }
        .into());
    }
    if path == "v1/search" && reading {
        return Ok(packument::search(request)?.into());
    }
    if path.starts_with("user/org.couchdb.user:") && method == "PUT" {
        return Ok(log_in(body)?.into());
    }
    if let Some(rest) = path.strip_prefix("package/") {
        let Some((name, rest)) = split_name(rest) else {
            return Ok(HttpResponse::not_found().into());
        };
        return publish::dist_tags(request, method, name, rest.trim_start_matches('/'), body);
    }
    Ok(HttpResponse::not_found().into())
}

/// `npm login` (npm's legacy log-in, `--auth-type=legacy` or after the web log-in is refused):
/// the user's password checked by the host, answered with a new Granary API token that npm
/// keeps as the registry's `_authToken`.
fn log_in(body: Body) -> Result<HttpResponse, PluginError> {
    let document: Value = match serde_json::from_slice(&body.bytes(MAX_LOG_IN_DOCUMENT)?) {
        Ok(document) => document,
        Err(e) => {
            return Ok(npm_error(
                400,
                &format!("the log-in document is not JSON: {e}"),
            ));
        }
    };
    let (Some(name), Some(password)) = (document["name"].as_str(), document["password"].as_str())
    else {
        return Ok(npm_error(
            400,
            "a log-in names the user (`name`) and their `password`",
        ));
    };
    Ok(
        match granary_sdk::accounts::log_in(name, password, "npm login") {
            Ok(Some(token)) => json_response(
                201,
                &json!({"ok": true, "id": format!("org.couchdb.user:{name}"), "token": token}),
            ),
            Ok(None) => npm_error(401, "incorrect username or password"),
            // Throttled after failures (the host's 429 message), or no token could be issued.
            Err(error) if error.message().starts_with("Too many") => {
                npm_error(429, error.message())
            }
            Err(error) => npm_error(500, error.message()),
        },
    )
}

/// The request path with npm's escapes of scoped names decoded (`@scope%2fname`).
fn decode_path(path: &str) -> String {
    path.replace("%2f", "/")
        .replace("%2F", "/")
        .replace("%40", "@")
}

/// The package name a path starts with (`name` or `@scope/name`) and what follows it.
fn split_name(path: &str) -> Option<(&str, &str)> {
    let end = if path.starts_with('@') {
        let slash = path.find('/')?;
        path[slash + 1..]
            .find('/')
            .map_or(path.len(), |i| slash + 1 + i)
    } else {
        path.find('/').unwrap_or(path.len())
    };
    let name = &path[..end];
    check_name(name).ok()?;
    Some((name, &path[end..]))
}

/// Checks a package name as npm does for new packages: lower case, URL-safe, at most 214
/// characters, optionally `@scope/`.
fn check_name(name: &str) -> Result<(), String> {
    let valid_part = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && !part.starts_with('_')
            && part.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'-' | b'.' | b'_' | b'~')
            })
    };
    let bare = match name.strip_prefix('@') {
        Some(scoped) => match scoped.split_once('/') {
            Some((scope, bare)) if valid_part(scope) => bare,
            _ => return Err(format!("invalid package name `{name}`")),
        },
        None => name,
    };
    if name.len() > MAX_NAME || !valid_part(bare) {
        return Err(format!(
            "invalid package name `{name}`: lower-case letters, digits, `-`, `.`, `_` and `~`, at most {MAX_NAME} characters"
        ));
    }
    Ok(())
}

/// The name without its scope: what tarball file names start with.
fn bare_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// `<name>/-/<file>.tgz`: the stored tarball, if it is.
fn tarball(name: &str, file: &str) -> Result<Option<HttpResponse>, PluginError> {
    let relative_path = format!("{name}/-/{file}");
    for unit in content::find_by_path(&relative_path)? {
        if let Some(artifact) = unit
            .artifacts
            .iter()
            .find(|artifact| artifact.relative_path == relative_path)
        {
            return Ok(Some(
                HttpResponse::content_artifact(&artifact.content_artifact)
                    .kept_by_host(VERSION_ANSWER_SECONDS),
            ));
        }
    }
    Ok(None)
}

/// The units of `content_type` of the package `name`.
fn units_of(content_type: &str, name: &str) -> Result<Vec<StoredUnit>, PluginError> {
    content::units_with_value(content_type, NAME, name).collect()
}

/// A stored unit's metadata.
fn metadata(unit: &StoredUnit) -> Value {
    serde_json::from_str(&unit.metadata).unwrap_or(Value::Null)
}

/// A stored unit's natural key, parsed.
fn natural_key(unit: &StoredUnit) -> Value {
    serde_json::from_str(&unit.natural_key).unwrap_or(Value::Null)
}

/// A stored unit, named for removal.
fn unit_ref(unit: &StoredUnit) -> UnitRef {
    UnitRef {
        content_type: unit.content_type.clone(),
        natural_key: unit.natural_key.clone(),
    }
}

/// Now, as registries write times (`2026-12-06T00:46:44.699Z`): a version's publish time,
/// which clients read from the packument's `time` (yarn berry quarantines versions younger than
/// its `npmMinimalAgeGate`, and versions without a time).
fn now() -> String {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since_epoch.subsec_millis()
    )
}

/// The dist-tags of `name`: tag → version.
fn dist_tags_of(name: &str) -> Result<BTreeMap<String, String>, PluginError> {
    Ok(units_of(DIST_TAG, name)?
        .iter()
        .map(natural_key)
        .filter_map(|key| {
            Some((
                key["tag"].as_str()?.to_owned(),
                key["version"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

/// A JSON answer.
fn json_response(status: u16, value: &Value) -> HttpResponse {
    HttpResponse::bytes(status, value.to_string()).with_header("content-type", "application/json")
}

/// An error as npm shows it (`npm error 403 … - <error>`).
fn npm_error(status: u16, message: &str) -> HttpResponse {
    json_response(status, &json!({"error": message}))
}

granary_sdk::register_plugin!(Npm);

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use granary_sdk::harness::{Host, body_bytes, request};

    use super::*;

    const TARBALL: &[u8] = b"\x1f\x8b pretend this is a gzipped tar";

    /// npm's publish document for `version` of `name` with `TARBALL`.
    fn document(name: &str, version: &str, dist: Value) -> Vec<u8> {
        let file = format!("{name}-{version}.tgz");
        json!({
            "_id": name,
            "name": name,
            "dist-tags": {"latest": version},
            "versions": {version: {"name": name, "version": version, "description": "demo",
                                   "dependencies": {"left-pad": "^1"}, "scripts": {"test": "x"},
                                   "dist": dist}},
            "_attachments": {file: {"content_type": "application/octet-stream",
                                    "data": base64::engine::general_purpose::STANDARD.encode(TARBALL),
                                    "length": TARBALL.len()}},
        })
        .to_string()
        .into_bytes()
    }

    fn publish(host: &mut Host, name: &str, version: &str, dist: Value) -> HandleOutcome {
        let mut put = request("PUT", &name.replace('/', "%2f"));
        put.user = Some("alice".into());
        put.access.push = true;
        let body = document(name, version, dist);
        let outcome = host
            .run(|| Npm::handle(&put, Body::from_bytes(body)))
            .unwrap();
        host.apply(&outcome);
        outcome
    }

    fn get(host: &mut Host, path: &str, accept: Option<&str>) -> (HttpResponse, Value) {
        let mut get = request("GET", path);
        if let Some(accept) = accept {
            get.headers.push(("accept".into(), accept.into()));
        }
        let response = host
            .run(|| Npm::handle(&get, Body::empty()))
            .unwrap()
            .response;
        let value = body_bytes(&response.body)
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or(Value::Null);
        (response, value)
    }

    #[test]
    fn a_published_version_is_served_with_granarys_digests() {
        let mut host = Host::new();
        let outcome = publish(&mut host, "@acme/demo", "1.0.0", json!({}));
        assert_eq!(outcome.response.status, 200);
        let types: Vec<&str> = outcome
            .add_units
            .iter()
            .map(|u| u.content_type.as_str())
            .collect();
        assert_eq!(types, [PACKAGE, DIST_TAG]);
        assert_eq!(
            outcome.add_units[0].artifacts[0].relative_path,
            "@acme/demo/-/demo-1.0.0.tgz"
        );
        let (_, packument) = get(&mut host, "@acme%2fdemo", None);
        let version = &packument["versions"]["1.0.0"];
        let sha512 = <sha2::Sha512 as sha2::Digest>::digest(TARBALL);
        assert_eq!(
            version["dist"]["integrity"],
            format!(
                "sha512-{}",
                base64::engine::general_purpose::STANDARD.encode(sha512)
            )
        );
        assert_eq!(
            version["dist"]["tarball"],
            "http://localhost/pulp/content/demo/@acme/demo/-/demo-1.0.0.tgz"
        );
        assert_eq!(version["scripts"]["test"], "x", "the full manifest");
        assert_eq!(packument["dist-tags"]["latest"], "1.0.0");
        let published = packument["time"]["1.0.0"].as_str().unwrap();
        assert_eq!(packument["time"]["created"], published);
        assert_eq!(packument["description"], "demo");

        // What npm install asks for: only what resolution needs.
        let (response, abbreviated) = get(&mut host, "@acme/demo", Some(ABBREVIATED));
        assert!(
            response
                .headers
                .contains(&("content-type".into(), ABBREVIATED.into()))
        );
        let version = &abbreviated["versions"]["1.0.0"];
        assert_eq!(version["dependencies"]["left-pad"], "^1");
        assert!(version.get("scripts").is_none() && version.get("description").is_none());
        assert!(abbreviated.get("_rev").is_none());

        let (tarball, _) = get(&mut host, "@acme/demo/-/demo-1.0.0.tgz", None);
        assert!(matches!(
            tarball.body,
            granary_sdk::HttpBody::ContentArtifact(_)
        ));
    }

    #[test]
    fn a_version_is_published_once_and_with_the_digests_npm_computed() {
        let mut host = Host::new();
        publish(&mut host, "demo", "1.0.0", json!({}));
        let again = publish(&mut host, "demo", "1.0.0", json!({}));
        assert_eq!(again.response.status, 403);
        assert!(again.add_units.is_empty());
        let wrong = publish(&mut host, "demo", "1.0.1", json!({"shasum": "0000"}));
        assert_eq!(wrong.response.status, 400);
        let message =
            String::from_utf8_lossy(body_bytes(&wrong.response.body).unwrap()).into_owned();
        assert!(message.contains("the manifest says 0000"), "{message}");
    }

    #[test]
    fn npm_login_is_answered_with_a_token_for_the_right_password() {
        let mut host = Host::new();
        host.passwords.insert("alice".into(), "secret".into());
        let mut log_in = |password: &str| {
            let put = request("PUT", "-/user/org.couchdb.user:alice");
            let document = json!({"_id": "org.couchdb.user:alice", "name": "alice",
                                  "password": password, "type": "user", "roles": []});
            let response = host
                .run(|| Npm::handle(&put, Body::from_bytes(document.to_string().into_bytes())))
                .unwrap()
                .response;
            let answer: Value =
                serde_json::from_slice(body_bytes(&response.body).unwrap()).unwrap();
            (response.status, answer)
        };
        let (status, answer) = log_in("secret");
        assert_eq!(status, 201);
        assert_eq!(answer["token"], "grn_test0");
        let (status, answer) = log_in("guess");
        assert_eq!(status, 401);
        assert_eq!(answer["error"], "incorrect username or password");
        assert_eq!(host.issued_tokens.len(), 1);
        assert_eq!(host.issued_tokens[0].1, "npm login");
    }

    #[test]
    fn times_are_written_as_registries_write_them() {
        let time = now();
        assert_eq!(time.len(), "2026-12-06T00:46:44.699Z".len(), "{time}");
        assert!(time.starts_with("20") && time.ends_with('Z'), "{time}");
        assert_eq!(&time[10..11], "T");
    }

    #[test]
    fn package_names_are_checked_as_npm_checks_new_ones() {
        assert!(check_name("@acme/demo.js").is_ok());
        assert!(check_name("Demo").is_err());
        assert!(check_name("_private").is_err());
        assert!(check_name("@acme/").is_err());
        assert!(check_name(&"a".repeat(215)).is_err());
        assert_eq!(
            split_name("@acme/demo/-/demo-1.0.0.tgz"),
            Some(("@acme/demo", "/-/demo-1.0.0.tgz"))
        );
        assert_eq!(split_name("demo/1.0.0"), Some(("demo", "/1.0.0")));
        assert_eq!(decode_path("@acme%2Fdemo"), "@acme/demo");
    }
}
