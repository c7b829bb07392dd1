//! Granary's container image content type (Pulp's pulp_container): a registry speaking the OCI
//! distribution spec at `/v2/`, on WIT 0.3.0.
//!
//! A distribution is a registry repository: `/v2/<base_path>/…` reaches it (base paths contain
//! slashes, as repository names do). Content types, each found by an indexed field:
//!
//! - `blob`: bytes named by their digest (`sha256:<hex>`), layers and configs;
//! - `manifest`: an image manifest or index, by digest, with its media type;
//! - `tag`: a name pointing at a manifest digest; the name is the repository key, so tagging again
//!   moves the tag.
//!
//! Routes (relative to the repository): `blobs/<digest>` (GET, HEAD, DELETE), `blobs/uploads/` (POST,
//! monolithic with `?digest=`), `blobs/uploads/<id>` (PATCH, PUT `?digest=`, GET, DELETE),
//! `manifests/<reference>` (PUT, GET, HEAD, DELETE), `tags/list` (`n`, `last`); at the root,
//! `/v2/` (the version check, a Bearer challenge for anonymous clients) and `/v2/_catalog`; a
//! push to a new name creates its repository and distribution. Errors are the spec's JSON
//! (`{"errors":[{"code":"BLOB_UNKNOWN",…}]}`).
//!
//! Sync from an upstream registry is in [`sync`].
//!
//! A cross-repository mount (`POST blobs/uploads/?mount=<digest>&from=<name>`) adds the blob
//! when the caller may read it at `from`; otherwise it starts an upload, as the spec allows.

use granary_sdk::{
    ArtifactDeclaration, ArtifactRef, Body, ContentTypeInfo, HandleOutcome, HttpRequest,
    HttpResponse, Plugin, PluginError, PluginInfo, RemoteConfig, StoredUnit, UnitDeclaration,
    UnitRef, artifacts, content, distributions, json, uploads,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Content type of layers and configs.
const BLOB: &str = "blob";
/// Content type of manifests and indexes.
const MANIFEST: &str = "manifest";
/// Content type of tags.
const TAG: &str = "tag";
/// Largest manifest accepted: past the 4 MiB the spec asks every registry to take (an index
/// of many platforms, an artifact with large annotations), held whole while it is checked.
const MAX_MANIFEST: usize = 16 * 1024 * 1024;
/// The most bytes of annotations (as JSON) kept with a manifest's unit for the referrers API.
const MAX_LISTED_ANNOTATIONS: usize = 64 * 1024;
/// Referrers per page of the referrers API unless the client asks for fewer (`?n=`); the next
/// page is named by a `Link` header, as the spec lets registries page.
const REFERRERS_PAGE: usize = 1000;
/// Media type of OCI image manifests, the default.
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of OCI indexes.
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of Docker's manifest lists.
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// How long the host may keep a read's answer: what a repository version holds never changes,
/// and the host drops kept answers when the distribution moves to another version (a push, a
/// deleted tag), so the bound only limits memory.
const KEPT_SECONDS: u32 = 3600;

pub mod sync;

struct Container;

impl Plugin for Container {
    fn describe() -> PluginInfo {
        let blob = ContentTypeInfo::new(BLOB, "A layer or config blob", &["digest"])
            .with_endpoint("blobs")
            .with_indexed_fields(&["digest"]);
        // By subject too: the referrers of a manifest (signatures, SBOMs) are found by it.
        let manifest = ContentTypeInfo::new(MANIFEST, "An image manifest or index", &["digest"])
            .with_endpoint("manifests")
            .with_indexed_fields(&["digest", "subject"]);
        let tag = ContentTypeInfo::new(TAG, "A tag naming a manifest", &["name", "manifest"])
            .with_endpoint("tags")
            .with_indexed_fields(&["name", "manifest"])
            .with_repository_key("name");
        PluginInfo::new(
            "container",
            env!("CARGO_PKG_VERSION"),
            vec![blob, manifest, tag],
        )
        .with_rest_names("container", "container", "container", "container")
        .with_push_repository("container-push")
        .with_root("v2")
        .with_capabilities(&["http"])
        .with_remote_fields(sync::REMOTE_FIELDS)
    }

    fn sync(remote: &RemoteConfig) -> Result<(), PluginError> {
        sync::sync(remote)
    }

    fn handle(request: &HttpRequest, body: Body) -> Result<HandleOutcome, PluginError> {
        let Some(distribution) = request.distribution() else {
            return at_root(request);
        };
        let name = distribution.base_path.clone();
        let path = request.path.as_str();
        let method = request.method.as_str();
        let answer = if path == "blobs/uploads/" {
            match method {
                "POST" => start_upload(request, &name, body),
                _ => Ok(unsupported()),
            }
        } else if let Some(id) = path.strip_prefix("blobs/uploads/") {
            upload(request, &name, id, body)
        } else if let Some(digest) = path.strip_prefix("blobs/") {
            match method {
                "GET" | "HEAD" => Ok(blob(digest)),
                "DELETE" => Ok(delete_blob(request, digest)),
                _ => Ok(unsupported()),
            }
        } else if let Some(reference) = path.strip_prefix("manifests/") {
            match method {
                "GET" | "HEAD" => Ok(manifest(request, reference)),
                "PUT" => put_manifest(request, &name, reference, body),
                "DELETE" => delete_manifest(request, reference),
                _ => Ok(unsupported()),
            }
        } else if path == "tags/list" && matches!(method, "GET" | "HEAD") {
            tags(request, &name)
        } else if let Some(digest) = path.strip_prefix("referrers/") {
            match method {
                "GET" | "HEAD" => referrers(request, digest),
                _ => Ok(unsupported()),
            }
        } else {
            Ok(HttpResponse::not_found().into())
        };
        // The host's errors (a digest that does not match, an offset that does not) in the
        // registry's error format.
        answer.or_else(|error| Ok(registry_error(&error).into()))
    }
}

/// `/v2/…` where no repository matches: the version check, the catalogue, and pushes to new
/// names, which ask the host for a repository and distribution.
fn at_root(request: &HttpRequest) -> Result<HandleOutcome, PluginError> {
    let path = request.path.as_str();
    match (request.method.as_str(), path) {
        ("GET" | "HEAD", "") if request.user.is_none() => {
            Ok(error(401, "UNAUTHORIZED", "authentication required")
                .with_header("www-authenticate", "Bearer")
                .into())
        }
        ("GET" | "HEAD", "") => Ok(json_response(200, "{}".into())
            .with_header("docker-distribution-api-version", "registry/2.0")
            .into()),
        ("GET", "_catalog") => {
            let mut names = distributions::base_paths();
            if let Some(last) = request.query_param("last") {
                names = names.after(&last);
            }
            let count = page_size(request);
            let names: Vec<String> = names.take(count).collect::<Result<_, _>>()?;
            let body = format!("{{\"repositories\":{}}}", json_strings(&names));
            Ok(json_response(200, body).into())
        }
        ("POST", _) if path.ends_with("/blobs/uploads/") => {
            let name = path.trim_end_matches("/blobs/uploads/");
            Ok(HandleOutcome::respond(HttpResponse::not_found()).creating(name))
        }
        ("PUT", _) if path.contains("/manifests/") => {
            let name = &path[..path.find("/manifests/").unwrap_or(0)];
            Ok(HandleOutcome::respond(HttpResponse::not_found()).creating(name))
        }
        _ => Ok(error(404, "NAME_UNKNOWN", "repository name not known to registry").into()),
    }
}

/// `POST blobs/uploads/`: the whole blob with `?digest=`, or the start of an upload session.
fn start_upload(
    request: &HttpRequest,
    name: &str,
    mut body: Body,
) -> Result<HandleOutcome, PluginError> {
    if let Some(digest) = request.query_param("digest") {
        let hex = sha256_hex(&digest)?;
        let blob = body.store(Some(hex))?;
        return Ok(blob_added(name, blob));
    }
    if let (Some(digest), Some(from)) = (request.query_param("mount"), request.query_param("from"))
        && let Some(blob) = mountable(&digest, &from)?
    {
        return Ok(blob_added(name, blob));
    }
    // No mount (a blob the caller cannot read there): an upload, as the spec allows.
    let id = uploads::start()?;
    Ok(upload_status(202, name, &id, 0).into())
}

/// The stored blob `digest` of repository `from`, when the caller may read it there: a
/// cross-repository mount adds it here without its bytes being sent again.
fn mountable(digest: &str, from: &str) -> Result<Option<ArtifactRef>, PluginError> {
    let Ok(hex) = sha256_hex(digest) else {
        return Ok(None);
    };
    let Some(found) = content::find_at(from, BLOB, "digest", digest)? else {
        return Ok(None);
    };
    let file = found
        .into_iter()
        .flat_map(|unit| unit.artifacts)
        .find(|file| file.sha256.as_deref() == Some(hex));
    // Only stored bytes may be added (an on-demand blob there is not downloaded yet).
    Ok(file
        .and_then(|file| file.size)
        .filter(|_| artifacts::read(hex, 0, 1).is_ok())
        .map(|size| ArtifactRef {
            sha256: hex.to_owned(),
            size,
        }))
}

/// The routes of upload session `id`.
fn upload(
    request: &HttpRequest,
    name: &str,
    id: &str,
    body: Body,
) -> Result<HandleOutcome, PluginError> {
    let Some(size) = uploads::size(id) else {
        return Ok(error(
            404,
            "BLOB_UPLOAD_UNKNOWN",
            "blob upload unknown to registry",
        )
        .into());
    };
    match request.method.as_str() {
        "GET" => Ok(upload_status(204, name, id, size).into()),
        "PATCH" => {
            // A chunk names its range; a stream (docker, skopeo) goes at the end.
            let offset = match request.header("content-range") {
                Some(range) => range_start(range)?,
                None => size,
            };
            if offset != size {
                return Ok(upload_status(416, name, id, size).into());
            }
            let size = uploads::append(id, offset, &body)?;
            Ok(upload_status(202, name, id, size).into())
        }
        "PUT" => {
            let Some(digest) = request.query_param("digest") else {
                return Ok(error(400, "DIGEST_INVALID", "PUT needs ?digest=").into());
            };
            let hex = sha256_hex(&digest)?;
            uploads::append(id, size, &body)?;
            let blob = uploads::complete(id, Some(hex))?;
            Ok(blob_added(name, blob))
        }
        "DELETE" => {
            uploads::cancel(id)?;
            Ok(HttpResponse::bytes(204, Vec::new()).into())
        }
        _ => Ok(unsupported()),
    }
}

/// The answer to a request about upload session `id` holding `size` bytes.
fn upload_status(status: u16, name: &str, id: &str, size: u64) -> HttpResponse {
    let range = format!("0-{}", size.saturating_sub(1));
    HttpResponse::bytes(status, Vec::new())
        .with_header("location", &format!("/v2/{name}/blobs/uploads/{id}"))
        .with_header("range", &range)
        .with_header("docker-upload-uuid", id)
        .with_header("content-length", "0")
}

/// Adds the stored `blob` to the repository; 201 with its location.
fn blob_added(name: &str, blob: ArtifactRef) -> HandleOutcome {
    let digest = format!("sha256:{}", blob.sha256);
    let unit = UnitDeclaration {
        content_type: BLOB.into(),
        natural_key: json::string_object([("digest", digest.as_str())]),
        metadata: json::string_object([("digest", digest.as_str())]),
        artifacts: vec![stored_file(&format!("blobs/{}", blob.sha256), &blob)],
    };
    HandleOutcome::with_units(
        HttpResponse::bytes(201, Vec::new())
            .with_header("location", &format!("/v2/{name}/blobs/{digest}"))
            .with_header("docker-content-digest", &digest),
        vec![unit],
    )
}

/// A unit's file: the stored artifact `artifact` at `relative_path`.
fn stored_file(relative_path: &str, artifact: &ArtifactRef) -> ArtifactDeclaration {
    ArtifactDeclaration {
        relative_path: relative_path.to_owned(),
        url: None,
        size: Some(artifact.size),
        sha256: Some(artifact.sha256.clone()),
        sha512: None,
    }
}

/// `GET blobs/<digest>`: the stored blob (a manifest's bytes too, as registries serve them).
fn blob(digest: &str) -> HandleOutcome {
    let found = first_unit(BLOB, digest).or_else(|| first_unit(MANIFEST, digest));
    match found.and_then(|unit| unit.artifacts.into_iter().next()) {
        Some(file) => HttpResponse::content_artifact(&file.content_artifact)
            .with_header("docker-content-digest", digest)
            .with_header("content-type", "application/octet-stream")
            .kept_by_host(KEPT_SECONDS)
            .into(),
        None => error(404, "BLOB_UNKNOWN", "blob unknown to registry").into(),
    }
}

/// `DELETE blobs/<digest>`: the blob leaves the repository (a new version without it).
fn delete_blob(request: &HttpRequest, digest: &str) -> HandleOutcome {
    if !request.access.delete {
        return error(403, "DENIED", "requested access to the resource is denied").into();
    }
    match first_unit(BLOB, digest) {
        Some(unit) => {
            HandleOutcome::respond(HttpResponse::bytes(202, Vec::new())).removing(vec![UnitRef {
                content_type: BLOB.into(),
                natural_key: unit.natural_key,
            }])
        }
        None => error(404, "BLOB_UNKNOWN", "blob unknown to registry").into(),
    }
}

/// The first unit of `content_type` whose indexed field (`digest` or `name`) is `value`.
fn first_unit(content_type: &str, value: &str) -> Option<StoredUnit> {
    let field = if content_type == TAG {
        "name"
    } else {
        "digest"
    };
    content::units_with_value(content_type, field, value)
        .next()
        .and_then(Result::ok)
}

/// The manifest digest `reference` (a digest or a tag) names, if any.
fn resolve(reference: &str) -> Option<String> {
    if reference.starts_with("sha256:") {
        return Some(reference.to_owned());
    }
    let tag = first_unit(TAG, reference)?;
    string_field(&tag.metadata, "manifest")
}

/// `GET manifests/<reference>`: the stored manifest with its media type, when the client
/// accepts that type. An index asked for by tag by a client that takes only image manifests
/// gets the linux/amd64 image (as registries answer old Docker clients); another unaccepted
/// type is not found.
fn manifest(request: &HttpRequest, reference: &str) -> HandleOutcome {
    let found = resolve(reference).and_then(|digest| {
        let unit = first_unit(MANIFEST, &digest)?;
        Some((digest, unit))
    });
    let Some((mut digest, mut unit)) = found else {
        return error(404, "MANIFEST_UNKNOWN", "manifest unknown to registry").into();
    };
    let accepted = accepted_types(request);
    let mut media_type = stored_media_type(&unit);
    if !accepts(&accepted, &media_type) {
        let platform = (!reference.starts_with("sha256:") && is_index(&media_type))
            .then(|| default_platform(&unit, &accepted))
            .flatten();
        let Some((child_digest, child)) = platform else {
            return error(
                404,
                "MANIFEST_UNKNOWN",
                &format!("the manifest is a {media_type}, which the request does not accept"),
            )
            .into();
        };
        (digest, unit) = (child_digest, child);
        media_type = stored_media_type(&unit);
    }
    match unit.artifacts.into_iter().next() {
        // Which manifest answers depends on the client's `Accept` (an index or its image).
        Some(file) => HttpResponse::content_artifact(&file.content_artifact)
            .with_header("content-type", &media_type)
            .with_header("docker-content-digest", &digest)
            .with_header("vary", "Accept")
            .kept_by_host(KEPT_SECONDS)
            .into(),
        None => error(404, "MANIFEST_UNKNOWN", "manifest unknown to registry").into(),
    }
}

/// The media types the request's `Accept` headers name (parameters dropped); empty for any.
fn accepted_types(request: &HttpRequest) -> Vec<String> {
    request
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("accept"))
        .flat_map(|(_, value)| value.split(','))
        .map(|item| item.split(';').next().unwrap_or_default().trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

/// Whether a client that accepts `accepted` takes `media_type`.
fn accepts(accepted: &[String], media_type: &str) -> bool {
    accepted.is_empty()
        || accepted
            .iter()
            .any(|item| item == media_type || item == "*/*" || item == "application/*")
}

/// Whether `media_type` is an index (OCI) or a manifest list (Docker).
fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// The media type a manifest unit was stored with.
fn stored_media_type(unit: &StoredUnit) -> String {
    string_field(&unit.metadata, "media_type").unwrap_or_else(|| OCI_MANIFEST.into())
}

/// The linux/amd64 manifest of the index `unit`, when the repository holds it in a type the
/// client accepts.
fn default_platform(unit: &StoredUnit, accepted: &[String]) -> Option<(String, StoredUnit)> {
    let metadata: Value = serde_json::from_str(&unit.metadata).ok()?;
    let child = metadata["platforms"].as_array()?.iter().find(|entry| {
        entry["os"] == "linux"
            && entry["architecture"] == "amd64"
            && entry["media_type"]
                .as_str()
                .is_some_and(|media_type| accepts(accepted, media_type))
    })?;
    let digest = child["digest"].as_str()?.to_owned();
    let child = first_unit(MANIFEST, &digest)?;
    Some((digest, child))
}

/// `GET referrers/<digest>`: an index of the manifests whose `subject` is `digest`, filtered by
/// `?artifactType=` (the OCI 1.1 referrers API). A subject not pushed yet has none: an empty
/// index, not an error.
fn referrers(request: &HttpRequest, digest: &str) -> Result<HandleOutcome, PluginError> {
    sha256_hex(digest)?;
    let wanted = request.query_param("artifactType");
    let mut manifests = std::collections::BTreeMap::new();
    for unit in content::units_with_value(MANIFEST, "subject", digest) {
        let metadata: Value = serde_json::from_str(&unit?.metadata).unwrap_or(Value::Null);
        let artifact_type = metadata["artifact_type"].as_str().unwrap_or_default();
        if wanted
            .as_deref()
            .is_some_and(|wanted| wanted != artifact_type)
        {
            continue;
        }
        let mut descriptor = serde_json::json!({
            "mediaType": metadata["media_type"],
            "digest": metadata["digest"],
            "size": metadata["size"],
        });
        if !artifact_type.is_empty() {
            descriptor["artifactType"] = artifact_type.into();
        }
        if metadata["annotations"].is_object() {
            descriptor["annotations"] = metadata["annotations"].clone();
        }
        let key = metadata["digest"].as_str().unwrap_or_default().to_owned();
        manifests.insert(key, descriptor);
    }
    // Pages in digest order, each starting after the `last` digest of the one before.
    let last = request.query_param("last").unwrap_or_default();
    let size = page_size(request).clamp(1, REFERRERS_PAGE);
    let mut after = manifests
        .range::<str, _>((
            std::ops::Bound::Excluded(last.as_str()),
            std::ops::Bound::Unbounded,
        ))
        .peekable();
    let page: Vec<(&String, &Value)> = after.by_ref().take(size).collect();
    let more = after.peek().is_some();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": page.iter().map(|(_, descriptor)| *descriptor).collect::<Vec<_>>(),
    });
    let mut response = HttpResponse::bytes(200, index.to_string())
        .with_header("content-type", OCI_INDEX)
        .kept_by_host(KEPT_SECONDS);
    if let (true, Some((last, _))) = (more, page.last()) {
        let mut next = format!(
            "{}referrers/{digest}?n={size}&last={last}",
            request.base_url
        );
        if let Some(wanted) = &wanted {
            next.push_str(&format!("&artifactType={}", query_escaped(wanted)));
        }
        response = response.with_header("link", &format!("<{next}>; rel=\"next\""));
    }
    if wanted.is_some() {
        response = response.with_header("oci-filters-applied", "artifactType");
    }
    Ok(response.into())
}

/// `text` escaped for a URL's query (media types carry `+` and `/`).
fn query_escaped(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Stores a manifest's `bytes` (of `digest`), written in pieces: a manifest may be larger than
/// what `artifacts.create` takes at once.
fn store_manifest(bytes: &[u8], digest: &str) -> Result<ArtifactRef, PluginError> {
    use std::io::Write as _;
    let mut writer = artifacts::Writer::new()?;
    writer
        .write_all(bytes)
        .map_err(|e| PluginError::new(format!("storing the manifest: {e}")))?;
    writer.finish(digest.strip_prefix("sha256:"))
}

/// The unit of the manifest `bytes` (digest `digest`, of `media_type`), stored as `stored`: its
/// digest, media type and size, and what the referrers API lists (its subject, artifact type
/// and annotations).
fn manifest_unit(
    manifest: &Value,
    digest: &str,
    media_type: &str,
    stored: &ArtifactRef,
) -> UnitDeclaration {
    let mut metadata = serde_json::json!({
        "digest": digest,
        "media_type": media_type,
        "size": stored.size,
    });
    if let Some(subject) = manifest["subject"]["digest"].as_str() {
        metadata["subject"] = subject.into();
    }
    // The artifact type of a referrer: its own, else its config's (OCI 1.1).
    let artifact_type = manifest["artifactType"]
        .as_str()
        .or_else(|| manifest["config"]["mediaType"].as_str());
    if let Some(artifact_type) = artifact_type {
        metadata["artifact_type"] = artifact_type.into();
    }
    // Annotations are listed by the referrers API; large ones (a manifest may carry megabytes)
    // stay in the manifest only, as a unit's metadata is bounded.
    if manifest["annotations"].is_object()
        && manifest["annotations"].to_string().len() <= MAX_LISTED_ANNOTATIONS
    {
        metadata["annotations"] = manifest["annotations"].clone();
    }
    // An index's platforms, for clients that take only image manifests.
    if let Some(children) = manifest["manifests"].as_array() {
        let platforms: Vec<Value> = children
            .iter()
            .filter(|child| child["platform"].is_object())
            .map(|child| {
                serde_json::json!({
                    "os": child["platform"]["os"],
                    "architecture": child["platform"]["architecture"],
                    "digest": child["digest"],
                    "media_type": child["mediaType"],
                })
            })
            .collect();
        metadata["platforms"] = platforms.into();
    }
    UnitDeclaration {
        content_type: MANIFEST.into(),
        natural_key: json::string_object([("digest", digest)]),
        metadata: metadata.to_string(),
        artifacts: vec![stored_file(&format!("manifests/{}", stored.sha256), stored)],
    }
}

/// `PUT manifests/<reference>`: validates the manifest's references, stores it, and tags it
/// when `reference` is a tag.
fn put_manifest(
    request: &HttpRequest,
    name: &str,
    reference: &str,
    body: Body,
) -> Result<HandleOutcome, PluginError> {
    if !request.access.push {
        return Ok(error(403, "DENIED", "requested access to the resource is denied").into());
    }
    let bytes = body.bytes(MAX_MANIFEST)?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    if reference.starts_with("sha256:") && reference != digest {
        return Ok(error(
            400,
            "DIGEST_INVALID",
            "the manifest does not have this digest",
        )
        .into());
    }
    let Ok(parsed) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(error(400, "MANIFEST_INVALID", "the manifest is not JSON").into());
    };
    let media_type = request
        .header("content-type")
        .map(str::to_owned)
        .or_else(|| parsed["mediaType"].as_str().map(str::to_owned))
        .unwrap_or_else(|| OCI_MANIFEST.into());
    if let Some(missing) = missing_reference(&parsed) {
        let (code, what) = missing;
        return Ok(error(400, code, &format!("{what} is not in the repository")).into());
    }
    let stored = store_manifest(&bytes, &digest)?;
    let manifest = manifest_unit(&parsed, &digest, &media_type, &stored);
    let mut units = vec![manifest];
    if !reference.starts_with("sha256:") {
        units.push(UnitDeclaration {
            content_type: TAG.into(),
            natural_key: json::string_object([("name", reference), ("manifest", digest.as_str())]),
            metadata: json::string_object([("name", reference), ("manifest", digest.as_str())]),
            artifacts: Vec::new(),
        });
    }
    let mut created = HttpResponse::bytes(201, Vec::new())
        .with_header("location", &format!("/v2/{name}/manifests/{digest}"))
        .with_header("docker-content-digest", &digest);
    // The subject is acknowledged: this registry keeps referrers (OCI 1.1).
    if let Some(subject) = parsed["subject"]["digest"].as_str() {
        created = created.with_header("oci-subject", subject);
    }
    Ok(HandleOutcome::with_units(created, units))
}

/// The first blob or manifest `manifest` refers to that the repository does not hold, as
/// (error code, what).
fn missing_reference(manifest: &Value) -> Option<(&'static str, String)> {
    let digests = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry["digest"].as_str().map(str::to_owned))
            .collect()
    };
    // An index names manifests; an image manifest names its config and layers.
    for digest in digests(&manifest["manifests"]) {
        if first_unit(MANIFEST, &digest).is_none() {
            return Some(("MANIFEST_UNKNOWN", format!("manifest {digest}")));
        }
    }
    let config = manifest["config"]["digest"].as_str().map(str::to_owned);
    for digest in config.into_iter().chain(digests(&manifest["layers"])) {
        if first_unit(BLOB, &digest).is_none() {
            return Some(("BLOB_UNKNOWN", format!("blob {digest}")));
        }
    }
    None
}

/// `DELETE manifests/<reference>`: a tag is removed; a digest removes the manifest and the tags
/// that point at it (as `skopeo delete` and Pulp do).
fn delete_manifest(request: &HttpRequest, reference: &str) -> Result<HandleOutcome, PluginError> {
    if !request.access.delete {
        return Ok(error(403, "DENIED", "requested access to the resource is denied").into());
    }
    let unit_ref = |content_type: &str, unit: StoredUnit| UnitRef {
        content_type: content_type.into(),
        natural_key: unit.natural_key,
    };
    let removed: Vec<UnitRef> = if reference.starts_with("sha256:") {
        match first_unit(MANIFEST, reference) {
            Some(manifest) => {
                let tags =
                    content::units_with_value(TAG, "manifest", reference)
                        .collect::<Result<Vec<_>, _>>()?;
                std::iter::once(unit_ref(MANIFEST, manifest))
                    .chain(tags.into_iter().map(|tag| unit_ref(TAG, tag)))
                    .collect()
            }
            None => Vec::new(),
        }
    } else {
        first_unit(TAG, reference)
            .map(|tag| unit_ref(TAG, tag))
            .into_iter()
            .collect()
    };
    Ok(if removed.is_empty() {
        error(404, "MANIFEST_UNKNOWN", "manifest unknown to registry").into()
    } else {
        HandleOutcome::respond(HttpResponse::bytes(202, Vec::new())).removing(removed)
    })
}

/// `GET tags/list?n=&last=`.
fn tags(request: &HttpRequest, name: &str) -> Result<HandleOutcome, PluginError> {
    let mut names = content::distinct_values(TAG, "name");
    if let Some(last) = request.query_param("last") {
        names = names.after(&last);
    }
    let size = page_size(request);
    // One more than asked for tells whether there is a next page.
    let mut names: Vec<String> = names
        .take(size.saturating_add(1))
        .collect::<Result<_, _>>()?;
    let more = names.len() > size;
    names.truncate(size);
    let body = format!(
        "{{\"name\":{},\"tags\":{}}}",
        json_strings(&[name.to_owned()])
            .trim_start_matches('[')
            .trim_end_matches(']'),
        json_strings(&names)
    );
    let mut response = json_response(200, body).kept_by_host(KEPT_SECONDS);
    if let (true, Some(last)) = (more, names.last()) {
        let next = format!(
            "{}tags/list?n={size}&last={}",
            request.base_url,
            query_escaped(last)
        );
        response = response.with_header("link", &format!("<{next}>; rel=\"next\""));
    }
    Ok(response.into())
}

/// The `n` of a paged request (all when absent).
fn page_size(request: &HttpRequest) -> usize {
    request
        .query_param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// `strings` as a JSON array.
fn json_strings(strings: &[String]) -> String {
    Value::from(strings.to_vec()).to_string()
}

/// A JSON answer.
fn json_response(status: u16, body: String) -> HttpResponse {
    HttpResponse::bytes(status, body).with_header("content-type", "application/json")
}

/// An error in the registry's format.
fn error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
    json_response(status, body.to_string())
}

/// The registry's answer to an error of the host's imports or of the request.
fn registry_error(failure: &PluginError) -> HttpResponse {
    let (status, code) = match failure.field_name() {
        Some("digest") => (400, "DIGEST_INVALID"),
        Some("offset") => (416, "BLOB_UPLOAD_INVALID"),
        Some("id") => (404, "BLOB_UPLOAD_UNKNOWN"),
        Some("size") => (413, "SIZE_INVALID"),
        Some("body") => (413, "MANIFEST_INVALID"),
        _ => (400, "UNSUPPORTED"),
    };
    error(status, code, failure.message())
}

/// 405 for a method a route does not take.
fn unsupported() -> HandleOutcome {
    error(405, "UNSUPPORTED", "the operation is unsupported").into()
}

/// The hex of a `sha256:<hex>` digest, or the error a registry answers.
fn sha256_hex(digest: &str) -> Result<&str, PluginError> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| PluginError::field("digest", format!("unsupported digest {digest:?}")))
}

/// The start of a `Content-Range: <start>-<end>` (or `bytes <start>-<end>/<size>`).
fn range_start(range: &str) -> Result<u64, PluginError> {
    let range = range.trim().trim_start_matches("bytes").trim();
    range
        .split(['-', '/'])
        .next()
        .and_then(|start| start.trim().parse().ok())
        .ok_or_else(|| PluginError::field("offset", format!("invalid Content-Range {range:?}")))
}

/// The string at `field` of a JSON object's text.
fn string_field(object: &str, field: &str) -> Option<String> {
    serde_json::from_str::<Value>(object).ok()?[field]
        .as_str()
        .map(str::to_owned)
}

granary_sdk::register_plugin!(Container);

#[cfg(test)]
mod tests {
    use granary_sdk::harness::{Host, request};

    use super::*;

    fn digest_of(bytes: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }

    #[test]
    fn a_manifest_naming_a_missing_blob_is_refused() {
        let mut host = Host::new();
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{}"}},"layers":[]}}"#,
            digest_of(b"config")
        );
        let mut put = request("PUT", "manifests/latest");
        put.access.push = true;
        let outcome = host
            .run(|| Container::handle(&put, Body::from_bytes(manifest.into_bytes())))
            .unwrap();
        assert_eq!(outcome.response.status, 400);
        assert!(outcome.add_units.is_empty());
    }

    #[test]
    fn a_pushed_blob_completes_against_its_digest() {
        let mut host = Host::new();
        let started = host
            .run(|| Container::handle(&request("POST", "blobs/uploads/"), Body::empty()))
            .unwrap();
        assert_eq!(started.response.status, 202);
        let id = host.sessions.keys().next().unwrap().clone();
        let layer = b"layer bytes";
        let mut put = request("PUT", &format!("blobs/uploads/{id}"));
        put.query = Some(format!("digest={}", digest_of(layer).replace(':', "%3A")));
        let outcome = host
            .run(|| Container::handle(&put, Body::from_bytes(&layer[..])))
            .unwrap();
        assert_eq!(outcome.response.status, 201);
        assert_eq!(
            outcome.add_units[0].natural_key,
            format!(r#"{{"digest":"{}"}}"#, digest_of(layer))
        );
    }

    /// A host holding an index tagged `multi` of an amd64 and an arm64 image; returns the
    /// index's and the amd64 image's digests.
    fn host_with_an_index() -> (Host, String, String) {
        let mut host = Host::new();
        let image = |architecture: &str| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"digest":"sha256:{architecture}"}},"layers":[]}}"#
            )
        };
        let mut children = Vec::new();
        for architecture in ["arm64", "amd64"] {
            let bytes = image(architecture);
            let digest = digest_of(bytes.as_bytes());
            let stored = ArtifactRef {
                sha256: digest[7..].to_owned(),
                size: bytes.len() as u64,
            };
            let unit = manifest_unit(
                &serde_json::from_str(&bytes).unwrap(),
                &digest,
                OCI_MANIFEST,
                &stored,
            );
            host.stored_unit(
                MANIFEST,
                &unit.natural_key,
                &unit.metadata,
                &[("m", bytes.as_bytes())],
            );
            children.push(serde_json::json!({
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "platform": {"os": "linux", "architecture": architecture},
            }));
        }
        let amd64 = children[1]["digest"].as_str().unwrap().to_owned();
        let index =
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children});
        let bytes = index.to_string();
        let digest = digest_of(bytes.as_bytes());
        let stored = ArtifactRef {
            sha256: digest[7..].to_owned(),
            size: bytes.len() as u64,
        };
        let unit = manifest_unit(&index, &digest, OCI_INDEX, &stored);
        host.stored_unit(
            MANIFEST,
            &unit.natural_key,
            &unit.metadata,
            &[("i", bytes.as_bytes())],
        );
        let tag = format!(r#"{{"name":"multi","manifest":"{digest}"}}"#);
        host.stored_unit(TAG, &tag, &tag, &[]);
        (host, digest, amd64)
    }

    fn get_manifest(host: &mut Host, reference: &str, accept: &str) -> HttpResponse {
        let mut get = request("GET", &format!("manifests/{reference}"));
        if !accept.is_empty() {
            get.headers.push(("accept".into(), accept.into()));
        }
        host.run(|| Container::handle(&get, Body::empty()))
            .unwrap()
            .response
    }

    fn header<'a>(response: &'a HttpResponse, name: &str) -> Option<&'a str> {
        response
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn an_index_goes_to_clients_that_accept_it_and_its_amd64_image_to_others() {
        let (mut host, index, amd64) = host_with_an_index();
        let both = format!("{OCI_MANIFEST}, {OCI_INDEX}");
        for accept in ["", both.as_str(), "*/*"] {
            let answer = get_manifest(&mut host, "multi", accept);
            assert_eq!(
                header(&answer, "docker-content-digest"),
                Some(index.as_str()),
                "{accept}"
            );
            assert_eq!(header(&answer, "content-type"), Some(OCI_INDEX));
        }
        let answer = get_manifest(&mut host, "multi", OCI_MANIFEST);
        assert_eq!(answer.status, 200);
        assert_eq!(
            header(&answer, "docker-content-digest"),
            Some(amd64.as_str())
        );
        assert_eq!(header(&answer, "content-type"), Some(OCI_MANIFEST));
        // By digest, the client gets what it named or nothing.
        let answer = get_manifest(&mut host, &index, OCI_MANIFEST);
        assert_eq!(answer.status, 404);
        let answer = get_manifest(
            &mut host,
            "multi",
            "application/vnd.docker.distribution.manifest.v2+json",
        );
        assert_eq!(
            answer.status, 404,
            "no Docker schema 2 image to fall back to"
        );
    }

    #[test]
    fn a_manifest_with_a_subject_is_listed_among_its_referrers() {
        let (mut host, _, amd64) = host_with_an_index();
        let layer = b"signature";
        let config = b"{}";
        for bytes in [&layer[..], &config[..]] {
            let blob = format!(r#"{{"digest":"{}"}}"#, digest_of(bytes));
            host.stored_unit(BLOB, &blob, &blob, &[("b", bytes)]);
        }
        let signature = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.signature","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},"layers":[{{"digest":"{}","size":9}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{amd64}","size":1}},"annotations":{{"by":"ci"}}}}"#,
            digest_of(config),
            digest_of(layer)
        );
        let mut put = request("PUT", "manifests/sig");
        put.access.push = true;
        let pushed = host
            .run(|| Container::handle(&put, Body::from_bytes(signature.clone().into_bytes())))
            .unwrap();
        assert_eq!(pushed.response.status, 201);
        assert_eq!(
            header(&pushed.response, "oci-subject"),
            Some(amd64.as_str())
        );
        let metadata = pushed.add_units[0].metadata.clone();
        host.stored_unit(
            MANIFEST,
            &pushed.add_units[0].natural_key,
            &metadata,
            &[("s", signature.as_bytes())],
        );

        for (query, found) in [
            (None, 1),
            (Some("artifactType=application%2Fvnd.example.signature"), 1),
            (Some("artifactType=application%2Fspdx%2Bjson"), 0),
        ] {
            let mut get = request("GET", &format!("referrers/{amd64}"));
            get.query = query.map(str::to_owned);
            let answer = host
                .run(|| Container::handle(&get, Body::empty()))
                .unwrap()
                .response;
            assert_eq!(answer.status, 200);
            assert_eq!(
                header(&answer, "oci-filters-applied"),
                query.map(|_| "artifactType")
            );
            let granary_sdk::HttpBody::Bytes(body) = &answer.body else {
                panic!("a JSON body");
            };
            let index: Value = serde_json::from_slice(body).unwrap();
            let listed = index["manifests"].as_array().unwrap();
            assert_eq!(listed.len(), found, "{query:?}: {index}");
            if found == 1 {
                assert_eq!(listed[0]["digest"], digest_of(signature.as_bytes()));
                assert_eq!(
                    listed[0]["artifactType"],
                    "application/vnd.example.signature"
                );
                assert_eq!(listed[0]["annotations"]["by"], "ci");
                assert_eq!(listed[0]["size"], signature.len());
            }
        }
    }

    #[test]
    fn a_blob_is_deleted_by_those_who_may_delete() {
        let mut host = Host::new();
        let digest = digest_of(b"layer");
        let key = format!(r#"{{"digest":"{digest}"}}"#);
        host.stored_unit(BLOB, &key, &key, &[("b", b"layer")]);
        let mut delete = request("DELETE", &format!("blobs/{digest}"));
        let refused = host
            .run(|| Container::handle(&delete, Body::empty()))
            .unwrap();
        assert_eq!(refused.response.status, 403);
        assert!(refused.remove_units.is_empty());
        delete.access.delete = true;
        let deleted = host
            .run(|| Container::handle(&delete, Body::empty()))
            .unwrap();
        assert_eq!(deleted.response.status, 202);
        assert_eq!(deleted.remove_units[0].natural_key, key);
        let mut unknown = request("DELETE", &format!("blobs/{}", digest_of(b"other")));
        unknown.access.delete = true;
        let answer = host
            .run(|| Container::handle(&unknown, Body::empty()))
            .unwrap();
        assert_eq!(answer.response.status, 404);
    }

    #[test]
    fn a_mount_adds_a_blob_the_caller_reads_elsewhere_and_else_starts_an_upload() {
        let mut host = Host::new();
        let layer = b"shared layer";
        let digest = digest_of(layer);
        let key = format!(r#"{{"digest":"{digest}"}}"#);
        // The harness makes the bytes readable as the host does for a stored file found there.
        host.artifact(layer);
        let stored = host.stored_unit(BLOB, &key, &key, &[("b", &layer[..])]);
        host.elsewhere.insert("team/base".into(), vec![stored]);
        let mut mount = request("POST", "blobs/uploads/");
        mount.query = Some(format!(
            "mount={}&from=team/base",
            digest.replace(':', "%3A")
        ));
        let mounted = host
            .run(|| Container::handle(&mount, Body::empty()))
            .unwrap();
        assert_eq!(mounted.response.status, 201);
        assert_eq!(mounted.add_units[0].natural_key, key);
        assert!(host.sessions.is_empty(), "no upload started");

        mount.query = Some(format!(
            "mount={}&from=team/other",
            digest.replace(':', "%3A")
        ));
        let started = host
            .run(|| Container::handle(&mount, Body::empty()))
            .unwrap();
        assert_eq!(started.response.status, 202);
        assert!(started.add_units.is_empty());
        assert_eq!(host.sessions.len(), 1);
    }

    #[test]
    fn ranges_are_read() {
        assert_eq!(range_start("0-99").unwrap(), 0);
        assert_eq!(range_start("bytes 100-199/*").unwrap(), 100);
    }
}
