//! Direct access to the benchmark's databases: row counts, versions, and the
//! clean-up that gives every measurement the same starting state.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

/// Vacuums and analyzes `tasks` and writes a checkpoint, before each
/// measurement of the floor and of the service alike. Without it, the
/// service's updates run on a table and index full of the dead rows that its
/// floor's updates just left. A checkpoint, started by the WAL of earlier
/// cases, could also land inside any one measurement.
pub fn reset_postgres(url: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::establish(url)?;
    conn.batch_execute("VACUUM (ANALYZE) tasks")?;
    // CHECKPOINT needs a superuser or the `pg_checkpoint` role. Without
    // either, the vacuum still removes the dead rows.
    if let Err(error) = conn.batch_execute("CHECKPOINT") {
        println!("   note: CHECKPOINT failed ({error}); measuring without it");
    }
    Ok(())
}

/// Copies SQLite's write-ahead log into the database file and empties it,
/// the counterpart of [`reset_postgres`].
pub fn reset_sqlite(path: &str) -> anyhow::Result<()> {
    let mut conn = SqliteConnection::establish(path)?;
    conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(())
}

#[derive(QueryableByName)]
struct Counts {
    #[diesel(sql_type = BigInt)]
    row_count: i64,
    #[diesel(sql_type = BigInt)]
    parent_count: i64,
}

const COUNT_QUERY: &str =
    "SELECT COUNT(*) AS row_count, COUNT(parent_task_id) AS parent_count FROM tasks WHERE project_id = $1";

pub fn count_sqlite(path: &str, project_id: i64) -> anyhow::Result<(usize, usize)> {
    let mut conn = SqliteConnection::establish(path)?;
    let counts: Counts =
        diesel::sql_query(COUNT_QUERY.replace("$1", "?")).bind::<BigInt, _>(project_id).get_result(&mut conn)?;
    Ok((usize::try_from(counts.row_count)?, usize::try_from(counts.parent_count)?))
}

pub fn count_postgres(url: &str, project_id: i64) -> anyhow::Result<(usize, usize)> {
    let mut conn = PgConnection::establish(url)?;
    let counts: Counts = diesel::sql_query(COUNT_QUERY).bind::<BigInt, _>(project_id).get_result(&mut conn)?;
    Ok((usize::try_from(counts.row_count)?, usize::try_from(counts.parent_count)?))
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

pub fn sqlite_version(path: &str) -> anyhow::Result<String> {
    let mut conn = SqliteConnection::establish(path)?;
    let version: Version = diesel::sql_query("SELECT sqlite_version() AS version").get_result(&mut conn)?;
    Ok(version.version)
}

pub fn postgres_version(url: &str) -> anyhow::Result<String> {
    let mut conn = PgConnection::establish(url)?;
    let version: Version =
        diesel::sql_query("SELECT current_setting('server_version') AS version").get_result(&mut conn)?;
    Ok(version.version)
}
