//! Ordering so that every parent in the file is sent before its children.

use std::collections::HashMap;

use super::Item;

/// Returns the items with each parent present in the file placed before its
/// children, keeping the file's order otherwise.
pub(crate) fn parents_first(items: Vec<Item>) -> Vec<Item> {
    let position: HashMap<&str, usize> =
        items.iter().enumerate().map(|(index, item)| (item.task_app_id.as_str(), index)).collect();
    let mut placed = vec![false; items.len()];
    let mut order = Vec::with_capacity(items.len());
    for start in 0..items.len() {
        // Collect the chain of unplaced ancestors, then place it from the top down.
        let mut chain = Vec::new();
        let mut current = Some(start);
        while let Some(index) = current.filter(|index| !placed[*index] && !chain.contains(index)) {
            chain.push(index);
            current = items[index].parent_app_id.as_deref().and_then(|parent| position.get(parent).copied());
        }
        for index in chain.into_iter().rev() {
            placed[index] = true;
            order.push(index);
        }
    }
    let mut slots: Vec<Option<Item>> = items.into_iter().map(Some).collect();
    order.into_iter().filter_map(|index| slots[index].take()).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    fn item(id: &str, parent: Option<&str>) -> Item {
        Item {
            project_key: "P".into(),
            task_app_id: id.into(),
            parent_app_id: parent.map(str::to_owned),
            body: Map::new(),
        }
    }

    fn ids(items: &[Item]) -> Vec<&str> {
        items.iter().map(|item| item.task_app_id.as_str()).collect()
    }

    #[test]
    fn parents_move_before_children() {
        let ordered = parents_first(vec![item("C", Some("B")), item("X", None), item("B", Some("A")), item("A", None)]);
        assert_eq!(ids(&ordered), vec!["A", "B", "C", "X"]);
    }

    #[test]
    fn missing_parents_and_cycles_keep_every_item() {
        let ordered = parents_first(vec![item("A", Some("GONE")), item("B", Some("C")), item("C", Some("B"))]);
        assert_eq!(ids(&ordered), vec!["A", "C", "B"]);
    }
}
