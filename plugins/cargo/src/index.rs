//! Cargo's sparse index: where a crate's file lives, and the entries in it.
//!
//! An index file holds one JSON line per version of a crate, in cargo's format (`name`, `vers`,
//! `deps`, `cksum`, `features`, `features2`, `yanked`, `links`, `rust_version`, `v`). Its path
//! is derived from the lower-cased name: `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd…`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

/// Longest crate name crates.io accepts.
const MAX_NAME: usize = 64;

/// Checks a crate name as crates.io does: ASCII letters, digits, `-` and `_`, starting with a
/// letter, at most 64 characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let first = name.chars().next();
    if !first.is_some_and(|c| c.is_ascii_alphabetic()) {
        return Err(format!(
            "invalid crate name `{name}`: it must start with an ASCII letter"
        ));
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "invalid crate name `{name}`: it is longer than {MAX_NAME} characters"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "invalid crate name `{name}`: `{bad}` is not allowed (ASCII letters, digits, `-` and `_` are)"
        ));
    }
    Ok(())
}

/// The path of the index file of the crate whose lower-cased name is `name`.
pub fn index_path(name: &str) -> String {
    match name.len() {
        1 => format!("1/{name}"),
        2 => format!("2/{name}"),
        3 => format!("3/{}/{name}", &name[..1]),
        _ => format!("{}/{}/{name}", &name[..2], &name[2..4]),
    }
}

/// The lower-cased crate name whose index file `path` is, when it is one.
pub fn name_of_index_path(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next()?;
    (check_name(name).is_ok() && !name.bytes().any(|b| b.is_ascii_uppercase()))
        .then_some(name)
        .filter(|name| index_path(name) == path)
}

/// A version's identity within a crate: cargo treats versions that differ only in build metadata
/// (`1.0.0+a`, `1.0.0+b`) as the same version.
pub fn version_key(lowercase_name: &str, version: &semver::Version) -> String {
    let mut version = version.clone();
    version.build = semver::BuildMetadata::EMPTY;
    format!("{lowercase_name}@{version}")
}

/// Parses a version as cargo does (semver, build metadata allowed).
pub fn parse_version(version: &str) -> Result<semver::Version, String> {
    semver::Version::parse(version).map_err(|e| format!("invalid version `{version}`: {e}"))
}

/// What `cargo publish` sends ahead of the `.crate` (cargo's `NewCrate`), as far as Granary keeps
/// it: what the index needs, and what a search shows.
#[derive(Debug, Deserialize)]
pub struct NewCrate {
    pub name: String,
    pub vers: String,
    #[serde(default)]
    pub deps: Vec<NewDependency>,
    #[serde(default)]
    pub features: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub links: Option<String>,
    #[serde(default)]
    pub rust_version: Option<String>,
}

/// A dependency as `cargo publish` sends it.
#[derive(Debug, Deserialize)]
pub struct NewDependency {
    /// The package name (the one in the dependency's own registry).
    pub name: String,
    pub version_req: String,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub optional: bool,
    #[serde(default = "yes")]
    pub default_features: bool,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    /// The index URL of the dependency's registry; none for this registry.
    #[serde(default)]
    pub registry: Option<String>,
    /// The name the depending crate uses, when it renamed the package (`package = "…"`).
    #[serde(default)]
    pub explicit_name_in_toml: Option<String>,
}

fn yes() -> bool {
    true
}

/// Features whose values use `dep:` or `?/`, which cargo older than 1.60 cannot read: the index
/// keeps them apart (`features2`, with `v: 2`).
fn is_new_syntax(values: &[String]) -> bool {
    values
        .iter()
        .any(|value| value.starts_with("dep:") || value.contains("?/"))
}

impl NewCrate {
    /// Checks what the index entry is built from; the error names the field at fault.
    pub fn check(&self) -> Result<semver::Version, (&'static str, String)> {
        check_name(&self.name).map_err(|e| ("name", e))?;
        let version = parse_version(&self.vers).map_err(|e| ("vers", e))?;
        for dep in &self.deps {
            check_name(&dep.name).map_err(|e| ("deps", e))?;
            if let Some(renamed) = &dep.explicit_name_in_toml {
                check_name(renamed).map_err(|e| ("deps", e))?;
            }
            semver::VersionReq::parse(&dep.version_req).map_err(|e| {
                (
                    "deps",
                    format!(
                        "invalid version requirement `{}` of dependency `{}`: {e}",
                        dep.version_req, dep.name
                    ),
                )
            })?;
            if let Some(kind) = &dep.kind
                && !matches!(kind.as_str(), "normal" | "dev" | "build")
            {
                return Err((
                    "deps",
                    format!(
                        "dependency `{}` has kind `{kind}`: normal, dev or build",
                        dep.name
                    ),
                ));
            }
        }
        if let Some(rust_version) = &self.rust_version {
            semver::VersionReq::parse(rust_version).map_err(|e| {
                (
                    "rust_version",
                    format!("invalid rust_version `{rust_version}`: {e}"),
                )
            })?;
        }
        Ok(version)
    }

    /// The index entry of this version whose `.crate` has the sha256 `cksum`, not yanked.
    pub fn entry(&self, cksum: &str) -> Value {
        let deps: Vec<Value> = self
            .deps
            .iter()
            .map(|dep| {
                let mut entry = json!({
                    "name": dep.explicit_name_in_toml.as_deref().unwrap_or(&dep.name),
                    "req": dep.version_req,
                    "features": dep.features,
                    "optional": dep.optional,
                    "default_features": dep.default_features,
                    "target": dep.target,
                    "kind": dep.kind.as_deref().unwrap_or("normal"),
                });
                if let Some(registry) = &dep.registry {
                    entry["registry"] = registry.as_str().into();
                }
                if dep.explicit_name_in_toml.is_some() {
                    entry["package"] = dep.name.as_str().into();
                }
                entry
            })
            .collect();
        let (features2, features): (BTreeMap<_, _>, BTreeMap<_, _>) = self
            .features
            .iter()
            .partition(|(_, values)| is_new_syntax(values));
        let mut entry = json!({
            "name": self.name,
            "vers": self.vers,
            "deps": deps,
            "cksum": cksum,
            "features": features,
            "yanked": false,
            "links": self.links,
        });
        if !features2.is_empty() {
            entry["features2"] = json!(features2);
            entry["v"] = 2.into();
        }
        if let Some(rust_version) = &self.rust_version {
            entry["rust_version"] = rust_version.as_str().into();
        }
        entry
    }
}

/// An index file: the entries, one JSON line each, in ascending version order (entries whose
/// `vers` is not a version are left out).
pub fn render(entries: Vec<Value>) -> Vec<u8> {
    let mut lines: Vec<(semver::Version, Value)> = entries
        .into_iter()
        .filter_map(|entry| Some((parse_version(entry["vers"].as_str()?).ok()?, entry)))
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (_, entry) in lines {
        out.extend_from_slice(entry.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_follow_cargos_layout() {
        assert_eq!(index_path("a"), "1/a");
        assert_eq!(index_path("ab"), "2/ab");
        assert_eq!(index_path("abc"), "3/a/abc");
        assert_eq!(index_path("serde_json"), "se/rd/serde_json");
        assert_eq!(name_of_index_path("se/rd/serde_json"), Some("serde_json"));
        assert_eq!(name_of_index_path("3/a/abc"), Some("abc"));
        // Not where cargo looks, or not a name.
        assert_eq!(name_of_index_path("se/xx/serde_json"), None);
        assert_eq!(name_of_index_path("Se/rd/Serde_json"), None);
        assert_eq!(name_of_index_path("config.json"), None);
        assert_eq!(name_of_index_path("../etc/passwd"), None);
    }

    #[test]
    fn names_are_checked_as_crates_io_does() {
        assert!(check_name("serde-json_2").is_ok());
        assert!(check_name("2fast").unwrap_err().contains("ASCII letter"));
        assert!(check_name("a.b").unwrap_err().contains("`.`"));
        assert!(check_name(&"a".repeat(65)).unwrap_err().contains("longer"));
        assert!(check_name("").is_err());
    }

    #[test]
    fn versions_differing_in_build_metadata_are_one_version() {
        let a = version_key("foo", &parse_version("1.0.0+a").unwrap());
        let b = version_key("foo", &parse_version("1.0.0+b").unwrap());
        assert_eq!(a, b);
        assert_eq!(a, "foo@1.0.0");
        assert!(parse_version("1.0").is_err());
    }

    #[test]
    fn an_entry_is_built_in_cargos_index_format() {
        let new: NewCrate = serde_json::from_value(json!({
            "name": "Demo",
            "vers": "0.2.0",
            "deps": [
                {"name": "serde", "version_req": "^1", "features": ["derive"], "optional": true,
                 "default_features": false, "target": null, "kind": "normal", "registry": null,
                 "explicit_name_in_toml": "serde1"},
                {"name": "cc", "version_req": "^1.0", "kind": "build",
                 "registry": "https://github.com/rust-lang/crates.io-index"}
            ],
            "features": {"default": ["std"], "std": [], "json": ["dep:serde1"]},
            "links": null,
            "rust_version": "1.70",
        }))
        .unwrap();
        assert_eq!(new.check().unwrap().to_string(), "0.2.0");
        let entry = new.entry("ab12");
        assert_eq!(entry["cksum"], "ab12");
        assert_eq!(entry["yanked"], false);
        assert_eq!(entry["deps"][0]["name"], "serde1");
        assert_eq!(entry["deps"][0]["package"], "serde");
        assert_eq!(entry["deps"][0]["req"], "^1");
        assert_eq!(entry["deps"][0]["default_features"], false);
        assert!(entry["deps"][0].get("registry").is_none());
        assert_eq!(entry["deps"][1]["kind"], "build");
        assert_eq!(entry["deps"][1]["default_features"], true);
        assert_eq!(
            entry["deps"][1]["registry"],
            "https://github.com/rust-lang/crates.io-index"
        );
        assert_eq!(entry["features"], json!({"default": ["std"], "std": []}));
        assert_eq!(entry["features2"], json!({"json": ["dep:serde1"]}));
        assert_eq!(entry["v"], 2);
        assert_eq!(entry["rust_version"], "1.70");
    }

    #[test]
    fn bad_metadata_names_its_field() {
        let new: NewCrate = serde_json::from_value(json!({
            "name": "demo", "vers": "1.0.0",
            "deps": [{"name": "x", "version_req": "not a requirement"}],
        }))
        .unwrap();
        let (field, message) = new.check().unwrap_err();
        assert_eq!(field, "deps");
        assert!(message.contains("not a requirement"), "{message}");
        let new: NewCrate = serde_json::from_value(json!({"name": "demo", "vers": "one"})).unwrap();
        assert_eq!(new.check().unwrap_err().0, "vers");
    }

    #[test]
    fn index_files_list_versions_in_order() {
        let entry = |vers: &str| json!({"name": "demo", "vers": vers, "cksum": "00"});
        let body = render(vec![
            entry("1.10.0"),
            entry("1.2.0"),
            entry("1.2.0-rc.1"),
            entry("garbage"),
        ]);
        let versions: Vec<String> = String::from_utf8(body)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap()["vers"].to_string())
            .collect();
        assert_eq!(versions, [r#""1.2.0-rc.1""#, r#""1.2.0""#, r#""1.10.0""#]);
    }
}
