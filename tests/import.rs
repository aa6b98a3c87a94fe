//! Loads the real Jira archive in `../shared/data` over HTTP with the import
//! command's code, in both parent modes, and checks every stored task and
//! parent link against the source and against the counts in its stats file.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};

use domain::ports::TaskStore;
use domain::read::TaskFilter;
use domain::task::StoredTask;
use domain::{ProjectId, TaskId};
use infra_diesel::testing::TestDatabase;
use leanmote_api::cli::ParentMode;
use leanmote_api::import::{ImportReport, Item, import, parse_items};
use serde_json::Value;
use support::{start, tenant};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/appcelerator-jira.json");
const STATS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/appcelerator-jira.stats.json");

/// Counts that the stats file and the source imply the API must accept.
struct Expected {
    tasks: usize,
    blank_titles: usize,
    links: usize,
    links_total: usize,
}

fn expected(items: &[Item]) -> Expected {
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(STATS).expect("read the stats file")).unwrap();
    let count = |pointer: &str| {
        stats.pointer(pointer).and_then(Value::as_u64).unwrap_or_else(|| panic!("{pointer} in stats")) as usize
    };
    assert_eq!(items.len(), count("/counts/tasks"), "the source matches its stats");

    let blank: HashSet<&str> = items
        .iter()
        .filter(|item| item.body.get("task_name").and_then(Value::as_str).is_none_or(|name| name.trim().is_empty()))
        .map(|item| item.task_app_id.as_str())
        .collect();
    assert_eq!(blank.len(), count("/titles/flags/missing"));
    // Links whose child or parent is a rejected task cannot be stored either.
    let touching_blank = items
        .iter()
        .filter(|item| item.parent_app_id.is_some())
        .filter(|item| {
            blank.contains(item.task_app_id.as_str()) || blank.contains(item.parent_app_id.as_deref().unwrap())
        })
        .count();
    let cross_project = count("/counts/parent_in_other_project/epic, parent present in dump");
    Expected {
        tasks: count("/counts/tasks") - blank.len(),
        blank_titles: blank.len(),
        links: count("/counts/parent_present_in_dump") - cross_project - touching_blank,
        links_total: count("/counts/with_parent"),
    }
}

/// Reads every task of the imported projects, by `task_app_id`.
async fn stored_tasks(store: &dyn TaskStore, report: &ImportReport) -> HashMap<String, StoredTask> {
    let mut tasks = HashMap::new();
    for project in report.projects.values() {
        let mut after = None;
        loop {
            let filter = TaskFilter {
                project_id: ProjectId(*project),
                after,
                limit: 1000,
                updated_since: None,
                parent_id: None,
                app_id: None,
            };
            let page = store.list_tasks(filter).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            tasks.extend(page.into_iter().map(|task| (task.key.app_id.as_str().to_owned(), task)));
        }
    }
    tasks
}

/// Checks every stored field and link against the source item.
fn assert_matches_source(
    items: &[Item],
    stored: &HashMap<String, StoredTask>,
    report: &ImportReport,
    expected: &Expected,
) {
    assert_eq!(stored.len(), expected.tasks);
    let id_of: HashMap<TaskId, &str> = stored.values().map(|task| (task.id, task.key.app_id.as_str())).collect();
    let mut links = 0;
    for item in items {
        let Some(task) = stored.get(&item.task_app_id) else { continue };
        let text = |key: &str| item.body.get(key).and_then(Value::as_str);
        assert_eq!(Some(task.fields.name.as_str()), text("task_name"), "{}", item.task_app_id);
        assert_eq!(task.fields.url.as_ref().map(|url| url.as_str()), text("task_url"), "{}", item.task_app_id);
        assert_eq!(task.fields.owner_id.as_ref().map(|owner| owner.as_str()), text("owner_id"), "{}", item.task_app_id);
        assert_eq!(
            task.fields.owner_name.as_ref().map(|owner| owner.as_str()),
            text("owner_name"),
            "{}",
            item.task_app_id
        );
        assert_eq!(Some(task.fields.created_at.to_api_string().as_str()), text("created_at"), "{}", item.task_app_id);
        assert_eq!(task.key.project_id.get(), report.projects[&item.project_key], "{}", item.task_app_id);
        if let Some(parent) = task.parent_id {
            assert_eq!(Some(id_of[&parent]), item.parent_app_id.as_deref(), "{}", item.task_app_id);
            links += 1;
        }
    }
    assert_eq!(links, expected.links, "stored parent links");
}

fn assert_report(report: &ImportReport, expected: &Expected) {
    assert_eq!(report.rejected_items.len(), expected.blank_titles, "{:?}", report.rejected_items);
    assert!(report.rejected_items.iter().all(|rejected| rejected.field == "task_name" && rejected.code == "blank"));
    assert_eq!(report.rejected_links.len(), expected.links_total - expected.links, "rejected links");
    let reasons: BTreeMap<&str, usize> = report.rejected_links.iter().fold(BTreeMap::new(), |mut counts, rejected| {
        *counts.entry(rejected.code.as_str()).or_default() += 1;
        counts
    });
    assert!(
        reasons.keys().all(|code| ["parent_not_found", "parent_in_other_project", "parent_not_loaded"].contains(code)),
        "{reasons:?}"
    );
}

async fn loads_archive_in_both_modes(test: TestDatabase) {
    let items = parse_items(&std::fs::read_to_string(DATA).expect("read the Jira archive")).unwrap();
    let expected = expected(&items);
    let by_id = tenant(&test, "by-id", 0).await;
    let by_key = tenant(&test, "by-key", 0).await;
    let server = start(test).await;
    let store = &server.test.database;

    let client = by_id.client(&server);
    let report = import(&client, by_id.organization.get(), items.clone(), ParentMode::Id, 500).await.unwrap();
    assert_eq!(report.created, expected.tasks);
    assert_eq!(report.updated, expected.tasks, "the second pass updates every task with its parent");
    assert_report(&report, &expected);
    let first_load = stored_tasks(store, &report).await;
    assert_matches_source(&items, &first_load, &report, &expected);

    let again = import(&client, by_id.organization.get(), items.clone(), ParentMode::Id, 500).await.unwrap();
    assert_eq!(again.created, 0, "a second load creates nothing");
    assert_eq!(again.updated, 2 * expected.tasks);
    let second_load = stored_tasks(store, &again).await;
    for (app_id, before) in &first_load {
        let after = &second_load[app_id];
        assert_eq!(
            (after.id, &after.key, &after.fields, after.parent_id),
            (before.id, &before.key, &before.fields, before.parent_id)
        );
        assert_eq!(after.inserted_at, before.inserted_at);
    }

    let client = by_key.client(&server);
    let report = import(&client, by_key.organization.get(), items.clone(), ParentMode::AppId, 500).await.unwrap();
    assert_eq!((report.created, report.updated), (expected.tasks, 0));
    assert_report(&report, &expected);
    assert_matches_source(&items, &stored_tasks(store, &report).await, &report, &expected);
}

infra_diesel::backend_tests!(loads_archive_in_both_modes);
