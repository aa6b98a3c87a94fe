//! `schema.rs` and the migrations of each backend describe the same columns.

use diesel::prelude::*;
use infra_diesel::schema::{api_token_organizations, api_tokens, organizations, projects, tasks};
use infra_diesel::testing::TestDatabase;

/// Column names of a `SELECT` of all columns, as diesel renders it for PostgreSQL.
fn rendered_columns(sql: &str) -> Vec<String> {
    let list = sql.trim_start_matches("SELECT ").split(" FROM ").next().expect("a select list");
    list.split(", ").map(|column| column.rsplit('.').next().unwrap().trim_matches('"').to_owned()).collect()
}

/// Renders `SELECT <all columns> FROM <table>` for each table and lists the columns.
macro_rules! schema_columns {
    ($($table:ident),*) => {
        vec![$((
            stringify!($table),
            rendered_columns(&diesel::debug_query::<diesel::pg::Pg, _>(&$table::table.select($table::all_columns)).to_string()),
        )),*]
    };
}

fn schema_columns() -> Vec<(&'static str, Vec<String>)> {
    schema_columns!(organizations, projects, tasks, api_tokens, api_token_organizations)
}

async fn schema_matches_migrations(test: TestDatabase) {
    for (table, expected) in schema_columns() {
        assert!(!expected.is_empty(), "{table}");
        assert_eq!(test.table_columns(table), expected, "columns of {table}");
    }
}

infra_diesel::backend_tests!(schema_matches_migrations);
