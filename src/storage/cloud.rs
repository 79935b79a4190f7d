//! The one implementation of the `Storage` trait for object stores reached through the
//! `object_store` crate (S3, Azure Blob Storage, Google Cloud Storage): raw-prefix paginated
//! listing, streaming reads with ranges, atomic writes, deletes and signed URLs. Each cloud's module
//! only builds the client.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    Attribute, BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

use super::{ByteRange, Capabilities, ObjectInfo, ObjectStream, Storage, StorageError, StorageErrorKind};

/// Writes an object another way than the store's own `put` (GCS uploads through the JSON API).
pub type Uploader = Arc<dyn Fn(String, Bytes) -> BoxFuture<'static, Result<(), StorageError>> + Send + Sync>;

/// Retries and timeouts for every cloud client: a few retries with backoff on timeouts, 5xx and
/// throttling, within a minute.
pub fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 4,
        retry_timeout: Duration::from_secs(60),
    }
}

/// HTTP client options for every cloud client (plain http allowed for local servers).
pub fn client_options() -> ClientOptions {
    ClientOptions::new()
        .with_timeout(Duration::from_secs(60))
        .with_connect_timeout(Duration::from_secs(5))
        .with_allow_http(true)
}

/// Turns an `object_store` error into a storage error with a kind the engine can act on.
pub fn classify(error: object_store::Error) -> StorageError {
    use object_store::Error as E;
    let kind = match &error {
        E::NotFound { .. } => StorageErrorKind::NotFound,
        E::PermissionDenied { .. } => StorageErrorKind::PermissionDenied,
        E::Unauthenticated { .. } => StorageErrorKind::Unauthenticated,
        E::NotSupported { .. } | E::NotImplemented { .. } => StorageErrorKind::Unsupported,
        E::UnknownConfigurationKey { .. } | E::InvalidPath { .. } => StorageErrorKind::InvalidConfig,
        E::Generic { source, .. } => {
            // The client library reports most HTTP failures as "generic"; the server's own error
            // code in the message says what happened. A missing bucket or a refused signature is
            // never worth retrying, so those are checked before the temporary kinds.
            let text = source.to_string().to_ascii_lowercase();
            let any = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
            if any(&["nosuchbucket", "no bucket named", "containernotfound", "404 not found"]) {
                StorageErrorKind::NotFound
            } else if any(&[
                "signaturedoesnotmatch",
                "invalidaccesskeyid",
                "authenticationfailed",
                "403 forbidden",
            ]) {
                StorageErrorKind::Unauthenticated
            } else if any(&[
                "timed out",
                "timeout",
                "connect",
                "server error",
                "slowdown",
                "503",
                "throttl",
            ]) {
                StorageErrorKind::Temporary
            } else {
                StorageErrorKind::Other
            }
        }
        _ => StorageErrorKind::Other,
    };
    StorageError::new(kind, error.to_string())
}

/// One bucket (or container) of a cloud object store.
pub struct CloudStorage {
    /// `s3`, `gs` or `azure-blob`.
    scheme: &'static str,
    bucket: String,
    store: Arc<dyn ObjectStore>,
    lister: Arc<dyn PaginatedListStore>,
    signer: Arc<dyn Signer>,
    uploader: Option<Uploader>,
}

impl std::fmt::Debug for CloudStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudStorage")
            .field("scheme", &self.scheme)
            .field("bucket", &self.bucket)
            .finish()
    }
}

impl CloudStorage {
    /// Wraps a client that lists, reads, writes and signs.
    pub fn new<T>(scheme: &'static str, bucket: &str, client: Arc<T>) -> CloudStorage
    where
        T: ObjectStore + PaginatedListStore + Signer,
    {
        CloudStorage {
            scheme,
            bucket: bucket.to_string(),
            store: client.clone(),
            lister: client.clone(),
            signer: client,
            uploader: None,
        }
    }

    /// Uses `uploader` instead of the store's `put`.
    pub fn with_uploader(mut self, uploader: Uploader) -> CloudStorage {
        self.uploader = Some(uploader);
        self
    }

    /// Uses `signer` instead of the store's own signed URLs.
    pub fn with_signer(mut self, signer: Arc<dyn Signer>) -> CloudStorage {
        self.signer = signer;
        self
    }
}

/// An `object_store` listing entry as a storage object.
pub(super) fn info_from_meta(meta: &object_store::ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        key: meta.location.to_string(),
        size: meta.size,
        etag: meta.e_tag.clone(),
        last_modified: Some(meta.last_modified.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    }
}

/// Streams an object (or a byte range of it) from any `object_store` store.
pub(super) async fn stream_object(
    store: &dyn ObjectStore,
    path: &Path,
    range: Option<ByteRange>,
) -> Result<ObjectStream, StorageError> {
    let options = GetOptions {
        range: range.map(|r| match r {
            ByteRange::Bounded(start, end) => GetRange::Bounded(start..end),
            ByteRange::From(start) => GetRange::Offset(start),
        }),
        ..GetOptions::default()
    };
    let result = store.get_opts(path, options).await.map_err(classify)?;
    let content_type = result.attributes.get(&Attribute::ContentType).map(|v| v.to_string());
    let info = info_from_meta(&result.meta);
    let returned = result.range.clone();
    let full = returned.start == 0 && returned.end == result.meta.size;
    Ok(ObjectStream {
        info,
        content_type,
        range: (range.is_some() && !full).then_some(returned),
        body: result.into_stream().map_err(classify).boxed(),
    })
}

/// Parses a stored key into an `object_store` path without re-encoding it.
fn path_of(key: &str) -> Path {
    Path::parse(key).unwrap_or_else(|_| Path::from(key))
}

#[async_trait]
impl Storage for CloudStorage {
    fn capabilities(&self) -> Capabilities {
        Capabilities::read_write(true)
    }

    fn object_uri(&self, key: &str) -> String {
        format!("{}://{}/{key}", self.scheme, self.bucket)
    }

    fn list<'a>(&'a self, prefix: &'a str, recursive: bool) -> BoxStream<'a, Result<Vec<ObjectInfo>, StorageError>> {
        // The state is the next page token; `None` after the last page ends the stream.
        let first: Option<Option<String>> = Some(None);
        stream::try_unfold(first, move |state| async move {
            let Some(page_token) = state else { return Ok(None) };
            let options = PaginatedListOptions {
                delimiter: (!recursive).then_some(Cow::Borrowed("/")),
                max_keys: Some(1000),
                page_token,
                ..PaginatedListOptions::default()
            };
            let prefix = (!prefix.is_empty()).then_some(prefix);
            let page = self.lister.list_paginated(prefix, options).await.map_err(classify)?;
            let objects = page.result.objects.iter().map(info_from_meta).collect::<Vec<_>>();
            let next = page.page_token.map(Some);
            Ok(Some((objects, next)))
        })
        .boxed()
    }

    async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let result = self.store.get(&path_of(key)).await.map_err(classify)?;
        result.bytes().await.map_err(classify)
    }

    async fn get_stream(&self, key: &str, range: Option<ByteRange>) -> Result<ObjectStream, StorageError> {
        stream_object(self.store.as_ref(), &path_of(key), range).await
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        if let Some(upload) = &self.uploader {
            return upload(key.to_string(), bytes).await;
        }
        self.store
            .put(&path_of(key), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&path_of(key)).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(other) => Err(classify(other)),
        }
    }

    async fn signed_url(&self, key: &str, ttl: Duration) -> Result<String, StorageError> {
        self.signer
            .signed_url(http::Method::GET, &path_of(key), ttl)
            .await
            .map(|url| url.to_string())
            .map_err(classify)
    }

    async fn check(&self) -> Result<(), StorageError> {
        let options = PaginatedListOptions {
            max_keys: Some(1),
            ..PaginatedListOptions::default()
        };
        self.lister
            .list_paginated(None, options)
            .await
            .map(|_| ())
            .map_err(classify)
    }
}
