//! The status mapping, one case per error.

use actix_web::body::to_bytes;
use domain::error::{DetailCode, ItemError};

use super::*;

fn rejection(codes: &[DetailCode]) -> Rejection {
    Rejection::new(
        codes
            .iter()
            .enumerate()
            .map(|(index, code)| ItemError::at("tasks", index, "field", *code, "message"))
            .collect(),
    )
}

async fn body_of(error: &ApiError) -> serde_json::Value {
    let bytes = to_bytes(error.error_response().into_body()).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn every_error_maps_to_its_status() {
    let cases: Vec<(ApiError, u16, &str)> = vec![
        (ApiError::Unauthorized("missing".into()), 401, "unauthorized"),
        (ApiError::Rejected(rejection(&[DetailCode::Blank])), 400, "invalid_input"),
        (ApiError::Rejected(rejection(&[DetailCode::OrganizationForbidden])), 403, "forbidden"),
        (ApiError::Rejected(rejection(&[DetailCode::ParentNotFound])), 404, "not_found"),
        (ApiError::Rejected(rejection(&[DetailCode::ParentCycle])), 400, "invalid_reference"),
        (ApiError::BadRequest("bad json".into()), 400, "malformed_request"),
        (ApiError::UnsupportedMediaType("text/plain".into()), 415, "unsupported_media_type"),
        (ApiError::PayloadTooLarge { limit: 10 }, 413, "payload_too_large"),
        (ApiError::RequestTimeout { seconds: 30 }, 408, "request_timeout"),
        (ApiError::RateLimited { limit: 5, retry_after: 9 }, 429, "rate_limited"),
        (ApiError::RouteNotFound { method: "GET".into(), path: "/x".into() }, 404, "route_not_found"),
        (
            ApiError::MethodNotAllowed { method: "GET".into(), path: "/x".into(), allowed: "POST" },
            405,
            "method_not_allowed",
        ),
        (ApiError::Unavailable(StoreError::Unavailable("down".into())), 503, "service_unavailable"),
        (ApiError::Internal(StoreError::Internal("boom".into())), 500, "internal_error"),
    ];
    for (error, status, code) in cases {
        assert_eq!(error.status_code().as_u16(), status, "{error:?}");
        assert_eq!(error.code(), code, "{error:?}");
    }
}

#[test]
fn status_follows_class_precedence() {
    let mixed =
        [DetailCode::ParentCycle, DetailCode::ParentNotFound, DetailCode::OrganizationForbidden, DetailCode::TooLong];
    assert_eq!(ApiError::Rejected(rejection(&mixed)).status_code(), StatusCode::BAD_REQUEST);
    assert_eq!(ApiError::Rejected(rejection(&mixed[..3])).status_code(), StatusCode::FORBIDDEN);
    assert_eq!(ApiError::Rejected(rejection(&mixed[..2])).status_code(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn rejection_body_lists_details() {
    let body = body_of(&ApiError::Rejected(rejection(&[DetailCode::Blank, DetailCode::TooLong]))).await;
    assert_eq!(body["status"], "error");
    assert_eq!(body["error"]["code"], "invalid_input");
    assert_eq!(body["error"]["details"][1]["index"], 1);
    assert_eq!(body["error"]["details"][1]["field"], "tasks[1].field");
    assert_eq!(body["error"]["details"][1]["code"], "too_long");
}

#[actix_web::test]
async fn internal_error_hides_cause() {
    let error = ApiError::Internal(StoreError::Internal("relation \"tasks\" does not exist".into()));
    let body = body_of(&error).await;
    assert!(!body.to_string().contains("relation"));
    assert_eq!(body["error"]["details"], serde_json::json!([]));
}

#[test]
fn unavailable_sets_retry_after() {
    let response = ApiError::Unavailable(StoreError::Unavailable("down".into())).error_response();
    assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "5");
}
