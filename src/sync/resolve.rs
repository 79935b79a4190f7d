//! Links in task data: `s3://bucket/key` (and `gs://`, `azure-blob://`) URIs are rewritten on the
//! way out to `/tasks/{id}/resolve/?fileuri=<base64>`, and that endpoint finds the import storage
//! that may serve the URI (spec 5). Pure functions only.

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::model::storage::StorageRecord;
use crate::storage::{bucket_field, uri_scheme};

/// A bucket some import storage of the project can sign or proxy for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub scheme: &'static str,
    pub bucket: String,
}

/// The buckets a project's import storages claim.
pub fn claims(storages: &[StorageRecord]) -> Vec<Claim> {
    storages
        .iter()
        .filter_map(|s| {
            let scheme = uri_scheme(&s.kind)?;
            let bucket = s.text(bucket_field(&s.kind))?;
            Some(Claim {
                scheme,
                bucket: bucket.to_string(),
            })
        })
        .collect()
}

/// Splits `scheme://bucket/key` into its parts.
pub fn parse_uri(uri: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = uri.split_once("://")?;
    let (bucket, key) = rest.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((scheme, bucket, key))
}

fn is_claimed(uri: &str, claims: &[Claim]) -> bool {
    parse_uri(uri).is_some_and(|(scheme, bucket, _)| claims.iter().any(|c| c.scheme == scheme && c.bucket == bucket))
}

/// The resolver URL for a URI of a task.
pub fn resolver_url(task_id: i64, uri: &str) -> String {
    format!("/tasks/{task_id}/resolve/?fileuri={}", URL_SAFE.encode(uri.as_bytes()))
}

/// Decodes a `fileuri` parameter: URL-safe base64 (padded or not), or else a raw URI.
pub fn decode_fileuri(fileuri: &str) -> String {
    let trimmed = fileuri.trim();
    URL_SAFE
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed.trim_end_matches('=')))
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|decoded| decoded.contains("://"))
        .unwrap_or_else(|| trimmed.to_string())
}

fn quoted_uri_pattern() -> &'static regex::Regex {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        regex::Regex::new(r#"(?P<quote>["'])(?P<uri>(?:s3|gs|azure-blob)://[^"'\s]+)["']"#).expect("a valid pattern")
    })
}

/// Rewrites every claimed URI in task data (nested lists and objects too, and quoted URIs inside
/// markup such as `<img src="s3://b/k.jpg">`) to its resolver URL.
pub fn rewrite_task_data(data: &mut Value, task_id: i64, claims: &[Claim]) {
    if claims.is_empty() {
        return;
    }
    match data {
        Value::String(text) => {
            if is_claimed(text, claims) {
                *text = resolver_url(task_id, text);
            } else if text.contains("://") {
                let replaced = quoted_uri_pattern().replace_all(text, |captures: &regex::Captures| {
                    let quote = &captures["quote"];
                    let uri = &captures["uri"];
                    if is_claimed(uri, claims) {
                        format!("{quote}{}{quote}", resolver_url(task_id, uri))
                    } else {
                        captures[0].to_string()
                    }
                });
                if let std::borrow::Cow::Owned(new_text) = replaced {
                    *text = new_text;
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_task_data(v, task_id, claims)),
        Value::Object(map) => map.values_mut().for_each(|v| rewrite_task_data(v, task_id, claims)),
        _ => {}
    }
}

/// The first import storage that claims the URI's scheme and bucket, with the object key.
pub fn storage_for_uri<'a>(storages: &'a [StorageRecord], uri: &'a str) -> Option<(&'a StorageRecord, &'a str)> {
    let (scheme, bucket, key) = parse_uri(uri)?;
    storages
        .iter()
        .find(|s| uri_scheme(&s.kind) == Some(scheme) && s.text(bucket_field(&s.kind)) == Some(bucket))
        .map(|s| (s, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim() -> Vec<Claim> {
        vec![Claim {
            scheme: "s3",
            bucket: "b".into(),
        }]
    }

    #[test]
    fn rewrites_claimed_uris_anywhere_and_leaves_others() {
        let mut data = json!({
            "image": "s3://b/k.jpg",
            "other": "s3://not-ours/k.jpg",
            "html": "<img src=\"s3://b/a b.png\"><img src='s3://b/c.png'>",
            "list": [{"nested": "s3://b/n.jpg"}],
            "plain": "hello",
        });
        rewrite_task_data(&mut data, 7, &claim());
        let image = data["image"].as_str().unwrap();
        assert!(image.starts_with("/tasks/7/resolve/?fileuri="));
        assert_eq!(decode_fileuri(image.split_once("fileuri=").unwrap().1), "s3://b/k.jpg");
        assert_eq!(data["other"], "s3://not-ours/k.jpg");
        assert!(
            data["html"]
                .as_str()
                .unwrap()
                .contains("src='/tasks/7/resolve/?fileuri=")
        );
        assert!(
            data["list"][0]["nested"]
                .as_str()
                .unwrap()
                .starts_with("/tasks/7/resolve/")
        );
        assert_eq!(data["plain"], "hello");
    }

    #[test]
    fn decodes_padded_unpadded_and_raw_fileuris() {
        let encoded = URL_SAFE.encode("s3://b/k.jpg");
        assert_eq!(decode_fileuri(&encoded), "s3://b/k.jpg");
        assert_eq!(decode_fileuri(encoded.trim_end_matches('=')), "s3://b/k.jpg");
        assert_eq!(decode_fileuri("s3://b/raw.jpg"), "s3://b/raw.jpg");
        assert_eq!(parse_uri("s3://b/dir/k.jpg"), Some(("s3", "b", "dir/k.jpg")));
        assert_eq!(parse_uri("s3://b"), None);
    }
}
