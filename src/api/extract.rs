//! Request-body extractors whose failures use Label Studio's error shape: a body over the size
//! limit is 413, malformed JSON is 400 with the parser's message.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::AppState;
use super::error::ApiError;

/// The raw request body, read under the configured size limit.
pub struct Body(pub Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state)
            .await
            .map(Body)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large.")
                } else {
                    ApiError::bad_request(format!("Could not read the request body: {rejection}"))
                }
            })
    }
}

/// A JSON object body (an empty body reads as `{}`).
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let Body(bytes) = Body::from_request(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonObject(Map::new()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(ApiError::validation("non_field_errors", "Expected a JSON object.")),
            Err(error) => Err(ApiError::bad_request(format!("JSON parse error - {error}"))),
        }
    }
}

/// Reads an optional field of a JSON object as `T`; a value of the wrong type is a 400 naming the
/// field. `Some(None)` means the field was sent as `null`.
pub fn optional_field<T: serde::de::DeserializeOwned>(
    body: &Map<String, Value>,
    name: &str,
) -> Result<Option<Option<T>>, ApiError> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(value) => serde_json::from_value(value.clone())
            .map(|v| Some(Some(v)))
            .map_err(|e| ApiError::validation(name, format!("Invalid value: {e}"))),
    }
}

/// Like [`optional_field`], but `null` counts as absent.
pub fn field<T: serde::de::DeserializeOwned>(body: &Map<String, Value>, name: &str) -> Result<Option<T>, ApiError> {
    Ok(optional_field(body, name)?.flatten())
}

/// A numeric id from the path; anything else is 404, as for an unknown id.
pub struct PathId(pub i64);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<i64>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(id)| PathId(id))
            .map_err(|_| ApiError::not_found())
    }
}

/// Query parameters; a malformed one is a 400 in Label Studio's error shape.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| QueryParams(value))
            .map_err(|rejection| ApiError::validation("query", rejection.body_text()))
    }
}

/// Reads Label Studio's boolean query values (`true`, `1`, `yes`, `on`; case-insensitive).
pub fn query_flag(value: Option<&str>, default: bool) -> bool {
    match value.map(|v| v.trim().to_ascii_lowercase()) {
        None => default,
        Some(v) => matches!(v.as_str(), "true" | "1" | "yes" | "on"),
    }
}
