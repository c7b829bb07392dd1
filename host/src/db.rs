//! The database: SQLite (embedded default) or PostgreSQL, one portable SQL dialect, migrations
//! embedded and run at start-up.
//!
//! SQLite allows one writer at a time and fails a transaction that read first and then tries to
//! write after another connection committed (`SQLITE_BUSY_SNAPSHOT`), whatever the busy timeout.
//! Every write therefore goes through [`Db::begin_write`], which on SQLite also takes a
//! process-wide lock (SQLite is single-process by design here); on PostgreSQL it is a plain
//! transaction.

use std::sync::Arc;

use anyhow::Context as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Executor as _, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Page cache of each SQLite connection: 512 KiB (SQLite's default is 2000 KiB).
///
/// Every connection of the pool has a cache of its own, so the default let up to 8 × 2 MiB of
/// pages accumulate once a repository's tables outgrew them (a 100k-unit sync and publish fill the
/// cache of every connection they use); in WAL mode a connection also drops its cache whenever
/// another one has written, so during syncs and publishes a large cache bought little. The pages
/// themselves stay in the OS page cache either way.
const SQLITE_CACHE_SIZE: &str = "PRAGMA cache_size = -512";

/// Which engine is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in WAL mode: one process.
    Sqlite,
    /// PostgreSQL: any number of processes.
    Postgres,
}

/// A pool of connections plus what the code needs to know about the engine.
#[derive(Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    write_lock: Arc<Mutex<()>>,
}

/// A write transaction. Commit it with [`WriteTx::commit`]; dropping it rolls back.
pub struct WriteTx {
    tx: Transaction<'static, sqlx::Any>,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits the transaction and releases the write lock.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl Db {
    /// Connects, applies engine settings and runs the embedded migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!("unsupported database URL {url:?}: use sqlite://PATH or postgres://...");
        };
        let options: AnyConnectOptions = url
            .parse()
            .with_context(|| format!("parsing database URL {url:?}"))?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 30000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute(SQLITE_CACHE_SIZE).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("connecting to the database at {}", redact(url)))?;
        MIGRATOR
            .run(&pool)
            .await
            .context("running database migrations")?;
        Ok(Db {
            pool,
            backend,
            write_lock: Arc::new(Mutex::new(())),
        })
    }

    /// The pool, for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction (see the module docs for why writes are serialised on SQLite).
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let guard = match self.backend {
            Backend::Sqlite => Some(self.write_lock.clone().lock_owned().await),
            Backend::Postgres => None,
        };
        let tx = self.pool.begin().await?;
        Ok(WriteTx { tx, _guard: guard })
    }
}

/// The current time as stored in the database: fixed-width RFC 3339 UTC, sortable as text.
pub fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// A new id: a UUIDv7, which sorts by creation time (the `uuid` crate orders the ids one process
/// makes by their creation).
///
/// Ids are primary keys and the leading column of several indexes (`content_artifacts
/// (content_id, …)`, `remote_artifacts (content_artifact_id, …)`, `sync_staging (task_id,
/// content_id)`). Random (v4) ids sent every insert to a random leaf page, so a sync batch dirtied
/// and rewrote a page per row and per index once an index outgrew the page cache: the cost per
/// unit grew with the repository. Increasing ids append at the right edge of each B-tree and a
/// batch touches a handful of pages whatever the repository's size. Ids are not secrets: every
/// API route authenticates, and token secrets come from `app::random_token`.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row as _;

    use super::{Db, new_id};

    #[test]
    fn ids_sort_by_creation() {
        let ids: Vec<String> = (0..10_000).map(|_| new_id()).collect();
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "ids made one after another must sort in that order (as text, the way indexes compare them)"
        );
        let id = uuid::Uuid::parse_str(&ids[0]).expect("an id is a UUID");
        assert_eq!(id.get_version_num(), 7);
    }

    #[tokio::test]
    async fn sqlite_connections_have_a_bounded_page_cache() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("granary.db").display()
        );
        let db = Db::connect(&url).await.expect("connecting");
        let kib: i64 = sqlx::query("PRAGMA cache_size")
            .fetch_one(db.pool())
            .await
            .expect("reading cache_size")
            .get(0);
        assert_eq!(kib, -512);
    }
}
