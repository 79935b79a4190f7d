//! Label Studio's JSON for each record. *Invariant:* only this module (and the API handlers and
//! export writer that call it) knows the wire field names; domain types never derive `Serialize`.

use serde_json::{Map, Value, json};

use crate::model::entities::{Annotation, Prediction, Project, ProjectCounts, Task, User};
use crate::model::label_config::{LabelConfig, rename_undefined_key};

/// A user as `/api/current-user/whoami` shows it.
pub fn user_to_wire(user: &User) -> Value {
    let initials: String = if user.first_name.is_empty() && user.last_name.is_empty() {
        user.email.chars().take(2).collect()
    } else {
        user.first_name
            .chars()
            .take(1)
            .chain(user.last_name.chars().take(1))
            .collect()
    };
    json!({
        "id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "username": user.username,
        "email": user.email,
        "last_activity": user.last_activity,
        "avatar": null,
        "initials": initials,
        "phone": "",
        "active_organization": user.organization_id,
        "allow_newsletters": false,
        "date_joined": user.date_joined,
    })
}

/// A user as nested in other records (`created_by`, export `completed_by`).
pub fn user_brief_to_wire(user: &User) -> Value {
    json!({
        "id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "username": user.username,
        "avatar": null,
    })
}

/// Produces a setting's default value.
pub type SettingDefault = fn() -> Value;

/// Project settings that are stored and returned but do not change what the server does, with
/// Label Studio's defaults. Secrets among them are accepted but never returned.
pub const PROJECT_SETTINGS: &[(&str, SettingDefault)] = &[
    ("expert_instruction", || json!("")),
    ("show_instruction", || json!(false)),
    ("show_skip_button", || json!(true)),
    ("enable_empty_annotation", || json!(true)),
    ("show_annotation_history", || json!(false)),
    ("reveal_preannotations_interactively", || json!(false)),
    ("show_collab_predictions", || json!(true)),
    ("color", || json!("#FFFFFF")),
    ("model_version", || json!("")),
    ("is_draft", || json!(false)),
    ("is_published", || json!(false)),
    ("min_annotations_to_start_training", || json!(0)),
    ("start_training_on_annotation_update", || json!(false)),
    ("sampling", || json!("Sequential sampling")),
    ("skip_queue", || json!("REQUEUE_FOR_OTHERS")),
    ("show_ground_truth_first", || json!(false)),
    ("show_overlap_first", || json!(false)),
    ("overlap_cohort_percentage", || json!(100)),
    ("task_data_login", || Value::Null),
    ("task_data_password", || Value::Null),
    ("control_weights", || json!({})),
    ("evaluate_predictions_automatically", || json!(false)),
    ("pinned_at", || Value::Null),
];

/// Settings that are accepted on write and never sent back.
pub const WRITE_ONLY_PROJECT_SETTINGS: &[&str] = &["task_data_password"];

/// A project with its counters, as the project endpoints return it.
pub fn project_to_wire(project: &Project, counts: &ProjectCounts, created_by: Option<&User>) -> Value {
    let config = LabelConfig::parse(&project.label_config).unwrap_or_default();
    let mut body = json!({
        "id": project.id,
        "title": project.title,
        "description": project.description,
        "label_config": project.label_config,
        "organization": project.organization_id,
        "maximum_annotations": project.maximum_annotations,
        "created_by": created_by.map(user_brief_to_wire),
        "created_at": project.created_at,
        "updated_at": project.updated_at,
        "parsed_label_config": config.parsed_summary(),
        "config_has_control_tags": !config.controls.is_empty(),
        "config_suitable_for_bulk_annotation": false,
        "task_number": counts.task_number,
        "num_tasks_with_annotations": counts.num_tasks_with_annotations,
        "total_annotations_number": counts.total_annotations_number,
        "skipped_annotations_number": counts.skipped_annotations_number,
        "total_predictions_number": counts.total_predictions_number,
        "useful_annotation_number": counts.total_annotations_number,
        "ground_truth_number": 0,
        "finished_task_number": counts.finished_task_number,
        "queue_total": counts.task_number,
        "queue_done": counts.finished_task_number,
        "assignment_settings": {},
        "review_settings": {},
    });
    let map = body.as_object_mut().expect("a json object");
    for (key, default) in PROJECT_SETTINGS {
        if WRITE_ONLY_PROJECT_SETTINGS.contains(key) {
            continue;
        }
        map.insert(
            key.to_string(),
            project.settings.get(*key).cloned().unwrap_or_else(default),
        );
    }
    body
}

/// Task data as clients see it: `$undefined$` renamed to the configuration's first data key.
pub fn task_data_to_wire(task: &Task, config: &LabelConfig) -> Value {
    let mut data = task.data.clone();
    rename_undefined_key(&mut data, config.first_data_key());
    data
}

/// A task with the fields every task endpoint returns; `annotations` and `predictions` are added
/// when given.
pub fn task_to_wire(
    task: &Task,
    config: &LabelConfig,
    annotations: Option<&[Annotation]>,
    predictions: Option<&[Prediction]>,
) -> Value {
    let mut body = json!({
        "id": task.id,
        "data": task_data_to_wire(task, config),
        "meta": task.meta,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "is_labeled": task.is_labeled,
        "overlap": task.overlap,
        "inner_id": task.inner_id,
        "total_annotations": task.total_annotations,
        "cancelled_annotations": task.cancelled_annotations,
        "total_predictions": task.total_predictions,
        "comment_count": 0,
        "unresolved_comment_count": 0,
        "last_comment_updated_at": null,
        "project": task.project_id,
        "updated_by": task.updated_by.map(|id| json!([{"user_id": id}])).unwrap_or_else(|| json!([])),
        "file_upload": null,
        "comment_authors": [],
        "allow_skip": task.allow_skip,
        "drafts": [],
        "storage_filename": null,
    });
    let map = body.as_object_mut().expect("a json object");
    if let Some(annotations) = annotations {
        map.insert(
            "annotations".into(),
            Value::Array(annotations.iter().map(annotation_to_wire).collect()),
        );
    }
    if let Some(predictions) = predictions {
        map.insert(
            "predictions".into(),
            Value::Array(predictions.iter().map(prediction_to_wire).collect()),
        );
    }
    body
}

/// An annotation as the annotation endpoints return it.
pub fn annotation_to_wire(annotation: &Annotation) -> Value {
    let result_count = annotation.result.as_array().map_or(0, Vec::len);
    json!({
        "id": annotation.id,
        "result": annotation.result,
        "task": annotation.task_id,
        "project": annotation.project_id,
        "completed_by": annotation.completed_by,
        "was_cancelled": annotation.was_cancelled,
        "ground_truth": annotation.ground_truth,
        "lead_time": annotation.lead_time,
        "created_at": annotation.created_at,
        "updated_at": annotation.updated_at,
        "draft_created_at": annotation.draft_created_at,
        "import_id": annotation.import_id,
        "last_action": annotation.last_action,
        "last_created_by": null,
        "updated_by": annotation.updated_by,
        "parent_prediction": annotation.parent_prediction,
        "parent_annotation": annotation.parent_annotation,
        "unique_id": annotation.unique_id,
        "bulk_created": false,
        "result_count": result_count,
        "created_ago": "",
        "created_username": "",
    })
}

/// A prediction as the prediction endpoints return it.
pub fn prediction_to_wire(prediction: &Prediction) -> Value {
    json!({
        "id": prediction.id,
        "result": prediction.result,
        "score": prediction.score,
        "model_version": prediction.model_version,
        "task": prediction.task_id,
        "project": prediction.project_id,
        "created_at": prediction.created_at,
        "updated_at": prediction.updated_at,
        "model": null,
        "model_run": null,
        "cluster": null,
        "neighbors": null,
        "mislabeling": 0.0,
        "created_ago": "",
    })
}

/// Fills a map of settings from a request body: known keys only, each of its default's JSON type
/// (or null where the default is null). Returns the first offending field.
pub fn apply_project_settings(settings: &mut Map<String, Value>, body: &Map<String, Value>) -> Result<(), String> {
    for (key, default) in PROJECT_SETTINGS {
        let Some(value) = body.get(*key) else { continue };
        let expected = default();
        let same_type = match (&expected, value) {
            (Value::Null, _) => true,
            (Value::Bool(_), Value::Bool(_)) => true,
            (Value::Number(_), Value::Number(_)) => true,
            (Value::String(_), Value::String(_)) => true,
            (Value::Object(_), Value::Object(_)) => true,
            (_, Value::Null) => false,
            _ => false,
        };
        if !same_type {
            return Err(key.to_string());
        }
        settings.insert(key.to_string(), value.clone());
    }
    Ok(())
}

/// The object a target storage receives for one annotation (spec 4.3): the annotation, its task
/// (data as stored, URIs unresolved, without its annotations) and `completed_by` expanded.
pub fn annotation_export_document(
    annotation: &Annotation,
    task: &Task,
    config: &LabelConfig,
    user: Option<&User>,
) -> Value {
    let mut document = annotation_to_wire(annotation);
    document["task"] = task_to_wire(task, config, None, None);
    if let Some(user) = user {
        document["completed_by"] = json!({
            "id": user.id,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
        });
    }
    document
}
