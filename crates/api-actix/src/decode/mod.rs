//! Decoding of request bodies into the domain's raw inputs.
//!
//! Type errors of single fields are kept per field (as `FieldInput::WrongType`)
//! so that the domain can list every failing field of every item at once.

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Payload};
use domain::Rejection;
use domain::error::{DetailCode, ItemError};
use domain::ingest::check_batch_size;
use domain::input::{FieldInput, TaskInput};
use domain::project_upsert::ProjectInput;
use futures_util::StreamExt;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Accepts a missing `Content-Type` or any form of `application/json`.
///
/// # Errors
/// Returns [`ApiError::UnsupportedMediaType`] for any other explicit type.
pub fn require_json(request: &HttpRequest) -> Result<(), ApiError> {
    let Some(value) = request.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or_default();
    let essence = text.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(text.to_owned()))
    }
}

/// Reads the whole body, stopping as soon as it passes `limit` bytes.
///
/// # Errors
/// Returns [`ApiError::PayloadTooLarge`] past the limit, and
/// [`ApiError::BadRequest`] when the client breaks off the body.
pub async fn read_body(request: &HttpRequest, mut payload: Payload, limit: usize) -> Result<Bytes, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| ApiError::BadRequest(format!("failed to read the request body: {error}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Decodes `{"tasks": [...]}` into raw task inputs.
///
/// # Errors
/// Returns [`ApiError::BadRequest`] for a body that is not JSON, and
/// [`ApiError::Rejected`] when the shape is wrong: not an object, `tasks`
/// missing or not an array, a batch size outside 1-1000, items that are not objects.
pub fn task_batch(body: &[u8]) -> Result<Vec<TaskInput>, ApiError> {
    let value = json_body(body, "{\"tasks\": [...]}")?;
    let Value::Object(mut root) = value else {
        return Err(shape_error(
            "body",
            DetailCode::InvalidType,
            format!("expected a JSON object with a \"tasks\" array, got {}", type_name(&value)),
        ));
    };
    let items = match root.remove("tasks") {
        None | Some(Value::Null) => {
            return Err(shape_error(
                "tasks",
                DetailCode::Missing,
                "is required; send an array of task objects".to_owned(),
            ));
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(shape_error(
                "tasks",
                DetailCode::InvalidType,
                format!("expected an array of task objects, got {}", type_name(&other)),
            ));
        }
    };
    check_batch_size(items.len()).map_err(ApiError::Rejected)?;

    let mut inputs = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match item {
            Value::Object(fields) => inputs.push(task_input(fields)),
            other => errors.push(ItemError {
                index: Some(index),
                field: format!("tasks[{index}]"),
                code: DetailCode::InvalidType,
                message: format!("expected a task object, got {}", type_name(&other)),
            }),
        }
    }
    if errors.is_empty() { Ok(inputs) } else { Err(ApiError::Rejected(Rejection::new(errors))) }
}

/// A project request: one object, or `{"projects": [...]}`.
pub enum ProjectBody {
    One(ProjectInput),
    Batch(Vec<ProjectInput>),
}

/// Decodes one project object, or a `{"projects": [...]}` batch.
///
/// # Errors
/// Returns [`ApiError::BadRequest`] for a body that is not JSON, and
/// [`ApiError::Rejected`] when its shape is wrong.
pub fn projects(body: &[u8]) -> Result<ProjectBody, ApiError> {
    let example = "{\"project_app_id\": ..., \"name\": ..., \"organization_id\": ...}";
    let Value::Object(mut fields) = json_body(body, example)? else {
        let message = "expected a JSON object describing one project, or {\"projects\": [...]}".to_owned();
        return Err(shape_error("body", DetailCode::InvalidType, message));
    };
    let items = match fields.remove("projects") {
        None => return Ok(ProjectBody::One(project(fields))),
        Some(Value::Array(items)) => items,
        Some(other) => {
            let message = format!("expected an array of project objects, got {}", type_name(&other));
            return Err(shape_error("projects", DetailCode::InvalidType, message));
        }
    };
    let mut inputs = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match item {
            Value::Object(fields) => inputs.push(project(fields)),
            other => errors.push(ItemError {
                index: Some(index),
                field: format!("projects[{index}]"),
                code: DetailCode::InvalidType,
                message: format!("expected a project object, got {}", type_name(&other)),
            }),
        }
    }
    if errors.is_empty() { Ok(ProjectBody::Batch(inputs)) } else { Err(ApiError::Rejected(Rejection::new(errors))) }
}

fn project(mut fields: Map<String, Value>) -> ProjectInput {
    ProjectInput {
        project_app_id: string(fields.remove("project_app_id")),
        name: string(fields.remove("name")),
        organization_id: integer(fields.remove("organization_id")),
        active: flag(fields.remove("active")),
        created_at: string(fields.remove("created_at")),
    }
}

/// Parses a non-empty JSON body; `example` shows the expected shape in the error.
fn json_body(body: &[u8], example: &str) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(format!("the request body is empty; send a JSON object such as {example}")));
    }
    serde_json::from_slice(body)
        .map_err(|error| ApiError::BadRequest(format!("the request body is not valid JSON: {error}")))
}

fn shape_error(field: &str, code: DetailCode, message: String) -> ApiError {
    ApiError::Rejected(Rejection::new(vec![ItemError { index: None, field: field.to_owned(), code, message }]))
}

fn task_input(mut fields: Map<String, Value>) -> TaskInput {
    TaskInput {
        project_id: integer(fields.remove("project_id")),
        task_app_id: string(fields.remove("task_app_id")),
        task_name: string(fields.remove("task_name")),
        created_at: string(fields.remove("created_at")),
        task_url: string(fields.remove("task_url")),
        owner_id: string(fields.remove("owner_id")),
        owner_name: string(fields.remove("owner_name")),
        parent_task_id: integer(fields.remove("parent_task_id")),
        parent_task_app_id: string(fields.remove("parent_task_app_id")),
    }
}

fn integer(value: Option<Value>) -> FieldInput<i64> {
    match value {
        None => FieldInput::Absent,
        Some(Value::Null) => FieldInput::Null,
        Some(Value::Number(number)) => match number.as_i64() {
            Some(integer) if number.is_i64() || number.is_u64() => FieldInput::Value(integer),
            _ => FieldInput::WrongType(format!("expected a JSON integer between 1 and {}, got {number}", i64::MAX)),
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
