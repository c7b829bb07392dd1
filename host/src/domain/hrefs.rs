//! REST identities. Every object has a `pulp_href`; requests name related objects by href, so
//! hrefs are built and parsed back here, in one place.
//!
//! The hrefs of a plugin's objects use the REST names the loaded plugins answer at
//! ([`RestNames`], owned by the plugin runtime): a plugin may name its collections otherwise than
//! its type (pulp_python's `repositories/python/python/`, `distributions/python/pypi/`).

pub use crate::plugins::rest_names::{Collection, RestNames};

/// Prefix of every REST path.
pub const API_ROOT: &str = "/pulp/api/v3/";

/// `/pulp/api/v3/<collection>/<plugin>/<type>/<id>/`, the type written as the plugin names it.
pub fn typed(
    names: &RestNames,
    collection: Collection,
    plugin: &str,
    type_name: &str,
    id: &str,
) -> String {
    let segment = names.segment(plugin, collection, type_name);
    format!("{API_ROOT}{}/{plugin}/{segment}/{id}/", collection.path())
}

/// `/pulp/api/v3/repositories/<plugin>/<type>/<id>/`
pub fn repository(names: &RestNames, plugin: &str, type_name: &str, id: &str) -> String {
    typed(names, Collection::Repositories, plugin, type_name, id)
}

/// `<repository href>versions/<n>/`
pub fn version(
    names: &RestNames,
    plugin: &str,
    type_name: &str,
    repository_id: &str,
    number: i64,
) -> String {
    format!(
        "{}versions/{number}/",
        repository(names, plugin, type_name, repository_id)
    )
}

/// `/pulp/api/v3/remotes/<plugin>/<type>/<id>/`
pub fn remote(names: &RestNames, plugin: &str, type_name: &str, id: &str) -> String {
    typed(names, Collection::Remotes, plugin, type_name, id)
}

/// `/pulp/api/v3/publications/<plugin>/<type>/<id>/`
pub fn publication(names: &RestNames, plugin: &str, type_name: &str, id: &str) -> String {
    typed(names, Collection::Publications, plugin, type_name, id)
}

/// `/pulp/api/v3/distributions/<plugin>/<type>/<id>/`
pub fn distribution(names: &RestNames, plugin: &str, type_name: &str, id: &str) -> String {
    typed(names, Collection::Distributions, plugin, type_name, id)
}

/// `/pulp/api/v3/content/<plugin>/<endpoint>/` (pulp_file's `content/file/files/`).
pub fn content_list(names: &RestNames, plugin: &str, type_name: &str) -> String {
    let endpoint = names.endpoint(plugin, type_name);
    format!("{API_ROOT}content/{plugin}/{endpoint}/")
}

/// `/pulp/api/v3/content/<plugin>/<type>s/<id>/`
pub fn content(names: &RestNames, plugin: &str, type_name: &str, id: &str) -> String {
    format!("{}{id}/", content_list(names, plugin, type_name))
}

/// `/pulp/api/v3/artifacts/<id>/`
pub fn artifact(id: &str) -> String {
    format!("{API_ROOT}artifacts/{id}/")
}

/// `/pulp/api/v3/tasks/<id>/`
/// The endpoint an object's href belongs to, as access policies name it, and the object's id:
/// `/pulp/api/v3/distributions/file/file/<uuid>/` → (`distributions/file/file`, `<uuid>`).
/// `None` for an href that does not end in an id (a repository version).
pub fn endpoint_of(href: &str) -> Option<(&str, &str)> {
    let path = href.strip_prefix(API_ROOT)?.strip_suffix('/')?;
    let (endpoint, id) = path.rsplit_once('/')?;
    uuid::Uuid::parse_str(id).ok()?;
    Some((endpoint, id))
}

pub fn task(id: &str) -> String {
    format!("{API_ROOT}tasks/{id}/")
}

/// `/pulp/api/v3/uploads/<id>/`
pub fn upload(id: &str) -> String {
    format!("{API_ROOT}uploads/{id}/")
}

/// `/pulp/api/v3/users/<id>/`
pub fn user(id: &str) -> String {
    format!("{API_ROOT}users/{id}/")
}

/// `/pulp/api/v3/users/<user id>/tokens/<id>/`
pub fn user_token(user_id: &str, id: &str) -> String {
    format!("{}tokens/{id}/", user(user_id))
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
    /// A chunked upload.
    Upload { id: String },
    /// A user.
    User { id: String },
    /// An exporter (`exporters/core/pulp/` or `exporters/core/filesystem/`).
    Exporter { id: String },
    /// An upstream Pulp (`upstream-pulps/`).
    UpstreamPulp { id: String },
    /// An alternate content source of a plugin (`acs/<plugin>/<repository type>/`).
    AlternateContentSource { plugin: String, id: String },
}

impl Href {
    /// The href of an object of a plugin-typed `collection`.
    pub fn typed(collection: Collection, plugin: String, type_name: String, id: String) -> Href {
        // The four variants have the same fields; each arm names only its variant.
        macro_rules! variant {
            ($name:ident) => {
                Href::$name {
                    plugin,
                    type_name,
                    id,
                }
            };
        }
        match collection {
            Collection::Repositories => variant!(Repository),
            Collection::Remotes => variant!(Remote),
            Collection::Publications => variant!(Publication),
            Collection::Distributions => variant!(Distribution),
        }
    }
}

/// The id of the object an href names, whatever REST names its plugin uses; `None` for what is
/// not an object's href (repository versions have no id of their own in their href).
pub fn object_id(href: &str) -> Option<String> {
    let start = href.find(API_ROOT)? + API_ROOT.len();
    let parts: Vec<&str> = href[start..].trim_end_matches('/').split('/').collect();
    let id = *parts.last()?;
    let named = matches!(
        parts.as_slice(),
        [
            "repositories" | "remotes" | "publications" | "distributions" | "content" | "acs",
            _,
            _,
            _
        ] | [
            "artifacts" | "tasks" | "uploads" | "users" | "workers" | "task-groups",
            _
        ]
    );
    (named && uuid::Uuid::parse_str(id).is_ok()).then(|| id.to_owned())
}

/// Parses an href (absolute URLs are accepted too: their path is used).
pub fn parse(names: &RestNames, href: &str) -> Option<Href> {
    let path = match href.find(API_ROOT) {
        Some(start) => &href[start + API_ROOT.len()..],
        None => return None,
    };
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let owned = |i: usize| parts[i].to_string();
    let valid_id = |s: &str| uuid::Uuid::parse_str(s).is_ok();
    match parts.as_slice() {
        ["repositories", plugin, segment, id, "versions", number] if valid_id(id) => {
            Some(Href::Version {
                plugin: owned(1),
                type_name: names.type_of(plugin, Collection::Repositories, segment)?,
                id: owned(3),
                number: number.parse().ok()?,
            })
        }
        ["exporters", "core", "pulp" | "filesystem", id] if valid_id(id) => {
            Some(Href::Exporter { id: owned(3) })
        }
        ["acs", plugin, segment, id] if valid_id(id) => {
            names.type_of(plugin, Collection::Repositories, segment)?;
            Some(Href::AlternateContentSource {
                plugin: owned(1),
                id: owned(3),
            })
        }
        ["content", plugin, endpoint, id] if valid_id(id) => Some(Href::Content {
            plugin: owned(1),
            type_name: names.content_type_of(plugin, endpoint)?,
            id: owned(3),
        }),
        [collection, plugin, segment, id] if valid_id(id) => {
            let collection = Collection::from_path(collection)?;
            let type_name = names.type_of(plugin, collection, segment)?;
            Some(Href::typed(collection, owned(1), type_name, owned(3)))
        }
        ["artifacts", id] if valid_id(id) => Some(Href::Artifact { id: owned(1) }),
        ["tasks", id] if valid_id(id) => Some(Href::Task { id: owned(1) }),
        ["uploads", id] if valid_id(id) => Some(Href::Upload { id: owned(1) }),
        ["users", id] if valid_id(id) => Some(Href::User { id: owned(1) }),
        ["upstream-pulps", id] if valid_id(id) => Some(Href::UpstreamPulp { id: owned(1) }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_round_trip() {
        let names = RestNames::default();
        let id = "8f0c2d9e-5b1a-4c3e-9d2f-0a1b2c3d4e5f";
        assert_eq!(
            parse(&names, &version(&names, "file", "file", id, 3)),
            Some(Href::Version {
                plugin: "file".into(),
                type_name: "file".into(),
                id: id.into(),
                number: 3
            })
        );
        assert_eq!(
            parse(&names, &content(&names, "file", "file", id)),
            Some(Href::Content {
                plugin: "file".into(),
                type_name: "file".into(),
                id: id.into()
            })
        );
        for collection in Collection::ALL {
            assert_eq!(
                parse(&names, &typed(&names, collection, "file", "file", id)),
                Some(Href::typed(
                    collection,
                    "file".into(),
                    "file".into(),
                    id.into()
                ))
            );
        }
        assert!(matches!(
            parse(&names, &distribution(&names, "file", "file", id)),
            Some(Href::Distribution { .. })
        ));
        assert_eq!(
            parse(&names, &format!("/pulp/api/v3/nowhere/file/file/{id}/")),
            None
        );
        assert_eq!(
            parse(&names, &format!("http://host{}", task(id))),
            Some(Href::Task { id: id.into() })
        );
        assert_eq!(
            parse(&names, "/pulp/api/v3/repositories/file/file/not-a-uuid/"),
            None
        );
        for kind in ["pulp", "filesystem"] {
            assert_eq!(
                parse(&names, &format!("/pulp/api/v3/exporters/core/{kind}/{id}/")),
                Some(Href::Exporter { id: id.into() })
            );
        }
        assert_eq!(
            parse(&names, &format!("/pulp/api/v3/exporters/core/other/{id}/")),
            None
        );
        assert_eq!(
            parse(&names, &format!("/pulp/api/v3/upstream-pulps/{id}/")),
            Some(Href::UpstreamPulp { id: id.into() })
        );
        assert_eq!(
            object_id(&format!("/pulp/api/v3/distributions/python/pypi/{id}/")),
            Some(id.to_owned())
        );
        assert_eq!(object_id(&version(&names, "file", "file", id, 3)), None);
        assert_eq!(object_id("/pulp/api/v3/nowhere/"), None);
    }
}
