//! Prometheus metrics: the recorder behind the `metrics` facade, and `/metrics`.

use std::sync::OnceLock;

use api_actix::MetricsSource;
use infra_diesel::Database;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds, from 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Renders the process's metrics, with the database pool's state and the heap read at each scrape.
pub struct PrometheusMetrics {
    handle: PrometheusHandle,
    database: Database,
}

impl PrometheusMetrics {
    /// Installs the global recorder once per process and returns a source for `/metrics`.
    ///
    /// # Errors
    /// Returns an error when another recorder is already installed.
    pub fn install(database: &Database) -> anyhow::Result<Self> {
        let handle = match HANDLE.get() {
            Some(handle) => handle.clone(),
            None => {
                let handle = PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), &LATENCY_BUCKETS)?
                    .install_recorder()?;
                HANDLE.get_or_init(|| handle).clone()
            }
        };
        Ok(Self { handle, database: database.clone() })
    }
}

impl MetricsSource for PrometheusMetrics {
    fn render(&self) -> String {
        let (connections, idle) = self.database.pool_state();
        metrics::gauge!("leanmote_db_pool_connections").set(f64::from(connections));
        metrics::gauge!("leanmote_db_pool_idle_connections").set(f64::from(idle));
        if let Some(heap) = crate::allocator::heap_stats() {
            metrics::gauge!("leanmote_heap_allocated_bytes").set(heap.allocated as f64);
            metrics::gauge!("leanmote_heap_resident_bytes").set(heap.resident as f64);
        }
        self.handle.render()
    }
}
