//! Sending batches, and recovering from the items or links the API rejects.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Map, Value};

use super::{ImportReport, Item, Rejected};
use crate::client::{Answer, ApiClient, ErrorDetail};

/// Times a batch is retried after a 503 before the import stops.
const UNAVAILABLE_RETRIES: u32 = 5;

/// Sends `bodies` (one per item, in the same order) in batches of `batch_size`.
pub(super) async fn send_all(
    client: &ApiClient,
    items: &[Item],
    bodies: Vec<Map<String, Value>>,
    batch_size: usize,
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    let mut pending: Vec<(usize, Map<String, Value>)> = bodies.into_iter().enumerate().collect();
    while !pending.is_empty() {
        let rest = pending.split_off(pending.len().min(batch_size));
        let batch = std::mem::replace(&mut pending, rest);
        send_batch(client, items, batch, report).await?;
    }
    Ok(())
}

/// Sends one batch until it is accepted or empty, dropping what the API rejects.
async fn send_batch(
    client: &ApiClient,
    items: &[Item],
    mut batch: Vec<(usize, Map<String, Value>)>,
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    let mut unavailable = 0;
    while !batch.is_empty() {
        let values: Vec<Value> = batch.iter().map(|(_, body)| Value::Object(body.clone())).collect();
        match client.post_tasks(&values).await? {
            Answer::Success(processed) => {
                for task in processed {
                    *if task.action == "created" { &mut report.created } else { &mut report.updated } += 1;
                    let id = task.task_id.context(
                        "the server returned a written task without its id; check that the server runs this version",
                    )?;
                    report.task_ids.insert(task.task_app_id, id);
                }
                return Ok(());
            }
            Answer::Failure { status: 503, .. } if unavailable < UNAVAILABLE_RETRIES => {
                unavailable += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Answer::Failure { status, error } => {
                let item_details: Vec<&ErrorDetail> =
                    error.error.details.iter().filter(|detail| detail.index.is_some()).collect();
                if !matches!(status, 400 | 403 | 404) || item_details.is_empty() {
                    let first = error
                        .error
                        .details
                        .first()
                        .map(|detail| format!(" ({}: {})", detail.field, detail.message))
                        .unwrap_or_default();
                    bail!("the server rejected a batch with {status} {}: {}{first}", error.error.code, error.message);
                }
                batch = drop_rejected(items, batch, &item_details, report);
            }
        }
    }
    Ok(())
}

/// Removes rejected items and strips rejected parent links, recording each.
fn drop_rejected(
    items: &[Item],
    batch: Vec<(usize, Map<String, Value>)>,
    details: &[&ErrorDetail],
    report: &mut ImportReport,
) -> Vec<(usize, Map<String, Value>)> {
    let mut remaining = Vec::with_capacity(batch.len());
    for (position, (item_index, mut body)) in batch.into_iter().enumerate() {
        let mine: Vec<&&ErrorDetail> = details.iter().filter(|detail| detail.index == Some(position)).collect();
        let item = &items[item_index];
        let record = |detail: &ErrorDetail| Rejected {
            project_key: item.project_key.clone(),
            task_app_id: item.task_app_id.clone(),
            field: detail.field.rsplit('.').next().unwrap_or_default().to_owned(),
            code: detail.code.clone(),
            reason: detail.message.clone(),
        };
        let link_only = mine.iter().all(|detail| detail.field.contains("parent_task"));
        if mine.is_empty() {
            remaining.push((item_index, body));
        } else if link_only {
            report.rejected_links.extend(mine.iter().map(|detail| record(detail)));
            body.remove("parent_task_id");
            body.remove("parent_task_app_id");
            remaining.push((item_index, body));
        } else {
            report.rejected_items.extend(
                mine.iter().filter(|detail| !detail.field.contains("parent_task")).map(|detail| record(detail)),
            );
        }
    }
    remaining
}
