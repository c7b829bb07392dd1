//! The database: SQLite (embedded default) or PostgreSQL, one portable SQL dialect, migrations
//! embedded and run at start-up.
//!
//! SQLite allows one writer at a time and fails a transaction that read first and then tries to
//! write after another connection committed (`SQLITE_BUSY_SNAPSHOT`), whatever the busy timeout.
//! Every write therefore goes through [`Db::begin_write`], which on SQLite also takes a
//! process-wide lock (SQLite is single-process by design here) and runs on the one connection
//! kept for writing; on PostgreSQL it is a plain transaction from the pool.
//!
//! A write transaction also says whether it changed what the content app resolves paths with
//! (see [`ContentChanges`]), so the content app can keep those lookups in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection as _, Executor as _, Row as _, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

mod batch;

pub use batch::{Batch, Ran, SqlValue};

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
    /// SQLite: the one connection every write transaction uses, behind the process's write lock
    /// (writes are serialised anyway). The multi-row statements of syncs and publishes are then
    /// prepared and cached on that connection only, instead of on every connection of `pool` in
    /// turn (the pool hands out its connections round-robin), and its page cache stays valid
    /// between writes: in WAL mode a connection drops its cache whenever another one has
    /// written. It is kept out of any pool because a pool tests each connection given back to it
    /// with a trip to the connection's thread (sqlx pings on release), one more thread hand-off
    /// per write transaction; and because the transaction's `BEGIN` and `COMMIT` can then go
    /// with its first and last statements (see [`Db::begin_write_with`], [`WriteTx::commit_with`]).
    writer: Option<Arc<Mutex<Writer>>>,
    /// SQLite: connections held outside the pool for the reads nearly every request makes (its
    /// distribution, its user, a plugin's lookups; see [`Db::reader`]), so that giving one back
    /// costs no trip to its thread as giving back one of the pool's does.
    readers: Vec<Arc<Mutex<AnyConnection>>>,
    backend: Backend,
    content_changes: Arc<ContentChanges>,
}

/// How many connections [`Db::reader`] holds outside the pool on SQLite: one per core of the
/// machines this is measured on; a request finding both busy borrows one of the pool's.
const HELD_READERS: usize = 2;

/// A connection for reads (see [`Db::reader`]).
pub enum Reader {
    /// One of the connections held outside the pool.
    Held(OwnedMutexGuard<AnyConnection>),
    /// One of the pool's.
    Pooled(sqlx::pool::PoolConnection<sqlx::Any>),
}

impl std::ops::Deref for Reader {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            Reader::Held(held) => held,
            Reader::Pooled(pooled) => pooled,
        }
    }
}

impl std::ops::DerefMut for Reader {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Reader::Held(held) => &mut *held,
            Reader::Pooled(pooled) => &mut *pooled,
        }
    }
}

/// SQLite's writing connection, and whether a transaction is open on it.
#[derive(Debug)]
struct Writer {
    connection: AnyConnection,
    /// A transaction was begun and neither committed nor rolled back yet: set before its
    /// `BEGIN` is sent, cleared once its `COMMIT` or `ROLLBACK` has run.
    open: bool,
}

impl Writer {
    /// Rolls back what a dropped [`WriteTx`] left open. "No transaction is active" is no failure
    /// here: SQLite rolls back by itself after some errors, and an abandoned batch may have
    /// reached its `COMMIT`.
    async fn roll_back_left_open(&mut self) {
        if self.open {
            if let Err(error) = self.connection.execute("ROLLBACK").await {
                tracing::debug!(%error, "rolling back an abandoned write transaction");
            }
            self.open = false;
        }
    }
}

/// The tables the content app resolves a path with: a committed change to any of them may change
/// what a path serves. `repositories` because its `latest_version` is the version a distribution
/// of the repository serves to plugin routes (and the key of their cached answers).
const CONTENT_TABLES: &[&str] = &[
    "distributions",
    "repositories",
    "publications",
    "published_files",
    "artifacts",
    "content_artifacts",
];

/// PostgreSQL channel announcing that a task was queued or finished (idle workers wake).
pub const TASKS_CHANNEL: &str = "granary_tasks";
/// PostgreSQL channel announcing that the set of installed plugins changed (registries reload).
pub const PLUGINS_CHANNEL: &str = "granary_plugins";

/// Announces a change on `channel` to every process; with PostgreSQL it is delivered when
/// `conn`'s transaction commits (at once outside a transaction). Nothing to do on SQLite: there
/// is one process, which acts on its own changes directly.
pub async fn announce(
    db: &Db,
    conn: &mut sqlx::AnyConnection,
    channel: &str,
) -> Result<(), sqlx::Error> {
    if db.backend() == Backend::Postgres {
        sqlx::query(NOTIFY).bind(channel).execute(conn).await?;
    }
    Ok(())
}

/// [`announce`] as a statement of `batch` (none on SQLite).
pub fn announce_in(batch: &mut Batch, backend: Backend, channel: &str) {
    if backend == Backend::Postgres {
        batch.push(NOTIFY, vec![channel.into()]);
    }
}

const NOTIFY: &str = "SELECT pg_notify($1, '')";

/// `$start, $start+1, …` placeholders for an `IN (...)` list of `count` values.
pub fn placeholders(start: usize, count: usize) -> String {
    (start..start + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `VALUES` rows of a multi-row `INSERT`: `count` copies of `row`, each `?` in it replaced by
/// the next placeholder from `$first` on, so the rows' own values come after the `$1…` every row
/// shares. `value_rows("(?, $1, ?)", 2, 2)` is `($2, $1, $3), ($4, $1, $5)`.
pub fn value_rows(row: &str, first: usize, count: usize) -> String {
    let mut next = first;
    let mut rows = Vec::with_capacity(count);
    for _ in 0..count {
        let mut numbered = String::with_capacity(row.len() + 8);
        for c in row.chars() {
            if c == '?' {
                numbered.push_str(&format!("${next}"));
                next += 1;
            } else {
                numbered.push(c);
            }
        }
        rows.push(numbered);
    }
    rows.join(", ")
}

/// Binds a list of values in order, after what is bound already: the values of an `IN (...)`
/// list [`placeholders`] wrote, or of the rows [`value_rows`] wrote.
pub trait BindAll<'q>: Sized {
    /// The query with every one of `values` bound.
    fn bind_all<T>(self, values: impl IntoIterator<Item = T>) -> Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any>;
}

/// sqlx's three query builders have a `bind` each but no trait that unites them.
macro_rules! bind_all_for {
    ($([$($output:ident)?] $query:ty),+ $(,)?) => {$(
        impl<'q $(, $output)?> BindAll<'q> for $query {
            fn bind_all<T>(mut self, values: impl IntoIterator<Item = T>) -> Self
            where
                T: 'q + sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any>,
            {
                for value in values {
                    self = self.bind(value);
                }
                self
            }
        }
    )+};
}

bind_all_for!(
    [] sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    [O] sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
    [O] sqlx::query::QueryScalar<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
);

/// SQL condition: `rc` rows (`repository_content`) of repository `$1` present in version `$2`.
pub const IN_VERSION: &str = "rc.repository_id = $1 AND rc.version_added <= $2 AND (rc.version_removed IS NULL OR rc.version_removed > $2)";

/// PostgreSQL channel on which the triggers of [`CONTENT_TABLES`] announce a change.
pub const CONTENT_CHANNEL: &str = "granary_content";

/// The generation of the [`CONTENT_TABLES`] as this process knows it: it moves after every
/// committed transaction that changed one of them, before the commit returns to its caller (so a
/// task is not reported complete, nor a request answered, before the move). Caches keep what they
/// read with the generation they read it at, and drop it once the generation has moved.
///
/// How a change is noticed: triggers on the tables (created at start-up by [`install_triggers`]).
/// On SQLite they bump `content_changes.counter`, which [`WriteTx::commit`] compares with the last
/// value it saw; SQLite has one process, so every write is seen. On PostgreSQL they set a
/// transaction-local flag that `commit` reads, and notify [`CONTENT_CHANNEL`] with the
/// transaction's id, which every process hears (`app::events::listen`) and hands to
/// [`ContentChanges::heard`]. The process that committed through [`WriteTx`] has already moved
/// its generation and skips its own notification: moving twice made requests that straddled the
/// second move (a few milliseconds after the commit) make a second answer for the same version.
#[derive(Debug, Default)]
pub struct ContentChanges {
    generation: AtomicU64,
    /// SQLite: the highest `content_changes.counter` a commit has seen.
    counter_seen: std::sync::Mutex<i64>,
    /// PostgreSQL: the ids of transactions this process committed through [`WriteTx`] (and so
    /// moved the generation for) whose notification has not been heard yet, oldest first.
    own_unheard: std::sync::Mutex<std::collections::VecDeque<String>>,
}

/// How many of its own notifications a process remembers before it hears them. One lost (the
/// listening connection dropped, or more commits in flight than this) only costs a needless move.
const OWN_UNHEARD_KEPT: usize = 1024;

impl ContentChanges {
    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records a change: everything read before now is stale.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// A notification on [`CONTENT_CHANNEL`] whose payload is the id of the transaction that
    /// made the change: moves the generation unless this process committed that transaction
    /// through [`WriteTx`], which moved it already. Writes made otherwise (by another process,
    /// or by a plain transaction of this one) move it here.
    pub fn heard(&self, transaction: &str) {
        let mut own = self.own_unheard();
        if let Some(at) = own.iter().position(|id| id == transaction) {
            own.remove(at);
            return;
        }
        drop(own);
        self.changed();
    }

    /// Forgets the notifications this process expects from its own commits, for when some may
    /// have been lost (the listening connection was made again): the caller moves the generation.
    pub fn forget_own(&self) {
        self.own_unheard().clear();
    }

    /// Notes, before committing it, a transaction whose notification this process will hear.
    fn expect_own(&self, transaction: String) {
        let mut own = self.own_unheard();
        if own.len() == OWN_UNHEARD_KEPT {
            own.pop_front();
        }
        own.push_back(transaction);
    }

    /// Takes back an expected notification whose commit failed or was abandoned.
    fn unexpect_own(&self, transaction: &str) {
        self.own_unheard().retain(|id| id != transaction);
    }

    fn own_unheard(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<String>> {
        self.own_unheard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A write transaction. Commit it with [`WriteTx::commit`]; dropping it rolls back.
pub struct WriteTx {
    connection: Connection,
    backend: Backend,
    content_changes: Arc<ContentChanges>,
    /// SQLite: its `COMMIT` was sent, so it may have committed even if it is dropped before the
    /// answer came back.
    committing: bool,
}

/// The connection a [`WriteTx`] runs on.
enum Connection {
    /// SQLite's writing connection, held (the process's write lock) until the transaction ends;
    /// taken out when it does.
    Sqlite(Option<OwnedMutexGuard<Writer>>),
    /// A transaction of the pool's.
    Postgres(Transaction<'static, sqlx::Any>),
}

impl WriteTx {
    /// Commits the transaction and releases the write lock; moves the content generation, before
    /// returning, if the transaction changed a content table.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.commit_with(Batch::new()).await
    }

    /// Runs `last` (statements whose rows the caller does not need), then commits as
    /// [`WriteTx::commit`] does. What the commit reads first goes with `last`, and on SQLite
    /// the `COMMIT` too: one trip.
    pub async fn commit_with(mut self, mut last: Batch) -> Result<(), sqlx::Error> {
        let backend = self.backend;
        if backend == Backend::Postgres {
            last.push(
                "SELECT current_setting('granary.content_changed', true),
                        CAST(txid_current_if_assigned() AS TEXT)",
                Vec::new(),
            );
            let ran = last.run_each(&mut self).await?;
            let (flag, transaction): (Option<String>, Option<String>) = match ran.last() {
                Some(read) => match read.rows.first() {
                    Some(row) => (row.try_get(0)?, row.try_get(1)?),
                    None => (None, None),
                },
                None => (None, None),
            };
            let Connection::Postgres(tx) =
                std::mem::replace(&mut self.connection, Connection::Sqlite(None))
            else {
                unreachable!("a PostgreSQL transaction");
            };
            if flag.as_deref() != Some("yes") {
                return tx.commit().await;
            }
            // Expected before the commit: the listener may hear the notification before
            // `commit` returns here.
            let mut after = AfterCommit {
                changes: self.content_changes.clone(),
                own: transaction,
                committed: false,
            };
            if let Some(id) = &after.own {
                after.changes.expect_own(id.clone());
            }
            let outcome = tx.commit().await;
            after.committed = outcome.is_ok();
            return outcome;
        }
        // SQLite: the counter is read inside the transaction (no other writer can move it
        // before the commit), in the trip that commits.
        last.push(COUNTER, Vec::new());
        last.push("COMMIT", Vec::new());
        self.committing = true;
        let ran = last.run_each(&mut self).await?;
        let Connection::Sqlite(Some(mut held)) =
            std::mem::replace(&mut self.connection, Connection::Sqlite(None))
        else {
            unreachable!("the SQLite writer, held until the transaction ends");
        };
        held.open = false;
        drop(held);
        let read = ran
            .len()
            .checked_sub(2)
            .and_then(|counter| ran[counter].rows.first());
        let counter: i64 = match read {
            Some(row) => row.try_get(0)?,
            None => 0,
        };
        // The counter only grows, and this commit's own changes are in what was read. A reader
        // that finds the counter no higher than seen knows that the reader who saw it higher
        // has already moved the generation: both happen under this lock.
        let mut seen = self
            .content_changes
            .counter_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if counter > *seen {
            *seen = counter;
            self.content_changes.changed();
        }
        Ok(())
    }
}

impl Drop for WriteTx {
    /// An abandoned SQLite transaction is rolled back on a task of its own that holds the writer
    /// until it has (a PostgreSQL one is rolled back by its `Transaction`). Outside a runtime,
    /// the next [`Db::begin_write_with`] rolls it back first. One abandoned while committing may
    /// have committed (its batch reached `COMMIT` before its answer was dropped): the content
    /// generation moves, as it would have after a commit.
    fn drop(&mut self) {
        let Connection::Sqlite(held) = &mut self.connection else {
            return;
        };
        let Some(mut held) = held.take().filter(|held| held.open) else {
            return;
        };
        let changes = self.committing.then(|| self.content_changes.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                held.roll_back_left_open().await;
                drop(held);
                if let Some(changes) = changes {
                    changes.changed();
                }
            });
        } else if let Some(changes) = changes {
            changes.changed();
        }
    }
}

/// SQLite: the counter of changes to the content tables (see [`ContentChanges`]).
const COUNTER: &str = "SELECT counter FROM content_changes";

/// Moves the content generation when it is dropped: after a PostgreSQL commit of a content change
/// returned, or when the commit was abandoned half-way (its future dropped: a client that hung up)
/// or failed, either of which may still have taken effect. Unless the commit returned `Ok`, the
/// transaction's notification is not expected any more: the listener moves the generation again
/// when it hears it, which is after the commit took effect; a move made here, maybe before, would
/// otherwise be the only one, and what was read in between would be kept as current.
struct AfterCommit {
    changes: Arc<ContentChanges>,
    own: Option<String>,
    committed: bool,
}

impl Drop for AfterCommit {
    fn drop(&mut self) {
        if let (false, Some(id)) = (self.committed, &self.own) {
            self.changes.unexpect_own(id);
        }
        self.changes.changed();
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.connection {
            Connection::Sqlite(Some(held)) => &held.connection,
            Connection::Postgres(tx) => tx,
            Connection::Sqlite(None) => unreachable!("a transaction that has not ended"),
        }
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.connection {
            Connection::Sqlite(Some(held)) => &mut held.connection,
            Connection::Postgres(tx) => tx,
            Connection::Sqlite(None) => unreachable!("a transaction that has not ended"),
        }
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
        let pool_of = |max_connections| {
            AnyPoolOptions::new()
                .max_connections(max_connections)
                // A SQLite connection is a file this process holds open: it cannot go stale as
                // a server's can, and the check would cost a round trip to its thread on every
                // statement run on the pool.
                .test_before_acquire(backend != Backend::Sqlite)
                .after_connect(move |conn, _meta| Box::pin(configure(conn, backend)))
        };
        let pool = pool_of(if backend == Backend::Sqlite { 8 } else { 16 })
            .connect_with(options.clone())
            .await
            .with_context(|| format!("connecting to the database at {}", redact(url)))?;
        MIGRATOR
            .run(&pool)
            .await
            .context("running database migrations")?;
        let open = async || -> anyhow::Result<AnyConnection> {
            let mut connection = AnyConnection::connect_with(&options)
                .await
                .context("opening a connection outside the pool")?;
            configure(&mut connection, backend).await?;
            Ok(connection)
        };
        let (writer, readers) = match backend {
            Backend::Sqlite => {
                let writer = Writer {
                    connection: open().await?,
                    open: false,
                };
                let mut readers = Vec::with_capacity(HELD_READERS);
                for _ in 0..HELD_READERS {
                    readers.push(Arc::new(Mutex::new(open().await?)));
                }
                (Some(Arc::new(Mutex::new(writer))), readers)
            }
            Backend::Postgres => (None, Vec::new()),
        };
        install_triggers(&pool, backend)
            .await
            .context("creating the content-change triggers")?;
        let content_changes = Arc::new(ContentChanges::default());
        if backend == Backend::Sqlite {
            let counter: i64 = sqlx::query_scalar(COUNTER).fetch_one(&pool).await?;
            *content_changes
                .counter_seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = counter;
        }
        Ok(Db {
            pool,
            writer,
            readers,
            backend,
            content_changes,
        })
    }

    /// The generation of the content tables, for caches of them.
    pub fn content_changes(&self) -> &Arc<ContentChanges> {
        &self.content_changes
    }

    /// The pool, for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection for a read that nearly every request makes: on SQLite one of the
    /// connections held outside the pool when one is free, else (and on PostgreSQL, whose
    /// connections the pool tests and replaces) one of the pool's. A read that comes back to the
    /// database many times (a page of units and their files) keeps the one it was given.
    pub async fn reader(&self) -> Result<Reader, sqlx::Error> {
        for reader in &self.readers {
            if let Ok(held) = reader.clone().try_lock_owned() {
                return Ok(Reader::Held(held));
            }
        }
        Ok(Reader::Pooled(self.pool.acquire().await?))
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs one statement in a write transaction of its own.
    pub async fn write_one<'q>(
        &self,
        statement: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let outcome = statement.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Starts a write transaction (see the module docs for why writes are serialised on SQLite).
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        Ok(self.begin_write_with(Batch::new()).await?.0)
    }

    /// Starts a write transaction and runs `first` in it; answers what each of its statements
    /// did, as [`Batch::run_each`] does. On SQLite the `BEGIN` goes with `first`: one trip to
    /// the writing connection instead of two. When `first` fails, the transaction is rolled back.
    pub async fn begin_write_with(&self, first: Batch) -> Result<(WriteTx, Vec<Ran>), sqlx::Error> {
        let Some(writer) = &self.writer else {
            let mut tx = WriteTx {
                connection: Connection::Postgres(self.pool.begin().await?),
                backend: self.backend,
                content_changes: self.content_changes.clone(),
                committing: false,
            };
            let ran = first.run_each(&mut tx).await?;
            return Ok((tx, ran));
        };
        let mut held = writer.clone().lock_owned().await;
        held.roll_back_left_open().await;
        held.open = true;
        let mut tx = WriteTx {
            connection: Connection::Sqlite(Some(held)),
            backend: self.backend,
            content_changes: self.content_changes.clone(),
            committing: false,
        };
        let mut begun = Batch::new();
        begun.push("BEGIN", Vec::new()).append(first);
        let mut ran = begun.run_each(&mut tx).await?;
        // The BEGIN's own result is not the caller's.
        ran.drain(..ran.len().min(1));
        Ok((tx, ran))
    }
}

/// The settings every connection gets.
async fn configure(conn: &mut AnyConnection, backend: Backend) -> Result<(), sqlx::Error> {
    if backend == Backend::Sqlite {
        conn.execute("PRAGMA journal_mode = WAL").await?;
        // FULL: a committed transaction (a completed task) survives a power cut, not only a
        // crash of the process as NORMAL promises in WAL mode.
        conn.execute("PRAGMA synchronous = FULL").await?;
        conn.execute("PRAGMA busy_timeout = 30000").await?;
        conn.execute("PRAGMA foreign_keys = ON").await?;
        conn.execute(SQLITE_CACHE_SIZE).await?;
    }
    Ok(())
}

/// Creates the triggers behind [`ContentChanges`] where they are missing. Not a migration: the
/// trigger syntax of the two engines differs, and migrations are written once for both.
async fn install_triggers(pool: &AnyPool, backend: Backend) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    match backend {
        Backend::Sqlite => {
            for table in CONTENT_TABLES {
                for event in ["INSERT", "UPDATE", "DELETE"] {
                    let name = format!("content_changes_{table}_{}", event.to_lowercase());
                    tx.execute(
                        format!(
                            "CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table}
                             BEGIN UPDATE content_changes SET counter = counter + 1; END"
                        )
                        .as_str(),
                    )
                    .await?;
                }
            }
        }
        Backend::Postgres => {
            // Processes starting together take turns; the first creates, the others find.
            tx.execute("SELECT pg_advisory_xact_lock(7424510932764180)")
                .await?;
            tx.execute(
                format!(
                    "CREATE OR REPLACE FUNCTION granary_content_changed() RETURNS trigger
                     LANGUAGE plpgsql AS $$
                     BEGIN
                         PERFORM set_config('granary.content_changed', 'yes', true);
                         PERFORM pg_notify('{CONTENT_CHANNEL}', CAST(txid_current() AS TEXT));
                         RETURN NULL;
                     END
                     $$"
                )
                .as_str(),
            )
            .await?;
            for table in CONTENT_TABLES {
                let exists: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 FROM pg_trigger WHERE tgname = 'granary_content_changed'
                     AND tgrelid = CAST($1 AS regclass)",
                )
                .bind(*table)
                .fetch_optional(&mut *tx)
                .await?;
                if exists.is_none() {
                    tx.execute(
                        format!(
                            "CREATE TRIGGER granary_content_changed
                             AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
                             FOR EACH STATEMENT EXECUTE FUNCTION granary_content_changed()"
                        )
                        .as_str(),
                    )
                    .await?;
                }
            }
        }
    }
    tx.commit().await
}

/// The current time as stored in the database: fixed-width RFC 3339 UTC, sortable as text.
pub fn now() -> String {
    stamp(chrono::Utc::now())
}

/// `at` as timestamps are stored: fixed-width RFC 3339 UTC, so they sort as text.
pub fn stamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The time `age` ago, as timestamps are stored.
pub fn ago(age: std::time::Duration) -> String {
    stamp(chrono::Utc::now() - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX))
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
/// API route authenticates, and token secrets come from `auth::random_token`.
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
pub(crate) mod tests {
    use sqlx::Row as _;

    use super::{Batch, Db, new_id, value_rows};

    #[test]
    fn value_rows_number_each_rows_own_values_after_the_shared_ones() {
        assert_eq!(
            value_rows("(?, $1, ?, $2)", 3, 2),
            "($3, $1, $4, $2), ($5, $1, $6, $2)"
        );
        assert_eq!(value_rows("(?)", 1, 3), "($1), ($2), ($3)");
        assert_eq!(value_rows("(?)", 1, 0), "");
    }

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

    /// A new PostgreSQL database on the server `GRANARY_TEST_DATABASE_URL` names (its URL and the
    /// connection), or `None` without that variable. [`drop_postgres`] removes it.
    async fn scratch_postgres() -> Option<(String, Db)> {
        let server = std::env::var("GRANARY_TEST_DATABASE_URL").ok()?;
        let name = format!("granary_u_{}", new_id().replace('-', ""));
        on_the_server(format!("CREATE DATABASE {name}")).await;
        let mut url = url::Url::parse(&server).expect("GRANARY_TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        let db = Db::connect(url.as_str()).await.expect("connecting");
        Some((url.to_string(), db))
    }

    async fn drop_postgres(url: &str, db: Db) {
        db.pool().close().await;
        let name = url::Url::parse(url).expect("a URL").path()[1..].to_owned();
        on_the_server(format!("DROP DATABASE {name} WITH (FORCE)")).await;
    }

    /// Runs `statement` on the server `GRANARY_TEST_DATABASE_URL` names, in its own database.
    async fn on_the_server(statement: String) {
        use sqlx::{Connection as _, Executor as _};
        let server = std::env::var("GRANARY_TEST_DATABASE_URL").expect("a PostgreSQL server");
        let mut admin = sqlx::PgConnection::connect(&server)
            .await
            .expect("connecting to GRANARY_TEST_DATABASE_URL");
        admin
            .execute(statement.as_str())
            .await
            .unwrap_or_else(|error| panic!("{statement}: {error}"));
    }

    /// PostgreSQL: a process moves its content generation once for a change it commits through
    /// `WriteTx` (at the commit, and not again when it hears the change's own notification), and
    /// once for a change made otherwise, when it hears that one's notification. Notifications
    /// arrive in commit order, so once the second is heard the first has been too.
    #[tokio::test]
    async fn a_content_change_moves_the_generation_once_whoever_commits_it() {
        let Some((url, db)) = scratch_postgres().await else {
            eprintln!("skipped: GRANARY_TEST_DATABASE_URL not set");
            return;
        };
        let mut listener = sqlx::postgres::PgListener::connect(&url)
            .await
            .expect("listening");
        listener
            .listen(super::CONTENT_CHANNEL)
            .await
            .expect("listening");
        let changes = db.content_changes().clone();
        let start = changes.generation();
        // A statement trigger fires whether or not the statement touched a row.
        let change = "DELETE FROM distributions WHERE base_path = 'none'";

        let mut tx = db.begin_write().await.expect("a write transaction");
        sqlx::query(change)
            .execute(&mut *tx)
            .await
            .expect("deleting");
        tx.commit().await.expect("committing");
        assert_eq!(changes.generation(), start + 1, "moved at the commit");

        let mut plain = db.pool().begin().await.expect("a plain transaction");
        sqlx::query(change)
            .execute(&mut *plain)
            .await
            .expect("deleting");
        plain.commit().await.expect("committing");
        assert_eq!(changes.generation(), start + 1, "not heard yet");

        for _ in 0..2 {
            let notification = listener.recv().await.expect("a notification");
            changes.heard(notification.payload());
        }
        assert_eq!(
            changes.generation(),
            start + 2,
            "its own change heard without a second move, the other one moved"
        );
        drop(listener);
        drop_postgres(&url, db).await;
    }

    /// SQLite's plan of each statement of `batch` (see [`Batch::plans`]), on a new database
    /// with every migration: what tests of a query's cost look at.
    pub(crate) async fn plans_on_a_new_database(batch: Batch) -> Vec<Vec<String>> {
        let (_dir, db) = scratch_db().await;
        let mut tx = db.begin_write().await.expect("a write transaction");
        batch.plans(&mut tx).await.expect("the plans")
    }

    /// A new SQLite database in a temporary directory, which lives as long as the guard.
    pub(crate) async fn scratch_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("granary.db").display()
        );
        let db = Db::connect(&url).await.expect("connecting");
        (dir, db)
    }

    /// How many rows the scratch table `notes` holds, as a reader outside any transaction sees.
    async fn notes_in(db: &Db) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM notes")
            .fetch_one(db.pool())
            .await
            .expect("counting")
    }

    /// A scratch SQLite database with an empty table `notes (id)`.
    async fn with_notes() -> (tempfile::TempDir, Db) {
        let (dir, db) = scratch_db().await;
        sqlx::query("CREATE TABLE notes (id INTEGER)")
            .execute(db.pool())
            .await
            .expect("a table");
        (dir, db)
    }

    #[tokio::test]
    async fn begin_and_commit_go_with_the_first_and_last_statements_of_a_write() {
        let (_dir, db) = with_notes().await;
        let mut first = Batch::new();
        first
            .push("INSERT INTO notes (id) VALUES (1)", Vec::new())
            .push("SELECT COUNT(*) FROM notes", Vec::new());
        let (tx, ran) = db.begin_write_with(first).await.expect("begun");
        assert_eq!(
            ran.len(),
            2,
            "what the caller's statements did, the BEGIN's not"
        );
        let counted: i64 = ran[1].rows[0].try_get(0).expect("a count");
        assert_eq!(counted, 1, "the insert before it, inside the transaction");
        assert_eq!(
            notes_in(&db).await,
            0,
            "nothing is visible before the commit"
        );
        let mut last = Batch::new();
        last.push("INSERT INTO notes (id) VALUES (2)", Vec::new());
        tx.commit_with(last).await.expect("committed");
        assert_eq!(notes_in(&db).await, 2, "both writes committed");
        let mut tx = db.begin_write().await.expect("the writer is free again");
        let kib: i64 = sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(&mut *tx)
            .await
            .expect("reading cache_size");
        assert_eq!(kib, -512, "the writing connection has the pool's settings");
    }

    #[tokio::test]
    async fn a_dropped_or_failed_write_leaves_nothing_and_the_writer_usable() {
        let (_dir, db) = with_notes().await;
        let mut tx = db.begin_write().await.expect("begun");
        sqlx::query("INSERT INTO notes (id) VALUES (1)")
            .execute(&mut *tx)
            .await
            .expect("inserting");
        drop(tx);
        let mut failing = Batch::new();
        failing
            .push("INSERT INTO notes (id) VALUES (2)", Vec::new())
            .push("INSERT INTO missing (id) VALUES (3)", Vec::new());
        assert!(
            db.begin_write_with(failing).await.is_err(),
            "a statement of the first batch fails"
        );
        // The next write waits for the rollbacks of both, then starts a transaction of its own.
        let mut tx = db.begin_write().await.expect("begun again");
        let inside: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes")
            .fetch_one(&mut *tx)
            .await
            .expect("counting");
        assert_eq!(
            inside, 0,
            "neither the dropped nor the failed write left a row"
        );
        sqlx::query("INSERT INTO notes (id) VALUES (4)")
            .execute(&mut *tx)
            .await
            .expect("inserting");
        tx.commit().await.expect("committed");
        assert_eq!(notes_in(&db).await, 1, "only the committed write is kept");
    }

    #[tokio::test]
    async fn readers_are_held_connections_while_free_then_the_pools_and_see_every_commit() {
        let (_dir, db) = with_notes().await;
        let mut readers = Vec::new();
        for _ in 0..super::HELD_READERS {
            readers.push(db.reader().await.expect("a reader"));
        }
        assert!(
            readers
                .iter()
                .all(|reader| matches!(reader, super::Reader::Held(_))),
            "the held connections are lent first"
        );
        let mut borrowed = db.reader().await.expect("a reader");
        assert!(
            matches!(borrowed, super::Reader::Pooled(_)),
            "with every held one busy, the pool lends one"
        );
        db.write_one(sqlx::query("INSERT INTO notes (id) VALUES (1)"))
            .await
            .expect("a committed write");
        for reader in readers.iter_mut().chain(std::iter::once(&mut borrowed)) {
            let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes")
                .fetch_one(&mut **reader)
                .await
                .expect("counting");
            assert_eq!(
                seen, 1,
                "each reader sees the commit made after it was taken"
            );
        }
        drop(readers);
        assert!(
            matches!(db.reader().await.expect("a reader"), super::Reader::Held(_)),
            "a held connection given back is lent again"
        );
    }

    #[tokio::test]
    async fn sqlite_connections_have_a_bounded_page_cache() {
        let (_dir, db) = scratch_db().await;
        let kib: i64 = sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(db.pool())
            .await
            .expect("reading cache_size");
        assert_eq!(kib, -512);
    }

    /// Deleting a row makes the database look for the rows whose foreign key names it (to
    /// cascade, or to refuse), and neither engine indexes a child column by itself: without an
    /// index, each deleted row walks the whole child table (an orphan clean-up beside 200,000
    /// published files took 5.8 s per 1,000 units). Every foreign key has an index that starts
    /// with its column, except those listed here, whose tables stay small or whose parents are
    /// deleted one at a time.
    #[tokio::test]
    async fn every_foreign_key_whose_parents_are_deleted_in_bulk_has_an_index() {
        /// (child table, column): why it does without.
        const WALKED_WHOLE: [((&str, &str), &str); 9] = [
            (
                ("acs_sources", "remote_id"),
                "a few per alternate content source",
            ),
            (
                ("distributions", "publication_id"),
                "one row per distribution",
            ),
            (("distributions", "remote_id"), "one row per distribution"),
            (
                ("distributions", "repository_id"),
                "one row per distribution",
            ),
            (
                ("distributions", "repository_version_id"),
                "one row per distribution",
            ),
            (("plugins", "artifact_id"), "one row per installed plugin"),
            (
                ("remote_artifacts", "remote_id"),
                "a remote is deleted alone (one walk); an index would cost every on-demand unit a sync records",
            ),
            (
                ("repositories", "remote_id"),
                "a remote is deleted alone (one walk of the repositories)",
            ),
            (
                ("role_assignments", "role_id"),
                "a role is deleted alone (one walk)",
            ),
        ];
        let (_dir, db) = scratch_db().await;
        let unindexed: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.name, f.\"from\" FROM sqlite_schema m, pragma_foreign_key_list(m.name) f
             WHERE m.type = 'table' AND NOT EXISTS (
                 SELECT 1 FROM pragma_index_list(m.name) i, pragma_index_info(i.name) c
                 WHERE c.seqno = 0 AND c.name = f.\"from\")
             ORDER BY m.name, f.\"from\"",
        )
        .fetch_all(db.pool())
        .await
        .expect("reading the schema");
        let allowed: Vec<(String, String)> = WALKED_WHOLE
            .iter()
            .map(|((table, column), _why)| ((*table).to_owned(), (*column).to_owned()))
            .collect();
        assert_eq!(
            unindexed, allowed,
            "foreign keys without an index on their column"
        );
    }
}
