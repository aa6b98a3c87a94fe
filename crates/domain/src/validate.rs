//! Input rules: turn a decoded [`TaskInput`] into a [`TaskCommand`].
//!
//! Every failing field of an item is reported, not only the first.

use crate::error::{DetailCode, ItemError};
use crate::ids::{ProjectId, TaskId};
use crate::input::{FieldInput, TaskInput};
use crate::outcome::{Warning, WarningCode};
use crate::task::{OwnerId, OwnerName, Patch, TaskAppId, TaskCommand, TaskKey, TaskName, TaskUrl};
use crate::text::TextViolation;
use crate::timestamp::Timestamp;

/// Name of the request body's list of items, used in error paths.
pub const TASKS_FIELD: &str = "tasks";

/// Collects the errors of one item while its fields are checked.
struct ItemCheck {
    index: usize,
    errors: Vec<ItemError>,
}

impl ItemCheck {
    fn fail(&mut self, field: &str, code: DetailCode, message: impl Into<String>) {
        self.errors.push(ItemError::at(TASKS_FIELD, self.index, field, code, message));
    }

    /// Unwraps a required field, recording why it is unusable.
    fn required<T>(&mut self, field: &str, input: FieldInput<T>, expected: &str) -> Option<T> {
        match input {
            FieldInput::Value(value) => Some(value),
            FieldInput::Absent => {
                self.fail(field, DetailCode::Missing, format!("is required; send {expected}"));
                None
            }
            FieldInput::Null => {
                self.fail(field, DetailCode::Missing, format!("must not be null; send {expected}"));
                None
            }
            FieldInput::WrongType(message) => {
                self.fail(field, DetailCode::InvalidType, message);
                None
            }
        }
    }

    /// Converts an optional field into a patch, checking a present value with `parse`.
    fn optional<T, U>(
        &mut self,
        field: &str,
        input: FieldInput<T>,
        parse: impl FnOnce(T) -> Result<U, TextViolation>,
    ) -> Option<Patch<U>> {
        match input {
            FieldInput::Absent => Some(Patch::Keep),
            FieldInput::Null => Some(Patch::Clear),
            FieldInput::WrongType(message) => {
                self.fail(field, DetailCode::InvalidType, message);
                None
            }
            FieldInput::Value(value) => match parse(value) {
                Ok(parsed) => Some(Patch::Set(parsed)),
                Err(violation) => {
                    self.fail(field, violation.code, violation.message);
                    None
                }
            },
        }
    }

    /// Records a text violation of a required field.
    fn text<U>(&mut self, field: &str, result: Result<U, TextViolation>) -> Option<U> {
        result.map_err(|violation| self.fail(field, violation.code, violation.message)).ok()
    }
}

/// Checks that an id is positive, as every Leanmote id is.
fn positive_id(value: i64) -> Result<i64, TextViolation> {
    if value > 0 {
        Ok(value)
    } else {
        Err(TextViolation {
            code: DetailCode::NotPositive,
            message: format!("must be a positive integer, got {value}"),
        })
    }
}

/// Applies the input rules to item `index` of a batch.
///
/// # Errors
/// Returns one [`ItemError`] per failing field, in field order.
pub fn validate_task(index: usize, input: TaskInput) -> Result<TaskCommand, Vec<ItemError>> {
    let mut check = ItemCheck { index, errors: Vec::new() };

    let project_id = check
        .required("project_id", input.project_id, "the project's id as a positive integer")
        .and_then(|value| check.text("project_id", positive_id(value)));
    let app_id = check
        .required("task_app_id", input.task_app_id, "the task's id in your tool as a string")
        .and_then(|value| check.text("task_app_id", TaskAppId::parse(value)));
    let name = check
        .required("task_name", input.task_name, "the task's title as a string")
        .and_then(|value| check.text("task_name", TaskName::parse(value)));
    let created_at = check
        .required("created_at", input.created_at, "a UTC timestamp such as \"2024-01-20 09:00:00\"")
        .and_then(|value| check.text("created_at", timestamp(&value)));
    let url = check.optional("task_url", input.task_url, TaskUrl::parse);
    let owner_id = check.optional("owner_id", input.owner_id, OwnerId::parse);
    let owner_name = check.optional("owner_name", input.owner_name, OwnerName::parse);
    let parent_id = check.optional("parent_task_id", input.parent_task_id, |value| positive_id(value).map(TaskId));
    let parent_app_id = check.optional("parent_task_app_id", input.parent_task_app_id, TaskAppId::parse);
    let source_updated_at =
        check.optional("source_updated_at", input.source_updated_at, |value: String| timestamp(&value));

    let patches = (url, owner_id, owner_name, parent_id, parent_app_id, source_updated_at);
    let (Some(project_id), Some(app_id), Some(name), Some(created_at)) = (project_id, app_id, name, created_at) else {
        return Err(check.errors);
    };
    let (Some(url), Some(owner_id), Some(owner_name), Some(parent_id), Some(parent_app_id), Some(source_updated_at)) =
        patches
    else {
        return Err(check.errors);
    };
    if !check.errors.is_empty() {
        return Err(check.errors);
    }
    let warnings = input_warnings(&input.unknown_fields, &owner_id, &owner_name);
    Ok(TaskCommand {
        key: TaskKey { project_id: ProjectId(project_id), app_id },
        name,
        created_at,
        url,
        owner_id,
        owner_name,
        parent_id,
        parent_app_id,
        source_updated_at,
        warnings,
    })
}

fn timestamp(value: &str) -> Result<Timestamp, TextViolation> {
    Timestamp::parse(value)
        .map_err(|error| TextViolation { code: DetailCode::InvalidTimestamp, message: error.to_string() })
}

/// Remarks that do not stop the item: fields ignored, and an owner name with no owner id.
fn input_warnings(unknown_fields: &[String], owner_id: &Patch<OwnerId>, owner_name: &Patch<OwnerName>) -> Vec<Warning> {
    let mut warnings: Vec<Warning> = unknown_fields
        .iter()
        .map(|field| {
            let message = format!("field {field:?} is not part of this API and was ignored; check its spelling");
            Warning::new(WarningCode::UnknownField, message)
        })
        .collect();
    if matches!(owner_name, Patch::Set(_)) && !matches!(owner_id, Patch::Set(_)) {
        let message =
            "owner_name was sent without owner_id; send owner_id too, so the owner can be told apart from namesakes";
        warnings.push(Warning::new(WarningCode::OwnerNameWithoutOwnerId, message));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_input() -> TaskInput {
        TaskInput {
            project_id: FieldInput::Value(1),
            task_app_id: FieldInput::Value("TASK-001".into()),
            task_name: FieldInput::Value("Implement OAuth2 Authentication".into()),
            created_at: FieldInput::Value("2024-01-20 09:00:00".into()),
            ..TaskInput::default()
        }
    }

    fn fields_of(errors: &[ItemError]) -> Vec<(&str, DetailCode)> {
        errors.iter().map(|error| (error.field.as_str(), error.code)).collect()
    }

    #[test]
    fn valid_item_becomes_command() {
        let command = validate_task(0, valid_input()).unwrap();
        assert_eq!(command.key.project_id, ProjectId(1));
        assert_eq!(command.key.app_id.as_str(), "TASK-001");
        assert_eq!(command.url, Patch::Keep);
        assert_eq!(command.parent_id, Patch::Keep);
    }

    #[test]
    fn missing_required_fields_all_listed() {
        let errors = validate_task(2, TaskInput::default()).unwrap_err();
        assert_eq!(
            fields_of(&errors),
            vec![
                ("tasks[2].project_id", DetailCode::Missing),
                ("tasks[2].task_app_id", DetailCode::Missing),
                ("tasks[2].task_name", DetailCode::Missing),
                ("tasks[2].created_at", DetailCode::Missing),
            ]
        );
    }

    #[test]
    fn wrong_types_reported() {
        let input = TaskInput {
            project_id: FieldInput::WrongType("expected an integer, got a string".into()),
            parent_task_id: FieldInput::WrongType("expected an integer, got 1.5".into()),
            ..valid_input()
        };
        let errors = validate_task(0, input).unwrap_err();
        assert_eq!(
            fields_of(&errors),
            vec![
                ("tasks[0].project_id", DetailCode::InvalidType),
                ("tasks[0].parent_task_id", DetailCode::InvalidType)
            ]
        );
    }

    #[test]
    fn ids_must_be_positive() {
        let input =
            TaskInput { project_id: FieldInput::Value(0), parent_task_id: FieldInput::Value(-3), ..valid_input() };
        let errors = validate_task(0, input).unwrap_err();
        assert_eq!(
            fields_of(&errors),
            vec![
                ("tasks[0].project_id", DetailCode::NotPositive),
                ("tasks[0].parent_task_id", DetailCode::NotPositive)
            ]
        );
    }

    #[test]
    fn value_rules_reported_per_field() {
        let input = TaskInput {
            task_app_id: FieldInput::Value("  ".into()),
            task_name: FieldInput::Value("x".repeat(1025)),
            created_at: FieldInput::Value("2024-02-30 10:00:00".into()),
            task_url: FieldInput::Value("ftp://x".into()),
            owner_id: FieldInput::Value("a\nb".into()),
            owner_name: FieldInput::Value("nul\0".into()),
            ..valid_input()
        };
        let errors = validate_task(0, input).unwrap_err();
        assert_eq!(
            fields_of(&errors),
            vec![
                ("tasks[0].task_app_id", DetailCode::Blank),
                ("tasks[0].task_name", DetailCode::TooLong),
                ("tasks[0].created_at", DetailCode::InvalidTimestamp),
                ("tasks[0].task_url", DetailCode::InvalidUrl),
                ("tasks[0].owner_id", DetailCode::ControlCharacter),
                ("tasks[0].owner_name", DetailCode::ContainsNul),
            ]
        );
    }

    #[test]
    fn null_clears_optional_fields() {
        let input = TaskInput { task_url: FieldInput::Null, parent_task_id: FieldInput::Null, ..valid_input() };
        let command = validate_task(0, input).unwrap();
        assert_eq!(command.url, Patch::Clear);
        assert_eq!(command.parent_id, Patch::Clear);
    }

    #[test]
    fn null_required_field_rejected() {
        let input = TaskInput { task_name: FieldInput::Null, ..valid_input() };
        let errors = validate_task(0, input).unwrap_err();
        assert_eq!(fields_of(&errors), vec![("tasks[0].task_name", DetailCode::Missing)]);
    }
}
