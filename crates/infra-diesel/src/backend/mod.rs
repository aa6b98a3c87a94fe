//! The queries, written once and compiled for each backend.
//!
//! `shared/*.rs` are included into both `pg` and `sqlite` with `Conn` set to
//! that backend's connection type, so every query is concrete (diesel's
//! upserts and multi-row inserts need a concrete backend) and still written
//! once. What differs between backends lives in the [`Dialect`] trait.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::{Array, BigInt, Text};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use domain::ports::{AppliedBatch, ApplyError};
use domain::{Rejection, StoreError};

use crate::error::query_error;
use crate::models::{NewTaskRow, NodeRow, TaskRow, VersionedTaskRow};
use crate::schema::{projects, tasks};
use statements::{PgLockedProjects, PgTaskUpdate, PgTaskUpsert, SqliteProjectsByIds, SqliteTasksByKeys, TaskUpsert};

pub(crate) mod statements;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Error inside a transaction: a planner's rejection, a query error or a storage error.
#[derive(Debug)]
pub(crate) enum TxError {
    Rejected(Rejection),
    Query(DieselError),
    Store(StoreError),
    /// The batch moves a stored task, which its [`WriteLock::Shared`] lock does
    /// not allow: roll back and start over with [`WriteLock::Exclusive`].
    NeedsExclusiveLock,
    /// Another writer created a key that this batch planned to create, or
    /// changed a stored row that it read: roll back and start over with
    /// [`WriteLock::Exclusive`], whose snapshot then contains that writer's row.
    ConcurrentWrite,
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
            Self::NeedsExclusiveLock => StoreError::internal("a batch that moves a stored task ran without its lock"),
            Self::ConcurrentWrite => StoreError::internal("another writer wrote a key while the project was locked"),
        }
    }

    pub(crate) fn into_apply(self) -> ApplyError {
        match self {
            Self::Rejected(rejection) => ApplyError::Rejected(rejection),
            other => ApplyError::Store(other.into_store()),
        }
    }
}

/// The outcome of one batch in a group transaction (see `shared/tasks.rs`, `apply_group`).
#[derive(Debug)]
pub(crate) enum GroupOutcome {
    /// Written and committed with the group.
    Applied(AppliedBatch),
    /// Refused by the planner; nothing of it was written.
    Rejected(Rejection),
    /// Moves a stored task, so it must run in a transaction of its own.
    Alone,
}

/// Lock mode of a write transaction on PostgreSQL, for the projects it writes.
///
/// The planner reads the stored rows and decides what to write, so two
/// transactions must not plan on the same data at once:
/// - a batch that moves a stored task (gives it another parent) could close a
///   cycle that neither snapshot shows alone, so it runs alone in its projects;
/// - any other batch adds edges only from tasks it creates, which no committed
///   task points at yet, so it cannot close a cycle with another batch. It runs
///   beside other such batches. The planner merges absent fields into the
///   stored row and decides create or move from it, so that row must stay as
///   read until the commit. The snapshot read returns each stored row's
///   version (`xmin`), and the write updates a row only if its version is
///   unchanged. A key with no stored row has no version, so the write checks
///   instead that each row it planned to create carries this transaction's
///   `insert_token`. Either way, a batch that finds another writer's row
///   starts over. A parent it only names needs no check, because a stored
///   task's id never changes and no batch in this mode gives a stored task
///   another parent.
///
/// Whether a batch moves a stored task shows only in its snapshot, so a
/// transaction starts in `Shared` mode and starts over in `Exclusive` mode
/// when it finds a move or a concurrent write.
///
/// The checks take no lock in PostgreSQL's shared lock table, so a batch
/// of 1000 tasks takes as many locks there as it has projects. With the
/// default settings that table overflowed between 12,000 and 20,000 locks on
/// the test server, and an advisory lock per key reached that with a dozen
/// or more such batches at once. Row locks (`FOR NO KEY UPDATE` in the
/// read) also stayed out of that table, but wrote every row they locked,
/// which cost about 8% of the service's throughput at batch 1000 updates
/// (`docs/benchmarks.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteLock {
    /// `pg_advisory_xact_lock` on each project.
    Exclusive,
    /// `pg_advisory_xact_lock_shared` on each project, and a version check on the stored rows the items write.
    Shared,
}

/// Selects the tree node of each task whose id matches `$ids`, an SQL
/// predicate on one bound parameter.
macro_rules! nodes_query {
    ($ids:literal) => {
        concat!(
            "SELECT t.id, t.project_id, p.organization_id, t.parent_task_id ",
            "FROM tasks t JOIN projects p ON p.id = t.project_id WHERE t.id ",
            $ids
        )
    };
}

/// Like `nodes_query!`, plus the nodes of all the tasks' ancestors.
///
/// The chain carries every column it needs, so the query reads `tasks` by
/// primary key only. Joining a chain of bare ids back to `tasks` instead made
/// PostgreSQL 15 estimate the chain at about 100 times the seeds and hash the
/// whole table for every batch (see `docs/benchmarks.md`).
macro_rules! ancestors_query {
    ($ids:literal) => {
        concat!(
            "WITH RECURSIVE chain(id, project_id, parent_task_id) AS ( ",
            "SELECT id, project_id, parent_task_id FROM tasks WHERE id ",
            $ids,
            " UNION ",
            "SELECT t.id, t.project_id, t.parent_task_id FROM tasks t JOIN chain c ON t.id = c.parent_task_id ",
            ") ",
            "SELECT c.id, c.project_id, p.organization_id, c.parent_task_id ",
            "FROM chain c JOIN projects p ON p.id = c.project_id"
        )
    };
}

/// Behavior that differs between the backends.
pub(crate) trait Dialect: Connection + Sized {
    /// Lock mode in which a batch transaction starts: SQLite has one writer at a
    /// time anyway, so it never needs to start over.
    const FIRST_WRITE_LOCK: WriteLock;

    /// Runs `work` in a transaction that holds the write lock from its first statement.
    fn write_transaction<T, F>(&mut self, work: F) -> Result<T, TxError>
    where
        F: FnOnce(&mut Self) -> Result<T, TxError>;

    /// Runs a read whose best plan depends on its parameters, such as a listing
    /// of one project's tasks, with a plan made for those values.
    fn with_custom_plans<T>(&mut self, read: impl FnOnce(&mut Self) -> QueryResult<T>) -> QueryResult<T>;

    /// Loads `(id, organization_id)` of the projects with these ids. With a
    /// lock mode, first locks them until the transaction ends, in the same statement.
    fn read_projects(&mut self, ids: &[i64], lock: Option<WriteLock>) -> QueryResult<Vec<(i64, i64)>>;

    /// Loads the stored rows of one project's tasks with these external ids.
    ///
    /// With `versioned`, PostgreSQL also returns each row's version for
    /// [`Dialect::update_versioned_tasks`]. SQLite returns none: its write
    /// transactions run one at a time, so no row changes between read and write.
    fn load_tasks_by_keys(
        &mut self,
        project_id: i64,
        app_ids: &[&str],
        versioned: bool,
    ) -> QueryResult<Vec<(TaskRow, Option<i64>)>>;

    /// Loads the tree nodes of the tasks `ids`, and with `ancestors` those of
    /// all their ancestors too, in one query.
    fn query_nodes(&mut self, ids: &[i64], ancestors: bool) -> QueryResult<Vec<NodeRow>>;

    /// Upserts `rows` in one statement, returning `(id, project_id,
    /// task_app_id, insert_token)` per row. Callers pass at most
    /// [`statements::UPSERT_CHUNK_ROWS`] rows, which keeps SQLite within its bind limit.
    fn upsert_tasks(&mut self, rows: &[NewTaskRow<'_>]) -> QueryResult<Vec<(i64, i64, String, i64)>>;

    /// Upserts any number of `rows` with [`Dialect::upsert_tasks`], in chunks of
    /// [`statements::UPSERT_CHUNK_ROWS`], and returns what every chunk returned.
    fn upsert_task_chunks(&mut self, rows: &[NewTaskRow<'_>]) -> QueryResult<Vec<(i64, i64, String, i64)>> {
        let mut written = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(statements::UPSERT_CHUNK_ROWS) {
            written.extend(self.upsert_tasks(chunk)?);
        }
        Ok(written)
    }

    /// Updates the stored rows that still have the version read before, and
    /// returns `(id, project_id, task_app_id, insert_token)` of each. A row
    /// missing from the result was changed by another writer in between.
    /// `rows` must be sorted by id, the order in which the rows are locked.
    /// Takes any number of rows: PostgreSQL binds them as arrays, so one
    /// statement updates them all.
    fn update_versioned_tasks(&mut self, rows: &[VersionedTaskRow<'_>]) -> QueryResult<Vec<(i64, i64, String, i64)>>;

    /// Applies pending migrations and returns their versions.
    fn migrate(&mut self) -> Result<Vec<String>, StoreError>;
}

impl Dialect for PgConnection {
    const FIRST_WRITE_LOCK: WriteLock = WriteLock::Shared;

    fn write_transaction<T, F>(&mut self, work: F) -> Result<T, TxError>
    where
        F: FnOnce(&mut Self) -> Result<T, TxError>,
    {
        self.transaction(work)
    }

    fn with_custom_plans<T>(&mut self, read: impl FnOnce(&mut Self) -> QueryResult<T>) -> QueryResult<T> {
        // The session forces generic plans (see `PG_SESSION_SETTINGS`), and a generic
        // plan of a listing cannot tell a project of 10 tasks from one of 100,000.
        self.transaction(|conn| {
            conn.batch_execute("SET LOCAL plan_cache_mode = force_custom_plan")?;
            read(conn)
        })
    }

    fn read_projects(&mut self, ids: &[i64], lock: Option<WriteLock>) -> QueryResult<Vec<(i64, i64)>> {
        match lock {
            Some(mode) => PgLockedProjects { exclusive: mode == WriteLock::Exclusive, project_ids: ids }.load(self),
            None => projects::table
                .filter(projects::id.eq_any(ids))
                .select((projects::id, projects::organization_id))
                .load(self),
        }
    }

    fn load_tasks_by_keys(
        &mut self,
        project_id: i64,
        app_ids: &[&str],
        versioned: bool,
    ) -> QueryResult<Vec<(TaskRow, Option<i64>)>> {
        // diesel binds the list as one array (`= ANY($2)`), so both statements are cached.
        let query = tasks::table.filter(tasks::project_id.eq(project_id)).filter(tasks::task_app_id.eq_any(app_ids));
        if !versioned {
            let rows: Vec<TaskRow> = query.select(TaskRow::as_select()).load(self)?;
            return Ok(rows.into_iter().map(|row| (row, None)).collect());
        }
        // `xmin` changes with every update of the row, and only then.
        let version = diesel::dsl::sql::<BigInt>("xmin::text::bigint");
        let rows: Vec<(TaskRow, i64)> = query.select((TaskRow::as_select(), version)).load(self)?;
        Ok(rows.into_iter().map(|(row, version)| (row, Some(version))).collect())
    }

    fn query_nodes(&mut self, ids: &[i64], ancestors: bool) -> QueryResult<Vec<NodeRow>> {
        let query = if ancestors { ancestors_query!("= ANY($1)") } else { nodes_query!("= ANY($1)") };
        diesel::sql_query(query).bind::<Array<BigInt>, _>(ids).load(self)
    }

    fn upsert_tasks(&mut self, rows: &[NewTaskRow<'_>]) -> QueryResult<Vec<(i64, i64, String, i64)>> {
        PgTaskUpsert::new(rows).get_results(self)
    }

    fn update_versioned_tasks(&mut self, rows: &[VersionedTaskRow<'_>]) -> QueryResult<Vec<(i64, i64, String, i64)>> {
        // Concurrent writers must lock the rows they update in one order, or
        // they deadlock. The statement locks rows in the order its plan reads
        // them, and on a small table PostgreSQL would hash join over a
        // sequential scan, which reads them in heap order. Without sequential
        // scans, hash and merge joins, every plan reads them by id: in the
        // order of `rows`, sorted by id, or through the primary key index.
        self.batch_execute(
            "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off",
        )?;
        let updated = PgTaskUpdate::new(rows).get_results(self)?;
        self.batch_execute("RESET enable_seqscan; RESET enable_hashjoin; RESET enable_mergejoin")?;
        Ok(updated)
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
    const FIRST_WRITE_LOCK: WriteLock = WriteLock::Exclusive;

    fn write_transaction<T, F>(&mut self, work: F) -> Result<T, TxError>
    where
        F: FnOnce(&mut Self) -> Result<T, TxError>,
    {
        // A deferred transaction that reads first fails at once with SQLITE_BUSY when it
        // later needs to write while another process writes; IMMEDIATE waits instead.
        self.immediate_transaction(work)
    }

    fn with_custom_plans<T>(&mut self, read: impl FnOnce(&mut Self) -> QueryResult<T>) -> QueryResult<T> {
        // SQLite has no plan cache mode to change.
        read(self)
    }

    fn read_projects(&mut self, ids: &[i64], _lock: Option<WriteLock>) -> QueryResult<Vec<(i64, i64)>> {
        // BEGIN IMMEDIATE already holds the database-wide write lock.
        if let [id] = ids {
            // One project, the usual case: a plain key lookup is cheaper than a JSON table.
            return projects::table.find(id).select((projects::id, projects::organization_id)).load(self);
        }
        SqliteProjectsByIds { ids: json_array(ids)? }.load(self)
    }

    fn load_tasks_by_keys(
        &mut self,
        project_id: i64,
        app_ids: &[&str],
        _versioned: bool,
    ) -> QueryResult<Vec<(TaskRow, Option<i64>)>> {
        let rows: Vec<TaskRow> = if let [app_id] = app_ids {
            // A one-task batch: a plain key lookup is cheaper than a JSON table.
            tasks::table
                .filter(tasks::project_id.eq(project_id))
                .filter(tasks::task_app_id.eq(app_id))
                .select(TaskRow::as_select())
                .load(self)?
        } else {
            SqliteTasksByKeys { project_id, app_ids: json_array(app_ids)? }.load(self)?
        };
        Ok(rows.into_iter().map(|row| (row, None)).collect())
    }

    fn query_nodes(&mut self, ids: &[i64], ancestors: bool) -> QueryResult<Vec<NodeRow>> {
        // SQLite has no arrays: the ids travel as one JSON array, a single bind parameter.
        let json = json_array(ids)?;
        let query = if ancestors {
            ancestors_query!("IN (SELECT value FROM json_each(?))")
        } else {
            nodes_query!("IN (SELECT value FROM json_each(?))")
        };
        diesel::sql_query(query).bind::<Text, _>(json).load(self)
    }

    fn upsert_tasks(&mut self, rows: &[NewTaskRow<'_>]) -> QueryResult<Vec<(i64, i64, String, i64)>> {
        TaskUpsert { rows }.get_results(self)
    }

    fn update_versioned_tasks(&mut self, rows: &[VersionedTaskRow<'_>]) -> QueryResult<Vec<(i64, i64, String, i64)>> {
        // No row has a version here (see `load_tasks_by_keys`), so this never
        // runs. Writers take turns, so the upsert is exact anyway.
        let rows: Vec<NewTaskRow<'_>> = rows.iter().map(|versioned| versioned.row.clone()).collect();
        self.upsert_task_chunks(&rows)
    }

    fn migrate(&mut self) -> Result<Vec<String>, StoreError> {
        self.run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(StoreError::Internal)
    }
}

/// Encodes values as one JSON array, SQLite's stand-in for an array parameter.
fn json_array<T: serde::Serialize>(values: &[T]) -> QueryResult<String> {
    serde_json::to_string(values).map_err(|error| DieselError::SerializationError(error.into()))
}

macro_rules! backend_module {
    ($name:ident, $connection:ty) => {
        pub(crate) mod $name {
            use std::collections::{BTreeMap, BTreeSet};

            use chrono::NaiveDateTime;
            use diesel::prelude::*;
            use diesel::upsert::excluded;
            use domain::auth::{StoredToken, TokenHash};
            use domain::idempotency::{Claim, Fingerprint, IdempotencyKey, Receipt, StoredResponse};
            use domain::organization::{NewOrganization, Organization};
            use domain::plan::{
                BatchPlanner, BatchRefs, KeyMap, PlannedParent, PlannedRow, Snapshot, TaskNode, WritePlan,
            };
            use domain::ports::{AppliedBatch, NewToken, RowWrite};
            use domain::project::{DEFAULT_ACTIVE, NewProject, Project};
            use domain::read::{ProjectFilter, TaskFilter};
            use domain::task::{Action, StoredTask};
            use domain::{OrganizationId, ProjectId, StoreError, TaskId, Timestamp, TokenId};

            use super::{Dialect, GroupOutcome, TxError, WriteLock};
            use crate::models::{NewProjectRow, NewTaskRow, NodeRow, ProjectRow, TaskRow, VersionedTaskRow};
            use crate::schema::{
                api_token_organizations, api_tokens, idempotency_keys, organizations, projects, tasks,
            };
            use crate::stored_time::StoredTime;

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
