//! `labelport bench import`: imports N tasks through the HTTP API into SQLite (and PostgreSQL when
//! a URL is given) and prints tasks per second and memory. A benchmark, not a test: it asserts
//! only that every task arrived.

use std::time::Instant;

use anyhow::{Context, ensure};
use clap::{Args, Subcommand};

use crate::api::auth::{generate_token, hash_token};
use crate::api::{ApiSettings, AppState};
use crate::db::Db;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

// One value is built per run from the command line, so the size of the largest variant is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Subcommand)]
pub enum BenchWhat {
    /// Import tasks through `POST /api/projects/{id}/import`.
    Import {
        /// Tasks per import request.
        #[arg(long, default_value_t = 100_000)]
        tasks: usize,
        /// Also run against this PostgreSQL server (a fresh database is created and dropped).
        #[arg(long, env = "LABELPORT_BENCH_POSTGRES")]
        postgres: Option<String>,
    },
    /// Sync from an S3-compatible server: JSON tasks, media objects, re-sync and export, each
    /// against the floor of listing and fetching the same objects directly.
    Sync(crate::bench_sync::SyncBenchArgs),
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Sync(args) => crate::bench_sync::run(args).await,
        BenchWhat::Import { tasks, postgres } => {
            let dir = tempfile::tempdir()?;
            let sqlite = format!("sqlite://{}/bench.db", dir.path().display());
            println!("engine      tasks   body MB  seconds  tasks/s   rss before MB  peak rss MB");
            import_once("sqlite", &sqlite, tasks).await?;
            if let Some(base) = postgres {
                let name = format!("lp_bench_{}", uuid::Uuid::new_v4().simple());
                let admin = Db::connect(&base).await?;
                admin.execute_admin(&format!("CREATE DATABASE {name}")).await?;
                let (prefix, _) = base.rsplit_once('/').context("postgres url needs a database part")?;
                let outcome = import_once("postgres", &format!("{prefix}/{name}"), tasks).await;
                admin.execute_admin(&format!("DROP DATABASE IF EXISTS {name}")).await?;
                outcome?;
            }
            Ok(())
        }
    }
}

/// A task body like the ones people label: a sentence of text and a little metadata.
fn task_body(count: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(count * 96);
    body.push(b'[');
    for i in 0..count {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(
            format!(
                r#"{{"text":"Review number {i}: the product arrived on time and works.","source":"bench","n":{i}}}"#
            )
            .as_bytes(),
        );
    }
    body.push(b']');
    body
}

/// Resident and peak resident memory of this process, in MiB (Linux).
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let read = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (read("VmRSS:"), read("VmHWM:"))
}

async fn import_once(engine: &str, url: &str, tasks: usize) -> anyhow::Result<()> {
    let db = Db::connect(url).await?;
    db.migrate().await?;
    let user = crate::server::create_user(&db, "bench@example.com", None, Some("bench")).await?;
    let token = generate_token();
    db.add_token(user.id, &hash_token(&token)).await?;
    let state = AppState::new(
        db.clone(),
        ApiSettings {
            max_body_bytes: 1 << 30,
            frontend_dir: None,
        },
        crate::sync::SyncSettings::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(crate::server::serve(listener, state));
    let client = reqwest::Client::new();
    let base = format!("http://{address}");
    let project: serde_json::Value = client
        .post(format!("{base}/api/projects/"))
        .header("Authorization", format!("Token {token}"))
        .json(&serde_json::json!({"title": "bench", "label_config": "<View><Text name=\"text\" value=\"$text\"/></View>"}))
        .send()
        .await?
        .json()
        .await?;
    let project_id = project["id"].as_i64().context("project id")?;
    let body = task_body(tasks);
    let body_mib = body.len() as f64 / (1024.0 * 1024.0);
    let (rss_before, _) = memory_mib();
    let started = Instant::now();
    let response = client
        .post(format!("{base}/api/projects/{project_id}/import"))
        .header("Authorization", format!("Token {token}"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let outcome: serde_json::Value = response.json().await?;
    let seconds = started.elapsed().as_secs_f64();
    let (_, peak) = memory_mib();
    ensure!(status.as_u16() == 201, "import answered {status}: {outcome}");
    ensure!(
        outcome["task_count"] == tasks,
        "imported {} tasks, expected {tasks}",
        outcome["task_count"]
    );
    println!(
        "{engine:<10} {tasks:>7} {body_mib:>9.1} {seconds:>8.2} {:>8.0} {rss_before:>15.1} {peak:>12.1}",
        tasks as f64 / seconds
    );
    server.abort();
    db.close().await;
    Ok(())
}
