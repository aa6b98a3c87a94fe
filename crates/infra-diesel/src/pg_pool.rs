//! PostgreSQL connections for r2d2 that skip the checkout ping when they were
//! in use moments ago.
//!
//! r2d2 checks every connection with `SELECT 1` before handing it out. With a
//! token lookup and a write per request, that added two round trips to each
//! one-task batch: the ping took 12% of the server's CPU in a profile of
//! that case. A connection that was returned within [`RECENTLY_USED`] skips
//! the ping. A connection that has been idle for longer, or whose last
//! statement failed because the connection was lost, is checked or dropped.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use diesel::PgConnection;
use diesel::r2d2::{ConnectionManager, ManageConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// How long after its return a connection is handed out again without a ping.
const RECENTLY_USED: Duration = Duration::from_millis(500);

/// A pooled PostgreSQL connection with the pool's record of its last use.
pub(crate) struct PgConn {
    conn: PgConnection,
    returned_at: Option<Instant>,
    lost: bool,
}

impl PgConn {
    /// Marks the connection as lost when `error` shows that the server is
    /// gone, so that the pool drops it instead of handing it out again.
    pub(crate) fn note_error(&mut self, error: &DieselError) {
        if matches!(
            error,
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _)
        ) {
            self.lost = true;
        }
    }
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
        Ok(PgConn { conn: self.inner.connect()?, returned_at: None, lost: false })
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
        conn.lost || self.inner.has_broken(&mut conn.conn)
    }
}
