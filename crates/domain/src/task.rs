//! Tasks: their value types, their key and the command that upserts one.

use crate::ids::{ProjectId, TaskId};
use crate::outcome::Warning;
use crate::text::{TextRule, TextViolation, text_type};
use crate::timestamp::Timestamp;

mod url_fast_path;

/// Maximum length of `task_app_id`, in characters.
pub const MAX_APP_ID_CHARS: usize = 255;
/// Maximum length of `task_name`, in characters.
pub const MAX_NAME_CHARS: usize = 1024;
/// Maximum length of `task_url`, in characters.
pub const MAX_URL_CHARS: usize = 2048;
/// Maximum length of `owner_id` and `owner_name`, in characters.
pub const MAX_OWNER_CHARS: usize = 255;

text_type!(
    /// External id of a task in the client's tool, unique within a project.
    TaskAppId,
    TextRule { max_chars: MAX_APP_ID_CHARS, reject_blank: true, reject_controls: true }
);
text_type!(
    /// Title of a task, stored exactly as sent (tabs and escape codes included).
    TaskName,
    TextRule { max_chars: MAX_NAME_CHARS, reject_blank: true, reject_controls: false }
);
text_type!(
    /// External id of the task's owner.
    OwnerId,
    TextRule { max_chars: MAX_OWNER_CHARS, reject_blank: false, reject_controls: true }
);
text_type!(
    /// Display name of the task's owner.
    OwnerName,
    TextRule { max_chars: MAX_OWNER_CHARS, reject_blank: false, reject_controls: false }
);

/// Absolute `http` or `https` URL of the task in the client's tool.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskUrl(String);

impl TaskUrl {
    const RULE: TextRule = TextRule { max_chars: MAX_URL_CHARS, reject_blank: true, reject_controls: true };

    /// Checks that `value` is an absolute http(s) URL with a host, and keeps it as sent.
    ///
    /// URLs in a simple common form skip the full URL parser, because
    /// `url_fast_path::is_simple_http_url` recognizes them as valid on its own.
    ///
    /// # Errors
    /// Returns the rule that `value` breaks.
    pub fn parse(value: impl Into<String>) -> Result<Self, TextViolation> {
        let value = value.into();
        Self::check_shape(&value)?;
        if !url_fast_path::is_simple_http_url(&value) {
            Self::check_with_url_parser(&value)?;
        }
        Ok(Self(value))
    }

    /// Checks with the full URL parser that `value` is an http(s) URL with a non-empty host.
    fn check_with_url_parser(value: &str) -> Result<(), TextViolation> {
        // The parser skips extra slashes and reads `https:///x` as host `x`,
        // but the text as sent, which is what is stored, has no host there.
        if value.split_once("://").is_some_and(|(_, rest)| rest.starts_with('/')) {
            return Err(invalid_url("has a slash where the host belongs (after \"//\")"));
        }
        let parsed = url::Url::parse(value).map_err(|error| invalid_url(&format!("is not a valid URL ({error})")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid_url(&format!(
                "has scheme {:?}, but only http and https are accepted",
                parsed.scheme()
            )));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(invalid_url("has no host"));
        }
        Ok(())
    }

    /// Accepts a URL read back from storage, which [`TaskUrl::parse`] checked
    /// on its way in. Checks the length, the characters, the scheme and that
    /// a host follows it. It skips the full URL parse, because that costs
    /// more than the checks of all the other columns of a stored row.
    ///
    /// # Errors
    /// Returns the rule that `value` breaks.
    pub fn from_stored(value: impl Into<String>) -> Result<Self, TextViolation> {
        let value = value.into();
        Self::check_shape(&value)?;
        // The URL parser skips any number of slashes after an http(s) scheme, so this does too.
        let after_scheme = value.split_once("://").map_or("", |(_, rest)| rest.trim_start_matches('/'));
        let host = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
        if host.is_empty() || host.starts_with(':') {
            return Err(invalid_url("has no host"));
        }
        Ok(Self(value))
    }

    /// Checks what needs no URL parser: the text rule, the characters and the scheme.
    fn check_shape(value: &str) -> Result<(), TextViolation> {
        Self::RULE.check(value)?;
        if value.chars().any(is_forbidden_in_url) {
            return Err(invalid_url("must not contain spaces, backslashes, control or invisible characters"));
        }
        let starts_with =
            |prefix: &str| value.get(..prefix.len()).is_some_and(|start| start.eq_ignore_ascii_case(prefix));
        if !starts_with("http://") && !starts_with("https://") {
            return Err(invalid_url("must start with http:// or https://"));
        }
        Ok(())
    }

    /// Returns the URL exactly as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn invalid_url(reason: &str) -> TextViolation {
    TextViolation {
        code: crate::error::DetailCode::InvalidUrl,
        message: format!("{reason}; send an absolute URL such as https://tracker.example.com/TASK-1"),
    }
}

/// Tells whether a URL may not contain `c`: spaces, backslashes, control and
/// invisible characters.
fn is_forbidden_in_url(c: char) -> bool {
    // In ASCII, every space and control character is at most U+0020, or U+007F.
    if c.is_ascii() {
        return c <= ' ' || c == '\u{7f}' || c == '\\';
    }
    c.is_whitespace() || c.is_control() || is_format_char(c)
}

/// Tells whether `c` is an invisible formatting character (zero-width or bidirectional).
fn is_format_char(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}')
}

/// Identity of a task: its project and its external id. Upserts match on it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskKey {
    pub project_id: ProjectId,
    pub app_id: TaskAppId,
}

/// Change to an optional field on update: absent keeps, `null` clears.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    /// The field was absent: keep the stored value (none on create).
    #[default]
    Keep,
    /// The field was `null`: clear the stored value.
    Clear,
    /// Store this value.
    Set(T),
}

impl<T: Clone> Patch<T> {
    /// Applies the patch to the current value.
    pub fn apply(&self, current: Option<T>) -> Option<T> {
        match self {
            Self::Keep => current,
            Self::Clear => None,
            Self::Set(value) => Some(value.clone()),
        }
    }
}

/// A validated upsert of one task, before planning against stored data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCommand {
    pub key: TaskKey,
    pub name: TaskName,
    pub created_at: Timestamp,
    pub url: Patch<TaskUrl>,
    pub owner_id: Patch<OwnerId>,
    pub owner_name: Patch<OwnerName>,
    pub parent_id: Patch<TaskId>,
    pub parent_app_id: Patch<TaskAppId>,
    /// When the task last changed in the client's tool; an older one than stored is skipped.
    pub source_updated_at: Patch<Timestamp>,
    /// Remarks found by the input rules (unknown fields, incomplete owner).
    pub warnings: Vec<Warning>,
}

/// The client-owned fields of a task, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFields {
    pub name: TaskName,
    pub url: Option<TaskUrl>,
    pub owner_id: Option<OwnerId>,
    pub owner_name: Option<OwnerName>,
    pub created_at: Timestamp,
    pub source_updated_at: Option<Timestamp>,
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTask {
    pub id: TaskId,
    pub key: TaskKey,
    pub fields: TaskFields,
    pub parent_id: Option<TaskId>,
    pub inserted_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Outcome of an upsert for one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
}

impl Action {
    /// Returns the action as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DetailCode;

    #[test]
    fn url_accepts_http_and_https() {
        assert!(TaskUrl::parse("https://client.com/tasks/TASK-001").is_ok());
        assert!(TaskUrl::parse("http://127.0.0.1:8080/x?y=1#z").is_ok());
    }

    #[test]
    fn url_rejects_other_forms() {
        for value in [
            "ftp://host/x",
            "/tasks/1",
            "client.com/tasks",
            "https://",
            "javascript:alert(1)",
            "https://a b",
            " https://a.b",
            "https:///tasks/1",
        ] {
            let error = TaskUrl::parse(value).expect_err(value);
            assert!(matches!(error.code, DetailCode::InvalidUrl | DetailCode::ControlCharacter), "{value}");
        }
        assert_eq!(TaskUrl::parse("").unwrap_err().code, DetailCode::Blank);
    }

    #[test]
    fn url_length_limit() {
        let long = format!("https://a.example/{}", "x".repeat(MAX_URL_CHARS));
        assert_eq!(TaskUrl::parse(long).unwrap_err().code, DetailCode::TooLong);
    }

    #[test]
    fn forbidden_url_chars_match_the_unicode_rules() {
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            let expected = c.is_whitespace() || c.is_control() || c == '\\' || is_format_char(c);
            assert_eq!(is_forbidden_in_url(c), expected, "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn stored_url_rejects_corrupt_values() {
        for value in ["ftp://host/x", "https://", "https:///", "https://a b", "https://:80/x", "https://user@/x", "x"] {
            assert!(TaskUrl::from_stored(value).is_err(), "{value}");
        }
        assert!(TaskUrl::from_stored("HTTPS://user:pw@client.com:8080/t?q#f").is_ok());
    }

    proptest::proptest! {
        #[test]
        fn stored_url_accepts_every_parsed_url(
            scheme in "(http|https|HTTP|hTTps)://{1,3}",
            rest in "[a-z0-9:@/?#.%\\[\\]-]{0,24}",
        ) {
            let value = format!("{scheme}{rest}");
            if let Ok(parsed) = TaskUrl::parse(value.as_str()) {
                proptest::prop_assert_eq!(TaskUrl::from_stored(value.as_str()), Ok(parsed));
            }
        }
    }

    #[test]
    fn name_keeps_text_as_sent() {
        let raw = "  \u{1b}[1mBold\u{1b}[22m\ttitle\u{a0} ";
        assert_eq!(TaskName::parse(raw).unwrap().as_str(), raw);
    }

    #[test]
    fn patch_semantics() {
        assert_eq!(Patch::Keep.apply(Some(1)), Some(1));
        assert_eq!(Patch::Clear.apply(Some(1)), None);
        assert_eq!(Patch::Set(2).apply(Some(1)), Some(2));
        assert_eq!(Patch::Set(2).apply(None), Some(2));
    }
}
