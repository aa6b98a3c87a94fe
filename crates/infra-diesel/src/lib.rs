//! diesel adapters of Leanmote's ports, for SQLite and PostgreSQL.
//!
//! [`Database::connect`] picks the backend from the URL; [`Database`]
//! implements every storage port of the `domain` crate. Blocking diesel calls
//! run on tokio's blocking pool, never on the caller's thread.

mod backend;
mod db;
mod error;
#[cfg(feature = "bench")]
pub mod floor;
mod group_commit;
mod models;
mod pg_pool;
mod ports;
pub mod schema;
mod sqlite_writer;
mod stored_time;
#[cfg(feature = "test-support")]
pub mod testing;

pub use db::{Database, DatabaseTarget, PoolOptions};
