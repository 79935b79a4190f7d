//! The records labelport keeps: organizations, users, projects, tasks, annotations, predictions.
//!
//! These are domain types, not wire types: the `api` module decides what each looks like in
//! Label Studio's JSON, and the `db` module how each is stored.

use serde_json::{Map, Value};

/// A group of users that share projects. Every user belongs to exactly one.
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    pub id: i64,
    pub title: String,
    pub created_at: String,
}

/// A person or robot that calls the API.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub organization_id: i64,
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub date_joined: String,
    pub last_activity: String,
}

/// A labeling project: a configuration and the tasks labelled with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: i64,
    pub organization_id: i64,
    pub created_by: Option<i64>,
    pub title: String,
    pub description: String,
    pub label_config: String,
    /// How many annotations a task needs to count as labeled (Label Studio's "overlap").
    pub maximum_annotations: i64,
    /// Presentation settings the server stores but does not act on (colour, skip button, ...).
    pub settings: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
}

/// Counters shown with a project, computed from its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProjectCounts {
    pub task_number: i64,
    pub total_annotations_number: i64,
    pub skipped_annotations_number: i64,
    pub num_tasks_with_annotations: i64,
    pub total_predictions_number: i64,
    pub finished_task_number: i64,
}

/// One item to label.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: i64,
    pub project_id: i64,
    pub data: Value,
    pub meta: Value,
    pub inner_id: i64,
    pub overlap: i64,
    pub is_labeled: bool,
    pub total_annotations: i64,
    pub cancelled_annotations: i64,
    pub total_predictions: i64,
    pub allow_skip: bool,
    pub created_at: String,
    pub updated_at: String,
    pub updated_by: Option<i64>,
}

/// One person's labels for one task.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub id: i64,
    pub task_id: i64,
    pub project_id: i64,
    pub completed_by: Option<i64>,
    pub result: Value,
    pub was_cancelled: bool,
    pub ground_truth: bool,
    pub lead_time: Option<f64>,
    pub import_id: Option<i64>,
    pub last_action: Option<String>,
    pub unique_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub draft_created_at: Option<String>,
    pub updated_by: Option<i64>,
    pub parent_prediction: Option<i64>,
    pub parent_annotation: Option<i64>,
}

/// The fields a client may set on an annotation; `None` leaves a field as it is on update.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnnotationChanges {
    pub result: Option<Value>,
    pub was_cancelled: Option<bool>,
    pub ground_truth: Option<bool>,
    pub lead_time: Option<Option<f64>>,
    pub completed_by: Option<i64>,
    pub last_action: Option<Option<String>>,
    pub draft_created_at: Option<Option<String>>,
    pub parent_prediction: Option<Option<i64>>,
    pub parent_annotation: Option<Option<i64>>,
}

/// A model's suggested labels for one task.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub id: i64,
    pub task_id: i64,
    pub project_id: i64,
    pub result: Value,
    pub score: Option<f64>,
    pub model_version: String,
    pub created_at: String,
    pub updated_at: String,
}
