//! The kinds of task and what each does. Arguments are stored as JSON in the task row, so any
//! worker process can run any task.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::{Immediate, Outcome, ResourceLock, TaskHandle, state};
use crate::db::{Batch, Db, Ran, WriteTx};
use crate::domain::additions::AddError;
use crate::domain::declarations::{self, ToSave};
use crate::domain::hrefs::RestNames;
use crate::domain::objects::{self, Changes};
use crate::domain::{
    Backends, acs, additions, artifacts, chunked_uploads, distributions, hrefs, maintenance,
    publications, replication, transfer, uploads, versions,
};
use crate::plugins::UnitDeclaration;
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
    /// Record what one path of an alternate content source offers (`acs/.../refresh/`).
    AcsRefresh {
        /// The source.
        acs_id: String,
        /// The path below its remote's URL.
        path: String,
    },
    /// Delete the records of finished tasks (`tasks/purge/`).
    PurgeTasks {
        /// Only tasks that finished before this time (as stored).
        finished_before: String,
        /// Only tasks in these (final) states.
        states: Vec<String>,
        /// Who asked: only the tasks they may delete go.
        purger: maintenance::Purger,
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
        /// Units to remove, by (content type, natural key). Absent in the arguments of tasks
        /// queued before removals existed.
        #[serde(default)]
        remove: Vec<(String, String)>,
    },
    /// Create a distribution.
    CreateDistribution {
        /// The validated fields.
        fields: distributions::DistributionFields,
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
        changes: Changes,
    },
    /// Delete a repository version, squashing its changes into the next one.
    DeleteVersion {
        /// Repository id.
        repository_id: String,
        /// Version number.
        number: i64,
    },
    /// Write repository versions into an archive (`exporters/core/pulp/<id>/exports/`).
    PulpExport(transfer::export::ExportRequest),
    /// Write a publication's or version's files below a directory
    /// (`exporters/core/filesystem/<id>/exports/`).
    FilesystemExport(transfer::filesystem::FilesystemExportRequest),
    /// Read an archive into repositories (`importers/core/pulp/<id>/imports/`).
    PulpImport(transfer::import::ImportRequest),
    /// Read the stored units of a repository's latest version again through their plugin and
    /// rewrite metadata that changed (`repair_metadata/`).
    RepairMetadata {
        /// Repository id.
        repository_id: String,
    },
    /// Read an upstream Pulp's distributions and bring the local objects in line
    /// (`upstream-pulps/<id>/replicate/`); queues the syncs and the last step in its group.
    Replicate {
        /// The upstream.
        upstream_id: String,
        /// A one-time selection instead of the upstream's `q_select`.
        q_select: Option<String>,
        /// The task group.
        group_id: String,
    },
    /// Point the replicated distributions at their new versions once every sync completed.
    FinalizeReplication {
        /// The upstream.
        upstream_id: String,
        /// The task group.
        group_id: String,
        /// `(distribution id, repository id)` pairs.
        pairs: Vec<(String, String)>,
    },
    /// Make the version of one repository an import staged.
    ImportRepositoryVersion {
        /// Repository id.
        repository_id: String,
        /// Where the import staged the version's units.
        staging_key: String,
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
            TaskArgs::PurgeTasks { .. } => "purge-tasks",
            TaskArgs::AcsRefresh { .. } => "acs-refresh",
            TaskArgs::AddUnits { .. } => "add-units",
            TaskArgs::CreateDistribution { .. } => "create-distribution",
            TaskArgs::Delete { .. } => "delete",
            TaskArgs::Update { .. } => "update",
            TaskArgs::DeleteVersion { .. } => "delete-version",
            TaskArgs::PulpExport(_) => "pulp-export",
            TaskArgs::FilesystemExport(_) => "filesystem-export",
            TaskArgs::PulpImport(_) => "pulp-import",
            TaskArgs::ImportRepositoryVersion { .. } => "import-repository-version",
            TaskArgs::Replicate { .. } => "replicate",
            TaskArgs::RepairMetadata { .. } => "repair-metadata",
            TaskArgs::FinalizeReplication { .. } => "finalize-replication",
        }
    }
}

impl TaskArgs {
    /// The repository a task of this kind may make a new version of.
    fn versioned_repository(&self) -> Option<&str> {
        match self {
            TaskArgs::Sync { repository_id, .. }
            | TaskArgs::Modify { repository_id, .. }
            | TaskArgs::AddUnits { repository_id, .. }
            | TaskArgs::ImportRepositoryVersion { repository_id, .. } => Some(repository_id),
            TaskArgs::Upload { repository_id, .. }
            | TaskArgs::UploadFromChunks { repository_id, .. } => repository_id.as_deref(),
            _ => None,
        }
    }
}

/// Runs a task; returns the hrefs of what it created. A new version of a repository with
/// `autopublish` is published by the same task, as in Pulp, so distributions that follow the
/// repository serve it when the task ends.
pub async fn run(
    backends: &Backends,
    task: Arc<TaskHandle>,
    args: TaskArgs,
) -> anyhow::Result<Vec<String>> {
    let versioned = args.versioned_repository().map(str::to_owned);
    let mut created = run_kind(backends, task.clone(), args).await?;
    if let Some(repository_id) = versioned
        && let Some(publication) =
            publications::autopublish(backends, &task, &repository_id, &created).await?
    {
        created.push(publication);
    }
    Ok(created)
}

async fn run_kind(
    backends: &Backends,
    task: Arc<TaskHandle>,
    args: TaskArgs,
) -> anyhow::Result<Vec<String>> {
    match args {
        TaskArgs::Sync {
            repository_id,
            remote_id,
            mirror,
        } => sync::run(backends, &task, &repository_id, &remote_id, mirror).await,
        TaskArgs::Modify {
            repository_id,
            add,
            remove,
            base_version,
        } => {
            let number = versions::modify(
                &backends.db,
                &backends.plugins.rest_names(),
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
                        backends.db.pool(),
                        &backends.plugins.rest_names(),
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
            let href = publications::publish(backends, &task, &repository_id, version).await?;
            Ok(vec![href])
        }
        TaskArgs::Upload {
            plugin,
            sha256,
            relative_path,
            repository_id,
        } => {
            uploads::create_content(
                backends,
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
            let artifact =
                chunked_uploads::assemble(&backends.db, &backends.blobs, &upload_id, None).await?;
            uploads::create_content(
                backends,
                &task,
                &plugin,
                &artifact.sha256,
                relative_path.as_deref(),
                repository_id.as_deref(),
            )
            .await
        }
        TaskArgs::CommitUpload { upload_id, sha256 } => {
            let artifact =
                chunked_uploads::assemble(&backends.db, &backends.blobs, &upload_id, Some(&sha256))
                    .await?;
            Ok(vec![hrefs::artifact(&artifact.id)])
        }
        TaskArgs::OrphanCleanup {
            protection_minutes,
            content_ids,
        } => {
            maintenance::orphan_cleanup(
                backends,
                &task,
                protection_minutes,
                content_ids.as_deref(),
            )
            .await?;
            Ok(Vec::new())
        }
        TaskArgs::ReclaimSpace {
            repository_ids,
            keep,
        } => {
            maintenance::reclaim_space(backends, &task, &repository_ids, &keep).await?;
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
            maintenance::repair(backends, &task, scope, verify_checksums).await?;
            Ok(Vec::new())
        }
        TaskArgs::AddUnits {
            repository_id,
            plugin,
            remote_id,
            units,
            remove,
        } => {
            let change = additions::Change { units, remove };
            additions::run(
                &backends.db,
                &backends.plugins.rest_names(),
                &task,
                (&repository_id, &plugin),
                remote_id.as_deref(),
                change,
            )
            .await
        }
        TaskArgs::AcsRefresh { acs_id, path } => {
            acs::refresh(backends, &task, &acs_id, &path).await?;
            Ok(Vec::new())
        }
        TaskArgs::PurgeTasks {
            finished_before,
            states,
            purger,
        } => {
            maintenance::purge_tasks(backends, &task, &finished_before, &states, &purger).await?;
            Ok(Vec::new())
        }
        TaskArgs::CreateDistribution { fields } => {
            let names = backends.plugins.rest_names();
            Ok(vec![
                distributions::create(&backends.db, &names, fields).await?,
            ])
        }
        TaskArgs::Delete { href } => {
            objects::delete_object(&backends.db, &backends.plugins.rest_names(), &href).await?;
            Ok(Vec::new())
        }
        TaskArgs::Update { href, changes } => {
            let names = backends.plugins.rest_names();
            objects::update_object(&backends.db, &names, &href, &changes).await?;
            Ok(Vec::new())
        }
        TaskArgs::DeleteVersion {
            repository_id,
            number,
        } => {
            versions::delete_version(
                &backends.db,
                &backends.plugins.rest_names(),
                &repository_id,
                number,
            )
            .await?;
            Ok(Vec::new())
        }
        TaskArgs::PulpExport(request) => transfer::export::run(backends, &task, request).await,
        TaskArgs::FilesystemExport(request) => {
            transfer::filesystem::run(backends, &task, request).await
        }
        TaskArgs::PulpImport(request) => {
            let outcome = transfer::import::run(backends, &task, &request).await;
            let outcome = match outcome {
                Ok(imported) => queue_import_versions(backends, &request.group_id, imported).await,
                Err(error) => Err(error),
            };
            // The group is whole whatever happened: its repository tasks are queued, or never
            // will be.
            super::all_dispatched(&backends.db, &request.group_id).await?;
            outcome
        }
        TaskArgs::ImportRepositoryVersion {
            repository_id,
            staging_key,
        } => transfer::import::make_version(backends, &repository_id, &staging_key).await,
        TaskArgs::Replicate {
            upstream_id,
            q_select,
            group_id,
        } => {
            let outcome =
                replication::plan(backends, &task, &upstream_id, q_select.as_deref()).await;
            let outcome = match outcome {
                Ok(plan) => queue_replication(backends, &upstream_id, &group_id, plan).await,
                Err(error) => Err(error),
            };
            super::all_dispatched(&backends.db, &group_id).await?;
            outcome
        }
        TaskArgs::RepairMetadata { repository_id } => {
            uploads::repair_metadata(backends, &task, &repository_id).await?;
            Ok(Vec::new())
        }
        TaskArgs::FinalizeReplication {
            upstream_id,
            group_id,
            pairs,
        } => {
            replication::finalize(backends, &task, &upstream_id, &group_id, &pairs).await?;
            Ok(Vec::new())
        }
    }
}

/// Queues, in the replication's task group, a mirror sync of each replicated repository, then
/// the last step, which locks every one of them and so runs after their syncs.
async fn queue_replication(
    backends: &Backends,
    upstream_id: &str,
    group_id: &str,
    plan: replication::Plan,
) -> anyhow::Result<Vec<String>> {
    let mut last_locks = vec![ResourceLock::exclusive(replication::href(upstream_id))];
    for (repository_id, remote_id, repository_href, remote_href) in plan.syncs {
        let args = TaskArgs::Sync {
            repository_id,
            remote_id,
            mirror: true,
        };
        super::enqueue_in_group(
            &backends.db,
            "granary.tasks.sync",
            &args,
            &[
                ResourceLock::exclusive(repository_href.clone()),
                ResourceLock::shared(remote_href),
            ],
            Some(group_id),
        )
        .await?;
        last_locks.push(ResourceLock::exclusive(repository_href));
    }
    let args = TaskArgs::FinalizeReplication {
        upstream_id: upstream_id.to_owned(),
        group_id: group_id.to_owned(),
        pairs: plan.pairs,
    };
    super::enqueue_in_group(
        &backends.db,
        "granary.tasks.replica.finalize_replication",
        &args,
        &last_locks,
        Some(group_id),
    )
    .await?;
    Ok(Vec::new())
}

/// Queues, in the import's task group, one task per repository version an import staged
/// (exclusive on that repository only, so the rest of the server keeps working); answers what
/// the import created.
async fn queue_import_versions(
    backends: &Backends,
    group_id: &str,
    imported: transfer::import::Imported,
) -> anyhow::Result<Vec<String>> {
    for version in imported.versions {
        let args = TaskArgs::ImportRepositoryVersion {
            repository_id: version.repository_id,
            staging_key: version.staging_key,
        };
        super::enqueue_in_group(
            &backends.db,
            "granary.tasks.importer.import_repository_version",
            &args,
            &[ResourceLock::exclusive(version.repository_href)],
            Some(group_id),
        )
        .await?;
    }
    Ok(imported.created)
}

/// The name of the task that adds and removes units for a plugin's `handle`.
const ADD_UNITS: &str = "granary.tasks.add_units";

/// Longest pause between two looks at a task the request waits for.
const MAX_POLL: Duration = Duration::from_millis(200);

/// What a request waiting for a task looks at in the task's row.
#[derive(Debug, sqlx::FromRow)]
struct TaskEndRow {
    state: String,
    error: Option<String>,
    created_resources: String,
}

/// The most units an `add-units` change may name to run at once in the request (see
/// [`super::run_immediately`]); a larger one is queued, so that it does not hold the write lock
/// for long.
const IMMEDIATE_UNITS: usize = 64;

/// The repository an `add-units` task changes: its id, and the plugin and type its href (the
/// task's lock) is made of, which the caller read with the distribution.
#[derive(Clone, Copy, Debug)]
pub struct TargetRepository<'a> {
    /// `repositories.id`.
    pub id: &'a str,
    /// The plugin of its type.
    pub plugin: &'a str,
    /// Its type, within the plugin.
    pub type_name: &'a str,
}

/// Runs an `add-units` task on `repository` (exclusive lock) that adds `units` and removes
/// the units named by (content type, natural key) in `remove`, and waits until it ends. Returns
/// the href of the new version, if one was made. A small change whose repository no other task
/// holds or waits for runs at once, in this process (an upload: Pulp's immediate task); any
/// other is queued for a worker. `finished` (a worker of this process recorded a task's end)
/// makes the wait look at once; a worker of another process is seen at the next poll.
#[expect(
    clippy::too_many_arguments,
    reason = "the two signals are the process's, the rest the request's"
)]
pub async fn add_units_and_wait(
    db: &Db,
    names: &RestNames,
    wakeup: &Notify,
    finished: &Notify,
    repository: TargetRepository<'_>,
    plugin: &str,
    remote_id: Option<&str>,
    units: &[UnitDeclaration],
    remove: &[(String, String)],
    unrecorded: &[artifacts::Unrecorded],
) -> Result<Option<String>, AddError> {
    let repository_id = repository.id;
    let lock = ResourceLock::exclusive(hrefs::repository(
        names,
        repository.plugin,
        repository.type_name,
        repository_id,
    ));
    let declared: Vec<additions::DeclaredUnit> =
        units.iter().map(additions::DeclaredUnit::from).collect();
    let args = TaskArgs::AddUnits {
        repository_id: repository_id.to_owned(),
        plugin: plugin.to_owned(),
        remote_id: remote_id.map(str::to_owned),
        units: declared,
        remove: remove.to_vec(),
    };
    if units.len() + remove.len() <= IMMEDIATE_UNITS {
        // The request's files are recorded with the version that uses them: one commit. The
        // repository's facts that the new version needs are read, and the units stored, in
        // the same trip: two trips fewer.
        let mut first = Batch::new();
        artifacts::record_statements(&mut first, unrecorded);
        let facts_at = first.len();
        versions::read_facts(&mut first, repository_id);
        let units_at = first.len();
        let units = declarations::first_trip(&mut first, plugin, units.to_vec());
        let work = async |tx: &mut WriteTx, task_id: &str, last: &mut Batch, mut ran: Vec<Ran>| {
            let units_ran = ran.split_off(units_at.min(ran.len()));
            let read = ran
                .get(facts_at)
                .context("the repository's facts were not read")?;
            let facts = versions::RepositoryFacts::read_in(&read.rows)?;
            let target = ((repository_id, plugin), Some(facts));
            let change = (ToSave::FirstSent(units, units_ran), remove);
            additions::apply_in(tx, names, (task_id, last), target, remote_id, change).await
        };
        let locks = std::slice::from_ref(&lock);
        let ran = super::run_immediately(db, ADD_UNITS, &args, locks, first, work)
            .await
            .map_err(anyhow::Error::from)?;
        let refused = match ran {
            Immediate::Busy => None,
            Immediate::Ended(Outcome::Completed(created)) => return Ok(created.into_iter().next()),
            Immediate::Ended(Outcome::Failed(description)) => Some(description),
            Immediate::Ended(Outcome::Canceled) => Some("the task canceled".to_owned()),
        };
        // Rolled back with the work, or not run: recorded on their own, as stored files are.
        artifacts::record_all(db, unrecorded).await?;
        if let Some(description) = refused {
            return Err(AddError::Refused(description));
        }
    } else {
        artifacts::record_all(db, unrecorded).await?;
    }
    let task_id = super::enqueue(db, ADD_UNITS, &args, &[lock])
        .await
        .map_err(anyhow::Error::from)?;
    wakeup.notify_waiters();
    let mut pause = Duration::from_millis(5);
    loop {
        // Registered before the look, so an end recorded between the look and the wait is not
        // missed.
        let ended = finished.notified();
        tokio::pin!(ended);
        ended.as_mut().enable();
        let row = sqlx::query_as::<_, TaskEndRow>(
            "SELECT state, error, created_resources FROM tasks WHERE id = $1",
        )
        .bind(&task_id)
        .fetch_one(db.pool())
        .await
        .map_err(anyhow::Error::from)?;
        let task_state = row.state;
        match task_state.as_str() {
            state::COMPLETED => {
                let created: Vec<String> =
                    serde_json::from_str(&row.created_resources).unwrap_or_default();
                return Ok(created.into_iter().next());
            }
            state::FAILED | state::CANCELED => {
                let description = row
                    .error
                    .and_then(|error| serde_json::from_str::<serde_json::Value>(&error).ok())
                    .and_then(|error| error["description"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("the task {task_state}"));
                return Err(AddError::Refused(description));
            }
            _ => {}
        }
        tokio::select! {
            () = &mut ended => {}
            () = tokio::time::sleep(pause) => pause = (pause * 2).min(MAX_POLL),
        }
    }
}
