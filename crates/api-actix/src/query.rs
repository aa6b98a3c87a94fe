//! Query strings: each parameter that a route reads may appear once, and a
//! request that repeats one is rejected.

use std::collections::HashMap;

use actix_web::{HttpRequest, web};
use domain::Rejection;
use domain::error::{DetailCode, ItemError};

use crate::error::ApiError;

/// Reads the parameters in `names` from the request's query string and
/// ignores every other parameter.
///
/// # Errors
/// Returns [`ApiError::BadRequest`] for a query string that cannot be
/// decoded, and [`ApiError::Rejected`] listing each parameter of `names`
/// that is given more than once.
pub fn known_params(request: &HttpRequest, names: &[&'static str]) -> Result<HashMap<&'static str, String>, ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(request.query_string())
        .map_err(|error| ApiError::BadRequest(format!("invalid query string: {error}")))?
        .into_inner();
    let mut params = HashMap::new();
    let mut repeated = Vec::new();
    for (name, value) in pairs {
        let Some(known) = names.iter().find(|known| **known == name) else { continue };
        if params.insert(*known, value).is_some() && !repeated.contains(known) {
            repeated.push(*known);
        }
    }
    if repeated.is_empty() {
        return Ok(params);
    }
    let details = repeated
        .into_iter()
        .map(|name| ItemError {
            index: None,
            field: name.to_owned(),
            code: DetailCode::InvalidValue,
            message: "is given more than once; send it once".to_owned(),
        })
        .collect();
    Err(ApiError::Rejected(Rejection::new(details)))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn params(query: &str) -> Result<HashMap<&'static str, String>, ApiError> {
        let request = TestRequest::get().uri(&format!("/api/v1/tasks?{query}")).to_http_request();
        known_params(&request, &["project_id", "limit"])
    }

    fn repeated_fields(query: &str) -> Vec<String> {
        match params(query) {
            Err(ApiError::Rejected(rejection)) => rejection.details.into_iter().map(|detail| detail.field).collect(),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn reads_known_and_skips_unknown() {
        let params = params("project_id=7&x=1&x=2&limit=%35").unwrap();
        assert_eq!(params.get("project_id").map(String::as_str), Some("7"));
        assert_eq!(params.get("limit").map(String::as_str), Some("5"));
        assert_eq!(params.len(), 2);
    }

    #[test]
    fn repeated_known_params_rejected() {
        assert_eq!(repeated_fields("project_id=1&project_id=2"), vec!["project_id"]);
        assert_eq!(repeated_fields("limit=1&project_id=1&limit=1&project_id=1&limit=2"), vec!["limit", "project_id"]);
        // An empty value counts as a value.
        assert_eq!(repeated_fields("limit=&limit=5"), vec!["limit"]);
    }
}
