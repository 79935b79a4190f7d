//! The storage contract, checked the same way on every backend: S3 (s3s-fs), GCS
//! (fake-gcs-server), Azure (Azurite), Redis and local files. A backend whose server is not
//! configured is skipped with a line on stderr.

use std::io::Write;

use bytes::Bytes;
use futures::TryStreamExt;
use labelport::storage::{ByteRange, Storage, StorageErrorKind};

/// Every key under `prefix`, listed page by page.
async fn keys(storage: &dyn Storage, prefix: &str, recursive: bool) -> Vec<String> {
    let mut keys: Vec<String> = storage
        .list(prefix, recursive)
        .map_ok(|page| {
            futures::stream::iter(
                page.into_iter()
                    .map(|o| Ok::<_, labelport::storage::StorageError>(o.key)),
            )
        })
        .try_flatten()
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

/// The contract of `src/storage/mod.rs`, on one backend. `base` is a fresh key prefix; `kind`
/// names the backend for messages and for the two documented differences: Redis has no folders
/// (listing is always flat), and a local folder lists by path segment, not by raw prefix.
async fn conformance(kind: &str, storage: &dyn Storage, base: &str) {
    let body = |n: u32| Bytes::from(format!(r#"{{"n": {n}}}"#));
    for (key, n) in [("a/1.json", 1), ("a/2.json", 2), ("a/sub/3.json", 3), ("b/4.json", 4)] {
        storage.put(&format!("{base}{key}"), body(n)).await.unwrap();
    }
    storage
        .check()
        .await
        .unwrap_or_else(|e| panic!("{kind}: check failed: {e}"));
    assert_eq!(
        storage.get(&format!("{base}a/1.json")).await.unwrap(),
        body(1),
        "{kind}: get"
    );

    let all_a = vec![
        format!("{base}a/1.json"),
        format!("{base}a/2.json"),
        format!("{base}a/sub/3.json"),
    ];
    assert_eq!(
        keys(storage, &format!("{base}a/"), true).await,
        all_a,
        "{kind}: recursive listing"
    );
    if kind != "redis" {
        let top = vec![format!("{base}a/1.json"), format!("{base}a/2.json")];
        assert_eq!(
            keys(storage, &format!("{base}a/"), false).await,
            top,
            "{kind}: one-level listing"
        );
    }
    if kind != "localfiles" {
        assert_eq!(
            keys(storage, &format!("{base}a/1"), true).await,
            vec![format!("{base}a/1.json")],
            "{kind}: raw prefix"
        );
    }

    // Ranges return the asked bytes and say which.
    let stream = storage
        .get_stream(&format!("{base}a/1.json"), Some(ByteRange::Bounded(0, 3)))
        .await
        .unwrap();
    assert_eq!(stream.range, Some(0..3), "{kind}: range");
    let bytes: Vec<Bytes> = stream.body.try_collect().await.unwrap();
    assert_eq!(bytes.concat(), b"{\"n"[..].to_vec(), "{kind}: range bytes");

    // A missing object is NotFound; deleting one is not an error.
    let missing = storage.get(&format!("{base}missing.json")).await.unwrap_err();
    assert_eq!(missing.kind, StorageErrorKind::NotFound, "{kind}: {missing}");
    storage.delete(&format!("{base}missing.json")).await.unwrap();

    // A put replaces; a delete removes.
    storage.put(&format!("{base}a/2.json"), body(22)).await.unwrap();
    assert_eq!(
        storage.get(&format!("{base}a/2.json")).await.unwrap(),
        body(22),
        "{kind}: overwrite"
    );
    storage.delete(&format!("{base}a/2.json")).await.unwrap();
    assert!(
        !keys(storage, &format!("{base}a/"), true)
            .await
            .contains(&format!("{base}a/2.json")),
        "{kind}: delete"
    );

    // Signed URLs where the backend declares them, fetched with a plain client.
    let signed = storage
        .signed_url(&format!("{base}a/1.json"), std::time::Duration::from_secs(60))
        .await;
    if storage.capabilities().presign {
        let url = signed.unwrap_or_else(|e| panic!("{kind}: signing failed: {e}"));
        let fetched = reqwest::get(&url).await.unwrap();
        assert!(
            fetched.status().is_success(),
            "{kind}: {url} answered {}",
            fetched.status()
        );
        assert_eq!(fetched.bytes().await.unwrap(), body(1), "{kind}: signed url body");
    } else {
        assert_eq!(
            signed.unwrap_err().kind,
            StorageErrorKind::Unsupported,
            "{kind}: presign declared absent"
        );
    }

    for key in keys(storage, base, true).await {
        storage.delete(&key).await.unwrap();
    }
}

fn skip(kind: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "{kind} is not configured: its conformance test was skipped"
    );
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn fresh() -> String {
    format!("conformance-{}/", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn s3_keeps_the_storage_contract() {
    let (Some(endpoint), Some(root), Some(key), Some(secret)) = (
        var("LABELPORT_TEST_S3_ENDPOINT"),
        var("LABELPORT_TEST_S3_ROOT"),
        var("LABELPORT_TEST_S3_ACCESS_KEY"),
        var("LABELPORT_TEST_S3_SECRET_KEY"),
    ) else {
        return skip("S3");
    };
    let bucket = format!("lp-conf-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    std::fs::create_dir_all(std::path::Path::new(&root).join(&bucket)).unwrap();
    let storage = labelport::storage::s3::connect(&labelport::storage::s3::S3Config {
        bucket: bucket.clone(),
        region: None,
        endpoint: Some(endpoint),
        access_key_id: Some(key),
        secret_access_key: Some(secret),
        session_token: None,
    })
    .unwrap();
    conformance("s3", &storage, &fresh()).await;
    let _ = std::fs::remove_dir_all(std::path::Path::new(&root).join(&bucket));
}

#[tokio::test]
async fn gcs_keeps_the_storage_contract() {
    let (Some(endpoint), Some(credentials)) = (var("STORAGE_EMULATOR_HOST"), var("LABELPORT_TEST_GCS_CREDENTIALS"))
    else {
        return skip("GCS");
    };
    let bucket = format!("lp-conf-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    reqwest::Client::new()
        .post(format!("{endpoint}/storage/v1/b?project=test"))
        .json(&serde_json::json!({"name": bucket}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let storage = labelport::storage::gcs::connect(&labelport::storage::gcs::GcsConfig {
        bucket,
        credentials_json: Some(std::fs::read_to_string(credentials).unwrap()),
        emulator_host: Some(endpoint),
    })
    .unwrap();
    conformance("gcs", &storage, &fresh()).await;
}

#[tokio::test]
async fn azure_keeps_the_storage_contract() {
    let (Some(endpoint), Some(account), Some(key)) = (
        var("LABELPORT_TEST_AZURE_ENDPOINT"),
        var("LABELPORT_TEST_AZURE_ACCOUNT"),
        var("LABELPORT_TEST_AZURE_KEY"),
    ) else {
        return skip("Azure");
    };
    let storage = labelport::storage::azure::connect(&labelport::storage::azure::AzureConfig {
        container: "lp-test-a".into(),
        account_name: Some(account),
        account_key: Some(key),
        endpoint: Some(endpoint),
    })
    .unwrap();
    conformance("azure", &storage, &fresh()).await;
}

#[tokio::test]
async fn redis_keeps_the_storage_contract() {
    let storage = labelport::storage::redis::RedisStorage::new(labelport::storage::redis::RedisConfig {
        host: "127.0.0.1".into(),
        port: 6379,
        db: 4,
        ..Default::default()
    })
    .unwrap();
    if storage.check().await.is_err() {
        return skip("Redis on 127.0.0.1:6379");
    }
    conformance("redis", &storage, &fresh()).await;
}

#[tokio::test]
async fn local_files_keep_the_storage_contract() {
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("dataset");
    std::fs::create_dir(&folder).unwrap();
    let settings = labelport::storage::local::LocalFilesSettings {
        document_root: root.path().to_path_buf(),
        serving_enabled: true,
    };
    let storage = labelport::storage::local::LocalStorage::new(folder.to_str(), &settings).unwrap();
    conformance("localfiles", &storage, "").await;
    // Writes are atomic (write, then rename): no temporary file is left behind.
    storage.put("x.json", Bytes::from_static(b"{}")).await.unwrap();
    fn files(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else {
                out.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut names = Vec::new();
    files(&folder, &mut names);
    assert_eq!(names, vec!["x.json".to_string()], "only the written file remains");
}
