//! UTC timestamps as the API reads and writes them.
//!
//! The API's own format is `YYYY-MM-DD HH:MM:SS` in UTC. Input may also use a
//! `T` separator, fractional seconds (kept to the microsecond) and an RFC 3339
//! offset (`Z`, `+02:00`, `-0530`), which is converted to UTC.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// Earliest year a timestamp may have, after conversion to UTC.
pub const MIN_YEAR: i32 = 1970;
/// Latest year a timestamp may have, after conversion to UTC.
pub const MAX_YEAR: i32 = 9999;

const EXPECTED: &str = "expected `YYYY-MM-DD HH:MM:SS` in UTC, optionally with fractional \
                        seconds and an offset such as `Z` or `+02:00`";

/// An instant in UTC with microsecond precision, between 1970 and 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(NaiveDateTime);

/// Reason a timestamp string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("invalid timestamp {0:?}: {EXPECTED}")]
    Format(String),
    #[error("invalid timestamp {0:?}: no such date or time of day")]
    Impossible(String),
    #[error("invalid timestamp {0:?}: the year must be between {MIN_YEAR} and {MAX_YEAR} in UTC")]
    OutOfRange(String),
}

impl Timestamp {
    /// Returns the time `duration` later, saturating at the largest date.
    pub fn plus(self, duration: std::time::Duration) -> Self {
        let delta = chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
        Self(self.0.checked_add_signed(delta).unwrap_or(NaiveDateTime::MAX))
    }

    /// Wraps a UTC date-time, dropping precision below the microsecond.
    pub fn from_utc(value: NaiveDateTime) -> Self {
        let micros = value.nanosecond() / 1_000 * 1_000;
        Self(value.with_nanosecond(micros).unwrap_or(value))
    }

    /// Parses a timestamp in any accepted input format.
    ///
    /// # Errors
    /// Returns [`TimestampError`] for a malformed string, an impossible date
    /// or time (`2024-02-30`, `25:00:00`, a leap second) or a UTC year outside
    /// 1970-9999.
    pub fn parse(input: &str) -> Result<Self, TimestampError> {
        let format_error = || TimestampError::Format(excerpt(input));
        let bytes = input.as_bytes();
        if bytes.len() < 19 || !has_date_time_shape(&bytes[..19]) {
            return Err(format_error());
        }

        let (fraction_nanos, rest) = split_fraction(&input[19..]).ok_or_else(format_error)?;
        let offset = parse_offset(rest).ok_or_else(format_error)?;
        let local =
            parse_local(&input[..19], fraction_nanos).ok_or_else(|| TimestampError::Impossible(input.to_owned()))?;

        let utc = DateTime::<FixedOffset>::from_naive_utc_and_offset(local - offset, offset).naive_utc();
        if !(MIN_YEAR..=MAX_YEAR).contains(&utc.year()) {
            return Err(TimestampError::OutOfRange(excerpt(input)));
        }
        Ok(Self::from_utc(utc))
    }

    /// Returns the inner UTC date-time.
    pub fn as_naive(self) -> NaiveDateTime {
        self.0
    }

    /// Formats as the API's `YYYY-MM-DD HH:MM:SS`, dropping fractional seconds.
    pub fn to_api_string(self) -> String {
        let (date, time) = (self.0.date(), self.0.time());
        let Ok(year) = u32::try_from(date.year()) else {
            return self.0.format("%Y-%m-%d %H:%M:%S").to_string();
        };
        if year > 9999 {
            return self.0.format("%Y-%m-%d %H:%M:%S").to_string();
        }
        // Written digit by digit, because chrono's `format` parses its pattern
        // on every call and a batch's response carries one timestamp per task.
        let mut text = String::with_capacity(19);
        push_digits(&mut text, year, 4);
        text.push('-');
        push_digits(&mut text, date.month(), 2);
        text.push('-');
        push_digits(&mut text, date.day(), 2);
        text.push(' ');
        push_digits(&mut text, time.hour(), 2);
        text.push(':');
        push_digits(&mut text, time.minute(), 2);
        text.push(':');
        // chrono keeps a leap second as second 59 with an overlong fraction; `%S` shows it as 60.
        let leap = u32::from(time.nanosecond() >= 1_000_000_000);
        push_digits(&mut text, time.second() + leap, 2);
        text
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_api_string())
    }
}

/// Appends the last `width` decimal digits of `value`, with leading zeros.
fn push_digits(text: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10u32.pow(place)) % 10;
        text.push(char::from(b'0' + u8::try_from(digit).unwrap_or(0)));
    }
}

/// Keeps error messages short: at most 40 characters of the rejected input.
fn excerpt(input: &str) -> String {
    const MAX_CHARS: usize = 40;
    if input.chars().count() <= MAX_CHARS {
        return input.to_owned();
    }
    let mut short: String = input.chars().take(MAX_CHARS).collect();
    short.push('…');
    short
}

/// Checks `YYYY-MM-DD?HH:MM:SS` where `?` is a space, `T` or `t`.
fn has_date_time_shape(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(position, byte)| match position {
        4 | 7 => *byte == b'-',
        10 => matches!(byte, b' ' | b'T' | b't'),
        13 | 16 => *byte == b':',
        _ => byte.is_ascii_digit(),
    })
}

/// Splits an optional `.digits` prefix off, returning its value in nanoseconds.
fn split_fraction(text: &str) -> Option<(u32, &str)> {
    let Some(after_dot) = text.strip_prefix('.') else {
        return Some((0, text));
    };
    let digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let padded = format!("{:0<9}", &after_dot[..digits]);
    Some((padded.parse().ok()?, &after_dot[digits..]))
}

/// Parses `""`, `Z`, `±HH:MM` or `±HHMM` into an offset east of UTC.
fn parse_offset(text: &str) -> Option<FixedOffset> {
    if text.is_empty() || text == "Z" || text == "z" {
        return FixedOffset::east_opt(0);
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = match text.len() {
        6 if text.as_bytes()[3] == b':' => format!("{}{}", &text[1..3], &text[4..6]),
        5 => text[1..].to_owned(),
        _ => return None,
    };
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// Builds the local date-time from a shape-checked `YYYY-MM-DD?HH:MM:SS`.
fn parse_local(text: &str, nanos: u32) -> Option<NaiveDateTime> {
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().ok();
    let year = i32::try_from(number(0..4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)?;
    // `nanos` stays below one second, so chrono never builds a leap second here.
    let time = NaiveTime::from_hms_nano_opt(number(11..13)?, number(14..16)?, number(17..19)?, nanos)?;
    Some(date.and_time(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> String {
        Timestamp::parse(text).expect(text).as_naive().to_string()
    }

    #[test]
    fn accepts_api_format() {
        assert_eq!(utc("2024-01-20 09:00:00"), "2024-01-20 09:00:00");
    }

    #[test]
    fn accepts_t_separator_and_fraction() {
        assert_eq!(utc("2024-01-20T09:00:00.123456789"), "2024-01-20 09:00:00.123456");
        assert_eq!(utc("2024-01-20t09:00:00.5"), "2024-01-20 09:00:00.500");
    }

    #[test]
    fn converts_offsets_to_utc() {
        assert_eq!(utc("2024-01-20T09:00:00Z"), "2024-01-20 09:00:00");
        assert_eq!(utc("2024-01-20T09:00:00+02:00"), "2024-01-20 07:00:00");
        assert_eq!(utc("2024-01-20 23:30:00-0130"), "2024-01-21 01:00:00");
    }

    #[test]
    fn rejects_impossible_dates() {
        for text in ["2024-02-30 10:00:00", "2024-01-20 25:00:00", "2023-02-29 00:00:00", "2024-01-20 23:59:60"] {
            assert!(matches!(Timestamp::parse(text), Err(TimestampError::Impossible(_))), "{text}");
        }
    }

    #[test]
    fn rejects_years_outside_range() {
        for text in ["1969-12-31 23:59:59", "1970-01-01 00:30:00+01:00", "9999-12-31 23:00:00-02:00"] {
            assert!(matches!(Timestamp::parse(text), Err(TimestampError::OutOfRange(_))), "{text}");
        }
        assert!(Timestamp::parse("1970-01-01 00:00:00").is_ok());
    }

    #[test]
    fn rejects_malformed_text() {
        let cases = [
            "",
            "2024-01-20",
            "2024/01/20 09:00:00",
            "2024-01-20 09:00",
            "2024-1-20 09:00:00",
            "2024-01-20 09:00:00.",
            "2024-01-20 09:00:00+2",
            "2024-01-20 09:00:00 UTC",
            "2024-01-20 09:00:00+24:00",
            " 2024-01-20 09:00:00",
            "+12024-01-20 09:00:00",
            "2024-01-20 09:00:00.1234567890",
        ];
        for text in cases {
            assert!(matches!(Timestamp::parse(text), Err(TimestampError::Format(_))), "{text:?}");
        }
    }

    #[test]
    fn error_echoes_short_excerpt() {
        let message = Timestamp::parse(&"\"".repeat(10_000)).unwrap_err().to_string();
        assert!(message.len() < 300, "{} bytes", message.len());
    }

    #[test]
    fn formats_in_api_format() {
        let parsed = Timestamp::parse("2024-01-20T09:00:00.75+01:00").unwrap();
        assert_eq!(parsed.to_api_string(), "2024-01-20 08:00:00");
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,40}") {
            let _ = Timestamp::parse(&text);
        }

        #[test]
        fn api_format_round_trips(seconds in 0i64..253_402_300_799) {
            let value = chrono::DateTime::from_timestamp(seconds, 0).unwrap().naive_utc();
            let text = Timestamp::from_utc(value).to_api_string();
            proptest::prop_assert_eq!(Timestamp::parse(&text).unwrap().as_naive(), value);
        }

        #[test]
        fn api_format_matches_chrono(seconds in -62_000_000_000i64..400_000_000_000, micros in 0u32..1_000_000) {
            let value = chrono::DateTime::from_timestamp(seconds, micros * 1000).unwrap().naive_utc();
            let expected = value.format("%Y-%m-%d %H:%M:%S").to_string();
            proptest::prop_assert_eq!(Timestamp::from_utc(value).to_api_string(), expected);
        }
    }
}
