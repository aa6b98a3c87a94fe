//! Repository tests, run against a SQLite file and a PostgreSQL database.

use std::sync::Arc;

use domain::admin::{Admin, ProjectSpec};
use domain::auth::{Authenticator, Caller, Scope};
use domain::clock::SystemClock;
use domain::ingest::{IngestError, ProcessedTask, TaskIngestion};
use domain::input::{FieldInput, TaskInput};
use domain::outcome::TaskAction;
use domain::ports::{TaskStore, TokenRepository};
use domain::read::TaskFilter;
use domain::task::Action;
use domain::{DetailCode, OrganizationId, ProjectId, TaskId, TokenId};
use infra_diesel::testing::TestDatabase;

struct Fixture {
    test: TestDatabase,
    ingestion: TaskIngestion,
    admin: Admin,
    caller: Caller,
    project: ProjectId,
}

async fn fixture(test: TestDatabase) -> Fixture {
    let (organization, project) = test.acme_project("BOARD").await;
    let caller = Caller { token_id: TokenId(1), label: "test".into(), scope: Scope::new([organization]) };
    Fixture { ingestion: test.ingestion(), admin: test.admin(), caller, project, test }
}

fn task(project: ProjectId, app_id: &str) -> TaskInput {
    TaskInput {
        project_id: FieldInput::Value(project.get()),
        task_app_id: FieldInput::Value(app_id.into()),
        task_name: FieldInput::Value(format!("Task {app_id}")),
        created_at: FieldInput::Value("2024-01-20 09:00:00".into()),
        ..TaskInput::default()
    }
}

impl Fixture {
    async fn ingest(&self, inputs: Vec<TaskInput>) -> Result<Vec<ProcessedTask>, IngestError> {
        self.ingestion.ingest(&self.caller, inputs).await
    }

    async fn stored(&self, id: TaskId) -> domain::task::StoredTask {
        self.test.database.find_task(id).await.unwrap().expect("task stored")
    }
}

async fn create_then_update_same_id(test: TestDatabase) {
    let fixture = fixture(test).await;
    let first = fixture.ingest(vec![task(fixture.project, "T-1")]).await.unwrap();
    let second = fixture.ingest(vec![task(fixture.project, "T-1")]).await.unwrap();
    assert_eq!(first[0].action, TaskAction::Created);
    assert_eq!(second[0].action, TaskAction::Updated);
    assert_eq!(first[0].task_id.unwrap(), second[0].task_id.unwrap());
}

async fn fields_stored_exactly(test: TestDatabase) {
    let fixture = fixture(test).await;
    let name = "  \u{1b}[1mTitanium\u{1b}[22m\tCLI \u{a0}\u{8}\u{fffd} Привет 🚀 ";
    let mut input = task(fixture.project, "T-1");
    input.task_name = FieldInput::Value(name.into());
    input.task_url = FieldInput::Value("https://tracker.example/T-1?x=1".into());
    input.owner_id = FieldInput::Value("u_1e578316".into());
    input.owner_name = FieldInput::Value(" User 4978 ".into());
    input.created_at = FieldInput::Value("2024-01-20T09:00:00.123456+02:00".into());
    let id = fixture.ingest(vec![input]).await.unwrap()[0].task_id.unwrap();

    let stored = fixture.stored(id).await;
    assert_eq!(stored.fields.name.as_str(), name);
    assert_eq!(stored.fields.url.unwrap().as_str(), "https://tracker.example/T-1?x=1");
    assert_eq!(stored.fields.owner_id.unwrap().as_str(), "u_1e578316");
    assert_eq!(stored.fields.owner_name.unwrap().as_str(), " User 4978 ");
    assert_eq!(stored.fields.created_at.as_naive().to_string(), "2024-01-20 07:00:00.123456");
    assert_eq!(stored.key.project_id, fixture.project);
}

async fn absent_keeps_null_clears(test: TestDatabase) {
    let fixture = fixture(test).await;
    let mut full = task(fixture.project, "T-1");
    full.task_url = FieldInput::Value("https://tracker.example/T-1".into());
    full.owner_id = FieldInput::Value("owner".into());
    full.owner_name = FieldInput::Value("Owner".into());
    let id = fixture.ingest(vec![full]).await.unwrap()[0].task_id.unwrap();

    let mut partial = task(fixture.project, "T-1");
    partial.owner_id = FieldInput::Null;
    fixture.ingest(vec![partial]).await.unwrap();

    let stored = fixture.stored(id).await;
    assert_eq!(stored.fields.url.unwrap().as_str(), "https://tracker.example/T-1", "absent keeps");
    assert_eq!(stored.fields.owner_name.unwrap().as_str(), "Owner", "absent keeps");
    assert!(stored.fields.owner_id.is_none(), "null clears");
}

async fn rejected_batch_writes_nothing(test: TestDatabase) {
    let fixture = fixture(test).await;
    let existing = fixture.ingest(vec![task(fixture.project, "KEEP")]).await.unwrap()[0].task_id.unwrap();
    let before = fixture.stored(existing).await;

    let mut rename = task(fixture.project, "KEEP");
    rename.task_name = FieldInput::Value("Renamed".into());
    let mut bad = task(fixture.project, "NEW");
    bad.parent_task_id = FieldInput::Value(999_999);
    let error = fixture.ingest(vec![rename, task(fixture.project, "ALSO-NEW"), bad]).await.unwrap_err();
    let IngestError::Rejected(rejection) = error else { panic!("expected a rejection, got {error:?}") };
    assert_eq!(rejection.details[0].code, DetailCode::ParentNotFound);

    assert_eq!(fixture.stored(existing).await, before, "the stored task is unchanged");
    let again = fixture.ingest(vec![task(fixture.project, "ALSO-NEW")]).await.unwrap();
    assert_eq!(again[0].action, TaskAction::Created, "nothing of the rejected batch was written");
}

async fn parents_by_id_and_key(test: TestDatabase) {
    let fixture = fixture(test).await;
    let parent = fixture.ingest(vec![task(fixture.project, "EPIC")]).await.unwrap()[0].task_id.unwrap();

    let mut by_id = task(fixture.project, "A");
    by_id.parent_task_id = FieldInput::Value(parent.get());
    let mut child_first = task(fixture.project, "SUB");
    child_first.parent_task_app_id = FieldInput::Value("STORY".into());
    let mut story = task(fixture.project, "STORY");
    story.parent_task_app_id = FieldInput::Value("EPIC".into());
    let processed = fixture.ingest(vec![by_id, child_first, story]).await.unwrap();

    assert_eq!(fixture.stored(processed[0].task_id.unwrap()).await.parent_id, Some(parent));
    assert_eq!(fixture.stored(processed[1].task_id.unwrap()).await.parent_id, Some(processed[2].task_id.unwrap()));
    assert_eq!(fixture.stored(processed[2].task_id.unwrap()).await.parent_id, Some(parent));
}

async fn cycle_through_stored_chain_rejected(test: TestDatabase) {
    let fixture = fixture(test).await;
    let mut items = vec![task(fixture.project, "A")];
    for (child, parent) in [("B", "A"), ("C", "B"), ("D", "C")] {
        let mut item = task(fixture.project, child);
        item.parent_task_app_id = FieldInput::Value(parent.into());
        items.push(item);
    }
    let processed = fixture.ingest(items).await.unwrap();

    let mut close_loop = task(fixture.project, "A");
    close_loop.parent_task_id = FieldInput::Value(processed[3].task_id.unwrap().get());
    let Err(IngestError::Rejected(rejection)) = fixture.ingest(vec![close_loop]).await else {
        panic!("expected a rejection")
    };
    assert_eq!(rejection.details[0].code, DetailCode::ParentCycle);
    assert_eq!(fixture.stored(processed[0].task_id.unwrap()).await.parent_id, None);
}

async fn other_tenant_parent_not_found(test: TestDatabase) {
    let fixture = fixture(test).await;
    let other = fixture.admin.create_organization("Other").await.unwrap();
    let spec =
        ProjectSpec { organization_id: other.id, app_id: "X".into(), name: "X".into(), active: true, created_at: None };
    let (foreign_project, _) = fixture.admin.upsert_project(spec).await.unwrap();
    let foreign_caller = Caller { token_id: TokenId(2), label: "other".into(), scope: Scope::new([other.id]) };
    let foreign = fixture.ingestion.ingest(&foreign_caller, vec![task(foreign_project.id, "F")]).await.unwrap()[0]
        .task_id
        .unwrap();

    let mut item = task(fixture.project, "A");
    item.parent_task_id = FieldInput::Value(foreign.get());
    let Err(IngestError::Rejected(rejection)) = fixture.ingest(vec![item]).await else {
        panic!("expected a rejection")
    };
    assert_eq!(rejection.details[0].code, DetailCode::ParentNotFound);

    let Err(IngestError::Rejected(rejection)) = fixture.ingest(vec![task(foreign_project.id, "G")]).await else {
        panic!("expected a rejection")
    };
    assert_eq!(rejection.details[0].code, DetailCode::ProjectNotFound, "another tenant's project reads as missing");
}

async fn concurrent_creates_report_one_created(test: TestDatabase) {
    let fixture = Arc::new(fixture(test).await);
    let mut handles = Vec::new();
    for _ in 0..8 {
        let fixture = Arc::clone(&fixture);
        handles.push(tokio::spawn(async move {
            let items = vec![task(fixture.project, "RACE"), task(fixture.project, "OTHER")];
            fixture.ingest(items).await.unwrap()
        }));
    }
    let results: Vec<Vec<ProcessedTask>> =
        futures::future::join_all(handles).await.into_iter().map(Result::unwrap).collect();
    let created = results.iter().filter(|processed| processed[0].action == TaskAction::Created).count();
    assert_eq!(created, 1, "exactly one request created the task");
    let ids: std::collections::BTreeSet<TaskId> =
        results.iter().map(|processed| processed[0].task_id.unwrap()).collect();
    assert_eq!(ids.len(), 1, "every request saw the same task");
}

async fn large_batch_with_parents(test: TestDatabase) {
    let fixture = fixture(test).await;
    let items: Vec<TaskInput> = (0..1000)
        .map(|index| {
            let mut item = task(fixture.project, &format!("T-{index:04}"));
            if index % 5 == 4 {
                item.parent_task_app_id = FieldInput::Value(format!("T-{:04}", index - 1));
            }
            item
        })
        .collect();
    let processed = fixture.ingest(items.clone()).await.unwrap();
    assert!(processed.iter().all(|task| task.action == TaskAction::Created));
    assert_eq!(fixture.stored(processed[4].task_id.unwrap()).await.parent_id, Some(processed[3].task_id.unwrap()));

    let again = fixture.ingest(items).await.unwrap();
    assert!(again.iter().all(|task| task.action == TaskAction::Updated));
    assert_eq!(fixture.stored(again[999].task_id.unwrap()).await.parent_id, Some(processed[998].task_id.unwrap()));
}

/// Optional columns set on some rows and null on others of one statement
/// (PostgreSQL binds each column as one array) come back row by row.
async fn mixed_nulls_in_one_statement(test: TestDatabase) {
    let fixture = fixture(test).await;
    let items: Vec<TaskInput> = (0..600)
        .map(|index| {
            let mut item = task(fixture.project, &format!("M-{index:03}"));
            if index % 2 == 0 {
                item.task_url = FieldInput::Value(format!("https://tracker.example/M-{index}"));
                item.owner_name = FieldInput::Value(format!("Owner {index}"));
            }
            if index % 3 == 0 {
                item.owner_id = FieldInput::Value(format!("u-{index}"));
                item.source_updated_at = FieldInput::Value(format!("2024-02-01 10:{:02}:00", index % 60));
            }
            item
        })
        .collect();
    let processed = fixture.ingest(items).await.unwrap();
    for (index, outcome) in processed.iter().enumerate() {
        let stored = fixture.stored(outcome.task_id.unwrap()).await;
        assert_eq!(stored.key.app_id.as_str(), format!("M-{index:03}"));
        let url = stored.fields.url.as_ref().map(|url| url.as_str().to_owned());
        assert_eq!(url, (index % 2 == 0).then(|| format!("https://tracker.example/M-{index}")), "row {index}");
        let owner_name = stored.fields.owner_name.as_ref().map(|name| name.as_str().to_owned());
        assert_eq!(owner_name, (index % 2 == 0).then(|| format!("Owner {index}")), "row {index}");
        let owner_id = stored.fields.owner_id.as_ref().map(|owner| owner.as_str().to_owned());
        assert_eq!(owner_id, (index % 3 == 0).then(|| format!("u-{index}")), "row {index}");
        let source = stored.fields.source_updated_at.map(|at| at.to_api_string());
        assert_eq!(source, (index % 3 == 0).then(|| format!("2024-02-01 10:{:02}:00", index % 60)), "row {index}");
    }
}

async fn tokens_lifecycle(test: TestDatabase) {
    let fixture = fixture(test).await;
    let organization = OrganizationId(1);
    let (id, secret) = fixture.admin.create_token("jira sync", vec![organization], None, [9; 32]).await.unwrap();
    let stored = fixture.test.database.find_by_hash(&secret.hash()).await.unwrap().unwrap();
    assert_eq!(stored.id, id);
    assert_eq!(stored.organizations, vec![organization]);
    assert!(stored.last_used_at.is_none());

    let authenticator = Authenticator::new(Arc::new(fixture.test.database.clone()), Arc::new(SystemClock));
    let caller = authenticator.authenticate(Some(secret.expose())).await.unwrap();
    assert!(caller.scope.contains(organization));
    let touched = fixture.test.database.find_by_hash(&secret.hash()).await.unwrap().unwrap();
    assert!(touched.last_used_at.is_some());

    assert!(fixture.admin.revoke_token(id).await.unwrap());
    assert!(!fixture.admin.revoke_token(TokenId(9999)).await.unwrap());
    assert!(authenticator.authenticate(Some(secret.expose())).await.is_err());
}

async fn project_upsert_updates(test: TestDatabase) {
    let fixture = fixture(test).await;
    let spec = ProjectSpec {
        organization_id: OrganizationId(1),
        app_id: "BOARD".into(),
        name: "Renamed".into(),
        active: false,
        created_at: None,
    };
    let (project, action) = fixture.admin.upsert_project(spec).await.unwrap();
    assert_eq!(action, Action::Updated);
    assert_eq!(project.id, fixture.project);
    assert_eq!(project.name, "Renamed");
    assert!(!project.active);
}

fn filter(project_id: ProjectId, after: Option<TaskId>, limit: u32) -> TaskFilter {
    TaskFilter { project_id, after, limit, updated_since: None, parent_id: None, app_id: None }
}

async fn list_tasks_filters(test: TestDatabase) {
    let fixture = fixture(test).await;
    let mut child = task(fixture.project, "CHILD");
    child.parent_task_app_id = FieldInput::Value("ROOT".into());
    let processed =
        fixture.ingest(vec![task(fixture.project, "ROOT"), child, task(fixture.project, "OTHER")]).await.unwrap();
    let root = processed[0].task_id.unwrap();

    let children = TaskFilter { parent_id: Some(root), ..filter(fixture.project, None, 10) };
    let found = fixture.test.database.list_tasks(children).await.unwrap();
    assert_eq!(found.iter().map(|task| task.key.app_id.as_str()).collect::<Vec<_>>(), vec!["CHILD"]);

    let by_key = TaskFilter { app_id: Some("OTHER".into()), ..filter(fixture.project, None, 10) };
    assert_eq!(fixture.test.database.list_tasks(by_key).await.unwrap()[0].id, processed[2].task_id.unwrap());

    let stored = fixture.stored(root).await;
    let since = TaskFilter { updated_since: Some(stored.updated_at), ..filter(fixture.project, None, 10) };
    assert_eq!(fixture.test.database.list_tasks(since).await.unwrap().len(), 3, "updated_at >= since");
    let later = domain::Timestamp::from_utc(stored.updated_at.as_naive() + chrono::Duration::microseconds(1));
    let none = TaskFilter { updated_since: Some(later), ..filter(fixture.project, None, 10) };
    assert!(fixture.test.database.list_tasks(none).await.unwrap().is_empty());
}

async fn list_tasks_pages_by_id(test: TestDatabase) {
    let fixture = fixture(test).await;
    let items = (0..25).map(|index| task(fixture.project, &format!("P-{index:02}"))).collect();
    let processed = fixture.ingest(items).await.unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = fixture.test.database.list_tasks(filter(fixture.project, after, 10)).await.unwrap();
        assert!(page.len() <= 10);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.into_iter().map(|task| task.id));
    }
    let mut expected: Vec<TaskId> = processed.iter().filter_map(|task| task.task_id).collect();
    expected.sort();
    assert_eq!(seen, expected);
    assert!(fixture.test.database.list_tasks(filter(ProjectId(999), None, 10)).await.unwrap().is_empty());
}

async fn migrations_idempotent(test: TestDatabase) {
    assert!(test.database.migrate().await.unwrap().is_empty());
}

/// With every pooled connection busy, storage returns `Unavailable` (the API's
/// 503) after the acquire timeout instead of hanging, and serves again once a
/// connection is free.
async fn exhausted_pool_is_unavailable_then_recovers(test: TestDatabase) {
    use domain::StoreError;
    use domain::ports::Readiness;

    let options = infra_diesel::PoolOptions {
        max_size: 2,
        acquire_timeout: std::time::Duration::from_millis(300),
        ..infra_diesel::PoolOptions::default()
    };
    let small = Arc::new(infra_diesel::Database::connect(&test.url, &options).unwrap());
    let fixture = fixture(test).await;
    let ingestion = TaskIngestion::new(small.clone(), Arc::new(SystemClock));

    let busy_connections = small.hold_every_connection();
    let result = ingestion.ingest(&fixture.caller, vec![task(fixture.project, "WAITING")]).await;
    assert!(matches!(result, Err(IngestError::Store(StoreError::Unavailable(_)))), "{result:?}");
    assert!(matches!(small.ping().await, Err(StoreError::Unavailable(_))));
    assert!(matches!(small.find_task(TaskId(1)).await, Err(StoreError::Unavailable(_))));

    drop(busy_connections);
    let processed = ingestion.ingest(&fixture.caller, vec![task(fixture.project, "WAITING")]).await.unwrap();
    assert_eq!(processed[0].action, TaskAction::Created, "the failed attempt stored nothing");
    small.ping().await.unwrap();
}

/// Sends every batch at once and returns the outcomes in order.
async fn ingest_concurrently(
    fixture: &Arc<Fixture>,
    batches: Vec<Vec<TaskInput>>,
) -> Vec<Result<Vec<ProcessedTask>, IngestError>> {
    let handles: Vec<_> = batches
        .into_iter()
        .map(|batch| {
            let fixture = Arc::clone(fixture);
            tokio::spawn(async move { fixture.ingest(batch).await })
        })
        .collect();
    futures::future::join_all(handles).await.into_iter().map(Result::unwrap).collect()
}

/// Three single-item batches per key, each setting one optional field and
/// leaving the other two absent, which keeps them.
fn one_field_batches(project: ProjectId, keys: &[String]) -> Vec<Vec<TaskInput>> {
    let mut batches = Vec::new();
    for key in keys {
        for field in 0..3 {
            let mut item = task(project, key);
            match field {
                0 => item.task_url = FieldInput::Value(format!("https://tracker.example/{key}")),
                1 => item.owner_id = FieldInput::Value(format!("owner-{key}")),
                _ => item.owner_name = FieldInput::Value(format!("Owner {key}")),
            }
            batches.push(vec![item]);
        }
    }
    batches
}

/// Checks that every key kept the field of each of its three batches.
async fn assert_fields_merged(fixture: &Fixture, keys: &[String], ids: &[TaskId]) {
    for (key, id) in keys.iter().zip(ids) {
        let stored = fixture.stored(*id).await;
        assert_eq!(
            stored.fields.url.map(|url| url.as_str().to_owned()),
            Some(format!("https://tracker.example/{key}"))
        );
        assert_eq!(stored.fields.owner_id.map(|owner| owner.as_str().to_owned()), Some(format!("owner-{key}")));
        assert_eq!(stored.fields.owner_name.map(|owner| owner.as_str().to_owned()), Some(format!("Owner {key}")));
    }
}

async fn concurrent_partial_updates_merge(test: TestDatabase) {
    let fixture = Arc::new(fixture(test).await);
    let keys: Vec<String> = (0..16).map(|index| format!("MERGE-{index:02}")).collect();
    let created = fixture.ingest(keys.iter().map(|key| task(fixture.project, key)).collect()).await.unwrap();
    let ids: Vec<TaskId> = created.iter().map(|processed| processed.task_id.expect("a stored task")).collect();

    for outcome in ingest_concurrently(&fixture, one_field_batches(fixture.project, &keys)).await {
        assert_eq!(outcome.unwrap()[0].action, TaskAction::Updated);
    }
    assert_fields_merged(&fixture, &keys, &ids).await;
}

/// Like `concurrent_partial_updates_merge`, for keys that no batch finds
/// stored: the batches that lose the race to create a key must merge into the
/// winner's row, not overwrite it with their absent fields.
async fn concurrent_partial_creates_merge(test: TestDatabase) {
    let fixture = Arc::new(fixture(test).await);
    let keys: Vec<String> = (0..16).map(|index| format!("FRESH-{index:02}")).collect();

    let outcomes = ingest_concurrently(&fixture, one_field_batches(fixture.project, &keys)).await;
    let processed: Vec<ProcessedTask> = outcomes.into_iter().map(|outcome| outcome.unwrap().remove(0)).collect();
    let mut ids = Vec::new();
    for per_key in processed.chunks(3) {
        let created = per_key.iter().filter(|item| item.action == TaskAction::Created).count();
        assert_eq!(created, 1, "one batch per key created it");
        let id = per_key[0].task_id.expect("a stored task");
        assert!(per_key.iter().all(|item| item.task_id == Some(id)), "every batch of a key wrote one task");
        ids.push(id);
    }
    assert_fields_merged(&fixture, &keys, &ids).await;
}

async fn parent_links_beside_parent_free_batches(test: TestDatabase) {
    const RINGS: usize = 24;
    const RING_SIZE: usize = 4;
    let fixture = Arc::new(fixture(test).await);
    let node = |ring: usize, index: usize| format!("RING{ring}-{}", index % RING_SIZE);
    let nodes = (0..RINGS).flat_map(|ring| (0..RING_SIZE).map(move |index| (ring, index)));
    fixture.ingest(nodes.map(|(ring, index)| task(fixture.project, &node(ring, index))).collect()).await.unwrap();

    // Each ring gets the links 0 -> 1 -> 2 -> 3 -> 0, one per batch. Links 0 -> 1
    // and 2 -> 3 go first, then 1 -> 2 and 3 -> 0 side by side: two batches that
    // share no key, and that close the ring if both are planned on the same stored
    // tree. Between them go batches that set no parent: they clear a parent,
    // rename a node and create a task.
    let mut batches = Vec::new();
    for pair in [[0, 2], [1, 3]] {
        for ring in 0..RINGS {
            for index in pair {
                let mut link = task(fixture.project, &node(ring, index));
                link.parent_task_app_id = FieldInput::Value(node(ring, index + 1));
                batches.push(vec![link]);
            }
            if ring % 2 == pair[0] {
                let mut clear = task(fixture.project, &node(ring, pair[1] + 2));
                clear.parent_task_app_id = FieldInput::Null;
                let mut rename = task(fixture.project, &node(ring, pair[1] + 3));
                rename.task_name = FieldInput::Value(format!("Renamed {ring}"));
                batches.push(vec![clear, rename, task(fixture.project, &format!("NEW-{ring}"))]);
            }
        }
    }
    let parent_free: Vec<bool> = batches.iter().map(|batch| batch.len() == 3).collect();
    let outcomes = ingest_concurrently(&fixture, batches).await;
    for (position, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(_) => {}
            Err(IngestError::Rejected(rejection)) if !parent_free[position] => {
                assert_eq!(rejection.details[0].code, DetailCode::ParentCycle, "batch {position}");
            }
            Err(error) => panic!("batch {position} failed: {error:?}"),
        }
    }

    let stored = fixture.test.database.list_tasks(filter(fixture.project, None, 1000)).await.unwrap();
    let keys: std::collections::BTreeSet<&str> = stored.iter().map(|task| task.key.app_id.as_str()).collect();
    assert_eq!(stored.len(), RINGS * RING_SIZE + RINGS, "one row per key");
    assert_eq!(keys.len(), RINGS * RING_SIZE + RINGS, "one row per key");
    let parents: std::collections::HashMap<TaskId, TaskId> =
        stored.iter().filter_map(|task| Some((task.id, task.parent_id?))).collect();
    for task in &stored {
        let mut current = task.id;
        for _ in 0..=stored.len() {
            let Some(parent) = parents.get(&current) else { break };
            assert_ne!(*parent, task.id, "task {} is its own ancestor", task.key.app_id.as_str());
            current = *parent;
        }
    }
}

async fn new_child_races_stored_move(test: TestDatabase) {
    const PAIRS: usize = 16;
    let fixture = Arc::new(fixture(test).await);
    fixture.ingest((0..PAIRS).map(|pair| task(fixture.project, &format!("PARENT-{pair}"))).collect()).await.unwrap();

    // For each pair, one batch creates CHILD under the stored PARENT, and the
    // other creates CHILD if it is missing and moves PARENT under it. Whichever
    // commits first, the other would close the cycle PARENT -> CHILD -> PARENT.
    let mut batches = Vec::new();
    for pair in 0..PAIRS {
        let (parent, child) = (format!("PARENT-{pair}"), format!("CHILD-{pair}"));
        let mut create_child = task(fixture.project, &child);
        create_child.parent_task_app_id = FieldInput::Value(parent.clone());
        let mut move_parent = task(fixture.project, &parent);
        move_parent.parent_task_app_id = FieldInput::Value(child.clone());
        batches.push(vec![create_child]);
        batches.push(vec![task(fixture.project, &child), move_parent]);
    }
    let outcomes = ingest_concurrently(&fixture, batches).await;
    for (pair, outcomes) in outcomes.chunks(2).enumerate() {
        let succeeded = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        assert_eq!(succeeded, 1, "pair {pair}: exactly one batch succeeds");
        for outcome in outcomes {
            if let Err(error) = outcome {
                let IngestError::Rejected(rejection) = error else { panic!("pair {pair} failed: {error:?}") };
                assert_eq!(rejection.details[0].code, DetailCode::ParentCycle, "pair {pair}");
            }
        }
    }

    let stored = fixture.test.database.list_tasks(filter(fixture.project, None, 1000)).await.unwrap();
    assert_eq!(stored.len(), 2 * PAIRS, "one row per key");
    let parents: std::collections::HashMap<TaskId, TaskId> =
        stored.iter().filter_map(|task| Some((task.id, task.parent_id?))).collect();
    for task in &stored {
        let grandparent = parents.get(&task.id).and_then(|parent| parents.get(parent));
        assert_ne!(grandparent, Some(&task.id), "task {} is its own grandparent", task.key.app_id.as_str());
    }
}

/// Batches queued behind a long lock holder, here a session standing in for
/// another instance's batch, wait their turn past the pool's acquire timeout,
/// and reads still get a connection meanwhile: the database is busy, not down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lock_queue_outlasts_acquire_timeout() {
    use diesel::{Connection, RunQueryDsl};

    let Some(test) = TestDatabase::postgres().await else { return };
    let fixture = Arc::new(fixture(test).await);
    let mut holder = diesel::PgConnection::establish(&fixture.test.url).unwrap();
    let lock = "SELECT pg_advisory_lock(hashtextextended('leanmote.project', $1))";
    diesel::sql_query(lock).bind::<diesel::sql_types::BigInt, _>(fixture.project.get()).execute(&mut holder).unwrap();

    // Twice the test pool's 4 connections: half wait on the lock, half for a connection.
    let batches = (0..8).map(|index| vec![task(fixture.project, &format!("QUEUED-{index}"))]).collect();
    let queued = tokio::spawn({
        let fixture = Arc::clone(&fixture);
        async move { ingest_concurrently(&fixture, batches).await }
    });
    tokio::time::sleep(infra_diesel::PoolOptions::default().acquire_timeout + std::time::Duration::from_secs(1)).await;
    let read = fixture.test.database.list_tasks(filter(fixture.project, None, 10)).await;
    assert!(read.is_ok(), "a read while writers wait on the lock: {read:?}");
    let unlock = "SELECT pg_advisory_unlock(hashtextextended('leanmote.project', $1))";
    diesel::sql_query(unlock).bind::<diesel::sql_types::BigInt, _>(fixture.project.get()).execute(&mut holder).unwrap();

    for (index, outcome) in queued.await.unwrap().into_iter().enumerate() {
        let processed = outcome.unwrap_or_else(|error| panic!("batch {index} failed: {error:?}"));
        assert_eq!(processed[0].action, TaskAction::Created, "batch {index}");
    }
}

/// A partial update whose stored row another session changes between the
/// batch's read and its write keeps that session's change: the batch must
/// not write back the fields it read before the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_update_racing_another_writer_loses_nothing() {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;

    let Some(test) = TestDatabase::postgres().await else { return };
    let fixture = Arc::new(fixture(test).await);
    let mut first = task(fixture.project, "RACE-1");
    first.owner_id = FieldInput::Value("owner-before".into());
    let id = fixture.ingest(vec![first]).await.unwrap()[0].task_id.unwrap();

    let mut holder = diesel::PgConnection::establish(&fixture.test.url).unwrap();
    let change = format!("BEGIN; UPDATE tasks SET owner_name = 'Set by the other writer' WHERE id = {}", id.get());
    holder.batch_execute(&change).unwrap();
    let racing = tokio::spawn({
        let fixture = Arc::clone(&fixture);
        async move {
            let mut update = task(fixture.project, "RACE-1");
            update.owner_id = FieldInput::Value("owner-after".into());
            fixture.ingest(vec![update]).await
        }
    });
    // Long enough for the batch to read the row and reach its write.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    holder.batch_execute("COMMIT").unwrap();

    let processed = racing.await.unwrap().unwrap();
    assert_eq!(processed[0].action, TaskAction::Updated);
    let stored = fixture.stored(id).await;
    assert_eq!(stored.fields.owner_id.map(|owner| owner.as_str().to_owned()).as_deref(), Some("owner-after"));
    let owner_name = stored.fields.owner_name.map(|name| name.as_str().to_owned());
    assert_eq!(owner_name.as_deref(), Some("Set by the other writer"));
}

infra_diesel::backend_tests!(
    exhausted_pool_is_unavailable_then_recovers,
    create_then_update_same_id,
    fields_stored_exactly,
    absent_keeps_null_clears,
    rejected_batch_writes_nothing,
    parents_by_id_and_key,
    cycle_through_stored_chain_rejected,
    other_tenant_parent_not_found,
    concurrent_creates_report_one_created,
    large_batch_with_parents,
    mixed_nulls_in_one_statement,
    tokens_lifecycle,
    project_upsert_updates,
    list_tasks_pages_by_id,
    list_tasks_filters,
    migrations_idempotent,
    concurrent_partial_updates_merge,
    concurrent_partial_creates_merge,
    parent_links_beside_parent_free_batches,
    new_child_races_stored_move,
);

/// Three instances on one PostgreSQL server each write seven batches of 1000
/// new tasks at once. The locks of a batch must not grow with its size: an
/// advisory lock per key took 21,000 entries of the server's shared lock
/// table, which overflowed between 12,000 and 20,000 with the default
/// settings here ("out of shared memory").
///
/// Another session holds an uncommitted row under the last key of each batch,
/// so that every batch waits in its insert, with its locks taken, until all
/// of them hold their locks at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_large_batches_from_several_instances() {
    use diesel::{Connection, RunQueryDsl};

    const INSTANCES: usize = 3;
    const WRITERS: usize = 7;
    const BATCH: usize = 1000;

    let Some(test) = TestDatabase::postgres().await else { return };
    let url = test.url.clone();
    let fixture = fixture(test).await;
    let mut blocker = diesel::PgConnection::establish(&url).unwrap();
    diesel::sql_query("BEGIN").execute(&mut blocker).unwrap();
    for instance in 0..INSTANCES {
        for writer in 0..WRITERS {
            diesel::sql_query(
                "INSERT INTO tasks (project_id, task_app_id, task_name, created_at, inserted_at, updated_at, insert_token) \
                 VALUES ($1, $2, 'blocker', now(), now(), now(), 0)",
            )
            .bind::<diesel::sql_types::BigInt, _>(fixture.project.get())
            .bind::<diesel::sql_types::Text, _>(format!("I{instance}-W{writer}-{:04}", BATCH - 1))
            .execute(&mut blocker)
            .unwrap();
        }
    }

    let mut handles = Vec::new();
    for instance in 0..INSTANCES {
        let database = Arc::new(infra_diesel::Database::connect(&url, &infra_diesel::PoolOptions::default()).unwrap());
        let ingestion = Arc::new(TaskIngestion::new(database, Arc::new(SystemClock)));
        for writer in 0..WRITERS {
            let batch: Vec<TaskInput> =
                (0..BATCH).map(|index| task(fixture.project, &format!("I{instance}-W{writer}-{index:04}"))).collect();
            let (ingestion, caller) = (Arc::clone(&ingestion), fixture.caller.clone());
            handles.push(tokio::spawn(async move { ingestion.ingest(&caller, batch).await }));
        }
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    diesel::sql_query("ROLLBACK").execute(&mut blocker).unwrap();
    for (index, outcome) in futures::future::join_all(handles).await.into_iter().enumerate() {
        let processed = outcome.unwrap().unwrap_or_else(|error| panic!("batch {index} failed: {error:?}"));
        assert!(processed.iter().all(|item| item.action == TaskAction::Created), "batch {index}");
    }
}

/// When PostgreSQL ends the pool's sessions (a restart, a failover), a
/// connection used moments ago skips the checkout ping, so a statement may
/// fail on it once. The pool must then drop that connection instead of
/// handing it out again: at most one failure per pooled connection, then
/// reads succeed. A single read runs outside a transaction, so this checks
/// diesel's own report of a lost session, not a failed rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lost_connections_are_dropped() {
    use diesel::{Connection, RunQueryDsl};

    let Some(test) = TestDatabase::postgres().await else { return };
    let url = test.url.clone();
    let fixture = fixture(test).await;
    let created = fixture.ingest(vec![task(fixture.project, "READ-ME")]).await.unwrap();
    let id = created[0].task_id.expect("a stored task");
    let read = || fixture.test.database.find_task(id);
    read().await.unwrap();

    let mut admin = diesel::PgConnection::establish(&url).unwrap();
    diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut admin)
    .unwrap();

    let pool_size = infra_diesel::PoolOptions::default().max_size as usize;
    let mut failures = 0;
    while let Err(error) = read().await {
        failures += 1;
        assert!(failures <= pool_size, "{failures} reads failed, the last with {error:?}");
    }
    for index in 0..10 {
        let outcome = read().await;
        assert!(outcome.is_ok(), "read {index} after recovery: {outcome:?}");
    }
}
