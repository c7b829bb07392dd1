//! The plugin-specific remote fields and the sync filter they make: `includes`/`excludes`
//! (PEP 508 requirement strings without markers), `prereleases`, `package_types` and
//! `exclude_platforms`, named and defaulted as pulp_python names them. Versions and specifiers are
//! `pep440_rs`'s; the pre-release policy is pip's and lives here ([`allows`]).

use pep440_rs::{Operator, Version, VersionSpecifier, VersionSpecifiers};
use serde_json::Value;

use crate::name::{DistFilename, PackageType, normalize};

/// The `pattern` of a requirement string, JSON-escaped for [`REMOTE_FIELDS`].
macro_rules! requirement_pattern {
    () => {
        r#"^\\s*[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\\s*(?:\\[[^\\]]*\\]\\s*)?(?:\\(\\s*(?:(?:~=|===|==|!=|<=|>=|<|>)\\s*[A-Za-z0-9.*+!_-]+(?:\\s*,\\s*(?:~=|===|==|!=|<=|>=|<|>)\\s*[A-Za-z0-9.*+!_-]+)*)?\\s*\\)|(?:(?:~=|===|==|!=|<=|>=|<|>)\\s*[A-Za-z0-9.*+!_-]+(?:\\s*,\\s*(?:~=|===|==|!=|<=|>=|<|>)\\s*[A-Za-z0-9.*+!_-]+)*)?)\\s*$"#
    };
}

/// JSON Schema of the remote fields (`plugin-info.remote-fields`). Each requirement string of
/// `includes` and `excludes` has a `pattern` the host checks when a remote is created or changed,
/// so that text that is no requirement is a 400 on its field then, not a failed sync later: a
/// name, optional `[extras]`, optional comparison clauses (bare or in parentheses), no markers. It
/// accepts all that [`Requirement::parse`] accepts (a test holds them together); the sync still
/// parses each one, versions included.
pub const REMOTE_FIELDS: &str = concat!(
    r#"{"type":"object","additionalProperties":false,"properties":{"includes":{"type":"array","default":[],"items":{"type":"string","pattern":""#,
    requirement_pattern!(),
    r#""},"description":"Requirement specifiers (PEP 508, e.g. \"django>=4,<5\") of the projects to sync; empty syncs every project of the index"},"excludes":{"type":"array","default":[],"items":{"type":"string","pattern":""#,
    requirement_pattern!(),
    r#""},"description":"Requirement specifiers of the projects or versions to skip"},"prereleases":{"type":"boolean","default":false,"description":"Whether to sync pre-release versions"},"package_types":{"type":"array","default":[],"items":{"type":"string","enum":["bdist_wheel","sdist"]},"description":"Package types to sync; empty syncs all"},"exclude_platforms":{"type":"array","default":[],"items":{"type":"string","enum":["windows","macos","freebsd","linux"]},"description":"Skip wheels built only for these platforms"},"keep_latest_packages":{"type":"integer","minimum":0,"default":0,"description":"How many of each project's newest versions to sync (after the other filters; pre-releases count when synced); 0 syncs every version"}}}"#
);

/// One requirement: a project and the versions wanted.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// Normalized project name.
    pub project: String,
    /// Version specifiers; empty for every version.
    pub specifiers: VersionSpecifiers,
}

impl Requirement {
    /// Parses `name`, `name>=1.0`, `name[extra] (>=1,<2)`. Markers (`; python_version ...`) are
    /// refused: a sync has no environment to evaluate them in.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.contains(';') {
            return Err(format!(
                "{text:?}: environment markers are not supported here"
            ));
        }
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .unwrap_or(text.len());
        let name = &text[..name_end];
        if !crate::name::is_valid(name) {
            return Err(format!("{text:?} does not start with a project name"));
        }
        let mut rest = text[name_end..].trim_start();
        if let Some(extras) = rest.strip_prefix('[') {
            let end = extras
                .find(']')
                .ok_or_else(|| format!("{text:?}: unclosed [extras]"))?;
            rest = extras[end + 1..].trim_start();
        }
        if let Some(inner) = rest.strip_prefix('(') {
            rest = inner
                .strip_suffix(')')
                .ok_or_else(|| format!("{text:?}: unclosed ("))?;
        }
        let specifiers = parse_specifiers(rest).map_err(|e| format!("{text:?}: {e}"))?;
        Ok(Self {
            project: normalize(name),
            specifiers,
        })
    }
}

/// Parses comma-separated specifiers (`>=1.0, <2`); empty text matches every version. Clauses are
/// parsed one by one for a one-line error naming the clause (`VersionSpecifiers`' own error
/// draws a caret under it, for a terminal).
pub fn parse_specifiers(text: &str) -> Result<VersionSpecifiers, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(VersionSpecifiers::empty());
    }
    text.split(',')
        .map(|clause| {
            let clause = clause.trim();
            if !clause.starts_with(['=', '!', '~', '<', '>']) {
                return Err(format!(
                    "{clause:?} does not start with a comparison operator (==, >=, ~=, ...)"
                ));
            }
            clause
                .parse::<VersionSpecifier>()
                .map_err(|e| format!("{clause:?}: {e}"))
        })
        .collect()
}

/// Whether `specifiers` contain `version`. A pre-release matches only when `prereleases` is set
/// or a clause names a pre-release itself, as pip and packaging decide: `VersionSpecifiers`
/// leaves that policy to its caller.
pub fn allows(specifiers: &VersionSpecifiers, version: &Version, prereleases: bool) -> bool {
    if version.any_prerelease()
        && !prereleases
        && !specifiers.iter().any(VersionSpecifier::any_prerelease)
    {
        return false;
    }
    specifiers
        .iter()
        .all(|specifier| match specifier.operator() {
            // pep440_rs 0.7.3 refuses `2.0b1` for `<2.0b2`; PEP 440 only keeps pre-releases of the
            // bound's own release out when the bound is a final release (packaging, pip and later
            // uv agree), so a pre-release bound is a plain comparison.
            Operator::LessThan if specifier.version().any_prerelease() => {
                version < specifier.version()
            }
            _ => specifier.contains(version),
        })
}

/// A platform `exclude_platforms` names, recognised by wheel platform tags.
fn platform_matches(platform: &str, tag: &str) -> bool {
    match platform {
        "windows" => tag.starts_with("win"),
        "macos" => tag.starts_with("macosx"),
        "linux" => tag.contains("linux"),
        "freebsd" => tag.starts_with("freebsd"),
        _ => false,
    }
}

/// What a sync keeps.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Projects (and versions) to sync; empty for all.
    pub includes: Vec<Requirement>,
    excludes: Vec<Requirement>,
    prereleases: bool,
    package_types: Vec<PackageType>,
    exclude_platforms: Vec<String>,
    /// Newest versions kept per project; 0 keeps all.
    keep_latest: usize,
}

impl Filter {
    /// Reads the remote's `extra` JSON. Errors name the field at fault.
    pub fn from_remote(extra: &str) -> Result<Self, (String, String)> {
        let extra: Value = if extra.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_str(extra)
                .map_err(|e| (String::new(), format!("remote fields are not JSON: {e}")))?
        };
        let strings = |field: &str| -> Result<Vec<String>, (String, String)> {
            match &extra[field] {
                Value::Null => Ok(Vec::new()),
                Value::Array(items) => items
                    .iter()
                    .map(|item| {
                        item.as_str().map(str::to_owned).ok_or_else(|| {
                            (field.to_string(), "expected a list of strings".to_string())
                        })
                    })
                    .collect(),
                _ => Err((field.to_string(), "expected a list of strings".into())),
            }
        };
        let requirements = |field: &str| -> Result<Vec<Requirement>, (String, String)> {
            strings(field)?
                .iter()
                .map(|text| Requirement::parse(text).map_err(|e| (field.to_string(), e)))
                .collect()
        };
        let package_types = strings("package_types")?
            .iter()
            .map(|t| {
                PackageType::parse(t).ok_or_else(|| {
                    (
                        "package_types".to_string(),
                        format!("unknown package type {t:?} (bdist_wheel, sdist)"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        let exclude_platforms = strings("exclude_platforms")?;
        if let Some(bad) = exclude_platforms
            .iter()
            .find(|p| !["windows", "macos", "freebsd", "linux"].contains(&p.as_str()))
        {
            return Err((
                "exclude_platforms".into(),
                format!("unknown platform {bad:?} (windows, macos, freebsd, linux)"),
            ));
        }
        let keep_latest = match &extra["keep_latest_packages"] {
            Value::Null => 0,
            value => value
                .as_u64()
                .and_then(|keep| usize::try_from(keep).ok())
                .ok_or_else(|| {
                    (
                        "keep_latest_packages".to_string(),
                        "expected a whole number, 0 or more".to_string(),
                    )
                })?,
        };
        Ok(Self {
            keep_latest,
            includes: requirements("includes")?,
            excludes: requirements("excludes")?,
            prereleases: extra["prereleases"].as_bool().unwrap_or(false),
            package_types,
            exclude_platforms,
        })
    }

    /// Whether any file of `project` may be kept (so its page is worth fetching).
    pub fn wants_project(&self, project: &str) -> bool {
        let project = normalize(project);
        (self.includes.is_empty() || self.includes.iter().any(|r| r.project == project))
            && !self
                .excludes
                .iter()
                .any(|r| r.project == project && r.specifiers.is_empty())
    }

    /// Of the wanted files of one project, those of its `keep_latest_packages` newest versions
    /// (all when 0), as pulp_python's `latest_release` filter keeps them.
    pub fn newest_versions<T>(&self, files: Vec<T>, filename: impl Fn(&T) -> &str) -> Vec<T> {
        if self.keep_latest == 0 {
            return files;
        }
        let version_of = |file: &T| {
            DistFilename::parse(filename(file))
                .ok()
                .and_then(|parsed| parsed.version.parse::<Version>().ok())
        };
        let mut versions: Vec<Version> = files.iter().filter_map(version_of).collect();
        versions.sort();
        versions.dedup();
        let kept: Vec<Version> = versions.into_iter().rev().take(self.keep_latest).collect();
        files
            .into_iter()
            .filter(|file| version_of(file).is_some_and(|version| kept.contains(&version)))
            .collect()
    }

    /// Whether the file `filename` of `project` is kept.
    pub fn wants_file(&self, project: &str, filename: &str) -> bool {
        let Ok(parsed) = DistFilename::parse(filename) else {
            return false;
        };
        let project = normalize(project);
        if parsed.project() != project {
            return false;
        }
        let Ok(version) = parsed.version.parse::<Version>() else {
            return false;
        };
        if version.any_prerelease() && !self.prereleases {
            // An include that names a pre-release (`pkg==2.0b1`) still lets it through.
            let named = self.includes.iter().any(|r| {
                r.project == project
                    && !r.specifiers.is_empty()
                    && allows(&r.specifiers, &version, false)
            });
            if !named {
                return false;
            }
        }
        let included = self.includes.is_empty()
            || self
                .includes
                .iter()
                .any(|r| r.project == project && allows(&r.specifiers, &version, true));
        let excluded = self
            .excludes
            .iter()
            .any(|r| r.project == project && allows(&r.specifiers, &version, true));
        let type_ok =
            self.package_types.is_empty() || self.package_types.contains(&parsed.packagetype);
        let platform_ok = !parsed.platforms.iter().any(|tag| {
            self.exclude_platforms
                .iter()
                .any(|platform| platform_matches(platform, tag))
        });
        included && !excluded && type_ok && platform_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host refuses a requirement string its `pattern` does not match before the sync sees
    /// it, so the pattern must match every string the sync's parser takes, and no string that is
    /// not a requirement.
    #[test]
    fn the_remote_fields_pattern_keeps_what_the_sync_parses() {
        let schema: Value = serde_json::from_str(REMOTE_FIELDS).unwrap();
        for field in ["includes", "excludes"] {
            let pattern = schema["properties"][field]["items"]["pattern"]
                .as_str()
                .unwrap();
            let pattern = regex::Regex::new(pattern).unwrap();
            for requirement in [
                "django",
                " shelf-reader ",
                "django>=4,<5",
                "Django_Rest.frame-work[extra] (>=1.0, <2)",
                "pkg==1.0.*",
                "pkg~=1.4.5",
                "pkg===1.0",
                "pkg!=1.0.post1.dev2",
                "pkg==1.0+local.7",
                "pkg ()",
            ] {
                assert!(Requirement::parse(requirement).is_ok(), "{requirement:?}");
                assert!(pattern.is_match(requirement), "{field}: {requirement:?}");
            }
            for text in [
                "not a valid req!!",
                "pkg; python_version < '3'",
                "-pkg",
                "pkg @ https://example.com/pkg.whl",
                "pkg >=",
                "",
                "pkg[x",
            ] {
                assert!(Requirement::parse(text).is_err(), "{text:?}");
                assert!(!pattern.is_match(text), "{field}: {text:?}");
            }
        }
    }

    fn filter(extra: &str) -> Filter {
        Filter::from_remote(extra).unwrap()
    }

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn keep_latest_packages_keeps_the_files_of_the_newest_versions() {
        let files = [
            "demo-1.0-py3-none-any.whl",
            "demo-1.0.tar.gz",
            "demo-1.10-py3-none-any.whl",
            "demo-1.9-py3-none-any.whl",
            "demo-2.0rc1-py3-none-any.whl",
        ];
        let kept = |extra: &str| filter(extra).newest_versions(files.to_vec(), |name: &&str| name);
        assert_eq!(kept("{}"), files);
        assert_eq!(
            kept(r#"{"keep_latest_packages": 2}"#),
            ["demo-1.10-py3-none-any.whl", "demo-2.0rc1-py3-none-any.whl"]
        );
        assert_eq!(
            kept(r#"{"keep_latest_packages": 3}"#),
            [
                "demo-1.10-py3-none-any.whl",
                "demo-1.9-py3-none-any.whl",
                "demo-2.0rc1-py3-none-any.whl"
            ]
        );
        assert_eq!(
            Filter::from_remote(r#"{"keep_latest_packages": -1}"#)
                .unwrap_err()
                .0,
            "keep_latest_packages"
        );
    }

    #[test]
    fn specifiers_match_like_pip() {
        let cases = [
            (">=1.0,<2", "1.5", true),
            (">=1.0,<2", "2.0", false),
            ("<2", "2.0a1", false),
            ("<2", "2.0.dev1", false),
            ("<2.0b2", "2.0b1", true),
            ("<2.0b2", "2.0b2", false),
            ("<2.0b2", "1!1.0", false),
            ("==1.*", "1.9.post3", true),
            ("==1.*", "2.0", false),
            ("!=1.5", "1.5.0", false),
            ("~=1.4.2", "1.4.9", true),
            ("~=1.4.2", "1.5.0", false),
            ("~=1.4", "1.9", true),
            (">1.0", "1.0.post1", false),
            (">1.0", "1.0.1", true),
            ("==1.0", "1.0+local", true),
            ("===1.0", "1.0", true),
            (" >= 1.0 , < 2 ", "1.5", true),
            ("", "3", true),
        ];
        for (set, version, expected) in cases {
            let set = parse_specifiers(set).unwrap();
            assert_eq!(
                allows(&set, &v(version), false),
                expected,
                "{set} contains {version}"
            );
        }
    }

    #[test]
    fn pre_releases_match_only_when_asked_or_named() {
        let any = parse_specifiers("").unwrap();
        assert!(!allows(&any, &v("2.0b1"), false));
        assert!(!allows(&any, &v("2.0.dev1"), false));
        assert!(allows(&any, &v("2.0b1"), true));
        let named = parse_specifiers(">=2.0b1").unwrap();
        assert!(allows(&named, &v("2.0b2"), false));
    }

    #[test]
    fn bad_specifiers_say_why() {
        let error = parse_specifiers(">=1.0, 1.0").unwrap_err();
        assert_eq!(
            error,
            "\"1.0\" does not start with a comparison operator (==, >=, ~=, ...)"
        );
        let error = parse_specifiers("~=1").unwrap_err();
        assert!(error.contains("at least two segments"), "{error}");
        let error = parse_specifiers(">=1.*").unwrap_err();
        assert!(error.contains("wildcard"), "{error}");
        assert!(parse_specifiers(">=one").is_err());
    }

    #[test]
    fn requirements_take_names_extras_and_specifiers() {
        let r = Requirement::parse("Django[argon2] (>=4.0,<5)").unwrap();
        assert_eq!(r.project, "django");
        assert!(allows(&r.specifiers, &v("4.2"), false));
        assert!(
            Requirement::parse("x; python_version<'3'")
                .unwrap_err()
                .contains("markers")
        );
        assert!(Requirement::parse(">=1").is_err());
    }

    #[test]
    fn includes_and_excludes_select_projects_and_versions() {
        let f = filter(r#"{"includes":["demo>=1.0"],"excludes":["demo==1.5"]}"#);
        assert!(f.wants_project("Demo"));
        assert!(!f.wants_project("other"));
        assert!(f.wants_file("demo", "demo-1.0.tar.gz"));
        assert!(!f.wants_file("demo", "demo-0.9.tar.gz"));
        assert!(!f.wants_file("demo", "demo-1.5-py3-none-any.whl"));
        assert!(
            !f.wants_file("demo", "demo-2.0b1.tar.gz"),
            "pre-releases are off by default"
        );
        assert!(filter(r#"{"prereleases":true}"#).wants_file("demo", "demo-2.0b1.tar.gz"));
        assert!(!filter(r#"{"excludes":["demo"]}"#).wants_project("demo"));
    }

    #[test]
    fn package_types_and_platforms_filter_files() {
        let f = filter(r#"{"package_types":["bdist_wheel"],"exclude_platforms":["windows"]}"#);
        assert!(!f.wants_file("demo", "demo-1.0.tar.gz"));
        assert!(f.wants_file("demo", "demo-1.0-py3-none-any.whl"));
        assert!(!f.wants_file("demo", "demo-1.0-cp312-cp312-win_amd64.whl"));
        assert!(f.wants_file("demo", "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"));
    }

    #[test]
    fn bad_fields_name_themselves() {
        assert_eq!(
            Filter::from_remote(r#"{"includes":[">=1"]}"#)
                .unwrap_err()
                .0,
            "includes"
        );
        assert_eq!(
            Filter::from_remote(r#"{"package_types":["egg"]}"#)
                .unwrap_err()
                .0,
            "package_types"
        );
        assert_eq!(
            Filter::from_remote(r#"{"exclude_platforms":["beos"]}"#)
                .unwrap_err()
                .0,
            "exclude_platforms"
        );
    }
}
