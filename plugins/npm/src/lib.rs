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
//! `-/package/<name>/dist-tags[/<tag>]`, `-/v1/search`, `-/ping`, `-/whoami`. A scoped name
//! arrives as `@scope%2fname` or `@scope/name`. Errors are npm's `{"error": …}`.

use std::collections::BTreeMap;

use granary_sdk::{
    Body, ContentTypeInfo, HandleOutcome, HttpRequest, HttpResponse, Plugin, PluginError,
    PluginInfo, RemoteConfig, StoredUnit, UnitRef, content,
};
use serde_json::{Value, json};

pub mod attachments;
mod packument;
mod publish;

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
    }

    fn sync(_remote: &RemoteConfig) -> Result<(), PluginError> {
        Err(PluginError::new("npm remotes are not synced yet"))
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
        match (method, rest.as_slice()) {
            (_, []) if reading => Ok(packument::packument(request, name)?.into()),
            ("PUT", []) | ("PUT", ["-rev", _]) => publish::put(request, name, body),
            ("DELETE", ["-rev", _]) => publish::unpublish_all(request, name),
            (_, ["-", file]) if reading => Ok(tarball(name, file)?.into()),
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
    if let Some(rest) = path.strip_prefix("package/") {
        let Some((name, rest)) = split_name(rest) else {
            return Ok(HttpResponse::not_found().into());
        };
        return publish::dist_tags(request, method, name, rest.trim_start_matches('/'), body);
    }
    Ok(HttpResponse::not_found().into())
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

/// `<name>/-/<file>.tgz`: the stored tarball.
fn tarball(name: &str, file: &str) -> Result<HttpResponse, PluginError> {
    let relative_path = format!("{name}/-/{file}");
    for unit in content::find_by_path(&relative_path)? {
        if let Some(artifact) = unit
            .artifacts
            .iter()
            .find(|artifact| artifact.relative_path == relative_path)
        {
            return Ok(HttpResponse::content_artifact(&artifact.content_artifact)
                .kept_by_host(VERSION_ANSWER_SECONDS));
        }
    }
    Ok(npm_error(404, &format!("no tarball {file} of {name}")))
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
