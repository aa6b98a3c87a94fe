//! Projects (boards): owned by an organization, keyed by their external id within it.

use crate::ids::{OrganizationId, ProjectId};
use crate::organization::DisplayName;
use crate::text::{TextRule, text_type};
use crate::timestamp::Timestamp;

text_type!(
    /// External id of a project in the client's tool, unique within an organization.
    ProjectAppId,
    TextRule { max_chars: 255, reject_blank: true, reject_controls: true }
);

/// A project to create or update, keyed by (organization, external id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProject {
    pub organization_id: OrganizationId,
    pub app_id: ProjectAppId,
    pub name: DisplayName,
    /// `None` keeps the stored value, or is [`DEFAULT_ACTIVE`] on create.
    pub active: Option<bool>,
    /// `None` keeps the stored value, or is `now` on create.
    pub created_at: Option<Timestamp>,
    /// Time of the write, for `inserted_at` and `updated_at`.
    pub now: Timestamp,
}

/// Whether a project created without `active` is active.
pub const DEFAULT_ACTIVE: bool = true;

/// A stored project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub organization_id: OrganizationId,
    pub app_id: String,
    pub name: String,
    pub active: bool,
    pub created_at: Timestamp,
    pub inserted_at: Timestamp,
    pub updated_at: Timestamp,
}
