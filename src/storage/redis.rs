//! Redis: keys under a prefix hold task JSON (import) or annotation JSON (export). Listing uses
//! `SCAN MATCH <escaped prefix>*` page by page, never `KEYS`; any database number works; TLS
//! (`rediss://`) with the system's roots or a given CA, and ACL usernames.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, RedisConnectionInfo};
use tokio::sync::OnceCell;

use super::{ByteRange, Capabilities, ObjectInfo, ObjectStream, Storage, StorageError, StorageErrorKind};

/// How to reach one Redis database.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedisConfig {
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Connect with TLS (`rediss://`).
    pub tls: bool,
    /// A PEM CA certificate to trust instead of the system's roots (private CAs).
    pub tls_ca_cert: Option<String>,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .finish()
    }
}

/// One Redis database.
pub struct RedisStorage {
    config: RedisConfig,
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
}

impl std::fmt::Debug for RedisStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStorage").field("config", &self.config).finish()
    }
}

fn classify(error: redis::RedisError) -> StorageError {
    let kind = if error.is_timeout()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_io_error()
    {
        StorageErrorKind::Temporary
    } else if matches!(error.kind(), redis::ErrorKind::AuthenticationFailed) {
        StorageErrorKind::Unauthenticated
    } else {
        StorageErrorKind::Other
    };
    StorageError::new(kind, error.to_string())
}

/// Escapes Redis glob characters so a prefix matches literally.
pub fn escape_glob(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

impl RedisStorage {
    pub fn new(config: RedisConfig) -> Result<RedisStorage, StorageError> {
        let host = if config.host.trim().is_empty() {
            "localhost".to_string()
        } else {
            config.host.clone()
        };
        let mut settings = RedisConnectionInfo::default().set_db(config.db);
        if let Some(username) = config.username.as_deref().filter(|u| !u.is_empty()) {
            settings = settings.set_username(username);
        }
        if let Some(password) = config.password.as_deref().filter(|p| !p.is_empty()) {
            settings = settings.set_password(password);
        }
        let invalid = |e: redis::RedisError| StorageError::new(StorageErrorKind::InvalidConfig, e.to_string());
        let address = if config.tls {
            redis::ConnectionAddr::TcpTls {
                host,
                port: config.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            redis::ConnectionAddr::Tcp(host, config.port)
        };
        let info = address
            .into_connection_info()
            .map_err(invalid)?
            .set_redis_settings(settings);
        let client = match config
            .tls_ca_cert
            .as_deref()
            .filter(|c| config.tls && !c.trim().is_empty())
        {
            Some(ca) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.as_bytes().to_vec()),
                },
            )
            .map_err(invalid)?,
            None => redis::Client::open(info).map_err(invalid)?,
        };
        Ok(RedisStorage {
            config,
            client,
            connection: OnceCell::new(),
        })
    }

    /// A shared connection that reconnects by itself after a drop.
    async fn connection(&self) -> Result<ConnectionManager, StorageError> {
        self.connection
            .get_or_try_init(|| async {
                let options = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(5)))
                    .set_response_timeout(Some(Duration::from_secs(30)))
                    .set_number_of_retries(2);
                ConnectionManager::new_with_config(self.client.clone(), options)
                    .await
                    .map_err(classify)
            })
            .await
            .cloned()
    }

    async fn get_value(&self, key: &str) -> Result<Bytes, StorageError> {
        let mut connection = self.connection().await?;
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut connection)
            .await
            .map_err(|e| {
                if e.to_string().contains("WRONGTYPE") {
                    StorageError::new(StorageErrorKind::Other, "the key does not hold a string value")
                } else {
                    classify(e)
                }
            })?;
        value
            .map(Bytes::from)
            .ok_or_else(|| StorageError::new(StorageErrorKind::NotFound, format!("key {key} does not exist")))
    }
}

#[async_trait]
impl Storage for RedisStorage {
    fn capabilities(&self) -> Capabilities {
        Capabilities::read_write(false)
    }

    fn object_uri(&self, key: &str) -> String {
        format!(
            "redis://{}:{}/{}/{key}",
            self.config.host, self.config.port, self.config.db
        )
    }

    fn list<'a>(&'a self, prefix: &'a str, _recursive: bool) -> BoxStream<'a, Result<Vec<ObjectInfo>, StorageError>> {
        let pattern = format!("{}*", escape_glob(prefix));
        // The state is the SCAN cursor; `None` after the cursor came back as 0 ends the stream.
        stream::try_unfold(Some(0u64), move |cursor| {
            let pattern = pattern.clone();
            async move {
                let Some(cursor) = cursor else { return Ok(None) };
                let mut connection = self.connection().await?;
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut connection)
                    .await
                    .map_err(classify)?;
                let objects = keys
                    .into_iter()
                    .map(|key| ObjectInfo {
                        key,
                        size: 0,
                        etag: None,
                        last_modified: None,
                    })
                    .collect();
                Ok(Some((objects, (next != 0).then_some(next))))
            }
        })
        .boxed()
    }

    async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        self.get_value(key).await
    }

    async fn get_stream(&self, key: &str, range: Option<ByteRange>) -> Result<ObjectStream, StorageError> {
        let bytes = self.get_value(key).await?;
        let size = bytes.len() as u64;
        let (body, returned) = match range {
            None => (bytes, None),
            Some(ByteRange::From(start)) => {
                let start = start.min(size);
                (bytes.slice(start as usize..), Some(start..size))
            }
            Some(ByteRange::Bounded(start, end)) => {
                let (start, end) = (start.min(size), end.min(size));
                (bytes.slice(start as usize..end as usize), Some(start..end))
            }
        };
        Ok(ObjectStream {
            info: ObjectInfo {
                key: key.to_string(),
                size,
                etag: None,
                last_modified: None,
            },
            content_type: Some("application/json".into()),
            range: returned,
            body: stream::once(async move { Ok(body) }).boxed(),
        })
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        let mut connection = self.connection().await?;
        redis::cmd("SET")
            .arg(key)
            .arg(bytes.as_ref())
            .query_async::<()>(&mut connection)
            .await
            .map_err(classify)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let mut connection = self.connection().await?;
        redis::cmd("DEL")
            .arg(key)
            .query_async::<i64>(&mut connection)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn signed_url(&self, _key: &str, _ttl: Duration) -> Result<String, StorageError> {
        Err(StorageError::new(
            StorageErrorKind::Unsupported,
            "Redis values have no URLs",
        ))
    }

    async fn check(&self) -> Result<(), StorageError> {
        let mut connection = self.connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_in_prefixes_match_literally() {
        assert_eq!(escape_glob("tasks[1]/*?"), "tasks\\[1\\]/\\*\\?");
        assert_eq!(escape_glob("plain:"), "plain:");
    }
}
