//! Settings from an optional TOML file, applied below flags and environment variables.
//!
//! Precedence, highest first: command-line flags, environment variables, the
//! file named by `--config` (or `LEANMOTE_CONFIG`), built-in defaults. The file
//! uses the flags' names with underscores; `serve` settings go in a `[serve]`
//! table:
//!
//! ```toml
//! database_url = "postgres://leanmote@127.0.0.1:5432/leanmote?sslmode=disable"
//! pool_size = 16
//! log_format = "json"
//!
//! [serve]
//! bind = "0.0.0.0:8080"
//! rate_limit_per_minute = 600
//! ```

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};

use crate::cli::Cli;

/// Settings that the file may set at the top level.
const GLOBAL_KEYS: [&str; 3] = ["database_url", "pool_size", "log_format"];
/// Settings that the file may set in its `[serve]` table.
const SERVE_KEYS: [&str; 10] = [
    "bind",
    "workers",
    "max_body_bytes",
    "body_timeout_secs",
    "rate_limit_per_minute",
    "token_cache_secs",
    "max_connections",
    "idempotency_ttl_secs",
    "shutdown_timeout_secs",
    "demo",
];

/// Parses the command line, with defaults taken from the configuration file when one is named.
///
/// # Errors
/// Returns an error naming the file, the unknown key or the invalid value.
pub fn parse_cli(arguments: Vec<OsString>) -> anyhow::Result<Cli> {
    let command = match config_path(&arguments) {
        Some(path) => with_file_defaults(Cli::command(), &path)?,
        None => Cli::command(),
    };
    let matches: ArgMatches = command.try_get_matches_from(arguments).unwrap_or_else(|error| error.exit());
    Ok(Cli::from_arg_matches(&matches)?)
}

/// Finds `--config PATH`, `--config=PATH` or `LEANMOTE_CONFIG`.
fn config_path(arguments: &[OsString]) -> Option<PathBuf> {
    let mut iterator = arguments.iter().map(|argument| argument.to_string_lossy().into_owned());
    while let Some(argument) = iterator.next() {
        if argument == "--config" {
            return iterator.next().map(PathBuf::from);
        }
        if let Some(path) = argument.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("LEANMOTE_CONFIG").map(PathBuf::from)
}

/// Sets the file's values as the defaults of the matching arguments.
fn with_file_defaults(mut command: Command, path: &PathBuf) -> anyhow::Result<Command> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the configuration file {}", path.display()))?;
    let table: toml::Table = text.parse().with_context(|| format!("invalid TOML in {}", path.display()))?;
    for (key, value) in table {
        if key == "serve" {
            let toml::Value::Table(serve) = value else { bail!("`serve` in {} must be a table", path.display()) };
            for (key, value) in serve {
                if !SERVE_KEYS.contains(&key.as_str()) {
                    bail!("unknown setting `serve.{key}` in {}; known: {}", path.display(), SERVE_KEYS.join(", "));
                }
                let default = scalar(&value).with_context(|| format!("`serve.{key}` in {}", path.display()))?;
                command = command
                    .mut_subcommand("serve", |serve| serve.mut_arg(key.as_str(), |arg| arg.default_value(default)));
            }
            continue;
        }
        if !GLOBAL_KEYS.contains(&key.as_str()) {
            bail!(
                "unknown setting `{key}` in {}; known: {}, and a [serve] table",
                path.display(),
                GLOBAL_KEYS.join(", ")
            );
        }
        let default = scalar(&value).with_context(|| format!("`{key}` in {}", path.display()))?;
        command = command.mut_arg(key.as_str(), |arg| arg.default_value(default));
    }
    Ok(command)
}

/// Renders a TOML scalar as the text clap parses.
fn scalar(value: &toml::Value) -> anyhow::Result<String> {
    Ok(match value {
        toml::Value::String(text) => text.clone(),
        toml::Value::Integer(number) => number.to_string(),
        toml::Value::Boolean(flag) => flag.to_string(),
        other => bail!("expected a string, an integer or a boolean, got {}", other.type_str()),
    })
}
