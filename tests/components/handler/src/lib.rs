//! A plugin built against WIT 0.2.0 for the host's tests of what that version adds: REST names
//! and plugin-declared fields, `handle` outcomes that add units, form uploads, `artifacts.create`,
//! `content.list-by-prefix`, and pull-through caching (`http` in `handle`, `fetch-upstream`).
//!
//! Its one content type, `blob`, is a file under a project directory (`<project>/<file>`). Routes
//! of a distribution (paths relative to its base path):
//!
//! - `GET whoami`: what the host told the plugin about the request, one `key=value` per line
//!   (`user`, `distribution`, `writable`, `extra`, `remote`).
//! - `POST upload/`: a `multipart/form-data` body with a `project` text field and a `content`
//!   file. Adds one `blob` with two files, the upload and a `.meta` file the plugin derives with
//!   `artifacts.create`; answers `201 stored <project>/<file>`. Refused with 403 when the
//!   distribution's `allow_uploads` field is false.
//! - `POST echo`: the form fields the host parsed, `name=value` one a line, then `file:<name>=<file>`
//!   for each uploaded file.
//! - `POST bogus`: adds a unit whose file names an artifact nobody stored (the host must refuse it
//!   and make no version).
//! - `POST claim/<sha256>`: adds a unit whose file `claimed/<sha256>` names that digest, which the
//!   request did not bring (the host allows only this repository's or its remote's artifacts).
//! - `GET crash`: panics with a message the client must not see.
//! - `GET leftovers`: what this call found of earlier calls in its instance, as
//!   `calls-before=<n> dirty-bytes=<n>`: a static counter's value (then incremented) and the
//!   nonzero bytes of a fresh 4 MiB allocation (then filled with `0xa5`). A fresh instance finds
//!   `0` and `0`, however the host recycles instance memory.
//! - `GET list/<prefix>`: the relative paths of the units with a file under `<prefix>`, one a line.
//! - `GET kept/<prefix>`: the same list after `user=<user>` and `made=<nanoseconds>` (when the
//!   plugin made the answer) lines, which the host may keep for ten minutes: a kept answer
//!   comes back with the same `made` line.
//! - `GET files/<path>`: streams the stored file at `<path>`.
//! - `GET pull/<name>`: pull-through. A file already in the repository is streamed from there;
//!   otherwise the plugin reads the remote's `PULP_MANIFEST` (`path,sha256,size` lines) through
//!   `http` and asks the host to fetch `<name>` from upstream, keep it as `pulled/<name>`, and
//!   stream it.

use granary_sdk::{
    ArtifactDeclaration, Body, ContentTypeInfo, HandleOutcome, HttpRequest, HttpResponse, Plugin,
    PluginError, PluginInfo, UnitDeclaration, artifacts, content, http, json,
};

const BLOB: &str = "blob";

struct Handler;

impl Plugin for Handler {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "handler",
            env!("CARGO_PKG_VERSION"),
            vec![
                ContentTypeInfo::new(BLOB, "A file under a project", &["relative_path", "sha256"])
                    .with_endpoint("items"),
            ],
        )
        .with_capabilities(&["http"])
        .with_rest_names("stash", "source", "snapshot", "shelf")
        .with_remote_fields(
            r#"{"type":"object","properties":{
                "tags":{"type":"array","items":{"type":"string"},"default":[]},
                "priority":{"type":"integer"}}}"#,
        )
        .with_distribution_fields(
            r#"{"type":"object","properties":{"allow_uploads":{"type":"boolean","default":true}}}"#,
        )
    }

    fn handle(request: &HttpRequest, _body: Body) -> Result<HandleOutcome, PluginError> {
        let path = request.path.as_str();
        match (request.method.as_str(), path) {
            ("GET", "whoami") => Ok(whoami(request).into()),
            ("GET", "headers") => Ok(overreaching_headers().into()),
            ("POST", "upload/") => upload(request),
            ("POST", "echo") => Ok(echo(request).into()),
            ("POST", "bogus") => Ok(claim(&"0".repeat(64), "bogus/missing.bin")),
            ("POST", _) if path.starts_with("claim/") => {
                let sha256 = &path["claim/".len()..];
                Ok(claim(sha256, &format!("claimed/{sha256}")))
            }
            ("GET", "crash") => panic!("internal detail: the plugin's secret state is 0x5eed"),
            ("GET", "leftovers") => Ok(leftovers().into()),
            ("GET", _) if path.starts_with("list/") => list(&path["list/".len()..]),
            ("GET", _) if path.starts_with("kept/") => kept(request, &path["kept/".len()..]),
            ("GET" | "HEAD", _) if path.starts_with("files/") => {
                Ok(stored(&path["files/".len()..])?
                    .unwrap_or_else(HttpResponse::not_found)
                    .into())
            }
            ("GET" | "HEAD", _) if path.starts_with("pull/") => {
                pull(request, &path["pull/".len()..]).map(Into::into)
            }
            _ => Ok(HttpResponse::not_found().into()),
        }
    }
}

/// Calls this instance answered before.
static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn leftovers() -> HttpResponse {
    let calls_before = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Zeroed by the allocator's `calloc`, which leaves memory the module just grew as it finds
    // it: a host that handed out another call's pages would show their bytes here.
    let mut fresh = vec![0u8; 4 << 20];
    let dirty = fresh.iter().filter(|byte| **byte != 0).count();
    fresh.fill(0xa5);
    std::hint::black_box(&fresh);
    HttpResponse::ok(
        "text/plain",
        format!("calls-before={calls_before} dirty-bytes={dirty}"),
    )
}

fn whoami(request: &HttpRequest) -> HttpResponse {
    let Some(distribution) = request.distribution() else {
        return HttpResponse::not_found();
    };
    let body = format!(
        "user={}\ndistribution={}\nwritable={}\nextra={}\nremote={}\n",
        request.user.as_deref().unwrap_or("-"),
        distribution.name,
        distribution.writable,
        distribution.extra,
        distribution
            .remote
            .as_ref()
            .map_or("-", |remote| remote.url.as_str()),
    );
    HttpResponse::ok("text/plain", body)
}

/// An answer that tries to set what only the host decides: a cookie on the server's origin,
/// hop-by-hop and security headers; and one header of its own format, which must pass.
fn overreaching_headers() -> HttpResponse {
    HttpResponse::ok("text/html", "<script>alert(1)</script>")
        .with_header("Set-Cookie", "session=stolen; Path=/")
        .with_header("Connection", "close")
        .with_header("Strict-Transport-Security", "max-age=0")
        .with_header("Access-Control-Allow-Origin", "*")
        .with_header("X-Format-Serial", "42")
}

fn echo(request: &HttpRequest) -> HttpResponse {
    let mut body = String::new();
    for field in &request.form {
        body.push_str(&format!("{}={}\n", field.name, field.value));
    }
    for file in &request.files {
        body.push_str(&format!("file:{}={}\n", file.name, file.filename));
    }
    HttpResponse::ok("text/plain", body)
}

/// Adds a unit whose one file, at `relative_path`, names the stored artifact `sha256`.
fn claim(sha256: &str, relative_path: &str) -> HandleOutcome {
    let unit = UnitDeclaration {
        content_type: BLOB.into(),
        natural_key: json::string_object([("relative_path", relative_path), ("sha256", sha256)]),
        metadata: "{}".into(),
        artifacts: vec![ArtifactDeclaration {
            relative_path: relative_path.into(),
            url: None,
            size: None,
            sha256: Some(sha256.into()),
            #[cfg(not(feature = "wit-v0_2"))]
            sha512: None,
        }],
    };
    HandleOutcome::with_units(HttpResponse::bytes(201, "added"), vec![unit])
}

fn upload(request: &HttpRequest) -> Result<HandleOutcome, PluginError> {
    if request
        .distribution()
        .is_some_and(|distribution| distribution.extra.contains(r#""allow_uploads":false"#))
    {
        return Ok(HttpResponse::bytes(403, "uploads are disabled").into());
    }
    let project = request
        .form_value("project")
        .filter(|p| !p.is_empty() && !p.contains('/'))
        .ok_or_else(|| PluginError::field("project", "a project name is required"))?;
    let file = request
        .form_file("content")
        .ok_or_else(|| PluginError::field("content", "a file is required"))?;
    let relative_path = format!("{project}/{}", file.filename);
    let meta =
        artifacts::create(format!("{} {} bytes\n", file.filename, file.artifact.size).as_bytes())?;
    let unit = UnitDeclaration {
        content_type: BLOB.into(),
        natural_key: json::string_object([
            ("relative_path", relative_path.as_str()),
            ("sha256", file.artifact.sha256.as_str()),
        ]),
        metadata: json::string_object([("project", project)]),
        artifacts: vec![
            ArtifactDeclaration {
                relative_path: relative_path.clone(),
                url: None,
                size: Some(file.artifact.size),
                sha256: Some(file.artifact.sha256.clone()),
                #[cfg(not(feature = "wit-v0_2"))]
                sha512: None,
            },
            ArtifactDeclaration {
                relative_path: format!("{relative_path}.meta"),
                url: None,
                size: Some(meta.size),
                sha256: Some(meta.sha256),
                #[cfg(not(feature = "wit-v0_2"))]
                sha512: None,
            },
        ],
    };
    Ok(HandleOutcome::with_units(
        HttpResponse::bytes(201, format!("stored {relative_path}")),
        vec![unit],
    ))
}

fn kept(request: &HttpRequest, prefix: &str) -> Result<HandleOutcome, PluginError> {
    let made = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let mut body = format!(
        "user={}\nmade={made}\n",
        request.user.as_deref().unwrap_or("-")
    );
    body.push_str(&units_under(prefix)?);
    Ok(HttpResponse::ok("text/plain", body)
        .kept_by_host(600)
        .into())
}

fn list(prefix: &str) -> Result<HandleOutcome, PluginError> {
    Ok(HttpResponse::ok("text/plain", units_under(prefix)?).into())
}

/// The first file of each unit with a file under `prefix`, one a line.
fn units_under(prefix: &str) -> Result<String, PluginError> {
    let mut body = String::new();
    for unit in content::units_with_prefix(prefix) {
        let unit = unit?;
        if let Some(first) = unit.artifacts.first() {
            body.push_str(&first.relative_path);
            body.push('\n');
        }
    }
    Ok(body)
}

/// The stored file at `relative_path` of the version in scope, as a streamed response.
fn stored(relative_path: &str) -> Result<Option<HttpResponse>, PluginError> {
    let units = content::find_by_path(relative_path)?;
    Ok(units
        .iter()
        .flat_map(|unit| &unit.artifacts)
        .find(|file| file.relative_path == relative_path)
        .map(|file| HttpResponse::content_artifact(&file.content_artifact)))
}

fn pull(request: &HttpRequest, name: &str) -> Result<HttpResponse, PluginError> {
    let kept = format!("pulled/{name}");
    if let Some(response) = stored(&kept)? {
        return Ok(response);
    }
    let Some(remote) = request.distribution().and_then(|d| d.remote.as_ref()) else {
        return Ok(HttpResponse::not_found());
    };
    let manifest = http::get(&remote.url, &[])?;
    if !manifest.is_success() {
        return Err(PluginError::new(format!(
            "the upstream manifest answered {}",
            manifest.status()
        )));
    }
    let base = &remote.url[..remote.url.rfind('/').map_or(0, |slash| slash + 1)];
    for line in manifest.lines() {
        let line = line?;
        let mut fields = line.split(',');
        let (Some(path), Some(sha256), Some(size)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if path != name {
            continue;
        }
        let size: u64 = size
            .trim()
            .parse()
            .map_err(|_| PluginError::new(format!("bad size in the manifest line {line:?}")))?;
        let unit = UnitDeclaration {
            content_type: BLOB.into(),
            natural_key: json::string_object([
                ("relative_path", kept.as_str()),
                ("sha256", sha256),
            ]),
            metadata: json::string_object([("pulled", "true")]),
            artifacts: vec![ArtifactDeclaration {
                relative_path: kept.clone(),
                url: Some(format!("{base}{path}")),
                size: Some(size),
                sha256: Some(sha256.to_owned()),
                #[cfg(not(feature = "wit-v0_2"))]
                sha512: None,
            }],
        };
        return Ok(HttpResponse::fetch_upstream(unit, &kept));
    }
    Ok(HttpResponse::not_found())
}

granary_sdk::register_plugin!(Handler);

#[cfg(test)]
mod tests {
    use granary_sdk::harness::{self, Host};
    use granary_sdk::{Body, HttpBody, Plugin};

    use super::Handler;

    #[test]
    fn an_upload_adds_the_file_and_a_derived_one() {
        let mut host = Host::new();
        let mut request = harness::request("POST", "upload/");
        request.user = Some("alice".into());
        request.form.push(granary_sdk::FormField {
            name: "project".into(),
            value: "demo".into(),
        });
        request
            .files
            .push(host.form_file("content", "a.txt", b"hello"));
        let outcome = host
            .run(|| Handler::handle(&request, Body::empty()))
            .unwrap();
        assert_eq!(outcome.response.status, 201);
        assert_eq!(outcome.add_units.len(), 1);
        let files: Vec<&str> = outcome.add_units[0]
            .artifacts
            .iter()
            .map(|a| a.relative_path.as_str())
            .collect();
        assert_eq!(files, ["demo/a.txt", "demo/a.txt.meta"]);
        assert_eq!(host.created.len(), 1);
        assert_eq!(
            host.artifact_bytes(&host.created[0].sha256),
            Some(&b"a.txt 5 bytes\n"[..])
        );
    }

    #[test]
    fn listing_by_prefix_sees_one_project() {
        let mut host = Host::new();
        host.stored_unit("blob", "{}", "{}", &[("demo/a.txt", b"a")]);
        host.stored_unit("blob", "{}", "{}", &[("demo2/b.txt", b"b")]);
        let outcome = host
            .run(|| Handler::handle(&harness::request("GET", "list/demo/"), Body::empty()))
            .unwrap();
        assert!(outcome.add_units.is_empty());
        assert_eq!(
            harness::body_bytes(&outcome.response.body),
            Some(&b"demo/a.txt\n"[..])
        );
        assert!(matches!(outcome.response.body, HttpBody::Bytes(_)));
    }
}
