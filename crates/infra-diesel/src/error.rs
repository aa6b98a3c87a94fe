//! Translation of driver and pool errors into the domain's [`StoreError`].

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use domain::StoreError;

/// Maps a diesel error: lost connections count as unavailable, the rest as internal.
pub(crate) fn query_error(error: DieselError) -> StoreError {
    match &error {
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _) => {
            StoreError::Unavailable(Box::new(error))
        }
        DieselError::DatabaseError(_, info) if is_sqlite_busy(info.message()) => {
            StoreError::Unavailable(Box::new(error))
        }
        _ => StoreError::Internal(Box::new(error)),
    }
}

/// Maps a pool timeout to `Unavailable`: the database is unreachable or saturated.
pub(crate) fn pool_error(error: diesel::r2d2::PoolError) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

pub(crate) fn join_error(error: tokio::task::JoinError) -> StoreError {
    StoreError::internal(format!("a database task failed: {error}"))
}

fn is_sqlite_busy(message: &str) -> bool {
    message.contains("database is locked") || message.contains("database table is locked")
}

/// Tells whether another attempt of the same transaction may succeed:
/// PostgreSQL aborted it for a serialization failure or a deadlock.
pub(crate) fn is_transient(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}
