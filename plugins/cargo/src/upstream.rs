//! A pull-through mirror of an upstream sparse index, the distribution's remote (`url`: the
//! index's `http(s)` URL, e.g. `https://index.crates.io/`, without cargo's `sparse+`).
//!
//! Index files are the upstream's, asked again at most every few minutes (conditionally: the
//! host keeps the upstream's validators), plus the versions kept here that the upstream no
//! longer lists; when the upstream cannot be reached, the kept versions are served alone. A
//! `.crate` is fetched from the upstream's `dl` the first time a client asks, checked against
//! the upstream entry's `cksum`, kept and added to the repository with its index entry. The
//! upstream's `dl` may be on another origin (crates.io's is `static.crates.io`): add it to the
//! remote's allowed origins.

use std::collections::BTreeSet;

use granary_sdk::{HandleOutcome, HttpResponse, PluginError, RemoteConfig, http, log};
use serde_json::Value;

use crate::index::{self, parse_version};
use crate::{cargo_error, registry};

/// Largest upstream index file read (serde's is about 100 KiB).
const MAX_INDEX_FILE: usize = 32 * 1024 * 1024;
/// Largest upstream `config.json` read.
const MAX_CONFIG: usize = 64 * 1024;
/// How long the host may keep an index file of a pull-through distribution: the upstream's
/// changes without this repository changing.
const PULL_THROUGH_SECONDS: u32 = 300;
/// The placeholders of a `dl` template; a `dl` without any gets `/{crate}/{version}/download`.
const DL_MARKERS: [&str; 5] = [
    "{crate}",
    "{version}",
    "{prefix}",
    "{lowerprefix}",
    "{sha256-checksum}",
];

/// The upstream index's URL, ending in `/`.
fn index_base(remote: &RemoteConfig) -> String {
    let url = remote.url.strip_prefix("sparse+").unwrap_or(&remote.url);
    if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    }
}

/// The index file of the crate whose lower-cased name is `name`.
pub fn index_file(remote: &RemoteConfig, name: &str) -> Result<HttpResponse, PluginError> {
    let stored = crate::stored_entries(name)?;
    let entries = match upstream_entries(remote, name) {
        Ok(Some(mut entries)) => {
            let listed: BTreeSet<String> = entries
                .iter()
                .filter_map(|entry| entry["vers"].as_str().map(str::to_owned))
                .collect();
            entries.extend(
                stored
                    .into_iter()
                    .filter(|entry| !entry["vers"].as_str().is_some_and(|v| listed.contains(v))),
            );
            entries
        }
        Ok(None) => stored,
        // The mirror keeps serving what it has when the upstream is away.
        Err(error) if !stored.is_empty() => {
            log::warn(format!(
                "pull-through index file of {name}: {}",
                error.message()
            ));
            stored
        }
        Err(error) => return Ok(cargo_error(502, error.message())),
    };
    if entries.is_empty() {
        return Ok(HttpResponse::not_found());
    }
    Ok(
        HttpResponse::ok("text/plain; charset=utf-8", index::render(entries))
            .kept_by_host(PULL_THROUGH_SECONDS),
    )
}

/// The upstream's entries of the crate whose lower-cased name is `name`; `None` when it does
/// not know the crate.
fn upstream_entries(remote: &RemoteConfig, name: &str) -> Result<Option<Vec<Value>>, PluginError> {
    let url = format!("{}{}", index_base(remote), index::index_path(name));
    let Some(response) = http::get_found(&url, &[])? else {
        return Ok(None);
    };
    let body = response.read_to_end(MAX_INDEX_FILE)?;
    let mut entries = Vec::new();
    for (number, line) in body.split(|byte| *byte == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry: Value = serde_json::from_slice(line).map_err(|e| {
            PluginError::new(format!(
                "{url}, line {}: not an index entry: {e}",
                number + 1
            ))
        })?;
        // Only this crate's entries, whatever else the upstream put in the file.
        if entry["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
        {
            entries.push(entry);
        }
    }
    Ok(Some(entries))
}

/// A `.crate` that is not kept yet: the upstream entry's file, fetched once by the host, checked
/// against its `cksum`, kept, added to the repository and streamed.
pub fn download(
    remote: &RemoteConfig,
    name: &str,
    version: &semver::Version,
) -> Result<HandleOutcome, PluginError> {
    let entries = match upstream_entries(remote, name) {
        Ok(Some(entries)) => entries,
        Ok(None) => return Ok(HttpResponse::not_found().into()),
        Err(error) => return Ok(cargo_error(502, error.message()).into()),
    };
    let Some(mut entry) = entries.into_iter().find(|entry| {
        entry["vers"]
            .as_str()
            .and_then(|v| parse_version(v).ok())
            .is_some_and(|v| v == *version)
    }) else {
        return Ok(HttpResponse::not_found().into());
    };
    let cksum = entry["cksum"].as_str().unwrap_or_default().to_owned();
    if cksum.len() != 64 || !cksum.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(cargo_error(
            502,
            &format!("the upstream's entry of {name} {version} has no sha256 `cksum`"),
        )
        .into());
    }
    let published_name = entry["name"].as_str().unwrap_or(name).to_owned();
    let dl = match upstream_dl(remote) {
        Ok(dl) => dl,
        Err(error) => return Ok(cargo_error(502, error.message()).into()),
    };
    let url = download_url(&dl, &published_name, &version.to_string(), &cksum);
    entry["yanked"] = false.into();
    let unit = registry::published_unit(&published_name, version, entry, None, Some(url), 0);
    let relative_path = unit.artifacts[0].relative_path.clone();
    Ok(HttpResponse::fetch_upstream(unit, &relative_path).into())
}

/// The upstream's `dl`, from its `config.json`.
fn upstream_dl(remote: &RemoteConfig) -> Result<String, PluginError> {
    let url = format!("{}config.json", index_base(remote));
    let response = http::get(&url, &[])?;
    if !response.is_success() {
        return Err(PluginError::new(format!(
            "the upstream answered {} for {url}",
            response.status()
        )));
    }
    let config: Value = serde_json::from_slice(&response.read_to_end(MAX_CONFIG)?)
        .map_err(|e| PluginError::new(format!("{url}: {e}")))?;
    config["dl"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| PluginError::new(format!("{url} has no `dl`")))
}

/// The URL of a `.crate` by the registry's `dl` template, as cargo builds it.
pub fn download_url(dl: &str, name: &str, version: &str, cksum: &str) -> String {
    if !DL_MARKERS.iter().any(|marker| dl.contains(marker)) {
        return format!("{}/{name}/{version}/download", dl.trim_end_matches('/'));
    }
    let prefix = |name: &str| {
        let path = index::index_path(name);
        path.rsplit_once('/')
            .map(|(prefix, _)| prefix.to_owned())
            .unwrap_or_default()
    };
    dl.replace("{crate}", name)
        .replace("{version}", version)
        .replace("{prefix}", &prefix(name))
        .replace("{lowerprefix}", &prefix(&name.to_ascii_lowercase()))
        .replace("{sha256-checksum}", cksum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_urls_follow_cargos_templates() {
        assert_eq!(
            download_url("https://static.crates.io/crates", "serde", "1.0.0", "ab"),
            "https://static.crates.io/crates/serde/1.0.0/download"
        );
        assert_eq!(
            download_url(
                "http://h/{prefix}/{lowerprefix}/{crate}-{version}.crate?{sha256-checksum}",
                "Serde",
                "1.0.0",
                "ab"
            ),
            "http://h/Se/rd/se/rd/Serde-1.0.0.crate?ab"
        );
        assert_eq!(
            download_url("http://h/{crate}", "a", "1.0.0", ""),
            "http://h/a"
        );
    }

    #[test]
    fn the_index_base_drops_cargos_scheme_prefix() {
        let remote = |url: &str| RemoteConfig {
            url: url.into(),
            policy: granary_sdk::DownloadPolicy::OnDemand,
            extra: "{}".into(),
        };
        assert_eq!(
            index_base(&remote("sparse+https://index.crates.io")),
            "https://index.crates.io/"
        );
        assert_eq!(
            index_base(&remote("http://h/cargo/up/")),
            "http://h/cargo/up/"
        );
    }
}
