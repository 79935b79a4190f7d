//! Projects, always looked up within the caller's organization.

use std::collections::HashMap;

use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::users::placeholders;
use super::{Db, DbError, now, parse_json};
use crate::model::entities::{Project, ProjectCounts};

const PROJECT_COLUMNS: &str = "id, organization_id, created_by, title, description, label_config, \
     maximum_annotations, settings, created_at, updated_at";

fn project_from_row(row: &AnyRow) -> Result<Project, DbError> {
    let settings = match parse_json(row.try_get::<String, _>("settings")?.as_str())? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Ok(Project {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        created_by: row.try_get("created_by")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        label_config: row.try_get("label_config")?,
        maximum_annotations: row.try_get("maximum_annotations")?,
        settings,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Db {
    /// Creates a project from everything but its id and timestamps.
    pub async fn create_project(&self, project: &Project) -> Result<Project, DbError> {
        let timestamp = now();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO project (organization_id, created_by, title, description, label_config, \
             maximum_annotations, settings, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {PROJECT_COLUMNS}"
        )))
        .bind(project.organization_id)
        .bind(project.created_by)
        .bind(&project.title)
        .bind(&project.description)
        .bind(&project.label_config)
        .bind(project.maximum_annotations)
        .bind(Value::Object(project.settings.clone()).to_string())
        .bind(timestamp)
        .fetch_one(self.pool())
        .await?;
        project_from_row(&row)
    }

    /// The project with this id in this organization.
    pub async fn project(&self, organization_id: i64, id: i64) -> Result<Project, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PROJECT_COLUMNS} FROM project WHERE id = $1 AND organization_id = $2"
        )))
        .bind(id)
        .bind(organization_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound)?;
        project_from_row(&row)
    }

    /// A project by id alone (for background jobs, which act for no user).
    pub async fn project_by_id(&self, id: i64) -> Result<Project, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PROJECT_COLUMNS} FROM project WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound)?;
        project_from_row(&row)
    }

    /// One page of an organization's projects, newest first, and how many there are in all.
    pub async fn list_projects(
        &self,
        organization_id: i64,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Project>, i64), DbError> {
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM project WHERE organization_id = $1")
            .bind(organization_id)
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PROJECT_COLUMNS} FROM project WHERE organization_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3"
        )))
        .bind(organization_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        let projects = rows.iter().map(project_from_row).collect::<Result<_, _>>()?;
        Ok((projects, total))
    }

    /// Writes every editable field of a project and returns it as stored.
    pub async fn update_project(&self, project: &Project) -> Result<Project, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE project SET title = $1, description = $2, label_config = $3, maximum_annotations = $4, \
             settings = $5, updated_at = $6 WHERE id = $7 AND organization_id = $8 RETURNING {PROJECT_COLUMNS}"
        )))
        .bind(&project.title)
        .bind(&project.description)
        .bind(&project.label_config)
        .bind(project.maximum_annotations)
        .bind(Value::Object(project.settings.clone()).to_string())
        .bind(now())
        .bind(project.id)
        .bind(project.organization_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound)?;
        project_from_row(&row)
    }

    /// Re-derives every task's `overlap` and `is_labeled` after the project's overlap changed.
    pub async fn apply_project_overlap(&self, project_id: i64, maximum_annotations: i64) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE task SET overlap = $1, is_labeled = CASE WHEN total_annotations >= $1 THEN 1 ELSE 0 END \
             WHERE project_id = $2",
        )
        .bind(maximum_annotations)
        .bind(project_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Deletes a project with its tasks, annotations and predictions.
    pub async fn delete_project(&self, organization_id: i64, id: i64) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        let found = sqlx::query("SELECT id FROM project WHERE id = $1 AND organization_id = $2")
            .bind(id)
            .bind(organization_id)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(DbError::NotFound);
        }
        // Children first, so the delete does not depend on cascades being switched on.
        for statement in [
            "DELETE FROM annotation WHERE project_id = $1",
            "DELETE FROM prediction WHERE project_id = $1",
            "DELETE FROM task WHERE project_id = $1",
            "DELETE FROM project WHERE id = $1",
        ] {
            sqlx::query(statement).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Task and annotation counters for each of these projects.
    pub async fn project_counts(&self, project_ids: &[i64]) -> Result<HashMap<i64, ProjectCounts>, DbError> {
        let mut counts: HashMap<i64, ProjectCounts> =
            project_ids.iter().map(|id| (*id, ProjectCounts::default())).collect();
        if project_ids.is_empty() {
            return Ok(counts);
        }
        let sql = format!(
            "SELECT project_id, COUNT(*) AS task_number, \
             COALESCE(CAST(SUM(total_annotations) AS BIGINT), 0) AS total_annotations, \
             COALESCE(CAST(SUM(cancelled_annotations) AS BIGINT), 0) AS cancelled, \
             COALESCE(CAST(SUM(CASE WHEN total_annotations > 0 THEN 1 ELSE 0 END) AS BIGINT), 0) AS with_annotations, \
             COALESCE(CAST(SUM(total_predictions) AS BIGINT), 0) AS predictions, \
             COALESCE(CAST(SUM(is_labeled) AS BIGINT), 0) AS finished \
             FROM task WHERE project_id IN ({}) GROUP BY project_id",
            placeholders(1, project_ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in project_ids {
            query = query.bind(*id);
        }
        for row in query.fetch_all(self.pool()).await? {
            let project_id: i64 = row.try_get("project_id")?;
            counts.insert(
                project_id,
                ProjectCounts {
                    task_number: row.try_get("task_number")?,
                    total_annotations_number: row.try_get("total_annotations")?,
                    skipped_annotations_number: row.try_get("cancelled")?,
                    num_tasks_with_annotations: row.try_get("with_annotations")?,
                    total_predictions_number: row.try_get("predictions")?,
                    finished_task_number: row.try_get("finished")?,
                },
            );
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::{each_engine, sample_project};

    #[tokio::test]
    async fn project_crud_is_scoped_to_the_organization() {
        for (db, _dir) in each_engine().await {
            let org = db.organization_by_title_or_create("A").await.unwrap();
            let other = db.organization_by_title_or_create("B").await.unwrap();
            let mut project = db.create_project(&sample_project(org.id)).await.unwrap();
            assert!(matches!(db.project(other.id, project.id).await, Err(DbError::NotFound)));
            project.title = "Renamed".into();
            project.settings.insert("color".into(), Value::String("#fff".into()));
            let updated = db.update_project(&project).await.unwrap();
            assert_eq!(updated.title, "Renamed");
            assert_eq!(updated.settings["color"], "#fff");
            let (list, total) = db.list_projects(org.id, 0, 10).await.unwrap();
            assert_eq!((list.len(), total), (1, 1));
            assert_eq!(db.list_projects(other.id, 0, 10).await.unwrap().1, 0);
            assert!(matches!(
                db.delete_project(other.id, project.id).await,
                Err(DbError::NotFound)
            ));
            db.delete_project(org.id, project.id).await.unwrap();
            assert!(matches!(db.project(org.id, project.id).await, Err(DbError::NotFound)));
        }
    }
}
