//! The OpenAPI 3.1 document of the API, served at `GET /api/v1/openapi.json`.
//!
//! The operations below describe the handlers in `routes.rs` and `reads.rs`.
//! Tests fail when a route of `routes.rs` or a task field that the decoder
//! reads is missing here.

#![expect(dead_code, reason = "the schema types and operation stubs exist only for the generated document")]

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Body of `POST /api/v1/tasks`.
#[derive(ToSchema)]
#[schema(example = json!({"tasks": [{
    "project_id": 1, "task_app_id": "TASK-001", "task_name": "Implement OAuth2 Authentication",
    "task_url": "https://client.com/tasks/TASK-001", "owner_id": "user-123", "owner_name": "John Doe",
    "parent_task_id": 3, "created_at": "2024-01-20 09:00:00"
}]}))]
struct TaskBatchRequest {
    /// 1 to 1000 tasks, applied in order, all or nothing.
    tasks: Vec<TaskItem>,
}

/// One task to create or update, identified by (`project_id`, `task_app_id`).
/// On update, a field left out keeps its stored value and `null` clears it.
#[derive(ToSchema)]
struct TaskItem {
    /// Leanmote id of the project; must be in the token's organizations.
    #[schema(minimum = 1)]
    project_id: i64,
    /// The task's id in the client's tool: 1-255 characters, no control characters.
    #[schema(min_length = 1, max_length = 255)]
    task_app_id: String,
    /// Title, not blank, at most 1024 characters, stored exactly as sent.
    #[schema(min_length = 1, max_length = 1024)]
    task_name: String,
    /// `YYYY-MM-DD HH:MM:SS` in UTC; a `T` separator, fractions and RFC 3339 offsets are also accepted.
    #[schema(example = "2024-01-20 09:00:00")]
    created_at: String,
    /// Absolute http(s) URL, at most 2048 characters.
    #[schema(max_length = 2048)]
    task_url: Option<String>,
    /// At most 255 characters, no control characters.
    #[schema(max_length = 255)]
    owner_id: Option<String>,
    /// At most 255 characters.
    #[schema(max_length = 255)]
    owner_name: Option<String>,
    /// Leanmote id of the parent, in the same project.
    #[schema(minimum = 1)]
    parent_task_id: Option<i64>,
    /// The parent's `task_app_id` in the same project, stored or in the same batch.
    parent_task_app_id: Option<String>,
    /// When the task last changed in the client's tool, in the formats of `created_at`.
    /// When the stored task has a newer one, the item is skipped (`action: "skipped"`, `reason: "stale"`).
    #[schema(example = "2024-01-21 10:30:00")]
    source_updated_at: Option<String>,
}

/// Success of `POST /api/v1/tasks`.
#[derive(ToSchema)]
#[schema(example = json!({"status": "success", "message": "Tasks processed successfully",
    "data": {"processed_tasks": [{"project_id": 1, "task_id": 4, "task_app_id": "TASK-001", "action": "created",
        "changed_fields": ["task_name", "task_url", "owner_id", "owner_name", "parent_task_id", "created_at"],
        "created_at": "2024-01-20 09:00:00", "warnings": []}]}}))]
struct TasksProcessed {
    status: String,
    message: String,
    data: ProcessedTasks,
}

#[derive(ToSchema)]
struct ProcessedTasks {
    /// One entry per request item, in request order.
    processed_tasks: Vec<ProcessedTask>,
    /// Flag present, and true, only in the response of a dry run (`?dry_run=true`).
    dry_run: Option<bool>,
}

#[derive(ToSchema)]
struct ProcessedTask {
    project_id: i64,
    /// Leanmote id of the task; `null` only in a dry run, for a task that would be created.
    task_id: Option<i64>,
    task_app_id: String,
    action: Action,
    /// Present only when `action` is `skipped`.
    reason: Option<SkipReason>,
    /// Stored fields whose value the item changed, in this order: `task_name`, `task_url`, `owner_id`,
    /// `owner_name`, `parent_task_id`, `created_at`, `source_updated_at`. Empty when nothing changed;
    /// then the task's `updated_at` is left as it was.
    changed_fields: Vec<String>,
    /// `created_at` as stored, in UTC (`YYYY-MM-DD HH:MM:SS`).
    created_at: String,
    /// Remarks that did not stop the item.
    warnings: Vec<ItemWarning>,
}

/// Outcome of the item, as the database saw it.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
enum Action {
    Created,
    Updated,
    Skipped,
}

/// Why an item was skipped: `stale`, the stored task has a newer `source_updated_at`.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
enum SkipReason {
    Stale,
}

/// A non-fatal remark: `unknown_field`, `created_at_in_future` or `owner_name_without_owner_id`.
#[derive(ToSchema)]
struct ItemWarning {
    code: String,
    message: String,
}

/// Body of `POST /api/v1/projects`: one project, or `{"projects": [...]}` with up to 1000.
#[derive(ToSchema)]
struct ProjectRequest {
    /// The project's id in the client's tool, unique within the organization.
    project_app_id: String,
    name: String,
    organization_id: i64,
    /// 1, 0, true or false; kept on update when left out, true on create.
    active: Option<bool>,
    /// Same formats as a task's `created_at`; kept on update when left out.
    created_at: Option<String>,
}

/// Success of `POST /api/v1/projects` with one project.
#[derive(ToSchema)]
struct ProjectProcessed {
    status: String,
    message: String,
    data: ProcessedProject,
}

#[derive(ToSchema)]
struct ProcessedProject {
    project_id: i64,
    project_app_id: String,
    action: ProjectAction,
}

/// Outcome of a project upsert, as the database saw it.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
enum ProjectAction {
    Created,
    Updated,
}

/// An organization in the token's scope.
#[derive(ToSchema)]
struct Organization {
    organization_id: i64,
    name: String,
    created_at: String,
}

/// A project, as read back.
#[derive(ToSchema)]
struct Project {
    project_id: i64,
    organization_id: i64,
    project_app_id: String,
    name: String,
    active: bool,
    created_at: String,
    inserted_at: String,
    updated_at: String,
}

/// A task with every stored field, as read back.
#[derive(ToSchema)]
struct Task {
    task_id: i64,
    project_id: i64,
    task_app_id: String,
    task_name: String,
    task_url: Option<String>,
    owner_id: Option<String>,
    owner_name: Option<String>,
    parent_task_id: Option<i64>,
    created_at: String,
    /// The last `source_updated_at` applied, or `null`.
    source_updated_at: Option<String>,
    inserted_at: String,
    /// When Leanmote last changed the task; a write that changed nothing leaves it.
    updated_at: String,
}

/// `GET /api/v1/tasks`: one page of tasks.
#[derive(ToSchema)]
struct TaskPage {
    status: String,
    data: TaskPageData,
    meta: PageMeta,
}

#[derive(ToSchema)]
struct TaskPageData {
    tasks: Vec<Task>,
}

/// `GET /api/v1/tasks/{task_id}`.
#[derive(ToSchema)]
struct TaskRead {
    status: String,
    data: TaskReadData,
}

#[derive(ToSchema)]
struct TaskReadData {
    task: Task,
}

/// `GET /api/v1/organizations`.
#[derive(ToSchema)]
struct OrganizationList {
    status: String,
    data: OrganizationListData,
}

#[derive(ToSchema)]
struct OrganizationListData {
    organizations: Vec<Organization>,
}

/// `GET /api/v1/projects`.
#[derive(ToSchema)]
struct ProjectList {
    status: String,
    data: ProjectListData,
}

#[derive(ToSchema)]
struct ProjectListData {
    projects: Vec<Project>,
}

/// `GET /api/v1/projects/{project_id}`.
#[derive(ToSchema)]
struct ProjectRead {
    status: String,
    data: ProjectReadData,
}

#[derive(ToSchema)]
struct ProjectReadData {
    project: Project,
}

/// Paging information of a task listing.
#[derive(ToSchema)]
struct PageMeta {
    /// Pass it as `cursor` to get the next page; null on the last page.
    next_cursor: Option<String>,
    limit: u32,
}

/// Every error response.
#[derive(ToSchema)]
#[schema(example = json!({"status": "error", "message": "1 item(s) have invalid fields. Nothing was written.",
    "error": {"code": "invalid_input", "details": [{"index": 0, "field": "tasks[0].created_at",
    "code": "invalid_timestamp", "message": "invalid timestamp \"2024-02-30 10:00:00\": no such date or time of day"}]}}))]
struct ErrorResponse {
    status: String,
    message: String,
    error: ErrorObject,
}

#[derive(ToSchema)]
struct ErrorObject {
    /// Machine-readable code, such as `invalid_input` or `not_found`.
    code: String,
    /// Every failing field of every item.
    details: Vec<ErrorDetail>,
}

#[derive(ToSchema)]
struct ErrorDetail {
    /// Position of the item in the request, when the error concerns an item.
    index: Option<usize>,
    field: String,
    code: String,
    message: String,
}

/// Creates or updates a batch of tasks.
///
/// With `Idempotency-Key`, the first successful response is stored and a retry with the same
/// body gets it back byte for byte, with `Idempotent-Replayed: true`.
#[utoipa::path(post, path = "/api/v1/tasks", request_body = TaskBatchRequest, security(("token" = [])),
    params(
        ("dry_run" = Option<bool>, Query, description = "true: check the batch and report what would happen, writing nothing"),
        ("Idempotency-Key" = Option<String>, Header, description = "1-255 printable ASCII characters naming this request; a retry with the same key and body replays the first response"),
    ),
    responses(
        (status = 200, body = TasksProcessed, headers(("Idempotent-Replayed" = String, description = "true on a replayed response"))),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 408, body = ErrorResponse),
        (status = 409, body = ErrorResponse, description = "A request with the same Idempotency-Key is still running"),
        (status = 413, body = ErrorResponse), (status = 415, body = ErrorResponse),
        (status = 422, body = ErrorResponse, description = "The Idempotency-Key was used for a different request"),
        (status = 429, body = ErrorResponse),
        (status = 500, body = ErrorResponse), (status = 503, body = ErrorResponse),
    ))]
fn post_tasks() {}

/// Lists a project's tasks, page by page in id order.
#[utoipa::path(get, path = "/api/v1/tasks", security(("token" = [])),
    params(
        ("project_id" = i64, Query, description = "The project"),
        ("updated_since" = Option<String>, Query, description = "Only tasks written at or after this time"),
        ("parent_task_id" = Option<i64>, Query, description = "Only the children of this task"),
        ("task_app_id" = Option<String>, Query, description = "Only the task with this external id"),
        ("limit" = Option<u32>, Query, description = "Page size, 1-1000, default 100"),
        ("cursor" = Option<String>, Query, description = "meta.next_cursor of the previous page"),
    ),
    responses((status = 200, body = TaskPage), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 429, body = ErrorResponse),
        (status = 503, body = ErrorResponse)))]
fn list_tasks() {}

/// Returns one task.
#[utoipa::path(get, path = "/api/v1/tasks/{task_id}", security(("token" = [])), params(("task_id" = i64, Path)),
    responses((status = 200, body = TaskRead), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 429, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn get_task() {}

/// Lists the token's organizations.
#[utoipa::path(get, path = "/api/v1/organizations", security(("token" = [])),
    responses((status = 200, body = OrganizationList), (status = 401, body = ErrorResponse), (status = 429, body = ErrorResponse),
        (status = 503, body = ErrorResponse)))]
fn list_organizations() {}

/// Creates or updates one project, or a batch of them.
#[utoipa::path(post, path = "/api/v1/projects", request_body = ProjectRequest, security(("token" = [])),
    responses((status = 200, body = ProjectProcessed), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 408, body = ErrorResponse),
        (status = 413, body = ErrorResponse), (status = 415, body = ErrorResponse), (status = 429, body = ErrorResponse),
        (status = 503, body = ErrorResponse)))]
fn post_project() {}

/// Lists the token's projects.
#[utoipa::path(get, path = "/api/v1/projects", security(("token" = [])),
    params(("organization_id" = Option<i64>, Query), ("active" = Option<String>, Query, description = "1, 0, true or false")),
    responses((status = 200, body = ProjectList), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 429, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn list_projects() {}

/// Returns one project.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}", security(("token" = [])), params(("project_id" = i64, Path)),
    responses((status = 200, body = ProjectRead), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 429, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn get_project() {}

/// Returns 200 while the process runs.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "`{\"status\":\"ok\"}`")))]
fn healthz() {}

/// Returns 200 when the database responds, 503 otherwise.
#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "`{\"status\":\"ready\"}`"), (status = 503, body = ErrorResponse)))]
fn readyz() {}

/// Prometheus metrics: requests by route and status, latency, tasks written, pool use, retries, heap.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
fn metrics() {}

/// Serves a human-readable reference page rendered from this document, with no external assets.
#[utoipa::path(get, path = "/docs", responses((status = 200, description = "HTML page", content_type = "text/html")))]
fn docs() {}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", responses((status = 200, description = "The OpenAPI document")))]
fn openapi_json() {}

struct TokenScheme;

impl Modify for TokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "Authorization",
            "`lm-<token>` or `Bearer lm-<token>`",
        )));
        openapi.components.get_or_insert_with(Default::default).add_security_scheme("token", scheme);
    }
}

/// The generated document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Leanmote task ingestion API", description = "Push tasks from your tools into Leanmote."),
    paths(post_tasks, list_tasks, get_task, list_organizations, post_project, list_projects, get_project, healthz, readyz, metrics, docs, openapi_json),
    modifiers(&TokenScheme)
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests;
