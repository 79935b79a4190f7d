//! Google Cloud Storage through `object_store`'s `GoogleCloudStorage` (V4 signed URLs from the
//! service-account key), with uploads through the JSON API: `object_store` writes through the XML
//! API, which the local emulator cannot accept, and one write path tested end to end beats two.
//!
//! `STORAGE_EMULATOR_HOST` (e.g. `http://127.0.0.1:4443`) is honoured as Google's own clients do:
//! requests go there, without OAuth when no key is given.

use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use object_store::StaticCredentialProvider;
use object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder};

use super::cloud::{CloudStorage, Uploader, classify, client_options, retry_config};
use super::local::quote_path;
use super::{StorageError, StorageErrorKind};

/// The public API endpoint.
const GOOGLE_STORAGE: &str = "https://storage.googleapis.com";

/// How to reach one bucket.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GcsConfig {
    pub bucket: String,
    /// The text of a service-account JSON key; `None` means Application Default Credentials.
    pub credentials_json: Option<String>,
    /// `STORAGE_EMULATOR_HOST`, when set.
    pub emulator_host: Option<String>,
}

impl std::fmt::Debug for GcsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsConfig")
            .field("bucket", &self.bucket)
            .field(
                "credentials_json",
                &self.credentials_json.as_ref().map(|_| "<redacted>"),
            )
            .field("emulator_host", &self.emulator_host)
            .finish()
    }
}

/// Label Studio's message for a key that is not JSON.
pub const INVALID_CREDENTIALS: &str =
    "Google Application Credentials must be valid JSON string. Paste the whole service account key file.";

/// Builds a client for one bucket; fails only on configuration that can never work.
pub fn connect(config: &GcsConfig) -> Result<CloudStorage, StorageError> {
    if config.bucket.trim().is_empty() {
        return Err(StorageError::new(StorageErrorKind::InvalidConfig, "bucket is required"));
    }
    let key = config.credentials_json.as_deref().filter(|k| !k.trim().is_empty());
    if let Some(key) = key
        && !serde_json::from_str::<serde_json::Value>(key).is_ok_and(|v| v.is_object())
    {
        return Err(StorageError::new(StorageErrorKind::InvalidConfig, INVALID_CREDENTIALS));
    }
    let emulator = config
        .emulator_host
        .as_deref()
        .filter(|h| !h.is_empty())
        .map(|h| h.trim_end_matches('/'));
    let mut builder = GoogleCloudStorageBuilder::new()
        .with_bucket_name(&config.bucket)
        .with_retry(retry_config())
        .with_client_options(client_options());
    if let Some(key) = key {
        builder = builder.with_service_account_key(key);
    }
    if let Some(host) = emulator {
        // An emulator needs no OAuth token; the key, if any, still signs URLs locally.
        builder = builder
            .with_base_url(host)
            .with_credentials(Arc::new(StaticCredentialProvider::new(GcpCredential {
                bearer: "emulator".to_string(),
            })));
    }
    let store = Arc::new(builder.build().map_err(|e| {
        let mut error = classify(e);
        error.kind = StorageErrorKind::InvalidConfig;
        error
    })?);
    let base = emulator.unwrap_or(GOOGLE_STORAGE).to_string();
    let bucket = config.bucket.clone();
    let credentials = Arc::clone(store.credentials());
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| StorageError::new(StorageErrorKind::InvalidConfig, e.to_string()))?;
    let uploader: Uploader = Arc::new(move |key: String, body: Bytes| {
        let (http, credentials, base, bucket) = (http.clone(), Arc::clone(&credentials), base.clone(), bucket.clone());
        async move {
            let token = credentials.get_credential().await.map_err(classify)?;
            let url = format!(
                "{base}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
                quote_path(&key).replace('/', "%2F")
            );
            let response = http
                .post(url)
                .bearer_auth(&token.bearer)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| StorageError::new(StorageErrorKind::Temporary, format!("upload of {key} failed: {e}")))?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let kind = match status.as_u16() {
                401 => StorageErrorKind::Unauthenticated,
                403 => StorageErrorKind::PermissionDenied,
                404 => StorageErrorKind::NotFound,
                408 | 429 | 500..=599 => StorageErrorKind::Temporary,
                _ => StorageErrorKind::Other,
            };
            let text = response.text().await.unwrap_or_default();
            Err(StorageError::new(
                kind,
                format!(
                    "upload of {key} answered {status}: {}",
                    text.chars().take(300).collect::<String>()
                ),
            ))
        }
        .boxed()
    });
    Ok(CloudStorage::new("gs", &config.bucket, store).with_uploader(uploader))
}
