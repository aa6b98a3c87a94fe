//! Where the machine's CPU time went during a measurement, from `/proc`.
//!
//! The client, the server and the database share the same cores, and other
//! work on the machine slows every number down. This module measures each share.

use std::collections::HashMap;

use serde::Serialize;

/// Average cores used over a measurement, per consumer.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuUsage {
    /// All busy time of the machine (user, system, interrupts, steal).
    pub total_cores: f64,
    /// This benchmark process: the HTTP client, or the floor's writers.
    pub bench_cores: f64,
    /// The `leanmote-api` server process (0 for the floor).
    pub server_cores: f64,
    /// Every process named `postgres` (0 on SQLite unless something else uses PostgreSQL).
    pub postgres_cores: f64,
    /// The rest: other processes, kernel threads, and processes that exited during the measurement.
    pub other_cores: f64,
}

/// Counters read at the start of a measurement.
pub struct CpuSampler {
    server_pid: Option<u32>,
    start: Sample,
}

struct Sample {
    /// Busy and total ticks of the whole machine.
    busy: u64,
    total: u64,
    bench: u64,
    server: u64,
    postgres: HashMap<u32, u64>,
}

impl CpuSampler {
    pub fn start(server_pid: Option<u32>) -> Self {
        Self { server_pid, start: Sample::read(server_pid) }
    }

    /// Usage since [`Self::start`]; `None` where `/proc` cannot be read.
    pub fn finish(&self) -> Option<CpuUsage> {
        let end = Sample::read(self.server_pid);
        let total = end.total.checked_sub(self.start.total).filter(|ticks| *ticks > 0)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        // /proc/stat sums every core, so `total` ticks are `cores` times the wall time.
        let per_core = |ticks: u64| ticks as f64 / total as f64 * cores;
        let busy = end.busy.saturating_sub(self.start.busy);
        let bench = end.bench.saturating_sub(self.start.bench);
        let server = end.server.saturating_sub(self.start.server);
        let postgres: u64 = end
            .postgres
            .iter()
            .map(|(pid, ticks)| ticks.saturating_sub(self.start.postgres.get(pid).copied().unwrap_or(0)))
            .sum();
        let other = busy.saturating_sub(bench + server + postgres);
        Some(CpuUsage {
            total_cores: per_core(busy),
            bench_cores: per_core(bench),
            server_cores: per_core(server),
            postgres_cores: per_core(postgres),
            other_cores: per_core(other),
        })
    }
}

impl Sample {
    fn read(server_pid: Option<u32>) -> Self {
        let (busy, total) = machine_ticks().unwrap_or((0, 0));
        let mut postgres = HashMap::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
                    continue;
                };
                if let Some(("postgres", ticks)) =
                    process_ticks(pid).as_ref().map(|(name, ticks)| (name.as_str(), *ticks))
                {
                    postgres.insert(pid, ticks);
                }
            }
        }
        Self {
            busy,
            total,
            bench: process_ticks(std::process::id()).map_or(0, |(_, ticks)| ticks),
            server: server_pid.and_then(process_ticks).map_or(0, |(_, ticks)| ticks),
            postgres,
        }
    }
}

/// Busy and total ticks from the first line of `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> =
        stat.lines().next()?.split_whitespace().skip(1).take(8).map(|field| field.parse().unwrap_or(0)).collect();
    // user nice system idle iowait irq softirq steal
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Command name and user + system ticks of a process, from `/proc/<pid>/stat`.
fn process_ticks(pid: u32) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_owned();
    // After the name: state is field 3; utime and stime are fields 14 and 15.
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// Waits until the machine is nearly idle (under a quarter of a core busy over one
/// second), for at most `limit`, so that other work does not land inside a
/// measurement. Returns the busy cores of the last second it sampled.
pub fn wait_until_idle(limit: std::time::Duration) -> f64 {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let before = machine_ticks();
        std::thread::sleep(std::time::Duration::from_secs(1));
        let busy_cores = match (before, machine_ticks()) {
            (Some((busy_before, total_before)), Some((busy_after, total_after))) if total_after > total_before => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
                (busy_after - busy_before) as f64 / (total_after - total_before) as f64 * cores
            }
            _ => return 0.0,
        };
        if busy_cores < 0.25 || std::time::Instant::now() >= deadline {
            return busy_cores;
        }
    }
}
