// Idempotency key queries, included into each backend module (see `backend/mod.rs`).

/// Claims a key: a new key, or one whose claim or response expired, is taken;
/// otherwise the stored state is reported.
pub(crate) fn claim_key(
    conn: &mut Conn,
    token: TokenId,
    key: &IdempotencyKey,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Claim, TxError> {
    conn.write_transaction(|conn| {
        let inserted = diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::token_id.eq(token.get()),
                idempotency_keys::idempotency_key.eq(key.as_str()),
                idempotency_keys::created_at.eq(now.as_naive()),
                idempotency_keys::expires_at.eq(lease_until.as_naive()),
            ))
            .on_conflict_do_nothing()
            .execute(conn)?;
        if inserted == 1 {
            return Ok(Claim::Claimed);
        }
        let taken_over = diesel::update(this_key(token, key).filter(idempotency_keys::expires_at.le(now.as_naive())))
            .set((
                idempotency_keys::fingerprint.eq(None::<String>),
                idempotency_keys::response_status.eq(None::<i32>),
                idempotency_keys::response_body.eq(None::<String>),
                idempotency_keys::created_at.eq(now.as_naive()),
                idempotency_keys::expires_at.eq(lease_until.as_naive()),
            ))
            .execute(conn)?;
        if taken_over == 1 {
            return Ok(Claim::Claimed);
        }
        let (fingerprint, status, body): (Option<String>, Option<i32>, Option<String>) = this_key(token, key)
            .select((
                idempotency_keys::fingerprint,
                idempotency_keys::response_status,
                idempotency_keys::response_body,
            ))
            .first(conn)?;
        Ok(match (fingerprint, status, body) {
            (Some(fingerprint), Some(status), Some(body)) => Claim::Completed(StoredResponse {
                fingerprint: Fingerprint::from_stored(fingerprint),
                status: u16::try_from(status).map_err(|_| StoreError::internal(format!("stored status {status}")))?,
                body,
            }),
            _ => Claim::InProgress,
        })
    })
}

/// Deletes a claim that has no response.
pub(crate) fn release_key(conn: &mut Conn, token: TokenId, key: &IdempotencyKey) -> Result<(), TxError> {
    diesel::delete(this_key(token, key).filter(idempotency_keys::response_status.is_null())).execute(conn)?;
    Ok(())
}

/// Deletes every claim and response that expired before `now`.
pub(crate) fn prune_keys(conn: &mut Conn, now: Timestamp) -> Result<u64, TxError> {
    let deleted =
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::expires_at.le(now.as_naive()))).execute(conn)?;
    Ok(deleted as u64)
}

/// Stores a batch's response under its key, inside the batch's transaction.
fn store_response(conn: &mut Conn, receipt: &Receipt, body: &str) -> Result<(), TxError> {
    let values = (
        idempotency_keys::token_id.eq(receipt.token.get()),
        idempotency_keys::idempotency_key.eq(receipt.key.as_str()),
        idempotency_keys::fingerprint.eq(receipt.fingerprint.as_str()),
        idempotency_keys::response_status.eq(200),
        idempotency_keys::response_body.eq(body),
        idempotency_keys::created_at.eq(receipt.created_at.as_naive()),
        idempotency_keys::expires_at.eq(receipt.expires_at.as_naive()),
    );
    diesel::insert_into(idempotency_keys::table)
        .values(values)
        .on_conflict((idempotency_keys::token_id, idempotency_keys::idempotency_key))
        .do_update()
        .set((
            idempotency_keys::fingerprint.eq(receipt.fingerprint.as_str()),
            idempotency_keys::response_status.eq(200),
            idempotency_keys::response_body.eq(body),
            idempotency_keys::expires_at.eq(receipt.expires_at.as_naive()),
        ))
        .execute(conn)?;
    Ok(())
}

fn this_key(
    token: TokenId,
    key: &IdempotencyKey,
) -> diesel::dsl::Filter<
    diesel::dsl::Filter<idempotency_keys::table, diesel::dsl::Eq<idempotency_keys::token_id, i64>>,
    diesel::dsl::Eq<idempotency_keys::idempotency_key, String>,
> {
    idempotency_keys::table
        .filter(idempotency_keys::token_id.eq(token.get()))
        .filter(idempotency_keys::idempotency_key.eq(key.as_str().to_owned()))
}
