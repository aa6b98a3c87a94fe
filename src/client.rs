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
//!     Answer::Success(processed) => println!("{} is task {}, {}", processed[0].task_app_id, processed[0].task_id, processed[0].action),
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
    pub task_id: i64,
    pub task_app_id: String,
    pub action: String,
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
        let body = serde_json::json!({ "tasks": tasks });
        let answer: Answer<TasksData> = self.post("/api/v1/tasks", &body).await?;
        Ok(match answer {
            Answer::Success(data) => Answer::Success(data.processed_tasks),
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

    async fn post<T: for<'de> Deserialize<'de>>(&self, path: &str, body: &Value) -> anyhow::Result<Answer<T>> {
        let url = format!("{}{path}", self.base_url);
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::AUTHORIZATION, &self.token)
            .json(body)
            .send()
            .await
            .with_context(|| {
                format!("failed to send POST {url}; is the server running there? Set --url or LEANMOTE_URL")
            })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.with_context(|| format!("failed to read the answer of POST {url}"))?;
        if status == 200 {
            let envelope: Envelope<T> = serde_json::from_slice(&bytes).with_context(|| {
                format!("unexpected success body from POST {url}: {}", String::from_utf8_lossy(&bytes))
            })?;
            return Ok(Answer::Success(envelope.data));
        }
        let error: ApiErrorBody = serde_json::from_slice(&bytes).with_context(|| {
            format!("unexpected {status} body from POST {url}: {}", String::from_utf8_lossy(&bytes))
        })?;
        Ok(Answer::Failure { status, error })
    }
}
