//! A small typed client of the API, used by the importer, the tests and the docs.
//!
//! ```no_run
//! use leanmote_api::client::{Answer, ApiClient};
//! use serde_json::json;
//!
//! # async fn sync() -> anyhow::Result<()> {
//! let client = ApiClient::new("http://127.0.0.1:8080", "lm-...");
//! let tasks = [json!({
//!     "project_id": 1, "task_app_id": "TASK-001", "task_name": "Implement OAuth2 Authentication",
//!     "created_at": "2024-01-20 09:00:00", "parent_task_id": 3
//! })];
//! match client.post_tasks(&tasks).await? {
//!     Answer::Success(processed) => println!("{} is task {:?}, {}", processed[0].task_app_id, processed[0].task_id, processed[0].action),
//!     Answer::Failure { status, error } => {
//!         for detail in error.error.details {
//!             eprintln!("{status} {}: {} ({})", detail.field, detail.message, detail.code);
//!         }
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

/// Client bound to one server and one token.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base_url: String,
    token: String,
}

/// One processed task of a successful `POST /api/v1/tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProcessedTask {
    pub project_id: i64,
    /// `None` only in a dry run, for a task that would be created.
    pub task_id: Option<i64>,
    pub task_app_id: String,
    /// `created`, `updated` or `skipped`.
    pub action: String,
    /// `stale` on skipped items.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub changed_fields: Vec<String>,
    /// `created_at` as stored, in UTC.
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub warnings: Vec<ItemWarning>,
}

/// A non-fatal remark on a processed task.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ItemWarning {
    pub code: String,
    pub message: String,
}

/// Options of [`ApiClient::post_tasks_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostOptions {
    /// Key sent as `Idempotency-Key`: a retry with the same key and tasks replays the first response.
    pub idempotency_key: Option<String>,
    /// Flag that asks the server to check the batch and report what would happen, writing nothing.
    pub dry_run: bool,
}

/// A successful batch: its items, and whether the answer is a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    pub processed: Vec<ProcessedTask>,
    /// True when the server sent a stored answer again (`Idempotent-Replayed: true`).
    pub replayed: bool,
}

/// One failing field of an error response.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorDetail {
    pub index: Option<usize>,
    pub field: String,
    pub code: String,
    pub message: String,
}

/// An error response: `{"status":"error","message":...,"error":{"code":...,"details":[...]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiErrorBody {
    pub message: String,
    pub error: ErrorCode,
}

/// The `error` member of an error response.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorCode {
    pub code: String,
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
}

/// Server response: the parsed success data, or the status and error body.
#[derive(Debug, Clone)]
pub enum Answer<T> {
    Success(T),
    Failure { status: u16, error: ApiErrorBody },
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct TasksData {
    processed_tasks: Vec<ProcessedTask>,
}

/// Data of a successful `POST /api/v1/projects`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProcessedProject {
    pub project_id: i64,
    pub project_app_id: String,
    pub action: String,
}

impl ApiClient {
    /// Builds a client for the server at `base_url` (for example `http://127.0.0.1:8080`).
    pub fn new(base_url: &str, token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }

    /// Sends a batch of task objects.
    ///
    /// # Errors
    /// Returns an error when the server cannot be reached or responds with something that is not the API's JSON.
    pub async fn post_tasks(&self, tasks: &[Value]) -> anyhow::Result<Answer<Vec<ProcessedTask>>> {
        Ok(match self.post_tasks_with(tasks, &PostOptions::default()).await? {
            Answer::Success(outcome) => Answer::Success(outcome.processed),
            Answer::Failure { status, error } => Answer::Failure { status, error },
        })
    }

    /// Sends a batch of task objects with an idempotency key, or as a dry run.
    ///
    /// # Errors
    /// Returns an error when the server cannot be reached or responds with something that is not the API's JSON.
    pub async fn post_tasks_with(
        &self,
        tasks: &[Value],
        options: &PostOptions,
    ) -> anyhow::Result<Answer<BatchOutcome>> {
        let path = if options.dry_run { "/api/v1/tasks?dry_run=true" } else { "/api/v1/tasks" };
        let mut request = self.http.post(format!("{}{path}", self.base_url));
        if let Some(key) = &options.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let (answer, replayed) = self.send::<TasksData>(request, path, &serde_json::json!({ "tasks": tasks })).await?;
        Ok(match answer {
            Answer::Success(data) => Answer::Success(BatchOutcome { processed: data.processed_tasks, replayed }),
            Answer::Failure { status, error } => Answer::Failure { status, error },
        })
    }

    /// Creates or updates one project.
    ///
    /// # Errors
    /// Returns an error when the server cannot be reached or responds with something that is not the API's JSON.
    pub async fn upsert_project(&self, project: &Value) -> anyhow::Result<Answer<ProcessedProject>> {
        self.post("/api/v1/projects", project).await
    }

    /// Sends a request body that is already JSON (`{"tasks": [...]}`), for
    /// callers that encode their batches ahead of time, such as a benchmark.
    ///
    /// # Errors
    /// Returns an error when the server cannot be reached or responds with something that is not the API's JSON.
    pub async fn post_tasks_body(&self, body: impl Into<reqwest::Body>) -> anyhow::Result<Answer<Vec<ProcessedTask>>> {
        let path = "/api/v1/tasks";
        let request = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        Ok(match self.send_request::<TasksData>(request, path).await?.0 {
            Answer::Success(data) => Answer::Success(data.processed_tasks),
            Answer::Failure { status, error } => Answer::Failure { status, error },
        })
    }

    /// Reads one gauge or counter without labels from `GET /metrics`, or
    /// `None` when the server does not report it.
    ///
    /// # Errors
    /// Returns an error when the server cannot be reached or responds with a status other than 200.
    pub async fn metric(&self, name: &str) -> anyhow::Result<Option<f64>> {
        let response = self.http.get(format!("{}/metrics", self.base_url)).send().await?.error_for_status()?;
        let text = response.text().await?;
        Ok(text
            .lines()
            .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .find_map(|value| value.trim().parse().ok()))
    }

    async fn post<T: for<'de> Deserialize<'de>>(&self, path: &str, body: &Value) -> anyhow::Result<Answer<T>> {
        let request = self.http.post(format!("{}{path}", self.base_url));
        Ok(self.send(request, path, body).await?.0)
    }

    /// Sends a POST with the token and a JSON body; also reports whether the response is a replay.
    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<(Answer<T>, bool)> {
        self.send_request(request.json(body), path).await
    }

    /// Sends a POST whose body is already set, with the token; also reports whether the response is a replay.
    async fn send_request<T: for<'de> Deserialize<'de>>(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> anyhow::Result<(Answer<T>, bool)> {
        let url = format!("{}{path}", self.base_url);
        let response = request.header(reqwest::header::AUTHORIZATION, &self.token).send().await.with_context(|| {
            format!("failed to send POST {url}; is the server running there? Set --url or LEANMOTE_URL")
        })?;
        let replayed = response.headers().get("idempotent-replayed").is_some_and(|value| value == "true");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.with_context(|| format!("failed to read the answer of POST {url}"))?;
        if status == 200 {
            let envelope: Envelope<T> = serde_json::from_slice(&bytes).with_context(|| {
                format!("unexpected success body from POST {url}: {}", String::from_utf8_lossy(&bytes))
            })?;
            return Ok((Answer::Success(envelope.data), replayed));
        }
        let error: ApiErrorBody = serde_json::from_slice(&bytes).with_context(|| {
            format!("unexpected {status} body from POST {url}: {}", String::from_utf8_lossy(&bytes))
        })?;
        Ok((Answer::Failure { status, error }, replayed))
    }
}
