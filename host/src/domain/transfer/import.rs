//! The import task of a pulp importer, in Pulp's two steps: the import task reads the archive
//! (checking the table of contents' digests first when given one), stores and verifies every
//! artifact, records the units and stages each repository's content; then it queues, in its
//! task group, one task per repository that makes the new version (exclusive on that
//! repository only). Nothing becomes visible in a repository until its archive was read whole:
//! a bad archive fails the import with every repository as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _};

use super::archive::{Entry, TableOfContents, TarReader};
use super::export::{ArtifactEntry, FORMAT_VERSION, RepositoryEntry, UnitEntry, artifact_name};
use crate::db::{BindAll as _, new_id, now, placeholders, value_rows};
use crate::domain::artifacts::{ExtraDigests, ExtraHasher};
use crate::domain::{Backends, hrefs, versions};
use crate::progress::TaskHandle;

/// Largest `versions.json`, `repositories.json` or table of contents read.
const SMALL_FILE_LIMIT: u64 = 16 << 20;
/// Longest line of a `.jsonl` file (a unit with its metadata).
const LINE_LIMIT: usize = 16 << 20;
/// Units recorded per transaction.
const UNIT_BATCH: usize = 200;

/// `/pulp/api/v3/importers/core/pulp/<importer>/imports/<import>/`
pub fn href(importer_id: &str, import_id: &str) -> String {
    format!(
        "{}importers/core/pulp/{importer_id}/imports/{import_id}/",
        hrefs::API_ROOT
    )
}

/// An import as the API validated it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ImportRequest {
    /// The importer.
    pub importer_id: String,
    /// The export's tar, when given directly.
    pub path: Option<String>,
    /// The export's table of contents, when given instead.
    pub toc: Option<String>,
    /// Create the repositories the server does not have.
    pub create_repositories: bool,
    /// The task group the import and its repository tasks belong to.
    pub group_id: String,
    /// The request's fields, as the import shows them (`params`).
    pub params: serde_json::Value,
}

/// A repository of the export and where its version goes.
struct Destination {
    entry: RepositoryEntry,
    /// The local repository; `None` while it is to be created.
    repository_id: Option<String>,
    /// The local name.
    name: String,
    /// Where its units are staged until its version is made.
    staging_key: String,
    seen: bool,
}

/// What an import read, for the task layer to finish: the hrefs it created (the import, the
/// repositories it made) and the repository versions to make, one task each.
#[derive(Debug)]
pub struct Imported {
    /// The import's href and those of repositories it created.
    pub created: Vec<String>,
    /// The versions to make.
    pub versions: Vec<VersionToMake>,
}

/// A repository version an import staged.
#[derive(Debug)]
pub struct VersionToMake {
    /// The repository.
    pub repository_id: String,
    /// Its href (what its task locks).
    pub repository_href: String,
    /// Where its units are staged.
    pub staging_key: String,
}

/// Runs an import up to its repository versions, which [`make_version`] makes.
pub async fn run(
    backends: &Backends,
    task: &Arc<TaskHandle>,
    request: &ImportRequest,
) -> anyhow::Result<Imported> {
    let db = &backends.db;
    let mapping: String = sqlx::query_scalar("SELECT repo_mapping FROM importers WHERE id = $1")
        .bind(&request.importer_id)
        .fetch_optional(db.pool())
        .await?
        .context("the importer no longer exists")?;
    let mapping: BTreeMap<String, String> = serde_json::from_str(&mapping).unwrap_or_default();
    let import_id = new_id();
    db.write_one(
        sqlx::query(
            "INSERT INTO imports (id, importer_id, task_id, params, created) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&import_id)
        .bind(&request.importer_id)
        .bind(&task.id)
        .bind(request.params.to_string())
        .bind(now()),
    )
    .await?;
    let mut created = vec![href(&request.importer_id, &import_id)];

    let allowed = &backends.allowed_paths;
    let stream: Box<dyn AsyncRead + Unpin + Send> = match (&request.toc, &request.path) {
        (Some(toc), _) => {
            let toc = allowed
                .import_file("toc", toc)
                .map_err(anyhow::Error::msg)?;
            Box::new(verified_chunks(task, &toc).await?)
        }
        (None, Some(path)) => {
            let path = allowed
                .import_file("path", path)
                .map_err(anyhow::Error::msg)?;
            let file = tokio::fs::File::open(&path)
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            Box::new(tokio::io::BufReader::with_capacity(1 << 20, file))
        }
        (None, None) => anyhow::bail!("One of 'path' or 'toc' must be specified."),
    };
    let mut reader = TarReader::new(stream);
    let mut destinations: Vec<Destination> = Vec::new();
    let outcome = read_archive(
        backends,
        task,
        &mut reader,
        (&import_id, &mapping, request.create_repositories),
        &mut destinations,
    )
    .await;
    if let Err(error) = outcome {
        for destination in &destinations {
            let _ = versions::clear_staging(db, &destination.staging_key).await;
        }
        return Err(error);
    }

    let names = backends.plugins.rest_names();
    let mut versions = Vec::with_capacity(destinations.len());
    for destination in &destinations {
        let repository_id = match &destination.repository_id {
            Some(id) => id.clone(),
            None => {
                let entry = &destination.entry;
                let id = crate::domain::objects::create_repository(
                    &backends.db,
                    (&entry.plugin, &entry.type_name),
                    &destination.name,
                    entry.description.as_deref(),
                    &entry.pulp_labels.to_string(),
                )
                .await?;
                created.push(hrefs::repository(
                    &names,
                    &destination.entry.plugin,
                    &destination.entry.type_name,
                    &id,
                ));
                id
            }
        };
        versions.push(VersionToMake {
            repository_href: hrefs::repository(
                &names,
                &destination.entry.plugin,
                &destination.entry.type_name,
                &repository_id,
            ),
            repository_id,
            staging_key: destination.staging_key.clone(),
        });
    }
    task.report(
        "import.repo.versions",
        "Importing repository versions",
        0,
        Some(versions.len() as u64),
    );
    Ok(Imported { created, versions })
}

/// The task of one repository: its new version is exactly the units staged for it.
pub async fn make_version(
    backends: &Backends,
    repository_id: &str,
    staging_key: &str,
) -> anyhow::Result<Vec<String>> {
    let names = backends.plugins.rest_names();
    let outcome = versions::finish_version(
        &backends.db,
        &names,
        repository_id,
        staging_key,
        versions::Change::Mirror,
        &[],
    )
    .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            let _ = versions::clear_staging(&backends.db, staging_key).await;
            return Err(error);
        }
    };
    match outcome.number {
        Some(number) => Ok(vec![
            versions::href(backends.db.pool(), &names, repository_id, number).await?,
        ]),
        None => Ok(Vec::new()),
    }
}

/// Checks every chunk the table of contents names against its digest, then answers them as
/// one stream, in order.
async fn verified_chunks(
    task: &Arc<TaskHandle>,
    toc_path: &Path,
) -> anyhow::Result<impl AsyncRead + Unpin + Send + use<>> {
    let bytes = tokio::fs::read(toc_path)
        .await
        .with_context(|| format!("reading {}", toc_path.display()))?;
    if bytes.len() as u64 > SMALL_FILE_LIMIT {
        anyhow::bail!("The table of contents {} is too large.", toc_path.display());
    }
    let toc: TableOfContents = serde_json::from_slice(&bytes)
        .map_err(|_| anyhow::anyhow!("Missing 'files' or 'meta' keys in table-of-contents!"))?;
    let checksum = toc
        .meta
        .get("checksum_type")
        .and_then(|value| value.as_str())
        .unwrap_or("sha256");
    if checksum != "sha256" {
        anyhow::bail!(
            "The table of contents uses {checksum} checksums; Granary imports exports it wrote (sha256)."
        );
    }
    let dir = toc_path.parent().unwrap_or(Path::new("/"));
    let mut chunks: Vec<(PathBuf, &String)> = Vec::new();
    let mut missing = Vec::new();
    for (name, digest) in &toc.files {
        if name.contains('/') || name.contains('\\') || name == ".." || name == "." {
            anyhow::bail!("The table of contents names {name:?}, which is not a file beside it.");
        }
        let path = dir.join(name);
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            missing.push(name.clone());
        }
        chunks.push((path, digest));
    }
    if !missing.is_empty() {
        anyhow::bail!("Missing import-chunks named in table-of-contents: {missing:?}.");
    }
    let total = chunks.len() as u64;
    task.report("validate.chunks", "Validating Chunks", 0, Some(total));
    let mut mismatched = Vec::new();
    for (done, (path, digest)) in chunks.iter().enumerate() {
        if !sha256_of(path).await?.eq_ignore_ascii_case(digest) {
            mismatched.push(file_name(path));
        }
        task.report(
            "validate.chunks",
            "Validating Chunks",
            done as u64 + 1,
            Some(total),
        );
    }
    if !mismatched.is_empty() {
        anyhow::bail!("Import chunk hash mismatch: {mismatched:?}.");
    }
    let paths: Vec<PathBuf> = chunks.into_iter().map(|(path, _)| path).collect();
    let stream = futures::stream::iter(paths)
        .then(|path| async move { tokio::fs::File::open(path).await })
        .map_ok(|file| tokio_util::io::ReaderStream::with_capacity(file, 1 << 20))
        .try_flatten();
    Ok(tokio_util::io::StreamReader::new(Box::pin(stream)))
}

async fn sha256_of(path: &Path) -> anyhow::Result<String> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads the archive: what it is, where its repositories go, its artifacts (stored and
/// verified), and each repository's units (recorded and staged).
async fn read_archive<R: AsyncRead + Unpin>(
    backends: &Backends,
    task: &Arc<TaskHandle>,
    reader: &mut TarReader<R>,
    (import_id, mapping, create_repositories): (&str, &BTreeMap<String, String>, bool),
    destinations: &mut Vec<Destination>,
) -> anyhow::Result<()> {
    let versions = expect(reader, "versions.json").await?;
    let components: Vec<Component> =
        serde_json::from_slice(&reader.read_small(&versions, SMALL_FILE_LIMIT).await?)
            .context("versions.json is not a list of components")?;
    check_components(backends, &components)?;

    let listed = expect(reader, "repositories.json").await?;
    let entries: Vec<RepositoryEntry> =
        serde_json::from_slice(&reader.read_small(&listed, SMALL_FILE_LIMIT).await?)
            .context("repositories.json does not list repositories")?;
    let mut all_dirs = BTreeSet::new();
    for (index, entry) in entries.into_iter().enumerate() {
        if !all_dirs.insert(entry.dir.clone()) {
            anyhow::bail!(
                "repositories.json names the directory {:?} twice",
                entry.dir
            );
        }
        let name = mapping
            .get(&entry.name)
            .cloned()
            .unwrap_or_else(|| entry.name.clone());
        let local = sqlx::query_as::<_, (String, String, String)>(
            "SELECT id, plugin, type_name FROM repositories WHERE name = $1",
        )
        .bind(&name)
        .fetch_optional(backends.db.pool())
        .await?;
        let repository_id = match local {
            Some((id, plugin, type_name)) => {
                if (plugin.as_str(), type_name.as_str())
                    != (entry.plugin.as_str(), entry.type_name.as_str())
                {
                    anyhow::bail!(
                        "Repository '{name}' is a {plugin}.{type_name} repository; the export's '{}' is {}.{}.",
                        entry.name,
                        entry.plugin,
                        entry.type_name
                    );
                }
                Some(id)
            }
            None if create_repositories => None,
            None => {
                // Pulp's behaviour: a repository with nowhere to go is skipped, and said so.
                tracing::warn!(repository = %entry.name, "no destination repository: skipped");
                task.report(
                    &format!("import.repo.skipped.{}", entry.name),
                    &format!(
                        "Skipped '{}': there is no repository named '{name}'",
                        entry.name
                    ),
                    1,
                    Some(1),
                );
                continue;
            }
        };
        destinations.push(Destination {
            staging_key: format!("import-{import_id}-{index}"),
            repository_id,
            name,
            entry,
            seen: false,
        });
    }

    let listing = expect(reader, "artifacts.jsonl").await?;
    let mut artifacts: BTreeMap<String, ArtifactEntry> = BTreeMap::new();
    let mut lines = Lines::new(reader, &listing);
    while let Some(line) = lines.next().await? {
        let artifact: ArtifactEntry =
            serde_json::from_slice(line).context("artifacts.jsonl has an unreadable line")?;
        if artifact.sha256.len() != 64 || !artifact.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            anyhow::bail!(
                "artifacts.jsonl names {:?}, which is not a sha256",
                artifact.sha256
            );
        }
        artifacts.insert(artifact.sha256.to_ascii_lowercase(), artifact);
    }
    let by_name: BTreeMap<String, String> = artifacts
        .keys()
        .map(|sha256| (artifact_name(sha256), sha256.clone()))
        .collect();
    let total = artifacts.len() as u64;
    task.report("import.artifacts", "Importing Artifacts", 0, Some(total));
    let mut stored = BTreeSet::new();

    while let Some(entry) = reader.next().await? {
        if let Some(sha256) = by_name.get(&entry.name) {
            if !stored.insert(sha256.clone()) {
                anyhow::bail!("The archive holds {} twice.", entry.name);
            }
            store_artifact(backends, reader, &entry, &artifacts[sha256]).await?;
            task.report(
                "import.artifacts",
                "Importing Artifacts",
                stored.len() as u64,
                Some(total),
            );
            continue;
        }
        let Some(dir) = entry.name.strip_suffix("/content.jsonl") else {
            anyhow::bail!(
                "The archive holds {:?}, which is not part of an export.",
                entry.name
            );
        };
        if !all_dirs.contains(dir) {
            anyhow::bail!(
                "The archive holds {:?}, which is not part of an export.",
                entry.name
            );
        }
        let Some(destination) = destinations.iter_mut().find(|d| d.entry.dir == dir) else {
            continue; // a skipped repository's units
        };
        if destination.seen {
            anyhow::bail!("The archive holds {} twice.", entry.name);
        }
        destination.seen = true;
        let code = format!("import.repo.version.content.{}", destination.entry.name);
        let message = format!("Importing content for {}", destination.entry.name);
        let plugin = destination.entry.plugin.clone();
        let key = destination.staging_key.clone();
        let mut batch: Vec<UnitEntry> = Vec::with_capacity(UNIT_BATCH);
        let mut count = 0u64;
        let mut lines = Lines::new(reader, &entry);
        loop {
            let line = lines.next().await?;
            if let Some(line) = line {
                let unit: UnitEntry = serde_json::from_slice(line)
                    .with_context(|| format!("{} has an unreadable line", entry.name))?;
                batch.push(unit);
            }
            if batch.len() == UNIT_BATCH || (line.is_none() && !batch.is_empty()) {
                record_units(backends, &plugin, &key, &batch).await?;
                count += batch.len() as u64;
                batch.clear();
                task.report(&code, &message, count, None);
            }
            if line.is_none() {
                break;
            }
        }
    }
    if let Some(missing) = artifacts.keys().find(|sha256| !stored.contains(*sha256)) {
        anyhow::bail!(
            "The archive lists artifact {missing} but does not hold it: is a chunk missing?"
        );
    }
    if let Some(missing) = destinations.iter().find(|destination| !destination.seen) {
        anyhow::bail!(
            "The archive has no units for repository '{}': is a chunk missing?",
            missing.entry.name
        );
    }
    Ok(())
}

/// A component of `versions.json`.
#[derive(Debug, Deserialize)]
struct Component {
    component: String,
    version: String,
}

/// The archive must be Granary's, of a format this server reads, and use only loaded plugins.
fn check_components(backends: &Backends, components: &[Component]) -> anyhow::Result<()> {
    let format = components
        .iter()
        .find(|component| component.component == "granary-export")
        .context(
            "This is not an export of a Granary server (versions.json has no granary-export component): Pulp's exports are not imported.",
        )?;
    if format.version != FORMAT_VERSION {
        anyhow::bail!(
            "Export format {} is not the format this server imports ({FORMAT_VERSION}).",
            format.version
        );
    }
    for component in components {
        let name = component.component.as_str();
        if name != "core" && name != "granary-export" && backends.plugins.get(name).is_none() {
            anyhow::bail!("Export uses {name} which is not installed.");
        }
    }
    Ok(())
}

/// The next entry, which must be `name`.
async fn expect<R: AsyncRead + Unpin>(
    reader: &mut TarReader<R>,
    name: &str,
) -> anyhow::Result<Entry> {
    match reader.next().await? {
        Some(entry) if entry.name == name => Ok(entry),
        Some(entry) => anyhow::bail!(
            "The archive holds {:?} where {name} belongs: it is not an export.",
            entry.name
        ),
        None => anyhow::bail!("The archive ends before {name}."),
    }
}

/// The lines of the current entry (a `.jsonl` file), each at most [`LINE_LIMIT`] bytes.
struct Lines<'a, R> {
    inner: tokio::io::BufReader<&'a mut TarReader<R>>,
    line: Vec<u8>,
    name: &'a str,
}

impl<'a, R: AsyncRead + Unpin> Lines<'a, R> {
    fn new(reader: &'a mut TarReader<R>, entry: &'a Entry) -> Self {
        Self {
            inner: tokio::io::BufReader::with_capacity(256 * 1024, reader),
            line: Vec::new(),
            name: &entry.name,
        }
    }

    /// The next line that is not empty, without its end.
    async fn next(&mut self) -> anyhow::Result<Option<&[u8]>> {
        loop {
            self.line.clear();
            let read = (&mut self.inner)
                .take(LINE_LIMIT as u64 + 1)
                .read_until(b'\n', &mut self.line)
                .await?;
            if read == 0 {
                return Ok(None);
            }
            if self.line.len() > LINE_LIMIT {
                anyhow::bail!("{} has a line longer than {LINE_LIMIT} bytes", self.name);
            }
            if self.line.last() == Some(&b'\n') {
                self.line.pop();
            }
            if !self.line.is_empty() {
                return Ok(Some(&self.line));
            }
        }
    }
}

/// Stores one artifact of the archive after checking its bytes against the listing: size,
/// sha256, and every further digest the listing has. One stored already is not written again.
async fn store_artifact<R: AsyncRead + Unpin>(
    backends: &Backends,
    reader: &mut TarReader<R>,
    entry: &Entry,
    listed: &ArtifactEntry,
) -> anyhow::Result<()> {
    let sha256 = listed.sha256.to_ascii_lowercase();
    if entry.size != listed.size as u64 {
        anyhow::bail!(
            "Artifact {sha256} has {} bytes in the archive; its listing says {}.",
            entry.size,
            listed.size
        );
    }
    let known: Option<String> = sqlx::query_scalar("SELECT id FROM artifacts WHERE sha256 = $1")
        .bind(&sha256)
        .fetch_optional(backends.db.pool())
        .await?;
    if known.is_some() && backends.blobs.exists(&sha256).await {
        return Ok(()); // the bytes are skipped by the next entry
    }
    let mut staged = backends.blobs.stage().await?;
    // The further digests cost four times sha256's hashing: computed only when the listing has
    // some to check (what the exporting server recorded, this one records too).
    let listed_extras = [
        &listed.md5,
        &listed.sha1,
        &listed.sha224,
        &listed.sha384,
        &listed.sha512,
    ]
    .iter()
    .any(|digest| digest.is_some());
    let mut extra = listed_extras.then(ExtraHasher::default);
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let read = reader.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        if let Some(extra) = &mut extra {
            extra.update(&buffer[..read]);
        }
        staged.write(&buffer[..read]).await?;
    }
    let received = staged.finish().await?;
    if received.sha256 != sha256 {
        anyhow::bail!(
            "Artifact {sha256} in the archive is corrupt: its bytes have sha256 {}.",
            received.sha256
        );
    }
    let digests = extra.map(ExtraHasher::finish);
    if let Some(digests) = &digests {
        check_digests(&sha256, listed, digests)?;
    }
    let size = received.size;
    backends.blobs.commit(received).await?;
    let id = crate::domain::artifacts::record(&backends.db, &sha256, size).await?;
    if let Some(digests) = &digests {
        crate::domain::artifacts::record_digests(&backends.db, &id, digests).await?;
    }
    Ok(())
}

fn check_digests(
    sha256: &str,
    listed: &ArtifactEntry,
    digests: &ExtraDigests,
) -> anyhow::Result<()> {
    let expected = [
        ("md5", &listed.md5, &digests.md5),
        ("sha1", &listed.sha1, &digests.sha1),
        ("sha224", &listed.sha224, &digests.sha224),
        ("sha384", &listed.sha384, &digests.sha384),
        ("sha512", &listed.sha512, &digests.sha512),
    ];
    for (name, listed, computed) in expected {
        if let Some(listed) = listed
            && !listed.eq_ignore_ascii_case(computed)
        {
            anyhow::bail!(
                "Artifact {sha256} in the archive does not have the {name} its listing says ({listed})."
            );
        }
    }
    Ok(())
}

/// Records units (one stored already keeps its row; a file it lacked the bytes of gets them)
/// and stages them under `staging_key`.
async fn record_units(
    backends: &Backends,
    plugin: &str,
    staging_key: &str,
    units: &[UnitEntry],
) -> anyhow::Result<()> {
    let mut shas: Vec<String> = units
        .iter()
        .flat_map(|unit| {
            unit.files
                .iter()
                .map(|(_, sha256)| sha256.to_ascii_lowercase())
        })
        .collect();
    shas.sort_unstable();
    shas.dedup();
    let mut artifact_ids: BTreeMap<String, String> = BTreeMap::new();
    for chunk in shas.chunks(UNIT_BATCH) {
        let sql = format!(
            "SELECT sha256, id FROM artifacts WHERE sha256 IN ({})",
            placeholders(1, chunk.len())
        );
        let rows: Vec<(String, String)> = sqlx::query_as(&sql)
            .bind_all(chunk)
            .fetch_all(backends.db.pool())
            .await?;
        artifact_ids.extend(rows);
    }
    if let Some(missing) = shas
        .iter()
        .find(|sha256| !artifact_ids.contains_key(*sha256))
    {
        anyhow::bail!(
            "The export does not carry artifact {missing} and this server does not have it: import the export this incremental one follows first."
        );
    }
    let mut tx = backends.db.begin_write().await?;
    let stamp = now();
    let sql = format!(
        "INSERT INTO content (id, plugin, type_name, natural_key, metadata, labels, created) VALUES {}
         ON CONFLICT (plugin, type_name, natural_key) DO NOTHING",
        value_rows("(?, $1, ?, ?, ?, ?, $2)", 3, units.len())
    );
    let mut query = sqlx::query(&sql).bind(plugin).bind(&stamp);
    for unit in units {
        query = query
            .bind(new_id())
            .bind(&unit.type_name)
            .bind(&unit.natural_key)
            .bind(&unit.metadata)
            .bind(&unit.labels);
    }
    query.execute(&mut *tx).await?;
    let keys: Vec<(String, String)> = units
        .iter()
        .map(|unit| (unit.type_name.clone(), unit.natural_key.clone()))
        .collect();
    let key_refs: Vec<&(String, String)> = keys.iter().collect();
    let ids = crate::domain::declarations::lookup_content(&mut tx, plugin, &key_refs).await?;
    // Units this server had already keep their keys; writing them again changes nothing.
    let indexed: Vec<crate::domain::content_keys::Unit<'_>> = units
        .iter()
        .zip(&keys)
        .filter_map(|(unit, key)| {
            Some(crate::domain::content_keys::Unit {
                content_id: ids.get(key)?,
                type_name: &unit.type_name,
                natural_key: &unit.natural_key,
                metadata: &unit.metadata,
            })
        })
        .collect();
    crate::domain::content_keys::index(&mut tx, plugin, &indexed).await?;
    let mut content_ids = Vec::with_capacity(units.len());
    for (unit, key) in units.iter().zip(&keys) {
        let id = ids
            .get(key)
            .cloned()
            .context("a unit just recorded is not found")?;
        for (relative_path, sha256) in &unit.files {
            let artifact_id = &artifact_ids[&sha256.to_ascii_lowercase()];
            sqlx::query(
                "INSERT INTO content_artifacts (id, content_id, relative_path, artifact_id)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (content_id, relative_path) DO NOTHING",
            )
            .bind(new_id())
            .bind(&id)
            .bind(relative_path)
            .bind(artifact_id)
            .execute(&mut *tx)
            .await?;
            // A unit stored on demand here gets the bytes the export carries.
            sqlx::query(
                "UPDATE content_artifacts SET artifact_id = $3
                 WHERE content_id = $1 AND relative_path = $2 AND artifact_id IS NULL",
            )
            .bind(&id)
            .bind(relative_path)
            .bind(artifact_id)
            .execute(&mut *tx)
            .await?;
        }
        content_ids.push(id);
    }
    versions::stage(&mut tx, staging_key, &content_ids).await?;
    tx.commit().await?;
    Ok(())
}
