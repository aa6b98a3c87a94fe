//! Cycle check over the tree as it would be after the write.
//!
//! The stored tree has no cycle, so a cycle after the write goes through a
//! planned row whose parent changes. Walking up from each such row, with
//! planned rows overriding stored nodes, finds every cycle. Nodes already
//! walked are remembered, so the whole check visits each node once.

use super::{KeyMap, PlannedParent, PlannedRow, Snapshot};
use crate::error::{DetailCode, ItemError};
use crate::ids::TaskId;
use crate::validate::TASKS_FIELD;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Node {
    Row(usize),
    Stored(TaskId),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// On the walk in progress.
    OnPath,
    /// Known to lead to a root, or to a cycle already reported.
    Done,
}

/// Returns one error per item that set the parent of a row lying on a cycle.
///
/// `changed[row]` is true when the row's parent differs from the stored one
/// (every new row with a parent counts as changed).
pub(super) fn find_cycles(
    rows: &[PlannedRow],
    changed: &[bool],
    setters: &[Vec<(usize, &'static str)>],
    snapshot: &Snapshot,
) -> Vec<ItemError> {
    let row_of_id: KeyMap<TaskId, usize> =
        rows.iter().enumerate().filter_map(|(row, planned)| planned.existing_id.map(|id| (id, row))).collect();
    let node_of = |id: TaskId| row_of_id.get(&id).map_or(Node::Stored(id), |row| Node::Row(*row));
    let parent_of = |node: Node| match node {
        Node::Row(row) => match rows[row].parent {
            PlannedParent::None => None,
            PlannedParent::Stored(id) => Some(node_of(id)),
            PlannedParent::InBatch(parent_row) => Some(Node::Row(parent_row)),
        },
        Node::Stored(id) => snapshot.nodes.get(&id).and_then(|stored| stored.parent_id).map(node_of),
    };

    let mut marks: KeyMap<Node, Mark> = KeyMap::default();
    let mut errors = Vec::new();
    for start in (0..rows.len()).filter(|row| changed[*row]) {
        let mut path = Vec::new();
        let mut current = Some(Node::Row(start));
        while let Some(node) = current {
            match marks.get(&node) {
                Some(Mark::Done) => break,
                Some(Mark::OnPath) => {
                    // The path from `node` back to itself is a cycle: report every row on it.
                    let cycle_start = path.iter().position(|step| *step == node).unwrap_or(0);
                    for step in &path[cycle_start..] {
                        if let Node::Row(row) = step {
                            errors.extend(
                                setters[*row].iter().map(|(index, field)| cycle_error(*index, field, &rows[*row])),
                            );
                        }
                    }
                    break;
                }
                None => {
                    marks.insert(node, Mark::OnPath);
                    path.push(node);
                    current = parent_of(node);
                }
            }
        }
        for node in path {
            marks.insert(node, Mark::Done);
        }
    }
    errors.sort_by_key(|error| error.index);
    errors
}

fn cycle_error(index: usize, field: &str, row: &PlannedRow) -> ItemError {
    ItemError::at(
        TASKS_FIELD,
        index,
        field,
        DetailCode::ParentCycle,
        format!(
            "this parent would make task {:?} its own ancestor; a task tree may not contain cycles",
            row.key.app_id.as_str()
        ),
    )
}
