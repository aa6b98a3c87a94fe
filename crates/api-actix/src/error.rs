//! The API's error type and its one mapping to HTTP statuses.
//!
//! Every error is JSON:
//! `{"status":"error","message":...,"error":{"code":...,"details":[...]}}`.
//! Server-side failures are logged with their cause, and the response
//! carries an opaque message.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use domain::auth::AuthError;
use domain::ingest::IngestError;
use domain::project_upsert::ProjectError;
use domain::read::ReadError;
use domain::{ErrorClass, Rejection, StoreError};
use serde::Serialize;

/// Seconds a client should wait before retrying when storage is unavailable.
const RETRY_AFTER_SECONDS: u32 = 5;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{}", .0.summary())]
    Rejected(Rejection),
    #[error("{0}")]
    BadRequest(String),
    #[error("unsupported content type {0:?}; send the body as JSON with `Content-Type: application/json`")]
    UnsupportedMediaType(String),
    #[error("unsupported Content-Encoding {0:?}; send the body uncompressed")]
    UnsupportedEncoding(String),
    #[error("the request body is larger than the limit of {limit} bytes; split the batch into smaller requests")]
    PayloadTooLarge { limit: usize },
    #[error("the request body did not arrive within {seconds} seconds; send it faster or in smaller batches")]
    RequestTimeout { seconds: u64 },
    #[error("the token exceeded its limit of {limit} requests per minute; retry after {retry_after} seconds")]
    RateLimited { limit: u32, retry_after: u64 },
    #[error("no route matches {method} {path}; see the API reference at /docs for the available routes")]
    RouteNotFound { method: String, path: String },
    #[error("method {method} is not allowed on {path}; use {allowed}")]
    MethodNotAllowed { method: String, path: String, allowed: &'static str },
    #[error("another request with this Idempotency-Key is still running; retry when it has answered")]
    IdempotencyKeyInUse,
    #[error(
        "this Idempotency-Key was already used for a different request; use a new key for a new request, or resend the first request unchanged"
    )]
    IdempotencyKeyReused,
    #[error("the service is temporarily unavailable; retry in a few seconds")]
    Unavailable(#[source] StoreError),
    #[error("an internal error occurred; retry later, and contact the operator if it persists")]
    Internal(#[source] StoreError),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: &'static str,
    message: String,
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'static str,
    details: Vec<DetailBody<'a>>,
}

#[derive(Serialize)]
struct DetailBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    field: &'a str,
    code: &'static str,
    message: &'a str,
}

impl ApiError {
    /// Returns the machine-readable code of `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::Rejected(rejection) => match rejection.class() {
                ErrorClass::InvalidInput => "invalid_input",
                ErrorClass::Forbidden => "forbidden",
                ErrorClass::NotFound => "not_found",
                ErrorClass::InvalidReference => "invalid_reference",
            },
            Self::BadRequest(_) => "malformed_request",
            Self::UnsupportedMediaType(_) | Self::UnsupportedEncoding(_) => "unsupported_media_type",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::RequestTimeout { .. } => "request_timeout",
            Self::RateLimited { .. } => "rate_limited",
            Self::RouteNotFound { .. } => "route_not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::IdempotencyKeyInUse => "idempotency_key_in_use",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::Unavailable(_) => "service_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Rejected(rejection) => match rejection.class() {
                ErrorClass::InvalidInput | ErrorClass::InvalidReference => StatusCode::BAD_REQUEST,
                ErrorClass::Forbidden => StatusCode::FORBIDDEN,
                ErrorClass::NotFound => StatusCode::NOT_FOUND,
            },
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType(_) | Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::IdempotencyKeyInUse => StatusCode::CONFLICT,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        tracing::Span::current().record("error.code", self.code());
        match self {
            Self::Unavailable(cause) => tracing::warn!(error = %error_chain(cause), "storage unavailable"),
            Self::Internal(cause) => tracing::error!(error = %error_chain(cause), "request failed"),
            _ => {}
        }
        let details = match self {
            Self::Rejected(rejection) => rejection
                .details
                .iter()
                .map(|detail| DetailBody {
                    index: detail.index,
                    field: &detail.field,
                    code: detail.code.as_str(),
                    message: &detail.message,
                })
                .collect(),
            _ => Vec::new(),
        };
        let body =
            ErrorBody { status: "error", message: self.to_string(), error: ErrorDetail { code: self.code(), details } };

        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::Unavailable(_) | Self::IdempotencyKeyInUse => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS)));
            }
            Self::RateLimited { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after)));
            }
            Self::MethodNotAllowed { allowed, .. } => {
                response.insert_header((header::ALLOW, HeaderValue::from_static(allowed)));
            }
            Self::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            _ => {}
        }
        response.json(body)
    }
}

/// Formats an error with its sources, for logs only.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => Self::Unavailable(error),
            StoreError::Internal(_) => Self::Internal(error),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Store(error) => error.into(),
            other => Self::Unauthorized(other.to_string()),
        }
    }
}

impl From<ProjectError> for ApiError {
    fn from(error: ProjectError) -> Self {
        match error {
            ProjectError::Rejected(rejection) => Self::Rejected(rejection),
            ProjectError::Store(error) => error.into(),
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Rejected(rejection) => Self::Rejected(rejection),
            ReadError::Store(error) => error.into(),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Rejected(rejection) => Self::Rejected(rejection),
            IngestError::Store(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests;
