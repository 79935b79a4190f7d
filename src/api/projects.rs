//! `/api/projects/`: list, create, get, update and delete projects of the caller's organization.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::auth::CurrentUser;
use super::error::{ApiError, ApiResult};
use super::extract::{JsonObject, PathId, QueryParams, field};
use super::{AppState, Paging};
use crate::model::entities::{Project, User};
use crate::model::label_config::LabelConfig;
use crate::wire::{apply_project_settings, project_to_wire};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/projects", get(list).post(create))
        .route("/api/projects/{id}", get(read).patch(update).put(update).delete(remove))
        .route(
            "/api/projects/{id}/tasks",
            get(super::tasks::list_for_project).delete(super::tasks::delete_all),
        )
}

const DEFAULT_LABEL_CONFIG: &str = "<View></View>";

#[derive(Deserialize)]
struct ListQuery {
    page: Option<i64>,
    page_size: Option<i64>,
}

/// Loads a project the caller may touch: another organization's project is 404.
pub async fn project_for(state: &AppState, user: &User, id: i64) -> ApiResult<Project> {
    Ok(state.db.project(user.organization_id, id).await?)
}

async fn to_wire(state: &AppState, project: &Project) -> ApiResult<Value> {
    let counts = state.db.project_counts(&[project.id]).await?;
    let creator = match project.created_by {
        Some(id) => state.db.user_by_id(id).await?,
        None => None,
    };
    Ok(project_to_wire(project, &counts[&project.id], creator.as_ref()))
}

async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<ListQuery>,
) -> ApiResult<Json<Value>> {
    let paging = Paging::from_query(query.page, query.page_size, 100)?;
    let (projects, total) = state
        .db
        .list_projects(user.organization_id, paging.offset, paging.limit)
        .await?;
    let ids: Vec<i64> = projects.iter().map(|p| p.id).collect();
    let counts = state.db.project_counts(&ids).await?;
    let mut creators = std::collections::HashMap::new();
    for id in projects.iter().filter_map(|p| p.created_by) {
        if let std::collections::hash_map::Entry::Vacant(slot) = creators.entry(id) {
            slot.insert(state.db.user_by_id(id).await?);
        }
    }
    let results: Vec<Value> = projects
        .iter()
        .map(|p| {
            let creator = p.created_by.and_then(|id| creators.get(&id).cloned().flatten());
            project_to_wire(p, &counts[&p.id], creator.as_ref())
        })
        .collect();
    let page = query.page.unwrap_or(1);
    let has_next = paging.offset.saturating_add(paging.limit) < total;
    Ok(Json(json!({
        "count": total,
        "next": has_next.then(|| format!("?page={}", page + 1)),
        "previous": (page > 1).then(|| format!("?page={}", page - 1)),
        "results": results,
    })))
}

/// Checks and applies the editable fields of a request body to a project.
fn apply_body(project: &mut Project, body: &Map<String, Value>) -> ApiResult<()> {
    let mut errors = Map::new();
    if let Some(title) = field::<String>(body, "title")? {
        let length = title.chars().count();
        if length != 0 && !(3..=50).contains(&length) {
            errors.insert(
                "title".into(),
                json!(["Ensure this field has between 3 and 50 characters."]),
            );
        }
        project.title = title;
    }
    if let Some(description) = field::<String>(body, "description")? {
        project.description = description;
    }
    if let Some(config) = field::<String>(body, "label_config")? {
        match LabelConfig::parse(&config) {
            Ok(_) => project.label_config = config,
            Err(error) => {
                errors.insert("label_config".into(), json!([error.to_string()]));
            }
        }
    }
    if let Some(maximum) = field::<i64>(body, "maximum_annotations")? {
        if maximum < 1 {
            errors.insert(
                "maximum_annotations".into(),
                json!(["Ensure this value is greater than or equal to 1."]),
            );
        }
        project.maximum_annotations = maximum;
    }
    if let Err(key) = apply_project_settings(&mut project.settings, body) {
        errors.insert(key, json!(["Invalid value type."]));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation_map(errors))
    }
}

async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut project = Project {
        id: 0,
        organization_id: user.organization_id,
        created_by: Some(user.id),
        title: String::new(),
        description: String::new(),
        label_config: DEFAULT_LABEL_CONFIG.to_string(),
        maximum_annotations: 1,
        settings: Map::new(),
        created_at: String::new(),
        updated_at: String::new(),
    };
    apply_body(&mut project, &body)?;
    let project = state.db.create_project(&project).await?;
    Ok((StatusCode::CREATED, Json(to_wire(&state, &project).await?)))
}

async fn read(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId,
) -> ApiResult<Json<Value>> {
    let project = project_for(&state, &user, id).await?;
    Ok(Json(to_wire(&state, &project).await?))
}

async fn update(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let mut project = project_for(&state, &user, id).await?;
    let previous_overlap = project.maximum_annotations;
    apply_body(&mut project, &body)?;
    let project = state.db.update_project(&project).await?;
    if project.maximum_annotations != previous_overlap {
        state
            .db
            .apply_project_overlap(project.id, project.maximum_annotations)
            .await?;
    }
    Ok(Json(to_wire(&state, &project).await?))
}

async fn remove(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state.db.delete_project(user.organization_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
