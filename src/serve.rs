//! `serve`: wires the adapters into the use cases and runs the HTTP server.

use std::sync::Arc;

use anyhow::Context;
use std::time::Duration;

use api_actix::{AppState, RateLimiter};
use domain::auth::Authenticator;
use domain::clock::{Clock, SystemClock};
use domain::idempotency::Idempotency;
use domain::ingest::TaskIngestion;
use domain::project_upsert::ProjectUpsert;
use domain::read::Reader;
use infra_diesel::Database;

use crate::cli::ServeOptions;
use crate::metrics::PrometheusMetrics;

/// Seconds a claimed idempotency key lasts beyond the body timeout, for the write itself.
const CLAIM_WRITE_ALLOWANCE_SECS: u64 = 60;
/// Interval between deletions of expired idempotency responses.
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

/// Builds the shared state of the HTTP handlers.
///
/// # Errors
/// Returns an error when the metrics recorder cannot be installed.
pub fn app_state(database: &Database, options: &ServeOptions) -> anyhow::Result<AppState> {
    let store = Arc::new(database.clone());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Ok(AppState {
        ingestion: TaskIngestion::new(store.clone(), clock.clone()),
        projects: ProjectUpsert { projects: store.clone(), organizations: store.clone(), clock: clock.clone() },
        reader: Reader { tasks: store.clone(), projects: store.clone(), organizations: store.clone() },
        authenticator: authenticator(store.clone(), clock.clone(), options.token_cache_secs),
        readiness: store.clone(),
        metrics: Arc::new(PrometheusMetrics::install(database)?),
        rate_limiter: Arc::new(RateLimiter::new(options.rate_limit_per_minute)),
        idempotency: Idempotency {
            store,
            clock,
            response_ttl: Duration::from_secs(options.idempotency_ttl_secs),
            // A claim outlives the slowest upload plus time to write the batch, so a
            // server that dies mid-request frees its keys soon after.
            claim_lease: Duration::from_secs(options.body_timeout_secs + CLAIM_WRITE_ALLOWANCE_SECS),
        },
        max_body_bytes: options.max_body_bytes,
        body_timeout: Duration::from_secs(options.body_timeout_secs),
    })
}

fn authenticator(tokens: Arc<Database>, clock: Arc<dyn Clock>, cache_secs: u64) -> Authenticator {
    let authenticator = Authenticator::new(tokens, clock);
    if cache_secs == 0 { authenticator } else { authenticator.with_cache(Duration::from_secs(cache_secs)) }
}

/// Runs the server until SIGINT or SIGTERM; in-flight requests finish first.
///
/// # Errors
/// Returns an error when another server uses the same SQLite file, demo
/// setup fails or the address cannot be bound.
pub async fn run(database: Database, options: ServeOptions) -> anyhow::Result<()> {
    database.claim_sqlite_file()?;
    let state = Arc::new(app_state(&database, &options)?);
    let mut server = actix_web::HttpServer::new({
        let state = Arc::clone(&state);
        move || api_actix::app(Arc::clone(&state))
    });
    server = server.shutdown_timeout(options.shutdown_timeout_secs).max_connections(options.max_connections as usize);
    if let Some(workers) = options.workers {
        server = server.workers(usize::from(workers));
    }
    let server = server.bind(options.bind).with_context(|| {
        format!(
            "failed to listen on {}; stop the process that uses it, or choose another address with --bind or LEANMOTE_BIND",
            options.bind
        )
    })?;
    let address = server.addrs().first().copied().context("the server bound no address")?;

    println!("listening on http://{address}");
    tracing::info!(%address, backend = database.backend_name(), "server started");
    if options.demo {
        crate::demo::seed(&database, &state, address).await.context("failed to set up demo mode")?;
    }
    actix_web::rt::spawn(prune_forever(state.idempotency.clone()));
    server.run().await.context("the HTTP server failed")?;
    tracing::info!("server stopped");
    Ok(())
}

/// Deletes expired idempotency responses now and every [`PRUNE_INTERVAL`]. Each
/// instance prunes; the deletes are idempotent, so instances never conflict.
async fn prune_forever(idempotency: Idempotency) {
    let mut ticks = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        ticks.tick().await;
        match idempotency.prune().await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "deleted expired idempotency responses"),
            Err(error) => {
                tracing::warn!(error = %error, "failed to delete expired idempotency responses; the next run retries")
            }
        }
    }
}
