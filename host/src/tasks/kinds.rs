//! The kinds of task and what each does. Arguments are stored as JSON in the task row, so any
//! worker process can run any task.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::TaskHandle;
use crate::app::App;
use crate::domain::{
    additions, chunked_uploads, hrefs, maintenance, publications, uploads, versions,
};
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
    /// Assemble an uncommitted chunked upload into an artifact, then make it a content unit like
    /// [`TaskArgs::Upload`].
    UploadFromChunks {
        /// The plugin whose content type this is.
        plugin: String,
        /// The upload.
        upload_id: String,
        /// The path the user gave.
        relative_path: Option<String>,
        /// Repository to add the unit to.
        repository_id: Option<String>,
    },
    /// Assemble a chunked upload into an artifact (`uploads/<id>/commit/`).
    CommitUpload {
        /// The upload.
        upload_id: String,
        /// The sha256 the whole file must have.
        sha256: String,
    },
    /// Delete orphan content and unused artifacts (`orphans/cleanup/`).
    OrphanCleanup {
        /// Only what was created longer ago than this many minutes.
        protection_minutes: i64,
        /// Only these content units (and their artifacts), when given.
        content_ids: Option<Vec<String>>,
    },
    /// Drop stored bytes that can be downloaded again (`repositories/reclaim_space/`).
    ReclaimSpace {
        /// Repository ids.
        repository_ids: Vec<String>,
        /// Versions whose content keeps its bytes: `(repository id, number)`.
        keep: Vec<(String, i64)>,
    },
    /// Check stored artifacts and download damaged ones again (`repair/`, `versions/<n>/repair/`).
    Repair {
        /// A repository version (`(repository id, number)`); every artifact when absent.
        version: Option<(String, i64)>,
        /// Hash every artifact, not only check that it exists.
        verify_checksums: bool,
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
    /// Update a repository, remote or distribution with validated changes.
    Update {
        /// The object's href.
        href: String,
        /// Columns to set.
        changes: crate::api::support::Changes,
    },
    /// Delete a repository version, squashing its changes into the next one.
    DeleteVersion {
        /// Repository id.
        repository_id: String,
        /// Version number.
        number: i64,
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
            TaskArgs::UploadFromChunks { .. } => "upload-from-chunks",
            TaskArgs::CommitUpload { .. } => "commit-upload",
            TaskArgs::OrphanCleanup { .. } => "orphan-cleanup",
            TaskArgs::ReclaimSpace { .. } => "reclaim-space",
            TaskArgs::Repair { .. } => "repair",
            TaskArgs::AddUnits { .. } => "add-units",
            TaskArgs::CreateDistribution { .. } => "create-distribution",
            TaskArgs::Delete { .. } => "delete",
            TaskArgs::Update { .. } => "update",
            TaskArgs::DeleteVersion { .. } => "delete-version",
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
                &app.plugins.rest_names(),
                &task.id,
                &repository_id,
                &add,
                &remove,
                base_version,
            )
            .await?;
            match number {
                Some(number) => Ok(vec![
                    versions::href(
                        app.db.pool(),
                        &app.plugins.rest_names(),
                        &repository_id,
                        number,
                    )
                    .await?,
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
        TaskArgs::UploadFromChunks {
            plugin,
            upload_id,
            relative_path,
            repository_id,
        } => {
            let artifact = chunked_uploads::assemble(app, &upload_id, None).await?;
            uploads::create_content(
                app,
                &task,
                &plugin,
                &artifact.sha256,
                relative_path.as_deref(),
                repository_id.as_deref(),
            )
            .await
        }
        TaskArgs::CommitUpload { upload_id, sha256 } => {
            let artifact = chunked_uploads::assemble(app, &upload_id, Some(&sha256)).await?;
            Ok(vec![hrefs::artifact(&artifact.id)])
        }
        TaskArgs::OrphanCleanup {
            protection_minutes,
            content_ids,
        } => {
            maintenance::orphan_cleanup(app, &task, protection_minutes, content_ids.as_deref())
                .await?;
            Ok(Vec::new())
        }
        TaskArgs::ReclaimSpace {
            repository_ids,
            keep,
        } => {
            maintenance::reclaim_space(app, &task, &repository_ids, &keep).await?;
            Ok(Vec::new())
        }
        TaskArgs::Repair {
            version,
            verify_checksums,
        } => {
            let scope = match version {
                Some((repository_id, number)) => maintenance::RepairScope::Version {
                    repository_id,
                    number,
                },
                None => maintenance::RepairScope::All,
            };
            maintenance::repair(app, &task, scope, verify_checksums).await?;
            Ok(Vec::new())
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
        TaskArgs::Update { href, changes } => {
            crate::api::update_object(app, &href, &changes).await?;
            Ok(Vec::new())
        }
        TaskArgs::DeleteVersion {
            repository_id,
            number,
        } => {
            versions::delete_version(&app.db, &app.plugins.rest_names(), &repository_id, number)
                .await?;
            Ok(Vec::new())
        }
    }
}
