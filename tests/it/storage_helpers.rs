//! Helpers of the storage suites that do not depend on a backend: waiting for syncs and background writes, and reading a project's tasks by key.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Api, Reply, choice_result};

/// How long a sync or a background write may take before a test gives up.
pub const WAIT: Duration = Duration::from_secs(30);
/// Pause between two looks while waiting.
pub const POLL: Duration = Duration::from_millis(50);

pub const IMAGE_CONFIG: &str = r#"<View><Image name="image" value="$image"/></View>"#;

/// Asserts a 201 and returns the new storage's id.
#[track_caller]
pub fn created_id(reply: &Reply) -> i64 {
    assert_eq!(reply.0, StatusCode::CREATED, "{}", reply.1);
    reply.1["id"].as_i64().unwrap()
}

/// Polls a storage until its sync ends (completed, completed_with_errors or failed).
pub async fn wait_final(api: &Api, path: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = api.get(path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if matches!(
            body["status"].as_str(),
            Some("completed" | "completed_with_errors" | "failed")
        ) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "the sync did not end within {WAIT:?}: {body}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Starts a sync of the storage at `path` (such as `/api/storages/redis/3`) and waits for it.
pub async fn sync(api: &Api, path: &str) -> Value {
    let (status, body) = api.post_json(&format!("{path}/sync"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_final(api, path).await
}

/// Polls until `check` returns a value.
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} did not happen within {WAIT:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// Every task of a project as `GET /api/tasks/{id}/` returns it (so with `storage_filename`).
pub async fn project_tasks(api: &Api, project: i64) -> Vec<Value> {
    let (status, page) = api.get(&format!("/api/tasks/?project={project}&page_size=1000")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut tasks = Vec::new();
    for task in page["tasks"].as_array().unwrap() {
        tasks.push(api.task(task["id"].as_i64().unwrap()).await);
    }
    tasks
}

/// How many tasks each storage key produced.
pub async fn tasks_per_key(api: &Api, project: i64) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for task in project_tasks(api, project).await {
        let key = task["storage_filename"]
            .as_str()
            .unwrap_or_else(|| panic!("a task without storage_filename: {task}"))
            .to_string();
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// The sorted `data.text` values of a project's tasks.
pub async fn task_texts(api: &Api, project: i64) -> Vec<String> {
    let mut texts: Vec<String> = project_tasks(api, project)
        .await
        .iter()
        .map(|t| {
            t["data"]["text"]
                .as_str()
                .unwrap_or_else(|| panic!("a task without data.text: {t}"))
                .to_string()
        })
        .collect();
    texts.sort();
    texts
}

pub fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

/// Asserts that a sync's traceback names each key on exactly one line and none of `absent`.
#[track_caller]
pub fn assert_traceback_names(storage: &Value, keys: &[&str], absent: &[&str]) {
    let traceback = storage["traceback"]
        .as_str()
        .unwrap_or_else(|| panic!("no traceback: {storage}"));
    for key in keys {
        let lines = traceback.lines().filter(|l| l.starts_with(&format!("{key}: "))).count();
        assert_eq!(lines, 1, "{key} should be named on one line of: {traceback}");
    }
    for key in absent {
        assert!(
            !traceback.lines().any(|l| l.starts_with(&format!("{key}: "))),
            "{key} is reported: {traceback}"
        );
    }
}

/// The chosen labels of an exported annotation document.
pub fn chosen(document: &Value) -> Value {
    document["result"][0]["value"]["choices"].clone()
}

/// An API client that asserts no response body it receives shows a secret value or names a
/// write-only field.
pub struct Guarded<'a> {
    pub api: &'a Api,
    pub secrets: Vec<String>,
    pub fields: &'static [&'static str],
}

impl Guarded<'_> {
    #[track_caller]
    pub fn check(&self, reply: Reply) -> Reply {
        let text = reply.1.to_string();
        for secret in &self.secrets {
            assert!(!text.contains(secret.as_str()), "a response shows a credential: {text}");
        }
        for field in self.fields {
            assert!(!text.contains(field), "a response names {field}: {text}");
        }
        reply
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.check(self.api.get(path).await)
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Reply {
        self.check(self.api.post_json(path, body).await)
    }

    pub async fn patch_json(&self, path: &str, body: Value) -> Reply {
        self.check(self.api.patch_json(path, body).await)
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.check(self.api.delete(path).await)
    }

    /// Waits for the storage's sync to end, checking the final body too.
    pub async fn wait_final(&self, path: &str) -> Value {
        self.check((StatusCode::OK, wait_final(self.api, path).await)).1
    }

    /// Starts a sync of the storage at `path` and waits for it, checking every body.
    pub async fn sync(&self, path: &str) -> Value {
        let (status, body) = self.post_json(&format!("{path}/sync"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        self.wait_final(path).await
    }
}

/// Waits until an async look returns `Some`, up to [`WAIT`].
pub async fn eventually_async<T, F, Fut>(what: &str, mut look: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = look().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} did not happen in time");
        tokio::time::sleep(POLL).await;
    }
}

/// The on-save half of every target storage's contract: a new annotation of `task` is written at
/// `key_of(id)`, rewritten when changed, and deleted with it. `read` fetches an object (`None`
/// while missing). Returns the key of that annotation, gone by then.
pub async fn follows_annotation_on_save<F, Fut>(api: &Api, task: i64, key_of: impl Fn(i64) -> String, read: F) -> String
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Option<Vec<u8>>>,
{
    let read_json = |key: String| {
        let bytes = read(key);
        async move { bytes.await.map(|b| serde_json::from_slice::<Value>(&b).unwrap()) }
    };
    let second = api.annotate(task, "dog").await["id"].as_i64().unwrap();
    let key = key_of(second);
    let document = eventually_async(&format!("writing {key}"), || read_json(key.clone())).await;
    assert_eq!(document["id"], second);
    assert_eq!(chosen(&document), json!(["dog"]));
    let (status, body) = api
        .patch_json(
            &format!("/api/annotations/{second}/"),
            json!({"result": [choice_result("cat")]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually_async(&format!("rewriting {key}"), || async {
        read_json(key.clone()).await.filter(|d| chosen(d) == json!(["cat"]))
    })
    .await;
    let (status, body) = api.delete(&format!("/api/annotations/{second}/")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    eventually_async(&format!("deleting {key}"), || async {
        read(key.clone()).await.is_none().then_some(())
    })
    .await;
    key
}

/// Asserts that `url` answers `Range: bytes=first-last` with 206, the right `Content-Range`, and
/// exactly those bytes of `whole`.
pub async fn assert_serves_range(api: &Api, url: &str, whole: &[u8], first: usize, last: usize) {
    let response = api
        .raw(reqwest::Method::GET, url)
        .header("Range", format!("bytes={first}-{last}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        response.headers()["content-range"].to_str().unwrap(),
        format!("bytes {first}-{last}/{}", whole.len())
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), &whole[first..=last]);
}

/// Asserts a 200 list of storages that holds storage `id` of `kind`.
#[track_caller]
pub fn assert_lists_storage(reply: &Reply, id: i64, kind: &str) {
    let (status, body) = reply;
    assert_eq!(*status, StatusCode::OK, "{body}");
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id && s["type"] == kind),
        "no {kind} storage {id} in {body}"
    );
}

/// Asserts that `GET /api/storages/types` (this reply) names `kind` with Label Studio's `title`.
#[track_caller]
pub fn assert_lists_type(reply: &Reply, kind: &str, title: &str) {
    let (status, types) = reply;
    assert_eq!(*status, StatusCode::OK, "{types}");
    assert!(
        types
            .as_array()
            .unwrap()
            .contains(&json!({"name": kind, "title": title})),
        "{types}"
    );
}
