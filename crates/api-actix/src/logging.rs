//! One log line per request, inside a span that carries the request id.
//!
//! Every log line written while a request is handled belongs to its span, so
//! it carries `request.id`. Handlers record the token id and task counts on the
//! span; the closing line reports them with method, route, status and latency.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

/// Header that carries the request id, taken from the client or generated.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Maximum length of a request id taken from a client; a longer or unprintable one is replaced.
const MAX_REQUEST_ID_CHARS: usize = 128;

/// Logs method, matched route, status, latency, request id, and what handlers
/// recorded (token id, task counts). Never logs headers or bodies.
pub async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = client_request_id(&request).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!(
        "request",
        request.id = %request_id,
        http.method = %request.method(),
        http.route = tracing::field::Empty,
        token.id = tracing::field::Empty,
        tasks.created = tracing::field::Empty,
        tasks.updated = tracing::field::Empty,
        error.code = tracing::field::Empty,
    );
    let path = request.path().to_owned();
    let method = request.method().to_string();

    let mut response = next.call(request).instrument(span.clone()).await?;
    let route = response.request().match_pattern().unwrap_or(path);
    span.record("http.route", route.as_str());
    let status = response.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    let latency_ms = elapsed * 1000.0;
    let labels = [("method", method.clone()), ("route", route.clone()), ("status", status.to_string())];
    metrics::counter!("leanmote_http_requests_total", &labels).increment(1);
    metrics::histogram!("leanmote_http_request_duration_seconds", "route" => route.clone()).record(elapsed);
    span.in_scope(|| {
        if response.status().is_server_error() {
            tracing::warn!(http.status = status, latency_ms, "request failed");
        } else {
            tracing::info!(http.status = status, latency_ms, "request handled");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// Returns the client's `X-Request-Id` when it is 1-128 printable ASCII characters.
fn client_request_id(request: &ServiceRequest) -> Option<String> {
    let value = request.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?;
    let printable = value.bytes().all(|byte| byte.is_ascii_graphic());
    (printable && (1..=MAX_REQUEST_ID_CHARS).contains(&value.len())).then(|| value.to_owned())
}
