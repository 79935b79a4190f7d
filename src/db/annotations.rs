//! Annotations and predictions. Every change recomputes the task's counters in the same
//! transaction, so `total_annotations` and `is_labeled` never drift from what is stored.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::users::placeholders;
use super::{Db, DbError, now, parse_json, to_flag};
use crate::model::entities::{Annotation, AnnotationChanges, Prediction};

const ANNOTATION_COLUMNS: &str = "a.id, a.task_id, a.project_id, a.completed_by, a.result, a.was_cancelled, \
     a.ground_truth, a.lead_time, a.import_id, a.last_action, a.unique_id, a.created_at, a.updated_at, \
     a.draft_created_at, a.updated_by, a.parent_prediction, a.parent_annotation";

const PREDICTION_COLUMNS: &str =
    "p.id, p.task_id, p.project_id, p.result, p.score, p.model_version, p.created_at, p.updated_at";

fn annotation_from_row(row: &AnyRow) -> Result<Annotation, DbError> {
    Ok(Annotation {
        id: row.try_get("id")?,
        task_id: row.try_get("task_id")?,
        project_id: row.try_get("project_id")?,
        completed_by: row.try_get("completed_by")?,
        result: parse_json(row.try_get::<String, _>("result")?.as_str())?,
        was_cancelled: row.try_get::<i64, _>("was_cancelled")? != 0,
        ground_truth: row.try_get::<i64, _>("ground_truth")? != 0,
        lead_time: row.try_get("lead_time")?,
        import_id: row.try_get("import_id")?,
        last_action: row.try_get("last_action")?,
        unique_id: row.try_get("unique_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        draft_created_at: row.try_get("draft_created_at")?,
        updated_by: row.try_get("updated_by")?,
        parent_prediction: row.try_get("parent_prediction")?,
        parent_annotation: row.try_get("parent_annotation")?,
    })
}

fn prediction_from_row(row: &AnyRow) -> Result<Prediction, DbError> {
    Ok(Prediction {
        id: row.try_get("id")?,
        task_id: row.try_get("task_id")?,
        project_id: row.try_get("project_id")?,
        result: parse_json(row.try_get::<String, _>("result")?.as_str())?,
        score: row.try_get("score")?,
        model_version: row.try_get("model_version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Db {
    /// Creates an annotation on a task and updates the task's counters.
    pub async fn create_annotation(
        &self,
        task_id: i64,
        project_id: i64,
        user_id: i64,
        fields: &AnnotationChanges,
    ) -> Result<Annotation, DbError> {
        let mut tx = self.begin_write().await?;
        let timestamp = now();
        let id: i64 = sqlx::query(
            "INSERT INTO annotation (task_id, project_id, completed_by, result, was_cancelled, ground_truth, \
             lead_time, last_action, unique_id, created_at, updated_at, draft_created_at, updated_by, \
             parent_prediction, parent_annotation) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13, $14) RETURNING id",
        )
        .bind(task_id)
        .bind(project_id)
        .bind(fields.completed_by.unwrap_or(user_id))
        .bind(
            fields
                .result
                .clone()
                .unwrap_or_else(|| serde_json::json!([]))
                .to_string(),
        )
        .bind(to_flag(fields.was_cancelled.unwrap_or(false)))
        .bind(to_flag(fields.ground_truth.unwrap_or(false)))
        .bind(fields.lead_time.flatten())
        .bind(fields.last_action.clone().flatten())
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&timestamp)
        .bind(fields.draft_created_at.clone().flatten())
        .bind(user_id)
        .bind(fields.parent_prediction.flatten())
        .bind(fields.parent_annotation.flatten())
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        self.refresh_task_counters(&mut tx, task_id).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ANNOTATION_COLUMNS} FROM annotation a WHERE a.id = $1"
        )))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        annotation_from_row(&row)
    }

    /// The annotation with this id, if its project belongs to this organization.
    pub async fn annotation(&self, organization_id: i64, id: i64) -> Result<Annotation, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ANNOTATION_COLUMNS} FROM annotation a JOIN project p ON p.id = a.project_id \
             WHERE a.id = $1 AND p.organization_id = $2"
        )))
        .bind(id)
        .bind(organization_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound)?;
        annotation_from_row(&row)
    }

    /// An annotation by id alone (for background jobs), if it still exists.
    pub async fn annotation_by_id(&self, id: i64) -> Result<Option<Annotation>, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ANNOTATION_COLUMNS} FROM annotation a WHERE a.id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(annotation_from_row).transpose()
    }

    /// Annotations by id, in id order (missing ids are left out).
    pub async fn annotations_by_ids(&self, ids: &[i64]) -> Result<Vec<Annotation>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {ANNOTATION_COLUMNS} FROM annotation a WHERE a.id IN ({}) ORDER BY a.id",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(annotation_from_row).collect()
    }

    /// Every annotation of these tasks, in id order.
    pub async fn annotations_of_tasks(&self, task_ids: &[i64]) -> Result<Vec<Annotation>, DbError> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {ANNOTATION_COLUMNS} FROM annotation a WHERE a.task_id IN ({}) ORDER BY a.id",
            placeholders(1, task_ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in task_ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(annotation_from_row).collect()
    }

    /// Applies changes to an annotation and updates its task's counters.
    pub async fn update_annotation(
        &self,
        current: &Annotation,
        changes: &AnnotationChanges,
        user_id: i64,
    ) -> Result<Annotation, DbError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE annotation SET result = $1, was_cancelled = $2, ground_truth = $3, lead_time = $4, \
             completed_by = $5, last_action = $6, draft_created_at = $7, parent_prediction = $8, \
             parent_annotation = $9, updated_at = $10, updated_by = $11 WHERE id = $12",
        )
        .bind(changes.result.as_ref().unwrap_or(&current.result).to_string())
        .bind(to_flag(changes.was_cancelled.unwrap_or(current.was_cancelled)))
        .bind(to_flag(changes.ground_truth.unwrap_or(current.ground_truth)))
        .bind(changes.lead_time.unwrap_or(current.lead_time))
        .bind(changes.completed_by.or(current.completed_by))
        .bind(
            changes
                .last_action
                .clone()
                .unwrap_or_else(|| current.last_action.clone()),
        )
        .bind(
            changes
                .draft_created_at
                .clone()
                .unwrap_or_else(|| current.draft_created_at.clone()),
        )
        .bind(changes.parent_prediction.unwrap_or(current.parent_prediction))
        .bind(changes.parent_annotation.unwrap_or(current.parent_annotation))
        .bind(now())
        .bind(user_id)
        .bind(current.id)
        .execute(&mut *tx)
        .await?;
        self.refresh_task_counters(&mut tx, current.task_id).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ANNOTATION_COLUMNS} FROM annotation a WHERE a.id = $1"
        )))
        .bind(current.id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        annotation_from_row(&row)
    }

    /// Deletes an annotation and updates its task's counters.
    pub async fn delete_annotation(&self, annotation: &Annotation) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM annotation WHERE id = $1")
            .bind(annotation.id)
            .execute(&mut *tx)
            .await?;
        self.refresh_task_counters(&mut tx, annotation.task_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates a prediction on a task and updates the task's counters.
    pub async fn create_prediction(
        &self,
        task_id: i64,
        project_id: i64,
        result: &serde_json::Value,
        score: Option<f64>,
        model_version: &str,
    ) -> Result<Prediction, DbError> {
        let mut tx = self.begin_write().await?;
        let timestamp = now();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO prediction (task_id, project_id, result, score, model_version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {}",
            PREDICTION_COLUMNS.replace("p.", "")
        )))
        .bind(task_id)
        .bind(project_id)
        .bind(result.to_string())
        .bind(score)
        .bind(model_version)
        .bind(timestamp)
        .fetch_one(&mut *tx)
        .await?;
        self.refresh_task_counters(&mut tx, task_id).await?;
        tx.commit().await?;
        prediction_from_row(&row)
    }

    /// The prediction with this id, if its project belongs to this organization.
    pub async fn prediction(&self, organization_id: i64, id: i64) -> Result<Prediction, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PREDICTION_COLUMNS} FROM prediction p JOIN project pr ON pr.id = p.project_id \
             WHERE p.id = $1 AND pr.organization_id = $2"
        )))
        .bind(id)
        .bind(organization_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound)?;
        prediction_from_row(&row)
    }

    /// Predictions visible to an organization, optionally narrowed to one task or project.
    pub async fn list_predictions(
        &self,
        organization_id: i64,
        task_id: Option<i64>,
        project_id: Option<i64>,
    ) -> Result<Vec<Prediction>, DbError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PREDICTION_COLUMNS} FROM prediction p JOIN project pr ON pr.id = p.project_id \
             WHERE pr.organization_id = $1 AND ($2 IS NULL OR p.task_id = $2) AND ($3 IS NULL OR p.project_id = $3) \
             ORDER BY p.id"
        )))
        .bind(organization_id)
        .bind(task_id)
        .bind(project_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(prediction_from_row).collect()
    }

    /// Every prediction of these tasks, in id order.
    pub async fn predictions_of_tasks(&self, task_ids: &[i64]) -> Result<Vec<Prediction>, DbError> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {PREDICTION_COLUMNS} FROM prediction p WHERE p.task_id IN ({}) ORDER BY p.id",
            placeholders(1, task_ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in task_ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(prediction_from_row).collect()
    }

    /// Deletes a prediction and updates its task's counters.
    pub async fn delete_prediction(&self, prediction: &Prediction) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM prediction WHERE id = $1")
            .bind(prediction.id)
            .execute(&mut *tx)
            .await?;
        self.refresh_task_counters(&mut tx, prediction.task_id).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::each_engine;
    use crate::db::test_support::sample_project;
    use crate::db::{NewTask, NewUser};
    use crate::model::task_item::TaskItem;
    use serde_json::json;

    #[tokio::test]
    async fn annotation_changes_keep_task_counters_true() {
        for (db, _dir) in each_engine().await {
            let org = db.organization_by_title_or_create("A").await.unwrap();
            let user = db
                .create_user(&NewUser {
                    organization_id: org.id,
                    email: "u@example.com",
                    username: "u",
                    first_name: "",
                    last_name: "",
                    password_hash: None,
                })
                .await
                .unwrap();
            let project = db.create_project(&sample_project(org.id)).await.unwrap();
            let batch = NewTask {
                project_id: project.id,
                overlap: 1,
                importer_id: Some(user.id),
                members: Default::default(),
            };
            let mut tx = db.begin_write().await.unwrap();
            let items = [TaskItem::from_value(json!({"text": "a"})).unwrap()];
            let task_id = db.insert_tasks(&mut tx, &batch, &items).await.unwrap()[0];
            tx.commit().await.unwrap();

            let fields = AnnotationChanges {
                result: Some(json!([{"value": {"choices": ["cat"]}}])),
                ..Default::default()
            };
            let annotation = db
                .create_annotation(task_id, project.id, user.id, &fields)
                .await
                .unwrap();
            assert_eq!(annotation.completed_by, Some(user.id));
            let task = db.task(org.id, task_id).await.unwrap();
            assert_eq!((task.total_annotations, task.is_labeled), (1, true));

            let cancel = AnnotationChanges {
                was_cancelled: Some(true),
                ..Default::default()
            };
            let updated = db.update_annotation(&annotation, &cancel, user.id).await.unwrap();
            assert!(updated.was_cancelled);
            assert_eq!(updated.result, annotation.result);
            let task = db.task(org.id, task_id).await.unwrap();
            assert_eq!(
                (task.total_annotations, task.cancelled_annotations, task.is_labeled),
                (0, 1, false)
            );

            db.delete_annotation(&updated).await.unwrap();
            assert_eq!(db.task(org.id, task_id).await.unwrap().cancelled_annotations, 0);
            assert!(matches!(
                db.annotation(org.id, annotation.id).await,
                Err(DbError::NotFound)
            ));

            let prediction = db
                .create_prediction(task_id, project.id, &json!([]), Some(0.5), "v1")
                .await
                .unwrap();
            assert_eq!(db.task(org.id, task_id).await.unwrap().total_predictions, 1);
            assert_eq!(db.list_predictions(org.id, Some(task_id), None).await.unwrap().len(), 1);
            db.delete_prediction(&prediction).await.unwrap();
            assert_eq!(db.task(org.id, task_id).await.unwrap().total_predictions, 0);
        }
    }
}
