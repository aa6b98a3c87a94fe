// Task queries, included into each backend module (see `backend/mod.rs`).

/// External ids per lookup: a batch's items and the parents they name by key
/// (at most 1000 each) fit in one. A group of batches may need several.
const KEY_CHUNK: usize = 2000;
/// Rows per `UPDATE ... CASE` statement that links parents created in the same batch.
const LINK_CHUNK_ROWS: usize = 500;

/// Loads, plans and writes one batch in a single write transaction. With a
/// receipt, the batch's answer is stored under its idempotency key in the
/// same transaction.
///
/// A transaction in [`WriteLock::Shared`] mode that finds the batch moving a
/// stored task, or finds that another writer created a key it planned to
/// create or changed a row it read, rolls back and starts over in
/// [`WriteLock::Exclusive`] mode.
///
/// Returns the batch's writes and whether it gave a stored task another parent.
pub(crate) fn apply_batch(
    conn: &mut Conn,
    batch: &crate::group_commit::Batch,
    insert_token: i64,
) -> Result<(AppliedBatch, bool), TxError> {
    let planner = &batch.planner;
    let mut lock = Conn::FIRST_WRITE_LOCK;
    loop {
        let outcome = conn.write_transaction(|conn| {
            let versioned = lock == WriteLock::Shared;
            let (mut snapshot, versions) = load_snapshot(conn, &batch.refs, versioned, Some(lock))?;
            let moves = planner.moves_stored_task(&snapshot);
            if lock == WriteLock::Shared && moves {
                return Err(TxError::NeedsExclusiveLock);
            }
            load_chains(conn, &mut snapshot, planner)?;

            let plan = planner.plan(&snapshot).map_err(TxError::Rejected)?;
            let rows = write_plans(conn, &[&plan], insert_token, &versions)?.pop().unwrap_or_default();
            let applied = AppliedBatch { plan, rows };
            if let Some(receipt) = &batch.receipt {
                store_receipt(conn, receipt, &applied)?;
            }
            Ok((applied, moves))
        });
        match outcome {
            Err(error @ (TxError::NeedsExclusiveLock | TxError::ConcurrentWrite)) if lock == WriteLock::Shared => {
                let reason =
                    if matches!(error, TxError::NeedsExclusiveLock) { "moves_task" } else { "concurrent_write" };
                tracing::debug!(reason, "batch starts over under the exclusive project lock");
                metrics::counter!("leanmote_exclusive_restarts_total", "reason" => reason).increment(1);
                lock = WriteLock::Exclusive;
            }
            other => return other,
        }
    }
}

/// Loads, plans and writes several batches in one write transaction, the
/// batches of a group commit (see `crate::group_commit`).
///
/// The group's batches write disjoint keys and name none of each other's
/// keys, so each is planned against one shared snapshot as if it ran alone.
/// A batch that moves a stored task is not written here: two such batches
/// could close a cycle that neither plan contains, so it comes back as
/// [`GroupOutcome::Alone`]. Any error fails the whole group; the caller then
/// runs each batch alone.
pub(crate) fn apply_group(
    conn: &mut Conn,
    batches: &[&crate::group_commit::Batch],
    insert_token: i64,
) -> Result<Vec<GroupOutcome>, TxError> {
    let refs = merged_refs(batches);
    let versioned = Conn::FIRST_WRITE_LOCK == WriteLock::Shared;
    conn.write_transaction(|conn| {
        let (snapshot, versions) = load_snapshot(conn, &refs, versioned, Some(Conn::FIRST_WRITE_LOCK))?;
        let mut outcomes: Vec<GroupOutcome> = batches
            .iter()
            .map(|batch| {
                if batch.planner.moves_stored_task(&snapshot) {
                    return GroupOutcome::Alone;
                }
                match batch.planner.plan(&snapshot) {
                    Ok(plan) => GroupOutcome::Applied(AppliedBatch { plan, rows: Vec::new() }),
                    Err(rejection) => GroupOutcome::Rejected(rejection),
                }
            })
            .collect();

        let plans: Vec<&WritePlan> = outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                GroupOutcome::Applied(applied) => Some(&applied.plan),
                GroupOutcome::Rejected(_) | GroupOutcome::Alone => None,
            })
            .collect();
        let mut written = write_plans(conn, &plans, insert_token, &versions)?.into_iter();
        for (batch, outcome) in batches.iter().zip(&mut outcomes) {
            if let GroupOutcome::Applied(applied) = outcome {
                applied.rows = written.next().unwrap_or_default();
                if let Some(receipt) = &batch.receipt {
                    store_receipt(conn, receipt, applied)?;
                }
            }
        }
        Ok(outcomes)
    })
}

/// Plans a group's batches on a snapshot read without locks, ahead of their
/// write (see `crate::group_commit::read_ahead`).
///
/// Returns `None` when a batch moves a stored task or breaks a rule: the
/// group is then planned again inside its write transaction, as usual.
pub(crate) fn plan_ahead(
    conn: &mut Conn,
    batches: &[&crate::group_commit::Batch],
) -> Result<Option<Vec<WritePlan>>, TxError> {
    let refs = merged_refs(batches);
    conn.transaction(|conn| {
        let (snapshot, _) = load_snapshot(conn, &refs, false, None)?;
        let mut plans = Vec::with_capacity(batches.len());
        for batch in batches {
            if batch.planner.moves_stored_task(&snapshot) {
                return Ok(None);
            }
            match batch.planner.plan(&snapshot) {
                Ok(plan) => plans.push(plan),
                Err(_) => return Ok(None),
            }
        }
        Ok(Some(plans))
    })
}

/// Writes plans made by [`plan_ahead`], one per batch, in one write transaction.
pub(crate) fn write_planned(
    conn: &mut Conn,
    batches: &[&crate::group_commit::Batch],
    plans: Vec<WritePlan>,
    insert_token: i64,
) -> Result<Vec<AppliedBatch>, TxError> {
    conn.write_transaction(|conn| {
        let plan_refs: Vec<&WritePlan> = plans.iter().collect();
        // Read-ahead runs on SQLite only, whose rows carry no version.
        let rows = write_plans(conn, &plan_refs, insert_token, &RowVersions::default())?;
        let applied: Vec<AppliedBatch> =
            plans.into_iter().zip(rows).map(|(plan, rows)| AppliedBatch { plan, rows }).collect();
        for (batch, applied) in batches.iter().zip(&applied) {
            if let Some(receipt) = &batch.receipt {
                store_receipt(conn, receipt, applied)?;
            }
        }
        Ok(applied)
    })
}

/// Returns the union of the batches' references.
fn merged_refs(batches: &[&crate::group_commit::Batch]) -> BatchRefs {
    let mut refs = BatchRefs::default();
    for batch in batches {
        refs.project_ids.extend(batch.refs.project_ids.iter().copied());
        refs.keys.extend(batch.refs.keys.iter().cloned());
        refs.parent_ids.extend(batch.refs.parent_ids.iter().copied());
    }
    refs
}

/// Stores a batch's response under its idempotency key.
fn store_receipt(conn: &mut Conn, receipt: &Receipt, applied: &AppliedBatch) -> Result<(), TxError> {
    let body = (receipt.encode)(&domain::ingest::processed_tasks(applied));
    store_response(conn, receipt, &body)
}

/// Plans a batch against the stored data in a read transaction, writing nothing.
pub(crate) fn plan_batch(conn: &mut Conn, planner: &BatchPlanner) -> Result<WritePlan, TxError> {
    conn.transaction(|conn| {
        let refs = planner.refs();
        let (mut snapshot, _) = load_snapshot(conn, &refs, false, None)?;
        load_chains(conn, &mut snapshot, planner)?;
        planner.plan(&snapshot).map_err(TxError::Rejected)
    })
}

/// Returns the task with this id.
pub(crate) fn find_task(conn: &mut Conn, id: TaskId) -> Result<Option<StoredTask>, TxError> {
    let row = tasks::table.find(id.get()).select(TaskRow::as_select()).first(conn).optional()?;
    Ok(row.map(TaskRow::into_domain).transpose()?)
}

/// Returns a page of a project's tasks matching the filter, in id order.
pub(crate) fn list_tasks(conn: &mut Conn, filter: &TaskFilter) -> Result<Vec<StoredTask>, TxError> {
    let mut query = tasks::table
        .filter(tasks::project_id.eq(filter.project_id.get()))
        .filter(tasks::id.gt(filter.after.map_or(0, TaskId::get)))
        .into_boxed();
    if let Some(since) = filter.updated_since {
        query = query.filter(tasks::updated_at.ge(since.as_naive()));
    }
    if let Some(parent) = filter.parent_id {
        query = query.filter(tasks::parent_task_id.eq(parent.get()));
    }
    if let Some(app_id) = &filter.app_id {
        query = query.filter(tasks::task_app_id.eq(app_id));
    }
    let query = query.order(tasks::id).limit(i64::from(filter.limit)).select(TaskRow::as_select());
    let rows: Vec<TaskRow> = conn.with_custom_plans(|conn| query.load(conn))?;
    Ok(rows.into_iter().map(TaskRow::into_domain).collect::<Result<_, _>>()?)
}

/// Reads what the planner needs about `refs` with a fixed number of
/// set-based queries: the projects, the tasks under the keys and the nodes
/// of the parents named by id. The ancestor chains come after, from
/// [`load_chains`], because which ones are needed shows only in this snapshot.
///
/// With a lock mode, the first statement locks the projects. With
/// `versioned`, each stored row comes with its version (PostgreSQL only),
/// so that the write can tell whether another writer changed it since.
/// Parents that are only named get one too, because one query costs less
/// than two and the write never looks up the version of a row it does not write.
fn load_snapshot(
    conn: &mut Conn,
    refs: &BatchRefs,
    versioned: bool,
    lock: Option<WriteLock>,
) -> Result<(Snapshot, RowVersions), TxError> {
    let mut snapshot = Snapshot::default();
    let project_ids: Vec<i64> = refs.project_ids.iter().map(|id| id.get()).collect();
    let projects = conn.read_projects(&project_ids, lock)?;
    snapshot.projects = projects
        .into_iter()
        .map(|(project, organization)| (ProjectId(project), OrganizationId(organization)))
        .collect();

    let mut keys_by_project: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for key in &refs.keys {
        keys_by_project.entry(key.project_id.get()).or_default().push(key.app_id.as_str());
    }
    let mut versions = RowVersions::default();
    for (project_id, app_ids) in keys_by_project {
        if !snapshot.projects.contains_key(&ProjectId(project_id)) {
            continue;
        }
        for chunk in app_ids.chunks(KEY_CHUNK) {
            for (row, version) in conn.load_tasks_by_keys(project_id, chunk, versioned)? {
                let task = row.into_domain()?;
                if let Some(version) = version {
                    versions.insert(task.id.get(), version);
                }
                snapshot.tasks_by_key.insert(task.key.clone(), task);
            }
        }
    }
    add_nodes(&mut snapshot, load_nodes(conn, &refs.parent_ids, false)?);
    Ok((snapshot, versions))
}

/// Adds the planner's [`BatchPlanner::ancestor_seeds`] and all their ancestors to the snapshot.
fn load_chains(conn: &mut Conn, snapshot: &mut Snapshot, planner: &BatchPlanner) -> Result<(), TxError> {
    let seeds = planner.ancestor_seeds(snapshot);
    add_nodes(snapshot, load_nodes(conn, &seeds, true)?);
    Ok(())
}

fn add_nodes(snapshot: &mut Snapshot, nodes: Vec<NodeRow>) {
    for node in nodes {
        snapshot.nodes.insert(
            TaskId(node.id),
            TaskNode {
                id: TaskId(node.id),
                project_id: ProjectId(node.project_id),
                organization_id: OrganizationId(node.organization_id),
                parent_id: node.parent_task_id.map(TaskId),
            },
        );
    }
}

/// Loads the tree nodes of `ids`, and with `ancestors` of all their ancestors,
/// in one recursive query.
fn load_nodes(conn: &mut Conn, ids: &BTreeSet<TaskId>, ancestors: bool) -> Result<Vec<NodeRow>, TxError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    Ok(conn.query_nodes(&ids, ancestors)?)
}

/// Writes the planned rows of every plan in one set of statements, then
/// links the parents created in the same batch. Returns each plan's writes.
///
/// A stored row read with a version is updated only if it still has that
/// version. Every other row is upserted. Whether a row was created is read
/// back from the database: `insert_token` is written on insert only, so a
/// row returning this transaction's token was inserted by it.
fn write_plans(
    conn: &mut Conn,
    plans: &[&WritePlan],
    insert_token: i64,
    versions: &RowVersions,
) -> Result<Vec<Vec<RowWrite>>, TxError> {
    // A row equal to the stored one is not written, so its `updated_at` stays.
    let mut upserts: Vec<NewTaskRow<'_>> = Vec::new();
    let mut updates: Vec<VersionedTaskRow<'_>> = Vec::new();
    for plan in plans {
        for row in plan.rows.iter().filter(|row| !row.unchanged) {
            let new_row = new_task_row(row, plan.now, insert_token);
            match row.existing_id.and_then(|id| Some((id.get(), *versions.get(&id.get())?))) {
                Some((id, version)) => updates.push(VersionedTaskRow { id, version, row: new_row }),
                None => upserts.push(new_row),
            }
        }
    }
    // Concurrent writers must lock the rows they write in one order: stored
    // rows by id (see `Dialect::update_versioned_tasks`), new ones by key.
    updates.sort_unstable_by_key(|update| update.id);
    if plans.len() > 1 {
        // Each plan's rows are sorted by key already. The merged rows must be too.
        upserts.sort_unstable_by(|a, b| (a.project_id, a.task_app_id).cmp(&(b.project_id, b.task_app_id)));
    }

    let mut returned: Vec<(i64, i64, String, i64)> = Vec::with_capacity(upserts.len() + updates.len());
    if !updates.is_empty() {
        let updated = conn.update_versioned_tasks(&updates)?;
        if updated.len() < updates.len() {
            return Err(TxError::ConcurrentWrite);
        }
        returned.extend(updated);
    }
    returned.extend(conn.upsert_task_chunks(&upserts)?);
    let written: Written<'_> = returned
        .iter()
        .map(|(id, project_id, app_id, token)| ((*project_id, app_id.as_str()), (*id, *token)))
        .collect();
    plans
        .iter()
        .map(|plan| {
            let rows = row_writes(plan, &written, insert_token)?;
            link_batch_parents(conn, plan, &rows)?;
            Ok(rows)
        })
        .collect()
}

/// The id and insert token of each written row, by project id and external id.
type Written<'a> = KeyMap<(i64, &'a str), (i64, i64)>;

/// The version of each stored row read for a write, by task id (see [`Dialect::load_tasks_by_keys`]).
type RowVersions = KeyMap<i64, i64>;

fn new_task_row(row: &PlannedRow, now: Timestamp, insert_token: i64) -> NewTaskRow<'_> {
    let now = StoredTime(now.as_naive());
    NewTaskRow {
        project_id: row.key.project_id.get(),
        task_app_id: row.key.app_id.as_str(),
        task_name: row.fields.name.as_str(),
        task_url: row.fields.url.as_ref().map(|url| url.as_str()),
        owner_id: row.fields.owner_id.as_ref().map(|owner| owner.as_str()),
        owner_name: row.fields.owner_name.as_ref().map(|owner| owner.as_str()),
        parent_task_id: match row.parent {
            PlannedParent::Stored(id) => Some(id.get()),
            PlannedParent::None | PlannedParent::InBatch(_) => None,
        },
        created_at: StoredTime(row.fields.created_at.as_naive()),
        inserted_at: now,
        updated_at: now,
        insert_token,
        source_updated_at: row.fields.source_updated_at.map(|time| StoredTime(time.as_naive())),
    }
}

/// Maps a plan's rows onto what the upsert returned for them.
fn row_writes(plan: &WritePlan, written: &Written<'_>, insert_token: i64) -> Result<Vec<RowWrite>, TxError> {
    let mut rows = Vec::with_capacity(plan.rows.len());
    for row in &plan.rows {
        if let (true, Some(id)) = (row.unchanged, row.existing_id) {
            rows.push(RowWrite { id, action: Action::Updated });
            continue;
        }
        let lookup = (row.key.project_id.get(), row.key.app_id.as_str());
        let (id, token) = *written.get(&lookup).ok_or_else(|| {
            StoreError::internal(format!("the upsert returned no row for task {:?}", row.key.app_id.as_str()))
        })?;
        if row.existing_id.is_none() && token != insert_token {
            // Another writer created this key after the snapshot, so the plan
            // merged this row's fields against nothing instead of its row.
            return Err(TxError::ConcurrentWrite);
        }
        let action = if token == insert_token { Action::Created } else { Action::Updated };
        rows.push(RowWrite { id: TaskId(id), action });
    }
    Ok(rows)
}

/// Sets `parent_task_id` on rows whose parent was created by this same batch.
fn link_batch_parents(conn: &mut Conn, plan: &WritePlan, rows: &[RowWrite]) -> Result<(), TxError> {
    let links: Vec<(i64, i64)> = plan
        .rows
        .iter()
        .zip(rows)
        .filter_map(|(planned, written)| match planned.parent {
            PlannedParent::InBatch(parent_row) => Some((written.id.get(), rows[parent_row].id.get())),
            PlannedParent::None | PlannedParent::Stored(_) => None,
        })
        .collect();
    for chunk in links.chunks(LINK_CHUNK_ROWS) {
        // Both ids come from the database as i64, so inlining them cannot inject SQL.
        let cases: String = chunk.iter().map(|(child, parent)| format!(" WHEN {child} THEN {parent}")).collect();
        let ids = chunk.iter().map(|(child, _)| child.to_string()).collect::<Vec<_>>().join(",");
        let statement = format!("UPDATE tasks SET parent_task_id = CASE id{cases} END WHERE id IN ({ids})");
        diesel::sql_query(statement).execute(conn)?;
    }
    Ok(())
}
