//! Storage connections, their sync state and lease, and the link tables: which object became
//! which task (import) and which annotation was written where (export).

use std::collections::HashSet;

use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::users::placeholders;
use super::{Db, DbError, WriteTx, now, parse_json, to_flag};
use crate::model::entities::Annotation;
use crate::model::storage::{Direction, StorageRecord, SyncStatus};

const STORAGE_COLUMNS: &str = "s.id, s.project_id, s.direction, s.kind, s.title, s.description, s.settings, s.secrets, \
     s.synchronizable, s.status, s.last_sync, s.last_sync_count, s.last_sync_job, s.traceback, s.meta, s.created_at";

/// One object-to-task link to record with a new task.
#[derive(Debug, Clone, PartialEq)]
pub struct NewImportLink {
    pub task_index: usize,
    pub key: String,
    pub row_index: Option<i64>,
    pub etag: Option<String>,
    pub size: Option<i64>,
    pub last_modified: Option<String>,
}

fn object_of(text: &str) -> Result<Map<String, Value>, DbError> {
    Ok(match parse_json(text)? {
        Value::Object(map) => map,
        _ => Map::new(),
    })
}

fn storage_from_row(row: &AnyRow) -> Result<StorageRecord, DbError> {
    let direction: String = row.try_get("direction")?;
    Ok(StorageRecord {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        direction: if direction == "export" {
            Direction::Export
        } else {
            Direction::Import
        },
        kind: row.try_get("kind")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        settings: object_of(&row.try_get::<String, _>("settings")?)?,
        secrets: object_of(&row.try_get::<String, _>("secrets")?)?,
        synchronizable: row.try_get::<i64, _>("synchronizable")? != 0,
        status: SyncStatus::parse(&row.try_get::<String, _>("status")?),
        last_sync: row.try_get("last_sync")?,
        last_sync_count: row.try_get("last_sync_count")?,
        last_sync_job: row.try_get("last_sync_job")?,
        traceback: row.try_get("traceback")?,
        meta: object_of(&row.try_get::<String, _>("meta")?)?,
        created_at: row.try_get("created_at")?,
    })
}

/// How a sync run ends.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncOutcome {
    pub status: SyncStatus,
    pub count: i64,
    pub traceback: Option<String>,
    pub meta: Map<String, Value>,
}

impl Db {
    /// Creates a storage connection.
    pub async fn create_storage(&self, record: &StorageRecord) -> Result<StorageRecord, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO storage (project_id, direction, kind, title, description, settings, secrets, synchronizable, \
             status, meta, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'initialized', '{{}}', $9) \
             RETURNING {}",
            STORAGE_COLUMNS.replace("s.", "")
        )))
        .bind(record.project_id)
        .bind(record.direction.as_str())
        .bind(&record.kind)
        .bind(&record.title)
        .bind(&record.description)
        .bind(Value::Object(record.settings.clone()).to_string())
        .bind(Value::Object(record.secrets.clone()).to_string())
        .bind(to_flag(record.synchronizable))
        .bind(now())
        .fetch_one(self.pool())
        .await?;
        storage_from_row(&row)
    }

    /// A storage of this direction and kind whose project belongs to the organization.
    pub async fn storage(
        &self,
        organization_id: i64,
        direction: Direction,
        kind: &str,
        id: i64,
    ) -> Result<StorageRecord, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STORAGE_COLUMNS} FROM storage s JOIN project p ON p.id = s.project_id \
             WHERE s.id = $1 AND s.direction = $2 AND s.kind = $3 AND p.organization_id = $4"
        )))
        .bind(id)
        .bind(direction.as_str())
        .bind(kind)
        .bind(organization_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound)?;
        storage_from_row(&row)
    }

    /// A storage by id alone (for background jobs, which act for no user).
    pub async fn storage_by_id(&self, id: i64) -> Result<StorageRecord, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STORAGE_COLUMNS} FROM storage s WHERE s.id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound)?;
        storage_from_row(&row)
    }

    /// A project's storages of one direction, optionally of one kind, oldest first.
    pub async fn project_storages(
        &self,
        project_id: i64,
        direction: Direction,
        kind: Option<&str>,
    ) -> Result<Vec<StorageRecord>, DbError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STORAGE_COLUMNS} FROM storage s WHERE s.project_id = $1 AND s.direction = $2 \
             AND ($3 IS NULL OR s.kind = $3) ORDER BY s.id"
        )))
        .bind(project_id)
        .bind(direction.as_str())
        .bind(kind)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(storage_from_row).collect()
    }

    /// Every storage of one direction and kind in an organization's projects.
    pub async fn organization_storages(
        &self,
        organization_id: i64,
        direction: Direction,
        kind: &str,
    ) -> Result<Vec<StorageRecord>, DbError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STORAGE_COLUMNS} FROM storage s JOIN project p ON p.id = s.project_id \
             WHERE p.organization_id = $1 AND s.direction = $2 AND s.kind = $3 ORDER BY s.id"
        )))
        .bind(organization_id)
        .bind(direction.as_str())
        .bind(kind)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(storage_from_row).collect()
    }

    /// Saves the configuration fields of a storage (not its sync state).
    pub async fn update_storage_config(&self, record: &StorageRecord) -> Result<StorageRecord, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE storage SET title = $1, description = $2, settings = $3, secrets = $4, synchronizable = $5 \
             WHERE id = $6 RETURNING {}",
            STORAGE_COLUMNS.replace("s.", "")
        )))
        .bind(&record.title)
        .bind(&record.description)
        .bind(Value::Object(record.settings.clone()).to_string())
        .bind(Value::Object(record.secrets.clone()).to_string())
        .bind(to_flag(record.synchronizable))
        .bind(record.id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound)?;
        storage_from_row(&row)
    }

    /// Deletes a storage and its links; tasks and written objects stay.
    pub async fn delete_storage(&self, id: i64) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        for statement in [
            "DELETE FROM import_link WHERE storage_id = $1",
            "DELETE FROM export_link WHERE storage_id = $1",
            "DELETE FROM storage WHERE id = $1",
        ] {
            sqlx::query(statement).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Moves a storage to `queued` unless a sync is already queued or running. Returns whether
    /// this call queued it.
    pub async fn queue_sync(
        &self,
        record: &StorageRecord,
        job_id: &str,
        meta: &Map<String, Value>,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE storage SET status = 'queued', last_sync = NULL, last_sync_count = NULL, last_sync_job = $1, \
             traceback = NULL, meta = $2, lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $3 AND status NOT IN ('queued', 'in_progress')",
        )
        .bind(job_id)
        .bind(Value::Object(meta.clone()).to_string())
        .bind(record.id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims one queued sync, or one whose lease expired (its process died), for `owner` until
    /// `lease_until`. Safe against other processes claiming at the same moment.
    pub async fn claim_sync(&self, owner: &str, lease_until: &str) -> Result<Option<StorageRecord>, DbError> {
        self.claim_sync_except(owner, lease_until, &HashSet::new()).await
    }

    /// Like [`Db::claim_sync`], but never claims the storages in `running`: the jobs the calling
    /// process runs itself, which are alive even when a busy moment let their lease run out.
    pub async fn claim_sync_except(
        &self,
        owner: &str,
        lease_until: &str,
        running: &HashSet<i64>,
    ) -> Result<Option<StorageRecord>, DbError> {
        let timestamp = now();
        let candidates = sqlx::query(
            "SELECT id FROM storage WHERE status = 'queued' OR (status = 'in_progress' AND lease_expires_at < $1) \
             ORDER BY id LIMIT 8",
        )
        .bind(&timestamp)
        .fetch_all(self.pool())
        .await?;
        for candidate in candidates {
            let id: i64 = candidate.try_get("id")?;
            if running.contains(&id) {
                continue;
            }
            let claimed = sqlx::query(
                "UPDATE storage SET status = 'in_progress', lease_owner = $1, lease_expires_at = $2 \
                 WHERE id = $3 AND (status = 'queued' OR (status = 'in_progress' AND lease_expires_at < $4))",
            )
            .bind(owner)
            .bind(lease_until)
            .bind(id)
            .bind(&timestamp)
            .execute(self.pool())
            .await?;
            if claimed.rows_affected() == 1 {
                return Ok(Some(self.storage_by_id(id).await?));
            }
        }
        Ok(None)
    }

    /// Records progress and extends the lease. Returns false when this owner lost the lease (the
    /// storage was deleted or another process took the job over): the caller must stop.
    pub async fn sync_heartbeat(
        &self,
        id: i64,
        owner: &str,
        lease_until: &str,
        count: i64,
        meta: &Map<String, Value>,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE storage SET lease_expires_at = $1, last_sync_count = $2, meta = $3 \
             WHERE id = $4 AND lease_owner = $5 AND status = 'in_progress'",
        )
        .bind(lease_until)
        .bind(count)
        .bind(Value::Object(meta.clone()).to_string())
        .bind(id)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Inside a write transaction: whether `owner` still holds the sync lease of a storage. The
    /// row stays locked until the transaction ends, so a run that lost its job never commits next
    /// to the run that took it over (which only lists after its claim, so it sees this commit).
    pub async fn holds_sync_lease(&self, tx: &mut WriteTx, id: i64, owner: &str) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE storage SET lease_owner = lease_owner WHERE id = $1 AND lease_owner = $2 AND status = 'in_progress'",
        )
        .bind(id)
        .bind(owner)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends a sync run this owner holds.
    pub async fn finish_sync(&self, id: i64, owner: &str, outcome: &SyncOutcome) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE storage SET status = $1, last_sync = $2, last_sync_count = $3, traceback = $4, meta = $5, \
             lease_owner = NULL, lease_expires_at = NULL WHERE id = $6 AND lease_owner = $7",
        )
        .bind(outcome.status.as_str())
        .bind(now())
        .bind(outcome.count)
        .bind(&outcome.traceback)
        .bind(Value::Object(outcome.meta.clone()).to_string())
        .bind(id)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a storage failed outside a sync run (for example when its connection check fails
    /// before a job could start).
    pub async fn mark_storage_failed(
        &self,
        id: i64,
        traceback: &str,
        meta: &Map<String, Value>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE storage SET status = 'failed', traceback = $1, meta = $2, lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $3",
        )
        .bind(traceback)
        .bind(Value::Object(meta.clone()).to_string())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Notes a failed write or delete of a target storage outside a sync run: the reason goes to
    /// `traceback` and `meta.last_save_error`, and `meta.save_failures` counts them.
    pub async fn note_export_failure(&self, id: i64, reason: &str) -> Result<(), DbError> {
        let record = self.storage_by_id(id).await?;
        let mut meta = record.meta.clone();
        let failures = meta.get("save_failures").and_then(Value::as_i64).unwrap_or(0) + 1;
        meta.insert("save_failures".into(), Value::from(failures));
        meta.insert("last_save_error".into(), Value::String(reason.to_string()));
        sqlx::query("UPDATE storage SET traceback = $1, meta = $2 WHERE id = $3")
            .bind(reason)
            .bind(Value::Object(meta).to_string())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Which of these keys already have a link for this storage.
    pub async fn linked_keys(&self, storage_id: i64, keys: &[String]) -> Result<HashSet<String>, DbError> {
        let mut found = HashSet::new();
        for chunk in keys.chunks(self.rows_per_statement(1)) {
            let sql = format!(
                "SELECT DISTINCT object_key FROM import_link WHERE storage_id = $1 AND object_key IN ({})",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(storage_id);
            for key in chunk {
                query = query.bind(key.as_str());
            }
            for row in query.fetch_all(self.pool()).await? {
                found.insert(row.try_get("object_key")?);
            }
        }
        Ok(found)
    }

    /// Records links for tasks just created in `tx` (`task_ids[link.task_index]`).
    pub async fn insert_import_links(
        &self,
        tx: &mut WriteTx,
        storage_id: i64,
        task_ids: &[i64],
        links: &[NewImportLink],
    ) -> Result<(), DbError> {
        let timestamp = now();
        for chunk in links.chunks(self.rows_per_statement(6)) {
            let mut sql = String::from(
                "INSERT INTO import_link (storage_id, created_at, task_id, object_key, row_index, etag, size, last_modified) VALUES ",
            );
            for (row, _) in chunk.iter().enumerate() {
                if row > 0 {
                    sql.push_str(", ");
                }
                let base = 3 + row * 6;
                sql.push_str(&format!(
                    "($1, $2, ${}, ${}, ${}, ${}, ${}, ${})",
                    base,
                    base + 1,
                    base + 2,
                    base + 3,
                    base + 4,
                    base + 5
                ));
            }
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(storage_id).bind(&timestamp);
            for link in chunk {
                query = query
                    .bind(task_ids[link.task_index])
                    .bind(link.key.as_str())
                    .bind(link.row_index)
                    .bind(link.etag.as_deref())
                    .bind(link.size)
                    .bind(link.last_modified.as_deref());
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The import link key of a task, if it came from a storage (Label Studio's `storage_filename`).
    pub async fn task_storage_link(&self, task_id: i64) -> Result<Option<(i64, String)>, DbError> {
        let row = sqlx::query("SELECT storage_id, object_key FROM import_link WHERE task_id = $1")
            .bind(task_id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok((r.try_get("storage_id")?, r.try_get("object_key")?)))
            .transpose()
    }

    /// Up to `limit` annotations of a project with ids above `after_id` that this export storage
    /// has not written in their current version.
    pub async fn annotations_to_export(
        &self,
        storage_id: i64,
        project_id: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<Annotation>, DbError> {
        let ids = sqlx::query(
            "SELECT a.id FROM annotation a LEFT JOIN export_link l ON l.annotation_id = a.id AND l.storage_id = $1 \
             WHERE a.project_id = $2 AND a.id > $3 AND (l.id IS NULL OR l.annotation_updated_at <> a.updated_at) \
             ORDER BY a.id LIMIT $4",
        )
        .bind(storage_id)
        .bind(project_id)
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let ids: Vec<i64> = ids.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
        self.annotations_by_ids(&ids).await
    }

    /// Number of annotations in a project.
    pub async fn count_project_annotations(&self, project_id: i64) -> Result<i64, DbError> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM annotation WHERE project_id = $1")
                .bind(project_id)
                .fetch_one(self.pool())
                .await?
                .try_get("n")?,
        )
    }

    /// Records that an annotation (in the version stamped `annotation_updated_at`) was written.
    pub async fn record_export(
        &self,
        storage_id: i64,
        annotation_id: i64,
        key: &str,
        annotation_updated_at: &str,
    ) -> Result<(), DbError> {
        let timestamp = now();
        let outcome = sqlx::query(
            "INSERT INTO export_link (storage_id, annotation_id, object_key, annotation_updated_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (storage_id, annotation_id) DO UPDATE SET \
             object_key = excluded.object_key, annotation_updated_at = excluded.annotation_updated_at, \
             updated_at = excluded.updated_at",
        )
        .bind(storage_id)
        .bind(annotation_id)
        .bind(key)
        .bind(annotation_updated_at)
        .bind(timestamp)
        .execute(self.pool())
        .await;
        match outcome {
            Ok(_) => Ok(()),
            // The annotation was deleted while its object was being written: nothing to record.
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// Records many written annotations (id, key, version written) in one transaction. Links of
    /// annotations deleted meanwhile are skipped.
    pub async fn record_exports(&self, storage_id: i64, written: &[(i64, String, String)]) -> Result<(), DbError> {
        if written.is_empty() {
            return Ok(());
        }
        let timestamp = now();
        let mut tx = self.begin_write().await?;
        for chunk in written.chunks(self.rows_per_statement(3)) {
            let mut sql = String::from(
                "INSERT INTO export_link (storage_id, created_at, updated_at, annotation_id, object_key, \
                 annotation_updated_at) SELECT $1, $2, $2, v.annotation_id, v.object_key, v.annotation_updated_at \
                 FROM (",
            );
            for (row, _) in chunk.iter().enumerate() {
                if row > 0 {
                    sql.push_str(" UNION ALL ");
                }
                let base = 3 + row * 3;
                sql.push_str(&format!(
                    "SELECT CAST(${base} AS BIGINT) AS annotation_id, CAST(${} AS TEXT) AS object_key, \
                     CAST(${} AS TEXT) AS annotation_updated_at",
                    base + 1,
                    base + 2
                ));
            }
            // Only annotations that still exist: one deleted meanwhile needs no link.
            sql.push_str(
                ") v WHERE EXISTS (SELECT 1 FROM annotation a WHERE a.id = v.annotation_id) \
                 ON CONFLICT (storage_id, annotation_id) DO UPDATE SET object_key = excluded.object_key, \
                 annotation_updated_at = excluded.annotation_updated_at, updated_at = excluded.updated_at",
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(storage_id).bind(&timestamp);
            for (annotation_id, key, version) in chunk {
                query = query.bind(*annotation_id).bind(key.as_str()).bind(version.as_str());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Export links of an annotation: (storage id, object key).
    pub async fn export_links_of_annotation(&self, annotation_id: i64) -> Result<Vec<(i64, String)>, DbError> {
        let rows = sqlx::query("SELECT storage_id, object_key FROM export_link WHERE annotation_id = $1")
            .bind(annotation_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("storage_id")?, r.try_get("object_key")?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::{each_engine, sample_project};

    fn record(project_id: i64) -> StorageRecord {
        let mut record = StorageRecord::new("s3", Direction::Import, project_id);
        record.title = Some("t".into());
        record.settings = serde_json::json!({"bucket": "b"}).as_object().unwrap().clone();
        record.secrets = serde_json::json!({"aws_secret_access_key": "s"})
            .as_object()
            .unwrap()
            .clone();
        record
    }

    #[tokio::test]
    async fn sync_lease_is_claimed_once_and_taken_over_when_expired() {
        for (db, _dir) in each_engine().await {
            let org = db.organization_by_title_or_create("A").await.unwrap();
            let project = db.create_project(&sample_project(org.id)).await.unwrap();
            let storage = db.create_storage(&record(project.id)).await.unwrap();
            assert_eq!(storage.secrets["aws_secret_access_key"], "s");
            assert!(db.queue_sync(&storage, "job-1", &Map::new()).await.unwrap());
            assert!(
                !db.queue_sync(&storage, "job-2", &Map::new()).await.unwrap(),
                "second queue is refused"
            );
            let far = "9999-01-01T00:00:00.000000Z";
            let claimed = db.claim_sync("one", far).await.unwrap().unwrap();
            assert_eq!(claimed.status, SyncStatus::InProgress);
            assert!(
                db.claim_sync("two", far).await.unwrap().is_none(),
                "a held lease is not claimed"
            );
            // An expired lease (its process died) is taken over, and the old owner loses it.
            assert!(
                db.sync_heartbeat(storage.id, "one", "2000-01-01T00:00:00.000000Z", 5, &Map::new())
                    .await
                    .unwrap()
            );
            let mine = HashSet::from([storage.id]);
            assert!(
                db.claim_sync_except("two", far, &mine).await.unwrap().is_none(),
                "a job the caller runs itself is not claimed"
            );
            let taken = db.claim_sync("two", far).await.unwrap().unwrap();
            assert_eq!(taken.id, storage.id);
            assert!(!db.sync_heartbeat(storage.id, "one", far, 6, &Map::new()).await.unwrap());
            // Task writes are fenced: only the current holder may commit them.
            for (owner, holds) in [("one", false), ("two", true)] {
                let mut tx = db.begin_write().await.unwrap();
                assert_eq!(
                    db.holds_sync_lease(&mut tx, storage.id, owner).await.unwrap(),
                    holds,
                    "{owner}"
                );
                tx.rollback().await.unwrap();
            }
            let outcome = SyncOutcome {
                status: SyncStatus::Completed,
                count: 3,
                traceback: None,
                meta: Map::new(),
            };
            assert!(!db.finish_sync(storage.id, "one", &outcome).await.unwrap());
            assert!(db.finish_sync(storage.id, "two", &outcome).await.unwrap());
            let done = db.storage_by_id(storage.id).await.unwrap();
            assert_eq!((done.status, done.last_sync_count), (SyncStatus::Completed, Some(3)));
        }
    }
}
