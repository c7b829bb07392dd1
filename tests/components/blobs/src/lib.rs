//! A plugin on WIT 0.3.0 that stores request bodies as they stream in, for the host's tests of
//! `incoming-body`, `artifacts.store-body` and `uploads`. Never install it anywhere else.
//!
//! Content type `blob`: stored bytes named by their sha256 (`digest`, an indexed field), at
//! `blobs/<digest>`. Routes under a distribution (`/blobs/<base_path>/…`), shaped like a
//! registry's blob uploads but with plain headers:
//!
//! - `PUT blobs/<digest>`: the body is the blob, stored by the host against the digest, and added;
//! - `GET blobs/<digest>`: the stored blob (404 when the served version has none);
//! - `POST uploads/`: starts a session; 202 with `upload-id`;
//! - `PATCH uploads/<id>`: appends the body at `upload-offset` (the session's size when the
//!   header is absent); 202 with the new `upload-size`;
//! - `GET uploads/<id>`: 204 with `upload-size`, or 404;
//! - `PUT uploads/<id>?digest=<digest>`: appends the body, if any, then completes the session
//!   against the digest and adds the blob; 201;
//! - `DELETE uploads/<id>`: cancels the session; 204, or 404;
//! - `GET uploads/start`: tries to start a session in a read, which the host refuses;
//! - `POST count`: reads the body through `std::io::Read`, answers its length;
//! - `POST note`: reads the body whole, refusing more than 16 bytes, and echoes it;
//! - `POST writers/<n>?digest=<digest>`: opens `n` artifact writers, writes the body into the
//!   last and finishes it against the digest (when given); 201 with the artifact's sha256;
//! - `GET writers/<n>`: tries the same in a read, which the host refuses;
//! - `GET access`: what the caller may do, `pull=<bool> push=<bool> delete=<bool>`;
//! - `GET challenge/<scheme>`: 401 asking the host for that challenge (`Basic`, `Bearer`, or
//!   anything else, which the host drops).
//!
//! The same routes answer at the plugin's root, `/registry/<base_path>/…`, where base paths may
//! contain slashes. A request there that matches no distribution gets:
//!
//! - `GET ` (the root itself): a registry's API version check: 401 with a Bearer challenge for
//!   an anonymous caller, else 200 `registry` with `x-api-version: blobs/1`;
//! - `GET _catalog?last=<base path>&n=<count>`: the public distributions' base paths, one a line;
//! - any other read: 404;
//! - a write to `<name>/uploads/`: a push to a new name; asks the host to create a repository and
//!   a distribution at `<name>` and to serve the request there;
//! - any other write: tries to start an upload session, which the host refuses (no repository).
//!
//! Errors of the host's imports are returned as they are: the host answers 400 with their
//! message on their field.

use std::io::Read as _;

use granary_sdk::{
    ArtifactDeclaration, ArtifactRef, Body, ContentTypeInfo, HandleOutcome, HttpRequest,
    HttpResponse, Plugin, PluginError, PluginInfo, UnitDeclaration, artifacts, content,
    distributions, json, uploads,
};

/// The content type.
const BLOB: &str = "blob";

struct Blobs;

impl Plugin for Blobs {
    fn describe() -> PluginInfo {
        let blob = ContentTypeInfo::new(BLOB, "Bytes named by their sha256", &["digest"])
            .with_endpoint("blobs")
            .with_indexed_fields(&["digest"]);
        PluginInfo::new("blobs", env!("CARGO_PKG_VERSION"), vec![blob])
            .with_rest_names("blobs", "blobs", "blobs", "blobs")
            .with_root("registry")
    }

    fn handle(request: &HttpRequest, mut body: Body) -> Result<HandleOutcome, PluginError> {
        if request.distribution.is_none() {
            return at_root(request);
        }
        let path = request.path.as_str();
        match (request.method.as_str(), path) {
            ("POST", "uploads/") => {
                let id = uploads::start()?;
                Ok(HttpResponse::bytes(202, Vec::new())
                    .with_header("upload-id", &id)
                    .into())
            }
            ("GET", "uploads/start") => {
                uploads::start()?;
                Ok(HttpResponse::bytes(202, Vec::new()).into())
            }
            ("POST", "count") => {
                let mut length = 0u64;
                let mut buffer = vec![0; 100_000];
                loop {
                    let n = body.read(&mut buffer).map_err(PluginError::from)?;
                    if n == 0 {
                        break;
                    }
                    length += n as u64;
                }
                Ok(HttpResponse::ok("text/plain", length.to_string()).into())
            }
            ("POST", "note") => Ok(HttpResponse::bytes(200, body.bytes(16)?).into()),
            ("POST" | "GET", _) if path.starts_with("writers/") => {
                let count: usize = path["writers/".len()..].parse().unwrap_or(1);
                let mut writers = Vec::new();
                for _ in 0..count {
                    writers.push(artifacts::Writer::new()?);
                }
                let mut last = writers.pop().ok_or_else(|| PluginError::new("no writer"))?;
                std::io::copy(&mut body, &mut last).map_err(PluginError::from)?;
                let digest = request.query_param("digest");
                let artifact = last.finish(digest.as_deref())?;
                Ok(HttpResponse::bytes(201, artifact.sha256).into())
            }
            ("GET", "access") => {
                let access = &request.access;
                let text = format!(
                    "pull={} push={} delete={}",
                    access.pull, access.push, access.delete
                );
                Ok(HttpResponse::ok("text/plain", text).into())
            }
            ("GET", _) if path.starts_with("challenge/") => {
                Ok(HttpResponse::bytes(401, Vec::new())
                    .with_header("www-authenticate", &path["challenge/".len()..])
                    .into())
            }
            (method, _) if path.starts_with("blobs/") => {
                let digest = &path["blobs/".len()..];
                match method {
                    "PUT" => {
                        let blob = body.store(Some(digest))?;
                        Ok(added(blob))
                    }
                    "GET" | "HEAD" => stored(digest),
                    _ => Ok(HttpResponse::not_found().into()),
                }
            }
            (method, _) if path.starts_with("uploads/") => {
                session(request, method, &path["uploads/".len()..], &body)
            }
            _ => Ok(HttpResponse::not_found().into()),
        }
    }
}

/// A request at the root that matches no distribution.
fn at_root(request: &HttpRequest) -> Result<HandleOutcome, PluginError> {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET" | "HEAD", "") if request.user.is_none() => Ok(HttpResponse::bytes(401, Vec::new())
            .with_header("www-authenticate", "Bearer")
            .into()),
        ("GET" | "HEAD", "") => Ok(HttpResponse::ok("text/plain", "registry")
            .with_header("x-api-version", "blobs/1")
            .into()),
        ("GET", "_catalog") => {
            let mut names = distributions::base_paths();
            if let Some(last) = request.query_param("last") {
                names = names.after(&last);
            }
            let count = request
                .query_param("n")
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            let names: Vec<String> = names.take(count).collect::<Result<_, _>>()?;
            Ok(HttpResponse::ok("text/plain", names.join("\n")).into())
        }
        ("GET" | "HEAD", _) => Ok(HttpResponse::not_found().into()),
        (_, path) if path.ends_with("/uploads/") => {
            let name = path.trim_end_matches("/uploads/");
            Ok(HandleOutcome::respond(HttpResponse::not_found()).creating(name))
        }
        _ => {
            let id = uploads::start()?;
            Ok(HttpResponse::bytes(202, Vec::new())
                .with_header("upload-id", &id)
                .into())
        }
    }
}

/// The routes of upload session `id`.
fn session(
    request: &HttpRequest,
    method: &str,
    id: &str,
    body: &Body,
) -> Result<HandleOutcome, PluginError> {
    let size_answer = |status: u16, size: u64| {
        HttpResponse::bytes(status, Vec::new()).with_header("upload-size", &size.to_string())
    };
    match method {
        "GET" => Ok(match uploads::size(id) {
            Some(size) => size_answer(204, size).into(),
            None => HttpResponse::not_found().into(),
        }),
        "PATCH" => {
            let offset = match request.header("upload-offset") {
                Some(offset) => offset
                    .parse()
                    .map_err(|_| PluginError::field("upload-offset", "not a number"))?,
                None => uploads::size(id).unwrap_or_default(),
            };
            let size = uploads::append(id, offset, body)?;
            Ok(size_answer(202, size).into())
        }
        "PUT" => {
            let digest = request
                .query
                .as_deref()
                .and_then(|query| query.strip_prefix("digest="))
                .ok_or_else(|| PluginError::field("digest", "PUT needs ?digest="))?;
            if let Some(size) = uploads::size(id) {
                uploads::append(id, size, body)?;
            }
            Ok(added(uploads::complete(id, Some(digest))?))
        }
        "DELETE" => Ok(if uploads::cancel(id)? {
            HttpResponse::bytes(204, Vec::new()).into()
        } else {
            HttpResponse::not_found().into()
        }),
        _ => Ok(HttpResponse::not_found().into()),
    }
}

/// Adds the stored `blob` to the repository; 201.
fn added(blob: ArtifactRef) -> HandleOutcome {
    let relative_path = format!("blobs/{}", blob.sha256);
    let unit = UnitDeclaration {
        content_type: BLOB.into(),
        natural_key: json::string_object([("digest", blob.sha256.as_str())]),
        metadata: "{}".into(),
        artifacts: vec![ArtifactDeclaration {
            relative_path: relative_path.clone(),
            url: None,
            size: Some(blob.size),
            sha256: Some(blob.sha256.clone()),
            sha512: None,
        }],
    };
    HandleOutcome::with_units(
        HttpResponse::bytes(201, Vec::new()).with_header("location", &relative_path),
        vec![unit],
    )
}

/// The stored blob `digest` of the served version.
fn stored(digest: &str) -> Result<HandleOutcome, PluginError> {
    for unit in content::units_with_value(BLOB, "digest", digest) {
        if let Some(file) = unit?.artifacts.into_iter().next() {
            return Ok(HttpResponse::content_artifact(&file.content_artifact).into());
        }
    }
    Ok(HttpResponse::not_found().into())
}

granary_sdk::register_plugin!(Blobs);

#[cfg(test)]
mod tests {
    use granary_sdk::harness::{Host, request};

    use super::*;

    fn call(host: &mut Host, method: &str, path: &str, body: &[u8]) -> HandleOutcome {
        let call = request(method, path);
        host.run(|| Blobs::handle(&call, Body::from_bytes(body)))
            .unwrap()
    }

    #[test]
    fn a_session_appended_twice_completes_as_one_blob() {
        let mut host = Host::new();
        let started = call(&mut host, "POST", "uploads/", b"");
        let id = started.response.headers[0].1.clone();
        call(&mut host, "PATCH", &format!("uploads/{id}"), b"hello ");
        let sha256 = host.artifact(b"hello world").sha256;
        let mut put = request("PUT", &format!("uploads/{id}"));
        put.query = Some(format!("digest={sha256}"));
        let outcome = host
            .run(|| Blobs::handle(&put, Body::from_bytes(&b"world"[..])))
            .unwrap();
        assert_eq!(outcome.response.status, 201);
        assert_eq!(outcome.add_units[0].artifacts[0].sha256, Some(sha256));
        assert!(host.sessions.is_empty());
    }

    #[test]
    fn a_body_with_another_digest_is_refused() {
        let mut host = Host::new();
        let call = request("PUT", &format!("blobs/{}", "0".repeat(64)));
        let error = host
            .run(|| Blobs::handle(&call, Body::from_bytes(&b"bytes"[..])))
            .unwrap_err();
        assert_eq!(error.field_name(), Some("digest"));
        assert!(host.created.is_empty());
    }

    #[test]
    fn a_note_longer_than_its_limit_is_refused() {
        let mut host = Host::new();
        let call = request("POST", "note");
        let error = host
            .run(|| Blobs::handle(&call, Body::from_bytes(vec![b'x'; 17])))
            .unwrap_err();
        assert_eq!(error.field_name(), Some("body"));
    }
}
