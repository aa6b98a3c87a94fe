//! The clock port, so that time is a plain value in tests.

use crate::timestamp::Timestamp;

/// Source of the current time, in UTC.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Returns the current instant, truncated to microseconds.
    fn now(&self) -> Timestamp;
}

/// The wall clock of the machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_utc(chrono::Utc::now().naive_utc())
    }
}
