//! The HTTP layer of Leanmote's task ingestion API, on actix-web 4.
//!
//! It maps HTTP to the domain's use cases and back: routing, body limits,
//! JSON decoding, token extraction and the mapping of errors to statuses.
//! No business rule lives here.

mod body;
mod decode;
mod error;
mod logging;
pub mod openapi;
mod query;
mod rate_limit;
mod reads;
mod response;
mod routes;
mod task_writes;

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, web};
use domain::auth::Authenticator;
use domain::idempotency::Idempotency;
use domain::ingest::TaskIngestion;
use domain::ports::Readiness;
use domain::project_upsert::ProjectUpsert;
use domain::read::Reader;

pub use error::ApiError;
pub use rate_limit::RateLimiter;

/// Default limit on a request body: room for 1000 tasks with every field at its maximum length.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Default time a client may take to send a request body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Source of the Prometheus text served at `GET /metrics`.
pub trait MetricsSource: Send + Sync {
    /// Returns every metric in Prometheus text format.
    fn render(&self) -> String;
}

/// State shared by the handlers.
#[derive(Clone)]
pub struct AppState {
    pub ingestion: TaskIngestion,
    pub projects: ProjectUpsert,
    pub reader: Reader,
    pub authenticator: Authenticator,
    pub readiness: Arc<dyn Readiness>,
    pub metrics: Arc<dyn MetricsSource>,
    pub rate_limiter: Arc<RateLimiter>,
    pub idempotency: Idempotency,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Maximum time a client may take to send a request body.
    pub body_timeout: Duration,
}

/// Builds the actix application with every route, JSON errors for unknown
/// routes and methods, and one log line per request.
pub fn app(
    state: Arc<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::from(state))
        .configure(routes::configure)
        .default_service(web::to(routes::route_not_found))
        .wrap(actix_web::middleware::from_fn(rate_limit::add_headers))
        .wrap(actix_web::middleware::from_fn(logging::log_request))
}
