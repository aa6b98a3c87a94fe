//! `POST /api/v1/tasks` over HTTP against the real binary, on SQLite and PostgreSQL.

mod support;

use infra_diesel::testing::TestDatabase;
use serde_json::{Value, json};
use support::{post_raw, post_tasks, start, start_with, task, tenant};

const PAGE_EXAMPLE: &str = r#"{
  "tasks": [
    {
      "project_id": 1,
      "task_app_id": "TASK-001",
      "task_name": "Implement OAuth2 Authentication",
      "task_url": "https://client.com/tasks/TASK-001",
      "owner_id": "user-123",
      "owner_name": "John Doe",
      "parent_task_id": 3,
      "created_at": "2024-01-20 09:00:00"
    }
  ]
}"#;

fn detail_fields(body: &Value) -> Vec<(Option<u64>, String, String)> {
    body["error"]["details"]
        .as_array()
        .expect("details array")
        .iter()
        .map(|detail| {
            (
                detail["index"].as_u64(),
                detail["field"].as_str().unwrap().to_owned(),
                detail["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn assert_error_shape(body: &Value, code: &str) {
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|message| !message.is_empty()), "{body}");
    assert!(body["error"]["details"].is_array(), "{body}");
}

async fn page_example_created_then_updated(test: TestDatabase) {
    let acme = tenant(&test, "acme", 3).await;
    assert_eq!(acme.project.get(), 1, "a fresh database gives the first project id 1");
    let server = start(test).await;
    let url = server.url("/api/v1/tasks");

    let (status, first) = post_raw(&url, Some(&acme.token), Some("application/json"), PAGE_EXAMPLE).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "success");
    assert_eq!(first["message"], "Tasks processed successfully");
    let item = &first["data"]["processed_tasks"][0];
    assert_eq!(item["project_id"], 1);
    assert_eq!(item["task_app_id"], "TASK-001");
    assert_eq!(item["action"], "created");
    assert!(item["task_id"].as_i64().is_some_and(|id| id > 3));
    // The page's four fields keep their meaning; the extensions only add fields after them.
    let mut keys: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = ["project_id", "task_id", "task_app_id", "action", "changed_fields", "created_at", "warnings"];
    expected.sort_unstable();
    assert_eq!(keys, expected);

    let (status, second) =
        post_raw(&url, Some(&format!("Bearer {}", acme.token)), Some("application/json"), PAGE_EXAMPLE).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["data"]["processed_tasks"][0]["action"], "updated");
    assert_eq!(second["data"]["processed_tasks"][0]["task_id"], item["task_id"]);
}

async fn auth_failures_are_401(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let admin = leanmote_api::admin_use_cases(&test.database);
    let (revoked_id, revoked) = admin.create_token("old", vec![acme.organization], None, rand::random()).await.unwrap();
    admin.revoke_token(revoked_id).await.unwrap();
    let past = domain::Timestamp::parse("2020-01-01 00:00:00").unwrap();
    let (_, expired) =
        admin.create_token("expired", vec![acme.organization], Some(past), rand::random()).await.unwrap();
    let server = start(test).await;
    let body = json!({"tasks": [task(acme.project, "A")]}).to_string();
    let url = server.url("/api/v1/tasks");

    let unknown = format!("lm-{}", "0".repeat(64));
    let cases = [
        None,
        Some("Basic dXNlcjpwYXNz"),
        Some("lm-short"),
        Some(unknown.as_str()),
        Some(revoked.expose()),
        Some(expired.expose()),
    ];
    for token in cases {
        let (status, answer) = post_raw(&url, token, Some("application/json"), body.clone()).await;
        assert_eq!(status, 401, "{token:?}: {answer}");
        assert_error_shape(&answer, "unauthorized");
    }
    let (status, _) = post_raw(&url, Some(&acme.token), Some("application/json"), body).await;
    assert_eq!(status, 200);
}

async fn invalid_items_all_listed(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let mut wrong_type = task(acme.project, "B");
    wrong_type["project_id"] = json!("1");
    let mut bad_date = task(acme.project, "C");
    bad_date["created_at"] = json!("2024-02-30 10:00:00");
    bad_date["task_name"] = json!("   ");
    let (status, body) =
        post_tasks(&server, &acme.token, json!([task(acme.project, "A"), wrong_type, bad_date, {"task_app_id": "D"}]))
            .await;
    assert_eq!(status, 400, "{body}");
    assert_error_shape(&body, "invalid_input");
    assert_eq!(
        detail_fields(&body),
        vec![
            (Some(1), "tasks[1].project_id".into(), "invalid_type".into()),
            (Some(2), "tasks[2].task_name".into(), "blank".into()),
            (Some(2), "tasks[2].created_at".into(), "invalid_timestamp".into()),
            (Some(3), "tasks[3].project_id".into(), "missing".into()),
            (Some(3), "tasks[3].task_name".into(), "missing".into()),
            (Some(3), "tasks[3].created_at".into(), "missing".into()),
        ]
    );
}

async fn batch_size_limits(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let (status, body) = post_tasks(&server, &acme.token, json!([])).await;
    assert_eq!(status, 400);
    assert!(body["error"]["details"][0]["message"].as_str().unwrap().contains("1000"), "{body}");
    let too_many: Vec<Value> = (0..1001).map(|index| task(acme.project, &format!("T-{index}"))).collect();
    let (status, body) = post_tasks(&server, &acme.token, Value::Array(too_many)).await;
    assert_eq!(status, 400);
    assert_eq!(detail_fields(&body), vec![(None, "tasks".into(), "batch_size".into())]);
}

/// A token learns nothing about another tenant's ids: its projects and
/// parents get the same response as missing ones, and its organizations the same
/// as unknown ones outside the token's scope.
async fn other_tenant_ids_read_as_missing(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let globex = tenant(&test, "globex", 0).await;
    let server = start(test).await;
    let (_, seeded) = post_tasks(&server, &globex.token, json!([task(globex.project, "G")])).await;
    let globex_task = seeded["data"]["processed_tasks"][0]["task_id"].as_i64().unwrap();
    let missing_project = domain::ProjectId(globex.project.get() + 1000);
    // The second id is the longer one (the first plus 1000), so it is replaced first.
    let without_ids = |body: &Value, ids: [i64; 2]| {
        body.to_string().replace(&ids[1].to_string(), "ID").replace(&ids[0].to_string(), "ID")
    };

    let (status, foreign) = post_tasks(&server, &acme.token, json!([task(globex.project, "A")])).await;
    let (missing_status, missing) = post_tasks(&server, &acme.token, json!([task(missing_project, "A")])).await;
    assert_eq!((status, missing_status), (404, 404), "{foreign} {missing}");
    assert_eq!(detail_fields(&foreign), vec![(Some(0), "tasks[0].project_id".into(), "project_not_found".into())]);
    let ids = [globex.project.get(), missing_project.get()];
    assert_eq!(without_ids(&foreign, ids), without_ids(&missing, ids), "the answers differ by more than the id");

    let mut child = task(acme.project, "B");
    child["parent_task_id"] = json!(globex_task);
    let (status, foreign) = post_tasks(&server, &acme.token, json!([child.clone()])).await;
    child["parent_task_id"] = json!(globex_task + 1000);
    let (missing_status, missing) = post_tasks(&server, &acme.token, json!([child])).await;
    assert_eq!((status, missing_status), (404, 404), "{foreign} {missing}");
    let ids = [globex_task, globex_task + 1000];
    assert_eq!(without_ids(&foreign, ids), without_ids(&missing, ids));

    let project = |organization: i64| json!({"organization_id": organization, "project_app_id": "P", "name": "P"});
    let missing_org = globex.organization.get() + 1000;
    let url = server.url("/api/v1/projects");
    let (status, foreign) =
        post_raw(&url, Some(&acme.token), Some("application/json"), project(globex.organization.get()).to_string())
            .await;
    let (missing_status, missing) =
        post_raw(&url, Some(&acme.token), Some("application/json"), project(missing_org).to_string()).await;
    assert_eq!((status, missing_status), (403, 403), "{foreign} {missing}");
    assert_error_shape(&foreign, "forbidden");
    let ids = [globex.organization.get(), missing_org];
    assert_eq!(without_ids(&foreign, ids), without_ids(&missing, ids));
}

async fn unknown_project_and_parent_are_404(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let mut orphan = task(acme.project, "B");
    orphan["parent_task_id"] = json!(424_242);
    let (status, body) = post_tasks(&server, &acme.token, json!([task(domain::ProjectId(9999), "A"), orphan])).await;
    assert_eq!(status, 404, "{body}");
    assert_error_shape(&body, "not_found");
    assert_eq!(
        detail_fields(&body),
        vec![
            (Some(0), "tasks[0].project_id".into(), "project_not_found".into()),
            (Some(1), "tasks[1].parent_task_id".into(), "parent_not_found".into()),
        ]
    );
}

async fn body_limits_and_content_types(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start_with(test, &[], &[("LEANMOTE_MAX_BODY_BYTES", "4096")]).await;
    let url = server.url("/api/v1/tasks");
    let small = json!({"tasks": [task(acme.project, "A")]}).to_string();

    let (status, body) = post_raw(&url, Some(&acme.token), Some("application/json"), "x".repeat(5000)).await;
    assert_eq!(status, 413, "{body}");
    assert_error_shape(&body, "payload_too_large");

    let (status, body) = post_raw(&url, Some(&acme.token), Some("text/plain"), small.clone()).await;
    assert_eq!(status, 415, "{body}");
    assert_error_shape(&body, "unsupported_media_type");
    assert!(body["message"].as_str().unwrap().contains("application/json"));

    for content_type in [None, Some("Application/JSON; charset=utf-8")] {
        let (status, body) = post_raw(&url, Some(&acme.token), content_type, small.clone()).await;
        assert_eq!(status, 200, "{content_type:?}: {body}");
    }

    let (status, body) = post_raw(&url, Some(&acme.token), Some("application/json"), "{\"tasks\": [").await;
    assert_eq!(status, 400);
    assert_error_shape(&body, "malformed_request");
}

async fn default_limit_fits_long_batch(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let tasks: Vec<Value> = (0..1000)
        .map(|index| {
            let mut item = task(acme.project, &format!("LONG-{index}"));
            item["task_name"] = json!("é".repeat(1024));
            item["task_url"] = json!(format!("https://tracker.example/{}", "p".repeat(2000)));
            item["owner_id"] = json!("o".repeat(255));
            item["owner_name"] = json!("名".repeat(255));
            item
        })
        .collect();
    let (status, body) = post_tasks(&server, &acme.token, Value::Array(tasks)).await;
    assert_eq!(status, 200, "{}", body["message"]);
    assert_eq!(body["data"]["processed_tasks"].as_array().unwrap().len(), 1000);
}

async fn unknown_routes_and_methods_are_json(test: TestDatabase) {
    let server = start(test).await;
    let response = reqwest::get(server.url("/api/v1/nope")).await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_error_shape(&response.json().await.unwrap(), "route_not_found");

    let response = reqwest::Client::new().delete(server.url("/api/v1/tasks")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "GET, POST");
    assert_error_shape(&response.json().await.unwrap(), "method_not_allowed");
}

async fn failed_batch_changes_nothing(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let (_, first) = post_tasks(&server, &acme.token, json!([task(acme.project, "KEEP")])).await;
    let kept_id = first["data"]["processed_tasks"][0]["task_id"].clone();

    let mut rename = task(acme.project, "KEEP");
    rename["task_name"] = json!("Renamed");
    let mut bad = task(acme.project, "BAD");
    bad["task_url"] = json!("not a url");
    let (status, _) = post_tasks(&server, &acme.token, json!([rename, task(acme.project, "NEW"), bad])).await;
    assert_eq!(status, 400);

    let stored = server.test.database.find_task_by_id(kept_id.as_i64().unwrap()).await;
    assert_eq!(stored.fields.name.as_str(), "Task KEEP");
    let (_, again) = post_tasks(&server, &acme.token, json!([task(acme.project, "NEW")])).await;
    assert_eq!(again["data"]["processed_tasks"][0]["action"], "created");
}

async fn parent_cycle_is_400(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let mut child = task(acme.project, "CHILD");
    child["parent_task_app_id"] = json!("ROOT");
    let (status, body) = post_tasks(&server, &acme.token, json!([task(acme.project, "ROOT"), child])).await;
    assert_eq!(status, 200, "{body}");
    let child_id = body["data"]["processed_tasks"][1]["task_id"].clone();

    let mut loop_back = task(acme.project, "ROOT");
    loop_back["parent_task_id"] = child_id;
    let (status, body) = post_tasks(&server, &acme.token, json!([loop_back])).await;
    assert_eq!(status, 400, "{body}");
    assert_error_shape(&body, "invalid_reference");
    assert_eq!(detail_fields(&body), vec![(Some(0), "tasks[0].parent_task_id".into(), "parent_cycle".into())]);
}

async fn null_clears_absent_keeps(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let mut full = task(acme.project, "T");
    full["task_url"] = json!("https://tracker.example/T");
    full["owner_id"] = json!("u-1");
    full["owner_name"] = json!("Ada");
    let (_, body) = post_tasks(&server, &acme.token, json!([full])).await;
    let id = body["data"]["processed_tasks"][0]["task_id"].as_i64().unwrap();

    let mut partial = task(acme.project, "T");
    partial["owner_name"] = Value::Null;
    let (status, _) = post_tasks(&server, &acme.token, json!([partial])).await;
    assert_eq!(status, 200);

    let stored = server.test.database.find_task_by_id(id).await;
    assert_eq!(stored.fields.url.unwrap().as_str(), "https://tracker.example/T");
    assert_eq!(stored.fields.owner_id.unwrap().as_str(), "u-1");
    assert!(stored.fields.owner_name.is_none());
}

async fn same_key_twice_in_batch(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let mut second = task(acme.project, "DUP");
    second["task_name"] = json!("Second");
    let (status, body) = post_tasks(&server, &acme.token, json!([task(acme.project, "DUP"), second])).await;
    assert_eq!(status, 200, "{body}");
    let items = body["data"]["processed_tasks"].as_array().unwrap();
    assert_eq!(items[0]["action"], "created");
    assert_eq!(items[1]["action"], "updated");
    assert_eq!(items[0]["task_id"], items[1]["task_id"]);
    let stored = server.test.database.find_task_by_id(items[0]["task_id"].as_i64().unwrap()).await;
    assert_eq!(stored.fields.name.as_str(), "Second");
}

/// Reads a task straight from storage.
trait FindTask {
    async fn find_task_by_id(&self, id: i64) -> domain::task::StoredTask;
}

impl FindTask for infra_diesel::Database {
    async fn find_task_by_id(&self, id: i64) -> domain::task::StoredTask {
        domain::ports::TaskStore::find_task(self, domain::TaskId(id)).await.unwrap().expect("task stored")
    }
}

infra_diesel::backend_tests!(
    page_example_created_then_updated,
    auth_failures_are_401,
    invalid_items_all_listed,
    batch_size_limits,
    other_tenant_ids_read_as_missing,
    unknown_project_and_parent_are_404,
    body_limits_and_content_types,
    default_limit_fits_long_batch,
    unknown_routes_and_methods_are_json,
    failed_batch_changes_nothing,
    parent_cycle_is_400,
    null_clears_absent_keeps,
    same_key_twice_in_batch,
);
