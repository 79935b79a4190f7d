//! `GET /api/projects/{id}/export`: a project's tasks as JSON, JSON_MIN or CSV, streamed page by
//! page so memory does not grow with the project.

use std::collections::{HashMap, HashSet};

use axum::body::Body as ResponseBody;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::AppState;
use super::auth::CurrentUser;
use super::error::{ApiError, ApiResult};
use super::extract::{PathId, query_flag};
use super::projects::project_for;
use crate::db::{Db, DbError};
use crate::model::entities::{Annotation, Prediction, Project, Task};
use crate::model::label_config::LabelConfig;
use crate::wire::{task_data_to_wire, task_to_wire};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/projects/{id}/export", get(export))
        .route("/api/projects/{id}/export/formats", get(formats))
}

/// Tasks read from the database per page.
const PAGE_SIZE: i64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExportType {
    Json,
    JsonMin,
    Csv,
}

/// The export's query: Label Studio's `exportType` or the SDK's `export_type`, `download_all_tasks`,
/// and `ids` (repeated, also as `ids[]`).
struct ExportQuery {
    export_type: ExportType,
    download_all_tasks: bool,
    ids: Option<HashSet<i64>>,
}

fn parse_query(raw: Option<&str>) -> ApiResult<ExportQuery> {
    let mut export_type = None;
    let mut all_tasks = None;
    let mut ids: Option<HashSet<i64>> = None;
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "exportType" | "export_type" => export_type = Some(value.to_ascii_uppercase()),
            "download_all_tasks" => all_tasks = Some(value.to_string()),
            "ids" | "ids[]" | "ids%5B%5D" => {
                for id in value.split(',').filter(|v| !v.is_empty()) {
                    let id = id
                        .parse::<i64>()
                        .map_err(|_| ApiError::validation("ids", format!("\"{id}\" is not a task id")))?;
                    ids.get_or_insert_with(HashSet::new).insert(id);
                }
            }
            _ => {}
        }
    }
    let export_type = match export_type.as_deref().unwrap_or("JSON") {
        "JSON" => ExportType::Json,
        "JSON_MIN" => ExportType::JsonMin,
        "CSV" => ExportType::Csv,
        other => {
            return Err(ApiError::validation(
                "export_type",
                format!("unsupported export type {other}: use JSON, JSON_MIN or CSV"),
            ));
        }
    };
    Ok(ExportQuery {
        export_type,
        download_all_tasks: query_flag(all_tasks.as_deref(), false),
        ids,
    })
}

async fn formats(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId,
) -> ApiResult<Json<Value>> {
    project_for(&state, &user, id).await?;
    Ok(Json(json!(["JSON", "JSON_MIN", "CSV"])))
}

async fn export(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let query = parse_query(raw.as_deref())?;
    let project = project_for(&state, &user, id).await?;
    let (content_type, extension) = match query.export_type {
        ExportType::Json | ExportType::JsonMin => ("application/json", "json"),
        ExportType::Csv => ("text/csv", "csv"),
    };
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let db = state.db.clone();
    tokio::spawn(async move {
        let outcome = write_export(&db, &project, &query, &sender).await;
        if let Err(error) = outcome
            && !matches!(error, ExportError::Closed)
        {
            tracing::error!(project = project.id, error = %error, "export stopped");
            let _ = sender.send(Err(std::io::Error::other("export failed"))).await;
        }
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let file_name = format!(
        "project-{id}-at-{}.{extension}",
        crate::db::now().replace([':', '.'], "-")
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        ResponseBody::from_stream(stream),
    )
        .into_response())
}

/// One page of tasks with their annotations and predictions.
struct Page {
    tasks: Vec<Task>,
    annotations: HashMap<i64, Vec<Annotation>>,
    predictions: HashMap<i64, Vec<Prediction>>,
}

/// Walks a project's tasks page by page, in id order.
struct PageCursor<'a> {
    db: &'a Db,
    project_id: i64,
    query: &'a ExportQuery,
    after: i64,
}

impl<'a> PageCursor<'a> {
    fn new(db: &'a Db, project: &Project, query: &'a ExportQuery) -> PageCursor<'a> {
        PageCursor {
            db,
            project_id: project.id,
            query,
            after: 0,
        }
    }

    async fn next(&mut self) -> Result<Option<Page>, DbError> {
        let mut tasks = self
            .db
            .tasks_after(self.project_id, self.after, PAGE_SIZE, !self.query.download_all_tasks)
            .await?;
        let Some(last) = tasks.last() else { return Ok(None) };
        self.after = last.id;
        if let Some(ids) = &self.query.ids {
            tasks.retain(|t| ids.contains(&t.id));
        }
        let ids: Vec<i64> = tasks.iter().map(|t| t.id).collect();
        let mut annotations: HashMap<i64, Vec<Annotation>> = HashMap::new();
        for annotation in self.db.annotations_of_tasks(&ids).await? {
            annotations.entry(annotation.task_id).or_default().push(annotation);
        }
        let mut predictions: HashMap<i64, Vec<Prediction>> = HashMap::new();
        for prediction in self.db.predictions_of_tasks(&ids).await? {
            predictions.entry(prediction.task_id).or_default().push(prediction);
        }
        Ok(Some(Page {
            tasks,
            annotations,
            predictions,
        }))
    }
}

/// Why an export stopped part way.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("could not write the export: {0}")]
    Encode(String),
    #[error("the client went away")]
    Closed,
}

type Sender = mpsc::Sender<Result<Bytes, std::io::Error>>;

async fn send(sender: &Sender, bytes: Vec<u8>) -> Result<(), ExportError> {
    sender
        .send(Ok(Bytes::from(bytes)))
        .await
        .map_err(|_| ExportError::Closed)
}

fn encode_error(error: impl std::fmt::Display) -> ExportError {
    ExportError::Encode(error.to_string())
}

/// Writes `[`, the comma-separated JSON values of every page, and `]`.
async fn write_json_array<F>(
    db: &Db,
    project: &Project,
    query: &ExportQuery,
    sender: &Sender,
    to_values: F,
) -> Result<(), ExportError>
where
    F: Fn(&Page) -> Vec<Value>,
{
    send(sender, b"[".to_vec()).await?;
    let mut first = true;
    let mut cursor = PageCursor::new(db, project, query);
    while let Some(page) = cursor.next().await? {
        let mut chunk = Vec::new();
        for value in to_values(&page) {
            if !first {
                chunk.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut chunk, &value).map_err(encode_error)?;
        }
        send(sender, chunk).await?;
    }
    send(sender, b"]".to_vec()).await
}

async fn write_export(db: &Db, project: &Project, query: &ExportQuery, sender: &Sender) -> Result<(), ExportError> {
    let config = LabelConfig::parse(&project.label_config).unwrap_or_default();
    match query.export_type {
        ExportType::Json => {
            write_json_array(db, project, query, sender, |page| {
                page.tasks
                    .iter()
                    .map(|task| {
                        let annotations = page.annotations.get(&task.id).map(Vec::as_slice).unwrap_or(&[]);
                        let predictions = page.predictions.get(&task.id).map(Vec::as_slice).unwrap_or(&[]);
                        task_to_wire(task, &config, Some(annotations), Some(predictions))
                    })
                    .collect()
            })
            .await
        }
        ExportType::JsonMin => {
            write_json_array(db, project, query, sender, |page| {
                page_min_rows(page, &config).into_iter().map(Value::Object).collect()
            })
            .await
        }
        ExportType::Csv => {
            // Two passes: the first finds every column, the second writes the rows.
            let mut columns: Vec<String> = Vec::new();
            let mut seen = HashSet::new();
            let mut cursor = PageCursor::new(db, project, query);
            while let Some(page) = cursor.next().await? {
                for row in page_min_rows(&page, &config) {
                    for key in row.keys() {
                        if seen.insert(key.clone()) {
                            columns.push(key.clone());
                        }
                    }
                }
            }
            let mut header = csv::Writer::from_writer(Vec::new());
            header.write_record(&columns).map_err(encode_error)?;
            send(sender, header.into_inner().map_err(encode_error)?).await?;
            let mut cursor = PageCursor::new(db, project, query);
            while let Some(page) = cursor.next().await? {
                let mut writer = csv::Writer::from_writer(Vec::new());
                for row in page_min_rows(&page, &config) {
                    let record = columns.iter().map(|c| match row.get(c) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                    });
                    writer.write_record(record).map_err(encode_error)?;
                }
                send(sender, writer.into_inner().map_err(encode_error)?).await?;
            }
            Ok(())
        }
    }
}

/// The flat rows of JSON_MIN and CSV: per annotation, the task's data plus each control's value.
fn page_min_rows(page: &Page, config: &LabelConfig) -> Vec<Map<String, Value>> {
    let mut rows = Vec::new();
    for task in &page.tasks {
        let mut base = match task_data_to_wire(task, config) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        base.insert("id".into(), json!(task.id));
        let annotations = page.annotations.get(&task.id).map(Vec::as_slice).unwrap_or(&[]);
        if annotations.is_empty() {
            rows.push(base);
            continue;
        }
        for annotation in annotations {
            let mut row = base.clone();
            row.insert("annotator".into(), json!(annotation.completed_by));
            row.insert("annotation_id".into(), json!(annotation.id));
            row.insert("created_at".into(), json!(annotation.created_at));
            row.insert("updated_at".into(), json!(annotation.updated_at));
            row.insert("lead_time".into(), json!(annotation.lead_time));
            for (name, value) in min_values(&annotation.result) {
                row.insert(name, value);
            }
            rows.push(row);
        }
    }
    rows
}

/// Label Studio's simplification of results: per control name, the single value (a one-key value
/// object is unwrapped, a one-item choice list becomes its item); repeated names become lists.
fn min_values(result: &Value) -> Vec<(String, Value)> {
    let mut values: Vec<(String, Vec<Value>)> = Vec::new();
    for region in result.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let Some(name) = region.get("from_name").and_then(Value::as_str) else {
            continue;
        };
        let Some(value) = region.get("value") else { continue };
        let simple = match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, inner) = map.iter().next().expect("one entry");
                match inner {
                    Value::Array(items) if key == "choices" && items.len() == 1 => items[0].clone(),
                    other => other.clone(),
                }
            }
            other => other.clone(),
        };
        match values.iter_mut().find(|(n, _)| n == name) {
            Some((_, list)) => list.push(simple),
            None => values.push((name.to_string(), vec![simple])),
        }
    }
    values
        .into_iter()
        .map(|(name, mut list)| {
            let value = if list.len() == 1 {
                list.remove(0)
            } else {
                Value::Array(list)
            };
            (name, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_values_unwrap_single_choices_and_group_repeats() {
        let result = json!([
            {"from_name": "choice", "value": {"choices": ["cat"]}},
            {"from_name": "label", "value": {"start": 0, "end": 2, "labels": ["A"]}},
            {"from_name": "label", "value": {"start": 3, "end": 4, "labels": ["B"]}},
        ]);
        let values = min_values(&result);
        assert_eq!(values[0], ("choice".to_string(), json!("cat")));
        assert_eq!(values[1].1.as_array().unwrap().len(), 2);
    }

    #[test]
    fn export_query_accepts_both_spellings_and_ids() {
        let query = parse_query(Some("export_type=csv&download_all_tasks=true&ids=1&ids%5B%5D=2")).unwrap();
        assert_eq!(query.export_type, ExportType::Csv);
        assert!(query.download_all_tasks);
        assert_eq!(query.ids.unwrap().len(), 2);
        assert_eq!(
            parse_query(Some("exportType=JSON_MIN")).unwrap().export_type,
            ExportType::JsonMin
        );
        assert!(parse_query(Some("exportType=COCO")).is_err());
    }
}
