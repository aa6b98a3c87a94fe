//! Routes and handlers.

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::body::{read_body, require_identity_encoding, require_json};
use crate::decode;
use crate::error::ApiError;
use crate::response::{ProjectProcessed, ProjectsProcessed};
use crate::{AppState, reads};

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            resource("/api/v1/tasks", "GET, POST")
                .route(web::post().to(crate::task_writes::post_tasks))
                .route(web::get().to(reads::list_tasks)),
        )
        .service(resource("/api/v1/tasks/{task_id}", "GET").route(web::get().to(reads::get_task)))
        .service(resource("/api/v1/organizations", "GET").route(web::get().to(reads::list_organizations)))
        .service(resource("/api/v1/projects/{project_id}", "GET").route(web::get().to(reads::get_project)))
        .service(
            resource("/api/v1/projects", "GET, POST")
                .route(web::post().to(post_project))
                .route(web::get().to(reads::list_projects)),
        )
        .service(resource("/api/v1/openapi.json", "GET").route(web::get().to(openapi_json)))
        .service(resource("/docs", "GET").route(web::get().to(docs_page)))
        .service(resource("/metrics", "GET").route(web::get().to(metrics_text)))
        .service(resource("/readyz", "GET").route(web::get().to(readyz)))
        .service(resource("/healthz", "GET").route(web::get().to(healthz)));
}

/// `POST /api/v1/projects`: create or update one project, or a batch of them.
async fn post_project(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (caller, body) = authenticated_body(&state, &request, payload).await?;
    match decode_off_worker(body, decode::projects).await? {
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

/// Authenticates the request, then checks its content type and encoding and reads its body.
async fn authenticated_body(
    state: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<(domain::auth::Caller, actix_web::web::Bytes), ApiError> {
    let caller = authenticate(state, request).await?;
    require_json(request)?;
    require_identity_encoding(request)?;
    let body = read_body(request, payload, state.max_body_bytes, state.body_timeout).await?;
    Ok((caller, body))
}

/// Bodies above this size are decoded on the blocking pool, so that a large
/// upload does not stall the other requests of its worker thread.
const DECODE_INLINE_MAX_BYTES: usize = 256 * 1024;

/// Decodes a body with `decode`, on the blocking pool when it is large.
pub(crate) async fn decode_off_worker<T: Send + 'static>(
    body: actix_web::web::Bytes,
    decode: fn(&[u8]) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    if body.len() <= DECODE_INLINE_MAX_BYTES {
        return decode(&body);
    }
    web::block(move || decode(&body)).await.map_err(|error| {
        ApiError::Internal(domain::StoreError::internal(format!(
            "decoding a body on the blocking pool failed: {error}"
        )))
    })?
}

/// Builds a resource whose unsupported methods get the JSON 405 naming `allowed`.
fn resource(path: &str, allowed: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |request: HttpRequest| method_not_allowed(request, allowed)))
}

/// Authenticates the request's token and counts the request against the token's rate limit.
pub async fn authenticate(state: &AppState, request: &HttpRequest) -> Result<domain::auth::Caller, ApiError> {
    let authorization = request.headers().get(header::AUTHORIZATION).map(|value| value.to_str().unwrap_or_default());
    let caller = state.authenticator.authenticate(authorization).await?;
    tracing::Span::current().record("token.id", caller.token_id.get());
    if let Some(decision) = state.rate_limiter.check(caller.token_id, std::time::Instant::now()) {
        request.extensions_mut().insert(decision);
        if !decision.allowed {
            tracing::warn!(token.id = caller.token_id.get(), limit = decision.limit, "rate limit reached");
            return Err(ApiError::RateLimited {
                limit: decision.limit,
                retry_after: decision.reset_after.as_secs().max(1),
            });
        }
    }
    Ok(caller)
}

/// `GET /readyz`: 200 when storage responds to a query, 503 otherwise.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.readiness.ping().await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}

/// `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of this API.
async fn openapi_json() -> HttpResponse {
    use utoipa::OpenApi;
    HttpResponse::Ok().json(crate::openapi::ApiDoc::openapi())
}

/// `GET /docs`: a reference page that renders the OpenAPI document, with no external assets.
async fn docs_page() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(include_str!("../assets/docs.html"))
}

/// `GET /metrics`: Prometheus text exposition of the process's metrics.
async fn metrics_text(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
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
