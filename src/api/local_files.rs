//! `/data/local-files/?d=<path relative to LOCAL_FILES_DOCUMENT_ROOT>`: serves a local file, only
//! when serving is enabled and, after resolving `..`, symlinks and encodings, the file lies inside
//! the document root and inside a local-files source storage of the caller's organization
//! (spec 5.5). Anything else is 403 or 404, never the file.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::AppState;
use super::auth::CurrentUser;
use super::extract::QueryParams;
use crate::model::storage::Direction;
use crate::storage::local::{LocalFilesSettings, normalize};

pub fn router() -> Router<AppState> {
    Router::new().route("/data/local-files", get(serve))
}

#[derive(Deserialize)]
struct FileQuery {
    d: Option<String>,
}

fn refuse(status: StatusCode, message: &'static str) -> Response {
    (status, message).into_response()
}

/// A content type from the file name, for the browser.
fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        "tif" | "tiff" => "image/tiff",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "csv" => "text/csv",
        "html" | "htm" => "text/html; charset=utf-8",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// The file a `d` parameter names, if it lies inside the document root once every `..` and
/// symlink is resolved.
async fn resolve_inside_root(d: &str, root: &Path) -> Option<PathBuf> {
    if d.contains('\0') {
        return None;
    }
    let lexical = normalize(&root.join(d.trim_start_matches('/')));
    if !lexical.starts_with(root) {
        return None;
    }
    let real = tokio::fs::canonicalize(&lexical).await.ok()?;
    let real_root = tokio::fs::canonicalize(root).await.ok()?;
    real.starts_with(&real_root).then_some(real)
}

async fn serve(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<FileQuery>,
    headers: HeaderMap,
) -> Response {
    let settings = LocalFilesSettings::from_env();
    if !settings.serving_enabled {
        return refuse(
            StatusCode::FORBIDDEN,
            "Serving local files is disabled (LOCAL_FILES_SERVING_ENABLED).",
        );
    }
    let Some(d) = query.d.filter(|d| !d.is_empty()) else {
        return refuse(StatusCode::FORBIDDEN, "The d parameter is required.");
    };
    let Some(file) = resolve_inside_root(&d, &settings.document_root).await else {
        return refuse(StatusCode::NOT_FOUND, "Not found.");
    };
    // The file must be inside a local-files source storage of one of the caller's projects.
    let storages = match state
        .db
        .organization_storages(user.organization_id, Direction::Import, "localfiles")
        .await
    {
        Ok(storages) => storages,
        Err(error) => return super::ApiError::from(error).into_response(),
    };
    let mut allowed = false;
    for storage in &storages {
        let Some(path) = storage.text("path") else { continue };
        if let Ok(folder) = tokio::fs::canonicalize(path).await
            && file.starts_with(&folder)
        {
            allowed = true;
            break;
        }
    }
    if !allowed {
        return refuse(StatusCode::NOT_FOUND, "Not found.");
    }
    send_file(&file, &headers).await
}

/// Sends a file with a weak ETag, `If-None-Match` (304) and a single byte range (206).
async fn send_file(file: &Path, headers: &HeaderMap) -> Response {
    let Ok(metadata) = tokio::fs::metadata(file).await else {
        return refuse(StatusCode::NOT_FOUND, "Not found.");
    };
    if !metadata.is_file() {
        return refuse(StatusCode::NOT_FOUND, "Not found.");
    }
    let size = metadata.len();
    let mtime_ns = metadata
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("W/\"{mtime_ns:x}-{size:x}\"");
    if let Some(wanted) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok())
        && (wanted.trim() == "*" || wanted.split(',').any(|w| w.trim() == etag))
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(value) = HeaderValue::from_str(&etag) {
            response.headers_mut().insert(header::ETAG, value);
        }
        return response;
    }
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
        .and_then(|spec| spec.split_once('-'))
        .and_then(|(start, end)| {
            let start: u64 = start.trim().parse().ok()?;
            let end: u64 = if end.trim().is_empty() {
                size.checked_sub(1)?
            } else {
                end.trim().parse().ok()?
            };
            (start <= end && start < size).then_some((start, end.min(size.saturating_sub(1))))
        });
    let Ok(mut handle) = tokio::fs::File::open(file).await else {
        return refuse(StatusCode::NOT_FOUND, "Not found.");
    };
    let (status, start, length) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        None => (StatusCode::OK, 0, size),
    };
    if start > 0 && handle.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return refuse(StatusCode::NOT_FOUND, "Not found.");
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(handle.take(length)));
    let mut response = (status, body).into_response();
    let out = response.headers_mut();
    let mut set = |name: header::HeaderName, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            out.insert(name, value);
        }
    };
    set(header::CONTENT_TYPE, content_type(file).to_string());
    set(header::CONTENT_LENGTH, length.to_string());
    set(header::ACCEPT_RANGES, "bytes".into());
    set(header::ETAG, etag);
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + length - 1),
        );
    }
    response
}
