//! `labelport bench sync --kind KIND`: seeds a storage server with N JSON-task objects and N media
//! objects, then measures, in one run: the floor (the same objects listed and fetched directly
//! through the same client at the same concurrency), an import sync of each mode, a re-sync, and
//! an export of annotations against the floor of writing as many objects. Prints objects per
//! second, peak memory and the ratio to the floor. Works for every kind through the `Storage`
//! trait: s3 (s3s-fs), gcs (fake-gcs-server), azure (Azurite), redis, localfiles.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, ensure};
use bytes::Bytes;
use clap::Args;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};

use crate::db::Db;
use crate::model::entities::Project;
use crate::model::storage::{Direction, StorageRecord, SyncStatus};
use crate::storage::Storage;
use crate::sync::{SyncEngine, SyncSettings};

#[derive(Debug, Clone, Args)]
pub struct SyncBenchArgs {
    /// Storage kind: s3, gcs, azure, redis or localfiles.
    #[arg(long, default_value = "s3")]
    pub kind: String,
    /// Objects of each mode.
    #[arg(long, default_value_t = 10_000)]
    pub objects: usize,
    /// Annotations to export.
    #[arg(long, default_value_t = 10_000)]
    pub annotations: usize,
    /// S3 endpoint, e.g. `http://127.0.0.1:19100`.
    #[arg(long, env = "LABELPORT_TEST_S3_ENDPOINT")]
    pub endpoint: Option<String>,
    #[arg(long, env = "LABELPORT_TEST_S3_ACCESS_KEY")]
    pub access_key: Option<String>,
    #[arg(long, env = "LABELPORT_TEST_S3_SECRET_KEY")]
    pub secret_key: Option<String>,
    /// The S3 server's data folder when it is s3s-fs: buckets are created there.
    #[arg(long, env = "LABELPORT_TEST_S3_ROOT")]
    pub root: Option<std::path::PathBuf>,
    /// Azure endpoint, account, key and an existing container.
    #[arg(long, env = "LABELPORT_TEST_AZURE_ENDPOINT")]
    pub azure_endpoint: Option<String>,
    #[arg(long, env = "LABELPORT_TEST_AZURE_ACCOUNT")]
    pub azure_account: Option<String>,
    #[arg(long, env = "LABELPORT_TEST_AZURE_KEY")]
    pub azure_key: Option<String>,
    #[arg(long, default_value = "lp-test-c")]
    pub azure_container: String,
    /// Redis database for the run (keys get a unique prefix and are deleted afterwards).
    #[arg(long, default_value_t = 9)]
    pub redis_db: i64,
    /// Objects fetched at the same time, by the floor and by the sync.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Database for the run (default: a fresh SQLite file in a temporary folder).
    #[arg(long)]
    pub database_url: Option<String>,
}

/// Peak resident memory since the last reset, in MiB (Linux).
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

fn object(map: Value) -> Map<String, Value> {
    map.as_object().cloned().unwrap_or_default()
}

/// The three storages of a run (JSON tasks, media objects, export target) for one kind, with the
/// place each one's objects live under.
async fn records(args: &SyncBenchArgs, project_id: i64, run: &str) -> anyhow::Result<[StorageRecord; 3]> {
    let mut json_mode = StorageRecord::new(&args.kind, Direction::Import, project_id);
    let mut media = StorageRecord::new(&args.kind, Direction::Import, project_id);
    let mut export = StorageRecord::new(&args.kind, Direction::Export, project_id);
    match args.kind.as_str() {
        "s3" => {
            let root = args
                .root
                .as_ref()
                .context("--root (the s3s-fs data folder) is needed to create buckets")?;
            let common = json!({
                "s3_endpoint": args.endpoint.clone().context("--endpoint")?,
                "recursive_scan": true,
            });
            let secrets = object(json!({
                "aws_access_key_id": args.access_key.clone().context("--access-key")?,
                "aws_secret_access_key": args.secret_key.clone().context("--secret-key")?,
            }));
            for (record, role, prefix) in [
                (&mut json_mode, "json", "tasks"),
                (&mut media, "media", "media"),
                (&mut export, "export", "out"),
            ] {
                let bucket = format!("bench-{role}-{run}");
                std::fs::create_dir_all(root.join(&bucket))?;
                record.settings = object(common.clone());
                record.settings.insert("bucket".into(), json!(bucket));
                record.settings.insert("prefix".into(), json!(prefix));
                record.secrets = secrets.clone();
            }
        }
        "gcs" => {
            let host = std::env::var("STORAGE_EMULATOR_HOST").context("STORAGE_EMULATOR_HOST (fake-gcs-server)")?;
            for (record, role, prefix) in [
                (&mut json_mode, "json", "tasks"),
                (&mut media, "media", "media"),
                (&mut export, "export", "out"),
            ] {
                let bucket = format!("bench-{role}-{run}");
                reqwest::Client::new()
                    .post(format!("{host}/storage/v1/b?project=bench"))
                    .json(&json!({"name": bucket}))
                    .send()
                    .await?
                    .error_for_status()?;
                record.settings = object(json!({"bucket": bucket, "prefix": prefix, "recursive_scan": true}));
            }
        }
        "azure" => {
            let secrets = object(json!({
                "account_name": args.azure_account.clone().context("--azure-account")?,
                "account_key": args.azure_key.clone().context("--azure-key")?,
            }));
            for (record, role) in [(&mut json_mode, "json"), (&mut media, "media"), (&mut export, "export")] {
                record.settings = object(json!({
                    "container": args.azure_container, "prefix": format!("bench-{run}/{role}"),
                    "azure_endpoint": args.azure_endpoint.clone().context("--azure-endpoint")?, "recursive_scan": true,
                }));
                record.secrets = secrets.clone();
            }
        }
        "redis" => {
            for (record, role) in [(&mut json_mode, "json"), (&mut media, "media"), (&mut export, "export")] {
                record.settings = object(json!({
                    "host": "127.0.0.1", "port": "6379", "db": args.redis_db, "path": format!("bench:{run}:{role}:"),
                }));
            }
        }
        "localfiles" => {
            let settings = crate::storage::local::LocalFilesSettings::from_env();
            ensure!(
                settings.serving_enabled && settings.document_root != std::path::Path::new("/"),
                "set LOCAL_FILES_SERVING_ENABLED=true and LOCAL_FILES_DOCUMENT_ROOT to a scratch folder"
            );
            for (record, role) in [(&mut json_mode, "json"), (&mut media, "media"), (&mut export, "export")] {
                let folder = settings.document_root.join(format!("bench-{run}-{role}"));
                std::fs::create_dir_all(&folder)?;
                record.settings = object(json!({"path": folder.display().to_string(), "recursive_scan": true}));
            }
        }
        other => anyhow::bail!("unknown storage kind {other}"),
    }
    media.settings.insert("use_blob_urls".into(), json!(true));
    Ok([json_mode, media, export])
}

/// The key of object `i` in a storage: nested folders for file-like stores, flat for Redis.
fn key_of(record: &StorageRecord, i: usize, extension: &str) -> String {
    let prefix = crate::storage::listing_prefix_of(record);
    if record.kind == "redis" {
        format!("{prefix}{i}")
    } else {
        format!("{prefix}{:03}/{i}.{extension}", i % 100)
    }
}

/// Writes `count` objects through the storage's own client, at the sync's concurrency.
async fn seed(
    storage: &dyn Storage,
    record: &StorageRecord,
    count: usize,
    json_mode: bool,
    concurrency: usize,
) -> anyhow::Result<()> {
    futures::stream::iter(0..count)
        .map(|i| {
            let (key, body) = if json_mode {
                let body = format!(r#"{{"text":"Review number {i}: the product arrived on time and works.","n":{i}}}"#);
                (key_of(record, i, "json"), Bytes::from(body))
            } else {
                (key_of(record, i, "jpg"), Bytes::from(format!("\u{FF}\u{D8}image {i}")))
            };
            async move { storage.put(&key, body).await }
        })
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await?;
    Ok(())
}

/// The floor: list every object of the storage and, when `fetch`, GET each at the sync's
/// concurrency, through the same client.
async fn floor(
    storage: &dyn Storage,
    record: &StorageRecord,
    fetch: bool,
    concurrency: usize,
) -> anyhow::Result<(usize, f64)> {
    let started = Instant::now();
    let prefix = crate::storage::listing_prefix_of(record);
    let keys: Vec<String> = storage
        .list(&prefix, true)
        .map_ok(|page| futures::stream::iter(page.into_iter().map(|o| Ok::<_, crate::storage::StorageError>(o.key))))
        .try_flatten()
        .try_collect()
        .await?;
    if fetch {
        futures::stream::iter(keys.iter())
            .map(|k| storage.get(k))
            .buffer_unordered(concurrency)
            .try_for_each(|_| async { Ok(()) })
            .await?;
    }
    Ok((keys.len(), started.elapsed().as_secs_f64()))
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
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
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
    let [json_record, media_record, export_record] = records(&args, project.id, &run).await?;
    let json_client = crate::storage::connect(&json_record)?;
    let media_client = crate::storage::connect(&media_record)?;
    let export_client = crate::storage::connect(&export_record)?;
    eprintln!("seeding {n} JSON objects and {n} media objects ({}) ...", args.kind);
    seed(json_client.as_ref(), &json_record, n, true, 64).await?;
    seed(media_client.as_ref(), &media_record, n, false, 64).await?;

    let engine = SyncEngine::new(
        db.clone(),
        SyncSettings {
            concurrency: args.concurrency,
            ..SyncSettings::default()
        },
    );
    println!(
        "kind: {}, database: {}, concurrency: {}",
        args.kind,
        if url.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        },
        args.concurrency
    );
    println!(
        "{:<28} {:>8} {:>9} {:>10} {:>9} {:>10}",
        "phase", "objects", "seconds", "objects/s", "vs floor", "peak MB"
    );

    reset_peak();
    let (listed, json_floor) = floor(json_client.as_ref(), &json_record, true, args.concurrency).await?;
    ensure!(listed == n, "floor listed {listed} objects, expected {n}");
    row("floor: list + get (json)", n, json_floor, None, peak_mib());

    reset_peak();
    let json_storage = db.create_storage(&json_record).await?;
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
    let (_, list_floor) = floor(json_client.as_ref(), &json_record, false, args.concurrency).await?;
    row("floor: list only (json)", n, list_floor, None, peak_mib());

    reset_peak();
    let (seconds, done) = sync_once(&engine, &done).await?;
    ensure!(
        done.last_sync_count == Some(0),
        "re-sync created {:?} tasks",
        done.last_sync_count
    );
    row("re-sync json (nothing new)", n, seconds, Some(list_floor), peak_mib());

    if args.kind != "redis" {
        reset_peak();
        let (_, media_list_floor) = floor(media_client.as_ref(), &media_record, false, args.concurrency).await?;
        row("floor: list only (media)", n, media_list_floor, None, peak_mib());
        reset_peak();
        let media_storage = db.create_storage(&media_record).await?;
        let (seconds, done) = sync_once(&engine, &media_storage).await?;
        ensure!(
            done.last_sync_count == Some(n as i64),
            "media sync created {:?} tasks",
            done.last_sync_count
        );
        row("sync media (blob urls)", n, seconds, Some(media_list_floor), peak_mib());
    }

    // Export: annotate the first tasks through the database, then export them.
    let task_ids: Vec<i64> = db
        .tasks_after(project.id, 0, args.annotations as i64, false)
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
    let started = Instant::now();
    let sample = Bytes::from(vec![b'x'; 900]);
    futures::stream::iter(0..written)
        .map(|i| {
            let (client, body, key) = (
                &export_client,
                sample.clone(),
                format!("{}floor-{i}", crate::storage::listing_prefix_of(&export_record)),
            );
            async move { client.put(&key, body).await }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    let export_floor = started.elapsed().as_secs_f64();
    row("floor: put (export)", written, export_floor, None, peak_mib());
    reset_peak();
    let export_storage = db.create_storage(&export_record).await?;
    let (seconds, done) = sync_once(&engine, &export_storage).await?;
    ensure!(
        done.last_sync_count == Some(written as i64),
        "export wrote {:?} of {written}",
        done.last_sync_count
    );
    row("export annotations", written, seconds, Some(export_floor), peak_mib());
    if args.kind == "redis" {
        cleanup_redis(&args, &run).await;
    }
    Ok(())
}

/// Deletes the run's Redis keys.
async fn cleanup_redis(args: &SyncBenchArgs, run: &str) {
    let mut record = StorageRecord::new("redis", Direction::Import, 0);
    record.settings = object(json!({"host": "127.0.0.1", "port": "6379", "db": args.redis_db}));
    let Ok(client) = crate::storage::connect(&record) else {
        return;
    };
    let keys: Vec<String> = client
        .list(&format!("bench:{run}:"), true)
        .map_ok(|page| futures::stream::iter(page.into_iter().map(|o| Ok::<_, crate::storage::StorageError>(o.key))))
        .try_flatten()
        .try_collect()
        .await
        .unwrap_or_default();
    for key in keys {
        let _ = client.delete(&key).await;
    }
}
