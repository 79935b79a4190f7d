//! Redis source and target storages against a real Redis server (127.0.0.1:6379, or the
//! `host:port` in `LABELPORT_TEST_REDIS`). Every test writes only keys that contain its own id,
//! in database 0 or 3-9 (1 and 2 are the storages' defaults and are never written), and removes
//! them when it ends, so the tests run in parallel. Without a reachable server the tests are
//! skipped with a line on stderr, unless `LABELPORT_TEST_REDIS` names one.

use std::io::Write;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Reply, Server, TEXT_CONFIG, assert_error, choice_result, for_each_engine, non_field_error};
use crate::storage_helpers::{
    Guarded, assert_lists_type, assert_traceback_names, chosen, counts, created_id, eventually, sync, task_texts,
    tasks_per_key, wait_final,
};

/// The databases the tests may write to.
const TEST_DATABASES: [i64; 8] = [0, 3, 4, 5, 6, 7, 8, 9];

/// The Redis server the tests talk to.
#[derive(Clone)]
struct RedisEnv {
    host: String,
    port: u16,
}

static SKIPPED_REDIS: std::sync::Once = std::sync::Once::new();

/// The test Redis server, or `None` (and one line on stderr) when none answers.
fn redis_env() -> Option<RedisEnv> {
    let configured = std::env::var("LABELPORT_TEST_REDIS").ok().filter(|v| !v.is_empty());
    let address = configured.clone().unwrap_or_else(|| "127.0.0.1:6379".to_string());
    let (host, port) = address.rsplit_once(':').expect("LABELPORT_TEST_REDIS is host:port");
    let env = RedisEnv {
        host: host.to_string(),
        port: port.parse().expect("LABELPORT_TEST_REDIS is host:port"),
    };
    let answers = env
        .connection(0)
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok();
    match (answers, configured) {
        (true, _) => Some(env),
        (false, Some(address)) => panic!("LABELPORT_TEST_REDIS={address} does not answer PING"),
        (false, None) => {
            SKIPPED_REDIS.call_once(|| {
                // Written to stderr directly, so the test harness's output capture does not hide it.
                let _ = writeln!(
                    std::io::stderr(),
                    "no Redis server answers on 127.0.0.1:6379 and LABELPORT_TEST_REDIS is not set: the Redis \
                     integration tests were skipped"
                );
            });
            None
        }
    }
}

impl RedisEnv {
    fn connection(&self, db: i64) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(format!("redis://{}:{}/{db}", self.host, self.port))?;
        client.get_connection_with_timeout(Duration::from_secs(2))
    }

    /// A fresh key space: keys containing a new id, removed when dropped.
    fn keys(&self) -> Keys {
        Keys {
            env: self.clone(),
            id: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    /// A storage create request for this server: the connection fields plus `extra`.
    fn storage(&self, project: i64, db: Option<i64>, path: &str, extra: Value) -> Value {
        let mut body = json!({
            "project": project,
            "host": self.host,
            "port": self.port.to_string(),
            "path": path,
        });
        let map = body.as_object_mut().unwrap();
        if let Some(db) = db {
            map.insert("db".into(), json!(db));
        }
        for (key, value) in extra.as_object().unwrap() {
            map.insert(key.clone(), value.clone());
        }
        body
    }

    /// A new ACL user that may do everything, with a random password; deleted when dropped.
    fn acl_user(&self) -> AclUser {
        let user = AclUser {
            env: self.clone(),
            name: format!("lp-test-{}", uuid::Uuid::new_v4().simple()),
            password: format!("pw-{}", uuid::Uuid::new_v4().simple()),
        };
        let mut connection = self.connection(0).unwrap();
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg(&user.name)
            .arg("on")
            .arg(format!(">{}", user.password))
            .arg("~*")
            .arg("+@all")
            .query::<()>(&mut connection)
            .unwrap();
        user
    }
}

/// The keys of one test: each contains `id`. The usual prefix is `lp-test-<id>:`.
struct Keys {
    env: RedisEnv,
    id: String,
}

impl Keys {
    fn prefix(&self) -> String {
        format!("lp-test-{}:", self.id)
    }

    fn set(&self, db: i64, key: &str, value: impl AsRef<[u8]>) {
        assert!(key.contains(&self.id), "a test key must contain the test's id: {key}");
        let mut connection = self.env.connection(db).unwrap();
        redis::cmd("SET")
            .arg(key)
            .arg(value.as_ref())
            .query::<()>(&mut connection)
            .unwrap();
    }

    fn push_list(&self, db: i64, key: &str, items: &[&str]) {
        assert!(key.contains(&self.id), "a test key must contain the test's id: {key}");
        let mut connection = self.env.connection(db).unwrap();
        redis::cmd("RPUSH")
            .arg(key)
            .arg(items)
            .query::<i64>(&mut connection)
            .unwrap();
    }

    fn get(&self, db: i64, key: &str) -> Option<String> {
        let mut connection = self.env.connection(db).unwrap();
        redis::cmd("GET").arg(key).query(&mut connection).unwrap()
    }

    /// A value parsed as JSON, `None` while it is missing.
    fn get_json(&self, db: i64, key: &str) -> Option<Value> {
        self.get(db, key)
            .map(|text| serde_json::from_str(&text).unwrap_or_else(|e| panic!("{key} is not JSON ({e}): {text}")))
    }
}

impl Drop for Keys {
    /// Removes every key containing the test's id from the test databases.
    fn drop(&mut self) {
        for db in TEST_DATABASES {
            let Ok(mut connection) = self.env.connection(db) else {
                return;
            };
            let pattern = format!("*{}*", self.id);
            let mut cursor = 0u64;
            loop {
                let Ok((next, keys)) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query::<(u64, Vec<Vec<u8>>)>(&mut connection)
                else {
                    break;
                };
                if !keys.is_empty() {
                    let _ = redis::cmd("DEL").arg(&keys).query::<i64>(&mut connection);
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
    }
}

/// An ACL user of the test server.
struct AclUser {
    env: RedisEnv,
    name: String,
    password: String,
}

impl Drop for AclUser {
    fn drop(&mut self) {
        if let Ok(mut connection) = self.env.connection(0) {
            let _ = redis::cmd("ACL")
                .arg("DELUSER")
                .arg(&self.name)
                .query::<i64>(&mut connection);
        }
    }
}

/// The ids of a storage list.
#[track_caller]
fn ids_of(reply: &Reply) -> Vec<i64> {
    assert_eq!(reply.0, StatusCode::OK, "{}", reply.1);
    reply
        .1
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {}", reply.1))
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect()
}

// ------------------------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storages_never_show_the_password() {
    let Some(env) = redis_env() else { return };
    for_each_engine(|server| password_never_shown(server, env.clone())).await;
}

async fn password_never_shown(server: Server, env: RedisEnv) {
    let keys = env.keys();
    let user = env.acl_user();
    let prefix = keys.prefix();
    keys.set(3, &format!("{prefix}a"), r#"{"text": "a"}"#);
    let project = server.project("Redis secrets", TEXT_CONFIG).await;
    let api = Guarded {
        api: &server.api,
        secrets: vec![user.password.clone()],
        fields: &["password"],
    };
    let login = json!({"username": user.name, "password": user.password});

    let reply = api
        .post_json(
            "/api/storages/redis",
            env.storage(project, Some(3), &prefix, json!({"title": "Source"}).merge(&login)),
        )
        .await;
    let id = created_id(&reply);
    let created = &reply.1;
    assert_eq!(created["type"], "redis");
    assert_eq!(created["project"], project);
    assert_eq!(created["host"], env.host.as_str());
    assert_eq!(created["port"], env.port.to_string());
    assert_eq!(created["db"], 3);
    assert_eq!(created["path"], prefix.as_str());
    assert_eq!(created["username"], user.name.as_str());
    assert_eq!(created["status"], "initialized");
    let path = format!("/api/storages/redis/{id}");

    assert_eq!(
        ids_of(&api.get(&format!("/api/storages/redis?project={project}")).await),
        [id]
    );
    assert_eq!(
        ids_of(&api.get(&format!("/api/storages/?project={project}")).await),
        [id]
    );
    assert_lists_type(&api.get("/api/storages/types").await, "redis", "Redis");
    let (status, got) = api.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!((got["id"].as_i64(), &got["title"]), (Some(id), &json!("Source")));
    assert_eq!(got["username"], user.name.as_str());

    let (status, patched) = api.patch_json(&path, json!({"title": "Renamed"})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["title"], "Renamed");
    let (status, body) = api
        .post_json("/api/storages/redis/validate", json!({"id": id, "project": project}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The stored password is the one used: the sync logs in as the ACL user.
    let done = api.sync(&path).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["last_sync_count"], 1, "{done}");

    let reply = api
        .post_json(
            "/api/storages/export/redis",
            env.storage(project, Some(4), &format!("{prefix}out"), login.clone()),
        )
        .await;
    let export_id = created_id(&reply);
    let export_path = format!("/api/storages/export/redis/{export_id}");
    let (status, got) = api.get(&export_path).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["db"], 4);
    assert_eq!(
        ids_of(&api.get(&format!("/api/storages/export/redis?project={project}")).await),
        [export_id]
    );
    assert_eq!(
        ids_of(&api.get(&format!("/api/storages/export?project={project}")).await),
        [export_id]
    );

    for path in [&path, &export_path] {
        let (status, body) = api.delete(path).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert_error(&api.get(path).await, StatusCode::NOT_FOUND);
    }
}

/// Merges the members of another JSON object into a copy of this one.
trait Merge {
    fn merge(self, other: &Value) -> Value;
}

impl Merge for Value {
    fn merge(mut self, other: &Value) -> Value {
        let map = self.as_object_mut().unwrap();
        for (key, value) in other.as_object().unwrap() {
            map.insert(key.clone(), value.clone());
        }
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_imports_values_under_the_prefix_reports_bad_keys_and_resync_creates_nothing() {
    let Some(env) = redis_env() else { return };
    for_each_engine(|server| values_under_prefix(server, env.clone())).await;
}

async fn values_under_prefix(server: Server, env: RedisEnv) {
    let keys = env.keys();
    let prefix = keys.prefix();
    let key = |name: &str| format!("{prefix}{name}");
    keys.set(3, &key("object"), r#"{"text": "object"}"#);
    keys.set(
        3,
        &key("array"),
        r#"[{"text": "array 1"}, {"data": {"text": "array 2"}}]"#,
    );
    keys.set(3, &key("lines"), "{\"text\": \"line 1\"}\n{\"text\": \"line 2\"}\n");
    keys.set(3, &key("not-json"), "hello, this is not JSON");
    keys.push_list(3, &key("list"), &[r#"{"text": "in a list"}"#]);
    // Outside the prefix (the prefix without its final colon, then more).
    keys.set(3, &format!("lp-test-{}-outside", keys.id), r#"{"text": "outside"}"#);
    // The same prefix in another database.
    keys.set(4, &key("elsewhere"), r#"{"text": "elsewhere"}"#);
    let project = server.project("Redis values", TEXT_CONFIG).await;
    let id = created_id(
        &server
            .post_json("/api/storages/redis", env.storage(project, Some(3), &prefix, json!({})))
            .await,
    );
    let path = format!("/api/storages/redis/{id}");

    let first = sync(&server, &path).await;
    assert_eq!(first["status"], "completed_with_errors", "{first}");
    assert_eq!(first["last_sync_count"], 5, "{first}");
    assert_eq!(first["meta"]["objects_failed"], 2, "{first}");
    let good = [key("object"), key("array"), key("lines")];
    let good: Vec<&str> = good.iter().map(String::as_str).collect();
    assert_traceback_names(&first, &[&key("not-json"), &key("list")], &good);
    assert_eq!(
        tasks_per_key(&server, project).await,
        counts(&[(&key("object"), 1), (&key("array"), 2), (&key("lines"), 2)])
    );
    assert_eq!(
        task_texts(&server, project).await,
        ["array 1", "array 2", "line 1", "line 2", "object"]
    );

    let again = sync(&server, &path).await;
    assert_eq!(again["last_sync_count"], 0, "{again}");
    assert_eq!(again["meta"]["tasks_existed"], 3, "{again}");
    assert_eq!(server.task_total(project).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_uses_scan_never_keys() {
    let Some(env) = redis_env() else { return };
    for_each_engine(|server| scan_not_keys(server, env.clone())).await;
}

/// How many times the server has run `command` since its statistics were last reset.
fn command_calls(env: &RedisEnv, command: &str) -> u64 {
    let mut connection = env.connection(0).unwrap();
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut connection).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

async fn scan_not_keys(server: Server, env: RedisEnv) {
    let keys = env.keys();
    let prefix = keys.prefix();
    for i in 0..3 {
        keys.set(7, &format!("{prefix}{i}"), json!({ "text": i.to_string() }).to_string());
    }
    let project = server.project("Redis scan", TEXT_CONFIG).await;
    let id = created_id(
        &server
            .post_json("/api/storages/redis", env.storage(project, Some(7), &prefix, json!({})))
            .await,
    );
    // No test runs KEYS, so any call during the sync is the server's.
    let (keys_before, scans_before) = (command_calls(&env, "keys"), command_calls(&env, "scan"));
    let done = sync(&server, &format!("/api/storages/redis/{id}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["last_sync_count"], 3, "{done}");
    assert_eq!(command_calls(&env, "keys"), keys_before, "KEYS was called");
    assert!(command_calls(&env, "scan") > scans_before, "SCAN was not called");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regex_filter_applies_to_whole_keys() {
    let Some(env) = redis_env() else { return };
    for_each_engine(|server| regex_filter(server, env.clone())).await;
}

async fn regex_filter(server: Server, env: RedisEnv) {
    let keys = env.keys();
    let prefix = keys.prefix();
    for name in ["img/1", "img/2", "doc/1"] {
        keys.set(4, &format!("{prefix}{name}"), json!({ "text": name }).to_string());
    }
    let create = |project: i64, regex: String| {
        let body = env.storage(project, Some(4), &prefix, json!({ "regex_filter": regex }));
        let server = &server;
        async move { created_id(&server.post_json("/api/storages/redis", body).await) }
    };

    let project = server.project("Redis regex", TEXT_CONFIG).await;
    let id = create(project, format!("{}img/.*", regex::escape(&prefix))).await;
    let done = sync(&server, &format!("/api/storages/redis/{id}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["last_sync_count"], 2, "{done}");
    assert_eq!(task_texts(&server, project).await, ["img/1", "img/2"]);

    // Anchored at the start of the key, which begins with the prefix.
    let other = server.project("Redis regex anchored", TEXT_CONFIG).await;
    let id = create(other, "img/.*".to_string()).await;
    let done = sync(&server, &format!("/api/storages/redis/{id}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["last_sync_count"], 0, "{done}");
    assert_eq!(server.task_total(other).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_0_works() {
    let Some(env) = redis_env() else { return };
    for_each_engine(|server| database_0(server, env.clone())).await;
}

async fn database_0(server: Server, env: RedisEnv) {
    let keys = env.keys();
    let prefix = keys.prefix();
    keys.set(0, &format!("{prefix}zero"), r#"{"text": "from db 0"}"#);
    let project = server.project("Redis db 0", TEXT_CONFIG).await;
    let body = env.storage(project, Some(0), &prefix, json!({}));
    let (status, reply) = server.post_json("/api/storages/redis/validate", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let reply = server.post_json("/api/storages/redis", body).await;
    let id = created_id(&reply);
    assert_eq!(reply.1["db"], 0, "{}", reply.1);
    let path = format!("/api/storages/redis/{id}");
    assert_eq!(server.get(&path).await.1["db"], 0);
    let done = sync(&server, &path).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(task_texts(&server, project).await, ["from db 0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glob_characters_in_the_prefix_match_literally() {
    let Some(env) = redis_env() else { return };
    for_each_engine(|server| glob_prefix(server, env.clone())).await;
}

async fn glob_prefix(server: Server, env: RedisEnv) {
    let keys = env.keys();
    let id = &keys.id;
    let prefix = format!("lp[1]*?\\-{id}:");
    keys.set(5, &format!("{prefix}a"), r#"{"text": "literal"}"#);
    // Keys the prefix would match as a glob pattern: `[1]` is `1`, `*` anything, `?` one
    // character, `\-` a dash.
    keys.set(5, &format!("lp1zz-{id}:b"), r#"{"text": "glob 1"}"#);
    keys.set(5, &format!("lp1-{id}:c"), r#"{"text": "glob 2"}"#);
    keys.set(5, &format!("lp[1]*?-{id}:d"), r#"{"text": "no backslash"}"#);
    let project = server.project("Redis glob", TEXT_CONFIG).await;
    let storage = created_id(
        &server
            .post_json("/api/storages/redis", env.storage(project, Some(5), &prefix, json!({})))
            .await,
    );
    let done = sync(&server, &format!("/api/storages/redis/{storage}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(task_texts(&server, project).await, ["literal"]);
    assert_eq!(
        tasks_per_key(&server, project).await,
        counts(&[(&format!("{prefix}a"), 1)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_storage_follows_annotations_under_the_path() {
    let Some(env) = redis_env() else { return };
    for_each_engine(|server| target_storage(server, env.clone())).await;
}

async fn target_storage(server: Server, env: RedisEnv) {
    let keys = env.keys();
    let out = format!("{}out", keys.prefix());
    let project = server.project("Redis target", TEXT_CONFIG).await;
    let task = server.import(project, json!([{"text": "hello"}])).await[0];
    let first = server.annotate(task, "cat").await["id"].as_i64().unwrap();

    let reply = server
        .post_json(
            "/api/storages/export/redis",
            env.storage(project, Some(6), &out, json!({"can_delete_objects": true})),
        )
        .await;
    let id = created_id(&reply);
    assert_eq!(reply.1["can_delete_objects"], true);
    let path = format!("/api/storages/export/redis/{id}");
    let initial = wait_final(&server, &path).await;
    assert_eq!(initial["status"], "completed", "{initial}");
    // The annotation's own on-save write may find the new storage before this sync does; then
    // the sync has nothing left to write. Either way the object is there when it completes.
    assert!(matches!(initial["last_sync_count"].as_i64(), Some(0 | 1)), "{initial}");
    let first_key = format!("{out}/{first}");
    let document = keys
        .get_json(6, &first_key)
        .unwrap_or_else(|| panic!("{first_key} was not written in db 6"));
    assert_eq!(document["id"], first);
    assert_eq!(document["task"]["id"], task);
    assert_eq!(document["task"]["data"]["text"], "hello");
    assert_eq!(chosen(&document), json!(["cat"]));
    assert_eq!(keys.get(2, &first_key), None, "written to the default db, not db 6");

    // A new annotation is written on save, rewritten when changed, and deleted with it.
    let second = server.annotate(task, "dog").await["id"].as_i64().unwrap();
    let key = format!("{out}/{second}");
    let document = eventually(&format!("writing {key}"), || keys.get_json(6, &key)).await;
    assert_eq!(document["id"], second);
    assert_eq!(document["task"]["id"], task);
    assert_eq!(chosen(&document), json!(["dog"]));
    let (status, body) = server
        .patch_json(
            &format!("/api/annotations/{second}/"),
            json!({"result": [choice_result("cat")]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(&format!("rewriting {key}"), || {
        keys.get_json(6, &key).filter(|d| chosen(d) == json!(["cat"]))
    })
    .await;
    let (status, body) = server.delete(&format!("/api/annotations/{second}/")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    eventually(&format!("deleting {key}"), || keys.get(6, &key).is_none().then_some(())).await;
    assert!(keys.get(6, &first_key).is_some(), "the other annotation stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_keep_tasks_in_db_1_and_annotations_in_db_2() {
    let Some(env) = redis_env() else { return };
    for_each_engine(|server| default_databases(server, env.clone())).await;
}

async fn default_databases(server: Server, env: RedisEnv) {
    let keys = env.keys();
    // No annotations: the export sync that follows creation writes nothing to db 2.
    let project = server.project("Redis defaults", TEXT_CONFIG).await;
    for (kind, db) in [("redis", 1), ("export/redis", 2)] {
        let reply = server
            .post_json(
                &format!("/api/storages/{kind}"),
                env.storage(project, None, &keys.prefix(), json!({})),
            )
            .await;
        let id = created_id(&reply);
        assert_eq!(reply.1["db"], db, "{kind}: {}", reply.1);
        let (status, got) = server.get(&format!("/api/storages/{kind}/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{got}");
        assert_eq!(got["db"], db, "{kind}: {got}");
        let (status, list) = server.get(&format!("/api/storages/{kind}?project={project}")).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list[0]["db"], db, "{kind}: {list}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_problems_are_400_with_a_clear_message() {
    let Some(env) = redis_env() else { return };
    for_each_engine(|server| connection_problems(server, env.clone())).await;
}

async fn connection_problems(server: Server, env: RedisEnv) {
    let keys = env.keys();
    let user = env.acl_user();
    let project = server.project("Redis checks", TEXT_CONFIG).await;
    let prefix = keys.prefix();

    // Nothing listens on port 1.
    let unreachable = RedisEnv {
        host: "127.0.0.1".into(),
        port: 1,
    };
    for endpoint in [
        "/api/storages/redis",
        "/api/storages/redis/validate",
        "/api/storages/export/redis",
        "/api/storages/export/redis/validate",
    ] {
        let started = Instant::now();
        let reply = server
            .post_json(endpoint, unreachable.storage(project, Some(3), &prefix, json!({})))
            .await;
        let message = non_field_error(&reply);
        assert!(
            message.contains("Can't connect to Redis server"),
            "{endpoint}: {message}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{endpoint} took {:?}",
            started.elapsed()
        );
    }

    let login = |password: &str| json!({"username": user.name, "password": password});
    let wrong = "not-the-password";
    for endpoint in ["/api/storages/redis", "/api/storages/redis/validate"] {
        let reply = server
            .post_json(endpoint, env.storage(project, Some(3), &prefix, login(wrong)))
            .await;
        let message = non_field_error(&reply);
        assert!(
            message.contains("Can't connect to Redis server"),
            "{endpoint}: {message}"
        );
        assert!(!message.contains(wrong), "{message}");
    }
    let reply = server
        .post_json(
            "/api/storages/redis",
            env.storage(project, Some(3), &prefix, login(&user.password)),
        )
        .await;
    let id = created_id(&reply);

    // Changing the password to a wrong one is checked too, and not saved.
    let path = format!("/api/storages/redis/{id}");
    let reply = server.patch_json(&path, json!({"password": wrong})).await;
    assert!(non_field_error(&reply).contains("Can't connect to Redis server"));
    let (status, body) = server
        .post_json("/api/storages/redis/validate", json!({"id": id, "project": project}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connections_trust_the_given_ca() {
    let port = std::env::var("LABELPORT_TEST_REDIS_TLS_PORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok());
    let ca = std::env::var("LABELPORT_TEST_REDIS_TLS_CA")
        .ok()
        .and_then(|path| std::fs::read_to_string(path).ok());
    let (Some(port), Some(ca)) = (port, ca) else {
        let _ = writeln!(
            std::io::stderr(),
            "LABELPORT_TEST_REDIS_TLS_PORT/LABELPORT_TEST_REDIS_TLS_CA are not set: the Redis TLS test was skipped"
        );
        return;
    };
    for_each_engine(|server| tls(server, port, ca.clone())).await;
}

async fn tls(server: Server, port: u16, ca: String) {
    let prefix = format!("lp-tls-{}:", uuid::Uuid::new_v4().simple());
    let seed = labelport::storage::redis::RedisStorage::new(labelport::storage::redis::RedisConfig {
        host: "127.0.0.1".into(),
        port,
        db: 3,
        username: None,
        password: None,
        tls: true,
        tls_ca_cert: Some(ca.clone()),
    })
    .unwrap();
    use labelport::storage::Storage as _;
    let key = format!("{prefix}1");
    seed.put(&key, bytes::Bytes::from_static(br#"{"text": "over tls"}"#))
        .await
        .unwrap();

    let project = server.project("Redis TLS", TEXT_CONFIG).await;
    let body = |extra: Value| {
        let mut body =
            json!({"project": project, "host": "127.0.0.1", "port": port.to_string(), "db": 3, "path": prefix});
        for (name, value) in extra.as_object().unwrap() {
            body[name] = value.clone();
        }
        body
    };
    let reply = server
        .post_json("/api/storages/redis", body(json!({"use_tls": true, "tls_ca_cert": ca})))
        .await;
    let id = created_id(&reply);
    assert_eq!(reply.1["use_tls"], true, "{}", reply.1);
    let done = sync(&server, &format!("/api/storages/redis/{id}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(task_texts(&server, project).await, ["over tls"]);

    // Without the CA the server's certificate is not trusted; without TLS the server does not talk.
    for extra in [json!({"use_tls": true}), json!({"use_tls": false})] {
        let (status, reply) = server
            .post_json("/api/storages/redis/validate", body(extra.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}: {reply}");
        let message = reply["validation_errors"]["non_field_errors"][0]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains("Can't connect to Redis server"), "{extra}: {reply}");
    }
    seed.delete(&key).await.unwrap();
}
