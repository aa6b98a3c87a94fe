//! `POST /api/v1/tasks`: dry runs and idempotency keys around the ingestion use case.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use domain::Rejection;
use domain::auth::Caller;
use domain::error::{DetailCode, ItemError};
use domain::idempotency::{
    Claim, Fingerprint, Idempotency, IdempotencyKey, KEY_HEADER, Receipt, Replay, StoredResponse,
};
use domain::ingest::ProcessedTask;
use domain::outcome::TaskAction;

use crate::AppState;
use crate::body::{read_body, require_identity_encoding, require_json};
use crate::decode;
use crate::error::ApiError;
use crate::query::QueryParams;
use crate::response::TasksProcessed;
use crate::routes::{authenticate, decode_off_worker};

/// Header set on a response sent again for a repeated idempotency key.
const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Authenticates, then runs the batch once per idempotency key, or as a dry run.
pub async fn post_tasks(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &request).await?;
    let dry_run = dry_run_flag(&request)?;
    // A dry run writes nothing, so it has nothing to protect with a key.
    let key = if dry_run { None } else { idempotency_key(&request)? };
    require_json(&request)?;
    require_identity_encoding(&request)?;

    let Some(key) = key else {
        let body = read_body(&request, payload, state.max_body_bytes, state.body_timeout).await?;
        return run_batch(&state, &caller, body, dry_run, None).await;
    };
    match state.idempotency.claim(caller.token_id, &key).await? {
        Claim::InProgress => Err(ApiError::IdempotencyKeyInUse),
        Claim::Completed(stored) => {
            let body = read_body(&request, payload, state.max_body_bytes, state.body_timeout).await?;
            match Idempotency::replay(stored, &fingerprint(&request, &body)) {
                Replay::Same(stored) => Ok(replayed(stored)),
                Replay::Reused => Err(ApiError::IdempotencyKeyReused),
            }
        }
        Claim::Claimed => {
            let result = claimed_batch(&state, &caller, &request, payload, key.clone()).await;
            if result.is_err()
                && let Err(error) = state.idempotency.release(caller.token_id, &key).await
            {
                tracing::warn!(
                    error = %error,
                    token.id = caller.token_id.get(),
                    "failed to release an idempotency key; it lapses at the end of its lease"
                );
            }
            result
        }
    }
}

/// Runs a batch whose key this request has claimed, and stores the response with the writes.
async fn claimed_batch(
    state: &AppState,
    caller: &Caller,
    request: &HttpRequest,
    payload: web::Payload,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(request, payload, state.max_body_bytes, state.body_timeout).await?;
    let encode = std::sync::Arc::new(|processed: &[ProcessedTask]| TasksProcessed::new(processed, false).to_json());
    let receipt = state.idempotency.receipt(caller.token_id, key, fingerprint(request, &body), encode);
    run_batch(state, caller, body, false, Some(receipt)).await
}

/// Decodes and ingests (or plans) the batch, and renders the response.
async fn run_batch(
    state: &AppState,
    caller: &Caller,
    body: web::Bytes,
    dry_run: bool,
    receipt: Option<Receipt>,
) -> Result<HttpResponse, ApiError> {
    let inputs = decode_off_worker(body, decode::task_batch).await?;
    let processed = if dry_run {
        state.ingestion.dry_run(caller, inputs).await?
    } else {
        state.ingestion.ingest_with_receipt(caller, inputs, receipt).await?
    };
    if !dry_run {
        record_counts(&processed);
    }
    let body = TasksProcessed::new(&processed, dry_run).to_json();
    Ok(HttpResponse::Ok().content_type("application/json").body(body))
}

/// Records how many tasks were created and updated, on the request's log line and in metrics.
fn record_counts(processed: &[ProcessedTask]) {
    let count = |action| processed.iter().filter(|task| task.action == action).count();
    let (created, updated) = (count(TaskAction::Created), count(TaskAction::Updated));
    let span = tracing::Span::current();
    span.record("tasks.created", created);
    span.record("tasks.updated", updated);
    metrics::counter!("leanmote_tasks_written_total", "action" => "created").increment(created as u64);
    metrics::counter!("leanmote_tasks_written_total", "action" => "updated").increment(updated as u64);
    metrics::counter!("leanmote_tasks_skipped_total").increment(count(TaskAction::SkippedStale) as u64);
}

/// Builds the response that sends a stored response again, byte for byte.
fn replayed(stored: StoredResponse) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(stored.status).unwrap_or(actix_web::http::StatusCode::OK);
    HttpResponse::build(status)
        .content_type("application/json")
        .insert_header((HeaderName::from_static(REPLAYED_HEADER), HeaderValue::from_static("true")))
        .body(stored.body)
}

/// Identifies the request for key reuse: method, path, query and body.
fn fingerprint(request: &HttpRequest, body: &[u8]) -> Fingerprint {
    let method = request.method().as_str().as_bytes();
    Fingerprint::of(&[method, request.path().as_bytes(), request.query_string().as_bytes(), body])
}

/// Reads `?dry_run=`: `true`/`1` or `false`/`0`; absent means false.
fn dry_run_flag(request: &HttpRequest) -> Result<bool, ApiError> {
    let Some(value) = QueryParams::read(request, &["dry_run"])?.single()?.take("dry_run") else { return Ok(false) };
    match value.as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(field_error(
            "dry_run",
            format!("must be true, false, 1 or 0, got {:?}", other.chars().take(40).collect::<String>()),
        )),
    }
}

/// Reads the `Idempotency-Key` header, when present.
fn idempotency_key(request: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let mut values = request.headers().get_all(KEY_HEADER);
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(field_error(KEY_HEADER, "was sent more than once; send one key per request".into()));
    }
    IdempotencyKey::parse(value.as_bytes()).map(Some).map_err(|violation| field_error(KEY_HEADER, violation.message))
}

fn field_error(field: &str, message: String) -> ApiError {
    ApiError::Rejected(Rejection::new(vec![ItemError {
        index: None,
        field: field.to_owned(),
        code: DetailCode::InvalidValue,
        message,
    }]))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header;
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn dry_run_values() {
        let flag = |uri: &str| dry_run_flag(&TestRequest::post().uri(uri).to_http_request());
        assert!(!flag("/api/v1/tasks").unwrap());
        assert!(flag("/api/v1/tasks?dry_run=true").unwrap());
        assert!(flag("/api/v1/tasks?dry_run=1").unwrap());
        assert!(!flag("/api/v1/tasks?dry_run=false").unwrap());
        let Err(ApiError::Rejected(rejection)) = flag("/api/v1/tasks?dry_run=maybe") else { panic!("expected 400") };
        assert_eq!(rejection.details[0].field, "dry_run");
    }

    #[test]
    fn key_header_rules() {
        let key = |value: Option<&str>| {
            let mut request = TestRequest::post();
            if let Some(value) = value {
                request = request.insert_header((KEY_HEADER, value));
            }
            idempotency_key(&request.to_http_request())
        };
        assert_eq!(key(None).unwrap(), None);
        assert_eq!(key(Some("job-42")).unwrap().unwrap().as_str(), "job-42");
        let Err(ApiError::Rejected(rejection)) = key(Some(&"k".repeat(256))) else { panic!("expected 400") };
        assert_eq!(rejection.details[0].field, KEY_HEADER);
    }

    #[test]
    fn fingerprint_covers_query_and_body() {
        let request = |uri: &str| TestRequest::post().uri(uri).to_http_request();
        let plain = fingerprint(&request("/api/v1/tasks"), b"{}");
        assert_eq!(plain, fingerprint(&request("/api/v1/tasks"), b"{}"));
        assert_ne!(plain, fingerprint(&request("/api/v1/tasks"), b"{ }"));
        assert_ne!(plain, fingerprint(&request("/api/v1/tasks?dry_run=false"), b"{}"));
    }

    #[test]
    fn replay_sets_its_header() {
        let stored = StoredResponse { fingerprint: Fingerprint::of(&[]), status: 200, body: "{\"a\":1}".into() };
        let response = replayed(stored);
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers().get(REPLAYED_HEADER).unwrap(), "true");
        assert_eq!(response.headers().get(header::CONTENT_TYPE).unwrap(), "application/json");
    }
}
