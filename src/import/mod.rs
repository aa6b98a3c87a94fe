//! `import`: loads a JSON file of tasks into a running server over HTTP.
//!
//! The file is an array of task objects in the API's shape plus a
//! `project_key` each (and optionally `parent_task_app_id`). The importer
//! creates one project per key and sends the tasks in batches. When the API
//! rejects a batch, the importer drops what the API names (the item, or only
//! its parent link) and sends the rest again. So every rejection is reported
//! with the API's reason, and nothing accepted is lost.

mod batches;
mod order;

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::cli::{ImportOptions, ParentMode};
use crate::client::{Answer, ApiClient};

/// A task or parent link that the API rejected, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub project_key: String,
    pub task_app_id: String,
    /// The field the API named, such as `task_name` or `parent_task_app_id`.
    pub field: String,
    pub code: String,
    pub reason: String,
}

/// Outcome of an import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub rejected_items: Vec<Rejected>,
    pub rejected_links: Vec<Rejected>,
    /// Leanmote id of each project, by `project_key`.
    pub projects: BTreeMap<String, i64>,
    /// Leanmote id of each accepted task, by `task_app_id`.
    #[serde(skip)]
    pub task_ids: HashMap<String, i64>,
}

/// One task of the file, ready to send.
#[derive(Debug, Clone)]
pub struct Item {
    pub project_key: String,
    pub task_app_id: String,
    pub parent_app_id: Option<String>,
    /// The object sent to the API, without `project_key` and parent fields.
    pub body: Map<String, Value>,
}

/// Runs the `import` subcommand and prints its report.
///
/// # Errors
/// Returns an error when the file cannot be read, the server cannot be
/// reached, or it responds in a way the importer cannot recover from.
pub async fn run_command(options: ImportOptions) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(&options.file).with_context(|| format!("failed to read {}", options.file.display()))?;
    let items = parse_items(&text).with_context(|| format!("failed to parse {}", options.file.display()))?;
    let client = ApiClient::new(&options.url, &options.token);
    let report =
        import(&client, options.organization_id, items, options.parent_mode, usize::from(options.batch_size)).await?;

    print_report(&report, options.parent_mode);
    if let Some(path) = &options.report {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(())
}

/// Prints the counts, then every rejection grouped by its code.
fn print_report(report: &ImportReport, mode: ParentMode) {
    let projects: Vec<String> = report.projects.iter().map(|(key, id)| format!("{key}={id}")).collect();
    println!("projects: {}", projects.join(", "));
    println!("tasks created: {}, updated: {}", report.created, report.updated);
    if mode == ParentMode::Id {
        println!("  (id mode sends every accepted task twice: once to create it, once more to set its parent_task_id)");
    }
    print_rejections("rejected tasks", &report.rejected_items);
    print_rejections("rejected parent links (the tasks themselves were stored)", &report.rejected_links);
}

fn print_rejections(title: &str, rejections: &[Rejected]) {
    println!("{title}: {}", rejections.len());
    let mut by_code: BTreeMap<&str, Vec<&Rejected>> = BTreeMap::new();
    for rejected in rejections {
        by_code.entry(rejected.code.as_str()).or_default().push(rejected);
    }
    for (code, group) in by_code {
        println!("  {code}: {}", group.len());
        for rejected in group {
            println!("    {} ({}) {}: {}", rejected.task_app_id, rejected.project_key, rejected.field, rejected.reason);
        }
    }
}

/// Reads the file's array into items.
///
/// # Errors
/// Returns an error when the text is not an array of objects with a string
/// `project_key` and `task_app_id`.
pub fn parse_items(text: &str) -> anyhow::Result<Vec<Item>> {
    let values: Vec<Map<String, Value>> =
        serde_json::from_str(text).context("expected a JSON array of task objects")?;
    values
        .into_iter()
        .enumerate()
        .map(|(position, mut body)| {
            let text_of =
                |body: &Map<String, Value>, key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
            let project_key =
                text_of(&body, "project_key").with_context(|| format!("item {position} has no project_key"))?;
            let task_app_id =
                text_of(&body, "task_app_id").with_context(|| format!("item {position} has no task_app_id"))?;
            let parent_app_id = text_of(&body, "parent_task_app_id");
            for key in ["project_key", "parent_task_app_id", "parent_link_type", "parent_task_id"] {
                body.remove(key);
            }
            Ok(Item { project_key, task_app_id, parent_app_id, body })
        })
        .collect()
}

/// Imports `items` into `organization_id`.
///
/// # Errors
/// Returns an error when a project cannot be created or a batch fails for a
/// reason that names no item (authentication, server error, shape).
pub async fn import(
    client: &ApiClient,
    organization_id: i64,
    mut items: Vec<Item>,
    mode: ParentMode,
    batch_size: usize,
) -> anyhow::Result<ImportReport> {
    let mut report =
        ImportReport { projects: create_projects(client, organization_id, &items).await?, ..ImportReport::default() };
    for item in &mut items {
        item.body.insert("project_id".into(), json!(report.projects[&item.project_key]));
    }

    match mode {
        ParentMode::AppId => {
            let ordered = order::parents_first(items);
            let bodies = ordered
                .iter()
                .map(|item| with_parent(item, "parent_task_app_id", item.parent_app_id.clone().map(Value::from)))
                .collect();
            batches::send_all(client, &ordered, bodies, batch_size, &mut report).await?;
        }
        ParentMode::Id => {
            let bodies = items.iter().map(|item| item.body.clone()).collect();
            batches::send_all(client, &items, bodies, batch_size, &mut report).await?;

            let mut linked = Vec::new();
            let mut bodies = Vec::new();
            for item in items.into_iter().filter(|item| report.task_ids.contains_key(&item.task_app_id)) {
                let parent = match item.parent_app_id.as_deref() {
                    None => None,
                    Some(parent) => match report.task_ids.get(parent) {
                        Some(id) => Some(json!(id)),
                        None => {
                            report.rejected_links.push(missing_parent(&item, parent));
                            None
                        }
                    },
                };
                bodies.push(with_parent(&item, "parent_task_id", parent));
                linked.push(item);
            }
            batches::send_all(client, &linked, bodies, batch_size, &mut report).await?;
        }
    }
    Ok(report)
}

/// Creates or updates one project per `project_key`, named after the key.
async fn create_projects(
    client: &ApiClient,
    organization_id: i64,
    items: &[Item],
) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut earliest: BTreeMap<&str, &str> = BTreeMap::new();
    for item in items {
        let created_at = item.body.get("created_at").and_then(Value::as_str).unwrap_or_default();
        let entry = earliest.entry(item.project_key.as_str()).or_insert(created_at);
        if created_at < *entry {
            *entry = created_at;
        }
    }
    let mut projects = BTreeMap::new();
    for (key, created_at) in earliest {
        let mut body = json!({"project_app_id": key, "name": key, "organization_id": organization_id, "active": 1});
        if !created_at.is_empty() {
            body["created_at"] = json!(created_at);
        }
        match client.upsert_project(&body).await? {
            Answer::Success(project) => {
                projects.insert(key.to_owned(), project.project_id);
            }
            Answer::Failure { status, error } => bail!("failed to create project {key}: {status} {}", error.message),
        }
    }
    Ok(projects)
}

fn with_parent(item: &Item, field: &str, parent: Option<Value>) -> Map<String, Value> {
    let mut body = item.body.clone();
    if let Some(parent) = parent {
        body.insert(field.to_owned(), parent);
    }
    body
}

fn missing_parent(item: &Item, parent: &str) -> Rejected {
    Rejected {
        project_key: item.project_key.clone(),
        task_app_id: item.task_app_id.clone(),
        field: "parent_task_id".into(),
        code: "parent_not_loaded".into(),
        reason: format!("parent task {parent} is not in the file or was rejected, so it has no Leanmote id"),
    }
}
