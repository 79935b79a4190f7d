//! The database: the only module that names SQL. One set of queries runs on SQLite (the embedded
//! default) and PostgreSQL through sqlx's `Any` driver; the few statements that differ per engine
//! live in small named functions of this file.
//!
//! *Invariant:* booleans are stored as 0/1 integers and timestamps as RFC 3339 text, so rows decode
//! the same way on both engines.

mod annotations;
mod projects;
mod storages;
mod tasks;
mod users;

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor, Transaction};
use time::OffsetDateTime;

pub use storages::{NewImportLink, SyncOutcome};
pub use tasks::NewTask;
pub use users::NewUser;

use crate::model::timestamp::format_timestamp;

/// Which database engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// What went wrong in the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("unsupported database url {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("stored value is not valid JSON: {0}")]
    CorruptJson(#[from] serde_json::Error),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A handle to the database, cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    engine: Engine,
}

/// A write transaction (see [`Db::begin_write`]).
pub type WriteTx = Transaction<'static, sqlx::Any>;

/// The current time in the stored format.
pub fn now() -> String {
    format_timestamp(OffsetDateTime::now_utc())
}

fn to_flag(value: bool) -> i64 {
    i64::from(value)
}

impl Db {
    /// Connects to `url` (`sqlite://path`, `sqlite::memory:` or `postgres://...`). SQLite files are
    /// created when missing and opened in WAL mode.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Engine::Postgres
        } else {
            return Err(DbError::UnsupportedUrl(url.to_string()));
        };
        let mut url = url.to_string();
        if engine == Engine::Sqlite && !url.contains(":memory:") && !url.contains("mode=") {
            url.push_str(if url.contains('?') { "&mode=rwc" } else { "?mode=rwc" });
        }
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = match engine {
            Engine::Sqlite => {
                AnyPoolOptions::new()
                    // An in-memory database exists once per connection, so it gets exactly one.
                    .max_connections(if url.contains(":memory:") { 1 } else { 8 })
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            connection
                                .execute(
                                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000; \
                                     PRAGMA cache_size = -16384;",
                                )
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Engine::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await?
            }
        };
        Ok(Db { pool, engine })
    }

    /// Brings the schema up to date. Safe to run on every start and from several processes.
    pub async fn migrate(&self) -> Result<(), DbError> {
        let sources: &[(i64, &str, &str, &str)] = &[
            (
                1,
                "core",
                include_str!("../../migrations/sqlite/0001_core.sql"),
                include_str!("../../migrations/postgres/0001_core.sql"),
            ),
            (
                2,
                "storages",
                include_str!("../../migrations/sqlite/0002_storages.sql"),
                include_str!("../../migrations/postgres/0002_storages.sql"),
            ),
            (
                3,
                "sessions",
                include_str!("../../migrations/sqlite/0003_sessions.sql"),
                include_str!("../../migrations/postgres/0003_sessions.sql"),
            ),
            (
                4,
                "task indexes",
                include_str!("../../migrations/sqlite/0004_task_indexes.sql"),
                include_str!("../../migrations/postgres/0004_task_indexes.sql"),
            ),
        ];
        let migrations = sources
            .iter()
            .map(|(version, description, sqlite, postgres)| {
                let sql = match self.engine {
                    Engine::Sqlite => *sqlite,
                    Engine::Postgres => *postgres,
                };
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sqlx::SqlStr::from_static(sql),
                    false,
                )
            })
            .collect::<Vec<_>>();
        let migrator = Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Starts a transaction that writes. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so two writers queue instead of failing when a read lock would have to
    /// be upgraded.
    pub async fn begin_write(&self) -> Result<WriteTx, DbError> {
        let statement = match self.engine {
            Engine::Sqlite => "BEGIN IMMEDIATE",
            Engine::Postgres => "BEGIN",
        };
        Ok(self.pool.begin_with(statement).await?)
    }

    /// How many rows one multi-row INSERT of `width` parameters per row should carry. SQLite
    /// looks up a named parameter's name by walking a list, so binding costs grow with the square
    /// of a statement's parameter count there: it gets small statements (about 256 parameters);
    /// PostgreSQL gets large ones (about 3,200).
    fn rows_per_statement(&self, width: usize) -> usize {
        let parameters = match self.engine {
            Engine::Sqlite => 256,
            Engine::Postgres => 3200,
        };
        (parameters / width.max(1)).max(1)
    }

    /// The pool, for modules of this crate's `db` folder.
    fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Runs one administrative statement built at run time (for example `CREATE DATABASE` in
    /// benchmarks and tests). Never pass user input.
    pub async fn execute_admin(&self, sql: &str) -> Result<(), DbError> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Whether [`Db::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// Closes every connection (used by tests and on shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Parses a JSON text column.
fn parse_json(text: &str) -> Result<serde_json::Value, DbError> {
    Ok(serde_json::from_str(text)?)
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::model::entities::Project;

    /// A minimal project in an organization, for database tests.
    pub fn sample_project(organization_id: i64) -> Project {
        Project {
            id: 0,
            organization_id,
            created_by: None,
            title: "P".into(),
            description: String::new(),
            label_config: "<View/>".into(),
            maximum_annotations: 1,
            settings: serde_json::Map::new(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    /// The databases every database test runs on: a fresh SQLite file, and a fresh PostgreSQL
    /// database when `LABELPORT_TEST_POSTGRES` is set (the README's test command sets it).
    pub async fn each_engine() -> Vec<(Db, Option<tempfile::TempDir>)> {
        let mut out = Vec::new();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/test.db", dir.path().display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        out.push((db, Some(dir)));
        match std::env::var("LABELPORT_TEST_POSTGRES") {
            Ok(base) if !base.is_empty() => out.push((fresh_postgres(&base).await, None)),
            _ => eprintln!("LABELPORT_TEST_POSTGRES is not set: this test ran on SQLite only"),
        }
        out
    }

    /// Creates a new, empty PostgreSQL database named after a random id and connects to it.
    pub async fn fresh_postgres(base_url: &str) -> Db {
        let admin = Db::connect(base_url).await.unwrap();
        let name = format!("lp_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(admin.pool())
            .await
            .unwrap();
        admin.close().await;
        let (prefix, _) = base_url.rsplit_once('/').unwrap();
        let db = Db::connect(&format!("{prefix}/{name}")).await.unwrap();
        db.migrate().await.unwrap();
        db
    }
}
