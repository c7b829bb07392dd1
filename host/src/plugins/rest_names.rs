//! The REST names of the loaded plugins: the path segments their repositories, remotes,
//! publications, distributions and content types answer at.
//!
//! The database knows a plugin's repositories, remotes, publications and distributions by the
//! plugin's *type* (its first content type, `file`), and its units by their content type. A plugin
//! built against WIT 0.2.0 may name its REST collections otherwise (`rest-names`: pulp_python's
//! `repositories/python/python/`, `distributions/python/pypi/`; `content-type-info.endpoint`).
//! Plugins that declare nothing keep `<plugin>/<type>/` and `content/<plugin>/<type>s/`.
//!
//! The [`PluginRuntime`](super::PluginRuntime) owns the table: loading, replacing or removing a
//! plugin rebuilds it from the plugins loaded then, so a removed plugin's names go with it.
//! Requests are routed by these names (the handlers translate a segment back into a type), and
//! `domain::hrefs` builds and parses hrefs with them.

use std::collections::BTreeMap;

use super::PluginInfo;

/// The REST collections a plugin may name.
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
    /// Every collection.
    pub const ALL: [Collection; 4] = [
        Collection::Repositories,
        Collection::Remotes,
        Collection::Publications,
        Collection::Distributions,
    ];

    /// The collection at segment `path` under `/pulp/api/v3/`, if it is one.
    pub fn from_path(path: &str) -> Option<Collection> {
        Collection::ALL
            .into_iter()
            .find(|collection| collection.path() == path)
    }

    /// Its segment under `/pulp/api/v3/`.
    pub fn path(self) -> &'static str {
        match self {
            Collection::Repositories => "repositories",
            Collection::Remotes => "remotes",
            Collection::Publications => "publications",
            Collection::Distributions => "distributions",
        }
    }
}

/// The REST endpoint of one content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentEndpoint {
    /// The content type's name (`file`).
    pub type_name: String,
    /// Its path segment (`files`).
    pub endpoint: String,
    /// The fields the host indexes (`content-type-info.indexed-fields`): its list filters by
    /// value (`digest`, `digest__in`), as Pulp's content types filter on their key fields.
    pub indexed_fields: Vec<String>,
}

/// What one plugin's objects are called in REST paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginNames {
    /// The plugin's name, the first segment of each path (`repositories/<plugin>/…`).
    pub plugin: String,
    /// The type the database records its repositories, remotes, … under (its first content
    /// type).
    pub type_name: String,
    /// `repositories/<plugin>/<repository>/`
    pub repository: String,
    /// `remotes/<plugin>/<remote>/`
    pub remote: String,
    /// `publications/<plugin>/<publication>/`
    pub publication: String,
    /// `distributions/<plugin>/<distribution>/`
    pub distribution: String,
    /// `repositories/<plugin>/<push repository>/`: the repositories pushes create, recorded
    /// under this segment as their type (pulp_container's `container-push`).
    pub push_repository: Option<String>,
    /// `content/<plugin>/<endpoint>/`, one per content type.
    pub content: Vec<ContentEndpoint>,
}

impl PluginNames {
    /// The names `info` declares, or the defaults; `None` for a plugin without content types
    /// (it has no REST collections).
    pub fn of(info: &PluginInfo) -> Option<PluginNames> {
        let type_name = info.content_types.first()?.name.clone();
        let declared = info.rest_names.as_ref();
        let name = |pick: fn(&super::RestNames) -> &String| {
            declared.map_or_else(|| type_name.clone(), |names| pick(names).clone())
        };
        Some(PluginNames {
            plugin: info.name.clone(),
            repository: name(|names| &names.repository),
            remote: name(|names| &names.remote),
            publication: name(|names| &names.publication),
            distribution: name(|names| &names.distribution),
            push_repository: declared.and_then(|names| names.push_repository.clone()),
            content: info
                .content_types
                .iter()
                .map(|content_type| ContentEndpoint {
                    type_name: content_type.name.clone(),
                    endpoint: content_type
                        .endpoint
                        .clone()
                        .unwrap_or_else(|| format!("{}s", content_type.name)),
                    indexed_fields: content_type.indexed_fields.clone(),
                })
                .collect(),
            type_name,
        })
    }

    /// The type its repositories pushes create are recorded under, if it names one: their
    /// segment.
    pub fn push_type(&self) -> Option<&str> {
        self.push_repository.as_deref()
    }

    /// Whether `segment` of `collection` is its push repositories'.
    pub fn is_push_segment(&self, collection: Collection, segment: &str) -> bool {
        collection == Collection::Repositories && self.push_type() == Some(segment)
    }

    /// The type `segment` of `collection` stands for: `None` when it is not a segment the
    /// plugin answers at (so each object has exactly one href).
    pub fn type_at(&self, collection: Collection, segment: &str) -> Option<String> {
        if self.is_push_segment(collection, segment) {
            return Some(segment.to_owned());
        }
        (self.segment(collection) == segment).then(|| self.type_name.clone())
    }

    /// The segment of one of its collections.
    pub fn segment(&self, collection: Collection) -> &str {
        match collection {
            Collection::Repositories => &self.repository,
            Collection::Remotes => &self.remote,
            Collection::Publications => &self.publication,
            Collection::Distributions => &self.distribution,
        }
    }
}

/// The names of every loaded plugin.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RestNames {
    plugins: BTreeMap<String, PluginNames>,
}

impl RestNames {
    /// The table of these plugins.
    pub fn of<'a>(plugins: impl IntoIterator<Item = &'a PluginInfo>) -> RestNames {
        RestNames {
            plugins: plugins
                .into_iter()
                .filter_map(PluginNames::of)
                .map(|names| (names.plugin.clone(), names))
                .collect(),
        }
    }

    /// Every loaded plugin's names, by plugin name.
    pub fn all(&self) -> impl Iterator<Item = &PluginNames> {
        self.plugins.values()
    }

    /// The names of `plugin`, if it is loaded.
    pub fn plugin(&self, plugin: &str) -> Option<&PluginNames> {
        self.plugins.get(plugin)
    }

    /// The segment of `plugin`'s `collection` for objects of type `type_name`. Objects of a
    /// plugin that is not loaded keep their type.
    pub fn segment(&self, plugin: &str, collection: Collection, type_name: &str) -> String {
        match self.plugin(plugin) {
            Some(names) if names.is_push_segment(collection, type_name) => type_name.to_owned(),
            Some(names) => names.segment(collection).to_owned(),
            None => type_name.to_owned(),
        }
    }

    /// The type a segment of `plugin`'s `collection` stands for: `None` when it is not the
    /// segment the plugin answers at (so each object has exactly one href).
    pub fn type_of(&self, plugin: &str, collection: Collection, segment: &str) -> Option<String> {
        match self.plugin(plugin) {
            Some(names) => names.type_at(collection, segment),
            None => Some(segment.to_owned()),
        }
    }

    /// Whether `segment` of `plugin`'s `collection` is its push repositories' (which REST does
    /// not create, delete, sync or modify).
    pub fn is_push_segment(&self, plugin: &str, collection: Collection, segment: &str) -> bool {
        self.plugin(plugin)
            .is_some_and(|names| names.is_push_segment(collection, segment))
    }

    /// The endpoint segment of a content type (`file` → `files`).
    pub fn endpoint(&self, plugin: &str, content_type: &str) -> String {
        self.plugin(plugin)
            .and_then(|names| {
                names
                    .content
                    .iter()
                    .find(|content| content.type_name == content_type)
                    .map(|content| content.endpoint.clone())
            })
            .unwrap_or_else(|| format!("{content_type}s"))
    }

    /// The content type an endpoint segment stands for.
    pub fn content_type_of(&self, plugin: &str, endpoint: &str) -> Option<String> {
        match self.plugin(plugin) {
            Some(names) => names
                .content
                .iter()
                .find(|content| content.endpoint == endpoint)
                .map(|content| content.type_name.clone()),
            None => endpoint.strip_suffix('s').map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::ContentTypeInfo;

    fn info(name: &str, declared: Option<super::super::RestNames>) -> PluginInfo {
        PluginInfo {
            name: name.into(),
            version: "1.0.0".into(),
            wit_version: "0.2.0".into(),
            content_types: vec![ContentTypeInfo {
                name: "package".into(),
                description: "A package".into(),
                natural_key_fields: vec!["name".into()],
                endpoint: declared.as_ref().map(|_| "packages".into()),
                indexed_fields: Vec::new(),
                repository_key: None,
            }],
            capabilities: Vec::new(),
            rest_names: declared,
            remote_fields: "{}".into(),
            distribution_fields: "{}".into(),
            root: None,
            log_in_paths: Vec::new(),
        }
    }

    #[test]
    fn declared_names_are_used_both_ways_and_the_type_is_not_a_second_name() {
        let names = RestNames::of(&[info(
            "names_demo",
            Some(super::super::RestNames {
                repository: "python".into(),
                remote: "python".into(),
                publication: "pypi".into(),
                distribution: "pypi".into(),
                push_repository: None,
            }),
        )]);
        assert_eq!(
            names.segment("names_demo", Collection::Distributions, "package"),
            "pypi"
        );
        assert_eq!(
            names.type_of("names_demo", Collection::Distributions, "pypi"),
            Some("package".into())
        );
        assert_eq!(
            names.type_of("names_demo", Collection::Repositories, "package"),
            None
        );
        assert_eq!(names.endpoint("names_demo", "package"), "packages");
        assert_eq!(
            names.content_type_of("names_demo", "packages"),
            Some("package".into())
        );
    }

    #[test]
    fn push_repositories_are_a_second_repository_type_at_their_own_segment() {
        let names = RestNames::of(&[info(
            "registry",
            Some(super::super::RestNames {
                repository: "container".into(),
                remote: "container".into(),
                publication: "container".into(),
                distribution: "container".into(),
                push_repository: Some("container-push".into()),
            }),
        )]);
        let repositories = Collection::Repositories;
        assert_eq!(
            names.type_of("registry", repositories, "container-push"),
            Some("container-push".into())
        );
        assert_eq!(
            names.segment("registry", repositories, "container-push"),
            "container-push"
        );
        assert_eq!(
            names.type_of("registry", repositories, "container"),
            Some("package".into())
        );
        assert!(names.is_push_segment("registry", repositories, "container-push"));
        assert!(!names.is_push_segment("registry", repositories, "container"));
        // Only repositories have a push type.
        assert_eq!(
            names.type_of("registry", Collection::Distributions, "container-push"),
            None
        );
    }

    #[test]
    fn plugins_without_declared_names_answer_at_their_type() {
        let names = RestNames::of(&[info("plain", None)]);
        assert_eq!(
            names.segment("plain", Collection::Repositories, "package"),
            "package"
        );
        assert_eq!(names.endpoint("plain", "package"), "packages");
        assert_eq!(
            names.type_of("plain", Collection::Repositories, "python"),
            None
        );
    }

    #[test]
    fn a_plugin_missing_from_the_table_has_no_declared_names() {
        let names = RestNames::default();
        assert_eq!(
            names.type_of("gone", Collection::Remotes, "thing"),
            Some("thing".into())
        );
        assert_eq!(names.endpoint("gone", "thing"), "things");
    }
}
