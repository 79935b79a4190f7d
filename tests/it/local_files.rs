//! Local-files source and target storages, and `/data/local-files/?d=…`. The document root is one
//! fresh folder for the whole test binary (`LOCAL_FILES_DOCUMENT_ROOT`, with serving enabled),
//! set once before any test uses it because the server reads these variables on every call and
//! the tests run in parallel threads; each test works in its own sub-folder. Serving switched
//! off is covered by the unit tests of `check_folder`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Api, Server, TEXT_CONFIG, choice_result, for_each_engine, non_field_error};
use crate::storage_helpers::{
    IMAGE_CONFIG, assert_serves_range, assert_traceback_names, chosen, created_id, eventually, project_tasks, sync,
    task_texts, wait_final,
};

/// The document root of this test binary, created (empty) and exported on first use.
fn document_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        remove_roots_of_finished_runs();
        let root = std::env::temp_dir().join(format!("labelport-it-docroot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        // SAFETY: set once, before any test of this module starts a server that reads them; Rust's
        // own environment reads (the only readers of these variables) take the same lock.
        unsafe {
            std::env::set_var("LOCAL_FILES_SERVING_ENABLED", "true");
            std::env::set_var("LOCAL_FILES_DOCUMENT_ROOT", &root);
        }
        root
    })
}

/// Removes the (empty) document roots earlier test binaries left, once their process is gone.
fn remove_roots_of_finished_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix("labelport-it-docroot-") else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            // Only an empty folder is removed: each test removes its own sub-folder.
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// One test's sub-folder of the document root, removed when dropped.
struct Area {
    /// Relative to the document root.
    relative: String,
    dir: PathBuf,
}

impl Area {
    fn new() -> Area {
        let relative = format!("t-{}", uuid::Uuid::new_v4().simple());
        let dir = document_root().join(&relative);
        std::fs::create_dir_all(&dir).unwrap();
        Area { relative, dir }
    }

    /// The absolute path of `name` inside the area.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A folder inside the area (created), as an absolute path string.
    fn folder(&self, name: &str) -> String {
        let path = self.path(name);
        std::fs::create_dir_all(&path).unwrap();
        path.display().to_string()
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    /// The `d` value naming `name` (relative to the document root).
    fn d(&self, name: &str) -> String {
        format!("{}/{name}", self.relative)
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A folder next to (outside) the document root holding a secret file; removed when dropped.
struct Outside {
    dir: PathBuf,
    secret: String,
}

impl Outside {
    fn new() -> Outside {
        let id = uuid::Uuid::new_v4().simple();
        let dir = std::env::temp_dir().join(format!("labelport-it-outside-{}-{id}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = format!("the secret {id}");
        std::fs::write(dir.join("secret.txt"), &secret).unwrap();
        Outside { dir, secret }
    }

    fn name(&self) -> String {
        self.dir.file_name().unwrap().to_string_lossy().to_string()
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A local storage create request for `path`, plus `extra`.
fn storage(project: i64, path: &str, extra: Value) -> Value {
    let mut body = json!({"project": project, "path": path});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

/// GET of `/data/local-files/?d=<query>`, the query sent exactly as given.
async fn fetch(api: &Api, query: &str) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let response = api
        .raw(Method::GET, &format!("/data/local-files/?d={query}"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

/// Asserts a request for `query` is refused (403 or 404) without any of `never` in the body.
#[track_caller]
fn assert_refused(query: &str, reply: &(StatusCode, reqwest::header::HeaderMap, Vec<u8>), never: &[&str]) {
    let (status, _, body) = reply;
    let text = String::from_utf8_lossy(body);
    assert!(
        matches!(*status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{query}: {status} {text}"
    );
    for secret in never {
        assert!(!text.contains(secret), "{query} returned the file: {text}");
    }
}

/// The names in a folder, sorted.
fn entries(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect()
}

// ------------------------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_path_must_be_an_existing_folder_under_the_document_root() {
    document_root();
    for_each_engine(folder_checks).await;
}

async fn folder_checks(server: Server) {
    let area = Area::new();
    let outside = Outside::new();
    let root = document_root().display().to_string();
    let project = server.project("Local checks", TEXT_CONFIG).await;
    let data = area.folder("data");

    for endpoint in ["/api/storages/localfiles", "/api/storages/export/localfiles"] {
        let validate = format!("{endpoint}/validate");
        for url in [endpoint, validate.as_str()] {
            let outside_root = server
                .post_json(url, storage(project, &outside.dir.display().to_string(), json!({})))
                .await;
            let message = non_field_error(&outside_root);
            assert!(message.contains("LOCAL_FILES_DOCUMENT_ROOT"), "{url}: {message}");

            let message = non_field_error(&server.post_json(url, storage(project, &root, json!({}))).await);
            assert!(message.contains("LOCAL_FILES_DOCUMENT_ROOT"), "{url}: {message}");

            let missing = area.path("missing").display().to_string();
            let message = non_field_error(&server.post_json(url, storage(project, &missing, json!({}))).await);
            assert!(message.contains("does not exist"), "{url}: {message}");

            // `..` that leaves the root, to a folder that exists.
            let escaping = format!("{}/../../{}", area.dir.display(), outside.name());
            let message = non_field_error(&server.post_json(url, storage(project, &escaping, json!({}))).await);
            assert!(message.contains("LOCAL_FILES_DOCUMENT_ROOT"), "{url}: {message}");

            let relative = format!("{}/data", area.relative);
            let message = non_field_error(&server.post_json(url, storage(project, &relative, json!({}))).await);
            assert!(message.contains("absolute"), "{url}: {message}");
        }
        // `..` that stays inside is normalized away.
        let winding = format!("{}/data/sub/../", area.dir.display());
        let reply = server.post_json(endpoint, storage(project, &winding, json!({}))).await;
        created_id(&reply);
        assert_eq!(reply.1["path"], data.as_str(), "{}", reply.1);
        assert_eq!(reply.1["type"], "localfiles");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_sync_reads_the_folder_reports_bad_files_and_resync_creates_nothing() {
    document_root();
    for_each_engine(json_sync).await;
}

async fn json_sync(server: Server) {
    let area = Area::new();
    area.write("tasks/a.json", r#"{"text": "a"}"#);
    area.write("tasks/b.jsonl", "{\"text\": \"b1\"}\n{\"text\": \"b2\"}\n");
    area.write("tasks/bad.json", "{oops");
    area.write("tasks/sub/c.json", r#"{"text": "c"}"#);
    area.write("elsewhere.json", r#"{"text": "outside the storage folder"}"#);
    let project = server.project("Local JSON", TEXT_CONFIG).await;
    let reply = server
        .post_json(
            "/api/storages/localfiles",
            storage(project, &area.folder("tasks"), json!({})),
        )
        .await;
    let id = created_id(&reply);
    assert_eq!(reply.1["recursive_scan"], false);
    let path = format!("/api/storages/localfiles/{id}");

    let first = sync(&server, &path).await;
    assert_eq!(first["status"], "completed_with_errors", "{first}");
    assert_eq!(first["last_sync_count"], 3, "{first}");
    assert_eq!(first["meta"]["objects_failed"], 1, "{first}");
    assert_traceback_names(&first, &["bad.json"], &["a.json", "b.jsonl"]);
    assert_eq!(task_texts(&server, project).await, ["a", "b1", "b2"]);

    let again = sync(&server, &path).await;
    assert_eq!(again["last_sync_count"], 0, "{again}");
    assert_eq!(server.task_total(project).await, 3);

    // Recursive: only sub/c.json is new.
    let (status, patched) = server.patch_json(&path, json!({"recursive_scan": true})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let recursive = sync(&server, &path).await;
    assert_eq!(recursive["status"], "completed_with_errors", "{recursive}");
    assert_eq!(recursive["last_sync_count"], 1, "{recursive}");
    assert_eq!(task_texts(&server, project).await, ["a", "b1", "b2", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regex_filter_applies_to_the_path_relative_to_the_storage_folder() {
    document_root();
    for_each_engine(regex_filter).await;
}

async fn regex_filter(server: Server) {
    let area = Area::new();
    area.write("tasks/a.json", r#"{"text": "a"}"#);
    area.write("tasks/sub/c.json", r#"{"text": "c"}"#);
    area.write("tasks/sub/d.json", r#"{"text": "d"}"#);
    let folder = area.folder("tasks");
    for (regex, expected) in [
        (r"sub/c\.json", vec!["c"]),
        (r".*\.json", vec!["a", "c", "d"]),
        (r"c\.json", vec![]),
    ] {
        let project = server.project("Local regex", TEXT_CONFIG).await;
        let id = created_id(
            &server
                .post_json(
                    "/api/storages/localfiles",
                    storage(project, &folder, json!({"recursive_scan": true, "regex_filter": regex})),
                )
                .await,
        );
        let done = sync(&server, &format!("/api/storages/localfiles/{id}")).await;
        assert_eq!(done["status"], "completed", "{regex}: {done}");
        assert_eq!(task_texts(&server, project).await, expected, "{regex}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_mode_links_are_served_with_range_etag_and_304() {
    document_root();
    for_each_engine(blob_mode).await;
}

/// A project whose local-files source storage over `media/` makes one task per file matching
/// `regex`, synced; returns the one task it must have made.
async fn one_blob_task(server: &Server, area: &Area, title: &str, regex: &str) -> Value {
    let project = server.project(title, IMAGE_CONFIG).await;
    let id = created_id(
        &server
            .post_json(
                "/api/storages/localfiles",
                storage(
                    project,
                    &area.folder("media"),
                    json!({"use_blob_urls": true, "regex_filter": regex}),
                ),
            )
            .await,
    );
    let done = sync(server, &format!("/api/storages/localfiles/{id}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["last_sync_count"], 1, "{done}");
    project_tasks(server, project).await.remove(0)
}

async fn blob_mode(server: Server) {
    let area = Area::new();
    let jpeg: Vec<u8> = b"\xff\xd8\xff\xe0 not really a jpeg 0123456789".to_vec();
    area.write("media/a.jpg", &jpeg);
    area.write("media/notes.txt", "notes");
    let task = one_blob_task(&server, &area, "Local blobs", r".*\.jpg").await;
    let url = format!("/data/local-files/?d={}", area.d("media/a.jpg"));
    assert_eq!(task["data"]["image"], url.as_str(), "{task}");
    let (status, raw) = server
        .get(&format!("/api/tasks/{}/?resolve_uri=false", task["id"]))
        .await;
    assert_eq!(status, StatusCode::OK, "{raw}");
    assert_eq!(raw["data"]["image"], url.as_str());

    let response = server.raw(Method::GET, &url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(response.bytes().await.unwrap().as_ref(), jpeg.as_slice());

    assert_serves_range(&server, &url, &jpeg, 4, 9).await;

    let response = server
        .raw(Method::GET, &url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_names_with_special_characters_import_and_serve() {
    document_root();
    for_each_engine(special_names).await;
}

async fn special_names(server: Server) {
    let area = Area::new();
    let image = "odd [1] #2 100% {x}~.jpg";
    area.write(&format!("media/{image}"), "odd bytes");
    area.write("media/plain.jpg", "plain bytes");
    area.write("tasks/tasks [1] 100%41.json", r#"{"text": "special"}"#);

    // Blob mode: the regex sees the file's own name, and the link serves that file.
    let task = one_blob_task(&server, &area, "Local names", r".*\[1\] #2 100%").await;
    assert_eq!(task["storage_filename"], image, "{task}");
    let url = task["data"]["image"].as_str().unwrap_or_else(|| panic!("{task}"));
    let d = url
        .strip_prefix("/data/local-files/?d=")
        .unwrap_or_else(|| panic!("not a local-files link: {url}"));
    let decoded = percent_encoding::percent_decode_str(d).decode_utf8().unwrap();
    assert_eq!(decoded, area.d(&format!("media/{image}")));
    let response = server.raw(Method::GET, url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"odd bytes");

    // JSON mode reads such a file too.
    let project = server.project("Local names JSON", TEXT_CONFIG).await;
    let id = created_id(
        &server
            .post_json(
                "/api/storages/localfiles",
                storage(project, &area.folder("tasks"), json!({})),
            )
            .await,
    );
    let done = sync(&server, &format!("/api/storages/localfiles/{id}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(task_texts(&server, project).await, ["special"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_outside_the_callers_storages_are_never_served() {
    document_root();
    for_each_engine(confinement).await;
}

async fn confinement(server: Server) {
    let area = Area::new();
    let outside = Outside::new();
    let secret = outside.secret.as_str();
    let private = format!("private {}", area.relative);
    area.write("data/a.jpg", "the image");
    area.write("private/p.txt", &private);
    area.write("data-private/p.txt", &private);
    std::os::unix::fs::symlink(outside.dir.join("secret.txt"), area.path("data/link.txt")).unwrap();
    std::os::unix::fs::symlink(&outside.dir, area.path("data/linkdir")).unwrap();
    let project = server.project("Local confinement", IMAGE_CONFIG).await;
    created_id(
        &server
            .post_json(
                "/api/storages/localfiles",
                storage(project, &area.folder("data"), json!({})),
            )
            .await,
    );
    let (status, _, body) = fetch(&server, &area.d("data/a.jpg")).await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, b"the image".as_slice()));

    let o = outside.name();
    let r = &area.relative;
    let never = [secret, private.as_str(), "root:x:0:0"];
    for query in [
        format!("../{o}/secret.txt"),
        format!("{r}/data/../../../{o}/secret.txt"),
        format!("%2e%2e%2f{o}%2fsecret.txt"),
        format!("{r}%2fdata%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f{o}%2fsecret.txt"),
        format!("%252e%252e%252f{o}%252fsecret.txt"),
        "/etc/passwd".to_string(),
        "%2fetc%2fpasswd".to_string(),
        format!("{}/secret.txt", outside.dir.display()),
        format!("{r}/data/link.txt"),
        format!("{r}/data/linkdir/secret.txt"),
        format!("{r}/private/p.txt"),
        format!("{r}/data/../private/p.txt"),
        format!("{r}/data-private/p.txt"),
        format!("{r}/data"),
        String::new(),
    ] {
        assert_refused(&query, &fetch(&server, &query).await, &never);
    }

    // Another organization's storage: each side gets 404 for the other's files.
    let mallory = server.user("mallory@other.example", Some("Other org")).await;
    area.write("mallory/m.txt", "mallory's file");
    let theirs = mallory.project("Mallory's", IMAGE_CONFIG).await;
    created_id(
        &mallory
            .post_json(
                "/api/storages/localfiles",
                storage(theirs, &area.folder("mallory"), json!({})),
            )
            .await,
    );
    let (status, _, body) = fetch(&mallory, &area.d("mallory/m.txt")).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, b"mallory's file".as_slice())
    );
    let reply = fetch(&mallory, &area.d("data/a.jpg")).await;
    assert_eq!(reply.0, StatusCode::NOT_FOUND);
    assert_refused("alice's file", &reply, &["the image"]);
    let reply = fetch(&server, &area.d("mallory/m.txt")).await;
    assert_eq!(reply.0, StatusCode::NOT_FOUND);
    assert_refused("mallory's file", &reply, &["mallory's file"]);

    let (status, _, body) = fetch(&server.anonymous(), &area.d("data/a.jpg")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!String::from_utf8_lossy(&body).contains("the image"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_storage_writes_annotation_files_and_leaves_no_temporary_files() {
    document_root();
    for_each_engine(target_storage).await;
}

async fn target_storage(server: Server) {
    let area = Area::new();
    let folder = area.folder("out");
    let read = |id: i64| -> Option<Value> {
        let bytes = std::fs::read(Path::new(&folder).join(id.to_string())).ok()?;
        Some(serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("file {id} is not JSON: {e}")))
    };
    let project = server.project("Local target", TEXT_CONFIG).await;
    let task = server.import(project, json!([{"text": "hello"}])).await[0];
    let first = server.annotate(task, "cat").await["id"].as_i64().unwrap();

    let reply = server
        .post_json(
            "/api/storages/export/localfiles",
            storage(project, &folder, json!({"can_delete_objects": true})),
        )
        .await;
    let id = created_id(&reply);
    assert_eq!(reply.1["can_delete_objects"], true);
    let initial = wait_final(&server, &format!("/api/storages/export/localfiles/{id}")).await;
    assert_eq!(initial["status"], "completed", "{initial}");
    // The annotation's own on-save write may find the new storage before this sync does; then
    // the sync has nothing left to write. Either way the object is there when it completes.
    assert!(matches!(initial["last_sync_count"].as_i64(), Some(0 | 1)), "{initial}");
    let document = read(first).unwrap_or_else(|| panic!("{folder}/{first} was not written"));
    assert_eq!(document["id"], first);
    assert_eq!(document["task"]["id"], task);
    assert_eq!(document["task"]["data"]["text"], "hello");
    assert_eq!(chosen(&document), json!(["cat"]));
    assert_eq!(entries(&folder), BTreeSet::from([first.to_string()]));

    let second = server.annotate(task, "dog").await["id"].as_i64().unwrap();
    let document = eventually(&format!("writing {second}"), || read(second)).await;
    assert_eq!(chosen(&document), json!(["dog"]));
    let (status, body) = server
        .patch_json(
            &format!("/api/annotations/{second}/"),
            json!({"result": [choice_result("cat")]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(&format!("rewriting {second}"), || {
        read(second).filter(|d| chosen(d) == json!(["cat"]))
    })
    .await;
    assert_eq!(
        entries(&folder),
        BTreeSet::from([first.to_string(), second.to_string()])
    );

    let (status, body) = server.delete(&format!("/api/annotations/{second}/")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    eventually(&format!("deleting {second}"), || read(second).is_none().then_some(())).await;
    assert_eq!(entries(&folder), BTreeSet::from([first.to_string()]));
}
