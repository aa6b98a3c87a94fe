//! Read routes: organizations, projects and tasks in the token's scope.

use actix_web::{HttpRequest, HttpResponse, web};
use domain::read::{ProjectListParams, TaskListParams};
use domain::{ProjectId, TaskId};

use crate::AppState;
use crate::error::ApiError;
use crate::query::QueryParams;
use crate::response::{OrganizationBody, ProjectBody, TaskBody};
use crate::routes::authenticate;

/// `GET /api/v1/organizations`.
pub async fn list_organizations(state: web::Data<AppState>, request: HttpRequest) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &request).await?;
    let organizations = state.reader.organizations(&caller).await?;
    let organizations: Vec<OrganizationBody> = organizations.into_iter().map(OrganizationBody::from).collect();
    Ok(success(serde_json::json!({ "organizations": organizations }), None))
}

/// `GET /api/v1/projects?organization_id=&active=`.
pub async fn list_projects(state: web::Data<AppState>, request: HttpRequest) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &request).await?;
    let mut query = QueryParams::read(&request, &["organization_id", "active"])?;
    let params = ProjectListParams {
        organization_id: query.take("organization_id"),
        active: query.take("active"),
        repeated: query.repeated(),
    };
    let projects = state.reader.projects(&caller, params).await?;
    let projects: Vec<ProjectBody> = projects.into_iter().map(ProjectBody::from).collect();
    Ok(success(serde_json::json!({ "projects": projects }), None))
}

/// `GET /api/v1/projects/{project_id}`.
pub async fn get_project(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &request).await?;
    let id = path_id(&path, "project_id")?;
    let project = state.reader.project(&caller, ProjectId(id)).await?;
    Ok(success(serde_json::json!({ "project": ProjectBody::from(project) }), None))
}

/// `GET /api/v1/tasks?project_id=&updated_since=&parent_task_id=&task_app_id=&limit=&cursor=`.
pub async fn list_tasks(state: web::Data<AppState>, request: HttpRequest) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &request).await?;
    let names = ["project_id", "updated_since", "parent_task_id", "task_app_id", "limit", "cursor"];
    let mut query = QueryParams::read(&request, &names)?;
    let params = TaskListParams {
        project_id: query.take("project_id"),
        updated_since: query.take("updated_since"),
        parent_task_id: query.take("parent_task_id"),
        task_app_id: query.take("task_app_id"),
        limit: query.take("limit"),
        cursor: query.take("cursor"),
        repeated: query.repeated(),
    };
    let page = state.reader.tasks(&caller, params).await?;
    let tasks: Vec<TaskBody> = page.tasks.into_iter().map(TaskBody::from).collect();
    let meta = serde_json::json!({ "next_cursor": page.next_cursor, "limit": page.limit });
    Ok(success(serde_json::json!({ "tasks": tasks }), Some(meta)))
}

/// `GET /api/v1/tasks/{task_id}`.
pub async fn get_task(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &request).await?;
    let id = path_id(&path, "task_id")?;
    let task = state.reader.task(&caller, TaskId(id)).await?;
    Ok(success(serde_json::json!({ "task": TaskBody::from(task) }), None))
}

fn success(data: serde_json::Value, meta: Option<serde_json::Value>) -> HttpResponse {
    let mut body = serde_json::json!({ "status": "success", "data": data });
    if let Some(meta) = meta {
        body["meta"] = meta;
    }
    HttpResponse::Ok().json(body)
}

/// Parses an id in the path; anything but a positive integer names no resource.
fn path_id(path: &str, field: &'static str) -> Result<i64, ApiError> {
    match path.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::BadRequest(format!("invalid {field} {path:?} in the path; expected a positive integer"))),
    }
}
