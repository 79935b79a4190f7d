//! Amazon S3 and S3-compatible servers, through `object_store`'s `AmazonS3` (SigV4 signing,
//! retries with backoff, path-style addressing for custom endpoints).

use std::sync::Arc;

use object_store::aws::AmazonS3Builder;

use super::cloud::{CloudStorage, classify, client_options, retry_config};
use super::{StorageError, StorageErrorKind};

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

/// Builds a client for one bucket; fails only on configuration that can never work.
pub fn connect(config: &S3Config) -> Result<CloudStorage, StorageError> {
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
        .with_retry(retry_config())
        .with_client_options(client_options());
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
    Ok(CloudStorage::new("s3", &config.bucket, Arc::new(store)))
}
