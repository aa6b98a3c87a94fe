//! The use case behind `POST /api/v1/projects`: create or update one project.

use std::sync::Arc;

use crate::auth::Caller;
use crate::clock::Clock;
use crate::error::{DetailCode, ItemError, Rejection, StoreError};
use crate::ids::OrganizationId;
use crate::input::FieldInput;
use crate::organization::DisplayName;
use crate::ports::{OrganizationRepository, ProjectRepository};
use crate::project::{NewProject, Project, ProjectAppId};
use crate::task::Action;
use crate::timestamp::Timestamp;

/// Most projects one request may carry.
pub const MAX_BATCH_PROJECTS: usize = 1000;

/// One project as decoded from a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectInput {
    pub project_app_id: FieldInput<String>,
    pub name: FieldInput<String>,
    pub organization_id: FieldInput<i64>,
    /// When absent: kept on update, true on create.
    pub active: FieldInput<bool>,
    /// When absent: kept on update, the time of the request on create.
    pub created_at: FieldInput<String>,
}

/// Failure of a project upsert.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("the project was rejected")]
    Rejected(Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates or updates projects for authenticated callers.
#[derive(Clone)]
pub struct ProjectUpsert {
    pub projects: Arc<dyn ProjectRepository>,
    pub organizations: Arc<dyn OrganizationRepository>,
    pub clock: Arc<dyn Clock>,
}

impl ProjectUpsert {
    /// Creates the project, or updates the one with the same `project_app_id`
    /// in the organization.
    ///
    /// # Errors
    /// Returns [`ProjectError::Rejected`] listing every invalid field (400),
    /// an organization outside the caller's scope (403, whether or not it
    /// exists) or an unknown one in it (404).
    pub async fn upsert(&self, caller: &Caller, input: ProjectInput) -> Result<(Project, Action), ProjectError> {
        let now = self.clock.now();
        let (organization_id, project) =
            validate(input, now).map_err(|errors| ProjectError::Rejected(Rejection::new(errors)))?;

        if let Err(errors) = self.check_organization(caller, organization_id).await? {
            return Err(ProjectError::Rejected(Rejection::new(errors)));
        }
        Ok(self.projects.upsert(project).await?)
    }

    /// Creates or updates up to [`MAX_BATCH_PROJECTS`] projects, all or nothing,
    /// in request order: the same key twice is created, then updated.
    ///
    /// # Errors
    /// Returns [`ProjectError::Rejected`] listing every failing field of every
    /// item (paths such as `projects[2].name`); then nothing is written.
    pub async fn upsert_batch(
        &self,
        caller: &Caller,
        inputs: Vec<ProjectInput>,
    ) -> Result<Vec<(Project, Action)>, ProjectError> {
        if !(1..=MAX_BATCH_PROJECTS).contains(&inputs.len()) {
            let error = crate::ingest::batch_size_error("projects", inputs.len(), MAX_BATCH_PROJECTS, "project");
            return Err(ProjectError::Rejected(Rejection::new(vec![error])));
        }
        let now = self.clock.now();
        let mut errors = Vec::new();
        let mut projects = Vec::with_capacity(inputs.len());
        for (index, input) in inputs.into_iter().enumerate() {
            let checked = match validate(input, now) {
                Ok((organization_id, project)) => {
                    self.check_organization(caller, organization_id).await?.map(|()| project)
                }
                Err(item_errors) => Err(item_errors),
            };
            match checked {
                Ok(project) => projects.push(project),
                Err(item_errors) => errors.extend(item_errors.into_iter().map(|error| ItemError {
                    index: Some(index),
                    field: format!("projects[{index}].{}", error.field),
                    ..error
                })),
            }
        }
        if !errors.is_empty() {
            return Err(ProjectError::Rejected(Rejection::new(errors)));
        }
        Ok(self.projects.upsert_many(projects).await?)
    }

    /// Checks that the organization is in the caller's scope (403) and exists (404).
    ///
    /// Scope comes first, so an id outside it gets 403 whether or not it
    /// exists, and a token learns nothing about other tenants' ids.
    async fn check_organization(
        &self,
        caller: &Caller,
        id: OrganizationId,
    ) -> Result<Result<(), Vec<ItemError>>, StoreError> {
        let error = |code, message: String| {
            Err(vec![ItemError { index: None, field: "organization_id".into(), code, message }])
        };
        if !caller.scope.contains(id) {
            let message = format!("organization {id} is outside this token's scope; use a token of that organization");
            return Ok(error(DetailCode::OrganizationForbidden, message));
        }
        if self.organizations.find(id).await?.is_none() {
            return Ok(error(
                DetailCode::OrganizationNotFound,
                format!("organization {id} was not found; check the id"),
            ));
        }
        Ok(Ok(()))
    }
}

fn validate(input: ProjectInput, now: Timestamp) -> Result<(OrganizationId, NewProject), Vec<ItemError>> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, code, message: String| {
        errors.push(ItemError { index: None, field: field.to_owned(), code, message });
    };
    let app_id = match input.project_app_id {
        FieldInput::Value(value) => {
            ProjectAppId::parse(value).map_err(|error| fail("project_app_id", error.code, error.message)).ok()
        }
        other => required(other, "project_app_id", "the project's id in your tool as a string", &mut fail),
    };
    let name = match input.name {
        FieldInput::Value(value) => {
            DisplayName::parse(value).map_err(|error| fail("name", error.code, error.message)).ok()
        }
        other => required(other, "name", "the project's name as a string", &mut fail),
    };
    let organization_id = match input.organization_id {
        FieldInput::Value(value) if value > 0 => Some(OrganizationId(value)),
        FieldInput::Value(value) => {
            fail("organization_id", DetailCode::NotPositive, format!("must be a positive integer, got {value}"));
            None
        }
        other => required(other, "organization_id", "the organization's id as a positive integer", &mut fail),
    };
    let active = match input.active {
        FieldInput::Absent => Some(None),
        FieldInput::Value(active) => Some(Some(active)),
        other => required(other, "active", "1, 0, true or false", &mut fail),
    };
    let created_at = match input.created_at {
        FieldInput::Absent => Some(None),
        FieldInput::Value(text) => Timestamp::parse(&text)
            .map(Some)
            .map_err(|error| fail("created_at", DetailCode::InvalidTimestamp, error.to_string()))
            .ok(),
        other => required(other, "created_at", "a UTC timestamp such as \"2024-01-20 09:00:00\"", &mut fail),
    };
    match (app_id, name, organization_id, active, created_at) {
        (Some(app_id), Some(name), Some(organization_id), Some(active), Some(created_at)) if errors.is_empty() => {
            Ok((organization_id, NewProject { organization_id, app_id, name, active, created_at, now }))
        }
        _ => Err(errors),
    }
}

/// Records the reason a required field has no usable value.
fn required<T, U>(
    input: FieldInput<T>,
    field: &str,
    expected: &str,
    fail: &mut impl FnMut(&str, DetailCode, String),
) -> Option<U> {
    match input {
        FieldInput::Absent => fail(field, DetailCode::Missing, format!("is required; send {expected}")),
        FieldInput::Null => fail(field, DetailCode::Missing, format!("must not be null; send {expected}")),
        FieldInput::WrongType(message) => fail(field, DetailCode::InvalidType, message),
        FieldInput::Value(_) => unreachable!("values are handled by the caller"),
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scope;
    use crate::clock::MockClock;
    use crate::ids::{ProjectId, TokenId};
    use crate::organization::Organization;
    use crate::ports::{MockOrganizationRepository, MockProjectRepository};

    fn now() -> Timestamp {
        Timestamp::parse("2026-01-01 00:00:00").unwrap()
    }

    fn service(known: &'static [i64], expect_write: bool) -> ProjectUpsert {
        let mut organizations = MockOrganizationRepository::new();
        organizations.expect_find().returning(move |id| {
            Ok(known.contains(&id.get()).then(|| Organization { id, name: "Org".into(), created_at: now() }))
        });
        let mut projects = MockProjectRepository::new();
        projects.expect_upsert().times(usize::from(expect_write)).returning(|project| {
            let stored = Project {
                id: ProjectId(5),
                organization_id: project.organization_id,
                app_id: project.app_id.as_str().to_owned(),
                name: project.name.as_str().to_owned(),
                active: project.active.unwrap_or(crate::project::DEFAULT_ACTIVE),
                created_at: project.created_at.unwrap_or(project.now),
                inserted_at: project.now,
                updated_at: project.now,
            };
            Ok((stored, Action::Created))
        });
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        ProjectUpsert { projects: Arc::new(projects), organizations: Arc::new(organizations), clock: Arc::new(clock) }
    }

    fn caller() -> Caller {
        Caller { token_id: TokenId(1), label: "t".into(), scope: Scope::new([OrganizationId(1)]) }
    }

    fn input(organization: i64) -> ProjectInput {
        ProjectInput {
            project_app_id: FieldInput::Value("TIMOB".into()),
            name: FieldInput::Value("Titanium SDK".into()),
            organization_id: FieldInput::Value(organization),
            ..ProjectInput::default()
        }
    }

    fn rejected_codes(result: Result<(Project, Action), ProjectError>) -> Vec<(String, DetailCode)> {
        match result {
            Err(ProjectError::Rejected(rejection)) => {
                rejection.details.into_iter().map(|detail| (detail.field, detail.code)).collect()
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn defaults_active_and_created_at() {
        let (project, action) = futures::executor::block_on(service(&[1], true).upsert(&caller(), input(1))).unwrap();
        assert_eq!(action, Action::Created);
        assert!(project.active);
        assert_eq!(project.created_at, now());
    }

    #[test]
    fn every_invalid_field_listed() {
        let bad = ProjectInput {
            project_app_id: FieldInput::Value(" ".into()),
            name: FieldInput::Absent,
            organization_id: FieldInput::WrongType("expected an integer".into()),
            active: FieldInput::Null,
            created_at: FieldInput::Value("2024-13-01 00:00:00".into()),
        };
        let codes = rejected_codes(futures::executor::block_on(service(&[1], false).upsert(&caller(), bad)));
        assert_eq!(
            codes,
            vec![
                ("project_app_id".to_owned(), DetailCode::Blank),
                ("name".to_owned(), DetailCode::Missing),
                ("organization_id".to_owned(), DetailCode::InvalidType),
                ("active".to_owned(), DetailCode::Missing),
                ("created_at".to_owned(), DetailCode::InvalidTimestamp),
            ]
        );
    }

    #[test]
    fn unknown_organization_not_found() {
        let caller = Caller { scope: Scope::new([OrganizationId(1), OrganizationId(7)]), ..caller() };
        let codes = rejected_codes(futures::executor::block_on(service(&[1], false).upsert(&caller, input(7))));
        assert_eq!(codes, vec![("organization_id".to_owned(), DetailCode::OrganizationNotFound)]);
    }

    #[test]
    fn foreign_organization_always_forbidden() {
        for organization in [2, 7] {
            let result = futures::executor::block_on(service(&[1, 2], false).upsert(&caller(), input(organization)));
            let codes = rejected_codes(result);
            assert_eq!(codes, vec![("organization_id".to_owned(), DetailCode::OrganizationForbidden)]);
        }
    }

    #[test]
    fn batch_lists_failing_items_and_writes_nothing() {
        let mut service = service(&[1, 2], false);
        let mut projects = MockProjectRepository::new();
        projects.expect_upsert_many().never();
        service.projects = Arc::new(projects);
        let bad = ProjectInput { name: FieldInput::Value(String::new()), ..input(1) };
        let result = futures::executor::block_on(service.upsert_batch(&caller(), vec![input(1), bad, input(2)]));
        let Err(ProjectError::Rejected(rejection)) = result else { panic!("expected a rejection") };
        let codes: Vec<(Option<usize>, &str, DetailCode)> =
            rejection.details.iter().map(|detail| (detail.index, detail.field.as_str(), detail.code)).collect();
        assert_eq!(
            codes,
            vec![
                (Some(1), "projects[1].name", DetailCode::Blank),
                (Some(2), "projects[2].organization_id", DetailCode::OrganizationForbidden)
            ]
        );
    }

    #[test]
    fn batch_size_enforced() {
        let result = futures::executor::block_on(service(&[1], false).upsert_batch(&caller(), Vec::new()));
        let Err(ProjectError::Rejected(rejection)) = result else { panic!("expected a rejection") };
        assert_eq!(rejection.details[0].code, DetailCode::BatchSize);
    }

    #[test]
    fn organization_outside_scope_forbidden() {
        let codes = rejected_codes(futures::executor::block_on(service(&[1, 2], false).upsert(&caller(), input(2))));
        assert_eq!(codes, vec![("organization_id".to_owned(), DetailCode::OrganizationForbidden)]);
    }
}
