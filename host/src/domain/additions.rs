//! Units a plugin's `handle` adds to a distribution's repository (uploads, pull-through): one new
//! version, made by an `add-units` task (queued by `tasks::kinds::add_units_and_wait`) that holds the repository's exclusive lock like every
//! other writer (sync, modify, upload), so concurrent writers are serialized by the task system
//! in every process.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::domain::declarations::{Reuse, link_stored, save};
use crate::domain::hrefs::RestNames;
use crate::domain::versions;
use crate::plugins::{ArtifactDeclaration, UnitDeclaration, convert_record};
use crate::progress::TaskHandle;

/// A declared unit as stored in a task's arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeclaredUnit {
    /// Content type name.
    pub content_type: String,
    /// Canonical JSON natural key.
    pub natural_key: String,
    /// JSON metadata.
    pub metadata: String,
    /// Files: (relative path, url, size, sha256).
    pub artifacts: Vec<DeclaredFile>,
}

/// A declared file as stored in a task's arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeclaredFile {
    /// Path in the unit.
    pub relative_path: String,
    /// Where the host may fetch it (pull-through only).
    pub url: Option<String>,
    /// Expected size.
    pub size: Option<u64>,
    /// Expected sha256.
    pub sha256: Option<String>,
}

impl From<&UnitDeclaration> for DeclaredUnit {
    fn from(unit: &UnitDeclaration) -> Self {
        let file = |artifact: &ArtifactDeclaration| convert_record!(&artifact => DeclaredFile { relative_path, url, size, sha256 });
        convert_record!(&unit => DeclaredUnit {
            content_type, natural_key, metadata;
            artifacts: unit.artifacts.iter().map(file).collect(),
        })
    }
}

impl From<DeclaredUnit> for UnitDeclaration {
    fn from(unit: DeclaredUnit) -> Self {
        let declaration = |file: DeclaredFile| convert_record!(file => ArtifactDeclaration { relative_path, url, size, sha256 });
        convert_record!(unit => UnitDeclaration {
            content_type, natural_key, metadata;
            artifacts: unit.artifacts.into_iter().map(declaration).collect(),
        })
    }
}

/// Why units could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The declaration cannot be carried out (an artifact is not stored...): the client's or the
    /// plugin's mistake, said in the message.
    #[error("{0}")]
    Refused(String),
    /// The database or the task system failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The task's work: records `units` (files named by sha256 must be stored; with `remote_id`,
/// files with a URL that are not stored become on-demand files of that remote) and makes one new
/// version of `repository_id` with them. Returns the new version's href, if anything changed.
pub async fn run(
    db: &Db,
    names: &RestNames,
    task: &Arc<TaskHandle>,
    repository_id: &str,
    plugin: &str,
    remote_id: Option<&str>,
    units: Vec<DeclaredUnit>,
) -> anyhow::Result<Vec<String>> {
    let units: Vec<UnitDeclaration> = units.into_iter().map(Into::into).collect();
    let outcome = async {
        let pending = save(db, &task.id, plugin, remote_id, Reuse::Checked, units).await?;
        let missing: Vec<String> = link_stored(db, pending, Reuse::Checked)
            .await?
            .into_iter()
            .filter(|file| remote_id.is_none() || file.url.is_none())
            .map(|file| file.relative_path)
            .collect();
        anyhow::ensure!(
            missing.is_empty(),
            "the declared file(s) {} name no stored artifact (give each file the sha256 of an uploaded file or of an artifacts.create result)",
            missing.join(", ")
        );
        let outcome =
            versions::finish_version(db, names, repository_id, &task.id, versions::Change::Add, &[])
                .await?;
        Ok(match outcome.number {
            Some(number) => vec![versions::href(db.pool(), names, repository_id, number).await?],
            None => Vec::new(),
        })
    }
    .await;
    if outcome.is_err() {
        versions::clear_staging(db, &task.id).await?;
    }
    outcome
}
