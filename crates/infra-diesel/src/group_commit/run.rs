//! Taking turns and writing groups on [`Database`].

use std::sync::Arc;
use std::time::Duration;

use domain::StoreError;
use domain::ports::ApplyError;
use tokio::sync::OwnedSemaphorePermit;

use super::read_ahead::{Ahead, CommitLog};
use super::{Batch, BatchResult, Queued};
use crate::backend::{GroupOutcome, TxError};
use crate::db::{Database, Pools, on_backend};
use crate::error::is_transient;

/// Attempts of one batch transaction before a deadlock or serialization failure reaches the client.
const MAX_TRANSACTION_ATTEMPTS: u32 = 4;

/// Permits held while a group is written; dropping them lets the next group start.
type Turn = (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>);

impl Database {
    /// Writes a batch, in a group with the batches queued beside it.
    pub(crate) async fn apply_grouped(&self, batch: Batch) -> BatchResult {
        let (ticket, result) = self.write_queue.push(batch);
        loop {
            let turn = match self.group_turn().await {
                Ok(turn) => turn,
                // A group may have taken the batch while this request waited.
                Err(error) if ticket.withdraw() => return Err(ApplyError::Store(error)),
                Err(_) => break,
            };
            let group = self.write_queue.take_group(&ticket);
            if group.is_empty() {
                break;
            }
            let own = group.iter().any(|queued| queued.id == ticket.id);
            self.write_group(group, turn).await;
            if own {
                break;
            }
        }
        result
            .await
            .unwrap_or_else(|_| Err(ApplyError::Store(StoreError::internal("a batch's write ended without a result"))))
    }

    /// Waits for a group turn, and on PostgreSQL for a writer's turn too (see [`Database`]).
    async fn group_turn(&self) -> Result<Turn, StoreError> {
        self.within_write_timeout(async {
            let group = self.group_turns.clone().acquire_owned().await;
            let writer = match &self.pools {
                Pools::Postgres(_) => Some(self.pg_writers.clone().acquire_owned().await),
                Pools::Sqlite(_) => None,
            };
            let closed = |_| StoreError::internal("the writers' queue was closed");
            Ok((group.map_err(closed)?, writer.transpose().map_err(closed)?))
        })
        .await
    }

    /// Writes a group on a blocking thread, or on SQLite's writer thread, and
    /// waits until it is done. The write goes on if this future is dropped.
    async fn write_group(&self, group: Vec<Queued>, turn: Turn) {
        let pools = self.pools.clone();
        let Some(writer) = self.sqlite_writer.clone() else {
            let work = move || {
                write_group(&pools, group, None);
                drop(turn);
            };
            if let Err(error) = tokio::task::spawn_blocking(work).await {
                tracing::error!(error = %error, "a group write panicked");
            }
            return;
        };
        let read_ahead = Arc::clone(&self.read_ahead);
        // Runs on the read-ahead thread when read-ahead is on, so that reading
        // and planning overlap the writer thread's work on the group before.
        let submit = move || {
            let ahead = read_ahead.get().map(|read_ahead| read_ahead.plan(&pools, &group));
            writer.submit(move || {
                let log = read_ahead.get().map(|read_ahead| &read_ahead.log);
                write_sqlite_group(&pools, group, ahead, log);
                drop(turn);
                Ok(())
            })
        };
        let done = match self.read_ahead.get() {
            Some(read_ahead) => match read_ahead.reader.submit(move || Ok(submit())).await {
                Ok(Ok(done)) => done,
                // The read-ahead thread panicked or stopped: the group's results were dropped with it.
                Ok(Err(error)) => {
                    tracing::error!(error = %error, "reading a group ahead of its write failed");
                    return;
                }
                Err(_) => {
                    tracing::error!("the SQLite read-ahead thread has stopped");
                    return;
                }
            },
            None => submit(),
        };
        let _ = done.await;
    }
}

/// Writes a group on SQLite's writer thread: with the plans made ahead if
/// nothing they read has changed since, else as [`write_group`] does.
fn write_sqlite_group(pools: &Pools, group: Vec<Queued>, ahead: Option<Ahead>, log: Option<&CommitLog>) {
    let (Some(Ahead { generation, plans: Some(plans) }), Some(log)) = (ahead, log) else {
        return write_group(pools, group, log);
    };
    // Only the rows a plan writes matter: a parent it names by key was stored
    // when it was read (or the plan would have been rejected), and a stored
    // task keeps its id. A parent's place in the tree changes only by a move.
    if !log.untouched_since(generation, group.iter().flat_map(|queued| &queued.batch.item_keys)) {
        metrics::counter!("leanmote_read_ahead_stale_total").increment(1);
        return write_group(pools, group, Some(log));
    }
    let batches: Vec<&Batch> = group.iter().map(|queued| &queued.batch).collect();
    match on_backend!(pools, write_planned(&batches, plans, rand::random())) {
        Ok(applied) => {
            log.record(group.iter().flat_map(|queued| &queued.batch.item_keys), false);
            metrics::counter!("leanmote_write_groups_total").increment(1);
            metrics::counter!("leanmote_write_group_batches_total").increment(group.len() as u64);
            for (queued, applied) in group.into_iter().zip(applied) {
                queued.send_result(Ok(applied));
            }
        }
        Err(error) => {
            tracing::warn!(batches = group.len(), error = ?error, "writing a group planned ahead failed, planning it again");
            write_group(pools, group, Some(log));
        }
    }
}

/// Writes a group in one transaction, then alone each batch that could not
/// be written with it. With a log, records each commit in it.
fn write_group(pools: &Pools, group: Vec<Queued>, log: Option<&CommitLog>) {
    metrics::counter!("leanmote_write_groups_total").increment(1);
    metrics::counter!("leanmote_write_group_batches_total").increment(group.len() as u64);
    let alone = if group.len() == 1 { group } else { write_together(pools, group, log) };
    for queued in alone {
        let result = apply_alone(pools, &queued.batch, log);
        queued.send_result(result);
    }
}

/// Writes the group's batches in one transaction and sends their results; returns those that must run alone.
fn write_together(pools: &Pools, group: Vec<Queued>, log: Option<&CommitLog>) -> Vec<Queued> {
    let batches: Vec<&Batch> = group.iter().map(|queued| &queued.batch).collect();
    let outcomes = match on_backend!(pools, apply_group(&batches, rand::random())) {
        Ok(outcomes) => outcomes,
        Err(error) => {
            if matches!(error, TxError::ConcurrentWrite) {
                // Expected when writers share keys: each batch then starts over alone.
                tracing::debug!(
                    batches = group.len(),
                    "another writer wrote a key of the group first, writing its batches one by one"
                );
            } else {
                tracing::warn!(batches = group.len(), error = ?error, "a group transaction failed, writing its batches one by one");
            }
            metrics::counter!("leanmote_write_group_failures_total").increment(1);
            return group;
        }
    };
    if let Some(log) = log {
        let written = group.iter().zip(&outcomes).filter(|(_, outcome)| matches!(outcome, GroupOutcome::Applied(_)));
        log.record(written.flat_map(|(queued, _)| &queued.batch.item_keys), false);
    }
    let mut alone = Vec::new();
    for (queued, outcome) in group.into_iter().zip(outcomes) {
        match outcome {
            GroupOutcome::Applied(applied) => queued.send_result(Ok(applied)),
            GroupOutcome::Rejected(rejection) => queued.send_result(Err(ApplyError::Rejected(rejection))),
            GroupOutcome::Alone => alone.push(queued),
        }
    }
    alone
}

/// Writes one batch in its own transaction, retrying deadlocks and
/// serialization failures. With a log, records the commit in it.
pub(crate) fn apply_alone(pools: &Pools, batch: &Batch, log: Option<&CommitLog>) -> BatchResult {
    for attempt in 1.. {
        let insert_token: i64 = rand::random();
        let outcome = on_backend!(pools, apply_batch(batch, insert_token));
        match outcome {
            Err(TxError::Query(error)) if is_transient(&error) && attempt < MAX_TRANSACTION_ATTEMPTS => {
                tracing::warn!(attempt, error = %error, "batch transaction conflicted with another writer, retrying");
                metrics::counter!("leanmote_transaction_retries_total").increment(1);
                std::thread::sleep(Duration::from_millis(5 * u64::from(attempt) + rand::random_range(0..10)));
            }
            Ok((applied, moved)) => {
                if let Some(log) = log {
                    log.record(&batch.item_keys, moved);
                }
                return Ok(applied);
            }
            Err(error) => return Err(error.into_apply()),
        }
    }
    unreachable!("the loop returns on its last attempt")
}
