//! One log line per request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// Logs method, matched route, status and latency of every request. Never logs headers.
pub async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.path().to_owned();
    let response = next.call(request).await?;
    let route = response.request().match_pattern().unwrap_or(path);
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if response.status().is_server_error() {
        tracing::warn!(http.method = %method, http.route = %route, http.status = status, latency_ms, "request failed");
    } else {
        tracing::info!(http.method = %method, http.route = %route, http.status = status, latency_ms, "request handled");
    }
    Ok(response)
}
