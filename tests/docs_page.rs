//! The `/docs` reference page, loaded in headless Chromium: its script renders
//! the served OpenAPI document, tasks route included, with no internet access.
//!
//! Needs Debian's `chromium` package. Without it the test prints SKIPPED, or
//! fails when `LEANMOTE_REQUIRE_BROWSER=1`.

mod support;

use infra_diesel::testing::TestDatabase;
use support::start;

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_page_lists_tasks_route() {
    if !std::path::Path::new(CHROMIUM).exists() {
        let required = std::env::var("LEANMOTE_REQUIRE_BROWSER").is_ok_and(|value| value == "1");
        assert!(!required, "LEANMOTE_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install chromium)");
        eprintln!("SKIPPED: {CHROMIUM} is not installed");
        return;
    }
    let server = start(TestDatabase::sqlite().await).await;
    let profile = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(CHROMIUM)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=10000", "--dump-dom", &server.url("/docs")])
        .output()
        .await
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        dom.contains(r#"<span class="method post">post</span><code>/api/v1/tasks</code>"#),
        "rendered page:\n{dom}"
    );
    assert!(dom.contains("TaskBatchRequest"), "the request schema is listed");
    assert!(dom.contains("TASK-001"), "the public page's example is shown");
}
