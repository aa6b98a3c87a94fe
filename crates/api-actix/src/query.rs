//! Query strings: each parameter that a route reads may appear once. The
//! names of those given more than once travel with the values, so that the
//! rejection can list them beside the other invalid parameters.

use std::collections::HashMap;

use actix_web::{HttpRequest, web};
use domain::Rejection;
use domain::read::repeated_parameter_error;

use crate::error::ApiError;

/// The values of the parameters a route reads, and the names of those given more than once.
#[derive(Debug)]
pub struct QueryParams {
    values: HashMap<&'static str, String>,
    repeated: Vec<&'static str>,
}

impl QueryParams {
    /// Reads the parameters in `names` from the request's query string and
    /// ignores every other parameter. A repeated parameter keeps its last value.
    ///
    /// # Errors
    /// Returns [`ApiError::BadRequest`] for a query string that cannot be decoded.
    pub fn read(request: &HttpRequest, names: &[&'static str]) -> Result<Self, ApiError> {
        let pairs = web::Query::<Vec<(String, String)>>::from_query(request.query_string())
            .map_err(|error| ApiError::BadRequest(format!("invalid query string: {error}")))?
            .into_inner();
        let mut params = Self { values: HashMap::new(), repeated: Vec::new() };
        for (name, value) in pairs {
            let Some(known) = names.iter().find(|known| **known == name) else { continue };
            if params.values.insert(*known, value).is_some() && !params.repeated.contains(known) {
                params.repeated.push(*known);
            }
        }
        Ok(params)
    }

    /// Takes the value of `name`, if it was given.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    /// Returns the names of the parameters given more than once, in the order they repeated.
    pub fn repeated(&self) -> Vec<String> {
        self.repeated.iter().map(|name| (*name).to_owned()).collect()
    }

    /// Returns the parameters when none was given more than once.
    ///
    /// # Errors
    /// Returns [`ApiError::Rejected`] listing each parameter given more than once.
    pub fn single(self) -> Result<Self, ApiError> {
        if self.repeated.is_empty() {
            return Ok(self);
        }
        let details = self.repeated.iter().map(|name| repeated_parameter_error(name)).collect();
        Err(ApiError::Rejected(Rejection::new(details)))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn params(query: &str) -> QueryParams {
        let request = TestRequest::get().uri(&format!("/api/v1/tasks?{query}")).to_http_request();
        QueryParams::read(&request, &["project_id", "limit"]).unwrap()
    }

    fn rejected_fields(params: QueryParams) -> Vec<String> {
        match params.single() {
            Err(ApiError::Rejected(rejection)) => rejection.details.into_iter().map(|detail| detail.field).collect(),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn reads_known_and_skips_unknown() {
        let mut params = params("project_id=7&x=1&x=2&limit=%35");
        assert!(params.repeated().is_empty());
        assert_eq!(params.take("project_id").as_deref(), Some("7"));
        assert_eq!(params.take("limit").as_deref(), Some("5"));
        assert_eq!(params.take("x"), None);
    }

    #[test]
    fn repeated_known_params_listed() {
        assert_eq!(params("project_id=1&project_id=2").repeated(), vec!["project_id"]);
        let both = params("limit=1&project_id=1&limit=1&project_id=1&limit=2");
        assert_eq!(both.repeated(), vec!["limit", "project_id"]);
        assert_eq!(rejected_fields(both), vec!["limit", "project_id"]);
        // An empty value counts as a value.
        assert_eq!(params("limit=&limit=5").repeated(), vec!["limit"]);
    }

    #[test]
    fn single_keeps_unrepeated_params() {
        let mut single = params("project_id=3").single().unwrap();
        assert_eq!(single.take("project_id").as_deref(), Some("3"));
    }
}
