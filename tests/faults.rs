//! Faults: a killed server, a vanished database, and a graceful stop.

mod support;

use std::time::{Duration, Instant};

use infra_diesel::testing::TestDatabase;
use serde_json::{Value, json};
use support::proxy::Proxy;
use support::{post_tasks, send_signal, start, start_with, task, tenant};

/// Counts the stored tasks of a project whose key starts with `prefix`.
async fn count_with_prefix(test: &TestDatabase, project: domain::ProjectId, prefix: &str) -> usize {
    let tasks = support::all_tasks(test, project).await;
    tasks.iter().filter(|task| task.key.app_id.as_str().starts_with(prefix)).count()
}

fn big_batch(project: domain::ProjectId, prefix: &str) -> Value {
    let items: Vec<Value> = (0..1000)
        .map(|index| {
            let mut item = task(project, &format!("{prefix}-{index:04}"));
            item["task_name"] = json!("x".repeat(1000));
            item["task_url"] = json!(format!("https://tracker.example/{}", "p".repeat(1500)));
            if index % 3 == 2 {
                item["parent_task_app_id"] = json!(format!("{prefix}-{:04}", index - 1));
            }
            item
        })
        .collect();
    Value::Array(items)
}

async fn sigkill_mid_batch_is_all_or_nothing(mut test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    // Kill at growing delays, so some attempts land before, during and after the commit.
    for (attempt, delay_ms) in [5u64, 40, 80, 150, 300].into_iter().enumerate() {
        let server = start(test).await;
        let prefix = format!("KILL{attempt}");
        let url = server.url("/api/v1/tasks");
        let body = json!({ "tasks": big_batch(acme.project, &prefix) }).to_string();
        let token = acme.token.clone();
        let request = tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .header("Authorization", token)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
        });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        test = server.kill_hard().await;
        let _ = request.await;

        let stored = count_with_prefix(&test, acme.project, &prefix).await;
        assert!(stored == 0 || stored == 1000, "attempt {attempt}: {stored} of 1000 tasks stored after SIGKILL");
    }
    let server = start(test).await;
    let (status, body) = post_tasks(&server, &acme.token, json!([task(acme.project, "AFTER")])).await;
    assert_eq!(status, 200, "the database is usable after the kills: {body}");
}

async fn sigterm_finishes_in_flight_request(test: TestDatabase) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let acme = tenant(&test, "acme", 0).await;
    let server = start_with(test, &[], &[("RUST_LOG", "info")]).await;
    let pid = server.pid();
    let address = server.base_url.trim_start_matches("http://").to_owned();
    let body = json!({ "tasks": big_batch(acme.project, "TERM") }).to_string();

    // One raw connection: a first request makes a worker own it, so the upload below is in
    // flight on the server, not waiting in the listen queue, when SIGTERM arrives.
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    let mut warm_up = vec![0u8; 4096];
    let read = stream.read(&mut warm_up).await.unwrap();
    assert!(String::from_utf8_lossy(&warm_up[..read]).starts_with("HTTP/1.1 200"));

    // `Expect: 100-continue` makes the server report when it has read the head: from then on
    // the request is in flight, not a keep-alive connection that shutdown may close.
    let head = format!(
        "POST /api/v1/tasks HTTP/1.1\r\nHost: test\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        acme.token,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = vec![0u8; 64];
    let read = stream.read(&mut interim).await.unwrap();
    assert!(String::from_utf8_lossy(&interim[..read]).starts_with("HTTP/1.1 100 Continue"), "no 100 Continue");

    let (first_half, second_half) = body.as_bytes().split_at(body.len() / 2);
    stream.write_all(first_half).await.unwrap();
    send_signal(pid, "TERM");
    for chunk in second_half.chunks(200_000) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        stream.write_all(chunk).await.unwrap();
    }
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the upload under way at SIGTERM finished: {}",
        answer.lines().next().unwrap_or_default()
    );
    assert_eq!(server.wait().await, Some(0), "the server exited cleanly");
}

infra_diesel::backend_tests!(sigkill_mid_batch_is_all_or_nothing, sigterm_finishes_in_flight_request);

/// PostgreSQL going away gives 503 with Retry-After, readiness follows it, and the service recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_gives_503_then_recovers() {
    let Some(test) = TestDatabase::postgres().await else { return };
    let acme = tenant(&test, "acme", 0).await;
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxied_url = test.url.replace("127.0.0.1:5432", &proxy.address.to_string());
    assert_ne!(proxied_url, test.url, "the test database URL names 127.0.0.1:5432");
    let server = start_with(TestDatabase::attach(&proxied_url).await, &[], &[]).await;
    let client = reqwest::Client::new();

    let (status, _) = post_tasks(&server, &acme.token, json!([task(acme.project, "BEFORE")])).await;
    assert_eq!(status, 200);

    proxy.cut().await;
    let started = Instant::now();
    let response = client
        .post(server.url("/api/v1/tasks"))
        .header("Authorization", &acme.token)
        .json(&json!({"tasks": [task(acme.project, "DURING")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "service_unavailable");
    assert!(started.elapsed() < Duration::from_secs(15), "the answer came without hanging");
    assert_eq!(client.get(server.url("/readyz")).send().await.unwrap().status().as_u16(), 503);
    assert_eq!(client.get(server.url("/healthz")).send().await.unwrap().status().as_u16(), 200);

    proxy.restore();
    let mut recovered = false;
    for _ in 0..50 {
        if client.get(server.url("/readyz")).send().await.unwrap().status().as_u16() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "readiness recovers when the database is back");
    let (status, body) = post_tasks(&server, &acme.token, json!([task(acme.project, "AFTER")])).await;
    assert_eq!(status, 200, "{body}");
    drop(test);
}
