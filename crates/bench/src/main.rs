//! Benchmark of `POST /api/v1/tasks` against the floor of the same writes made straight to the database.
//!
//! For each backend it builds a fresh database and starts the real `leanmote-api`
//! binary once per case. It loads the generated tasks over HTTP as creates and then
//! as updates of the same keys, and writes the same rows with diesel alone (the
//! floor). It prints throughput, latency percentiles, the server's peak RSS and
//! the service/floor ratio, and writes them as JSON under `target/bench/`.

mod cpu;
mod data;
mod floor;
mod http;
mod report;
mod server;
mod stats;
mod store;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicI64;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::data::{DataSet, Mode};
use crate::report::{BackendReport, CaseReport, MemoryRound, Report, Settings, mib};
use crate::server::Binary;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";

/// Benchmark of the task ingestion API against the floor of the same database writes.
#[derive(Debug, Parser)]
#[command(about)]
struct Cli {
    /// Tasks loaded per case.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    tasks: u32,
    /// Concurrent keep-alive HTTP connections, and threads of the floor.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Backends to measure.
    #[arg(long, value_enum, default_value_t = BackendChoice::Both)]
    backend: BackendChoice,
    /// Tasks per request (service) and per transaction (floor), 1 to 1000 each.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    batch_sizes: Vec<u16>,
    /// HTTP worker threads of the server (`serve --workers`); default one per core.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: Option<u16>,
    /// The `leanmote-api` binary to run; by default it is built with cargo first.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Before each measurement, wait up to this many seconds for the machine to be
    /// nearly idle (other builds or tests running beside the benchmark skew it); 0 never waits.
    #[arg(long, default_value_t = 0)]
    idle_wait_secs: u64,
    /// Measure the floor only (to check it against reference numbers); no server is started.
    #[arg(long)]
    floor_only: bool,
    /// After the cases, send the largest batch size's updates this many times to one
    /// server process and read its resident memory after each round; 0 skips it.
    #[arg(long, default_value_t = 5)]
    memory_rounds: u32,
    /// Result file; default `target/bench/results-<UTC time>.json`.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

fn main() {
    if let Err(error) = run(Cli::parse()) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut batch_sizes: Vec<usize> = cli.batch_sizes.iter().map(|size| usize::from(*size)).collect();
    batch_sizes.sort_unstable();
    batch_sizes.dedup();
    if batch_sizes.is_empty() || batch_sizes.iter().any(|size| !(1..=1000).contains(size)) {
        bail!("--batch-sizes takes sizes from 1 to 1000, for example 1,100,1000");
    }
    let root = workspace_root()?;
    let out_dir = root.join("target").join("bench");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("failed to create {}", out_dir.display()))?;
    let server_bin = match &cli.server_bin {
        Some(path) => path.clone(),
        None => build_server(&root)?,
    };
    let workers =
        cli.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()).min(256) as u16);
    let settings = Settings {
        tasks: cli.tasks as usize,
        concurrency: usize::from(cli.concurrency),
        batch_sizes: batch_sizes.clone(),
        server_workers: workers,
        server_pool_size: 8,
        server_restarted_per_case: true,
        floor_only: cli.floor_only,
        idle_wait_secs: cli.idle_wait_secs,
        memory_rounds: if cli.floor_only { 0 } else { cli.memory_rounds },
    };

    let largest = batch_sizes.iter().copied().max().unwrap_or(1);
    let data = DataSet::generate(settings.tasks, largest);
    println!(
        "{} tasks per case, {} with a parent (at least {} tasks earlier); concurrency {}; server --workers {}",
        data.tasks.len(),
        data.with_parent(),
        data.parent_gap,
        settings.concurrency,
        workers
    );

    let backends = match cli.backend {
        BackendChoice::Sqlite => vec![Backend::Sqlite],
        BackendChoice::Postgres => vec![Backend::Postgres],
        BackendChoice::Both => vec![Backend::Sqlite, Backend::Postgres],
    };
    let mut report = Report::new(settings, server_bin.display().to_string(), git_describe(&root));
    let out = cli.out.unwrap_or_else(|| out_dir.join(format!("results-{}.json", report.started_at_compact())));
    for backend in backends {
        let section = match backend {
            Backend::Sqlite => run_sqlite(&server_bin, &out_dir, &data, &report.settings),
            Backend::Postgres => run_postgres(&server_bin, &out_dir, &data, &report.settings),
        }
        .with_context(|| format!("the {} benchmark failed", backend.name()))?;
        report.backends.push(section);
        // Written after each backend, so that a later failure keeps what was measured.
        std::fs::write(&out, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("failed to write {}", out.display()))?;
    }

    report.print_table();
    println!("\nwrote {}", out.display());
    Ok(())
}

/// `git describe --always --dirty` of the workspace, to tell which code was measured.
fn git_describe(root: &Path) -> Option<String> {
    let output = Command::new("git").args(["describe", "--always", "--dirty"]).current_dir(root).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Returns the workspace root, two levels above this crate.
fn workspace_root() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..");
    root.canonicalize().with_context(|| format!("failed to find the workspace root {}", root.display()))
}

/// Builds the release server binary with cargo, as `make build` does.
fn build_server(root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("building target/release/leanmote-api");
    let status = Command::new(cargo)
        .args(["build", "--release", "--bin", "leanmote-api"])
        .current_dir(root)
        .status()
        .context("failed to run cargo")?;
    if !status.success() {
        bail!("cargo build --release --bin leanmote-api failed ({status})");
    }
    Ok(root.join("target").join("release").join("leanmote-api"))
}

fn run_sqlite(server_bin: &Path, out_dir: &Path, data: &DataSet, settings: &Settings) -> anyhow::Result<BackendReport> {
    let path = out_dir.join(format!("bench-{}.sqlite3", std::process::id()));
    let remove = |path: &Path| {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    };
    remove(&path);
    let path_text = path.to_str().context("the SQLite path is not UTF-8")?.to_owned();
    let binary = Binary { path: server_bin.to_owned(), database_url: format!("sqlite://{path_text}") };
    let result = (|| -> anyhow::Result<BackendReport> {
        binary.admin(&["migrate"])?;
        let version = store::sqlite_version(&path_text)?;
        println!("\n== sqlite {version} at {}", path.display());
        let hooks = Hooks {
            floor: &|case| floor::run_sqlite(&path_text, case),
            count: &|project_id| store::count_sqlite(&path_text, project_id),
            reset: &|| store::reset_sqlite(&path_text),
        };
        let (cases, memory_rounds) = run_backend(&binary, out_dir, Backend::Sqlite, data, settings, &hooks)?;
        Ok(BackendReport { backend: "sqlite".into(), version: Some(version), skipped: None, cases, memory_rounds })
    })();
    remove(&path);
    result
}

fn run_postgres(
    server_bin: &Path,
    out_dir: &Path,
    data: &DataSet,
    settings: &Settings,
) -> anyhow::Result<BackendReport> {
    let admin_url = std::env::var("LEANMOTE_BENCH_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
    let mut admin = match PgConnection::establish(&admin_url) {
        Ok(conn) => conn,
        Err(error) => {
            println!("\n== postgres SKIPPED: no server answers at {admin_url} ({error})");
            return Ok(BackendReport {
                backend: "postgres".into(),
                version: None,
                skipped: Some(format!("unreachable: {error}")),
                cases: Vec::new(),
                memory_rounds: Vec::new(),
            });
        }
    };
    let name = format!("leanmote_bench_{}", std::process::id());
    let mut url = url::Url::parse(&admin_url).context("LEANMOTE_BENCH_POSTGRES_URL is not a URL")?;
    url.set_path(&format!("/{name}"));
    let url = url.to_string();
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))?;
    admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
    let binary = Binary { path: server_bin.to_owned(), database_url: url.clone() };
    let result = (|| -> anyhow::Result<BackendReport> {
        binary.admin(&["migrate"])?;
        let version = store::postgres_version(&url)?;
        println!("\n== postgres {version}, database {name}");
        let hooks = Hooks {
            floor: &|case| floor::run_postgres(&url, case),
            count: &|project_id| store::count_postgres(&url, project_id),
            reset: &|| store::reset_postgres(&url),
        };
        let (cases, memory_rounds) = run_backend(&binary, out_dir, Backend::Postgres, data, settings, &hooks)?;
        Ok(BackendReport { backend: "postgres".into(), version: Some(version), skipped: None, cases, memory_rounds })
    })();
    let dropped = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    let report = result?;
    dropped.with_context(|| format!("failed to drop the database {name}"))?;
    Ok(report)
}

/// The database operations of one backend's run.
struct Hooks<'a> {
    /// Writes one case's rows straight to the database.
    floor: &'a dyn Fn(&floor::Case<'_>) -> anyhow::Result<stats::Measure>,
    /// Counts a project's tasks and parent links.
    count: &'a dyn Fn(i64) -> anyhow::Result<(usize, usize)>,
    /// Cleans up after the case before, ahead of each measurement.
    reset: &'a dyn Fn() -> anyhow::Result<()>,
}

/// Runs every batch size as creates then updates, floor first, then the service on a fresh server process.
/// Then runs the memory rounds of [`memory_rounds`].
fn run_backend(
    binary: &Binary,
    out_dir: &Path,
    backend: Backend,
    data: &DataSet,
    settings: &Settings,
    hooks: &Hooks<'_>,
) -> anyhow::Result<(Vec<CaseReport>, Vec<MemoryRound>)> {
    let organization = binary.create_organization("Leanmote benchmark")?;
    let token = binary.create_token("bench", organization)?;
    let log = out_dir.join(format!("server-{}-{}.log", backend.name(), std::process::id()));
    let mut cases = Vec::new();
    let mut last_service_project = None;
    for &size in &settings.batch_sizes {
        let service_project =
            binary.create_project(organization, &format!("SVC-B{size}"), &format!("Service, batches of {size}"))?;
        last_service_project = Some((size, service_project));
        let floor_project =
            binary.create_project(organization, &format!("FLOOR-B{size}"), &format!("Floor, batches of {size}"))?;
        let ids: Vec<AtomicI64> = (0..data.tasks.len()).map(|_| AtomicI64::new(0)).collect();
        for mode in [Mode::Create, Mode::Update] {
            let batches = data.batches(size, mode);
            let label = format!("{} batch {size} {}", backend.name(), mode.as_str());
            (hooks.reset)()?;
            settle(settings);
            println!("-- {label}: floor");
            let floor_case = floor::Case {
                data,
                batches: &batches,
                project_id: floor_project,
                mode,
                concurrency: settings.concurrency,
                ids: &ids,
            };
            let floor_measure = (hooks.floor)(&floor_case)?;
            check_rows(hooks.count, floor_project, data)?;
            println!("   {}", report::one_line(&floor_measure));

            if settings.floor_only {
                cases.push(CaseReport::new(size, mode, None, floor_measure, None));
                continue;
            }
            let bodies = data::request_bodies(data, &batches, service_project, mode)?;
            (hooks.reset)()?;
            let server = binary.serve(settings.server_workers, &log)?;
            settle(settings);
            // Printed as the measurement starts, like the floor's, so a profiler can start with it.
            println!("-- {label}: service");
            let measured =
                http::run(server.pid(), &server.base_url, &token, bodies, &batches, settings.concurrency, mode)
                    .and_then(|measure| {
                        let memory = server.memory()?;
                        Ok((measure, memory))
                    });
            server.stop()?;
            let (service_measure, memory) = measured?;
            check_rows(hooks.count, service_project, data)?;
            println!(
                "   {}; server peak RSS {:.1} MiB",
                report::one_line(&service_measure),
                memory.peak_rss_kib as f64 / 1024.0
            );
            cases.push(CaseReport::new(size, mode, Some(service_measure), floor_measure, Some(memory)));
        }
    }

    let rounds = match last_service_project {
        Some((size, project_id)) if settings.memory_rounds > 0 => {
            memory_rounds(binary, &log, &token, data, size, project_id, settings)?
        }
        _ => Vec::new(),
    };
    Ok((cases, rounds))
}

/// Sends updates of every task (batch size `size`, to a project that contains every
/// task) `settings.memory_rounds` times to one server process, and reads its memory
/// after each round, so that growth across repeated loads shows. Rounds alternate
/// between the data set's two texts, so that every round changes every row: the
/// service skips writing a row that a request leaves as it is.
fn memory_rounds(
    binary: &Binary,
    log: &Path,
    token: &str,
    data: &DataSet,
    size: usize,
    project_id: i64,
    settings: &Settings,
) -> anyhow::Result<Vec<MemoryRound>> {
    println!("-- memory: {} rounds of batch {size} updates on one server", settings.memory_rounds);
    let batches = data.batches(size, Mode::Update);
    let server = binary.serve(settings.server_workers, log)?;
    let mut rounds = Vec::new();
    for round in 1..=settings.memory_rounds {
        // The update case left the second texts stored, so odd rounds send the first.
        let texts = if round % 2 == 1 { Mode::Create } else { Mode::Update };
        let bodies = data::request_bodies(data, &batches, project_id, texts)?;
        let measure =
            http::run(server.pid(), &server.base_url, token, bodies, &batches, settings.concurrency, Mode::Update)?;
        let memory = server.memory()?;
        let heap_allocated = http::heap_allocated(&server.base_url)?;
        println!(
            "   round {round}: {:.0} tasks/s; server RSS {:.1} MiB, peak {:.1} MiB, live heap {}",
            measure.tasks_per_second,
            memory.rss_kib as f64 / 1024.0,
            memory.peak_rss_kib as f64 / 1024.0,
            heap_allocated.map_or_else(|| "not reported".to_owned(), |bytes| format!("{:.1} MiB", mib(bytes))),
        );
        rounds.push(MemoryRound {
            round,
            batch_size: size,
            tasks_per_second: measure.tasks_per_second,
            memory,
            heap_allocated,
        });
    }
    server.stop()?;
    Ok(rounds)
}

/// Waits for the machine to be nearly idle, and says so when it never was.
fn settle(settings: &Settings) {
    if settings.idle_wait_secs == 0 {
        return;
    }
    let busy = cpu::wait_until_idle(std::time::Duration::from_secs(settings.idle_wait_secs));
    if busy >= 0.25 {
        println!("   note: the machine is still busy ({busy:.2} cores) after {} s of waiting", settings.idle_wait_secs);
    }
}

/// Checks that a project holds every task, with the expected number of parent links.
fn check_rows(
    count: impl Fn(i64) -> anyhow::Result<(usize, usize)>,
    project_id: i64,
    data: &DataSet,
) -> anyhow::Result<()> {
    let (rows, with_parent) = count(project_id)?;
    if rows != data.tasks.len() || with_parent != data.with_parent() {
        bail!(
            "project {project_id} holds {rows} tasks with {with_parent} parents; expected {} with {}",
            data.tasks.len(),
            data.with_parent()
        );
    }
    Ok(())
}
