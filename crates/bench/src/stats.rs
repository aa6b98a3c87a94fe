//! Throughput and latency percentiles of one run.

use std::time::Duration;

use serde::Serialize;

use crate::cpu::CpuUsage;

/// Measurement of one side (service or floor) in one case.
#[derive(Debug, Clone, Serialize)]
pub struct Measure {
    pub tasks: usize,
    /// Requests (service) or transactions (floor).
    pub operations: usize,
    pub seconds: f64,
    pub tasks_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Batches that waited for an earlier batch holding one of their parents to commit.
    pub parent_waits: usize,
    /// Requests that got 503 and were sent again (service only).
    pub retries_after_503: usize,
    /// CPU time of the machine during the measurement, per consumer.
    pub cpu: Option<CpuUsage>,
}

impl Measure {
    pub fn new(
        tasks: usize,
        elapsed: Duration,
        mut latencies: Vec<Duration>,
        parent_waits: usize,
        cpu: Option<CpuUsage>,
    ) -> Self {
        latencies.sort_unstable();
        let seconds = elapsed.as_secs_f64();
        Self {
            tasks,
            operations: latencies.len(),
            seconds,
            tasks_per_second: if seconds > 0.0 { tasks as f64 / seconds } else { 0.0 },
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
            max_ms: latencies.last().map_or(0.0, millis),
            parent_waits,
            retries_after_503: 0,
            cpu,
        }
    }
}

/// Nearest-rank percentile of sorted latencies, in milliseconds.
fn percentile(sorted: &[Duration], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    millis(&sorted[rank.clamp(1, sorted.len()) - 1])
}

fn millis(duration: &Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let latencies: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let measure = Measure::new(1000, Duration::from_secs(2), latencies, 0, None);
        assert_eq!(measure.p50_ms, 50.0);
        assert_eq!(measure.p99_ms, 99.0);
        assert_eq!(measure.max_ms, 100.0);
        assert_eq!(measure.tasks_per_second, 500.0);
        assert_eq!(measure.operations, 100);
    }
}
