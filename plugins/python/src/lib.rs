//! Granary's `python` content type: Pulp's `pulp_python` as a WebAssembly component.
//!
//! One unit (`python.python`) per distribution file, wheel or sdist, with its name, version,
//! `Requires-Python`, sha256 and core metadata; wheels also carry their `METADATA` as a PEP 658
//! file. A distribution serves the simple API (PEP 503 HTML and PEP 691 JSON), the files, and
//! PyPI's upload API at `/pypi/<base_path>/`; a remote syncs from another simple index, and a
//! distribution with a remote is a pull-through cache. See `docs/python.md`.
//!
//! # Layout
//!
//! - `lib.rs`: the [`Plugin`] implementation (describe, sync, parse-upload, publish, handle).
//! - `routes.rs`: what `handle` serves: simple pages, files, uploads, pull-through.
//! - `package.rs`: one unit, its paths, natural key and metadata JSON.
//! - Format knowledge, pure and unit-tested natively:
//!   - `name.rs`: project name normalization and wheel/sdist file names;
//!   - `metadata.rs`: core metadata (`METADATA`, `PKG-INFO`);
//!   - `archive.rs`: the metadata file of a wheel (zip) or an sdist (tar.gz, zip);
//!   - `simple.rs`: rendering the simple API and `Accept` negotiation;
//!   - `upstream.rs`: reading an upstream simple index;
//!   - `filters.rs`: the remote's `includes`/`excludes`/... fields.
//!   - `json_api.rs`: PyPI's JSON API (`pypi/<project>/json`) of the stored files.

use std::collections::BTreeSet;

use granary_sdk::artifacts::Reader;
use granary_sdk::publication::{Publisher, write_file};
use granary_sdk::sync::Emitter;
use granary_sdk::{
    ArtifactDeclaration, ArtifactRef, Body, ContentTypeInfo, HandleOutcome, HttpRequest, Plugin,
    PluginError, PluginInfo, RemoteConfig, UnitDeclaration, VersionInfo, content, http, log,
    progress,
};

pub mod archive;
pub mod filters;
pub mod json_api;
pub mod metadata;
pub mod name;
pub mod package;
mod routes;
pub mod simple;
pub mod upstream;

use filters::Filter;
use metadata::CoreMetadata;
use name::{DistFilename, PackageType, normalize};
use package::{CONTENT_TYPE, Package};
use simple::Format;

/// JSON Schema of the distribution fields (`plugin-info.distribution-fields`).
const DISTRIBUTION_FIELDS: &str = r#"{"type":"object","additionalProperties":false,"properties":{"allow_uploads":{"type":"boolean","default":true,"description":"Whether twine and uv publish may upload to this distribution's legacy/ endpoint"}}}"#;
/// Largest upstream simple page read by a sync.
const MAX_PAGE: usize = 64 * 1024 * 1024;

struct PythonPlugin;

impl Plugin for PythonPlugin {
    fn describe() -> PluginInfo {
        let package = ContentTypeInfo::new(
            crate::CONTENT_TYPE,
            "A Python distribution file (wheel or sdist) with its core metadata",
            &["filename", "sha256"],
        )
        .with_endpoint("packages")
        // The index lists projects from the distinct names, without reading every unit; a file
        // name is a package's identity in a repository (pulp_python's `repo_key_fields`); the
        // package type is a filter of pulp_python's content list that pulp-cli always sends
        // (`packagetype__in`), and an indexed field is what a content list filters on.
        .with_indexed_fields(&["name", "filename", "packagetype"])
        .with_repository_key("filename");
        PluginInfo::new("python", env!("CARGO_PKG_VERSION"), vec![package])
            .with_capabilities(&["http"])
            .with_rest_names("python", "python", "pypi", "pypi")
            .with_remote_fields(filters::REMOTE_FIELDS)
            .with_distribution_fields(DISTRIBUTION_FIELDS)
    }

    fn sync(remote: &RemoteConfig) -> Result<(), PluginError> {
        let filter = Filter::from_remote(&remote.extra).map_err(|(field, message)| {
            if field.is_empty() {
                PluginError::new(message)
            } else {
                PluginError::field(field, message)
            }
        })?;
        let index = upstream::index_url(&remote.url);
        let projects: BTreeSet<String> = if filter.includes.is_empty() {
            let response = http::get(&index, &[("accept", upstream::ACCEPT)])?;
            if !response.is_success() {
                return Err(PluginError::new(format!(
                    "fetching the index {index} failed: HTTP {}",
                    response.status()
                )));
            }
            let json = upstream::is_json(response.header("content-type").as_deref());
            let body = response.read_to_end(MAX_PAGE)?;
            upstream::parse_index(&body, json)
                .map_err(PluginError::new)?
                .iter()
                .map(|name| normalize(name))
                .collect()
        } else {
            filter.includes.iter().map(|r| r.project.clone()).collect()
        };
        let total = projects.len() as u64;
        let mut emitter = Emitter::new();
        for (done, project) in projects.iter().enumerate() {
            progress::report(
                "sync.parsing.metadata",
                "Parsing project pages",
                done as u64,
                Some(total),
            );
            if !filter.wants_project(project) {
                continue;
            }
            let url = format!("{index}{project}/");
            let response = http::get(&url, &[("accept", upstream::ACCEPT)])?;
            if response.status() == 404 {
                log::warn(format!("the upstream has no project {project} ({url})"));
                continue;
            }
            if !response.is_success() {
                return Err(PluginError::new(format!(
                    "fetching {url} failed: HTTP {}",
                    response.status()
                )));
            }
            let json = upstream::is_json(response.header("content-type").as_deref());
            let body = response.read_to_end(MAX_PAGE)?;
            let wanted: Vec<_> = upstream::parse_project(&body, json, &url)
                .map_err(PluginError::new)?
                .into_iter()
                .filter(|link| filter.wants_file(project, &link.filename))
                .collect();
            for link in filter.newest_versions(wanted, |link| &link.filename) {
                let package = match Package::from_link(&link) {
                    Ok(package) => package,
                    Err(reason) => {
                        log::warn(format!("skipping {}: {reason}", link.filename));
                        continue;
                    }
                };
                let mut artifacts = vec![ArtifactDeclaration {
                    relative_path: package.relative_path(),
                    url: Some(link.url.clone()),
                    size: link.size,
                    sha256: Some(package.sha256.clone()),
                    sha512: None,
                }];
                if let Some(sha256) = &package.metadata_sha256 {
                    artifacts.push(ArtifactDeclaration {
                        relative_path: package.metadata_path(),
                        url: Some(format!("{}{}", link.url, package::METADATA_SUFFIX)),
                        size: None,
                        sha256: Some(sha256.clone()),
                        sha512: None,
                    });
                }
                emitter.emit(UnitDeclaration {
                    content_type: CONTENT_TYPE.into(),
                    natural_key: package.natural_key(),
                    metadata: package.metadata_json(),
                    artifacts,
                })?;
            }
        }
        let emitted = emitter.finish()?;
        progress::report(
            "sync.parsing.metadata",
            "Parsing project pages",
            total,
            Some(total),
        );
        log::info(format!("{index}: {emitted} files from {total} projects"));
        Ok(())
    }

    /// `content/python/packages/` uploads: `relative_path` is the file name.
    fn parse_upload(
        upload: &ArtifactRef,
        relative_path: Option<&str>,
    ) -> Result<UnitDeclaration, PluginError> {
        let filename = relative_path.ok_or_else(|| {
            PluginError::field(
                "relative_path",
                "a Python package upload needs relative_path: the file name, e.g. pkg-1.0-py3-none-any.whl",
            )
        })?;
        unit_with_metadata(read_package(filename, upload)?)
    }

    /// Static pages (PEP 503 HTML, the one format a file server can serve without negotiation)
    /// at `simple/`, and every file at `packages/<project>/<file>`.
    fn publish(_version: &VersionInfo) -> Result<(), PluginError> {
        let mut publisher = Publisher::new();
        let mut projects = BTreeSet::new();
        for unit in content::units() {
            let unit = unit?;
            if unit.content_type != CONTENT_TYPE {
                continue;
            }
            let package = Package::from_metadata_json(&unit.metadata).map_err(PluginError::new)?;
            projects.insert(package.project());
            for artifact in &unit.artifacts {
                publisher.publish(
                    &format!("packages/{}", artifact.relative_path),
                    &artifact.content_artifact,
                )?;
            }
        }
        publisher.finish()?;
        let names: Vec<String> = projects.iter().cloned().collect();
        write_file(
            "simple/index.html",
            &simple::render_index(&names, Format::Html),
        )?;
        for project in &projects {
            let links: Vec<_> = routes::stored_packages(project)?
                .iter()
                .map(Package::link)
                .collect();
            write_file(
                &format!("simple/{project}/index.html"),
                &simple::render_project(project, &links, Format::Html),
            )?;
        }
        Ok(())
    }

    fn handle(request: &HttpRequest, _body: Body) -> Result<HandleOutcome, PluginError> {
        routes::handle(request)
    }
}

/// A distribution file read from its archive, with the bytes of its metadata file.
pub(crate) struct ParsedPackage {
    package: Package,
    /// A wheel's `METADATA`, served as its PEP 658 file.
    wheel_metadata: Option<Vec<u8>>,
}

/// Reads the archive `artifact` named `filename`: its metadata file, checked against the name.
pub(crate) fn read_package(
    filename: &str,
    artifact: &ArtifactRef,
) -> Result<ParsedPackage, PluginError> {
    let parsed = DistFilename::parse(filename).map_err(PluginError::new)?;
    let reader = Reader::new(artifact);
    let (bytes, kind) = match parsed.packagetype {
        PackageType::Wheel => (archive::wheel_metadata(reader, &parsed.name), "wheel"),
        PackageType::Sdist => (archive::sdist_metadata(reader, filename), "sdist"),
    };
    let bytes = bytes.map_err(PluginError::new)?;
    let metadata = CoreMetadata::parse(&bytes)
        .map_err(|error| PluginError::new(format!("invalid {kind} {filename}: {error}")))?;
    let package = Package::from_archive(filename, &artifact.sha256, artifact.size, &metadata)
        .map_err(PluginError::new)?;
    Ok(ParsedPackage {
        package,
        wheel_metadata: (parsed.packagetype == PackageType::Wheel).then_some(bytes),
    })
}

/// The unit of an uploaded package; a wheel's metadata is stored as its PEP 658 file.
pub(crate) fn unit_with_metadata(parsed: ParsedPackage) -> Result<UnitDeclaration, PluginError> {
    let mut package = parsed.package;
    let mut artifacts = vec![ArtifactDeclaration {
        relative_path: package.relative_path(),
        url: None,
        size: package.size,
        sha256: Some(package.sha256.clone()),
        sha512: None,
    }];
    if let Some(bytes) = parsed.wheel_metadata {
        let stored = granary_sdk::artifacts::create(&bytes)?;
        package.metadata_sha256 = Some(stored.sha256.clone());
        artifacts.push(ArtifactDeclaration {
            relative_path: package.metadata_path(),
            url: None,
            size: Some(stored.size),
            sha256: Some(stored.sha256),
            sha512: None,
        });
    }
    Ok(UnitDeclaration {
        content_type: CONTENT_TYPE.into(),
        natural_key: package.natural_key(),
        metadata: package.metadata_json(),
        artifacts,
    })
}

granary_sdk::register_plugin!(PythonPlugin);

/// The plugin's exports against the SDK's in-memory host: what the host would receive.
#[cfg(test)]
mod tests {
    use granary_sdk::harness::{Host, body_bytes, request};
    use granary_sdk::{
        Body, DownloadPolicy, FormField, HttpBody, HttpRequest, Plugin, RemoteConfig,
    };
    use serde_json::Value;

    use super::PythonPlugin;
    use crate::archive::tests::{tar_gz, zip};

    const METADATA: &[u8] =
        b"Metadata-Version: 2.1\nName: granary-demo\nVersion: 1.0\nRequires-Python: >=3.8\n";

    fn wheel() -> Vec<u8> {
        zip(&[
            ("granary_demo/__init__.py", b"ANSWER = 42\n"),
            ("granary_demo-1.0.dist-info/METADATA", METADATA),
        ])
    }

    /// A twine upload of `bytes` as `filename`, with the form's name and version.
    fn upload(host: &mut Host, filename: &str, bytes: &[u8], version: &str) -> HttpRequest {
        let mut request = request("POST", "legacy/");
        request.user = Some("admin".into());
        for (name, value) in [
            (":action", "file_upload"),
            ("name", "granary-demo"),
            ("version", version),
        ] {
            request.form.push(FormField {
                name: name.into(),
                value: value.into(),
            });
        }
        request
            .files
            .push(host.form_file("content", filename, bytes));
        request
    }

    #[test]
    fn an_upload_adds_the_wheel_and_its_metadata_file() {
        let mut host = Host::new();
        let request = upload(
            &mut host,
            "granary_demo-1.0-py3-none-any.whl",
            &wheel(),
            "1.0",
        );
        let outcome = host
            .run(|| PythonPlugin::handle(&request, Body::empty()))
            .unwrap();
        assert_eq!(outcome.response.status, 200);
        let [unit] = outcome.add_units.as_slice() else {
            panic!("one unit: {:?}", outcome.add_units)
        };
        let paths: Vec<&str> = unit
            .artifacts
            .iter()
            .map(|a| a.relative_path.as_str())
            .collect();
        assert_eq!(
            paths,
            [
                "granary-demo/granary_demo-1.0-py3-none-any.whl",
                "granary-demo/granary_demo-1.0-py3-none-any.whl.metadata"
            ]
        );
        let metadata_sha256 = unit.artifacts[1].sha256.clone().unwrap();
        assert_eq!(host.artifact_bytes(&metadata_sha256), Some(METADATA));
        let fields: Value = serde_json::from_str(&unit.metadata).unwrap();
        assert_eq!(fields["name"], "granary-demo");
        assert_eq!(fields["packagetype"], "bdist_wheel");
        assert_eq!(fields["requires_python"], ">=3.8");
        assert_eq!(fields["metadata_sha256"], metadata_sha256.as_str());
    }

    #[test]
    fn a_file_that_exists_is_refused_as_pypi_does() {
        let mut host = Host::new();
        host.stored_unit(
            "python",
            "{}",
            "{}",
            &[("granary-demo/granary_demo-1.0-py3-none-any.whl", b"old")],
        );
        let request = upload(
            &mut host,
            "granary_demo-1.0-py3-none-any.whl",
            &wheel(),
            "1.0",
        );
        let outcome = host
            .run(|| PythonPlugin::handle(&request, Body::empty()))
            .unwrap();
        assert_eq!(outcome.response.status, 400);
        let body =
            String::from_utf8_lossy(body_bytes(&outcome.response.body).unwrap()).into_owned();
        assert!(body.starts_with("File already exists"), "{body}");
        assert!(outcome.add_units.is_empty());
    }

    #[test]
    fn an_upload_whose_form_disagrees_with_its_metadata_is_refused() {
        let mut host = Host::new();
        let request = upload(
            &mut host,
            "granary_demo-1.0-py3-none-any.whl",
            &wheel(),
            "2.0",
        );
        let error = host
            .run(|| PythonPlugin::handle(&request, Body::empty()))
            .unwrap_err();
        assert_eq!(error.field_name(), Some("version"));
        assert!(host.created.is_empty(), "nothing stored");
        let sdist = tar_gz(&[("granary_demo-1.0/setup.py", b"")]);
        let request = upload(&mut host, "granary_demo-1.0.tar.gz", &sdist, "1.0");
        let error = host
            .run(|| PythonPlugin::handle(&request, Body::empty()))
            .unwrap_err();
        assert_eq!(
            error.message(),
            "invalid sdist: it has no top-level PKG-INFO file"
        );
    }

    /// Stores the uploaded wheel as the host would, then asks for its project page.
    fn page(accept: &str, path: &str) -> (u16, Vec<(String, String)>, String) {
        let mut host = Host::new();
        let uploaded = upload(
            &mut host,
            "granary_demo-1.0-py3-none-any.whl",
            &wheel(),
            "1.0",
        );
        let outcome = host
            .run(|| PythonPlugin::handle(&uploaded, Body::empty()))
            .unwrap();
        let unit = &outcome.add_units[0];
        host.stored_unit(
            &unit.content_type,
            &unit.natural_key,
            &unit.metadata,
            &[
                (&unit.artifacts[0].relative_path, &wheel()),
                (&unit.artifacts[1].relative_path, METADATA),
            ],
        );
        let mut request = request("GET", path);
        request.headers.push(("accept".into(), accept.into()));
        let response = host
            .run(|| PythonPlugin::handle(&request, Body::empty()))
            .unwrap()
            .response;
        let body = body_bytes(&response.body).map(|b| String::from_utf8_lossy(b).into_owned());
        (response.status, response.headers, body.unwrap_or_default())
    }

    #[test]
    fn project_pages_announce_hashes_and_metadata_in_both_formats() {
        let (status, headers, json) = page(
            "application/vnd.pypi.simple.v1+json",
            "simple/granary-demo/",
        );
        assert_eq!(status, 200);
        assert!(headers.contains(&(
            "content-type".into(),
            "application/vnd.pypi.simple.v1+json".into()
        )));
        let json: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(json["meta"]["api-version"], "1.1");
        assert_eq!(json["versions"], serde_json::json!(["1.0"]));
        let file = &json["files"][0];
        assert_eq!(
            file["url"],
            "../../packages/granary-demo/granary_demo-1.0-py3-none-any.whl"
        );
        assert_eq!(file["requires-python"], ">=3.8");
        assert!(file["core-metadata"]["sha256"].is_string());
        let (_, _, html) = page("text/html", "simple/granary-demo/");
        assert!(html.contains("data-core-metadata=\"sha256="), "{html}");
        assert!(html.contains("data-requires-python=\"&gt;=3.8\""), "{html}");
    }

    #[test]
    fn non_normalized_names_redirect() {
        let (status, headers, _) = page("*/*", "simple/Granary_Demo/");
        assert_eq!(status, 301);
        assert!(headers.contains(&(
            "location".into(),
            "http://localhost/pulp/content/demo/simple/granary-demo/".into()
        )));
    }

    /// `request` on a distribution with an on-demand remote at `http://up/`.
    fn pull_through(mut request: HttpRequest) -> HttpRequest {
        if let Some(distribution) = request.distribution.as_mut() {
            distribution.remote = Some(RemoteConfig {
                url: "http://up/".into(),
                policy: DownloadPolicy::OnDemand,
                extra: "{}".into(),
            });
        }
        request
    }

    #[test]
    fn pull_through_asks_the_host_to_fetch_an_uncached_file_once() {
        let mut host = Host::new();
        host.http_response(
            "http://up/simple/granary-demo/",
            200,
            b"<a href=\"../../f/granary_demo-1.0.tar.gz#sha256=ab12\">granary_demo-1.0.tar.gz</a>",
        );
        let request = pull_through(request(
            "GET",
            "packages/granary-demo/granary_demo-1.0.tar.gz",
        ));
        let response = host
            .run(|| PythonPlugin::handle(&request, Body::empty()))
            .unwrap()
            .response;
        let HttpBody::FetchUpstream(file) = response.body else {
            panic!("not a fetch-upstream: {response:?}")
        };
        assert_eq!(file.relative_path, "granary-demo/granary_demo-1.0.tar.gz");
        assert_eq!(
            file.unit.artifacts[0].url.as_deref(),
            Some("http://up/f/granary_demo-1.0.tar.gz")
        );
        assert_eq!(file.unit.artifacts[0].sha256.as_deref(), Some("ab12"));
    }

    #[test]
    fn a_pull_through_index_lists_what_it_stores_not_the_upstream_index() {
        let mut host = Host::new();
        host.http_response(
            "http://up/simple/",
            200,
            b"<a href=\"elsewhere/\">elsewhere</a>",
        );
        host.stored_unit(
            "python",
            "{}",
            r#"{"name": "granary-demo"}"#,
            &[("granary-demo/granary_demo-1.0-py3-none-any.whl", b"wheel")],
        );
        let request = pull_through(request("GET", "simple/"));
        let response = host
            .run(|| PythonPlugin::handle(&request, Body::empty()))
            .unwrap()
            .response;
        let HttpBody::Bytes(page) = response.body else {
            panic!("not a page: {response:?}")
        };
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains("granary-demo"), "{page}");
        assert!(!page.contains("elsewhere"), "{page}");
    }

    #[test]
    fn sync_reads_only_the_included_projects() {
        let mut host = Host::new();
        host.http_response(
            "http://up/simple/granary-dep/",
            200,
            b"<a href=\"granary_dep-0.1.tar.gz#sha256=01\">granary_dep-0.1.tar.gz</a>\n\
              <a href=\"granary_dep-0.2.tar.gz#sha256=02\" data-dist-info-metadata=\"sha256=0m\">granary_dep-0.2.tar.gz</a>\n\
              <a href=\"granary_dep-0.3b1.tar.gz#sha256=03\">granary_dep-0.3b1.tar.gz</a>",
        );
        let remote = RemoteConfig {
            url: "http://up".into(),
            policy: DownloadPolicy::Immediate,
            extra: r#"{"includes":["granary-dep>=0.2"]}"#.into(),
        };
        host.run(|| PythonPlugin::sync(&remote)).unwrap();
        assert_eq!(host.requests, ["GET http://up/simple/granary-dep/"]);
        let [unit] = host.emitted.as_slice() else {
            panic!("one unit: {:?}", host.emitted)
        };
        assert_eq!(
            unit.natural_key,
            r#"{"filename":"granary_dep-0.2.tar.gz","sha256":"02"}"#
        );
        assert_eq!(
            unit.artifacts[1].url.as_deref(),
            Some("http://up/simple/granary-dep/granary_dep-0.2.tar.gz.metadata")
        );
    }
}
