//! Organizations, projects and reading tasks back, over HTTP, on SQLite and PostgreSQL.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use infra_diesel::testing::TestDatabase;
use serde_json::{Value, json};
use support::{Server, post_raw, post_tasks, start, task, tenant};

async fn get(server: &Server, token: &str, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new().get(server.url(path)).header("Authorization", token).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Pages through a project's tasks and returns every task seen, in order.
async fn all_pages(server: &Server, token: &str, query: &str) -> Vec<Value> {
    let mut tasks = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/tasks?{query}&cursor={cursor}"),
            None => format!("/api/v1/tasks?{query}"),
        };
        let (status, body) = get(server, token, &path).await;
        assert_eq!(status, 200, "{body}");
        tasks.extend(body["data"]["tasks"].as_array().unwrap().iter().cloned());
        match body["meta"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return tasks,
        }
    }
}

async fn client_walkthrough_with_token_only(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;

    let (status, body) = get(&server, &acme.token, "/api/v1/organizations").await;
    assert_eq!(status, 200, "{body}");
    let organizations = body["data"]["organizations"].as_array().unwrap();
    assert_eq!(organizations.len(), 1);
    let organization_id = organizations[0]["organization_id"].as_i64().unwrap();
    assert_eq!(organization_id, acme.organization.get());

    let project = json!({"project_app_id": "WEB", "name": "Web board", "organization_id": organization_id, "active": 1, "created_at": "2024-01-01T00:00:00Z"});
    let (status, body) =
        post_raw(&server.url("/api/v1/projects"), Some(&acme.token), Some("application/json"), project.to_string())
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["action"], "created");
    let project_id = body["data"]["project_id"].as_i64().unwrap();
    let (status, again) =
        post_raw(&server.url("/api/v1/projects"), Some(&acme.token), Some("application/json"), project.to_string())
            .await;
    assert_eq!((status, again["data"]["action"].as_str()), (200, Some("updated")));
    assert_eq!(again["data"]["project_id"], project_id);

    let sent: Vec<Value> = (0..250)
        .map(|index| {
            let mut item = task(domain::ProjectId(project_id), &format!("WEB-{index}"));
            item["task_name"] = json!(format!(" Title\t{index} \u{a0}"));
            item["owner_name"] = json!("Ada");
            if index > 0 {
                item["parent_task_app_id"] = json!("WEB-0");
            }
            item
        })
        .collect();
    let (status, body) = post_tasks(&server, &acme.token, Value::Array(sent.clone())).await;
    assert_eq!(status, 200, "{}", body["message"]);

    let read = all_pages(
        &server,
        &acme.token,
        &format!("project_id={project_id}&limit=100&updated_since=2024-01-01%2000:00:00"),
    )
    .await;
    assert_eq!(read.len(), sent.len());
    // Ids follow key order within a batch, so match tasks by key rather than position.
    let sent_by_key: BTreeMap<&str, &Value> =
        sent.iter().map(|item| (item["task_app_id"].as_str().unwrap(), item)).collect();
    let root_id = read.iter().find(|stored| stored["task_app_id"] == "WEB-0").unwrap()["task_id"].clone();
    for stored in &read {
        let item = sent_by_key[stored["task_app_id"].as_str().unwrap()];
        for field in ["project_id", "task_app_id", "task_name", "created_at", "owner_name"] {
            assert_eq!(stored[field], item[field], "{field} of {}", item["task_app_id"]);
        }
        assert_eq!(stored["task_url"], Value::Null);
        assert!(stored["inserted_at"].as_str().is_some_and(|value| value.len() == 19));
        if stored["task_app_id"] != "WEB-0" {
            assert_eq!(stored["parent_task_id"], root_id);
        }
    }

    let (status, one) = get(&server, &acme.token, &format!("/api/v1/tasks/{}", read[7]["task_id"])).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["data"]["task"], read[7]);

    let children = all_pages(&server, &acme.token, &format!("project_id={project_id}&parent_task_id={root_id}")).await;
    assert_eq!(children.len(), 249);
    let by_key = all_pages(&server, &acme.token, &format!("project_id={project_id}&task_app_id=WEB-42")).await;
    assert_eq!(by_key.len(), 1);
    let future =
        all_pages(&server, &acme.token, &format!("project_id={project_id}&updated_since=2999-01-01T00:00:00Z")).await;
    assert!(future.is_empty());

    let (status, body) = get(&server, &acme.token, &format!("/api/v1/projects/{project_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["project"]["project_app_id"], "WEB");
    assert_eq!(body["data"]["project"]["created_at"], "2024-01-01 00:00:00");
    let (_, body) = get(&server, &acme.token, "/api/v1/projects?active=1").await;
    assert_eq!(body["data"]["projects"].as_array().unwrap().len(), 2, "the tenant's seed board and WEB");
}

async fn projects_batch_all_or_nothing(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let globex = tenant(&test, "globex", 0).await;
    let server = start(test).await;
    let url = server.url("/api/v1/projects");
    let project = |key: &str, organization: i64| json!({"project_app_id": key, "name": key, "organization_id": organization, "active": true});

    let bad = json!({"projects": [project("A", acme.organization.get()), project("B", globex.organization.get()), {"name": ""}]});
    let (status, body) = post_raw(&url, Some(&acme.token), Some("application/json"), bad.to_string()).await;
    assert_eq!(status, 400, "{body}");
    let fields: Vec<&str> =
        body["error"]["details"].as_array().unwrap().iter().map(|detail| detail["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"projects[1].organization_id"), "{fields:?}");
    assert!(fields.contains(&"projects[2].name"), "{fields:?}");
    let (_, listed) = get(&server, &acme.token, "/api/v1/projects").await;
    assert_eq!(listed["data"]["projects"].as_array().unwrap().len(), 1, "nothing of the failed batch was written");

    let good = json!({"projects": [project("A", acme.organization.get()), project("B", acme.organization.get()), project("A", acme.organization.get())]});
    let (status, body) = post_raw(&url, Some(&acme.token), Some("application/json"), good.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let actions: Vec<&str> = body["data"]["processed_projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["created", "created", "updated"]);
}

async fn invalid_read_parameters_listed(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let (status, body) =
        get(&server, &acme.token, "/api/v1/tasks?limit=5000&cursor=zzz&updated_since=2024-13-01").await;
    assert_eq!(status, 400, "{body}");
    let fields: BTreeSet<&str> =
        body["error"]["details"].as_array().unwrap().iter().map(|detail| detail["field"].as_str().unwrap()).collect();
    assert_eq!(fields, BTreeSet::from(["project_id", "limit", "cursor", "updated_since"]));
    // A repeated parameter is listed beside the other invalid ones, and unknown ones are ignored.
    let repeated = format!("/api/v1/tasks?project_id={0}&project_id={0}&limit=0&x=1&x=2", acme.project);
    let (status, body) = get(&server, &acme.token, &repeated).await;
    assert_eq!(status, 400, "{body}");
    let details: Vec<(&str, &str)> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|detail| (detail["field"].as_str().unwrap(), detail["code"].as_str().unwrap()))
        .collect();
    assert_eq!(details, vec![("project_id", "invalid_value"), ("limit", "invalid_value")]);
    let (status, _) = get(&server, &acme.token, "/api/v1/tasks/abc").await;
    assert_eq!(status, 400);
}

async fn other_tenant_sees_nothing(test: TestDatabase) {
    let acme = tenant(&test, "acme", 2).await;
    let globex = tenant(&test, "globex", 0).await;
    let server = start(test).await;
    let acme_task =
        all_pages(&server, &acme.token, &format!("project_id={}", acme.project)).await[0]["task_id"].clone();

    let (status, body) = get(&server, &globex.token, "/api/v1/organizations").await;
    assert_eq!(status, 200);
    let ids: Vec<i64> = body["data"]["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|org| org["organization_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![globex.organization.get()]);

    for path in ["/api/v1/projects".to_owned(), format!("/api/v1/projects?organization_id={}", acme.organization)] {
        let (status, body) = get(&server, &globex.token, &path).await;
        assert_eq!(status, 200);
        let projects = body["data"]["projects"].as_array().unwrap();
        assert!(
            projects.iter().all(|project| project["organization_id"] == globex.organization.get()),
            "{path}: {body}"
        );
    }
    for path in [
        format!("/api/v1/projects/{}", acme.project),
        format!("/api/v1/tasks/{acme_task}"),
        format!("/api/v1/tasks?project_id={}", acme.project),
    ] {
        let (status, body) = get(&server, &globex.token, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (missing_status, missing) = get(&server, &globex.token, "/api/v1/tasks/999999").await;
    let (foreign_status, foreign) = get(&server, &globex.token, &format!("/api/v1/tasks/{acme_task}")).await;
    assert_eq!(missing_status, foreign_status);
    assert_eq!(
        missing["error"]["details"][0]["code"], foreign["error"]["details"][0]["code"],
        "a foreign id reads like a missing one"
    );
}

async fn paging_stable_under_writes(test: TestDatabase) {
    const TASKS: usize = 25_000;
    let acme = tenant(&test, "acme", 0).await;
    let server = Arc::new(start(test).await);
    for chunk in 0..TASKS / 1000 {
        let items: Vec<Value> =
            (0..1000).map(|index| task(acme.project, &format!("K-{}", chunk * 1000 + index))).collect();
        let (status, body) = post_tasks(&server, &acme.token, Value::Array(items)).await;
        assert_eq!(status, 200, "{}", body["message"]);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (server, token, stop, project) = (Arc::clone(&server), acme.token.clone(), Arc::clone(&stop), acme.project);
        tokio::spawn(async move {
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) && rounds < 10_000 {
                let items: Vec<Value> = (0..50)
                    .map(|offset| {
                        let mut item = task(project, &format!("K-{}", (rounds * 397 + offset * 499) % TASKS));
                        item["task_name"] = json!(format!("Renamed {rounds}"));
                        item
                    })
                    .collect();
                let (status, _) = post_tasks(&server, &token, Value::Array(items)).await;
                assert_eq!(status, 200);
                rounds += 1;
            }
            rounds
        })
    };

    let seen = all_pages(
        &server,
        &acme.token,
        &format!("project_id={}&limit=1000&updated_since=2000-01-01%2000:00:00", acme.project),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.await.unwrap();
    assert!(rounds > 0, "the writer ran while paging");

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for task in &seen {
        *counts.entry(task["task_app_id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(counts.len(), TASKS, "every task seen");
    assert!(counts.values().all(|count| *count == 1), "no task seen twice");
}

infra_diesel::backend_tests!(
    client_walkthrough_with_token_only,
    invalid_read_parameters_listed,
    projects_batch_all_or_nothing,
    other_tenant_sees_nothing,
    paging_stable_under_writes,
);
