//! Tasks: batched creation (with the annotations and predictions they bring), pages, export
//! iteration and the per-task counters.

use std::collections::HashSet;

use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, WriteTx, now, parse_json, to_flag};
use crate::model::entities::Task;
use crate::model::task_item::TaskItem;

/// Who and where a batch of new tasks belongs to.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub project_id: i64,
    /// The project's `maximum_annotations`, copied into each task's `overlap`.
    pub overlap: i64,
    /// The user the import runs as; annotations naming a user outside the organization are
    /// attributed to this user.
    pub importer_id: Option<i64>,
    /// Ids of the organization's users, for checking `completed_by` of imported annotations.
    pub members: HashSet<i64>,
}

/// One page of a project's tasks with the project-wide totals Label Studio sends alongside.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    pub total: i64,
    pub total_annotations: i64,
    pub total_predictions: i64,
}

pub(super) const TASK_COLUMNS: &str = "t.id, t.project_id, t.data, t.meta, t.inner_id, t.overlap, t.is_labeled, \
     t.total_annotations, t.cancelled_annotations, t.total_predictions, t.allow_skip, t.created_at, t.updated_at, \
     t.updated_by";

pub(super) fn task_from_row(row: &AnyRow) -> Result<Task, DbError> {
    Ok(Task {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        data: parse_json(row.try_get::<String, _>("data")?.as_str())?,
        meta: parse_json(row.try_get::<String, _>("meta")?.as_str())?,
        inner_id: row.try_get("inner_id")?,
        overlap: row.try_get("overlap")?,
        is_labeled: row.try_get::<i64, _>("is_labeled")? != 0,
        total_annotations: row.try_get("total_annotations")?,
        cancelled_annotations: row.try_get("cancelled_annotations")?,
        total_predictions: row.try_get("total_predictions")?,
        allow_skip: row.try_get::<i64, _>("allow_skip")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        updated_by: row.try_get("updated_by")?,
    })
}

/// `(prefix$a, $a+1, ...), (...)` for `rows` rows of `width` parameters numbered from `first`.
fn values_clause(rows: usize, width: usize, first: usize, prefix: &str) -> String {
    let mut sql = String::with_capacity(rows * width * 6);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(prefix);
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(first + row * width + column).to_string());
        }
        sql.push(')');
    }
    sql
}

impl Db {
    /// Inserts tasks (and the annotations and predictions they carry) inside `tx`, in batched
    /// statements, and returns the new task ids in input order.
    pub async fn insert_tasks(
        &self,
        tx: &mut WriteTx,
        batch: &NewTask,
        items: &[TaskItem],
    ) -> Result<Vec<i64>, DbError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // Reserving the inner ids is the first write, so the project row (PostgreSQL) or the
        // database (SQLite) is locked for the rest of the transaction and ids never collide.
        let end: i64 =
            sqlx::query("UPDATE project SET next_inner_id = next_inner_id + $1 WHERE id = $2 RETURNING next_inner_id")
                .bind(items.len() as i64)
                .bind(batch.project_id)
                .fetch_optional(&mut **tx)
                .await?
                .ok_or(DbError::NotFound)?
                .try_get("next_inner_id")?;
        let first_inner_id = end - items.len() as i64;
        let timestamp = now();

        let mut ids: Vec<(i64, i64)> = Vec::with_capacity(items.len());
        let rows_per_statement = self.rows_per_statement(8);
        for (chunk_index, chunk) in items.chunks(rows_per_statement).enumerate() {
            let sql = format!(
                "INSERT INTO task (project_id, overlap, created_at, updated_at, data, meta, inner_id, is_labeled, \
                 total_annotations, cancelled_annotations, total_predictions, allow_skip) VALUES {} \
                 RETURNING id, inner_id",
                values_clause(chunk.len(), 8, 4, "$1, $2, $3, $3, ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(batch.project_id)
                .bind(batch.overlap)
                .bind(&timestamp);
            for (offset, item) in chunk.iter().enumerate() {
                let cancelled = item.annotations.iter().filter(|a| a.was_cancelled).count() as i64;
                let total = item.annotations.len() as i64 - cancelled;
                let inner_id = first_inner_id + (chunk_index * rows_per_statement + offset) as i64;
                query = query
                    .bind(serde_json::to_string(&item.data)?)
                    .bind(serde_json::to_string(&item.meta)?)
                    .bind(inner_id)
                    .bind(to_flag(total >= batch.overlap))
                    .bind(total)
                    .bind(cancelled)
                    .bind(item.predictions.len() as i64)
                    .bind(to_flag(item.allow_skip));
            }
            for row in query.fetch_all(&mut **tx).await? {
                ids.push((row.try_get("inner_id")?, row.try_get("id")?));
            }
        }
        ids.sort_unstable();
        let task_ids: Vec<i64> = ids.into_iter().map(|(_, id)| id).collect();
        self.insert_imported_children(tx, batch, items, &task_ids, &timestamp)
            .await?;
        Ok(task_ids)
    }

    async fn insert_imported_children(
        &self,
        tx: &mut WriteTx,
        batch: &NewTask,
        items: &[TaskItem],
        task_ids: &[i64],
        timestamp: &str,
    ) -> Result<(), DbError> {
        let annotations: Vec<_> = items
            .iter()
            .zip(task_ids)
            .flat_map(|(item, id)| item.annotations.iter().map(move |a| (*id, a)))
            .collect();
        for chunk in annotations.chunks(self.rows_per_statement(8)) {
            let sql = format!(
                "INSERT INTO annotation (project_id, created_at, updated_at, task_id, completed_by, result, \
                 was_cancelled, ground_truth, lead_time, import_id, unique_id) VALUES {}",
                values_clause(chunk.len(), 8, 3, "$1, $2, $2, ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(batch.project_id)
                .bind(timestamp);
            for (task_id, annotation) in chunk {
                let completed_by = annotation
                    .completed_by
                    .filter(|id| batch.members.contains(id))
                    .or(batch.importer_id);
                query = query
                    .bind(*task_id)
                    .bind(completed_by)
                    .bind(annotation.result.to_string())
                    .bind(to_flag(annotation.was_cancelled))
                    .bind(to_flag(annotation.ground_truth))
                    .bind(annotation.lead_time)
                    .bind(annotation.import_id)
                    .bind(uuid::Uuid::new_v4().to_string());
            }
            query.execute(&mut **tx).await?;
        }
        let predictions: Vec<_> = items
            .iter()
            .zip(task_ids)
            .flat_map(|(item, id)| item.predictions.iter().map(move |p| (*id, p)))
            .collect();
        for chunk in predictions.chunks(self.rows_per_statement(4)) {
            let sql = format!(
                "INSERT INTO prediction (project_id, created_at, updated_at, task_id, result, score, model_version) \
                 VALUES {}",
                values_clause(chunk.len(), 4, 3, "$1, $2, $2, ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(batch.project_id)
                .bind(timestamp);
            for (task_id, prediction) in chunk {
                query = query
                    .bind(*task_id)
                    .bind(prediction.result.to_string())
                    .bind(prediction.score)
                    .bind(prediction.model_version.as_str());
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The task with this id, if its project belongs to this organization.
    pub async fn task(&self, organization_id: i64, id: i64) -> Result<Task, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM task t JOIN project p ON p.id = t.project_id \
             WHERE t.id = $1 AND p.organization_id = $2"
        )))
        .bind(id)
        .bind(organization_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound)?;
        task_from_row(&row)
    }

    /// Tasks by id alone (for background jobs), in id order; missing ids are left out.
    pub async fn tasks_by_ids(&self, ids: &[i64]) -> Result<Vec<Task>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM task t WHERE t.id IN ({}) ORDER BY t.id",
            super::users::placeholders(1, ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(task_from_row).collect()
    }

    /// One page of a project's tasks in id order, with project-wide totals.
    pub async fn list_tasks(&self, project_id: i64, offset: i64, limit: i64) -> Result<TaskPage, DbError> {
        let totals = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(CAST(SUM(total_annotations) AS BIGINT), 0) AS a, \
             COALESCE(CAST(SUM(total_predictions) AS BIGINT), 0) AS p FROM task WHERE project_id = $1",
        )
        .bind(project_id)
        .fetch_one(self.pool())
        .await?;
        // The page's ids come from the (project_id, id) index, so skipping a million tasks does
        // not read a million tasks' data.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM task t WHERE t.id IN \
             (SELECT id FROM task WHERE project_id = $1 ORDER BY id LIMIT $2 OFFSET $3) ORDER BY t.id"
        )))
        .bind(project_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        Ok(TaskPage {
            tasks: rows.iter().map(task_from_row).collect::<Result<_, _>>()?,
            total: totals.try_get("n")?,
            total_annotations: totals.try_get("a")?,
            total_predictions: totals.try_get("p")?,
        })
    }

    /// Up to `limit` tasks of a project with ids above `after_id`, in id order (for exports that
    /// stream a project page by page). `only_labeled` keeps tasks with at least one annotation.
    pub async fn tasks_after(
        &self,
        project_id: i64,
        after_id: i64,
        limit: i64,
        only_labeled: bool,
    ) -> Result<Vec<Task>, DbError> {
        let filter = if only_labeled {
            " AND (t.total_annotations + t.cancelled_annotations) > 0"
        } else {
            ""
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM task t WHERE t.project_id = $1 AND t.id > $2{filter} ORDER BY t.id LIMIT $3"
        )))
        .bind(project_id)
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    /// The ids of the tasks just before and just after this one in its project, in id order.
    pub async fn task_neighbors(&self, project_id: i64, id: i64) -> Result<(Option<i64>, Option<i64>), DbError> {
        let one = |sql: &'static str| async move {
            let row = sqlx::query(sql)
                .bind(project_id)
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
            row.map(|r| r.try_get::<i64, _>("id")).transpose()
        };
        let previous = one("SELECT id FROM task WHERE project_id = $1 AND id < $2 ORDER BY id DESC LIMIT 1").await?;
        let next = one("SELECT id FROM task WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT 1").await?;
        Ok((previous, next))
    }

    /// The first task of a project still to be labeled that this user has not annotated, after
    /// `after_id` in id order, wrapping round to the start, if there is one.
    pub async fn next_unlabeled_task(
        &self,
        project_id: i64,
        user_id: i64,
        after_id: i64,
    ) -> Result<Option<i64>, DbError> {
        const SQL: &str = "SELECT id FROM task t WHERE t.project_id = $1 AND t.is_labeled = 0 AND t.id > $3 \
             AND NOT EXISTS (SELECT 1 FROM annotation a WHERE a.task_id = t.id AND a.completed_by = $2) \
             ORDER BY t.id LIMIT 1";
        for start in [after_id, 0] {
            let row = sqlx::query(SQL)
                .bind(project_id)
                .bind(user_id)
                .bind(start)
                .fetch_optional(self.pool())
                .await?;
            if let Some(row) = row {
                return Ok(Some(row.try_get("id")?));
            }
        }
        Ok(None)
    }

    /// Replaces a task's data and/or meta.
    pub async fn update_task(
        &self,
        id: i64,
        data: Option<&Map<String, Value>>,
        meta: Option<&Map<String, Value>>,
        updated_by: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE task SET data = COALESCE($1, data), meta = COALESCE($2, meta), updated_at = $3, updated_by = $4 \
             WHERE id = $5",
        )
        .bind(data.map(|d| Value::Object(d.clone()).to_string()))
        .bind(meta.map(|m| Value::Object(m.clone()).to_string()))
        .bind(now())
        .bind(updated_by)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Deletes a task with its annotations and predictions.
    pub async fn delete_task(&self, id: i64) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        for statement in [
            "DELETE FROM annotation WHERE task_id = $1",
            "DELETE FROM prediction WHERE task_id = $1",
            "DELETE FROM task WHERE id = $1",
        ] {
            sqlx::query(statement).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes every task of a project with its annotations and predictions.
    pub async fn delete_all_tasks(&self, project_id: i64) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        for statement in [
            "DELETE FROM annotation WHERE project_id = $1",
            "DELETE FROM prediction WHERE project_id = $1",
            "DELETE FROM task WHERE project_id = $1",
        ] {
            sqlx::query(statement).bind(project_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Recomputes a task's annotation and prediction counters from what is stored.
    pub(super) async fn refresh_task_counters(&self, tx: &mut WriteTx, task_id: i64) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE task SET \
             total_annotations = (SELECT COUNT(*) FROM annotation a WHERE a.task_id = task.id AND a.was_cancelled = 0), \
             cancelled_annotations = (SELECT COUNT(*) FROM annotation a WHERE a.task_id = task.id AND a.was_cancelled = 1), \
             total_predictions = (SELECT COUNT(*) FROM prediction p WHERE p.task_id = task.id) \
             WHERE id = $1",
        )
        .bind(task_id)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "UPDATE task SET is_labeled = CASE WHEN total_annotations >= overlap THEN 1 ELSE 0 END WHERE id = $1",
        )
        .bind(task_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::each_engine;
    use crate::db::test_support::sample_project;
    use serde_json::json;

    #[tokio::test]
    async fn batched_insert_keeps_order_counters_and_children() {
        for (db, _dir) in each_engine().await {
            let org = db.organization_by_title_or_create("A").await.unwrap();
            let project = db.create_project(&sample_project(org.id)).await.unwrap();
            let mut items: Vec<TaskItem> = (0..1000)
                .map(|i| TaskItem::from_value(json!({"text": format!("t{i}")})).unwrap())
                .collect();
            items[3] = TaskItem::from_value(json!({
                "data": {"text": "labeled"},
                "annotations": [{"result": [], "completed_by": 999999}, {"result": [], "was_cancelled": true}],
                "predictions": [{"result": [], "score": 0.9}]
            }))
            .unwrap();
            let batch = NewTask {
                project_id: project.id,
                overlap: 1,
                importer_id: None,
                members: HashSet::new(),
            };
            let mut tx = db.begin_write().await.unwrap();
            let ids = db.insert_tasks(&mut tx, &batch, &items).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(ids.len(), 1000);
            let labeled = db.task(org.id, ids[3]).await.unwrap();
            assert_eq!(labeled.data["text"], "labeled");
            assert_eq!((labeled.total_annotations, labeled.cancelled_annotations), (1, 1));
            assert_eq!(labeled.total_predictions, 1);
            assert!(labeled.is_labeled);
            let page = db.list_tasks(project.id, 0, 10).await.unwrap();
            assert_eq!(
                (page.total, page.total_annotations, page.total_predictions),
                (1000, 1, 1)
            );
            assert_eq!(page.tasks[0].data["text"], "t0");
            assert_eq!(page.tasks[9].inner_id, 10);
            // A second import continues the inner ids.
            let mut tx = db.begin_write().await.unwrap();
            let more = db.insert_tasks(&mut tx, &batch, &items[..2]).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(db.task(org.id, more[1]).await.unwrap().inner_id, 1002);
            let counts = db.project_counts(&[project.id]).await.unwrap();
            assert_eq!(counts[&project.id].task_number, 1002);
            assert_eq!(counts[&project.id].num_tasks_with_annotations, 1);
            let labeled_only = db.tasks_after(project.id, 0, 100, true).await.unwrap();
            assert_eq!(labeled_only.len(), 1);
        }
    }
}
