//! The export task of a filesystem exporter: the files of a publication (what it serves, its
//! metadata included) or of a repository version (each unit's files at their relative paths),
//! written below the exporter's directory, which must be empty, by copying, hard-linking or
//! symbolically linking the stored artifacts (links only where storage is the local disk).
//! With a start version only the files whose artifacts that version lacks are written (and a
//! publication's metadata, always).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use futures::TryStreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;

use super::export::{ExportedResource, ExportedVersion};
use crate::db::{IN_VERSION, new_id, now};
use crate::domain::{Backends, hrefs};
use crate::progress::TaskHandle;

/// `/pulp/api/v3/exporters/core/filesystem/<exporter>/exports/<export>/`
pub fn href(exporter_id: &str, export_id: &str) -> String {
    format!(
        "{}exporters/core/filesystem/{exporter_id}/exports/{export_id}/",
        hrefs::API_ROOT
    )
}

/// How files reach the export directory (Pulp's `method`).
pub const METHODS: [&str; 3] = ["write", "hardlink", "symlink"];

/// What is exported.
#[derive(Debug, Serialize, Deserialize)]
pub enum Source {
    /// A publication (its id), with its href.
    Publication(String, String),
    /// A repository version, with its href.
    Version(ExportedVersion, String),
}

/// A filesystem export as the API validated it.
#[derive(Debug, Serialize, Deserialize)]
pub struct FilesystemExportRequest {
    /// The exporter.
    pub exporter_id: String,
    /// What to export.
    pub source: Source,
    /// Only files whose artifacts this version lacks.
    pub start_version: Option<ExportedVersion>,
    /// The request's fields, as the export shows them.
    pub params: serde_json::Value,
}

/// A file to write: where, which artifact, and whether it is a publication's metadata.
#[derive(Debug, sqlx::FromRow)]
struct File {
    relative_path: String,
    sha256: Option<String>,
    metadata: i64,
}

/// Runs a filesystem export; answers the export's href.
pub async fn run(
    backends: &Backends,
    task: &Arc<TaskHandle>,
    request: FilesystemExportRequest,
) -> anyhow::Result<Vec<String>> {
    let db = &backends.db;
    let (path, method): (String, Option<String>) =
        sqlx::query_as("SELECT path, method FROM exporters WHERE id = $1 AND kind = 'filesystem'")
            .bind(&request.exporter_id)
            .fetch_optional(db.pool())
            .await?
            .context("the exporter no longer exists")?;
    let method = method.unwrap_or_else(|| "write".into());
    let dir = backends
        .allowed_paths
        .export_dir(&path)
        .map_err(anyhow::Error::msg)?;
    let export_id = new_id();
    let source_href = match &request.source {
        Source::Publication(_, href) | Source::Version(_, href) => href.clone(),
    };
    let exported = vec![ExportedResource {
        href: source_href,
        version: match &request.source {
            Source::Version(version, _) => Some(version.clone()),
            Source::Publication(..) => None,
        },
    }];
    db.write_one(
        sqlx::query(
            "INSERT INTO exports (id, exporter_id, task_id, params, exported_resources, created)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&export_id)
        .bind(&request.exporter_id)
        .bind(&task.id)
        .bind(request.params.to_string())
        .bind(serde_json::to_string(&exported)?)
        .bind(now()),
    )
    .await?;
    if !location_is_clean(&dir).await? {
        anyhow::bail!("Cannot export to directories that contain existing data.");
    }
    let files = files_of(backends, &request).await?;
    if files.iter().any(|file| file.sha256.is_none()) {
        anyhow::bail!("Cannot export artifacts that haven't been downloaded.");
    }
    if method != "write" && backends.blobs.backend_name() != "local" {
        anyhow::bail!("Only write is supported for non-filesystem storage.");
    }
    let starting = match &request.start_version {
        Some(start) => start_artifacts(backends, start).await?,
        None => std::collections::BTreeSet::new(),
    };
    tokio::fs::create_dir_all(&dir)
        .await
        .with_context(|| format!("creating {}", dir.display()))?;
    let wanted: Vec<&File> = files
        .iter()
        .filter(|file| {
            file.metadata != 0
                || file
                    .sha256
                    .as_ref()
                    .is_none_or(|sha256| !starting.contains(sha256))
        })
        .collect();
    let total = wanted.len() as u64;
    task.report("export.files", "Exporting Files", 0, Some(total));
    for (done, file) in wanted.into_iter().enumerate() {
        let sha256 = file.sha256.as_deref().unwrap_or_default();
        if !safe_relative(&file.relative_path) {
            anyhow::bail!(
                "The relative path {:?} cannot be written below the export directory.",
                file.relative_path
            );
        }
        let target = dir.join(&file.relative_path);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        place(backends, &method, sha256, &target)
            .await
            .with_context(|| format!("exporting {}", file.relative_path))?;
        task.report(
            "export.files",
            "Exporting Files",
            done as u64 + 1,
            Some(total),
        );
    }
    Ok(vec![href(&request.exporter_id, &export_id)])
}

/// The files of what is exported. A file without an artifact has `sha256` None.
async fn files_of(
    backends: &Backends,
    request: &FilesystemExportRequest,
) -> anyhow::Result<Vec<File>> {
    let pool = backends.db.pool();
    Ok(match &request.source {
        Source::Publication(id, _) => {
            sqlx::query_as::<_, File>(
                "SELECT pf.relative_path, COALESCE(own.sha256, unit.sha256) AS sha256,
                        CASE WHEN pf.content_artifact_id IS NULL THEN 1 ELSE 0 END AS metadata
                 FROM published_files pf
                 LEFT JOIN artifacts own ON own.id = pf.artifact_id
                 LEFT JOIN content_artifacts ca ON ca.id = pf.content_artifact_id
                 LEFT JOIN artifacts unit ON unit.id = ca.artifact_id
                 WHERE pf.publication_id = $1 ORDER BY pf.relative_path",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
        }
        Source::Version(version, _) => {
            sqlx::query_as::<_, File>(&format!(
                "SELECT ca.relative_path, a.sha256, 0 AS metadata
                 FROM repository_content rc JOIN content_artifacts ca ON ca.content_id = rc.content_id
                 LEFT JOIN artifacts a ON a.id = ca.artifact_id
                 WHERE {IN_VERSION} ORDER BY ca.relative_path"
            ))
            .bind(&version.repository_id)
            .bind(version.number)
            .fetch_all(pool)
            .await?
        }
    })
}

/// The sha256 of every artifact of a version.
async fn start_artifacts(
    backends: &Backends,
    start: &ExportedVersion,
) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let rows: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT DISTINCT a.sha256 FROM repository_content rc
         JOIN content_artifacts ca ON ca.content_id = rc.content_id
         JOIN artifacts a ON a.id = ca.artifact_id WHERE {IN_VERSION}"
    ))
    .bind(&start.repository_id)
    .bind(start.number)
    .fetch_all(backends.db.pool())
    .await?;
    Ok(rows.into_iter().collect())
}

/// Whether `dir` is missing or an empty directory (Pulp's rule).
async fn location_is_clean(dir: &Path) -> anyhow::Result<bool> {
    match tokio::fs::metadata(dir).await {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(error) => Err(error.into()),
        Ok(meta) if !meta.is_dir() => Ok(false),
        Ok(_) => Ok(tokio::fs::read_dir(dir)
            .await?
            .next_entry()
            .await?
            .is_none()),
    }
}

/// A relative path that stays below the directory it is joined to.
fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// Writes, hard-links or symbolically links artifact `sha256` at `target`.
async fn place(
    backends: &Backends,
    method: &str,
    sha256: &str,
    target: &Path,
) -> anyhow::Result<()> {
    let stored = backends.blobs.local_path(sha256);
    // A blob still in the journal gets its file first: a link needs one.
    if let Some(stored) = &stored
        && method != "write"
        && !tokio::fs::try_exists(stored).await.unwrap_or(false)
    {
        backends.blobs.settle().await?;
    }
    if let (Some(stored), "symlink") = (&stored, method) {
        tokio::fs::symlink(stored, target).await?;
        return Ok(());
    }
    // Another filesystem cannot hold a hard link: the file is copied, as Pulp does.
    if let (Some(stored), "hardlink") = (&stored, method)
        && tokio::fs::hard_link(stored, target).await.is_ok()
    {
        return Ok(());
    }
    let mut body = backends.blobs.read(sha256, None).await?;
    let mut out = tokio::fs::File::create(target).await?;
    while let Some(chunk) = body.try_next().await? {
        out.write_all(&chunk).await?;
    }
    out.sync_all().await?;
    Ok(())
}
