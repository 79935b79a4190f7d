//! Import sync: list the bucket page by page, skip keys already linked, fetch new objects with
//! bounded concurrency, parse them, and write tasks with their links in batched transactions.
//!
//! Memory stays flat: one listing page, `concurrency` objects in flight, and two write batches
//! queued for the writer are all that is ever held.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::{Progress, SyncEngine, SyncError};
use crate::db::{Db, NewImportLink, NewTask};
use crate::model::import_format::{ImportFormat, read_tasks};
use crate::model::label_config::UNDEFINED_DATA_KEY;
use crate::model::storage::{StorageRecord, compile_key_filter};
use crate::model::task_item::TaskItem;
use crate::storage::{ObjectInfo, Storage, StorageError, StorageErrorKind};

/// Tasks per write transaction.
const TASKS_PER_BATCH: usize = 2000;
/// Objects parsed inline; larger ones are parsed on a blocking thread.
const INLINE_PARSE_BYTES: usize = 256 * 1024;

/// Tasks ready to be written with the links that name their objects.
#[derive(Default)]
struct WriteBatch {
    items: Vec<TaskItem>,
    links: Vec<NewImportLink>,
}

impl WriteBatch {
    fn push(&mut self, item: TaskItem, info: &ObjectInfo, row_index: Option<i64>) {
        self.links.push(NewImportLink {
            task_index: self.items.len(),
            key: info.key.clone(),
            row_index,
            etag: info.etag.clone(),
            size: i64::try_from(info.size).ok(),
            last_modified: info.last_modified.clone(),
        });
        self.items.push(item);
    }
}

/// What fetching one object came to.
enum Fetched {
    Tasks(ObjectInfo, Vec<TaskItem>, bool),
    Failed(String, String),
}

/// Runs one import sync of `record` from `storage`.
pub async fn run(
    engine: &SyncEngine,
    record: &StorageRecord,
    storage: Arc<dyn Storage>,
    progress: &Arc<Progress>,
) -> Result<(), SyncError> {
    let db = engine.db().clone();
    let filter = compile_key_filter(record.text("regex_filter")).map_err(SyncError::Invalid)?;
    let prefix = crate::storage::listing_prefix_of(record);
    let check_extension = crate::storage::keys_have_extensions(&record.kind);
    let recursive = record.flag("recursive_scan", false);
    let blob_mode = record.flag("use_blob_urls", false);
    let project = db.project_by_id(record.project_id).await?;
    let target = NewTask {
        project_id: project.id,
        overlap: project.maximum_annotations,
        importer_id: project.created_by,
        members: db
            .organization_user_ids(project.organization_id)
            .await?
            .into_iter()
            .collect(),
    };

    let (sender, receiver) = mpsc::channel::<WriteBatch>(2);
    let writer = tokio::spawn(write_batches(
        db.clone(),
        record.id,
        target,
        receiver,
        Arc::clone(progress),
    ));

    let storage_id = record.id;
    let new_objects = storage
        .list(&prefix, recursive)
        .map_err(SyncError::Storage)
        .and_then(
            |page| -> futures::future::BoxFuture<'static, Result<Vec<ObjectInfo>, SyncError>> {
                let db = db.clone();
                let filter = filter.clone();
                let progress = Arc::clone(progress);
                async move { new_objects_of_page(&db, storage_id, page, filter.as_ref(), &progress).await }.boxed()
            },
        )
        .map_ok(|objects| stream::iter(objects.into_iter().map(Ok::<_, SyncError>)))
        .try_flatten();
    let mut new_objects: futures::stream::BoxStream<'_, Result<ObjectInfo, SyncError>> = new_objects.boxed();

    let mut batch = WriteBatch::default();
    let outcome: Result<(), SyncError> = if blob_mode {
        async {
            while let Some(info) = new_objects.try_next().await? {
                let mut data = Map::new();
                data.insert(UNDEFINED_DATA_KEY.into(), Value::String(storage.object_uri(&info.key)));
                batch.push(TaskItem::from_data(data), &info, None);
                if batch.items.len() >= TASKS_PER_BATCH && !send(&sender, &mut batch).await {
                    break;
                }
            }
            Ok(())
        }
        .await
    } else {
        async {
            let fetched = new_objects
                .map(|info: Result<ObjectInfo, SyncError>| {
                    let storage = Arc::clone(&storage);
                    async move {
                        match info {
                            Ok(info) => Ok(fetch_object(storage.as_ref(), info, check_extension).await),
                            Err(fatal) => Err(fatal),
                        }
                    }
                    .boxed()
                })
                .buffer_unordered(engine.settings().concurrency.max(1));
            let mut fetched: futures::stream::BoxStream<'_, Result<Fetched, SyncError>> = fetched.boxed();
            while let Some(result) = fetched.next().await {
                match result? {
                    Fetched::Failed(key, reason) => progress.fail(&key, reason),
                    Fetched::Tasks(info, items, indexed) => {
                        for (index, item) in items.into_iter().enumerate() {
                            batch.push(item, &info, indexed.then_some(index as i64));
                        }
                        if batch.items.len() >= TASKS_PER_BATCH && !send(&sender, &mut batch).await {
                            break;
                        }
                    }
                }
                if progress.cancelled() {
                    break;
                }
            }
            Ok(())
        }
        .await
    };
    if outcome.is_ok() && !batch.items.is_empty() {
        send(&sender, &mut batch).await;
    }
    drop(sender);
    let written = writer
        .await
        .map_err(|e| SyncError::Invalid(format!("the task writer stopped: {e}")))?;
    outcome?;
    written
}

/// Sends a full batch to the writer; false when the writer has stopped (its error is reported).
async fn send(sender: &mpsc::Sender<WriteBatch>, batch: &mut WriteBatch) -> bool {
    sender.send(std::mem::take(batch)).await.is_ok()
}

/// Filters one listing page (directory markers, regex) and drops keys already linked.
async fn new_objects_of_page(
    db: &Db,
    storage_id: i64,
    page: Vec<ObjectInfo>,
    filter: Option<&regex::Regex>,
    progress: &Progress,
) -> Result<Vec<ObjectInfo>, SyncError> {
    let listed = page.len();
    Progress::add(&progress.objects_listed, listed);
    let mut seen = HashSet::new();
    let candidates: Vec<ObjectInfo> = page
        .into_iter()
        .filter(|o| !o.key.ends_with('/') && filter.is_none_or(|f| f.is_match(&o.key)) && seen.insert(o.key.clone()))
        .collect();
    let keys: Vec<String> = candidates.iter().map(|o| o.key.clone()).collect();
    Progress::add(&progress.objects_skipped, listed - keys.len());
    let linked = db.linked_keys(storage_id, &keys).await?;
    Progress::add(&progress.tasks_existed, linked.len());
    Ok(candidates.into_iter().filter(|o| !linked.contains(&o.key)).collect())
}

/// Whether a key may hold tasks in JSON mode: `.json`, `.jsonl` or no extension (spec 3.4).
fn json_format_of(key: &str) -> Option<ImportFormat> {
    let name = key.rsplit('/').next().unwrap_or(key);
    match name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()) {
        None => Some(ImportFormat::Json),
        Some(ext) if ext == "json" => Some(ImportFormat::Json),
        Some(ext) if ext == "jsonl" || ext == "ndjson" => Some(ImportFormat::Jsonl),
        Some(_) => None,
    }
}

/// Reads an object with a few extra attempts for temporary failures (the client library already
/// retries each request).
async fn get_with_retries(storage: &dyn Storage, key: &str) -> Result<bytes::Bytes, StorageError> {
    let mut delay = Duration::from_millis(250);
    let mut attempt = 0;
    loop {
        match storage.get(key).await {
            Err(error) if error.is_temporary() && attempt < 2 => {
                attempt += 1;
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
            other => return other,
        }
    }
}

async fn fetch_object(storage: &dyn Storage, info: ObjectInfo, check_extension: bool) -> Fetched {
    let format = if check_extension {
        json_format_of(&info.key)
    } else {
        Some(ImportFormat::Json)
    };
    let Some(format) = format else {
        return Fetched::Failed(
            info.key,
            "not a JSON or JSONL file: in tasks mode only .json and .jsonl objects are read; to make one task \
             per media file, turn on \"Treat every bucket object as a source file\" (use_blob_urls)"
                .into(),
        );
    };
    let bytes = match get_with_retries(storage, &info.key).await {
        Ok(bytes) => bytes,
        Err(error) if error.kind == StorageErrorKind::NotFound => {
            return Fetched::Failed(info.key, "the object disappeared before it could be read".into());
        }
        Err(error) => return Fetched::Failed(info.key, format!("could not read the object: {error}")),
    };
    let size = bytes.len();
    let parse = move || {
        let mut items = Vec::new();
        let outcome = read_tasks(&bytes, format, |item| {
            items.push(item);
            Ok(())
        });
        let starts_as_array = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
        outcome.map(|_| {
            let indexed = starts_as_array || format == ImportFormat::Jsonl || items.len() != 1;
            (items, indexed)
        })
    };
    let parsed = if size <= INLINE_PARSE_BYTES {
        parse()
    } else {
        match tokio::task::spawn_blocking(parse).await {
            Ok(parsed) => parsed,
            Err(error) => return Fetched::Failed(info.key, format!("could not parse the object: {error}")),
        }
    };
    match parsed {
        Ok((items, indexed)) => Fetched::Tasks(info, items, indexed),
        Err(error) => Fetched::Failed(info.key, error.to_string()),
    }
}

/// Writes batches of tasks with their links, one transaction per batch.
async fn write_batches(
    db: Db,
    storage_id: i64,
    target: NewTask,
    mut receiver: mpsc::Receiver<WriteBatch>,
    progress: Arc<Progress>,
) -> Result<(), SyncError> {
    while let Some(batch) = receiver.recv().await {
        let mut tx = db.begin_write().await?;
        if !db.holds_sync_lease(&mut tx, storage_id, progress.owner()).await? {
            // The job was taken over (or the storage deleted): its new run writes these tasks.
            progress.cancel();
            return Ok(());
        }
        let task_ids = db.insert_tasks(&mut tx, &target, &batch.items).await?;
        db.insert_import_links(&mut tx, storage_id, &task_ids, &batch.links)
            .await?;
        tx.commit().await.map_err(crate::db::DbError::from)?;
        Progress::add(&progress.tasks_created, task_ids.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_mode_reads_json_jsonl_and_extensionless_keys_only() {
        assert_eq!(json_format_of("a/b.json"), Some(ImportFormat::Json));
        assert_eq!(json_format_of("a/b.JSONL"), Some(ImportFormat::Jsonl));
        assert_eq!(json_format_of("a.d/tasks"), Some(ImportFormat::Json));
        assert_eq!(json_format_of("a/b.jpg"), None);
    }
}
