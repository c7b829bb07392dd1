//! The kinds of task and what each does. Arguments are stored as JSON in the task row, so any
//! worker process can run any task.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::TaskHandle;
use crate::app::App;
use crate::domain::{additions, publications, uploads, versions};
use crate::sync;

/// Arguments of each kind of task.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskArgs {
    /// Sync a repository from a remote.
    Sync {
        /// Repository id.
        repository_id: String,
        /// Remote id.
        remote_id: String,
        /// Mirror (the new version is exactly upstream) or additive.
        mirror: bool,
    },
    /// Add and remove content units, creating a new version.
    Modify {
        /// Repository id.
        repository_id: String,
        /// Content ids to add.
        add: Vec<String>,
        /// Content ids to remove.
        remove: Vec<String>,
        /// Start from this version number instead of the latest.
        base_version: Option<i64>,
    },
    /// Publish a repository version.
    Publish {
        /// Repository id.
        repository_id: String,
        /// Version number.
        version: i64,
    },
    /// Turn an uploaded artifact into a content unit (and add it to a repository).
    Upload {
        /// The plugin whose content type this is.
        plugin: String,
        /// The stored artifact.
        sha256: String,
        /// The path the user gave.
        relative_path: Option<String>,
        /// Repository to add the unit to.
        repository_id: Option<String>,
    },
    /// Add units declared by a plugin's `handle` (an upload, a pull-through fetch) to a
    /// repository, as one new version.
    AddUnits {
        /// Repository id.
        repository_id: String,
        /// The plugin that declared the units.
        plugin: String,
        /// The distribution's remote, whose URLs unstored files may keep (pull-through).
        remote_id: Option<String>,
        /// The units.
        units: Vec<additions::DeclaredUnit>,
    },
    /// Create a distribution.
    CreateDistribution {
        /// The validated fields.
        fields: crate::api::distributions::DistributionFields,
    },
    /// Delete a repository, remote or distribution.
    Delete {
        /// The object's href.
        href: String,
    },
}

impl TaskArgs {
    /// Short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            TaskArgs::Sync { .. } => "sync",
            TaskArgs::Modify { .. } => "modify",
            TaskArgs::Publish { .. } => "publish",
            TaskArgs::Upload { .. } => "upload",
            TaskArgs::AddUnits { .. } => "add-units",
            TaskArgs::CreateDistribution { .. } => "create-distribution",
            TaskArgs::Delete { .. } => "delete",
        }
    }
}

/// Runs a task; returns the hrefs of what it created.
pub async fn run(
    app: &Arc<App>,
    task: Arc<TaskHandle>,
    args: TaskArgs,
) -> anyhow::Result<Vec<String>> {
    match args {
        TaskArgs::Sync {
            repository_id,
            remote_id,
            mirror,
        } => sync::run(app, &task, &repository_id, &remote_id, mirror).await,
        TaskArgs::Modify {
            repository_id,
            add,
            remove,
            base_version,
        } => {
            let number = versions::modify(
                &app.db,
                &task.id,
                &repository_id,
                &add,
                &remove,
                base_version,
            )
            .await?;
            match number {
                Some(number) => Ok(vec![
                    versions::href(app.db.pool(), &repository_id, number).await?,
                ]),
                None => Ok(Vec::new()),
            }
        }
        TaskArgs::Publish {
            repository_id,
            version,
        } => {
            let href = publications::publish(app, &task, &repository_id, version).await?;
            Ok(vec![href])
        }
        TaskArgs::Upload {
            plugin,
            sha256,
            relative_path,
            repository_id,
        } => {
            uploads::create_content(
                app,
                &task,
                &plugin,
                &sha256,
                relative_path.as_deref(),
                repository_id.as_deref(),
            )
            .await
        }
        TaskArgs::AddUnits {
            repository_id,
            plugin,
            remote_id,
            units,
        } => {
            additions::run(
                app,
                &task,
                &repository_id,
                &plugin,
                remote_id.as_deref(),
                units,
            )
            .await
        }
        TaskArgs::CreateDistribution { fields } => {
            Ok(vec![crate::api::distributions::create(app, fields).await?])
        }
        TaskArgs::Delete { href } => {
            crate::api::delete_object(app, &href).await?;
            Ok(Vec::new())
        }
    }
}
