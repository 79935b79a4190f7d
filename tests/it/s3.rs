//! S3 source and target storages against a real S3 server (s3s-fs, which checks SigV4 signatures
//! on requests and pre-signed URLs). A bucket is a sub-folder of the server's data folder, so
//! objects are seeded and checked as files there. Every test makes its own buckets, so the tests
//! run in parallel. Without the `LABELPORT_TEST_S3_*` variables the tests are skipped with a line
//! on stderr.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use labelport::db::{NewImportLink, NewTask};
use labelport::model::task_item::TaskItem;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::harness::{Api, Server, TEXT_CONFIG, assert_error, for_each_engine, non_field_error};
use crate::storage_helpers::{
    Guarded, IMAGE_CONFIG, assert_lists_storage, assert_lists_type, assert_serves_range, chosen, counts, created_id,
    follows_annotation_on_save, project_tasks, tasks_per_key, wait_final,
};

/// The S3 server the tests talk to.
#[derive(Clone)]
struct S3Env {
    endpoint: String,
    root: PathBuf,
    access_key: String,
    secret_key: String,
}

static SKIPPED_S3: std::sync::Once = std::sync::Once::new();

/// The test S3 server, or `None` (and one line on stderr) when the variables are not set.
fn s3_env() -> Option<S3Env> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let env = (|| {
        Some(S3Env {
            endpoint: var("LABELPORT_TEST_S3_ENDPOINT")?,
            root: PathBuf::from(var("LABELPORT_TEST_S3_ROOT")?),
            access_key: var("LABELPORT_TEST_S3_ACCESS_KEY")?,
            secret_key: var("LABELPORT_TEST_S3_SECRET_KEY")?,
        })
    })();
    if env.is_none() {
        SKIPPED_S3.call_once(|| {
            // Written to stderr directly, so the test harness's output capture does not hide it.
            let _ = writeln!(
                std::io::stderr(),
                "LABELPORT_TEST_S3_ENDPOINT/ROOT/ACCESS_KEY/SECRET_KEY are not set: the S3 integration tests were skipped"
            );
        });
    }
    env
}

/// One bucket: a folder of the S3 server's data folder, removed when dropped.
struct Bucket {
    name: String,
    dir: PathBuf,
}

impl S3Env {
    /// A new empty bucket with a unique name.
    fn bucket(&self, label: &str) -> Bucket {
        let bucket = self.missing_bucket(label);
        std::fs::create_dir_all(&bucket.dir).unwrap();
        bucket
    }

    /// A unique bucket name whose folder does not exist.
    fn missing_bucket(&self, label: &str) -> Bucket {
        let name = format!("lp-{label}-{}", uuid::Uuid::new_v4().simple());
        Bucket {
            dir: self.root.join(&name),
            name,
        }
    }

    /// The body of a storage create request for a bucket: the connection fields plus `extra`.
    fn storage(&self, project: i64, bucket: &Bucket, extra: Value) -> Value {
        let mut body = json!({
            "project": project,
            "bucket": bucket.name,
            "s3_endpoint": self.endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
        });
        let map = body.as_object_mut().unwrap();
        for (key, value) in extra.as_object().unwrap() {
            map.insert(key.clone(), value.clone());
        }
        body
    }
}

impl Bucket {
    fn put(&self, key: &str, contents: impl AsRef<[u8]>) {
        let path = self.dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    fn read(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join(key)).ok()
    }

    /// An object parsed as JSON, `None` while it is missing or not yet complete JSON.
    fn read_json(&self, key: &str) -> Option<Value> {
        self.read(key).and_then(|bytes| serde_json::from_slice(&bytes).ok())
    }
}

impl Drop for Bucket {
    /// Removes the bucket's folder and the files s3s-fs keeps for its objects next to it
    /// (`.bucket-<base64 name>.object-....json` in the data folder).
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let sidecar = format!(".bucket-{}.", URL_SAFE_NO_PAD.encode(&self.name));
        let Some(root) = self.dir.parent() else { return };
        let Ok(entries) = std::fs::read_dir(root) else { return };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&sidecar) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Starts an import sync and waits for it to end.
async fn sync_import(api: &Api, id: i64) -> Value {
    let (status, body) = api.post_json(&format!("/api/storages/s3/{id}/sync"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_final(api, &format!("/api/storages/s3/{id}")).await
}

// ------------------------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_storage_lifecycle_imports_each_object_once() {
    let Some(env) = s3_env() else { return };
    for_each_engine(|server| source_storage_lifecycle(server, env.clone())).await;
}

async fn source_storage_lifecycle(server: Server, env: S3Env) {
    let bucket = env.bucket("src");
    bucket.put("tasks/a.json", r#"{"text": "a"}"#);
    bucket.put("tasks/b.json", r#"[{"text": "b1"}, {"text": "b2"}]"#);
    bucket.put("tasks/c.jsonl", "{\"text\": \"c1\"}\n{\"text\": \"c2\"}\n");
    bucket.put("tasks/sub/d.json", r#"{"text": "d"}"#);
    bucket.put("other/e.json", r#"{"text": "e"}"#);
    let project = server.project("S3 source", TEXT_CONFIG).await;
    let api = Guarded {
        api: &server.api,
        secrets: vec![env.secret_key.clone(), env.access_key.clone()],
        fields: &["aws_access_key_id", "aws_secret_access_key", "aws_session_token"],
    };

    let reply = api
        .post_json(
            "/api/storages/s3/",
            env.storage(project, &bucket, json!({"title": "Source", "prefix": "tasks"})),
        )
        .await;
    let id = created_id(&reply);
    let created = &reply.1;
    assert_eq!(created["type"], "s3");
    assert_eq!(created["project"], project);
    assert_eq!(created["bucket"], bucket.name.as_str());
    assert_eq!(created["prefix"], "tasks");
    assert_eq!(created["status"], "initialized");
    assert_eq!(created["presign"], true);
    assert_eq!(created["recursive_scan"], false);
    let path = format!("/api/storages/s3/{id}");

    let (status, list) = api.get(&format!("/api/storages/s3/?project={project}")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [id]);
    assert_lists_storage(&api.get(&format!("/api/storages/?project={project}")).await, id, "s3");
    assert_lists_type(&api.get("/api/storages/types").await, "s3", "AWS S3");
    let (status, got) = api.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!((got["id"].as_i64(), &got["title"]), (Some(id), &json!("Source")));

    let (status, patched) = api.patch_json(&path, json!({"title": "Renamed"})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["title"], "Renamed");
    assert_eq!(api.get(&path).await.1["title"], "Renamed");

    // Two sync requests back to back: both answer 200. While the first job is queued or running
    // the second request joins it (same job); only if the first had already finished may the
    // second start a new job, which then finds every object imported.
    let (first_status, first) = api.post_json(&format!("{path}/sync"), json!({})).await;
    let (second_status, second) = api.post_json(&format!("{path}/sync"), json!({})).await;
    assert_eq!(first_status, StatusCode::OK, "{first}");
    assert_eq!(second_status, StatusCode::OK, "{second}");
    assert!(first["last_sync_job"].is_string(), "{first}");
    let one_job = second["last_sync_job"] == first["last_sync_job"];
    let done = api.wait_final(&path).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["last_sync_count"], if one_job { 5 } else { 0 }, "{done}");
    assert_eq!(server.task_total(project).await, 5);
    assert_eq!(
        tasks_per_key(&server, project).await,
        counts(&[("tasks/a.json", 1), ("tasks/b.json", 2), ("tasks/c.jsonl", 2)])
    );
    let tasks = project_tasks(&server, project).await;
    for task in &tasks {
        api.check((StatusCode::OK, task.clone()));
    }
    let texts: HashSet<String> = tasks
        .iter()
        .map(|t| t["data"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["a", "b1", "b2", "c1", "c2"].map(String::from).into());

    // A second sync finds every object linked already.
    let (status, body) = api.post_json(&format!("{path}/sync"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let again = api.wait_final(&path).await;
    assert_eq!(again["status"], "completed", "{again}");
    assert_eq!(again["last_sync_count"], 0, "{again}");
    assert_eq!(again["meta"]["tasks_existed"], 3, "{again}");
    assert_eq!(server.task_total(project).await, 5);

    // Recursive scan reaches tasks/sub/d.json, and only that is new.
    let (status, patched) = api.patch_json(&path, json!({"recursive_scan": true})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["recursive_scan"], true);
    let (status, body) = api.post_json(&format!("{path}/sync"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let recursive = api.wait_final(&path).await;
    assert_eq!(recursive["status"], "completed", "{recursive}");
    assert_eq!(recursive["last_sync_count"], 1, "{recursive}");
    assert_eq!(server.task_total(project).await, 6);
    assert_eq!(tasks_per_key(&server, project).await["tasks/sub/d.json"], 1);

    let (status, body) = api.delete(&path).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_error(&api.get(&path).await, StatusCode::NOT_FOUND);
    assert_eq!(
        server.task_total(project).await,
        6,
        "deleting a storage keeps its tasks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_object_never_stops_a_sync() {
    let Some(env) = s3_env() else { return };
    for_each_engine(|server| bad_objects(server, env.clone())).await;
}

async fn bad_objects(server: Server, env: S3Env) {
    let bucket = env.bucket("bad");
    bucket.put("batch/good.json", r#"{"text": "good"}"#);
    bucket.put("batch/bad.json", "{oops");
    bucket.put("batch/notes.txt", "not a task file");
    bucket.put("batch/nodata.json", r#"{"annotations": [{"result": []}]}"#);
    bucket.put("batch/more.jsonl", "{\"text\": \"l1\"}\n{\"text\": \"l2\"}\n");
    let project = server.project("S3 bad objects", TEXT_CONFIG).await;
    let id = created_id(
        &server
            .post_json(
                "/api/storages/s3/",
                env.storage(project, &bucket, json!({"prefix": "batch"})),
            )
            .await,
    );

    let bad_keys = ["batch/bad.json", "batch/notes.txt", "batch/nodata.json"];
    let first = sync_import(&server, id).await;
    assert_eq!(first["status"], "completed_with_errors", "{first}");
    assert_eq!(first["meta"]["objects_failed"], 3, "{first}");
    assert_eq!(first["last_sync_count"], 3, "{first}");
    let traceback = first["traceback"]
        .as_str()
        .unwrap_or_else(|| panic!("no traceback: {first}"));
    for key in bad_keys {
        let lines = traceback.lines().filter(|l| l.contains(key)).count();
        assert_eq!(lines, 1, "{key} should be named on one line of: {traceback}");
    }
    assert!(
        !traceback.contains("good.json") && !traceback.contains("more.jsonl"),
        "{traceback}"
    );
    assert_eq!(
        tasks_per_key(&server, project).await,
        counts(&[("batch/good.json", 1), ("batch/more.jsonl", 2)])
    );

    // Fixed, the object is imported by the next sync; the others are reported again.
    bucket.put("batch/bad.json", r#"{"text": "fixed"}"#);
    let second = sync_import(&server, id).await;
    assert_eq!(second["status"], "completed_with_errors", "{second}");
    assert_eq!(second["last_sync_count"], 1, "{second}");
    assert_eq!(second["meta"]["objects_failed"], 2, "{second}");
    let traceback = second["traceback"].as_str().unwrap();
    assert!(traceback.contains("batch/notes.txt"), "{traceback}");
    assert!(traceback.contains("batch/nodata.json"), "{traceback}");
    assert!(!traceback.contains("batch/bad.json"), "{traceback}");
    assert_eq!(
        tasks_per_key(&server, project).await,
        counts(&[("batch/good.json", 1), ("batch/more.jsonl", 2), ("batch/bad.json", 1)])
    );
    let fixed = project_tasks(&server, project)
        .await
        .into_iter()
        .find(|t| t["storage_filename"] == "batch/bad.json")
        .unwrap();
    assert_eq!(fixed["data"]["text"], "fixed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_mode_with_regex_makes_one_task_per_matching_object() {
    let Some(env) = s3_env() else { return };
    for_each_engine(|server| blob_mode(server, env.clone())).await;
}

async fn blob_mode(server: Server, env: S3Env) {
    let bucket = env.bucket("blob");
    for key in ["images/a.jpg", "images/b.png", "images/c.txt", "images/sub/d.jpg"] {
        bucket.put(key, key.as_bytes());
    }
    let project = server.project("S3 blobs", IMAGE_CONFIG).await;
    let options =
        |regex: &str| json!({"prefix": "images", "use_blob_urls": true, "recursive_scan": true, "regex_filter": regex});
    let id = created_id(
        &server
            .post_json(
                "/api/storages/s3/",
                env.storage(project, &bucket, options(r".*\.(jpg|png)")),
            )
            .await,
    );
    let done = sync_import(&server, id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["last_sync_count"], 3, "{done}");
    assert_eq!(
        tasks_per_key(&server, project).await,
        counts(&[("images/a.jpg", 1), ("images/b.png", 1), ("images/sub/d.jpg", 1)])
    );

    let task = project_tasks(&server, project)
        .await
        .into_iter()
        .find(|t| t["storage_filename"] == "images/a.jpg")
        .unwrap();
    let task_id = task["id"].as_i64().unwrap();
    let uri = format!("s3://{}/images/a.jpg", bucket.name);
    let image = task["data"]["image"].as_str().unwrap_or_else(|| panic!("{task}"));
    let (resolver, fileuri) = image.split_once("?fileuri=").unwrap();
    assert_eq!(resolver, format!("/tasks/{task_id}/resolve/"));
    let decoded = URL_SAFE
        .decode(fileuri.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(fileuri));
    assert_eq!(String::from_utf8(decoded.unwrap()).unwrap(), uri);
    let (status, raw) = server.get(&format!("/api/tasks/{task_id}/?resolve_uri=false")).await;
    assert_eq!(status, StatusCode::OK, "{raw}");
    assert_eq!(raw["data"]["image"], uri.as_str());

    // The regex is anchored at the start of the whole key, which begins with the prefix.
    let anchored = created_id(
        &server
            .post_json("/api/storages/s3/", env.storage(project, &bucket, options("a.*")))
            .await,
    );
    let none = sync_import(&server, anchored).await;
    assert_eq!(none["status"], "completed", "{none}");
    assert_eq!(none["last_sync_count"], 0, "{none}");
    assert_eq!(server.task_total(project).await, 3);

    let invalid = server
        .post_json("/api/storages/s3/", env.storage(project, &bucket, options("(")))
        .await;
    assert_error(&invalid, StatusCode::BAD_REQUEST);
    assert!(
        invalid.1["validation_errors"]["regex_filter"][0].is_string(),
        "{}",
        invalid.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolver_redirects_to_signed_urls_or_streams_the_object() {
    let Some(env) = s3_env() else { return };
    for_each_engine(|server| resolver(server, env.clone())).await;
}

async fn resolver(server: Server, env: S3Env) {
    let bucket = env.bucket("media");
    let bytes = b"0123456789abcdefghijklmnopqrstuv".to_vec();
    bucket.put("media/pic.bin", &bytes);
    let project = server.project("S3 resolve", IMAGE_CONFIG).await;
    let id = created_id(
        &server
            .post_json(
                "/api/storages/s3/",
                env.storage(project, &bucket, json!({"prefix": "media", "use_blob_urls": true})),
            )
            .await,
    );
    assert_eq!(sync_import(&server, id).await["last_sync_count"], 1);
    let task = project_tasks(&server, project).await.remove(0);
    let task_id = task["id"].as_i64().unwrap();
    let url = task["data"]["image"].as_str().unwrap().to_string();
    let fileuri = url.split_once("?fileuri=").unwrap().1.to_string();

    // presign on: 303 to a signed URL anyone can fetch; a changed signature is refused by S3.
    let response = server.raw(Method::GET, &url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let fetched = reqwest::get(&location).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK, "{location}");
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let marker = "X-Amz-Signature=";
    let at = location
        .find(marker)
        .unwrap_or_else(|| panic!("not signed: {location}"))
        + marker.len();
    let mut tampered = location.clone();
    let changed = if &location[at..=at] == "0" { "1" } else { "0" };
    tampered.replace_range(at..=at, changed);
    assert_eq!(reqwest::get(&tampered).await.unwrap().status(), StatusCode::FORBIDDEN);

    let project_url = format!("/projects/{project}/resolve/?fileuri={fileuri}");
    let response = server.raw(Method::GET, &project_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(response.headers().contains_key("location"));

    // Requests the resolver must refuse.
    let other = URL_SAFE.encode(format!("s3://{}-other/media/pic.bin", bucket.name));
    let status = |path: String| {
        let request = server.raw(Method::GET, &path);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(
        status(format!("/tasks/{task_id}/resolve/?fileuri={other}")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(format!("/tasks/{task_id}/resolve/")).await,
        StatusCode::BAD_REQUEST
    );
    let mallory = server.user("mallory@other.example", Some("Other org")).await;
    let response = mallory.raw(Method::GET, &url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = mallory.raw(Method::GET, &project_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // presign off: the server streams the object, with ranges and ETag revalidation.
    let (status_code, patched) = server
        .patch_json(&format!("/api/storages/s3/{id}"), json!({"presign": false}))
        .await;
    assert_eq!(status_code, StatusCode::OK, "{patched}");
    assert_eq!(patched["presign"], false);
    let response = server.raw(Method::GET, &url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());
    assert_serves_range(&server, &url, &bytes, 0, 3).await;
    let response = server
        .raw(Method::GET, &url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    let response = server.raw(Method::GET, &project_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_checks_report_what_is_wrong() {
    let Some(env) = s3_env() else { return };
    for_each_engine(|server| connection_checks(server, env.clone())).await;
}

async fn connection_checks(server: Server, env: S3Env) {
    let bucket = env.bucket("check");
    bucket.put("data/x.json", r#"{"text": "x"}"#);
    bucket.put("other/y.json", r#"{"text": "y"}"#);
    let project = server.project("S3 checks", TEXT_CONFIG).await;
    let name = &bucket.name;

    let wrong_secret = server
        .post_json(
            "/api/storages/s3/",
            env.storage(project, &bucket, json!({"aws_secret_access_key": "not-the-secret"})),
        )
        .await;
    assert_eq!(
        non_field_error(&wrong_secret),
        format!("Cannot connect to S3 {name} with specified AWS credentials")
    );
    let missing = env.missing_bucket("missing");
    let no_bucket = server
        .post_json("/api/storages/s3/", env.storage(project, &missing, json!({})))
        .await;
    assert_eq!(
        non_field_error(&no_bucket),
        format!("Cannot find bucket {} in S3", missing.name)
    );
    let empty_prefix = server
        .post_json(
            "/api/storages/s3/",
            env.storage(project, &bucket, json!({"prefix": "nothing"})),
        )
        .await;
    assert_eq!(
        non_field_error(&empty_prefix),
        format!("s3://{name}/nothing not found.")
    );
    // A target storage may point where nothing has been written yet, or at the bucket's root.
    for prefix in ["nothing", ""] {
        let export = server
            .post_json(
                "/api/storages/export/s3",
                env.storage(project, &bucket, json!({ "prefix": prefix })),
            )
            .await;
        created_id(&export);
    }

    let (status, body) = server
        .post_json(
            "/api/storages/s3/validate",
            env.storage(project, &bucket, json!({"prefix": "data"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let bad = server
        .post_json(
            "/api/storages/s3/validate",
            env.storage(project, &bucket, json!({"prefix": "nothing"})),
        )
        .await;
    assert_eq!(non_field_error(&bad), format!("s3://{name}/nothing not found."));

    // Validating with an id checks the merged settings but saves nothing.
    let id = created_id(
        &server
            .post_json(
                "/api/storages/s3/",
                env.storage(project, &bucket, json!({"title": "Kept", "prefix": "data"})),
            )
            .await,
    );
    let (status, body) = server
        .post_json(
            "/api/storages/s3/validate",
            json!({"id": id, "project": project, "title": "Changed", "prefix": "other"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, stored) = server.get(&format!("/api/storages/s3/{id}")).await;
    assert_eq!(
        (&stored["title"], &stored["prefix"]),
        (&json!("Kept"), &json!("data")),
        "{stored}"
    );

    let frozen = created_id(
        &server
            .post_json(
                "/api/storages/s3/",
                env.storage(project, &bucket, json!({"prefix": "data", "synchronizable": false})),
            )
            .await,
    );
    let (status, body) = server
        .post_json(&format!("/api/storages/s3/{frozen}/sync"), json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body,
        json!({"message": format!("Storage {frozen} is not synchronizable")})
    );

    // A bucket removed after the storage was created fails the sync, never the request.
    std::fs::remove_dir_all(&bucket.dir).unwrap();
    let (status, body) = server
        .post_json(&format!("/api/storages/s3/{id}/sync"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let failed = wait_final(&server, &format!("/api/storages/s3/{id}")).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["traceback"].as_str().is_some_and(|t| !t.trim().is_empty()),
        "{failed}"
    );
    assert_eq!(server.task_total(project).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_storage_follows_annotations() {
    let Some(env) = s3_env() else { return };
    for_each_engine(|server| target_storage(server, env.clone())).await;
}

async fn target_storage(server: Server, env: S3Env) {
    let bucket = env.bucket("out");
    let project = server.project("S3 target", TEXT_CONFIG).await;
    let task = server.import(project, json!([{"text": "hello"}])).await[0];
    let first = server.annotate(task, "cat").await["id"].as_i64().unwrap();

    let reply = server
        .post_json(
            "/api/storages/export/s3",
            env.storage(project, &bucket, json!({"prefix": "out/", "can_delete_objects": true})),
        )
        .await;
    let id = created_id(&reply);
    assert_eq!(reply.1["type"], "s3");
    assert_eq!(reply.1["can_delete_objects"], true);
    let path = format!("/api/storages/export/s3/{id}");
    let initial = wait_final(&server, &path).await;
    assert_eq!(initial["status"], "completed", "{initial}");
    // The annotation's own on-save export may run after the storage exists and write it first;
    // then the initial sync finds nothing stale. Either way the object must be there.
    let initial_count = initial["last_sync_count"].as_i64().unwrap();
    assert!(initial_count == 0 || initial_count == 1, "{initial}");
    // s3s-fs maps `out//1` and `out/1` to the same file, so the single slash is asserted by the
    // model's unit test; here the object must be where `out/<id>` points.
    let document = bucket
        .read_json(&format!("out/{first}"))
        .unwrap_or_else(|| panic!("out/{first} was not written"));
    assert_eq!(document["id"], first);
    assert_eq!(chosen(&document), json!(["cat"]));
    assert_eq!(document["task"]["id"], task);
    assert_eq!(document["task"]["data"]["text"], "hello");
    assert_eq!(document["completed_by"]["email"], "alice@example.com");

    // A new annotation is written, rewritten when changed, and deleted with it.
    follows_annotation_on_save(
        &server,
        task,
        |id| format!("out/{id}"),
        |key| {
            let bytes = bucket.read(&key);
            async move { bytes }
        },
    )
    .await;
    assert!(
        bucket.read(&format!("out/{first}")).is_some(),
        "the other annotation stays"
    );

    let (status, body) = server.post_json(&format!("{path}/sync"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let synced = wait_final(&server, &path).await;
    assert_eq!(synced["status"], "completed", "{synced}");
    assert_eq!(synced["last_sync_count"], 0, "nothing was stale: {synced}");

    for list in [
        format!("/api/storages/export/s3?project={project}"),
        format!("/api/storages/export?project={project}"),
    ] {
        let (status, body) = server.get(&list).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body.as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == id && s["type"] == "s3"),
            "{list}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_left_by_a_killed_process_is_taken_over_and_finished() {
    let Some(env) = s3_env() else { return };
    for_each_engine(|server| killed_process(server, env.clone())).await;
}

/// The keys of the killed-process test, with the text of each object.
fn job_keys() -> Vec<(String, String)> {
    (0..6).map(|i| (format!("jobs/{i}.json"), format!("job {i}"))).collect()
}

async fn killed_process(server: Server, env: S3Env) {
    // This process's workers poll for claimable jobs, so one may claim the queued job between
    // the two statements below before the "dead process" does; then that attempt shows nothing
    // and the setup is repeated in a fresh project.
    for _attempt in 0..5 {
        if killed_process_attempt(&server, &env).await {
            return;
        }
    }
    panic!("the server's workers always claimed the queued job before the simulated process could");
}

/// One try of the killed-process test; false when the simulated process did not get the job.
async fn killed_process_attempt(server: &Server, env: &S3Env) -> bool {
    let bucket = env.bucket("killed");
    for (key, text) in job_keys() {
        bucket.put(&key, json!({ "text": text }).to_string());
    }
    let project = server.project("S3 killed", TEXT_CONFIG).await;
    let id = created_id(
        &server
            .post_json(
                "/api/storages/s3/",
                env.storage(project, &bucket, json!({"prefix": "jobs"})),
            )
            .await,
    );

    // What the killed process had committed: the tasks and links of two objects.
    let db = &server.db;
    let batch = NewTask {
        project_id: project,
        overlap: 1,
        importer_id: None,
        members: HashSet::new(),
    };
    let committed = &job_keys()[..2];
    let items: Vec<TaskItem> = committed
        .iter()
        .map(|(_, text)| {
            let mut data = Map::new();
            data.insert("text".into(), json!(text));
            TaskItem::from_data(data)
        })
        .collect();
    let links: Vec<NewImportLink> = committed
        .iter()
        .enumerate()
        .map(|(index, (key, _))| NewImportLink {
            task_index: index,
            key: key.clone(),
            row_index: None,
            etag: None,
            size: None,
            last_modified: None,
        })
        .collect();
    let mut tx = db.begin_write().await.unwrap();
    let task_ids = db.insert_tasks(&mut tx, &batch, &items).await.unwrap();
    db.insert_import_links(&mut tx, id, &task_ids, &links).await.unwrap();
    tx.commit().await.unwrap();

    // The killed process's claim: its lease ran out long ago.
    let record = db.storage_by_id(id).await.unwrap();
    let mut meta = Map::new();
    meta.insert("attempts".into(), json!(1));
    assert!(db.queue_sync(&record, "job-of-the-dead-process", &meta).await.unwrap());
    let claimed = db
        .claim_sync("dead-process", "2000-01-01T00:00:00.000000Z")
        .await
        .unwrap();
    let ours = claimed.as_ref().is_some_and(|c| c.id == id);

    let done = wait_final(server, &format!("/api/storages/s3/{id}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(server.task_total(project).await, 6, "{done}");
    let expected: BTreeMap<String, usize> = job_keys().into_iter().map(|(key, _)| (key, 1)).collect();
    assert_eq!(tasks_per_key(server, project).await, expected);
    if ours {
        assert_eq!(done["last_sync_count"], 4, "{done}");
        assert_eq!(done["meta"]["tasks_existed"], 2, "{done}");
    }
    ours
}
