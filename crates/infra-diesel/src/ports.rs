//! The domain's storage ports, implemented on [`Database`].

use std::sync::Arc;

use async_trait::async_trait;
use domain::auth::{StoredToken, TokenHash};
use domain::idempotency::{Claim, IdempotencyKey, IdempotencyStore, Receipt};
use domain::organization::{NewOrganization, Organization};
use domain::plan::{BatchPlanner, WritePlan};
use domain::ports::{
    AppliedBatch, ApplyError, NewToken, OrganizationRepository, ProjectRepository, Readiness, TaskStore,
    TokenRepository,
};
use domain::project::{NewProject, Project};
use domain::read::{ProjectFilter, TaskFilter};
use domain::task::{Action, StoredTask};
use domain::{OrganizationId, ProjectId, StoreError, TaskId, Timestamp, TokenId};

use crate::backend::TxError;
use crate::db::{Database, on_backend};
use crate::group_commit::{Batch, PG_GROUPED_MAX_ITEMS, apply_alone};

impl Database {
    /// Applies pending migrations and returns the versions applied.
    ///
    /// # Errors
    /// Returns [`StoreError`] when a migration fails.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        self.blocking_write(|pools| on_backend!(pools, migrate()).map_err(TxError::into_store)).await
    }
}

#[async_trait]
impl Readiness for Database {
    async fn ping(&self) -> Result<(), StoreError> {
        self.blocking(crate::db::ping).await
    }
}

#[async_trait]
impl TaskStore for Database {
    async fn apply_batch(
        &self,
        planner: Arc<BatchPlanner>,
        receipt: Option<Receipt>,
    ) -> Result<AppliedBatch, ApplyError> {
        let batch = Batch::new(planner, receipt);
        if self.sqlite_writer.is_none() && batch.item_keys.len() > PG_GROUPED_MAX_ITEMS {
            return self.blocking_write(move |pools| Ok(apply_alone(pools, &batch, None))).await?;
        }
        self.apply_grouped(batch).await
    }

    async fn plan_batch(&self, planner: Arc<BatchPlanner>) -> Result<WritePlan, ApplyError> {
        self.blocking(move |pools| Ok(on_backend!(pools, plan_batch(&planner)))).await?.map_err(TxError::into_apply)
    }

    async fn find_task(&self, id: TaskId) -> Result<Option<StoredTask>, StoreError> {
        self.blocking(move |pools| on_backend!(pools, find_task(id)).map_err(TxError::into_store)).await
    }

    async fn list_tasks(&self, filter: TaskFilter) -> Result<Vec<StoredTask>, StoreError> {
        self.blocking(move |pools| on_backend!(pools, list_tasks(&filter)).map_err(TxError::into_store)).await
    }
}

#[async_trait]
impl TokenRepository for Database {
    async fn find_by_hash(&self, hash: &TokenHash) -> Result<Option<StoredToken>, StoreError> {
        let hash = hash.clone();
        self.blocking(move |pools| on_backend!(pools, find_token(&hash)).map_err(TxError::into_store)).await
    }

    async fn touch(&self, id: TokenId, at: Timestamp) -> Result<(), StoreError> {
        self.blocking_write(move |pools| on_backend!(pools, touch_token(id, at)).map_err(TxError::into_store)).await
    }

    async fn create(&self, token: NewToken) -> Result<TokenId, StoreError> {
        self.blocking_write(move |pools| on_backend!(pools, create_token(&token)).map_err(TxError::into_store)).await
    }

    async fn revoke(&self, id: TokenId, at: Timestamp) -> Result<bool, StoreError> {
        self.blocking_write(move |pools| on_backend!(pools, revoke_token(id, at)).map_err(TxError::into_store)).await
    }
}

#[async_trait]
impl OrganizationRepository for Database {
    async fn create(&self, organization: NewOrganization) -> Result<Organization, StoreError> {
        self.blocking_write(move |pools| {
            on_backend!(pools, create_organization(&organization)).map_err(TxError::into_store)
        })
        .await
    }

    async fn find(&self, id: OrganizationId) -> Result<Option<Organization>, StoreError> {
        self.blocking(move |pools| on_backend!(pools, find_organization(id)).map_err(TxError::into_store)).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.blocking(|pools| on_backend!(pools, count_organizations()).map_err(TxError::into_store)).await
    }

    async fn list(&self, ids: Vec<OrganizationId>) -> Result<Vec<Organization>, StoreError> {
        self.blocking(move |pools| on_backend!(pools, list_organizations(&ids)).map_err(TxError::into_store)).await
    }
}

#[async_trait]
impl ProjectRepository for Database {
    async fn upsert(&self, project: NewProject) -> Result<(Project, Action), StoreError> {
        self.blocking_write(move |pools| on_backend!(pools, upsert_project(&project)).map_err(TxError::into_store))
            .await
    }

    async fn upsert_many(&self, projects: Vec<NewProject>) -> Result<Vec<(Project, Action)>, StoreError> {
        self.blocking_write(move |pools| on_backend!(pools, upsert_projects(&projects)).map_err(TxError::into_store))
            .await
    }

    async fn find(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        self.blocking(move |pools| on_backend!(pools, find_project(id)).map_err(TxError::into_store)).await
    }

    async fn list(&self, filter: ProjectFilter) -> Result<Vec<Project>, StoreError> {
        self.blocking(move |pools| on_backend!(pools, list_projects(&filter)).map_err(TxError::into_store)).await
    }
}

#[async_trait]
impl IdempotencyStore for Database {
    async fn claim(
        &self,
        token: TokenId,
        key: &IdempotencyKey,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Claim, StoreError> {
        let key = key.clone();
        self.blocking_write(move |pools| {
            on_backend!(pools, claim_key(token, &key, now, lease_until)).map_err(TxError::into_store)
        })
        .await
    }

    async fn release(&self, token: TokenId, key: &IdempotencyKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.blocking_write(move |pools| on_backend!(pools, release_key(token, &key)).map_err(TxError::into_store))
            .await
    }

    async fn prune(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.blocking_write(move |pools| on_backend!(pools, prune_keys(now)).map_err(TxError::into_store)).await
    }
}
