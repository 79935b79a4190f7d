//! The web UI, served by the binary: sign-in, account, projects, data manager, Settings > Cloud
//! Storage and the labeling screen.
//!
//! Every page is the same small HTML shell (rendered here with the page's name) plus `app.js` and
//! `app.css`, which are compiled into the binary. The scripts call the same REST API as every
//! other client, authenticated by the session cookie; no business logic lives in them. The
//! labeling screen also loads Label Studio's labeling front end (`window.LabelStudio`) and its
//! fonts from the folder given by `--frontend-dir`, which `scripts/frontend.sh` fills from the
//! pinned PyPI wheel; it is not part of the repository.

use std::path::Path;

use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get};
use tower_http::services::ServeDir;

use crate::api::auth::{hash_token, session_cookie};
use crate::api::{ApiError, AppState};
use crate::model::entities::User;

/// The page script (also read by a test that checks every storage field has a place in it).
pub(crate) const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const ICON_SVG: &str = include_str!("assets/icon.svg");

/// The pages and their static files. `frontend_dir` holds `editor/` (Label Studio's labeling
/// front end) and `fonts/`; without it the labeling screen explains how to fetch them.
pub fn router(frontend_dir: Option<&Path>) -> Router<AppState> {
    let editor = frontend_dir.is_some_and(|dir| dir.join("editor").join("main.js").is_file());
    let mut router = Router::new()
        .route("/", get(|| async { Redirect::to("/projects") }))
        .route("/projects", page("projects", "Projects", false))
        .route("/projects/{id}", get(project_home))
        .route("/projects/{id}/data", page("data", "Data Manager", false))
        .route("/projects/{id}/settings", get(project_home))
        .route(
            "/projects/{id}/settings/storage",
            page("storage", "Cloud Storage", false),
        )
        .route("/projects/{id}/label", page("label", "Labeling", editor))
        .route("/user/account", page("account", "Account", false))
        .route("/user/login", get(login_page))
        .route(
            "/static/app/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/static/app/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route("/favicon.ico", get(|| async { asset("image/svg+xml", ICON_SVG) }))
        .route(
            "/static/app/icon.svg",
            get(|| async { asset("image/svg+xml", ICON_SVG) }),
        );
    if let Some(dir) = frontend_dir {
        router = router
            .nest_service("/static/editor", ServeDir::new(dir.join("editor")).precompressed_gzip())
            .nest_service("/static/fonts", ServeDir::new(dir.join("fonts")));
    }
    router
}

/// A page for signed-in browsers: the shell naming `name` for `app.js`, with the labeling
/// editor's files linked when `with_editor`.
fn page(name: &'static str, title: &'static str, with_editor: bool) -> MethodRouter<AppState> {
    get(move |_user: PageUser| async move {
        let head = if with_editor {
            "<link rel=\"stylesheet\" href=\"/static/editor/main.css\">\n<script src=\"/static/editor/main.js\" defer></script>"
        } else {
            ""
        };
        html_page(name, title, head)
    })
}

/// `/projects/{id}` and `/projects/{id}/settings` have no page of their own.
async fn project_home(OriginalUri(uri): OriginalUri) -> Redirect {
    let target = if uri.path().trim_end_matches('/').ends_with("/settings") {
        format!("{}/storage", uri.path().trim_end_matches('/'))
    } else {
        format!("{}/data", uri.path().trim_end_matches('/'))
    };
    Redirect::to(&target)
}

/// A signed-in browser; anyone else is sent to the sign-in page, which brings them back after.
pub struct PageUser(pub User);

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match session_user(state, &parts.headers).await {
            Ok(Some(user)) => return Ok(PageUser(user)),
            Ok(None) => {}
            Err(error) => return Err(error.into_response()),
        }
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".to_string());
        let next: String = percent_encoding::utf8_percent_encode(&here, percent_encoding::NON_ALPHANUMERIC).collect();
        Err(Redirect::to(&format!("/user/login?next={next}")).into_response())
    }
}

/// `GET /user/login`: the sign-in form (a signed-in browser goes straight to its projects).
async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match session_user(&state, &headers).await {
        Ok(Some(_)) => return Redirect::to("/projects").into_response(),
        Ok(None) => {}
        Err(error) => return error.into_response(),
    }
    html_page("login", "Sign in", "")
}

/// The user of the browser session these headers carry, if it is valid.
async fn session_user(state: &AppState, headers: &HeaderMap) -> Result<Option<User>, ApiError> {
    let Some(key) = session_cookie(headers) else {
        return Ok(None);
    };
    Ok(state.db.user_by_session_hash(&hash_token(key)).await?)
}

/// The shell every page shares; `app.js` builds the page named in `data-page`.
fn html_page(name: &str, title: &str, head: &str) -> Response {
    let version = crate::api::VERSION;
    let body = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · labelport</title>\n\
         <link rel=\"icon\" href=\"/static/app/icon.svg\" type=\"image/svg+xml\">\n\
         <link rel=\"stylesheet\" href=\"/static/app/app.css?v={version}\">\n{head}\n</head>\n\
         <body data-page=\"{name}\">\n<div id=\"app\"></div>\n\
         <script src=\"/static/app/app.js?v={version}\"></script>\n</body>\n</html>\n"
    );
    let mut response = Html(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Scripts only from this server: markup inside task data (HyperText, for example) cannot run
    // script with the signed-in user's session.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

const CONTENT_SECURITY_POLICY: &str = "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
