//! Amazon S3 and S3-compatible servers, through `object_store`'s `AmazonS3` (SigV4 signing,
//! retries with backoff, path-style addressing for custom endpoints).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    Attribute, BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

use super::{ByteRange, Capabilities, ObjectInfo, ObjectStream, Storage, StorageError, StorageErrorKind};

/// How to reach one bucket.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    pub region: Option<String>,
    /// A custom endpoint such as `http://127.0.0.1:9000`; addressing is then path-style.
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "<set>"))
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One S3 bucket.
#[derive(Debug)]
pub struct S3Storage {
    bucket: String,
    store: Arc<AmazonS3>,
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
            let text = source.to_string().to_ascii_lowercase();
            if text.contains("timed out")
                || text.contains("timeout")
                || text.contains("connect")
                || text.contains("server error")
                || text.contains("slowdown")
                || text.contains("503")
            {
                StorageErrorKind::Temporary
            } else if text.contains("signature") || text.contains("invalidaccesskeyid") || text.contains("403") {
                StorageErrorKind::Unauthenticated
            } else if text.contains("nosuchbucket") || text.contains("404") {
                StorageErrorKind::NotFound
            } else {
                StorageErrorKind::Other
            }
        }
        _ => StorageErrorKind::Other,
    };
    StorageError::new(kind, error.to_string())
}

impl S3Storage {
    /// Builds a client; fails only on configuration that can never work.
    pub fn new(config: &S3Config) -> Result<S3Storage, StorageError> {
        if config.bucket.trim().is_empty() {
            return Err(StorageError::new(StorageErrorKind::InvalidConfig, "bucket is required"));
        }
        let region = config
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".into());
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&region)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 4,
                retry_timeout: Duration::from_secs(60),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(Duration::from_secs(60))
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_allow_http(true),
            );
        if let Some(endpoint) = config.endpoint.as_deref().filter(|e| !e.is_empty()) {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(StorageError::new(
                    StorageErrorKind::InvalidConfig,
                    format!("s3_endpoint must start with http:// or https://, got {endpoint}"),
                ));
            }
            builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
        }
        match (&config.access_key_id, &config.secret_access_key) {
            (Some(key), Some(secret)) if !key.is_empty() && !secret.is_empty() => {
                builder = builder.with_access_key_id(key).with_secret_access_key(secret);
                if let Some(token) = config.session_token.as_deref().filter(|t| !t.is_empty()) {
                    builder = builder.with_token(token);
                }
            }
            _ => {}
        }
        let store = builder.build().map_err(|e| {
            let mut error = classify(e);
            error.kind = StorageErrorKind::InvalidConfig;
            error
        })?;
        Ok(S3Storage {
            bucket: config.bucket.clone(),
            store: Arc::new(store),
        })
    }
}

fn info_from_meta(meta: &object_store::ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        key: meta.location.to_string(),
        size: meta.size,
        etag: meta.e_tag.clone(),
        last_modified: Some(meta.last_modified.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    }
}

/// Parses a stored key into an `object_store` path without re-encoding it.
fn path_of(key: &str) -> Path {
    Path::parse(key).unwrap_or_else(|_| Path::from(key))
}

#[async_trait]
impl Storage for S3Storage {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            list: true,
            read: true,
            write: true,
            delete: true,
            presign: true,
        }
    }

    fn object_uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
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
            let page = self.store.list_paginated(prefix, options).await.map_err(classify)?;
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
        let options = GetOptions {
            range: range.map(|r| match r {
                ByteRange::Bounded(start, end) => GetRange::Bounded(start..end),
                ByteRange::From(start) => GetRange::Offset(start),
            }),
            ..GetOptions::default()
        };
        let result = self.store.get_opts(&path_of(key), options).await.map_err(classify)?;
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

    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
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
        self.store
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
        self.store
            .list_paginated(None, options)
            .await
            .map(|_| ())
            .map_err(classify)
    }
}
