//! Read use cases: organizations, projects and tasks within the caller's scope.
//!
//! Anything in an organization outside the caller's scope reads as missing:
//! item reads return not found, and listings never include it.

use std::sync::Arc;

use crate::auth::Caller;
use crate::error::{DetailCode, ItemError, Rejection, StoreError};
use crate::ids::{OrganizationId, ProjectId, TaskId};
use crate::organization::Organization;
use crate::ports::{OrganizationRepository, ProjectRepository, TaskStore};
use crate::project::Project;
use crate::task::StoredTask;
use crate::timestamp::Timestamp;

mod params;
#[cfg(test)]
mod tests;

pub use params::{ProjectListParams, TaskListParams, decode_cursor, encode_cursor, repeated_parameter_error};

/// Default page size of task listings.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
/// Largest page size of task listings.
pub const MAX_PAGE_LIMIT: u32 = 1000;

/// A validated task listing: one project, optional filters, a keyset position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFilter {
    pub project_id: ProjectId,
    /// Only tasks with a larger id (the last id of the previous page).
    pub after: Option<TaskId>,
    pub limit: u32,
    /// Only tasks whose `updated_at` is at or after this instant.
    pub updated_since: Option<Timestamp>,
    pub parent_id: Option<TaskId>,
    pub app_id: Option<String>,
}

/// A validated project listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFilter {
    /// Organizations to list from: the caller's scope, narrowed by the request.
    pub organizations: Vec<OrganizationId>,
    pub active: Option<bool>,
}

/// One page of tasks and the cursor of the next page, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPage {
    pub tasks: Vec<StoredTask>,
    pub next_cursor: Option<String>,
    pub limit: u32,
}

/// Failure of a read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the read was rejected")]
    Rejected(Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The read use cases.
#[derive(Clone)]
pub struct Reader {
    pub tasks: Arc<dyn TaskStore>,
    pub projects: Arc<dyn ProjectRepository>,
    pub organizations: Arc<dyn OrganizationRepository>,
}

impl Reader {
    /// Lists the organizations in the caller's scope, in id order.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    pub async fn organizations(&self, caller: &Caller) -> Result<Vec<Organization>, StoreError> {
        self.organizations.list(caller.scope.organizations().collect()).await
    }

    /// Lists the projects of the caller's organizations, optionally filtered.
    ///
    /// # Errors
    /// Returns [`ReadError::Rejected`] for invalid filters.
    pub async fn projects(&self, caller: &Caller, params: ProjectListParams) -> Result<Vec<Project>, ReadError> {
        let filter = params.validate(&caller.scope).map_err(ReadError::Rejected)?;
        if filter.organizations.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.projects.list(filter).await?)
    }

    /// Returns one project of the caller's organizations.
    ///
    /// # Errors
    /// Returns a not-found rejection when the project does not exist or is out of scope.
    pub async fn project(&self, caller: &Caller, id: ProjectId) -> Result<Project, ReadError> {
        match self.projects.find(id).await? {
            Some(project) if caller.scope.contains(project.organization_id) => Ok(project),
            _ => Err(not_found("project_id", DetailCode::ProjectNotFound, format!("project {id} was not found"))),
        }
    }

    /// Returns one page of a project's tasks, in id order.
    ///
    /// # Errors
    /// Returns [`ReadError::Rejected`] for invalid parameters, or a not-found
    /// rejection when the project does not exist or is out of scope.
    pub async fn tasks(&self, caller: &Caller, params: TaskListParams) -> Result<TaskPage, ReadError> {
        let filter = params.validate().map_err(ReadError::Rejected)?;
        self.project(caller, filter.project_id).await?;

        let mut tasks = self.tasks.list_tasks(filter.clone()).await?;
        let next_cursor =
            if tasks.len() == filter.limit as usize { tasks.last().map(|task| encode_cursor(task.id)) } else { None };
        tasks.truncate(filter.limit as usize);
        Ok(TaskPage { tasks, next_cursor, limit: filter.limit })
    }

    /// Returns one task of the caller's organizations.
    ///
    /// # Errors
    /// Returns a not-found rejection when the task does not exist or is out of scope.
    pub async fn task(&self, caller: &Caller, id: TaskId) -> Result<StoredTask, ReadError> {
        let missing = || not_found("task_id", DetailCode::TaskNotFound, format!("task {id} was not found"));
        let task = self.tasks.find_task(id).await?.ok_or_else(missing)?;
        match self.projects.find(task.key.project_id).await? {
            Some(project) if caller.scope.contains(project.organization_id) => Ok(task),
            _ => Err(missing()),
        }
    }
}

fn not_found(field: &str, code: DetailCode, message: String) -> ReadError {
    ReadError::Rejected(Rejection::new(vec![ItemError { index: None, field: field.to_owned(), code, message }]))
}
