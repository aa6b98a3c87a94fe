//! Identifiers that Leanmote assigns. They wrap the database's 64-bit ids.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub i64);

        impl $name {
            /// Returns the raw 64-bit id.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// Id of an organization, the tenant that owns projects.
    OrganizationId
);
id_type!(
    /// Id of a project (a board) in Leanmote.
    ProjectId
);
id_type!(
    /// Leanmote's id of a task, as opposed to its external `task_app_id`.
    TaskId
);
id_type!(
    /// Id of an API token (never the token itself).
    TokenId
);
