//! Organizations, users and API tokens. Tokens are stored as SHA-256 hashes, never as given.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, now, to_flag};
use crate::model::entities::{Organization, User};

/// What it takes to create a user.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub organization_id: i64,
    pub email: &'a str,
    pub username: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    /// An argon2 hash (PHC string), or `None` for a user who signs in with tokens only.
    pub password_hash: Option<&'a str>,
}

const USER_COLUMNS: &str =
    "id, organization_id, email, username, first_name, last_name, is_active, date_joined, last_activity";

fn user_from_row(row: &AnyRow) -> Result<User, DbError> {
    Ok(User {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        email: row.try_get("email")?,
        username: row.try_get("username")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        is_active: row.try_get::<i64, _>("is_active")? != 0,
        date_joined: row.try_get("date_joined")?,
        last_activity: row.try_get("last_activity")?,
    })
}

impl Db {
    /// Finds the organization with this title, or creates it.
    pub async fn organization_by_title_or_create(&self, title: &str) -> Result<Organization, DbError> {
        let found = sqlx::query("SELECT id, title, created_at FROM organization WHERE title = $1 ORDER BY id LIMIT 1")
            .bind(title)
            .fetch_optional(self.pool())
            .await?;
        let row = match found {
            Some(row) => row,
            None => {
                sqlx::query(
                    "INSERT INTO organization (title, created_at) VALUES ($1, $2) RETURNING id, title, created_at",
                )
                .bind(title)
                .bind(now())
                .fetch_one(self.pool())
                .await?
            }
        };
        Ok(Organization {
            id: row.try_get("id")?,
            title: row.try_get("title")?,
            created_at: row.try_get("created_at")?,
        })
    }

    /// The oldest organization, if there is one (new users join it unless told otherwise).
    pub async fn first_organization(&self) -> Result<Option<Organization>, DbError> {
        let row = sqlx::query("SELECT id, title, created_at FROM organization ORDER BY id LIMIT 1")
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            Ok(Organization {
                id: row.try_get("id")?,
                title: row.try_get("title")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Creates a user; an email already in use is a conflict.
    pub async fn create_user(&self, user: &NewUser<'_>) -> Result<User, DbError> {
        if self.user_by_email(user.email).await?.is_some() {
            return Err(DbError::Conflict(format!(
                "a user with email {} already exists",
                user.email
            )));
        }
        let timestamp = now();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO app_user (organization_id, email, username, first_name, last_name, password_hash, \
             is_active, date_joined, last_activity) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {USER_COLUMNS}"
        )))
        .bind(user.organization_id)
        .bind(user.email)
        .bind(user.username)
        .bind(user.first_name)
        .bind(user.last_name)
        .bind(user.password_hash)
        .bind(to_flag(true))
        .bind(timestamp)
        .fetch_one(self.pool())
        .await?;
        user_from_row(&row)
    }

    /// Finds a user by email (exact match).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM app_user WHERE email = $1"
        )))
        .bind(email)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Finds a user by id.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM app_user WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The active user owning the token with this hash.
    pub async fn user_by_token_hash(&self, token_hash: &str) -> Result<Option<User>, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM app_user u JOIN api_token t ON t.user_id = u.id WHERE t.token_hash = $1 AND u.is_active = 1",
            USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ")
        )))
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Stores a token hash for a user; a hash that already belongs to this user is left alone,
    /// one that belongs to someone else is a conflict.
    pub async fn add_token(&self, user_id: i64, token_hash: &str) -> Result<(), DbError> {
        let owner = sqlx::query("SELECT user_id FROM api_token WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(self.pool())
            .await?;
        if let Some(owner) = owner {
            let owner: i64 = owner.try_get("user_id")?;
            return if owner == user_id {
                Ok(())
            } else {
                Err(DbError::Conflict("this token belongs to another user".to_string()))
            };
        }
        sqlx::query("INSERT INTO api_token (user_id, token_hash, created_at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(token_hash)
            .bind(now())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Replaces every API token of a user with one new token hash.
    pub async fn replace_tokens(&self, user_id: i64, token_hash: &str) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM api_token WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO api_token (user_id, token_hash, created_at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(token_hash)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The stored password hash of a user, if the user has a password.
    pub async fn password_hash(&self, user_id: i64) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT password_hash FROM app_user WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("password_hash"))
            .transpose()?
            .flatten())
    }

    /// Starts a browser session for a user, valid until `expires_at`.
    pub async fn create_session(&self, user_id: i64, token_hash: &str, expires_at: &str) -> Result<(), DbError> {
        sqlx::query("INSERT INTO user_session (user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(user_id)
            .bind(token_hash)
            .bind(now())
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The active user of an unexpired session.
    pub async fn user_by_session_hash(&self, token_hash: &str) -> Result<Option<User>, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM app_user u JOIN user_session s ON s.user_id = u.id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.is_active = 1",
            USER_COLUMNS
                .split(", ")
                .map(|c| format!("u.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .bind(token_hash)
        .bind(now())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Ends a browser session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM user_session WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ids of every user in an organization.
    pub async fn organization_user_ids(&self, organization_id: i64) -> Result<Vec<i64>, DbError> {
        let rows = sqlx::query("SELECT id FROM app_user WHERE organization_id = $1")
            .bind(organization_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }
}

/// `$first, $first+1, ...` for `count` parameters.
pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::each_engine;

    #[tokio::test]
    async fn users_tokens_and_organizations() {
        for (db, _dir) in each_engine().await {
            let org = db.organization_by_title_or_create("Acme").await.unwrap();
            assert_eq!(db.organization_by_title_or_create("Acme").await.unwrap().id, org.id);
            let new = NewUser {
                organization_id: org.id,
                email: "a@example.com",
                username: "a",
                first_name: "",
                last_name: "",
                password_hash: Some("hash"),
            };
            let user = db.create_user(&new).await.unwrap();
            assert!(matches!(db.create_user(&new).await, Err(DbError::Conflict(_))));
            db.add_token(user.id, "tokenhash").await.unwrap();
            db.add_token(user.id, "tokenhash").await.unwrap();
            assert_eq!(db.user_by_token_hash("tokenhash").await.unwrap().unwrap().id, user.id);
            assert!(db.user_by_token_hash("other").await.unwrap().is_none());
            assert_eq!(db.organization_user_ids(org.id).await.unwrap(), vec![user.id]);
        }
    }
}
