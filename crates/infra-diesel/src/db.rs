//! Connection pools for SQLite and PostgreSQL, chosen from the database URL.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, ManageConnection, Pool, PooledConnection};
use diesel::{Connection, PgConnection, SqliteConnection};
use domain::StoreError;
use tokio::sync::Semaphore;

use crate::error::{join_error, pool_error};
use crate::group_commit::WriteQueue;
use crate::group_commit::read_ahead::ReadAhead;
use crate::pg_pool::{PgConn, PgManager};
use crate::sqlite_writer::SqliteWriter;

/// Database backend and location named by a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Postgres(String),
    Sqlite(PathBuf),
}

impl DatabaseTarget {
    /// Reads a database URL: `postgres://` or `postgresql://` for PostgreSQL,
    /// `sqlite://PATH`, `sqlite:PATH` or a plain file path for SQLite.
    ///
    /// # Errors
    /// Rejects other schemes and libpq `key=value` strings, which diesel would
    /// otherwise take for a SQLite file name.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            return Self::sqlite_path(path);
        }
        if url.contains("://") {
            bail!("unsupported database URL scheme in {url:?}; use postgres://... or a SQLite file path");
        }
        if url.contains('=') {
            bail!(
                "database URL {url:?} looks like a libpq key=value string; write it as postgres://user@host:port/database"
            );
        }
        Self::sqlite_path(url)
    }

    fn sqlite_path(path: &str) -> anyhow::Result<Self> {
        if path.is_empty() {
            bail!("the SQLite database URL names no file; use sqlite://./data/leanmote.sqlite3");
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Most open connections.
    pub max_size: u32,
    /// How long a request waits for a free connection before storage counts as unavailable.
    /// On PostgreSQL, a write first waits for its turn among the writers, which
    /// this timeout does not count (see [`Database`]).
    pub acquire_timeout: Duration,
    /// SQLite only: how long a statement waits for another process's lock.
    pub sqlite_busy_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self { max_size: 8, acquire_timeout: Duration::from_secs(3), sqlite_busy_timeout: Duration::from_secs(5) }
    }
}

pub(crate) type PgPool = Pool<PgManager>;
pub(crate) type SqlitePool = Pool<ConnectionManager<SqliteConnection>>;

#[derive(Clone)]
pub(crate) enum Pools {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Handle on the database: a pool, and an in-process queue of writers.
///
/// On SQLite the queue is one writer thread ([`SqliteWriter`]), so that
/// writers queue in order instead of spinning on SQLite's busy handler.
///
/// On PostgreSQL it lets at most one connection fewer than the pool's size
/// write at once. A write may wait on a project lock while it holds its
/// connection. Without the queue, such waits could take every connection, and
/// token lookups and other writers then timed out on the pool and got 503 from
/// a healthy, busy database. A writer waits for its turn without a connection
/// or a thread, for at most [`WRITE_QUEUE_TIMEOUT`]. It then gets a connection
/// as quickly as a reader does, so an outage still shows after the pool's
/// acquire timeout.
#[derive(Clone)]
pub struct Database {
    pub(crate) pools: Pools,
    /// Present on SQLite only.
    pub(crate) sqlite_writer: Option<Arc<SqliteWriter>>,
    pub(crate) pg_writers: Arc<Semaphore>,
    /// Task batches waiting to be written (see [`crate::group_commit`]).
    pub(crate) write_queue: Arc<WriteQueue>,
    /// Groups of task batches written at once.
    pub(crate) group_turns: Arc<Semaphore>,
    /// The SQLite file, present on SQLite only.
    pub(crate) sqlite_path: Option<PathBuf>,
    /// Set once [`Database::claim_sqlite_file`] succeeds.
    pub(crate) read_ahead: Arc<OnceLock<ReadAhead>>,
}

/// Groups of task batches written at once, per backend.
const PG_GROUP_TURNS: usize = 1;
const SQLITE_GROUP_TURNS: usize = 3;

/// Maximum wait for a turn among PostgreSQL writers before storage counts as unavailable.
const WRITE_QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// Sets SQLite's per-connection pragmas on every pooled connection.
#[derive(Debug)]
struct SqlitePragmas {
    busy_timeout_ms: u128,
}

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // WAL mode is stored in the file by `enable_wal` before the pool opens.
        conn.batch_execute(&sqlite_session_settings(self.busy_timeout_ms)).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Returns the pragmas of every SQLite connection of the service, as one batch of statements.
pub fn sqlite_session_settings(busy_timeout_ms: u128) -> String {
    format!("PRAGMA busy_timeout = {busy_timeout_ms}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
}

/// The settings of every PostgreSQL session of the service, as one batch of statements.
///
/// JIT compilation pays off for long analytic queries only. The recursive
/// ancestor query's cost estimate passes `jit_above_cost` with a few hundred
/// ids. On PostgreSQL 15 with 500,000 tasks, compiling it took 10-40 ms, and
/// the query itself 3 ms (EXPLAIN ANALYZE, in `docs/benchmarks.md`).
///
/// Prepared statements keep one generic plan. By default PostgreSQL plans
/// again at each execution while it estimates a generic plan costlier, which
/// it did for every statement with an array or many rows of parameters:
/// planning took about a fifth of its CPU on one-task batches. The write path
/// runs key lookups and upserts, whose plan does not depend on the values;
/// task listings ask for custom plans (`Dialect::with_custom_plans`).
pub const PG_SESSION_SETTINGS: &str = "SET jit = off; SET plan_cache_mode = force_generic_plan";

/// Session settings applied to every pooled PostgreSQL connection.
#[derive(Debug)]
struct PgSession;

impl CustomizeConnection<PgConn, diesel::r2d2::Error> for PgSession {
    fn on_acquire(&self, conn: &mut PgConn) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(PG_SESSION_SETTINGS).map_err(diesel::r2d2::Error::QueryError)
    }
}

impl Database {
    /// Opens a pool on the database a URL names, creating a SQLite file and its folder if missing.
    ///
    /// # Errors
    /// Returns an error naming the URL's problem or the driver's connection error.
    pub fn connect(url: &str, options: &PoolOptions) -> anyhow::Result<Self> {
        let target = DatabaseTarget::parse(url)?;
        let sqlite_path = match &target {
            DatabaseTarget::Sqlite(path) => Some(path.clone()),
            DatabaseTarget::Postgres(_) => None,
        };
        let pools = match target {
            DatabaseTarget::Postgres(url) => {
                // One direct connection first surfaces the server's own error (a missing
                // database, a wrong password) at once, instead of the pool's retries.
                PgConnection::establish(&url).context("failed to connect to PostgreSQL (the database must exist)")?;
                let pool = Pool::builder()
                    .max_size(options.max_size)
                    .connection_timeout(options.acquire_timeout)
                    .connection_customizer(Box::new(PgSession))
                    .build(PgManager::new(url))
                    .context("failed to connect to PostgreSQL")?;
                Pools::Postgres(pool)
            }
            DatabaseTarget::Sqlite(path) => Pools::Sqlite(open_sqlite(&path, options)?),
        };
        let group_turns = match pools {
            Pools::Postgres(_) => PG_GROUP_TURNS,
            Pools::Sqlite(_) => SQLITE_GROUP_TURNS,
        };
        let sqlite_writer = match pools {
            Pools::Sqlite(_) => Some(Arc::new(
                SqliteWriter::start("sqlite-writer").context("failed to start the SQLite writer thread")?,
            )),
            Pools::Postgres(_) => None,
        };
        // At least one writer, even on a pool of one connection.
        let writers = options.max_size.saturating_sub(1).max(1) as usize;
        Ok(Self {
            pools,
            sqlite_writer,
            pg_writers: Arc::new(Semaphore::new(writers)),
            write_queue: Arc::default(),
            group_turns: Arc::new(Semaphore::new(group_turns.min(writers))),
            sqlite_path,
            read_ahead: Arc::default(),
        })
    }

    /// Returns "postgres" or "sqlite", for logs.
    pub fn backend_name(&self) -> &'static str {
        match self.pools {
            Pools::Postgres(_) => "postgres",
            Pools::Sqlite(_) => "sqlite",
        }
    }

    /// Returns the pool's open and idle connections.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = match &self.pools {
            Pools::Postgres(pool) => pool.state(),
            Pools::Sqlite(pool) => pool.state(),
        };
        (state.connections, state.idle_connections)
    }

    /// Runs blocking `work` on a thread of tokio's blocking pool.
    pub(crate) async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Pools) -> Result<T, StoreError> + Send + 'static,
    {
        let pools = self.pools.clone();
        tokio::task::spawn_blocking(move || work(&pools)).await.map_err(join_error)?
    }

    /// Like [`Self::blocking`], for work that writes. It first waits its turn
    /// in the writers' queue (see [`Database`]), without holding a thread while it waits.
    ///
    /// # Errors
    /// Returns [`StoreError::Unavailable`] when a PostgreSQL writer waits
    /// longer than [`WRITE_QUEUE_TIMEOUT`] for its turn.
    pub(crate) async fn blocking_write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Pools) -> Result<T, StoreError> + Send + 'static,
    {
        let pools = self.pools.clone();
        if let Some(writer) = &self.sqlite_writer {
            return writer.run(move || work(&pools)).await;
        }
        let permit = self
            .within_write_timeout(async {
                Arc::clone(&self.pg_writers)
                    .acquire_owned()
                    .await
                    .map_err(|_| StoreError::internal("the writers' queue was closed"))
            })
            .await?;
        tokio::task::spawn_blocking(move || {
            let result = work(&pools);
            drop(permit);
            result
        })
        .await
        .map_err(join_error)?
    }
}

impl Database {
    /// Waits for a writer's turn for at most [`WRITE_QUEUE_TIMEOUT`].
    ///
    /// # Errors
    /// Returns [`StoreError::Unavailable`] when the turn does not come in time.
    pub(crate) async fn within_write_timeout<T>(
        &self,
        turn: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(WRITE_QUEUE_TIMEOUT, turn).await.map_err(|_| {
            let message = format!("no turn among the database writers within {} s", WRITE_QUEUE_TIMEOUT.as_secs());
            StoreError::Unavailable(message.into())
        })?
    }
}

#[cfg(feature = "test-support")]
impl Database {
    /// Checks out every connection of the pool and keeps them until the
    /// returned value is dropped, so tests can see storage with no free connection.
    ///
    /// # Panics
    /// Panics when a connection cannot be opened.
    pub fn hold_every_connection(&self) -> Box<dyn std::any::Any + Send> {
        fn take<M: diesel::r2d2::ManageConnection>(pool: &Pool<M>) -> Box<dyn std::any::Any + Send> {
            Box::new((0..pool.max_size()).map(|_| pool.get().expect("check out a connection")).collect::<Vec<_>>())
        }
        match &self.pools {
            Pools::Postgres(pool) => take(pool),
            Pools::Sqlite(pool) => take(pool),
        }
    }
}

fn open_sqlite(path: &Path, options: &PoolOptions) -> anyhow::Result<SqlitePool> {
    if let Some(folder) = path.parent().filter(|folder| !folder.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).with_context(|| format!("failed to create the folder {}", folder.display()))?;
    }
    let url = path.to_str().with_context(|| format!("the SQLite path {} is not valid UTF-8", path.display()))?;
    enable_wal(url, options.sqlite_busy_timeout)
        .with_context(|| format!("failed to open the SQLite database {}", path.display()))?;
    Pool::builder()
        .max_size(options.max_size)
        .connection_timeout(options.acquire_timeout)
        .connection_customizer(Box::new(SqlitePragmas { busy_timeout_ms: options.sqlite_busy_timeout.as_millis() }))
        // A SQLite connection is an open local file with no server session to lose,
        // so the pool's `SELECT 1` before each checkout would only cost time.
        .test_on_check_out(false)
        .build(ConnectionManager::<SqliteConnection>::new(url))
        .with_context(|| format!("failed to open the SQLite database {}", path.display()))
}

/// Switches the file to WAL mode once, from a single connection: the pool's
/// connections opening at the same moment would otherwise race for the lock
/// that the switch needs.
fn enable_wal(url: &str, busy_timeout: Duration) -> anyhow::Result<()> {
    let mut conn = SqliteConnection::establish(url)?;
    conn.batch_execute(&format!("PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL;", busy_timeout.as_millis()))?;
    Ok(())
}

/// Maximum wait for a connection when checking readiness.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs `SELECT 1` on a pooled connection, waiting at most [`PING_TIMEOUT`] for one.
pub(crate) fn ping(pools: &Pools) -> Result<(), StoreError> {
    let result = match pools {
        Pools::Postgres(pool) => pool.get_timeout(PING_TIMEOUT).map_err(pool_error)?.batch_execute("SELECT 1"),
        Pools::Sqlite(pool) => pool.get_timeout(PING_TIMEOUT).map_err(pool_error)?.batch_execute("SELECT 1"),
    };
    result.map_err(|error| StoreError::Unavailable(Box::new(error)))
}

/// Takes a connection from a pool, mapping a timeout to [`StoreError::Unavailable`].
pub(crate) fn checkout<M: ManageConnection>(pool: &Pool<M>) -> Result<PooledConnection<M>, StoreError> {
    pool.get().map_err(pool_error)
}

/// Calls the same function of the backend module that matches the pool.
///
/// Both `backend::pg` and `backend::sqlite` are stamped from one source file,
/// so each call is written once and type-checked against both connections.
/// The call returns `Result<_, TxError>`; a pool timeout becomes `TxError::Store`.
macro_rules! on_backend {
    ($pools:expr, $function:ident ( $($argument:expr),* $(,)? )) => {
        match $pools {
            $crate::db::Pools::Postgres(pool) => $crate::db::checkout(pool)
                .map_err($crate::backend::TxError::from)
                .and_then(|mut conn| $crate::backend::pg::$function(&mut conn, $($argument),*)),
            $crate::db::Pools::Sqlite(pool) => $crate::db::checkout(pool)
                .map_err($crate::backend::TxError::from)
                .and_then(|mut conn| $crate::backend::sqlite::$function(&mut conn, $($argument),*)),
        }
    };
}
pub(crate) use on_backend;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_backend() {
        assert_eq!(
            DatabaseTarget::parse("postgres://u@127.0.0.1/db").unwrap(),
            DatabaseTarget::Postgres("postgres://u@127.0.0.1/db".into())
        );
        assert!(matches!(DatabaseTarget::parse("postgresql://h/db").unwrap(), DatabaseTarget::Postgres(_)));
        assert_eq!(
            DatabaseTarget::parse("sqlite://./data/x.db").unwrap(),
            DatabaseTarget::Sqlite("./data/x.db".into())
        );
        assert_eq!(DatabaseTarget::parse("sqlite:x.db").unwrap(), DatabaseTarget::Sqlite("x.db".into()));
        assert_eq!(DatabaseTarget::parse("data/x.db").unwrap(), DatabaseTarget::Sqlite("data/x.db".into()));
    }

    #[test]
    fn unsupported_urls_rejected() {
        for url in ["mysql://h/db", "host=127.0.0.1 port=5432", "sqlite://", ""] {
            assert!(DatabaseTarget::parse(url).is_err(), "{url:?}");
        }
    }
}
