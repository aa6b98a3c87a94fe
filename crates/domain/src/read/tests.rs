//! Read rules with mocked ports: scope, not found, parameters and paging.

use super::*;
use crate::auth::Scope;
use crate::ids::TokenId;
use crate::ports::{MockOrganizationRepository, MockProjectRepository, MockTaskStore};
use crate::task::{TaskAppId, TaskFields, TaskKey, TaskName};

const MINE: OrganizationId = OrganizationId(1);
const THEIRS: OrganizationId = OrganizationId(2);

fn at() -> Timestamp {
    Timestamp::parse("2026-01-01 00:00:00").unwrap()
}

fn caller() -> Caller {
    Caller { token_id: TokenId(1), label: "reader".into(), scope: Scope::new([MINE]) }
}

fn project(id: i64, organization: OrganizationId) -> Project {
    Project {
        id: ProjectId(id),
        organization_id: organization,
        app_id: format!("P{id}"),
        name: "Board".into(),
        active: true,
        created_at: at(),
        inserted_at: at(),
        updated_at: at(),
    }
}

fn stored_task(id: i64, project: i64) -> StoredTask {
    StoredTask {
        id: TaskId(id),
        key: TaskKey { project_id: ProjectId(project), app_id: TaskAppId::parse(format!("T-{id}")).unwrap() },
        fields: TaskFields {
            name: TaskName::parse("Task").unwrap(),
            url: None,
            owner_id: None,
            owner_name: None,
            created_at: at(),
            source_updated_at: None,
        },
        parent_id: None,
        inserted_at: at(),
        updated_at: at(),
    }
}

/// Builds a reader where project 1 is the caller's, project 2 another tenant's,
/// and the task store returns tasks with ids after the cursor, up to the limit, of 25 in all.
fn reader() -> Reader {
    let mut projects = MockProjectRepository::new();
    projects.expect_find().returning(|id| {
        Ok(match id.get() {
            1 => Some(project(1, MINE)),
            2 => Some(project(2, THEIRS)),
            _ => None,
        })
    });
    projects.expect_list().returning(|filter| {
        Ok(filter.organizations.iter().map(|organization| project(organization.get(), *organization)).collect())
    });
    let mut tasks = MockTaskStore::new();
    tasks.expect_find_task().returning(|id| {
        Ok(match id.get() {
            10 => Some(stored_task(10, 1)),
            20 => Some(stored_task(20, 2)),
            _ => None,
        })
    });
    tasks.expect_list_tasks().returning(|filter| {
        let start = filter.after.map_or(1, |after| after.get() + 1);
        Ok((start..=25).take(filter.limit as usize).map(|id| stored_task(id, filter.project_id.get())).collect())
    });
    let mut organizations = MockOrganizationRepository::new();
    organizations.expect_list().returning(|ids| {
        Ok(ids.into_iter().map(|id| Organization { id, name: "Org".into(), created_at: at() }).collect())
    });
    Reader { tasks: Arc::new(tasks), projects: Arc::new(projects), organizations: Arc::new(organizations) }
}

fn rejected_codes<T: std::fmt::Debug>(result: Result<T, ReadError>) -> Vec<(String, DetailCode)> {
    match result {
        Err(ReadError::Rejected(rejection)) => {
            rejection.details.into_iter().map(|detail| (detail.field, detail.code)).collect()
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    futures::executor::block_on(future)
}

fn list_params(project: &str) -> TaskListParams {
    TaskListParams { project_id: Some(project.into()), ..TaskListParams::default() }
}

#[test]
fn organizations_limited_to_scope() {
    let organizations = run(reader().organizations(&caller())).unwrap();
    assert_eq!(organizations.iter().map(|organization| organization.id).collect::<Vec<_>>(), vec![MINE]);
}

#[test]
fn project_of_other_tenant_not_found() {
    assert_eq!(run(reader().project(&caller(), ProjectId(1))).unwrap().id, ProjectId(1));
    for id in [2, 3] {
        assert_eq!(
            rejected_codes(run(reader().project(&caller(), ProjectId(id)))),
            vec![("project_id".into(), DetailCode::ProjectNotFound)]
        );
    }
}

#[test]
fn project_list_never_leaves_scope() {
    let other = ProjectListParams { organization_id: Some("2".into()), active: None, repeated: Vec::new() };
    assert!(run(reader().projects(&caller(), other)).unwrap().is_empty());
    let all = run(reader().projects(&caller(), ProjectListParams::default())).unwrap();
    assert!(all.iter().all(|project| project.organization_id == MINE));
}

#[test]
fn task_of_other_tenant_not_found() {
    assert_eq!(run(reader().task(&caller(), TaskId(10))).unwrap().id, TaskId(10));
    for id in [20, 30] {
        assert_eq!(
            rejected_codes(run(reader().task(&caller(), TaskId(id)))),
            vec![("task_id".into(), DetailCode::TaskNotFound)]
        );
    }
}

#[test]
fn task_list_of_other_tenant_not_found() {
    assert_eq!(
        rejected_codes(run(reader().tasks(&caller(), list_params("2")))),
        vec![("project_id".into(), DetailCode::ProjectNotFound)]
    );
}

#[test]
fn pages_follow_cursor_to_end() {
    let mut params = TaskListParams { limit: Some("10".into()), ..list_params("1") };
    let mut seen = Vec::new();
    loop {
        let page = run(reader().tasks(&caller(), params.clone())).unwrap();
        assert_eq!(page.limit, 10);
        seen.extend(page.tasks.iter().map(|task| task.id.get()));
        match page.next_cursor {
            Some(cursor) => params.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen, (1..=25).collect::<Vec<_>>());
}

#[test]
fn default_limit_applies() {
    let page = run(reader().tasks(&caller(), list_params("1"))).unwrap();
    assert_eq!(page.limit, DEFAULT_PAGE_LIMIT);
    assert_eq!(page.tasks.len(), 25);
    assert_eq!(page.next_cursor, None);
}

#[test]
fn invalid_parameters_all_listed() {
    let params = TaskListParams {
        project_id: None,
        updated_since: Some("yesterday".into()),
        parent_task_id: Some("-1".into()),
        task_app_id: None,
        limit: Some("1001".into()),
        cursor: Some("garbage".into()),
        repeated: vec!["task_app_id".into()],
    };
    assert_eq!(
        rejected_codes(run(reader().tasks(&caller(), params))),
        vec![
            ("task_app_id".into(), DetailCode::InvalidValue),
            ("project_id".into(), DetailCode::Missing),
            ("parent_task_id".into(), DetailCode::InvalidType),
            ("updated_since".into(), DetailCode::InvalidTimestamp),
            ("limit".into(), DetailCode::InvalidValue),
            ("cursor".into(), DetailCode::InvalidValue),
        ]
    );
}

#[test]
fn cursor_round_trips() {
    for id in [1, 42, i64::MAX] {
        assert_eq!(decode_cursor(&encode_cursor(TaskId(id))), Some(TaskId(id)));
    }
    for cursor in ["", "c1", "c10000000000000000", "c2000000000000002a", "c1xyz0000000000002a"] {
        assert_eq!(decode_cursor(cursor), None, "{cursor}");
    }
}
