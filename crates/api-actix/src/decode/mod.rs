//! Decoding of JSON request bodies into the domain's raw inputs.
//!
//! Only the API's fields are kept: unknown fields are skipped without being
//! built in memory, and a key repeated in one object is rejected. Type errors
//! of single fields are kept per field (as `FieldInput::WrongType`), so that
//! the domain can list every failing field of every item at once.

mod json;

use domain::Rejection;
use domain::error::{DetailCode, ItemError};
use domain::ingest::check_batch_size;
use domain::input::{FieldInput, TaskInput};
use domain::project_upsert::ProjectInput;
use serde_json::Value;
use serde_json::error::Category;

use self::json::{List, RawProject, RawProjectBody, RawTask, RawTaskBody, Slot};
use crate::error::ApiError;

/// Names of the task fields the decoder reads; every other key is ignored.
/// Tests check it against the decoder and the OpenAPI document.
#[cfg(test)]
pub const TASK_FIELDS: [&str; 10] = [
    "project_id",
    "task_app_id",
    "task_name",
    "created_at",
    "task_url",
    "owner_id",
    "owner_name",
    "parent_task_id",
    "parent_task_app_id",
    "source_updated_at",
];

/// A project request: one object, or `{"projects": [...]}`.
pub enum ProjectBody {
    One(ProjectInput),
    Batch(Vec<ProjectInput>),
}

/// Decodes `{"tasks": [...]}` into raw task inputs.
///
/// # Errors
/// Returns [`ApiError::BadRequest`] for a body that is not JSON or repeats a
/// key, and [`ApiError::Rejected`] when the shape is wrong: not an object,
/// `tasks` missing or not an array, a batch size outside 1-1000, items that
/// are not objects.
pub fn task_batch(body: &[u8]) -> Result<Vec<TaskInput>, ApiError> {
    let root: RawTaskBody = parse_object(body, "{\"tasks\": [...]}")?;
    let slots = list_items(root.tasks, "tasks", "task")?;
    check_batch_size(slots.len()).map_err(ApiError::Rejected)?;
    objects_or_errors(slots, "tasks", "task").map(|items| items.into_iter().map(task_input).collect())
}

/// Decodes one project object, or a `{"projects": [...]}` batch.
///
/// # Errors
/// Returns [`ApiError::BadRequest`] for a body that is not JSON or repeats a
/// key, and [`ApiError::Rejected`] when its shape is wrong.
pub fn projects(body: &[u8]) -> Result<ProjectBody, ApiError> {
    let root: RawProjectBody =
        parse_object(body, "{\"project_app_id\": ..., \"name\": ..., \"organization_id\": ...}")?;
    if root.projects.is_none() {
        return Ok(ProjectBody::One(project_input(root.into_project())));
    }
    let slots = list_items(root.projects, "projects", "project")?;
    objects_or_errors(slots, "projects", "project")
        .map(|items| ProjectBody::Batch(items.into_iter().map(project_input).collect()))
}

/// Parses a body that must be one JSON object.
fn parse_object<T: serde::de::DeserializeOwned>(body: &[u8], example: &str) -> Result<T, ApiError> {
    let Some(first) = body.iter().find(|byte| !byte.is_ascii_whitespace()) else {
        return Err(ApiError::BadRequest(format!("the request body is empty; send a JSON object such as {example}")));
    };
    if *first != b'{' {
        serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|error| unreadable_body(&error, example))?;
        let found = match first {
            b'[' => "an array",
            b'"' => "a string",
            b't' | b'f' => "a boolean",
            b'n' => "null",
            b'-' | b'0'..=b'9' => "a number",
            _ => "another JSON value",
        };
        let message = format!("expected a JSON object such as {example}, got {found}");
        return Err(shape_error("body", DetailCode::InvalidType, message));
    }
    serde_json::from_slice(body).map_err(|error| unreadable_body(&error, example))
}

/// Builds the error for a body that could not be decoded, with what to send instead.
fn unreadable_body(error: &serde_json::Error, example: &str) -> ApiError {
    let message = match error.classify() {
        // Every field accepts any JSON value, so the one data error the
        // decoders raise is a key repeated in one object.
        Category::Data => format!("the request body repeats a key in one object ({error}); send each key once"),
        Category::Eof => {
            format!("the request body ends too early ({error}); send a whole JSON object such as {example}")
        }
        Category::Syntax | Category::Io => {
            format!("the request body is not valid JSON ({error}); send a JSON object such as {example}")
        }
    };
    ApiError::BadRequest(message)
}

/// Unwraps the list field of a body, or explains why it is unusable.
fn list_items<T>(list: Option<List<T>>, field: &str, noun: &str) -> Result<Vec<Slot<T>>, ApiError> {
    match list {
        None | Some(List::Null) => {
            Err(shape_error(field, DetailCode::Missing, format!("is required; send an array of {noun} objects")))
        }
        Some(List::Items(slots)) => Ok(slots),
        Some(List::Other(found)) => Err(shape_error(
            field,
            DetailCode::InvalidType,
            format!("expected an array of {noun} objects, got {found}"),
        )),
    }
}

/// Keeps the object items, or lists every item that is not an object.
fn objects_or_errors<T>(slots: Vec<Slot<T>>, field: &str, noun: &str) -> Result<Vec<T>, ApiError> {
    let mut items = Vec::with_capacity(slots.len());
    let mut errors = Vec::new();
    for (index, slot) in slots.into_iter().enumerate() {
        match slot {
            Slot::Object(item) => items.push(item),
            Slot::Other(found) => errors.push(ItemError {
                index: Some(index),
                field: format!("{field}[{index}]"),
                code: DetailCode::InvalidType,
                message: format!("expected a {noun} object, got {found}"),
            }),
        }
    }
    if errors.is_empty() { Ok(items) } else { Err(ApiError::Rejected(Rejection::new(errors))) }
}

fn shape_error(field: &str, code: DetailCode, message: String) -> ApiError {
    ApiError::Rejected(Rejection::new(vec![ItemError { index: None, field: field.to_owned(), code, message }]))
}

fn task_input(raw: RawTask) -> TaskInput {
    TaskInput {
        project_id: integer(raw.project_id),
        task_app_id: string(raw.task_app_id),
        task_name: string(raw.task_name),
        created_at: string(raw.created_at),
        task_url: string(raw.task_url),
        owner_id: string(raw.owner_id),
        owner_name: string(raw.owner_name),
        parent_task_id: integer(raw.parent_task_id),
        parent_task_app_id: string(raw.parent_task_app_id),
        source_updated_at: string(raw.source_updated_at),
        unknown_fields: raw.unknown_fields,
    }
}

fn project_input(raw: RawProject) -> ProjectInput {
    ProjectInput {
        project_app_id: string(raw.project_app_id),
        name: string(raw.name),
        organization_id: integer(raw.organization_id),
        active: flag(raw.active),
        created_at: string(raw.created_at),
    }
}

fn integer(value: Option<Value>) -> FieldInput<i64> {
    match value {
        None => FieldInput::Absent,
        Some(Value::Null) => FieldInput::Null,
        Some(Value::Number(number)) => match number.as_i64() {
            Some(integer) => FieldInput::Value(integer),
            None => FieldInput::WrongType(format!("expected a JSON integer between 1 and {}, got {number}", i64::MAX)),
        },
        Some(other) => FieldInput::WrongType(format!("expected a JSON integer such as 1, got {}", type_name(&other))),
    }
}

/// Reads a flag sent as `true`/`false` or `1`/`0`.
fn flag(value: Option<Value>) -> FieldInput<bool> {
    match value {
        None => FieldInput::Absent,
        Some(Value::Null) => FieldInput::Null,
        Some(Value::Bool(flag)) => FieldInput::Value(flag),
        Some(Value::Number(number)) if number.as_u64() == Some(1) => FieldInput::Value(true),
        Some(Value::Number(number)) if number.as_u64() == Some(0) => FieldInput::Value(false),
        Some(other) => FieldInput::WrongType(format!("expected 1, 0, true or false, got {}", type_name(&other))),
    }
}

fn string(value: Option<Value>) -> FieldInput<String> {
    match value {
        None => FieldInput::Absent,
        Some(Value::Null) => FieldInput::Null,
        Some(Value::String(text)) => FieldInput::Value(text),
        Some(other) => FieldInput::WrongType(format!("expected a JSON string, got {}", type_name(&other))),
    }
}

/// Describes a JSON value's type for error messages, quoting short scalars.
fn type_name(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => format!("the boolean {flag}"),
        Value::Number(number) => format!("the number {number}"),
        Value::String(text) if text.chars().count() <= 40 => format!("the string {text:?}"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

#[cfg(test)]
mod tests;
