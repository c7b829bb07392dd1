//! Units a plugin's `handle` adds to a distribution's repository (uploads, pull-through): one new
//! version, made by an `add-units` task that holds the repository's exclusive lock like every
//! other writer (sync, modify, upload), so concurrent writers are serialized by the task system
//! in every process.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use crate::app::App;
use crate::domain::declarations::{link_stored, save};
use crate::domain::{hrefs, versions};
use crate::plugins::{ArtifactDeclaration, UnitDeclaration};
use crate::tasks::kinds::TaskArgs;
use crate::tasks::{self, ResourceLock, TaskHandle, state};

/// Longest pause between two looks at a task the request waits for.
const MAX_POLL: Duration = Duration::from_millis(200);

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
        Self {
            content_type: unit.content_type.clone(),
            natural_key: unit.natural_key.clone(),
            metadata: unit.metadata.clone(),
            artifacts: unit
                .artifacts
                .iter()
                .map(|a| DeclaredFile {
                    relative_path: a.relative_path.clone(),
                    url: a.url.clone(),
                    size: a.size,
                    sha256: a.sha256.clone(),
                })
                .collect(),
        }
    }
}

impl From<DeclaredUnit> for UnitDeclaration {
    fn from(unit: DeclaredUnit) -> Self {
        Self {
            content_type: unit.content_type,
            natural_key: unit.natural_key,
            metadata: unit.metadata,
            artifacts: unit
                .artifacts
                .into_iter()
                .map(|a| ArtifactDeclaration {
                    relative_path: a.relative_path,
                    url: a.url,
                    size: a.size,
                    sha256: a.sha256,
                })
                .collect(),
        }
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
    app: &App,
    task: &Arc<TaskHandle>,
    repository_id: &str,
    plugin: &str,
    remote_id: Option<&str>,
    units: Vec<DeclaredUnit>,
) -> anyhow::Result<Vec<String>> {
    let units: Vec<UnitDeclaration> = units.into_iter().map(Into::into).collect();
    let outcome = async {
        let pending = save(app, &task.id, plugin, remote_id, units).await?;
        let missing: Vec<String> = link_stored(app, pending)
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
            versions::finish_version(&app.db, &app.plugins.rest_names(), repository_id, &task.id, versions::Change::Add, &[])
                .await?;
        Ok(match outcome.number {
            Some(number) => vec![versions::href(app.db.pool(), &app.plugins.rest_names(), repository_id, number).await?],
            None => Vec::new(),
        })
    }
    .await;
    if outcome.is_err() {
        versions::clear_staging(&app.db, &task.id).await?;
    }
    outcome
}

/// Queues an `add-units` task on `repository_id` (exclusive lock) and waits until it ends.
/// Returns the href of the new version, if one was made.
pub async fn add_and_wait(
    app: &App,
    repository_id: &str,
    plugin: &str,
    remote_id: Option<&str>,
    units: &[UnitDeclaration],
) -> Result<Option<String>, AddError> {
    let row = sqlx::query("SELECT plugin, type_name FROM repositories WHERE id = $1")
        .bind(repository_id)
        .fetch_optional(app.db.pool())
        .await
        .map_err(anyhow::Error::from)?
        .ok_or_else(|| AddError::Refused("the distribution's repository is gone".into()))?;
    let lock = ResourceLock::exclusive(hrefs::repository(
        &app.plugins.rest_names(),
        row.get(0),
        row.get(1),
        repository_id,
    ));
    let args = TaskArgs::AddUnits {
        repository_id: repository_id.to_owned(),
        plugin: plugin.to_owned(),
        remote_id: remote_id.map(str::to_owned),
        units: units.iter().map(DeclaredUnit::from).collect(),
    };
    let task_id = tasks::enqueue(&app.db, "granary.tasks.add_units", &args, &[lock])
        .await
        .map_err(anyhow::Error::from)?;
    app.task_wakeup.notify_waiters();
    let mut pause = Duration::from_millis(5);
    loop {
        let row = sqlx::query("SELECT state, error, created_resources FROM tasks WHERE id = $1")
            .bind(&task_id)
            .fetch_one(app.db.pool())
            .await
            .map_err(anyhow::Error::from)?;
        let task_state: String = row.get(0);
        match task_state.as_str() {
            state::COMPLETED => {
                let created: Vec<String> =
                    serde_json::from_str(&row.get::<String, _>(2)).unwrap_or_default();
                return Ok(created.into_iter().next());
            }
            state::FAILED | state::CANCELED => {
                let description = row
                    .get::<Option<String>, _>(1)
                    .and_then(|error| serde_json::from_str::<serde_json::Value>(&error).ok())
                    .and_then(|error| error["description"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("the task {task_state}"));
                return Err(AddError::Refused(description));
            }
            _ => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_POLL);
    }
}
