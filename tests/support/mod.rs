//! Black-box test support: the real binary on a random port, on a fresh database.

#![allow(dead_code, reason = "each test binary uses a different part of this module")]

pub mod proxy;

use std::process::Stdio;

use domain::admin::ProjectSpec;
use domain::auth::{Caller, Scope};
use domain::input::{FieldInput, TaskInput};
use domain::{OrganizationId, ProjectId, TokenId};
use infra_diesel::testing::TestDatabase;
use leanmote_api::client::ApiClient;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `leanmote-api serve` process, killed on drop.
pub struct Server {
    pub(crate) child: Child,
    pub base_url: String,
    pub test: TestDatabase,
    /// Lines the process printed on standard output after the listening line.
    pub stdout: tokio::sync::mpsc::UnboundedReceiver<String>,
}

/// Starts the binary on `test`'s database with extra arguments and environment.
pub async fn start_with(test: TestDatabase, arguments: &[&str], environment: &[(&str, &str)]) -> Server {
    start_process(test, arguments, environment, Stdio::inherit()).await
}

/// Starts the binary with JSON logs at level info written to `log_file`.
pub async fn start_logging_to(test: TestDatabase, log_file: &std::path::Path) -> Server {
    let file = std::fs::File::create(log_file).expect("create the log file");
    let environment = [("RUST_LOG", "info"), ("LEANMOTE_LOG_FORMAT", "json")];
    start_process(test, &[], &environment, Stdio::from(file)).await
}

async fn start_process(test: TestDatabase, arguments: &[&str], environment: &[(&str, &str)], stderr: Stdio) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leanmote-api"));
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--workers", "2"])
        .args(arguments)
        .env("DATABASE_URL", &test.url)
        .env("RUST_LOG", std::env::var("LEANMOTE_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true);
    for (name, value) in environment {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start leanmote-api");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let base_url = loop {
        let line = lines.next_line().await.expect("read stdout").expect("the server exited before listening");
        if let Some(address) = line.strip_prefix("listening on ") {
            break address.to_owned();
        }
    };
    let (sender, stdout) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    Server { child, base_url, test, stdout }
}

/// Starts the binary on `test`'s database with default settings.
pub async fn start(test: TestDatabase) -> Server {
    start_with(test, &[], &[]).await
}

impl Server {
    /// Builds the full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Stops the process.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// An organization with one project, and a token scoped to it.
pub struct Tenant {
    pub organization: OrganizationId,
    pub project: ProjectId,
    pub token: String,
}

impl Tenant {
    /// Returns a typed client for this tenant.
    pub fn client(&self, server: &Server) -> ApiClient {
        ApiClient::new(&server.base_url, &self.token)
    }
}

/// Creates an organization, a project with `seed_tasks` tasks and a token, straight in the database.
pub async fn tenant(test: &TestDatabase, name: &str, seed_tasks: usize) -> Tenant {
    let admin = leanmote_api::admin_use_cases(&test.database);
    let organization = admin.create_organization(name).await.unwrap();
    let spec = ProjectSpec {
        organization_id: organization.id,
        app_id: format!("{name}-BOARD"),
        name: "Board".into(),
        active: true,
        created_at: None,
    };
    let (project, _) = admin.upsert_project(spec).await.unwrap();
    if seed_tasks > 0 {
        let store = std::sync::Arc::new(test.database.clone());
        let ingestion = domain::ingest::TaskIngestion::new(store, std::sync::Arc::new(domain::clock::SystemClock));
        let caller = Caller { token_id: TokenId(0), label: "seed".into(), scope: Scope::new([organization.id]) };
        let inputs = (1..=seed_tasks)
            .map(|number| TaskInput {
                project_id: FieldInput::Value(project.id.get()),
                task_app_id: FieldInput::Value(format!("SEED-{number}")),
                task_name: FieldInput::Value(format!("Seed {number}")),
                created_at: FieldInput::Value("2024-01-01 00:00:00".into()),
                ..TaskInput::default()
            })
            .collect();
        ingestion.ingest(&caller, inputs).await.unwrap();
    }
    let (_, secret) = admin.create_token(name, vec![organization.id], None, rand::random()).await.unwrap();
    Tenant { organization: organization.id, project: project.id, token: secret.expose().to_owned() }
}

/// Sends a raw POST and returns the status and JSON body.
pub async fn post_raw(
    url: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(url).body(body);
    if let Some(token) = token {
        request = request.header("Authorization", token);
    }
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    let response = request.send().await.expect("send request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("read body");
    let body = serde_json::from_str(&text).unwrap_or_else(|error| panic!("body is not JSON ({error}): {text}"));
    (status, body)
}

/// Sends `{"tasks": tasks}` as JSON with the tenant's token.
pub async fn post_tasks(server: &Server, token: &str, tasks: Value) -> (u16, Value) {
    let body = serde_json::json!({ "tasks": tasks }).to_string();
    post_raw(&server.url("/api/v1/tasks"), Some(token), Some("application/json"), body).await
}

/// Builds a valid task object for `project`.
pub fn task(project: ProjectId, app_id: &str) -> Value {
    serde_json::json!({
        "project_id": project.get(),
        "task_app_id": app_id,
        "task_name": format!("Task {app_id}"),
        "created_at": "2024-01-20 09:00:00",
    })
}

/// Sends `{"tasks": tasks}` and returns only the status, for load loops.
pub async fn post_status(client: &reqwest::Client, url: &str, token: &str, tasks: &Value) -> u16 {
    let body = serde_json::json!({ "tasks": tasks }).to_string();
    let response =
        client.post(url).header("Authorization", token).header("Content-Type", "application/json").body(body);
    response.send().await.expect("send request").status().as_u16()
}

impl Server {
    /// Returns the process id, to send signals.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the server is running")
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait(mut self) -> Option<i32> {
        self.child.wait().await.ok().and_then(|status| status.code())
    }

    /// Kills the process with SIGKILL and hands back its database.
    pub async fn kill_hard(mut self) -> TestDatabase {
        self.child.kill().await.expect("SIGKILL the server");
        self.test
    }
}

/// Sends `signal` (such as "TERM") to a process.
pub fn send_signal(pid: u32, signal: &str) {
    let status =
        std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Reads every stored task of a project straight from the database, page by page in id order.
pub async fn all_tasks(test: &TestDatabase, project: ProjectId) -> Vec<domain::task::StoredTask> {
    use domain::ports::TaskStore;
    use domain::read::TaskFilter;

    let mut tasks = Vec::new();
    loop {
        let after = tasks.last().map(|task: &domain::task::StoredTask| task.id);
        let filter =
            TaskFilter { project_id: project, after, limit: 1000, updated_since: None, parent_id: None, app_id: None };
        let page = test.database.list_tasks(filter).await.expect("list a page of tasks");
        if page.is_empty() {
            return tasks;
        }
        tasks.extend(page);
    }
}
