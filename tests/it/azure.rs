//! Azure Blob Storage source and target storages against Azurite, which checks SharedKey request
//! signatures and SAS signatures. The containers are made once by the test script; every test
//! keeps to its own key prefix (`<uuid>/...`), so the tests run in parallel. Blobs are seeded and
//! checked through labelport's own client and the `Storage` trait. Storages that name no endpoint
//! reach Azurite through `AZURE_BLOB_ENDPOINT`. Without the `LABELPORT_TEST_AZURE_*` variables
//! and `AZURE_BLOB_ENDPOINT` the tests are skipped with a line on stderr.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use bytes::Bytes;
use futures::StreamExt;
use labelport::storage::azure::AzureConfig;
use labelport::storage::{Storage, StorageErrorKind};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Server, TEXT_CONFIG, assert_error, for_each_engine, non_field_error};
use crate::storage_helpers::{
    Guarded, IMAGE_CONFIG, assert_serves_range, assert_traceback_names, chosen, counts, created_id,
    follows_annotation_on_save, project_tasks, sync, tasks_per_key, wait_final,
};

/// Azurite as the tests reach it.
#[derive(Clone)]
struct AzureEnv {
    endpoint: String,
    account: String,
    key: String,
    containers: Vec<String>,
}

static SKIPPED_AZURE: std::sync::Once = std::sync::Once::new();

/// The test Azurite, or `None` (and one line on stderr) when the variables are not set.
fn azure_env() -> Option<AzureEnv> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let env = (|| {
        // The server reads AZURE_BLOB_ENDPOINT itself for storages that name no endpoint.
        var("AZURE_BLOB_ENDPOINT")?;
        Some(AzureEnv {
            endpoint: var("LABELPORT_TEST_AZURE_ENDPOINT")?.trim_end_matches('/').to_string(),
            account: var("LABELPORT_TEST_AZURE_ACCOUNT")?,
            key: var("LABELPORT_TEST_AZURE_KEY")?,
            containers: var("LABELPORT_TEST_AZURE_CONTAINERS")?
                .split_whitespace()
                .map(String::from)
                .collect(),
        })
    })();
    if env.is_none() {
        SKIPPED_AZURE.call_once(|| {
            // Written to stderr directly, so the test harness's output capture does not hide it.
            let _ = writeln!(
                std::io::stderr(),
                "AZURE_BLOB_ENDPOINT/LABELPORT_TEST_AZURE_ENDPOINT/ACCOUNT/KEY/CONTAINERS are not set: the Azure \
                 integration tests were skipped"
            );
        });
    }
    env
}

/// A test's own part of a container: every key under a fresh `<uuid>/` prefix.
struct Area {
    container: String,
    root: String,
    client: Arc<dyn Storage>,
}

impl AzureEnv {
    /// A client for a container, with the test credentials.
    fn client(&self, container: &str) -> Arc<dyn Storage> {
        Arc::new(
            labelport::storage::azure::connect(&AzureConfig {
                container: container.to_string(),
                account_name: Some(self.account.clone()),
                account_key: Some(self.key.clone()),
                endpoint: Some(self.endpoint.clone()),
            })
            .unwrap(),
        )
    }

    /// A fresh key prefix in the `index`-th test container.
    fn area(&self, index: usize) -> Area {
        let container = self.containers[index % self.containers.len()].clone();
        Area {
            client: self.client(&container),
            root: uuid::Uuid::new_v4().simple().to_string(),
            container,
        }
    }

    /// The body of a storage create request for an area: the connection fields (the endpoint
    /// comes from `AZURE_BLOB_ENDPOINT`), `prefix` under the area's root, plus `extra`.
    fn storage(&self, project: i64, area: &Area, prefix: &str, extra: Value) -> Value {
        let mut body = json!({
            "project": project,
            "container": area.container,
            "account_name": self.account,
            "account_key": self.key,
            "prefix": area.key(prefix),
        });
        let map = body.as_object_mut().unwrap();
        for (key, value) in extra.as_object().unwrap() {
            map.insert(key.clone(), value.clone());
        }
        body
    }
}

impl Area {
    /// The full blob name of a key of this area.
    fn key(&self, key: &str) -> String {
        format!("{}/{key}", self.root)
    }

    async fn put(&self, key: &str, contents: impl Into<Vec<u8>>) {
        self.client
            .put(&self.key(key), Bytes::from(contents.into()))
            .await
            .unwrap();
    }

    async fn read(&self, key: &str) -> Option<Vec<u8>> {
        match self.client.get(&self.key(key)).await {
            Ok(bytes) => Some(bytes.to_vec()),
            Err(error) if error.kind == StorageErrorKind::NotFound => None,
            Err(error) => panic!("reading {key}: {error}"),
        }
    }

    async fn read_json(&self, key: &str) -> Option<Value> {
        self.read(key)
            .await
            .map(|bytes| serde_json::from_slice(&bytes).unwrap())
    }

    /// Every blob name of the area (with the root), sorted.
    async fn names(&self) -> Vec<String> {
        let prefix = format!("{}/", self.root);
        let mut pages = self.client.list(&prefix, true);
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            names.extend(page.unwrap().into_iter().map(|o| o.key));
        }
        names.sort();
        names
    }

    /// Deletes the area's blobs.
    async fn clean(&self) {
        for name in self.names().await {
            self.client.delete(&name).await.unwrap();
        }
    }
}

/// The value of one query parameter of a URL.
fn query_value(url: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).unwrap();
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

// ------------------------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_source_storage_imports_each_object_once_and_reports_bad_ones() {
    let Some(env) = azure_env() else { return };
    for_each_engine(|server| source_lifecycle(server, env.clone())).await;
}

async fn source_lifecycle(server: Server, env: AzureEnv) {
    let area = env.area(0);
    area.put("tasks/a.json", r#"{"text": "a"}"#).await;
    area.put("tasks/b.json", r#"[{"text": "b1"}, {"text": "b2"}]"#).await;
    area.put("tasks/c.jsonl", "{\"text\": \"c1\"}\n{\"text\": \"c2\"}\n")
        .await;
    area.put("tasks/bad.json", "{oops").await;
    area.put("tasks/notes.txt", "not a task file").await;
    area.put("tasks/sub/d.json", r#"{"text": "d"}"#).await;
    area.put("other/e.json", r#"{"text": "e"}"#).await;
    let project = server.project("Azure source", TEXT_CONFIG).await;
    let api = Guarded {
        api: &server.api,
        secrets: vec![env.key.clone(), env.account.clone()],
        fields: &["account_key", "account_name"],
    };

    let reply = api
        .post_json(
            "/api/storages/azure/",
            env.storage(project, &area, "tasks", json!({"title": "Source"})),
        )
        .await;
    let id = created_id(&reply);
    let created = &reply.1;
    assert_eq!(created["type"], "azure");
    assert_eq!(created["container"], area.container.as_str());
    assert_eq!(created["prefix"], area.key("tasks").as_str());
    assert_eq!(created["presign"], true);
    assert_eq!(created["presign_ttl"], 1);
    assert_eq!(created["recursive_scan"], false);
    assert_eq!(created["status"], "initialized");
    let path = format!("/api/storages/azure/{id}");
    for list in [
        format!("/api/storages/azure/?project={project}"),
        format!("/api/storages/?project={project}"),
    ] {
        let (status, body) = api.get(&list).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body.as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == id && s["type"] == "azure"),
            "{list}: {body}"
        );
    }
    let (status, got) = api.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["title"], "Source");

    // Objects, arrays and JSONL are imported; a broken object and a non-JSON key are named.
    let first = api.sync(&path).await;
    assert_eq!(first["status"], "completed_with_errors", "{first}");
    assert_eq!(first["last_sync_count"], 5, "{first}");
    assert_eq!(first["meta"]["objects_failed"], 2, "{first}");
    assert_traceback_names(
        &first,
        &[&area.key("tasks/bad.json"), &area.key("tasks/notes.txt")],
        &[
            &area.key("tasks/a.json"),
            &area.key("tasks/b.json"),
            &area.key("tasks/c.jsonl"),
        ],
    );
    let key = |k: &str| area.key(k);
    assert_eq!(
        tasks_per_key(&server, project).await,
        counts(&[
            (&key("tasks/a.json"), 1),
            (&key("tasks/b.json"), 2),
            (&key("tasks/c.jsonl"), 2)
        ])
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
    assert_eq!(tasks_per_key(&server, project).await[&key("tasks/sub/d.json")], 1);

    // A regex keeps only matching keys (anchored at the start of the whole key).
    let filtered_project = server.project("Azure regex", TEXT_CONFIG).await;
    let regex = format!(r"{}/tasks/(sub/)?[cd]\.", area.root);
    let filtered = created_id(
        &api.post_json(
            "/api/storages/azure/",
            env.storage(
                filtered_project,
                &area,
                "tasks",
                json!({"recursive_scan": true, "regex_filter": regex}),
            ),
        )
        .await,
    );
    let done = api.sync(&format!("/api/storages/azure/{filtered}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        tasks_per_key(&server, filtered_project).await,
        counts(&[(&key("tasks/c.jsonl"), 2), (&key("tasks/sub/d.json"), 1)])
    );

    let (status, body) = server.delete(&path).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_error(&server.get(&path).await, StatusCode::NOT_FOUND);
    assert_eq!(
        server.task_total(project).await,
        6,
        "deleting a storage keeps its tasks"
    );
    area.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_blob_mode_links_resolve_to_sas_urls_or_the_proxy() {
    let Some(env) = azure_env() else { return };
    for_each_engine(|server| blob_mode_and_resolver(server, env.clone())).await;
}

async fn blob_mode_and_resolver(server: Server, env: AzureEnv) {
    let area = env.area(1);
    let bytes = b"0123456789abcdefghijklmnopqrstuv".to_vec();
    area.put("media/a é 1.jpg", bytes.clone()).await;
    area.put("media/b.png", "png").await;
    area.put("media/c.txt", "text").await;
    let project = server.project("Azure blobs", IMAGE_CONFIG).await;
    let id = created_id(
        &server
            .post_json(
                "/api/storages/azure/",
                env.storage(
                    project,
                    &area,
                    "media",
                    json!({"use_blob_urls": true, "regex_filter": r".*\.(jpg|png)"}),
                ),
            )
            .await,
    );
    let done = sync(&server, &format!("/api/storages/azure/{id}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        tasks_per_key(&server, project).await,
        counts(&[(&area.key("media/a é 1.jpg"), 1), (&area.key("media/b.png"), 1)])
    );
    let task = project_tasks(&server, project)
        .await
        .into_iter()
        .find(|t| t["storage_filename"] == area.key("media/a é 1.jpg").as_str())
        .unwrap();
    let task_id = task["id"].as_i64().unwrap();
    let uri = format!("azure-blob://{}/{}", area.container, area.key("media/a é 1.jpg"));
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

    // presign on: 303 to a read-only SAS URL a plain client can fetch; a changed signature is
    // refused by Azurite.
    let response = server.raw(Method::GET, &url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["cache-control"], "no-store, max-age=60");
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let blob_url = format!("{}/{}/{}/media/", env.endpoint, area.container, area.root);
    assert!(location.starts_with(&blob_url), "{location}");
    assert_eq!(query_value(&location, "sp").as_deref(), Some("r"), "{location}");
    let expiry = query_value(&location, "se").unwrap_or_else(|| panic!("no expiry: {location}"));
    let expiry = time::OffsetDateTime::parse(&expiry, &time::format_description::well_known::Rfc3339).unwrap();
    let left = expiry - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::seconds(30) && left <= time::Duration::seconds(61),
        "a 1 minute SAS expires in {left}: {location}"
    );
    let fetched = reqwest::get(&location).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK, "{location}");
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let signature = query_value(&location, "sig").unwrap_or_else(|| panic!("not signed: {location}"));
    let mut raw_signature = STANDARD.decode(&signature).unwrap();
    raw_signature[0] ^= 1;
    let mut tampered = reqwest::Url::parse(&location).unwrap();
    let pairs: Vec<(String, String)> = tampered
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "sig" {
                STANDARD.encode(&raw_signature)
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    assert_eq!(reqwest::get(tampered).await.unwrap().status(), StatusCode::FORBIDDEN);

    // Another container's URI is not signed.
    let other = URL_SAFE.encode(format!(
        "azure-blob://{}-other/{}",
        area.container,
        area.key("media/a é 1.jpg")
    ));
    let response = server
        .raw(Method::GET, &format!("/tasks/{task_id}/resolve/?fileuri={other}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // presign off: the server streams the object, whole or a range.
    let (status, patched) = server
        .patch_json(&format!("/api/storages/azure/{id}"), json!({"presign": false}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["presign"], false);
    let response = server.raw(Method::GET, &url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());
    assert_serves_range(&server, &url, &bytes, 2, 5).await;
    area.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_connection_checks_report_what_is_wrong() {
    let Some(env) = azure_env() else { return };
    for_each_engine(|server| connection_checks(server, env.clone())).await;
}

async fn connection_checks(server: Server, env: AzureEnv) {
    let area = env.area(2);
    area.put("data/x.json", r#"{"text": "x"}"#).await;
    area.put("media/pic.jpg", "picture").await;
    let project = server.project("Azure checks", TEXT_CONFIG).await;
    let container = &area.container;

    let wrong_key = STANDARD.encode([7u8; 64]);
    let started = Instant::now();
    let refused = server
        .post_json(
            "/api/storages/azure/",
            env.storage(project, &area, "data", json!({ "account_key": wrong_key })),
        )
        .await;
    assert_eq!(
        non_field_error(&refused),
        format!("Cannot access container {container}: the account name or key is wrong")
    );
    assert!(!refused.1.to_string().contains(&wrong_key), "{}", refused.1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a wrong key took {:?}",
        started.elapsed()
    );

    let garbage = server
        .post_json(
            "/api/storages/azure/",
            env.storage(project, &area, "data", json!({ "account_key": "not a key!" })),
        )
        .await;
    assert_eq!(
        non_field_error(&garbage),
        "The Azure account key is not valid: paste the base64 key from the storage account's Access keys page"
    );

    let missing = format!("lp-missing-{}", uuid::Uuid::new_v4().simple());
    let mut body = env.storage(project, &area, "data", json!({}));
    body["container"] = json!(missing);
    let started = Instant::now();
    let no_container = server.post_json("/api/storages/azure/", body).await;
    assert_eq!(
        non_field_error(&no_container),
        format!("Container not found: {missing}")
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a missing container took {:?}",
        started.elapsed()
    );

    // AZURE_BLOB_ACCOUNT_NAME/KEY are not set in the tests, so there is no fallback.
    let mut body = env.storage(project, &area, "data", json!({}));
    let map = body.as_object_mut().unwrap();
    map.remove("account_name");
    map.remove("account_key");
    let anonymous = server.post_json("/api/storages/azure/", body).await;
    let message = non_field_error(&anonymous);
    assert!(
        message.contains("AZURE_BLOB_ACCOUNT_NAME") && message.contains("AZURE_BLOB_ACCOUNT_KEY"),
        "{message}"
    );

    // The field `azure_endpoint` overrides AZURE_BLOB_ENDPOINT: nothing listens on port 1.
    let started = Instant::now();
    let unreachable = server
        .post_json(
            "/api/storages/azure/",
            env.storage(
                project,
                &area,
                "data",
                json!({"azure_endpoint": "http://127.0.0.1:1/devstoreaccount1"}),
            ),
        )
        .await;
    let message = non_field_error(&unreachable);
    assert!(
        message.starts_with(&format!("Cannot connect to Azure container {container}")),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "an unreachable endpoint took {:?}",
        started.elapsed()
    );

    let empty_prefix = server
        .post_json(
            "/api/storages/azure/",
            env.storage(project, &area, "nothing", json!({})),
        )
        .await;
    assert_eq!(
        non_field_error(&empty_prefix),
        format!("azure-blob://{container}/{} not found.", area.key("nothing"))
    );
    // A target storage may point where nothing has been written yet.
    created_id(
        &server
            .post_json(
                "/api/storages/export/azure",
                env.storage(project, &area, "nothing", json!({})),
            )
            .await,
    );
    let (status, body) = server
        .post_json(
            "/api/storages/azure/validate",
            env.storage(project, &area, "data", json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The same server under another name, given per storage, is the one its URLs point at.
    let endpoint = env.endpoint.replace("127.0.0.1", "localhost");
    let media_project = server.project("Azure endpoint", IMAGE_CONFIG).await;
    let id = created_id(
        &server
            .post_json(
                "/api/storages/azure/",
                env.storage(
                    media_project,
                    &area,
                    "media",
                    json!({"azure_endpoint": endpoint, "use_blob_urls": true}),
                ),
            )
            .await,
    );
    let (status, stored) = server.get(&format!("/api/storages/azure/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["azure_endpoint"], endpoint.as_str());
    let done = sync(&server, &format!("/api/storages/azure/{id}")).await;
    assert_eq!(done["last_sync_count"], 1, "{done}");
    let task = project_tasks(&server, media_project).await.remove(0);
    let url = task["data"]["image"].as_str().unwrap();
    let response = server.raw(Method::GET, url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{endpoint}/")), "{location}");
    let fetched = reqwest::get(&location).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK, "{location}");
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), b"picture");
    area.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_target_storage_follows_annotations() {
    let Some(env) = azure_env() else { return };
    for_each_engine(|server| target_storage(server, env.clone())).await;
}

async fn target_storage(server: Server, env: AzureEnv) {
    let area = env.area(0);
    let project = server.project("Azure target", TEXT_CONFIG).await;
    let task = server.import(project, json!([{"text": "hello"}])).await[0];
    let first = server.annotate(task, "cat").await["id"].as_i64().unwrap();
    let api = Guarded {
        api: &server.api,
        secrets: vec![env.key.clone(), env.account.clone()],
        fields: &["account_key", "account_name"],
    };

    let reply = api
        .post_json(
            "/api/storages/export/azure",
            env.storage(project, &area, "out/", json!({"can_delete_objects": true})),
        )
        .await;
    let id = created_id(&reply);
    assert_eq!(reply.1["type"], "azure");
    assert_eq!(reply.1["can_delete_objects"], true);
    assert!(reply.1.get("presign").is_none(), "{}", reply.1);
    let path = format!("/api/storages/export/azure/{id}");
    let initial = wait_final(&server, &path).await;
    assert_eq!(initial["status"], "completed", "{initial}");
    assert_eq!(initial["last_sync_count"], 1, "{initial}");
    // `<prefix>/<annotation id>`, with no double slash.
    assert_eq!(area.names().await, [area.key(&format!("out/{first}"))]);
    let document = area.read_json(&format!("out/{first}")).await.unwrap();
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
            let area = &area;
            async move { area.read(&key).await }
        },
    )
    .await;
    assert_eq!(
        area.names().await,
        [area.key(&format!("out/{first}"))],
        "the other annotation stays"
    );

    let synced = api.sync(&path).await;
    assert_eq!(synced["status"], "completed", "{synced}");
    assert_eq!(synced["last_sync_count"], 0, "nothing was stale: {synced}");
    let (status, body) = api.get(&format!("/api/storages/export/azure?project={project}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id && s["type"] == "azure"),
        "{body}"
    );
    area.clean().await;
}
