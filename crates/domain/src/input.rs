//! Raw task input as decoded from a request, before any rule is applied.
//!
//! The HTTP layer fills these from JSON. Optional fields keep "absent" apart
//! from an explicit `null`: on update, an absent field keeps its stored value
//! and `null` clears it.

/// One field of the request as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FieldInput<T> {
    /// The key was not in the object.
    #[default]
    Absent,
    /// The key was present with the value `null`.
    Null,
    /// A value of the expected JSON type.
    Value(T),
    /// A value of another JSON type. The message names the expected and the actual type.
    WrongType(String),
}

impl<T> FieldInput<T> {
    /// Maps the carried value, keeping the other states.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> FieldInput<U> {
        match self {
            Self::Absent => FieldInput::Absent,
            Self::Null => FieldInput::Null,
            Self::Value(value) => FieldInput::Value(f(value)),
            Self::WrongType(message) => FieldInput::WrongType(message),
        }
    }
}

/// One item of `tasks` in `POST /api/v1/tasks`, field by field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskInput {
    pub project_id: FieldInput<i64>,
    pub task_app_id: FieldInput<String>,
    pub task_name: FieldInput<String>,
    pub created_at: FieldInput<String>,
    pub task_url: FieldInput<String>,
    pub owner_id: FieldInput<String>,
    pub owner_name: FieldInput<String>,
    pub parent_task_id: FieldInput<i64>,
    /// Extension: the parent named by its external id in the same project.
    pub parent_task_app_id: FieldInput<String>,
    /// Extension: when the task last changed in the client's tool.
    pub source_updated_at: FieldInput<String>,
    /// Names of the fields this API does not know, which were ignored.
    pub unknown_fields: Vec<String>,
}
