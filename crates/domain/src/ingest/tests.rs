//! The ingestion use case with mocked ports.

use super::*;
use crate::ErrorClass;
use crate::auth::Scope;
use crate::clock::MockClock;
use crate::ids::{OrganizationId, TokenId};
use crate::input::FieldInput;
use crate::plan::{Snapshot, WritePlan};
use crate::ports::{AppliedBatch, MockTaskStore, RowWrite};
use crate::timestamp::Timestamp;

fn caller() -> Caller {
    Caller { token_id: TokenId(1), label: "sync job".into(), scope: Scope::new([OrganizationId(1)]) }
}

fn clock() -> Arc<MockClock> {
    let mut clock = MockClock::new();
    clock.expect_now().returning(|| Timestamp::parse("2026-01-01 00:00:00").unwrap());
    Arc::new(clock)
}

fn input(app_id: &str) -> TaskInput {
    TaskInput {
        project_id: FieldInput::Value(1),
        task_app_id: FieldInput::Value(app_id.into()),
        task_name: FieldInput::Value("Name".into()),
        created_at: FieldInput::Value("2024-01-20 09:00:00".into()),
        ..TaskInput::default()
    }
}

/// Builds a store that plans against project 1 of organization 1 and reports each
/// row as created with id 100 + row index, unless listed in `updated_rows`.
fn store(updated_rows: &'static [usize]) -> MockTaskStore {
    let mut store = MockTaskStore::new();
    store.expect_apply_batch().times(1).returning(move |planner, _| {
        let mut snapshot = Snapshot::default();
        snapshot.projects.insert(ProjectId(1), OrganizationId(1));
        let plan: WritePlan = planner.plan(&snapshot).map_err(ApplyError::Rejected)?;
        let rows = (0..plan.rows.len())
            .map(|row| RowWrite {
                id: TaskId(100 + row as i64),
                action: if updated_rows.contains(&row) { Action::Updated } else { Action::Created },
            })
            .collect();
        Ok(AppliedBatch { plan, rows })
    });
    store
}

fn run(store: MockTaskStore, inputs: Vec<TaskInput>) -> Result<Vec<ProcessedTask>, IngestError> {
    let ingestion = TaskIngestion::new(Arc::new(store), clock());
    futures::executor::block_on(ingestion.ingest(&caller(), inputs))
}

#[test]
fn results_follow_request_order() {
    let processed = run(store(&[0]), vec![input("B"), input("A")]).unwrap();
    let summary: Vec<(&str, Option<i64>, TaskAction)> =
        processed.iter().map(|task| (task.task_app_id.as_str(), task.task_id.map(TaskId::get), task.action)).collect();
    // Rows are sorted by key: A is row 0 (reported updated), B is row 1.
    assert_eq!(summary, vec![("B", Some(101), TaskAction::Created), ("A", Some(100), TaskAction::Updated)]);
    assert!(processed.iter().all(|task| task.project_id == ProjectId(1)));
}

#[test]
fn repeated_key_created_then_updated() {
    let processed = run(store(&[]), vec![input("A"), input("A")]).unwrap();
    assert_eq!(processed[0].action, TaskAction::Created);
    assert_eq!(processed[1].action, TaskAction::Updated);
    assert_eq!(processed[0].task_id, processed[1].task_id);
}

#[test]
fn empty_batch_rejected_without_storage() {
    let mut store = MockTaskStore::new();
    store.expect_apply_batch().never();
    let Err(IngestError::Rejected(rejection)) = run(store, Vec::new()) else { panic!("expected a rejection") };
    assert_eq!(rejection.details[0].field, "tasks");
    assert_eq!(rejection.details[0].code, DetailCode::BatchSize);
    assert_eq!(rejection.details[0].message, "is empty; send 1 to 1000 tasks");
}

#[test]
fn oversized_batch_rejected_without_storage() {
    let mut store = MockTaskStore::new();
    store.expect_apply_batch().never();
    let inputs = (0..=MAX_BATCH_TASKS).map(|index| input(&format!("T-{index}"))).collect();
    let Err(IngestError::Rejected(rejection)) = run(store, inputs) else { panic!("expected a rejection") };
    assert_eq!(
        rejection.details[0].message,
        "contains 1001 tasks, more than the maximum of 1000; split it into batches of at most 1000"
    );
}

#[test]
fn invalid_item_rejects_whole_batch() {
    let mut bad = input("B");
    bad.created_at = FieldInput::Value("2024-02-30 10:00:00".into());
    let Err(IngestError::Rejected(rejection)) = run(store(&[]), vec![input("A"), bad]) else {
        panic!("expected a rejection")
    };
    assert_eq!(rejection.class(), ErrorClass::InvalidInput);
    assert_eq!(rejection.details.len(), 1);
    assert_eq!(rejection.details[0].field, "tasks[1].created_at");
}

#[test]
fn store_failure_propagates() {
    let mut store = MockTaskStore::new();
    store
        .expect_apply_batch()
        .returning(|_, _| Err(ApplyError::Store(StoreError::Unavailable("database down".into()))));
    assert!(matches!(run(store, vec![input("A")]), Err(IngestError::Store(StoreError::Unavailable(_)))));
}
