//! Google Cloud Storage source and target storages against fake-gcs-server, reached through
//! `STORAGE_EMULATOR_HOST` as Google's own clients do. The emulator checks neither credentials nor
//! signatures, so these tests prove the wiring (listing, reads, JSON-API uploads, deletes, V4
//! signed URLs a plain client can fetch); signature checking is proven by the S3 and Azure tests.
//! Every test makes its own buckets, so the tests run in parallel. Without the
//! `LABELPORT_TEST_GCS_*` variables and `STORAGE_EMULATOR_HOST` the tests are skipped with a line
//! on stderr.

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Server, TEXT_CONFIG, assert_error, for_each_engine, non_field_error};
use crate::storage_helpers::{
    Guarded, IMAGE_CONFIG, assert_lists_storage, assert_lists_type, assert_serves_range, assert_traceback_names,
    chosen, counts, created_id, follows_annotation_on_save, project_tasks, sync, tasks_per_key, wait_final,
};

/// The emulator the tests talk to, and the service-account key they give storages.
#[derive(Clone)]
struct GcsEnv {
    endpoint: String,
    /// The text of the throwaway service-account JSON key.
    credentials: String,
    http: reqwest::Client,
}

static SKIPPED_GCS: std::sync::Once = std::sync::Once::new();

/// The test emulator, or `None` (and one line on stderr) when the variables are not set.
fn gcs_env() -> Option<GcsEnv> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let env = (|| {
        // The server reads STORAGE_EMULATOR_HOST itself; without it storages would go to Google.
        var("STORAGE_EMULATOR_HOST")?;
        Some(GcsEnv {
            endpoint: var("LABELPORT_TEST_GCS_ENDPOINT")?.trim_end_matches('/').to_string(),
            credentials: std::fs::read_to_string(var("LABELPORT_TEST_GCS_CREDENTIALS")?).ok()?,
            http: reqwest::Client::new(),
        })
    })();
    if env.is_none() {
        SKIPPED_GCS.call_once(|| {
            // Written to stderr directly, so the test harness's output capture does not hide it.
            let _ = writeln!(
                std::io::stderr(),
                "STORAGE_EMULATOR_HOST/LABELPORT_TEST_GCS_ENDPOINT/LABELPORT_TEST_GCS_CREDENTIALS are not set: the GCS \
                 integration tests were skipped"
            );
        });
    }
    env
}

/// One bucket of the emulator (in memory; it goes when the emulator stops).
struct Bucket {
    name: String,
    env: GcsEnv,
}

/// An object name as one path segment of the JSON API.
fn segment(key: &str) -> String {
    labelport::storage::local::quote_path(key).replace('/', "%2F")
}

impl GcsEnv {
    /// A new empty bucket with a unique name.
    async fn bucket(&self, label: &str) -> Bucket {
        let bucket = self.missing_bucket(label);
        let response = self
            .http
            .post(format!("{}/storage/v1/b?project=test", self.endpoint))
            .json(&json!({"name": bucket.name}))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "creating {}: {}",
            bucket.name,
            response.status()
        );
        bucket
    }

    /// A unique bucket name that does not exist.
    fn missing_bucket(&self, label: &str) -> Bucket {
        Bucket {
            name: format!("lp-{label}-{}", uuid::Uuid::new_v4().simple()),
            env: self.clone(),
        }
    }

    /// The body of a storage create request for a bucket: the connection fields plus `extra`.
    fn storage(&self, project: i64, bucket: &Bucket, extra: Value) -> Value {
        let mut body = json!({
            "project": project,
            "bucket": bucket.name,
            "google_application_credentials": self.credentials,
            "google_project_id": "labelport-test",
        });
        let map = body.as_object_mut().unwrap();
        for (key, value) in extra.as_object().unwrap() {
            map.insert(key.clone(), value.clone());
        }
        body
    }

    /// Pieces of the key that must never appear in a response.
    fn secrets(&self) -> Vec<String> {
        let key: Value = serde_json::from_str(&self.credentials).unwrap();
        let private_key = key["private_key"].as_str().unwrap();
        // A line from the middle of the PEM body, and the key id.
        let line = private_key.lines().nth(3).unwrap().to_string();
        vec![
            line,
            key["private_key_id"].as_str().unwrap().to_string(),
            self.credentials.clone(),
        ]
    }
}

impl Bucket {
    async fn put(&self, key: &str, contents: impl Into<Vec<u8>>) {
        let response = self
            .env
            .http
            .post(format!(
                "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
                self.env.endpoint,
                self.name,
                segment(key)
            ))
            .body(contents.into())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "uploading {key}: {}", response.status());
    }

    async fn read(&self, key: &str) -> Option<Vec<u8>> {
        let url = format!(
            "{}/storage/v1/b/{}/o/{}?alt=media",
            self.env.endpoint,
            self.name,
            segment(key)
        );
        let response = self.env.http.get(url).send().await.unwrap();
        match response.status() {
            StatusCode::NOT_FOUND => None,
            StatusCode::OK => Some(response.bytes().await.unwrap().to_vec()),
            other => panic!("reading {key}: {other}"),
        }
    }

    /// An object parsed as JSON, `None` while it is missing.
    async fn read_json(&self, key: &str) -> Option<Value> {
        self.read(key)
            .await
            .map(|bytes| serde_json::from_slice(&bytes).unwrap())
    }

    /// Every object name under `prefix`, sorted.
    async fn names(&self, prefix: &str) -> Vec<String> {
        let url = format!(
            "{}/storage/v1/b/{}/o?prefix={}",
            self.env.endpoint,
            self.name,
            segment(prefix)
        );
        let response = self.env.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        let mut names: Vec<String> = body["items"]
            .as_array()
            .map(|items| items.iter().map(|i| i["name"].as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

// ------------------------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_source_storage_imports_each_object_once_and_reports_bad_ones() {
    let Some(env) = gcs_env() else { return };
    for_each_engine(|server| source_lifecycle(server, env.clone())).await;
}

async fn source_lifecycle(server: Server, env: GcsEnv) {
    let bucket = env.bucket("src").await;
    bucket.put("tasks/a.json", r#"{"text": "a"}"#).await;
    bucket.put("tasks/b.json", r#"[{"text": "b1"}, {"text": "b2"}]"#).await;
    bucket
        .put("tasks/c.jsonl", "{\"text\": \"c1\"}\n{\"text\": \"c2\"}\n")
        .await;
    bucket.put("tasks/bad.json", "{oops").await;
    bucket.put("tasks/notes.txt", "not a task file").await;
    bucket.put("tasks/sub/d.json", r#"{"text": "d"}"#).await;
    bucket.put("other/e.json", r#"{"text": "e"}"#).await;
    let project = server.project("GCS source", TEXT_CONFIG).await;
    let api = Guarded {
        api: &server.api,
        secrets: env.secrets(),
        fields: &["google_application_credentials"],
    };

    let reply = api
        .post_json(
            "/api/storages/gcs/",
            env.storage(project, &bucket, json!({"title": "Source", "prefix": "tasks"})),
        )
        .await;
    let id = created_id(&reply);
    let created = &reply.1;
    assert_eq!(created["type"], "gcs");
    assert_eq!(created["bucket"], bucket.name.as_str());
    assert_eq!(created["prefix"], "tasks");
    assert_eq!(created["google_project_id"], "labelport-test");
    assert_eq!(created["presign"], true);
    assert_eq!(created["presign_ttl"], 1);
    assert_eq!(created["recursive_scan"], false);
    assert_eq!(created["status"], "initialized");
    let path = format!("/api/storages/gcs/{id}");
    for list in [
        format!("/api/storages/gcs/?project={project}"),
        format!("/api/storages/?project={project}"),
    ] {
        assert_lists_storage(&api.get(&list).await, id, "gcs");
    }
    assert_lists_type(&api.get("/api/storages/types").await, "gcs", "Google Cloud Storage");

    // Objects, arrays and JSONL are imported; a broken object and a non-JSON key are named.
    let first = api.sync(&path).await;
    assert_eq!(first["status"], "completed_with_errors", "{first}");
    assert_eq!(first["last_sync_count"], 5, "{first}");
    assert_eq!(first["meta"]["objects_failed"], 2, "{first}");
    assert_traceback_names(
        &first,
        &["tasks/bad.json", "tasks/notes.txt"],
        &["tasks/a.json", "tasks/b.json", "tasks/c.jsonl"],
    );
    assert_eq!(
        tasks_per_key(&server, project).await,
        counts(&[("tasks/a.json", 1), ("tasks/b.json", 2), ("tasks/c.jsonl", 2)])
    );
    let tasks = project_tasks(&server, project).await;
    for task in &tasks {
        api.check((StatusCode::OK, task.clone()));
    }
    let texts: HashSet<&str> = tasks.iter().map(|t| t["data"]["text"].as_str().unwrap()).collect();
    assert_eq!(texts, HashSet::from(["a", "b1", "b2", "c1", "c2"]));

    // Re-sync: nothing new; the bad objects are reported again.
    let again = api.sync(&path).await;
    assert_eq!(again["status"], "completed_with_errors", "{again}");
    assert_eq!(again["last_sync_count"], 0, "{again}");
    assert_eq!(again["meta"]["tasks_existed"], 3, "{again}");
    assert_eq!(server.task_total(project).await, 5);

    // Recursive scan reaches tasks/sub/d.json, and only that is new.
    let (status, patched) = api.patch_json(&path, json!({"recursive_scan": true})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["recursive_scan"], true);
    let recursive = api.sync(&path).await;
    assert_eq!(recursive["last_sync_count"], 1, "{recursive}");
    assert_eq!(server.task_total(project).await, 6);
    assert_eq!(tasks_per_key(&server, project).await["tasks/sub/d.json"], 1);

    // A regex keeps only matching keys (anchored at the start of the whole key).
    let filtered_project = server.project("GCS regex", TEXT_CONFIG).await;
    let filtered = created_id(
        &api.post_json(
            "/api/storages/gcs/",
            env.storage(
                filtered_project,
                &bucket,
                json!({"prefix": "tasks", "recursive_scan": true, "regex_filter": r"tasks/(sub/)?[cd]\."}),
            ),
        )
        .await,
    );
    let done = api.sync(&format!("/api/storages/gcs/{filtered}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        tasks_per_key(&server, filtered_project).await,
        counts(&[("tasks/c.jsonl", 2), ("tasks/sub/d.json", 1)])
    );

    let (status, body) = server.delete(&path).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_error(&server.get(&path).await, StatusCode::NOT_FOUND);
    assert_eq!(
        server.task_total(project).await,
        6,
        "deleting a storage keeps its tasks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_blob_mode_links_resolve_to_signed_urls_or_the_proxy() {
    let Some(env) = gcs_env() else { return };
    for_each_engine(|server| blob_mode_and_resolver(server, env.clone())).await;
}

async fn blob_mode_and_resolver(server: Server, env: GcsEnv) {
    let bucket = env.bucket("media").await;
    let bytes = b"0123456789abcdefghijklmnopqrstuv".to_vec();
    bucket.put("media/a é 1.jpg", bytes.clone()).await;
    bucket.put("media/b.png", "png").await;
    bucket.put("media/c.txt", "text").await;
    let project = server.project("GCS blobs", IMAGE_CONFIG).await;
    let id = created_id(
        &server
            .post_json(
                "/api/storages/gcs/",
                env.storage(
                    project,
                    &bucket,
                    json!({"prefix": "media", "use_blob_urls": true, "regex_filter": r".*\.(jpg|png)"}),
                ),
            )
            .await,
    );
    let done = sync(&server, &format!("/api/storages/gcs/{id}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        tasks_per_key(&server, project).await,
        counts(&[("media/a é 1.jpg", 1), ("media/b.png", 1)])
    );
    let task = project_tasks(&server, project)
        .await
        .into_iter()
        .find(|t| t["storage_filename"] == "media/a é 1.jpg")
        .unwrap();
    let task_id = task["id"].as_i64().unwrap();
    let uri = format!("gs://{}/media/a é 1.jpg", bucket.name);
    let url = task["data"]["image"]
        .as_str()
        .unwrap_or_else(|| panic!("{task}"))
        .to_string();
    let (resolver, fileuri) = url.split_once("?fileuri=").unwrap();
    assert_eq!(resolver, format!("/tasks/{task_id}/resolve/"));
    assert_eq!(URL_SAFE.decode(fileuri).unwrap(), uri.as_bytes());
    let (status, raw) = server.get(&format!("/api/tasks/{task_id}/?resolve_uri=false")).await;
    assert_eq!(status, StatusCode::OK, "{raw}");
    assert_eq!(raw["data"]["image"], uri.as_str());

    // presign on: 303 to a V4 signed URL of the emulator that a plain client can fetch.
    let response = server.raw(Method::GET, &url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["cache-control"], "no-store, max-age=60");
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{}/", env.endpoint)), "{location}");
    for part in [
        "X-Goog-Algorithm=GOOG4-RSA-SHA256",
        "X-Goog-Expires=60",
        "X-Goog-Signature=",
    ] {
        assert!(location.contains(part), "{part} missing in {location}");
    }
    let fetched = reqwest::get(&location).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK, "{location}");
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // The TTL is in minutes.
    let (status, patched) = server
        .patch_json(&format!("/api/storages/gcs/{id}"), json!({"presign_ttl": 5}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let response = server.raw(Method::GET, &url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.contains("X-Goog-Expires=300"), "{location}");

    // Another bucket's URI is not signed.
    let other = URL_SAFE.encode(format!("gs://{}-other/media/a é 1.jpg", bucket.name));
    let response = server
        .raw(Method::GET, &format!("/tasks/{task_id}/resolve/?fileuri={other}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // presign off: the server streams the object, whole or a range.
    let (status, patched) = server
        .patch_json(&format!("/api/storages/gcs/{id}"), json!({"presign": false}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["presign"], false);
    let response = server.raw(Method::GET, &url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());
    assert_serves_range(&server, &url, &bytes, 2, 5).await;
    let project_url = format!("/projects/{project}/resolve/?fileuri={fileuri}");
    let response = server.raw(Method::GET, &project_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_connection_checks_report_what_is_wrong() {
    let Some(env) = gcs_env() else { return };
    for_each_engine(|server| connection_checks(server, env.clone())).await;
}

async fn connection_checks(server: Server, env: GcsEnv) {
    let bucket = env.bucket("check").await;
    bucket.put("data/x.json", r#"{"text": "x"}"#).await;
    let project = server.project("GCS checks", TEXT_CONFIG).await;
    let name = &bucket.name;
    let started = Instant::now();

    for credentials in ["{not json", "[1, 2]"] {
        let invalid = server
            .post_json(
                "/api/storages/gcs/",
                env.storage(
                    project,
                    &bucket,
                    json!({ "google_application_credentials": credentials }),
                ),
            )
            .await;
        let message = non_field_error(&invalid);
        assert!(
            message.starts_with("Google Application Credentials must be valid JSON string"),
            "{message}"
        );
        assert!(!invalid.1.to_string().contains(credentials), "{}", invalid.1);
    }

    let not_a_key = server
        .post_json(
            "/api/storages/gcs/",
            env.storage(
                project,
                &bucket,
                json!({ "google_application_credentials": "{\"type\": \"service_account\"}" }),
            ),
        )
        .await;
    // JSON, but not a service-account key: the message says what is missing.
    let message = non_field_error(&not_a_key);
    assert!(message.contains("private_key"), "{message}");

    let missing = env.missing_bucket("missing");
    let no_bucket = server
        .post_json("/api/storages/gcs/", env.storage(project, &missing, json!({})))
        .await;
    assert_eq!(
        non_field_error(&no_bucket),
        format!("Bucket {} not found in Google Cloud Storage", missing.name)
    );
    let empty_prefix = server
        .post_json(
            "/api/storages/gcs/",
            env.storage(project, &bucket, json!({"prefix": "nothing"})),
        )
        .await;
    assert_eq!(
        non_field_error(&empty_prefix),
        format!("No blobs found in {name}/nothing or prefix doesn't exist")
    );
    // A target storage may point where nothing has been written yet.
    created_id(
        &server
            .post_json(
                "/api/storages/export/gcs",
                env.storage(project, &bucket, json!({"prefix": "nothing"})),
            )
            .await,
    );
    let (status, body) = server
        .post_json(
            "/api/storages/gcs/validate",
            env.storage(project, &bucket, json!({"prefix": "data"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let bad = server
        .post_json(
            "/api/storages/gcs/validate",
            env.storage(project, &missing, json!({"prefix": "data"})),
        )
        .await;
    assert_eq!(
        non_field_error(&bad),
        format!("Bucket {} not found in Google Cloud Storage", missing.name)
    );

    // With the emulator and no key, the storage connects without OAuth (and reads objects).
    let mut keyless = env.storage(project, &bucket, json!({"prefix": "data"}));
    keyless
        .as_object_mut()
        .unwrap()
        .remove("google_application_credentials");
    let id = created_id(&server.post_json("/api/storages/gcs/", keyless).await);
    let done = sync(&server, &format!("/api/storages/gcs/{id}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["last_sync_count"], 1, "{done}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the checks took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_target_storage_follows_annotations() {
    let Some(env) = gcs_env() else { return };
    for_each_engine(|server| target_storage(server, env.clone())).await;
}

async fn target_storage(server: Server, env: GcsEnv) {
    let bucket = env.bucket("out").await;
    let project = server.project("GCS target", TEXT_CONFIG).await;
    let task = server.import(project, json!([{"text": "hello"}])).await[0];
    let first = server.annotate(task, "cat").await["id"].as_i64().unwrap();
    let api = Guarded {
        api: &server.api,
        secrets: env.secrets(),
        fields: &["google_application_credentials"],
    };

    let reply = api
        .post_json(
            "/api/storages/export/gcs",
            env.storage(project, &bucket, json!({"prefix": "out/", "can_delete_objects": true})),
        )
        .await;
    let id = created_id(&reply);
    assert_eq!(reply.1["type"], "gcs");
    assert_eq!(reply.1["can_delete_objects"], true);
    assert!(reply.1.get("presign").is_none(), "{}", reply.1);
    let path = format!("/api/storages/export/gcs/{id}");
    let initial = wait_final(&server, &path).await;
    assert_eq!(initial["status"], "completed", "{initial}");
    assert_eq!(initial["last_sync_count"], 1, "{initial}");
    // Written through the JSON upload API at `<prefix>/<annotation id>`, with no double slash.
    assert_eq!(bucket.names("").await, [format!("out/{first}")]);
    let document = bucket.read_json(&format!("out/{first}")).await.unwrap();
    assert_eq!(document["id"], first);
    assert_eq!(chosen(&document), json!(["cat"]));
    assert_eq!(document["task"]["id"], task);
    assert_eq!(document["task"]["data"]["text"], "hello");

    // A new annotation is written, rewritten when changed, and deleted with it.
    follows_annotation_on_save(
        &server,
        task,
        |id| format!("out/{id}"),
        |key| {
            let bucket = &bucket;
            async move { bucket.read(&key).await }
        },
    )
    .await;
    assert_eq!(
        bucket.names("out").await,
        [format!("out/{first}")],
        "the other annotation stays"
    );

    let synced = api.sync(&path).await;
    assert_eq!(synced["status"], "completed", "{synced}");
    assert_eq!(synced["last_sync_count"], 0, "nothing was stale: {synced}");
    let (status, body) = api.get(&format!("/api/storages/export?project={project}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id && s["type"] == "gcs"),
        "{body}"
    );
}
