//! Demo mode, as `make run` starts it: the printed curl command works as printed.

mod support;

use infra_diesel::testing::TestDatabase;
use serde_json::Value;
use support::start_with;

/// Runs the printed command with bash and parses curl's output.
async fn run_printed(command: &str) -> Value {
    let output = tokio::process::Command::new("bash").arg("-c").arg(command).output().await.expect("run bash");
    assert!(output.status.success(), "curl failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&output.stdout)))
}

async fn printed_curl_creates_then_updates(test: TestDatabase) {
    let mut server = start_with(test, &["--demo"], &[]).await;
    let mut printed = Vec::new();
    while let Some(line) = server.stdout.recv().await {
        let done = line.trim_start().starts_with("curl ");
        printed.push(line);
        if done {
            break;
        }
    }
    let curl = printed.last().expect("a curl line").trim().to_owned();
    let token = printed.iter().map(|line| line.trim()).find(|line| line.starts_with("lm-")).expect("the token line");
    assert!(curl.contains(token), "the curl line carries the printed token");
    assert!(curl.contains(leanmote_api::demo::PAGE_EXAMPLE), "the curl line carries the page's example unchanged");

    let first = run_printed(&curl).await;
    assert_eq!(first["status"], "success", "{first}");
    let item = &first["data"]["processed_tasks"][0];
    assert_eq!(item["action"], "created", "{first}");
    let second = run_printed(&curl).await;
    assert_eq!(second["data"]["processed_tasks"][0]["action"], "updated", "{second}");
    assert_eq!(second["data"]["processed_tasks"][0]["task_id"], item["task_id"]);
}

async fn demo_skips_non_empty_database(test: TestDatabase) {
    support::tenant(&test, "existing", 0).await;
    let mut server = start_with(test, &["--demo"], &[]).await;
    let line = server.stdout.recv().await.expect("a demo line");
    assert!(line.contains("already has data"), "{line}");
}

infra_diesel::backend_tests!(printed_curl_creates_then_updates, demo_skips_non_empty_database);
