//! Who is calling: the `Authorization: Token <key>` header (also `Bearer <key>` and
//! `X-API-Key: <key>`), resolved to a user. Tokens are compared by their SHA-256 hash.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::model::entities::User;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

/// Hashes an API token for storage and lookup.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Makes a new random API token: 40 hexadecimal characters, like Label Studio's.
pub fn generate_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn presented_token(parts: &Parts) -> Option<&str> {
    if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?.trim();
        let (scheme, token) = value.split_once(' ')?;
        return match scheme.to_ascii_lowercase().as_str() {
            "token" | "bearer" => Some(token.trim()),
            _ => None,
        };
    }
    parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = presented_token(parts).filter(|t| !t.is_empty()) else {
            return Err(ApiError::unauthenticated());
        };
        match state.db.user_by_token_hash(&hash_token(token)).await? {
            Some(user) => Ok(CurrentUser(user)),
            None => Err(ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "Invalid token.")),
        }
    }
}
