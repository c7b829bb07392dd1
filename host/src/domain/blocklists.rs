//! Repository blocklists, as pulp_python 3.30 has them: entries that name a project (every
//! version), a project and one version, or a file name. A repository version that would add a
//! package an entry names is not made, whichever way it comes (upload, sync, modify), with
//! pulp_python's message; a `modify/` is refused before its task.
//!
//! The host keeps them for the plugins Pulp gives them to ([`PLUGINS`]) and matches a unit's
//! metadata fields `name` (PEP 503 normalized), `version` (the exact string, as pulp_python
//! compares it) and `filename`. They are core's to keep because plugins of WIT 0.3.0 cannot be
//! asked about a version being made; a later contract may hand the judgement to the plugin.

use serde_json::Value;
use sqlx::Row as _;

use crate::db::{BindAll as _, Db, WriteTx, placeholders};

/// The plugins whose repositories have blocklists.
pub const PLUGINS: [&str; 1] = ["python"];

/// Whether repositories of `plugin` have blocklists.
pub fn applies_to(plugin: &str) -> bool {
    PLUGINS.contains(&plugin)
}

/// A version would add blocklisted packages (pulp_python's `ValidationError`).
#[derive(Debug, thiserror::Error)]
#[error("Blocklisted packages cannot be added to this repository: {filenames}")]
pub struct Blocklisted {
    /// The refused packages' file names, comma separated.
    pub filenames: String,
}

/// PEP 503's normalized form of a project name (`packaging.utils.canonicalize_name`): lower
/// case, each run of `-`, `_` and `.` one `-`. The python plugin's `name::normalize` says the
/// same; the host keeps its own because it cannot call into a component for it.
pub fn normalize_name(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                normalized.push('-');
            }
            in_run = true;
        } else {
            normalized.extend(c.to_lowercase());
            in_run = false;
        }
    }
    normalized
}

/// Whether `version` is a PEP 440 version (what `packaging.version.Version` accepts).
pub fn is_version(version: &str) -> bool {
    version.trim().parse::<pep440_rs::Version>().is_ok()
}

/// One entry, as matched.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Entry {
    /// Normalized project name.
    pub name: Option<String>,
    /// An exact version of it.
    pub version: Option<String>,
    /// An exact file name.
    pub filename: Option<String>,
}

impl Entry {
    /// Whether the entry names the package a unit's metadata describes (pulp_python's
    /// `find_blocklisted_packages`).
    fn names(&self, metadata: &Value) -> bool {
        let field = |key: &str| metadata.get(key).and_then(Value::as_str);
        if let (Some(filename), Some(unit)) = (&self.filename, field("filename")) {
            return filename == unit;
        }
        match (&self.name, field("name")) {
            (Some(name), Some(unit)) if *name == normalize_name(unit) => self
                .version
                .as_deref()
                .is_none_or(|version| Some(version) == field("version")),
            _ => false,
        }
    }
}

/// The entries of a repository.
async fn entries<'c, E>(executor: E, repository_id: &str) -> Result<Vec<Entry>, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query_as("SELECT name, version, filename FROM blocklist_entries WHERE repository_id = $1")
        .bind(repository_id)
        .fetch_all(executor)
        .await
}

/// The refusal for the units of `metadata` (JSON texts) an entry names, if any.
fn refusal(entries: &[Entry], metadata: &[String]) -> Result<(), Blocklisted> {
    let mut refused: Vec<String> = metadata
        .iter()
        .filter_map(|text| serde_json::from_str::<Value>(text).ok())
        .filter(|unit| entries.iter().any(|entry| entry.names(unit)))
        .map(|unit| {
            unit.get("filename")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    refused.sort();
    Err(Blocklisted {
        filenames: refused.join(", "),
    })
}

/// Version `number` of the repository, being made in `tx`, adds no blocklisted package. Costs
/// nothing for a repository without entries, what the version adds otherwise.
pub async fn check_version(
    tx: &mut WriteTx,
    plugin: &str,
    (repository_id, number): (&str, i64),
) -> anyhow::Result<()> {
    if !applies_to(plugin) {
        return Ok(());
    }
    let entries = entries(&mut **tx, repository_id).await?;
    if entries.is_empty() {
        return Ok(());
    }
    let added: Vec<String> = sqlx::query(
        "SELECT c.metadata FROM repository_content rc JOIN content c ON c.id = rc.content_id
         WHERE rc.repository_id = $1 AND rc.version_added = $2",
    )
    .bind(repository_id)
    .bind(number)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|row| row.get(0))
    .collect();
    Ok(refusal(&entries, &added)?)
}

/// The units `content_ids` a `modify/` would add to the repository are not blocklisted
/// (pulp_python's early check, before the task).
pub async fn check_units(
    db: &Db,
    plugin: &str,
    repository_id: &str,
    content_ids: &[String],
) -> anyhow::Result<Result<(), Blocklisted>> {
    if !applies_to(plugin) || content_ids.is_empty() {
        return Ok(Ok(()));
    }
    let entries = entries(db.pool(), repository_id).await?;
    if entries.is_empty() {
        return Ok(Ok(()));
    }
    let mut metadata = Vec::with_capacity(content_ids.len());
    for chunk in content_ids.chunks(200) {
        let sql = format!(
            "SELECT metadata FROM content WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let texts: Vec<String> = sqlx::query_scalar(&sql)
            .bind_all(chunk)
            .fetch_all(db.pool())
            .await?;
        metadata.extend(texts);
    }
    Ok(refusal(&entries, &metadata))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Entry, is_version, normalize_name, refusal};

    #[test]
    fn names_normalize_as_pep_503_says() {
        assert_eq!(normalize_name("Friendly-Bard"), "friendly-bard");
        assert_eq!(normalize_name("FRIENDLY._-BARD"), "friendly-bard");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
    }

    #[test]
    fn versions_are_pep_440() {
        for good in ["1.0", "1.0.post1", "2!1.0rc1", "v1.0", "1.0+local.7"] {
            assert!(is_version(good), "{good}");
        }
        for bad in ["", "one", "1.0-", "1..0"] {
            assert!(!is_version(bad), "{bad}");
        }
    }

    #[test]
    fn entries_match_a_name_a_release_or_a_file() {
        let unit = |name: &str, version: &str, filename: &str| {
            json!({"name": name, "version": version, "filename": filename}).to_string()
        };
        let units = [
            unit("Granary_Demo", "1.0", "granary_demo-1.0-py3-none-any.whl"),
            unit("granary-dep", "0.2.0", "granary_dep-0.2.0.tar.gz"),
        ];
        let entry = |name: Option<&str>, version: Option<&str>, filename: Option<&str>| Entry {
            name: name.map(str::to_owned),
            version: version.map(str::to_owned),
            filename: filename.map(str::to_owned),
        };
        let refused = |entries: &[Entry]| {
            refusal(entries, &units)
                .err()
                .map(|error| error.filenames)
                .unwrap_or_default()
        };
        assert_eq!(
            refused(&[entry(Some("granary-demo"), None, None)]),
            "granary_demo-1.0-py3-none-any.whl"
        );
        assert_eq!(
            refused(&[entry(Some("granary-demo"), Some("2.0"), None)]),
            ""
        );
        assert_eq!(
            refused(&[entry(Some("granary-dep"), Some("0.2.0"), None)]),
            "granary_dep-0.2.0.tar.gz"
        );
        // As pulp_python compares them: the exact version string.
        assert_eq!(
            refused(&[entry(Some("granary-dep"), Some("0.2"), None)]),
            ""
        );
        assert_eq!(
            refused(&[
                entry(None, None, Some("granary_dep-0.2.0.tar.gz")),
                entry(Some("granary-demo"), None, None)
            ]),
            "granary_demo-1.0-py3-none-any.whl, granary_dep-0.2.0.tar.gz"
        );
    }
}
