//! Administration: organizations, projects and tokens created by an operator.

use std::sync::Arc;

use crate::auth::TokenSecret;
use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{OrganizationId, TokenId};
use crate::organization::{DisplayName, NewOrganization, Organization};
use crate::ports::{NewToken, OrganizationRepository, ProjectRepository, TokenRepository};
use crate::project::{NewProject, Project, ProjectAppId};
use crate::task::Action;
use crate::timestamp::Timestamp;

/// Failure of an administrative command.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("invalid {field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("organization {0} was not found")]
    OrganizationNotFound(OrganizationId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A project to create or update, as an operator gives it.
#[derive(Debug, Clone)]
pub struct ProjectSpec {
    pub organization_id: OrganizationId,
    pub app_id: String,
    pub name: String,
    pub active: bool,
    pub created_at: Option<Timestamp>,
}

/// The administrative use cases.
#[derive(Clone)]
pub struct Admin {
    pub organizations: Arc<dyn OrganizationRepository>,
    pub projects: Arc<dyn ProjectRepository>,
    pub tokens: Arc<dyn TokenRepository>,
    pub clock: Arc<dyn Clock>,
}

impl Admin {
    /// Creates an organization.
    ///
    /// # Errors
    /// Returns [`AdminError::Invalid`] for a blank or too long name.
    pub async fn create_organization(&self, name: &str) -> Result<Organization, AdminError> {
        let name = DisplayName::parse(name).map_err(|violation| invalid("name", violation.message))?;
        let created_at = self.clock.now();
        Ok(self.organizations.create(NewOrganization { name, created_at }).await?)
    }

    /// Creates a project or updates the one with the same external id in the organization.
    ///
    /// # Errors
    /// Returns [`AdminError`] for invalid fields or an unknown organization.
    pub async fn upsert_project(&self, spec: ProjectSpec) -> Result<(Project, Action), AdminError> {
        let app_id =
            ProjectAppId::parse(spec.app_id).map_err(|violation| invalid("project_app_id", violation.message))?;
        let name = DisplayName::parse(spec.name).map_err(|violation| invalid("name", violation.message))?;
        self.require_organization(spec.organization_id).await?;
        let now = self.clock.now();
        let project = NewProject {
            organization_id: spec.organization_id,
            app_id,
            name,
            active: Some(spec.active),
            created_at: spec.created_at,
            now,
        };
        Ok(self.projects.upsert(project).await?)
    }

    /// Creates a token for `label` scoped to `organizations`, from 32 random bytes.
    /// The returned secret is the only copy: storage keeps its hash.
    ///
    /// # Errors
    /// Returns [`AdminError`] for a blank label, no organization or an unknown one.
    pub async fn create_token(
        &self,
        label: &str,
        organizations: Vec<OrganizationId>,
        expires_at: Option<Timestamp>,
        random_bytes: [u8; 32],
    ) -> Result<(TokenId, TokenSecret), AdminError> {
        let label = DisplayName::parse(label).map_err(|violation| invalid("label", violation.message))?;
        if organizations.is_empty() {
            return Err(invalid("organizations", "name at least one organization".to_owned()));
        }
        for organization in &organizations {
            self.require_organization(*organization).await?;
        }
        let secret = TokenSecret::from_random_bytes(random_bytes);
        let token = NewToken {
            label: label.as_str().to_owned(),
            hash: secret.hash(),
            organizations,
            created_at: self.clock.now(),
            expires_at,
        };
        let id = self.tokens.create(token).await?;
        Ok((id, secret))
    }

    /// Revokes a token at once. Returns false when no such token exists.
    ///
    /// # Errors
    /// Returns [`AdminError::Store`] when storage fails.
    pub async fn revoke_token(&self, id: TokenId) -> Result<bool, AdminError> {
        Ok(self.tokens.revoke(id, self.clock.now()).await?)
    }

    async fn require_organization(&self, id: OrganizationId) -> Result<(), AdminError> {
        match self.organizations.find(id).await? {
            Some(_) => Ok(()),
            None => Err(AdminError::OrganizationNotFound(id)),
        }
    }
}

fn invalid(field: &'static str, message: String) -> AdminError {
    AdminError::Invalid { field, message }
}
