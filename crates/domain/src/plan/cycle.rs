//! Cycle check over the tree as it would be after the write.
//!
//! The stored tree has no cycle, so a cycle after the write goes through at
//! least one planned row. Walking up from each row that has a parent, with
//! planned rows overriding stored nodes, finds every such cycle.

use std::collections::HashMap;

use super::{PlannedParent, PlannedRow, Snapshot};
use crate::error::{DetailCode, ItemError};
use crate::ids::TaskId;
use crate::validate::TASKS_FIELD;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Node {
    Row(usize),
    Stored(TaskId),
}

/// Returns one error per item that set the parent of a row lying on a cycle.
pub(super) fn find_cycles(
    rows: &[PlannedRow],
    setters: &[Vec<(usize, &'static str)>],
    snapshot: &Snapshot,
) -> Vec<ItemError> {
    let row_of_id: HashMap<TaskId, usize> =
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
    // A walk longer than every known node has looped, whether or not through its start.
    let max_steps = rows.len() + snapshot.nodes.len() + 1;

    let mut errors = Vec::new();
    for (row, planned) in rows.iter().enumerate() {
        let mut current = parent_of(Node::Row(row));
        let mut steps = 0;
        while let Some(node) = current {
            if node == Node::Row(row) {
                errors.extend(setters[row].iter().map(|(index, field)| cycle_error(*index, field, planned)));
                break;
            }
            steps += 1;
            if steps > max_steps {
                break;
            }
            current = parent_of(node);
        }
    }
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
