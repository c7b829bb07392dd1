//! What npm reads: packuments (full and abbreviated), version documents, search results.

use std::collections::BTreeMap;

use granary_sdk::{HttpRequest, HttpResponse, PluginError, content};
use serde_json::{Map, Value, json};

use crate::{
    ABBREVIATED, DEPRECATION, NAME, PACKAGE, VERSION_ANSWER_SECONDS, dist_tags_of, json_response,
    metadata, natural_key, npm_error, units_of,
};

/// The manifest fields an abbreviated packument keeps of each version (npm's
/// `application/vnd.npm.install-v1+json`), besides `name`, `version`, `dist` and `deprecated`.
const ABBREVIATED_FIELDS: &[&str] = &[
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "bundleDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "bin",
    "directories",
    "engines",
    "cpu",
    "os",
    "_hasShrinkwrap",
    "hasInstallScript",
    "funding",
];
/// Search results per page unless the client says, and at most.
const SEARCH_SIZE: usize = 20;
const MAX_SEARCH_SIZE: usize = 250;

/// The stored versions of `name`: version → (its unit's metadata).
pub fn stored_versions(name: &str) -> Result<BTreeMap<String, Value>, PluginError> {
    Ok(units_of(PACKAGE, name)?
        .iter()
        .map(metadata)
        .filter_map(|metadata| Some((metadata["version"].as_str()?.to_owned(), metadata)))
        .collect())
}

/// The deprecation messages of `name`'s versions.
pub fn deprecations_of(name: &str) -> Result<BTreeMap<String, String>, PluginError> {
    Ok(units_of(DEPRECATION, name)?
        .iter()
        .map(natural_key)
        .filter_map(|key| {
            Some((
                key["version"].as_str()?.to_owned(),
                key["message"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

/// The document of one version: its manifest, with `dist` (the tarball here and Granary's
/// digests) and `deprecated`.
pub fn version_document(
    base_url: &str,
    name: &str,
    stored: &Value,
    deprecated: Option<&String>,
    abbreviated: bool,
) -> Value {
    let version = stored["version"].as_str().unwrap_or_default();
    let mut document = match &stored["manifest"] {
        Value::Object(manifest) if abbreviated => manifest
            .iter()
            .filter(|(field, _)| ABBREVIATED_FIELDS.contains(&field.as_str()))
            .map(|(field, value)| (field.clone(), value.clone()))
            .collect(),
        Value::Object(manifest) => manifest.clone(),
        _ => Map::new(),
    };
    document.insert("name".into(), name.into());
    document.insert("version".into(), version.into());
    if !abbreviated {
        document.insert("_id".into(), format!("{name}@{version}").into());
    }
    document.insert(
        "dist".into(),
        json!({
            "tarball": format!("{base_url}{name}/-/{}", stored["file"].as_str().unwrap_or_default()),
            "shasum": stored["shasum"],
            "integrity": stored["integrity"],
        }),
    );
    if let Some(message) = deprecated {
        document.insert("deprecated".into(), message.as_str().into());
    }
    Value::Object(document)
}

/// A revision for the packument, as CouchDB's `_rev` (npm sends it back when it unpublishes):
/// the number of versions and a digest of what the packument lists.
fn revision(versions: &BTreeMap<String, Value>, tags: &BTreeMap<String, String>) -> String {
    // FNV-1a: a revision need not be secret, only change when the listing does.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let listing =
        json!({"versions": versions.keys().collect::<Vec<_>>(), "tags": tags}).to_string();
    for byte in listing.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}-{hash:016x}", versions.len().max(1))
}

/// The highest version of those stored, a release before any pre-release.
fn highest(versions: &BTreeMap<String, Value>) -> Option<&String> {
    versions
        .keys()
        .filter_map(|version| Some((semver::Version::parse(version).ok()?, version)))
        .max_by(|a, b| (a.0.pre.is_empty(), &a.0).cmp(&(b.0.pre.is_empty(), &b.0)))
        .map(|(_, version)| version)
}

/// The dist-tags of `name`, with `latest` naming the highest version when no tag does (a
/// repository synced with a range that leaves the upstream's `latest` out): npm installs
/// `latest` when asked for a package alone.
fn tags_with_latest(
    name: &str,
    versions: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, String>, PluginError> {
    let mut tags = dist_tags_of(name)?;
    if !tags.contains_key("latest")
        && let Some(highest) = highest(versions)
    {
        tags.insert("latest".into(), highest.clone());
    }
    Ok(tags)
}

/// `GET <name>`: the packument, abbreviated when the client accepts only that.
pub fn packument(request: &HttpRequest, name: &str) -> Result<HttpResponse, PluginError> {
    let versions = stored_versions(name)?;
    if versions.is_empty() {
        return Ok(npm_error(404, "Not found"));
    }
    let tags = tags_with_latest(name, &versions)?;
    let deprecations = deprecations_of(name)?;
    let abbreviated = request
        .header("accept")
        .is_some_and(|accept| accept.contains(ABBREVIATED));
    let documents: Map<String, Value> = versions
        .iter()
        .map(|(version, stored)| {
            let document = version_document(
                &request.base_url,
                name,
                stored,
                deprecations.get(version),
                abbreviated,
            );
            (version.clone(), document)
        })
        .collect();
    let mut packument = json!({"name": name, "dist-tags": tags, "versions": documents});
    let times: BTreeMap<&String, &str> = versions
        .iter()
        .filter_map(|(version, stored)| Some((version, stored["published"].as_str()?)))
        .collect();
    let modified = times.values().max().copied();
    if let Some(modified) = modified {
        packument["modified"] = modified.into();
    }
    if !abbreviated {
        let mut time: Map<String, Value> = times
            .iter()
            .map(|(version, at)| ((*version).clone(), (*at).into()))
            .collect();
        if let (Some(created), Some(modified)) = (times.values().min(), modified) {
            time.insert("created".into(), (*created).into());
            time.insert("modified".into(), modified.into());
        }
        packument["time"] = Value::Object(time);
        packument["_id"] = name.into();
        packument["_rev"] = revision(&versions, &tags).into();
        let latest = tags.get("latest").or_else(|| highest(&versions));
        if let Some(latest) = latest.and_then(|version| versions.get(version)) {
            packument["description"] = latest["manifest"]["description"].clone();
        }
    }
    let content_type = if abbreviated {
        ABBREVIATED
    } else {
        "application/json"
    };
    Ok(HttpResponse::ok(content_type, packument.to_string())
        .with_header("vary", "Accept")
        .kept_by_host(VERSION_ANSWER_SECONDS))
}

/// `GET <name>/<version or dist-tag>`: one version's document.
pub fn version(
    request: &HttpRequest,
    name: &str,
    wanted: &str,
) -> Result<HttpResponse, PluginError> {
    let versions = stored_versions(name)?;
    let tags = tags_with_latest(name, &versions)?;
    let version = tags.get(wanted).map_or(wanted, String::as_str);
    let Some(stored) = versions.get(version) else {
        return Ok(npm_error(404, &format!("version not found: {wanted}")));
    };
    let deprecations = deprecations_of(name)?;
    let document = version_document(
        &request.base_url,
        name,
        stored,
        deprecations.get(version),
        false,
    );
    Ok(json_response(200, &document).kept_by_host(VERSION_ANSWER_SECONDS))
}

/// `GET -/v1/search?text=&size=`: packages whose name contains the text, in name order, each
/// with its `latest` (or highest) version's description.
pub fn search(request: &HttpRequest) -> Result<HttpResponse, PluginError> {
    let text = request
        .query_param("text")
        .unwrap_or_default()
        .to_lowercase();
    let size = request
        .query_param("size")
        .and_then(|size| size.parse::<usize>().ok())
        .unwrap_or(SEARCH_SIZE)
        .clamp(1, MAX_SEARCH_SIZE);
    let mut total = 0usize;
    let mut objects = Vec::new();
    for name in content::distinct_values(PACKAGE, NAME) {
        let name = name?;
        if !name.contains(&text) {
            continue;
        }
        total += 1;
        if objects.len() == size {
            continue;
        }
        let versions = stored_versions(&name)?;
        let tags = dist_tags_of(&name)?;
        let Some(version) = tags.get("latest").or_else(|| highest(&versions)) else {
            continue;
        };
        let manifest = &versions[version]["manifest"];
        objects.push(json!({
            "package": {
                "name": name,
                "version": version,
                "description": manifest["description"],
                // npm's search output maps over both lists: never leave them out.
                "keywords": manifest["keywords"].as_array().cloned().unwrap_or_default(),
                "maintainers": [],
                "links": {},
            },
            "score": {"final": 1.0, "detail": {"quality": 1.0, "popularity": 1.0, "maintenance": 1.0}},
            "searchScore": 1.0,
        }));
    }
    let answer = json!({"objects": objects, "total": total});
    Ok(json_response(200, &answer).kept_by_host(VERSION_ANSWER_SECONDS))
}
