//! The floor: the same rows written straight to the database through diesel,
//! with the same transaction sizes and concurrency, and no HTTP, JSON or validation.
//!
//! It writes with the service's own upsert statement and session settings
//! (`infra_diesel::floor`), so that the service gains nothing from a better
//! statement than the floor's.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use infra_diesel::floor::{self as service, NewTaskRow, StoredTime};

use crate::cpu::CpuSampler;
use crate::data::{Batch, DataSet, Mode};
use crate::stats::Measure;

/// The rows and settings of one floor case.
pub struct Case<'a> {
    pub data: &'a DataSet,
    pub batches: &'a [Batch],
    pub project_id: i64,
    pub mode: Mode,
    pub concurrency: usize,
    /// Database id of each task in this project, filled as transactions commit;
    /// children read their parent's id from here.
    pub ids: &'a [AtomicI64],
}

/// Writes the case to a SQLite file: BEGIN IMMEDIATE transactions queued on one fair in-process lock.
pub fn run_sqlite(path: &str, case: &Case<'_>) -> anyhow::Result<Measure> {
    let write_lock = tokio::sync::Mutex::new(());
    let connect = || -> anyhow::Result<SqliteConnection> {
        let mut conn = SqliteConnection::establish(path)?;
        // The service's pragmas; the file is already in WAL mode.
        conn.batch_execute(&service::sqlite_session_settings(5000))?;
        Ok(conn)
    };
    let write = |conn: &mut SqliteConnection, rows: &[NewTaskRow<'_>]| {
        let _turn = write_lock.blocking_lock();
        conn.immediate_transaction(|conn| upsert_chunks(conn, rows, service::upsert_sqlite))
    };
    drive(case, connect, write)
}

/// Writes the case to PostgreSQL: plain transactions, one connection per worker.
pub fn run_postgres(url: &str, case: &Case<'_>) -> anyhow::Result<Measure> {
    let connect = || -> anyhow::Result<PgConnection> {
        let mut conn = PgConnection::establish(url)?;
        conn.batch_execute(service::PG_SESSION_SETTINGS)?;
        Ok(conn)
    };
    let write = |conn: &mut PgConnection, rows: &[NewTaskRow<'_>]| {
        conn.transaction(|conn| upsert_chunks(conn, rows, service::upsert_postgres))
    };
    drive(case, connect, write)
}

/// Returned columns of the service's upsert: id, project id, external id, insert token.
type Returned = Vec<(i64, i64, String, i64)>;

/// Upserts `rows` in the service's chunk size.
fn upsert_chunks<C>(
    conn: &mut C,
    rows: &[NewTaskRow<'_>],
    upsert: fn(&mut C, &[NewTaskRow<'_>]) -> QueryResult<Returned>,
) -> QueryResult<Returned> {
    let mut returned = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(service::UPSERT_CHUNK_ROWS) {
        returned.extend(upsert(conn, chunk)?);
    }
    Ok(returned)
}

fn drive<C, Connect, Write>(case: &Case<'_>, connect: Connect, write: Write) -> anyhow::Result<Measure>
where
    C: Send,
    Connect: Fn() -> anyhow::Result<C> + Sync,
    Write: Fn(&mut C, &[NewTaskRow<'_>]) -> QueryResult<Returned> + Sync,
{
    let mut connections = (0..case.concurrency).map(|_| connect()).collect::<anyhow::Result<Vec<C>>>()?;
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let committed = Committed::new(case.batches.len());
    let parent_waits = AtomicUsize::new(0);

    let cpu = CpuSampler::start(None);
    let started = Instant::now();
    let outcomes: Vec<anyhow::Result<Vec<Duration>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = connections
            .iter_mut()
            .map(|conn| {
                let (next, failed, committed, parent_waits, write) =
                    (&next, &failed, &committed, &parent_waits, &write);
                scope.spawn(move || {
                    let mut latencies = Vec::new();
                    let mut rows = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= case.batches.len() || failed.load(Ordering::Relaxed) {
                            return Ok(latencies);
                        }
                        let batch = case.batches[index];
                        if let Some(needed) = batch.needs
                            && committed.wait_for(needed)
                        {
                            parent_waits.fetch_add(1, Ordering::Relaxed);
                        }
                        let begun = Instant::now();
                        let outcome = write_batch(conn, case, batch, &mut rows, write);
                        latencies.push(begun.elapsed());
                        committed.mark(index);
                        if let Err(error) = outcome {
                            failed.store(true, Ordering::Relaxed);
                            return Err(error.context(format!("floor batch {index}")));
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))).collect()
    });
    let elapsed = started.elapsed();
    let cpu = cpu.finish();

    let mut latencies = Vec::with_capacity(case.batches.len());
    for outcome in outcomes {
        latencies.extend(outcome?);
    }
    let tasks: usize = case.batches.iter().map(|batch| batch.end - batch.start).sum();
    Ok(Measure::new(tasks, elapsed, latencies, parent_waits.load(Ordering::Relaxed), cpu))
}

/// Builds one batch's rows (parents' ids from earlier transactions) and upserts them in one transaction.
fn write_batch<'a, C, Write>(
    conn: &mut C,
    case: &'a Case<'a>,
    batch: Batch,
    rows: &mut Vec<NewTaskRow<'a>>,
    write: &Write,
) -> anyhow::Result<()>
where
    Write: Fn(&mut C, &[NewTaskRow<'_>]) -> QueryResult<Returned>,
{
    let now = StoredTime(chrono::Utc::now().naive_utc());
    let insert_token: i64 = rand::random();
    rows.clear();
    for task in &case.data.tasks[batch.start..batch.end] {
        let parent_task_id = match task.parent {
            None => None,
            Some(parent) => match case.ids[parent].load(Ordering::Acquire) {
                0 => bail!("the parent {} of {} has no id yet", case.data.tasks[parent].app_id, task.app_id),
                id => Some(id),
            },
        };
        rows.push(NewTaskRow {
            project_id: case.project_id,
            task_app_id: &task.app_id,
            task_name: &task.names[case.mode.index()],
            task_url: Some(&task.url),
            owner_id: Some(&task.owner_id),
            owner_name: Some(&task.owner_name),
            parent_task_id,
            created_at: StoredTime(task.created_at),
            inserted_at: now,
            updated_at: now,
            insert_token,
            source_updated_at: None,
        });
    }
    let returned = write(conn, rows)?;
    if returned.len() != batch.end - batch.start {
        bail!("the upsert returned {} rows for {} tasks", returned.len(), batch.end - batch.start);
    }
    for (id, _, app_id, _) in returned {
        let index = task_index(&app_id).with_context(|| format!("unexpected task_app_id {app_id:?}"))?;
        case.ids[index].store(id, Ordering::Release);
    }
    Ok(())
}

/// Index of a generated task from its external id `LMB-<index + 1>`.
fn task_index(app_id: &str) -> Option<usize> {
    app_id.strip_prefix("LMB-")?.parse::<usize>().ok()?.checked_sub(1)
}

/// Record of committed batches, and the count of leading batches that have all committed.
struct Committed {
    state: Mutex<(Vec<bool>, usize)>,
    changed: Condvar,
}

impl Committed {
    fn new(count: usize) -> Self {
        Self { state: Mutex::new((vec![false; count], 0)), changed: Condvar::new() }
    }

    fn mark(&self, index: usize) {
        let Ok(mut state) = self.state.lock() else { return };
        let (done, prefix) = &mut *state;
        done[index] = true;
        while *prefix < done.len() && done[*prefix] {
            *prefix += 1;
        }
        self.changed.notify_all();
    }

    /// Blocks until batch `index` and all before it have committed; returns whether it had to wait.
    fn wait_for(&self, index: usize) -> bool {
        let Ok(mut state) = self.state.lock() else { return false };
        let mut waited = false;
        while state.1 <= index {
            waited = true;
            state = match self.changed.wait(state) {
                Ok(state) => state,
                Err(_) => return waited,
            };
        }
        waited
    }
}
