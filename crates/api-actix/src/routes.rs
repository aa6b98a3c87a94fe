//! Routes and handlers.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::decode::{self, read_body, require_json, task_batch};
use crate::error::ApiError;
use crate::response::{ProjectProcessed, ProjectsProcessed, TasksProcessed};
use crate::{AppState, reads};

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/api/v1/tasks")
                .route(web::post().to(post_tasks))
                .route(web::get().to(reads::list_tasks))
                .default_service(web::to(|request: HttpRequest| method_not_allowed(request, "GET, POST"))),
        )
        .service(
            web::resource("/api/v1/tasks/{task_id}")
                .route(web::get().to(reads::get_task))
                .default_service(web::to(|request: HttpRequest| method_not_allowed(request, "GET"))),
        )
        .service(
            web::resource("/api/v1/organizations")
                .route(web::get().to(reads::list_organizations))
                .default_service(web::to(|request: HttpRequest| method_not_allowed(request, "GET"))),
        )
        .service(
            web::resource("/api/v1/projects/{project_id}")
                .route(web::get().to(reads::get_project))
                .default_service(web::to(|request: HttpRequest| method_not_allowed(request, "GET"))),
        )
        .service(
            web::resource("/api/v1/projects")
                .route(web::post().to(post_project))
                .route(web::get().to(reads::list_projects))
                .default_service(web::to(|request: HttpRequest| method_not_allowed(request, "GET, POST"))),
        )
        .service(
            web::resource("/healthz")
                .route(web::get().to(healthz))
                .default_service(web::to(|request: HttpRequest| method_not_allowed(request, "GET"))),
        );
}

/// `POST /api/v1/tasks`: authenticate, read and decode the batch, ingest it.
async fn post_tasks(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &request).await?;
    require_json(&request)?;
    let body = read_body(&request, payload, state.max_body_bytes).await?;
    let inputs = task_batch(&body)?;

    let processed = state.ingestion.ingest(&caller, inputs).await?;
    let created = processed.iter().filter(|task| task.action == domain::task::Action::Created).count();
    tracing::info!(
        token.id = caller.token_id.get(),
        tasks.created = created,
        tasks.updated = processed.len() - created,
        "tasks ingested"
    );
    Ok(HttpResponse::Ok().json(TasksProcessed::new(processed)))
}

/// `POST /api/v1/projects`: create or update one project, or a batch of them.
async fn post_project(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &request).await?;
    require_json(&request)?;
    let body = read_body(&request, payload, state.max_body_bytes).await?;
    match decode::projects(&body)? {
        decode::ProjectBody::One(input) => {
            let (project, action) = state.projects.upsert(&caller, input).await?;
            let (project_id, action_name) = (project.id.get(), action.as_str());
            tracing::info!(
                token.id = caller.token_id.get(),
                project.id = project_id,
                action = action_name,
                "project upserted"
            );
            Ok(HttpResponse::Ok().json(ProjectProcessed::new(project, action)))
        }
        decode::ProjectBody::Batch(inputs) => {
            let processed = state.projects.upsert_batch(&caller, inputs).await?;
            tracing::info!(token.id = caller.token_id.get(), projects = processed.len(), "projects upserted");
            Ok(HttpResponse::Ok().json(ProjectsProcessed::new(processed)))
        }
    }
}

pub async fn authenticate(state: &AppState, request: &HttpRequest) -> Result<domain::auth::Caller, ApiError> {
    let authorization = request.headers().get(header::AUTHORIZATION).map(|value| value.to_str().unwrap_or_default());
    Ok(state.authenticator.authenticate(authorization).await?)
}

/// `GET /healthz`: returns 200 while the process is alive.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Returns the JSON 404 for any path that no route matches.
pub async fn route_not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound { method: request.method().to_string(), path: request.path().to_owned() })
}

async fn method_not_allowed(request: HttpRequest, allowed: &'static str) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed { method: request.method().to_string(), path: request.path().to_owned(), allowed })
}
