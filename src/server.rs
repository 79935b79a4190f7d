//! Wiring: open the database, create the first user, serve HTTP until Ctrl-C or SIGTERM.

use anyhow::Context;

use crate::api::auth::{generate_token, hash_token};
use crate::api::{ApiSettings, AppState};
use crate::config::{DatabaseArgs, StartArgs, SyncArgs, UserCreateArgs, UserTokenArgs, env_any};
use crate::db::{Db, DbError, NewUser};
use crate::model::entities::User;
use crate::sync::SyncSettings;

/// Connects to the configured database (creating the data folder for SQLite) and migrates it.
pub async fn open_database(args: &DatabaseArgs) -> anyhow::Result<Db> {
    let url = args.url();
    if url.starts_with("sqlite:") && args.database_url.as_deref().is_none_or(str::is_empty) {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("cannot create data folder {}", args.data_dir.display()))?;
    }
    let db = Db::connect(&url).await.context("cannot open the database")?;
    db.migrate().await.context("cannot migrate the database")?;
    Ok(db)
}

/// Hashes a password with argon2 for storage.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))?
        .to_string())
}

/// Creates a user in `organization` (or the first organization, created if there is none).
pub async fn create_user(
    db: &Db,
    email: &str,
    password: Option<&str>,
    organization: Option<&str>,
) -> anyhow::Result<User> {
    let organization = match organization {
        Some(title) => db.organization_by_title_or_create(title).await?,
        None => match db.first_organization().await? {
            Some(org) => org,
            None => db.organization_by_title_or_create("labelport").await?,
        },
    };
    let hash = password.map(hash_password).transpose()?;
    let user = db
        .create_user(&NewUser {
            organization_id: organization.id,
            email,
            username: email,
            first_name: "",
            last_name: "",
            password_hash: hash.as_deref(),
        })
        .await?;
    Ok(user)
}

/// Creates the user named by `LABELPORT_USERNAME` (or `LABEL_STUDIO_USERNAME`) on first start,
/// and registers `..._USER_TOKEN` for it, as Label Studio does.
async fn bootstrap_user(db: &Db) -> anyhow::Result<()> {
    let Some(username) = env_any("USERNAME") else {
        return Ok(());
    };
    let password = env_any("PASSWORD");
    let user = match db.user_by_email(&username).await? {
        Some(user) => user,
        None => {
            let user = create_user(db, &username, password.as_deref(), None).await?;
            tracing::info!(user = %username, "created the first user");
            user
        }
    };
    if let Some(token) = env_any("USER_TOKEN") {
        match db.add_token(user.id, &hash_token(&token)).await {
            Ok(()) => {}
            Err(DbError::Conflict(_)) => tracing::warn!("the configured user token belongs to another user"),
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}

/// `labelport start`.
pub async fn start(args: StartArgs) -> anyhow::Result<()> {
    let db = open_database(&args.database).await?;
    bootstrap_user(&db).await?;
    let sync = SyncSettings {
        concurrency: args.sync_concurrency,
        lease: std::time::Duration::from_secs(args.sync_lease_seconds),
        workers: args.sync_workers,
        ..SyncSettings::default()
    };
    let state = AppState::new(
        db.clone(),
        ApiSettings {
            max_body_bytes: args.max_body_bytes,
            frontend_dir: args.frontend_dir.clone(),
        },
        sync,
    );
    let address = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    tracing::info!("labelport {} listening on http://{address}", crate::api::VERSION);
    serve(listener, state).await?;
    db.close().await;
    Ok(())
}

/// Serves the API on a bound listener until a shutdown signal.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    use axum::ServiceExt;
    let app = crate::api::app(state);
    axum::serve(listener, ServiceExt::<axum::extract::Request>::into_make_service(app))
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// `labelport user create`.
pub async fn create_user_command(args: UserCreateArgs) -> anyhow::Result<()> {
    let db = open_database(&args.database).await?;
    let user = create_user(&db, &args.email, args.password.as_deref(), args.organization.as_deref()).await?;
    let token = args.token.clone().unwrap_or_else(generate_token);
    db.add_token(user.id, &hash_token(&token)).await?;
    println!(
        "created user {} (id {}) in organization {}",
        user.email, user.id, user.organization_id
    );
    println!("{token}");
    Ok(())
}

/// `labelport user token`.
pub async fn token_command(args: UserTokenArgs) -> anyhow::Result<()> {
    let db = open_database(&args.database).await?;
    let user = db
        .user_by_email(&args.email)
        .await?
        .with_context(|| format!("no user with email {}", args.email))?;
    let token = args.token.clone().unwrap_or_else(generate_token);
    db.add_token(user.id, &hash_token(&token)).await?;
    println!("{token}");
    Ok(())
}

/// `labelport sync ID`: queues a sync of the storage and runs queued jobs in this process until
/// that storage's sync has finished (a running server may pick the job up instead; then this waits).
pub async fn sync_command(args: SyncArgs) -> anyhow::Result<()> {
    let db = open_database(&args.database).await?;
    let engine = crate::sync::SyncEngine::new(
        db.clone(),
        SyncSettings {
            concurrency: args.concurrency,
            ..SyncSettings::default()
        },
    );
    let record = db
        .storage_by_id(args.storage_id)
        .await
        .with_context(|| format!("no storage with id {}", args.storage_id))?;
    if !record.synchronizable {
        anyhow::bail!("storage {} is not synchronizable", record.id);
    }
    engine.request_sync(&record).await?;
    loop {
        let current = db.storage_by_id(record.id).await?;
        if !current.status.is_active() {
            println!(
                "storage {} ({} {}): {}, {} {}",
                current.id,
                current.direction.as_str(),
                current.kind,
                current.status.as_str(),
                current.last_sync_count.unwrap_or(0),
                match current.direction {
                    crate::model::storage::Direction::Import => "tasks created",
                    crate::model::storage::Direction::Export => "annotations written",
                }
            );
            if let Some(traceback) = current.traceback {
                println!("{traceback}");
            }
            return Ok(());
        }
        if !engine.run_one().await? {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}
