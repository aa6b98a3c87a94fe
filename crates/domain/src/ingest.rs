//! The use case behind `POST /api/v1/tasks`: validate, plan and write a batch.

use std::sync::Arc;

use crate::auth::Caller;
use crate::clock::Clock;
use crate::error::{DetailCode, ItemError, Rejection, StoreError};
use crate::ids::{ProjectId, TaskId};
use crate::input::TaskInput;
use crate::plan::BatchPlanner;
use crate::ports::{ApplyError, TaskStore};
use crate::task::Action;
use crate::validate::{TASKS_FIELD, validate_task};

/// Most tasks one request may carry.
pub const MAX_BATCH_TASKS: usize = 1000;

/// The result for one request item, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedTask {
    pub project_id: ProjectId,
    pub task_id: TaskId,
    pub task_app_id: String,
    pub action: Action,
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
        check_batch_size(inputs.len()).map_err(IngestError::Rejected)?;

        let mut commands = Vec::with_capacity(inputs.len());
        let mut input_errors = Vec::new();
        for (index, input) in inputs.into_iter().enumerate() {
            match validate_task(index, input) {
                Ok(command) => commands.push((index, command)),
                Err(errors) => input_errors.extend(errors),
            }
        }

        let planner = Arc::new(BatchPlanner::new(commands, input_errors, caller.scope.clone(), self.clock.now()));
        let applied = self.store.apply_batch(planner).await.map_err(|error| match error {
            ApplyError::Rejected(rejection) => IngestError::Rejected(rejection),
            ApplyError::Store(error) => IngestError::Store(error),
        })?;

        let processed = applied
            .plan
            .items
            .iter()
            .map(|item| {
                let row = &applied.plan.rows[item.row];
                let write = applied.rows[item.row];
                ProcessedTask {
                    project_id: row.key.project_id,
                    task_id: write.id,
                    task_app_id: row.key.app_id.as_str().to_owned(),
                    action: if item.first_write { write.action } else { Action::Updated },
                }
            })
            .collect();
        Ok(processed)
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
    Err(Rejection::new(vec![ItemError {
        index: None,
        field: TASKS_FIELD.to_owned(),
        code: DetailCode::BatchSize,
        message: format!("must contain between 1 and {MAX_BATCH_TASKS} tasks, got {count}; split the batch"),
    }]))
}

#[cfg(test)]
mod tests;
