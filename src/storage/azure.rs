//! Azure Blob Storage through `object_store`'s `MicrosoftAzure` (SharedKey auth, read-only
//! per-blob SAS URLs). Unlike Label Studio, the endpoint is configurable: the field
//! `azure_endpoint`, else `AZURE_BLOB_ENDPOINT`, else the public cloud.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use object_store::azure::{MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::path::Path;
use object_store::signer::{Method, Signer, Url};
use sha2::{Digest, Sha256};

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
    // Checked here so a pasted wrong value gets a message a person can act on.
    let key_bytes = STANDARD.decode(key.trim()).map_err(|_| {
        StorageError::new(
            StorageErrorKind::InvalidConfig,
            "The Azure account key is not valid: paste the base64 key from the storage account's Access keys page",
        )
    })?;
    let mut builder = MicrosoftAzureBuilder::new()
        .with_account(account)
        .with_access_key(key.trim())
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
    let store = Arc::new(builder.build().map_err(|e| {
        let mut error = classify(e);
        error.kind = StorageErrorKind::InvalidConfig;
        error
    })?);
    let signer = SasSigner {
        store: Arc::clone(&store),
        account: account.to_string(),
        key: key_bytes,
    };
    Ok(CloudStorage::new("azure-blob", &config.container, store).with_signer(Arc::new(signer)))
}

/// Read-only SAS URLs whose signature names the blob as Azure expects. `object_store` signs the
/// percent-encoded URL path, which Azure and Azurite refuse for every blob name that needs
/// encoding (a space, non-ASCII letters); this takes its URL and parameters and signs them again
/// with the decoded name in the canonicalized resource.
struct SasSigner {
    store: Arc<MicrosoftAzure>,
    account: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for SasSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SasSigner").field("account", &self.account).finish()
    }
}

#[async_trait]
impl Signer for SasSigner {
    async fn signed_url(&self, method: Method, path: &Path, expires_in: Duration) -> object_store::Result<Url> {
        let mut url = self.store.signed_url(method, path, expires_in).await?;
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let param = |name: &str| {
            query
                .iter()
                .find(|(key, _)| key == name)
                .map_or("", |(_, value)| value.as_str())
        };
        // A user delegation SAS (signed with a bearer token's key) has more fields; leave it be.
        if !param("skoid").is_empty() {
            return Ok(url);
        }
        let name = percent_encoding::percent_decode_str(url.path()).decode_utf8_lossy();
        // Azurite and other path-style endpoints carry the account in the path already.
        let resource = if url.host_str().unwrap_or_default().contains(&self.account) {
            format!("/blob/{}{name}", self.account)
        } else {
            format!("/blob{name}")
        };
        let string_to_sign = service_sas_string_to_sign(
            param("sp"),
            param("st"),
            param("se"),
            &resource,
            param("sv"),
            param("sr"),
        );
        let signature = STANDARD.encode(hmac_sha256(&self.key, string_to_sign.as_bytes()));
        let pairs: Vec<(String, String)> = query
            .into_iter()
            .map(|(key, value)| {
                if key == "sig" {
                    (key, signature.clone())
                } else {
                    (key, value)
                }
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        Ok(url)
    }
}

/// The string a service SAS (version 2020-12-06 and later) signs; the fields not used are empty.
fn service_sas_string_to_sign(
    permissions: &str,
    start: &str,
    expiry: &str,
    resource: &str,
    version: &str,
    signed_resource: &str,
) -> String {
    [
        permissions,
        start,
        expiry,
        resource,
        "", // identifier
        "", // ip
        "", // protocol
        version,
        signed_resource,
        "", // snapshot time
        "", // encryption scope
        "", // rscc
        "", // rscd
        "", // rsce
        "", // rscl
        "", // rsct
    ]
    .join("\n")
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first (RFC 4231 test case 6).
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
