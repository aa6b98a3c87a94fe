//! Planning of a batch upsert: the rules that need stored data.
//!
//! Given validated commands and a [`Snapshot`] of the stored data, the
//! planner decides scope and existence (404), parent rules (400), the
//! merge of repeated keys and the rows to write, without doing any IO.

use std::collections::{BTreeSet, HashMap};

use foldhash::fast::RandomState;

use crate::auth::Scope;
use crate::error::{DetailCode, ItemError, Rejection};
use crate::ids::{OrganizationId, ProjectId, TaskId};
use crate::outcome::{FieldName, Warning};
use crate::task::{Patch, StoredTask, TaskAppId, TaskCommand, TaskFields, TaskKey};
use crate::timestamp::Timestamp;
use crate::validate::TASKS_FIELD;

mod cycle;
mod draft;
mod outcome;

use draft::{Drafts, KeySet, ParentTarget, RowDraft, apply_fields};

#[cfg(test)]
mod tests;

/// References of a batch, for storage to look up in one go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchRefs {
    pub project_ids: BTreeSet<ProjectId>,
    /// Keys of the items and of parents named by `parent_task_app_id`.
    pub keys: BTreeSet<TaskKey>,
    /// Parents named by `parent_task_id`.
    pub parent_ids: BTreeSet<TaskId>,
}

/// The hash map of planning. Its keys come from clients, so it keeps a
/// seeded hash, but a faster one than the standard library's SipHash, which
/// showed in profiles of large batches.
pub type KeyMap<K, V> = HashMap<K, V, RandomState>;

/// A stored task's place in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskNode {
    pub id: TaskId,
    pub project_id: ProjectId,
    pub organization_id: OrganizationId,
    pub parent_id: Option<TaskId>,
}

/// Stored data about a batch's references, read inside the write transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Organization of every referenced project that exists.
    pub projects: KeyMap<ProjectId, OrganizationId>,
    /// Stored tasks under the referenced keys.
    pub tasks_by_key: KeyMap<TaskKey, StoredTask>,
    /// Tree nodes of the parents named by id, and the whole ancestor chains of
    /// [`BatchPlanner::ancestor_seeds`].
    pub nodes: KeyMap<TaskId, TaskNode>,
}

/// The parent a planned row ends up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlannedParent {
    None,
    /// A task that exists before the write.
    Stored(TaskId),
    /// A row of this plan that the write creates (index into [`WritePlan::rows`]).
    InBatch(usize),
}

/// The final state of one key after every item of the batch is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRow {
    pub key: TaskKey,
    /// Id of the stored task under this key when the snapshot was read.
    pub existing_id: Option<TaskId>,
    pub fields: TaskFields,
    pub parent: PlannedParent,
    /// True when the row exists and its final state equals the stored one:
    /// storage writes nothing for it, so `updated_at` stays as it is.
    pub unchanged: bool,
}

/// Whether an item is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemDecision {
    Apply,
    /// The key's `source_updated_at` is newer than the item's: the item is left out.
    SkipStale,
}

/// Mapping of one request item onto the planned rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedItem {
    /// Position of the item in the request.
    pub index: usize,
    /// Index into [`WritePlan::rows`].
    pub row: usize,
    /// True for the first item of its key: its action is whatever the write did to the row.
    /// Later items of the same key are updates of what the earlier ones wrote.
    pub first_write: bool,
    pub decision: ItemDecision,
    /// Stored fields whose value this item changed, in API order.
    pub changed_fields: Vec<FieldName>,
    /// `created_at` of the key once this item is applied (or as stored, when skipped).
    pub created_at: Timestamp,
    pub warnings: Vec<Warning>,
}

/// The writes a batch needs, rows sorted by key so concurrent writers lock in one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritePlan {
    pub now: Timestamp,
    pub rows: Vec<PlannedRow>,
    pub items: Vec<PlannedItem>,
}

/// Plans one batch for one caller. Build it once and call [`Self::plan`] inside the transaction.
#[derive(Debug, Clone)]
pub struct BatchPlanner {
    commands: Vec<(usize, TaskCommand)>,
    input_errors: Vec<ItemError>,
    scope: Scope,
    now: Timestamp,
}

impl BatchPlanner {
    /// Builds a planner from the items that passed input rules and the errors of the others.
    pub fn new(
        commands: Vec<(usize, TaskCommand)>,
        input_errors: Vec<ItemError>,
        scope: Scope,
        now: Timestamp,
    ) -> Self {
        Self { commands, input_errors, scope, now }
    }

    /// Returns everything storage must look up for [`Self::plan`].
    pub fn refs(&self) -> BatchRefs {
        let mut refs = BatchRefs::default();
        for (_, command) in &self.commands {
            refs.project_ids.insert(command.key.project_id);
            refs.keys.insert(command.key.clone());
            if let Patch::Set(parent_id) = command.parent_id {
                refs.parent_ids.insert(parent_id);
            }
            if let Patch::Set(app_id) = &command.parent_app_id {
                refs.keys.insert(TaskKey { project_id: command.key.project_id, app_id: app_id.clone() });
            }
        }
        refs
    }

    /// Returns the stored tasks whose ancestor chains the cycle check needs:
    /// the new parents of keys whose parent changes. Storage loads them after
    /// the keyed tasks, so an unchanged tree costs no walk, however deep it is.
    ///
    /// A cycle after the write must pass through a stored task whose parent
    /// changes: new tasks are pointed at only by rows of this batch, so a cycle
    /// of new tasks alone is seen in memory. A batch that moves no stored task
    /// therefore needs no chain at all.
    pub fn ancestor_seeds(&self, snapshot: &Snapshot) -> BTreeSet<TaskId> {
        let mut seeds = BTreeSet::new();
        if !self.moves_stored_task(snapshot) {
            return seeds;
        }
        for (_, command) in &self.commands {
            let stored_parent = snapshot.tasks_by_key.get(&command.key).and_then(|task| task.parent_id);
            let by_key = match &command.parent_app_id {
                Patch::Set(app_id) => {
                    let key = TaskKey { project_id: command.key.project_id, app_id: app_id.clone() };
                    snapshot.tasks_by_key.get(&key).map(|task| task.id)
                }
                Patch::Keep | Patch::Clear => None,
            };
            let by_id = match command.parent_id {
                Patch::Set(id) => Some(id),
                Patch::Keep | Patch::Clear => None,
            };
            seeds.extend([by_id, by_key].into_iter().flatten().filter(|target| Some(*target) != stored_parent));
        }
        seeds
    }

    /// Tells whether an item gives a stored task a parent other than its stored one.
    ///
    /// A batch that moves no stored task cannot close a cycle through stored
    /// tasks (see [`Self::ancestor_seeds`]), so storage may run it beside other
    /// such batches.
    pub fn moves_stored_task(&self, snapshot: &Snapshot) -> bool {
        self.commands.iter().any(|(_, command)| {
            let Some(stored) = snapshot.tasks_by_key.get(&command.key) else { return false };
            let by_id = matches!(command.parent_id, Patch::Set(id) if Some(id) != stored.parent_id);
            let by_key = match &command.parent_app_id {
                Patch::Set(app_id) => {
                    let key = TaskKey { project_id: command.key.project_id, app_id: app_id.clone() };
                    // A key not stored yet is a task this batch creates: always a move.
                    snapshot.tasks_by_key.get(&key).is_none_or(|parent| Some(parent.id) != stored.parent_id)
                }
                Patch::Keep | Patch::Clear => false,
            };
            by_id || by_key
        })
    }

    /// Decides the write plan from the stored data.
    ///
    /// # Errors
    /// Returns a [`Rejection`] listing every failing item, input errors included,
    /// when any item breaks a rule: then nothing may be written.
    pub fn plan(&self, snapshot: &Snapshot) -> Result<WritePlan, Rejection> {
        let mut errors = self.input_errors.clone();
        let accepted: Vec<&(usize, TaskCommand)> = self
            .commands
            .iter()
            .filter(|(index, command)| self.check_project(*index, command, snapshot, &mut errors))
            .collect();
        let batch_keys: KeySet<'_> = accepted.iter().map(|(_, command)| &command.key).collect();

        let mut drafts = Drafts::with_capacity(accepted.len());
        let mut items = Vec::with_capacity(accepted.len());
        for (index, command) in accepted {
            let (slot, first_write) = drafts.slot(&command.key, snapshot);
            let draft = &mut drafts.rows[slot].1;
            let mut item = outcome::ItemDraft {
                index: *index,
                first_write,
                decision: ItemDecision::Apply,
                changed_fields: Vec::new(),
                warnings: outcome::item_warnings(command, self.now),
            };
            if outcome::is_stale(draft, command) {
                item.decision = ItemDecision::SkipStale;
            } else {
                let before = (draft.fields.clone(), draft.parent);
                apply_fields(draft, command);
                match self.resolve_parent(*index, command, snapshot, &batch_keys) {
                    Ok(Some(target)) => {
                        draft.parent = target;
                        draft.parent_setters.push((*index, parent_field(command)));
                    }
                    Ok(None) => {}
                    Err(error) => errors.push(error),
                }
                item.changed_fields = outcome::changed_fields(before.0.as_ref(), &before.1, draft);
            }
            let created_at = draft.fields.as_ref().map_or(command.created_at, |fields| fields.created_at);
            items.push((slot, item, created_at));
        }

        let (checks, plan) = self.index_rows(drafts, items);
        errors.extend(cycle::find_cycles(&plan.rows, &checks.changed, &checks.setters, snapshot));
        if errors.is_empty() { Ok(plan) } else { Err(Rejection::new(errors)) }
    }

    /// Checks that the item's project exists and is in scope; records why not.
    fn check_project(
        &self,
        index: usize,
        command: &TaskCommand,
        snapshot: &Snapshot,
        errors: &mut Vec<ItemError>,
    ) -> bool {
        let project_id = command.key.project_id;
        // Another tenant's project reads exactly like a missing one, so a
        // token cannot learn which ids exist outside its scope.
        if snapshot.projects.get(&project_id).is_some_and(|organization| self.scope.contains(*organization)) {
            return true;
        }
        let message = format!(
            "project {project_id} was not found among this token's organizations; create it first or check the id and the token"
        );
        errors.push(ItemError::at(TASKS_FIELD, index, "project_id", DetailCode::ProjectNotFound, message));
        false
    }

    /// Resolves the item's parent fields. `Ok(None)` keeps the current parent.
    fn resolve_parent<'a>(
        &self,
        index: usize,
        command: &TaskCommand,
        snapshot: &Snapshot,
        batch_keys: &KeySet<'a>,
    ) -> Result<Option<ParentTarget<'a>>, ItemError> {
        let by_id = match command.parent_id {
            Patch::Keep => None,
            Patch::Clear => Some(ParentTarget::None),
            Patch::Set(id) => Some(self.resolve_parent_id(index, command, id, snapshot)?),
        };
        let by_key = match &command.parent_app_id {
            Patch::Keep => None,
            Patch::Clear => Some(ParentTarget::None),
            Patch::Set(app_id) => Some(resolve_parent_key(index, command, app_id, snapshot, batch_keys)?),
        };
        match (by_id, by_key) {
            (Some(first), Some(second)) if first != second => Err(ItemError::at(
                TASKS_FIELD,
                index,
                "parent_task_app_id",
                DetailCode::ParentConflict,
                "parent_task_id and parent_task_app_id name different parents; send only one of them",
            )),
            (by_id, by_key) => Ok(by_id.or(by_key)),
        }
    }

    fn resolve_parent_id(
        &self,
        index: usize,
        command: &TaskCommand,
        id: TaskId,
        snapshot: &Snapshot,
    ) -> Result<ParentTarget<'static>, ItemError> {
        let error = |code, message: String| ItemError::at(TASKS_FIELD, index, "parent_task_id", code, message);
        // A parent outside the token's scope reads as missing, so that ids of other tenants leak nothing.
        let node =
            snapshot.nodes.get(&id).filter(|node| self.scope.contains(node.organization_id)).ok_or_else(|| {
                error(
                    DetailCode::ParentNotFound,
                    format!("parent task {id} was not found; send the Leanmote id of an existing task"),
                )
            })?;
        if node.project_id != command.key.project_id {
            return Err(error(
                DetailCode::ParentInOtherProject,
                format!(
                    "parent task {id} is in project {}, but this task is in project {}; a parent must be in the same project",
                    node.project_id, command.key.project_id
                ),
            ));
        }
        Ok(ParentTarget::Stored(id))
    }

    /// Gives rows their sorted indexes and maps items and parents onto them.
    fn index_rows(
        &self,
        drafts: Drafts<'_>,
        items: Vec<(usize, outcome::ItemDraft, Timestamp)>,
    ) -> (RowChecks, WritePlan) {
        let Drafts { rows: draft_rows, slots } = drafts;
        // Rows are sorted by key. Drafts are large, so their slots are sorted, not the drafts.
        let mut order: Vec<usize> = (0..draft_rows.len()).collect();
        order.sort_unstable_by_key(|slot| draft_rows[*slot].0);
        let mut row_of_slot = vec![0; order.len()];
        for (row, slot) in order.iter().enumerate() {
            row_of_slot[*slot] = row;
        }
        let mut draft_rows: Vec<Option<(&TaskKey, RowDraft<'_>)>> = draft_rows.into_iter().map(Some).collect();
        let mut checks =
            RowChecks { setters: Vec::with_capacity(order.len()), changed: Vec::with_capacity(order.len()) };
        let rows = order
            .iter()
            .map(|slot| {
                let (key, draft) = draft_rows[*slot].take().expect("each slot is taken once");
                checks.setters.push(draft.parent_setters);
                let parent = match draft.parent {
                    ParentTarget::None => PlannedParent::None,
                    ParentTarget::Stored(id) => PlannedParent::Stored(id),
                    ParentTarget::NewKey(parent_key) => PlannedParent::InBatch(row_of_slot[slots[parent_key]]),
                };
                checks.changed.push(match parent {
                    PlannedParent::None => draft.stored_parent.is_some(),
                    PlannedParent::Stored(id) => draft.stored_parent != Some(id),
                    PlannedParent::InBatch(_) => true,
                });
                let fields = draft.fields.expect("every draft gets the fields of at least one item");
                let unchanged = draft.existing.is_some()
                    && draft.stored_fields.as_ref() == Some(&fields)
                    && parent == draft.stored_parent.map_or(PlannedParent::None, PlannedParent::Stored);
                PlannedRow { key: key.clone(), existing_id: draft.existing, fields, parent, unchanged }
            })
            .collect();
        let items = items
            .into_iter()
            .map(|(slot, item, created_at)| PlannedItem {
                index: item.index,
                row: row_of_slot[slot],
                first_write: item.first_write,
                decision: item.decision,
                changed_fields: item.changed_fields,
                created_at,
                warnings: item.warnings,
            })
            .collect();
        (checks, WritePlan { now: self.now, rows, items })
    }

    /// Returns the keys the items write, without the parents they only name.
    pub fn item_keys(&self) -> BTreeSet<TaskKey> {
        self.commands.iter().map(|(_, command)| command.key.clone()).collect()
    }
}

/// Per-row facts for the cycle check, in plan row order.
struct RowChecks {
    /// Items that set or cleared each row's parent, with the field they used.
    setters: Vec<Vec<(usize, &'static str)>>,
    /// Whether each row's parent differs from the stored one.
    changed: Vec<bool>,
}

/// Names the parent field an item used, for error paths.
fn parent_field(command: &TaskCommand) -> &'static str {
    if command.parent_id == Patch::Keep { "parent_task_app_id" } else { "parent_task_id" }
}

fn resolve_parent_key<'a>(
    index: usize,
    command: &TaskCommand,
    app_id: &TaskAppId,
    snapshot: &Snapshot,
    batch_keys: &KeySet<'a>,
) -> Result<ParentTarget<'a>, ItemError> {
    let key = TaskKey { project_id: command.key.project_id, app_id: app_id.clone() };
    if let Some(stored) = snapshot.tasks_by_key.get(&key) {
        return Ok(ParentTarget::Stored(stored.id));
    }
    if let Some(batch_key) = batch_keys.get(&key) {
        return Ok(ParentTarget::NewKey(batch_key));
    }
    Err(ItemError::at(
        TASKS_FIELD,
        index,
        "parent_task_app_id",
        DetailCode::ParentNotFound,
        format!(
            "no task with task_app_id {:?} exists in project {} or in this batch; a parent must be in the same project as its child, stored already or sent in the same batch",
            app_id.as_str(),
            command.key.project_id
        ),
    ))
}
