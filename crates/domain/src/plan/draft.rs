//! Row drafts: each key's state while a batch's items are applied in order.

use std::collections::HashSet;
use std::collections::hash_map::Entry;

use foldhash::fast::RandomState;

use super::{KeyMap, Snapshot};
use crate::ids::TaskId;
use crate::task::{StoredTask, TaskCommand, TaskFields, TaskKey};

/// A parent as resolved while items are applied, before rows get indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ParentTarget<'a> {
    None,
    Stored(TaskId),
    NewKey(&'a TaskKey),
}

/// One key's state while the batch is applied in order.
pub(super) struct RowDraft<'a> {
    pub(super) existing: Option<TaskId>,
    pub(super) stored_parent: Option<TaskId>,
    pub(super) stored_fields: Option<TaskFields>,
    pub(super) fields: Option<TaskFields>,
    pub(super) parent: ParentTarget<'a>,
    /// Request positions of the items that set or cleared the parent, with the field they used.
    pub(super) parent_setters: Vec<(usize, &'static str)>,
}

/// The keys of a batch's items.
pub(super) type KeySet<'a> = HashSet<&'a TaskKey, RandomState>;

/// One draft per key, in the order the keys first appear in the batch.
pub(super) struct Drafts<'a> {
    pub(super) rows: Vec<(&'a TaskKey, RowDraft<'a>)>,
    /// Position of each key's draft in `rows`.
    pub(super) slots: KeyMap<&'a TaskKey, usize>,
}

impl<'a> Drafts<'a> {
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Self {
            rows: Vec::with_capacity(capacity),
            slots: KeyMap::with_capacity_and_hasher(capacity, RandomState::default()),
        }
    }

    /// Returns the position of the key's draft and whether the key is new to
    /// the batch. A new key's draft starts from its stored task, if any.
    pub(super) fn slot(&mut self, key: &'a TaskKey, snapshot: &Snapshot) -> (usize, bool) {
        match self.slots.entry(key) {
            Entry::Occupied(entry) => (*entry.get(), false),
            Entry::Vacant(entry) => {
                let slot = self.rows.len();
                entry.insert(slot);
                self.rows.push((key, new_draft(snapshot.tasks_by_key.get(key))));
                (slot, true)
            }
        }
    }
}

fn new_draft<'a>(stored: Option<&StoredTask>) -> RowDraft<'a> {
    RowDraft {
        existing: stored.map(|task| task.id),
        stored_parent: stored.and_then(|task| task.parent_id),
        stored_fields: stored.map(|task| task.fields.clone()),
        fields: stored.map(|task| task.fields.clone()),
        parent: stored.and_then(|task| task.parent_id).map_or(ParentTarget::None, ParentTarget::Stored),
        parent_setters: Vec::new(),
    }
}

/// Merges one item's fields onto the key's current state: absent keeps, `null` clears.
pub(super) fn apply_fields(draft: &mut RowDraft<'_>, command: &TaskCommand) {
    let current = draft.fields.take();
    draft.fields = Some(TaskFields {
        name: command.name.clone(),
        created_at: command.created_at,
        url: command.url.apply(current.as_ref().and_then(|fields| fields.url.clone())),
        owner_id: command.owner_id.apply(current.as_ref().and_then(|fields| fields.owner_id.clone())),
        owner_name: command.owner_name.apply(current.as_ref().and_then(|fields| fields.owner_name.clone())),
        source_updated_at: command.source_updated_at.apply(current.and_then(|fields| fields.source_updated_at)),
    });
}
