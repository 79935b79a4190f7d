//! `/api/predictions/`: model predictions attached to tasks.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::auth::CurrentUser;
use super::error::{ApiError, ApiResult};
use super::extract::{JsonObject, PathId, QueryParams, field};
use super::tasks::task_for;
use crate::wire::prediction_to_wire;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/predictions", get(list).post(create))
        .route("/api/predictions/{id}", get(read).delete(remove))
}

#[derive(Deserialize)]
struct ListQuery {
    task: Option<i64>,
    project: Option<i64>,
    #[serde(rename = "task__project")]
    task_project: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<ListQuery>,
) -> ApiResult<Json<Value>> {
    let project = query.project.or(query.task_project);
    let predictions = state
        .db
        .list_predictions(user.organization_id, query.task, project)
        .await?;
    Ok(Json(Value::Array(predictions.iter().map(prediction_to_wire).collect())))
}

async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Some(task_id) = field::<i64>(&body, "task")? else {
        return Err(ApiError::validation("task", "This field is required."));
    };
    let task = task_for(&state, &user, task_id).await?;
    let result = field::<Value>(&body, "result")?.unwrap_or_else(|| Value::Array(Vec::new()));
    if !result.is_array() {
        return Err(ApiError::validation("result", "Expected a list of items."));
    }
    let score = field::<f64>(&body, "score")?;
    let model_version = field::<String>(&body, "model_version")?.unwrap_or_default();
    let prediction = state
        .db
        .create_prediction(task.id, task.project_id, &result, score, &model_version)
        .await?;
    Ok((StatusCode::CREATED, Json(prediction_to_wire(&prediction))))
}

async fn read(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId,
) -> ApiResult<Json<Value>> {
    Ok(Json(prediction_to_wire(
        &state.db.prediction(user.organization_id, id).await?,
    )))
}

async fn remove(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    let prediction = state.db.prediction(user.organization_id, id).await?;
    state.db.delete_prediction(&prediction).await?;
    Ok(StatusCode::NO_CONTENT)
}
