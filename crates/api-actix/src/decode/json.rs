//! serde shapes of the request bodies.
//!
//! Each known field is read as a JSON value only when present (`None` means
//! absent, `Some(Value::Null)` means an explicit null). serde's derive skips
//! unknown keys without allocating them and rejects a key that appears twice.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::value::MapAccessDeserializer};
use serde_json::Value;

/// Reads a present field, keeping an explicit `null` as `Value::Null`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// `{"tasks": [...]}`.
#[derive(Deserialize)]
pub struct RawTaskBody {
    #[serde(default)]
    pub tasks: Option<List<RawTask>>,
}

/// Unknown field names kept per task, for warnings; further ones are skipped unnamed.
const MAX_UNKNOWN_FIELDS: usize = 16;
/// Maximum length of an unknown field name repeated in a warning, in characters.
const MAX_UNKNOWN_NAME_CHARS: usize = 64;

/// One task object, field by field, with the names of the unknown fields.
#[derive(Default)]
pub struct RawTask {
    pub project_id: Option<Value>,
    pub task_app_id: Option<Value>,
    pub task_name: Option<Value>,
    pub created_at: Option<Value>,
    pub task_url: Option<Value>,
    pub owner_id: Option<Value>,
    pub owner_name: Option<Value>,
    pub parent_task_id: Option<Value>,
    pub parent_task_app_id: Option<Value>,
    pub source_updated_at: Option<Value>,
    /// Unknown keys, each named once; their values are skipped without being built.
    pub unknown_fields: Vec<String>,
}

impl RawTask {
    /// Returns the slot of a known field, with its name as the API spells it.
    fn slot(&mut self, key: &str) -> Option<(&'static str, &mut Option<Value>)> {
        Some(match key {
            "project_id" => ("project_id", &mut self.project_id),
            "task_app_id" => ("task_app_id", &mut self.task_app_id),
            "task_name" => ("task_name", &mut self.task_name),
            "created_at" => ("created_at", &mut self.created_at),
            "task_url" => ("task_url", &mut self.task_url),
            "owner_id" => ("owner_id", &mut self.owner_id),
            "owner_name" => ("owner_name", &mut self.owner_name),
            "parent_task_id" => ("parent_task_id", &mut self.parent_task_id),
            "parent_task_app_id" => ("parent_task_app_id", &mut self.parent_task_app_id),
            "source_updated_at" => ("source_updated_at", &mut self.source_updated_at),
            _ => return None,
        })
    }

    fn note_unknown(&mut self, key: &str) {
        let name: String = key.chars().take(MAX_UNKNOWN_NAME_CHARS).collect();
        if self.unknown_fields.len() < MAX_UNKNOWN_FIELDS && !self.unknown_fields.contains(&name) {
            self.unknown_fields.push(name);
        }
    }
}

impl<'de> Deserialize<'de> for RawTask {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RawTaskVisitor)
    }
}

struct RawTaskVisitor;

impl<'de> Visitor<'de> for RawTaskVisitor {
    type Value = RawTask;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a task object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut task = RawTask::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let Some((name, slot)) = task.slot(&key) else {
                map.next_value::<IgnoredAny>()?;
                task.note_unknown(&key);
                continue;
            };
            if slot.is_some() {
                return Err(de::Error::duplicate_field(name));
            }
            *slot = Some(map.next_value::<Value>()?);
        }
        Ok(task)
    }
}

/// An object key, borrowed from the body unless it contains escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Borrowed(key)))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(key.to_owned())))
    }
}

/// One project object, field by field.
#[derive(Deserialize)]
pub struct RawProject {
    #[serde(default, deserialize_with = "present")]
    pub project_app_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub organization_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub active: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub created_at: Option<Value>,
}

/// One project object, or `{"projects": [...]}`.
#[derive(Deserialize)]
pub struct RawProjectBody {
    #[serde(default, deserialize_with = "present")]
    project_app_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    organization_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    active: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    created_at: Option<Value>,
    #[serde(default)]
    pub projects: Option<List<RawProject>>,
}

impl RawProjectBody {
    /// Returns the body's own project fields, for the one-project form.
    pub fn into_project(self) -> RawProject {
        RawProject {
            project_app_id: self.project_app_id,
            name: self.name,
            organization_id: self.organization_id,
            active: self.active,
            created_at: self.created_at,
        }
    }
}

/// A list field: its items, `null`, or a description of another JSON type.
pub enum List<T> {
    Items(Vec<Slot<T>>),
    Null,
    Other(&'static str),
}

/// A list item: an object, or a description of another JSON type.
pub enum Slot<T> {
    Object(T),
    Other(&'static str),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ListVisitor(PhantomData))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Slot<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SlotVisitor(PhantomData))
    }
}

struct ListVisitor<T>(PhantomData<T>);
struct SlotVisitor<T>(PhantomData<T>);

/// Implements the visits of every JSON type but one as "another type", named for messages.
macro_rules! other_types {
    ($other:path) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other("a boolean"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other("a number"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other("a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other("a number"))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other("a string"))
        }
    };
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
    type Value = List<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(List::Items(items))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(List::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(List::Other("an object"))
    }

    other_types!(List::Other);
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for SlotVisitor<T> {
    type Value = Slot<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Slot::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Slot::Other("an array"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Slot::Other("null"))
    }

    other_types!(Slot::Other);
}
