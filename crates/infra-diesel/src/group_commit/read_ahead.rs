//! SQLite read-ahead: a group's snapshot is read and planned on another
//! thread before its turn on the writer thread, so the writer only writes.
//!
//! On SQLite every write runs on one thread, and for a batch that updates
//! stored tasks, reading and planning took about a third of that thread's
//! time. A reader connection can do that work while the writer writes the
//! group before. The plan is still valid at write time only if nothing it
//! read has changed since, which [`CommitLog`] checks: it records the keys
//! of every task write of this process after its commit. A group whose keys
//! were written in between, or that was read before a task moved, is planned
//! again inside its write transaction, as without read-ahead.
//!
//! This holds only while this process is the only one that writes tasks to
//! the file. [`Database::claim_sqlite_file`] makes sure of that with an
//! exclusive lock on a file beside the database, and read-ahead stays off
//! until it is called. Admin commands write organizations, projects and
//! tokens, never tasks, and a project's organization never changes, so a
//! plan that passed the planner stays valid whatever they write.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use anyhow::Context;
use domain::plan::WritePlan;
use domain::task::TaskKey;

use super::{Batch, Queued};
use crate::db::{Database, Pools, on_backend};
use crate::sqlite_writer::SqliteWriter;

/// Commits kept in the log. A plan read before the oldest one is planned again.
const KEPT_COMMITS: usize = 64;

/// The keys of this process's recent task writes, by commit.
#[derive(Debug, Default)]
pub(crate) struct CommitLog {
    state: Mutex<LogState>,
}

#[derive(Debug, Default)]
struct LogState {
    /// Number of commits recorded so far.
    generation: u64,
    commits: VecDeque<Commit>,
}

#[derive(Debug)]
struct Commit {
    generation: u64,
    /// Hashes of the keys written, sorted.
    keys: Vec<u64>,
    /// True when the commit gave a stored task another parent, which can change any ancestor chain.
    moved: bool,
}

impl CommitLog {
    fn state(&self) -> std::sync::MutexGuard<'_, LogState> {
        // Each update leaves the state whole, so a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns the number of commits recorded so far. Read it before the
    /// snapshot's transaction begins, so the snapshot contains every commit it counts.
    pub(crate) fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Records a committed task write. Call it after the commit, never before.
    pub(crate) fn record<'a>(&self, keys: impl IntoIterator<Item = &'a TaskKey>, moved: bool) {
        let mut keys: Vec<u64> = keys.into_iter().map(key_hash).collect();
        keys.sort_unstable();
        let mut state = self.state();
        state.generation += 1;
        let generation = state.generation;
        if state.commits.len() == KEPT_COMMITS {
            state.commits.pop_front();
        }
        state.commits.push_back(Commit { generation, keys, moved });
    }

    /// Tells whether no commit after `generation` wrote any of `keys` or moved a task.
    ///
    /// Keys are compared by a 64-bit hash, so a collision can only make a
    /// valid plan look stale, never the reverse.
    pub(crate) fn untouched_since<'a>(&self, generation: u64, keys: impl IntoIterator<Item = &'a TaskKey>) -> bool {
        let state = self.state();
        if state.generation == generation {
            return true;
        }
        if state.commits.front().is_none_or(|oldest| oldest.generation > generation + 1) {
            // Some commits after `generation` are no longer in the log.
            return false;
        }
        let keys: Vec<u64> = keys.into_iter().map(key_hash).collect();
        state
            .commits
            .iter()
            .filter(|commit| commit.generation > generation)
            .all(|commit| !commit.moved && keys.iter().all(|key| commit.keys.binary_search(key).is_err()))
    }
}

fn key_hash(key: &TaskKey) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// Read-ahead state of a [`Database`] that claimed its SQLite file.
#[derive(Debug)]
pub(crate) struct ReadAhead {
    pub(crate) log: CommitLog,
    /// The one thread that reads ahead. Reading on tokio's blocking threads
    /// instead spread whole snapshots over many threads, and the allocator
    /// kept freed memory for each: resident memory grew by about half.
    pub(crate) reader: SqliteWriter,
    /// Open for as long as the database handle lives; its lock ends when it closes.
    _lock: std::fs::File,
}

/// A group's plans made ahead, with the log's generation before they were read.
pub(crate) struct Ahead {
    pub(crate) generation: u64,
    /// One plan per batch, or `None` when the group must be planned in its write.
    pub(crate) plans: Option<Vec<WritePlan>>,
}

impl ReadAhead {
    /// Reads and plans a group on a pooled connection, outside the writer thread.
    pub(crate) fn plan(&self, pools: &Pools, group: &[Queued]) -> Ahead {
        let generation = self.log.generation();
        let batches: Vec<&Batch> = group.iter().map(|queued| &queued.batch).collect();
        let plans = match on_backend!(pools, plan_ahead(&batches)) {
            Ok(plans) => plans,
            Err(error) => {
                // The write plans again and reports the error if it persists.
                tracing::warn!(error = ?error, "reading a group ahead of its write failed");
                None
            }
        };
        Ahead { generation, plans }
    }
}

impl Database {
    /// Claims the SQLite file for this process's writes of tasks, which turns
    /// on read-ahead (batches are read and planned before their turn on the
    /// writer thread). Does nothing on PostgreSQL.
    ///
    /// Takes an exclusive lock on `<file>.lock`, held until the process ends,
    /// so a second server on the same file fails at start instead of writing
    /// beside this one. The file's path is resolved first, so a server that
    /// reaches it through a symbolic link finds the same lock. Admin commands
    /// do not claim the file.
    ///
    /// # Errors
    /// Returns an error when another process holds the lock or the lock file cannot be opened.
    pub fn claim_sqlite_file(&self) -> anyhow::Result<()> {
        let Some(path) = &self.sqlite_path else { return Ok(()) };
        let path = std::fs::canonicalize(path)
            .with_context(|| format!("failed to resolve the path of the SQLite database {}", path.display()))?;
        let lock_path = lock_path(&path);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("failed to open the lock file {}", lock_path.display()))?;
        if file.try_lock().is_err() {
            anyhow::bail!(
                "another server is already using the SQLite database {} (it holds {}); stop it first, or move to PostgreSQL to run several servers",
                path.display(),
                lock_path.display()
            );
        }
        let reader = SqliteWriter::start("sqlite-reader").context("failed to start the SQLite read-ahead thread")?;
        let claimed = ReadAhead { log: CommitLog::default(), reader, _lock: file };
        // A second claim by the same handle keeps the first one.
        let _ = self.read_ahead.set(claimed);
        Ok(())
    }
}

fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}
