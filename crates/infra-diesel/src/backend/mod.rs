//! The queries, written once and compiled for each backend.
//!
//! `shared/*.rs` are included into both `pg` and `sqlite` with `Conn` set to
//! that backend's connection type, so every query is concrete (diesel's
//! upserts and multi-row inserts need a concrete backend) and still written
//! once. What differs between backends lives in the [`Dialect`] trait.

use diesel::connection::SimpleConnection;
use diesel::result::Error as DieselError;
use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, QueryResult, RunQueryDsl, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use domain::ports::ApplyError;
use domain::{Rejection, StoreError};

use crate::error::query_error;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Error inside a transaction: a planner's rejection, a query error or a storage error.
#[derive(Debug)]
pub(crate) enum TxError {
    Rejected(Rejection),
    Query(DieselError),
    Store(StoreError),
}

impl From<DieselError> for TxError {
    fn from(error: DieselError) -> Self {
        Self::Query(error)
    }
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl TxError {
    pub(crate) fn into_store(self) -> StoreError {
        match self {
            Self::Rejected(rejection) => StoreError::internal(format!("unexpected rejection: {rejection:?}")),
            Self::Query(error) => query_error(error),
            Self::Store(error) => error,
        }
    }

    pub(crate) fn into_apply(self) -> ApplyError {
        match self {
            Self::Rejected(rejection) => ApplyError::Rejected(rejection),
            other => ApplyError::Store(other.into_store()),
        }
    }
}

/// Behavior that differs between the backends.
pub(crate) trait Dialect: Connection + Sized {
    /// Runs `work` in a transaction that holds the write lock from its first statement.
    fn write_transaction<T, F>(&mut self, work: F) -> Result<T, TxError>
    where
        F: FnOnce(&mut Self) -> Result<T, TxError>;

    /// Serializes writers of the same projects until the transaction ends.
    fn lock_projects(&mut self, project_ids: &[i64]) -> QueryResult<()>;

    /// Applies pending migrations and returns their versions.
    fn migrate(&mut self) -> Result<Vec<String>, StoreError>;
}

impl Dialect for PgConnection {
    fn write_transaction<T, F>(&mut self, work: F) -> Result<T, TxError>
    where
        F: FnOnce(&mut Self) -> Result<T, TxError>,
    {
        self.transaction(work)
    }

    fn lock_projects(&mut self, project_ids: &[i64]) -> QueryResult<()> {
        // Sorted ids give every writer the same lock order, so two batches never deadlock here.
        let mut sorted = project_ids.to_vec();
        sorted.sort_unstable();
        for project_id in sorted {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('leanmote.project', $1))")
                .bind::<BigInt, _>(project_id)
                .execute(self)?;
        }
        Ok(())
    }

    fn migrate(&mut self) -> Result<Vec<String>, StoreError> {
        // Several instances may start at once: one migrates while the others wait.
        self.batch_execute("SELECT pg_advisory_lock(hashtextextended('leanmote.migrations', 0))")
            .map_err(query_error)?;
        let applied = self
            .run_pending_migrations(PG_MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect());
        self.batch_execute("SELECT pg_advisory_unlock(hashtextextended('leanmote.migrations', 0))")
            .map_err(query_error)?;
        applied.map_err(StoreError::Internal)
    }
}

impl Dialect for SqliteConnection {
    fn write_transaction<T, F>(&mut self, work: F) -> Result<T, TxError>
    where
        F: FnOnce(&mut Self) -> Result<T, TxError>,
    {
        // A deferred transaction that reads first fails at once with SQLITE_BUSY when it
        // later needs to write while another process writes; IMMEDIATE waits instead.
        self.immediate_transaction(work)
    }

    fn lock_projects(&mut self, _project_ids: &[i64]) -> QueryResult<()> {
        // BEGIN IMMEDIATE already holds the database-wide write lock.
        Ok(())
    }

    fn migrate(&mut self) -> Result<Vec<String>, StoreError> {
        self.run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(StoreError::Internal)
    }
}

macro_rules! backend_module {
    ($name:ident, $connection:ty) => {
        pub(crate) mod $name {
            use std::collections::{BTreeMap, BTreeSet, HashMap};

            use chrono::NaiveDateTime;
            use diesel::prelude::*;
            use diesel::upsert::excluded;
            use domain::auth::{StoredToken, TokenHash};
            use domain::idempotency::{Claim, Fingerprint, IdempotencyKey, Receipt, StoredAnswer};
            use domain::organization::{NewOrganization, Organization};
            use domain::plan::{BatchPlanner, BatchRefs, PlannedParent, Snapshot, TaskNode, WritePlan};
            use domain::ports::{AppliedBatch, NewToken, RowWrite};
            use domain::project::{DEFAULT_ACTIVE, NewProject, Project};
            use domain::read::{ProjectFilter, TaskFilter};
            use domain::task::{Action, StoredTask};
            use domain::{OrganizationId, ProjectId, StoreError, TaskId, Timestamp, TokenId};

            use super::{Dialect, TxError};
            use crate::models::{NewProjectRow, NewTaskRow, NodeRow, ProjectRow, TaskRow};
            use crate::schema::{
                api_token_organizations, api_tokens, idempotency_keys, organizations, projects, tasks,
            };

            pub(crate) type Conn = $connection;

            include!("shared/tasks.rs");
            include!("shared/accounts.rs");
            include!("shared/idempotency.rs");

            /// Applies pending migrations.
            pub(crate) fn migrate(conn: &mut Conn) -> Result<Vec<String>, TxError> {
                Ok(conn.migrate()?)
            }
        }
    };
}

backend_module!(pg, diesel::PgConnection);
backend_module!(sqlite, diesel::SqliteConnection);
