//! One `Storage` trait for every backend (S3 and S3-compatible today; GCS, Azure, Redis and local
//! files next). The sync engine, URL resolution and export depend on this trait, never on a cloud.
//!
//! The contract, for every implementation:
//! - `list` takes a raw key prefix (not a path segment) and yields pages; order is not guaranteed;
//!   with `recursive` false only keys with no `/` after the prefix are returned.
//! - `get` returns the whole object; `get_stream` streams it, optionally a byte range.
//! - `put` is atomic: readers see the old object or the new one, never a part.
//! - `delete` of a missing key succeeds.
//! - Errors carry a [`StorageErrorKind`], so callers know whether retrying can help.

pub mod azure;
pub mod cloud;
pub mod gcs;
pub mod local;
pub mod redis;
pub mod s3;

use std::fmt::Debug;
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

/// One object as a listing reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    /// RFC 3339, when the backend reports it.
    pub last_modified: Option<String>,
}

/// What a backend can do; the API and UI read this instead of discovering it through errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub list: bool,
    pub read: bool,
    pub write: bool,
    pub delete: bool,
    /// Can mint time-limited URLs a browser can fetch directly.
    pub presign: bool,
}

impl Capabilities {
    /// A backend that lists, reads, writes and deletes, and signs URLs when `presign`.
    pub const fn read_write(presign: bool) -> Capabilities {
        Capabilities {
            list: true,
            read: true,
            write: true,
            delete: true,
            presign,
        }
    }
}

/// What kind of failure a storage call met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// The bucket or object does not exist.
    NotFound,
    /// The credentials were accepted but may not do this.
    PermissionDenied,
    /// The credentials were refused (wrong key, bad signature).
    Unauthenticated,
    /// A timeout, a 5xx, throttling: retrying later may succeed.
    Temporary,
    /// The configuration cannot work (bad endpoint URL, missing bucket name).
    InvalidConfig,
    /// The backend cannot do this at all.
    Unsupported,
    Other,
}

/// A failed storage call: a kind to act on and a message for a person.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    pub kind: StorageErrorKind,
    pub message: String,
}

impl StorageError {
    pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> StorageError {
        StorageError {
            kind,
            message: message.into(),
        }
    }

    /// Whether trying again may help.
    pub fn is_temporary(&self) -> bool {
        self.kind == StorageErrorKind::Temporary
    }
}

/// An object body on its way to a client.
pub struct ObjectStream {
    pub info: ObjectInfo,
    pub content_type: Option<String>,
    /// The byte range returned, when a range was asked for.
    pub range: Option<Range<u64>>,
    pub body: BoxStream<'static, Result<Bytes, StorageError>>,
}

/// A byte range request: `start..end` (end exclusive) or from `start` to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    Bounded(u64, u64),
    From(u64),
}

/// The storage contract (see the module documentation).
#[async_trait]
pub trait Storage: Send + Sync + Debug {
    /// What this backend can do.
    fn capabilities(&self) -> Capabilities;

    /// The URI that names an object in task data, such as `s3://bucket/key`.
    fn object_uri(&self, key: &str) -> String;

    /// Lists keys starting with `prefix` (a raw string), one page per item.
    fn list<'a>(&'a self, prefix: &'a str, recursive: bool) -> BoxStream<'a, Result<Vec<ObjectInfo>, StorageError>>;

    /// Reads a whole object.
    async fn get(&self, key: &str) -> Result<Bytes, StorageError>;

    /// Streams an object, or a range of it.
    async fn get_stream(&self, key: &str, range: Option<ByteRange>) -> Result<ObjectStream, StorageError>;

    /// Writes an object atomically, replacing any existing one.
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError>;

    /// Deletes an object; a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// A URL that lets anyone holding it GET the object for `ttl`.
    async fn signed_url(&self, key: &str, ttl: Duration) -> Result<String, StorageError>;

    /// Checks that the bucket (or container, database, folder) is reachable with these credentials.
    async fn check(&self) -> Result<(), StorageError>;
}

/// Reads the first set variable among `name`, `LABEL_STUDIO_<name>` and `LABELPORT_<name>`.
pub(crate) fn env_fallback(name: &str) -> Option<String> {
    [
        name.to_string(),
        format!("LABEL_STUDIO_{name}"),
        format!("LABELPORT_{name}"),
    ]
    .iter()
    .find_map(|key| std::env::var(key).ok().filter(|v| !v.is_empty()))
}

/// Builds the backend a storage record describes. Secrets come from the record, then from the
/// environment fallbacks Label Studio reads (`AWS_ACCESS_KEY_ID`, `S3_ENDPOINT`, ...).
pub fn connect(record: &crate::model::storage::StorageRecord) -> Result<std::sync::Arc<dyn Storage>, StorageError> {
    match record.kind.as_str() {
        "s3" => {
            let text = |name: &str, env: &str| record.text(name).map(str::to_string).or_else(|| env_fallback(env));
            let config = s3::S3Config {
                bucket: record.text("bucket").unwrap_or_default().to_string(),
                region: text("region_name", "S3_region").or_else(|| env_fallback("AWS_REGION")),
                endpoint: text("s3_endpoint", "S3_ENDPOINT"),
                access_key_id: text("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
                secret_access_key: text("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                session_token: text("aws_session_token", "AWS_SESSION_TOKEN"),
            };
            Ok(std::sync::Arc::new(s3::connect(&config)?))
        }
        "gcs" => {
            let config = gcs::GcsConfig {
                bucket: record.text("bucket").unwrap_or_default().to_string(),
                credentials_json: record.text("google_application_credentials").map(str::to_string),
                emulator_host: std::env::var("STORAGE_EMULATOR_HOST").ok().filter(|h| !h.is_empty()),
            };
            Ok(std::sync::Arc::new(gcs::connect(&config)?))
        }
        "azure" => {
            let text = |name: &str, env: &str| record.text(name).map(str::to_string).or_else(|| env_fallback(env));
            let config = azure::AzureConfig {
                container: record.text("container").unwrap_or_default().to_string(),
                account_name: text("account_name", "AZURE_BLOB_ACCOUNT_NAME"),
                account_key: text("account_key", "AZURE_BLOB_ACCOUNT_KEY"),
                endpoint: text("azure_endpoint", "AZURE_BLOB_ENDPOINT"),
            };
            Ok(std::sync::Arc::new(azure::connect(&config)?))
        }
        "redis" => {
            let port = match record.settings.get("port") {
                Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
                Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim().parse::<u16>().ok(),
                _ => Some(6379),
            }
            .ok_or_else(|| {
                StorageError::new(StorageErrorKind::InvalidConfig, "port must be a number from 1 to 65535")
            })?;
            let default_db = match record.direction {
                crate::model::storage::Direction::Import => 1,
                crate::model::storage::Direction::Export => 2,
            };
            Ok(std::sync::Arc::new(redis::RedisStorage::new(redis::RedisConfig {
                host: record.text("host").unwrap_or("localhost").to_string(),
                port,
                db: record.integer("db", default_db),
                username: record.text("username").map(str::to_string),
                password: record.text("password").map(str::to_string),
                tls: record.flag("use_tls", false),
                tls_ca_cert: record.text("tls_ca_cert").map(str::to_string),
            })?))
        }
        "localfiles" => Ok(std::sync::Arc::new(local::LocalStorage::new(
            record.text("path"),
            &local::LocalFilesSettings::from_env(),
        )?)),
        other => Err(StorageError::new(
            StorageErrorKind::Unsupported,
            format!("storage type {other} is not supported yet"),
        )),
    }
}

/// The URI scheme a storage kind's objects are named with in task data, if it has one.
pub fn uri_scheme(kind: &str) -> Option<&'static str> {
    match kind {
        "s3" => Some("s3"),
        "gcs" => Some("gs"),
        "azure" => Some("azure-blob"),
        _ => None,
    }
}

/// The field naming a kind's bucket (or container).
pub fn bucket_field(kind: &str) -> &'static str {
    if kind == "azure" { "container" } else { "bucket" }
}

/// The key prefix a listing of this storage uses: cloud buckets normalise the prefix to one
/// trailing slash (Label Studio's rule); Redis uses `path` as a literal key prefix; a local-files
/// storage lists its whole folder.
pub fn listing_prefix_of(record: &crate::model::storage::StorageRecord) -> String {
    match record.kind.as_str() {
        "redis" => record.text("path").unwrap_or_default().to_string(),
        "localfiles" => String::new(),
        _ => crate::model::storage::listing_prefix(record.text("prefix")),
    }
}

/// The key an annotation is written to in a target storage: `<prefix or path>/<annotation id>`.
pub fn export_key_of(record: &crate::model::storage::StorageRecord, annotation_id: i64) -> String {
    match record.kind.as_str() {
        "redis" => crate::model::storage::export_key(record.text("path"), annotation_id),
        "localfiles" => annotation_id.to_string(),
        _ => crate::model::storage::export_key(record.text("prefix"), annotation_id),
    }
}

/// Whether objects of this kind are files whose extension says what they hold (Redis keys are
/// not: every value is read as JSON).
pub fn keys_have_extensions(kind: &str) -> bool {
    kind != "redis"
}
