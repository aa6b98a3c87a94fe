//! The generated tasks: the same rows for the service and for the floor.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Share of tasks that have a parent.
const PARENT_SHARE: f64 = 0.2;

const WORDS: &[&str] = &[
    "implement",
    "refactor",
    "billing",
    "export",
    "dashboard",
    "latency",
    "migrate",
    "retry",
    "webhook",
    "session",
    "cache",
    "invoice",
    "sync",
    "upload",
    "search",
    "index",
    "report",
    "android",
    "login",
    "oauth",
    "payment",
    "timeout",
    "filter",
    "sidebar",
    "release",
    "deploy",
    "schema",
    "audit",
    "backup",
    "notify",
    "mobile",
    "tenant",
    "quota",
    "layout",
    "crash",
    "memory",
    "parser",
    "locale",
    "import",
    "archive",
];
const FIRST_NAMES: &[&str] = &["Maria", "John", "Aiko", "Pedro", "Fatima", "Lukas", "Olivia", "Chen", "Amara", "Noah"];
const LAST_NAMES: &[&str] =
    &["Silva", "Okafor", "Tanaka", "Novak", "Hansen", "Moreau", "Kowalski", "Garcia", "Lindqvist"];

/// One task, with its text for the first write (create) and for the second (update).
#[derive(Debug, Clone)]
pub struct Task {
    pub app_id: String,
    pub names: [String; 2],
    pub url: String,
    pub owner_id: String,
    pub owner_name: String,
    pub created_at: NaiveDateTime,
    /// Index of the parent task in the data set; always an earlier task.
    pub parent: Option<usize>,
}

/// Kind of write a case makes: the first (create) or the second (update) of the same keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Create,
    Update,
}

impl Mode {
    pub fn index(self) -> usize {
        match self {
            Self::Create => 0,
            Self::Update => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
        }
    }
}

/// The data set: tasks in send order.
pub struct DataSet {
    pub tasks: Vec<Task>,
    /// Minimum distance between a task and its parent, in tasks.
    pub parent_gap: usize,
}

impl DataSet {
    /// Generates `count` tasks from a fixed seed, so every run sends the same rows.
    ///
    /// A parent is at least `parent_gap` tasks earlier, and `parent_gap` is at least the
    /// largest batch size. So a parent is always in an earlier request, for every batch
    /// size. A batch whose parent's request has not committed yet waits (see [`DataSet::batches`]).
    pub fn generate(count: usize, largest_batch: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(0x1ea2_307e);
        let parent_gap = (count / 5).max(largest_batch);
        let eligible = count.saturating_sub(parent_gap);
        let parent_probability =
            if eligible == 0 { 0.0 } else { (PARENT_SHARE * count as f64 / eligible as f64).min(1.0) };
        let start = NaiveDate::from_ymd_opt(2021, 3, 1).and_then(|day| day.and_hms_opt(8, 0, 0)).unwrap_or_default();
        let tasks = (0..count)
            .map(|index| {
                let app_id = format!("LMB-{}", index + 1);
                let names = [task_name(&mut rng), task_name(&mut rng)];
                let url = format!("https://jira.example-corp.com/browse/{app_id}");
                let owner_id = format!("acct-{:010x}", rng.random_range(0..1u64 << 40));
                let owner_name = format!(
                    "{} {}",
                    FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())],
                    LAST_NAMES[rng.random_range(0..LAST_NAMES.len())]
                );
                let created_at = start + Duration::seconds(index as i64 * 347);
                let parent = (index >= parent_gap && rng.random_bool(parent_probability))
                    .then(|| rng.random_range(0..=index - parent_gap));
                Task { app_id, names, url, owner_id, owner_name, created_at, parent }
            })
            .collect();
        Self { tasks, parent_gap }
    }

    /// Number of tasks that have a parent.
    pub fn with_parent(&self) -> usize {
        self.tasks.iter().filter(|task| task.parent.is_some()).count()
    }

    /// Splits the tasks into batches of `size`. For creates, each batch names the
    /// last earlier batch whose commit it waits for (the latest batch holding one of
    /// its parents). Updates wait for nothing: the creates stored every parent.
    pub fn batches(&self, size: usize, mode: Mode) -> Vec<Batch> {
        (0..self.tasks.len())
            .step_by(size)
            .map(|start| {
                let end = (start + size).min(self.tasks.len());
                let needs = (start..end)
                    .filter_map(|index| self.tasks[index].parent)
                    .filter(|parent| *parent < start && mode == Mode::Create)
                    .map(|parent| parent / size)
                    .max();
                Batch { start, end, needs }
            })
            .collect()
    }
}

/// A range of tasks sent in one request or written in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    pub start: usize,
    pub end: usize,
    /// Index of the last batch that must have committed before this one starts.
    pub needs: Option<usize>,
}

/// Generates a task name of about 60 characters.
fn task_name(rng: &mut StdRng) -> String {
    let mut name = String::with_capacity(72);
    while name.len() < 54 {
        if !name.is_empty() {
            name.push(' ');
        }
        name.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    let mut characters = name.chars();
    if let Some(first) = characters.next() {
        name = first.to_uppercase().chain(characters).collect();
    }
    name
}

/// Formats a timestamp in the API's format.
pub fn api_timestamp(time: NaiveDateTime) -> String {
    time.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Encodes the request bodies of `POST /api/v1/tasks` for one project, one per batch.
pub fn request_bodies(data: &DataSet, batches: &[Batch], project_id: i64, mode: Mode) -> anyhow::Result<Vec<Vec<u8>>> {
    #[derive(Serialize)]
    struct Item<'a> {
        project_id: i64,
        task_app_id: &'a str,
        task_name: &'a str,
        task_url: &'a str,
        owner_id: &'a str,
        owner_name: &'a str,
        created_at: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        parent_task_app_id: Option<&'a str>,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        tasks: Vec<Item<'a>>,
    }
    batches
        .iter()
        .map(|batch| {
            let tasks = data.tasks[batch.start..batch.end]
                .iter()
                .map(|task| Item {
                    project_id,
                    task_app_id: &task.app_id,
                    task_name: &task.names[mode.index()],
                    task_url: &task.url,
                    owner_id: &task.owner_id,
                    owner_name: &task.owner_name,
                    created_at: api_timestamp(task.created_at),
                    parent_task_app_id: task.parent.map(|parent| data.tasks[parent].app_id.as_str()),
                })
                .collect();
            Ok(serde_json::to_vec(&Body { tasks })?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_earlier_and_outside_the_batch() {
        let data = DataSet::generate(5000, 1000);
        assert!(data.with_parent() > 700, "{}", data.with_parent());
        assert!(data.with_parent() < 1300, "{}", data.with_parent());
        for (index, task) in data.tasks.iter().enumerate() {
            if let Some(parent) = task.parent {
                assert!(parent + data.parent_gap <= index);
            }
        }
        for size in [1, 100, 1000] {
            for (number, batch) in data.batches(size, Mode::Create).iter().enumerate() {
                assert!(batch.needs.is_none_or(|needed| needed < number));
            }
            assert!(data.batches(size, Mode::Update).iter().all(|batch| batch.needs.is_none()));
        }
    }

    #[test]
    fn field_sizes_are_realistic() {
        let data = DataSet::generate(100, 10);
        for task in &data.tasks {
            assert!((54..=70).contains(&task.names[0].len()), "{:?}", task.names[0]);
            assert_eq!(task.owner_id.len(), 15);
            assert!((40..=60).contains(&task.url.len()));
        }
    }
}
