//! The document covers every route and every task field.

use std::collections::BTreeSet;

use utoipa::OpenApi;

use super::ApiDoc;

/// Routes registered in `routes.rs`: each `resource("PATH", ...)` with its `.route(web::METHOD()` calls.
fn registered_routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../routes.rs");
    let mut routes = BTreeSet::new();
    for resource in source.split("resource(\"").skip(1) {
        let path = resource.split('"').next().unwrap().to_owned();
        let until_next = resource.split(".service(").next().unwrap();
        for method in until_next.split(".route(web::").skip(1) {
            routes.insert((path.clone(), method.split('(').next().unwrap().to_owned()));
        }
    }
    routes
}

#[test]
fn every_route_documented() {
    let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
    let routes = registered_routes();
    assert!(routes.len() >= 10, "{routes:?}");
    for (path, method) in routes {
        assert!(document["paths"][&path][&method].is_object(), "{method} {path} is missing from the OpenAPI document");
    }
}

#[test]
fn every_task_field_documented() {
    let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
    let properties =
        document["components"]["schemas"]["TaskItem"]["properties"].as_object().expect("TaskItem properties");
    let documented: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
    let decoded: BTreeSet<&str> = crate::decode::TASK_FIELDS.into_iter().collect();
    assert_eq!(documented, decoded);
}

#[test]
fn document_is_openapi_3_1_with_page_example() {
    let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let example = &document["components"]["schemas"]["TaskBatchRequest"]["example"];
    assert_eq!(example["tasks"][0]["task_app_id"], "TASK-001");
    assert!(document["components"]["securitySchemes"]["token"].is_object());
}
