//! Organizations: the tenants that own projects and that tokens are scoped to.

use crate::ids::OrganizationId;
use crate::text::{TextRule, text_type};
use crate::timestamp::Timestamp;

text_type!(
    /// Display name of an organization or a project: not blank, at most 255 characters.
    DisplayName,
    TextRule { max_chars: 255, reject_blank: true, reject_controls: false }
);

/// An organization to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrganization {
    pub name: DisplayName,
    pub created_at: Timestamp,
}

/// A stored organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: String,
    pub created_at: Timestamp,
}
