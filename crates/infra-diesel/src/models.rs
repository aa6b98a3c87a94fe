//! Row structs of the database, kept apart from the domain types.
//! Conversions happen here, at the adapter's edge.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};
use domain::task::{OwnerId, OwnerName, StoredTask, TaskAppId, TaskFields, TaskKey, TaskName, TaskUrl};
use domain::{ProjectId, StoreError, TaskId, Timestamp};

use crate::schema::{projects, tasks};
use crate::stored_time::{MaybeStoredTime, StoredTime};

/// A task row to insert or to upsert over an existing one (see `backend::statements`).
#[derive(Debug, Clone)]
pub struct NewTaskRow<'a> {
    pub project_id: i64,
    pub task_app_id: &'a str,
    pub task_name: &'a str,
    pub task_url: Option<&'a str>,
    pub owner_id: Option<&'a str>,
    pub owner_name: Option<&'a str>,
    pub parent_task_id: Option<i64>,
    pub created_at: StoredTime,
    pub inserted_at: StoredTime,
    pub updated_at: StoredTime,
    pub insert_token: i64,
    pub source_updated_at: Option<StoredTime>,
}

/// A stored task row to update, if it still has the version read before.
#[derive(Debug)]
pub struct VersionedTaskRow<'a> {
    pub id: i64,
    /// PostgreSQL's `xmin` of the row as read (see `backend::statements`).
    pub version: i64,
    pub row: NewTaskRow<'a>,
}

/// A whole task row as stored.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = tasks, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct TaskRow {
    pub id: i64,
    pub project_id: i64,
    pub task_app_id: String,
    pub task_name: String,
    pub task_url: Option<String>,
    pub owner_id: Option<String>,
    pub owner_name: Option<String>,
    pub parent_task_id: Option<i64>,
    #[diesel(deserialize_as = StoredTime)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = StoredTime)]
    pub inserted_at: NaiveDateTime,
    #[diesel(deserialize_as = StoredTime)]
    pub updated_at: NaiveDateTime,
    #[diesel(deserialize_as = MaybeStoredTime)]
    pub source_updated_at: Option<NaiveDateTime>,
}

impl TaskRow {
    /// Converts to the domain type, checking the stored text against the rules again.
    ///
    /// # Errors
    /// Returns [`StoreError::Internal`] when a stored value breaks a rule,
    /// which only a write that bypassed the API can cause.
    pub fn into_domain(self) -> Result<StoredTask, StoreError> {
        let id = self.id;
        let corrupt = |field: &str, message: String| {
            StoreError::internal(format!("stored task {id} has an invalid {field}: {message}"))
        };
        let app_id = TaskAppId::parse(self.task_app_id).map_err(|error| corrupt("task_app_id", error.message))?;
        let name = TaskName::parse(self.task_name).map_err(|error| corrupt("task_name", error.message))?;
        let url =
            self.task_url.map(TaskUrl::from_stored).transpose().map_err(|error| corrupt("task_url", error.message))?;
        let owner_id =
            self.owner_id.map(OwnerId::parse).transpose().map_err(|error| corrupt("owner_id", error.message))?;
        let owner_name =
            self.owner_name.map(OwnerName::parse).transpose().map_err(|error| corrupt("owner_name", error.message))?;
        Ok(StoredTask {
            id: TaskId(id),
            key: TaskKey { project_id: ProjectId(self.project_id), app_id },
            fields: TaskFields {
                name,
                url,
                owner_id,
                owner_name,
                created_at: Timestamp::from_utc(self.created_at),
                source_updated_at: self.source_updated_at.map(Timestamp::from_utc),
            },
            parent_id: self.parent_task_id.map(TaskId),
            inserted_at: Timestamp::from_utc(self.inserted_at),
            updated_at: Timestamp::from_utc(self.updated_at),
        })
    }
}

/// A node of the task tree, read by the recursive ancestor query.
#[derive(Debug, QueryableByName)]
pub struct NodeRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub project_id: i64,
    #[diesel(sql_type = BigInt)]
    pub organization_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub parent_task_id: Option<i64>,
}

/// A whole project row as stored.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = projects)]
pub struct ProjectRow {
    pub id: i64,
    pub organization_id: i64,
    pub project_app_id: String,
    pub name: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub inserted_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl From<ProjectRow> for domain::project::Project {
    fn from(row: ProjectRow) -> Self {
        Self {
            id: ProjectId(row.id),
            organization_id: domain::OrganizationId(row.organization_id),
            app_id: row.project_app_id,
            name: row.name,
            active: row.active,
            created_at: Timestamp::from_utc(row.created_at),
            inserted_at: Timestamp::from_utc(row.inserted_at),
            updated_at: Timestamp::from_utc(row.updated_at),
        }
    }
}

/// A project row to insert or to upsert over an existing one.
#[derive(Debug, Insertable)]
#[diesel(table_name = projects)]
pub struct NewProjectRow<'a> {
    pub organization_id: i64,
    pub project_app_id: &'a str,
    pub name: &'a str,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub inserted_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}
