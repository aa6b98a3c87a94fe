//! The parts of the service that the benchmark's floor shares, so that the floor
//! writes rows exactly as the service does: the task upsert statement, its
//! row and timestamp types, and the session settings.

use diesel::{PgConnection, QueryResult, SqliteConnection};

use crate::backend::Dialect;
pub use crate::db::{PG_SESSION_SETTINGS, sqlite_session_settings};
pub use crate::models::NewTaskRow;
pub use crate::stored_time::StoredTime;

/// Rows per upsert statement; larger batches are written in chunks of this size.
pub const UPSERT_CHUNK_ROWS: usize = crate::backend::statements::UPSERT_CHUNK_ROWS;

/// Upserts `rows` with the service's statement, returning
/// `(id, project_id, task_app_id, insert_token)` per row.
///
/// # Errors
/// Returns the database's error.
pub fn upsert_postgres(conn: &mut PgConnection, rows: &[NewTaskRow<'_>]) -> QueryResult<Vec<(i64, i64, String, i64)>> {
    conn.upsert_tasks(rows)
}

/// Like [`upsert_postgres`], on SQLite.
///
/// # Errors
/// Returns the database's error.
pub fn upsert_sqlite(
    conn: &mut SqliteConnection,
    rows: &[NewTaskRow<'_>],
) -> QueryResult<Vec<(i64, i64, String, i64)>> {
    conn.upsert_tasks(rows)
}
