//! Project names (PEP 503 normalization) and distribution file names (wheel and sdist).

use pep440_rs::Version;

/// The PEP 503 normalized form of a project name: lower case, each run of `-`, `_` and `.`
/// replaced by one `-`.
pub fn normalize(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    let mut in_separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator {
                normalized.push('-');
            }
            in_separator = true;
        } else {
            normalized.extend(c.to_lowercase());
            in_separator = false;
        }
    }
    normalized
}

/// Whether `name` is a valid project name (core metadata `Name`): ASCII letters and digits,
/// with `.`, `_` and `-` inside.
pub fn is_valid(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The kind of a distribution file, named as core metadata and pulp_python name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageType {
    /// A built distribution (`.whl`).
    Wheel,
    /// A source distribution (`.tar.gz` or `.zip`).
    Sdist,
}

impl PackageType {
    /// `bdist_wheel` or `sdist`, the `filetype` twine sends and pulp_python's `packagetype`.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageType::Wheel => "bdist_wheel",
            PackageType::Sdist => "sdist",
        }
    }

    /// The `package_types` remote filter value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "bdist_wheel" => Some(PackageType::Wheel),
            "sdist" => Some(PackageType::Sdist),
            _ => None,
        }
    }
}

/// What a distribution file's name says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistFilename {
    /// The project name as spelled in the file name (underscores for wheels).
    pub name: String,
    /// The version as spelled in the file name.
    pub version: String,
    /// Wheel or sdist.
    pub packagetype: PackageType,
    /// The wheel's platform tags (`manylinux_2_17_x86_64`, `win_amd64`, `any`, ...); empty for
    /// sdists.
    pub platforms: Vec<String>,
}

impl DistFilename {
    /// Parses a wheel (`{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`) or sdist
    /// (`{name}-{version}.tar.gz`, legacy `.zip`) file name.
    pub fn parse(filename: &str) -> Result<Self, String> {
        if filename.contains(['/', '\\']) || filename.starts_with('.') {
            return Err(format!("{filename:?} is not a plain file name"));
        }
        if let Some(stem) = filename.strip_suffix(".whl") {
            let parts: Vec<&str> = stem.split('-').collect();
            if !(parts.len() == 5 || parts.len() == 6) || parts.iter().any(|p| p.is_empty()) {
                return Err(format!(
                    "{filename:?} is not a wheel file name \
                     ({{name}}-{{version}}(-{{build}})?-{{python}}-{{abi}}-{{platform}}.whl)"
                ));
            }
            let (name, version) = (parts[0], parts[1]);
            Self::check(filename, name, version)?;
            return Ok(Self {
                name: name.into(),
                version: version.into(),
                packagetype: PackageType::Wheel,
                platforms: parts[parts.len() - 1].split('.').map(Into::into).collect(),
            });
        }
        let stem = filename
            .strip_suffix(".tar.gz")
            .or_else(|| filename.strip_suffix(".zip"))
            .ok_or_else(|| {
                format!("{filename:?} is neither a wheel (.whl) nor a source distribution (.tar.gz, .zip)")
            })?;
        // Older sdists put hyphens in the name ("python-dateutil-2.8.2.tar.gz"), never in the
        // version: the version is what follows the last hyphen.
        let (name, version) = stem.rsplit_once('-').ok_or_else(|| {
            format!(
                "{filename:?} is not a source distribution file name ({{name}}-{{version}}.tar.gz)"
            )
        })?;
        Self::check(filename, name, version)?;
        Ok(Self {
            name: name.into(),
            version: version.into(),
            packagetype: PackageType::Sdist,
            platforms: Vec::new(),
        })
    }

    fn check(filename: &str, name: &str, version: &str) -> Result<(), String> {
        if !is_valid(name) {
            return Err(format!(
                "{filename:?}: {name:?} is not a valid project name"
            ));
        }
        version.parse::<Version>().map_err(|error| {
            format!("{filename:?}: {version:?} is not a valid version: {error}")
        })?;
        Ok(())
    }

    /// The normalized project name.
    pub fn project(&self) -> String {
        normalize(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_folds_case_and_separator_runs() {
        assert_eq!(normalize("Friendly-Bard"), "friendly-bard");
        assert_eq!(normalize("FRIENDLY._-BARD"), "friendly-bard");
        assert_eq!(normalize("zope.interface"), "zope-interface");
        assert_eq!(normalize("typing_extensions"), "typing-extensions");
    }

    #[test]
    fn project_names_are_letters_digits_and_inner_separators() {
        assert!(is_valid("a"));
        assert!(is_valid("zope.interface"));
        assert!(!is_valid("-leading"));
        assert!(!is_valid("trailing."));
        assert!(!is_valid("sp ace"));
        assert!(!is_valid(""));
    }

    #[test]
    fn wheel_names_give_name_version_and_platforms() {
        let wheel = DistFilename::parse(
            "numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        assert_eq!(wheel.name, "numpy");
        assert_eq!(wheel.version, "2.1.0");
        assert_eq!(wheel.packagetype, PackageType::Wheel);
        assert_eq!(
            wheel.platforms,
            ["manylinux_2_17_x86_64", "manylinux2014_x86_64"]
        );
        let with_build = DistFilename::parse("pkg_one-1.0-1-py3-none-any.whl").unwrap();
        assert_eq!(
            (with_build.name.as_str(), with_build.version.as_str()),
            ("pkg_one", "1.0")
        );
        assert_eq!(with_build.project(), "pkg-one");
    }

    #[test]
    fn sdist_names_split_at_the_last_hyphen() {
        let sdist = DistFilename::parse("python-dateutil-2.8.2.tar.gz").unwrap();
        assert_eq!(
            (sdist.name.as_str(), sdist.version.as_str()),
            ("python-dateutil", "2.8.2")
        );
        assert_eq!(sdist.packagetype, PackageType::Sdist);
        assert!(DistFilename::parse("legacy-1.0.zip").is_ok());
    }

    #[test]
    fn other_names_are_refused_with_the_reason() {
        let error = DistFilename::parse("pkg-1.0.exe").unwrap_err();
        assert!(error.contains("neither a wheel"), "{error}");
        let error = DistFilename::parse("pkg-1.0-py3.whl").unwrap_err();
        assert!(error.contains("not a wheel file name"), "{error}");
        let error = DistFilename::parse("pkg-notaversion.tar.gz").unwrap_err();
        assert!(error.contains("not a valid version"), "{error}");
        assert!(DistFilename::parse("../pkg-1.0.tar.gz").is_err());
    }
}

/// Property tests over any project or file name an uploader or an upstream index could send.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn config() -> ProptestConfig {
        ProptestConfig::with_cases(2_000)
    }

    /// A valid project name: letters and digits, separators inside.
    fn project() -> impl Strategy<Value = String> {
        "[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?"
    }

    /// A PEP 440 version as projects write them (release, pre, post and dev parts).
    fn version() -> impl Strategy<Value = String> {
        "[0-9]{1,4}(\\.[0-9]{1,4}){0,3}((a|b|rc)[0-9]{1,2})?(\\.post[0-9]{1,2})?(\\.dev[0-9]{1,2})?"
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn normalizing_is_idempotent_and_leaves_no_separator_runs(name in any::<String>()) {
            let normalized = normalize(&name);
            prop_assert_eq!(normalize(&normalized), normalized.clone());
            prop_assert!(!normalized.contains(['_', '.']));
            prop_assert!(!normalized.contains("--"));
            if name.is_ascii() {
                prop_assert!(!normalized.bytes().any(|b| b.is_ascii_uppercase()));
            }
        }

        #[test]
        fn names_differing_in_case_and_separators_normalize_alike(
            name in project(),
            separators in prop::collection::vec(prop::sample::select(vec!["-", "_", ".", "-_.", "__"]), 1..4),
        ) {
            // Every separator run of `name` replaced by another run, and the case swapped.
            let mut runs = separators.iter().cycle();
            let mut respelled = String::new();
            let mut in_run = false;
            for c in name.chars() {
                if matches!(c, '-' | '_' | '.') {
                    if !in_run {
                        respelled.push_str(runs.next().unwrap());
                    }
                    in_run = true;
                } else {
                    respelled.push(if c.is_ascii_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() });
                    in_run = false;
                }
            }
            prop_assert_eq!(normalize(&respelled), normalize(&name));
        }

        #[test]
        fn any_file_name_parses_or_is_refused_with_its_name(filename in any::<String>()) {
            match DistFilename::parse(&filename) {
                Ok(parsed) => {
                    prop_assert!(is_valid(&parsed.name));
                    prop_assert!(parsed.version.parse::<Version>().is_ok());
                }
                Err(message) => prop_assert!(message.contains(&format!("{filename:?}")), "{message}"),
            }
        }

        #[test]
        fn generated_sdist_and_wheel_names_read_back(
            name in project(),
            version in version(),
            build in prop::option::of("[0-9][a-z0-9_]{0,4}"),
            platforms in prop::collection::vec("[a-z0-9_]{1,16}", 1..3),
            zip in any::<bool>(),
        ) {
            let sdist = format!("{name}-{version}.{}", if zip { "zip" } else { "tar.gz" });
            let parsed = DistFilename::parse(&sdist).unwrap();
            prop_assert_eq!(
                (parsed.name.as_str(), parsed.version.as_str(), parsed.packagetype),
                (name.as_str(), version.as_str(), PackageType::Sdist)
            );
            // Wheel file names escape the name's hyphens as underscores.
            let escaped = name.replace('-', "_");
            let build = build.map(|build| format!("-{build}")).unwrap_or_default();
            let wheel = format!("{escaped}-{version}{build}-py3-none-{}.whl", platforms.join("."));
            let parsed = DistFilename::parse(&wheel).unwrap();
            prop_assert_eq!(
                (parsed.name.as_str(), parsed.version.as_str(), parsed.packagetype),
                (escaped.as_str(), version.as_str(), PackageType::Wheel)
            );
            prop_assert_eq!(&parsed.platforms, &platforms);
            prop_assert_eq!(parsed.project(), normalize(&name));
        }
    }
}
