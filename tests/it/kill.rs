//! A server process killed with SIGKILL in the middle of a sync: the next process to start on the
//! same database takes the job over when its lease expires and finishes it, with every task once.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// JSON Lines objects in the bucket, and tasks per object.
const OBJECTS: usize = 120;
const TASKS_PER_OBJECT: usize = 1000;

struct S3 {
    endpoint: String,
    root: String,
    key: String,
    secret: String,
}

fn s3_env() -> Option<S3> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    Some(S3 {
        endpoint: var("LABELPORT_TEST_S3_ENDPOINT")?,
        root: var("LABELPORT_TEST_S3_ROOT")?,
        key: var("LABELPORT_TEST_S3_ACCESS_KEY")?,
        secret: var("LABELPORT_TEST_S3_SECRET_KEY")?,
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `labelport start` child process on its own port, killed when dropped.
struct ServerProcess {
    child: Child,
    base: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_server(data_dir: &std::path::Path, database_url: &str, token: &str) -> ServerProcess {
    let port = free_port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join("server.log"))
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_labelport"))
        .arg("start")
        .env("LABELPORT_DATA_DIR", data_dir)
        .env("LABELPORT_DATABASE_URL", database_url)
        .env("LABELPORT_HOST", "127.0.0.1")
        .env("LABELPORT_PORT", port.to_string())
        .env("LABELPORT_USERNAME", "kill@example.com")
        .env("LABELPORT_USER_TOKEN", token)
        .env("LABELPORT_SYNC_LEASE_SECONDS", "2")
        .env("LABELPORT_SYNC_CONCURRENCY", "2")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{base}/api/version")).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ServerProcess { child, base }
}

async fn call(method: reqwest::Method, url: String, token: &str, body: Option<Value>) -> Value {
    let client = reqwest::Client::new();
    let mut request = client
        .request(method, url)
        .header("Authorization", format!("Token {token}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

async fn task_total(base: &str, token: &str, project: i64) -> i64 {
    let page = call(
        reqwest::Method::GET,
        format!("{base}/api/tasks/?project={project}&page_size=1"),
        token,
        None,
    )
    .await;
    page["total"].as_i64().unwrap()
}

/// The databases to run on: SQLite (`None`: a file in the run's folder) always, and a fresh
/// PostgreSQL database when `LABELPORT_TEST_POSTGRES` is set.
async fn database_urls() -> Vec<Option<String>> {
    let mut urls = vec![None];
    if let Ok(base) = std::env::var("LABELPORT_TEST_POSTGRES")
        && !base.is_empty()
    {
        let name = format!("lp_kill_{}", uuid::Uuid::new_v4().simple());
        let admin = labelport::db::Db::connect(&base).await.unwrap();
        admin.execute_admin(&format!("CREATE DATABASE {name}")).await.unwrap();
        admin.close().await;
        let (prefix, _) = base.rsplit_once('/').unwrap();
        urls.push(Some(format!("{prefix}/{name}")));
    }
    urls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_sync_is_finished_by_the_next_one() {
    let Some(s3) = s3_env() else {
        let _ = writeln!(
            std::io::stderr(),
            "LABELPORT_TEST_S3_* are not set: the kill-and-resume test was skipped"
        );
        return;
    };
    let bucket = format!("lp-kill-{}", uuid::Uuid::new_v4().simple());
    let bucket_dir = std::path::Path::new(&s3.root).join(&bucket);
    std::fs::create_dir_all(bucket_dir.join("tasks")).unwrap();
    for object in 0..OBJECTS {
        let mut lines = String::new();
        for row in 0..TASKS_PER_OBJECT {
            lines.push_str(&format!(
                "{{\"text\":\"object {object} row {row}\",\"object\":{object}}}\n"
            ));
        }
        std::fs::write(bucket_dir.join("tasks").join(format!("{object:04}.jsonl")), lines).unwrap();
    }
    let total = (OBJECTS * TASKS_PER_OBJECT) as i64;

    for database_url in database_urls().await {
        let dir = tempfile::tempdir().unwrap();
        let database_url = database_url.unwrap_or_else(|| format!("sqlite://{}/kill.db", dir.path().display()));
        let token = format!("{:040x}", rand_token());
        let first = start_server(dir.path(), &database_url, &token).await;
        let project = call(
            reqwest::Method::POST,
            format!("{}/api/projects/", first.base),
            &token,
            Some(json!({"title": "kill", "label_config": "<View><Text name=\"t\" value=\"$text\"/></View>"})),
        )
        .await["id"]
            .as_i64()
            .unwrap();
        let storage = call(
            reqwest::Method::POST,
            format!("{}/api/storages/s3/", first.base),
            &token,
            Some(json!({
                "project": project, "bucket": bucket, "prefix": "tasks", "s3_endpoint": s3.endpoint,
                "aws_access_key_id": s3.key, "aws_secret_access_key": s3.secret,
            })),
        )
        .await["id"]
            .as_i64()
            .unwrap();
        call(
            reqwest::Method::POST,
            format!("{}/api/storages/s3/{storage}/sync", first.base),
            &token,
            None,
        )
        .await;

        // Kill the first server as soon as some, but not all, tasks are committed.
        let started = Instant::now();
        loop {
            let created = task_total(&first.base, &token, project).await;
            if created > 0 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "the sync made no progress");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(first);

        let second = start_server(dir.path(), &database_url, &token).await;
        let at_kill = task_total(&second.base, &token, project).await;
        assert!(
            at_kill < total,
            "the sync finished before the server was killed ({at_kill} tasks); the test proves nothing"
        );
        let status_url = format!("{}/api/storages/s3/{storage}", second.base);
        let started = Instant::now();
        let finished = loop {
            let record = call(reqwest::Method::GET, status_url.clone(), &token, None).await;
            if record["status"] == "completed" || record["status"] == "failed" {
                break record;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the job was not taken over: {record}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(finished["status"], "completed", "{finished}");
        assert_eq!(
            task_total(&second.base, &token, project).await,
            total,
            "no task lost, none twice"
        );
        assert_eq!(finished["last_sync_count"].as_i64().unwrap(), total - at_kill);
    }
    let _ = std::fs::remove_dir_all(bucket_dir);
}

fn rand_token() -> u128 {
    u128::from_le_bytes(*uuid::Uuid::new_v4().as_bytes())
}
