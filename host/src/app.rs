//! The wiring: start-up (database, storage, plugins, the admin user), the server loop and the
//! workers of `serve` and `worker`, and the [`events`] listener that keeps a process in step with
//! the others. The top layer: it may use every module; none uses it. The state handlers share is
//! [`crate::state`].

mod events;
pub mod listener;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::auth::{Authenticator, hash_password, random_token};
use crate::config::Config;
use crate::db::{Db, now};
use crate::domain::app_statuses::{self as statuses, AppType, Registration};
use crate::domain::remotes::{DefaultTimeouts, RemoteClients};
use crate::domain::transfer::AllowedPaths;
use crate::plugins::PluginRuntime;
use crate::plugins::runtime::Limits;
use crate::state::{App, AppState};
use crate::storage::{BlobStore, S3Settings};
use crate::tasks::worker::Workers;

/// Built-in plugin components, compiled to `wasm32-wasip2` by `host/build.rs`.
const BUILTIN_PLUGINS: &[(&str, &[u8])] = &[
    ("file", include_bytes!(env!("GRANARY_PLUGIN_FILE_WASM"))),
    ("python", include_bytes!(env!("GRANARY_PLUGIN_PYTHON_WASM"))),
];

/// Opens the database (running migrations), storage and the plugin runtime, and loads the
/// built-in plugins, those in `--plugin-dir`, then the enabled installed ones.
pub async fn start(mut config: Config, origin: String) -> anyhow::Result<Arc<App>> {
    config.check_content_limits(crate::plugins::INSTANCE_POOL_SIZE as usize)?;
    let remote_timeouts = DefaultTimeouts {
        connect: Config::remote_timeout(config.remote_connect_timeout),
        sock_connect: Config::remote_timeout(Some(config.remote_sock_connect_timeout)),
        sock_read: Config::remote_timeout(config.remote_sock_read_timeout),
        total: Config::remote_timeout(Some(config.remote_total_timeout)),
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    // Absolute from here on: the default is relative, and wasmtime's compile cache insists.
    config.data_dir = config
        .data_dir
        .canonicalize()
        .with_context(|| format!("resolving the data directory {}", config.data_dir.display()))?;
    let db = Arc::new(Db::connect(&config.database_url()).await?);
    let secrets = Arc::new(
        crate::secrets::for_database(&db, &config.db_encryption_key_path())
            .await
            .context("opening the database encryption key")?,
    );
    let blobs = Arc::new(
        match &config.s3_bucket {
            Some(bucket) => BlobStore::s3(
                &config.data_dir,
                &S3Settings {
                    bucket: bucket.clone(),
                    endpoint: config.s3_endpoint.clone(),
                    region: config.s3_region.clone(),
                    access_key_id: config.s3_access_key_id.clone(),
                    secret_access_key: config.s3_secret_access_key.clone(),
                },
            )?,
            None => BlobStore::local(&config.data_dir)?,
        }
        .with_small_blob_cache(config.content_memory_cache_mb.saturating_mul(1 << 20))
        .with_journal(db.clone()),
    );
    let limits = Limits {
        cpu_time: Duration::from_millis(config.plugin_cpu_limit_ms),
        memory_bytes: usize::try_from(config.plugin_memory_limit_mb.saturating_mul(1024 * 1024))
            .context("plugin memory limit")?,
        max_output_bytes: config.plugin_max_output_bytes,
    };
    let plugins = Arc::new(PluginRuntime::new(&config.plugin_cache_dir_path(), limits)?);
    for (name, bytes) in BUILTIN_PLUGINS {
        plugins
            .load(bytes.to_vec(), true)
            .await
            .with_context(|| format!("loading built-in plugin {name}"))?;
    }
    if let Some(dir) = &config.plugin_dir {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading plugin directory {}", dir.display()))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
            .collect();
        entries.sort();
        for path in entries {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let plugin = plugins
                .load(bytes, false)
                .await
                .with_context(|| format!("loading plugin {}", path.display()))?;
            tracing::info!(plugin = %plugin.info.name, version = %plugin.info.version, path = %path.display(), "loaded plugin");
        }
    }
    crate::domain::registry::sync_registry(&plugins, &db, &blobs).await?;
    // The built-in roles and default access policies of core and of the plugins now loaded.
    crate::rbac::sync_builtins(&db, &plugins.rest_names())
        .await
        .context("writing the built-in roles and access policies")?;
    let authenticator = Arc::new(
        Authenticator::new(db.clone(), crate::auth::ThrottleSettings::of(&config))
            .with_registry_tokens(secrets.clone()),
    );
    let allowed_paths = Arc::new(AllowedPaths::new(
        &config.allowed_export_paths,
        &config.allowed_import_paths,
    ));
    let app = Arc::new(App {
        config,
        allowed_paths,
        db,
        blobs,
        plugins,
        task_wakeup: Arc::new(Notify::new()),
        task_finished: Arc::new(Notify::new()),
        worker_name: format!("{}@{}", std::process::id(), uuid::Uuid::new_v4()),
        origin: origin.trim_end_matches('/').to_owned(),
        remote_clients: Arc::new(RemoteClients::new(remote_timeouts)),
        secrets,
        authenticator,
    });
    ensure_user_ids(&app).await?;
    ensure_admin(&app).await?;
    Ok(app)
}

/// Sets the admin password from the configuration, or generates one at first start. The
/// configured password is the way back in: it also makes the admin active staff again.
async fn ensure_admin(app: &App) -> anyhow::Result<()> {
    let existing = sqlx::query("SELECT username FROM users WHERE username = 'admin'")
        .fetch_optional(app.db.pool())
        .await?;
    let password = match (&app.config.admin_password, existing) {
        (Some(password), _) => password.clone(),
        (None, Some(_)) => return Ok(()),
        (None, None) => {
            let generated = random_token(24);
            println!("Generated password for user 'admin' (shown once): {generated}");
            generated
        }
    };
    let hash = hash_password(&password).await?;
    let mut tx = app.db.begin_write().await?;
    sqlx::query(
            "INSERT INTO users (id, username, password_salt, password_hash, created, is_staff, is_active)
             VALUES ($1, 'admin', '', $2, $3, 1, 1)
             ON CONFLICT (username) DO UPDATE SET password_salt = excluded.password_salt,
                 password_hash = excluded.password_hash, is_staff = 1, is_active = 1",
        )
        .bind(crate::db::new_id())
        .bind(hash)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Gives an id to users recorded before users had one (the admin of an older database), so
/// every user has a `pulp_href`.
async fn ensure_user_ids(app: &App) -> anyhow::Result<()> {
    let missing: Vec<String> = sqlx::query_scalar("SELECT username FROM users WHERE id IS NULL")
        .fetch_all(app.db.pool())
        .await?;
    if missing.is_empty() {
        return Ok(());
    }
    let mut tx = app.db.begin_write().await?;
    for username in missing {
        sqlx::query("UPDATE users SET id = $1 WHERE username = $2 AND id IS NULL")
            .bind(crate::db::new_id())
            .bind(username)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The task workers of this process: they share its backends, name and wake-up signal.
fn workers_of(app: &AppState) -> Arc<Workers> {
    Arc::new(Workers {
        backends: app.backends(),
        worker_name: app.worker_name.clone(),
        task_wakeup: app.task_wakeup.clone(),
        task_finished: app.task_finished.clone(),
    })
}

/// Runs `worker`: task workers only, until `shutdown` is cancelled.
pub async fn work(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let origin = config
        .content_origin
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.bind));
    let workers = config.workers.max(1);
    let app = start(config, origin).await?;
    tokio::spawn(events::listen(app.clone(), shutdown.clone()));
    tokio::spawn(app.blobs.clone().move_journal(shutdown.clone()));
    println!("granary worker {} ready", app.worker_name);
    crate::tasks::worker::run(workers_of(&app), workers, shutdown).await
}

/// Runs `serve`: the REST API and the content app on `listener`, plus `config.workers` task
/// workers, until `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    let origin = config
        .content_origin
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let workers = config.workers;
    let app = start(config, origin).await?;
    let worker_handle = (workers > 0).then(|| {
        tokio::spawn(crate::tasks::worker::run(
            workers_of(&app),
            workers,
            shutdown.clone(),
        ))
    });
    tokio::spawn(events::listen(app.clone(), shutdown.clone()));
    tokio::spawn(app.blobs.clone().move_journal(shutdown.clone()));
    let registration = Arc::new(
        Registration::register(
            &app.db,
            &app.worker_name,
            &[AppType::Api, AppType::Content],
            &statuses::versions(&app.plugins),
        )
        .await?,
    );
    let heartbeat = tokio::spawn(beat_until(
        app.clone(),
        registration.clone(),
        shutdown.clone(),
    ));
    let router = crate::api::router(&app)
        .merge(crate::content::router(&app))
        .merge(crate::ui::router(&app))
        .with_state(app.clone());
    println!("granary listening on http://{address}");
    // The listener puts the connection's address on every request (`ConnectInfo`): the content
    // app counts turns per client address, and `auth` counts failed log-ins per address.
    listener::serve(
        listener,
        router,
        listener::Limits::of(&app.config),
        shutdown.clone(),
    )
    .await?;
    shutdown.cancel();
    heartbeat.await?;
    if let Some(registration) = Arc::into_inner(registration) {
        registration.remove(&app.db).await?;
    }
    if let Some(handle) = worker_handle {
        handle.await??;
    }
    Ok(())
}

/// Moves the heartbeat of `registration` every [`statuses::HEARTBEAT`] until `shutdown`.
async fn beat_until(app: AppState, registration: Arc<Registration>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(statuses::HEARTBEAT) => {}
        }
        if let Err(error) = registration
            .beat(&app.db, &statuses::versions(&app.plugins))
            .await
        {
            tracing::warn!(error = %error, "heartbeat failed");
        }
    }
}
