//! Who is calling: the `Authorization: Token <key>` header (also `Bearer <key>` and
//! `X-API-Key: <key>`), or a browser's session cookie, resolved to a user. Tokens and session keys
//! are compared by their SHA-256 hash. A request authenticated by cookie that changes something
//! must come from this site (its `Origin` or `Referer`, when sent, names this host).

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

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "labelport_session";

/// The session key a browser presented, if any.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// Whether the request's `Origin` (or else `Referer`) names this server's host; a request that
/// sends neither (not a browser) passes.
fn same_site(parts: &Parts) -> bool {
    let header = |name: axum::http::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let Some(host) = header(axum::http::header::HOST) else {
        return false;
    };
    let source = header(axum::http::header::ORIGIN).or_else(|| header(axum::http::header::REFERER));
    match source {
        None => true,
        Some(url) => url
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
            .is_some_and(|authority| authority.eq_ignore_ascii_case(host)),
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = presented_token(parts).filter(|t| !t.is_empty()) else {
            let Some(session) = session_cookie(&parts.headers) else {
                return Err(ApiError::unauthenticated());
            };
            if !parts.method.is_safe() && !same_site(parts) {
                return Err(ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "Cross-site request refused.",
                ));
            }
            return match state.db.user_by_session_hash(&hash_token(session)).await? {
                Some(user) => Ok(CurrentUser(user)),
                None => Err(ApiError::new(
                    axum::http::StatusCode::UNAUTHORIZED,
                    "Session expired: sign in again.",
                )),
            };
        };
        match state.db.user_by_token_hash(&hash_token(token)).await? {
            Some(user) => Ok(CurrentUser(user)),
            None => Err(ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "Invalid token.")),
        }
    }
}
