//! Per-token rate limits, body time limits, health and readiness.

mod support;

use infra_diesel::testing::TestDatabase;
use serde_json::{Value, json};
use support::{post_raw, start, start_with, task, tenant};

async fn rate_limit_per_token(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let globex = tenant(&test, "globex", 0).await;
    let server = start_with(test, &[], &[("LEANMOTE_RATE_LIMIT_PER_MINUTE", "3")]).await;
    let client = reqwest::Client::new();
    let send = |token: &str| {
        client
            .post(server.url("/api/v1/tasks"))
            .header("Authorization", token.to_owned())
            .json(&json!({"tasks": [task(acme.project, "LIMITED")]}))
            .send()
    };

    for remaining in ["2", "1", "0"] {
        let response = send(&acme.token).await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()["x-ratelimit-limit"], "3");
        assert_eq!(response.headers()["x-ratelimit-remaining"], remaining);
        assert!(response.headers().contains_key("x-ratelimit-reset"));
    }
    let rejected = send(&acme.token).await.unwrap();
    assert_eq!(rejected.status().as_u16(), 429);
    let retry_after: u64 = rejected.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(rejected.headers()["x-ratelimit-remaining"], "0");
    let body: Value = rejected.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    let other =
        client.get(server.url("/api/v1/organizations")).header("Authorization", &globex.token).send().await.unwrap();
    assert_eq!(other.status().as_u16(), 200, "another token has its own budget");
}

async fn stalled_body_gets_408(test: TestDatabase) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let acme = tenant(&test, "acme", 0).await;
    let server = start_with(test, &[], &[("LEANMOTE_BODY_TIMEOUT_SECS", "1")]).await;
    let address = server.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/v1/tasks HTTP/1.1\r\nHost: test\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"ta",
        acme.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

/// Sends `body` as one chunk of a chunked request, leaves out the final
/// zero-size chunk, closes the sending side and returns what came back.
async fn send_chunk_without_end(server: &support::Server, token: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let address = server.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "POST /api/v1/tasks HTTP/1.1\r\nHost: test\r\nAuthorization: {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    tokio::time::timeout(std::time::Duration::from_secs(10), read).await.expect("the server closes in time").ok();
    String::from_utf8_lossy(&answer).into_owned()
}

/// actix-http reads a chunked body whose sender closes before the final chunk
/// as complete. JSON is self-delimiting and a batch is one object, so a cut
/// body either fails to parse or is the whole document: nothing partial is
/// ever stored.
async fn cut_chunked_body_stores_nothing_partial(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let batch = json!({"tasks": [task(acme.project, "CUT-1"), task(acme.project, "CUT-2")]}).to_string();
    let listed = || async {
        let response = reqwest::Client::new()
            .get(server.url(&format!("/api/v1/tasks?project_id={}", acme.project)))
            .header("Authorization", &acme.token)
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        body["data"]["tasks"].as_array().unwrap().iter().map(|task| task["task_app_id"].clone()).collect::<Vec<_>>()
    };

    for cut in [batch.len() / 2, batch.len() - 1] {
        let answer = send_chunk_without_end(&server, &acme.token, &batch[..cut]).await;
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 400"), "cut at {cut}: {answer}");
        assert!(listed().await.is_empty(), "a body cut at byte {cut} stored tasks");
    }
    let answer = send_chunk_without_end(&server, &acme.token, &batch).await;
    if answer.starts_with("HTTP/1.1 200") {
        assert_eq!(listed().await, vec![json!("CUT-1"), json!("CUT-2")], "a whole document is stored whole");
    } else {
        assert!(listed().await.is_empty(), "{answer}");
    }
}

/// Hundreds of connections that never finish their request head neither crash
/// the server nor keep it from serving once they are gone. Each worker keeps
/// at most `--max-connections` of them; the rest wait in the listen queue.
async fn many_stalled_connections_are_bounded(test: TestDatabase) {
    use tokio::io::AsyncWriteExt;

    let acme = tenant(&test, "acme", 0).await;
    let server = start_with(test, &[], &[("LEANMOTE_MAX_CONNECTIONS", "32")]).await;
    let address = server.base_url.trim_start_matches("http://").to_owned();
    let mut stalled = Vec::new();
    for _ in 0..400 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.expect("the listen queue takes the connection");
        stream.write_all(b"POST /api/v1/tasks HTTP/1.1\r\nHost: test\r\n").await.unwrap();
        stalled.push(stream);
    }
    drop(stalled);

    let client = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..100 {
        let answer = client.get(server.url("/healthz")).timeout(std::time::Duration::from_secs(2)).send().await;
        if answer.is_ok_and(|response| response.status() == 200) {
            healthy = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(healthy, "the server answers again once the stalled connections are gone");
    let (status, body) = support::post_tasks(&server, &acme.token, json!([task(acme.project, "AFTER")])).await;
    assert_eq!(status, 200, "{body}");
}

async fn health_and_readiness(test: TestDatabase) {
    let server = start(test).await;
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], status);
    }
    let document: Value = reqwest::get(server.url("/api/v1/openapi.json")).await.unwrap().json().await.unwrap();
    assert!(document["paths"]["/api/v1/tasks"]["post"].is_object());
    let page = reqwest::get(server.url("/docs")).await.unwrap();
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = page.text().await.unwrap();
    assert!(page.contains("/api/v1/openapi.json"));
    assert!(!page.contains("http://"), "the page loads nothing from other hosts");
    assert!(!page.contains("https://"), "the page loads nothing from other hosts");
}

async fn compressed_body_is_415(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/tasks"))
        .header("Authorization", &acme.token)
        .header("Content-Encoding", "gzip")
        .json(&json!({"tasks": [task(acme.project, "GZ")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    let (status, _) = post_raw(
        &server.url("/api/v1/tasks"),
        Some(&acme.token),
        None,
        json!({"tasks": [task(acme.project, "PLAIN")]}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
}

async fn request_id_on_every_log_line(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let folder = tempfile::tempdir().unwrap();
    let log_file = folder.path().join("server.log");
    let server = support::start_logging_to(test, &log_file).await;
    let client = reqwest::Client::new();

    let response = client
        .post(server.url("/api/v1/tasks"))
        .header("Authorization", &acme.token)
        .header("X-Request-Id", "sync-run-42")
        .json(&json!({"tasks": [task(acme.project, "LOGGED")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["x-request-id"], "sync-run-42", "the client's id is echoed");
    let rejected = client
        .post(server.url("/api/v1/tasks"))
        .header("Authorization", &acme.token)
        .header("X-Request-Id", "sync-run-43")
        .json(&json!({"tasks": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status().as_u16(), 400);
    let generated = client.get(server.url("/healthz")).send().await.unwrap();
    assert!(generated.headers()["x-request-id"].len() >= 16, "an id is generated when none is sent");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let text = std::fs::read_to_string(&log_file).unwrap();
    let lines: Vec<Value> = text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    let request_lines: Vec<&Value> = lines
        .iter()
        .filter(|line| line["span"]["request.id"] == "sync-run-42" || line["request.id"] == "sync-run-42")
        .collect();
    assert!(!request_lines.is_empty(), "log lines of the request carry its id:\n{text}");
    let closing = request_lines.iter().find(|line| line["message"] == "request handled").expect("a closing line");
    assert_eq!(closing["http.status"], 200);
    assert_eq!(closing["span"]["http.route"], "/api/v1/tasks");
    assert_eq!(closing["span"]["token.id"], json!(acme_token_id(&text)));
    assert_eq!(closing["span"]["tasks.created"], 1);
    assert!(!text.contains(&acme.token), "the token never appears in logs");
    let rejected_line = lines
        .iter()
        .find(|line| line["span"]["request.id"] == "sync-run-43" && line["message"] == "request handled")
        .expect("a closing line for the rejected request");
    assert_eq!(rejected_line["span"]["error.code"], "invalid_input", "a 4xx line names the error code");
}

async fn metrics_count_requests(test: TestDatabase) {
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    for app_id in ["M-1", "M-2", "M-1"] {
        let (status, _) = support::post_tasks(&server, &acme.token, json!([task(acme.project, app_id)])).await;
        assert_eq!(status, 200);
    }
    let text = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    let value = |name: &str, labels: &[&str]| -> f64 {
        let line = text
            .lines()
            .find(|line| line.starts_with(name) && labels.iter().all(|label| line.contains(label)))
            .unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(
        value("leanmote_http_requests_total", &["method=\"POST\"", "route=\"/api/v1/tasks\"", "status=\"200\""]),
        3.0
    );
    assert_eq!(value("leanmote_tasks_written_total", &["action=\"created\""]), 2.0);
    assert_eq!(value("leanmote_tasks_written_total", &["action=\"updated\""]), 1.0);
    assert_eq!(value("leanmote_http_request_duration_seconds_count", &["route=\"/api/v1/tasks\""]), 3.0);
    assert!(value("leanmote_db_pool_connections", &[]) >= 1.0);
    let allocated = value("leanmote_heap_allocated_bytes", &[]);
    assert!(allocated > 0.0, "the binary's allocator reports its live heap");
    assert!(value("leanmote_heap_resident_bytes", &[]) >= allocated);
    assert!(text.contains("leanmote_http_request_duration_seconds_bucket"), "latency is a histogram");
}

/// On PostgreSQL, a batch that gives a stored task another parent starts
/// over under the exclusive project lock, and the metric counts it by reason.
#[tokio::test]
async fn postgres_metrics_count_exclusive_restarts() {
    let Some(test) = TestDatabase::postgres().await else { return };
    let acme = tenant(&test, "acme", 0).await;
    let server = start(test).await;
    let mut child = task(acme.project, "CHILD");
    child["parent_task_app_id"] = json!("PARENT-1");
    let batch = json!([task(acme.project, "PARENT-1"), task(acme.project, "PARENT-2"), child]);
    assert_eq!(support::post_tasks(&server, &acme.token, batch).await.0, 200);
    child["parent_task_app_id"] = json!("PARENT-2");
    assert_eq!(support::post_tasks(&server, &acme.token, json!([child])).await.0, 200);

    let text = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    let line = text
        .lines()
        .find(|line| line.starts_with("leanmote_exclusive_restarts_total") && line.contains("reason=\"moves_task\""))
        .unwrap_or_else(|| panic!("no exclusive restart counted in:\n{text}"));
    assert_eq!(line.rsplit(' ').next(), Some("1"));
}

/// Reads the token id the server logged, so the test does not assume it.
fn acme_token_id(log: &str) -> i64 {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find_map(|line| line["span"]["token.id"].as_i64())
        .expect("a line with token.id")
}

infra_diesel::backend_tests!(
    metrics_count_requests,
    request_id_on_every_log_line,
    rate_limit_per_token,
    stalled_body_gets_408,
    cut_chunked_body_stores_nothing_partial,
    many_stalled_connections_are_bounded,
    health_and_readiness,
    compressed_body_is_415
);
