//! Idempotency keys and unchanged writes, against a SQLite file and a PostgreSQL database.

use std::sync::Arc;
use std::time::Duration;

use domain::auth::{Caller, Scope};
use domain::idempotency::{Claim, Fingerprint, IdempotencyKey, IdempotencyStore, Receipt};
use domain::ingest::{ProcessedTask, TaskIngestion};
use domain::input::{FieldInput, TaskInput};
use domain::ports::TaskStore;
use domain::{ProjectId, Timestamp, TokenId};
use infra_diesel::testing::TestDatabase;

struct Setup {
    test: TestDatabase,
    ingestion: TaskIngestion,
    callers: [Caller; 2],
    project: ProjectId,
}

/// Creates one organization with one project, and two tokens on it.
async fn setup(test: TestDatabase) -> Setup {
    let (organization, project) = test.acme_project("B").await;
    let admin = test.admin();
    let mut callers = Vec::new();
    for (label, seed) in [("first", 1u8), ("second", 2)] {
        let (token_id, _) = admin.create_token(label, vec![organization], None, [seed; 32]).await.unwrap();
        callers.push(Caller { token_id, label: label.into(), scope: Scope::new([organization]) });
    }
    let callers = callers.try_into().unwrap_or_else(|_| unreachable!("two callers"));
    Setup { ingestion: test.ingestion(), callers, project, test }
}

fn task(project: ProjectId, app_id: &str, name: &str) -> TaskInput {
    TaskInput {
        project_id: FieldInput::Value(project.get()),
        task_app_id: FieldInput::Value(app_id.into()),
        task_name: FieldInput::Value(name.into()),
        created_at: FieldInput::Value("2024-01-20 09:00:00".into()),
        ..TaskInput::default()
    }
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn receipt(token: TokenId, key: &IdempotencyKey, expires_at: Timestamp) -> Receipt {
    let encode = Arc::new(|processed: &[ProcessedTask]| format!("{} tasks", processed.len()));
    Receipt {
        token,
        key: key.clone(),
        fingerprint: Fingerprint::of(&[b"body"]),
        created_at: at("2026-01-01 00:00:00"),
        expires_at,
        encode,
    }
}

/// Checks that a claim is exclusive until released or completed, and that the response is stored with
/// the batch and replayed until it expires, then pruned.
async fn claim_complete_expire_prune(test: TestDatabase) {
    let setup = setup(test).await;
    let store = &setup.test.database;
    let (token, other) = (setup.callers[0].token_id, setup.callers[1].token_id);
    let key = IdempotencyKey::parse(b"job-1").unwrap();
    let (now, lease) = (at("2026-01-01 00:00:00"), at("2026-01-01 00:01:30"));

    assert_eq!(store.claim(token, &key, now, lease).await.unwrap(), Claim::Claimed);
    assert_eq!(store.claim(token, &key, now, lease).await.unwrap(), Claim::InProgress);
    assert_eq!(store.claim(other, &key, now, lease).await.unwrap(), Claim::Claimed, "keys of tokens never collide");
    store.release(token, &key).await.unwrap();
    assert_eq!(store.claim(token, &key, now, lease).await.unwrap(), Claim::Claimed, "a released key is free");

    let response_expiry = at("2026-01-02 00:00:00");
    let tasks = vec![task(setup.project, "T-1", "One"), task(setup.project, "T-2", "Two")];
    let receipt = receipt(token, &key, response_expiry);
    setup.ingestion.ingest_with_receipt(&setup.callers[0], tasks, Some(receipt)).await.unwrap();
    let Claim::Completed(stored) = store.claim(token, &key, at("2026-01-01 12:00:00"), lease).await.unwrap() else {
        panic!("the response is stored with the batch")
    };
    assert_eq!(stored.status, 200);
    assert_eq!(stored.body, "2 tasks");
    assert_eq!(stored.fingerprint, Fingerprint::of(&[b"body"]));
    store.release(token, &key).await.unwrap();
    assert!(
        matches!(store.claim(token, &key, now, lease).await.unwrap(), Claim::Completed(_)),
        "stored responses survive release"
    );

    assert_eq!(store.prune(at("2026-01-01 23:59:59")).await.unwrap(), 1, "only the other token's lapsed claim");
    assert_eq!(store.prune(response_expiry).await.unwrap(), 1);
    let later = at("2026-01-03 00:00:00");
    assert_eq!(store.claim(token, &key, later, later).await.unwrap(), Claim::Claimed, "a pruned key is new again");
}

/// Checks that a claim whose server died lapses at the end of its lease and can be taken over.
async fn lapsed_claim_taken_over(test: TestDatabase) {
    let setup = setup(test).await;
    let store = &setup.test.database;
    let token = setup.callers[0].token_id;
    let key = IdempotencyKey::parse(b"job-2").unwrap();
    let lease = at("2026-01-01 00:01:00");
    assert_eq!(store.claim(token, &key, at("2026-01-01 00:00:00"), lease).await.unwrap(), Claim::Claimed);
    assert_eq!(store.claim(token, &key, at("2026-01-01 00:00:59"), lease).await.unwrap(), Claim::InProgress);
    let next = at("2026-01-01 00:03:00");
    assert_eq!(store.claim(token, &key, lease, next).await.unwrap(), Claim::Claimed);
}

/// Checks that a write that changes nothing leaves the row, and its `updated_at`, as they were.
async fn unchanged_write_touches_nothing(test: TestDatabase) {
    let setup = setup(test).await;
    let caller = &setup.callers[0];
    let first = setup.ingestion.ingest(caller, vec![task(setup.project, "T-1", "One")]).await.unwrap();
    let id = first[0].task_id.unwrap();
    let before = setup.test.database.find_task(id).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let same = setup.ingestion.ingest(caller, vec![task(setup.project, "T-1", "One")]).await.unwrap();
    assert!(same[0].changed_fields.is_empty());
    assert_eq!(setup.test.database.find_task(id).await.unwrap().unwrap(), before, "nothing was written");

    let renamed = setup.ingestion.ingest(caller, vec![task(setup.project, "T-1", "Uno")]).await.unwrap();
    assert_eq!(renamed[0].changed_fields.iter().map(|field| field.as_str()).collect::<Vec<_>>(), vec!["task_name"]);
    let after = setup.test.database.find_task(id).await.unwrap().unwrap();
    assert!(after.updated_at > before.updated_at, "a real change moves updated_at");
}

infra_diesel::backend_tests!(claim_complete_expire_prune, lapsed_claim_taken_over, unchanged_write_touches_nothing);
