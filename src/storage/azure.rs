//! Azure Blob Storage through `object_store`'s `MicrosoftAzure` (SharedKey auth, read-only
//! per-blob SAS URLs). Unlike Label Studio, the endpoint is configurable: the field
//! `azure_endpoint`, else `AZURE_BLOB_ENDPOINT`, else the public cloud.

use std::sync::Arc;

use object_store::azure::MicrosoftAzureBuilder;

use super::cloud::{CloudStorage, classify, client_options, retry_config};
use super::{StorageError, StorageErrorKind};

/// How to reach one container.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AzureConfig {
    pub container: String,
    pub account_name: Option<String>,
    pub account_key: Option<String>,
    /// A blob endpoint such as `http://127.0.0.1:10000/devstoreaccount1` (Azurite) or a sovereign
    /// cloud's; `None` means `https://<account>.blob.core.windows.net`.
    pub endpoint: Option<String>,
}

impl std::fmt::Debug for AzureConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureConfig")
            .field("container", &self.container)
            .field("account_name", &self.account_name)
            .field("account_key", &self.account_key.as_ref().map(|_| "<redacted>"))
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// Builds a client for one container; fails only on configuration that can never work.
pub fn connect(config: &AzureConfig) -> Result<CloudStorage, StorageError> {
    if config.container.trim().is_empty() {
        return Err(StorageError::new(
            StorageErrorKind::InvalidConfig,
            "container is required",
        ));
    }
    let (Some(account), Some(key)) = (
        config.account_name.as_deref().filter(|a| !a.is_empty()),
        config.account_key.as_deref().filter(|k| !k.is_empty()),
    ) else {
        return Err(StorageError::new(
            StorageErrorKind::InvalidConfig,
            "Azure account name and key are required: set account_name and account_key, or the \
             environment variables AZURE_BLOB_ACCOUNT_NAME and AZURE_BLOB_ACCOUNT_KEY",
        ));
    };
    let mut builder = MicrosoftAzureBuilder::new()
        .with_account(account)
        .with_access_key(key)
        .with_container_name(&config.container)
        .with_retry(retry_config())
        .with_client_options(client_options())
        .with_allow_http(true);
    if let Some(endpoint) = config.endpoint.as_deref().filter(|e| !e.is_empty()) {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(StorageError::new(
                StorageErrorKind::InvalidConfig,
                format!("azure_endpoint must start with http:// or https://, got {endpoint}"),
            ));
        }
        builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string());
    }
    let store = builder.build().map_err(|e| {
        let mut error = classify(e);
        error.kind = StorageErrorKind::InvalidConfig;
        error
    })?;
    Ok(CloudStorage::new("azure-blob", &config.container, Arc::new(store)))
}
