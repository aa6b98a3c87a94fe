//! Errors shared by the use cases: per-item rejections and storage failures.

use std::fmt;

/// Boxed error from an adapter, kept for logs and never shown to clients.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The family of a rejection, in the order that decides a response's status.
///
/// When a batch fails for several reasons, the smallest class wins:
/// invalid input, then forbidden, then not found, then invalid reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorClass {
    /// A field is missing, of the wrong type or breaks a value rule (400).
    InvalidInput,
    /// The caller's token does not cover the organization (403).
    Forbidden,
    /// A project or parent task does not exist for this caller (404).
    NotFound,
    /// A parent reference is well formed but breaks a tree rule (400).
    InvalidReference,
}

/// Machine-readable reason of one failing field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetailCode {
    Missing,
    InvalidType,
    Blank,
    TooLong,
    ContainsNul,
    ControlCharacter,
    InvalidUrl,
    InvalidTimestamp,
    NotPositive,
    InvalidValue,
    BatchSize,
    ProjectNotFound,
    OrganizationForbidden,
    OrganizationNotFound,
    ParentNotFound,
    TaskNotFound,
    ParentInOtherProject,
    ParentCycle,
    ParentConflict,
}

impl DetailCode {
    /// Returns the code as it appears in the API's `details[].code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::InvalidType => "invalid_type",
            Self::Blank => "blank",
            Self::TooLong => "too_long",
            Self::ContainsNul => "contains_nul",
            Self::ControlCharacter => "control_character",
            Self::InvalidUrl => "invalid_url",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::NotPositive => "not_positive",
            Self::InvalidValue => "invalid_value",
            Self::BatchSize => "batch_size",
            Self::ProjectNotFound => "project_not_found",
            Self::OrganizationForbidden => "organization_forbidden",
            Self::OrganizationNotFound => "organization_not_found",
            Self::ParentNotFound => "parent_not_found",
            Self::TaskNotFound => "task_not_found",
            Self::ParentInOtherProject => "parent_in_other_project",
            Self::ParentCycle => "parent_cycle",
            Self::ParentConflict => "parent_conflict",
        }
    }

    /// Returns the class that this code counts toward.
    pub fn class(self) -> ErrorClass {
        match self {
            Self::OrganizationForbidden => ErrorClass::Forbidden,
            Self::ProjectNotFound | Self::OrganizationNotFound | Self::ParentNotFound | Self::TaskNotFound => {
                ErrorClass::NotFound
            }
            Self::ParentInOtherProject | Self::ParentCycle | Self::ParentConflict => ErrorClass::InvalidReference,
            _ => ErrorClass::InvalidInput,
        }
    }
}

impl fmt::Display for DetailCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failing field of one item, as listed in an error's `details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    /// Position of the item in the request, when the error concerns an item.
    pub index: Option<usize>,
    /// Path of the field, such as `tasks[3].created_at`.
    pub field: String,
    pub code: DetailCode,
    /// Sentence for the client: what is wrong and how to fix it.
    pub message: String,
}

impl ItemError {
    /// Builds an error on field `name` of item `index` in the list `list`.
    pub fn at(list: &str, index: usize, name: &str, code: DetailCode, message: impl Into<String>) -> Self {
        Self { index: Some(index), field: format!("{list}[{index}].{name}"), code, message: message.into() }
    }
}

/// A request rejected as a whole, with every failing field listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub details: Vec<ItemError>,
}

impl Rejection {
    /// Builds a rejection; `details` must not be empty.
    pub fn new(mut details: Vec<ItemError>) -> Self {
        details.sort_by_key(|detail| detail.index);
        Self { details }
    }

    /// Returns the class that decides the response status.
    pub fn class(&self) -> ErrorClass {
        self.details.iter().map(|detail| detail.code.class()).min().unwrap_or(ErrorClass::InvalidInput)
    }

    /// Returns a one-line summary naming how many items failed.
    pub fn summary(&self) -> String {
        let mut items: Vec<usize> = self.details.iter().filter_map(|detail| detail.index).collect();
        items.dedup();
        match (items.len(), self.class()) {
            (0, _) => "The request was rejected. See error.details".to_owned(),
            (count, ErrorClass::InvalidInput) => format!("{count} item(s) have invalid fields. Nothing was written."),
            (count, ErrorClass::Forbidden) => {
                format!("{count} item(s) refer to an organization outside the token's scope. Nothing was written.")
            }
            (count, ErrorClass::NotFound) => {
                format!("{count} item(s) refer to a project or parent task that was not found. Nothing was written.")
            }
            (count, ErrorClass::InvalidReference) => {
                format!("{count} item(s) have an invalid parent link. Nothing was written.")
            }
        }
    }
}

/// Failure of a storage adapter. Its cause is logged, never sent to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or the pool is exhausted; retrying later may work.
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    /// Any other failure.
    #[error("storage failed")]
    Internal(#[source] BoxError),
}

impl StoreError {
    /// Wraps any error as an internal storage failure.
    pub fn internal(error: impl Into<BoxError>) -> Self {
        Self::Internal(error.into())
    }
}
