//! Query strings parsed strictly: a parameter whose percent-decoded bytes are not UTF-8 is
//! refused, naming it.
//!
//! Why not axum's `Query`: it decodes such bytes lossily, so `?thread=%FF%FE` and
//! `?thread=%C0%AF` both became the thread "��": different inputs, one thread. A client that
//! sends broken encoding should hear so, as for any other bad field.

use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use crate::body::backticked_name;
use crate::error::ApiError;

/// `raw` (the part after `?`, if any) parsed into `T`; errors name the offending parameter.
pub fn parse<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    let raw = raw.unwrap_or_default();
    check_utf8(raw)?;
    serde_urlencoded::from_str(raw).map_err(|error| {
        let message = error.to_string();
        match backticked_name(&message) {
            Some(field) => ApiError::bad_field(&field, message),
            None => ApiError::BadRequest { field: None, message: format!("query string: {message}") },
        }
    })
}

fn check_utf8(raw: &str) -> Result<(), ApiError> {
    // Only a `%` can make invalid UTF-8: the string itself is UTF-8.
    if !raw.contains('%') {
        return Ok(());
    }
    for pair in raw.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name_decoded = percent_decode_str(name).decode_utf8();
        let Ok(name_decoded) = name_decoded else {
            return Err(ApiError::BadRequest {
                field: None,
                message: "a query parameter name is not valid UTF-8 once percent-decoded".into(),
            });
        };
        if percent_decode_str(value).decode_utf8().is_err() {
            let name = name_decoded.replace('+', " ");
            return Err(ApiError::bad_field(&name, "is not valid UTF-8 once percent-decoded"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Sample {
        thread: Option<String>,
    }

    fn field_of(error: ApiError) -> Option<String> {
        match error {
            ApiError::BadRequest { field, .. } => field,
            other => panic!("not a 400: {other:?}"),
        }
    }

    #[test]
    fn invalid_utf8_names_the_parameter() {
        for raw in ["thread=%FF%FE", "thread=%C0%AF", "x=1&thread=a%E2%82"] {
            let error = parse::<Sample>(Some(raw)).expect_err(raw);
            assert_eq!(field_of(error).as_deref(), Some("thread"), "{raw}");
        }
    }

    #[test]
    fn valid_encodings_decode() {
        let sample: Sample = parse(Some("thread=%2Fcaf%C3%A9+au+lait")).expect("valid");
        assert_eq!(sample.thread.as_deref(), Some("/café au lait"));
        // A `%` not followed by two hex digits is a literal `%` (the URL standard's rule).
        let sample: Sample = parse(Some("thread=100%")).expect("valid");
        assert_eq!(sample.thread.as_deref(), Some("100%"));
        let sample: Sample = parse(None).expect("empty");
        assert_eq!(sample.thread, None);
    }

    #[test]
    fn a_repeated_parameter_is_named() {
        let error = parse::<Sample>(Some("thread=a&thread=b")).expect_err("duplicate");
        assert_eq!(field_of(error).as_deref(), Some("thread"));
    }
}
