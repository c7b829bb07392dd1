//! REST identities. Every object has a `pulp_href`; requests name related objects by href, so
//! hrefs are parsed back here, in one place.

/// Prefix of every REST path.
pub const API_ROOT: &str = "/pulp/api/v3/";

/// `/pulp/api/v3/repositories/<plugin>/<type>/<id>/`
pub fn repository(plugin: &str, type_name: &str, id: &str) -> String {
    format!("{API_ROOT}repositories/{plugin}/{type_name}/{id}/")
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
    format!("{API_ROOT}remotes/{plugin}/{type_name}/{id}/")
}

/// `/pulp/api/v3/publications/<plugin>/<type>/<id>/`
pub fn publication(plugin: &str, type_name: &str, id: &str) -> String {
    format!("{API_ROOT}publications/{plugin}/{type_name}/{id}/")
}

/// `/pulp/api/v3/distributions/<plugin>/<type>/<id>/`
pub fn distribution(plugin: &str, type_name: &str, id: &str) -> String {
    format!("{API_ROOT}distributions/{plugin}/{type_name}/{id}/")
}

/// `/pulp/api/v3/content/<plugin>/<type>s/` (pulp_file's `content/file/files/`).
pub fn content_list(plugin: &str, type_name: &str) -> String {
    format!("{API_ROOT}content/{plugin}/{type_name}s/")
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
        ["repositories", _, _, id] if valid_id(id) => Some(Href::Repository {
            plugin: owned(1),
            type_name: owned(2),
            id: owned(3),
        }),
        ["repositories", _, _, id, "versions", number] if valid_id(id) => Some(Href::Version {
            plugin: owned(1),
            type_name: owned(2),
            id: owned(3),
            number: number.parse().ok()?,
        }),
        ["remotes", _, _, id] if valid_id(id) => Some(Href::Remote {
            plugin: owned(1),
            type_name: owned(2),
            id: owned(3),
        }),
        ["publications", _, _, id] if valid_id(id) => Some(Href::Publication {
            plugin: owned(1),
            type_name: owned(2),
            id: owned(3),
        }),
        ["distributions", _, _, id] if valid_id(id) => Some(Href::Distribution {
            plugin: owned(1),
            type_name: owned(2),
            id: owned(3),
        }),
        ["content", _, plural, id] if valid_id(id) => Some(Href::Content {
            plugin: owned(1),
            type_name: plural.strip_suffix('s').unwrap_or(plural).to_string(),
            id: owned(3),
        }),
        ["artifacts", id] if valid_id(id) => Some(Href::Artifact { id: owned(1) }),
        ["tasks", id] if valid_id(id) => Some(Href::Task { id: owned(1) }),
        ["uploads", id] if valid_id(id) => Some(Href::Upload { id: owned(1) }),
        ["users", id] if valid_id(id) => Some(Href::User { id: owned(1) }),
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
}
