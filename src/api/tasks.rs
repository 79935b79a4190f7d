//! `/api/tasks/`: task pages, single tasks, and task create, update and delete.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::auth::CurrentUser;
use super::error::{ApiError, ApiResult};
use super::extract::{JsonObject, PathId, QueryParams, field, query_flag};
use super::projects::project_for;
use super::{AppState, Paging};
use crate::db::NewTask;
use crate::model::entities::{Annotation, Prediction, Task, User};
use crate::model::label_config::LabelConfig;
use crate::model::storage::Direction;
use crate::model::task_item::TaskItem;
use crate::sync::resolve::{Claim, claims, rewrite_task_data};
use crate::wire::task_to_wire;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/tasks", get(list).post(create))
        .route("/api/tasks/{id}", get(read).patch(update).put(update).delete(remove))
        .route("/api/tasks/{id}/neighbors", get(neighbors))
        .route("/api/projects/{id}/next", get(next_for_labeling))
}

#[derive(Deserialize)]
pub struct TaskListQuery {
    project: Option<String>,
    page: Option<i64>,
    page_size: Option<i64>,
    fields: Option<String>,
    resolve_uri: Option<String>,
}

/// Loads a task the caller may touch: a task of another organization's project is 404.
pub async fn task_for(state: &AppState, user: &User, id: i64) -> ApiResult<Task> {
    Ok(state.db.task(user.organization_id, id).await?)
}

/// The buckets whose URIs this project's task data may show through the resolver, or none when
/// the client asked for raw data (`resolve_uri=false`).
async fn resolver_claims(state: &AppState, project_id: i64, resolve_uri: Option<&str>) -> ApiResult<Vec<Claim>> {
    if !query_flag(resolve_uri, true) {
        return Ok(Vec::new());
    }
    let storages = state.db.project_storages(project_id, Direction::Import, None).await?;
    Ok(claims(&storages))
}

/// Turns tasks into their wire form, with annotations and predictions when asked for, and storage
/// URIs in their data rewritten to resolver URLs.
async fn tasks_to_wire(
    state: &AppState,
    tasks: &[Task],
    config: &LabelConfig,
    with_children: bool,
    claims: &[Claim],
) -> ApiResult<Vec<Value>> {
    let resolved = |task: &Task, mut wire: Value| {
        rewrite_task_data(&mut wire["data"], task.id, claims);
        wire
    };
    if !with_children {
        return Ok(tasks
            .iter()
            .map(|t| resolved(t, task_to_wire(t, config, None, None)))
            .collect());
    }
    let ids: Vec<i64> = tasks.iter().map(|t| t.id).collect();
    let mut annotations: HashMap<i64, Vec<Annotation>> = HashMap::new();
    for annotation in state.db.annotations_of_tasks(&ids).await? {
        annotations.entry(annotation.task_id).or_default().push(annotation);
    }
    let mut predictions: HashMap<i64, Vec<Prediction>> = HashMap::new();
    for prediction in state.db.predictions_of_tasks(&ids).await? {
        predictions.entry(prediction.task_id).or_default().push(prediction);
    }
    Ok(tasks
        .iter()
        .map(|t| {
            let a = annotations.get(&t.id).map(Vec::as_slice).unwrap_or(&[]);
            let p = predictions.get(&t.id).map(Vec::as_slice).unwrap_or(&[]);
            resolved(t, task_to_wire(t, config, Some(a), Some(p)))
        })
        .collect())
}

async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<TaskListQuery>,
) -> ApiResult<Json<Value>> {
    let Some(project_id) = query.project.as_deref().and_then(|p| p.trim().parse::<i64>().ok()) else {
        return Err(ApiError::validation(
            "project",
            "query parameter \"project\" is required",
        ));
    };
    let project = project_for(&state, &user, project_id).await?;
    let config = LabelConfig::parse(&project.label_config).unwrap_or_default();
    let paging = Paging::from_query(query.page, query.page_size, 100)?;
    let page = state.db.list_tasks(project.id, paging.offset, paging.limit).await?;
    let with_children = query.fields.as_deref() == Some("all");
    let claims = resolver_claims(&state, project.id, query.resolve_uri.as_deref()).await?;
    let tasks = tasks_to_wire(&state, &page.tasks, &config, with_children, &claims).await?;
    Ok(Json(json!({
        "tasks": tasks,
        "total": page.total,
        "total_annotations": page.total_annotations,
        "total_predictions": page.total_predictions,
    })))
}

/// `GET /api/projects/{id}/tasks`: a plain list of one page of the project's tasks.
pub async fn list_for_project(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(project_id): PathId,
    QueryParams(query): QueryParams<TaskListQuery>,
) -> ApiResult<Json<Value>> {
    let project = project_for(&state, &user, project_id).await?;
    let config = LabelConfig::parse(&project.label_config).unwrap_or_default();
    let paging = Paging::from_query(query.page, query.page_size, 100)?;
    let page = state.db.list_tasks(project.id, paging.offset, paging.limit).await?;
    let claims = resolver_claims(&state, project.id, query.resolve_uri.as_deref()).await?;
    Ok(Json(Value::Array(
        tasks_to_wire(&state, &page.tasks, &config, true, &claims).await?,
    )))
}

/// `DELETE /api/projects/{id}/tasks`: removes every task of the project.
pub async fn delete_all(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(project_id): PathId,
) -> ApiResult<StatusCode> {
    let project = project_for(&state, &user, project_id).await?;
    state.db.delete_all_tasks(project.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Some(project_id) = field::<i64>(&body, "project")? else {
        return Err(ApiError::validation("project", "This field is required."));
    };
    let project = project_for(&state, &user, project_id).await?;
    let Some(data) = field::<Map<String, Value>>(&body, "data")? else {
        return Err(ApiError::validation("data", "This field is required."));
    };
    let mut item = TaskItem::from_data(data);
    if let Some(meta) = field::<Map<String, Value>>(&body, "meta")? {
        item.meta = meta;
    }
    if let Some(allow_skip) = field::<bool>(&body, "allow_skip")? {
        item.allow_skip = allow_skip;
    }
    let batch = NewTask {
        project_id: project.id,
        overlap: project.maximum_annotations,
        importer_id: Some(user.id),
        members: HashSet::new(),
    };
    let mut tx = state.db.begin_write().await?;
    let ids = state
        .db
        .insert_tasks(&mut tx, &batch, std::slice::from_ref(&item))
        .await?;
    tx.commit().await.map_err(crate::db::DbError::from)?;
    let task = task_for(&state, &user, ids[0]).await?;
    let config = LabelConfig::parse(&project.label_config).unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(task_to_wire(&task, &config, Some(&[]), Some(&[]))),
    ))
}

#[derive(Deserialize)]
struct ReadQuery {
    resolve_uri: Option<String>,
}

async fn read(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId,
    QueryParams(query): QueryParams<ReadQuery>,
) -> ApiResult<Json<Value>> {
    let task = task_for(&state, &user, id).await?;
    let project = project_for(&state, &user, task.project_id).await?;
    let config = LabelConfig::parse(&project.label_config).unwrap_or_default();
    let claims = resolver_claims(&state, project.id, query.resolve_uri.as_deref()).await?;
    let mut wire = tasks_to_wire(&state, std::slice::from_ref(&task), &config, true, &claims).await?;
    let mut task_wire = wire.remove(0);
    if let Some((_, key)) = state.db.task_storage_link(task.id).await? {
        task_wire["storage_filename"] = Value::String(key);
    }
    Ok(Json(task_wire))
}

async fn update(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let task = task_for(&state, &user, id).await?;
    let data = field::<Map<String, Value>>(&body, "data")?;
    let meta = field::<Map<String, Value>>(&body, "meta")?;
    state
        .db
        .update_task(task.id, data.as_ref(), meta.as_ref(), user.id)
        .await?;
    read(
        State(state),
        CurrentUser(user),
        PathId(id),
        QueryParams(ReadQuery { resolve_uri: None }),
    )
    .await
}

async fn remove(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    let task = task_for(&state, &user, id).await?;
    state.db.delete_task(task.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/tasks/{id}/neighbors` (labelport's own): the ids of the tasks before and after this
/// one in its project, for previous/next navigation in the labeling screen.
async fn neighbors(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId,
) -> ApiResult<Json<Value>> {
    let task = task_for(&state, &user, id).await?;
    let (previous, next) = state.db.task_neighbors(task.project_id, task.id).await?;
    Ok(Json(json!({"previous": previous, "next": next})))
}

#[derive(Deserialize)]
struct NextQuery {
    /// Start looking after this task id (labelport's own; Label Studio starts at the beginning).
    after: Option<i64>,
}

/// `GET /api/projects/{id}/next`: the next task still to be labeled that the caller has not
/// annotated yet, as `GET /api/tasks/{id}` shows it; 404 when there is none.
async fn next_for_labeling(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(project_id): PathId,
    QueryParams(query): QueryParams<NextQuery>,
) -> ApiResult<Json<Value>> {
    let project = project_for(&state, &user, project_id).await?;
    let Some(id) = state
        .db
        .next_unlabeled_task(project.id, user.id, query.after.unwrap_or(0))
        .await?
    else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "No more tasks to label."));
    };
    read(
        State(state),
        CurrentUser(user),
        PathId(id),
        QueryParams(ReadQuery { resolve_uri: None }),
    )
    .await
}
