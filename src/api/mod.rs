//! The HTTP API: Label Studio's REST endpoints on axum. Each resource module exposes `router()`;
//! [`app`] merges them, so the list below reads as the API's table of contents.
//!
//! Handlers stay thin: extract, authorise (every lookup is scoped to the caller's organization),
//! one call into the domain, convert to Label Studio's JSON.

mod annotations;
pub mod auth;
mod error;
mod export;
mod extract;
mod import;
mod local_files;
mod password_check;
mod predictions;
mod projects;
mod resolve;
mod session;
mod storages;
mod tasks;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower::Layer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::trace::TraceLayer;

pub use error::{ApiError, VERSION};

use crate::db::Db;
use crate::sync::SyncEngine;

/// Settings the API reads at run time.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// The largest request body accepted, in bytes (Label Studio's `DATA_UPLOAD_MAX_MEMORY_SIZE`).
    pub max_body_bytes: usize,
    /// Where Label Studio's labeling front end was unpacked (`editor/`, `fonts/`), for the web UI.
    pub frontend_dir: Option<std::path::PathBuf>,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: Arc<ApiSettings>,
    pub sync: Arc<SyncEngine>,
}

impl AppState {
    /// The state of a serving process: the database, the API settings, and a sync engine whose
    /// workers start now.
    pub fn new(db: Db, settings: ApiSettings, sync: crate::sync::SyncSettings) -> AppState {
        let engine = SyncEngine::new(db.clone(), sync);
        engine.start_workers();
        AppState {
            db,
            settings: Arc::new(settings),
            sync: engine,
        }
    }
}

/// The whole application: every route, with paths accepted with or without a trailing slash.
pub fn app(state: AppState) -> NormalizePath<Router> {
    let max_body = state.settings.max_body_bytes;
    let router = Router::new()
        .merge(crate::web::router(state.settings.frontend_dir.as_deref()))
        .merge(users::router())
        .merge(session::router())
        .merge(projects::router())
        .merge(import::router())
        .merge(export::router())
        .merge(tasks::router())
        .merge(annotations::router())
        .merge(predictions::router())
        .merge(storages::router())
        .merge(resolve::router())
        .merge(local_files::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal().into_response()))
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    NormalizePathLayer::trim_trailing_slash().layer(router)
}

async fn not_found() -> Response {
    ApiError::not_found().into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.").into_response()
}

/// Page numbers and sizes as Label Studio reads them (1-based pages).
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub offset: i64,
    pub limit: i64,
}

impl Paging {
    pub fn from_query(page: Option<i64>, page_size: Option<i64>, default_size: i64) -> Result<Paging, ApiError> {
        let page = page.unwrap_or(1);
        let size = page_size.unwrap_or(default_size);
        if page < 1 {
            return Err(ApiError::not_found());
        }
        if !(1..=100_000).contains(&size) {
            return Err(ApiError::validation(
                "page_size",
                "page_size must be between 1 and 100000",
            ));
        }
        Ok(Paging {
            // Saturating: a page far past the end is an empty page, not an overflow.
            offset: (page - 1).saturating_mul(size),
            limit: size,
        })
    }
}
