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
//! Routes (relative to the repository): `blobs/<digest>` (GET, HEAD), `blobs/uploads/` (POST,
//! monolithic with `?digest=`), `blobs/uploads/<id>` (PATCH, PUT `?digest=`, GET, DELETE),
//! `manifests/<reference>` (PUT, GET, HEAD, DELETE), `tags/list` (`n`, `last`); at the root,
//! `/v2/` (the version check, a Bearer challenge for anonymous clients) and `/v2/_catalog`; a
//! push to a new name creates its repository and distribution. Errors are the spec's JSON
//! (`{"errors":[{"code":"BLOB_UNKNOWN",…}]}`).
//!
//! Not yet: sync from an upstream registry, cross-repository mounts (a mount request starts an
//! upload instead, which the spec allows), referrers, content negotiation beyond serving the
//! stored media type.

use granary_sdk::{
    ArtifactDeclaration, ArtifactRef, Body, ContentTypeInfo, HandleOutcome, HttpRequest,
    HttpResponse, Plugin, PluginError, PluginInfo, StoredUnit, UnitDeclaration, UnitRef, artifacts,
    content, distributions, json, uploads,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Content type of layers and configs.
const BLOB: &str = "blob";
/// Content type of manifests and indexes.
const MANIFEST: &str = "manifest";
/// Content type of tags.
const TAG: &str = "tag";
/// Largest manifest accepted (the spec's recommended minimum limit is 4 MiB).
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

struct Container;

impl Plugin for Container {
    fn describe() -> PluginInfo {
        let blob = ContentTypeInfo::new(BLOB, "A layer or config blob", &["digest"])
            .with_endpoint("blobs")
            .with_indexed_fields(&["digest"]);
        let manifest = ContentTypeInfo::new(MANIFEST, "An image manifest or index", &["digest"])
            .with_endpoint("manifests")
            .with_indexed_fields(&["digest"]);
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
        .with_root("v2")
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
                _ => Ok(unsupported()),
            }
        } else if let Some(reference) = path.strip_prefix("manifests/") {
            match method {
                "GET" | "HEAD" => Ok(manifest(reference)),
                "PUT" => put_manifest(request, &name, reference, body),
                "DELETE" => delete_manifest(request, reference),
                _ => Ok(unsupported()),
            }
        } else if path == "tags/list" && matches!(method, "GET" | "HEAD") {
            tags(request, &name)
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
    let id = uploads::start()?;
    Ok(upload_status(202, name, &id, 0).into())
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
    }
}

/// `GET blobs/<digest>`: the stored blob (a manifest's bytes too, as registries serve them).
fn blob(digest: &str) -> HandleOutcome {
    let found = first_unit(BLOB, digest).or_else(|| first_unit(MANIFEST, digest));
    match found.and_then(|unit| unit.artifacts.into_iter().next()) {
        Some(file) => HttpResponse::content_artifact(&file.content_artifact)
            .with_header("docker-content-digest", digest)
            .with_header("content-type", "application/octet-stream")
            .into(),
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

/// `GET manifests/<reference>`: the stored manifest with its media type.
fn manifest(reference: &str) -> HandleOutcome {
    let found = resolve(reference).and_then(|digest| {
        let unit = first_unit(MANIFEST, &digest)?;
        Some((digest, unit))
    });
    let Some((digest, unit)) = found else {
        return error(404, "MANIFEST_UNKNOWN", "manifest unknown to registry").into();
    };
    let media_type = string_field(&unit.metadata, "media_type")
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into());
    match unit.artifacts.into_iter().next() {
        Some(file) => HttpResponse::content_artifact(&file.content_artifact)
            .with_header("content-type", &media_type)
            .with_header("docker-content-digest", &digest)
            .into(),
        None => error(404, "MANIFEST_UNKNOWN", "manifest unknown to registry").into(),
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
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into());
    if let Some(missing) = missing_reference(&parsed) {
        let (code, what) = missing;
        return Ok(error(400, code, &format!("{what} is not in the repository")).into());
    }
    let stored = artifacts::create(&bytes)?;
    let manifest = UnitDeclaration {
        content_type: MANIFEST.into(),
        natural_key: json::string_object([("digest", digest.as_str())]),
        metadata: json::string_object([
            ("digest", digest.as_str()),
            ("media_type", media_type.as_str()),
        ]),
        artifacts: vec![stored_file(
            &format!("manifests/{}", stored.sha256),
            &stored,
        )],
    };
    let mut units = vec![manifest];
    if !reference.starts_with("sha256:") {
        units.push(UnitDeclaration {
            content_type: TAG.into(),
            natural_key: json::string_object([("name", reference), ("manifest", digest.as_str())]),
            metadata: json::string_object([("name", reference), ("manifest", digest.as_str())]),
            artifacts: Vec::new(),
        });
    }
    Ok(HandleOutcome::with_units(
        HttpResponse::bytes(201, Vec::new())
            .with_header("location", &format!("/v2/{name}/manifests/{digest}"))
            .with_header("docker-content-digest", &digest),
        units,
    ))
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
    let names: Vec<String> = names.take(page_size(request)).collect::<Result<_, _>>()?;
    let body = format!(
        "{{\"name\":{},\"tags\":{}}}",
        json_strings(&[name.to_owned()])
            .trim_start_matches('[')
            .trim_end_matches(']'),
        json_strings(&names)
    );
    Ok(json_response(200, body).into())
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

    #[test]
    fn ranges_are_read() {
        assert_eq!(range_start("0-99").unwrap(), 0);
        assert_eq!(range_start("bytes 100-199/*").unwrap(), 100);
    }
}
