//! The composition root of Leanmote's task ingestion API.
//!
//! It reads the configuration, wires the diesel adapters into the domain's
//! use cases and the actix-web layer, and runs the subcommands.

pub mod admin;
pub mod allocator;
pub mod cli;
pub mod client;
pub mod config_file;
pub mod demo;
pub mod import;
pub mod logging;
pub mod metrics;
pub mod serve;

use std::sync::Arc;

use anyhow::Context;
use domain::admin::Admin;
use domain::clock::{Clock, SystemClock};
use infra_diesel::{Database, PoolOptions};

use crate::cli::{Cli, Command};

/// Runs one subcommand to completion.
///
/// # Errors
/// Returns the first failure, with context naming the step.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Import(options) = cli.command {
        return import::run_command(options).await;
    }
    let pool = PoolOptions { max_size: cli.pool_size, ..PoolOptions::default() };
    let database = Database::connect(&cli.database_url, &pool)?;
    let applied = database.migrate().await.context("failed to apply database migrations")?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, backend = database.backend_name(), "migrations applied");
    }
    match cli.command {
        Command::Serve(options) => serve::run(database, options).await,
        Command::Migrate => {
            println!("applied {} migration(s); the database schema is up to date", applied.len());
            Ok(())
        }
        Command::Import(_) => unreachable!("handled before connecting"),
        admin_command => admin::run(&admin_use_cases(&database), admin_command).await,
    }
}

/// Builds the administrative use cases on a database.
pub fn admin_use_cases(database: &Database) -> Admin {
    let database = Arc::new(database.clone());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Admin { organizations: database.clone(), projects: database.clone(), tokens: database, clock }
}
