//! `/api/tasks/{id}/annotations/` and `/api/annotations/{id}/`: annotation list, create, get,
//! update and delete. Task counters are kept by the database layer in the same transaction.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value};

use super::AppState;
use super::auth::CurrentUser;
use super::error::{ApiError, ApiResult};
use super::extract::{JsonObject, PathId, field, optional_field};
use super::tasks::task_for;
use crate::model::entities::{AnnotationChanges, User};
use crate::wire::annotation_to_wire;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/tasks/{id}/annotations", get(list).post(create))
        .route(
            "/api/annotations/{id}",
            get(read).patch(update).put(update).delete(remove),
        )
}

/// Reads the fields a client may set. `completed_by` must name a user of the caller's
/// organization.
async fn changes_from_body(state: &AppState, user: &User, body: &Map<String, Value>) -> ApiResult<AnnotationChanges> {
    let result = field::<Value>(body, "result")?;
    if let Some(result) = &result
        && !result.is_array()
    {
        return Err(ApiError::validation("result", "Expected a list of items."));
    }
    let completed_by = match body.get("completed_by") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::Object(o)) => o.get("id").and_then(Value::as_i64),
        _ => None,
    };
    if let Some(id) = completed_by {
        let member = state
            .db
            .user_by_id(id)
            .await?
            .filter(|u| u.organization_id == user.organization_id);
        if member.is_none() {
            return Err(ApiError::validation(
                "completed_by",
                format!("Invalid pk \"{id}\" - object does not exist."),
            ));
        }
    }
    Ok(AnnotationChanges {
        result,
        was_cancelled: field(body, "was_cancelled")?,
        ground_truth: field(body, "ground_truth")?,
        lead_time: optional_field(body, "lead_time")?,
        completed_by,
        last_action: optional_field(body, "last_action")?,
        draft_created_at: optional_field(body, "draft_created_at")?,
        parent_prediction: optional_field(body, "parent_prediction")?,
        parent_annotation: optional_field(body, "parent_annotation")?,
    })
}

async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(task_id): PathId,
) -> ApiResult<Json<Value>> {
    let task = task_for(&state, &user, task_id).await?;
    let annotations = state.db.annotations_of_tasks(&[task.id]).await?;
    Ok(Json(Value::Array(annotations.iter().map(annotation_to_wire).collect())))
}

async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(task_id): PathId,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let task = task_for(&state, &user, task_id).await?;
    let changes = changes_from_body(&state, &user, &body).await?;
    let annotation = state
        .db
        .create_annotation(task.id, task.project_id, user.id, &changes)
        .await?;
    state.sync.annotation_saved(annotation.id);
    Ok((StatusCode::CREATED, Json(annotation_to_wire(&annotation))))
}

async fn read(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId,
) -> ApiResult<Json<Value>> {
    let annotation = state.db.annotation(user.organization_id, id).await?;
    Ok(Json(annotation_to_wire(&annotation)))
}

async fn update(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let current = state.db.annotation(user.organization_id, id).await?;
    let changes = changes_from_body(&state, &user, &body).await?;
    let annotation = state.db.update_annotation(&current, &changes, user.id).await?;
    state.sync.annotation_saved(annotation.id);
    Ok(Json(annotation_to_wire(&annotation)))
}

async fn remove(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    let annotation = state.db.annotation(user.organization_id, id).await?;
    let exported = state.sync.objects_of_annotation(&annotation).await?;
    state.db.delete_annotation(&annotation).await?;
    state.sync.delete_objects(exported);
    Ok(StatusCode::NO_CONTENT)
}
