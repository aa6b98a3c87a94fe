//! Group commit: one-task batches sent at once share transactions, and each
//! still gets the result it would get alone. Run on SQLite and PostgreSQL.

use std::sync::Arc;

use domain::auth::{Caller, Scope};
use domain::idempotency::{Fingerprint, IdempotencyKey, Receipt};
use domain::ingest::{IngestError, ProcessedTask, TaskIngestion};
use domain::input::{FieldInput, TaskInput};
use domain::outcome::TaskAction;
use domain::ports::TaskStore;
use domain::{DetailCode, ProjectId, Timestamp, TokenId};
use futures::future::join_all;
use infra_diesel::testing::TestDatabase;

/// Batches sent at once; the write queue lets far fewer transactions run at a time.
const WAVE: usize = 24;

struct Fixture {
    test: TestDatabase,
    ingestion: Arc<TaskIngestion>,
    caller: Caller,
    project: ProjectId,
}

async fn fixture(test: TestDatabase) -> Fixture {
    let (organization, project) = test.acme_project("BOARD").await;
    let caller = Caller { token_id: TokenId(1), label: "test".into(), scope: Scope::new([organization]) };
    Fixture { ingestion: Arc::new(test.ingestion()), caller, project, test }
}

fn task(project: ProjectId, app_id: &str, parent: Option<&str>) -> TaskInput {
    TaskInput {
        project_id: FieldInput::Value(project.get()),
        task_app_id: FieldInput::Value(app_id.into()),
        task_name: FieldInput::Value(format!("Task {app_id}")),
        created_at: FieldInput::Value("2024-01-20 09:00:00".into()),
        parent_task_app_id: parent.map_or(FieldInput::Absent, |parent| FieldInput::Value(parent.into())),
        ..TaskInput::default()
    }
}

type Outcome = Result<Vec<ProcessedTask>, IngestError>;

impl Fixture {
    /// Sends every batch at once, each as its own request, and returns their results in order.
    async fn send_at_once(&self, batches: Vec<(Vec<TaskInput>, Option<Receipt>)>) -> Vec<Outcome> {
        let handles: Vec<_> = batches
            .into_iter()
            .map(|(inputs, receipt)| {
                let (ingestion, caller) = (Arc::clone(&self.ingestion), self.caller.clone());
                tokio::spawn(async move { ingestion.ingest_with_receipt(&caller, inputs, receipt).await })
            })
            .collect();
        join_all(handles).await.into_iter().map(|joined| joined.expect("the request task ran")).collect()
    }
}

impl Fixture {
    /// Returns the stored task with this external id in the fixture's project.
    async fn stored(&self, app_id: &str) -> Option<domain::task::StoredTask> {
        let filter = domain::read::TaskFilter {
            project_id: self.project,
            after: None,
            limit: 10,
            updated_since: None,
            parent_id: None,
            app_id: Some(app_id.into()),
        };
        self.test.database.list_tasks(filter).await.expect("list tasks").into_iter().next()
    }
}

fn actions(outcome: &Outcome) -> Vec<TaskAction> {
    outcome
        .as_ref()
        .unwrap_or_else(|error| panic!("the batch failed: {error:?}"))
        .iter()
        .map(|task| task.action)
        .collect()
}

/// One-task batches on distinct keys are written in fewer transactions than
/// batches, and each reports exactly its own create, then its own update.
async fn concurrent_batches_share_transactions(test: TestDatabase) {
    let fixture = fixture(test).await;
    let wave = || (0..WAVE).map(|index| (vec![task(fixture.project, &format!("G-{index:02}"), None)], None)).collect();

    let created = fixture.send_at_once(wave()).await;
    let mut ids = Vec::new();
    for outcome in &created {
        assert_eq!(actions(outcome), [TaskAction::Created]);
        ids.push(outcome.as_ref().unwrap()[0].task_id.expect("an id"));
    }
    let transactions = fixture.test.task_insert_transactions();
    assert!(transactions < WAVE as i64, "{WAVE} batches took {transactions} transactions: no group formed");

    let updated = fixture.send_at_once(wave()).await;
    for (outcome, id) in updated.iter().zip(&ids) {
        assert_eq!(actions(outcome), [TaskAction::Updated]);
        assert_eq!(outcome.as_ref().unwrap()[0].task_id, Some(*id), "the update answers the created id");
    }
}

/// A batch naming a parent that another batch of the same wave creates
/// never shares that batch's transaction. It finds the parent once it is
/// stored, or gets a not-found error, exactly as if the two ran one after the other.
async fn batches_naming_each_others_keys_stay_ordered(test: TestDatabase) {
    let fixture = fixture(test).await;
    let mut batches = Vec::new();
    for index in 0..WAVE / 2 {
        batches.push((vec![task(fixture.project, &format!("P-{index:02}"), None)], None));
        batches.push((vec![task(fixture.project, &format!("C-{index:02}"), Some(&format!("P-{index:02}")))], None));
    }
    let outcomes = fixture.send_at_once(batches).await;
    for pair in outcomes.chunks(2) {
        assert_eq!(actions(&pair[0]), [TaskAction::Created]);
        match &pair[1] {
            Ok(child) => {
                assert_eq!(child[0].action, TaskAction::Created);
                let stored = fixture.test.database.find_task(child[0].task_id.unwrap()).await.unwrap().unwrap();
                assert_eq!(stored.parent_id, pair[0].as_ref().unwrap()[0].task_id, "the child points at its parent");
            }
            Err(IngestError::Rejected(rejection)) => {
                assert_eq!(rejection.details[0].code, DetailCode::ParentNotFound, "{rejection:?}")
            }
            Err(other) => panic!("the child batch failed: {other:?}"),
        }
    }
}

/// Batches on one key never share a transaction: exactly one creates it,
/// every other one reports an update of the same task.
async fn batches_on_one_key_report_one_create(test: TestDatabase) {
    let fixture = fixture(test).await;
    let batches = (0..WAVE).map(|_| (vec![task(fixture.project, "SAME", None)], None)).collect();
    let outcomes = fixture.send_at_once(batches).await;
    let created = outcomes.iter().filter(|outcome| actions(outcome) == [TaskAction::Created]).count();
    assert_eq!(created, 1, "{outcomes:?}");
    let ids: std::collections::BTreeSet<_> =
        outcomes.iter().map(|outcome| outcome.as_ref().unwrap()[0].task_id).collect();
    assert_eq!(ids.len(), 1, "every answer names the same task");
}

/// A batch that breaks a rule gets its own rejection, and the batches
/// grouped with it are written.
async fn rejected_batch_leaves_its_group_written(test: TestDatabase) {
    let fixture = fixture(test).await;
    let mut batches: Vec<_> =
        (0..WAVE).map(|index| (vec![task(fixture.project, &format!("R-{index:02}"), None)], None)).collect();
    batches[WAVE / 2].0 = vec![task(fixture.project, "R-ORPHAN", Some("NO-SUCH-PARENT"))];
    let outcomes = fixture.send_at_once(batches).await;
    for (index, outcome) in outcomes.iter().enumerate() {
        if index == WAVE / 2 {
            assert!(matches!(outcome, Err(IngestError::Rejected(_))), "{outcome:?}");
        } else {
            assert_eq!(actions(outcome), [TaskAction::Created], "batch {index}");
        }
    }
}

/// A batch whose write fails in the database fails alone: its group is
/// written again batch by batch, and only that batch gets the error. Here
/// the failing batch stores its response under a token that does not exist,
/// which breaks a foreign key.
async fn failed_write_fails_only_its_batch(test: TestDatabase) {
    let fixture = fixture(test).await;
    let now = Timestamp::parse("2026-01-01 12:00:00").unwrap();
    let receipt = Receipt {
        token: TokenId(999_999),
        key: IdempotencyKey::parse(b"broken").unwrap(),
        fingerprint: Fingerprint::of(&[b"body"]),
        created_at: now,
        expires_at: now,
        encode: Arc::new(|_: &[ProcessedTask]| String::from("{}")),
    };
    let mut batches: Vec<_> =
        (0..WAVE).map(|index| (vec![task(fixture.project, &format!("F-{index:02}"), None)], None)).collect();
    batches[WAVE / 2] = (vec![task(fixture.project, "F-BROKEN", None)], Some(receipt));
    let outcomes = fixture.send_at_once(batches).await;
    for (index, outcome) in outcomes.iter().enumerate() {
        if index == WAVE / 2 {
            assert!(matches!(outcome, Err(IngestError::Store(_))), "{outcome:?}");
        } else {
            assert_eq!(actions(outcome), [TaskAction::Created], "batch {index}");
        }
    }
    assert!(fixture.stored("F-BROKEN").await.is_none(), "the failed batch wrote nothing");
}

/// Plans made ahead of their turn never write over a batch committed in
/// between. Every batch names one key; one sets its URL, the others leave it
/// out, which keeps the stored URL. A plan read before the URL was set and
/// written after it would clear the URL.
async fn plans_made_ahead_keep_later_writes(test: TestDatabase) {
    test.database.claim_sqlite_file().expect("claim the SQLite file");
    let fixture = fixture(test).await;
    fixture.send_at_once(vec![(vec![task(fixture.project, "SHARED", None)], None)]).await;
    for round in 0..5 {
        let mut batches: Vec<_> = (0..WAVE)
            .map(|index| {
                let mut input = task(fixture.project, "SHARED", None);
                input.task_name = FieldInput::Value(format!("Round {round} batch {index}"));
                (vec![input], None)
            })
            .collect();
        let url = format!("https://tracker.example/SHARED?round={round}");
        batches[round * 4 + 1].0[0].task_url = FieldInput::Value(url.clone());
        for outcome in fixture.send_at_once(batches).await {
            assert_eq!(actions(&outcome), [TaskAction::Updated]);
        }
        let stored = fixture.stored("SHARED").await.expect("the task is stored");
        let stored_url = stored.fields.url.as_ref().map(|url| url.as_str().to_owned());
        assert_eq!(stored_url, Some(url), "round {round}: a later batch wrote over the URL");
    }
}

infra_diesel::backend_tests!(
    plans_made_ahead_keep_later_writes,
    concurrent_batches_share_transactions,
    batches_naming_each_others_keys_stay_ordered,
    batches_on_one_key_report_one_create,
    rejected_batch_leaves_its_group_written,
    failed_write_fails_only_its_batch,
);
