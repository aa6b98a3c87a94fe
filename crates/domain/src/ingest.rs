//! The use case behind `POST /api/v1/tasks`: validate, plan and write a batch.

use std::sync::Arc;

use crate::auth::Caller;
use crate::clock::Clock;
use crate::error::{DetailCode, ItemError, Rejection, StoreError};
use crate::idempotency::Receipt;
use crate::ids::{ProjectId, TaskId};
use crate::input::TaskInput;
use crate::outcome::{FieldName, TaskAction, Warning};
use crate::plan::{BatchPlanner, ItemDecision, PlannedItem, WritePlan};
use crate::ports::{AppliedBatch, ApplyError, TaskStore};
use crate::task::Action;
use crate::timestamp::Timestamp;
use crate::validate::{TASKS_FIELD, validate_task};

/// Most tasks one request may carry.
pub const MAX_BATCH_TASKS: usize = 1000;

/// The result for one request item, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedTask {
    pub project_id: ProjectId,
    /// `None` only in a dry run, for a task the batch would create.
    pub task_id: Option<TaskId>,
    pub task_app_id: String,
    pub action: TaskAction,
    /// Stored fields whose value the item changed, in API order; empty when it changed nothing.
    pub changed_fields: Vec<FieldName>,
    /// `created_at` as stored once the item is applied.
    pub created_at: Timestamp,
    pub warnings: Vec<Warning>,
}

/// Turns a written batch into per-item results, in request order.
///
/// Storage may call this inside the write transaction, to keep the response
/// together with the write (see idempotency keys).
pub fn processed_tasks(applied: &AppliedBatch) -> Vec<ProcessedTask> {
    applied
        .plan
        .items
        .iter()
        .map(|item| {
            let written = applied.rows[item.row];
            let action = match item.decision {
                ItemDecision::SkipStale => TaskAction::SkippedStale,
                ItemDecision::Apply if item.first_write && written.action == Action::Created => TaskAction::Created,
                ItemDecision::Apply => TaskAction::Updated,
            };
            processed_task(&applied.plan, item, Some(written.id), action)
        })
        .collect()
}

/// Per-item results of a plan that is not written: what a write would do.
fn planned_tasks(plan: &WritePlan) -> Vec<ProcessedTask> {
    plan.items
        .iter()
        .map(|item| {
            let existing = plan.rows[item.row].existing_id;
            let action = match item.decision {
                ItemDecision::SkipStale => TaskAction::SkippedStale,
                ItemDecision::Apply if item.first_write && existing.is_none() => TaskAction::Created,
                ItemDecision::Apply => TaskAction::Updated,
            };
            processed_task(plan, item, existing, action)
        })
        .collect()
}

fn processed_task(plan: &WritePlan, item: &PlannedItem, task_id: Option<TaskId>, action: TaskAction) -> ProcessedTask {
    let row = &plan.rows[item.row];
    ProcessedTask {
        project_id: row.key.project_id,
        task_id,
        task_app_id: row.key.app_id.as_str().to_owned(),
        action,
        changed_fields: item.changed_fields.clone(),
        created_at: item.created_at,
        warnings: item.warnings.clone(),
    }
}

/// Failure to ingest a batch.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the batch was rejected")]
    Rejected(Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Ingests batches of tasks for authenticated callers.
#[derive(Clone)]
pub struct TaskIngestion {
    store: Arc<dyn TaskStore>,
    clock: Arc<dyn Clock>,
}

impl TaskIngestion {
    /// Builds the use case over a task store and a clock.
    pub fn new(store: Arc<dyn TaskStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Creates or updates every task of the batch, all or nothing.
    ///
    /// Items apply in order, as if sent one by one: the same key twice is
    /// created, then updated.
    ///
    /// # Errors
    /// Returns [`IngestError::Rejected`] with every failing item when any item
    /// breaks a rule, and [`IngestError::Store`] when storage fails. In both
    /// cases nothing is written.
    pub async fn ingest(&self, caller: &Caller, inputs: Vec<TaskInput>) -> Result<Vec<ProcessedTask>, IngestError> {
        self.ingest_with_receipt(caller, inputs, None).await
    }

    /// Ingests like [`Self::ingest`]. With a receipt, storage also keeps the
    /// batch's response under its idempotency key, in the same transaction.
    ///
    /// # Errors
    /// The same as [`Self::ingest`].
    pub async fn ingest_with_receipt(
        &self,
        caller: &Caller,
        inputs: Vec<TaskInput>,
        receipt: Option<Receipt>,
    ) -> Result<Vec<ProcessedTask>, IngestError> {
        let planner = self.planner(caller, inputs)?;
        let applied = self.store.apply_batch(planner, receipt).await.map_err(IngestError::from_apply)?;
        Ok(processed_tasks(&applied))
    }

    /// Checks the batch against the stored data as [`Self::ingest`] would, and
    /// returns what each item would do, without writing anything.
    ///
    /// # Errors
    /// The same as [`Self::ingest`].
    pub async fn dry_run(&self, caller: &Caller, inputs: Vec<TaskInput>) -> Result<Vec<ProcessedTask>, IngestError> {
        let planner = self.planner(caller, inputs)?;
        let plan = self.store.plan_batch(planner).await.map_err(IngestError::from_apply)?;
        Ok(planned_tasks(&plan))
    }

    /// Applies the input rules to every item and builds the batch's planner.
    fn planner(&self, caller: &Caller, inputs: Vec<TaskInput>) -> Result<Arc<BatchPlanner>, IngestError> {
        check_batch_size(inputs.len()).map_err(IngestError::Rejected)?;
        let mut commands = Vec::with_capacity(inputs.len());
        let mut input_errors = Vec::new();
        for (index, input) in inputs.into_iter().enumerate() {
            match validate_task(index, input) {
                Ok(command) => commands.push((index, command)),
                Err(errors) => input_errors.extend(errors),
            }
        }
        Ok(Arc::new(BatchPlanner::new(commands, input_errors, caller.scope.clone(), self.clock.now())))
    }
}

impl IngestError {
    fn from_apply(error: ApplyError) -> Self {
        match error {
            ApplyError::Rejected(rejection) => Self::Rejected(rejection),
            ApplyError::Store(error) => Self::Store(error),
        }
    }
}

/// Checks that a batch contains between 1 and [`MAX_BATCH_TASKS`] items.
///
/// # Errors
/// Returns a rejection on the `tasks` field otherwise.
pub fn check_batch_size(count: usize) -> Result<(), Rejection> {
    if (1..=MAX_BATCH_TASKS).contains(&count) {
        return Ok(());
    }
    Err(Rejection::new(vec![batch_size_error(TASKS_FIELD, count, MAX_BATCH_TASKS, "task")]))
}

/// Builds the error for a batch of `count` items outside 1 to `max`, with the fix for each case.
pub(crate) fn batch_size_error(field: &str, count: usize, max: usize, noun: &str) -> ItemError {
    let message = if count == 0 {
        format!("is empty; send 1 to {max} {noun}s")
    } else {
        format!("contains {count} {noun}s, more than the maximum of {max}; split it into batches of at most {max}")
    };
    ItemError { index: None, field: field.to_owned(), code: DetailCode::BatchSize, message }
}

#[cfg(test)]
mod tests;
