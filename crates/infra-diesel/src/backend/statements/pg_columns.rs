//! The task fields that PostgreSQL's upsert and versioned update both bind,
//! each column as one array.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::AstPass;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};

use crate::models::NewTaskRow;
use crate::stored_time::StoredTime;

/// Columns `task_name, task_url, owner_id, owner_name, parent_task_id, created_at`.
#[derive(Debug, Default)]
pub(super) struct FieldColumns<'q> {
    task_name: Vec<&'q str>,
    task_url: Vec<Option<&'q str>>,
    owner_id: Vec<Option<&'q str>>,
    owner_name: Vec<Option<&'q str>>,
    parent_task_id: Vec<Option<i64>>,
    created_at: Vec<StoredTime>,
}

impl<'q> FieldColumns<'q> {
    /// Appends the fields of `row`.
    pub(super) fn push(&mut self, row: &NewTaskRow<'q>) {
        self.task_name.push(row.task_name);
        self.task_url.push(row.task_url);
        self.owner_id.push(row.owner_id);
        self.owner_name.push(row.owner_name);
        self.parent_task_id.push(row.parent_task_id);
        self.created_at.push(row.created_at);
    }

    /// Binds the six arrays in column order, separated by commas.
    pub(super) fn walk_ast<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<Array<Text>, _>(&self.task_name)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.task_url)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.owner_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.owner_name)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.parent_task_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.created_at)
    }
}
