//! Reading request bodies: content type and encoding, size limit, time limit.

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Payload};
use futures_util::StreamExt;

use crate::error::ApiError;

/// Accepts a missing `Content-Type` or any form of `application/json`.
///
/// # Errors
/// Returns [`ApiError::UnsupportedMediaType`] for any other explicit type.
pub fn require_json(request: &HttpRequest) -> Result<(), ApiError> {
    let Some(value) = request.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or_default();
    let essence = text.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMediaType(text.to_owned()));
    }
    Ok(())
}

/// Rejects compressed bodies, which the API does not read.
///
/// # Errors
/// Returns [`ApiError::UnsupportedEncoding`] for any `Content-Encoding` but `identity`.
pub fn require_identity_encoding(request: &HttpRequest) -> Result<(), ApiError> {
    match request.headers().get(header::CONTENT_ENCODING).map(|value| value.to_str().unwrap_or_default().trim()) {
        None => Ok(()),
        Some(encoding) if encoding.eq_ignore_ascii_case("identity") => Ok(()),
        Some(encoding) => Err(ApiError::UnsupportedEncoding(encoding.chars().take(64).collect())),
    }
}

/// Reads the whole body, stopping as soon as it passes `limit` bytes or takes longer than `timeout`.
///
/// # Errors
/// Returns [`ApiError::PayloadTooLarge`] past the limit, [`ApiError::RequestTimeout`]
/// past the time, and [`ApiError::BadRequest`] when the client breaks off the body.
pub async fn read_body(
    request: &HttpRequest,
    payload: Payload,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    match actix_web::rt::time::timeout(timeout, read_limited(request, payload, limit)).await {
        Ok(body) => body,
        Err(_) => Err(ApiError::RequestTimeout { seconds: timeout.as_secs() }),
    }
}

async fn read_limited(request: &HttpRequest, mut payload: Payload, limit: usize) -> Result<Bytes, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| {
            tracing::debug!(%error, "request body broken off");
            ApiError::BadRequest(
                "the request body was cut off or its transfer encoding is invalid; send it again".to_owned(),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    // A client that closes its side early ends the body without an error, so compare with what it announced.
    // NOTE: a chunked body that ends without its last chunk cannot be detected here, because
    // actix-http reports the closed connection as a normal end of body.
    if declared.is_some_and(|length| length != body.len()) {
        return Err(ApiError::BadRequest(format!(
            "the request body has {} bytes but Content-Length announced {}; send the whole body",
            body.len(),
            declared.unwrap_or_default()
        )));
    }
    Ok(body.freeze())
}
