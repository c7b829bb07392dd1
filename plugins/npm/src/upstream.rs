//! An upstream npm registry, the remote's `url` (`https://registry.npmjs.org/`, a Verdaccio):
//! a distribution with that remote is a pull-through mirror of it, and a sync copies the
//! packages its `includes` lists.
//!
//! Pull-through: a packument is the upstream's (asked again, conditionally, at most every
//! `metadata_max_age` seconds: the host keeps the upstream's validators and this answer), its
//! tarball URLs rewritten to this distribution, plus the versions kept here that the upstream
//! no longer lists; when the upstream cannot be reached, the kept versions are served alone. A
//! tarball is fetched from the upstream the first time a client asks (once, however many ask at
//! the same time), checked by the host against the version's `dist.integrity` (sha512), kept
//! and added to the repository.

use std::collections::BTreeMap;

use base64::Engine as _;
use granary_sdk::{
    HandleOutcome, HttpRequest, HttpResponse, PluginError, RemoteConfig, UnitDeclaration, http,
    log, progress, sync::Emitter,
};
#[cfg(test)]
use serde_json::json;
use serde_json::{Map, Value};

use crate::packument::{self, stored_versions};
use crate::publish::{self, Digests, File, tarball_name};
use crate::{ABBREVIATED, check_name, npm_error};

/// Largest upstream packument read (the registry's biggest are tens of MiB; abbreviated ones,
/// which installs ask for, a fraction of that).
const MAX_PACKUMENT: usize = 48 * 1024 * 1024;
/// How long the host keeps a pull-through packument unless the remote says
/// (`metadata_max_age`): the upstream's changes show after at most this long.
pub const DEFAULT_MAX_AGE: u32 = 300;
/// The longest `metadata_max_age` accepted (a week).
const MAX_MAX_AGE: u32 = 7 * 24 * 3600;

/// JSON Schema of the remote fields (`plugin-info.remote-fields`).
pub const REMOTE_FIELDS: &str = r#"{"type":"object","additionalProperties":false,"properties":{"includes":{"type":"array","items":{"type":"string","minLength":1,"maxLength":512},"maxItems":10000,"description":"Packages a sync copies: a name (every version), or a name and a semver range (react@^18.2.0, @types/node@>=20 <22); a pull-through distribution ignores it"},"metadata_max_age":{"type":"integer","minimum":0,"maximum":604800,"description":"Seconds a pull-through packument is served before the upstream is asked again (default 300)"}}}"#;

/// The remote's npm fields.
struct Fields {
    includes: Vec<String>,
    metadata_max_age: u32,
}

impl Fields {
    fn of(remote: &RemoteConfig) -> Fields {
        let extra: Value = serde_json::from_str(&remote.extra).unwrap_or(Value::Null);
        Fields {
            includes: extra["includes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|include| include.as_str().map(str::to_owned))
                .collect(),
            metadata_max_age: extra["metadata_max_age"]
                .as_u64()
                .map_or(DEFAULT_MAX_AGE, |age| {
                    u32::try_from(age).unwrap_or(MAX_MAX_AGE).min(MAX_MAX_AGE)
                }),
        }
    }
}

/// The upstream registry's URL, ending in `/`.
fn registry_base(remote: &RemoteConfig) -> String {
    if remote.url.ends_with('/') {
        remote.url.clone()
    } else {
        format!("{}/", remote.url)
    }
}

/// The upstream's packument of `name` (`None` when it does not know the package), full or
/// abbreviated, with the content type it answered.
fn upstream_packument(
    remote: &RemoteConfig,
    name: &str,
    abbreviated: bool,
) -> Result<Option<(Value, &'static str)>, PluginError> {
    // Registries take a scoped name with its slash escaped.
    let url = format!("{}{}", registry_base(remote), name.replace('/', "%2f"));
    let accept = if abbreviated {
        ABBREVIATED
    } else {
        "application/json"
    };
    let Some(response) = http::get_found(&url, &[("accept", accept)])? else {
        return Ok(None);
    };
    let content_type = match response.header("content-type") {
        Some(answered) if answered.contains(ABBREVIATED) => ABBREVIATED,
        _ => "application/json",
    };
    let body = response.read_to_end(MAX_PACKUMENT)?;
    let document: Value = serde_json::from_slice(&body)
        .map_err(|e| PluginError::new(format!("{url} is not a packument: {e}")))?;
    if !document["versions"].is_object() {
        return Err(PluginError::new(format!("{url} has no `versions`")));
    }
    Ok(Some((document, content_type)))
}

/// `GET <name>` at a pull-through distribution: the upstream's packument with its tarballs
/// here, and the versions kept here that it does not list.
pub fn packument(
    request: &HttpRequest,
    remote: &RemoteConfig,
    name: &str,
) -> Result<HttpResponse, PluginError> {
    let abbreviated = request
        .header("accept")
        .is_some_and(|accept| accept.contains(ABBREVIATED));
    let (mut document, content_type) = match upstream_packument(remote, name, abbreviated) {
        Ok(Some(found)) => found,
        Ok(None) => return packument::packument(request, name),
        // The mirror keeps serving what it has when the upstream is away.
        Err(error) => {
            log::warn(format!(
                "pull-through packument of {name}: {}",
                error.message()
            ));
            let kept = packument::packument(request, name)?;
            return Ok(if kept.status == 404 {
                npm_error(502, error.message())
            } else {
                kept
            });
        }
    };
    let versions = document["versions"].as_object_mut().expect("checked above");
    for (version, manifest) in versions.iter_mut() {
        if let Some(dist) = manifest["dist"].as_object_mut() {
            let here = format!(
                "{}{name}/-/{}",
                request.base_url,
                tarball_name(name, version)
            );
            dist.insert("tarball".into(), here.into());
        }
    }
    let kept = stored_versions(name)?;
    let deprecations = packument::deprecations_of(name)?;
    let mut kept_times = Vec::new();
    for (version, stored) in &kept {
        if !versions.contains_key(version) {
            kept_times.push((version.clone(), stored["published"].clone()));
            let document = packument::version_document(
                &request.base_url,
                name,
                stored,
                deprecations.get(version),
                abbreviated,
            );
            versions.insert(version.clone(), document);
        }
    }
    if let Some(times) = document["time"].as_object_mut() {
        times.extend(kept_times.into_iter().filter(|(_, time)| time.is_string()));
    }
    let max_age = Fields::of(remote).metadata_max_age;
    Ok(HttpResponse::ok(content_type, document.to_string())
        .with_header("vary", "Accept")
        .kept_by_host(max_age))
}

/// The sha512 of an npm `integrity` string, in hex, when it names one (`sha512-<base64>`; an
/// integrity may list several digests separated by spaces).
pub fn sha512_hex(integrity: &str) -> Option<String> {
    integrity.split_whitespace().find_map(|digest| {
        let encoded = digest.strip_prefix("sha512-")?;
        // Options after `?` belong to the Subresource Integrity syntax, not to the digest.
        let encoded = encoded.split('?').next()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        (bytes.len() == 64).then(|| hex::encode(bytes))
    })
}

/// The unit of an upstream version (its manifest from a packument, published at `published`
/// or, where the packument does not say, now), its tarball declared at the upstream's URL with
/// the sha512 the host checks it against.
fn upstream_unit(
    name: &str,
    version: &str,
    manifest: &Value,
    published: Option<&str>,
) -> Result<UnitDeclaration, String> {
    let dist = &manifest["dist"];
    let url = dist["tarball"]
        .as_str()
        .ok_or_else(|| format!("the upstream's {name}@{version} has no dist.tarball"))?;
    let integrity = dist["integrity"].as_str().unwrap_or_default();
    let sha512 = sha512_hex(integrity).ok_or_else(|| {
        format!(
            "the upstream's {name}@{version} has no sha512 dist.integrity to check its tarball against"
        )
    })?;
    let digests = Digests {
        integrity,
        shasum: dist["shasum"].as_str().unwrap_or_default(),
    };
    let file = File {
        url: Some(url.to_owned()),
        size: None,
        sha256: None,
        sha512: Some(sha512),
    };
    let published = published.map_or_else(crate::now, str::to_owned);
    Ok(publish::package_unit(
        name, version, manifest, &published, &digests, file,
    ))
}

/// `GET <name>/-/<file>` at a pull-through distribution, for a tarball not kept yet: the
/// upstream version's, fetched once by the host, checked, kept, added to the repository and
/// streamed.
pub fn tarball(
    remote: &RemoteConfig,
    name: &str,
    file: &str,
) -> Result<HandleOutcome, PluginError> {
    let document = match upstream_packument(remote, name, true) {
        Ok(Some((document, _))) => document,
        Ok(None) => return Ok(npm_error(404, &format!("no tarball {file} of {name}")).into()),
        Err(error) => return Ok(npm_error(502, error.message()).into()),
    };
    let found = document["versions"]
        .as_object()
        .into_iter()
        .flatten()
        .find(|(version, _)| tarball_name(name, version) == file);
    let Some((version, manifest)) = found else {
        return Ok(npm_error(404, &format!("no tarball {file} of {name}")).into());
    };
    // The abbreviated packument has no times: the version counts as published now.
    let unit = match upstream_unit(name, version, manifest, None) {
        Ok(unit) => unit,
        Err(message) => return Ok(npm_error(502, &message).into()),
    };
    let relative_path = unit.artifacts[0].relative_path.clone();
    Ok(HttpResponse::fetch_upstream(unit, &relative_path).into())
}

/// One entry of `includes`: a package and the versions wanted.
#[derive(Debug)]
struct Include {
    name: String,
    range: Option<nodejs_semver::Range>,
    /// The range as written, for messages.
    written: String,
}

/// Parses `includes` entries: `name` or `name@range` (`@scope/name@^1`).
fn parse_include(entry: &str) -> Result<Include, PluginError> {
    let entry = entry.trim();
    let at = if let Some(scoped) = entry.strip_prefix('@') {
        scoped.find('@').map(|i| i + 1)
    } else {
        entry.find('@')
    };
    let (name, written) = match at {
        Some(at) => (&entry[..at], entry[at + 1..].trim()),
        None => (entry, ""),
    };
    // Names published before npm's rules for new packages may have capitals: only the shape is
    // checked, lower-cased.
    check_name(&name.to_ascii_lowercase())
        .map_err(|message| PluginError::field("includes", message))?;
    let range = if written.is_empty() || written == "*" {
        None
    } else {
        Some(written.parse::<nodejs_semver::Range>().map_err(|e| {
            PluginError::field(
                "includes",
                format!("{entry}: `{written}` is not a semver range: {e}"),
            )
        })?)
    };
    Ok(Include {
        name: name.to_owned(),
        range,
        written: written.to_owned(),
    })
}

/// Syncs the packages `includes` lists: the versions in each range, with their dist-tags and
/// deprecations. The tarballs are declared at the upstream's URLs for the host to fetch as the
/// remote's policy says, checked against their sha512.
pub fn sync(remote: &RemoteConfig) -> Result<(), PluginError> {
    let fields = Fields::of(remote);
    if fields.includes.is_empty() {
        return Err(PluginError::field(
            "includes",
            "an npm remote syncs the packages its `includes` lists (a pull-through distribution needs no sync)",
        ));
    }
    let includes = fields
        .includes
        .iter()
        .map(|entry| parse_include(entry))
        .collect::<Result<Vec<_>, _>>()?;
    let mut emitter = Emitter::new();
    let total = includes.len() as u64;
    for (done, include) in includes.iter().enumerate() {
        progress::report(
            "sync.packages",
            "Syncing packages",
            done as u64,
            Some(total),
        );
        let Some((document, _)) = upstream_packument(remote, &include.name, false)? else {
            return Err(PluginError::field(
                "includes",
                format!("the upstream has no package {}", include.name),
            ));
        };
        let units = wanted_units(&include.name, &document, include.range.as_ref())
            .map_err(PluginError::new)?;
        if units.is_empty() {
            return Err(PluginError::field(
                "includes",
                format!(
                    "the upstream has no version of {} in `{}`",
                    include.name, include.written
                ),
            ));
        }
        for unit in units {
            emitter.emit(unit)?;
        }
    }
    emitter.finish()?;
    progress::report("sync.packages", "Syncing packages", total, Some(total));
    Ok(())
}

/// The units of the versions of a packument in `range` (every version without one), and of its
/// dist-tags and deprecations that concern them.
fn wanted_units(
    name: &str,
    document: &Value,
    range: Option<&nodejs_semver::Range>,
) -> Result<Vec<UnitDeclaration>, String> {
    let empty = Map::new();
    let versions = document["versions"].as_object().unwrap_or(&empty);
    let wanted: BTreeMap<&str, &Value> = versions
        .iter()
        .map(|(version, manifest)| (version.as_str(), manifest))
        .filter(|(version, _)| match range {
            None => true,
            Some(range) => version
                .parse::<nodejs_semver::Version>()
                .is_ok_and(|parsed| parsed.satisfies(range)),
        })
        .collect();
    let mut units = Vec::new();
    for (version, manifest) in &wanted {
        let published = document["time"][*version].as_str();
        units.push(upstream_unit(name, version, manifest, published)?);
        if let Some(message) = manifest["deprecated"].as_str().filter(|m| !m.is_empty()) {
            units.push(publish::deprecation_unit(name, version, message));
        }
    }
    for (tag, version) in document["dist-tags"].as_object().unwrap_or(&empty) {
        if let Some(version) = version.as_str().filter(|v| wanted.contains_key(v)) {
            units.push(publish::tag_unit(name, tag, version));
        }
    }
    Ok(units)
}

/// `json!` of a packument, for the tests.
#[cfg(test)]
fn packument_of(name: &str, versions: &[(&str, &str)]) -> Value {
    let versions: Map<String, Value> = versions
        .iter()
        .map(|(version, integrity)| {
            (
                (*version).to_owned(),
                json!({"name": name, "version": version,
                       "dist": {"tarball": format!("http://up/{name}/-/{name}-{version}.tgz"),
                                "integrity": integrity, "shasum": "ab"}}),
            )
        })
        .collect();
    json!({"name": name, "versions": versions, "dist-tags": {"latest": "2.0.0", "beta": "3.0.0-rc.1"}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integrity(byte: u8) -> String {
        format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode([byte; 64])
        )
    }

    #[test]
    fn integrity_strings_give_their_sha512() {
        assert_eq!(sha512_hex(&integrity(1)), Some("01".repeat(64)));
        assert_eq!(
            sha512_hex(&format!("sha1-AAAA {}", integrity(2))),
            Some("02".repeat(64))
        );
        assert_eq!(sha512_hex("sha1-q2lYsTeUWBXZp9RZgV9oRlVdFHY="), None);
        assert_eq!(sha512_hex("sha512-not base64"), None);
    }

    #[test]
    fn includes_take_npm_ranges() {
        let include = parse_include("@types/node@>=20 <22").unwrap();
        assert_eq!(include.name, "@types/node");
        let range = include.range.unwrap();
        let satisfies = |v: &str| {
            v.parse::<nodejs_semver::Version>()
                .unwrap()
                .satisfies(&range)
        };
        assert!(satisfies("21.3.0") && !satisfies("22.0.0"));
        assert!(parse_include("left-pad").unwrap().range.is_none());
        assert!(parse_include("left-pad@*").unwrap().range.is_none());
        let error = parse_include("left-pad@^^1").unwrap_err();
        assert_eq!(error.field_name(), Some("includes"));
        assert!(parse_include("Bad Name@1").is_err());
    }

    #[test]
    fn a_sync_takes_the_versions_in_range_and_their_tags() {
        let document = packument_of(
            "demo",
            &[
                ("1.0.0", &integrity(1)),
                ("1.5.0", &integrity(2)),
                ("2.0.0", &integrity(3)),
                ("3.0.0-rc.1", &integrity(4)),
            ],
        );
        let range: nodejs_semver::Range = "^1.2 || 2".parse().unwrap();
        let units = wanted_units("demo", &document, Some(&range)).unwrap();
        let keys: Vec<&str> = units.iter().map(|u| u.natural_key.as_str()).collect();
        assert_eq!(units.len(), 3, "{keys:?}");
        assert!(keys[0].contains("1.5.0") && keys[1].contains("2.0.0"));
        assert!(keys[2].contains("latest"), "the tag of a synced version");
        let tarball = &units[0].artifacts[0];
        assert_eq!(tarball.relative_path, "demo/-/demo-1.5.0.tgz");
        assert_eq!(tarball.sha512.as_deref(), Some("02".repeat(64).as_str()));
        assert_eq!(
            tarball.url.as_deref(),
            Some("http://up/demo/-/demo-1.5.0.tgz")
        );

        let without_sha512 = packument_of("demo", &[("1.0.0", "sha1-AAAA")]);
        let error = wanted_units("demo", &without_sha512, None).unwrap_err();
        assert!(error.contains("no sha512"), "{error}");
    }
}
