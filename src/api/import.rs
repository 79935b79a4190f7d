//! `POST /api/projects/{id}/import`: tasks as a JSON/JSONL/CSV/TSV/TXT body or as uploaded files.

use std::collections::HashSet;
use std::time::Instant;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::CurrentUser;
use super::error::{ApiError, ApiResult};
use super::extract::{Body, PathId, QueryParams, query_flag};
use super::projects::project_for;
use crate::db::NewTask;
use crate::importer::{ImportFailure, ImportFile, import_files};
use crate::model::import_format::ImportFormat;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/projects/{id}/import", post(import))
}

#[derive(Deserialize)]
struct ImportQuery {
    commit_to_project: Option<String>,
    return_task_ids: Option<String>,
}

async fn files_from_multipart(request: Request, state: &AppState) -> ApiResult<Vec<ImportFile>> {
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|e| ApiError::bad_request(format!("Could not read the upload: {e}")))?;
    let mut files = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request body is too large.",
                ));
            }
            Err(error) => return Err(ApiError::bad_request(format!("Could not read the upload: {error}"))),
        };
        let field_name = field.name().unwrap_or_default().to_string();
        let Some(file_name) = field.file_name().map(str::to_string) else {
            if field_name == "url" {
                return Err(ApiError::validation(
                    "url",
                    "Importing from a URL is not supported: upload the file or post its contents.",
                ));
            }
            continue;
        };
        let content_type = field.content_type().map(str::to_string);
        let format = ImportFormat::from_file_name(&file_name)
            .or_else(|| content_type.as_deref().map(ImportFormat::from_content_type))
            .ok_or_else(|| {
                ApiError::validation(
                    "file",
                    format!("{file_name}: unsupported file type; use .json, .jsonl, .csv, .tsv or .txt"),
                )
            })?;
        let bytes = field.bytes().await.map_err(|error| {
            if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large.")
            } else {
                ApiError::bad_request(format!("Could not read the upload: {error}"))
            }
        })?;
        files.push(ImportFile {
            name: Some(file_name),
            format,
            bytes,
        });
    }
    if files.is_empty() {
        return Err(ApiError::validation("file", "No files were uploaded."));
    }
    Ok(files)
}

async fn import(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(project_id): PathId,
    QueryParams(query): QueryParams<ImportQuery>,
    request: Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let started = Instant::now();
    let project = project_for(&state, &user, project_id).await?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let files = if content_type.starts_with("multipart/form-data") {
        files_from_multipart(request, &state).await?
    } else {
        let Body(bytes) = Body::from_request(request, &state).await?;
        vec![ImportFile {
            name: None,
            format: ImportFormat::from_content_type(&content_type),
            bytes,
        }]
    };
    let batch = NewTask {
        project_id: project.id,
        overlap: project.maximum_annotations,
        importer_id: Some(user.id),
        members: state
            .db
            .organization_user_ids(user.organization_id)
            .await?
            .into_iter()
            .collect::<HashSet<_>>(),
    };
    let commit = query_flag(query.commit_to_project.as_deref(), true);
    let outcome = import_files(&state.db, &batch, files, commit)
        .await
        .map_err(|failure| match failure {
            ImportFailure::Invalid { .. } => ApiError::validation("non_field_errors", failure.to_string()),
            ImportFailure::Database(error) => ApiError::from(error),
        })?;
    let mut body = json!({
        "task_count": outcome.task_count,
        "annotation_count": outcome.annotation_count,
        "predictions_count": outcome.prediction_count,
        "prediction_count": outcome.prediction_count,
        "duration": started.elapsed().as_secs_f64(),
        "file_upload_ids": [],
        "could_be_tasks_list": false,
        "found_formats": outcome.found_formats,
        "data_columns": outcome.data_columns,
    });
    if query_flag(query.return_task_ids.as_deref(), false) {
        body["task_ids"] = json!(outcome.task_ids);
    }
    Ok((StatusCode::CREATED, Json(body)))
}
