//! Local files: a folder under `LOCAL_FILES_DOCUMENT_ROOT`, through `object_store`'s
//! `LocalFileSystem` (atomic writes by write-then-rename). Keys are paths relative to the storage
//! folder; media are served by the app at `/data/local-files/?d=<path relative to the root>`.

use std::path::{Component, Path as FsPath, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::cloud::{classify, info_from_meta, stream_object};
use super::{ByteRange, Capabilities, ObjectInfo, ObjectStream, Storage, StorageError, StorageErrorKind};

/// Where local files may come from, read from the environment like Label Studio
/// (`LOCAL_FILES_DOCUMENT_ROOT`, `LOCAL_FILES_SERVING_ENABLED`, also with `LABEL_STUDIO_`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFilesSettings {
    pub document_root: PathBuf,
    pub serving_enabled: bool,
}

impl LocalFilesSettings {
    pub fn from_env() -> LocalFilesSettings {
        let root = super::env_fallback("LOCAL_FILES_DOCUMENT_ROOT").unwrap_or_else(|| "/".to_string());
        LocalFilesSettings {
            document_root: normalize(FsPath::new(&root)),
            serving_enabled: crate::config::flag_env("LOCAL_FILES_SERVING_ENABLED", false),
        }
    }
}

/// Collapses `.` and `..` lexically and drops trailing slashes (Python's `os.path.normpath`).
pub fn normalize(path: &FsPath) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Why a local storage folder cannot be used (spec 6.3), worded for a person.
pub fn check_folder(path: Option<&str>, settings: &LocalFilesSettings) -> Result<PathBuf, String> {
    let Some(path) = path.filter(|p| !p.trim().is_empty()) else {
        return Err("Path must be set for Local Files storage".into());
    };
    if !settings.serving_enabled {
        return Err(
            "Serving local files is disabled: set LOCAL_FILES_SERVING_ENABLED=true and \
                    LOCAL_FILES_DOCUMENT_ROOT to the folder that holds your data, then restart labelport"
                .into(),
        );
    }
    let folder = normalize(FsPath::new(path.trim()));
    let root = &settings.document_root;
    if !folder.is_absolute() {
        return Err(format!("Path \"{path}\" must be absolute"));
    }
    if &folder == root {
        return Err(format!(
            "Path \"{}\" is LOCAL_FILES_DOCUMENT_ROOT itself: use a subdirectory, for example {}",
            folder.display(),
            root.join("dataset1").display()
        ));
    }
    if !folder.starts_with(root) {
        return Err(format!(
            "Path \"{}\" must be a subdirectory of LOCAL_FILES_DOCUMENT_ROOT={}",
            folder.display(),
            root.display()
        ));
    }
    if !folder.is_dir() {
        return Err(format!("Absolute local path \"{}\" does not exist", folder.display()));
    }
    Ok(folder)
}

/// One folder of local files.
#[derive(Debug)]
pub struct LocalStorage {
    folder: PathBuf,
    /// The document root with symlinks resolved: no file outside it is listed or read, even
    /// through a symlink inside the folder.
    real_root: PathBuf,
    /// The folder relative to the document root, for `/data/local-files/?d=` links.
    relative_folder: String,
    store: LocalFileSystem,
}

impl LocalStorage {
    pub fn new(path: Option<&str>, settings: &LocalFilesSettings) -> Result<LocalStorage, StorageError> {
        let folder = check_folder(path, settings).map_err(|m| StorageError::new(StorageErrorKind::InvalidConfig, m))?;
        let relative_folder = folder
            .strip_prefix(&settings.document_root)
            .map(|p| p.to_string_lossy().trim_matches('/').to_string())
            .unwrap_or_default();
        let store = LocalFileSystem::new_with_prefix(&folder).map_err(classify)?;
        let real_root =
            std::fs::canonicalize(&settings.document_root).unwrap_or_else(|_| settings.document_root.clone());
        Ok(LocalStorage {
            folder,
            real_root,
            relative_folder,
            store,
        })
    }

    /// The storage folder (absolute, normalised).
    pub fn folder(&self) -> &FsPath {
        &self.folder
    }

    /// Whether a key's file, symlinks resolved, lies inside the document root.
    fn inside_root(folder: &FsPath, real_root: &FsPath, key: &str) -> bool {
        std::fs::canonicalize(folder.join(key)).is_ok_and(|real| real.starts_with(real_root))
    }

    /// Drops listed files that resolve outside the document root (symlinks pointing out).
    async fn confined(&self, objects: Vec<ObjectInfo>) -> Result<Vec<ObjectInfo>, StorageError> {
        let (folder, real_root) = (self.folder.clone(), self.real_root.clone());
        tokio::task::spawn_blocking(move || {
            objects
                .into_iter()
                .filter(|o| LocalStorage::inside_root(&folder, &real_root, &o.key))
                .collect()
        })
        .await
        .map_err(|e| StorageError::new(StorageErrorKind::Other, e.to_string()))
    }

    /// Refuses a key whose file resolves outside the document root.
    async fn check_inside(&self, key: &str) -> Result<(), StorageError> {
        let (folder, real_root, owned) = (self.folder.clone(), self.real_root.clone(), key.to_string());
        let inside = tokio::task::spawn_blocking(move || LocalStorage::inside_root(&folder, &real_root, &owned))
            .await
            .unwrap_or(false);
        if inside {
            Ok(())
        } else {
            Err(StorageError::new(
                StorageErrorKind::NotFound,
                format!("{key} does not exist inside LOCAL_FILES_DOCUMENT_ROOT"),
            ))
        }
    }
}

fn path_of(key: &str) -> Result<Path, StorageError> {
    Path::parse(key).map_err(|e| StorageError::new(StorageErrorKind::InvalidConfig, e.to_string()))
}

/// Percent-encodes a path for a query value, keeping `/` readable.
pub fn quote_path(path: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(path, KEEP).to_string()
}

#[async_trait]
impl Storage for LocalStorage {
    fn capabilities(&self) -> Capabilities {
        Capabilities::read_write(false)
    }

    fn object_uri(&self, key: &str) -> String {
        let relative = if self.relative_folder.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.relative_folder)
        };
        format!("/data/local-files/?d={}", quote_path(&relative))
    }

    fn list<'a>(&'a self, prefix: &'a str, recursive: bool) -> BoxStream<'a, Result<Vec<ObjectInfo>, StorageError>> {
        let prefix = (!prefix.is_empty()).then(|| Path::from(prefix.trim_end_matches('/')));
        if recursive {
            // Sorted pages, so syncs see files in a stable order.
            stream::once(async move {
                let mut objects: Vec<ObjectInfo> = self
                    .store
                    .list(prefix.as_ref())
                    .map_ok(|meta| info_from_meta(&meta))
                    .try_collect()
                    .await
                    .map_err(classify)?;
                objects.sort_by(|a, b| a.key.cmp(&b.key));
                self.confined(objects).await
            })
            .flat_map(|page: Result<Vec<ObjectInfo>, StorageError>| match page {
                Ok(objects) => stream::iter(objects.chunks(1000).map(|c| Ok(c.to_vec())).collect::<Vec<_>>()).boxed(),
                Err(error) => stream::iter(vec![Err(error)]).boxed(),
            })
            .boxed()
        } else {
            stream::once(async move {
                let listing = self
                    .store
                    .list_with_delimiter(prefix.as_ref())
                    .await
                    .map_err(classify)?;
                let mut objects: Vec<ObjectInfo> = listing.objects.iter().map(info_from_meta).collect();
                objects.sort_by(|a, b| a.key.cmp(&b.key));
                self.confined(objects).await
            })
            .boxed()
        }
    }

    async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        self.check_inside(key).await?;
        let result = self.store.get(&path_of(key)?).await.map_err(classify)?;
        result.bytes().await.map_err(classify)
    }

    async fn get_stream(&self, key: &str, range: Option<ByteRange>) -> Result<ObjectStream, StorageError> {
        self.check_inside(key).await?;
        stream_object(&self.store, &path_of(key)?, range).await
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        self.store
            .put(&path_of(key)?, PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&path_of(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(other) => Err(classify(other)),
        }
    }

    async fn signed_url(&self, _key: &str, _ttl: Duration) -> Result<String, StorageError> {
        Err(StorageError::new(
            StorageErrorKind::Unsupported,
            "local files are served by labelport at /data/local-files/, not by signed URLs",
        ))
    }

    async fn check(&self) -> Result<(), StorageError> {
        if self.folder.is_dir() {
            Ok(())
        } else {
            Err(StorageError::new(
                StorageErrorKind::NotFound,
                format!("Absolute local path \"{}\" does not exist", self.folder.display()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(root: &FsPath) -> LocalFilesSettings {
        LocalFilesSettings {
            document_root: root.to_path_buf(),
            serving_enabled: true,
        }
    }

    #[test]
    fn folder_checks_name_the_problem() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("data")).unwrap();
        let ok = settings(root.path());
        let inside = root.path().join("data");
        assert_eq!(check_folder(Some(inside.to_str().unwrap()), &ok).unwrap(), inside);
        assert!(check_folder(None, &ok).unwrap_err().contains("Path must be set"));
        assert!(
            check_folder(Some(root.path().to_str().unwrap()), &ok)
                .unwrap_err()
                .contains("subdirectory")
        );
        assert!(
            check_folder(Some("/etc"), &ok)
                .unwrap_err()
                .contains("must be a subdirectory")
        );
        let escaping = format!("{}/data/../../etc", root.path().display());
        assert!(
            check_folder(Some(&escaping), &ok)
                .unwrap_err()
                .contains("must be a subdirectory")
        );
        let missing = root.path().join("missing");
        assert!(
            check_folder(Some(missing.to_str().unwrap()), &ok)
                .unwrap_err()
                .contains("does not exist")
        );
        let disabled = LocalFilesSettings {
            serving_enabled: false,
            ..ok
        };
        assert!(
            check_folder(Some(inside.to_str().unwrap()), &disabled)
                .unwrap_err()
                .contains("LOCAL_FILES_SERVING_ENABLED")
        );
    }

    #[tokio::test]
    async fn symlinks_out_of_the_root_are_neither_listed_nor_read() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.json"), "{\"secret\": true}").unwrap();
        let root = tempfile::tempdir().unwrap();
        let folder = root.path().join("data");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("a.json"), "{}").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.json"), folder.join("link.json")).unwrap();
        std::os::unix::fs::symlink(folder.join("a.json"), folder.join("inside.json")).unwrap();
        let storage = LocalStorage::new(folder.to_str(), &settings(root.path())).unwrap();
        for recursive in [true, false] {
            let pages: Vec<Vec<ObjectInfo>> = storage.list("", recursive).try_collect().await.unwrap();
            let keys: Vec<String> = pages.concat().into_iter().map(|o| o.key).collect();
            assert_eq!(
                keys,
                vec!["a.json".to_string(), "inside.json".to_string()],
                "recursive {recursive}"
            );
        }
        assert_eq!(
            storage.get("link.json").await.unwrap_err().kind,
            StorageErrorKind::NotFound
        );
        assert!(storage.get_stream("link.json", None).await.is_err());
        assert_eq!(storage.get("inside.json").await.unwrap(), Bytes::from_static(b"{}"));
    }

    #[test]
    fn links_are_relative_to_the_root_and_quoted() {
        assert_eq!(quote_path("dataset 1/a#b.jpg"), "dataset%201/a%23b.jpg");
        assert_eq!(normalize(FsPath::new("/a/b/../c/./d/")), PathBuf::from("/a/c/d"));
    }
}
