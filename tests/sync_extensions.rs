//! Sync extensions of `POST /api/v1/tasks` over HTTP, on SQLite and PostgreSQL:
//! change detection, stale-write protection, warnings, dry runs and idempotency keys.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use infra_diesel::testing::TestDatabase;
use serde_json::{Value, json};
use support::{Server, start, start_with, task, tenant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Field names of `changed_fields`, in the order the API lists them.
const ALL_FIELDS: [&str; 7] =
    ["task_name", "task_url", "owner_id", "owner_name", "parent_task_id", "created_at", "source_updated_at"];

/// A response with the headers these tests check and the body both as bytes and as JSON.
struct Reply {
    status: u16,
    replayed: Option<String>,
    retry_after: Option<String>,
    bytes: Vec<u8>,
    body: Value,
}

/// Sends `body` to `POST /api/v1/tasks{query}`, with an `Idempotency-Key` header when `key` is set.
async fn send(server: &Server, token: &str, query: &str, key: Option<&[u8]>, body: &str) -> Reply {
    let mut request = reqwest::Client::new()
        .post(server.url(&format!("/api/v1/tasks{query}")))
        .header("Authorization", token)
        .header("Content-Type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        let value = reqwest::header::HeaderValue::from_bytes(key).expect("a sendable header value");
        request = request.header("Idempotency-Key", value);
    }
    let response = request.send().await.expect("send request");
    let header = |name: &str| response.headers().get(name).map(|value| value.to_str().unwrap().to_owned());
    let (status, replayed, retry_after) =
        (response.status().as_u16(), header("idempotent-replayed"), header("retry-after"));
    let bytes = response.bytes().await.expect("read body").to_vec();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", String::from_utf8_lossy(&bytes)));
    Reply { status, replayed, retry_after, bytes, body }
}

/// Sends `tasks` as a plain batch, without a key or query, and expects 200.
async fn write(server: &Server, token: &str, tasks: Value) -> Vec<Value> {
    let reply = send(server, token, "", None, &batch(tasks)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    items(&reply.body).to_vec()
}

/// Sends one task as a plain batch and returns its processed item.
async fn processed_one(server: &Server, token: &str, item: Value) -> Value {
    write(server, token, json!([item])).await.remove(0)
}

fn batch(tasks: Value) -> String {
    json!({ "tasks": tasks }).to_string()
}

fn items(body: &Value) -> &[Value] {
    body["data"]["processed_tasks"].as_array().unwrap_or_else(|| panic!("no processed_tasks: {body}"))
}

fn changed(item: &Value) -> Vec<&str> {
    let fields = item["changed_fields"].as_array().unwrap_or_else(|| panic!("no changed_fields array: {item}"));
    fields.iter().map(|field| field.as_str().expect("field names are strings")).collect()
}

fn warning_codes(item: &Value) -> BTreeSet<&str> {
    let warnings = item["warnings"].as_array().unwrap_or_else(|| panic!("no warnings array: {item}"));
    warnings.iter().map(|warning| warning["code"].as_str().expect("a warning code")).collect()
}

fn task_id(item: &Value) -> i64 {
    item["task_id"].as_i64().unwrap_or_else(|| panic!("task_id is not an integer: {item}"))
}

async fn get_json(server: &Server, token: &str, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new().get(server.url(path)).header("Authorization", token).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Reads one task through `GET /api/v1/tasks/{task_id}`.
async fn stored(server: &Server, token: &str, id: i64) -> Value {
    let (status, body) = get_json(server, token, &format!("/api/v1/tasks/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["task"].clone()
}

/// Lists the `task_app_id`s of a project's tasks updated at or after `since` (at most 1000).
async fn app_ids_updated_since(server: &Server, token: &str, project: domain::ProjectId, since: &str) -> Vec<String> {
    let path =
        format!("/api/v1/tasks?project_id={}&limit=1000&updated_since={}", project.get(), since.replace(' ', "%20"));
    let (status, body) = get_json(server, token, &path).await;
    assert_eq!(status, 200, "{body}");
    let tasks = body["data"]["tasks"].as_array().unwrap();
    tasks.iter().map(|task| task["task_app_id"].as_str().unwrap().to_owned()).collect()
}

/// Reads every stored task of a project straight from the database, by `task_app_id`.
async fn stored_ids(test: &TestDatabase, project: domain::ProjectId) -> BTreeMap<String, i64> {
    let tasks = support::all_tasks(test, project).await;
    tasks.into_iter().map(|task| (task.key.app_id.as_str().to_owned(), task.id.get())).collect()
}

/// Returns the current time with microseconds, in a format `updated_since` accepts.
fn now_with_micros() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// Waits long enough that a later write gets an `updated_at` in a later second.
async fn next_second() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

async fn page_example_response_pinned(test: TestDatabase) {
    let acme = tenant(&test, "acme", 3).await;
    let parent_id = stored_ids(&test, acme.project).await["SEED-3"];
    let server = start(test).await;
    let request = format!(
        r#"{{
  "tasks": [
    {{
      "project_id": {project},
      "task_app_id": "TASK-001",
      "task_name": "Implement OAuth2 Authentication",
      "task_url": "https://client.com/tasks/TASK-001",
      "owner_id": "user-123",
      "owner_name": "John Doe",
      "parent_task_id": {parent_id},
      "created_at": "2024-01-20 09:00:00"
    }}
  ]
}}"#,
        project = acme.project.get()
    );

    let mut first_id = None;
    for expected_action in ["created", "updated"] {
        let reply = send(&server, &acme.token, "", None, &request).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["status"], "success");
        assert_eq!(reply.body["message"], "Tasks processed successfully");
        let processed = items(&reply.body);
        assert_eq!(processed.len(), 1);
        let item = &processed[0];
        assert_eq!(item["project_id"], acme.project.get());
        assert_eq!(item["task_app_id"], "TASK-001");
        assert_eq!(item["action"], expected_action);
        let id = task_id(item);
        assert_eq!(*first_id.get_or_insert(id), id, "the second response names the same task");
    }
}

async fn changed_fields_on_create(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let parent = write(&server, &acme.token, json!([task(acme.project, "PARENT")])).await;
    let mut full = task(acme.project, "FULL");
    full["task_url"] = json!("https://tracker.example/FULL");
    full["owner_id"] = json!("u-1");
    full["owner_name"] = json!("Ada");
    full["parent_task_id"] = json!(task_id(&parent[0]));
    full["source_updated_at"] = json!("2024-03-01 10:00:00");
    let mut with_null = task(acme.project, "NULLS");
    with_null["task_url"] = Value::Null;
    with_null["owner_id"] = json!("u-2");

    let processed = write(&server, &acme.token, json!([full, task(acme.project, "MINIMAL"), with_null])).await;
    assert_eq!(processed[0]["action"], "created");
    assert_eq!(changed(&processed[0]), ALL_FIELDS, "every stored field, in the fixed order");
    assert_eq!(changed(&processed[1]), ["task_name", "created_at"]);
    assert_eq!(changed(&processed[2]), ["task_name", "owner_id", "created_at"], "a null field is not listed");
    assert_eq!(changed(&parent[0]), ["task_name", "created_at"]);
    for item in &processed {
        assert!(item.get("reason").is_none(), "reason only on skipped items: {item}");
        assert_eq!(item["created_at"], "2024-01-20 09:00:00");
    }
}

async fn identical_resend_changes_nothing(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let parent = write(&server, &acme.token, json!([task(acme.project, "PARENT")])).await;
    let mut item = task(acme.project, "SAME");
    item["task_url"] = json!("https://tracker.example/SAME");
    item["owner_id"] = json!("u-1");
    item["owner_name"] = json!("Ada");
    item["parent_task_id"] = json!(task_id(&parent[0]));
    item["source_updated_at"] = json!("2024-03-01 10:00:00");
    let id = task_id(&write(&server, &acme.token, json!([item.clone()])).await[0]);
    let first_updated_at = stored(&server, &acme.token, id).await["updated_at"].clone();
    next_second().await;
    let mark = now_with_micros();

    let mut equivalent = item.clone();
    equivalent["created_at"] = json!("2024-01-20T11:00:00+02:00");
    equivalent["source_updated_at"] = json!("2024-03-01T10:00:00Z");
    equivalent.as_object_mut().unwrap().remove("parent_task_id");
    equivalent["parent_task_app_id"] = json!("PARENT");
    for resend in [item.clone(), equivalent] {
        let processed = write(&server, &acme.token, json!([resend])).await;
        assert_eq!(processed[0]["action"], "updated");
        assert_eq!(task_id(&processed[0]), id);
        assert_eq!(changed(&processed[0]), Vec::<&str>::new(), "{resend}");
        assert_eq!(processed[0]["warnings"], json!([]), "{resend}");
        assert_eq!(stored(&server, &acme.token, id).await["updated_at"], first_updated_at, "{resend}");
    }
    assert!(app_ids_updated_since(&server, &acme.token, acme.project, &mark).await.is_empty(), "no task was touched");

    item["owner_name"] = json!("Grace");
    let processed = write(&server, &acme.token, json!([item])).await;
    assert_eq!(changed(&processed[0]), ["owner_name"]);
    let later = stored(&server, &acme.token, id).await["updated_at"].clone();
    assert!(later.as_str().unwrap() > first_updated_at.as_str().unwrap(), "{later} after {first_updated_at}");
    assert_eq!(app_ids_updated_since(&server, &acme.token, acme.project, &mark).await, ["SAME"]);
}

async fn changed_fields_one_per_field(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let parents = write(&server, &acme.token, json!([task(acme.project, "P1"), task(acme.project, "P2")])).await;
    let mut item = task(acme.project, "T");
    item["task_url"] = json!("https://tracker.example/T");
    item["owner_id"] = json!("u-1");
    item["owner_name"] = json!("Ada");
    item["parent_task_id"] = json!(task_id(&parents[0]));
    item["source_updated_at"] = json!("2024-03-01 10:00:00");
    write(&server, &acme.token, json!([item.clone()])).await;

    let changes = [
        ("task_name", json!("Renamed")),
        ("task_url", json!("https://tracker.example/T-moved")),
        ("owner_id", json!("u-2")),
        ("owner_name", json!("Grace")),
        ("parent_task_id", json!(task_id(&parents[1]))),
        ("created_at", json!("2024-01-21 09:00:00")),
        ("source_updated_at", json!("2024-03-01 11:00:00")),
        ("owner_name", Value::Null),
    ];
    for (field, value) in changes {
        item[field] = value.clone();
        let processed = write(&server, &acme.token, json!([item.clone()])).await;
        assert_eq!(processed[0]["action"], "updated", "{field} = {value}");
        assert_eq!(changed(&processed[0]), [field], "{field} = {value}");
    }

    // owner_name comes first in the object, so only a fixed order puts task_name first.
    let mut rest = item.clone();
    rest.as_object_mut().unwrap().remove("owner_name");
    rest["task_name"] = json!("Renamed again");
    let body = format!(r#"{{"tasks":[{{"owner_name":"Linus",{}]}}"#, &rest.to_string()[1..]);
    let reply = send(&server, &acme.token, "", None, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let processed = items(&reply.body);
    assert_eq!(changed(&processed[0]), ["task_name", "owner_name"], "the fixed order, not the order of the keys");
}

async fn created_at_echoed_in_utc(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let cases = [
        ("2024-01-20T09:00:00+02:00", "2024-01-20 07:00:00"),
        ("2024-01-20T09:00:00Z", "2024-01-20 09:00:00"),
        ("2024-01-20T01:00:00-0530", "2024-01-20 06:30:00"),
        ("2024-01-20 09:00:00", "2024-01-20 09:00:00"),
    ];
    let tasks: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(index, (sent, _))| {
            let mut item = task(acme.project, &format!("TZ-{index}"));
            item["created_at"] = json!(sent);
            item
        })
        .collect();

    for expected_action in ["created", "updated"] {
        let processed = write(&server, &acme.token, Value::Array(tasks.clone())).await;
        for (item, (sent, echoed)) in processed.iter().zip(cases) {
            assert_eq!(item["action"], expected_action);
            assert_eq!(item["created_at"], echoed, "{sent}");
            assert_eq!(stored(&server, &acme.token, task_id(item)).await["created_at"], echoed, "{sent}");
        }
    }
}

async fn warnings_per_item(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    write(&server, &acme.token, json!([task(acme.project, "PARENT")])).await;
    let mut clean = task(acme.project, "CLEAN");
    clean["task_url"] = json!("https://tracker.example/CLEAN");
    clean["owner_id"] = json!("u-1");
    clean["owner_name"] = json!("Ada");
    clean["parent_task_app_id"] = json!("PARENT");
    clean["source_updated_at"] = json!("2024-03-01 10:00:00");
    let mut unknown = task(acme.project, "UNKNOWN");
    unknown["foo"] = json!(1);
    let mut future = task(acme.project, "FUTURE");
    future["created_at"] = json!("2999-01-01 00:00:00");
    let mut owner_name_only = task(acme.project, "OWNER");
    owner_name_only["owner_name"] = json!("Ada");
    let mut cleared_owner = task(acme.project, "CLEARED");
    cleared_owner["owner_name"] = Value::Null;
    let mut two = task(acme.project, "TWO");
    two["bar"] = json!("x");
    two["created_at"] = json!("2999-01-01T00:00:00Z");

    let processed =
        write(&server, &acme.token, json!([clean, unknown, future, owner_name_only, cleared_owner, two])).await;
    let expected: [&[&str]; 6] = [
        &[],
        &["unknown_field"],
        &["created_at_in_future"],
        &["owner_name_without_owner_id"],
        &[],
        &["created_at_in_future", "unknown_field"],
    ];
    for (item, codes) in processed.iter().zip(expected) {
        assert_eq!(item["action"], "created", "a warning does not stop the item: {item}");
        assert_eq!(warning_codes(item), codes.iter().copied().collect(), "{item}");
        for warning in item["warnings"].as_array().unwrap() {
            assert!(warning["message"].as_str().is_some_and(|message| !message.is_empty()), "{warning}");
        }
    }
    assert!(processed[1]["warnings"][0]["message"].as_str().unwrap().contains("foo"), "{}", processed[1]);
    let unknown_in_two =
        processed[5]["warnings"].as_array().unwrap().iter().find(|warning| warning["code"] == "unknown_field").unwrap();
    assert!(unknown_in_two["message"].as_str().unwrap().contains("bar"), "{unknown_in_two}");
    assert_eq!(stored_ids(&server.test, acme.project).await.len(), 7, "every item was stored");
}

async fn stale_item_skipped_rest_applied(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let mut current = task(acme.project, "A");
    current["task_name"] = json!("Current");
    current["source_updated_at"] = json!("2024-03-01 10:00:00");
    let id = task_id(&write(&server, &acme.token, json!([current])).await[0]);
    assert_eq!(stored(&server, &acme.token, id).await["source_updated_at"], "2024-03-01 10:00:00");

    let mut older = task(acme.project, "A");
    older["task_name"] = json!("Older");
    older["source_updated_at"] = json!("2024-03-01T11:00:00+02:00");
    let processed = write(&server, &acme.token, json!([older, task(acme.project, "B")])).await;
    assert_eq!(processed[0]["action"], "skipped");
    assert_eq!(processed[0]["reason"], "stale");
    assert_eq!(task_id(&processed[0]), id);
    assert_eq!(changed(&processed[0]), Vec::<&str>::new());
    assert!(processed[0]["warnings"].is_array());
    assert_eq!(processed[1]["action"], "created", "the rest of the batch proceeds");
    assert!(processed[1].get("reason").is_none());
    let after_skip = stored(&server, &acme.token, id).await;
    assert_eq!(after_skip["task_name"], "Current");
    assert_eq!(after_skip["source_updated_at"], "2024-03-01 10:00:00");

    let mut equal = task(acme.project, "A");
    equal["task_name"] = json!("Equal");
    equal["source_updated_at"] = json!("2024-03-01T10:00:00Z");
    let processed = write(&server, &acme.token, json!([equal])).await;
    assert_eq!(processed[0]["action"], "updated", "an equal source_updated_at is applied");
    assert_eq!(changed(&processed[0]), ["task_name"]);

    let mut without = task(acme.project, "A");
    without["task_name"] = json!("Without");
    let processed = write(&server, &acme.token, json!([without])).await;
    assert_eq!(processed[0]["action"], "updated", "an item without source_updated_at is applied");
    let after_without = stored(&server, &acme.token, id).await;
    assert_eq!(after_without["task_name"], "Without");
    assert_eq!(after_without["source_updated_at"], "2024-03-01 10:00:00", "absent keeps the stored value");

    let mut newer = task(acme.project, "A");
    newer["task_name"] = json!("Newer");
    newer["source_updated_at"] = json!("2024-03-02 00:00:00");
    let processed = write(&server, &acme.token, json!([newer])).await;
    assert_eq!(changed(&processed[0]), ["task_name", "source_updated_at"]);
    assert_eq!(stored(&server, &acme.token, id).await["source_updated_at"], "2024-03-02 00:00:00");

    let never_set = task_id(&processed_one(&server, &acme.token, task(acme.project, "C")).await);
    assert_eq!(stored(&server, &acme.token, never_set).await["source_updated_at"], Value::Null);
    let mut first_stamp = task(acme.project, "C");
    first_stamp["source_updated_at"] = json!("2000-01-01 00:00:00");
    let processed = write(&server, &acme.token, json!([first_stamp])).await;
    assert_eq!(processed[0]["action"], "updated", "a task without a stored source_updated_at is never stale");
}

async fn out_of_order_deliveries_keep_newer(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let delivery = |app_id: &str, name: &str, owner: &str, at: &str| {
        let mut item = task(acme.project, app_id);
        item["task_name"] = json!(name);
        item["owner_id"] = json!(owner);
        item["source_updated_at"] = json!(at);
        item
    };

    let newer = processed_one(&server, &acme.token, delivery("HOOK", "v2", "u-2", "2024-03-01 10:05:00")).await;
    let older = processed_one(&server, &acme.token, delivery("HOOK", "v1", "u-1", "2024-03-01 10:00:00")).await;
    assert_eq!(newer["action"], "created");
    assert_eq!(older["action"], "skipped");
    assert_eq!(older["reason"], "stale");
    let final_state = stored(&server, &acme.token, task_id(&newer)).await;
    assert_eq!(final_state["task_name"], "v2");
    assert_eq!(final_state["owner_id"], "u-2");
    assert_eq!(final_state["source_updated_at"], "2024-03-01 10:05:00");

    let in_one_batch = json!([
        delivery("BATCHED", "v2", "u-2", "2024-03-01 10:05:00"),
        delivery("BATCHED", "v1", "u-1", "2024-03-01 10:00:00"),
    ]);
    let processed = write(&server, &acme.token, in_one_batch).await;
    assert_eq!(processed[0]["action"], "created");
    assert_eq!(processed[1]["action"], "skipped", "items apply in order within a batch");
    assert_eq!(processed[0]["task_id"], processed[1]["task_id"]);
    assert_eq!(stored(&server, &acme.token, task_id(&processed[0])).await["task_name"], "v2");
}

async fn dry_run_reports_and_writes_nothing(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let mut existing = task(acme.project, "EXISTING");
    existing["source_updated_at"] = json!("2024-03-01 10:00:00");
    let mut guarded = task(acme.project, "GUARDED");
    guarded["source_updated_at"] = json!("2024-03-01 10:00:00");
    let written = write(&server, &acme.token, json!([existing.clone(), guarded.clone()])).await;
    let (existing_id, guarded_id) = (task_id(&written[0]), task_id(&written[1]));
    let before = stored(&server, &acme.token, existing_id).await;
    next_second().await;
    let mark = now_with_micros();

    let mut new = task(acme.project, "NEW");
    new["created_at"] = json!("2024-01-20T09:00:00+02:00");
    new["foo"] = json!(1);
    existing["task_name"] = json!("Renamed");
    guarded["task_name"] = json!("Older copy");
    guarded["source_updated_at"] = json!("2024-02-01 00:00:00");
    let body = batch(json!([new, existing, guarded]));
    let reply = send(&server, &acme.token, "?dry_run=true", None, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "success");
    assert_eq!(reply.body["data"]["dry_run"], true);
    let processed = items(&reply.body);
    assert_eq!(processed[0]["action"], "created");
    assert_eq!(processed[0].get("task_id"), Some(&Value::Null), "a task that would be created has no id yet");
    assert_eq!(changed(&processed[0]), ["task_name", "created_at"]);
    assert_eq!(processed[0]["created_at"], "2024-01-20 07:00:00");
    assert_eq!(warning_codes(&processed[0]), BTreeSet::from(["unknown_field"]));
    assert_eq!(processed[1]["action"], "updated");
    assert_eq!(task_id(&processed[1]), existing_id);
    assert_eq!(changed(&processed[1]), ["task_name"]);
    assert_eq!(processed[1]["warnings"], json!([]));
    assert_eq!(processed[2]["action"], "skipped");
    assert_eq!(processed[2]["reason"], "stale");
    assert_eq!(task_id(&processed[2]), guarded_id);

    assert_eq!(stored_ids(&server.test, acme.project).await.len(), 2, "no task was created");
    assert_eq!(stored(&server, &acme.token, existing_id).await, before, "the existing task is unchanged");
    assert!(app_ids_updated_since(&server, &acme.token, acme.project, &mark).await.is_empty());
    let real = send(&server, &acme.token, "?dry_run=false", None, &body).await;
    assert_eq!(real.status, 200, "{}", real.body);
    assert_ne!(real.body["data"]["dry_run"], true);
    let actions: Vec<&Value> = items(&real.body).iter().map(|item| &item["action"]).collect();
    assert_eq!(actions, ["created", "updated", "skipped"], "the dry run predicted the real run");
}

async fn dry_run_rejects_like_real_run(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let globex = tenant(&test, "globex", 0).await;
    let server = start(test).await;
    let mut child = task(acme.project, "CHILD");
    child["parent_task_app_id"] = json!("ROOT");
    let written = write(&server, &acme.token, json!([task(acme.project, "ROOT"), child])).await;
    let valid = send(&server, &acme.token, "?dry_run=true", None, &batch(json!([task(acme.project, "OK")]))).await;
    assert_eq!(valid.body["data"]["dry_run"], true, "the server runs dry: {}", valid.body);

    let mut bad_date = task(acme.project, "BAD");
    bad_date["created_at"] = json!("2024-02-30 10:00:00");
    let mut orphan = task(acme.project, "ORPHAN");
    orphan["parent_task_id"] = json!(424_242);
    let mut cycle = task(acme.project, "ROOT");
    cycle["parent_task_id"] = written[1]["task_id"].clone();
    let cases = [
        (400, json!([task(acme.project, "OK"), bad_date])),
        (404, json!([task(acme.project, "OK"), orphan])),
        (404, json!([task(domain::ProjectId(9999), "NOWHERE")])),
        (404, json!([task(globex.project, "THEIRS")])),
        (400, json!([task(acme.project, "OK"), cycle])),
        (400, json!([])),
    ];
    for (status, tasks) in cases {
        let body = batch(tasks);
        let dry = send(&server, &acme.token, "?dry_run=true", None, &body).await;
        let real = send(&server, &acme.token, "", None, &body).await;
        assert_eq!(real.status, status, "{}", real.body);
        assert_eq!(dry.status, real.status, "{body}");
        assert_eq!(dry.body["status"], "error");
        assert_eq!(dry.body["error"], real.body["error"], "{body}");
    }
    let keys: Vec<String> = stored_ids(&server.test, acme.project).await.into_keys().collect();
    assert_eq!(keys, ["CHILD", "ROOT"], "no rejected batch wrote");
}

async fn dry_run_parameter_validated(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let body = batch(json!([task(acme.project, "A")]));
    let reply = send(&server, &acme.token, "?dry_run=maybe", None, &body).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], "invalid_input");
    let details = reply.body["error"]["details"].as_array().unwrap();
    assert!(details.iter().any(|detail| detail["field"] == "dry_run"), "{}", reply.body);
    assert!(stored_ids(&server.test, acme.project).await.is_empty(), "a rejected request writes nothing");

    let reply = send(&server, &acme.token, "?dry_run=false", None, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(items(&reply.body)[0]["action"], "created");
    assert_eq!(stored_ids(&server.test, acme.project).await.len(), 1, "dry_run=false writes");
}

async fn keyed_retry_replays_byte_for_byte(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start_with(test, &["--idempotency-ttl-secs", "3600"], &[]).await;
    let mut unknown = task(acme.project, "B");
    unknown["foo"] = json!(1);
    let body = batch(json!([task(acme.project, "A"), unknown]));
    let key = b"sync-run-42/batch-1";

    let first = send(&server, &acme.token, "", Some(key), &body).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.replayed, None, "the first response is not a replay");
    let id = task_id(&items(&first.body)[0]);
    let mut renamed = task(acme.project, "A");
    renamed["task_name"] = json!("Renamed after the first request");
    write(&server, &acme.token, json!([renamed])).await;
    let before_retry = stored(&server, &acme.token, id).await;

    for attempt in 0..2 {
        let retry = send(&server, &acme.token, "", Some(key), &body).await;
        assert_eq!(retry.status, 200, "attempt {attempt}: {}", retry.body);
        assert_eq!(retry.replayed.as_deref(), Some("true"), "attempt {attempt}");
        assert_eq!(retry.bytes, first.bytes, "attempt {attempt}: the stored response, byte for byte");
    }
    assert_eq!(stored(&server, &acme.token, id).await, before_retry, "a replay writes nothing");
    assert_eq!(stored_ids(&server.test, acme.project).await.len(), 2);
}

async fn same_key_other_body_is_422(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let body = batch(json!([task(acme.project, "A")]));
    let other = batch(json!([task(acme.project, "B")]));
    let first = send(&server, &acme.token, "", Some(b"key-1"), &body).await;
    assert_eq!(first.status, 200, "{}", first.body);

    let reused = send(&server, &acme.token, "", Some(b"key-1"), &other).await;
    assert_eq!(reused.status, 422, "{}", reused.body);
    assert_eq!(reused.body["status"], "error");
    assert_eq!(reused.body["error"]["code"], "idempotency_key_reused");
    assert!(reused.body["message"].as_str().is_some_and(|message| !message.is_empty()));
    assert_eq!(reused.replayed, None);
    assert!(!stored_ids(&server.test, acme.project).await.contains_key("B"), "the other body was not written");

    let retry = send(&server, &acme.token, "", Some(b"key-1"), &body).await;
    assert_eq!(retry.replayed.as_deref(), Some("true"), "the 422 left the stored response in place");
    assert_eq!(retry.bytes, first.bytes);
}

async fn invalid_keys_are_400(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let too_long = "k".repeat(256);
    let invalid: [&[u8]; 4] = [b"", too_long.as_bytes(), "clé".as_bytes(), b"tab\there"];
    for key in invalid {
        let body = batch(json!([task(acme.project, "A")]));
        let reply = send(&server, &acme.token, "", Some(key), &body).await;
        let key_text = String::from_utf8_lossy(key);
        assert_eq!(reply.status, 400, "{key_text:?}: {}", reply.body);
        assert_eq!(reply.body["error"]["code"], "invalid_input", "{key_text:?}");
        let details = reply.body["error"]["details"].as_array().unwrap();
        assert!(details.iter().any(|detail| detail["field"] == "Idempotency-Key"), "{key_text:?}: {}", reply.body);
    }
    assert!(stored_ids(&server.test, acme.project).await.is_empty(), "no rejected request wrote");

    let longest = "~".repeat(255);
    let valid: [&[u8]; 3] = [longest.as_bytes(), b"run 42 batch 3", b"x"];
    for (index, key) in valid.into_iter().enumerate() {
        let body = batch(json!([task(acme.project, &format!("VALID-{index}"))]));
        let first = send(&server, &acme.token, "", Some(key), &body).await;
        assert_eq!(first.status, 200, "{}", first.body);
        let retry = send(&server, &acme.token, "", Some(key), &body).await;
        assert_eq!(retry.replayed.as_deref(), Some("true"), "{:?}", String::from_utf8_lossy(key));
    }
}

async fn keys_of_two_tokens_independent(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let globex = tenant(&test, "globex", 0).await;
    let admin = leanmote_api::admin_use_cases(&test.database);
    let (_, second) = admin.create_token("acme-second", vec![acme.organization], None, rand::random()).await.unwrap();
    let second = second.expose().to_owned();
    let server = start(test).await;
    let key = Some(b"nightly".as_slice());

    let acme_body = batch(json!([task(acme.project, "SHARED")]));
    let first = send(&server, &acme.token, "", key, &acme_body).await;
    let same_body_other_token = send(&server, &second, "", key, &acme_body).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(same_body_other_token.status, 200, "{}", same_body_other_token.body);
    assert_eq!(same_body_other_token.replayed, None, "another token's key is its own");
    assert_eq!(items(&same_body_other_token.body)[0]["action"], "updated", "the request really ran");

    let globex_body = batch(json!([task(globex.project, "OWN")]));
    let other_tenant = send(&server, &globex.token, "", key, &globex_body).await;
    assert_eq!(other_tenant.status, 200, "{}", other_tenant.body);
    assert_eq!(other_tenant.replayed, None);
    assert_eq!(items(&other_tenant.body)[0]["action"], "created");
    let replay = send(&server, &acme.token, "", key, &acme_body).await;
    assert_eq!(replay.replayed.as_deref(), Some("true"));
    assert_eq!(replay.bytes, first.bytes, "each token replays its own response");
}

async fn failed_request_releases_key(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let mut bad = task(acme.project, "A");
    bad["created_at"] = json!("not a time");
    let bad_body = batch(json!([bad]));
    let unknown_project = batch(json!([task(domain::ProjectId(9999), "A")]));
    let good_body = batch(json!([task(acme.project, "A")]));
    let key = Some(b"retry-me".as_slice());

    for (status, body) in [(400, &bad_body), (400, &bad_body), (404, &unknown_project)] {
        let reply = send(&server, &acme.token, "", key, body).await;
        assert_eq!(reply.status, status, "{}", reply.body);
        assert_eq!(reply.replayed, None, "a failed response is not stored");
    }
    let fixed = send(&server, &acme.token, "", key, &good_body).await;
    assert_eq!(fixed.status, 200, "a failed request released the key: {}", fixed.body);
    assert_eq!(fixed.replayed, None);
    assert_eq!(items(&fixed.body)[0]["action"], "created");
    let retry = send(&server, &acme.token, "", key, &good_body).await;
    assert_eq!(retry.replayed.as_deref(), Some("true"));
    assert_eq!(retry.bytes, fixed.bytes);
}

async fn dry_run_ignores_key(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let body = batch(json!([task(acme.project, "A")]));
    let key = Some(b"dry-first".as_slice());

    let dry = send(&server, &acme.token, "?dry_run=true", key, &body).await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert_eq!(dry.replayed, None);
    let other_body = batch(json!([task(acme.project, "B")]));
    let real = send(&server, &acme.token, "", key, &other_body).await;
    assert_eq!(real.status, 200, "the dry run did not claim the key: {}", real.body);
    assert_eq!(real.replayed, None);

    let dry_after = send(&server, &acme.token, "?dry_run=true", key, &other_body).await;
    assert_eq!(dry_after.status, 200, "{}", dry_after.body);
    assert_eq!(dry_after.replayed, None, "a dry run never replays a stored response");
    assert_eq!(dry_after.body["data"]["dry_run"], true);
    assert_eq!(items(&dry_after.body)[0]["action"], "updated");
    assert_eq!(stored_ids(&server.test, acme.project).await.into_keys().collect::<Vec<_>>(), ["B"]);
}

/// Sends a keyed batch, then retries the key with another body until the stored response expires.
async fn assert_key_expires(server: &Server, token: &str, project: domain::ProjectId, key: &str) {
    let first =
        send(server, token, "", Some(key.as_bytes()), &batch(json!([task(project, &format!("{key}-A"))]))).await;
    assert_eq!(first.status, 200, "{}", first.body);

    let other_body = batch(json!([task(project, &format!("{key}-B"))]));
    let mut expired = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let reply = send(server, token, "", Some(key.as_bytes()), &other_body).await;
        if reply.status != 422 {
            expired = Some(reply);
            break;
        }
    }
    let reply = expired.expect("the key is free again within 10 seconds of a 1-second lifetime");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.replayed, None);
    assert_eq!(items(&reply.body)[0]["action"], "created");
}

async fn stored_response_expires_after_ttl(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start_with(test, &["--idempotency-ttl-secs", "1"], &[]).await;
    assert_key_expires(&server, &acme.token, acme.project, "by-flag").await;
    let test = server.kill_hard().await;

    let server = start_with(test, &[], &[("LEANMOTE_IDEMPOTENCY_TTL_SECS", "1")]).await;
    assert_key_expires(&server, &acme.token, acme.project, "by-environment").await;
}

/// Opens a raw connection, sends the head of a keyed POST with `Expect: 100-continue`,
/// waits for `100 Continue` and sends the first half of `body`.
async fn start_half_sent_request(server: &Server, token: &str, key: &str, body: &str) -> TcpStream {
    let address = server.base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/tasks HTTP/1.1\r\nHost: test\r\nAuthorization: {token}\r\nContent-Type: application/json\r\nIdempotency-Key: {key}\r\nExpect: 100-continue\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("an interim response within 10 seconds")
            .unwrap();
        assert_eq!(read, 1, "the server closed the connection: {}", String::from_utf8_lossy(&interim));
        interim.push(byte[0]);
    }
    assert!(interim.starts_with(b"HTTP/1.1 100 Continue"), "{}", String::from_utf8_lossy(&interim));
    stream.write_all(&body.as_bytes()[..body.len() / 2]).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// Reads a whole `Connection: close` response and returns its status and body.
async fn read_response(stream: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("the response within 30 seconds")
        .unwrap();
    let split = raw.windows(4).position(|window| window == b"\r\n\r\n").expect("a complete head");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().expect("a status code");
    let body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        return (status, dechunk(&body));
    }
    (status, body)
}

fn dechunk(mut chunked: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = chunked.windows(2).position(|window| window == b"\r\n").expect("a chunk size line");
        let size_text = String::from_utf8_lossy(&chunked[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).expect("a hex chunk size");
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&chunked[line_end + 2..line_end + 2 + size]);
        chunked = &chunked[line_end + 2 + size + 2..];
    }
}

async fn concurrent_same_key_gets_409(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let globex = tenant(&test, "globex", 0).await;
    let server = start(test).await;
    let body = batch(json!([task(acme.project, "A"), task(acme.project, "B")]));

    // The server claims the key before it reads the body, so the half-sent request keeps it
    // claimed. 100 Continue can come before the claim is stored, so wait for the claim itself.
    let mut running = start_half_sent_request(&server, &acme.token, "overlap", &body).await;
    for _ in 0..500 {
        if server.test.idempotency_key_count() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.test.idempotency_key_count(), 1, "the half-sent request claimed its key");
    let second = send(&server, &acme.token, "", Some(b"overlap"), &body).await;
    assert_eq!(second.status, 409, "{}", second.body);
    assert_eq!(second.body["error"]["code"], "idempotency_key_in_use");
    assert!(second.retry_after.as_deref().is_some_and(|value| !value.is_empty()), "409 carries Retry-After");
    let globex_body = batch(json!([task(globex.project, "G")]));
    let other_token = send(&server, &globex.token, "", Some(b"overlap"), &globex_body).await;
    assert_eq!(other_token.status, 200, "another token's key does not collide with the running request");

    running.write_all(&body.as_bytes()[body.len() / 2..]).await.unwrap();
    let (status, first_bytes) = read_response(&mut running).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&first_bytes));
    let first: Value = serde_json::from_slice(&first_bytes).unwrap();
    let actions: Vec<&Value> = items(&first).iter().map(|item| &item["action"]).collect();
    assert_eq!(actions, ["created", "created"]);

    let retry = send(&server, &acme.token, "", Some(b"overlap"), &body).await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.replayed.as_deref(), Some("true"));
    assert_eq!(retry.bytes, first_bytes, "the retry of the rejected request gets the first response");
    assert_eq!(stored_ids(&server.test, acme.project).await.len(), 2);
}

async fn sigkill_after_commit_replays(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let tasks: Vec<Value> = (0..200).map(|index| task(acme.project, &format!("CRASH-{index:03}"))).collect();
    let body = batch(Value::Array(tasks));
    let key = "crash-run/batch-7";

    let (url, token, in_flight_body) = (server.url("/api/v1/tasks"), acme.token.clone(), body.clone());
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .header("Authorization", token)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", key)
            .body(in_flight_body)
            .send()
            .await
    });
    let mut committed = false;
    for _ in 0..2000 {
        if stored_ids(&server.test, acme.project).await.len() == 200 {
            committed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(committed, "the batch was committed within the polling bound");
    let test = server.kill_hard().await;
    let _ = in_flight.await;
    let ids_after_kill = stored_ids(&test, acme.project).await;

    let server = start(test).await;
    let retry = send(&server, &acme.token, "", Some(key.as_bytes()), &body).await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.replayed.as_deref(), Some("true"), "the response was stored with the commit");
    let processed = items(&retry.body);
    assert_eq!(processed.len(), 200);
    for item in processed {
        assert_eq!(item["action"], "created", "{item}");
        let app_id = item["task_app_id"].as_str().unwrap();
        assert_eq!(task_id(item), ids_after_kill[app_id], "{app_id} keeps its id");
    }
    assert_eq!(stored_ids(&server.test, acme.project).await, ids_after_kill, "nothing was created twice");
}

/// Checks that the typed client sends keys and dry runs, and reads every extension field.
async fn typed_client_uses_extensions(test: TestDatabase) {
    use leanmote_api::client::{Answer, ApiClient, PostOptions};

    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let client = ApiClient::new(&server.base_url, &acme.token);
    let mut item = task(acme.project, "TYPED");
    item["owner_name"] = json!("Ada");
    let tasks = [item];

    let dry = PostOptions { dry_run: true, ..PostOptions::default() };
    let Answer::Success(planned) = client.post_tasks_with(&tasks, &dry).await.unwrap() else { panic!("dry run") };
    assert_eq!((planned.processed[0].task_id, planned.processed[0].action.as_str()), (None, "created"));
    assert_eq!(planned.processed[0].warnings[0].code, "owner_name_without_owner_id");

    let keyed = PostOptions { idempotency_key: Some("typed-1".into()), dry_run: false };
    let Answer::Success(first) = client.post_tasks_with(&tasks, &keyed).await.unwrap() else { panic!("write") };
    let Answer::Success(again) = client.post_tasks_with(&tasks, &keyed).await.unwrap() else { panic!("replay") };
    assert!(!first.replayed);
    assert!(again.replayed);
    assert_eq!(first.processed, again.processed);
    assert!(first.processed[0].task_id.is_some());
    assert_eq!(first.processed[0].created_at.as_deref(), Some("2024-01-20 09:00:00"));
    assert!(first.processed[0].changed_fields.contains(&"owner_name".to_owned()));
}

infra_diesel::backend_tests!(
    typed_client_uses_extensions,
    page_example_response_pinned,
    changed_fields_on_create,
    identical_resend_changes_nothing,
    changed_fields_one_per_field,
    created_at_echoed_in_utc,
    warnings_per_item,
    stale_item_skipped_rest_applied,
    out_of_order_deliveries_keep_newer,
    dry_run_reports_and_writes_nothing,
    dry_run_rejects_like_real_run,
    dry_run_parameter_validated,
    keyed_retry_replays_byte_for_byte,
    same_key_other_body_is_422,
    invalid_keys_are_400,
    keys_of_two_tokens_independent,
    failed_request_releases_key,
    dry_run_ignores_key,
    stored_response_expires_after_ttl,
    concurrent_same_key_gets_409,
    sigkill_after_commit_replays,
);
