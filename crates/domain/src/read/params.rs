//! Query parameters of the listings, as raw strings, and their rules.

use crate::auth::Scope;
use crate::error::{DetailCode, ItemError, Rejection};
use crate::ids::{OrganizationId, ProjectId, TaskId};
use crate::timestamp::Timestamp;

use super::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, ProjectFilter, TaskFilter};

/// Version prefix of cursors, so their format can change without breaking old ones silently.
const CURSOR_PREFIX: &str = "c1";

/// Query parameters of `GET /api/v1/tasks`, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskListParams {
    pub project_id: Option<String>,
    pub updated_since: Option<String>,
    pub parent_task_id: Option<String>,
    pub task_app_id: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
    /// Names of the parameters above that were given more than once.
    pub repeated: Vec<String>,
}

/// Query parameters of `GET /api/v1/projects`, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectListParams {
    pub organization_id: Option<String>,
    pub active: Option<String>,
    /// Names of the parameters above that were given more than once.
    pub repeated: Vec<String>,
}

/// Encodes the keyset position after `id` as an opaque cursor.
pub fn encode_cursor(id: TaskId) -> String {
    format!("{CURSOR_PREFIX}{:016x}", id.get())
}

/// Decodes a cursor made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Option<TaskId> {
    let digits = cursor.strip_prefix(CURSOR_PREFIX)?;
    if digits.len() != 16 {
        return None;
    }
    let id = i64::from_str_radix(digits, 16).ok()?;
    (id > 0).then_some(TaskId(id))
}

/// Builds the error for a query parameter given more than once.
pub fn repeated_parameter_error(name: &str) -> ItemError {
    let message = "is given more than once; send it once".to_owned();
    ItemError { index: None, field: name.to_owned(), code: DetailCode::InvalidValue, message }
}

/// Collects the errors of query parameters.
#[derive(Default)]
struct ParamCheck {
    errors: Vec<ItemError>,
}

impl ParamCheck {
    /// Starts with the errors of the repeated parameters.
    fn new(repeated: &[String]) -> Self {
        Self { errors: repeated.iter().map(|name| repeated_parameter_error(name)).collect() }
    }

    fn fail(&mut self, field: &str, code: DetailCode, message: String) {
        self.errors.push(ItemError { index: None, field: field.to_owned(), code, message });
    }

    fn positive_id(&mut self, field: &str, value: Option<&str>) -> Option<i64> {
        let text = value?;
        match text.parse::<i64>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                self.fail(field, DetailCode::InvalidType, format!("expected a positive integer, got {text:?}"));
                None
            }
        }
    }

    fn finish<T>(self, value: T) -> Result<T, Rejection> {
        if self.errors.is_empty() { Ok(value) } else { Err(Rejection::new(self.errors)) }
    }
}

impl TaskListParams {
    /// Checks the parameters and builds the filter.
    ///
    /// # Errors
    /// Returns a rejection listing every invalid parameter.
    pub fn validate(self) -> Result<TaskFilter, Rejection> {
        let mut check = ParamCheck::new(&self.repeated);
        if self.project_id.is_none() {
            check.fail(
                "project_id",
                DetailCode::Missing,
                "is required; list the tasks of one project at a time".to_owned(),
            );
        }
        let project_id = check.positive_id("project_id", self.project_id.as_deref());
        let parent_id = check.positive_id("parent_task_id", self.parent_task_id.as_deref());
        let updated_since = self.updated_since.as_deref().and_then(|text| {
            Timestamp::parse(text)
                .map_err(|error| check.fail("updated_since", DetailCode::InvalidTimestamp, error.to_string()))
                .ok()
        });
        let limit = match self.limit.as_deref() {
            None => DEFAULT_PAGE_LIMIT,
            Some(text) => match text.parse::<u32>() {
                Ok(limit) if (1..=MAX_PAGE_LIMIT).contains(&limit) => limit,
                _ => {
                    let message = format!("expected an integer between 1 and {MAX_PAGE_LIMIT}, got {text:?}");
                    check.fail("limit", DetailCode::InvalidValue, message);
                    DEFAULT_PAGE_LIMIT
                }
            },
        };
        let after = self.cursor.as_deref().and_then(|cursor| {
            let decoded = decode_cursor(cursor);
            if decoded.is_none() {
                let message = "is not a cursor returned by this API; pass meta.next_cursor unchanged".to_owned();
                check.fail("cursor", DetailCode::InvalidValue, message);
            }
            decoded
        });
        let filter = project_id.map(|project_id| TaskFilter {
            project_id: ProjectId(project_id),
            after,
            limit,
            updated_since,
            parent_id: parent_id.map(TaskId),
            app_id: self.task_app_id,
        });
        check.finish(filter).map(|filter| filter.expect("a valid project_id when there is no error"))
    }
}

impl ProjectListParams {
    /// Checks the parameters and narrows the caller's scope to the requested organization.
    ///
    /// # Errors
    /// Returns a rejection listing every invalid parameter.
    pub fn validate(self, scope: &Scope) -> Result<ProjectFilter, Rejection> {
        let mut check = ParamCheck::new(&self.repeated);
        let organization = check.positive_id("organization_id", self.organization_id.as_deref()).map(OrganizationId);
        let active = match self.active.as_deref() {
            None => None,
            Some("1" | "true") => Some(true),
            Some("0" | "false") => Some(false),
            Some(text) => {
                check.fail("active", DetailCode::InvalidValue, format!("expected 1, 0, true or false, got {text:?}"));
                None
            }
        };
        let organizations =
            scope.organizations().filter(|id| organization.is_none_or(|wanted| wanted == *id)).collect();
        check.finish(ProjectFilter { organizations, active })
    }
}
