//! Concurrent writers on SQLite and PostgreSQL: one row per key, true actions,
//! no 500 and no "database is locked" reaching a client.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use domain::ports::TaskStore;
use domain::read::TaskFilter;
use futures::future::join_all;
use futures::{StreamExt, stream};
use infra_diesel::testing::TestDatabase;
use serde_json::{Value, json};
use support::{Server, post_tasks, start, task, tenant};

const KEYS: usize = 60;

/// Builds a batch over every key, in an order that depends on `seed`, half of
/// them naming their parent by key so parents created by one batch serve another.
fn overlapping_batch(project: domain::ProjectId, seed: usize) -> Value {
    let mut keys: Vec<usize> = (0..KEYS).collect();
    keys.rotate_left(seed * 7 % KEYS);
    if seed % 2 == 1 {
        keys.reverse();
    }
    let items: Vec<Value> = keys
        .into_iter()
        .map(|key| {
            let mut item = task(project, &format!("K-{key}"));
            item["task_name"] = json!(format!("Written by batch {seed}"));
            if key % 2 == 1 {
                item["parent_task_app_id"] = json!(format!("K-{}", key - 1));
            }
            item
        })
        .collect();
    Value::Array(items)
}

async fn stored_keys(test: &TestDatabase, project: domain::ProjectId) -> BTreeMap<String, usize> {
    let filter = TaskFilter {
        project_id: project,
        after: None,
        limit: 1000,
        updated_since: None,
        parent_id: None,
        app_id: None,
    };
    let tasks = test.database.list_tasks(filter).await.unwrap();
    tasks.iter().fold(BTreeMap::new(), |mut counts, task| {
        *counts.entry(task.key.app_id.as_str().to_owned()).or_default() += 1;
        counts
    })
}

/// Sends 24 overlapping batches from 12 clients spread over `servers`.
async fn hammer(servers: &[&Server], token: &str, project: domain::ProjectId) -> Vec<(u16, Value)> {
    let requests = (0..24).map(|seed| {
        let server = servers[seed % servers.len()];
        async move { post_tasks(server, token, overlapping_batch(project, seed)).await }
    });
    stream::iter(requests).buffer_unordered(12).collect().await
}

fn assert_all_ok(answers: &[(u16, Value)]) {
    for (status, body) in answers {
        assert_eq!(*status, 200, "{body}");
    }
    let created: usize = answers
        .iter()
        .flat_map(|(_, body)| body["data"]["processed_tasks"].as_array().unwrap().clone())
        .filter(|item| item["action"] == "created")
        .count();
    assert_eq!(created, KEYS, "each key was created by exactly one request");
}

async fn overlapping_batches_one_row_per_key(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let answers = hammer(&[&server], &acme.token, acme.project).await;
    assert_all_ok(&answers);
    let counts = stored_keys(&server.test, acme.project).await;
    assert_eq!(counts.len(), KEYS);
    assert!(counts.values().all(|count| *count == 1));
}

async fn concurrent_creates_one_created(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let answers =
        join_all((0..16).map(|_| post_tasks(&server, &acme.token, json!([task(acme.project, "ONLY")])))).await;
    let actions: Vec<&str> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            body["data"]["processed_tasks"][0]["action"].as_str().unwrap()
        })
        .collect();
    assert_eq!(actions.iter().filter(|action| **action == "created").count(), 1, "{actions:?}");
    let ids: BTreeSet<i64> =
        answers.iter().map(|(_, body)| body["data"]["processed_tasks"][0]["task_id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 1);
}

infra_diesel::backend_tests!(overlapping_batches_one_row_per_key, concurrent_creates_one_created);

/// Two server processes on one PostgreSQL database, the way the service scales out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_postgres() {
    let Some(test) = TestDatabase::postgres().await else { return };
    let acme = tenant(&test, "acme", 0).await;
    let second_url = test.url.clone();
    let first = start(test).await;
    let second = start(TestDatabase::attach(&second_url).await).await;

    let answers = hammer(&[&first, &second], &acme.token, acme.project).await;
    assert_all_ok(&answers);
    let counts = stored_keys(&first.test, acme.project).await;
    assert_eq!(counts.len(), KEYS);
    assert!(counts.values().all(|count| *count == 1));

    let racers = (0..16).map(|index| {
        let server = if index % 2 == 0 { &first } else { &second };
        post_tasks(server, &acme.token, json!([task(acme.project, "RACE")]))
    });
    let answers = join_all(racers).await;
    let created = answers.iter().filter(|(_, body)| body["data"]["processed_tasks"][0]["action"] == "created").count();
    assert_eq!(created, 1);
}

/// Runs `serve` on `bind` against `database_url` and returns its output.
/// The server must stop within 10 s, so a server that starts fails the test.
async fn serve_until_exit(database_url: &str, bind: &str) -> std::process::Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_leanmote-api"))
        .args(["serve", "--bind", bind])
        .env("DATABASE_URL", database_url)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(std::time::Duration::from_secs(10), run)
        .await
        .expect("the server must stop at start, not serve")
        .expect("run the server")
}

/// A second server on one SQLite file stops at start with a message that
/// names the file, while admin commands still work beside the first server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_server_on_sqlite_file_fails() {
    let test = TestDatabase::sqlite().await;
    let url = test.url.clone();
    let first = start(test).await;
    let run = |arguments: &'static [&'static str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_leanmote-api"))
            .args(arguments)
            .env("DATABASE_URL", &url)
            .kill_on_drop(true)
            .output()
    };

    let second = serve_until_exit(&url, "127.0.0.1:0").await;
    assert!(!second.status.success(), "the second server must not start");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another server is already using the SQLite database"), "{stderr}");

    // A symbolic link names the same file, so it must meet the same lock.
    let path = url.strip_prefix("sqlite://").unwrap_or(&url);
    let link = format!("{path}-link.sqlite3");
    std::os::unix::fs::symlink(path, &link).expect("link the database file");
    let through_link = serve_until_exit(&link, "127.0.0.1:0").await;
    assert!(!through_link.status.success(), "the server through the link must not start");
    let stderr = String::from_utf8_lossy(&through_link.stderr);
    assert!(stderr.contains("another server is already using the SQLite database"), "{stderr}");

    let admin = run(&["create-organization", "--name", "Beside"]).await.expect("run an admin command");
    assert!(admin.status.success(), "{}", String::from_utf8_lossy(&admin.stderr));
    let health = reqwest::get(first.url("/healthz")).await.expect("reach the first server");
    assert_eq!(health.status(), 200);
}

/// A server whose address is in use stops at start, and its error names how to choose another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_address_names_the_fix() {
    let test = TestDatabase::sqlite().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let address = listener.local_addr().expect("read the bound address").to_string();
    let output = serve_until_exit(&test.url, &address).await;
    assert!(!output.status.success(), "the server must not start on a taken address");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("failed to listen on {address}")), "{stderr}");
    assert!(stderr.contains("--bind or LEANMOTE_BIND"), "{stderr}");
}
