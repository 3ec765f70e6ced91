//! `ApiError`: every way a request can fail, each mapped to one status and a JSON body
//! `{error: {code, message, field?}}`. Internal detail is logged here, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use model::{Denied, FieldError};
use serde::Serialize;
use store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all, or a query/header value cannot be parsed.
    #[error("{message}")]
    BadRequest { field: Option<String>, message: String },
    /// Well-formed input that breaks a rule.
    #[error("{0}")]
    Invalid(FieldError),
    /// JSON of the wrong shape: a missing field, a wrong type, an unknown field.
    #[error("{message}")]
    Unprocessable { field: Option<String>, message: String },
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error("request bodies are read uncompressed; send it without Content-Encoding")]
    UnsupportedEncoding,
    #[error("this endpoint does not take {0} (the Allow header lists what it takes)")]
    MethodNotAllowed(String),
    #[error("request body is larger than {bytes_max} bytes")]
    PayloadTooLarge { bytes_max: usize },
    #[error("the admin token is not valid")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyMismatch,
    #[error("too many writes; retry in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("temporarily unavailable; retry shortly")]
    Unavailable { detail: String },
    #[error("internal error")]
    Internal { detail: String },
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { field: Some(field.to_owned()), message: message.into() }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            ApiError::Unprocessable { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ApiError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::UnsupportedEncoding => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_encoding"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::IdempotencyMismatch => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::BadRequest { field, .. } | ApiError::Unprocessable { field, .. } => field.as_deref(),
            ApiError::Invalid(error) => Some(error.field),
            _ => None,
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ApiError::Invalid(error)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::NotFound("comment not found"),
            StoreError::Invalid(field) => ApiError::Invalid(field),
            StoreError::Denied(denied) => ApiError::Forbidden(denied_message(denied)),
            StoreError::IdempotencyMismatch => ApiError::IdempotencyMismatch,
            StoreError::Unavailable(detail) => ApiError::Unavailable { detail },
            StoreError::Internal(detail) => ApiError::Internal { detail },
        }
    }
}

fn denied_message(denied: Denied) -> String {
    denied.to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            ApiError::Internal { detail } => tracing::error!(%detail, "request failed"),
            ApiError::Unavailable { detail } => tracing::warn!(%detail, "request refused: store unavailable"),
            _ => {}
        }
        let message = match &self {
            ApiError::Invalid(error) => error.rule.clone(),
            other => other.to_string(),
        };
        let body = ErrorBody { error: ErrorDetail { code, message, field: self.field() } };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            ApiError::RateLimited { retry_after_s } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            ApiError::Unavailable { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}
