//! REST identities. Every object has a `pulp_href`; requests name related objects by href, so
//! hrefs are parsed back here, in one place.
//!
//! # REST names
//! The database knows a plugin's repositories, remotes, publications and distributions by the
//! plugin's *type* (its first content type, `file`), and its units by their content type. A plugin
//! built against WIT 0.2.0 may name its REST collections otherwise (`rest-names`: pulp_python's
//! `repositories/python/python/`, `distributions/python/pypi/`; `content-type-info.endpoint`).
//! The translation happens here and nowhere else: builders turn types into the declared path
//! segments, [`parse`] and [`canonical_path`] (applied to every request before routing) turn
//! segments back into types. Plugins that declare nothing keep `<plugin>/<type>/` and
//! `content/<plugin>/<type>s/`.

use std::collections::BTreeMap;
use std::sync::RwLock;

use crate::plugins::PluginInfo;

/// Prefix of every REST path.
pub const API_ROOT: &str = "/pulp/api/v3/";

/// The REST names a loaded plugin declared. Every process derives the same table from the same
/// loaded plugins, so it is a per-process cache of the plugins' `describe`, not shared state.
static REST_NAMES: RwLock<BTreeMap<String, Names>> = RwLock::new(BTreeMap::new());

/// What one plugin declared.
#[derive(Clone, Debug)]
struct Names {
    /// The type the database uses for the plugin's repositories, remotes, etc.
    type_name: String,
    repository: String,
    remote: String,
    publication: String,
    distribution: String,
    /// Content type → endpoint, for every content type.
    endpoints: BTreeMap<String, String>,
}

/// The REST collections named by `rest-names`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection {
    /// `repositories/`
    Repositories,
    /// `remotes/`
    Remotes,
    /// `publications/`
    Publications,
    /// `distributions/`
    Distributions,
}

impl Collection {
    fn of(segment: &str) -> Option<Collection> {
        Some(match segment {
            "repositories" => Collection::Repositories,
            "remotes" => Collection::Remotes,
            "publications" => Collection::Publications,
            "distributions" => Collection::Distributions,
            _ => return None,
        })
    }
}

impl Names {
    fn segment(&self, collection: Collection) -> &str {
        match collection {
            Collection::Repositories => &self.repository,
            Collection::Remotes => &self.remote,
            Collection::Publications => &self.publication,
            Collection::Distributions => &self.distribution,
        }
    }
}

/// Records the REST names `info` declares (called whenever a plugin is loaded or replaced).
pub fn register(info: &PluginInfo) {
    let custom_endpoint = info.content_types.iter().any(|t| t.endpoint.is_some());
    let mut table = REST_NAMES.write().expect("REST names table");
    let Some(type_name) = info.content_types.first().map(|t| t.name.clone()) else {
        return;
    };
    if info.rest_names.is_none() && !custom_endpoint {
        table.remove(&info.name);
        return;
    }
    let (repository, remote, publication, distribution) = match &info.rest_names {
        Some(names) => (
            names.repository.clone(),
            names.remote.clone(),
            names.publication.clone(),
            names.distribution.clone(),
        ),
        None => (
            type_name.clone(),
            type_name.clone(),
            type_name.clone(),
            type_name.clone(),
        ),
    };
    let endpoints = info
        .content_types
        .iter()
        .map(|t| {
            let endpoint = t.endpoint.clone().unwrap_or_else(|| format!("{}s", t.name));
            (t.name.clone(), endpoint)
        })
        .collect();
    table.insert(
        info.name.clone(),
        Names {
            type_name,
            repository,
            remote,
            publication,
            distribution,
            endpoints,
        },
    );
}

fn names(plugin: &str) -> Option<Names> {
    REST_NAMES
        .read()
        .expect("REST names table")
        .get(plugin)
        .cloned()
}

/// The path segment of `plugin`'s `collection`, for objects of type `type_name`.
fn segment(plugin: &str, collection: Collection, type_name: &str) -> String {
    match names(plugin) {
        Some(names) => names.segment(collection).to_owned(),
        None => type_name.to_owned(),
    }
}

/// The type a path segment of `plugin`'s `collection` stands for; `None` when the plugin declared
/// another segment.
fn type_of(plugin: &str, collection: Collection, segment: &str) -> Option<String> {
    match names(plugin) {
        Some(names) => (names.segment(collection) == segment).then_some(names.type_name),
        None => Some(segment.to_owned()),
    }
}

/// The endpoint segment of a content type (`file` → `files`).
fn endpoint(plugin: &str, content_type: &str) -> String {
    names(plugin)
        .and_then(|names| names.endpoints.get(content_type).cloned())
        .unwrap_or_else(|| format!("{content_type}s"))
}

/// The content type an endpoint segment stands for.
fn content_type_of(plugin: &str, endpoint: &str) -> Option<String> {
    match names(plugin) {
        Some(names) => names
            .endpoints
            .iter()
            .find(|(_, e)| e.as_str() == endpoint)
            .map(|(t, _)| t.clone()),
        None => endpoint.strip_suffix('s').map(str::to_owned),
    }
}

/// The path the API's routes (`<plugin>/<type>/`, `content/<plugin>/<type>s/`) understand for a
/// request path written with declared REST names; `None` when the path needs no translation. A
/// path that uses the type where the plugin declared another name gets a segment no route
/// accepts, so each object has exactly one href.
pub fn canonical_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix(API_ROOT)?;
    let mut parts = rest.splitn(4, '/');
    let (collection, plugin, segment) = (parts.next()?, parts.next()?, parts.next()?);
    let tail = parts.next();
    let names = names(plugin)?;
    let translated = if collection == "content" {
        match content_type_of(plugin, segment) {
            Some(content_type) => format!("{content_type}s"),
            None => "-".to_owned(),
        }
    } else {
        let collection = Collection::of(collection)?;
        if names.segment(collection) == segment {
            names.type_name.clone()
        } else {
            "-".to_owned()
        }
    };
    let collection_name = rest.split('/').next()?;
    Some(match tail {
        Some(tail) => format!("{API_ROOT}{collection_name}/{plugin}/{translated}/{tail}"),
        None => format!("{API_ROOT}{collection_name}/{plugin}/{translated}"),
    })
}

/// `/pulp/api/v3/repositories/<plugin>/<type>/<id>/`
pub fn repository(plugin: &str, type_name: &str, id: &str) -> String {
    let segment = segment(plugin, Collection::Repositories, type_name);
    format!("{API_ROOT}repositories/{plugin}/{segment}/{id}/")
}

/// `<repository href>versions/<n>/`
pub fn version(plugin: &str, type_name: &str, repository_id: &str, number: i64) -> String {
    format!(
        "{}versions/{number}/",
        repository(plugin, type_name, repository_id)
    )
}

/// `/pulp/api/v3/remotes/<plugin>/<type>/<id>/`
pub fn remote(plugin: &str, type_name: &str, id: &str) -> String {
    let segment = segment(plugin, Collection::Remotes, type_name);
    format!("{API_ROOT}remotes/{plugin}/{segment}/{id}/")
}

/// `/pulp/api/v3/publications/<plugin>/<type>/<id>/`
pub fn publication(plugin: &str, type_name: &str, id: &str) -> String {
    let segment = segment(plugin, Collection::Publications, type_name);
    format!("{API_ROOT}publications/{plugin}/{segment}/{id}/")
}

/// `/pulp/api/v3/distributions/<plugin>/<type>/<id>/`
pub fn distribution(plugin: &str, type_name: &str, id: &str) -> String {
    let segment = segment(plugin, Collection::Distributions, type_name);
    format!("{API_ROOT}distributions/{plugin}/{segment}/{id}/")
}

/// `/pulp/api/v3/content/<plugin>/<endpoint>/` (pulp_file's `content/file/files/`).
pub fn content_list(plugin: &str, type_name: &str) -> String {
    let endpoint = endpoint(plugin, type_name);
    format!("{API_ROOT}content/{plugin}/{endpoint}/")
}

/// `/pulp/api/v3/content/<plugin>/<type>s/<id>/`
pub fn content(plugin: &str, type_name: &str, id: &str) -> String {
    format!("{}{id}/", content_list(plugin, type_name))
}

/// `/pulp/api/v3/artifacts/<id>/`
pub fn artifact(id: &str) -> String {
    format!("{API_ROOT}artifacts/{id}/")
}

/// `/pulp/api/v3/tasks/<id>/`
pub fn task(id: &str) -> String {
    format!("{API_ROOT}tasks/{id}/")
}

/// An href taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Href {
    /// A repository.
    Repository {
        plugin: String,
        type_name: String,
        id: String,
    },
    /// A version of a repository.
    Version {
        plugin: String,
        type_name: String,
        id: String,
        number: i64,
    },
    /// A remote.
    Remote {
        plugin: String,
        type_name: String,
        id: String,
    },
    /// A publication.
    Publication {
        plugin: String,
        type_name: String,
        id: String,
    },
    /// A distribution.
    Distribution {
        plugin: String,
        type_name: String,
        id: String,
    },
    /// A content unit (`type_name` is the content type, not its plural).
    Content {
        plugin: String,
        type_name: String,
        id: String,
    },
    /// An artifact.
    Artifact { id: String },
    /// A task.
    Task { id: String },
}

/// Parses an href (absolute URLs are accepted too: their path is used).
pub fn parse(href: &str) -> Option<Href> {
    let path = match href.find(API_ROOT) {
        Some(start) => &href[start + API_ROOT.len()..],
        None => return None,
    };
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let owned = |i: usize| parts[i].to_string();
    let valid_id = |s: &str| uuid::Uuid::parse_str(s).is_ok();
    match parts.as_slice() {
        ["repositories", plugin, segment, id] if valid_id(id) => Some(Href::Repository {
            plugin: owned(1),
            type_name: type_of(plugin, Collection::Repositories, segment)?,
            id: owned(3),
        }),
        ["repositories", plugin, segment, id, "versions", number] if valid_id(id) => {
            Some(Href::Version {
                plugin: owned(1),
                type_name: type_of(plugin, Collection::Repositories, segment)?,
                id: owned(3),
                number: number.parse().ok()?,
            })
        }
        ["remotes", plugin, segment, id] if valid_id(id) => Some(Href::Remote {
            plugin: owned(1),
            type_name: type_of(plugin, Collection::Remotes, segment)?,
            id: owned(3),
        }),
        ["publications", plugin, segment, id] if valid_id(id) => Some(Href::Publication {
            plugin: owned(1),
            type_name: type_of(plugin, Collection::Publications, segment)?,
            id: owned(3),
        }),
        ["distributions", plugin, segment, id] if valid_id(id) => Some(Href::Distribution {
            plugin: owned(1),
            type_name: type_of(plugin, Collection::Distributions, segment)?,
            id: owned(3),
        }),
        ["content", plugin, endpoint, id] if valid_id(id) => Some(Href::Content {
            plugin: owned(1),
            type_name: content_type_of(plugin, endpoint)?,
            id: owned(3),
        }),
        ["artifacts", id] if valid_id(id) => Some(Href::Artifact { id: owned(1) }),
        ["tasks", id] if valid_id(id) => Some(Href::Task { id: owned(1) }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_round_trip() {
        let id = "8f0c2d9e-5b1a-4c3e-9d2f-0a1b2c3d4e5f";
        assert_eq!(
            parse(&version("file", "file", id, 3)),
            Some(Href::Version {
                plugin: "file".into(),
                type_name: "file".into(),
                id: id.into(),
                number: 3
            })
        );
        assert_eq!(
            parse(&content("file", "file", id)),
            Some(Href::Content {
                plugin: "file".into(),
                type_name: "file".into(),
                id: id.into()
            })
        );
        assert_eq!(
            parse(&format!("http://host{}", task(id))),
            Some(Href::Task { id: id.into() })
        );
        assert_eq!(
            parse("/pulp/api/v3/repositories/file/file/not-a-uuid/"),
            None
        );
    }

    #[test]
    fn declared_rest_names_are_used_both_ways() {
        use crate::plugins::{ContentTypeInfo, RestNames};
        let id = "8f0c2d9e-5b1a-4c3e-9d2f-0a1b2c3d4e5f";
        register(&PluginInfo {
            name: "names_demo".into(),
            version: "1.0.0".into(),
            wit_version: "0.2.0".into(),
            content_types: vec![ContentTypeInfo {
                name: "package".into(),
                description: "A package".into(),
                natural_key_fields: vec!["name".into()],
                endpoint: Some("packages".into()),
            }],
            capabilities: Vec::new(),
            rest_names: Some(RestNames {
                repository: "python".into(),
                remote: "python".into(),
                publication: "pypi".into(),
                distribution: "pypi".into(),
            }),
            remote_fields: "{}".into(),
            distribution_fields: "{}".into(),
        });
        let href = distribution("names_demo", "package", id);
        assert_eq!(
            href,
            format!("{API_ROOT}distributions/names_demo/pypi/{id}/")
        );
        assert_eq!(
            parse(&href),
            Some(Href::Distribution {
                plugin: "names_demo".into(),
                type_name: "package".into(),
                id: id.into()
            })
        );
        assert_eq!(
            repository("names_demo", "package", id),
            format!("{API_ROOT}repositories/names_demo/python/{id}/")
        );
        assert_eq!(
            content_list("names_demo", "package"),
            format!("{API_ROOT}content/names_demo/packages/")
        );
        // Requests are routed by the type; the type itself is not a second name.
        assert_eq!(
            canonical_path(&format!("{API_ROOT}publications/names_demo/pypi/{id}/")),
            Some(format!("{API_ROOT}publications/names_demo/package/{id}/"))
        );
        assert_eq!(
            canonical_path(&format!("{API_ROOT}repositories/names_demo/package/")),
            Some(format!("{API_ROOT}repositories/names_demo/-/"))
        );
        assert_eq!(
            canonical_path(&format!("{API_ROOT}repositories/file/file/")),
            None
        );
    }
}
