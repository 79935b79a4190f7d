//! Who am I, and which server is this.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::auth::{CurrentUser, generate_token, hash_token};
use super::error::{ApiResult, VERSION};
use crate::wire::user_to_wire;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/version", get(version))
        .route("/api/current-user/whoami", get(whoami))
        .route("/api/current-user", get(whoami))
        .route("/api/current-user/reset-token", post(reset_token))
        .route("/api/health", get(health))
        .route("/health", get(health))
}

/// `GET /api/version`: the SDK reads `edition` to choose its export path, so it is `Community`.
async fn version() -> Json<Value> {
    let package = json!({"version": VERSION, "short_version": VERSION});
    Json(json!({
        "release": VERSION,
        "edition": "Community",
        "backend": {"name": "labelport", "version": VERSION},
        "dm2": {},
        "lsf": {},
        "label-studio-os-package": package,
        "label-studio-os-backend": {"message": "labelport", "version": VERSION},
        "label-studio-frontend": {},
        "label-studio-converter": {"version": VERSION},
    }))
}

async fn whoami(State(_state): State<AppState>, CurrentUser(user): CurrentUser) -> ApiResult<Json<Value>> {
    Ok(Json(user_to_wire(&user)))
}

async fn health() -> Json<Value> {
    Json(json!({"status": "UP"}))
}

/// `POST /api/current-user/reset-token`: replaces the caller's API tokens with a new one and
/// answers `{"token": ...}`. Tokens are stored hashed, so this answer is the only time it is shown.
async fn reset_token(State(state): State<AppState>, CurrentUser(user): CurrentUser) -> ApiResult<Json<Value>> {
    let token = generate_token();
    state.db.replace_tokens(user.id, &hash_token(&token)).await?;
    Ok(Json(json!({"token": token})))
}
