//! PostgreSQL's update of stored task rows that checks each row's version.
//!
//! A batch reads the stored rows it merges into without locking them, along
//! with each row's `xmin`: the id of the transaction that wrote that version
//! of the row. The update then writes a row only where `xmin` is unchanged.
//! When another writer changed the row in between, or is changing it, the
//! update waits for that writer. PostgreSQL then checks the condition again
//! on the row's newest version, so the row is left out of the result, and
//! the batch starts over under the exclusive project lock.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};

use super::pg_columns::FieldColumns;
use crate::models::VersionedTaskRow;
use crate::stored_time::StoredTime;

/// The columns of the rows to update, each as one array, in bind order.
#[derive(Debug, Default)]
pub(crate) struct PgTaskUpdate<'q> {
    id: Vec<i64>,
    version: Vec<i64>,
    fields: FieldColumns<'q>,
    updated_at: Vec<StoredTime>,
    source_updated_at: Vec<Option<StoredTime>>,
}

impl<'q> PgTaskUpdate<'q> {
    /// Splits `rows` into columns, in the order given.
    pub(crate) fn new(rows: &[VersionedTaskRow<'q>]) -> Self {
        let mut columns = Self::default();
        for VersionedTaskRow { id, version, row } in rows {
            columns.id.push(*id);
            columns.version.push(*version);
            columns.fields.push(row);
            columns.updated_at.push(row.updated_at);
            columns.source_updated_at.push(row.source_updated_at);
        }
        columns
    }
}

impl QueryFragment<Pg> for PgTaskUpdate<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "UPDATE tasks AS t SET task_name = v.task_name, task_url = v.task_url, owner_id = v.owner_id, \
             owner_name = v.owner_name, parent_task_id = v.parent_task_id, created_at = v.created_at, \
             updated_at = v.updated_at, source_updated_at = v.source_updated_at FROM unnest(",
        );
        out.push_bind_param::<Array<BigInt>, _>(&self.id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.version)?;
        out.push_sql(", ");
        self.fields.walk_ast(&mut out)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.updated_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Timestamp>>, _>(&self.source_updated_at)?;
        out.push_sql(
            ") AS v(id, version, task_name, task_url, owner_id, owner_name, parent_task_id, created_at, \
             updated_at, source_updated_at) WHERE t.id = v.id AND t.xmin::text::bigint = v.version \
             RETURNING t.id, t.project_id, t.task_app_id, t.insert_token",
        );
        Ok(())
    }
}

// Cached by type: the SQL text is the same for every row count.
statement!(PgTaskUpdate<'_>, keyed by type PgTaskUpdate<'static>, returns (BigInt, BigInt, Text, BigInt));

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};

    use crate::backend::Dialect;
    use crate::models::{NewTaskRow, VersionedTaskRow};
    use crate::stored_time::StoredTime;
    use crate::testing::TestDatabase;

    #[derive(QueryableByName)]
    struct StoredVersion {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = BigInt)]
        version: i64,
        #[diesel(sql_type = Text)]
        app_id: String,
    }

    /// Rows are locked in the order the update processes them, which is the
    /// order it returns them. On a small table whose heap order differs from
    /// id order, PostgreSQL would otherwise hash join over a sequential scan
    /// and lock the rows in heap order.
    #[tokio::test]
    async fn update_locks_rows_in_id_order() {
        let Some(test) = TestDatabase::postgres().await else { return };
        let (_, project) = test.acme_project("BOARD").await;
        let mut conn = PgConnection::establish(&test.url).unwrap();
        conn.batch_execute(crate::db::PG_SESSION_SETTINGS).unwrap();
        let insert = format!(
            "INSERT INTO tasks (project_id, task_app_id, task_name, created_at, inserted_at, updated_at, insert_token) \
             SELECT {}, 'T' || i, 'name', now(), now(), now(), 0 FROM generate_series(1, 15) i",
            project.get()
        );
        conn.batch_execute(&insert).unwrap();
        // The new versions of the even ids follow the odd ones in the heap.
        conn.batch_execute("UPDATE tasks SET task_name = 'renamed' WHERE id % 2 = 0").unwrap();
        let stored: Vec<StoredVersion> =
            diesel::sql_query("SELECT id, xmin::text::bigint AS version, task_app_id AS app_id FROM tasks ORDER BY id")
                .load(&mut conn)
                .unwrap();

        let now = StoredTime(chrono::Utc::now().naive_utc());
        let rows: Vec<VersionedTaskRow<'_>> = stored
            .iter()
            .map(|task| VersionedTaskRow {
                id: task.id,
                version: task.version,
                row: NewTaskRow {
                    project_id: project.get(),
                    task_app_id: &task.app_id,
                    task_name: "updated",
                    task_url: None,
                    owner_id: None,
                    owner_name: None,
                    parent_task_id: None,
                    created_at: now,
                    inserted_at: now,
                    updated_at: now,
                    insert_token: 0,
                    source_updated_at: None,
                },
            })
            .collect();
        let returned = conn.transaction(|conn| conn.update_versioned_tasks(&rows)).unwrap();

        let returned_ids: Vec<i64> = returned.iter().map(|row| row.0).collect();
        let expected_ids: Vec<i64> = stored.iter().map(|task| task.id).collect();
        assert_eq!(returned_ids, expected_ids);
    }
}
