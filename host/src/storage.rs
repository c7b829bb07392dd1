//! Artifact storage: content-addressed blobs behind `object_store` (local files by default).
//!
//! Bytes arrive into a [`StagedBlob`] (a temporary file under `<data-dir>/tmp/`) while they are
//! hashed. Only after the caller has checked the size and digest does [`BlobStore::commit`] move
//! them to their final key `artifacts/ab/cd/<sha256>`, so a reader never sees a partial or
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
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Blobs up to this size are uploaded to object storage in one request, larger ones in parts.
const SINGLE_PUT_MAX: u64 = 8 * 1024 * 1024;

/// Bytes buffered before a staged file is written.
const WRITE_BUFFER: usize = 1024 * 1024;

/// Chunk size for reading stored files.
const READ_CHUNK: usize = 256 * 1024;

/// Reads of local files up to this size are made on the calling thread ([`BlobStore::read_small_now`]).
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
    tmp_dir: PathBuf,
    /// Set for S3: signs URLs clients can download from directly.
    signer: Option<object_store::aws::AmazonS3>,
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
#[derive(Debug)]
pub struct StagedBlob {
    path: PathBuf,
    /// Buffered: tokio hands every file write to a blocking thread, so few large writes beat
    /// many network-sized ones.
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
    hasher: Sha256,
    size: u64,
}

/// A fully received temporary file with its digest, ready to be verified and committed.
#[derive(Debug)]
pub struct ReceivedBlob {
    path: PathBuf,
    /// sha256 of the bytes, lower-case hex.
    pub sha256: String,
    /// Number of bytes.
    pub size: u64,
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for ReceivedBlob {
    fn drop(&mut self) {
        // After a commit the file has been moved away and this does nothing.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl StagedBlob {
    /// Appends a chunk.
    pub async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        match &mut self.file {
            Some(file) => file.write_all(chunk).await,
            None => Err(std::io::Error::other("staged blob already finished")),
        }
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flushes the file and returns its digest.
    pub async fn finish(mut self) -> std::io::Result<ReceivedBlob> {
        if let Some(mut file) = self.file.take() {
            file.flush().await?;
            file.get_mut().sync_data().await?;
        }
        let hasher = std::mem::take(&mut self.hasher);
        let path = std::mem::take(&mut self.path);
        Ok(ReceivedBlob {
            path,
            sha256: hex::encode(hasher.finalize()),
            size: self.size,
        })
    }
}

impl BlobStore {
    /// Local storage under `data_dir/artifacts`, temporary files under `data_dir/tmp`.
    /// Leftover temporary files (from a process that was killed) are removed.
    pub fn local(data_dir: &Path) -> anyhow::Result<Self> {
        let root = data_dir.join("artifacts");
        let tmp_dir = data_dir.join("tmp");
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let _ = std::fs::remove_dir_all(&tmp_dir);
        std::fs::create_dir_all(&tmp_dir)
            .with_context(|| format!("creating {}", tmp_dir.display()))?;
        let store =
            LocalFileSystem::new_with_prefix(&root).context("opening local artifact storage")?;
        let parts_root = data_dir.join("uploads");
        std::fs::create_dir_all(&parts_root)
            .with_context(|| format!("creating {}", parts_root.display()))?;
        let parts = LocalFileSystem::new_with_prefix(&parts_root)
            .context("opening local upload storage")?;
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
        })
    }

    /// S3-compatible storage: artifacts under `artifacts/` in `bucket`; temporary files still
    /// under `data_dir/tmp` (staging is local to each process).
    pub fn s3(data_dir: &Path, settings: &S3Settings) -> anyhow::Result<Self> {
        let tmp_dir = data_dir.join("tmp");
        let _ = std::fs::remove_dir_all(&tmp_dir);
        std::fs::create_dir_all(&tmp_dir)
            .with_context(|| format!("creating {}", tmp_dir.display()))?;
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
        })
    }

    /// Starts receiving a new blob.
    pub async fn stage(&self) -> std::io::Result<StagedBlob> {
        let path = self.tmp_dir.join(uuid::Uuid::new_v4().to_string());
        let file = tokio::fs::File::create(&path).await?;
        Ok(StagedBlob {
            path,
            file: Some(tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file)),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Stages a whole in-memory body (publication metadata files).
    pub async fn stage_bytes(&self, bytes: &[u8]) -> std::io::Result<ReceivedBlob> {
        let mut staged = self.stage().await?;
        staged.write(bytes).await?;
        staged.finish().await
    }

    /// Moves a verified blob to its final place. Idempotent: a blob already stored is kept.
    pub async fn commit(&self, blob: ReceivedBlob) -> anyhow::Result<()> {
        let key = Self::key(&blob.sha256);
        if let Some(root) = &self.local_root {
            if tokio::fs::try_exists(&root.join(key.as_ref()))
                .await
                .unwrap_or(false)
            {
                return Ok(());
            }
        } else if self.store.head(&key).await.is_ok() {
            return Ok(());
        }
        put_file(&*self.store, self.local_root.as_deref(), &key, blob).await
    }

    /// Stores a received chunk of an upload under `key` (e.g. `<upload id>/<start>-<sha256>`),
    /// replacing what was there.
    pub async fn put_part(&self, key: &str, blob: ReceivedBlob) -> anyhow::Result<()> {
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

    /// Deletes a stored blob (orphan cleanup, reclaim, repair of a corrupt copy); one already gone
    /// is not an error.
    pub async fn delete(&self, sha256: &str) -> anyhow::Result<()> {
        match self.store.delete(&Self::key(sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Whether the blob with this digest is stored.
    pub async fn exists(&self, sha256: &str) -> bool {
        self.store.head(&Self::key(sha256)).await.is_ok()
    }

    /// Reads a stored blob, or a byte range of it.
    pub async fn read(
        &self,
        sha256: &str,
        range: Option<Range<u64>>,
    ) -> anyhow::Result<BoxStream<'static, std::io::Result<Bytes>>> {
        let key = Self::key(sha256);
        if let Some(root) = &self.local_root {
            enum Opened {
                Whole(Bytes),
                File(std::fs::File, u64),
            }
            let path = root.join(key.as_ref());
            // One trip to the blocking pool opens and positions the file and reads a small one
            // whole: a 4 KiB file costs one trip instead of three (open, read, read at the end).
            let opened = tokio::task::spawn_blocking(move || -> std::io::Result<Opened> {
                use std::io::{Read as _, Seek as _};
                let mut file = std::fs::File::open(&path)?;
                let range = match range {
                    Some(range) => range,
                    None => 0..file.metadata()?.len(),
                };
                if range.start > 0 {
                    file.seek(std::io::SeekFrom::Start(range.start))?;
                }
                let len = range.end.saturating_sub(range.start);
                if len > READ_CHUNK as u64 {
                    return Ok(Opened::File(file, len));
                }
                let mut whole = Vec::with_capacity(len as usize);
                file.take(len).read_to_end(&mut whole)?;
                Ok(Opened::Whole(Bytes::from(whole)))
            })
            .await?
            .with_context(|| format!("opening artifact {sha256}"))?;
            return Ok(match opened {
                Opened::Whole(bytes) => futures::stream::once(async move { Ok(bytes) }).boxed(),
                Opened::File(file, len) => {
                    let limited = tokio::fs::File::from_std(file).take(len);
                    tokio_util::io::ReaderStream::with_capacity(limited, READ_CHUNK).boxed()
                }
            });
        }
        let options = object_store::GetOptions {
            range: range.map(|range| object_store::GetRange::Bounded(range.start..range.end)),
            ..Default::default()
        };
        let result = self.store.get_opts(&key, options).await?;
        Ok(result.into_stream().map_err(std::io::Error::other).boxed())
    }

    /// Reads `range` of a locally stored blob on the calling thread, when the store is local and
    /// the range is at most [`INLINE_READ_LIMIT`] bytes (else `None`: use [`BlobStore::read`]).
    ///
    /// Why not the blocking pool: a small read from the page cache takes a few microseconds,
    /// while handing it to a pool thread and waking the task again takes two thread wake-ups,
    /// and those wake-ups were most of the time of serving a 4 KiB file. nginx reads on its
    /// event loop for the same reason; the size cap bounds how long a cold read can hold the
    /// thread.
    pub fn read_small_now(
        &self,
        sha256: &str,
        range: Range<u64>,
    ) -> Option<std::io::Result<Bytes>> {
        use std::os::unix::fs::FileExt as _;
        let root = self.local_root_dir.as_ref()?;
        let len = range.end.checked_sub(range.start)?;
        if len > INLINE_READ_LIMIT {
            return None;
        }
        let read = || -> std::io::Result<Bytes> {
            use rustix::fs::{Mode, OFlags, openat};
            let flags = OFlags::RDONLY | OFlags::CLOEXEC;
            let file = std::fs::File::from(openat(
                root,
                Self::key(sha256).as_ref(),
                flags,
                Mode::empty(),
            )?);
            let mut bytes = vec![0; len as usize];
            file.read_exact_at(&mut bytes, range.start)?;
            Ok(Bytes::from(bytes))
        };
        Some(read())
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
        let path = ObjectPath::from(format!("artifacts/{}", Self::key(sha256)));
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

    fn key(sha256: &str) -> ObjectPath {
        ObjectPath::from(format!("{}/{}/{}", &sha256[0..2], &sha256[2..4], sha256))
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
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(&blob.path, &target)
            .await
            .with_context(|| format!("moving a blob into {}", target.display()))?;
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
