//! `/api/storages/...`: source (import) and target (export) storage connections: list, create,
//! get, update, delete, validate, files preview and sync (spec 1.1-1.4, 2, 6).

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::auth::CurrentUser;
use super::error::{ApiError, ApiResult};
use super::extract::{JsonObject, QueryParams, field};
use super::projects::project_for;
use crate::model::entities::User;
use crate::model::storage::{Direction, StorageRecord, compile_key_filter, listing_prefix};
use crate::storage::{StorageError, StorageErrorKind};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/storages", get(list_all_import))
        .route("/api/storages/types", get(types))
        .route("/api/storages/export", get(list_all_export))
        .route("/api/storages/export/types", get(types))
        .route("/api/storages/{kind}", get(list::<IMPORT>).post(create::<IMPORT>))
        .route("/api/storages/{kind}/validate", post(validate::<IMPORT>))
        .route("/api/storages/{kind}/files", post(files_import))
        .route("/api/storages/{kind}/form", get(form))
        .route(
            "/api/storages/{kind}/{id}",
            get(read::<IMPORT>)
                .patch(update::<IMPORT>)
                .put(update::<IMPORT>)
                .delete(remove::<IMPORT>),
        )
        .route("/api/storages/{kind}/{id}/sync", post(sync::<IMPORT>))
        .route(
            "/api/storages/export/{kind}",
            get(list::<EXPORT>).post(create::<EXPORT>),
        )
        .route("/api/storages/export/{kind}/validate", post(validate::<EXPORT>))
        .route("/api/storages/export/{kind}/form", get(form))
        .route(
            "/api/storages/export/{kind}/{id}",
            get(read::<EXPORT>)
                .patch(update::<EXPORT>)
                .put(update::<EXPORT>)
                .delete(remove::<EXPORT>),
        )
        .route("/api/storages/export/{kind}/{id}/sync", post(sync::<EXPORT>))
}

/// Handlers serve both directions; the const parameter says which (`false` import, `true` export).
const IMPORT: bool = false;
const EXPORT: bool = true;

const fn direction<const IS_EXPORT: bool>() -> Direction {
    if IS_EXPORT {
        Direction::Export
    } else {
        Direction::Import
    }
}

// ---------------------------------------------------------------- field tables

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldType {
    Text,
    Bool,
    Int,
}

/// One configuration field of a storage kind, by its wire name.
struct FieldSpec {
    name: &'static str,
    ty: FieldType,
    default: fn() -> Value,
    /// Write-only: stored, never returned.
    secret: bool,
    import: bool,
    export: bool,
}

const fn text(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        ty: FieldType::Text,
        default: || Value::Null,
        secret: false,
        import: true,
        export: true,
    }
}

const fn secret(name: &'static str) -> FieldSpec {
    FieldSpec {
        secret: true,
        ..text(name)
    }
}

/// Fields every kind has (spec 2.1), then each kind's own (spec 2.2-2.6).
const COMMON_FIELDS: &[FieldSpec] = &[
    text("regex_filter"),
    FieldSpec {
        ty: FieldType::Bool,
        default: || Value::Bool(false),
        ..text("use_blob_urls")
    },
    FieldSpec {
        ty: FieldType::Bool,
        default: || Value::Null,
        import: false,
        ..text("can_delete_objects")
    },
];

const S3_FIELDS: &[FieldSpec] = &[
    text("bucket"),
    text("prefix"),
    secret("aws_access_key_id"),
    secret("aws_secret_access_key"),
    secret("aws_session_token"),
    text("aws_sse_kms_key_id"),
    text("region_name"),
    text("s3_endpoint"),
    FieldSpec {
        ty: FieldType::Bool,
        default: || Value::Bool(true),
        export: false,
        ..text("presign")
    },
    FieldSpec {
        ty: FieldType::Int,
        default: || json!(1),
        export: false,
        ..text("presign_ttl")
    },
    FieldSpec {
        ty: FieldType::Bool,
        default: || Value::Bool(false),
        export: false,
        ..text("recursive_scan")
    },
];

/// The import-only presign and recursion fields of the clouds.
const PRESIGN_TTL: FieldSpec = FieldSpec {
    ty: FieldType::Int,
    default: || json!(1),
    export: false,
    ..text("presign_ttl")
};
const PRESIGN: FieldSpec = FieldSpec {
    ty: FieldType::Bool,
    default: || Value::Bool(true),
    export: false,
    ..text("presign")
};
const RECURSIVE_SCAN: FieldSpec = FieldSpec {
    ty: FieldType::Bool,
    default: || Value::Bool(false),
    export: false,
    ..text("recursive_scan")
};

const GCS_FIELDS: &[FieldSpec] = &[
    text("bucket"),
    text("prefix"),
    secret("google_application_credentials"),
    text("google_project_id"),
    PRESIGN,
    PRESIGN_TTL,
    RECURSIVE_SCAN,
];

const AZURE_FIELDS: &[FieldSpec] = &[
    text("container"),
    text("prefix"),
    // Label Studio hides the account name too.
    secret("account_name"),
    secret("account_key"),
    text("azure_endpoint"),
    PRESIGN,
    PRESIGN_TTL,
    RECURSIVE_SCAN,
];

const REDIS_FIELDS: &[FieldSpec] = &[
    text("path"),
    text("host"),
    text("port"),
    FieldSpec {
        ty: FieldType::Int,
        ..text("db")
    },
    text("username"),
    secret("password"),
    // labelport's additions: TLS (`rediss://`) and a CA to trust for it.
    FieldSpec {
        ty: FieldType::Bool,
        default: || Value::Bool(false),
        ..text("use_tls")
    },
    text("tls_ca_cert"),
];

const LOCAL_FIELDS: &[FieldSpec] = &[
    text("path"),
    FieldSpec {
        ty: FieldType::Bool,
        default: || Value::Bool(false),
        export: false,
        ..text("recursive_scan")
    },
];

/// The kinds served, with their titles (spec 1.1).
const KINDS: &[(&str, &str, &[FieldSpec])] = &[
    ("s3", "AWS S3", S3_FIELDS),
    ("gcs", "Google Cloud Storage", GCS_FIELDS),
    ("azure", "Microsoft Azure", AZURE_FIELDS),
    ("redis", "Redis", REDIS_FIELDS),
    ("localfiles", "Local files", LOCAL_FIELDS),
];

fn kind_fields(kind: &str) -> ApiResult<&'static [FieldSpec]> {
    KINDS
        .iter()
        .find(|(name, _, _)| *name == kind)
        .map(|(_, _, fields)| *fields)
        .ok_or_else(ApiError::not_found)
}

fn fields_of(kind: &str, direction: Direction) -> ApiResult<Vec<&'static FieldSpec>> {
    let own = kind_fields(kind)?;
    Ok(COMMON_FIELDS
        .iter()
        .chain(own.iter())
        .filter(|f| match direction {
            Direction::Import => f.import,
            Direction::Export => f.export,
        })
        .collect())
}

// ---------------------------------------------------------------- wire

/// A storage as Label Studio returns it: secrets absent (not null, not masked).
pub fn storage_to_wire(record: &StorageRecord) -> Value {
    let mut body = json!({
        "id": record.id,
        "type": record.kind,
        "project": record.project_id,
        "title": record.title,
        "description": record.description,
        "created_at": record.created_at,
        "synchronizable": record.synchronizable,
        "last_sync": record.last_sync,
        "last_sync_count": record.last_sync_count,
        "last_sync_job": record.last_sync_job,
        "status": record.status.as_str(),
        "traceback": record.traceback,
        "meta": record.meta,
    });
    let map = body.as_object_mut().expect("a json object");
    if let Ok(fields) = fields_of(&record.kind, record.direction) {
        for spec in fields.into_iter().filter(|f| !f.secret) {
            let value = match (spec.name, record.kind.as_str()) {
                // Label Studio's defaults keep tasks and annotations in different databases.
                ("db", "redis") => record
                    .settings
                    .get("db")
                    .cloned()
                    .unwrap_or_else(|| match record.direction {
                        Direction::Import => json!(1),
                        Direction::Export => json!(2),
                    }),
                _ => record.settings.get(spec.name).cloned().unwrap_or_else(spec.default),
            };
            map.insert(spec.name.to_string(), value);
        }
    }
    body
}

// ---------------------------------------------------------------- request bodies

fn type_matches(ty: FieldType, value: &Value) -> bool {
    match ty {
        FieldType::Text => value.is_string(),
        FieldType::Bool => value.is_boolean(),
        FieldType::Int => value.is_i64(),
    }
}

/// Applies a request body to a record, checking every field; collects all field errors.
fn apply_body(record: &mut StorageRecord, body: &Map<String, Value>) -> ApiResult<()> {
    let mut errors = Map::new();
    for (name, target) in [("title", &mut record.title), ("description", &mut record.description)] {
        match body.get(name) {
            None => {}
            Some(Value::Null) => *target = None,
            Some(Value::String(s)) if name == "title" && s.chars().count() > 256 => {
                errors.insert(
                    name.into(),
                    json!(["Ensure this field has no more than 256 characters."]),
                );
            }
            Some(Value::String(s)) => *target = Some(s.clone()),
            Some(_) => {
                errors.insert(name.into(), json!(["Not a valid string."]));
            }
        }
    }
    if let Some(value) = body.get("synchronizable") {
        match value.as_bool() {
            Some(flag) => record.synchronizable = flag,
            None => {
                errors.insert("synchronizable".into(), json!(["Must be a valid boolean."]));
            }
        }
    }
    for spec in fields_of(&record.kind, record.direction)? {
        let Some(value) = body.get(spec.name) else { continue };
        let target = if spec.secret {
            &mut record.secrets
        } else {
            &mut record.settings
        };
        if value.is_null() {
            target.remove(spec.name);
            continue;
        }
        // Form-encoded clients send numbers and booleans as text; accept the obvious spellings.
        let value = match (spec.ty, value) {
            (FieldType::Text, Value::Number(n)) if spec.name == "port" => Value::String(n.to_string()),
            (FieldType::Int, Value::String(s)) => s.trim().parse::<i64>().map(Value::from).unwrap_or(value.clone()),
            (FieldType::Bool, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => value.clone(),
            },
            _ => value.clone(),
        };
        if !type_matches(spec.ty, &value) {
            let expected = match spec.ty {
                FieldType::Text => "Not a valid string.",
                FieldType::Bool => "Must be a valid boolean.",
                FieldType::Int => "A valid integer is required.",
            };
            errors.insert(spec.name.into(), json!([expected]));
            continue;
        }
        target.insert(spec.name.to_string(), value);
    }
    if record.kind == "localfiles"
        && let Some(path) = record.text("path")
    {
        let normalized = crate::storage::local::normalize(std::path::Path::new(path.trim()));
        record
            .settings
            .insert("path".into(), Value::String(normalized.display().to_string()));
    }
    if let Some(db) = record.settings.get("db").and_then(Value::as_i64)
        && !(0..=32767).contains(&db)
    {
        errors.insert("db".into(), json!(["Ensure this value is between 0 and 32767."]));
    }
    if let Err(message) = compile_key_filter(record.text("regex_filter")) {
        errors.insert("regex_filter".into(), json!([message]));
    }
    if let Some(ttl) = record.settings.get("presign_ttl").and_then(Value::as_i64)
        && !(0..=32767).contains(&ttl)
    {
        errors.insert(
            "presign_ttl".into(),
            json!(["Ensure this value is between 0 and 32767."]),
        );
    }
    if record.kind == "s3"
        && let Some(bucket) = record.text("bucket")
        && let Err(message) = check_bucket_name(bucket)
    {
        errors.insert("bucket".into(), json!([message]));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation_map(errors))
    }
}

/// The S3 bucket naming rules that matter for addressing: 3-63 characters of lowercase letters,
/// digits, dots and hyphens, starting and ending with a letter or digit.
fn check_bucket_name(bucket: &str) -> Result<(), String> {
    let valid_chars = bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    let ends_ok = bucket.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && bucket.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    if (3..=63).contains(&bucket.len()) && valid_chars && ends_ok {
        Ok(())
    } else {
        Err(format!(
            "Invalid bucket name {bucket:?}: use 3-63 lowercase letters, digits, dots or hyphens, \
             starting and ending with a letter or digit"
        ))
    }
}

/// The project named in a body: it must exist in the caller's organization.
async fn body_project(state: &AppState, user: &User, body: &Map<String, Value>) -> ApiResult<i64> {
    let Some(project_id) = field::<i64>(body, "project")? else {
        return Err(ApiError::validation("project", "This field is required."));
    };
    match project_for(state, user, project_id).await {
        Ok(project) => Ok(project.id),
        Err(_) => Err(ApiError::validation(
            "project",
            format!("Invalid pk \"{project_id}\" - object does not exist."),
        )),
    }
}

// ---------------------------------------------------------------- connection checks

/// The message a person sees when a connection check fails (spec 6.3, worded for action).
fn connection_message(record: &StorageRecord, error: &StorageError) -> String {
    match record.kind.as_str() {
        "redis" => {
            let host = record.text("host").unwrap_or("localhost");
            let port = record
                .settings
                .get("port")
                .map(|p| p.to_string().trim_matches('"').to_string());
            let port = port.unwrap_or_else(|| "6379".into());
            match error.kind {
                StorageErrorKind::Unauthenticated => {
                    format!("Can't connect to Redis server at {host}:{port}: wrong username or password")
                }
                _ => format!("Can't connect to Redis server at {host}:{port}: {}", error.message),
            }
        }
        "localfiles" => error.message.clone(),
        "gcs" => {
            let bucket = record.text("bucket").unwrap_or_default();
            match error.kind {
                StorageErrorKind::InvalidConfig => error.message.clone(),
                StorageErrorKind::NotFound => format!("Bucket {bucket} not found in Google Cloud Storage"),
                StorageErrorKind::Unauthenticated | StorageErrorKind::PermissionDenied => {
                    format!("Cannot access bucket {bucket} with the given Google Application Credentials")
                }
                _ => format!(
                    "Cannot connect to Google Cloud Storage bucket {bucket}: {}",
                    error.message
                ),
            }
        }
        "azure" => {
            let container = record.text("container").unwrap_or_default();
            match error.kind {
                StorageErrorKind::InvalidConfig => error.message.clone(),
                StorageErrorKind::NotFound => format!("Container not found: {container}"),
                StorageErrorKind::Unauthenticated | StorageErrorKind::PermissionDenied => {
                    format!("Cannot access container {container}: the account name or key is wrong")
                }
                _ => format!("Cannot connect to Azure container {container}: {}", error.message),
            }
        }
        _ => s3_connection_message(record, error),
    }
}

fn s3_connection_message(record: &StorageRecord, error: &StorageError) -> String {
    let bucket = record.text("bucket").unwrap_or_default();
    match error.kind {
        StorageErrorKind::Unauthenticated | StorageErrorKind::PermissionDenied => {
            format!("Cannot connect to S3 {bucket} with specified AWS credentials")
        }
        StorageErrorKind::NotFound => format!("Cannot find bucket {bucket} in S3"),
        StorageErrorKind::InvalidConfig => format!("Wrong credentials for S3 {bucket}: {}", error.message),
        StorageErrorKind::Temporary => {
            let endpoint = record.text("s3_endpoint").unwrap_or("the default AWS endpoint");
            format!("Cannot reach S3 at {endpoint}: {}", error.message)
        }
        StorageErrorKind::Unsupported | StorageErrorKind::Other => {
            format!("Cannot connect to S3 {bucket}: {}", error.message)
        }
    }
}

/// Label Studio's message for an import prefix with no object under it (spec 6.3).
fn prefix_not_found(record: &StorageRecord, prefix: &str) -> String {
    let bucket = record
        .text(crate::storage::bucket_field(&record.kind))
        .unwrap_or_default();
    match record.kind.as_str() {
        "gcs" => format!("No blobs found in {bucket}/{prefix} or prefix doesn't exist"),
        "azure" => format!("azure-blob://{bucket}/{prefix} not found."),
        _ => format!("s3://{bucket}/{prefix} not found."),
    }
}

/// Checks that a storage can be reached; an import storage with a prefix must also find at
/// least one object under it. Nothing is saved.
async fn check_connection(record: &StorageRecord) -> ApiResult<()> {
    // Label Studio checks an S3 storage only once it names a bucket.
    if record.kind == "s3" && record.text("bucket").is_none() {
        return Ok(());
    }
    let is_cloud = matches!(record.kind.as_str(), "s3" | "gcs" | "azure");
    let fail = |e: StorageError| {
        tracing::info!(kind = %record.kind, error = %e.message, "storage connection check failed");
        ApiError::validation("non_field_errors", connection_message(record, &e))
    };
    let storage = crate::storage::connect(record).map_err(fail)?;
    storage.check().await.map_err(fail)?;
    if is_cloud
        && record.direction == Direction::Import
        && let Some(prefix) = record.text("prefix")
    {
        let listing = listing_prefix(Some(prefix));
        let mut pages = storage.list(&listing, true);
        let found = match pages.next().await {
            Some(Ok(page)) => !page.is_empty(),
            Some(Err(error)) => return Err(fail(error)),
            None => false,
        };
        if !found {
            return Err(ApiError::validation(
                "non_field_errors",
                prefix_not_found(record, prefix),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- handlers

#[derive(Deserialize)]
struct ProjectQuery {
    project: Option<String>,
}

async fn list_for(
    state: &AppState,
    user: &User,
    query: &ProjectQuery,
    direction: Direction,
    kind: Option<&str>,
) -> ApiResult<Json<Value>> {
    let Some(project_id) = query.project.as_deref().and_then(|p| p.trim().parse::<i64>().ok()) else {
        return Err(ApiError::validation(
            "project",
            "query parameter \"project\" is required",
        ));
    };
    let project = project_for(state, user, project_id).await?;
    let records = state.db.project_storages(project.id, direction, kind).await?;
    Ok(Json(Value::Array(records.iter().map(storage_to_wire).collect())))
}

async fn list_all_import(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<ProjectQuery>,
) -> ApiResult<Json<Value>> {
    // Label Studio answers an empty list here when the project is missing or not readable.
    match list_for(&state, &user, &query, Direction::Import, None).await {
        Ok(list) => Ok(list),
        Err(_) => Ok(Json(json!([]))),
    }
}

async fn list_all_export(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<ProjectQuery>,
) -> ApiResult<Json<Value>> {
    list_for(&state, &user, &query, Direction::Export, None).await
}

async fn types(CurrentUser(_user): CurrentUser) -> Json<Value> {
    Json(Value::Array(
        KINDS
            .iter()
            .map(|(name, title, _)| json!({"name": name, "title": title}))
            .collect(),
    ))
}

async fn form(CurrentUser(_user): CurrentUser, Path(params): Path<Vec<String>>) -> ApiResult<Json<Value>> {
    kind_fields(params.first().map(String::as_str).unwrap_or_default())?;
    Ok(Json(json!([])))
}

async fn list<const IS_EXPORT: bool>(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(kind): Path<String>,
    QueryParams(query): QueryParams<ProjectQuery>,
) -> ApiResult<Json<Value>> {
    kind_fields(&kind)?;
    list_for(&state, &user, &query, direction::<IS_EXPORT>(), Some(&kind)).await
}

async fn create<const IS_EXPORT: bool>(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(kind): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let direction = direction::<IS_EXPORT>();
    kind_fields(&kind)?;
    let project_id = body_project(&state, &user, &body).await?;
    let mut record = StorageRecord::new(&kind, direction, project_id);
    apply_body(&mut record, &body)?;
    check_connection(&record).await?;
    let mut record = state.db.create_storage(&record).await?;
    if direction == Direction::Export && crate::config::flag_env("SYNC_ON_TARGET_STORAGE_CREATION", true) {
        record = state.sync.request_sync(&record).await.map_err(sync_error)?;
    }
    Ok((StatusCode::CREATED, Json(storage_to_wire(&record))))
}

fn sync_error(error: crate::sync::SyncError) -> ApiError {
    match error {
        crate::sync::SyncError::Database(error) => error.into(),
        other => ApiError::bad_request(other.to_string()),
    }
}

async fn load(state: &AppState, user: &User, direction: Direction, kind: &str, id: &str) -> ApiResult<StorageRecord> {
    kind_fields(kind)?;
    let id: i64 = id.parse().map_err(|_| ApiError::not_found())?;
    Ok(state.db.storage(user.organization_id, direction, kind, id).await?)
}

async fn validate<const IS_EXPORT: bool>(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(kind): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<StatusCode> {
    let direction = direction::<IS_EXPORT>();
    kind_fields(&kind)?;
    // With an id, the request is merged onto the stored storage; nothing is saved either way.
    let mut record = match field::<i64>(&body, "id")? {
        Some(id) => load(&state, &user, direction, &kind, &id.to_string()).await?,
        None => StorageRecord::new(&kind, direction, body_project(&state, &user, &body).await?),
    };
    apply_body(&mut record, &body)?;
    check_connection(&record).await?;
    Ok(StatusCode::OK)
}

/// Files preview: the keys a sync would consider, up to `limit` (spec 1.4).
async fn files_import(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(kind): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    kind_fields(&kind)?;
    let mut record = match field::<i64>(&body, "id")? {
        Some(id) => load(&state, &user, Direction::Import, &kind, &id.to_string()).await?,
        None => StorageRecord::new(&kind, Direction::Import, body_project(&state, &user, &body).await?),
    };
    apply_body(&mut record, &body)?;
    let limit = field::<i64>(&body, "limit")?.unwrap_or(100).clamp(1, 10_000) as usize;
    let storage = crate::storage::connect(&record)
        .map_err(|e| ApiError::validation("non_field_errors", connection_message(&record, &e)))?;
    let filter =
        compile_key_filter(record.text("regex_filter")).map_err(|m| ApiError::validation("regex_filter", m))?;
    let prefix = crate::storage::listing_prefix_of(&record);
    let started = Instant::now();
    let mut files = Vec::new();
    let mut pages = storage.list(&prefix, record.flag("recursive_scan", false));
    'pages: while let Some(page) = pages.next().await {
        let page = page.map_err(|_| ApiError::bad_request("Failed to list storage files"))?;
        for object in page {
            if object.key.ends_with('/') || filter.as_ref().is_some_and(|f| !f.is_match(&object.key)) {
                continue;
            }
            if files.len() == limit {
                files.push(json!({"key": null, "last_modified": null, "size": null}));
                break 'pages;
            }
            files.push(json!({"key": object.key, "last_modified": object.last_modified.unwrap_or_default(), "size": object.size}));
        }
        if started.elapsed() > Duration::from_secs(30) {
            files.push(json!({"key": "... storage scan timeout reached ...", "last_modified": null, "size": null}));
            break;
        }
    }
    Ok(Json(json!({"files": files})))
}

async fn read<const IS_EXPORT: bool>(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((kind, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let record = load(&state, &user, direction::<IS_EXPORT>(), &kind, &id).await?;
    Ok(Json(storage_to_wire(&record)))
}

async fn update<const IS_EXPORT: bool>(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((kind, id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let mut record = load(&state, &user, direction::<IS_EXPORT>(), &kind, &id).await?;
    apply_body(&mut record, &body)?;
    let touches_connection = body.keys().any(|k| {
        !matches!(
            k.as_str(),
            "title" | "description" | "synchronizable" | "project" | "regex_filter" | "use_blob_urls"
        )
    });
    if touches_connection {
        check_connection(&record).await?;
    }
    let record = state.db.update_storage_config(&record).await?;
    Ok(Json(storage_to_wire(&record)))
}

async fn remove<const IS_EXPORT: bool>(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((kind, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let record = load(&state, &user, direction::<IS_EXPORT>(), &kind, &id).await?;
    state.db.delete_storage(record.id).await?;
    state.sync.forget_client(record.id);
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a sync and answers at once with the storage (status `queued`, or the running state if a
/// sync was already queued or running). Connection problems surface in the job's `traceback`.
async fn sync<const IS_EXPORT: bool>(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((kind, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let record = load(&state, &user, direction::<IS_EXPORT>(), &kind, &id).await?;
    if !record.synchronizable {
        let body = json!({"message": format!("Storage {} is not synchronizable", record.id)});
        return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
    }
    let record = state.sync.request_sync(&record).await.map_err(sync_error)?;
    Ok(Json(storage_to_wire(&record)).into_response())
}

impl From<crate::sync::SyncError> for ApiError {
    fn from(error: crate::sync::SyncError) -> ApiError {
        sync_error(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of one kind's entry in the dialog's field table, with the shared field lists it
    /// spreads in.
    fn dialog_fields(script: &str, kind: &str) -> String {
        let declaration = |name: &str| {
            let start = script
                .find(&format!("const {name} = "))
                .unwrap_or_else(|| panic!("{name}"));
            let end = start + script[start..].find(";\n").unwrap();
            script[start..end].to_string()
        };
        let start = script
            .find(&format!("\n  {kind}: {{"))
            .unwrap_or_else(|| panic!("the dialog has no kind {kind}"));
        let end = start + script[start..].find("\n  },").unwrap();
        let mut text = script[start..end].to_string();
        for shared in ["CLOUD_IMPORT_OPTIONS", "CAN_DELETE"] {
            if text.contains(shared) {
                text.push_str(&declaration(shared));
            }
        }
        text
    }

    /// The web UI's Add/Edit Storage dialogs list each kind's fields by their API names; every
    /// field the API takes must be in that kind's list, so a field added here is not forgotten
    /// there.
    #[test]
    fn every_storage_field_has_a_place_in_the_dialog() {
        for (kind, _, _) in KINDS {
            let fields = dialog_fields(crate::web::APP_JS, kind);
            for direction in [Direction::Import, Direction::Export] {
                for spec in fields_of(kind, direction).unwrap() {
                    if spec.name == "regex_filter" && direction == Direction::Export {
                        continue; // Label Studio's target forms have no filter either.
                    }
                    assert!(
                        fields.contains(&format!("(\"{}\"", spec.name)),
                        "the {kind} dialog lacks the field {}",
                        spec.name
                    );
                }
            }
        }
    }
}
