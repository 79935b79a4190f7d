//! Sync jobs: import from source storages, export to target storages, and keeping target
//! storages in step as annotations are saved.
//!
//! A sync is requested by moving the storage row to `queued`. Workers in every process poll for
//! queued rows (or rows whose lease expired because their process died), claim one with a lease,
//! heartbeat it every second while running, and finish it with a final status. Import is
//! idempotent per object key (links are written in the same transaction as their tasks), so a
//! job taken over after a crash simply lists again and skips what is already linked.

pub mod export;
pub mod import;
pub mod resolve;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::db::{Db, DbError, SyncOutcome};
use crate::model::entities::Annotation;
use crate::model::label_config::LabelConfig;
use crate::model::storage::{Direction, StorageRecord, SyncStatus};
use crate::model::timestamp::format_timestamp;
use crate::storage::{Storage, StorageError};

/// How syncs run.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Objects fetched at once during an import.
    pub concurrency: usize,
    /// How long a claimed job stays ours without a heartbeat.
    pub lease: Duration,
    /// How often idle workers look for queued jobs.
    pub poll_interval: Duration,
    /// Jobs one process runs at the same time.
    pub workers: usize,
}

impl Default for SyncSettings {
    fn default() -> SyncSettings {
        SyncSettings {
            concurrency: 32,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            workers: 2,
        }
    }
}

/// What went wrong outside a job's own per-object reporting.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Invalid(String),
}

/// Label Studio writes `meta` timestamps as Python `str(datetime)`; labelport writes RFC 3339.
fn stamp(moment: OffsetDateTime) -> Value {
    Value::String(format_timestamp(moment))
}

/// Storage clients by storage id, with the fingerprint of the configuration each was built from.
type ClientCache = std::collections::HashMap<i64, (u64, Arc<dyn Storage>)>;

/// The sync service of one process.
pub struct SyncEngine {
    db: Db,
    settings: SyncSettings,
    /// This process's identity: the name of each run's lease starts with it.
    owner: String,
    wake: Notify,
    /// Storage clients by storage id, with the configuration fingerprint they were built from.
    clients: std::sync::Mutex<ClientCache>,
    /// The storages whose jobs this process is running.
    running: std::sync::Mutex<std::collections::HashSet<i64>>,
}

impl SyncEngine {
    pub fn new(db: Db, settings: SyncSettings) -> Arc<SyncEngine> {
        Arc::new(SyncEngine {
            db,
            settings,
            owner: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            wake: Notify::new(),
            clients: std::sync::Mutex::new(std::collections::HashMap::new()),
            running: std::sync::Mutex::new(std::collections::HashSet::new()),
        })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    /// Queues a sync unless one is queued or running, and returns the storage as it now is.
    pub async fn request_sync(&self, record: &StorageRecord) -> Result<StorageRecord, SyncError> {
        if !record.status.is_active() {
            let attempts = record.meta.get("attempts").and_then(Value::as_i64).unwrap_or(0) + 1;
            let mut meta = Map::new();
            meta.insert("attempts".into(), json!(attempts));
            meta.insert("time_queued".into(), stamp(OffsetDateTime::now_utc()));
            let job_id = uuid::Uuid::new_v4().to_string();
            if self.db.queue_sync(record, &job_id, &meta).await? {
                self.wake.notify_waiters();
            }
        }
        Ok(self.db.storage_by_id(record.id).await?)
    }

    /// A client for a storage, reused while its configuration is unchanged.
    pub fn client(&self, record: &StorageRecord) -> Result<Arc<dyn Storage>, StorageError> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        record.kind.hash(&mut hasher);
        Value::Object(record.settings.clone()).to_string().hash(&mut hasher);
        Value::Object(record.secrets.clone()).to_string().hash(&mut hasher);
        let fingerprint = hasher.finish();
        let mut clients = self.clients.lock().expect("clients lock");
        if let Some((known, client)) = clients.get(&record.id)
            && *known == fingerprint
        {
            return Ok(Arc::clone(client));
        }
        let client = crate::storage::connect(record)?;
        clients.insert(record.id, (fingerprint, Arc::clone(&client)));
        Ok(client)
    }

    /// Drops the cached client of a deleted storage.
    pub fn forget_client(&self, storage_id: i64) {
        self.clients.lock().expect("clients lock").remove(&storage_id);
    }

    /// Writes a just-saved annotation to every target storage of its project, in the background.
    /// A failed write is noted on the storage and repaired by its next export sync.
    pub fn annotation_saved(self: &Arc<Self>, annotation_id: i64) {
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(error) = engine.export_saved(annotation_id).await {
                tracing::warn!(annotation = annotation_id, error = %error, "exporting a saved annotation failed");
            }
        });
    }

    async fn export_saved(&self, annotation_id: i64) -> Result<(), SyncError> {
        // Two quick saves start two of these; whichever finishes last must not leave the older
        // version behind. So after writing, the annotation is read again, and written again if it
        // changed meanwhile (a few rounds at most; an export sync repairs anything left).
        let mut written_version: Option<String> = None;
        for _round in 0..3 {
            let Some(annotation) = self.db.annotation_by_id(annotation_id).await? else {
                return Ok(());
            };
            if written_version.as_deref() == Some(annotation.updated_at.as_str()) {
                return Ok(());
            }
            self.export_annotation_everywhere(&annotation).await?;
            written_version = Some(annotation.updated_at);
        }
        Ok(())
    }

    async fn export_annotation_everywhere(&self, annotation: &Annotation) -> Result<(), SyncError> {
        let storages = self
            .db
            .project_storages(annotation.project_id, Direction::Export, None)
            .await?;
        if storages.is_empty() {
            return Ok(());
        }
        let project = self.db.project_by_id(annotation.project_id).await?;
        let config = LabelConfig::parse(&project.label_config).unwrap_or_default();
        let context = export::ExportContext::load(&self.db, config, std::slice::from_ref(annotation)).await?;
        for record in storages {
            let outcome = match self.client(&record) {
                Ok(client) => export::write_annotation(&self.db, &record, client.as_ref(), annotation, &context).await,
                Err(error) => Err(error.to_string()),
            };
            if let Err(reason) = outcome {
                self.db
                    .note_export_failure(record.id, &format!("annotation {}: {reason}", annotation.id))
                    .await?;
            }
        }
        Ok(())
    }

    /// The objects to delete once this annotation is deleted: its exported objects in target
    /// storages with `can_delete_objects`. Call before deleting the annotation.
    pub async fn objects_of_annotation(
        &self,
        annotation: &Annotation,
    ) -> Result<Vec<(StorageRecord, String)>, SyncError> {
        let mut objects = Vec::new();
        for (storage_id, key) in self.db.export_links_of_annotation(annotation.id).await? {
            let record = self.db.storage_by_id(storage_id).await?;
            if record.flag("can_delete_objects", false) {
                objects.push((record, key));
            }
        }
        Ok(objects)
    }

    /// Deletes exported objects in the background; failures are noted on their storage.
    pub fn delete_objects(self: &Arc<Self>, objects: Vec<(StorageRecord, String)>) {
        if objects.is_empty() {
            return;
        }
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            for (record, key) in objects {
                let outcome = match engine.client(&record) {
                    Ok(client) => client.delete(&key).await.map_err(|e| e.to_string()),
                    Err(error) => Err(error.to_string()),
                };
                if let Err(reason) = outcome {
                    let note = format!("{key}: could not delete: {reason}");
                    if let Err(error) = engine.db.note_export_failure(record.id, &note).await {
                        tracing::warn!(storage = record.id, error = %error, "could not note a failed delete");
                    }
                }
            }
        });
    }

    /// Starts this process's workers; they run until the process ends.
    pub fn start_workers(self: &Arc<Self>) {
        for _ in 0..self.settings.workers.max(1) {
            let engine = Arc::clone(self);
            tokio::spawn(async move { engine.worker_loop().await });
        }
    }

    async fn worker_loop(self: Arc<Self>) {
        // The loop ends with the database pool (at shutdown, or when a test or benchmark closes it).
        while !self.db.is_closed() {
            match self.run_one().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => tracing::error!(error = %error, "sync worker error"),
            }
            tokio::select! {
                () = self.wake.notified() => {},
                () = tokio::time::sleep(self.settings.poll_interval) => {},
            }
        }
    }

    fn lease_until(&self) -> String {
        format_timestamp(OffsetDateTime::now_utc() + self.settings.lease)
    }

    /// Claims and runs one job. Returns whether there was one.
    pub async fn run_one(&self) -> Result<bool, SyncError> {
        // Each run holds the lease under its own name, so a run whose lease expired learns it
        // even when another worker of this same process took the job over.
        let owner = format!("{}/{}", self.owner, uuid::Uuid::new_v4().simple());
        // A job of this process is alive even if a busy moment let its lease run out: never take
        // it over from ourselves.
        let running = self.running.lock().expect("running lock").clone();
        let Some(record) = self.db.claim_sync_except(&owner, &self.lease_until(), &running).await? else {
            return Ok(false);
        };
        let _running = Running::start(&self.running, record.id);
        tracing::info!(storage = record.id, kind = %record.kind, direction = record.direction.as_str(), "sync started");
        let progress = Arc::new(Progress::new(&record, &owner));
        // The guard stops the heartbeat however this future ends, even when it is dropped, so a
        // job that stops running also stops holding its lease.
        let heartbeat = AbortOnDrop(self.spawn_heartbeat(record.id, Arc::clone(&progress)));
        let outcome = match self.client(&record) {
            Err(error) => Err(SyncError::Storage(error)),
            Ok(storage) => match record.direction {
                Direction::Import => import::run(self, &record, storage, &progress).await,
                Direction::Export => export::run(self, &record, storage, &progress).await,
            },
        };
        drop(heartbeat);
        if progress.cancelled() {
            tracing::warn!(
                storage = record.id,
                "sync stopped: the job was taken over or the storage deleted"
            );
            return Ok(true);
        }
        let finished = match outcome {
            Ok(()) => progress.outcome(None),
            Err(error) => progress.outcome(Some(error.to_string())),
        };
        tracing::info!(
            storage = record.id,
            status = finished.status.as_str(),
            count = finished.count,
            "sync finished"
        );
        self.db.finish_sync(record.id, &owner, &finished).await?;
        Ok(true)
    }

    fn spawn_heartbeat(&self, storage_id: i64, progress: Arc<Progress>) -> tokio::task::JoinHandle<()> {
        let db = self.db.clone();
        let owner = progress.owner.clone();
        let lease = self.settings.lease;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            loop {
                ticker.tick().await;
                let until = format_timestamp(OffsetDateTime::now_utc() + lease);
                match db
                    .sync_heartbeat(storage_id, &owner, &until, progress.count(), &progress.meta())
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        progress.cancel();
                        return;
                    }
                    Err(error) => tracing::warn!(error = %error, "sync heartbeat failed"),
                }
            }
        })
    }
}

/// Marks a storage's job as running in this process until dropped.
struct Running<'a> {
    set: &'a std::sync::Mutex<std::collections::HashSet<i64>>,
    storage_id: i64,
}

impl<'a> Running<'a> {
    fn start(set: &'a std::sync::Mutex<std::collections::HashSet<i64>>, storage_id: i64) -> Running<'a> {
        set.lock().expect("running lock").insert(storage_id);
        Running { set, storage_id }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.set.lock().expect("running lock").remove(&self.storage_id);
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Counters and per-object failures of a running job, shared with its heartbeat.
pub struct Progress {
    started: Instant,
    base_meta: Map<String, Value>,
    direction: Direction,
    /// The name this run holds the storage's lease under.
    owner: String,
    pub objects_listed: AtomicI64,
    pub objects_skipped: AtomicI64,
    pub objects_failed: AtomicI64,
    pub tasks_created: AtomicI64,
    pub tasks_existed: AtomicI64,
    pub annotations_total: AtomicI64,
    pub annotations_written: AtomicI64,
    failures: std::sync::Mutex<Vec<(String, String)>>,
    cancelled: AtomicBool,
}

/// Per-object failures kept for the traceback and `meta.failures`.
const MAX_REPORTED_FAILURES: usize = 1000;

impl Progress {
    fn new(record: &StorageRecord, owner: &str) -> Progress {
        let mut base_meta = record.meta.clone();
        let now = stamp(OffsetDateTime::now_utc());
        base_meta.entry("time_in_progress").or_insert(now);
        Progress {
            started: Instant::now(),
            base_meta,
            direction: record.direction,
            owner: owner.to_string(),
            objects_listed: AtomicI64::new(0),
            objects_skipped: AtomicI64::new(0),
            objects_failed: AtomicI64::new(0),
            tasks_created: AtomicI64::new(0),
            tasks_existed: AtomicI64::new(0),
            annotations_total: AtomicI64::new(0),
            annotations_written: AtomicI64::new(0),
            failures: std::sync::Mutex::new(Vec::new()),
            cancelled: AtomicBool::new(false),
        }
    }

    pub fn add(counter: &AtomicI64, n: usize) {
        counter.fetch_add(n as i64, Ordering::Relaxed);
    }

    /// Records one object that could not be imported or exported, with its key and reason.
    pub fn fail(&self, key: &str, reason: impl std::fmt::Display) {
        self.objects_failed.fetch_add(1, Ordering::Relaxed);
        let mut failures = self.failures.lock().expect("failures lock");
        if failures.len() < MAX_REPORTED_FAILURES {
            failures.push((key.to_string(), reason.to_string()));
        }
    }

    /// The name this run holds the storage's lease under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// `last_sync_count`: tasks created (import) or annotations written (export).
    fn count(&self) -> i64 {
        match self.direction {
            Direction::Import => self.tasks_created.load(Ordering::Relaxed),
            Direction::Export => self.annotations_written.load(Ordering::Relaxed),
        }
    }

    /// `meta` as Label Studio shapes it, plus labelport's totals.
    fn meta(&self) -> Map<String, Value> {
        let mut meta = self.base_meta.clone();
        let seconds = self.started.elapsed().as_secs_f64();
        meta.insert("time_last_ping".into(), stamp(OffsetDateTime::now_utc()));
        meta.insert("duration".into(), json!(seconds));
        let load = |c: &AtomicI64| c.load(Ordering::Relaxed);
        match self.direction {
            Direction::Import => {
                meta.insert("tasks_existed".into(), json!(load(&self.tasks_existed)));
                meta.insert("objects_listed".into(), json!(load(&self.objects_listed)));
                meta.insert("objects_skipped".into(), json!(load(&self.objects_skipped)));
                meta.insert("objects_failed".into(), json!(load(&self.objects_failed)));
                meta.insert("tasks_created".into(), json!(load(&self.tasks_created)));
                let rate = if seconds > 0.0 {
                    load(&self.objects_listed) as f64 / seconds
                } else {
                    0.0
                };
                meta.insert("objects_per_second".into(), json!((rate * 10.0).round() / 10.0));
            }
            Direction::Export => {
                meta.insert("total_annotations".into(), json!(load(&self.annotations_total)));
                meta.insert("annotations_written".into(), json!(load(&self.annotations_written)));
                meta.insert("objects_failed".into(), json!(load(&self.objects_failed)));
            }
        }
        meta
    }

    /// The final state: `failed` when the run stopped, `completed_with_errors` when some objects
    /// failed, else `completed`.
    fn outcome(&self, fatal: Option<String>) -> SyncOutcome {
        let mut meta = self.meta();
        let failures = self.failures.lock().expect("failures lock").clone();
        let failed = self.objects_failed.load(Ordering::Relaxed);
        let mut lines: Vec<String> = failures
            .iter()
            .map(|(key, reason)| format!("{key}: {reason}"))
            .collect();
        if failed as usize > failures.len() {
            lines.push(format!("... and {} more", failed as usize - failures.len()));
        }
        if !failures.is_empty() {
            meta.insert(
                "failures".into(),
                Value::Array(
                    failures
                        .iter()
                        .take(100)
                        .map(|(key, reason)| json!({"key": key, "reason": reason}))
                        .collect(),
                ),
            );
            meta.insert("tasks_failed_validation".into(), json!(failed));
        }
        let status = match (&fatal, failed) {
            (Some(_), _) => SyncStatus::Failed,
            (None, 0) => SyncStatus::Completed,
            (None, _) => SyncStatus::CompletedWithErrors,
        };
        let now = stamp(OffsetDateTime::now_utc());
        match status {
            SyncStatus::Failed => meta.insert("time_failure".into(), now),
            _ => meta.insert("time_completed".into(), now),
        };
        if let Some(message) = fatal {
            lines.insert(0, message);
        }
        SyncOutcome {
            status,
            count: self.count(),
            traceback: (!lines.is_empty()).then(|| lines.join("\n")),
            meta,
        }
    }
}
