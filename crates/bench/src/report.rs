//! The results: a table on standard output and the same as JSON.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::data::Mode;
use crate::server::Memory;
use crate::stats::Measure;

/// Settings of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub tasks: usize,
    pub concurrency: usize,
    pub batch_sizes: Vec<usize>,
    pub server_workers: u16,
    /// The server's default `--pool-size`, left as it is.
    pub server_pool_size: u32,
    /// Each service case runs on a freshly started server process, so its peak RSS is the case's own.
    pub server_restarted_per_case: bool,
    /// Only the floor was measured.
    pub floor_only: bool,
    /// Maximum wait for an idle machine before each measurement.
    pub idle_wait_secs: u64,
    /// Rounds of the largest batch size's updates sent to one server process.
    pub memory_rounds: u32,
}

/// The machine, as the kernel reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_kib: Option<u64>,
    pub kernel: Option<String>,
}

impl Machine {
    fn read() -> Self {
        let memory_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
        });
        let kernel =
            std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|release| release.trim().to_owned());
        Self { cores: std::thread::available_parallelism().map_or(0, |n| n.get()), memory_kib, kernel }
    }
}

/// The whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub started_at: DateTime<Utc>,
    pub machine: Machine,
    pub settings: Settings,
    /// The `leanmote-api` binary measured.
    pub server_bin: String,
    /// `git describe --always --dirty` of the workspace the benchmark ran from.
    pub workspace_git: Option<String>,
    pub backends: Vec<BackendReport>,
}

/// One backend's cases, or why it was skipped.
#[derive(Debug, Serialize)]
pub struct BackendReport {
    pub backend: String,
    pub version: Option<String>,
    pub skipped: Option<String>,
    pub cases: Vec<CaseReport>,
    /// Memory of one server process after each round of the same updates.
    pub memory_rounds: Vec<MemoryRound>,
}

/// One round of the memory check.
#[derive(Debug, Serialize)]
pub struct MemoryRound {
    pub round: u32,
    pub batch_size: usize,
    pub tasks_per_second: f64,
    /// Read after the round; `peak_rss_kib` covers every round so far.
    pub memory: Memory,
    /// The server's live heap after the round, in bytes, from its `/metrics`.
    pub heap_allocated: Option<u64>,
}

/// One batch size and mode: the service, the floor, and their ratio.
#[derive(Debug, Serialize)]
pub struct CaseReport {
    pub batch_size: usize,
    pub mode: Mode,
    /// Absent with `--floor-only`, like the two fields after `floor`.
    pub service: Option<Measure>,
    pub floor: Measure,
    /// Service tasks per second divided by the floor's.
    pub service_over_floor: Option<f64>,
    /// Of the server process, read from `/proc/<pid>/status` at the end of the case.
    pub server_memory: Option<Memory>,
}

impl CaseReport {
    pub fn new(
        batch_size: usize,
        mode: Mode,
        service: Option<Measure>,
        floor: Measure,
        server_memory: Option<Memory>,
    ) -> Self {
        let service_over_floor = service
            .as_ref()
            .filter(|_| floor.tasks_per_second > 0.0)
            .map(|service| service.tasks_per_second / floor.tasks_per_second);
        Self { batch_size, mode, service, floor, service_over_floor, server_memory }
    }
}

impl Report {
    pub fn new(settings: Settings, server_bin: String, workspace_git: Option<String>) -> Self {
        Self {
            started_at: Utc::now(),
            machine: Machine::read(),
            settings,
            server_bin,
            workspace_git,
            backends: Vec::new(),
        }
    }

    /// Returns the start time for a file name, like `20261204T211400Z`.
    pub fn started_at_compact(&self) -> String {
        self.started_at.format("%Y%m%dT%H%M%SZ").to_string()
    }

    /// Prints one row per backend and case.
    pub fn print_table(&self) {
        println!(
            "\n{} tasks per case, concurrency {}, server --workers {} (restarted for each case)\n",
            self.settings.tasks, self.settings.concurrency, self.settings.server_workers
        );
        println!(
            "{:<9} {:>5} {:<6} | {:>9} {:>8} {:>8} {:>8} | {:>9} {:>8} {:>8} {:>8} | {:>7} | {:>8}",
            "backend",
            "batch",
            "mode",
            "svc t/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "floor t/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "svc/flr",
            "RSS MiB"
        );
        for backend in &self.backends {
            if let Some(reason) = &backend.skipped {
                println!("{:<9} SKIPPED: {reason}", backend.backend);
                continue;
            }
            for case in &backend.cases {
                let service = case.service.as_ref().map_or_else(
                    || format!("{:>9} {:>8} {:>8} {:>8}", "-", "-", "-", "-"),
                    |service| {
                        format!(
                            "{:>9.0} {:>8.2} {:>8.2} {:>8.1}",
                            service.tasks_per_second, service.p50_ms, service.p99_ms, service.max_ms
                        )
                    },
                );
                let ratio =
                    case.service_over_floor.map_or_else(|| "-".to_owned(), |ratio| format!("{:.0}%", ratio * 100.0));
                let rss = case
                    .server_memory
                    .map_or_else(|| "-".to_owned(), |memory| format!("{:.1}", memory.peak_rss_kib as f64 / 1024.0));
                println!(
                    "{:<9} {:>5} {:<6} | {service} | {:>9.0} {:>8.2} {:>8.2} {:>8.1} | {ratio:>7} | {rss:>8}",
                    backend.backend,
                    case.batch_size,
                    case.mode.as_str(),
                    case.floor.tasks_per_second,
                    case.floor.p50_ms,
                    case.floor.p99_ms,
                    case.floor.max_ms,
                );
            }
        }
        for backend in self.backends.iter().filter(|backend| !backend.memory_rounds.is_empty()) {
            let rss: Vec<String> = backend
                .memory_rounds
                .iter()
                .map(|round| format!("{:.1}", round.memory.rss_kib as f64 / 1024.0))
                .collect();
            let heap: Vec<String> = backend
                .memory_rounds
                .iter()
                .map(|round| round.heap_allocated.map_or_else(|| "-".to_owned(), |bytes| format!("{:.1}", mib(bytes))))
                .collect();
            let peak = backend.memory_rounds.last().map_or(0.0, |round| round.memory.peak_rss_kib as f64 / 1024.0);
            println!(
                "{:<9} one server, {} rounds of batch {} updates: RSS after each {} MiB, peak {peak:.1} MiB; live heap after each {} MiB",
                backend.backend,
                backend.memory_rounds.len(),
                backend.memory_rounds[0].batch_size,
                rss.join(" / "),
                heap.join(" / ")
            );
        }
    }
}

/// A one-line summary printed while the run goes on.
pub fn one_line(measure: &Measure) -> String {
    let cpu = measure.cpu.map_or_else(String::new, |cpu| {
        format!(
            "; cores busy {:.2}: bench {:.2}, server {:.2}, postgres {:.2}, other {:.2}",
            cpu.total_cores, cpu.bench_cores, cpu.server_cores, cpu.postgres_cores, cpu.other_cores
        )
    });
    format!(
        "{:.0} tasks/s ({} ops in {:.2} s), p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, parent waits {}, 503 retries {}{cpu}",
        measure.tasks_per_second,
        measure.operations,
        measure.seconds,
        measure.p50_ms,
        measure.p99_ms,
        measure.max_ms,
        measure.parent_waits,
        measure.retries_after_503
    )
}

/// Converts bytes to MiB, for printing.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
