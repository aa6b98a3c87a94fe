//! Planning rules, tested with plain values.

use super::*;
use crate::input::{FieldInput, TaskInput};
use crate::outcome::FieldName;
use crate::task::{Action, TaskName};
use crate::validate::validate_task;

const ORG: OrganizationId = OrganizationId(1);
const OTHER_ORG: OrganizationId = OrganizationId(2);

fn now() -> Timestamp {
    Timestamp::parse("2026-01-01 00:00:00").unwrap()
}

fn input(project: i64, app_id: &str) -> TaskInput {
    TaskInput {
        project_id: FieldInput::Value(project),
        task_app_id: FieldInput::Value(app_id.into()),
        task_name: FieldInput::Value(format!("Task {app_id}")),
        created_at: FieldInput::Value("2024-01-20 09:00:00".into()),
        ..TaskInput::default()
    }
}

fn with_parent_id(mut item: TaskInput, parent: i64) -> TaskInput {
    item.parent_task_id = FieldInput::Value(parent);
    item
}

fn with_parent_key(mut item: TaskInput, parent: &str) -> TaskInput {
    item.parent_task_app_id = FieldInput::Value(parent.into());
    item
}

fn planner(items: Vec<TaskInput>) -> BatchPlanner {
    let commands =
        items.into_iter().enumerate().map(|(index, item)| (index, validate_task(index, item).unwrap())).collect();
    BatchPlanner::new(commands, Vec::new(), Scope::new([ORG]), now())
}

fn key(project: i64, app_id: &str) -> TaskKey {
    TaskKey { project_id: ProjectId(project), app_id: TaskAppId::parse(app_id).unwrap() }
}

/// Builds a snapshot with projects 1 and 2 in the caller's organization and 9 in another.
fn world() -> Snapshot {
    let mut snapshot = Snapshot::default();
    snapshot.projects.insert(ProjectId(1), ORG);
    snapshot.projects.insert(ProjectId(2), ORG);
    snapshot.projects.insert(ProjectId(9), OTHER_ORG);
    snapshot
}

/// Adds a stored task to the snapshot, as both a keyed task and a tree node.
fn store(snapshot: &mut Snapshot, id: i64, project: i64, app_id: &str, parent: Option<i64>) {
    let organization = snapshot.projects[&ProjectId(project)];
    let task = StoredTask {
        id: TaskId(id),
        key: key(project, app_id),
        fields: TaskFields {
            name: TaskName::parse(format!("Stored {app_id}")).unwrap(),
            url: Some(crate::task::TaskUrl::parse("https://tracker.example/stored").unwrap()),
            owner_id: Some(crate::task::OwnerId::parse("owner-1").unwrap()),
            owner_name: None,
            created_at: now(),
            source_updated_at: None,
        },
        parent_id: parent.map(TaskId),
        inserted_at: now(),
        updated_at: now(),
    };
    snapshot.tasks_by_key.insert(task.key.clone(), task);
    snapshot.nodes.insert(
        TaskId(id),
        TaskNode {
            id: TaskId(id),
            project_id: ProjectId(project),
            organization_id: organization,
            parent_id: parent.map(TaskId),
        },
    );
}

fn codes(rejection: &Rejection) -> Vec<(Option<usize>, &str, DetailCode)> {
    rejection.details.iter().map(|detail| (detail.index, detail.field.as_str(), detail.code)).collect()
}

#[test]
fn refs_name_projects_keys_and_parents() {
    let refs = planner(vec![with_parent_id(input(1, "A"), 7), with_parent_key(input(2, "B"), "P")]).refs();
    assert_eq!(refs.project_ids, BTreeSet::from([ProjectId(1), ProjectId(2)]));
    assert_eq!(refs.keys, BTreeSet::from([key(1, "A"), key(2, "B"), key(2, "P")]));
    assert_eq!(refs.parent_ids, BTreeSet::from([TaskId(7)]));
}

#[test]
fn new_keys_planned_as_inserts() {
    let plan = planner(vec![input(1, "B"), input(1, "A")]).plan(&world()).unwrap();
    let keys: Vec<&str> = plan.rows.iter().map(|row| row.key.app_id.as_str()).collect();
    assert_eq!(keys, vec!["A", "B"], "rows are sorted by key");
    assert!(plan.rows.iter().all(|row| row.existing_id.is_none()));
    assert_eq!((plan.items[0].index, plan.items[0].row, plan.items[0].first_write), (0, 1, true));
    assert_eq!((plan.items[1].index, plan.items[1].row, plan.items[1].first_write), (1, 0, true));
    assert_eq!(plan.now, now());
}

#[test]
fn unknown_project_not_found() {
    let rejection = planner(vec![input(1, "A"), input(5, "B")]).plan(&world()).unwrap_err();
    assert_eq!(codes(&rejection), vec![(Some(1), "tasks[1].project_id", DetailCode::ProjectNotFound)]);
    assert_eq!(rejection.class(), crate::ErrorClass::NotFound);
}

#[test]
fn project_outside_scope_reads_as_missing() {
    let outside = planner(vec![input(9, "A")]).plan(&world()).unwrap_err();
    let missing = planner(vec![input(5, "A")]).plan(&world()).unwrap_err();
    assert_eq!(codes(&outside), vec![(Some(0), "tasks[0].project_id", DetailCode::ProjectNotFound)]);
    assert_eq!(outside.class(), crate::ErrorClass::NotFound);
    let message = |rejection: &Rejection| rejection.details[0].message.replace(['5', '9'], "N");
    assert_eq!(message(&outside), message(&missing), "the answers differ only by the id");
}

#[test]
fn absent_fields_keep_stored_values() {
    let mut snapshot = world();
    store(&mut snapshot, 10, 1, "A", None);
    let plan = planner(vec![input(1, "A")]).plan(&snapshot).unwrap();
    let row = &plan.rows[0];
    assert_eq!(row.existing_id, Some(TaskId(10)));
    assert_eq!(row.fields.name.as_str(), "Task A");
    assert_eq!(row.fields.url.as_ref().map(|url| url.as_str()), Some("https://tracker.example/stored"));
    assert_eq!(row.fields.owner_id.as_ref().map(|owner| owner.as_str()), Some("owner-1"));
}

#[test]
fn null_clears_stored_values() {
    let mut snapshot = world();
    store(&mut snapshot, 10, 1, "A", Some(11));
    store(&mut snapshot, 11, 1, "P", None);
    let mut item = input(1, "A");
    item.task_url = FieldInput::Null;
    item.owner_id = FieldInput::Null;
    item.parent_task_id = FieldInput::Null;
    let row = planner(vec![item]).plan(&snapshot).unwrap().rows.remove(0);
    assert_eq!(row.fields.url, None);
    assert_eq!(row.fields.owner_id, None);
    assert_eq!(row.parent, PlannedParent::None);
}

#[test]
fn absent_parent_keeps_stored_parent() {
    let mut snapshot = world();
    store(&mut snapshot, 10, 1, "A", Some(11));
    store(&mut snapshot, 11, 1, "P", None);
    let row = planner(vec![input(1, "A")]).plan(&snapshot).unwrap().rows.remove(0);
    assert_eq!(row.parent, PlannedParent::Stored(TaskId(11)));
}

#[test]
fn same_key_twice_merges_in_order() {
    let mut first = input(1, "A");
    first.owner_name = FieldInput::Value("Ada".into());
    let mut second = input(1, "A");
    second.task_name = FieldInput::Value("Renamed".into());
    let plan = planner(vec![first, second]).plan(&world()).unwrap();
    assert_eq!(plan.rows.len(), 1);
    assert_eq!(plan.rows[0].fields.name.as_str(), "Renamed");
    assert_eq!(plan.rows[0].fields.owner_name.as_ref().map(|name| name.as_str()), Some("Ada"));
    assert_eq!((plan.items[0].index, plan.items[0].row, plan.items[0].first_write), (0, 0, true));
    assert_eq!((plan.items[1].index, plan.items[1].row, plan.items[1].first_write), (1, 0, false));
}

#[test]
fn parent_id_must_exist() {
    let rejection = planner(vec![with_parent_id(input(1, "A"), 42)]).plan(&world()).unwrap_err();
    assert_eq!(codes(&rejection), vec![(Some(0), "tasks[0].parent_task_id", DetailCode::ParentNotFound)]);
}

#[test]
fn parent_outside_scope_reads_as_missing() {
    let mut snapshot = world();
    store(&mut snapshot, 50, 9, "FOREIGN", None);
    let rejection = planner(vec![with_parent_id(input(1, "A"), 50)]).plan(&snapshot).unwrap_err();
    assert_eq!(codes(&rejection), vec![(Some(0), "tasks[0].parent_task_id", DetailCode::ParentNotFound)]);
}

#[test]
fn parent_in_other_project_rejected() {
    let mut snapshot = world();
    store(&mut snapshot, 20, 2, "P", None);
    let rejection = planner(vec![with_parent_id(input(1, "A"), 20)]).plan(&snapshot).unwrap_err();
    assert_eq!(codes(&rejection), vec![(Some(0), "tasks[0].parent_task_id", DetailCode::ParentInOtherProject)]);
    assert_eq!(rejection.class(), crate::ErrorClass::InvalidReference);
}

#[test]
fn parent_key_resolves_to_stored_task() {
    let mut snapshot = world();
    store(&mut snapshot, 20, 1, "P", None);
    let row = planner(vec![with_parent_key(input(1, "A"), "P")]).plan(&snapshot).unwrap().rows.remove(0);
    assert_eq!(row.parent, PlannedParent::Stored(TaskId(20)));
}

#[test]
fn parent_key_resolves_within_batch_in_any_order() {
    let plan = planner(vec![with_parent_key(input(1, "CHILD"), "PARENT"), input(1, "PARENT")]).plan(&world()).unwrap();
    assert_eq!(plan.rows[0].key, key(1, "CHILD"));
    assert_eq!(plan.rows[0].parent, PlannedParent::InBatch(1));
    assert_eq!(plan.rows[1].parent, PlannedParent::None);
}

#[test]
fn in_batch_parent_uses_sorted_row() {
    // The child comes first in the request but sorts after its parent.
    let plan = planner(vec![with_parent_key(input(1, "B"), "A"), input(1, "A")]).plan(&world()).unwrap();
    assert_eq!(plan.rows[1].key, key(1, "B"));
    assert_eq!(plan.rows[1].parent, PlannedParent::InBatch(0));
    assert_eq!((plan.items[0].row, plan.items[1].row), (1, 0));
}

#[test]
fn parent_key_unknown_not_found() {
    let rejection = planner(vec![with_parent_key(input(1, "A"), "NOPE")]).plan(&world()).unwrap_err();
    assert_eq!(codes(&rejection), vec![(Some(0), "tasks[0].parent_task_app_id", DetailCode::ParentNotFound)]);
}

#[test]
fn both_parent_fields_must_agree() {
    let mut snapshot = world();
    store(&mut snapshot, 20, 1, "P", None);
    store(&mut snapshot, 21, 1, "Q", None);
    let agreeing = with_parent_key(with_parent_id(input(1, "A"), 20), "P");
    assert_eq!(planner(vec![agreeing]).plan(&snapshot).unwrap().rows[0].parent, PlannedParent::Stored(TaskId(20)));

    let disagreeing = with_parent_key(with_parent_id(input(1, "A"), 21), "P");
    let rejection = planner(vec![disagreeing]).plan(&snapshot).unwrap_err();
    assert_eq!(codes(&rejection), vec![(Some(0), "tasks[0].parent_task_app_id", DetailCode::ParentConflict)]);
}

#[test]
fn own_parent_is_cycle() {
    let mut snapshot = world();
    store(&mut snapshot, 10, 1, "A", None);
    let by_id = planner(vec![with_parent_id(input(1, "A"), 10)]).plan(&snapshot).unwrap_err();
    assert_eq!(codes(&by_id), vec![(Some(0), "tasks[0].parent_task_id", DetailCode::ParentCycle)]);

    let by_key = planner(vec![with_parent_key(input(1, "NEW"), "NEW")]).plan(&world()).unwrap_err();
    assert_eq!(codes(&by_key), vec![(Some(0), "tasks[0].parent_task_app_id", DetailCode::ParentCycle)]);
}

#[test]
fn own_ancestor_is_cycle() {
    // Stored chain: C (12) -> B (11) -> A (10). Making A a child of C closes a loop.
    let mut snapshot = world();
    store(&mut snapshot, 10, 1, "A", None);
    store(&mut snapshot, 11, 1, "B", Some(10));
    store(&mut snapshot, 12, 1, "C", Some(11));
    let rejection = planner(vec![with_parent_id(input(1, "A"), 12)]).plan(&snapshot).unwrap_err();
    assert_eq!(codes(&rejection), vec![(Some(0), "tasks[0].parent_task_id", DetailCode::ParentCycle)]);
}

#[test]
fn cycle_within_batch_rejected() {
    let items = vec![with_parent_key(input(1, "X"), "Y"), with_parent_key(input(1, "Y"), "X")];
    let rejection = planner(items).plan(&world()).unwrap_err();
    assert_eq!(
        codes(&rejection),
        vec![
            (Some(0), "tasks[0].parent_task_app_id", DetailCode::ParentCycle),
            (Some(1), "tasks[1].parent_task_app_id", DetailCode::ParentCycle),
        ]
    );
}

#[test]
fn reparenting_that_breaks_loop_allowed() {
    // B is A's child. Moving A under a new task while B moves to the root is no cycle.
    let mut snapshot = world();
    store(&mut snapshot, 10, 1, "A", None);
    store(&mut snapshot, 11, 1, "B", Some(10));
    let mut root_b = input(1, "B");
    root_b.parent_task_id = FieldInput::Null;
    let items = vec![root_b, with_parent_id(input(1, "A"), 11)];
    assert!(planner(items).plan(&snapshot).is_ok());
}

#[test]
fn every_failing_item_listed_with_own_code() {
    let mut snapshot = world();
    store(&mut snapshot, 20, 2, "P", None);
    let items = vec![input(9, "A"), input(5, "B"), with_parent_id(input(1, "C"), 20), input(1, "D")];
    let rejection = planner(items).plan(&snapshot).unwrap_err();
    assert_eq!(
        codes(&rejection),
        vec![
            (Some(0), "tasks[0].project_id", DetailCode::ProjectNotFound),
            (Some(1), "tasks[1].project_id", DetailCode::ProjectNotFound),
            (Some(2), "tasks[2].parent_task_id", DetailCode::ParentInOtherProject),
        ]
    );
    assert_eq!(rejection.class(), crate::ErrorClass::NotFound, "404 comes before parent rules");
}

#[test]
fn input_errors_win_status_and_stay_listed() {
    let commands = vec![(1, validate_task(1, input(5, "B")).unwrap())];
    let input_error = ItemError::at("tasks", 0, "created_at", DetailCode::InvalidTimestamp, "bad");
    let rejection =
        BatchPlanner::new(commands, vec![input_error], Scope::new([ORG]), now()).plan(&world()).unwrap_err();
    assert_eq!(
        codes(&rejection),
        vec![
            (Some(0), "tasks[0].created_at", DetailCode::InvalidTimestamp),
            (Some(1), "tasks[1].project_id", DetailCode::ProjectNotFound),
        ]
    );
    assert_eq!(rejection.class(), crate::ErrorClass::InvalidInput);
}

#[test]
fn action_names_match_api() {
    assert_eq!(Action::Created.as_str(), "created");
    assert_eq!(Action::Updated.as_str(), "updated");
}

#[test]
fn unchanged_parents_need_no_ancestors() {
    let mut snapshot = world();
    store(&mut snapshot, 10, 1, "A", None);
    store(&mut snapshot, 11, 1, "B", Some(10));
    store(&mut snapshot, 12, 1, "C", None);
    let same = planner(vec![with_parent_key(input(1, "B"), "A"), with_parent_id(input(1, "B"), 10), input(1, "A")]);
    assert!(same.ancestor_seeds(&snapshot).is_empty(), "an unchanged tree needs no walk");

    let moved = planner(vec![with_parent_key(input(1, "B"), "C")]);
    assert_eq!(moved.ancestor_seeds(&snapshot), BTreeSet::from([TaskId(12)]));
}

#[test]
fn long_stored_chain_checked_once() {
    // A 5000-deep stored chain, and a batch that moves its root under its deepest task.
    let mut snapshot = world();
    store(&mut snapshot, 1, 1, "N-1", None);
    for id in 2..=5000 {
        store(&mut snapshot, id, 1, &format!("N-{id}"), Some(id - 1));
    }
    let rejection = planner(vec![with_parent_id(input(1, "N-1"), 5000)]).plan(&snapshot).unwrap_err();
    assert_eq!(codes(&rejection), vec![(Some(0), "tasks[0].parent_task_id", DetailCode::ParentCycle)]);
}

#[test]
fn batch_of_new_tasks_needs_no_ancestors() {
    let mut snapshot = world();
    store(&mut snapshot, 10, 1, "A", None);
    store(&mut snapshot, 11, 1, "B", Some(10));
    let creates = planner(vec![with_parent_id(input(1, "N1"), 11), with_parent_key(input(1, "N2"), "B")]);
    assert!(creates.ancestor_seeds(&snapshot).is_empty(), "new tasks alone cannot close a cycle through stored ones");
}

/// Keeps only what storage loads: the keyed tasks, the parents named by id,
/// and the ancestor chains of the planner's seeds.
fn as_loaded(full: &Snapshot, planner: &BatchPlanner) -> Snapshot {
    let refs = planner.refs();
    let mut loaded = Snapshot { projects: full.projects.clone(), ..Snapshot::default() };
    for key in &refs.keys {
        if let Some(task) = full.tasks_by_key.get(key) {
            loaded.tasks_by_key.insert(key.clone(), task.clone());
        }
    }
    let seeds = planner.ancestor_seeds(&loaded);
    for id in &refs.parent_ids {
        if let Some(node) = full.nodes.get(id) {
            loaded.nodes.insert(*id, *node);
        }
    }
    for seed in seeds {
        let mut next = Some(seed);
        while let Some(node) = next.and_then(|id| full.nodes.get(&id)) {
            loaded.nodes.insert(node.id, *node);
            next = node.parent_id;
        }
    }
    loaded
}

#[test]
fn cycle_via_new_task_found() {
    // Stored: R is the root and X its child. The batch moves R under a new
    // task C whose parent is X: R -> C -> X -> R.
    let mut full = world();
    store(&mut full, 10, 1, "R", None);
    store(&mut full, 11, 1, "X", Some(10));
    let batch = planner(vec![with_parent_key(input(1, "R"), "C"), with_parent_key(input(1, "C"), "X")]);
    let rejection = batch.plan(&as_loaded(&full, &batch)).unwrap_err();
    assert!(codes(&rejection).iter().all(|(_, _, code)| *code == DetailCode::ParentCycle), "{rejection:?}");
    assert!(!rejection.details.is_empty());
}

proptest::proptest! {
    // The interesting batches (a stored task moved under a new one) are rare among random ones.
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8192))]

    /// Planning on what storage loads gives the same result as planning on everything stored.
    #[test]
    fn loaded_snapshot_plans_like_full_one(
        parents in proptest::collection::vec(proptest::option::of(0usize..6), 6),
        items in proptest::collection::vec((0usize..9, 0u8..3, 0usize..9), 1..6),
    ) {
        // Stored tasks T0..T5 (ids 100..105), each pointing only at a lower one, so the stored tree is acyclic.
        let mut full = world();
        for (index, parent) in parents.iter().enumerate() {
            let parent = parent.filter(|parent| *parent < index).map(|parent| 100 + parent as i64);
            store(&mut full, 100 + index as i64, 1, &format!("T{index}"), parent);
        }
        let batch = planner(items.iter().map(|(key, how, target)| {
            let item = input(1, &format!("T{key}"));
            match how {
                0 => item,
                1 => with_parent_key(item, &format!("T{target}")),
                _ => with_parent_id(item, 100 + *target as i64),
            }
        }).collect());
        let expected = batch.plan(&full).map_err(|rejection| codes(&rejection).into_iter().map(|(i, f, c)| (i, f.to_owned(), c)).collect::<Vec<_>>());
        let actual = batch.plan(&as_loaded(&full, &batch)).map_err(|rejection| codes(&rejection).into_iter().map(|(i, f, c)| (i, f.to_owned(), c)).collect::<Vec<_>>());
        proptest::prop_assert_eq!(expected.is_ok(), actual.is_ok());
        if let (Err(expected), Err(actual)) = (expected, actual) {
            proptest::prop_assert_eq!(expected, actual);
        }
    }
}

fn names(fields: &[FieldName]) -> Vec<&'static str> {
    fields.iter().map(|field| field.as_str()).collect()
}

#[test]
fn new_task_changes_every_field_it_stores() {
    let mut item = with_parent_key(input(1, "B"), "A");
    item.owner_id = FieldInput::Value("u-1".into());
    let plan = planner(vec![input(1, "A"), item]).plan(&world()).unwrap();
    assert_eq!(names(&plan.items[0].changed_fields), vec!["task_name", "created_at"]);
    assert_eq!(names(&plan.items[1].changed_fields), vec!["task_name", "owner_id", "parent_task_id", "created_at"]);
}

#[test]
fn identical_resend_changes_nothing_and_writes_nothing() {
    let mut snapshot = world();
    store(&mut snapshot, 10, 1, "A", None);
    let mut same = input(1, "A");
    same.task_name = FieldInput::Value("Stored A".into());
    same.created_at = FieldInput::Value("2026-01-01 00:00:00".into());
    let plan = planner(vec![same.clone()]).plan(&snapshot).unwrap();
    assert!(plan.items[0].changed_fields.is_empty());
    assert!(plan.rows[0].unchanged, "a row equal to the stored one is not written");

    same.task_name = FieldInput::Value("Renamed".into());
    same.owner_id = FieldInput::Null;
    let plan = planner(vec![same]).plan(&snapshot).unwrap();
    assert_eq!(names(&plan.items[0].changed_fields), vec!["task_name", "owner_id"]);
    assert!(!plan.rows[0].unchanged);
}

#[test]
fn older_source_version_is_skipped() {
    let mut newer = input(1, "A");
    newer.task_name = FieldInput::Value("Newer".into());
    newer.source_updated_at = FieldInput::Value("2024-02-02 00:00:00".into());
    let mut older = input(1, "A");
    older.task_name = FieldInput::Value("Older".into());
    older.source_updated_at = FieldInput::Value("2024-02-01 00:00:00".into());
    let unversioned = input(1, "B");
    let plan = planner(vec![newer, older, unversioned]).plan(&world()).unwrap();
    let decisions: Vec<ItemDecision> = plan.items.iter().map(|item| item.decision).collect();
    assert_eq!(decisions, vec![ItemDecision::Apply, ItemDecision::SkipStale, ItemDecision::Apply]);
    assert_eq!(plan.rows[0].fields.name.as_str(), "Newer");
    assert!(plan.items[1].changed_fields.is_empty());
}

#[test]
fn stale_item_against_stored_version_leaves_row_alone() {
    let mut snapshot = world();
    store(&mut snapshot, 10, 1, "A", None);
    let stored = snapshot.tasks_by_key.get_mut(&key(1, "A")).unwrap();
    stored.fields.source_updated_at = Some(Timestamp::parse("2024-05-01 00:00:00").unwrap());
    let mut older = input(1, "A");
    older.source_updated_at = FieldInput::Value("2024-04-30 23:59:59".into());
    let mut equal = input(1, "A");
    equal.source_updated_at = FieldInput::Value("2024-05-01 00:00:00".into());

    let plan = planner(vec![older]).plan(&snapshot).unwrap();
    assert_eq!(plan.items[0].decision, ItemDecision::SkipStale);
    assert!(plan.rows[0].unchanged);
    assert_eq!(plan.items[0].created_at, now(), "a skipped item echoes the stored created_at");
    let plan = planner(vec![equal]).plan(&snapshot).unwrap();
    assert_eq!(plan.items[0].decision, ItemDecision::Apply, "the same version is applied");
}

#[test]
fn warnings_name_what_was_odd() {
    let mut odd = input(1, "A");
    odd.unknown_fields = vec!["colour".into()];
    odd.owner_name = FieldInput::Value("Ada".into());
    odd.created_at = FieldInput::Value("2026-01-01 00:10:00".into());
    let mut near = input(1, "B");
    near.created_at = FieldInput::Value("2026-01-01 00:04:00".into());
    let plan = planner(vec![odd, near]).plan(&world()).unwrap();
    let codes: Vec<&str> = plan.items[0].warnings.iter().map(|warning| warning.code.as_str()).collect();
    assert_eq!(codes, vec!["unknown_field", "owner_name_without_owner_id", "created_at_in_future"]);
    assert!(plan.items[0].warnings[0].message.contains("colour"));
    assert!(plan.items[1].warnings.is_empty(), "a few minutes of clock skew draw no warning");
}

#[test]
fn moves_stored_task_only_on_new_parent() {
    let mut snapshot = world();
    store(&mut snapshot, 10, 1, "P", None);
    store(&mut snapshot, 11, 1, "Q", None);
    store(&mut snapshot, 12, 1, "C", Some(10));
    let moves = |items: Vec<TaskInput>| planner(items).moves_stored_task(&snapshot);
    let mut cleared = input(1, "C");
    cleared.parent_task_app_id = FieldInput::Null;

    assert!(!moves(vec![input(1, "C")]), "absent parent keeps it");
    assert!(!moves(vec![cleared]), "null clears, it adds no edge");
    assert!(!moves(vec![with_parent_key(input(1, "C"), "P")]), "same parent by key");
    assert!(!moves(vec![with_parent_id(input(1, "C"), 10)]), "same parent by id");
    assert!(!moves(vec![with_parent_key(input(1, "NEW"), "C")]), "a new task under a stored one");
    assert!(moves(vec![with_parent_key(input(1, "C"), "Q")]), "other stored parent by key");
    assert!(moves(vec![with_parent_id(input(1, "C"), 11)]), "other stored parent by id");
    assert!(moves(vec![input(1, "NEW"), with_parent_key(input(1, "C"), "NEW")]), "under a task of the batch");
}

#[test]
fn item_keys_leave_out_named_parents() {
    let batch = planner(vec![with_parent_key(input(1, "B"), "A"), with_parent_id(input(2, "C"), 10), input(1, "B")]);
    assert_eq!(batch.item_keys(), BTreeSet::from([key(1, "B"), key(2, "C")]));
    assert!(batch.refs().keys.contains(&key(1, "A")), "refs still name the parent");
}
