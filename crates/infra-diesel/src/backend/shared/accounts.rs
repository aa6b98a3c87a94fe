// Organization, project and token queries, included into each backend module.

/// Returns the token with this hash and its organizations, in one statement:
/// every request runs it.
pub(crate) fn find_token(conn: &mut Conn, hash: &TokenHash) -> Result<Option<StoredToken>, TxError> {
    type TokenColumns =
        (i64, String, Option<NaiveDateTime>, Option<NaiveDateTime>, Option<NaiveDateTime>, Option<i64>);
    let rows: Vec<TokenColumns> = api_tokens::table
        .left_join(api_token_organizations::table)
        .filter(api_tokens::token_hash.eq(&hash.0))
        .select((
            api_tokens::id,
            api_tokens::label,
            api_tokens::expires_at,
            api_tokens::revoked_at,
            api_tokens::last_used_at,
            api_token_organizations::organization_id.nullable(),
        ))
        .order(api_token_organizations::organization_id)
        .load(conn)?;
    let Some((id, label, expires_at, revoked_at, last_used_at, _)) = rows.first().cloned() else {
        return Ok(None);
    };
    Ok(Some(StoredToken {
        id: TokenId(id),
        label,
        organizations: rows.into_iter().filter_map(|row| row.5).map(OrganizationId).collect(),
        expires_at: expires_at.map(Timestamp::from_utc),
        revoked_at: revoked_at.map(Timestamp::from_utc),
        last_used_at: last_used_at.map(Timestamp::from_utc),
    }))
}

/// Records the token's last use.
pub(crate) fn touch_token(conn: &mut Conn, id: TokenId, at: Timestamp) -> Result<(), TxError> {
    diesel::update(api_tokens::table.find(id.get())).set(api_tokens::last_used_at.eq(at.as_naive())).execute(conn)?;
    Ok(())
}

/// Stores a token's hash with its organizations.
pub(crate) fn create_token(conn: &mut Conn, token: &NewToken) -> Result<TokenId, TxError> {
    conn.write_transaction(|conn| {
        let id: i64 = diesel::insert_into(api_tokens::table)
            .values((
                api_tokens::label.eq(&token.label),
                api_tokens::token_hash.eq(&token.hash.0),
                api_tokens::created_at.eq(token.created_at.as_naive()),
                api_tokens::expires_at.eq(token.expires_at.map(Timestamp::as_naive)),
            ))
            .returning(api_tokens::id)
            .get_result(conn)?;
        let links: Vec<_> = token
            .organizations
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|organization| {
                (api_token_organizations::token_id.eq(id), api_token_organizations::organization_id.eq(organization.get()))
            })
            .collect();
        diesel::insert_into(api_token_organizations::table).values(links).execute(conn)?;
        Ok(TokenId(id))
    })
}

/// Sets `revoked_at` unless already set. Returns whether the token exists.
pub(crate) fn revoke_token(conn: &mut Conn, id: TokenId, at: Timestamp) -> Result<bool, TxError> {
    conn.write_transaction(|conn| {
        diesel::update(api_tokens::table.find(id.get()).filter(api_tokens::revoked_at.is_null()))
            .set(api_tokens::revoked_at.eq(at.as_naive()))
            .execute(conn)?;
        let exists: i64 = api_tokens::table.find(id.get()).count().get_result(conn)?;
        Ok(exists > 0)
    })
}

/// Stores a new organization.
pub(crate) fn create_organization(conn: &mut Conn, organization: &NewOrganization) -> Result<Organization, TxError> {
    let created_at = organization.created_at.as_naive();
    let id: i64 = diesel::insert_into(organizations::table)
        .values((organizations::name.eq(organization.name.as_str()), organizations::created_at.eq(created_at)))
        .returning(organizations::id)
        .get_result(conn)?;
    Ok(Organization { id: OrganizationId(id), name: organization.name.as_str().to_owned(), created_at: organization.created_at })
}

/// Returns the organization with this id.
pub(crate) fn find_organization(conn: &mut Conn, id: OrganizationId) -> Result<Option<Organization>, TxError> {
    let row: Option<(i64, String, NaiveDateTime)> = organizations::table
        .find(id.get())
        .select((organizations::id, organizations::name, organizations::created_at))
        .first(conn)
        .optional()?;
    Ok(row.map(|(id, name, created_at)| Organization { id: OrganizationId(id), name, created_at: Timestamp::from_utc(created_at) }))
}

/// Returns the organizations with these ids, in id order.
pub(crate) fn list_organizations(conn: &mut Conn, ids: &[OrganizationId]) -> Result<Vec<Organization>, TxError> {
    let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    let rows: Vec<(i64, String, NaiveDateTime)> = organizations::table
        .filter(organizations::id.eq_any(ids))
        .order(organizations::id)
        .select((organizations::id, organizations::name, organizations::created_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, created_at)| Organization { id: OrganizationId(id), name, created_at: Timestamp::from_utc(created_at) })
        .collect())
}

/// Counts organizations.
pub(crate) fn count_organizations(conn: &mut Conn) -> Result<u64, TxError> {
    let count: i64 = organizations::table.count().get_result(conn)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Creates a project or updates the one with the same (organization, external id).
pub(crate) fn upsert_project(conn: &mut Conn, project: &NewProject) -> Result<(Project, Action), TxError> {
    conn.write_transaction(|conn| upsert_project_row(conn, project))
}

/// Upserts projects in order, in one transaction.
pub(crate) fn upsert_projects(conn: &mut Conn, projects: &[NewProject]) -> Result<Vec<(Project, Action)>, TxError> {
    conn.write_transaction(|conn| projects.iter().map(|project| upsert_project_row(conn, project)).collect())
}

fn upsert_project_row(conn: &mut Conn, project: &NewProject) -> Result<(Project, Action), TxError> {
    {
        let existing: Option<ProjectRow> = projects::table
            .filter(projects::organization_id.eq(project.organization_id.get()))
            .filter(projects::project_app_id.eq(project.app_id.as_str()))
            .select(ProjectRow::as_select())
            .first(conn)
            .optional()?;
        // Fields the request left out keep their stored values.
        let active = project.active.or(existing.as_ref().map(|row| row.active)).unwrap_or(DEFAULT_ACTIVE);
        let created_at = project.created_at.map(Timestamp::as_naive).or(existing.as_ref().map(|row| row.created_at));
        let row = NewProjectRow {
            organization_id: project.organization_id.get(),
            project_app_id: project.app_id.as_str(),
            name: project.name.as_str(),
            active,
            created_at: created_at.unwrap_or(project.now.as_naive()),
            inserted_at: project.now.as_naive(),
            updated_at: project.now.as_naive(),
        };
        // NOTE: on PostgreSQL two concurrent creates of one new project can both report
        // `created`; only task upserts read the action back from the row itself.
        let stored: ProjectRow = diesel::insert_into(projects::table)
            .values(&row)
            .on_conflict((projects::organization_id, projects::project_app_id))
            .do_update()
            .set((
                projects::name.eq(excluded(projects::name)),
                projects::active.eq(excluded(projects::active)),
                projects::created_at.eq(excluded(projects::created_at)),
                projects::updated_at.eq(excluded(projects::updated_at)),
            ))
            .returning(ProjectRow::as_returning())
            .get_result(conn)?;
        let action = if existing.is_some() { Action::Updated } else { Action::Created };
        Ok((Project::from(stored), action))
    }
}

/// Returns the project with this id.
pub(crate) fn find_project(conn: &mut Conn, id: ProjectId) -> Result<Option<Project>, TxError> {
    let row: Option<ProjectRow> = projects::table.find(id.get()).select(ProjectRow::as_select()).first(conn).optional()?;
    Ok(row.map(Project::from))
}

/// Returns the projects of the filter's organizations, in id order.
pub(crate) fn list_projects(conn: &mut Conn, filter: &ProjectFilter) -> Result<Vec<Project>, TxError> {
    let organizations: Vec<i64> = filter.organizations.iter().map(|id| id.get()).collect();
    let mut query = projects::table.filter(projects::organization_id.eq_any(organizations)).into_boxed();
    if let Some(active) = filter.active {
        query = query.filter(projects::active.eq(active));
    }
    let rows: Vec<ProjectRow> = query.order(projects::id).select(ProjectRow::as_select()).load(conn)?;
    Ok(rows.into_iter().map(Project::from).collect())
}
