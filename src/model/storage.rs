//! Storage connections as records (what is configured and how its last sync went), and the pure
//! rules of import listing: prefix normalisation and Label Studio's regex filter.

use serde_json::{Map, Value};

/// Source storages import tasks; target storages receive annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Import,
    Export,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Import => "import",
            Direction::Export => "export",
        }
    }
}

/// Label Studio's storage status values (spec 3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStatus {
    Initialized,
    Queued,
    InProgress,
    Failed,
    Completed,
    CompletedWithErrors,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Initialized => "initialized",
            SyncStatus::Queued => "queued",
            SyncStatus::InProgress => "in_progress",
            SyncStatus::Failed => "failed",
            SyncStatus::Completed => "completed",
            SyncStatus::CompletedWithErrors => "completed_with_errors",
        }
    }

    pub fn parse(text: &str) -> SyncStatus {
        match text {
            "queued" => SyncStatus::Queued,
            "in_progress" => SyncStatus::InProgress,
            "failed" => SyncStatus::Failed,
            "completed" => SyncStatus::Completed,
            "completed_with_errors" => SyncStatus::CompletedWithErrors,
            _ => SyncStatus::Initialized,
        }
    }

    /// A sync is queued or running: a new one must not start.
    pub fn is_active(self) -> bool {
        matches!(self, SyncStatus::Queued | SyncStatus::InProgress)
    }
}

/// One configured storage connection.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRecord {
    pub id: i64,
    pub project_id: i64,
    pub direction: Direction,
    /// `s3`, `gcs`, `azure`, `redis` or `localfiles`.
    pub kind: String,
    pub title: Option<String>,
    pub description: Option<String>,
    /// Non-secret connection fields (bucket, prefix, regex_filter, ...), by their wire names.
    pub settings: Map<String, Value>,
    /// Write-only fields (keys, passwords); never sent to clients or logs.
    pub secrets: Map<String, Value>,
    pub synchronizable: bool,
    pub status: SyncStatus,
    pub last_sync: Option<String>,
    pub last_sync_count: Option<i64>,
    pub last_sync_job: Option<String>,
    pub traceback: Option<String>,
    pub meta: Map<String, Value>,
    pub created_at: String,
}

impl StorageRecord {
    /// A new, unsaved storage of a project with no settings.
    pub fn new(kind: &str, direction: Direction, project_id: i64) -> StorageRecord {
        StorageRecord {
            id: 0,
            project_id,
            direction,
            kind: kind.to_string(),
            title: None,
            description: None,
            settings: Map::new(),
            secrets: Map::new(),
            synchronizable: true,
            status: SyncStatus::Initialized,
            last_sync: None,
            last_sync_count: None,
            last_sync_job: None,
            traceback: None,
            meta: Map::new(),
            created_at: String::new(),
        }
    }

    /// A text setting, with empty strings read as absent.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.settings
            .get(name)
            .or_else(|| self.secrets.get(name))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A boolean setting with a default.
    pub fn flag(&self, name: &str, default: bool) -> bool {
        self.settings.get(name).and_then(Value::as_bool).unwrap_or(default)
    }

    /// An integer setting with a default.
    pub fn integer(&self, name: &str, default: i64) -> i64 {
        self.settings.get(name).and_then(Value::as_i64).unwrap_or(default)
    }
}

/// The prefix a bucket listing uses: Label Studio strips trailing slashes and adds one (spec 3.2),
/// so `images` and `images/` both mean the folder `images/`. Empty means the whole bucket.
pub fn listing_prefix(prefix: Option<&str>) -> String {
    match prefix.map(|p| p.trim_end_matches('/')) {
        Some(p) if !p.is_empty() => format!("{p}/"),
        _ => String::new(),
    }
}

/// Label Studio's `regex_filter`: Python `re.match`, anchored at the start of the key, not at the
/// end. Compiling anchors the pattern; an invalid pattern is an error naming it.
pub fn compile_key_filter(pattern: Option<&str>) -> Result<Option<regex::Regex>, String> {
    match pattern.filter(|p| !p.is_empty()) {
        None => Ok(None),
        Some(pattern) => regex::Regex::new(&format!("^(?:{pattern})"))
            .map(Some)
            .map_err(|e| format!("invalid regex_filter {pattern:?}: {e}")),
    }
}

/// The key of an export object: `<prefix>/<annotation id>`, or the id alone without a prefix.
/// A trailing slash on the prefix does not double (unlike Label Studio, spec 9.8).
pub fn export_key(prefix: Option<&str>, annotation_id: i64) -> String {
    match prefix.map(|p| p.trim_end_matches('/')) {
        Some(p) if !p.is_empty() => format!("{p}/{annotation_id}"),
        _ => annotation_id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_normalised_to_one_trailing_slash() {
        assert_eq!(listing_prefix(Some("images")), "images/");
        assert_eq!(listing_prefix(Some("images//")), "images/");
        assert_eq!(listing_prefix(Some("")), "");
        assert_eq!(listing_prefix(None), "");
    }

    #[test]
    fn regex_is_anchored_at_start_only() {
        let filter = compile_key_filter(Some(r".*\.jpg")).unwrap().unwrap();
        assert!(filter.is_match("images/a.jpg"));
        assert!(filter.is_match("images/a.jpg.bak"));
        let filter = compile_key_filter(Some("a.*")).unwrap().unwrap();
        assert!(!filter.is_match("images/a.jpg"));
        assert!(compile_key_filter(Some("(")).is_err());
        assert!(compile_key_filter(Some("")).unwrap().is_none());
    }

    #[test]
    fn export_keys_never_double_slash() {
        assert_eq!(export_key(Some("out/"), 7), "out/7");
        assert_eq!(export_key(Some("out"), 7), "out/7");
        assert_eq!(export_key(None, 7), "7");
    }
}
