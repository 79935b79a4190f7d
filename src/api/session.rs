//! Browser sign-in: `POST /user/login` with an email and a password (JSON or a form) sets an
//! HttpOnly session cookie; `POST /user/logout` ends the session. API clients keep using tokens.

use axum::extract::{Form, FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use time::OffsetDateTime;

use super::AppState;
use super::auth::{SESSION_COOKIE, generate_token, hash_token, session_cookie};
use super::error::{ApiError, ApiResult};
use super::extract::{JsonObject, field};
use super::password_check::password_matches;
use crate::model::timestamp::format_timestamp;
use crate::wire::user_to_wire;

/// How long a session lasts.
const SESSION_DAYS: i64 = 14;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/user/login", post(login))
        .route("/user/logout", post(logout))
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

async fn login(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let credentials = if is_form {
        let Form(form) = Form::<LoginForm>::from_request(request, &state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        form
    } else {
        let JsonObject(body) = JsonObject::from_request(request, &state).await?;
        LoginForm {
            email: field::<String>(&body, "email")?.unwrap_or_default(),
            password: field::<String>(&body, "password")?.unwrap_or_default(),
        }
    };
    let refused = || ApiError::validation("non_field_errors", "Wrong email or password.");
    let user = state
        .db
        .user_by_email(credentials.email.trim())
        .await?
        .ok_or_else(refused)?;
    let stored = state.db.password_hash(user.id).await?.ok_or_else(refused)?;
    let matches = password_matches(credentials.password, stored)
        .await
        .map_err(|busy| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, busy.to_string()))?;
    if !user.is_active || !matches {
        return Err(refused());
    }
    let key = generate_token();
    let expires = OffsetDateTime::now_utc() + time::Duration::days(SESSION_DAYS);
    state
        .db
        .create_session(user.id, &hash_token(&key), &format_timestamp(expires))
        .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={key}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}",
        SESSION_DAYS * 24 * 3600
    );
    let mut response = Json(user_to_wire(&user)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

async fn logout(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
    let (parts, _) = request.into_parts();
    if let Some(key) = session_cookie(&parts.headers) {
        state.db.delete_session(&hash_token(key)).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let expired = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}
