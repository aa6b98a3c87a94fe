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

/// Returns the property names of a schema of the document.
fn schema_properties(document: &serde_json::Value, schema: &str) -> BTreeSet<String> {
    let properties = document["components"]["schemas"][schema]["properties"].as_object();
    properties.unwrap_or_else(|| panic!("{schema} has properties")).keys().cloned().collect()
}

fn object_keys(value: &serde_json::Value) -> BTreeSet<String> {
    value.as_object().expect("an object").keys().cloned().collect()
}

#[test]
fn documented_answers_match_what_handlers_send() {
    use domain::outcome::{FieldName, TaskAction, Warning, WarningCode};
    use domain::{ProjectId, TaskId, Timestamp};

    let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
    let at = Timestamp::parse("2024-01-20 09:00:00").unwrap();
    let processed = domain::ingest::ProcessedTask {
        project_id: ProjectId(1),
        task_id: Some(TaskId(4)),
        task_app_id: "TASK-001".into(),
        action: TaskAction::SkippedStale,
        changed_fields: vec![FieldName::TaskName],
        created_at: at,
        warnings: vec![Warning::new(WarningCode::UnknownField, "ignored")],
    };
    // A dry run with a skipped item shows every optional field at once.
    let sent = serde_json::to_value(crate::response::TasksProcessed::new(&[processed], true)).unwrap();
    assert_eq!(object_keys(&sent["data"]), schema_properties(&document, "ProcessedTasks"));
    assert_eq!(object_keys(&sent["data"]["processed_tasks"][0]), schema_properties(&document, "ProcessedTask"));
    let warning = &sent["data"]["processed_tasks"][0]["warnings"][0];
    assert_eq!(object_keys(warning), schema_properties(&document, "ItemWarning"));

    let stored = domain::task::StoredTask {
        id: TaskId(4),
        key: domain::task::TaskKey {
            project_id: ProjectId(1),
            app_id: domain::task::TaskAppId::parse("TASK-001").unwrap(),
        },
        fields: domain::task::TaskFields {
            name: domain::task::TaskName::parse("Name").unwrap(),
            url: None,
            owner_id: None,
            owner_name: None,
            created_at: at,
            source_updated_at: None,
        },
        parent_id: None,
        inserted_at: at,
        updated_at: at,
    };
    let body = serde_json::to_value(crate::response::TaskBody::from(stored)).unwrap();
    assert_eq!(object_keys(&body), schema_properties(&document, "Task"));

    let organization =
        domain::organization::Organization { id: domain::OrganizationId(1), name: "Acme".into(), created_at: at };
    let body = serde_json::to_value(crate::response::OrganizationBody::from(organization)).unwrap();
    assert_eq!(object_keys(&body), schema_properties(&document, "Organization"));
    let project = domain::project::Project {
        id: ProjectId(1),
        organization_id: domain::OrganizationId(1),
        app_id: "WEB".into(),
        name: "Web".into(),
        active: true,
        created_at: at,
        inserted_at: at,
        updated_at: at,
    };
    let body = serde_json::to_value(crate::response::ProjectBody::from(project.clone())).unwrap();
    assert_eq!(object_keys(&body), schema_properties(&document, "Project"));
    let processed = crate::response::ProjectProcessed::new(project, domain::task::Action::Created);
    let body = serde_json::to_value(processed).unwrap();
    assert_eq!(object_keys(&body), schema_properties(&document, "ProjectProcessed"));
    assert_eq!(object_keys(&body["data"]), schema_properties(&document, "ProcessedProject"));
}
