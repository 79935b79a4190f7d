//! `/tasks/{id}/resolve/` and `/projects/{id}/resolve/` (and their `presign` aliases): turn a
//! storage URI into a 303 redirect to a signed URL, or stream the object through the server when
//! the storage has `presign` off (spec 5.3). Only the project's own import storages may sign, and
//! only for their own bucket.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::CurrentUser;
use super::extract::{PathId, QueryParams};
use crate::model::storage::Direction;
use crate::storage::{ByteRange, StorageErrorKind};
use crate::sync::resolve::{decode_fileuri, storage_for_uri};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tasks/{id}/resolve", get(resolve_for_task))
        .route("/tasks/{id}/presign", get(resolve_for_task))
        .route("/projects/{id}/resolve", get(resolve_for_project))
        .route("/projects/{id}/presign", get(resolve_for_project))
}

#[derive(Deserialize)]
struct ResolveQuery {
    fileuri: Option<String>,
}

fn empty(status: StatusCode) -> Response {
    status.into_response()
}

async fn resolve_for_task(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(task_id): PathId,
    QueryParams(query): QueryParams<ResolveQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(fileuri) = query.fileuri.filter(|f| !f.is_empty()) else {
        return empty(StatusCode::BAD_REQUEST);
    };
    match state.db.task(user.organization_id, task_id).await {
        Ok(task) => resolve(&state, task.project_id, &fileuri, &headers).await,
        Err(_) => empty(StatusCode::NOT_FOUND),
    }
}

async fn resolve_for_project(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(project_id): PathId,
    QueryParams(query): QueryParams<ResolveQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(fileuri) = query.fileuri.filter(|f| !f.is_empty()) else {
        return empty(StatusCode::BAD_REQUEST);
    };
    match state.db.project(user.organization_id, project_id).await {
        Ok(project) => resolve(&state, project.id, &fileuri, &headers).await,
        Err(_) => empty(StatusCode::NOT_FOUND),
    }
}

/// Parses a `Range: bytes=...` header into the range to ask the storage for.
fn parse_range(headers: &HeaderMap) -> Option<ByteRange> {
    let value = headers.get(header::RANGE)?.to_str().ok()?;
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    match end.trim() {
        "" => Some(ByteRange::From(start)),
        end => {
            let end: u64 = end.parse().ok()?;
            (end >= start).then_some(ByteRange::Bounded(start, end + 1))
        }
    }
}

async fn resolve(state: &AppState, project_id: i64, fileuri: &str, headers: &HeaderMap) -> Response {
    let uri = decode_fileuri(fileuri);
    let storages = match state.db.project_storages(project_id, Direction::Import, None).await {
        Ok(storages) => storages,
        Err(error) => return super::ApiError::from(error).into_response(),
    };
    let Some((record, key)) = storage_for_uri(&storages, &uri) else {
        return empty(StatusCode::NOT_FOUND);
    };
    let Ok(storage) = state.sync.client(record) else {
        return empty(StatusCode::NOT_FOUND);
    };
    if record.flag("presign", true) {
        let minutes = record.integer("presign_ttl", 1).max(0) as u64;
        let ttl = Duration::from_secs((minutes * 60).max(1));
        return match storage.signed_url(key, ttl).await {
            Ok(url) => {
                let mut response = StatusCode::SEE_OTHER.into_response();
                let headers = response.headers_mut();
                if let Ok(location) = HeaderValue::from_str(&url) {
                    headers.insert(header::LOCATION, location);
                }
                if let Ok(cache) = HeaderValue::from_str(&format!("no-store, max-age={}", minutes * 60)) {
                    headers.insert(header::CACHE_CONTROL, cache);
                }
                response
            }
            Err(error) => {
                tracing::warn!(storage = record.id, error = %error, "signing a url failed");
                empty(StatusCode::NOT_FOUND)
            }
        };
    }
    proxy(storage.as_ref(), key, headers).await
}

/// Streams an object through the server, honouring `Range` and `If-None-Match`.
async fn proxy(storage: &dyn crate::storage::Storage, key: &str, headers: &HeaderMap) -> Response {
    let range = parse_range(headers);
    let object = match storage.get_stream(key, range).await {
        Ok(object) => object,
        Err(error) if error.kind == StorageErrorKind::NotFound => return empty(StatusCode::NOT_FOUND),
        Err(error) => {
            let body = json!({"error": "Storage stream failed while proxying data", "detail": error.to_string()});
            return (StatusCode::FAILED_DEPENDENCY, Json(body)).into_response();
        }
    };
    let etag = object
        .info
        .etag
        .as_ref()
        .map(|e| format!("\"{}\"", e.trim_matches('"')));
    if range.is_none()
        && let (Some(etag), Some(wanted)) = (&etag, headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()))
        && (wanted.trim() == "*" || wanted.split(',').any(|w| w.trim().trim_start_matches("W/") == etag))
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(value) = HeaderValue::from_str(etag) {
            response.headers_mut().insert(header::ETAG, value);
        }
        return response;
    }
    let total = object.info.size;
    let (status, length, content_range) = match &object.range {
        Some(r) => (
            StatusCode::PARTIAL_CONTENT,
            r.end - r.start,
            Some(format!("bytes {}-{}/{total}", r.start, r.end.saturating_sub(1))),
        ),
        None => (StatusCode::OK, total, None),
    };
    let body = Body::from_stream(object.body.map_err(std::io::Error::other));
    let mut response = (status, body).into_response();
    let out = response.headers_mut();
    let content_type = object.content_type.unwrap_or_else(|| "application/octet-stream".into());
    let mut set = |name: header::HeaderName, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            out.insert(name, value);
        }
    };
    set(header::CONTENT_TYPE, content_type);
    set(header::CONTENT_LENGTH, length.to_string());
    set(header::ACCEPT_RANGES, "bytes".into());
    set(header::CACHE_CONTROL, "private, max-age=3600, must-revalidate".into());
    if let Some(content_range) = content_range {
        set(header::CONTENT_RANGE, content_range);
    }
    if let Some(etag) = etag {
        set(header::ETAG, etag);
    }
    if let Some(modified) = object.info.last_modified.as_deref().and_then(http_date) {
        set(header::LAST_MODIFIED, modified);
    }
    response
}

/// Formats an RFC 3339 timestamp as an HTTP date.
fn http_date(rfc3339: &str) -> Option<String> {
    let moment = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).ok()?;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    moment.to_offset(time::UtcOffset::UTC).format(&format).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_parsed_inclusive_to_exclusive() {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_static("bytes=0-9"));
        assert_eq!(parse_range(&headers), Some(ByteRange::Bounded(0, 10)));
        headers.insert(header::RANGE, HeaderValue::from_static("bytes=5-"));
        assert_eq!(parse_range(&headers), Some(ByteRange::From(5)));
        headers.insert(header::RANGE, HeaderValue::from_static("bytes=-5"));
        assert_eq!(parse_range(&headers), None);
        assert_eq!(
            http_date("2025-01-02T03:04:05Z").unwrap(),
            "Thu, 02 Jan 2025 03:04:05 GMT"
        );
    }
}
