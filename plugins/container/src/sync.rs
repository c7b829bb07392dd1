//! Sync from an upstream registry (pulp_container's remote): the tags of `upstream_name` at the
//! remote's URL, filtered by `include_tags` and `exclude_tags`, and the manifests they name (an
//! index's manifests too) read and kept; the config and layer blobs are declared for the host to
//! download now (`immediate`) or at first pull (`on_demand`, `streamed`). Registries that ask
//! for a Bearer token get one from the host, which answers their challenge for every request.

use std::collections::BTreeSet;

use granary_sdk::sync::Emitter;
use granary_sdk::{
    ArtifactDeclaration, PluginError, RemoteConfig, UnitDeclaration, http, json, log, progress,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::{BLOB, MAX_MANIFEST, TAG};

/// JSON Schema of the remote fields (`plugin-info.remote-fields`), pulp_container's names.
pub const REMOTE_FIELDS: &str = r#"{"type":"object","additionalProperties":false,"required":["upstream_name"],"properties":{"upstream_name":{"type":"string","description":"Name of the repository at the upstream registry, e.g. library/alpine"},"include_tags":{"type":"array","items":{"type":"string"},"description":"Tags to sync, as patterns with * and ?; none syncs every tag"},"exclude_tags":{"type":"array","items":{"type":"string"},"description":"Tags not to sync, as patterns with * and ?"}}}"#;

/// The manifest media types a sync asks for: indexes and image manifests, OCI and Docker's.
pub const ACCEPTED_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Largest tag list page read.
const MAX_TAG_PAGE: usize = 16 * 1024 * 1024;

/// Tags asked for per page.
const TAG_PAGE: u32 = 1000;

/// How deep indexes may nest below a tag's (OCI allows indexes of indexes).
const MAX_INDEX_DEPTH: usize = 4;

/// The remote's registry fields.
#[derive(Debug, PartialEq)]
struct Fields {
    upstream_name: String,
    include_tags: Vec<String>,
    exclude_tags: Vec<String>,
}

impl Fields {
    fn parse(extra: &str) -> Result<Fields, PluginError> {
        let extra: Value = serde_json::from_str(extra).unwrap_or(Value::Null);
        let upstream_name = extra["upstream_name"]
            .as_str()
            .map(|name| name.trim_matches('/').to_owned())
            .filter(|name| !name.is_empty())
            .ok_or_else(|| {
                PluginError::field(
                    "upstream_name",
                    "a container remote needs its upstream_name",
                )
            })?;
        let patterns = |field: &str| -> Vec<String> {
            extra[field]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|pattern| pattern.as_str().map(str::to_owned))
                .collect()
        };
        Ok(Fields {
            upstream_name,
            include_tags: patterns("include_tags"),
            exclude_tags: patterns("exclude_tags"),
        })
    }

    /// Whether the filters keep `tag`.
    fn wants(&self, tag: &str) -> bool {
        let matching = |patterns: &[String]| patterns.iter().any(|p| glob_matches(p, tag));
        (self.include_tags.is_empty() || matching(&self.include_tags))
            && !matching(&self.exclude_tags)
    }
}

/// Whether `text` matches `pattern`, where `*` is any run of characters and `?` any one
/// (Pulp's tag filters, fnmatch without brackets).
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    // The classic two-pointer match with one star to backtrack to: linear, no recursion.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Syncs the remote's repository: every wanted tag, its manifests and blobs.
pub fn sync(remote: &RemoteConfig) -> Result<(), PluginError> {
    let fields = Fields::parse(&remote.extra)?;
    let origin = remote.url.trim_end_matches('/');
    let repository = format!("{origin}/v2/{}", fields.upstream_name);
    let tags: Vec<String> = tag_list(origin, &repository)?
        .into_iter()
        .filter(|tag| fields.wants(tag))
        .collect();
    let total = tags.len() as u64;
    let mut sync = Sync {
        repository,
        emitter: Emitter::new(),
        seen: BTreeSet::new(),
    };
    for (done, tag) in tags.iter().enumerate() {
        progress::report(
            "sync.processing.tag",
            "Processing Tags",
            done as u64,
            Some(total),
        );
        let Some(digest) = sync.manifest(tag, None)? else {
            continue;
        };
        let pair = [("name", tag.as_str()), ("manifest", digest.as_str())];
        sync.emitter.emit(UnitDeclaration {
            content_type: TAG.into(),
            natural_key: json::string_object(pair),
            metadata: json::string_object(pair),
            artifacts: Vec::new(),
        })?;
    }
    progress::report("sync.processing.tag", "Processing Tags", total, Some(total));
    sync.emitter.finish()?;
    Ok(())
}

/// Every tag of the upstream repository, page after page (`Link: <…>; rel="next"`).
fn tag_list(origin: &str, repository: &str) -> Result<Vec<String>, PluginError> {
    let mut tags = Vec::new();
    let mut next = Some(format!("{repository}/tags/list?n={TAG_PAGE}"));
    while let Some(url) = next.take() {
        let response = http::get(&url, &[("accept", "application/json")])?;
        if !response.is_success() {
            return Err(PluginError::new(format!(
                "listing the tags at {url} failed: HTTP {}",
                response.status()
            )));
        }
        next = response
            .header("link")
            .and_then(|link| next_link(&link))
            .map(|path| match path.starts_with('/') {
                true => format!("{origin}{path}"),
                false => path,
            });
        let page: Value = serde_json::from_slice(&response.read_to_end(MAX_TAG_PAGE)?)
            .map_err(|error| PluginError::new(format!("the tag list at {url}: {error}")))?;
        let before = tags.len();
        tags.extend(
            page["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|tag| tag.as_str().map(str::to_owned)),
        );
        // A registry that links onwards without answering more would loop forever.
        if tags.len() == before {
            next = None;
        }
    }
    Ok(tags)
}

/// The target of a `Link` header's `rel="next"` entry.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|entry| {
        let (target, parameters) = entry.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        parameters
            .split(';')
            .any(|parameter| {
                let parameter = parameter.trim().replace(' ', "");
                parameter == "rel=\"next\"" || parameter == "rel=next"
            })
            .then(|| target.to_owned())
    })
}

/// One sync in progress: what it declared so far.
struct Sync {
    /// `<remote url>/v2/<upstream_name>`.
    repository: String,
    emitter: Emitter,
    /// Digests of the manifests and blobs declared already.
    seen: BTreeSet<String>,
}

impl Sync {
    /// Reads the manifest `reference` names, keeps it, and declares it with what it names (an
    /// index's manifests, an image's config and layers). `depth` is none for a tag's manifest
    /// and the nesting of an index's manifest below it. Returns its digest; none for a manifest
    /// a tag names in a format not synced (Docker's schema 1), which is skipped with a warning.
    fn manifest(
        &mut self,
        reference: &str,
        depth: Option<usize>,
    ) -> Result<Option<String>, PluginError> {
        let tagged = depth.is_none();
        let url = format!("{}/manifests/{reference}", self.repository);
        let response = http::get(&url, &[("accept", ACCEPTED_MANIFESTS)])?;
        if !response.is_success() {
            return Err(PluginError::new(format!(
                "fetching the manifest {url} failed: HTTP {}",
                response.status()
            )));
        }
        let announced = response.header("docker-content-digest");
        let content_type = response.header("content-type");
        let bytes = response.read_to_end(MAX_MANIFEST)?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        let claimed = announced.as_deref().or((!tagged).then_some(reference));
        if let Some(claimed) = claimed.filter(|claimed| *claimed != digest) {
            return Err(PluginError::new(format!(
                "the manifest at {url} is not {claimed}: its bytes hash to {digest}"
            )));
        }
        let manifest: Value = serde_json::from_slice(&bytes)
            .map_err(|error| PluginError::new(format!("the manifest at {url}: {error}")))?;
        if manifest["schemaVersion"].as_u64() == Some(1) {
            log::warn(format!(
                "skipping {url}: Docker schema 1 manifests are not synced"
            ));
            return Ok(None);
        }
        if !self.seen.insert(digest.clone()) {
            return Ok(Some(digest));
        }
        let media_type = manifest["mediaType"]
            .as_str()
            .map(str::to_owned)
            .or(content_type.map(|value| {
                value
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            }))
            .unwrap_or_else(|| crate::OCI_MANIFEST.into());
        if let Some(children) = manifest["manifests"].as_array() {
            let depth = depth.map_or(1, |depth| depth + 1);
            // Indexes may name indexes; an upstream nesting them without end would exhaust the
            // guest's stack.
            if depth > MAX_INDEX_DEPTH {
                return Err(PluginError::new(format!(
                    "the index at {url} nests indexes more than {MAX_INDEX_DEPTH} deep"
                )));
            }
            for child in children {
                let child = descriptor_digest(child, &url)?;
                if self.manifest(&child, Some(depth))?.is_none() {
                    return Err(PluginError::new(format!(
                        "the index at {url} names {child}, a manifest in a format not synced"
                    )));
                }
            }
        } else {
            let config = manifest.get("config").into_iter();
            let layers = manifest["layers"].as_array().into_iter().flatten();
            for descriptor in config.chain(layers) {
                // Foreign layers (Windows base images) live elsewhere and are not distributed.
                if descriptor.get("urls").is_some() {
                    continue;
                }
                self.blob(descriptor, &url)?;
            }
        }
        let stored = crate::store_manifest(&bytes, &digest)?;
        self.emitter.emit(crate::manifest_unit(
            &manifest,
            &digest,
            &media_type,
            &stored,
        ))?;
        Ok(Some(digest))
    }

    /// Declares the blob a manifest's `descriptor` names, to be fetched from the upstream.
    fn blob(&mut self, descriptor: &Value, manifest_url: &str) -> Result<(), PluginError> {
        let digest = descriptor_digest(descriptor, manifest_url)?;
        if !self.seen.insert(digest.clone()) {
            return Ok(());
        }
        let hex = digest.trim_start_matches("sha256:").to_owned();
        let key = [("digest", digest.as_str())];
        self.emitter.emit(UnitDeclaration {
            content_type: BLOB.into(),
            natural_key: json::string_object(key),
            metadata: json::string_object(key),
            artifacts: vec![ArtifactDeclaration {
                relative_path: format!("blobs/{hex}"),
                url: Some(format!("{}/blobs/{digest}", self.repository)),
                size: descriptor["size"].as_u64(),
                sha256: Some(hex),
                sha512: None,
            }],
        })
    }
}

/// The sha256 digest of a descriptor, or why the manifest at `url` cannot be synced.
fn descriptor_digest(descriptor: &Value, url: &str) -> Result<String, PluginError> {
    let digest = descriptor["digest"].as_str().unwrap_or_default();
    match crate::sha256_hex(digest) {
        Ok(hex) if hex.bytes().all(|b| !b.is_ascii_uppercase()) => Ok(digest.to_owned()),
        _ => Err(PluginError::new(format!(
            "the manifest at {url} names {digest:?}, not a sha256 digest"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use granary_sdk::DownloadPolicy;
    use granary_sdk::harness::Host;

    use super::*;

    #[test]
    fn tag_patterns_match_as_fnmatch_does() {
        assert!(glob_matches("v1.*", "v1.2"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("v?", "v1"));
        assert!(!glob_matches("v?", "v12"));
        assert!(glob_matches("*-alpine", "3.19-alpine"));
        assert!(!glob_matches("*-alpine", "3.19-slim"));
        assert!(glob_matches("a*b*c", "aXbYbZc"));
        assert!(!glob_matches("latest", "latest2"));
    }

    #[test]
    fn filters_keep_included_tags_not_excluded() {
        let fields = Fields::parse(
            r#"{"upstream_name":"/library/app/","include_tags":["v*"],"exclude_tags":["*-rc"]}"#,
        )
        .unwrap();
        assert_eq!(fields.upstream_name, "library/app");
        assert!(fields.wants("v1"));
        assert!(!fields.wants("v2-rc"));
        assert!(!fields.wants("latest"));
        let error = Fields::parse("{}").unwrap_err();
        assert_eq!(error.field_name(), Some("upstream_name"));
    }

    #[test]
    fn the_next_page_of_tags_is_linked() {
        assert_eq!(
            next_link(r#"</v2/app/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/app/tags/list?last=b&n=2")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }

    #[test]
    fn a_tag_declares_its_manifest_config_and_layers() {
        let mut host = Host::new();
        let config = b"{}";
        let layer = b"layer";
        let digest = |bytes: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"digest":"{}","size":2}},"layers":[{{"digest":"{}","size":5}},{{"digest":"{}","size":9,"urls":["https://foreign.example/l"]}}]}}"#,
            digest(config),
            digest(layer),
            digest(b"foreign")
        );
        host.http_response(
            "http://up/v2/app/tags/list?n=1000",
            200,
            br#"{"name":"app","tags":["v1","v1-rc","old"]}"#,
        )
        .http_response("http://up/v2/app/manifests/v1", 200, manifest.as_bytes());
        let remote = RemoteConfig {
            url: "http://up/".into(),
            policy: DownloadPolicy::OnDemand,
            extra: r#"{"upstream_name":"app","include_tags":["v*"],"exclude_tags":["*-rc"]}"#
                .into(),
        };
        host.run(|| sync(&remote)).unwrap();
        assert_eq!(
            host.requests,
            [
                "GET http://up/v2/app/tags/list?n=1000",
                "GET http://up/v2/app/manifests/v1"
            ]
        );
        let declared: Vec<(&str, Option<&str>)> = host
            .emitted
            .iter()
            .map(|unit| {
                (
                    unit.content_type.as_str(),
                    unit.artifacts.first().and_then(|file| file.url.as_deref()),
                )
            })
            .collect();
        let config_url = format!("http://up/v2/app/blobs/{}", digest(config));
        let layer_url = format!("http://up/v2/app/blobs/{}", digest(layer));
        assert_eq!(
            declared,
            [
                ("blob", Some(config_url.as_str())),
                ("blob", Some(layer_url.as_str())),
                ("manifest", None),
                ("tag", None),
            ]
        );
        // The manifest's bytes are kept as the plugin read them.
        assert_eq!(host.created[0].sha256, digest(manifest.as_bytes())[7..]);
    }

    #[test]
    fn indexes_nested_without_end_fail_the_sync() {
        let mut host = Host::new();
        let digest = |bytes: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        // An image, then indexes each naming the one before, the top one tagged.
        let mut below = br#"{"schemaVersion":2,"layers":[]}"#.to_vec();
        for _ in 0..=MAX_INDEX_DEPTH {
            host.http_response(
                &format!("http://up/v2/app/manifests/{}", digest(&below)),
                200,
                &below,
            );
            below = format!(
                r#"{{"schemaVersion":2,"manifests":[{{"digest":"{}"}}]}}"#,
                digest(&below)
            )
            .into_bytes();
        }
        host.http_response(
            "http://up/v2/app/tags/list?n=1000",
            200,
            br#"{"tags":["deep"]}"#,
        )
        .http_response("http://up/v2/app/manifests/deep", 200, &below);
        let remote = RemoteConfig {
            url: "http://up".into(),
            policy: DownloadPolicy::Immediate,
            extra: r#"{"upstream_name":"app"}"#.into(),
        };
        let error = host.run(|| sync(&remote)).unwrap_err();
        assert!(
            error.message().contains("nests indexes"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn a_manifest_that_is_not_its_digest_fails_the_sync() {
        let mut host = Host::new();
        let wrong = format!("sha256:{}", "0".repeat(64));
        host.http_response(
            "http://up/v2/app/tags/list?n=1000",
            200,
            br#"{"tags":["v1"]}"#,
        )
        .http_response(
            "http://up/v2/app/manifests/v1",
            200,
            format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{wrong}"}}]}}"#).as_bytes(),
        )
        .http_response(
            &format!("http://up/v2/app/manifests/{wrong}"),
            200,
            br#"{"schemaVersion":2,"layers":[]}"#,
        );
        let remote = RemoteConfig {
            url: "http://up".into(),
            policy: DownloadPolicy::Immediate,
            extra: r#"{"upstream_name":"app"}"#.into(),
        };
        let error = host.run(|| sync(&remote)).unwrap_err();
        assert!(error.message().contains("hash to"), "{}", error.message());
        assert!(host.emitted.is_empty());
    }
}
