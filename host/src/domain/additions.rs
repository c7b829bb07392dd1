//! Units a plugin's `handle` adds to or removes from a distribution's repository (uploads,
//! pull-through, unpublishing): one new version, made by an `add-units` task
//! (`tasks::kinds::add_units_and_wait`) that holds the repository's exclusive lock like every
//! other writer (sync, modify, upload), so concurrent writers are serialized by the task system
//! in every process. A small change runs at once in the request, in the transaction that records
//! its task (Pulp's immediate task); a larger one, or one whose repository is busy, is queued.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::db::{Batch, Db, WriteTx};
use crate::domain::declarations::{Reuse, ToSave, link_stored_in, save_in};
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
    /// Files: (relative path, url, size, digests).
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
    /// Expected sha512 (absent from tasks queued before it existed).
    #[serde(default)]
    pub sha512: Option<String>,
}

impl From<&UnitDeclaration> for DeclaredUnit {
    fn from(unit: &UnitDeclaration) -> Self {
        let file = |artifact: &ArtifactDeclaration| convert_record!(&artifact => DeclaredFile { relative_path, url, size, sha256, sha512 });
        convert_record!(&unit => DeclaredUnit {
            content_type, natural_key, metadata;
            artifacts: unit.artifacts.iter().map(file).collect(),
        })
    }
}

impl From<DeclaredUnit> for UnitDeclaration {
    fn from(unit: DeclaredUnit) -> Self {
        let declaration = |file: DeclaredFile| convert_record!(file => ArtifactDeclaration { relative_path, url, size, sha256, sha512 });
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

/// What an `add-units` task changes in a repository.
#[derive(Debug)]
pub struct Change {
    /// Units to add.
    pub units: Vec<DeclaredUnit>,
    /// Units to remove, by (content type, natural key).
    pub remove: Vec<(String, String)>,
}

/// The task's work: records the units to add (files named by sha256 must be stored; with
/// `remote_id`, files with a URL that are not stored become on-demand files of that remote) and
/// makes one new version of the repository with them and without the units to remove (those of
/// `plugin` it holds), all in one transaction. `target` is (repository id, plugin). Returns the
/// new version's href, if anything changed.
pub async fn run(
    db: &Db,
    names: &RestNames,
    task: &Arc<TaskHandle>,
    target: (&str, &str),
    remote_id: Option<&str>,
    change: Change,
) -> anyhow::Result<Vec<String>> {
    let mut tx = db.begin_write().await?;
    let mut last = Batch::new();
    let units: Vec<UnitDeclaration> = change.units.into_iter().map(Into::into).collect();
    let created = apply_in(
        &mut tx,
        names,
        (&task.id, &mut last),
        (target, None),
        remote_id,
        (ToSave::Declared(units), &change.remove),
    )
    .await?;
    tx.commit_with(last).await?;
    Ok(created)
}

/// [`run`] inside the caller's transaction `tx` (which also records the task when it runs at
/// once, see `tasks::run_immediately`): nothing is left behind when it fails and `tx` is dropped.
/// The new version's last statements go to `last`, which the caller runs with its commit (see
/// [`versions::finish_version_in`]). `facts` are the repository's, when the caller read them in
/// `tx` already ([`versions::read_facts`]); `units` may have been sent in part by the caller too
/// ([`ToSave::FirstSent`]).
pub async fn apply_in(
    tx: &mut WriteTx,
    names: &RestNames,
    (task_id, last): (&str, &mut Batch),
    (target, facts): ((&str, &str), Option<versions::RepositoryFacts>),
    remote_id: Option<&str>,
    (units, remove): (ToSave, &[(String, String)]),
) -> anyhow::Result<Vec<String>> {
    let (repository_id, plugin) = target;
    // The units named for removal are stored already (they leave the base version), so their
    // ids are known before anything is saved; the new version's membership then goes with the
    // last trip that stages the added units.
    let removals = unit_ids(tx, plugin, remove).await?;
    let mut membership = Batch::new();
    let target = (repository_id, facts);
    let change = versions::Change::Add;
    let start =
        versions::start_version_in(tx, target, task_id, change, &removals, &mut membership).await?;
    let (pending, ran) = save_in(
        tx,
        task_id,
        plugin,
        remote_id,
        Reuse::Checked,
        units,
        membership,
    )
    .await?;
    let missing: Vec<String> = link_stored_in(tx, pending, Reuse::Checked)
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
    let outcome = versions::finish_version_in(tx, names, repository_id, (start, ran), last).await?;
    Ok(outcome.href.into_iter().collect())
}

/// The ids of `plugin`'s stored units named by (content type, natural key); names of units it
/// does not store have none.
async fn unit_ids(
    tx: &mut WriteTx,
    plugin: &str,
    units: &[(String, String)],
) -> Result<Vec<String>, sqlx::Error> {
    let mut ids = Vec::with_capacity(units.len());
    for (type_name, natural_key) in units {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM content WHERE plugin = $1 AND type_name = $2 AND natural_key = $3",
        )
        .bind(plugin)
        .bind(type_name)
        .bind(natural_key)
        .fetch_optional(&mut **tx)
        .await?;
        ids.extend(id);
    }
    Ok(ids)
}
