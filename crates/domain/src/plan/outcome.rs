//! Per-item rules of a batch: the stale check, the changed fields and the
//! warnings.

use super::{ItemDecision, ParentTarget, RowDraft};
use crate::outcome::{FieldName, Warning, WarningCode};
use crate::task::{Patch, TaskCommand, TaskFields};
use crate::timestamp::Timestamp;

/// How far ahead of the server's clock a `created_at` may be before it draws a warning.
const FUTURE_TOLERANCE_MINUTES: i64 = 5;

/// One item's outcome while the batch is applied, before rows get indexes.
pub(super) struct ItemDraft {
    pub(super) index: usize,
    pub(super) first_write: bool,
    pub(super) decision: ItemDecision,
    pub(super) changed_fields: Vec<FieldName>,
    pub(super) warnings: Vec<Warning>,
}

/// Adds the remarks that need the time of the request to those of the input rules.
pub(super) fn item_warnings(command: &TaskCommand, now: Timestamp) -> Vec<Warning> {
    let mut warnings = command.warnings.clone();
    if command.created_at.as_naive() > now.as_naive() + chrono::Duration::minutes(FUTURE_TOLERANCE_MINUTES) {
        let message = format!(
            "created_at {} is later than the server's clock ({now} UTC); send when the task was created, in UTC",
            command.created_at
        );
        warnings.push(Warning::new(WarningCode::CreatedAtInFuture, message));
    }
    warnings
}

/// True when the key already has a `source_updated_at` newer than the item's.
pub(super) fn is_stale(draft: &RowDraft<'_>, command: &TaskCommand) -> bool {
    let current = draft.fields.as_ref().and_then(|fields| fields.source_updated_at);
    matches!((current, &command.source_updated_at), (Some(current), Patch::Set(sent)) if current > *sent)
}

/// Names the stored fields that differ between the state before an item and after it.
/// A new task (no state before) changes every field it stores a value in.
pub(super) fn changed_fields(
    before: Option<&TaskFields>,
    parent_before: &ParentTarget<'_>,
    after: &RowDraft<'_>,
) -> Vec<FieldName> {
    let Some(fields) = after.fields.as_ref() else { return Vec::new() };
    let differs = |name: FieldName| match before {
        None => match name {
            FieldName::TaskName | FieldName::CreatedAt => true,
            FieldName::TaskUrl => fields.url.is_some(),
            FieldName::OwnerId => fields.owner_id.is_some(),
            FieldName::OwnerName => fields.owner_name.is_some(),
            FieldName::ParentTaskId => after.parent != ParentTarget::None,
            FieldName::SourceUpdatedAt => fields.source_updated_at.is_some(),
        },
        Some(old) => match name {
            FieldName::TaskName => old.name != fields.name,
            FieldName::TaskUrl => old.url != fields.url,
            FieldName::OwnerId => old.owner_id != fields.owner_id,
            FieldName::OwnerName => old.owner_name != fields.owner_name,
            FieldName::ParentTaskId => *parent_before != after.parent,
            FieldName::CreatedAt => old.created_at != fields.created_at,
            FieldName::SourceUpdatedAt => old.source_updated_at != fields.source_updated_at,
        },
    };
    FieldName::ALL.into_iter().filter(|name| differs(*name)).collect()
}
