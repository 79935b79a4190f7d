//! One task as it arrives from an import file or a storage object, checked and normalised.
//!
//! Label Studio accepts either `{"data": {...}, "annotations": [...], "predictions": [...]}` or a
//! bare data object such as `{"text": "..."}`. [`TaskItem::from_value`] turns either form into one
//! shape and refuses what cannot become a task, with a reason a person can act on.

use serde_json::{Map, Value};

/// A task ready to be stored: its data, meta, and any annotations and predictions it brought.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskItem {
    pub data: Map<String, Value>,
    pub meta: Map<String, Value>,
    pub allow_skip: bool,
    pub annotations: Vec<ImportedAnnotation>,
    pub predictions: Vec<ImportedPrediction>,
}

/// An annotation carried inside an imported task.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedAnnotation {
    pub result: Value,
    pub was_cancelled: bool,
    pub ground_truth: bool,
    pub lead_time: Option<f64>,
    /// The annotation's `id` in the file, kept as Label Studio's `import_id`.
    pub import_id: Option<i64>,
    /// A user id from the file; the importer checks it belongs to the organisation.
    pub completed_by: Option<i64>,
}

/// A prediction carried inside an imported task.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedPrediction {
    pub result: Value,
    pub score: Option<f64>,
    pub model_version: String,
}

/// Why one item cannot become a task.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskItemError {
    #[error("a task must be a JSON object, found {0}")]
    NotAnObject(&'static str),
    #[error("\"data\" must be a JSON object")]
    DataNotAnObject,
    #[error(
        "if you use the \"predictions\" or \"annotations\" field in a task, you must put a \"data\" field in the task too"
    )]
    AnnotationsWithoutData,
    #[error("\"{field}\" must be a list")]
    NotAList { field: &'static str },
    #[error("{field} {index}: {reason}")]
    BadEntry {
        field: &'static str,
        index: usize,
        reason: String,
    },
}

/// Names the JSON type of a value for error messages.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl TaskItem {
    /// A task holding only data.
    pub fn from_data(data: Map<String, Value>) -> TaskItem {
        TaskItem {
            data,
            meta: Map::new(),
            allow_skip: true,
            annotations: Vec::new(),
            predictions: Vec::new(),
        }
    }

    /// Normalises one parsed JSON value into a task (Label Studio's `add_task` rules, spec 3.5).
    pub fn from_value(value: Value) -> Result<TaskItem, TaskItemError> {
        let Value::Object(mut item) = value else {
            return Err(TaskItemError::NotAnObject(json_type_name(&value)));
        };
        let has_nested = matches!(item.get("annotations"), Some(Value::Array(a)) if !a.is_empty())
            || matches!(item.get("predictions"), Some(Value::Array(p)) if !p.is_empty());
        match item.remove("data") {
            Some(Value::Object(data)) => {
                let meta = match item.remove("meta") {
                    Some(Value::Object(meta)) => meta,
                    _ => Map::new(),
                };
                let allow_skip = item.get("allow_skip").and_then(Value::as_bool).unwrap_or(true);
                let annotations = take_list(&mut item, "annotations")?
                    .into_iter()
                    .enumerate()
                    .map(|(index, a)| parse_annotation(a).map_err(|reason| bad("annotation", index, reason)))
                    .collect::<Result<_, _>>()?;
                let predictions = take_list(&mut item, "predictions")?
                    .into_iter()
                    .enumerate()
                    .map(|(index, p)| parse_prediction(p).map_err(|reason| bad("prediction", index, reason)))
                    .collect::<Result<_, _>>()?;
                Ok(TaskItem {
                    data,
                    meta,
                    allow_skip,
                    annotations,
                    predictions,
                })
            }
            Some(other) if !other.is_null() => Err(TaskItemError::DataNotAnObject),
            _ if has_nested => Err(TaskItemError::AnnotationsWithoutData),
            _ => Ok(TaskItem::from_data(item)),
        }
    }
}

fn bad(field: &'static str, index: usize, reason: String) -> TaskItemError {
    TaskItemError::BadEntry { field, index, reason }
}

fn take_list(item: &mut Map<String, Value>, field: &'static str) -> Result<Vec<Value>, TaskItemError> {
    match item.remove(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => Ok(list),
        Some(_) => Err(TaskItemError::NotAList { field }),
    }
}

fn take_result(entry: &mut Map<String, Value>) -> Result<Value, String> {
    match entry.remove("result") {
        None | Some(Value::Null) => Ok(Value::Array(Vec::new())),
        Some(Value::Array(list)) => Ok(Value::Array(list)),
        Some(other) => Err(format!("\"result\" must be a list, found {}", json_type_name(&other))),
    }
}

fn parse_annotation(value: Value) -> Result<ImportedAnnotation, String> {
    let Value::Object(mut entry) = value else {
        return Err(format!("must be a JSON object, found {}", json_type_name(&value)));
    };
    Ok(ImportedAnnotation {
        result: take_result(&mut entry)?,
        was_cancelled: entry.get("was_cancelled").and_then(Value::as_bool).unwrap_or(false),
        ground_truth: entry.get("ground_truth").and_then(Value::as_bool).unwrap_or(false),
        lead_time: entry.get("lead_time").and_then(Value::as_f64),
        import_id: entry.get("id").and_then(Value::as_i64),
        completed_by: match entry.get("completed_by") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::Object(o)) => o.get("id").and_then(Value::as_i64),
            _ => None,
        },
    })
}

fn parse_prediction(value: Value) -> Result<ImportedPrediction, String> {
    let Value::Object(mut entry) = value else {
        return Err(format!("must be a JSON object, found {}", json_type_name(&value)));
    };
    Ok(ImportedPrediction {
        result: take_result(&mut entry)?,
        score: entry.get("score").and_then(Value::as_f64),
        model_version: entry
            .get("model_version")
            .map(|v| match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bare_object_becomes_data() {
        let item = TaskItem::from_value(json!({"text": "hello", "allow_skip": false})).unwrap();
        assert_eq!(item.data["text"], "hello");
        assert!(item.annotations.is_empty());
    }

    #[test]
    fn nested_form_keeps_annotations_and_predictions() {
        let item = TaskItem::from_value(json!({
            "data": {"text": "x"}, "meta": {"m": 1},
            "annotations": [{"id": 7, "result": [{"a": 1}], "was_cancelled": true}],
            "predictions": [{"result": [], "score": 0.5, "model_version": "v1"}]
        }))
        .unwrap();
        assert_eq!(item.annotations[0].import_id, Some(7));
        assert!(item.annotations[0].was_cancelled);
        assert_eq!(item.predictions[0].score, Some(0.5));
        assert_eq!(item.meta["m"], 1);
    }

    #[test]
    fn refuses_what_cannot_be_a_task() {
        assert_eq!(
            TaskItem::from_value(json!(3)),
            Err(TaskItemError::NotAnObject("a number"))
        );
        assert_eq!(
            TaskItem::from_value(json!({"annotations": [{"result": []}]})),
            Err(TaskItemError::AnnotationsWithoutData)
        );
        assert!(matches!(
            TaskItem::from_value(json!({"data": {}, "annotations": [{"result": 5}]})),
            Err(TaskItemError::BadEntry {
                field: "annotation",
                index: 0,
                ..
            })
        ));
    }
}
