//! Character rules shared by the text fields of the API.
//!
//! Text is stored exactly as sent, surrounding spaces included. Only NUL is
//! rejected everywhere (PostgreSQL cannot store it in `TEXT`); identifiers
//! also reject the other control characters.

use crate::error::DetailCode;

/// Constraints on a text field.
#[derive(Debug, Clone, Copy)]
pub struct TextRule {
    /// Maximum length in Unicode scalar values.
    pub max_chars: usize,
    /// Rejects an empty or whitespace-only value.
    pub reject_blank: bool,
    /// Rejects control characters (Unicode category Cc), not only NUL.
    pub reject_controls: bool,
}

/// A text value broke a [`TextRule`]: the code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextViolation {
    pub code: DetailCode,
    pub message: String,
}

impl TextRule {
    /// Checks `value` against the rule.
    ///
    /// # Errors
    /// Returns the first rule broken: NUL, control character, blank, too long.
    pub fn check(&self, value: &str) -> Result<(), TextViolation> {
        // Most values are plain ASCII, which one pass over the bytes settles.
        // Any other value, and any violation, goes through the full check,
        // which also builds the message.
        if value.is_ascii() && self.ascii_passes(value.as_bytes()) {
            return Ok(());
        }
        self.check_chars(value)
    }

    /// Tells whether an ASCII value passes the rule. Of the characters the
    /// rule looks at, ASCII contains no bidirectional control, and its control
    /// characters (NUL included) are the bytes `u8::is_ascii_control` matches.
    fn ascii_passes(&self, bytes: &[u8]) -> bool {
        let controls = if self.reject_controls { bytes.iter().any(u8::is_ascii_control) } else { bytes.contains(&0) };
        let blank = self.reject_blank && bytes.iter().all(|byte| is_invisible(char::from(*byte)));
        !controls && !blank && bytes.len() <= self.max_chars
    }

    fn check_chars(&self, value: &str) -> Result<(), TextViolation> {
        let violation = |code, message: String| Err(TextViolation { code, message });
        if let Some(position) = value.chars().position(|c| c == '\0') {
            return violation(
                DetailCode::ContainsNul,
                format!("contains a NUL character (U+0000) at position {position}; remove it"),
            );
        }
        if self.reject_controls
            && let Some((position, c)) = value.chars().enumerate().find(|(_, c)| c.is_control())
        {
            return violation(
                DetailCode::ControlCharacter,
                format!(
                    "contains the control character U+{:04X} at position {position}; identifiers may not contain control characters",
                    u32::from(c)
                ),
            );
        }
        if self.reject_controls
            && let Some((position, c)) = value.chars().enumerate().find(|(_, c)| is_bidi_control(*c))
        {
            return violation(
                DetailCode::ControlCharacter,
                format!(
                    "contains the bidirectional control character U+{:04X} at position {position}; identifiers may not contain it",
                    u32::from(c)
                ),
            );
        }
        if self.reject_blank && value.chars().all(is_invisible) {
            return violation(DetailCode::Blank, "must not be empty or only whitespace".to_owned());
        }
        let length = value.chars().count();
        if length > self.max_chars {
            return violation(
                DetailCode::TooLong,
                format!("is {length} characters long; the maximum is {}", self.max_chars),
            );
        }
        Ok(())
    }
}

/// Tells whether `c` changes the display direction of text (a way to disguise identifiers).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Tells whether `c` shows nothing: whitespace, or a zero-width character.
fn is_invisible(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Defines a text value type: a private `String` checked against `$rule` on construction.
macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $rule:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The rule every value of this type satisfies.
            pub const RULE: $crate::text::TextRule = $rule;

            /// Checks `value` against [`Self::RULE`] and wraps it unchanged.
            ///
            /// # Errors
            /// Returns the rule that `value` breaks.
            pub fn parse(value: impl Into<String>) -> Result<Self, $crate::text::TextViolation> {
                let value = value.into();
                Self::RULE.check(&value)?;
                Ok(Self(value))
            }

            /// Returns the text exactly as the client sent it.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Returns the owned text.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use text_type;

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTIFIER: TextRule = TextRule { max_chars: 5, reject_blank: true, reject_controls: true };
    const FREE_TEXT: TextRule = TextRule { max_chars: 5, reject_blank: false, reject_controls: false };

    fn code(rule: TextRule, value: &str) -> Option<DetailCode> {
        rule.check(value).err().map(|violation| violation.code)
    }

    #[test]
    fn nul_rejected_everywhere() {
        assert_eq!(code(FREE_TEXT, "a\0b"), Some(DetailCode::ContainsNul));
        assert_eq!(code(IDENTIFIER, "a\0b"), Some(DetailCode::ContainsNul));
    }

    #[test]
    fn controls_rejected_in_identifiers_only() {
        assert_eq!(code(IDENTIFIER, "a\tb"), Some(DetailCode::ControlCharacter));
        assert_eq!(code(IDENTIFIER, "a\u{1b}b"), Some(DetailCode::ControlCharacter));
        assert_eq!(code(FREE_TEXT, "a\tb\u{1b}"), None);
    }

    #[test]
    fn blank_rejected_when_required() {
        assert_eq!(code(IDENTIFIER, ""), Some(DetailCode::Blank));
        assert_eq!(code(IDENTIFIER, " \u{a0} "), Some(DetailCode::Blank));
        assert_eq!(code(FREE_TEXT, ""), None);
    }

    #[test]
    fn invisible_text_is_blank() {
        assert_eq!(code(IDENTIFIER, "\u{200B}"), Some(DetailCode::Blank));
        assert_eq!(code(IDENTIFIER, " \u{FEFF} "), Some(DetailCode::Blank));
    }

    #[test]
    fn bidi_controls_rejected_in_identifiers() {
        assert_eq!(code(IDENTIFIER, "ab\u{202E}c"), Some(DetailCode::ControlCharacter));
        assert_eq!(code(FREE_TEXT, "ab\u{202E}c"), None);
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(code(IDENTIFIER, "ééééé"), None);
        assert_eq!(code(IDENTIFIER, "éééééé"), Some(DetailCode::TooLong));
    }

    #[test]
    fn surrounding_spaces_allowed() {
        assert_eq!(code(IDENTIFIER, " ab "), None);
    }

    proptest::proptest! {
        /// The ASCII shortcut agrees with the full check on every rule.
        #[test]
        fn ascii_shortcut_matches_full_check(
            value in "[\\x00-\\x7F]{0,8}",
            max_chars in 0usize..8,
            reject_blank: bool,
            reject_controls: bool,
        ) {
            let rule = TextRule { max_chars, reject_blank, reject_controls };
            proptest::prop_assert_eq!(rule.check(&value), rule.check_chars(&value));
        }
    }
}
