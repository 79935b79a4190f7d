//! `labelport bench sync`: seeds an S3-compatible server with N JSON-task objects and N media
//! objects, then measures, in one run: the floor (the same objects listed and fetched directly
//! with the same client library at the same concurrency), an import sync of each mode, a re-sync,
//! and an export of annotations. Prints objects per second, peak memory and the ratio to the floor.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, ensure};
use bytes::Bytes;
use clap::Args;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, json};

use crate::db::Db;
use crate::model::entities::Project;
use crate::model::storage::{Direction, StorageRecord, SyncStatus};
use crate::storage::Storage;
use crate::storage::cloud::CloudStorage;
use crate::storage::s3::S3Config;
use crate::sync::{SyncEngine, SyncSettings};

#[derive(Debug, Clone, Args)]
pub struct SyncBenchArgs {
    /// Objects of each mode.
    #[arg(long, default_value_t = 10_000)]
    pub objects: usize,
    /// Annotations to export.
    #[arg(long, default_value_t = 10_000)]
    pub annotations: usize,
    /// S3 endpoint, e.g. `http://127.0.0.1:19100`.
    #[arg(long, env = "LABELPORT_TEST_S3_ENDPOINT")]
    pub endpoint: String,
    #[arg(long, env = "LABELPORT_TEST_S3_ACCESS_KEY")]
    pub access_key: String,
    #[arg(long, env = "LABELPORT_TEST_S3_SECRET_KEY")]
    pub secret_key: String,
    /// The server's data folder when it is s3s-fs: buckets are created there and objects are seeded
    /// as files, which is much faster than uploading them.
    #[arg(long, env = "LABELPORT_TEST_S3_ROOT")]
    pub root: Option<std::path::PathBuf>,
    /// Objects fetched at the same time, by the floor and by the sync.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Database for the run (default: a fresh SQLite file in a temporary folder).
    #[arg(long)]
    pub database_url: Option<String>,
}

/// Peak resident memory since the last reset, in MiB, and a reset for the next phase (Linux).
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn client(args: &SyncBenchArgs, bucket: &str) -> anyhow::Result<CloudStorage> {
    Ok(crate::storage::s3::connect(&S3Config {
        bucket: bucket.to_string(),
        region: None,
        endpoint: Some(args.endpoint.clone()),
        access_key_id: Some(args.access_key.clone()),
        secret_access_key: Some(args.secret_key.clone()),
        session_token: None,
    })?)
}

/// Writes `count` objects named by `key` with contents from `body`, as files under the server's
/// root when known, else by uploading them.
async fn seed(
    args: &SyncBenchArgs,
    bucket: &str,
    count: usize,
    key: impl Fn(usize) -> String,
    body: impl Fn(usize) -> Vec<u8>,
) -> anyhow::Result<()> {
    if let Some(root) = &args.root {
        for i in 0..count {
            let path = root.join(bucket).join(key(i));
            std::fs::create_dir_all(path.parent().context("object path")?)?;
            std::fs::write(path, body(i))?;
        }
        return Ok(());
    }
    let storage = client(args, bucket)?;
    futures::stream::iter(0..count)
        .map(|i| {
            let storage = &storage;
            let (k, b) = (key(i), body(i));
            async move { storage.put(&k, Bytes::from(b)).await }
        })
        .buffer_unordered(args.concurrency)
        .try_collect::<()>()
        .await?;
    Ok(())
}

/// The floor: list every object under the prefix and GET each, at the sync's concurrency.
async fn floor(args: &SyncBenchArgs, bucket: &str, prefix: &str, fetch: bool) -> anyhow::Result<(usize, f64)> {
    let storage = client(args, bucket)?;
    let started = Instant::now();
    let keys: Vec<String> = storage
        .list(prefix, true)
        .map_ok(|page| futures::stream::iter(page.into_iter().map(|o| Ok::<_, crate::storage::StorageError>(o.key))))
        .try_flatten()
        .try_collect()
        .await?;
    if fetch {
        futures::stream::iter(keys.iter())
            .map(|k| storage.get(k))
            .buffer_unordered(args.concurrency)
            .try_for_each(|_| async { Ok(()) })
            .await?;
    }
    Ok((keys.len(), started.elapsed().as_secs_f64()))
}

fn storage_record(
    project_id: i64,
    direction: Direction,
    bucket: &str,
    prefix: &str,
    blob: bool,
    args: &SyncBenchArgs,
) -> StorageRecord {
    let settings = json!({
        "bucket": bucket, "prefix": prefix, "use_blob_urls": blob, "recursive_scan": true,
        "s3_endpoint": args.endpoint, "presign": true, "presign_ttl": 1,
    });
    let secrets = json!({"aws_access_key_id": args.access_key, "aws_secret_access_key": args.secret_key});
    let mut record = StorageRecord::new("s3", direction, project_id);
    record.title = Some("bench".into());
    record.settings = settings.as_object().cloned().unwrap_or_default();
    record.secrets = secrets.as_object().cloned().unwrap_or_default();
    record
}

/// Runs one sync of a storage to the end in this process and returns (seconds, final record).
async fn sync_once(engine: &Arc<SyncEngine>, record: &StorageRecord) -> anyhow::Result<(f64, StorageRecord)> {
    let started = Instant::now();
    let record = engine.request_sync(record).await?;
    ensure!(engine.run_one().await?, "no sync job was claimed");
    let done = engine.db().storage_by_id(record.id).await?;
    Ok((started.elapsed().as_secs_f64(), done))
}

fn row(phase: &str, objects: usize, seconds: f64, floor: Option<f64>, peak: f64) {
    let ratio = floor.map_or("-".to_string(), |f| format!("{:.2}x", seconds / f));
    println!(
        "{phase:<28} {objects:>8} {seconds:>9.2} {:>10.0} {ratio:>9} {peak:>10.1}",
        objects as f64 / seconds
    );
}

pub async fn run(args: SyncBenchArgs) -> anyhow::Result<()> {
    let n = args.objects;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let json_bucket = format!("bench-json-{}", &run_id[..8]);
    let media_bucket = format!("bench-media-{}", &run_id[..8]);
    let export_bucket = format!("bench-export-{}", &run_id[..8]);
    if let Some(root) = &args.root {
        for bucket in [&json_bucket, &media_bucket, &export_bucket] {
            std::fs::create_dir_all(root.join(bucket))?;
        }
    }
    eprintln!("seeding {n} JSON objects and {n} media objects ...");
    seed(
        &args,
        &json_bucket,
        n,
        |i| format!("tasks/{:03}/{i}.json", i % 100),
        |i| format!(r#"{{"text":"Review number {i}: the product arrived on time and works.","n":{i}}}"#).into_bytes(),
    )
    .await?;
    seed(
        &args,
        &media_bucket,
        n,
        |i| format!("media/{:03}/{i}.jpg", i % 100),
        |i| {
            let mut bytes = vec![0xFFu8, 0xD8, 0xFF];
            bytes.extend_from_slice(format!("image {i}").as_bytes());
            bytes
        },
    )
    .await?;

    let dir = tempfile::tempdir()?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.path().display()));
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    let org = db.organization_by_title_or_create("bench").await?;
    let user = crate::server::create_user(&db, "bench-sync@example.com", None, Some("bench")).await?;
    let project = db
        .create_project(&Project {
            id: 0,
            organization_id: org.id,
            created_by: None,
            title: "bench".into(),
            description: String::new(),
            label_config: r#"<View><Image name="image" value="$image"/><Choices name="c" toName="image"><Choice value="a"/></Choices></View>"#.into(),
            maximum_annotations: 1,
            settings: Map::new(),
            created_at: String::new(),
            updated_at: String::new(),
        })
        .await?;
    let settings = SyncSettings {
        concurrency: args.concurrency,
        ..SyncSettings::default()
    };
    let engine = SyncEngine::new(db.clone(), settings);

    println!(
        "engine: {}",
        if url.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        }
    );
    println!(
        "{:<28} {:>8} {:>9} {:>10} {:>9} {:>10}",
        "phase", "objects", "seconds", "objects/s", "vs floor", "peak MB"
    );

    reset_peak();
    let (listed, json_floor) = floor(&args, &json_bucket, "tasks/", true).await?;
    ensure!(listed == n, "floor listed {listed} objects, expected {n}");
    row("floor: list + get (json)", n, json_floor, None, peak_mib());

    reset_peak();
    let json_storage = db
        .create_storage(&storage_record(
            project.id,
            Direction::Import,
            &json_bucket,
            "tasks",
            false,
            &args,
        ))
        .await?;
    let (seconds, done) = sync_once(&engine, &json_storage).await?;
    ensure!(
        done.status == SyncStatus::Completed,
        "json sync ended {:?}: {:?}",
        done.status,
        done.traceback
    );
    ensure!(
        done.last_sync_count == Some(n as i64),
        "json sync created {:?} tasks",
        done.last_sync_count
    );
    row("sync json tasks", n, seconds, Some(json_floor), peak_mib());

    reset_peak();
    let (seconds, done) = sync_once(&engine, &done).await?;
    ensure!(
        done.last_sync_count == Some(0),
        "re-sync created {:?} tasks",
        done.last_sync_count
    );
    let (_, list_floor) = floor(&args, &json_bucket, "tasks/", false).await?;
    row("re-sync json (nothing new)", n, seconds, Some(list_floor), peak_mib());

    reset_peak();
    let (_, media_list_floor) = floor(&args, &media_bucket, "media/", false).await?;
    row("floor: list only (media)", n, media_list_floor, None, peak_mib());

    reset_peak();
    let media_storage = db
        .create_storage(&storage_record(
            project.id,
            Direction::Import,
            &media_bucket,
            "media",
            true,
            &args,
        ))
        .await?;
    let (seconds, done) = sync_once(&engine, &media_storage).await?;
    ensure!(
        done.last_sync_count == Some(n as i64),
        "media sync created {:?} tasks",
        done.last_sync_count
    );
    row("sync media (blob urls)", n, seconds, Some(media_list_floor), peak_mib());

    // Export: annotate the first tasks through the database, then export them.
    let annotations = args.annotations.min(2 * n);
    let task_ids: Vec<i64> = db
        .tasks_after(project.id, 0, annotations as i64, false)
        .await?
        .iter()
        .map(|t| t.id)
        .collect();
    for task_id in &task_ids {
        let changes = crate::model::entities::AnnotationChanges {
            result: Some(
                json!([{"from_name": "c", "to_name": "image", "type": "choices", "value": {"choices": ["a"]}}]),
            ),
            ..Default::default()
        };
        db.create_annotation(*task_id, project.id, user.id, &changes).await?;
    }
    let written = db.count_project_annotations(project.id).await? as usize;
    reset_peak();
    let export_floor_client = client(&args, &export_bucket)?;
    let started = Instant::now();
    let sample = Bytes::from(vec![b'x'; 600]);
    futures::stream::iter(0..written)
        .map(|i| {
            let (client, body) = (&export_floor_client, sample.clone());
            async move { client.put(&format!("floor/{i}"), body).await }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    let export_floor = started.elapsed().as_secs_f64();
    row("floor: put (export)", written, export_floor, None, peak_mib());
    reset_peak();
    let export_record = storage_record(project.id, Direction::Export, &export_bucket, "out", false, &args);
    let export_storage = db.create_storage(&export_record).await?;
    let (seconds, done) = sync_once(&engine, &export_storage).await?;
    ensure!(
        done.last_sync_count == Some(written as i64),
        "export wrote {:?} of {written}",
        done.last_sync_count
    );
    row("export annotations", written, seconds, Some(export_floor), peak_mib());
    Ok(())
}
