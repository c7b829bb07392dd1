//! What npm writes: `npm publish` (the tarball decoded from the document as it streams in),
//! the packument rewrites of `npm deprecate` and `npm unpublish <name>@<version>`, `npm
//! unpublish <name> --force`, and `npm dist-tag add|rm|ls`. Each write is one new repository
//! version.

use std::collections::BTreeMap;
use std::io::Write as _;

use base64::Engine as _;
use granary_sdk::{
    ArtifactDeclaration, ArtifactRef, Body, HandleOutcome, HttpRequest, HttpResponse, PluginError,
    UnitDeclaration, UnitRef, artifacts, json,
};
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::{Digest as _, Sha512};

use crate::attachments::{Scanner, Sink};
use crate::packument::{deprecations_of, stored_versions};
use crate::{
    DEPRECATION, DIST_TAG, PACKAGE, bare_name, dist_tags_of, json_response, natural_key, npm_error,
    unit_ref, units_of,
};

/// The most bytes a publish document may have besides its attachment (package.json, readme).
const MAX_DOCUMENT: usize = 16 * 1024 * 1024;
/// Manifest fields not kept with a version: npm's own bookkeeping, and the readme (kept by npm
/// at the top of the document, and as large as its author likes).
const DROPPED_FIELDS: &[&str] = &["dist", "_id", "readme", "_resolved", "_integrity"];

/// A tarball decoded from the document and stored, with the digests npm names it by.
struct Tarball {
    file: String,
    artifact: ArtifactRef,
    /// sha1, hex: `dist.shasum`.
    shasum: String,
    /// `sha512-<base64>`: `dist.integrity`.
    integrity: String,
}

/// An attachment being decoded.
struct Open {
    file: String,
    writer: artifacts::Writer,
    sha1: Sha1,
    sha512: Sha512,
}

/// Stores each attachment as it is decoded, hashing it for npm.
#[derive(Default)]
struct Tarballs {
    open: Option<Open>,
    done: Vec<Tarball>,
}

impl Sink for Tarballs {
    fn start(&mut self, file: &str) -> Result<(), String> {
        if !self.done.is_empty() {
            return Err("a publish carries one tarball".into());
        }
        let writer = artifacts::Writer::new().map_err(|e| e.message().to_owned())?;
        self.open = Some(Open {
            file: file.to_owned(),
            writer,
            sha1: Sha1::new(),
            sha512: Sha512::new(),
        });
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let open = self.open.as_mut().ok_or("no attachment is open")?;
        open.sha1.update(bytes);
        open.sha512.update(bytes);
        open.writer
            .write_all(bytes)
            .map_err(|e| format!("storing the tarball: {e}"))
    }

    fn end(&mut self) -> Result<(), String> {
        let open = self.open.take().ok_or("no attachment is open")?;
        let artifact = open
            .writer
            .finish(None)
            .map_err(|e| format!("storing the tarball: {}", e.message()))?;
        self.done.push(Tarball {
            file: open.file,
            artifact,
            shasum: hex::encode(open.sha1.finalize()),
            integrity: format!(
                "sha512-{}",
                base64::engine::general_purpose::STANDARD.encode(open.sha512.finalize())
            ),
        });
        Ok(())
    }
}

/// The refusal of a write by a caller who may not, or at a distribution that cannot change.
fn refusal(request: &HttpRequest, removes: bool) -> Option<HttpResponse> {
    let allowed = if removes {
        request.access.delete
    } else {
        request.access.push
    };
    if !allowed {
        return Some(npm_error(
            403,
            "you may not change this registry's packages (ask for a role that may modify its repository)",
        ));
    }
    if !request.distribution().is_some_and(|d| d.writable) {
        return Some(npm_error(
            403,
            "this distribution serves a fixed repository version: publish to one that serves its repository's latest version",
        ));
    }
    None
}

/// `PUT <name>`: a publish when the document carries a tarball, otherwise a rewrite of the
/// packument (deprecations, unpublished versions, dist-tags).
pub fn put(
    request: &HttpRequest,
    name: &str,
    mut body: Body,
) -> Result<HandleOutcome, PluginError> {
    if let Some(refusal) = refusal(request, false) {
        return Ok(refusal.into());
    }
    let mut scanner = Scanner::new(Tarballs::default(), MAX_DOCUMENT);
    while let Some(chunk) = body.read_chunk()? {
        if let Err(message) = scanner.feed(&chunk) {
            return Ok(npm_error(400, &message).into());
        }
    }
    let (document, tarballs) = match scanner.finish() {
        Ok(done) => done,
        Err(message) => return Ok(npm_error(400, &message).into()),
    };
    let document: Value = match serde_json::from_slice(&document) {
        Ok(document) => document,
        Err(e) => {
            return Ok(npm_error(400, &format!("the package document is not JSON: {e}")).into());
        }
    };
    if document["name"].as_str() != Some(name) {
        return Ok(npm_error(
            400,
            &format!(
                "the document names package {}, the URL {name}",
                document["name"]
            ),
        )
        .into());
    }
    match tarballs.done.into_iter().next() {
        Some(tarball) => publish(name, &document, tarball),
        None => rewrite(request, name, &document),
    }
}

/// A new version, its tarball stored already.
fn publish(name: &str, document: &Value, tarball: Tarball) -> Result<HandleOutcome, PluginError> {
    let stored = stored_versions(name)?;
    let empty = Map::new();
    let versions = document["versions"].as_object().unwrap_or(&empty);
    if let Some(version) = versions
        .keys()
        .find(|version| stored.contains_key(*version))
    {
        return Ok(npm_error(
            403,
            &format!("You cannot publish over the previously published versions: {version}."),
        )
        .into());
    }
    let [(version, manifest)] = versions.iter().collect::<Vec<_>>()[..] else {
        return Ok(npm_error(400, "a publish adds exactly one version").into());
    };
    if let Err(e) = semver::Version::parse(version) {
        return Ok(npm_error(400, &format!("invalid version {version}: {e}")).into());
    }
    // npm names the attachment after the full name (`@scope/name-1.0.0.tgz`); the file is
    // served under the bare name, as registries serve it (`@scope/name/-/name-1.0.0.tgz`).
    let file = tarball_name(name, version);
    if tarball.file != format!("{name}-{version}.tgz") && tarball.file != file {
        return Ok(npm_error(
            400,
            &format!(
                "the tarball is called {}, not {name}-{version}.tgz",
                tarball.file
            ),
        )
        .into());
    }
    for (field, ours) in [
        ("integrity", &tarball.integrity),
        ("shasum", &tarball.shasum),
    ] {
        if let Some(theirs) = manifest["dist"][field].as_str()
            && theirs != ours
        {
            return Ok(npm_error(
                400,
                &format!("the tarball's {field} is {ours}, the manifest says {theirs}"),
            )
            .into());
        }
    }
    let digests = Digests {
        integrity: &tarball.integrity,
        shasum: &tarball.shasum,
    };
    let stored_file = File {
        url: None,
        size: Some(tarball.artifact.size),
        sha256: Some(tarball.artifact.sha256.clone()),
        sha512: None,
    };
    let unit = package_unit(
        name,
        version,
        manifest,
        &crate::now(),
        &digests,
        stored_file,
    );
    let mut units = vec![unit];
    if let Some(tags) = document["dist-tags"].as_object() {
        for (tag, tagged) in tags {
            if tagged.as_str() == Some(version.as_str()) {
                units.push(tag_unit(name, tag, version));
            }
        }
    }
    let answer = json_response(200, &serde_json::json!({"ok": true, "id": name}));
    Ok(HandleOutcome::with_units(answer, units))
}

/// The digests npm names a tarball by (`dist.integrity`, `dist.shasum`).
pub struct Digests<'a> {
    /// `sha512-<base64>`.
    pub integrity: &'a str,
    /// sha1, hex.
    pub shasum: &'a str,
}

/// Where a tarball's bytes are, or come from, and what the host checks them against.
pub struct File {
    /// The upstream's URL, for a file not stored yet.
    pub url: Option<String>,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// sha256 (hex), for bytes stored here.
    pub sha256: Option<String>,
    /// sha512 (hex), for an upstream's file (its `dist.integrity`).
    pub sha512: Option<String>,
}

/// The unit of `version` of `name`: its manifest (without npm's bookkeeping and the readme),
/// when it was published, and its tarball at `<name>/-/<bare name>-<version>.tgz`.
pub fn package_unit(
    name: &str,
    version: &str,
    manifest: &Value,
    published: &str,
    digests: &Digests<'_>,
    file: File,
) -> UnitDeclaration {
    let mut kept = manifest.as_object().cloned().unwrap_or_default();
    for field in DROPPED_FIELDS {
        kept.remove(*field);
    }
    let file_name = tarball_name(name, version);
    UnitDeclaration {
        content_type: PACKAGE.into(),
        natural_key: json::string_object([
            ("name", name),
            ("version", version),
            ("integrity", digests.integrity),
        ]),
        metadata: serde_json::json!({
            "name": name,
            "key": format!("{name}@{version}"),
            "version": version,
            "manifest": kept,
            "integrity": digests.integrity,
            "shasum": digests.shasum,
            "file": file_name,
            "published": published,
        })
        .to_string(),
        artifacts: vec![ArtifactDeclaration {
            relative_path: format!("{name}/-/{file_name}"),
            url: file.url,
            size: file.size,
            sha256: file.sha256,
            sha512: file.sha512,
        }],
    }
}

/// The file name of a version's tarball: the bare name, as registries serve it
/// (`@scope/name/-/name-1.0.0.tgz`).
pub fn tarball_name(name: &str, version: &str) -> String {
    format!("{}-{version}.tgz", bare_name(name))
}

/// The packument sent back changed: `npm deprecate` (versions' `deprecated`), `npm unpublish
/// <name>@<version>` (a version left out, `dist-tags` moved off it).
fn rewrite(
    request: &HttpRequest,
    name: &str,
    document: &Value,
) -> Result<HandleOutcome, PluginError> {
    let stored = stored_versions(name)?;
    if stored.is_empty() {
        return Ok(npm_error(404, &format!("{name} is not published here")).into());
    }
    let empty = Map::new();
    let versions = document["versions"].as_object().unwrap_or(&empty);
    let mut added = Vec::new();
    let mut removed: Vec<UnitRef> = Vec::new();
    let gone: Vec<&String> = stored
        .keys()
        .filter(|v| !versions.contains_key(*v))
        .collect();
    if !gone.is_empty() {
        if let Some(refusal) = refusal(request, true) {
            return Ok(refusal.into());
        }
        for unit in units_of(PACKAGE, name)? {
            if natural_key(&unit)["version"]
                .as_str()
                .is_some_and(|v| gone.iter().any(|gone| *gone == v))
            {
                removed.push(unit_ref(&unit));
            }
        }
    }
    // Deprecations as the document has them, for the versions that stay.
    let deprecations = deprecations_of(name)?;
    for unit in units_of(DEPRECATION, name)? {
        let version = natural_key(&unit)["version"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let wanted = versions
            .get(&version)
            .and_then(|v| v["deprecated"].as_str())
            .filter(|message| !message.is_empty());
        if wanted != deprecations.get(&version).map(String::as_str) {
            removed.push(unit_ref(&unit));
        }
    }
    for (version, manifest) in versions {
        let Some(message) = manifest["deprecated"].as_str().filter(|m| !m.is_empty()) else {
            continue;
        };
        if stored.contains_key(version)
            && deprecations.get(version).map(String::as_str) != Some(message)
        {
            added.push(deprecation_unit(name, version, message));
        }
    }
    // Dist-tags as the document has them, on the versions that stay.
    let tags = dist_tags_of(name)?;
    let wanted: BTreeMap<String, String> = document["dist-tags"]
        .as_object()
        .unwrap_or(&empty)
        .iter()
        .filter_map(|(tag, version)| Some((tag.clone(), version.as_str()?.to_owned())))
        .filter(|(_, version)| stored.contains_key(version) && versions.contains_key(version))
        .collect();
    for unit in units_of(DIST_TAG, name)? {
        let key = natural_key(&unit);
        let tag = key["tag"].as_str().unwrap_or_default();
        if wanted.get(tag) != key["version"].as_str().map(str::to_owned).as_ref() {
            removed.push(unit_ref(&unit));
        }
    }
    for (tag, version) in &wanted {
        if tags.get(tag) != Some(version) {
            added.push(tag_unit(name, tag, version));
        }
    }
    let answer = json_response(200, &serde_json::json!({"ok": true, "id": name}));
    Ok(HandleOutcome::with_units(answer, added).removing(removed))
}

/// `DELETE <name>/-rev/<rev>`: every version of the package, its tags and deprecations.
pub fn unpublish_all(request: &HttpRequest, name: &str) -> Result<HandleOutcome, PluginError> {
    if let Some(refusal) = refusal(request, true) {
        return Ok(refusal.into());
    }
    let mut removed = Vec::new();
    for content_type in [PACKAGE, DIST_TAG, DEPRECATION] {
        removed.extend(units_of(content_type, name)?.iter().map(unit_ref));
    }
    if removed.is_empty() {
        return Ok(npm_error(404, &format!("{name} is not published here")).into());
    }
    let answer = json_response(200, &serde_json::json!({"ok": true}));
    Ok(HandleOutcome::respond(answer).removing(removed))
}

/// `-/package/<name>/dist-tags` (`GET`) and `…/dist-tags/<tag>` (`PUT` with the version as a
/// JSON string, `DELETE`).
pub fn dist_tags(
    request: &HttpRequest,
    method: &str,
    name: &str,
    rest: &str,
    body: Body,
) -> Result<HandleOutcome, PluginError> {
    let stored = stored_versions(name)?;
    if stored.is_empty() {
        return Ok(npm_error(404, &format!("{name} is not published here")).into());
    }
    let tags = dist_tags_of(name)?;
    let tag = rest
        .strip_prefix("dist-tags")
        .map(|t| t.trim_start_matches('/'));
    match (method, tag) {
        ("GET" | "HEAD", Some("")) => {
            let tags: Map<String, Value> = tags.into_iter().map(|(t, v)| (t, v.into())).collect();
            Ok(json_response(200, &Value::Object(tags)).into())
        }
        ("PUT", Some(tag)) if !tag.is_empty() => {
            if let Some(refusal) = refusal(request, false) {
                return Ok(refusal.into());
            }
            let version: Option<String> = serde_json::from_slice(&body.bytes(1024)?).ok();
            let Some(version) = version.filter(|v| stored.contains_key(v)) else {
                return Ok(npm_error(
                    400,
                    &format!("name a published version of {name} as a JSON string"),
                )
                .into());
            };
            if semver::VersionReq::parse(tag).is_ok() {
                return Ok(npm_error(
                    400,
                    &format!("a tag may not look like a version range: {tag}"),
                )
                .into());
            }
            let answer = json_response(200, &serde_json::json!({"ok": true}));
            Ok(HandleOutcome::with_units(
                answer,
                vec![tag_unit(name, tag, &version)],
            ))
        }
        ("DELETE", Some(tag)) if !tag.is_empty() => {
            if let Some(refusal) = refusal(request, false) {
                return Ok(refusal.into());
            }
            if tag == "latest" {
                return Ok(npm_error(400, "the latest tag cannot be removed").into());
            }
            let removed: Vec<UnitRef> = units_of(DIST_TAG, name)?
                .iter()
                .filter(|unit| natural_key(unit)["tag"].as_str() == Some(tag))
                .map(unit_ref)
                .collect();
            if removed.is_empty() {
                return Ok(npm_error(404, &format!("{name} has no tag {tag}")).into());
            }
            let answer = json_response(200, &serde_json::json!({"ok": true}));
            Ok(HandleOutcome::respond(answer).removing(removed))
        }
        _ => Ok(HttpResponse::not_found().into()),
    }
}

pub fn tag_unit(name: &str, tag: &str, version: &str) -> UnitDeclaration {
    UnitDeclaration {
        content_type: DIST_TAG.into(),
        natural_key: json::string_object([("name", name), ("tag", tag), ("version", version)]),
        metadata: serde_json::json!({"name": name, "key": format!("{name}:{tag}")}).to_string(),
        artifacts: Vec::new(),
    }
}

pub fn deprecation_unit(name: &str, version: &str, message: &str) -> UnitDeclaration {
    UnitDeclaration {
        content_type: DEPRECATION.into(),
        natural_key: json::string_object([
            ("name", name),
            ("version", version),
            ("message", message),
        ]),
        metadata: serde_json::json!({"name": name, "key": format!("{name}@{version}")}).to_string(),
        artifacts: Vec::new(),
    }
}
