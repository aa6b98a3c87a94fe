//! The service side: pre-encoded batches sent to `POST /api/v1/tasks` over keep-alive connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use tokio::sync::watch;

use crate::cpu::CpuSampler;
use crate::data::{Batch, Mode};
use crate::stats::Measure;

/// One response, kept as received and checked after the clock stops.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

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

async fn run_async(
    server_pid: u32,
    base_url: &str,
    token: &str,
    bodies: Vec<Vec<u8>>,
    batches: &[Batch],
    concurrency: usize,
    mode: Mode,
) -> anyhow::Result<Measure> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(300))
        .build()?;
    let url = format!("{base_url}/api/v1/tasks");
    let health = client.get(format!("{base_url}/healthz")).send().await?;
    if !health.status().is_success() {
        bail!("GET /healthz returned {}", health.status());
    }

    let shared = Arc::new(Shared {
        client,
        url,
        authorization: token.to_owned(),
        bodies: bodies.into_iter().map(|body| std::sync::Mutex::new(Some(body))).collect(),
        batches: batches.to_vec(),
        next: AtomicUsize::new(0),
        committed: Committed::new(batches.len()),
        gate_waits: AtomicUsize::new(0),
        retries: AtomicUsize::new(0),
    });

    let cpu = CpuSampler::start(Some(server_pid));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency).map(|_| tokio::spawn(worker(Arc::clone(&shared)))).collect();
    let mut results: Vec<(usize, Duration, Answer)> = Vec::with_capacity(batches.len());
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
        if answer.status != 200 {
            bail!(
                "batch {batch} returned {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body).chars().take(600).collect::<String>()
            );
        }
        let parsed: Envelope = serde_json::from_slice(&answer.body).with_context(|| format!("batch {batch}"))?;
        let expected = batches[*batch].end - batches[*batch].start;
        if parsed.data.processed_tasks.len() != expected {
            bail!("batch {batch} listed {} tasks, not {expected}", parsed.data.processed_tasks.len());
        }
        for task in parsed.data.processed_tasks {
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
    client: reqwest::Client,
    url: String,
    authorization: String,
    bodies: Vec<std::sync::Mutex<Option<Vec<u8>>>>,
    batches: Vec<Batch>,
    next: AtomicUsize,
    committed: Committed,
    gate_waits: AtomicUsize,
    retries: AtomicUsize,
}

async fn worker(shared: Arc<Shared>) -> anyhow::Result<Vec<(usize, Duration, Answer)>> {
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
/// Maximum pause before a retry, whatever the `Retry-After` value.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Sends one batch. A 503 (no free database connection) is retried after
/// `Retry-After`, capped at [`MAX_PAUSE`], as the API documents for clients.
/// The request's latency then includes the retries.
async fn send(shared: &Shared, body: Vec<u8>) -> anyhow::Result<Answer> {
    let mut retries = 0;
    loop {
        let response = shared
            .client
            .post(&shared.url)
            .header("Authorization", &shared.authorization)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        let status = response.status().as_u16();
        let pause = response
            .headers()
            .get("Retry-After")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map_or(MAX_PAUSE, |seconds| Duration::from_secs(seconds).min(MAX_PAUSE));
        let answer = response.bytes().await?.to_vec();
        if status == 503 && retries + 1 < MAX_ATTEMPTS {
            retries += 1;
            shared.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(pause).await;
            continue;
        }
        return Ok(Answer { status, body: answer });
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

#[derive(Deserialize)]
struct Envelope {
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    processed_tasks: Vec<Processed>,
}

#[derive(Deserialize)]
struct Processed {
    action: String,
}
