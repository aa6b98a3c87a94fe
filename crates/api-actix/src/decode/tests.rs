//! Body decoding: shapes, types and absent versus null.

use actix_web::test::TestRequest;

use super::*;
use crate::body::require_json;

fn rejected_fields(result: Result<Vec<TaskInput>, ApiError>) -> Vec<(String, DetailCode)> {
    match result {
        Err(ApiError::Rejected(rejection)) => {
            rejection.details.into_iter().map(|detail| (detail.field, detail.code)).collect()
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn page_example_decodes() {
    let body = br#"{"tasks":[{"project_id":1,"task_app_id":"TASK-001","task_name":"Implement OAuth2 Authentication",
        "task_url":"https://client.com/tasks/TASK-001","owner_id":"user-123","owner_name":"John Doe",
        "parent_task_id":3,"created_at":"2024-01-20 09:00:00"}]}"#;
    let inputs = task_batch(body).unwrap();
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0].project_id, FieldInput::Value(1));
    assert_eq!(inputs[0].parent_task_id, FieldInput::Value(3));
    assert_eq!(inputs[0].owner_name, FieldInput::Value("John Doe".into()));
    assert_eq!(inputs[0].parent_task_app_id, FieldInput::Absent);
}

#[test]
fn escaped_keys_decode_like_plain_ones() {
    // serde_json lends plain keys from the body but builds escaped ones.
    let inputs = task_batch(br#"{"tasks":[{"task\u005fapp_id":"A","\u0078":1}]}"#).unwrap();
    assert_eq!(inputs[0].task_app_id, FieldInput::Value("A".into()));
    assert_eq!(inputs[0].unknown_fields, vec!["x".to_owned()]);
    let repeated = task_batch(br#"{"tasks":[{"task_app_id":"A","task\u005fapp_id":"B"}]}"#);
    assert!(matches!(repeated, Err(ApiError::BadRequest(message)) if message.contains("task_app_id")));
}

fn bad_request_message(result: Result<Vec<TaskInput>, ApiError>) -> String {
    match result {
        Err(ApiError::BadRequest(message)) => message,
        other => panic!("expected a bad request, got {other:?}"),
    }
}

#[test]
fn unreadable_bodies_explained() {
    let syntax = bad_request_message(task_batch(b"tasks=1"));
    assert!(syntax.starts_with("the request body is not valid JSON"), "{syntax}");
    assert!(syntax.ends_with(r#"send a JSON object such as {"tasks": [...]}"#), "{syntax}");
    let cut = bad_request_message(task_batch(br#"{"tasks":[{"task_name":"x""#));
    assert!(cut.starts_with("the request body ends too early"), "{cut}");
    let repeated = bad_request_message(task_batch(br#"{"tasks":[{"owner_id":"a","owner_id":"b"}]}"#));
    assert!(repeated.starts_with("the request body repeats a key in one object"), "{repeated}");
    assert!(repeated.contains("owner_id"), "{repeated}");
    let huge = bad_request_message(task_batch(br#"{"tasks":[{"project_id":1e400}]}"#));
    assert!(huge.starts_with("the request body is not valid JSON"), "{huge}");
}

#[test]
fn null_differs_from_absent() {
    let inputs = task_batch(br#"{"tasks":[{"task_url":null}]}"#).unwrap();
    assert_eq!(inputs[0].task_url, FieldInput::Null);
    assert_eq!(inputs[0].owner_id, FieldInput::Absent);
}

#[test]
fn integers_decoded_strictly() {
    let body = br#"{"tasks":[{"project_id":"1"},{"project_id":1.5},{"project_id":9223372036854775808},{"project_id":1.0},{"project_id":-0}]}"#;
    let inputs = task_batch(body).unwrap();
    // serde_json reads -0 as the float -0.0, so it is rejected like 1.0.
    for input in &inputs {
        assert!(matches!(input.project_id, FieldInput::WrongType(_)), "{:?}", input.project_id);
    }
}

#[test]
fn strings_decoded_strictly() {
    let inputs = task_batch(br#"{"tasks":[{"task_app_id":17,"task_name":["x"],"owner_id":true}]}"#).unwrap();
    assert!(matches!(inputs[0].task_app_id, FieldInput::WrongType(_)));
    assert!(matches!(inputs[0].task_name, FieldInput::WrongType(_)));
    assert!(matches!(inputs[0].owner_id, FieldInput::WrongType(_)));
}

#[test]
fn wrong_shapes_rejected() {
    assert_eq!(rejected_fields(task_batch(b"[]")), vec![("body".to_owned(), DetailCode::InvalidType)]);
    assert_eq!(rejected_fields(task_batch(b"\"tasks\"")), vec![("body".to_owned(), DetailCode::InvalidType)]);
    assert_eq!(rejected_fields(task_batch(b"{}")), vec![("tasks".to_owned(), DetailCode::Missing)]);
    assert_eq!(rejected_fields(task_batch(br#"{"tasks":{}}"#)), vec![("tasks".to_owned(), DetailCode::InvalidType)]);
    assert_eq!(rejected_fields(task_batch(br#"{"tasks":[]}"#)), vec![("tasks".to_owned(), DetailCode::BatchSize)]);
    assert_eq!(
        rejected_fields(task_batch(br#"{"tasks":[{}, 3, "x"]}"#)),
        vec![("tasks[1]".to_owned(), DetailCode::InvalidType), ("tasks[2]".to_owned(), DetailCode::InvalidType)]
    );
}

#[test]
fn duplicate_keys_rejected() {
    for body in [&br#"{"tasks":[],"tasks":[{}]}"#[..], br#"{"tasks":[{"task_name":"a","task_name":"b"}]}"#] {
        assert!(matches!(task_batch(body), Err(ApiError::BadRequest(_))), "{:?}", String::from_utf8_lossy(body));
    }
    assert!(matches!(projects(br#"{"organization_id":2,"organization_id":1}"#), Err(ApiError::BadRequest(_))));
}

#[test]
fn unknown_fields_skipped() {
    let padding = format!("[{}0]", "0,".repeat(10_000));
    let body = format!(r#"{{"padding":{padding},"tasks":[{{"extra":{padding},"task_name":"x"}}]}}"#);
    let inputs = task_batch(body.as_bytes()).unwrap();
    assert_eq!(inputs[0].task_name, FieldInput::Value("x".into()));
}

#[test]
fn project_forms_decoded() {
    assert!(matches!(projects(br#"{"name":"A","organization_id":1}"#), Ok(ProjectBody::One(_))));
    let Ok(ProjectBody::Batch(items)) = projects(br#"{"projects":[{"name":"A"},{"name":"B"}]}"#) else {
        panic!("a batch")
    };
    assert_eq!(items.len(), 2);
    assert!(matches!(projects(br#"{"projects":[1]}"#), Err(ApiError::Rejected(_))));
}

#[test]
fn malformed_json_rejected() {
    for body in [&b""[..], b"  ", b"{", b"{\"tasks\": [", b"not json", b"{\"tasks\":[{\"project_id\":1e400}]}"] {
        assert!(matches!(task_batch(body), Err(ApiError::BadRequest(_))), "{:?}", String::from_utf8_lossy(body));
    }
}

#[test]
fn deep_nesting_rejected() {
    let body = format!("{{\"tasks\":[{}{}]}}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(rejected_fields(task_batch(body.as_bytes())), vec![("tasks[0]".to_owned(), DetailCode::InvalidType)]);
    let body = format!("{{\"tasks\":[{{\"task_name\":{}{}}}]}}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(task_batch(body.as_bytes()), Err(ApiError::BadRequest(_))), "serde_json's recursion limit");
}

#[test]
fn json_content_types_accepted() {
    for value in
        ["application/json", "Application/JSON", "application/json; charset=utf-8", "application/json;charset=UTF-8"]
    {
        let request = TestRequest::default().insert_header(("content-type", value)).to_http_request();
        assert!(require_json(&request).is_ok(), "{value}");
    }
    assert!(require_json(&TestRequest::default().to_http_request()).is_ok());
}

#[test]
fn other_content_types_rejected() {
    for value in
        ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", "multipart/form-data; boundary=x"]
    {
        let request = TestRequest::default().insert_header(("content-type", value)).to_http_request();
        assert!(matches!(require_json(&request), Err(ApiError::UnsupportedMediaType(_))), "{value}");
    }
}

/// Any JSON value in a task field.
fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |number| number.is_finite()).prop_map(Value::from),
        "\\PC{0,30}".prop_map(Value::String),
        "[0-9: T+Z.-]{0,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| proptest::collection::vec(inner, 0..4).prop_map(Value::Array))
}

/// The decoder's task fields, plus one it ignores.
fn field_names() -> Vec<&'static str> {
    TASK_FIELDS.into_iter().chain(["unknown"]).collect()
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        let _ = task_batch(&body);
        let _ = projects(&body);
    }

    #[test]
    fn arbitrary_items_decode_and_validate(
        items in proptest::collection::vec(proptest::collection::btree_map(proptest::sample::select(field_names()), json_value(), 0..10), 1..5)
    ) {
        let tasks: Vec<Value> = items
            .into_iter()
            .map(|fields| Value::Object(fields.into_iter().map(|(key, value)| (key.to_owned(), value)).collect()))
            .collect();
        let body = serde_json::json!({ "tasks": tasks }).to_string();
        let inputs = task_batch(body.as_bytes()).expect("objects in an array always decode");
        for (index, input) in inputs.into_iter().enumerate() {
            if let Err(errors) = domain::validate::validate_task(index, input) {
                for error in errors {
                    proptest::prop_assert!(error.field.starts_with(&format!("tasks[{index}].")), "{}", error.field);
                    proptest::prop_assert!(!error.message.is_empty());
                }
            }
        }
    }
}

#[test]
fn unknown_fields_named_once_and_bounded() {
    let mut item = String::from(r#"{"colour":1,"colour":2,"x":{"deep":[1,2]}"#);
    for index in 0..40 {
        item.push_str(&format!(r#","extra{index}":null"#));
    }
    let long = "n".repeat(500);
    let body = format!(r#"{{"tasks":[{item},"{long}":1}}]}}"#);
    let input = task_batch(body.as_bytes()).unwrap().remove(0);
    assert_eq!(input.unknown_fields[..3], ["colour".to_owned(), "x".to_owned(), "extra0".to_owned()]);
    assert_eq!(input.unknown_fields.len(), 16, "at most 16 names are kept");
    let body = format!(r#"{{"tasks":[{{"{long}":1}}]}}"#);
    assert_eq!(task_batch(body.as_bytes()).unwrap()[0].unknown_fields[0].len(), 64, "long names are cut");
}

#[test]
fn every_listed_field_read() {
    for field in TASK_FIELDS {
        let body = format!(r#"{{"tasks":[{{"{field}":[]}}]}}"#);
        let input = task_batch(body.as_bytes()).unwrap().remove(0);
        let wrong = [
            matches!(input.project_id, FieldInput::WrongType(_)),
            matches!(input.task_app_id, FieldInput::WrongType(_)),
            matches!(input.task_name, FieldInput::WrongType(_)),
            matches!(input.created_at, FieldInput::WrongType(_)),
            matches!(input.task_url, FieldInput::WrongType(_)),
            matches!(input.owner_id, FieldInput::WrongType(_)),
            matches!(input.owner_name, FieldInput::WrongType(_)),
            matches!(input.parent_task_id, FieldInput::WrongType(_)),
            matches!(input.parent_task_app_id, FieldInput::WrongType(_)),
            matches!(input.source_updated_at, FieldInput::WrongType(_)),
        ];
        assert!(input.unknown_fields.is_empty(), "{field} is known");
        assert_eq!(wrong.iter().filter(|flag| **flag).count(), 1, "{field} is read into exactly one input field");
    }
}
