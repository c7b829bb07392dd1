//! The export task of a pulp exporter: the chosen version of each of its repositories, their
//! units and the artifacts they need, written as an archive ([`super::archive`]) with its table
//! of contents, and recorded as an export. An incremental export (`full: false`) carries every
//! unit but only the artifacts the versions added since the start versions (by default those
//! of the exporter's last export).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use futures::TryStreamExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use super::archive::{ChunkedFile, TableOfContents, TarWriter};
use crate::db::{IN_VERSION, new_id, now};
use crate::domain::{Backends, PULP_API_VERSION, hrefs};
use crate::progress::TaskHandle;

/// The format of Granary's exports, in `versions.json` as the component `granary-export`.
pub const FORMAT_VERSION: &str = "1";

/// `/pulp/api/v3/exporters/core/pulp/<exporter>/exports/<export>/`
pub fn href(exporter_id: &str, export_id: &str) -> String {
    format!(
        "{}exporters/core/pulp/{exporter_id}/exports/{export_id}/",
        hrefs::API_ROOT
    )
}

/// A repository version, as an export records what it wrote.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExportedVersion {
    /// The repository.
    pub repository_id: String,
    /// The version number.
    pub number: i64,
}

/// What an export wrote, as it records it (`exported_resources`): the href, and for a version
/// its repository and number (where an incremental export starts).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportedResource {
    /// The version's or publication's href.
    pub href: String,
    /// The version, when it is one.
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub version: Option<ExportedVersion>,
}

/// The hrefs an export's `exported_resources` column records.
pub fn exported_hrefs(column: &str) -> Vec<String> {
    serde_json::from_str::<Vec<ExportedResource>>(column)
        .unwrap_or_default()
        .into_iter()
        .map(|resource| resource.href)
        .collect()
}

/// An export as the API validated it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExportRequest {
    /// The exporter.
    pub exporter_id: String,
    /// Every artifact (true) or only those added since the start versions.
    pub full: bool,
    /// Check and count what would be exported, write nothing.
    pub dry_run: bool,
    /// Largest output file, in bytes; one file when absent.
    pub chunk_size: Option<u64>,
    /// The versions to export instead of each repository's latest.
    pub versions: Option<Vec<ExportedVersion>>,
    /// Where an incremental export starts instead of the last export's versions.
    pub start_versions: Option<Vec<ExportedVersion>>,
    /// Copied into the table of contents' `meta`.
    pub meta: serde_json::Map<String, serde_json::Value>,
    /// The request's fields, as the export shows them (`params`).
    pub params: serde_json::Value,
}

/// A repository of the export, as `repositories.json` lists it.
#[derive(Debug, Serialize, Deserialize)]
pub struct RepositoryEntry {
    /// Its name, which an importer maps to a local repository.
    pub name: String,
    /// Its plugin and repository type.
    pub plugin: String,
    /// The repository type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Its description.
    pub description: Option<String>,
    /// Its labels.
    pub pulp_labels: serde_json::Value,
    /// The exported version's number.
    pub version: i64,
    /// The directory of the version's units in the archive.
    pub dir: String,
}

/// An artifact, as `artifacts.jsonl` lists it.
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow)]
pub struct ArtifactEntry {
    /// sha256, lower-case hex: also its name in the archive.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// Further digests, where stored.
    pub md5: Option<String>,
    /// sha1.
    pub sha1: Option<String>,
    /// sha224.
    pub sha224: Option<String>,
    /// sha384.
    pub sha384: Option<String>,
    /// sha512.
    pub sha512: Option<String>,
}

/// A unit, as a version's `content.jsonl` lists it: everything its row holds, and its files.
#[derive(Debug, Serialize, Deserialize)]
pub struct UnitEntry {
    /// The content type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The natural key, as stored.
    pub natural_key: String,
    /// The metadata, as stored (JSON text).
    pub metadata: String,
    /// The labels (JSON text).
    pub labels: String,
    /// Each file: its path in the unit and its artifact's sha256.
    pub files: Vec<(String, String)>,
}

/// Where an artifact sits in the archive.
pub fn artifact_name(sha256: &str) -> String {
    format!("artifacts/{}/{sha256}", &sha256[..2])
}

/// A repository of an exporter, as its `repositories` column lists it (with its type, which
/// its href needs).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExporterRepository {
    /// The repository's id.
    pub id: String,
    /// Its plugin.
    pub plugin: String,
    /// Its repository type.
    pub type_name: String,
}

/// The repositories of an exporter (its `repositories` column).
pub fn exporter_repositories(column: &str) -> Vec<ExporterRepository> {
    serde_json::from_str(column).unwrap_or_default()
}

/// The repository ids of an exporter (its `repositories` column).
pub fn repository_ids(column: &str) -> Vec<String> {
    exporter_repositories(column)
        .into_iter()
        .map(|repository| repository.id)
        .collect()
}

/// A repository of the exporter with what the export needs of it.
#[derive(Debug, sqlx::FromRow)]
struct Repository {
    id: String,
    name: String,
    plugin: String,
    type_name: String,
    description: Option<String>,
    labels: String,
    latest_version: i64,
}

/// Runs an export; answers the export's href.
pub async fn run(
    backends: &Backends,
    task: &Arc<TaskHandle>,
    request: ExportRequest,
) -> anyhow::Result<Vec<String>> {
    let db = &backends.db;
    let (path, repositories_column, last_export): (String, String, Option<String>) =
        sqlx::query_as(
            "SELECT path, repositories, last_export_id FROM exporters WHERE id = $1 AND kind = 'pulp'",
        )
        .bind(&request.exporter_id)
        .fetch_optional(db.pool())
        .await?
        .context("the exporter no longer exists")?;
    // Checked again here: the allowed paths are this process's, and may have changed since
    // the request was accepted.
    let dir = backends
        .allowed_paths
        .export_dir(&path)
        .map_err(anyhow::Error::msg)?;
    let mut repositories = Vec::new();
    for id in repository_ids(&repositories_column) {
        let repository = sqlx::query_as::<_, Repository>(
            "SELECT id, name, plugin, type_name, description, labels, latest_version
             FROM repositories WHERE id = $1",
        )
        .bind(&id)
        .fetch_optional(db.pool())
        .await?
        .context("a repository of the exporter no longer exists")?;
        repositories.push(repository);
    }
    let ending: Vec<ExportedVersion> = match &request.versions {
        Some(versions) => versions.clone(),
        None => repositories
            .iter()
            .map(|repository| ExportedVersion {
                repository_id: repository.id.clone(),
                number: repository.latest_version,
            })
            .collect(),
    };
    let starting: Vec<ExportedVersion> = if request.full {
        Vec::new()
    } else if let Some(start) = &request.start_versions {
        start.clone()
    } else {
        match &last_export {
            Some(export_id) => {
                let column: Option<String> =
                    sqlx::query_scalar("SELECT exported_resources FROM exports WHERE id = $1")
                        .bind(export_id)
                        .fetch_optional(db.pool())
                        .await?;
                column
                    .and_then(|column| serde_json::from_str::<Vec<ExportedResource>>(&column).ok())
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|resource| resource.version)
                    .collect()
            }
            None => anyhow::bail!(
                "Incremental export can only be requested when there is a previous export or start_versions= has been specified."
            ),
        }
    };

    let mut artifacts: BTreeMap<String, ArtifactEntry> = BTreeMap::new();
    for version in &ending {
        ensure_version_exists(backends, version).await?;
        let on_demand: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT 1 FROM repository_content rc JOIN content_artifacts ca ON ca.content_id = rc.content_id
             WHERE {IN_VERSION} AND ca.artifact_id IS NULL LIMIT 1"
        ))
        .bind(&version.repository_id)
        .bind(version.number)
        .fetch_optional(db.pool())
        .await?;
        if on_demand.is_some() {
            anyhow::bail!("Remote artifacts cannot be exported.");
        }
        let start = starting
            .iter()
            .find(|start| start.repository_id == version.repository_id);
        for artifact in version_artifacts(backends, version, start).await? {
            artifacts.entry(artifact.sha256.clone()).or_insert(artifact);
        }
    }

    if request.dry_run {
        let bytes: i64 = artifacts.values().map(|artifact| artifact.size).sum();
        task.report(
            "export.artifacts",
            &format!("Would export {} artifacts ({bytes} bytes)", artifacts.len()),
            0,
            Some(artifacts.len() as u64),
        );
        return Ok(Vec::new());
    }
    let export_id = new_id();
    let created = now();
    db.write_one(
        sqlx::query(
            "INSERT INTO exports (id, exporter_id, task_id, params, created) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&export_id)
        .bind(&request.exporter_id)
        .bind(&task.id)
        .bind(request.params.to_string())
        .bind(&created),
    )
    .await?;
    tokio::fs::create_dir_all(&dir)
        .await
        .with_context(|| format!("creating the export directory {}", dir.display()))?;
    let stem = format!(
        "export-{export_id}-{}",
        chrono::Utc::now().format("%Y%m%d_%H%M")
    );
    let base = dir.join(format!("{stem}.tar"));
    let mut tar = TarWriter::new(ChunkedFile::new(base.clone(), request.chunk_size));
    let scratch = dir.join(format!(".{stem}.part"));
    let outcome = write_archive(
        backends,
        task,
        &mut tar,
        &scratch,
        (&repositories, &ending),
        &artifacts,
    )
    .await;
    let _ = tokio::fs::remove_file(&scratch).await;
    let written = match outcome {
        Ok(()) => tar.finish().await.map_err(anyhow::Error::from),
        Err(error) => Err(error),
    };
    let written = match written {
        Ok(written) => written,
        Err(error) => {
            // Whatever was written cannot be trusted: it goes, and the export stays without
            // output (as Pulp keeps a failed export).
            for path in tar_paths(&base, request.chunk_size) {
                let _ = tokio::fs::remove_file(path).await;
            }
            return Err(error);
        }
    };

    let base_name = file_name(&base);
    let mut meta = request.meta.clone();
    meta.insert("checksum_type".into(), "sha256".into());
    meta.insert("file".into(), base_name.into());
    meta.insert("global_hash".into(), written.global_hash.clone().into());
    if let Some(chunk_size) = request.chunk_size {
        meta.insert("chunk_size".into(), chunk_size.into());
    }
    let toc = TableOfContents {
        meta: meta.clone(),
        files: written
            .files
            .iter()
            .map(|(path, sha256)| (file_name(path), sha256.clone()))
            .collect(),
    };
    let toc_path = dir.join(format!("{stem}-toc.json"));
    let toc_bytes = serde_json::to_vec(&toc)?;
    write_synced(&toc_path, &toc_bytes).await?;
    let toc_sha256 = hex::encode(Sha256::digest(&toc_bytes));
    let mut output: serde_json::Map<String, serde_json::Value> = written
        .files
        .iter()
        .map(|(path, sha256)| (path.display().to_string(), sha256.clone().into()))
        .collect();
    output.insert(toc_path.display().to_string(), toc_sha256.clone().into());
    let toc_info = serde_json::json!({
        "file": toc_path.display().to_string(),
        "sha256": toc_sha256,
        "meta": request.meta,
    });
    let names = backends.plugins.rest_names();
    let exported: Vec<ExportedResource> = ending
        .iter()
        .filter_map(|version| {
            let repository = repositories
                .iter()
                .find(|repository| repository.id == version.repository_id)?;
            Some(ExportedResource {
                href: hrefs::version(
                    &names,
                    &repository.plugin,
                    &repository.type_name,
                    &repository.id,
                    version.number,
                ),
                version: Some(version.clone()),
            })
        })
        .collect();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE exports SET exported_resources = $2, output_file_info = $3, toc_info = $4 WHERE id = $1",
    )
    .bind(&export_id)
    .bind(serde_json::to_string(&exported)?)
    .bind(serde_json::Value::Object(output).to_string())
    .bind(toc_info.to_string())
    .execute(&mut *tx)
    .await?;
    // Only an export that succeeded is where the next incremental one starts.
    sqlx::query("UPDATE exporters SET last_export_id = $2 WHERE id = $1")
        .bind(&request.exporter_id)
        .bind(&export_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(vec![href(&request.exporter_id, &export_id)])
}

/// Fails when the version is gone (deleted since the request was accepted).
async fn ensure_version_exists(
    backends: &Backends,
    version: &ExportedVersion,
) -> anyhow::Result<()> {
    let exists: Option<i64> = sqlx::query_scalar(
        "SELECT number FROM repository_versions WHERE repository_id = $1 AND number = $2",
    )
    .bind(&version.repository_id)
    .bind(version.number)
    .fetch_optional(backends.db.pool())
    .await?;
    exists.map(|_| ()).with_context(|| {
        format!(
            "version {} of a repository no longer exists",
            version.number
        )
    })
}

/// The artifacts of a version's units; with a start version, only those it does not have.
async fn version_artifacts(
    backends: &Backends,
    version: &ExportedVersion,
    start: Option<&ExportedVersion>,
) -> anyhow::Result<Vec<ArtifactEntry>> {
    let columns = "a.sha256, a.size, a.md5, a.sha1, a.sha224, a.sha384, a.sha512";
    let joined = format!(
        "FROM repository_content rc JOIN content_artifacts ca ON ca.content_id = rc.content_id
         JOIN artifacts a ON a.id = ca.artifact_id WHERE {IN_VERSION}"
    );
    let rows = match start {
        None => {
            sqlx::query_as::<_, ArtifactEntry>(&format!("SELECT DISTINCT {columns} {joined}"))
                .bind(&version.repository_id)
                .bind(version.number)
                .fetch_all(backends.db.pool())
                .await?
        }
        Some(start) => {
            sqlx::query_as::<_, ArtifactEntry>(&format!(
                "SELECT DISTINCT {columns} {joined} AND NOT EXISTS (
                     SELECT 1 FROM repository_content s JOIN content_artifacts sca ON sca.content_id = s.content_id
                     WHERE s.repository_id = $3 AND s.version_added <= $4
                       AND (s.version_removed IS NULL OR s.version_removed > $4)
                       AND sca.artifact_id = ca.artifact_id)"
            ))
            .bind(&version.repository_id)
            .bind(version.number)
            .bind(&start.repository_id)
            .bind(start.number)
            .fetch_all(backends.db.pool())
            .await?
        }
    };
    Ok(rows)
}

/// Units read per query while writing a version's `content.jsonl`.
const UNIT_PAGE: i64 = 500;

async fn write_archive(
    backends: &Backends,
    task: &Arc<TaskHandle>,
    tar: &mut TarWriter,
    scratch: &Path,
    (repositories, versions): (&[Repository], &[ExportedVersion]),
    artifacts: &BTreeMap<String, ArtifactEntry>,
) -> anyhow::Result<()> {
    let mut components: Vec<serde_json::Value> = vec![
        serde_json::json!({"component": "core", "version": PULP_API_VERSION}),
        serde_json::json!({"component": "granary-export", "version": FORMAT_VERSION}),
    ];
    let mut plugins: Vec<&str> = repositories.iter().map(|r| r.plugin.as_str()).collect();
    plugins.sort_unstable();
    plugins.dedup();
    components.extend(
        plugins
            .iter()
            .map(|plugin| serde_json::json!({"component": plugin, "version": PULP_API_VERSION})),
    );
    tar.append_bytes("versions.json", &serde_json::to_vec(&components)?)
        .await?;

    let exported: Vec<(RepositoryEntry, &ExportedVersion)> = versions
        .iter()
        .filter_map(|version| {
            let repository = repositories
                .iter()
                .find(|repository| repository.id == version.repository_id)?;
            let entry = RepositoryEntry {
                name: repository.name.clone(),
                plugin: repository.plugin.clone(),
                type_name: repository.type_name.clone(),
                description: repository.description.clone(),
                pulp_labels: serde_json::from_str(&repository.labels).unwrap_or_default(),
                version: version.number,
                dir: format!("repository-{}_{}", repository.id, version.number),
            };
            Some((entry, version))
        })
        .collect();
    let entries: Vec<&RepositoryEntry> = exported.iter().map(|(entry, _)| entry).collect();
    tar.append_bytes("repositories.json", &serde_json::to_vec(&entries)?)
        .await?;

    let mut listing = tokio::io::BufWriter::new(tokio::fs::File::create(scratch).await?);
    for artifact in artifacts.values() {
        listing.write_all(&serde_json::to_vec(artifact)?).await?;
        listing.write_all(b"\n").await?;
    }
    listing.flush().await?;
    drop(listing);
    tar.append_file("artifacts.jsonl", scratch).await?;

    let total = artifacts.len() as u64;
    task.report("export.artifacts", "Exporting Artifacts", 0, Some(total));
    for (done, artifact) in artifacts.values().enumerate() {
        let stream = backends
            .blobs
            .read(&artifact.sha256, None)
            .await
            .with_context(|| format!("reading artifact {}", artifact.sha256))?;
        let mut body = tokio_util::io::StreamReader::new(stream.map_err(std::io::Error::other));
        tar.append_stream(
            &artifact_name(&artifact.sha256),
            artifact.size as u64,
            &mut body,
        )
        .await
        .with_context(|| format!("exporting artifact {}", artifact.sha256))?;
        task.report(
            "export.artifacts",
            "Exporting Artifacts",
            done as u64 + 1,
            Some(total),
        );
    }

    for (entry, version) in &exported {
        let message = format!("Exporting content for {}", entry.name);
        let count = write_units(backends, version, scratch).await?;
        tar.append_file(&format!("{}/content.jsonl", entry.dir), scratch)
            .await?;
        task.report(
            &format!("export.repo.version.content.{}", entry.name),
            &message,
            count,
            Some(count),
        );
    }
    Ok(())
}

/// Writes the units of `version` to `path`, one JSON line each; answers how many.
async fn write_units(
    backends: &Backends,
    version: &ExportedVersion,
    path: &Path,
) -> anyhow::Result<u64> {
    #[derive(sqlx::FromRow)]
    struct Unit {
        id: String,
        type_name: String,
        natural_key: String,
        metadata: String,
        labels: String,
    }
    let mut out = tokio::io::BufWriter::new(tokio::fs::File::create(path).await?);
    let mut after = String::new();
    let mut count = 0;
    loop {
        let units = sqlx::query_as::<_, Unit>(&format!(
            "SELECT c.id, c.type_name, c.natural_key, c.metadata, c.labels
             FROM repository_content rc JOIN content c ON c.id = rc.content_id
             WHERE {IN_VERSION} AND c.id > $3 ORDER BY c.id LIMIT $4"
        ))
        .bind(&version.repository_id)
        .bind(version.number)
        .bind(&after)
        .bind(UNIT_PAGE)
        .fetch_all(backends.db.pool())
        .await?;
        let Some(last) = units.last() else { break };
        after = last.id.clone();
        let ids: Vec<String> = units.iter().map(|unit| unit.id.clone()).collect();
        let sql = format!(
            "SELECT ca.content_id, ca.relative_path, a.sha256 FROM content_artifacts ca
             JOIN artifacts a ON a.id = ca.artifact_id WHERE ca.content_id IN ({})
             ORDER BY ca.content_id, ca.relative_path",
            crate::db::placeholders(1, ids.len())
        );
        let mut query = sqlx::query_as::<_, (String, String, String)>(&sql);
        for id in &ids {
            query = query.bind(id);
        }
        let mut files: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for (content_id, relative_path, sha256) in query.fetch_all(backends.db.pool()).await? {
            files
                .entry(content_id)
                .or_default()
                .push((relative_path, sha256));
        }
        for unit in units {
            let entry = UnitEntry {
                files: files.remove(&unit.id).unwrap_or_default(),
                type_name: unit.type_name,
                natural_key: unit.natural_key,
                metadata: unit.metadata,
                labels: unit.labels,
            };
            out.write_all(&serde_json::to_vec(&entry)?).await?;
            out.write_all(b"\n").await?;
            count += 1;
        }
    }
    out.flush().await?;
    Ok(count)
}

/// The paths an export at `base` may have created.
fn tar_paths(base: &Path, chunk_size: Option<u64>) -> Vec<PathBuf> {
    match chunk_size {
        None => vec![base.to_path_buf()],
        Some(_) => {
            let Some(dir) = base.parent() else {
                return Vec::new();
            };
            let prefix = format!("{}.", file_name(base));
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .map(|entry| entry.path())
                        .filter(|path| file_name(path).starts_with(&prefix))
                        .collect()
                })
                .unwrap_or_default()
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes a small file and syncs it.
async fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = tokio::fs::File::create(path).await?;
    file.write_all(bytes).await?;
    file.sync_all().await
}
