//! Group commit: batches that wait for a writer at the same time share one
//! transaction.
//!
//! A batch joins a queue and then waits for one of a few writer turns. On
//! PostgreSQL only batches of up to [`PG_GROUPED_MAX_ITEMS`] items queue.
//! The request that gets a turn takes its own batch and the ones queued
//! beside it, up to [`MAX_GROUP_ITEMS`] items, and writes them in one
//! transaction: one `BEGIN`, one project lock, one keyed read, one upsert
//! and one `COMMIT` (one WAL flush) for the whole group. Under load, a
//! one-task request thus costs the database a fraction of a transaction.
//! With no load, a batch finds the queue empty and runs alone at once: no
//! timer ever delays a batch.
//!
//! The group is only a way to write, never a change of meaning: every batch
//! gets the result it would get alone.
//! - Batches of one group write disjoint keys and name none of each other's
//!   keys as a parent, so the order among them does not matter. A batch
//!   that touches keys of a batch skipped before it waits for a later
//!   group, so two batches on the same key keep their queue order.
//! - A batch that moves a stored task runs alone (see `apply_group`).
//! - If the group's transaction fails, each of its batches runs again
//!   alone, so one batch's failure never becomes another's.
//! - Once taken from the queue, a group runs to its end even if the request
//!   that took it stops waiting; a batch still queued when its request goes
//!   away leaves the queue.
//!
//! On SQLite, a group can also be read and planned ahead of its turn on the
//! writer thread ([`read_ahead`]).

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use domain::idempotency::Receipt;
use domain::plan::{BatchPlanner, BatchRefs};
use domain::ports::{AppliedBatch, ApplyError};
use domain::task::TaskKey;
use tokio::sync::oneshot;

/// Maximum items in one group.
pub(crate) const MAX_GROUP_ITEMS: usize = 1000;

/// Maximum items of a batch that joins the queue on PostgreSQL. A larger
/// batch is written alone, beside other writers: several such batches use
/// both of the database's cores only when they run at once. With 100, the
/// one group turn took batches of 100 one group at a time, and they reached
/// about 50% of the database's own rate instead of about 60%
/// (`docs/benchmarks.md`). SQLite writes one transaction at a time anyway,
/// so every batch queues there.
pub(crate) const PG_GROUPED_MAX_ITEMS: usize = 10;

/// A batch waiting for its write.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) planner: Arc<BatchPlanner>,
    pub(crate) receipt: Option<Arc<Receipt>>,
    pub(crate) refs: BatchRefs,
    pub(crate) item_keys: BTreeSet<TaskKey>,
}

impl Batch {
    pub(crate) fn new(planner: Arc<BatchPlanner>, receipt: Option<Receipt>) -> Self {
        let refs = planner.refs();
        let item_keys = planner.item_keys();
        Self { planner, receipt: receipt.map(Arc::new), refs, item_keys }
    }

    /// Tells whether the two batches could see each other's writes: one writes a key the other reads or writes.
    fn overlaps(&self, keys: &KeySets) -> bool {
        !self.item_keys.is_disjoint(&keys.referenced) || !self.refs.keys.is_disjoint(&keys.written)
    }
}

/// The result a batch's request waits for.
pub(crate) type BatchResult = Result<AppliedBatch, ApplyError>;

/// A batch in the queue, with the channel of its result.
#[derive(Debug)]
pub(crate) struct Queued {
    id: u64,
    pub(crate) batch: Batch,
    result: oneshot::Sender<BatchResult>,
}

impl Queued {
    /// Sends the batch's result, which is dropped if its request stopped waiting.
    pub(crate) fn send_result(self, result: BatchResult) {
        let _ = self.result.send(result);
    }
}

/// Keys written and referenced by a set of batches.
#[derive(Default)]
struct KeySets {
    written: BTreeSet<TaskKey>,
    referenced: BTreeSet<TaskKey>,
}

impl KeySets {
    fn add(&mut self, batch: &Batch) {
        self.written.extend(batch.item_keys.iter().cloned());
        self.referenced.extend(batch.refs.keys.iter().cloned());
    }
}

#[derive(Default)]
struct QueueState {
    next_id: u64,
    batches: VecDeque<Queued>,
}

/// Batches waiting to be written, in arrival order.
#[derive(Default)]
pub(crate) struct WriteQueue {
    state: Mutex<QueueState>,
}

impl WriteQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // The state stays consistent at every await-free step, so a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a batch and returns its ticket and the channel of its result.
    pub(crate) fn push(self: &Arc<Self>, batch: Batch) -> (Ticket, oneshot::Receiver<BatchResult>) {
        let (result, receiver) = oneshot::channel();
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.batches.push_back(Queued { id, batch, result });
        (Ticket { queue: Arc::clone(self), id }, receiver)
    }

    /// Takes the next group if the ticket's batch is still queued, else nothing.
    ///
    /// The first queued batch always joins. Each later one joins unless the
    /// group would pass [`MAX_GROUP_ITEMS`] or it overlaps a batch taken or
    /// skipped before it.
    pub(crate) fn take_group(&self, ticket: &Ticket) -> Vec<Queued> {
        let mut state = self.lock();
        if !state.batches.iter().any(|queued| queued.id == ticket.id) {
            return Vec::new();
        }
        let mut group = Vec::new();
        let (mut taken, mut skipped) = (KeySets::default(), KeySets::default());
        let mut items = 0;
        let mut kept = VecDeque::with_capacity(state.batches.len());
        for queued in state.batches.drain(..) {
            let size = queued.batch.item_keys.len();
            let joins = group.is_empty()
                || (items < MAX_GROUP_ITEMS
                    && items + size <= MAX_GROUP_ITEMS
                    && !queued.batch.overlaps(&taken)
                    && !queued.batch.overlaps(&skipped));
            if joins {
                items += size;
                taken.add(&queued.batch);
                group.push(queued);
            } else {
                if items < MAX_GROUP_ITEMS {
                    // Once the group is full nothing else joins, so the rest need no keys.
                    skipped.add(&queued.batch);
                }
                kept.push_back(queued);
            }
        }
        state.batches = kept;
        group
    }
}

/// A batch's place in the queue. Dropping it takes the batch out of the
/// queue if no group has taken it yet, so a request that stops waiting
/// leaves nothing behind to be written later.
pub(crate) struct Ticket {
    queue: Arc<WriteQueue>,
    id: u64,
}

impl Ticket {
    /// Takes the batch out of the queue; false when a group has taken it already.
    pub(crate) fn withdraw(&self) -> bool {
        let mut state = self.queue.lock();
        let before = state.batches.len();
        state.batches.retain(|queued| queued.id != self.id);
        state.batches.len() < before
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.withdraw();
    }
}

pub(crate) mod read_ahead;
mod run;

pub(crate) use run::apply_alone;
#[cfg(test)]
mod tests;
