//! PyPI's JSON API (`pypi/<project>/json`, `pypi/<project>/<version>/json`), as pulp_python
//! serves it: the project's `info` (the core metadata of one release), its `releases` (every
//! version with its files) and `urls` (the files of the release `info` describes), built from
//! the stored units of the repository version served.

use std::collections::BTreeMap;

use pep440_rs::Version;
use serde_json::{Map, Value, json};

use crate::name::normalize;
use crate::package::Package;

/// The answer to `pypi/<project>/json` (`version` `None`: the latest release) or
/// `pypi/<project>/<version>/json`, from `packages` (the project's stored units); `None` when
/// the project or the version has no file. File URLs start at `base_url`, the distribution's.
pub fn project_json(packages: &[Package], version: Option<&str>, base_url: &str) -> Option<Value> {
    // Releases keyed by parsed version (`1.0` and `1.0.0` are one release), newest last.
    let mut releases: BTreeMap<Version, (String, Vec<&Package>)> = BTreeMap::new();
    for package in packages {
        let Ok(parsed) = package.version.parse::<Version>() else {
            continue;
        };
        releases
            .entry(parsed)
            .or_insert_with(|| (package.version.clone(), Vec::new()))
            .1
            .push(package);
    }
    let chosen = match version {
        Some(asked) => asked.parse::<Version>().ok()?,
        None => latest(&releases)?,
    };
    let (_, files) = releases.get(&chosen)?;
    let urls: Vec<Value> = files.iter().map(|file| file_json(file, base_url)).collect();
    let mut info = info_json(files, base_url);
    if version.is_some() {
        // PyPI answers a version's page with no other releases.
        return Some(json!({"info": info, "last_serial": 0, "urls": urls, "vulnerabilities": []}));
    }
    let releases: Map<String, Value> = releases
        .values()
        .map(|(spelled, files)| {
            let files = files.iter().map(|file| file_json(file, base_url)).collect();
            (spelled.clone(), Value::Array(files))
        })
        .collect();
    if let Some(object) = info.as_object_mut() {
        object.insert("release_url".into(), Value::Null);
    }
    Some(json!({
        "info": info,
        "last_serial": 0,
        "releases": releases,
        "urls": urls,
        "vulnerabilities": [],
    }))
}

/// The release `info` describes when none is asked for: the newest that is not a pre-release
/// and not wholly yanked, as PyPI picks it; else the newest.
fn latest(releases: &BTreeMap<Version, (String, Vec<&Package>)>) -> Option<Version> {
    let stable = releases.iter().rev().find(|(version, (_, files))| {
        !version.any_prerelease() && files.iter().any(|file| file.yanked.is_none())
    });
    stable
        .or_else(|| releases.iter().next_back())
        .map(|(version, _)| version.clone())
}

/// `info`: the core metadata of a release, read from its wheel when it has one (a wheel's
/// metadata is exact; an sdist's may be partial), under the names PyPI's JSON uses.
fn info_json(files: &[&Package], base_url: &str) -> Value {
    let described = files
        .iter()
        .find(|file| file.packagetype == "bdist_wheel" && !file.core.is_empty())
        .or_else(|| files.iter().find(|file| !file.core.is_empty()))
        .or_else(|| files.first())
        .copied();
    let Some(package) = described else {
        return Value::Null;
    };
    let core = &package.core;
    let text = |key: &str| core.get(key).cloned().unwrap_or(Value::Null);
    let list = |key: &str| match core.get(key) {
        Some(Value::Array(items)) => Value::Array(items.clone()),
        Some(Value::String(item)) => json!([item]),
        _ => Value::Null,
    };
    // `Project-URL: Label, https://...` lines become `{"Label": "https://..."}`.
    let project_urls = match core.get("project_urls") {
        Some(Value::Array(items)) => {
            let pairs: Map<String, Value> = items
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|line| line.split_once(','))
                .map(|(label, url)| (label.trim().to_owned(), json!(url.trim())))
                .collect();
            Value::Object(pairs)
        }
        _ => Value::Null,
    };
    let project = normalize(&package.name);
    let all_yanked = files.iter().all(|file| file.yanked.is_some());
    json!({
        "author": text("author"),
        "author_email": text("author_email"),
        "bugtrack_url": null,
        "classifiers": match list("classifiers") { Value::Null => json!([]), classifiers => classifiers },
        "description": text("description"),
        "description_content_type": text("description_content_type"),
        "docs_url": null,
        "download_url": text("download_url"),
        "downloads": {"last_day": -1, "last_month": -1, "last_week": -1},
        "dynamic": list("dynamic"),
        "home_page": text("home_page"),
        "keywords": text("keywords"),
        "license": text("license"),
        "license_expression": text("license_expression"),
        "maintainer": text("maintainer"),
        "maintainer_email": text("maintainer_email"),
        "name": package.name,
        "package_url": format!("{base_url}pypi/{project}/"),
        "platform": text("platform"),
        "project_url": format!("{base_url}pypi/{project}/"),
        "project_urls": project_urls,
        "provides_extra": list("provides_extra"),
        "release_url": format!("{base_url}pypi/{project}/{}/", package.version),
        "requires_dist": list("requires_dist"),
        "requires_python": package.requires_python,
        "summary": text("summary"),
        "version": package.version,
        "yanked": all_yanked,
        "yanked_reason": if all_yanked { json!(package.yanked) } else { Value::Null },
    })
}

/// One file of a release, as PyPI's JSON lists it.
fn file_json(package: &Package, base_url: &str) -> Value {
    let upload_time = package.upload_time.clone();
    json!({
        "comment_text": "",
        "digests": {"sha256": package.sha256},
        "downloads": -1,
        "filename": package.filename,
        "has_sig": false,
        "packagetype": package.packagetype,
        "python_version": python_version(&package.filename),
        "requires_python": package.requires_python,
        "size": package.size,
        // PyPI gives the time without a zone here and with one in the ISO field.
        "upload_time": upload_time.as_deref().map(|time| time.trim_end_matches('Z').split('.').next().unwrap_or(time).to_owned()),
        "upload_time_iso_8601": upload_time,
        "url": format!("{base_url}packages/{}/{}", package.project(), package.filename),
        "yanked": package.yanked.is_some(),
        "yanked_reason": package.yanked,
    })
}

/// A wheel's python tag (`py3`, `cp312`), `source` for an sdist, as PyPI's `python_version`.
fn python_version(filename: &str) -> String {
    match filename.strip_suffix(".whl") {
        Some(stem) => {
            let parts: Vec<&str> = stem.split('-').collect();
            parts
                .len()
                .checked_sub(3)
                .and_then(|index| parts.get(index))
                .map_or_else(String::new, |tag| (*tag).to_owned())
        }
        None => "source".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::CoreMetadata;

    fn wheel(version: &str, extra: &str) -> Package {
        let metadata = CoreMetadata::parse(
            format!(
                "Metadata-Version: 2.1\nName: Demo-Pkg\nVersion: {version}\nSummary: A demo {version}\nRequires-Dist: requests>=2\nProject-URL: Source, https://example.org/src\n{extra}\n"
            )
            .as_bytes(),
        )
        .expect("metadata");
        let filename = format!("demo_pkg-{version}-py3-none-any.whl");
        Package::from_archive(&filename, &"ab".repeat(32), 1234, &metadata).expect("package")
    }

    #[test]
    fn the_latest_stable_release_is_described_and_every_release_listed() {
        let packages = [wheel("1.0", ""), wheel("1.10", ""), wheel("2.0rc1", "")];
        let answer = project_json(&packages, None, "http://h/pypi/base/").expect("an answer");
        assert_eq!(answer["info"]["version"], "1.10");
        assert_eq!(answer["info"]["summary"], "A demo 1.10");
        assert_eq!(answer["info"]["requires_dist"], json!(["requests>=2"]));
        assert_eq!(
            answer["info"]["project_urls"],
            json!({"Source": "https://example.org/src"})
        );
        let releases: Vec<&String> = answer["releases"].as_object().unwrap().keys().collect();
        assert_eq!(releases.len(), 3, "{answer:#}");
        let url = &answer["urls"][0];
        assert_eq!(url["filename"], "demo_pkg-1.10-py3-none-any.whl");
        assert_eq!(url["python_version"], "py3");
        assert_eq!(url["digests"]["sha256"], "ab".repeat(32));
        assert_eq!(
            url["url"],
            "http://h/pypi/base/packages/demo-pkg/demo_pkg-1.10-py3-none-any.whl"
        );
    }

    #[test]
    fn a_version_page_describes_that_version_only_and_unknown_ones_are_none() {
        let packages = [wheel("1.0", ""), wheel("2.0rc1", "")];
        let answer = project_json(&packages, Some("2.0rc1"), "http://h/").expect("an answer");
        assert_eq!(answer["info"]["version"], "2.0rc1");
        assert!(answer.get("releases").is_none(), "{answer:#}");
        assert_eq!(
            project_json(&packages, Some("1.0.0"), "http://h/").expect("1.0 is 1.0.0")["info"]["version"],
            "1.0"
        );
        assert!(project_json(&packages, Some("3"), "http://h/").is_none());
        assert!(project_json(&[], None, "http://h/").is_none());
    }

    #[test]
    fn only_pre_releases_describe_the_newest() {
        let packages = [wheel("2.0rc1", ""), wheel("2.0rc2", "")];
        let answer = project_json(&packages, None, "http://h/").expect("an answer");
        assert_eq!(answer["info"]["version"], "2.0rc2");
    }
}
