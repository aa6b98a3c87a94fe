//! Which queued batches join a group.

use domain::ProjectId;
use domain::auth::Scope;
use domain::task::TaskAppId;

use super::*;

fn key(app_id: &str) -> TaskKey {
    TaskKey { project_id: ProjectId(1), app_id: TaskAppId::parse(app_id).unwrap() }
}

/// A batch that writes `writes` and names `parents` as parents. Grouping
/// reads only the keys, so the planner contains no command.
fn batch(writes: &[&str], parents: &[&str]) -> Batch {
    let now = domain::Timestamp::parse("2026-01-01 12:00:00").unwrap();
    let planner = Arc::new(BatchPlanner::new(Vec::new(), Vec::new(), Scope::default(), now));
    let item_keys: BTreeSet<TaskKey> = writes.iter().map(|app_id| key(app_id)).collect();
    let keys = item_keys.iter().cloned().chain(parents.iter().map(|app_id| key(app_id))).collect();
    let refs = BatchRefs { keys, ..BatchRefs::default() };
    Batch { planner, receipt: None, refs, item_keys }
}

/// Queues the batches and returns the first ticket, with the positions of
/// the batches that the next group takes.
fn first_group(batches: Vec<Batch>) -> (Arc<WriteQueue>, Vec<Ticket>, Vec<usize>) {
    let queue = Arc::new(WriteQueue::default());
    let tickets: Vec<Ticket> = batches.into_iter().map(|batch| queue.push(batch).0).collect();
    let group = queue.take_group(&tickets[0]);
    let positions =
        group.iter().map(|queued| tickets.iter().position(|ticket| ticket.id == queued.id).unwrap()).collect();
    (queue, tickets, positions)
}

#[test]
fn disjoint_batches_share_a_group() {
    let (_, _, group) = first_group(vec![batch(&["A"], &[]), batch(&["B"], &["P"]), batch(&["C"], &["P"])]);
    assert_eq!(group, [0, 1, 2], "naming the same parent is no overlap");
}

#[test]
fn batches_on_one_key_never_share_a_group() {
    let (queue, tickets, group) = first_group(vec![batch(&["A"], &[]), batch(&["A"], &[]), batch(&["B"], &[])]);
    assert_eq!(group, [0, 2]);
    assert_eq!(queue.take_group(&tickets[1]).len(), 1, "the skipped batch leads the next group");
}

#[test]
fn parent_written_by_another_batch_splits_the_group() {
    let (_, _, group) = first_group(vec![batch(&["P"], &[]), batch(&["C"], &["P"])]);
    assert_eq!(group, [0]);
    let (_, _, group) = first_group(vec![batch(&["C"], &["P"]), batch(&["P"], &[])]);
    assert_eq!(group, [0], "the other way round too");
}

#[test]
fn batch_behind_a_skipped_one_keeps_its_place() {
    // B waits because it writes A's key; C writes B's key, so it must not overtake B.
    let (_, _, group) = first_group(vec![batch(&["K"], &[]), batch(&["K", "L"], &[]), batch(&["L"], &[])]);
    assert_eq!(group, [0]);
}

#[test]
fn group_stops_at_its_item_limit() {
    let keys: Vec<String> = (0..MAX_GROUP_ITEMS).map(|index| format!("K{index}")).collect();
    let full: Vec<&str> = keys.iter().map(String::as_str).collect();
    let (_, _, group) =
        first_group(vec![batch(&full[..MAX_GROUP_ITEMS - 1], &[]), batch(&["X", "Y"], &[]), batch(&["Z"], &[])]);
    assert_eq!(group, [0, 2], "the two-item batch would pass the limit; the one-item batch fits");
}

#[test]
fn group_needs_the_ticket_still_queued() {
    let (queue, tickets, group) = first_group(vec![batch(&["A"], &[]), batch(&["A"], &[])]);
    assert_eq!(group, [0]);
    assert!(queue.take_group(&tickets[0]).is_empty(), "a ticket whose batch was taken leads no group");
}

#[test]
fn dropped_ticket_leaves_the_queue() {
    let queue = Arc::new(WriteQueue::default());
    let (first, _) = queue.push(batch(&["A"], &[]));
    let (second, _) = queue.push(batch(&["B"], &[]));
    drop(first);
    let group = queue.take_group(&second);
    assert_eq!(group.len(), 1, "only the batch whose request still waits is written");
    assert_eq!(group[0].id, second.id);
    assert!(!second.withdraw(), "a taken batch cannot be withdrawn");
}

mod commit_log {
    use super::key;
    use crate::group_commit::read_ahead::CommitLog;

    #[test]
    fn no_commit_leaves_keys_untouched() {
        let log = CommitLog::default();
        assert!(log.untouched_since(log.generation(), [&key("A")]));
    }

    #[test]
    fn commit_touches_only_its_keys() {
        let log = CommitLog::default();
        let before = log.generation();
        log.record([&key("A"), &key("B")], false);
        assert!(!log.untouched_since(before, [&key("B")]));
        assert!(log.untouched_since(before, [&key("C")]));
        assert!(log.untouched_since(log.generation(), [&key("A")]), "a read after the commit sees it");
    }

    #[test]
    fn move_touches_every_key() {
        let log = CommitLog::default();
        let before = log.generation();
        log.record([&key("A")], true);
        assert!(!log.untouched_since(before, [&key("Z")]));
    }

    #[test]
    fn commits_past_the_log_count_as_touching() {
        let log = CommitLog::default();
        let before = log.generation();
        for index in 0..100 {
            log.record([&key(&format!("K{index}"))], false);
        }
        assert!(!log.untouched_since(before, [&key("UNRELATED")]), "the log no longer holds every commit since");
        let recent = log.generation() - 3;
        assert!(log.untouched_since(recent, [&key("UNRELATED")]));
        assert!(!log.untouched_since(recent, [&key("K98")]));
    }
}
