//! The service side: pre-encoded batches sent to `POST /api/v1/tasks` with
//! the project's typed client, over keep-alive connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use leanmote_api::client::{Answer, ApiClient, ProcessedTask};
use tokio::sync::watch;

use crate::cpu::CpuSampler;
use crate::data::{Batch, Mode};
use crate::stats::Measure;

/// One response, checked after the clock stops.
type Response = Answer<Vec<ProcessedTask>>;

/// Sends every body with `concurrency` workers and returns the timings.
///
/// Workers take batches in order. A batch whose parents are in an earlier batch
/// first waits until that batch and all before it have committed. With the data
/// set's parent gap, this happens only in the first batches, and the count is reported.
pub fn run(
    server_pid: u32,
    base_url: &str,
    token: &str,
    bodies: Vec<Vec<u8>>,
    batches: &[Batch],
    concurrency: usize,
    mode: Mode,
) -> anyhow::Result<Measure> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run_async(server_pid, base_url, token, bodies, batches, concurrency, mode))
}

/// Reads the server's live heap (`leanmote_heap_allocated_bytes`), or `None`
/// when the server does not report it.
///
/// # Errors
/// Returns an error when `/metrics` cannot be read.
pub fn heap_allocated(base_url: &str) -> anyhow::Result<Option<u64>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = ApiClient::new(base_url, "");
    let bytes = runtime.block_on(client.metric("leanmote_heap_allocated_bytes"))?;
    Ok(bytes.map(|bytes| bytes as u64))
}

async fn run_async(
    server_pid: u32,
    base_url: &str,
    token: &str,
    bodies: Vec<Vec<u8>>,
    batches: &[Batch],
    concurrency: usize,
    mode: Mode,
) -> anyhow::Result<Measure> {
    let shared = Arc::new(Shared {
        client: ApiClient::new(base_url, token),
        bodies: bodies.into_iter().map(|body| std::sync::Mutex::new(Some(Bytes::from(body)))).collect(),
        batches: batches.to_vec(),
        next: AtomicUsize::new(0),
        committed: Committed::new(batches.len()),
        gate_waits: AtomicUsize::new(0),
        retries: AtomicUsize::new(0),
    });

    let cpu = CpuSampler::start(Some(server_pid));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency).map(|_| tokio::spawn(worker(Arc::clone(&shared)))).collect();
    let mut results: Vec<(usize, Duration, Response)> = Vec::with_capacity(batches.len());
    let mut first_error = None;
    for handle in workers {
        match handle.await.context("a client worker panicked")? {
            Ok(done) => results.extend(done),
            Err(error) => first_error = first_error.or(Some(error)),
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu.finish();
    if let Some(error) = first_error {
        return Err(error);
    }

    // Report the first failing batch: later ones may fail only because it did.
    results.sort_unstable_by_key(|(batch, _, _)| *batch);
    let mut created = 0;
    let mut updated = 0;
    for (batch, _, answer) in &results {
        let processed = match answer {
            Answer::Success(processed) => processed,
            Answer::Failure { status, error } => {
                bail!("batch {batch} returned {status}: {} ({:?})", error.message, error.error)
            }
        };
        let expected = batches[*batch].end - batches[*batch].start;
        if processed.len() != expected {
            bail!("batch {batch} listed {} tasks, not {expected}", processed.len());
        }
        for task in processed {
            match task.action.as_str() {
                "created" => created += 1,
                "updated" => updated += 1,
                other => bail!("batch {batch}: unknown action {other:?}"),
            }
        }
    }
    let expected_action = match mode {
        Mode::Create => (created, "created"),
        Mode::Update => (updated, "updated"),
    };
    let tasks: usize = batches.iter().map(|batch| batch.end - batch.start).sum();
    if expected_action.0 != tasks {
        bail!(
            "{} of {tasks} tasks returned {:?}, expected all (created {created}, updated {updated})",
            expected_action.0,
            expected_action.1
        );
    }
    let latencies = results.into_iter().map(|(_, latency, _)| latency).collect();
    let mut measure = Measure::new(tasks, elapsed, latencies, shared.gate_waits.load(Ordering::Relaxed), cpu);
    measure.retries_after_503 = shared.retries.load(Ordering::Relaxed);
    Ok(measure)
}

struct Shared {
    client: ApiClient,
    bodies: Vec<std::sync::Mutex<Option<Bytes>>>,
    batches: Vec<Batch>,
    next: AtomicUsize,
    committed: Committed,
    gate_waits: AtomicUsize,
    retries: AtomicUsize,
}

async fn worker(shared: Arc<Shared>) -> anyhow::Result<Vec<(usize, Duration, Response)>> {
    let mut done = Vec::new();
    loop {
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= shared.batches.len() {
            return Ok(done);
        }
        if let Some(needed) = shared.batches[index].needs
            && shared.committed.wait_for(needed).await
        {
            shared.gate_waits.fetch_add(1, Ordering::Relaxed);
        }
        let body = shared.bodies[index]
            .lock()
            .map_err(|_| anyhow::anyhow!("a body lock was poisoned"))?
            .take()
            .context("a batch was taken twice")?;
        let started = Instant::now();
        let sent = send(&shared, body).await;
        let latency = started.elapsed();
        // Mark it done even on failure, so that no worker waits forever on it.
        shared.committed.mark(index);
        done.push((index, latency, sent.with_context(|| format!("batch {index}"))?));
    }
}

/// Maximum attempts of one batch that keeps getting 503.
const MAX_ATTEMPTS: u32 = 30;
/// Pause before a retry. The server's `Retry-After` (5 s) would let a few
/// retries dominate a case, and the typed client does not return the header.
const RETRY_PAUSE: Duration = Duration::from_secs(2);
/// Maximum wait for one response before the run fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Sends one batch. A 503 (no free database connection) is retried after
/// [`RETRY_PAUSE`]; the request's latency then includes the retries.
async fn send(shared: &Shared, body: Bytes) -> anyhow::Result<Response> {
    let mut retries = 0;
    loop {
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, shared.client.post_tasks_body(body.clone()))
            .await
            .with_context(|| format!("no response within {} s", REQUEST_TIMEOUT.as_secs()))??;
        if matches!(answer, Answer::Failure { status: 503, .. }) && retries + 1 < MAX_ATTEMPTS {
            retries += 1;
            shared.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        }
        return Ok(answer);
    }
}

/// Record of completed batches, and the count of leading batches that have all completed.
struct Committed {
    state: std::sync::Mutex<(Vec<bool>, usize)>,
    prefix: watch::Sender<usize>,
}

impl Committed {
    fn new(count: usize) -> Self {
        Self { state: std::sync::Mutex::new((vec![false; count], 0)), prefix: watch::Sender::new(0) }
    }

    fn mark(&self, index: usize) {
        let Ok(mut state) = self.state.lock() else { return };
        let (done, prefix) = &mut *state;
        done[index] = true;
        while *prefix < done.len() && done[*prefix] {
            *prefix += 1;
        }
        self.prefix.send_replace(*prefix);
    }

    /// Waits until batch `index` and all before it have answered; returns whether it had to wait.
    async fn wait_for(&self, index: usize) -> bool {
        let mut receiver = self.prefix.subscribe();
        if *receiver.borrow() > index {
            return false;
        }
        let _ = receiver.wait_for(|prefix| *prefix > index).await;
        true
    }
}
