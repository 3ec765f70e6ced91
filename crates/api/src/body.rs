//! JSON request bodies with errors a client can act on: 415 for the wrong content type,
//! 413 for too large, 400 for broken JSON, 422 naming the field for wrong shapes.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body parsed into `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        if is_encoded(request.headers()) {
            return Err(ApiError::UnsupportedEncoding);
        }
        let bytes_max = state.inner.config.limits.body_bytes_max;
        // Refused before reading: no `100 Continue`, no waiting for a body that will be
        // thrown away (the length limit below would only trip after `bytes_max` bytes).
        if declared_length(&request).is_some_and(|length| length > bytes_max as u64) {
            return Err(ApiError::PayloadTooLarge { bytes_max });
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { bytes_max }
            } else {
                ApiError::BadRequest { field: None, message: "could not read the request body".into() }
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Whether the body comes compressed: any `Content-Encoding` but `identity` (every header
/// line and list item counts), or a transfer coding besides `chunked` (hyper undoes only that).
fn is_encoded(headers: &HeaderMap) -> bool {
    let codings = |name| {
        headers.get_all(name).into_iter().flat_map(|value| value.to_str().unwrap_or("?").split(',')).map(str::trim)
    };
    codings(header::CONTENT_ENCODING).any(|coding| !coding.eq_ignore_ascii_case("identity"))
        || codings(header::TRANSFER_ENCODING)
            .any(|coding| !coding.eq_ignore_ascii_case("chunked") && !coding.eq_ignore_ascii_case("identity"))
}

/// The `Content-Length` the client declared, when it is a number.
fn declared_length(request: &Request) -> Option<u64> {
    request.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = clean_serde_message(&inner.to_string());
        let field = if path == "." { backticked_name(&message) } else { Some(path) };
        match inner.classify() {
            serde_json::error::Category::Data => ApiError::Unprocessable { message, field },
            _ => ApiError::BadRequest {
                field: None,
                message: format!("body is not valid JSON: {}", clean_serde_message(&inner.to_string())),
            },
        }
    })?;
    deserializer.end().map_err(|_| ApiError::BadRequest {
        field: None,
        message: "body has trailing data after the JSON value".into(),
    })?;
    Ok(value)
}

/// "missing field `text`" names its field only inside the message.
pub(crate) fn backticked_name(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

/// serde's messages end in " at line 1 column 9": useful, but the field is named separately.
fn clean_serde_message(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}
