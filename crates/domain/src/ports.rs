//! Ports: what the use cases need from storage, implemented by adapters.
//!
//! Every method is async (via async-trait) so adapters can keep blocking
//! drivers off the caller's threads. With the `mocks` feature each trait has
//! a mockall mock (`MockTaskStore`, ...) for other services' unit tests.

use std::sync::Arc;

use async_trait::async_trait;

use crate::auth::{StoredToken, TokenHash};
use crate::error::{Rejection, StoreError};
use crate::idempotency::Receipt;
use crate::ids::{OrganizationId, ProjectId, TaskId, TokenId};
use crate::organization::{NewOrganization, Organization};
use crate::plan::{BatchPlanner, WritePlan};
use crate::project::{NewProject, Project};
use crate::read::{ProjectFilter, TaskFilter};
use crate::task::{Action, StoredTask};
use crate::timestamp::Timestamp;

/// Outcome of the write for one planned row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowWrite {
    pub id: TaskId,
    /// Whether the row was inserted, as the database saw it (not as planned).
    pub action: Action,
}

/// A plan and what writing it did, row by row in plan order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedBatch {
    pub plan: WritePlan,
    pub rows: Vec<RowWrite>,
}

/// Failure of a batch write.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the batch was rejected")]
    Rejected(Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Task storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Applies a batch atomically: within one transaction, loads what
    /// `planner.refs()` names, calls `planner.plan`, writes the plan and
    /// commits. Nothing is written when planning or writing fails.
    ///
    /// # Errors
    /// Returns [`ApplyError::Rejected`] with the planner's rejection, or
    /// [`ApplyError::Store`] when storage fails.
    async fn apply_batch(
        &self,
        planner: Arc<BatchPlanner>,
        receipt: Option<Receipt>,
    ) -> Result<AppliedBatch, ApplyError>;

    /// Reads what the planner needs and plans the batch like
    /// [`Self::apply_batch`], without writing: the result of a dry run.
    ///
    /// # Errors
    /// The same as [`Self::apply_batch`].
    async fn plan_batch(&self, planner: Arc<BatchPlanner>) -> Result<WritePlan, ApplyError>;

    /// Returns the task with this id, whatever its organization.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    async fn find_task(&self, id: TaskId) -> Result<Option<StoredTask>, StoreError>;

    /// Returns up to `filter.limit` tasks matching the filter with ids above
    /// `filter.after`, in id order (keyset pagination).
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    async fn list_tasks(&self, filter: TaskFilter) -> Result<Vec<StoredTask>, StoreError>;
}

/// API token storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TokenRepository: Send + Sync {
    /// Returns the token with this hash, with its organizations.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    async fn find_by_hash(&self, hash: &TokenHash) -> Result<Option<StoredToken>, StoreError>;

    /// Records that the token was used at `at`.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    async fn touch(&self, id: TokenId, at: Timestamp) -> Result<(), StoreError>;

    /// Stores a new token's hash, label, organizations and expiry.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails or an organization does not exist.
    async fn create(&self, token: NewToken) -> Result<TokenId, StoreError>;

    /// Marks the token revoked at `at`. Returns false when no such token exists.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    async fn revoke(&self, id: TokenId, at: Timestamp) -> Result<bool, StoreError>;
}

/// A token to store; the secret itself is never part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub label: String,
    pub hash: TokenHash,
    pub organizations: Vec<OrganizationId>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// Organization storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OrganizationRepository: Send + Sync {
    /// Stores a new organization and returns it with its id.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    async fn create(&self, organization: NewOrganization) -> Result<Organization, StoreError>;

    /// Returns the organization with this id.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    async fn find(&self, id: OrganizationId) -> Result<Option<Organization>, StoreError>;

    /// Returns how many organizations exist.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    async fn count(&self) -> Result<u64, StoreError>;

    /// Returns the organizations with these ids, in id order.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    async fn list(&self, ids: Vec<OrganizationId>) -> Result<Vec<Organization>, StoreError>;
}

/// Project storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ProjectRepository: Send + Sync {
    /// Creates the project, or updates the one with the same
    /// (organization, external id), and returns which of the two happened.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    async fn upsert(&self, project: NewProject) -> Result<(Project, Action), StoreError>;

    /// Upserts several projects in order, in one transaction: all or nothing.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails; then nothing is written.
    async fn upsert_many(&self, projects: Vec<NewProject>) -> Result<Vec<(Project, Action)>, StoreError>;

    /// Returns the project with this id, whatever its organization.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    async fn find(&self, id: ProjectId) -> Result<Option<Project>, StoreError>;

    /// Returns the projects of the filter's organizations, in id order.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    async fn list(&self, filter: ProjectFilter) -> Result<Vec<Project>, StoreError>;
}

/// Readiness of storage, for health checks.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Readiness: Send + Sync {
    /// Checks that storage responds to a trivial query now.
    ///
    /// # Errors
    /// Returns [`StoreError::Unavailable`] when it does not.
    async fn ping(&self) -> Result<(), StoreError>;
}
