//! PostgreSQL connections for r2d2 that skip the checkout ping when they were
//! in use moments ago.
//!
//! r2d2 checks every connection with `SELECT 1` before handing it out. With a
//! token lookup and a write per request, that added two round trips to each
//! one-task batch: the ping took 12% of the server's CPU in a profile of
//! that case. A connection that was returned within [`RECENTLY_USED`] skips
//! the ping; one that has been idle for longer is checked. A connection whose
//! session was lost fails its next statement, and diesel then reports it
//! broken (libpq reports its transaction status as unknown), so the pool drops
//! it on return instead of handing it out again.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use diesel::PgConnection;
use diesel::r2d2::{ConnectionManager, ManageConnection};

/// How long after its return a connection is handed out again without a ping.
const RECENTLY_USED: Duration = Duration::from_millis(500);

/// A pooled PostgreSQL connection with the pool's record of its last use.
pub(crate) struct PgConn {
    conn: PgConnection,
    returned_at: Option<Instant>,
}

impl Deref for PgConn {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for PgConn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

/// diesel's connection manager, with the ping skipped for recently used connections.
pub(crate) struct PgManager {
    inner: ConnectionManager<PgConnection>,
}

impl PgManager {
    pub(crate) fn new(url: String) -> Self {
        Self { inner: ConnectionManager::new(url) }
    }
}

impl ManageConnection for PgManager {
    type Connection = PgConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgConn, Self::Error> {
        Ok(PgConn { conn: self.inner.connect()?, returned_at: None })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), Self::Error> {
        if conn.returned_at.is_some_and(|returned| returned.elapsed() < RECENTLY_USED) {
            return Ok(());
        }
        self.inner.is_valid(&mut conn.conn)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        // r2d2 calls this once each time a connection returns to the pool.
        conn.returned_at = Some(Instant::now());
        self.inner.has_broken(&mut conn.conn)
    }
}
