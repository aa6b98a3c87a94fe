//! Taking turns and writing groups on [`Database`].

use std::time::Duration;

use domain::StoreError;
use domain::ports::ApplyError;
use tokio::sync::OwnedSemaphorePermit;

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
        let work = move || {
            write_group(&pools, group);
            drop(turn);
        };
        if let Some(writer) = &self.sqlite_writer {
            let done = writer.submit(move || {
                work();
                Ok(())
            });
            let _ = done.await;
        } else if let Err(error) = tokio::task::spawn_blocking(work).await {
            tracing::error!(error = %error, "a group write panicked");
        }
    }
}

/// Writes a group in one transaction, then alone each batch that could not be written with it.
fn write_group(pools: &Pools, group: Vec<Queued>) {
    metrics::counter!("leanmote_write_groups_total").increment(1);
    metrics::counter!("leanmote_write_group_batches_total").increment(group.len() as u64);
    let alone = if group.len() == 1 { group } else { write_together(pools, group) };
    for queued in alone {
        let result = apply_alone(pools, &queued.batch);
        queued.send_result(result);
    }
}

/// Writes the group's batches in one transaction and sends their results; returns those that must run alone.
fn write_together(pools: &Pools, group: Vec<Queued>) -> Vec<Queued> {
    let batches: Vec<&Batch> = group.iter().map(|queued| &queued.batch).collect();
    let outcomes = match on_backend!(pools, apply_group(&batches, rand::random())) {
        Ok(outcomes) => outcomes,
        Err(error) => {
            tracing::warn!(batches = group.len(), error = ?error, "a group transaction failed, writing its batches one by one");
            metrics::counter!("leanmote_write_group_failures_total").increment(1);
            return group;
        }
    };
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

/// Writes one batch in its own transaction, retrying deadlocks and serialization failures.
pub(crate) fn apply_alone(pools: &Pools, batch: &Batch) -> BatchResult {
    for attempt in 1.. {
        let insert_token: i64 = rand::random();
        let outcome = on_backend!(pools, apply_batch(&batch.planner, insert_token, batch.receipt.as_deref()));
        match outcome {
            Err(TxError::Query(error)) if is_transient(&error) && attempt < MAX_TRANSACTION_ATTEMPTS => {
                tracing::warn!(attempt, error = %error, "batch transaction conflicted with another writer, retrying");
                metrics::counter!("leanmote_transaction_retries_total").increment(1);
                std::thread::sleep(Duration::from_millis(5 * u64::from(attempt) + rand::random_range(0..10)));
            }
            other => return other.map_err(TxError::into_apply),
        }
    }
    unreachable!("the loop returns on its last attempt")
}
