//! Artifact storage: content-addressed blobs behind `object_store` (local files by default).
//!
//! Bytes arrive into a [`StagedBlob`] (a temporary file under `<data-dir>/tmp/`) while they are
//! hashed. Only after the caller has checked the size and digest does [`BlobStore::commit`] move
//! them to their final key (see [`BlobStore::key`]), so a reader never sees a partial or
//! unverified artifact, and an artifact is never written twice.
//!
//! Chunks of a chunked upload (`uploads/`) are objects of their own under `uploads/` (beside
//! `artifacts/`, in the same backend): any process may receive a chunk and any worker assemble
//! the upload, which a directory local to one process could not offer once there are several.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt as _, TryStreamExt as _};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use sha2::{Digest as _, Sha256, Sha512};
use tokio::io::AsyncReadExt as _;

mod journal;
mod small_blobs;

pub use journal::Journaled;
pub use small_blobs::SmallBlobCache;

/// Blobs up to this size are uploaded to object storage in one request, larger ones in parts.
const SINGLE_PUT_MAX: u64 = 8 * 1024 * 1024;

/// Bytes of a staged blob collected before they are hashed and written in one trip to the
/// blocking pool.
const WRITE_BUFFER: usize = 1024 * 1024;

/// Largest `write` into a staged file. The kernel backs a large aligned write with large page
/// cache folios, and on the 2-core VM of `docs/performance.md` allocating those is 5–10× slower
/// than small ones: writing 256 MiB in aligned 1 MiB writes ran at about 400 MB/s, in 64 KiB
/// writes at 2.3–4.3 GB/s. Sixteen system calls per MiB cost next to nothing elsewhere.
const FILE_WRITE: usize = 64 * 1024;

/// Bytes written to a staged file between two early flushes (see [`Written::append`]).
const EARLY_SYNC: u64 = 8 * 1024 * 1024;

/// Chunk size for reading stored local files. Each chunk is one trip to the blocking pool and
/// one `pread`, so a large chunk keeps the trips few; 1 MiB is where serving 100 MiB files
/// stopped getting faster here, and it bounds the memory of a download to two chunks.
const READ_CHUNK: usize = 1024 * 1024;

/// Reads up to this size are made into memory ([`BlobStore::read_small`]); blobs up to it are kept
/// there by the content app.
pub const INLINE_READ_LIMIT: u64 = 64 * 1024;

/// Where artifacts live.
#[derive(Debug)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Set for the local backend: commits become a rename and reads a plain file read.
    local_root: Option<PathBuf>,
    /// The local root, open: small reads open their file relative to it, which saves the kernel
    /// walking the data directory's path on every request.
    local_root_dir: Option<std::fs::File>,
    /// Chunks of uploads in progress.
    parts: Arc<dyn ObjectStore>,
    /// Set for the local backend, like `local_root`.
    local_parts_root: Option<PathBuf>,
    /// This process's own directory under `<data-dir>/tmp/` (see [`ProcessTmpDir`]).
    tmp_dir: ProcessTmpDir,
    /// Set for S3: signs URLs clients can download from directly.
    signer: Option<object_store::aws::AmazonS3>,
    /// Small blobs kept in memory by [`BlobStore::read_small`].
    small_blobs: SmallBlobCache,
    /// Set for the local backend once the database is known ([`BlobStore::with_journal`]): small
    /// blobs are then kept with their artifact's commit (see [`journal`]).
    journal: Option<Arc<journal::Journal>>,
    /// Journaled blobs whose recorder still holds them ([`Journaled`]), by digest.
    in_memory: journal::InMemory,
}

/// Where S3 artifact storage is and how to reach it.
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// Bucket name.
    pub bucket: String,
    /// Endpoint of an S3-compatible server; AWS when unset.
    pub endpoint: Option<String>,
    /// Region.
    pub region: String,
    /// Access key; otherwise the standard `AWS_*` environment variables apply.
    pub access_key_id: Option<String>,
    /// Secret key.
    pub secret_access_key: Option<String>,
}

/// Bytes being received, hashed as they arrive. Dropping it deletes the temporary file.
///
/// Received bytes are collected into a buffer of [`WRITE_BUFFER`] bytes; a full buffer is hashed
/// and written on the blocking pool while the next one fills. So hashing (the costliest step of an
/// ingest) overlaps with receiving instead of running between socket reads, each buffer costs one
/// trip to the blocking pool, and at most one trip per blob is in flight: a slow sender holds no
/// thread.
pub struct StagedBlob {
    path: PathBuf,
    /// Bytes received since the last hand-off to the writer.
    buffer: Vec<u8>,
    writer: Writer,
    size: u64,
}

/// The file and hash of a [`StagedBlob`], wherever they are.
enum Writer {
    /// Nothing in flight.
    Idle(Written),
    /// A buffer being hashed and written on the blocking pool.
    Busy(tokio::task::JoinHandle<std::io::Result<Written>>),
    /// Finished, or a write failed.
    Gone,
}

/// What the writer has done so far, and an emptied buffer to fill next.
struct Written {
    file: Arc<std::fs::File>,
    hasher: Sha256,
    /// sha512 too, when asked for ([`StagedBlob::hashing_sha512`]); boxed, as most blobs go
    /// without.
    sha512: Option<Box<Sha512>>,
    spare: Vec<u8>,
    /// Bytes written since the last early flush started.
    unsynced: u64,
    /// The early flush in flight, if any.
    syncing: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Written {
    /// Hashes and appends `buffer` (blocking), and keeps it, emptied, as the next spare.
    ///
    /// Every [`EARLY_SYNC`] bytes it also starts flushing the file to disk on another blocking
    /// thread, unless a flush is still running. The flush that `finish` waits for then has only
    /// the last few MiB left: it took about 25 ms per 64 MiB here, on the path of every upload.
    fn append(mut self, mut buffer: Vec<u8>) -> std::io::Result<Self> {
        use std::io::Write as _;
        for piece in buffer.chunks(FILE_WRITE) {
            self.hasher.update(piece);
            if let Some(sha512) = &mut self.sha512 {
                sha512.update(piece);
            }
            (&*self.file).write_all(piece)?;
        }
        self.unsynced += buffer.len() as u64;
        if self.unsynced >= EARLY_SYNC && self.syncing.as_ref().is_none_or(|job| job.is_finished())
        {
            // A failed flush fails the blob: after one, Linux may report the next as clean
            // although the pages were lost.
            if let Some(done) = self.syncing.take() {
                finished_sync(done)?;
            }
            let file = self.file.clone();
            self.syncing = Some(tokio::task::spawn_blocking(move || file.sync_data()));
            self.unsynced = 0;
        }
        buffer.clear();
        self.spare = buffer;
        Ok(self)
    }

    /// The spare buffer with room for a whole [`WRITE_BUFFER`].
    fn spare_buffer(&mut self) -> Vec<u8> {
        let mut spare = std::mem::take(&mut self.spare);
        spare.reserve_exact(WRITE_BUFFER);
        spare
    }
}

/// The outcome of a flush that has finished.
fn finished_sync(job: tokio::task::JoinHandle<std::io::Result<()>>) -> std::io::Result<()> {
    use futures::FutureExt as _;
    match job.now_or_never() {
        Some(outcome) => outcome?,
        None => Err(std::io::Error::other("flush still running")),
    }
}

impl std::fmt::Debug for StagedBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedBlob")
            .field("path", &self.path)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A fully received file with its digest, ready to be verified and committed: a temporary file,
/// or one in its place in the store, or on its way there ([`BlobStore::keep_bytes`]).
#[derive(Debug)]
pub struct ReceivedBlob {
    path: PathBuf,
    /// `path` is the blob's place in the store: committing it has nothing left to do, and
    /// dropping it leaves it there (a blob without a row, as after any commit, which orphan
    /// cleanup removes once its protection time is over).
    placed: bool,
    /// The bytes, when they are to be written to the journal with the blob's artifact row
    /// instead of to `path` now ([`BlobStore::keep_bytes`]).
    pub journaled: Option<Journaled>,
    /// sha256 of the bytes, lower-case hex.
    pub sha256: String,
    /// sha512 of the bytes, lower-case hex, when it was asked for.
    pub sha512: Option<String>,
    /// Number of bytes.
    pub size: u64,
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        // `finish` hands the path on and leaves it empty.
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for ReceivedBlob {
    fn drop(&mut self) {
        // After a commit the file has been moved away and this does nothing.
        if !self.placed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl StagedBlob {
    /// Appends a chunk.
    pub async fn write(&mut self, mut chunk: &[u8]) -> std::io::Result<()> {
        self.size += chunk.len() as u64;
        while !chunk.is_empty() {
            let take = chunk.len().min(WRITE_BUFFER - self.buffer.len());
            // Grown as needed, not allocated whole up front: a publication keeps many small
            // files staged at once.
            self.buffer.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.buffer.len() == WRITE_BUFFER {
                let mut written = self.idle().await?;
                let full = std::mem::replace(&mut self.buffer, written.spare_buffer());
                self.writer =
                    Writer::Busy(tokio::task::spawn_blocking(move || written.append(full)));
            }
        }
        Ok(())
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Computes the sha512 of the bytes too (for upstreams that name files by sha512 only).
    /// Called before the first write; later it would miss bytes, so it fails.
    pub fn hashing_sha512(mut self) -> std::io::Result<Self> {
        match &mut self.writer {
            Writer::Idle(written) if self.size == 0 => {
                written.sha512 = Some(Box::new(Sha512::new()));
                Ok(self)
            }
            _ => Err(std::io::Error::other(
                "sha512 must be asked for before the first byte",
            )),
        }
    }

    /// Writes what is buffered, flushes the file to disk and returns its digest.
    pub async fn finish(mut self) -> std::io::Result<ReceivedBlob> {
        let mut written = self.idle().await?;
        if let Some(early) = written.syncing.take() {
            early.await??;
        }
        let rest = std::mem::take(&mut self.buffer);
        let (sha256, sha512) = tokio::task::spawn_blocking(move || {
            let written = written.append(rest)?;
            written.file.sync_data()?;
            Ok::<_, std::io::Error>((
                hex::encode(written.hasher.finalize()),
                written.sha512.map(|sha512| hex::encode(sha512.finalize())),
            ))
        })
        .await??;
        let path = std::mem::take(&mut self.path);
        Ok(ReceivedBlob {
            path,
            placed: false,
            journaled: None,
            sha256,
            sha512,
            size: self.size,
        })
    }

    /// Waits for the write in flight, if any, and takes the writer's state.
    async fn idle(&mut self) -> std::io::Result<Written> {
        match std::mem::replace(&mut self.writer, Writer::Gone) {
            Writer::Idle(written) => Ok(written),
            Writer::Busy(job) => job.await?,
            Writer::Gone => Err(std::io::Error::other("staged blob already finished")),
        }
    }
}

impl BlobStore {
    /// Local storage under `data_dir/artifacts`, temporary files in a directory of this
    /// process under `data_dir/tmp` (those of processes that are gone are removed).
    pub fn local(data_dir: &Path) -> anyhow::Result<Self> {
        let root = data_dir.join("artifacts");
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        flatten_two_level_layout(&root, &data_dir.join(ONE_LEVEL_MARKER))
            .with_context(|| format!("moving {} to the one-level layout", root.display()))?;
        let tmp_dir = ProcessTmpDir::create(&data_dir.join("tmp"))?;
        let store =
            LocalFileSystem::new_with_prefix(&root).context("opening local artifact storage")?;
        let parts_root = data_dir.join("uploads");
        std::fs::create_dir_all(&parts_root)
            .with_context(|| format!("creating {}", parts_root.display()))?;
        // Chunks live in a directory per upload: the last one deleted takes its directory along.
        let parts = LocalFileSystem::new_with_prefix(&parts_root)
            .context("opening local upload storage")?
            .with_automatic_cleanup(true);
        let root_dir =
            std::fs::File::open(&root).with_context(|| format!("opening {}", root.display()))?;
        Ok(Self {
            store: Arc::new(store),
            local_root: Some(root),
            local_root_dir: Some(root_dir),
            parts: Arc::new(parts),
            local_parts_root: Some(parts_root),
            tmp_dir,
            signer: None,
            small_blobs: SmallBlobCache::new(0),
            journal: None,
            in_memory: Arc::default(),
        })
    }

    /// S3-compatible storage: artifacts under `artifacts/` in `bucket`; temporary files still
    /// under `data_dir/tmp` (staging is local to each process).
    pub fn s3(data_dir: &Path, settings: &S3Settings) -> anyhow::Result<Self> {
        let tmp_dir = ProcessTmpDir::create(&data_dir.join("tmp"))?;
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region);
        if let Some(endpoint) = &settings.endpoint {
            // S3-compatible servers (MinIO, Ceph, moto) are addressed by path, often over plain HTTP.
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let (Some(key), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        let s3 = builder.build().context("configuring S3 storage")?;
        let store = object_store::prefix::PrefixStore::new(s3.clone(), "artifacts");
        let parts = object_store::prefix::PrefixStore::new(s3.clone(), "uploads");
        Ok(Self {
            store: Arc::new(store),
            local_root: None,
            local_root_dir: None,
            parts: Arc::new(parts),
            local_parts_root: None,
            tmp_dir,
            signer: Some(s3),
            small_blobs: SmallBlobCache::new(0),
            journal: None,
            in_memory: Arc::default(),
        })
    }

    /// Starts receiving a new blob.
    pub async fn stage(&self) -> std::io::Result<StagedBlob> {
        let path = self.tmp_dir.path.join(uuid::Uuid::new_v4().to_string());
        let file = tokio::fs::File::create(&path).await?.into_std().await;
        Ok(StagedBlob {
            path,
            buffer: Vec::new(),
            writer: Writer::Idle(Written {
                file: Arc::new(file),
                hasher: Sha256::new(),
                sha512: None,
                spare: Vec::new(),
                unsynced: 0,
                syncing: None,
            }),
            size: 0,
        })
    }

    /// Stages a whole in-memory body (a plugin component; on S3, what [`BlobStore::keep_bytes`]
    /// is given): created, written, hashed and flushed in one trip to the blocking pool. The blob
    /// removes its file if anything fails, or if nobody awaits it any more.
    pub async fn stage_bytes(&self, bytes: Bytes) -> std::io::Result<ReceivedBlob> {
        let blob = self.unwritten(&bytes);
        tokio::task::spawn_blocking(move || write_whole(blob, &bytes)).await?
    }

    /// Stores a whole in-memory body (a file part of a form, a file a plugin creates). On local
    /// storage with a journal ([`BlobStore::with_journal`]) a small one (up to
    /// [`INLINE_READ_LIMIT`]) is hashed and answered at once, [`Journaled`]: its recorder writes
    /// it to the journal with the artifact's row, so the commit that records it is its only
    /// flush, and [`BlobStore::read_small`] answers from the bytes meanwhile. Otherwise the body
    /// is hashed, written, flushed and placed in one trip to the blocking pool before it is
    /// answered. Either way
    /// [`BlobStore::commit`] has nothing left to do. On S3 the body is staged, as
    /// [`BlobStore::stage_bytes`] does, and committed as any other.
    pub async fn keep_bytes(&self, bytes: Bytes) -> std::io::Result<ReceivedBlob> {
        let Some(root) = self.local_root.clone() else {
            return self.stage_bytes(bytes).await;
        };
        let size = bytes.len() as u64;
        if let Some(journal) = self.journal.as_ref().filter(|_| size <= INLINE_READ_LIMIT) {
            let sha256 = hex::encode(Sha256::digest(&bytes));
            // Journaled even when a file is there already: that file may be one whose name is
            // not flushed yet, or one orphan cleanup is about to delete (it has no row yet).
            // The journal's mover finds it whole and leaves it.
            let journaled = Journaled::new(sha256.clone(), bytes, &self.in_memory, &journal.wake);
            return Ok(ReceivedBlob {
                path: root.join(local_key(&sha256)),
                placed: true,
                journaled: Some(journaled),
                sha256,
                sha512: None,
                size,
            });
        }
        let staged = self.unwritten(&bytes);
        tokio::task::spawn_blocking(move || {
            let mut blob = write_whole(staged, &bytes)?;
            let target = root.join(local_key(&blob.sha256));
            place(root, &blob.path, &target)?;
            // Left behind when the blob was stored already.
            let _ = std::fs::remove_file(&blob.path);
            blob.path = target;
            blob.placed = true;
            Ok(blob)
        })
        .await?
    }

    /// A blob of `bytes`' size, to be written to a new temporary file.
    fn unwritten(&self, bytes: &Bytes) -> ReceivedBlob {
        ReceivedBlob {
            path: self.tmp_dir.path.join(uuid::Uuid::new_v4().to_string()),
            placed: false,
            journaled: None,
            sha256: String::new(),
            sha512: None,
            size: bytes.len() as u64,
        }
    }

    /// Moves a verified blob to its final place. Idempotent: a blob already stored is kept.
    pub async fn commit(&self, blob: ReceivedBlob) -> anyhow::Result<()> {
        if blob.placed {
            return Ok(());
        }
        let key = self.key(&blob.sha256);
        let Some(root) = &self.local_root else {
            if self.store.head(&key).await.is_err() {
                put_file(&*self.store, None, &key, blob).await?;
            }
            return Ok(());
        };
        let target = root.join(key.as_ref());
        let root = root.clone();
        // One trip to the blocking pool for the whole move.
        tokio::task::spawn_blocking(move || place(root, &blob.path, &target))
            .await?
            .with_context(|| format!("moving a blob into {}", key.as_ref()))
    }

    /// Whether the blob at `key` is stored already; a local one is made young again for orphan
    /// cleanup (see [`BlobStore::commit`]).
    async fn stored_again(&self, key: &ObjectPath) -> anyhow::Result<bool> {
        let Some(root) = &self.local_root else {
            return Ok(self.store.head(key).await.is_ok());
        };
        let path = root.join(key.as_ref());
        let touched = tokio::task::spawn_blocking(move || {
            std::fs::File::options()
                .write(true)
                .open(&path)?
                .set_modified(std::time::SystemTime::now())
        })
        .await?;
        Ok(touched.is_ok())
    }

    /// Makes the stored upload chunk at `key`, whose bytes hash to `sha256`, the blob `sha256`
    /// without reading it again: a rename on local storage, a copy inside the bucket on S3. The
    /// chunk is gone afterwards. Only for a chunk hashed when it was received.
    pub async fn adopt_part(&self, key: &str, sha256: &str) -> anyhow::Result<()> {
        let target = self.key(sha256);
        if self.stored_again(&target).await? {
            return self.delete_part(key).await;
        }
        match (&self.local_root, &self.local_parts_root, &self.signer) {
            (Some(root), Some(parts_root), _) => {
                let source = parts_root.join(key);
                let target = root.join(target.as_ref());
                let root = root.clone();
                tokio::task::spawn_blocking(move || {
                    durable_rename(root, &source, &target)?;
                    // The upload's directory, when that was its last chunk (as deleting does).
                    if let Some(directory) = source.parent() {
                        let _ = std::fs::remove_dir(directory);
                    }
                    Ok::<_, std::io::Error>(())
                })
                .await?
                .with_context(|| format!("moving the upload chunk {key} into storage"))?;
            }
            (_, _, Some(bucket)) => {
                // Both live in the bucket, under the prefixes `s3` gave them.
                let source = ObjectPath::from(format!("uploads/{key}"));
                let target = ObjectPath::from(format!("artifacts/{}", target.as_ref()));
                bucket.copy(&source, &target).await?;
                self.delete_part(key).await?;
            }
            _ => anyhow::bail!("this storage cannot adopt upload chunks"),
        }
        Ok(())
    }

    /// Stores a received chunk of an upload under `key` (e.g. `<upload id>/<start>-<sha256>`),
    /// replacing what was there.
    pub async fn put_part(&self, key: &str, blob: ReceivedBlob) -> anyhow::Result<()> {
        // Moving it would take a stored blob away from its artifact.
        anyhow::ensure!(
            !blob.placed,
            "a blob in its place in the store is not an upload's chunk"
        );
        put_file(
            &*self.parts,
            self.local_parts_root.as_deref(),
            &ObjectPath::from(key),
            blob,
        )
        .await
    }

    /// Reads a stored chunk of an upload.
    pub async fn read_part(
        &self,
        key: &str,
    ) -> anyhow::Result<BoxStream<'static, std::io::Result<Bytes>>> {
        let result = self.parts.get(&ObjectPath::from(key)).await?;
        Ok(result.into_stream().map_err(std::io::Error::other).boxed())
    }

    /// Deletes a stored chunk of an upload; one already gone is not an error.
    pub async fn delete_part(&self, key: &str) -> anyhow::Result<()> {
        match self.parts.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes every stored chunk whose key starts with `prefix` (an upload's directory), those
    /// never recorded included (a process that stopped between storing and recording one).
    pub async fn delete_parts_under(&self, prefix: &str) -> anyhow::Result<()> {
        let prefix = ObjectPath::from(prefix);
        let keys: Vec<ObjectPath> = self
            .parts
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        for key in keys {
            self.delete_part(key.as_ref()).await?;
        }
        Ok(())
    }

    /// Deletes a stored blob (orphan cleanup, reclaim, repair of a corrupt copy); one already gone
    /// is not an error.
    pub async fn delete(&self, sha256: &str) -> anyhow::Result<()> {
        match self.store.delete(&self.key(sha256)).await {
            Ok(()) => Ok(()),
            // Not in its file yet: the journal's row would bring it back.
            Err(object_store::Error::NotFound { .. }) => match &self.journal {
                Some(journal) => journal.forget(&[sha256.to_owned()]).await,
                None => Ok(()),
            },
            Err(error) => Err(error.into()),
        }
    }

    /// The digests of every stored blob, with when each was last written: what orphan cleanup
    /// compares with the artifact rows to find bytes no row records (left by a process killed
    /// between storing a blob and recording it).
    pub async fn stored(&self) -> anyhow::Result<Vec<(String, chrono::DateTime<chrono::Utc>)>> {
        let listed: Vec<object_store::ObjectMeta> = self.store.list(None).try_collect().await?;
        Ok(listed
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?.to_owned();
                let is_digest = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
                is_digest.then_some((name, meta.last_modified))
            })
            .collect())
    }

    /// Where a stored blob's file is, when storage is the local filesystem (a filesystem
    /// export links to it); `None` on object storage.
    pub fn local_path(&self, sha256: &str) -> Option<PathBuf> {
        self.local_root
            .as_ref()
            .map(|root| root.join(self.key(sha256).as_ref()))
    }

    /// Whether the blob with this digest is stored (in the journal counts).
    pub async fn exists(&self, sha256: &str) -> bool {
        self.store.head(&self.key(sha256)).await.is_ok()
            || matches!(self.journaled(sha256).await, Ok(Some(_)))
    }

    /// The bytes of a blob that is not in its file yet: held by its recorder, or in the journal.
    async fn journaled(&self, sha256: &str) -> anyhow::Result<Option<Bytes>> {
        if let Some(bytes) = journal::in_memory(&self.in_memory, sha256) {
            return Ok(Some(bytes));
        }
        match &self.journal {
            Some(journal) => journal.body(sha256).await,
            None => Ok(None),
        }
    }

    /// Reads a stored blob, or a byte range of it.
    pub async fn read(
        &self,
        sha256: &str,
        range: Option<Range<u64>>,
    ) -> anyhow::Result<BoxStream<'static, std::io::Result<Bytes>>> {
        let key = self.key(sha256);
        if let Some(root) = &self.local_root {
            let error = match read_local(root.join(key.as_ref()), range.clone()).await {
                Ok(stream) => return Ok(stream),
                Err(error) => error,
            };
            let journaled = match error.kind() {
                std::io::ErrorKind::NotFound => self.journaled(sha256).await?,
                _ => None,
            };
            let Some(whole) = journaled else {
                return Err(error).with_context(|| format!("opening artifact {sha256}"));
            };
            let range = range.unwrap_or(0..whole.len() as u64);
            anyhow::ensure!(
                range.start <= range.end && range.end <= whole.len() as u64,
                "artifact {sha256} has {} bytes, fewer than the range asked for",
                whole.len()
            );
            let window = whole.slice(range.start as usize..range.end as usize);
            return Ok(futures::stream::once(async move { Ok(window) }).boxed());
        }
        let options = object_store::GetOptions {
            range: range.map(|range| object_store::GetRange::Bounded(range.start..range.end)),
            ..Default::default()
        };
        let result = self.store.get_opts(&key, options).await?;
        Ok(result.into_stream().map_err(std::io::Error::other).boxed())
    }

    /// Keeps up to `budget` bytes of small blobs in memory for [`BlobStore::read_small`]
    /// (0, the default, keeps none).
    #[must_use]
    pub fn with_small_blob_cache(mut self, budget: usize) -> Self {
        self.small_blobs = SmallBlobCache::new(budget);
        self
    }

    /// Keeps small blobs in `db`'s journal with their artifact's commit ([`journal`]); local
    /// storage only (S3 has no files to flush). The process must run
    /// [`BlobStore::move_journal`] too.
    #[must_use]
    pub fn with_journal(mut self, db: Arc<crate::db::Db>) -> Self {
        if self.local_root.is_some() {
            self.journal = Some(Arc::new(journal::Journal {
                db,
                wake: Arc::default(),
                moving: tokio::sync::Mutex::new(()),
            }));
        }
        self
    }

    /// Moves what the journal holds to its files until `shutdown`: at once (what a stopped
    /// process left), then shortly after a journaled blob's recorder is done with it (gathering
    /// what other requests record meanwhile, so one flush serves them all), and every few seconds
    /// for what other processes journaled.
    pub async fn move_journal(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        /// How long a mover waits after a wake-up before it moves: sequential uploads finish
        /// every few milliseconds, and each flush covers every one of them.
        const GATHER: std::time::Duration = std::time::Duration::from_millis(50);
        /// How often a mover looks without being woken.
        const SWEEP: std::time::Duration = std::time::Duration::from_secs(5);
        let Some(journal) = self.journal.clone() else {
            return;
        };
        loop {
            if let Err(error) = self.settle().await {
                tracing::warn!(error = %format!("{error:#}"), "moving journaled blobs to their files");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = journal.wake.notified() => {}
                () = tokio::time::sleep(SWEEP) => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(GATHER) => {}
            }
        }
    }

    /// Moves every blob the journal holds to its file, flushes them, and deletes their rows;
    /// answers how many moved. Before a file path is handed out (a filesystem export links to
    /// it), and in the background ([`BlobStore::move_journal`]).
    pub async fn settle(&self) -> anyhow::Result<usize> {
        let (Some(journal), Some(root)) = (&self.journal, &self.local_root) else {
            return Ok(0);
        };
        let _one_mover = journal.moving.lock().await;
        let mut moved = 0;
        let mut after = String::new();
        loop {
            let rows = journal.rows_after(&after).await?;
            let Some((last, _)) = rows.last() else {
                return Ok(moved);
            };
            after = last.clone();
            let (root, tmp) = (root.clone(), self.tmp_dir.path.clone());
            let written =
                tokio::task::spawn_blocking(move || write_journaled(&root, &tmp, rows)).await??;
            journal.forget(&written).await?;
            moved += written.len();
        }
    }

    /// Reads `range` of a blob of `size` bytes into memory when the range is at most
    /// [`INLINE_READ_LIMIT`] bytes (else `None`: stream it with [`BlobStore::read`]). A whole
    /// blob that small is read once and then served from memory while it is among the most
    /// recently served (see [`SmallBlobCache`]); with S3 that saves a request per download.
    ///
    /// Local files are read on the calling thread. Why not the blocking pool: a small read from
    /// the page cache takes a few microseconds, while handing it to a pool thread and waking the
    /// task again takes two thread wake-ups, and those wake-ups were most of the time of serving
    /// a 4 KiB file. nginx reads on its event loop for the same reason; the size cap bounds how
    /// long a cold read can hold the thread.
    pub async fn read_small(
        &self,
        sha256: &str,
        size: u64,
        range: Range<u64>,
    ) -> Option<anyhow::Result<Bytes>> {
        if range.end.checked_sub(range.start)? > INLINE_READ_LIMIT {
            return None;
        }
        let key = self.key(sha256);
        if size > INLINE_READ_LIMIT {
            let root = self.local_root_dir.as_ref()?;
            return Some(read_at(root, key.as_ref(), range).map_err(anyhow::Error::from));
        }
        // `range` lies within `size` (the caller checked it) and a whole read has exactly `size`
        // bytes (checked below), so the window is always inside the blob.
        let window = |whole: Bytes| whole.slice(range.start as usize..range.end as usize);
        if let Some(whole) = self.small_blobs.get(sha256) {
            return Some(Ok(window(whole)));
        }
        if let Some(whole) = journal::in_memory(&self.in_memory, sha256) {
            return Some(Ok(window(whole)));
        }
        let whole = match &self.local_root_dir {
            Some(root) => match read_at(root, key.as_ref(), 0..size) {
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => self
                    .journaled(sha256)
                    .await
                    .and_then(|body| body.ok_or_else(|| anyhow::Error::from(error))),
                read => read.map_err(anyhow::Error::from),
            },
            None => self
                .read_range(sha256, 0, size, size)
                .await
                .map(Bytes::from),
        };
        Some(whole.and_then(|whole| {
            anyhow::ensure!(
                whole.len() as u64 == size,
                "artifact {sha256} is stored with {} bytes instead of {size}",
                whole.len()
            );
            if let Err(mismatch) = self.small_blobs.keep(sha256, &whole) {
                tracing::warn!(%sha256, %mismatch, "a stored blob is not its artifact; run a repair");
            }
            Ok(window(whole))
        }))
    }

    /// Reads a byte range of a stored blob into memory (for plugins; callers cap `len`).
    pub async fn read_range(
        &self,
        sha256: &str,
        offset: u64,
        len: u64,
        size: u64,
    ) -> anyhow::Result<Vec<u8>> {
        let end = offset.saturating_add(len).min(size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut stream = self.read(sha256, Some(offset..end)).await?;
        let mut out = Vec::with_capacity((end - offset) as usize);
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// A time-limited URL a client can download the blob from directly (S3 only).
    pub async fn presigned_url(
        &self,
        sha256: &str,
        valid_for: std::time::Duration,
    ) -> Option<String> {
        use object_store::signer::Signer as _;
        let signer = self.signer.as_ref()?;
        let path = ObjectPath::from(format!("artifacts/{}", self.key(sha256)));
        signer
            .signed_url(axum::http::Method::GET, &path, valid_for)
            .await
            .ok()
            .map(|url| url.to_string())
    }

    /// Which backend this is, for `status/`.
    pub fn backend_name(&self) -> &'static str {
        if self.local_root.is_some() {
            "local"
        } else {
            "s3"
        }
    }

    /// `(total, used, free)` bytes of the filesystem that holds local storage, as Python's
    /// `shutil.disk_usage` counts them (Pulp's `status/`); `None` for object storage, which has
    /// no such figures, or when the filesystem cannot tell.
    pub fn disk_usage(&self) -> Option<(u64, u64, u64)> {
        let root = self.local_root.as_ref()?;
        let stats = rustix::fs::statvfs(root).ok()?;
        let unit = stats.f_frsize;
        Some((
            stats.f_blocks.saturating_mul(unit),
            stats
                .f_blocks
                .saturating_sub(stats.f_bfree)
                .saturating_mul(unit),
            stats.f_bavail.saturating_mul(unit),
        ))
    }

    /// Where the blob `sha256` is stored. Locally `ab/<sha256>`: one level of 256 directories,
    /// as Pulp's `artifact/ab/…`, so that after the first few hundred files a new one only adds a
    /// name to an existing directory (one directory flush). With two levels (`ab/cd/<sha256>`,
    /// 65,536 directories, Granary's layout until 2026-12-06) nearly every new file of a store of
    /// some thousands made a directory and paid two flushes more; see
    /// [`flatten_two_level_layout`]. In a bucket, where directories cost nothing, keys keep the
    /// two levels they always had.
    fn key(&self, sha256: &str) -> ObjectPath {
        if self.local_root.is_some() {
            ObjectPath::from(local_key(sha256))
        } else {
            ObjectPath::from(format!("{}/{}/{}", &sha256[0..2], &sha256[2..4], sha256))
        }
    }
}

/// Where the blob `sha256` is under a local store's root (see [`BlobStore::key`]).
fn local_key(sha256: &str) -> String {
    format!("{}/{}", &sha256[0..2], sha256)
}

/// Writes `bytes` to the new file at `blob.path` and flushes it; answers the blob with its digest.
/// The file is removed if anything fails (the blob's `Drop`).
fn write_whole(mut blob: ReceivedBlob, bytes: &[u8]) -> std::io::Result<ReceivedBlob> {
    use std::io::Write as _;
    let mut file = std::fs::File::create(&blob.path)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    blob.sha256 = hex::encode(Sha256::digest(bytes));
    Ok(blob)
}

/// Writes journal rows (digest, base64 body) to their files under `root` by way of `tmp`, then
/// flushes the filesystem once (data and names together); answers the digests now durable in
/// their files. A row whose bytes are not its blob is left in the journal, logged.
fn write_journaled(
    root: &Path,
    tmp: &Path,
    rows: Vec<(String, String)>,
) -> std::io::Result<Vec<String>> {
    let mut written = Vec::with_capacity(rows.len());
    for (sha256, body) in rows {
        let bytes = match journal::decode(&sha256, &body) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "a journal row left in place; run a repair");
                continue;
            }
        };
        let target = root.join(local_key(&sha256));
        // A file there may be one a power cut emptied: renamed, not flushed yet, by a mover
        // that stopped before its flush (the row stays until then).
        if std::fs::read(&target).ok().as_deref() != Some(&bytes[..]) {
            let staged = tmp.join(uuid::Uuid::new_v4().to_string());
            std::fs::write(&staged, &bytes)?;
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            if let Err(error) = std::fs::rename(&staged, &target) {
                let _ = std::fs::remove_file(&staged);
                return Err(error);
            }
        }
        written.push(sha256);
    }
    // One flush for every file of the batch, their directories included; a file already there
    // may be another process's that is not flushed yet.
    let root_dir = std::fs::File::open(root)?;
    rustix::fs::syncfs(&root_dir)?;
    Ok(written)
}

/// Moves the flushed file `source` to `target` under `root` durably, or, when `target` is stored
/// already, leaves `source` where it is and makes `target` young again for orphan cleanup, which
/// spares blobs written within its protection time until their artifact row is recorded. Its
/// directory is flushed all the same: another request may have renamed it an instant ago and not
/// flushed its name yet.
fn place(root: PathBuf, source: &Path, target: &Path) -> std::io::Result<()> {
    match std::fs::File::options().write(true).open(target) {
        Ok(file) => {
            let _ = file.set_modified(std::time::SystemTime::now());
            match target.parent() {
                Some(parent) => sync_dir(parent),
                None => Ok(()),
            }
        }
        Err(_) => durable_rename(root, source, target),
    }
}

/// Reads exactly `range` of the file `key` under the open directory `root`.
fn read_at(root: &std::fs::File, key: &str, range: Range<u64>) -> std::io::Result<Bytes> {
    use rustix::fs::{Mode, OFlags, openat};
    use std::os::unix::fs::FileExt as _;
    let flags = OFlags::RDONLY | OFlags::CLOEXEC;
    let file = std::fs::File::from(openat(root, key, flags, Mode::empty())?);
    let mut bytes = vec![0; (range.end - range.start) as usize];
    file.read_exact_at(&mut bytes, range.start)?;
    Ok(Bytes::from(bytes))
}

/// A local file, or `range` of it, as a stream of chunks of at most [`READ_CHUNK`] bytes.
///
/// The first trip to the blocking pool opens the file and reads the first chunk, so a small file
/// costs one trip and a missing one fails here rather than in the stream. After that one read is
/// always in flight ahead of the consumer: the next chunk comes off the disk (or the page cache)
/// while the previous one is written to the socket. No blocking thread is held between chunks,
/// so a slow client does not pin one.
async fn read_local(
    path: PathBuf,
    range: Option<Range<u64>>,
) -> std::io::Result<BoxStream<'static, std::io::Result<Bytes>>> {
    let (file, range, first) = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path)?;
        let range = match range {
            Some(range) => range,
            None => 0..file.metadata()?.len(),
        };
        let first = read_chunk(&file, range.clone())?;
        Ok::<_, std::io::Error>((file, range, first))
    })
    .await??;
    let mut reader = LocalReader {
        file: Arc::new(file),
        offset: range.start + first.len() as u64,
        end: range.end,
        ahead: None,
    };
    if reader.offset >= reader.end {
        return Ok(futures::stream::once(async move { Ok(first) }).boxed());
    }
    reader.read_ahead();
    let rest = futures::stream::unfold(reader, |mut reader| async move {
        let chunk = reader.ahead.take()?.await;
        let chunk = match chunk {
            Ok(Ok(chunk)) => chunk,
            Ok(Err(error)) => return Some((Err(error), reader)),
            Err(join) => return Some((Err(std::io::Error::other(join)), reader)),
        };
        reader.offset += chunk.len() as u64;
        reader.read_ahead();
        Some((Ok(chunk), reader))
    });
    Ok(futures::stream::once(async move { Ok(first) })
        .chain(rest)
        .boxed())
}

/// The state of [`read_local`]'s stream: what is left to read and the read in flight.
struct LocalReader {
    file: Arc<std::fs::File>,
    offset: u64,
    end: u64,
    /// The next chunk being read; `None` once everything was read or a read failed.
    ahead: Option<tokio::task::JoinHandle<std::io::Result<Bytes>>>,
}

impl LocalReader {
    /// Starts reading the next chunk, if any is left.
    fn read_ahead(&mut self) {
        if self.offset >= self.end {
            return;
        }
        let file = self.file.clone();
        let range = self.offset..self.end;
        self.ahead = Some(tokio::task::spawn_blocking(move || {
            read_chunk(&file, range)
        }));
    }
}

/// Reads the first chunk of `range` of `file` (at most [`READ_CHUNK`] bytes); empty for an
/// empty range. A file that ends before `range` does is an error, not a short body.
fn read_chunk(mut file: &std::fs::File, range: Range<u64>) -> std::io::Result<Bytes> {
    use std::io::{Read as _, Seek as _};
    let len = range.end.saturating_sub(range.start).min(READ_CHUNK as u64);
    // Seeking the shared handle is safe: a reader has at most one read in flight. `read_to_end`
    // reads into the spare capacity without zeroing it first.
    file.seek(std::io::SeekFrom::Start(range.start))?;
    let mut chunk = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut chunk)?;
    if (chunk.len() as u64) < len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Bytes::from(chunk))
}

/// Renames `source` (already flushed by [`StagedBlob::finish`]) to `target` so that the rename
/// survives a power cut: the directories created on the way are flushed into their parents, and
/// `target`'s directory is flushed after the rename. Without the last flush the file's bytes are
/// on disk but its name may not be, while the database already records the artifact.
fn durable_rename(root: PathBuf, source: &Path, target: &Path) -> std::io::Result<()> {
    let parent = target
        .parent()
        .ok_or_else(|| std::io::Error::other("a storage key without a directory"))?;
    let mut missing = Vec::new();
    let mut dir = parent;
    while dir != root && !dir.exists() {
        missing.push(dir);
        dir = dir.parent().unwrap_or(&root);
    }
    for created in missing.iter().rev() {
        match std::fs::create_dir(created) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
        if let Some(above) = created.parent() {
            sync_dir(above)?;
        }
    }
    std::fs::rename(source, target)?;
    sync_dir(parent)
}

/// The file in the data directory that says its `artifacts/` are all in the one-level layout
/// (see [`BlobStore::key`]); beside `artifacts/`, which holds nothing but blobs.
const ONE_LEVEL_MARKER: &str = "artifacts.one-level";

/// Moves the blobs of a local store in the two-level layout (`ab/cd/<sha256>`) to the one-level
/// one (`ab/<sha256>`), removing the emptied directories, then writes the `marker` file so
/// later starts skip the walk. A rename within one filesystem: no byte is copied. Safe to stop
/// at any point and to run from several processes at once: a blob is under one name or the
/// other, a name another process moved first is skipped, and the marker comes last.
fn flatten_two_level_layout(root: &Path, marker: &Path) -> std::io::Result<()> {
    if marker.exists() {
        return Ok(());
    }
    let gone = |error: &std::io::Error| error.kind() == std::io::ErrorKind::NotFound;
    for first in std::fs::read_dir(root)? {
        let first = first?;
        if !first.file_type()?.is_dir() {
            continue;
        }
        let first = first.path();
        let mut moved = false;
        let Some(seconds) = entries_if_there(&first)? else {
            continue;
        };
        for second in seconds {
            let second = second?;
            if !second.file_type()?.is_dir() {
                continue;
            }
            let second = second.path();
            let Some(blobs) = entries_if_there(&second)? else {
                continue;
            };
            for blob in blobs {
                let blob = blob?;
                match std::fs::rename(blob.path(), first.join(blob.file_name())) {
                    Ok(()) => moved = true,
                    Err(error) if gone(&error) => {}
                    Err(error) => return Err(error),
                }
            }
            match std::fs::remove_dir(&second) {
                Ok(()) => moved = true,
                Err(error) if gone(&error) => {}
                Err(error) => return Err(error),
            }
        }
        if moved {
            sync_dir(&first)?;
        }
    }
    std::fs::File::create(marker)?.sync_all()?;
    sync_dir(marker.parent().unwrap_or(root))
}

/// The entries of `dir`, or `None` when another process removed it meanwhile.
fn entries_if_there(dir: &Path) -> std::io::Result<Option<std::fs::ReadDir>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(Some(entries)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Flushes a directory's entries (names created, renamed or removed in it) to disk.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// A process's own directory for temporary files, `<data-dir>/tmp/<id>/`, beside the lock file
/// `<data-dir>/tmp/<id>.lock` the process holds locked (`flock`) for as long as it runs.
///
/// Several processes share a data directory (`serve` and `worker`), so none may wipe the whole
/// of `tmp/` at start as a single process could: each removes only the directories whose lock it
/// can take, those of processes that are gone (the kernel drops a lock with its process, even
/// one killed with SIGKILL).
#[derive(Debug)]
struct ProcessTmpDir {
    path: PathBuf,
    /// Held, locked, for the life of the process.
    _lock: std::fs::File,
}

impl ProcessTmpDir {
    /// Creates this process's directory under `tmp`, after removing those of dead processes.
    fn create(tmp: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(tmp).with_context(|| format!("creating {}", tmp.display()))?;
        remove_stale_tmp_dirs(tmp)
            .with_context(|| format!("removing stale temporary files in {}", tmp.display()))?;
        loop {
            let id = uuid::Uuid::new_v4().to_string();
            let lock_path = tmp.join(format!("{id}.lock"));
            let lock = std::fs::File::create(&lock_path)
                .with_context(|| format!("creating {}", lock_path.display()))?;
            rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
                .with_context(|| format!("locking {}", lock_path.display()))?;
            // Another process cleaning up may have taken the new file's lock before this one
            // and removed it: then the lock held is on a file no longer there; start again.
            if !same_file(&lock, &lock_path) {
                continue;
            }
            let path = tmp.join(&id);
            std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
            return Ok(Self { path, _lock: lock });
        }
    }
}

/// Whether the open `file` is the one at `path`.
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Removes what dead processes left in `tmp`: each `<id>` directory whose `<id>.lock` can be
/// locked (or has none: a live process creates its lock before its directory), the lock files
/// of those, and loose files of Granary versions before per-process directories.
fn remove_stale_tmp_dirs(tmp: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(tmp)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".lock") {
            let Ok(lock) = std::fs::File::open(&path) else {
                continue;
            };
            let taken =
                rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                    .is_ok();
            if taken && same_file(&lock, &path) {
                // Directory first, lock file last, while holding the lock: a directory without a
                // lock file is then always a dead process's.
                remove_any(&tmp.join(id))?;
                remove_any(&path)?;
            }
        } else if entry.file_type()?.is_dir() {
            if !tmp.join(format!("{name}.lock")).exists() {
                remove_any(&path)?;
            }
        } else {
            remove_any(&path)?;
        }
    }
    Ok(())
}

/// Removes a file or a directory tree; one already gone is not an error.
fn remove_any(path: &Path) -> std::io::Result<()> {
    let outcome = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(error) => Err(error),
    };
    match outcome {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Writes a received file to `key` of `store`: a rename on local storage, one request for a
/// small blob on S3, a multipart upload for a large one.
async fn put_file(
    store: &dyn ObjectStore,
    local_root: Option<&Path>,
    key: &ObjectPath,
    blob: ReceivedBlob,
) -> anyhow::Result<()> {
    if let Some(root) = local_root {
        let target = root.join(key.as_ref());
        let source = blob.path.clone();
        let root = root.to_path_buf();
        tokio::task::spawn_blocking(move || durable_rename(root, &source, &target))
            .await?
            .with_context(|| format!("moving a blob into {}", key.as_ref()))?;
        return Ok(());
    }
    // Small blobs go up in one request; S3 refuses a multipart upload without parts, and parts
    // (but the last) must be at least 5 MiB.
    if blob.size <= SINGLE_PUT_MAX {
        let bytes = tokio::fs::read(&blob.path).await?;
        store.put(key, bytes.into()).await?;
        return Ok(());
    }
    let mut upload = object_store::WriteMultipart::new(store.put_multipart(key).await?);
    let mut file = tokio::fs::File::open(&blob.path).await?;
    let mut buffer = vec![0u8; 8 * 1024 * 1024];
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        upload.write(&buffer[..read]);
    }
    upload.finish().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ at every offset, so a chunk read from the wrong place shows.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
            .collect()
    }

    /// Stages `data` through `write` calls of `piece` bytes and commits it.
    async fn store(blobs: &BlobStore, data: &[u8], piece: usize) -> String {
        let mut staged = blobs.stage().await.unwrap();
        for chunk in data.chunks(piece.max(1)) {
            staged.write(chunk).await.unwrap();
        }
        assert_eq!(staged.size(), data.len() as u64);
        let received = staged.finish().await.unwrap();
        let sha256 = received.sha256.clone();
        assert_eq!(received.size, data.len() as u64);
        blobs.commit(received).await.unwrap();
        sha256
    }

    /// How many files are left in the process's temporary directory.
    fn temporary_files(blobs: &BlobStore) -> usize {
        std::fs::read_dir(&blobs.tmp_dir.path).unwrap().count()
    }

    #[test]
    fn a_second_process_keeps_the_temporary_files_of_a_live_one_and_removes_a_dead_ones() {
        let dir = tempfile::tempdir().unwrap();
        let live = ProcessTmpDir::create(&dir.path().join("tmp")).unwrap();
        std::fs::write(live.path.join("in-flight"), b"bytes").unwrap();
        let dead = ProcessTmpDir::create(&dir.path().join("tmp")).unwrap();
        std::fs::write(dead.path.join("left-over"), b"bytes").unwrap();
        let dead_path = dead.path.clone();
        // Dropping the lock is what a process's death does.
        drop(dead);
        let _next = ProcessTmpDir::create(&dir.path().join("tmp")).unwrap();
        assert!(live.path.join("in-flight").exists());
        assert!(!dead_path.exists());
    }

    async fn collect(
        blobs: &BlobStore,
        sha256: &str,
        range: Option<Range<u64>>,
    ) -> std::io::Result<Vec<Bytes>> {
        let stream = blobs
            .read(sha256, range)
            .await
            .map_err(std::io::Error::other)?;
        stream.try_collect().await
    }

    #[tokio::test]
    async fn sha512_is_computed_when_asked_for_before_the_first_byte() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::local(dir.path()).unwrap();
        let data = pattern(WRITE_BUFFER + 77);
        let mut staged = blobs.stage().await.unwrap().hashing_sha512().unwrap();
        for chunk in data.chunks(1000) {
            staged.write(chunk).await.unwrap();
        }
        let received = staged.finish().await.unwrap();
        assert_eq!(
            received.sha512.as_deref(),
            Some(hex::encode(Sha512::digest(&data)).as_str())
        );
        assert_eq!(received.sha256, hex::encode(Sha256::digest(&data)));

        let without = blobs.stage_bytes(Bytes::from_static(b"abc")).await.unwrap();
        assert_eq!(without.sha512, None, "only when asked for");
        let mut late = blobs.stage().await.unwrap();
        late.write(b"a").await.unwrap();
        assert!(late.hashing_sha512().is_err(), "asked for after a byte");
    }

    #[tokio::test]
    async fn staged_bytes_are_hashed_and_stored_whatever_the_write_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::local(dir.path()).unwrap();
        let data = pattern(2 * WRITE_BUFFER + 12_345);
        let expected = hex::encode(Sha256::digest(&data));
        for piece in [1000, WRITE_BUFFER, WRITE_BUFFER + 1, data.len()] {
            assert_eq!(store(&blobs, &data, piece).await, expected);
        }
        let stored = dir
            .path()
            .join("artifacts")
            .join(&expected[0..2])
            .join(&expected);
        assert_eq!(std::fs::read(stored).unwrap(), data);
        let empty = hex::encode(Sha256::digest(b""));
        assert_eq!(store(&blobs, b"", 1).await, empty);
        assert_eq!(temporary_files(&blobs), 0);
    }

    /// A data directory of the two-level layout (`ab/cd/<sha256>`) is moved to the one-level
    /// layout when it is opened: every blob reads back, no directory of the old layout is left,
    /// and a blob stored before the move (and found again by a later one) is not lost.
    #[tokio::test]
    async fn a_two_level_store_is_moved_to_one_level_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("artifacts");
        let blobs: Vec<(String, Vec<u8>)> = (0..40u8)
            .map(|n| {
                let data = pattern(100 + usize::from(n));
                (hex::encode(Sha256::digest(&data)), data)
            })
            .collect();
        for (sha256, data) in &blobs {
            let leaf = root.join(&sha256[0..2]).join(&sha256[2..4]);
            std::fs::create_dir_all(&leaf).unwrap();
            std::fs::write(leaf.join(sha256), data).unwrap();
        }
        // A process stopped half-way: one blob moved already.
        let (moved, _) = &blobs[0];
        std::fs::rename(
            root.join(&moved[0..2]).join(&moved[2..4]).join(moved),
            root.join(&moved[0..2]).join(moved),
        )
        .unwrap();

        let store = BlobStore::local(dir.path()).unwrap();
        for (sha256, data) in &blobs {
            let size = data.len() as u64;
            let read = store.read_range(sha256, 0, size, size).await.unwrap();
            assert_eq!(&read, data, "{sha256}");
            assert!(
                root.join(&sha256[0..2])
                    .join(&sha256[2..4])
                    .symlink_metadata()
                    .is_err()
            );
        }
        let mut stored: Vec<String> = store
            .stored()
            .await
            .unwrap()
            .into_iter()
            .map(|(sha256, _)| sha256)
            .collect();
        stored.sort();
        let mut expected: Vec<String> = blobs.iter().map(|(sha256, _)| sha256.clone()).collect();
        expected.sort();
        assert_eq!(stored, expected);
        // Opened again: nothing to move, nothing lost.
        drop(store);
        let again = BlobStore::local(dir.path()).unwrap();
        assert!(again.exists(&blobs[1].0).await);
    }

    #[tokio::test]
    async fn a_dropped_staged_blob_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::local(dir.path()).unwrap();
        let mut staged = blobs.stage().await.unwrap();
        staged.write(&pattern(WRITE_BUFFER + 1)).await.unwrap();
        drop(staged);
        assert_eq!(temporary_files(&blobs), 0);
    }

    #[tokio::test]
    async fn bytes_staged_whole_are_hashed_kept_and_removed_with_their_blob() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::local(dir.path()).unwrap();
        let data = pattern(WRITE_BUFFER + 5);
        let received = blobs.stage_bytes(Bytes::from(data.clone())).await.unwrap();
        assert_eq!(received.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(received.size, data.len() as u64);
        assert_eq!(std::fs::read(&received.path).unwrap(), data);
        drop(received);
        assert_eq!(
            temporary_files(&blobs),
            0,
            "an uncommitted blob leaves no file"
        );
    }

    /// Without a journal, bytes kept whole are in their place when they are handed out (no
    /// temporary file left), and committing them has nothing left to do; keeping them again
    /// finds them stored. Dropped, the blob stays: it is stored, and a row may name it.
    #[tokio::test]
    async fn bytes_kept_whole_without_a_journal_are_in_their_place_and_stay_there() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::local(dir.path()).unwrap();
        let data = pattern(1300);
        let sha256 = hex::encode(Sha256::digest(&data));
        let kept = blobs.keep_bytes(Bytes::from(data.clone())).await.unwrap();
        assert_eq!((kept.sha256.as_str(), kept.size), (sha256.as_str(), 1300));
        assert!(kept.journaled.is_none());
        let stored = blobs.local_path(&sha256).unwrap();
        assert_eq!(std::fs::read(&stored).unwrap(), data);
        assert_eq!(temporary_files(&blobs), 0, "nothing left in staging");
        blobs.commit(kept).await.unwrap();
        assert_eq!(
            std::fs::read(&stored).unwrap(),
            data,
            "committed where it was"
        );

        let again = blobs.keep_bytes(Bytes::from(data.clone())).await.unwrap();
        drop(again);
        assert_eq!(
            std::fs::read(&stored).unwrap(),
            data,
            "a dropped blob stays stored"
        );
        assert_eq!(temporary_files(&blobs), 0);
        let chunk = blobs.keep_bytes(Bytes::from(data)).await.unwrap();
        let refused = blobs.put_part("upload/0-part", chunk).await;
        assert!(
            refused.is_err(),
            "a stored blob is never moved away as a chunk"
        );
        assert!(stored.exists());
    }

    #[tokio::test]
    async fn local_reads_return_exactly_the_range_in_bounded_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::local(dir.path()).unwrap();
        let size = 2 * READ_CHUNK + READ_CHUNK / 2;
        let data = pattern(size);
        let sha256 = store(&blobs, &data, WRITE_BUFFER).await;
        let chunk = READ_CHUNK as u64;
        let ranges = [
            None,
            Some(0..1),
            Some(0..chunk),
            Some(0..chunk + 1),
            Some(chunk - 1..chunk + 1),
            Some(5..2 * chunk + 7),
            Some(size as u64 - 1..size as u64),
            Some(3..3),
        ];
        for range in ranges {
            let chunks = collect(&blobs, &sha256, range.clone()).await.unwrap();
            assert!(chunks.iter().all(|c| c.len() <= READ_CHUNK), "{range:?}");
            let body: Vec<u8> = chunks.concat();
            let expected = match &range {
                Some(range) => &data[range.start as usize..range.end as usize],
                None => &data[..],
            };
            assert!(body == expected, "{range:?}: wrong bytes");
        }
        let small = store(&blobs, b"hello", 2).await;
        assert_eq!(
            collect(&blobs, &small, None).await.unwrap().concat(),
            b"hello"
        );
        assert_eq!(
            collect(&blobs, &small, Some(1..3)).await.unwrap().concat(),
            b"el"
        );
    }

    #[tokio::test]
    async fn missing_and_short_files_are_errors_not_short_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::local(dir.path()).unwrap();
        let missing = hex::encode(Sha256::digest(b"never stored"));
        assert!(blobs.read(&missing, None).await.is_err());
        let data = pattern(READ_CHUNK + 10);
        let sha256 = store(&blobs, &data, WRITE_BUFFER).await;
        // A range past the end of the file (as if the stored file were shorter than recorded).
        let past = Some(0..data.len() as u64 + 5);
        assert!(collect(&blobs, &sha256, past).await.is_err());
        let past_small = Some(READ_CHUNK as u64..READ_CHUNK as u64 + 20);
        assert!(collect(&blobs, &sha256, past_small).await.is_err());
    }

    #[tokio::test]
    async fn small_files_are_served_from_memory_once_read_and_only_when_they_are_their_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::local(dir.path())
            .unwrap()
            .with_small_blob_cache(1 << 20);
        let kept = store(&blobs, b"kept in memory.", 3).await;
        let corrupt = store(&blobs, b"changed on disk", 3).await;
        // Both are 15 bytes long.
        let read =
            async |sha256: &str, range| blobs.read_small(sha256, 15, range).await.unwrap().unwrap();
        assert_eq!(read(&kept, 0..13).await, &b"kept in memor"[..]);
        let on_disk = |sha256: &str| blobs.local_path(sha256).unwrap();
        std::fs::write(on_disk(&corrupt), b"CHANGED on disk").unwrap();
        assert_eq!(
            read(&corrupt, 0..15).await,
            &b"CHANGED on disk"[..],
            "served as stored"
        );

        std::fs::remove_file(on_disk(&kept)).unwrap();
        std::fs::write(on_disk(&corrupt), b"changed on DISK").unwrap();

        assert_eq!(
            read(&kept, 5..7).await,
            &b"in"[..],
            "the first read kept it"
        );
        assert_eq!(
            read(&corrupt, 0..15).await,
            &b"changed on DISK"[..],
            "never kept"
        );
    }
}
