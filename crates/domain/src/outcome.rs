//! Result of processing one item: its action, the fields it changed and the
//! warnings it raised.

use std::fmt;

/// A stored field of a task, as `changed_fields` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldName {
    TaskName,
    TaskUrl,
    OwnerId,
    OwnerName,
    ParentTaskId,
    CreatedAt,
    SourceUpdatedAt,
}

impl FieldName {
    /// Every field, in the order `changed_fields` lists them.
    pub const ALL: [Self; 7] = [
        Self::TaskName,
        Self::TaskUrl,
        Self::OwnerId,
        Self::OwnerName,
        Self::ParentTaskId,
        Self::CreatedAt,
        Self::SourceUpdatedAt,
    ];

    /// Returns the field's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TaskName => "task_name",
            Self::TaskUrl => "task_url",
            Self::OwnerId => "owner_id",
            Self::OwnerName => "owner_name",
            Self::ParentTaskId => "parent_task_id",
            Self::CreatedAt => "created_at",
            Self::SourceUpdatedAt => "source_updated_at",
        }
    }
}

/// Action taken on one item, or in a dry run the action that would be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskAction {
    Created,
    Updated,
    /// Not applied: the stored task has a newer `source_updated_at`.
    SkippedStale,
}

impl TaskAction {
    /// Returns the action as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::SkippedStale => "skipped",
        }
    }

    /// Returns why the item was skipped, as the API spells it.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Self::SkippedStale => Some("stale"),
            Self::Created | Self::Updated => None,
        }
    }
}

/// Kind of a non-fatal remark about an item that was processed anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningCode {
    /// The item carried a field this API does not know; it was ignored.
    UnknownField,
    /// `created_at` lies in the future.
    CreatedAtInFuture,
    /// `owner_name` came without `owner_id`.
    OwnerNameWithoutOwnerId,
}

impl WarningCode {
    /// Returns the code as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownField => "unknown_field",
            Self::CreatedAtInFuture => "created_at_in_future",
            Self::OwnerNameWithoutOwnerId => "owner_name_without_owner_id",
        }
    }
}

/// A non-fatal remark about one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub code: WarningCode,
    pub message: String,
}

impl Warning {
    pub fn new(code: WarningCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}
