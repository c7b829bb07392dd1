//! The registry's web API under `api/v1/`, as cargo calls it: publish, download, yank and unyank,
//! owners, search. Answers are JSON; errors are cargo's `{"errors":[{"detail":…}]}`.

use granary_sdk::{
    ArtifactDeclaration, Body, HandleOutcome, HttpRequest, HttpResponse, PluginError, StoredUnit,
    UnitDeclaration, UnitRef, artifacts, content, json,
};
use serde_json::{Value, json};

use crate::index::{self, NewCrate};
use crate::{
    CANONICAL_NAME, CRATE, KEY, LOWERCASE_NAME, OWNER, Published, VERSION_ANSWER_SECONDS, YANK,
    cargo_error, json_response, upstream,
};

/// Largest publish metadata document read (crates.io's own are a few KiB).
const MAX_METADATA: u32 = 1024 * 1024;
/// Largest owners request body read.
const MAX_OWNERS_BODY: usize = 64 * 1024;
/// Search results per page when the client does not say (crates.io's default), and at most.
const SEARCH_PAGE: usize = 10;
const MAX_SEARCH_PAGE: usize = 100;

/// Routes `api/v1/<api>`.
pub fn handle(request: &HttpRequest, api: &str, body: Body) -> Result<HandleOutcome, PluginError> {
    let method = request.method.as_str();
    let reading = matches!(method, "GET" | "HEAD");
    let segments: Vec<&str> = api.split('/').collect();
    let outcome = match (method, segments.as_slice()) {
        ("PUT", ["crates", "new"]) => publish(request, body)?,
        (_, ["crates"]) if reading => search(request)?.into(),
        (_, ["crates", name, version, "download"]) if reading => download(request, name, version)?,
        ("DELETE", ["crates", name, version, "yank"]) => set_yanked(request, name, version, true)?,
        ("PUT", ["crates", name, version, "unyank"]) => set_yanked(request, name, version, false)?,
        (_, ["crates", name, "owners"]) if reading => list_owners(name)?.into(),
        ("PUT" | "DELETE", ["crates", name, "owners"]) => {
            change_owners(request, name, body, method == "PUT")?
        }
        _ => HttpResponse::not_found().into(),
    };
    Ok(outcome)
}

/// `PUT crates/new`: cargo's frame, a little-endian `u32` length and the metadata JSON, then a
/// length and the `.crate`, which the host stores as it streams in.
fn publish(request: &HttpRequest, mut body: Body) -> Result<HandleOutcome, PluginError> {
    if let Some(refusal) = may_change(request) {
        return Ok(refusal.into());
    }
    let metadata_len = frame_length(&mut body)?;
    if metadata_len > MAX_METADATA {
        return Ok(cargo_error(
            400,
            &format!(
                "the publish metadata is {metadata_len} bytes; at most {MAX_METADATA} are accepted"
            ),
        )
        .into());
    }
    let metadata = body.read_len(metadata_len as usize)?;
    let new: NewCrate = match serde_json::from_slice(&metadata) {
        Ok(new) => new,
        Err(e) => return Ok(cargo_error(400, &format!("invalid publish metadata: {e}")).into()),
    };
    let version = match new.check() {
        Ok(version) => version,
        Err((_, message)) => return Ok(cargo_error(400, &message).into()),
    };
    let crate_len = frame_length(&mut body)?;
    let lowercase = new.name.to_ascii_lowercase();
    let key = index::version_key(&lowercase, &version);
    let same_crate = units(CRATE, CANONICAL_NAME, &canonical_name(&new.name))?;
    if let Some(other) = same_crate.iter().find(|p| p.name() != new.name) {
        return Ok(cargo_error(
            400,
            &format!(
                "crate `{}` is already published as `{}`: names that differ only in case or in `-` and `_` are one crate",
                new.name,
                other.name()
            ),
        )
        .into());
    }
    if same_crate.iter().any(|p| p.key == key) {
        return Ok(cargo_error(
            400,
            &format!("crate version `{}` is already uploaded", new.vers),
        )
        .into());
    }
    let owners = owners_of(&lowercase)?;
    let user = request.user.clone().unwrap_or_default();
    if !same_crate.is_empty()
        && let Some(refusal) = owner_refusal(&owners, &user, &new.name)
    {
        return Ok(refusal.into());
    }
    let stored = body.store(None)?;
    if stored.size != u64::from(crate_len) {
        return Ok(cargo_error(
            400,
            &format!(
                "the .crate is {} bytes but the request announced {crate_len}",
                stored.size
            ),
        )
        .into());
    }
    if artifacts::read(&stored.sha256, 0, 2)? != [0x1f, 0x8b] {
        return Ok(cargo_error(400, "the .crate is not a gzip-compressed archive").into());
    }
    let mut units = vec![crate_unit(&new, &version, &stored.sha256, stored.size)];
    if owners.is_empty() {
        units.push(owner_unit(&lowercase, &user));
    }
    let answer = json!({"warnings": {"invalid_categories": [], "invalid_badges": [], "other": []}});
    Ok(HandleOutcome::with_units(
        json_response(200, &answer),
        units,
    ))
}

/// A `u32` length of cargo's publish frame.
fn frame_length(body: &mut Body) -> Result<u32, PluginError> {
    let bytes = body.read_len(4)?;
    Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The unit of a published version whose `.crate` is stored under `sha256`.
pub(crate) fn crate_unit(
    new: &NewCrate,
    version: &semver::Version,
    sha256: &str,
    size: u64,
) -> UnitDeclaration {
    published_unit(
        &new.name,
        version,
        new.entry(sha256),
        new.description.as_deref(),
        None,
        size,
    )
}

/// The unit of the version `version` of the crate `name`, with its index `entry` (whose `cksum`
/// is the file's sha256) and the file, stored already or at `url`.
pub(crate) fn published_unit(
    name: &str,
    version: &semver::Version,
    entry: Value,
    description: Option<&str>,
    url: Option<String>,
    size: u64,
) -> UnitDeclaration {
    let lowercase = name.to_ascii_lowercase();
    let cksum = entry["cksum"].as_str().unwrap_or_default().to_owned();
    let metadata = json!({
        LOWERCASE_NAME: lowercase,
        CANONICAL_NAME: canonical_name(name),
        KEY: index::version_key(&lowercase, version),
        "description": description,
        "entry": entry,
    });
    UnitDeclaration {
        content_type: CRATE.into(),
        natural_key: json::string_object([
            ("name", name),
            ("version", &version.to_string()),
            ("cksum", &cksum),
        ]),
        metadata: metadata.to_string(),
        artifacts: vec![ArtifactDeclaration {
            relative_path: format!("crates/{lowercase}/{lowercase}-{version}.crate"),
            url,
            size: (size > 0).then_some(size),
            sha256: Some(cksum),
            sha512: None,
        }],
    }
}

/// crates.io's notion of one crate: lower case, `-` as `_`.
fn canonical_name(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}

/// `GET crates/<name>/<version>/download`: the stored `.crate`, or for a pull-through
/// distribution the upstream's, fetched once and kept.
fn download(
    request: &HttpRequest,
    name: &str,
    version: &str,
) -> Result<HandleOutcome, PluginError> {
    let lowercase = name.to_ascii_lowercase();
    let Ok(version) = index::parse_version(version) else {
        return Ok(HttpResponse::not_found().into());
    };
    if let Some(published) = stored_version(&lowercase, &version)?
        && let Some(handle) = published.content_artifact
    {
        return Ok(HttpResponse::content_artifact(&handle)
            .kept_by_host(VERSION_ANSWER_SECONDS)
            .into());
    }
    let Some(distribution) = request.distribution() else {
        return Ok(HttpResponse::not_found().into());
    };
    match &distribution.remote {
        Some(remote) if distribution.writable => upstream::download(remote, &lowercase, &version),
        _ => Ok(HttpResponse::not_found().into()),
    }
}

/// `DELETE …/yank` and `PUT …/unyank`: a new version with the version's yank mark added or
/// removed.
fn set_yanked(
    request: &HttpRequest,
    name: &str,
    version: &str,
    yanked: bool,
) -> Result<HandleOutcome, PluginError> {
    if let Some(refusal) = may_change(request) {
        return Ok(refusal.into());
    }
    let lowercase = name.to_ascii_lowercase();
    let Some(version) = index::parse_version(version)
        .ok()
        .filter(|_| index::check_name(name).is_ok())
    else {
        return Ok(cargo_error(404, &format!("crate `{name}` has no version `{version}`")).into());
    };
    let Some(published) = stored_version(&lowercase, &version)? else {
        return Ok(cargo_error(404, &format!("crate `{name}` has no version `{version}`")).into());
    };
    let user = request.user.clone().unwrap_or_default();
    if let Some(refusal) = owner_refusal(&owners_of(&lowercase)?, &user, name) {
        return Ok(refusal.into());
    }
    let ok = json_response(200, &json!({"ok": true}));
    if yanked {
        let mark = UnitDeclaration {
            content_type: YANK.into(),
            natural_key: json::string_object([
                ("name", lowercase.as_str()),
                ("version", &version.to_string()),
            ]),
            metadata: json!({LOWERCASE_NAME: lowercase, KEY: published.key}).to_string(),
            artifacts: Vec::new(),
        };
        return Ok(HandleOutcome::with_units(ok, vec![mark]));
    }
    let marks = content::units_with_value(YANK, KEY, &published.key)
        .map(|unit| unit.map(|unit| unit_ref(&unit)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HandleOutcome::respond(ok).removing(marks))
}

/// `GET crates/<name>/owners`.
fn list_owners(name: &str) -> Result<HttpResponse, PluginError> {
    let lowercase = name.to_ascii_lowercase();
    if content::units_with_value(CRATE, LOWERCASE_NAME, &lowercase)
        .next()
        .is_none()
    {
        return Ok(cargo_error(404, &format!("crate `{name}` does not exist")));
    }
    let users: Vec<Value> = owners_of(&lowercase)?
        .iter()
        .enumerate()
        .map(|(i, login)| json!({"id": i + 1, "login": login, "name": null}))
        .collect();
    Ok(json_response(200, &json!({"users": users})).kept_by_host(VERSION_ANSWER_SECONDS))
}

/// `PUT` (add) and `DELETE` (remove) `crates/<name>/owners` with `{"users": [logins]}`: by an
/// owner; a crate keeps at least one.
fn change_owners(
    request: &HttpRequest,
    name: &str,
    body: Body,
    add: bool,
) -> Result<HandleOutcome, PluginError> {
    if let Some(refusal) = may_change(request) {
        return Ok(refusal.into());
    }
    let lowercase = name.to_ascii_lowercase();
    if content::units_with_value(CRATE, LOWERCASE_NAME, &lowercase)
        .next()
        .is_none()
    {
        return Ok(cargo_error(404, &format!("crate `{name}` does not exist")).into());
    }
    let owners = owners_of(&lowercase)?;
    let user = request.user.clone().unwrap_or_default();
    if let Some(refusal) = owner_refusal(&owners, &user, name) {
        return Ok(refusal.into());
    }
    let logins: Vec<String> = match serde_json::from_slice::<Value>(&body.bytes(MAX_OWNERS_BODY)?)
        .ok()
        .and_then(|value| serde_json::from_value(value["users"].clone()).ok())
    {
        Some(logins) => logins,
        None => {
            return Ok(cargo_error(400, "the body must be {\"users\": [\"<login>\", …]}").into());
        }
    };
    if logins.is_empty()
        || logins
            .iter()
            .any(|login| login.is_empty() || login.len() > 150)
    {
        return Ok(cargo_error(400, "name one or more users, each at most 150 characters").into());
    }
    let listed = logins.join(", ");
    if add {
        let units = logins
            .iter()
            .map(|login| owner_unit(&lowercase, login))
            .collect();
        let message = format!("user(s) {listed} added as owner(s) of crate {name}");
        let answer = json_response(200, &json!({"ok": true, "msg": message}));
        return Ok(HandleOutcome::with_units(answer, units));
    }
    if owners.iter().all(|owner| logins.contains(owner)) {
        return Ok(cargo_error(400, "a crate keeps at least one owner").into());
    }
    let mut removed = Vec::new();
    for login in &logins {
        for unit in content::units_with_value(OWNER, KEY, &owner_key(&lowercase, login)) {
            removed.push(unit_ref(&unit?));
        }
    }
    let message = format!("user(s) {listed} removed from the owners of crate {name}");
    let answer = json_response(200, &json!({"ok": true, "msg": message}));
    Ok(HandleOutcome::respond(answer).removing(removed))
}

/// `GET crates?q=<text>&per_page=<n>`: crates whose name contains the text (`-` and `_` alike),
/// in name order, with their highest version and its description.
fn search(request: &HttpRequest) -> Result<HttpResponse, PluginError> {
    let query = canonical_name(&request.query_param("q").unwrap_or_default());
    let per_page = request
        .query_param("per_page")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(SEARCH_PAGE)
        .clamp(1, MAX_SEARCH_PAGE);
    let mut total = 0usize;
    let mut crates = Vec::new();
    for canonical in content::distinct_values(CRATE, CANONICAL_NAME) {
        let canonical = canonical?;
        if !canonical.contains(&query) {
            continue;
        }
        total += 1;
        if crates.len() == per_page {
            continue;
        }
        let mut newest: Option<(semver::Version, String, Value)> = None;
        for unit in content::units_with_value(CRATE, CANONICAL_NAME, &canonical) {
            let published = Published::of(&unit?)?;
            if let Some(version) = published.version()
                && newest.as_ref().is_none_or(|(v, _, _)| version > *v)
            {
                newest = Some((version, published.name().to_owned(), published.description));
            }
        }
        if let Some((version, name, description)) = newest {
            crates.push(json!({
                "name": name,
                "max_version": version.to_string(),
                "description": description,
            }));
        }
    }
    let answer = json!({"crates": crates, "meta": {"total": total}});
    Ok(json_response(200, &answer).kept_by_host(VERSION_ANSWER_SECONDS))
}

/// The refusal of a request that would change the repository, when the caller may not.
fn may_change(request: &HttpRequest) -> Option<HttpResponse> {
    if !request.access.push {
        return Some(cargo_error(
            403,
            "you may not publish to this registry (ask for a role that may modify its repository)",
        ));
    }
    if !request.distribution().is_some_and(|d| d.writable) {
        return Some(cargo_error(
            403,
            "this distribution serves a fixed repository version: publish to one that serves its repository's latest version",
        ));
    }
    None
}

/// The refusal of `user`'s change to the crate `name` whose owners are `owners`, unless they
/// are one of them (or the crate has none, as a crate published before owners were kept).
fn owner_refusal(owners: &[String], user: &str, name: &str) -> Option<HttpResponse> {
    (!owners.is_empty() && !owners.iter().any(|owner| owner == user)).then(|| {
        cargo_error(
            403,
            &format!(
                "only the owners of crate `{name}` ({}) may change it; one of them can add you with `cargo owner --add {user} {name}`",
                owners.join(", ")
            ),
        )
    })
}

/// The stored version `version` of the crate whose lower-cased name is `lowercase`.
fn stored_version(
    lowercase: &str,
    version: &semver::Version,
) -> Result<Option<Published>, PluginError> {
    let key = index::version_key(lowercase, version);
    Ok(units(CRATE, KEY, &key)?.into_iter().next())
}

/// The published versions whose indexed `field` is `value`.
fn units(content_type: &str, field: &str, value: &str) -> Result<Vec<Published>, PluginError> {
    content::units_with_value(content_type, field, value)
        .map(|unit| Published::of(&unit?))
        .collect()
}

/// The owners' logins of the crate whose lower-cased name is `lowercase`, sorted.
fn owners_of(lowercase: &str) -> Result<Vec<String>, PluginError> {
    let mut owners = content::units_with_value(OWNER, LOWERCASE_NAME, lowercase)
        .map(|unit| {
            let unit = unit?;
            let natural_key: Value = serde_json::from_str(&unit.natural_key)
                .map_err(|e| PluginError::new(format!("a stored owner's key: {e}")))?;
            Ok(natural_key["login"].as_str().unwrap_or_default().to_owned())
        })
        .collect::<Result<Vec<_>, PluginError>>()?;
    owners.sort();
    Ok(owners)
}

fn owner_key(lowercase: &str, login: &str) -> String {
    format!("{lowercase}/{login}")
}

fn owner_unit(lowercase: &str, login: &str) -> UnitDeclaration {
    UnitDeclaration {
        content_type: OWNER.into(),
        natural_key: json::string_object([("name", lowercase), ("login", login)]),
        metadata: json!({LOWERCASE_NAME: lowercase, KEY: owner_key(lowercase, login)}).to_string(),
        artifacts: Vec::new(),
    }
}

/// A stored unit, named for removal.
fn unit_ref(unit: &StoredUnit) -> UnitRef {
    UnitRef {
        content_type: unit.content_type.clone(),
        natural_key: unit.natural_key.clone(),
    }
}
