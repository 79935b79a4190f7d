//! Every error the API sends, rendered in Label Studio's error shape (spec 1.6):
//! `{id, status_code, version, detail, validation_errors?, exc_info}`.
//!
//! *Invariant:* internal causes are logged here with the request's context and never sent to the
//! client; the body carries only a message meant for a person.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::db::DbError;

/// The version string reported in error bodies and by `/api/version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    pub validation_errors: Option<Map<String, Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
            validation_errors: None,
        }
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "Not found.")
    }

    pub fn unauthenticated() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Authentication credentials were not provided.",
        )
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    /// A 400 whose messages are attached to one field, as Django REST framework reports them.
    pub fn validation(field: &str, message: impl Into<String>) -> ApiError {
        let mut errors = Map::new();
        errors.insert(field.to_string(), json!([message.into()]));
        ApiError::validation_map(errors)
    }

    /// A 400 with several fields' messages (`field -> [messages]`).
    pub fn validation_map(errors: Map<String, Value>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            detail: "Validation error".to_string(),
            validation_errors: Some(errors),
        }
    }

    pub fn internal() -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> ApiError {
        match error {
            DbError::NotFound => ApiError::not_found(),
            DbError::Conflict(message) => ApiError::validation("non_field_errors", message),
            other => {
                tracing::error!(error = %other, "database error");
                ApiError::internal()
            }
        }
    }
}

/// The JSON body of an error response.
pub fn error_body(status: StatusCode, detail: &str, validation_errors: Option<&Map<String, Value>>) -> Value {
    let mut body = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "status_code": status.as_u16(),
        "version": VERSION,
        "detail": detail,
        "exc_info": null,
    });
    if let Some(errors) = validation_errors {
        body["validation_errors"] = Value::Object(errors.clone());
    }
    body
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = error_body(self.status, &self.detail, self.validation_errors.as_ref());
        (self.status, Json(body)).into_response()
    }
}

/// Handler result type.
pub type ApiResult<T> = Result<T, ApiError>;
