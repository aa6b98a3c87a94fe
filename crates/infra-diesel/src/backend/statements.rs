//! The write path's statements, written as SQL text of a known shape so that
//! diesel prepares each one once per connection and reuses it.
//!
//! diesel's query builder never caches an upsert (`DO UPDATE` marks the whole
//! statement unsafe to cache), nor an `IN` list on SQLite, nor `sql_query`.
//! Built that way, these statements were parsed and planned again in every
//! transaction (see the profiles in `docs/benchmarks.md`). Each type below
//! renders the same SQL for the same shape of input. diesel keys its cache
//! on the type when the SQL never changes (`HAS_STATIC_QUERY_ID`), and on
//! the SQL text otherwise.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};
use diesel::sqlite::Sqlite;

use crate::models::NewTaskRow;
use crate::stored_time::StoredTime;

/// Implements the traits that let diesel run a statement type and cache it:
/// keyed by the type when its SQL never changes, by its SQL text otherwise.
/// A type with a lifetime names its `'static` form as the cache key.
macro_rules! statement {
    ($name:ty, keyed by type, returns $sql_type:ty) => {
        statement!($name, keyed by type $name, returns $sql_type);
    };
    ($name:ty, keyed by type $key:ty, returns $sql_type:ty) => {
        impl diesel::query_builder::QueryId for $name {
            type QueryId = $key;
            const HAS_STATIC_QUERY_ID: bool = true;
        }
        statement!(@query $name, $sql_type);
    };
    ($name:ty, keyed by text, returns $sql_type:ty) => {
        impl diesel::query_builder::QueryId for $name {
            type QueryId = ();
            const HAS_STATIC_QUERY_ID: bool = false;
        }
        statement!(@query $name, $sql_type);
    };
    (@query $name:ty, $sql_type:ty) => {
        impl diesel::query_builder::Query for $name {
            type SqlType = $sql_type;
        }
        impl<Conn> diesel::RunQueryDsl<Conn> for $name {}
    };
}

/// Rows per multi-row upsert: 500 rows of 12 columns stay well below the bind
/// parameter limits of SQLite (32,766) and PostgreSQL (65,535).
pub(crate) const UPSERT_CHUNK_ROWS: usize = 500;

/// Row counts whose upsert statement is kept prepared: a single task, and a
/// full chunk of a large batch. Other counts are prepared for one use, so the
/// cache contains at most two upserts per connection.
const CACHED_UPSERT_ROWS: [usize; 2] = [1, UPSERT_CHUNK_ROWS];

/// Columns of `tasks` that an upsert writes, in bind order.
const UPSERT_COLUMNS: &str = "INSERT INTO tasks (project_id, task_app_id, task_name, task_url, owner_id, owner_name, \
     parent_task_id, created_at, inserted_at, updated_at, insert_token, source_updated_at) VALUES ";

/// Conflict clause of the upsert: a stored row keeps its `id`, `inserted_at` and
/// `insert_token` and takes every other column from the new row, so the token
/// identifies inserted rows.
const UPSERT_CONFLICT: &str = " ON CONFLICT (project_id, task_app_id) DO UPDATE SET \
     task_name = excluded.task_name, task_url = excluded.task_url, owner_id = excluded.owner_id, \
     owner_name = excluded.owner_name, parent_task_id = excluded.parent_task_id, \
     created_at = excluded.created_at, updated_at = excluded.updated_at, \
     source_updated_at = excluded.source_updated_at \
     RETURNING id, project_id, task_app_id, insert_token";

mod pg_columns;
mod pg_update;
mod pg_upsert;

pub(crate) use pg_update::PgTaskUpdate;
pub(crate) use pg_upsert::PgTaskUpsert;

/// SQLite's multi-row `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` of
/// task rows, returning `(id, project_id, task_app_id, insert_token)` per row.
/// PostgreSQL binds the same rows as arrays instead ([`PgTaskUpsert`]).
#[derive(Debug)]
pub(crate) struct TaskUpsert<'q> {
    pub(crate) rows: &'q [NewTaskRow<'q>],
}

macro_rules! task_upsert_fragment {
    ($backend:ty) => {
        impl QueryFragment<$backend> for TaskUpsert<'_> {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, $backend>) -> QueryResult<()> {
                if !CACHED_UPSERT_ROWS.contains(&self.rows.len()) {
                    out.unsafe_to_cache_prepared();
                }
                out.push_sql(UPSERT_COLUMNS);
                for (index, row) in self.rows.iter().enumerate() {
                    out.push_sql(if index == 0 { "(" } else { ", (" });
                    out.push_bind_param::<BigInt, _>(&row.project_id)?;
                    out.push_sql(", ");
                    out.push_bind_param::<Text, _>(row.task_app_id)?;
                    out.push_sql(", ");
                    out.push_bind_param::<Text, _>(row.task_name)?;
                    out.push_sql(", ");
                    out.push_bind_param::<Nullable<Text>, _>(&row.task_url)?;
                    out.push_sql(", ");
                    out.push_bind_param::<Nullable<Text>, _>(&row.owner_id)?;
                    out.push_sql(", ");
                    out.push_bind_param::<Nullable<Text>, _>(&row.owner_name)?;
                    out.push_sql(", ");
                    out.push_bind_param::<Nullable<BigInt>, _>(&row.parent_task_id)?;
                    out.push_sql(", ");
                    out.push_bind_param::<Timestamp, StoredTime>(&row.created_at)?;
                    out.push_sql(", ");
                    out.push_bind_param::<Timestamp, StoredTime>(&row.inserted_at)?;
                    out.push_sql(", ");
                    out.push_bind_param::<Timestamp, StoredTime>(&row.updated_at)?;
                    out.push_sql(", ");
                    out.push_bind_param::<BigInt, _>(&row.insert_token)?;
                    out.push_sql(", ");
                    out.push_bind_param::<Nullable<Timestamp>, _>(&row.source_updated_at)?;
                    out.push_sql(")");
                }
                out.push_sql(UPSERT_CONFLICT);
                Ok(())
            }
        }
    };
}
task_upsert_fragment!(Pg);
task_upsert_fragment!(Sqlite);

// Cached by its SQL text, which depends on the row count only.
statement!(TaskUpsert<'_>, keyed by text, returns (BigInt, BigInt, Text, BigInt));

/// SQL types of the columns a [`crate::models::TaskRow`] reads, in field order.
type TaskRowSql = (
    BigInt,
    BigInt,
    Text,
    Text,
    Nullable<Text>,
    Nullable<Text>,
    Nullable<Text>,
    Nullable<BigInt>,
    Timestamp,
    Timestamp,
    Timestamp,
    Nullable<Timestamp>,
);

/// SQLite: the stored rows of one project's tasks whose external ids are in a
/// JSON array, so that any number of ids is one bind parameter of one cached statement.
#[derive(Debug)]
pub(crate) struct SqliteTasksByKeys {
    pub(crate) project_id: i64,
    /// A JSON array of strings.
    pub(crate) app_ids: String,
}

impl QueryFragment<Sqlite> for SqliteTasksByKeys {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(
            "SELECT id, project_id, task_app_id, task_name, task_url, owner_id, owner_name, parent_task_id, \
             created_at, inserted_at, updated_at, source_updated_at FROM tasks WHERE project_id = ",
        );
        out.push_bind_param::<BigInt, _>(&self.project_id)?;
        out.push_sql(" AND task_app_id IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, _>(&self.app_ids)?;
        out.push_sql("))");
        Ok(())
    }
}

statement!(SqliteTasksByKeys, keyed by type, returns TaskRowSql);

/// SQLite: `(id, organization_id)` of the projects whose ids are in a JSON array.
#[derive(Debug)]
pub(crate) struct SqliteProjectsByIds {
    /// A JSON array of integers.
    pub(crate) ids: String,
}

impl QueryFragment<Sqlite> for SqliteProjectsByIds {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("SELECT id, organization_id FROM projects WHERE id IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, _>(&self.ids)?;
        out.push_sql("))");
        Ok(())
    }
}

statement!(SqliteProjectsByIds, keyed by type, returns (BigInt, BigInt));

/// PostgreSQL: `(id, organization_id)` of a write transaction's projects,
/// read after their advisory locks are taken, in project id order.
///
/// The locks are taken by a subquery in the `WHERE` clause that refers to no
/// row, which PostgreSQL runs once before it scans `projects`. The rows come
/// from the snapshot taken before the locks, which is enough because a
/// project's id and organization never change.
#[derive(Debug)]
pub(crate) struct PgLockedProjects<'q> {
    pub(crate) exclusive: bool,
    pub(crate) project_ids: &'q [i64],
}

impl QueryFragment<Pg> for PgLockedProjects<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT id, organization_id FROM projects WHERE id = ANY(");
        out.push_bind_param::<Array<BigInt>, _>(self.project_ids)?;
        out.push_sql(if self.exclusive {
            ") AND (SELECT count(pg_advisory_xact_lock(hashtextextended('leanmote.project', project_id))) "
        } else {
            ") AND (SELECT count(pg_advisory_xact_lock_shared(hashtextextended('leanmote.project', project_id))) "
        });
        out.push_sql("FROM (SELECT DISTINCT unnest(");
        out.push_bind_param::<Array<BigInt>, _>(self.project_ids)?;
        out.push_sql(") AS project_id ORDER BY project_id) AS p) >= 0");
        Ok(())
    }
}

// Cached by its SQL text: one statement per lock mode.
statement!(PgLockedProjects<'_>, keyed by text, returns (BigInt, BigInt));
