//! Organizations: the tenants that own projects and that tokens are scoped to.

use crate::ids::OrganizationId;
use crate::text::{TextRule, TextViolation};
use crate::timestamp::Timestamp;

/// Display name of an organization or a project: not blank, at most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    const RULE: TextRule = TextRule { max_chars: 255, reject_blank: true, reject_controls: false };

    /// Checks the rule and keeps the name as sent.
    ///
    /// # Errors
    /// Returns the rule that `value` breaks.
    pub fn parse(value: impl Into<String>) -> Result<Self, TextViolation> {
        let value = value.into();
        Self::RULE.check(&value)?;
        Ok(Self(value))
    }

    /// Returns the name as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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
