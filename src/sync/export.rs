//! Export to target storages: every annotation becomes the object `<prefix>/<annotation id>`
//! holding Label Studio's annotation JSON (spec 4.3).
//!
//! An export link records which version (`updated_at`) of an annotation each storage holds, so
//! an export sync writes exactly what is missing or stale, and a failed write on save is
//! repaired by the next sync instead of being lost.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::stream::{self, StreamExt};

use super::{Progress, SyncEngine, SyncError};
use crate::db::Db;
use crate::model::entities::{Annotation, Task, User};
use crate::model::label_config::LabelConfig;
use crate::model::storage::StorageRecord;
use crate::storage::Storage;

/// Annotations read per page during an export sync.
const PAGE_SIZE: i64 = 500;
/// Objects written at the same time.
const WRITE_CONCURRENCY: usize = 16;

/// Everything needed to write annotations of one project.
pub struct ExportContext {
    pub config: LabelConfig,
    pub tasks: HashMap<i64, Task>,
    pub users: HashMap<i64, User>,
}

impl ExportContext {
    /// Loads the tasks and users these annotations refer to.
    pub async fn load(db: &Db, config: LabelConfig, annotations: &[Annotation]) -> Result<ExportContext, SyncError> {
        let mut task_ids: Vec<i64> = annotations.iter().map(|a| a.task_id).collect();
        task_ids.sort_unstable();
        task_ids.dedup();
        let tasks = db
            .tasks_by_ids(&task_ids)
            .await?
            .into_iter()
            .map(|t| (t.id, t))
            .collect();
        let mut users = HashMap::new();
        for id in annotations.iter().filter_map(|a| a.completed_by) {
            if let std::collections::hash_map::Entry::Vacant(slot) = users.entry(id)
                && let Some(user) = db.user_by_id(id).await?
            {
                slot.insert(user);
            }
        }
        Ok(ExportContext { config, tasks, users })
    }
}

/// Writes one annotation to one target storage and records the export link.
/// Writes one annotation's object to one target storage; returns the key written.
async fn put_annotation(
    record: &StorageRecord,
    storage: &dyn Storage,
    annotation: &Annotation,
    context: &ExportContext,
) -> Result<String, String> {
    let key = crate::storage::export_key_of(record, annotation.id);
    let Some(task) = context.tasks.get(&annotation.task_id) else {
        return Err(format!("{key}: the annotation's task no longer exists"));
    };
    let user = annotation.completed_by.and_then(|id| context.users.get(&id));
    let document = crate::wire::annotation_export_document(annotation, task, &context.config, user);
    let body = serde_json::to_vec(&document).map_err(|e| format!("{key}: {e}"))?;
    storage
        .put(&key, Bytes::from(body))
        .await
        .map_err(|e| format!("{key}: {e}"))?;
    Ok(key)
}

/// Writes one annotation to one target storage and records the export link.
pub async fn write_annotation(
    db: &Db,
    record: &StorageRecord,
    storage: &dyn Storage,
    annotation: &Annotation,
    context: &ExportContext,
) -> Result<(), String> {
    let key = put_annotation(record, storage, annotation, context).await?;
    db.record_export(record.id, annotation.id, &key, &annotation.updated_at)
        .await
        .map_err(|e| format!("{key}: written, but the export could not be recorded: {e}"))
}

/// Runs one export sync: writes every annotation the storage lacks or holds in an older version.
pub async fn run(
    engine: &SyncEngine,
    record: &StorageRecord,
    storage: Arc<dyn Storage>,
    progress: &Arc<Progress>,
) -> Result<(), SyncError> {
    let db = engine.db();
    let project = db.project_by_id(record.project_id).await?;
    let config = LabelConfig::parse(&project.label_config).unwrap_or_default();
    let total = db.count_project_annotations(project.id).await?;
    Progress::add(&progress.annotations_total, usize::try_from(total).unwrap_or(0));
    let mut after = 0;
    loop {
        let page = db
            .annotations_to_export(record.id, project.id, after, PAGE_SIZE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let context = ExportContext::load(db, config.clone(), &page).await?;
        let context = &context;
        // Objects are written concurrently; their export links are then recorded in one
        // transaction per page.
        let results: Vec<(Annotation, Result<String, String>)> = stream::iter(page)
            .map(|annotation: Annotation| {
                let storage = Arc::clone(&storage);
                async move {
                    let outcome = put_annotation(record, storage.as_ref(), &annotation, context).await;
                    (annotation, outcome)
                }
                .boxed()
            })
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect()
            .await;
        let mut written = Vec::with_capacity(results.len());
        for (annotation, result) in results {
            match result {
                Ok(key) => written.push((annotation.id, key, annotation.updated_at)),
                Err(reason) => progress.fail(&format!("annotation {}", annotation.id), reason),
            }
        }
        db.record_exports(record.id, &written).await?;
        Progress::add(&progress.annotations_written, written.len());
        if progress.cancelled() {
            break;
        }
    }
    Ok(())
}
