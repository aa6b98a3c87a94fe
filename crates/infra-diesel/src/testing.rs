//! Fresh databases for tests: a SQLite file in a temporary folder, or a new
//! PostgreSQL database that is dropped when the handle is dropped.
//!
//! PostgreSQL tests read `LEANMOTE_TEST_DATABASE_URL` (default: the local
//! server as `postgres`). When no server responds they print a `SKIPPED` line,
//! unless `LEANMOTE_REQUIRE_POSTGRES=1`, in which case they fail.

use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::{Connection, PgConnection, RunQueryDsl};

use crate::{Database, PoolOptions};

/// Server used by PostgreSQL tests when `LEANMOTE_TEST_DATABASE_URL` is unset.
pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";

static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);

/// A migrated database that exists for the lifetime of this handle.
pub struct TestDatabase {
    pub database: Database,
    /// URL of the database, to hand to a server process.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// Another handle owns the database.
    None,
    Sqlite(#[expect(dead_code, reason = "held so the folder lives as long as the database")] tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
    },
}

impl TestDatabase {
    /// Creates a migrated SQLite database in a new temporary folder.
    ///
    /// # Panics
    /// Panics when the folder or the database cannot be created.
    pub async fn sqlite() -> Self {
        let folder = tempfile::tempdir().expect("create a temporary folder");
        let url = format!("sqlite://{}", folder.path().join("leanmote.sqlite3").display());
        let database = connect_and_migrate(&url).await;
        Self { database, url, cleanup: Cleanup::Sqlite(folder) }
    }

    /// Creates a migrated PostgreSQL database, or returns `None` after printing
    /// a SKIPPED line when no server responds and PostgreSQL is not required.
    ///
    /// # Panics
    /// Panics when the server is required but does not respond, or rejects the database creation.
    pub async fn postgres() -> Option<Self> {
        let admin_url =
            std::env::var("LEANMOTE_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_owned());
        let mut admin = match PgConnection::establish(&admin_url) {
            Ok(conn) => conn,
            Err(error) if postgres_required() => panic!("PostgreSQL is required but {admin_url} failed: {error}"),
            Err(error) => {
                eprintln!("SKIPPED: PostgreSQL test, no server at {admin_url} ({error})");
                return None;
            }
        };
        let name = format!(
            "leanmote_test_{}_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin).expect("create a test database");
        let url = with_database_name(&admin_url, &name);
        let database = connect_and_migrate(&url).await;
        Some(Self { database, url, cleanup: Cleanup::Postgres { admin_url, name } })
    }
}

impl TestDatabase {
    /// Opens a second handle on a database that another handle owns; dropping it removes nothing.
    ///
    /// # Panics
    /// Panics when the database cannot be opened.
    pub async fn attach(url: &str) -> Self {
        Self { database: connect_and_migrate(url).await, url: url.to_owned(), cleanup: Cleanup::None }
    }

    /// Returns the column names of `table` in the migrated database, in order.
    ///
    /// # Panics
    /// Panics when the query fails.
    pub fn table_columns(&self, table: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct Column {
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
        }
        let columns: Vec<Column> = match &self.database.pools {
            crate::db::Pools::Postgres(pool) => diesel::sql_query(
                "SELECT column_name::text AS name FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind::<diesel::sql_types::Text, _>(table)
            .load::<Column>(&mut **pool.get().expect("a connection")),
            crate::db::Pools::Sqlite(pool) => diesel::sql_query("SELECT name FROM pragma_table_info(?)")
                .bind::<diesel::sql_types::Text, _>(table)
                .load(&mut pool.get().expect("a connection")),
        }
        .expect("list the table's columns");
        columns.into_iter().map(|column| column.name).collect()
    }

    /// Returns the admin use cases on this database, with the system clock.
    pub fn admin(&self) -> domain::admin::Admin {
        let database = std::sync::Arc::new(self.database.clone());
        domain::admin::Admin {
            organizations: database.clone(),
            projects: database.clone(),
            tokens: database,
            clock: std::sync::Arc::new(domain::clock::SystemClock),
        }
    }

    /// Returns the task ingestion use case on this database, with the system clock.
    pub fn ingestion(&self) -> domain::ingest::TaskIngestion {
        domain::ingest::TaskIngestion::new(
            std::sync::Arc::new(self.database.clone()),
            std::sync::Arc::new(domain::clock::SystemClock),
        )
    }

    /// Creates the organization "Acme" and its project `app_id` (named the
    /// same), and returns their ids.
    ///
    /// # Panics
    /// Panics when storage fails or the project already exists.
    pub async fn acme_project(&self, app_id: &str) -> (domain::OrganizationId, domain::ProjectId) {
        let admin = self.admin();
        let organization = admin.create_organization("Acme").await.expect("create the organization");
        let spec = domain::admin::ProjectSpec {
            organization_id: organization.id,
            app_id: app_id.into(),
            name: app_id.into(),
            active: true,
            created_at: None,
        };
        let (project, action) = admin.upsert_project(spec).await.expect("create the project");
        assert_eq!(action, domain::task::Action::Created, "the project is new");
        (organization.id, project.id)
    }

    /// Returns the number of idempotency keys claimed or completed, so that a test
    /// can wait until a request has claimed its key.
    ///
    /// # Panics
    /// Panics when the query fails.
    pub fn idempotency_key_count(&self) -> i64 {
        use diesel::QueryDsl;
        use diesel::dsl::count_star;

        use crate::schema::idempotency_keys;
        let query = idempotency_keys::table.select(count_star());
        match &self.database.pools {
            crate::db::Pools::Postgres(pool) => query.first(&mut **pool.get().expect("a connection")),
            crate::db::Pools::Sqlite(pool) => query.first(&mut pool.get().expect("a connection")),
        }
        .expect("count idempotency keys")
    }
}

impl TestDatabase {
    /// Returns the number of distinct `insert_token`s among stored tasks. Rows
    /// created in one transaction share one, so this counts the transactions
    /// that created tasks.
    ///
    /// # Panics
    /// Panics when the query fails.
    pub fn task_insert_transactions(&self) -> i64 {
        use diesel::QueryDsl;
        use diesel::dsl::count;
        use diesel::prelude::AggregateExpressionMethods;

        use crate::schema::tasks;
        let query = tasks::table.select(count(tasks::insert_token).aggregate_distinct());
        match &self.database.pools {
            crate::db::Pools::Postgres(pool) => query.first(&mut **pool.get().expect("a connection")),
            crate::db::Pools::Sqlite(pool) => query.first(&mut pool.get().expect("a connection")),
        }
        .expect("count insert tokens")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            let dropped = PgConnection::establish(admin_url).and_then(|mut admin| {
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .map_err(|error| diesel::ConnectionError::BadConnection(error.to_string()))
            });
            if let Err(error) = dropped {
                eprintln!("warning: failed to drop test database {name}: {error}");
            }
        }
    }
}

/// Tells whether `LEANMOTE_REQUIRE_POSTGRES=1` is set.
pub fn postgres_required() -> bool {
    std::env::var("LEANMOTE_REQUIRE_POSTGRES").is_ok_and(|value| value == "1")
}

async fn connect_and_migrate(url: &str) -> Database {
    let options = PoolOptions { max_size: 4, ..PoolOptions::default() };
    let database = Database::connect(url, &options).unwrap_or_else(|error| panic!("connect to {url}: {error:#}"));
    database.migrate().await.expect("apply migrations");
    database
}

/// Replaces the database name in a `postgres://` URL, keeping its parameters.
fn with_database_name(url: &str, name: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |position| position + 3);
    let (base, query) = url.split_once('?').map_or((url, None), |(base, query)| (base, Some(query)));
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// Defines each listed async test function twice: `sqlite::NAME` and `postgres::NAME`.
/// Each function takes a fresh [`TestDatabase`].
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::testing::TestDatabase::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(database) = $crate::testing::TestDatabase::postgres().await {
                        super::$name(database).await;
                    }
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::with_database_name;

    #[test]
    fn database_name_replaced() {
        assert_eq!(
            with_database_name("postgres://u@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database_name("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
