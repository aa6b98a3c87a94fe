// Task queries, included into each backend module (see `backend/mod.rs`).

/// External ids per `IN (...)` lookup.
const KEY_CHUNK: usize = 1000;
/// Rows per `UPDATE ... CASE` statement that links parents created in the same batch.
const LINK_CHUNK_ROWS: usize = 500;

/// Loads, plans and writes one batch in a single write transaction. With a
/// receipt, the batch's answer is stored under its idempotency key in the
/// same transaction.
///
/// A transaction in [`WriteLock::Shared`] mode that finds the batch moving a
/// stored task, or finds that another writer created a key it planned to
/// create, rolls back and starts over in [`WriteLock::Exclusive`] mode.
pub(crate) fn apply_batch(
    conn: &mut Conn,
    planner: &BatchPlanner,
    insert_token: i64,
    receipt: Option<&Receipt>,
) -> Result<AppliedBatch, TxError> {
    let refs = planner.refs();
    let mut lock = Conn::FIRST_WRITE_LOCK;
    loop {
        let outcome = conn.write_transaction(|conn| {
            let snapshot = load_snapshot(conn, planner, &refs, Some(lock))?;
            if lock == WriteLock::Shared && planner.moves_stored_task(&snapshot) {
                return Err(TxError::NeedsExclusiveLock);
            }

            let plan = planner.plan(&snapshot).map_err(TxError::Rejected)?;
            let rows = write_plan(conn, &plan, insert_token)?;
            let applied = AppliedBatch { plan, rows };
            if let Some(receipt) = receipt {
                let body = (receipt.encode)(&domain::ingest::processed_tasks(&applied));
                store_response(conn, receipt, &body)?;
            }
            Ok(applied)
        });
        match outcome {
            Err(TxError::NeedsExclusiveLock | TxError::ConcurrentCreate) if lock == WriteLock::Shared => {
                lock = WriteLock::Exclusive;
            }
            other => return other,
        }
    }
}

/// Plans a batch against the stored data in a read transaction, writing nothing.
pub(crate) fn plan_batch(conn: &mut Conn, planner: &BatchPlanner) -> Result<WritePlan, TxError> {
    conn.transaction(|conn| {
        let refs = planner.refs();
        let snapshot = load_snapshot(conn, planner, &refs, None)?;
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

/// Reads everything the planner needs with a fixed number of set-based queries.
///
/// With a lock mode, the first statement locks the batch's projects, and in
/// [`WriteLock::Shared`] mode the stored rows of the keys that the items
/// write stay locked too, until the transaction ends.
fn load_snapshot(
    conn: &mut Conn,
    planner: &BatchPlanner,
    refs: &BatchRefs,
    lock: Option<WriteLock>,
) -> Result<Snapshot, TxError> {
    let mut snapshot = Snapshot::default();
    let project_ids: Vec<i64> = refs.project_ids.iter().map(|id| id.get()).collect();
    let projects = conn.read_projects(&project_ids, lock)?;
    snapshot.projects = projects.into_iter().map(|(project, organization)| (ProjectId(project), OrganizationId(organization))).collect();

    // Keys by project and by whether their rows are locked: a parent that is
    // only named is read without a lock, so batches naming one parent do not queue.
    let item_keys = if lock == Some(WriteLock::Shared) { planner.item_keys() } else { BTreeSet::new() };
    let mut keys_by_project: BTreeMap<(i64, bool), Vec<&str>> = BTreeMap::new();
    for key in &refs.keys {
        let locked = item_keys.contains(key);
        keys_by_project.entry((key.project_id.get(), locked)).or_default().push(key.app_id.as_str());
    }
    for ((project_id, locked), app_ids) in keys_by_project {
        if !snapshot.projects.contains_key(&ProjectId(project_id)) {
            continue;
        }
        for chunk in app_ids.chunks(KEY_CHUNK) {
            let rows = conn.load_tasks_by_keys(project_id, chunk, locked)?;
            for row in rows {
                let task = row.into_domain()?;
                snapshot.tasks_by_key.insert(task.key.clone(), task);
            }
        }
    }

    let named = load_nodes(conn, &refs.parent_ids, false)?;
    let chains = load_nodes(conn, &planner.ancestor_seeds(&snapshot), true)?;
    for node in named.into_iter().chain(chains) {
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
    Ok(snapshot)
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

/// Upserts every planned row, then links the parents created in the same batch.
///
/// Whether a row was created is read back from the database: `insert_token` is
/// written on insert only, so a row returning this transaction's token was inserted by it.
fn write_plan(conn: &mut Conn, plan: &WritePlan, insert_token: i64) -> Result<Vec<RowWrite>, TxError> {
    let now = StoredTime(plan.now.as_naive());
    // A row equal to the stored one is not written, so its `updated_at` stays.
    let new_rows: Vec<NewTaskRow<'_>> = plan
        .rows
        .iter()
        .filter(|row| !row.unchanged)
        .map(|row| NewTaskRow {
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
        })
        .collect();

    let mut written: HashMap<(i64, String), (i64, i64)> = HashMap::with_capacity(new_rows.len());
    for chunk in new_rows.chunks(UPSERT_CHUNK_ROWS) {
        let returned: Vec<(i64, i64, String, i64)> = TaskUpsert { rows: chunk }.get_results(conn)?;
        for (id, project_id, app_id, token) in returned {
            written.insert((project_id, app_id), (id, token));
        }
    }

    let mut rows = Vec::with_capacity(plan.rows.len());
    for row in &plan.rows {
        if let (true, Some(id)) = (row.unchanged, row.existing_id) {
            rows.push(RowWrite { id, action: Action::Updated });
            continue;
        }
        let lookup = (row.key.project_id.get(), row.key.app_id.as_str().to_owned());
        let (id, token) = *written
            .get(&lookup)
            .ok_or_else(|| StoreError::internal(format!("the upsert returned no row for task {:?}", row.key.app_id.as_str())))?;
        if row.existing_id.is_none() && token != insert_token {
            // Another writer created this key after the snapshot, so the plan
            // merged this row's fields against nothing instead of its row.
            return Err(TxError::ConcurrentCreate);
        }
        let action = if token == insert_token { Action::Created } else { Action::Updated };
        rows.push(RowWrite { id: TaskId(id), action });
    }
    link_batch_parents(conn, plan, &rows)?;
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
