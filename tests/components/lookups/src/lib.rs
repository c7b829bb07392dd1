//! A plugin on WIT 0.3.0 whose routes answer from the host's index of unit fields, for the host's
//! tests. Never install it anywhere else.
//!
//! Content type `entry`: an uploaded file at a `relative_path` of at least two segments, indexed
//! by `group` (the first segment) and `digest` (`sha256:<hex>`). Its `size` is kept but not
//! indexed. Routes under a distribution (`/lookups/<base_path>/…`), each answering one line per
//! item:
//!
//! - `groups/?last=<value>&n=<count>`: the distinct groups of the served version, after `last`,
//!   at most `n` (`_catalog`'s paging);
//! - `digests/<digest>`: the relative paths of the entries with that digest;
//! - `sizes/`: the distinct sizes, which the plugin does not index: the host refuses;
//! - `DELETE entries/<relative_path>`: removes that entry from the repository (`remove-units`).

use granary_sdk::{
    ArtifactDeclaration, ArtifactRef, Body, ContentTypeInfo, HandleOutcome, HttpRequest,
    HttpResponse, Plugin, PluginError, PluginInfo, UnitDeclaration, UnitRef, content, json,
};

/// The content type.
const ENTRY: &str = "entry";

struct Lookups;

impl Plugin for Lookups {
    fn describe() -> PluginInfo {
        let entry = ContentTypeInfo::new(ENTRY, "A file filed under a group", &["relative_path"])
            .with_endpoint("entries")
            .with_indexed_fields(&["group", "digest"]);
        PluginInfo::new("lookups", env!("CARGO_PKG_VERSION"), vec![entry])
            .with_rest_names("lookups", "lookups", "lookups", "lookups")
    }

    fn parse_upload(
        upload: &ArtifactRef,
        relative_path: Option<&str>,
    ) -> Result<UnitDeclaration, PluginError> {
        let relative_path = relative_path
            .ok_or_else(|| PluginError::field("relative_path", "an entry needs a relative_path"))?;
        let Some((group, _)) = relative_path.split_once('/') else {
            return Err(PluginError::field(
                "relative_path",
                "an entry's relative_path is <group>/<name>",
            ));
        };
        let digest = format!("sha256:{}", upload.sha256);
        let size = upload.size.to_string();
        Ok(UnitDeclaration {
            content_type: ENTRY.into(),
            natural_key: json::string_object([("relative_path", relative_path)]),
            metadata: json::string_object([
                ("group", group),
                ("digest", digest.as_str()),
                ("size", size.as_str()),
            ]),
            artifacts: vec![ArtifactDeclaration {
                relative_path: relative_path.to_owned(),
                url: None,
                size: Some(upload.size),
                sha256: Some(upload.sha256.clone()),
                sha512: None,
            }],
        })
    }

    fn handle(request: &HttpRequest, _body: Body) -> Result<HandleOutcome, PluginError> {
        if request.method == "DELETE"
            && let Some(relative_path) = request.path.strip_prefix("entries/")
        {
            let entry = UnitRef {
                content_type: ENTRY.into(),
                natural_key: json::string_object([("relative_path", relative_path)]),
            };
            return Ok(
                HandleOutcome::respond(HttpResponse::bytes(204, Vec::new())).removing(vec![entry])
            );
        }
        let lines: Vec<String> = if request.path == "groups/" {
            let mut groups = content::distinct_values(ENTRY, "group");
            if let Some(last) = request.query_param("last") {
                groups = groups.after(&last);
            }
            let count = request
                .query_param("n")
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            groups.take(count).collect::<Result<_, _>>()?
        } else if let Some(digest) = request.path.strip_prefix("digests/") {
            content::units_with_value(ENTRY, "digest", digest)
                .map(|unit| unit.map(|unit| relative_path(&unit.natural_key)))
                .collect::<Result<_, _>>()?
        } else if request.path == "sizes/" {
            content::distinct_values(ENTRY, "size").collect::<Result<_, _>>()?
        } else {
            return Ok(HttpResponse::not_found().into());
        };
        let mut body = lines.join("\n");
        body.push('\n');
        Ok(HttpResponse::ok("text/plain", body).into())
    }
}

/// The `relative_path` of a natural key `{"relative_path":"…"}` (plain paths: no escapes).
fn relative_path(natural_key: &str) -> String {
    natural_key
        .trim_start_matches("{\"relative_path\":\"")
        .trim_end_matches("\"}")
        .to_owned()
}

granary_sdk::register_plugin!(Lookups);

#[cfg(test)]
mod tests {
    use granary_sdk::harness::{Host, body_bytes, request};

    use super::*;

    fn entry(host: &mut Host, path: &str, bytes: &[u8]) {
        let upload = host.artifact(bytes);
        let unit = host
            .run(|| Lookups::parse_upload(&upload, Some(path)))
            .unwrap();
        host.stored_unit(
            &unit.content_type,
            &unit.natural_key,
            &unit.metadata,
            &[(path, bytes)],
        );
    }

    fn answer(host: &mut Host, path: &str, query: Option<&str>) -> (u16, String) {
        let mut call = request("GET", path);
        call.query = query.map(str::to_owned);
        let outcome = host.run(|| Lookups::handle(&call, Body::empty()));
        match outcome {
            Ok(outcome) => (
                outcome.response.status,
                String::from_utf8(body_bytes(&outcome.response.body).unwrap().to_vec()).unwrap(),
            ),
            Err(error) => (400, error.message().to_owned()),
        }
    }

    #[test]
    fn groups_page_after_the_last_one_and_digests_find_every_path() {
        let mut host = Host::new();
        entry(&mut host, "b/one.txt", b"same");
        entry(&mut host, "a/two.txt", b"same");
        entry(&mut host, "a/three.txt", b"other");
        assert_eq!(answer(&mut host, "groups/", None), (200, "a\nb\n".into()));
        assert_eq!(
            answer(&mut host, "groups/", Some("last=a")),
            (200, "b\n".into())
        );
        assert_eq!(
            answer(&mut host, "groups/", Some("n=1")),
            (200, "a\n".into())
        );
        let digest = format!("sha256:{}", host.artifact(b"same").sha256);
        let (status, paths) = answer(&mut host, &format!("digests/{digest}"), None);
        assert_eq!(status, 200);
        let mut paths: Vec<&str> = paths.lines().collect();
        paths.sort_unstable();
        assert_eq!(paths, ["a/two.txt", "b/one.txt"]);
    }
}
