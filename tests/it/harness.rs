//! Starts the real server on 127.0.0.1:0 against a fresh database of each engine and talks to it
//! over HTTP.

use std::future::Future;
use std::io::Write;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use labelport::api::auth::hash_token;
use labelport::api::{ApiSettings, AppState};
use labelport::db::Db;
use labelport::sync::SyncSettings;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// The request body limit used unless a test asks for another.
pub const DEFAULT_MAX_BODY: usize = 256 * 1024 * 1024;

/// A label configuration with one text object and one choices control.
pub const TEXT_CONFIG: &str = r#"<View><Text name="t" value="$text"/><Choices name="choice" toName="t"><Choice value="cat"/><Choice value="dog"/></Choices></View>"#;

/// One database engine the tests run on.
enum Engine {
    Sqlite,
    Postgres(String),
}

/// A fresh database and what it takes to remove it afterwards.
struct FreshDb {
    db: Db,
    _dir: Option<tempfile::TempDir>,
    /// For PostgreSQL: the admin url and the database name to drop.
    drop: Option<(String, String)>,
}

impl Engine {
    fn name(&self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres(_) => "postgres",
        }
    }

    async fn fresh(&self) -> FreshDb {
        match self {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/it.db", dir.path().display());
                let db = Db::connect(&url).await.unwrap();
                db.migrate().await.unwrap();
                FreshDb {
                    db,
                    _dir: Some(dir),
                    drop: None,
                }
            }
            Engine::Postgres(base) => {
                let name = format!("lp_it_{}", uuid::Uuid::new_v4().simple());
                let admin = Db::connect(base).await.unwrap();
                admin.execute_admin(&format!("CREATE DATABASE {name}")).await.unwrap();
                admin.close().await;
                let (prefix, _) = base.rsplit_once('/').unwrap();
                let db = Db::connect(&format!("{prefix}/{name}")).await.unwrap();
                db.migrate().await.unwrap();
                FreshDb {
                    db,
                    _dir: None,
                    drop: Some((base.clone(), name)),
                }
            }
        }
    }
}

static SKIPPED_POSTGRES: std::sync::Once = std::sync::Once::new();

fn engines() -> Vec<Engine> {
    let mut engines = vec![Engine::Sqlite];
    match std::env::var("LABELPORT_TEST_POSTGRES") {
        Ok(base) if !base.is_empty() => engines.push(Engine::Postgres(base)),
        _ => SKIPPED_POSTGRES.call_once(|| {
            // Written to stderr directly, so the test harness's output capture does not hide it.
            let _ = writeln!(
                std::io::stderr(),
                "LABELPORT_TEST_POSTGRES is not set: PostgreSQL was skipped, the integration tests ran on SQLite only"
            );
        }),
    }
    engines
}

/// Runs `test` once per engine against a freshly started server with the default body limit.
pub async fn for_each_engine<F, Fut>(test: F)
where
    F: Fn(Server) -> Fut,
    Fut: Future<Output = ()>,
{
    for_each_engine_with(DEFAULT_MAX_BODY, test).await;
}

/// Like [`for_each_engine`], with the server's request body limit set to `max_body_bytes`.
pub async fn for_each_engine_with<F, Fut>(max_body_bytes: usize, test: F)
where
    F: Fn(Server) -> Fut,
    Fut: Future<Output = ()>,
{
    for engine in engines() {
        let fresh = engine.fresh().await;
        let db = fresh.db.clone();
        let state = AppState::new(
            db.clone(),
            ApiSettings {
                max_body_bytes,
                frontend_dir: None,
            },
            SyncSettings::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let serving = tokio::spawn(async move {
            labelport::server::serve(listener, state).await.unwrap();
        });
        let base = format!("http://{address}");
        let user = new_user(&db, &base, "alice@example.com", None).await;
        let server = Server {
            db: db.clone(),
            base: base.clone(),
            api: user,
        };
        let outcome = AssertUnwindSafe(test(server)).catch_unwind().await;
        serving.abort();
        let _ = serving.await;
        db.close().await;
        if let Some((admin_url, name)) = &fresh.drop {
            let admin = Db::connect(admin_url).await.unwrap();
            let _ = admin
                .execute_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
            admin.close().await;
        }
        drop(fresh);
        if let Err(panic) = outcome {
            eprintln!("the test failed on {}", engine.name());
            std::panic::resume_unwind(panic);
        }
    }
}

/// Creates a user with a fresh API token and returns a client acting as that user.
async fn new_user(db: &Db, base: &str, email: &str, organization: Option<&str>) -> Api {
    let user = labelport::server::create_user(db, email, None, organization)
        .await
        .unwrap();
    let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
    db.add_token(user.id, &hash_token(&token)).await.unwrap();
    Api {
        base: base.to_string(),
        http: reqwest::Client::new(),
        no_redirect: no_redirect_client(),
        token: Some(token),
        user_id: user.id,
    }
}

/// The running server of one engine, and a client acting as its first user ("alice", in the
/// first organization). `Server` dereferences to that client.
pub struct Server {
    pub db: Db,
    pub base: String,
    pub api: Api,
}

impl std::ops::Deref for Server {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Server {
    /// Another user with a token; `organization` None puts it in alice's organization.
    pub async fn user(&self, email: &str, organization: Option<&str>) -> Api {
        new_user(&self.db, &self.base, email, organization).await
    }

    /// A client that sends no token, or the given raw Authorization header value.
    pub fn anonymous(&self) -> Api {
        Api {
            base: self.base.clone(),
            http: reqwest::Client::new(),
            no_redirect: no_redirect_client(),
            token: None,
            user_id: 0,
        }
    }
}

/// A client acting as one user.
#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
    /// For responses whose redirect is what the test looks at (the storage resolver).
    no_redirect: reqwest::Client,
    token: Option<String>,
    pub user_id: i64,
}

/// A client that hands redirects back instead of following them.
fn no_redirect_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A status and the body read as JSON (`Null` when empty, a string when not JSON).
pub type Reply = (StatusCode, Value);

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

impl Api {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.header("Authorization", format!("Token {token}")),
            None => builder,
        }
    }

    /// A request with this client's token that does not follow redirects, for tests that read
    /// status codes and headers themselves.
    pub fn raw(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.no_redirect.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.header("Authorization", format!("Token {token}")),
            None => builder,
        }
    }

    /// A request with a raw `Authorization` header instead of this client's token.
    pub async fn get_with_authorization(&self, path: &str, authorization: &str) -> Reply {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Authorization", authorization)
            .send()
            .await
            .unwrap();
        reply(response).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        reply(self.request(reqwest::Method::GET, path).send().await.unwrap()).await
    }

    /// GET, returning the body as text (for exports).
    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let response = self.request(reqwest::Method::GET, path).send().await.unwrap();
        let status = response.status();
        (status, response.text().await.unwrap())
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Reply {
        reply(
            self.request(reqwest::Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn patch_json(&self, path: &str, body: Value) -> Reply {
        reply(
            self.request(reqwest::Method::PATCH, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        reply(self.request(reqwest::Method::DELETE, path).send().await.unwrap()).await
    }

    /// POST of a raw body with a content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        let response = self
            .request(reqwest::Method::POST, path)
            .header("Content-Type", content_type)
            .body(body.into())
            .send()
            .await
            .unwrap();
        reply(response).await
    }

    /// POST of a multipart form with one `file` part per `(file name, contents)`.
    pub async fn post_files(&self, path: &str, files: &[(&str, &str)]) -> Reply {
        let mut form = Form::new();
        for (name, contents) in files {
            form = form.part(
                "file",
                Part::bytes(contents.as_bytes().to_vec()).file_name(name.to_string()),
            );
        }
        let response = self
            .request(reqwest::Method::POST, path)
            .multipart(form)
            .send()
            .await
            .unwrap();
        reply(response).await
    }

    /// Creates a project and returns its id.
    pub async fn project(&self, title: &str, label_config: &str) -> i64 {
        let (status, body) = self
            .post_json("/api/projects/", json!({"title": title, "label_config": label_config}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_i64().unwrap()
    }

    /// Imports a JSON body into a project; asserts 201 and returns the new task ids.
    pub async fn import(&self, project: i64, tasks: Value) -> Vec<i64> {
        let (status, body) = self
            .post_json(&format!("/api/projects/{project}/import?return_task_ids=true"), tasks)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["task_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect()
    }

    /// How many tasks a project has, from the task list's `total`.
    pub async fn task_total(&self, project: i64) -> i64 {
        let (status, body) = self.get(&format!("/api/tasks/?project={project}&page_size=1")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["total"].as_i64().unwrap()
    }

    /// One task as `GET /api/tasks/{id}/` returns it.
    pub async fn task(&self, id: i64) -> Value {
        let (status, body) = self.get(&format!("/api/tasks/{id}/")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Creates an annotation choosing `choice` on a task; returns the annotation.
    pub async fn annotate(&self, task: i64, choice: &str) -> Value {
        let (status, body) = self
            .post_json(
                &format!("/api/tasks/{task}/annotations/"),
                json!({"result": [choice_result(choice)]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

/// One result region choosing `choice` in [`TEXT_CONFIG`].
pub fn choice_result(choice: &str) -> Value {
    json!({"from_name": "choice", "to_name": "t", "type": "choices", "value": {"choices": [choice]}})
}

/// Asserts that a body is Label Studio's error shape with this status.
#[track_caller]
pub fn assert_error(reply: &Reply, status: StatusCode) {
    let (actual, body) = reply;
    assert_eq!(*actual, status, "{body}");
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {body}"));
    assert!(object.get("id").is_some_and(Value::is_string), "{body}");
    assert_eq!(object.get("status_code"), Some(&json!(status.as_u16())), "{body}");
    assert!(object.get("version").is_some_and(Value::is_string), "{body}");
    assert!(object.get("detail").is_some_and(Value::is_string), "{body}");
    assert_eq!(object.get("exc_info"), Some(&Value::Null), "{body}");
}

/// The first `non_field_errors` message of a 400 validation error.
#[track_caller]
pub fn non_field_error(reply: &Reply) -> String {
    assert_error(reply, StatusCode::BAD_REQUEST);
    reply.1["validation_errors"]["non_field_errors"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no non_field_errors: {}", reply.1))
        .to_string()
}
