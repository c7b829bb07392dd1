//! The routes `handle` serves under a distribution (`/pypi/<base_path>/...`):
//!
//! - `simple/` and `simple/<project>/`: the simple API, HTML or JSON by `Accept`; a project name
//!   that is not normalized redirects to the normalized one;
//! - `packages/<project>/<file>` and `.../<file>.metadata`: the files, streamed by the host;
//! - `legacy/`: uploads from twine and `uv publish`;
//! - `pypi/<project>/json` and `pypi/<project>/<version>/json`: PyPI's JSON API (`json_api.rs`),
//!   of the stored files.
//!
//! With a remote (pull-through), project pages merge the upstream's files (linked to this
//! distribution) with the stored ones, and a file that is not stored yet is fetched once from
//! upstream, verified, kept and added to the repository by the host.

use std::collections::{BTreeMap, BTreeSet};

use granary_sdk::{
    ArtifactDeclaration, HandleOutcome, HttpBody, HttpRequest, HttpResponse, PluginError,
    RemoteConfig, UnitDeclaration, UpstreamFile, content, http, log,
};
use serde_json::Value;

use crate::json_api;
use crate::name::normalize;
use crate::package::{CONTENT_TYPE, METADATA_SUFFIX, Package, package_url};
use crate::simple::{FileLink, Format, render_index, render_project};
use crate::upstream;

/// Largest upstream page read during a request.
const MAX_PAGE: usize = 32 * 1024 * 1024;

/// How long the host may keep a page of a pull-through distribution: it merges the upstream's
/// page, which changes without the repository changing (PyPI's own pages say 600 s). Once it
/// has expired, the page is asked for again, conditionally (ETag, Last-Modified).
const PULL_THROUGH_PAGE_SECONDS: u32 = 600;
/// How long the host may keep an answer that depends only on the repository version served:
/// the host drops it anyway once the distribution serves another version.
const VERSION_ANSWER_SECONDS: u32 = 24 * 3600;

/// The remote of the distribution `request` arrived at (pull-through), if any.
fn remote_of(request: &HttpRequest) -> Option<&RemoteConfig> {
    request.distribution()?.remote.as_ref()
}

/// Whether the distribution `request` arrived at serves its repository's latest version.
fn writable(request: &HttpRequest) -> bool {
    request
        .distribution()
        .is_some_and(|distribution| distribution.writable)
}

/// How long the host may keep a page answering `request`.
fn page_lifetime(request: &HttpRequest) -> u32 {
    if remote_of(request).is_some() {
        PULL_THROUGH_PAGE_SECONDS
    } else {
        VERSION_ANSWER_SECONDS
    }
}

pub(crate) fn handle(request: &HttpRequest) -> Result<HandleOutcome, PluginError> {
    let path = request.path.as_str();
    let segments: Vec<&str> = path.split('/').collect();
    let response = match (request.method.as_str(), segments.as_slice()) {
        ("POST", ["legacy"] | ["legacy", ""]) => return upload(request),
        (_, ["legacy"] | ["legacy", ""]) => text(405, "uploads are POSTed to legacy/"),
        ("GET" | "HEAD", ["simple"]) => redirect(request, "simple/"),
        ("GET" | "HEAD", ["simple", ""]) => index(request)?,
        ("GET" | "HEAD", ["simple", project]) => {
            redirect(request, &format!("simple/{}/", normalize(project)))
        }
        ("GET" | "HEAD", ["simple", project, ""]) => {
            let normalized = normalize(project);
            if normalized != *project {
                redirect(request, &format!("simple/{normalized}/"))
            } else {
                project_page(request, project)?
            }
        }
        ("GET" | "HEAD", ["pypi", project, "json"] | ["pypi", project, "json", ""]) => {
            project_json(request, project, None)?
        }
        (
            "GET" | "HEAD",
            ["pypi", project, version, "json"] | ["pypi", project, version, "json", ""],
        ) => project_json(request, project, Some(version))?,
        ("GET" | "HEAD", ["packages", project, filename]) => {
            return file(request, project, filename);
        }
        _ => HttpResponse::not_found(),
    };
    Ok(respond(response))
}

fn respond(response: HttpResponse) -> HandleOutcome {
    HandleOutcome::respond(response)
}

fn text(status: u16, message: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
        body: HttpBody::Bytes(format!("{message}\n").into_bytes()),
    }
}

/// A redirect to the normalized name: it depends on the path alone.
fn redirect(request: &HttpRequest, path: &str) -> HttpResponse {
    HttpResponse {
        status: 301,
        headers: vec![("location".into(), format!("{}{path}", request.base_url))],
        body: HttpBody::Bytes(Vec::new()),
    }
    .kept_by_host(VERSION_ANSWER_SECONDS)
}

fn page(request: &HttpRequest, format: Format, body: Vec<u8>) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![
            ("content-type".into(), format.content_type().into()),
            ("vary".into(), "Accept".into()),
        ],
        body: HttpBody::Bytes(body),
    }
    .kept_by_host(page_lifetime(request))
}

/// The simple API representation the request accepts, or the 406 to answer.
fn negotiate(request: &HttpRequest) -> Option<Format> {
    Format::negotiate(request.header("accept"))
}

fn not_acceptable() -> HttpResponse {
    text(
        406,
        "acceptable types: application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html, text/html",
    )
}

/// The stored units of one project, as packages, sorted by file name.
pub(crate) fn stored_packages(project: &str) -> Result<Vec<Package>, PluginError> {
    let mut packages = Vec::new();
    for unit in content::units_with_prefix(&format!("{project}/")) {
        let unit = unit?;
        if unit.content_type != CONTENT_TYPE {
            continue;
        }
        packages.push(Package::from_metadata_json(&unit.metadata).map_err(PluginError::new)?);
    }
    packages.sort_by(|a, b| a.filename.cmp(&b.filename));
    Ok(packages)
}

/// Fetches the upstream's page of `project`. `Ok(None)` when the upstream does not know it.
fn upstream_links(
    request: &HttpRequest,
    project: &str,
) -> Result<Option<Vec<FileLink>>, PluginError> {
    let Some(remote) = remote_of(request) else {
        return Ok(None);
    };
    let url = format!("{}{project}/", upstream::index_url(&remote.url));
    let Some(response) = http::get_found(&url, &[("accept", upstream::ACCEPT)])? else {
        return Ok(None);
    };
    let json = upstream::is_json(response.header("content-type").as_deref());
    let body = response.read_to_end(MAX_PAGE)?;
    upstream::parse_project(&body, json, &url)
        .map(Some)
        .map_err(PluginError::new)
}

fn index(request: &HttpRequest) -> Result<HttpResponse, PluginError> {
    let Some(format) = negotiate(request) else {
        return Ok(not_acceptable());
    };
    // Names as their packages spell them (`Foo_Bar`, `foo-bar`): a project may have several.
    let mut projects = BTreeSet::new();
    for name in content::distinct_values(CONTENT_TYPE, "name") {
        projects.insert(normalize(&name?));
    }
    // A pull-through distribution lists what it stores, not its upstream's whole index: pip never
    // reads this page, and PyPI's is 40 MB, which every anonymous GET would make the host fetch.
    // Any upstream project is still served at its own page.
    let projects: Vec<String> = projects.into_iter().collect();
    Ok(page(request, format, render_index(&projects, format)))
}

fn project_page(request: &HttpRequest, project: &str) -> Result<HttpResponse, PluginError> {
    let Some(format) = negotiate(request) else {
        return Ok(not_acceptable());
    };
    let mut links: BTreeMap<String, FileLink> = stored_packages(project)?
        .iter()
        .map(|package| (package.filename.clone(), package.link()))
        .collect();
    match upstream_links(request, project) {
        Ok(Some(upstream)) => {
            for link in upstream {
                if links.contains_key(&link.filename) || link.sha256.is_none() {
                    continue;
                }
                // Served from here: the upstream's metadata file is not, so it is not announced.
                let local = FileLink {
                    url: package_url(project, &link.filename),
                    metadata_sha256: None,
                    ..link
                };
                links.insert(local.filename.clone(), local);
            }
        }
        Ok(None) => {}
        // The cache keeps serving what it has when the upstream is away.
        Err(error) if !links.is_empty() => log::warn(format!(
            "pull-through page of {project}: {}",
            error.message()
        )),
        Err(error) => return Ok(text(502, error.message())),
    }
    if links.is_empty() {
        return Ok(HttpResponse::not_found());
    }
    let links: Vec<FileLink> = links.into_values().collect();
    Ok(page(
        request,
        format,
        render_project(project, &links, format),
    ))
}

/// `pypi/<project>/json` (`version` `None`) and `pypi/<project>/<version>/json`.
fn project_json(
    request: &HttpRequest,
    project: &str,
    version: Option<&str>,
) -> Result<HttpResponse, PluginError> {
    let packages = stored_packages(&normalize(project))?;
    let Some(answer) = json_api::project_json(&packages, version, &request.base_url) else {
        return Ok(HttpResponse::not_found());
    };
    Ok(HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: HttpBody::Bytes(answer.to_string().into_bytes()),
    }
    .kept_by_host(VERSION_ANSWER_SECONDS))
}

fn file(
    request: &HttpRequest,
    project: &str,
    filename: &str,
) -> Result<HandleOutcome, PluginError> {
    let relative_path = format!("{project}/{filename}");
    for unit in content::find_by_path(&relative_path)? {
        if let Some(artifact) = unit
            .artifacts
            .iter()
            .find(|a| a.relative_path == relative_path)
        {
            // A stored file of the version: the host serves it again without asking.
            return Ok(respond(
                HttpResponse::content_artifact(&artifact.content_artifact)
                    .kept_by_host(VERSION_ANSWER_SECONDS),
            ));
        }
    }
    if filename.ends_with(METADATA_SUFFIX) || !writable(request) {
        return Ok(respond(HttpResponse::not_found()));
    }
    let links = match upstream_links(request, project) {
        Ok(links) => links,
        Err(error) => return Ok(respond(text(502, error.message()))),
    };
    let Some(link) = links
        .into_iter()
        .flatten()
        .find(|link| link.filename == filename)
    else {
        return Ok(respond(HttpResponse::not_found()));
    };
    let package = Package::from_link(&link).map_err(PluginError::new)?;
    if package.project() != project {
        return Ok(respond(HttpResponse::not_found()));
    }
    let unit = UnitDeclaration {
        content_type: CONTENT_TYPE.into(),
        natural_key: package.natural_key(),
        metadata: Package {
            metadata_sha256: None,
            ..package.clone()
        }
        .metadata_json(),
        artifacts: vec![ArtifactDeclaration {
            relative_path: relative_path.clone(),
            url: Some(link.url.clone()),
            size: link.size,
            sha256: Some(package.sha256.clone()),
            sha512: None,
        }],
    };
    Ok(respond(HttpResponse {
        status: 200,
        headers: Vec::new(),
        body: HttpBody::FetchUpstream(UpstreamFile {
            unit,
            relative_path,
        }),
    }))
}

/// `POST legacy/`: the upload API of PyPI that twine and `uv publish` speak.
fn upload(request: &HttpRequest) -> Result<HandleOutcome, PluginError> {
    if request.user.is_none() {
        return Ok(respond(text(401, "uploads need credentials")));
    }
    let extra: Value = request
        .distribution()
        .and_then(|distribution| serde_json::from_str(&distribution.extra).ok())
        .unwrap_or_default();
    if extra["allow_uploads"] == Value::Bool(false) {
        return Ok(respond(text(
            403,
            "uploads are disabled for this distribution (allow_uploads is false)",
        )));
    }
    if !writable(request) {
        return Ok(respond(text(
            403,
            "this distribution does not serve the latest version of a repository, so it cannot take uploads",
        )));
    }
    let field = |name: &str| {
        request
            .form
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    };
    match field(":action") {
        Some("file_upload") => {}
        Some(other) => {
            return Err(PluginError::field(
                ":action",
                format!("unsupported action {other:?}"),
            ));
        }
        None => {
            return Err(PluginError::field(
                ":action",
                "missing :action (expected file_upload)",
            ));
        }
    }
    let file = request
        .files
        .iter()
        .find(|f| f.name == "content")
        .ok_or_else(|| {
            PluginError::field("content", "the upload has no file part named content")
        })?;
    let parsed = crate::read_package(&file.filename, &file.artifact)?;
    let package = &parsed.package;
    if let Some(name) = field("name")
        && normalize(name) != package.project()
    {
        return Err(PluginError::field(
            "name",
            format!(
                "the form names project {name:?} but the file's metadata names {:?}",
                package.name
            ),
        ));
    }
    if let Some(version) = field("version") {
        let parse = |version: &str| version.trim().parse::<pep440_rs::Version>().ok();
        let same = parse(version)
            .zip(parse(&package.version))
            .is_some_and(|(form, metadata)| form == metadata);
        if !same {
            return Err(PluginError::field(
                "version",
                format!(
                    "the form has version {version:?} but the file's metadata has {:?}",
                    package.version
                ),
            ));
        }
    }
    if let Some(digest) = field("sha256_digest").filter(|d| !d.is_empty())
        && !digest.eq_ignore_ascii_case(&file.artifact.sha256)
    {
        return Err(PluginError::field(
            "sha256_digest",
            "sha256_digest does not match the uploaded file",
        ));
    }
    if !content::find_by_path(&package.relative_path())?.is_empty() {
        // PyPI's wording: twine's and uv's skip-existing options look for it.
        return Ok(respond(text(
            400,
            &format!("File already exists: {}", package.filename),
        )));
    }
    let unit = crate::unit_with_metadata(parsed)?;
    Ok(HandleOutcome::with_units(text(200, "OK"), vec![unit]))
}
