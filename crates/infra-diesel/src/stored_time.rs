//! Task timestamps as the database stores them, with a fast text form on SQLite.
//!
//! SQLite keeps timestamps as text. diesel writes them with chrono's
//! `"%F %T%.f"` and reads them by trying chrono's parser on 18 formats in
//! turn, which interprets the format string each time. In a profile of
//! 1000-task updates, formatting and parsing timestamps took about a tenth
//! of the write transaction. [`StoredTime`] writes the same text by hand and
//! reads that form directly, handing any other text to diesel's parser.
//! PostgreSQL's binary timestamps go through diesel unchanged.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use diesel::deserialize::{self, FromSql, Queryable};
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{Nullable, Timestamp};
use diesel::sqlite::Sqlite;

/// A `Timestamp` column value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::deserialize::FromSqlRow)]
pub struct StoredTime(pub NaiveDateTime);

impl From<StoredTime> for NaiveDateTime {
    fn from(time: StoredTime) -> Self {
        time.0
    }
}

/// A `Nullable<Timestamp>` column value, for `#[diesel(deserialize_as)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybeStoredTime(pub Option<NaiveDateTime>);

impl From<MaybeStoredTime> for Option<NaiveDateTime> {
    fn from(time: MaybeStoredTime) -> Self {
        time.0
    }
}

impl<DB> Queryable<Nullable<Timestamp>, DB> for MaybeStoredTime
where
    DB: diesel::backend::Backend,
    StoredTime: FromSql<Timestamp, DB>,
{
    type Row = Option<StoredTime>;

    fn build(row: Option<StoredTime>) -> deserialize::Result<Self> {
        Ok(Self(row.map(NaiveDateTime::from)))
    }
}

impl ToSql<Timestamp, Pg> for StoredTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <NaiveDateTime as ToSql<Timestamp, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<Timestamp, Pg> for StoredTime {
    fn from_sql(value: <Pg as diesel::backend::Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<Timestamp, Pg>>::from_sql(value).map(Self)
    }
}

impl ToSql<Timestamp, Sqlite> for StoredTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(format_sqlite(self.0));
        Ok(IsNull::No)
    }
}

impl FromSql<Timestamp, Sqlite> for StoredTime {
    fn from_sql(mut value: <Sqlite as diesel::backend::Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        if let Some(time) = parse_sqlite(value.read_text()) {
            return Ok(Self(time));
        }
        // Any other form SQLite's date functions or older writers may have stored.
        <NaiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql(value).map(Self)
    }
}

/// Formats like chrono's `"%F %T%.f"`: the fraction has 3, 6 or 9 digits,
/// the fewest that keep every nanosecond, and is left out when zero.
fn format_sqlite(time: NaiveDateTime) -> String {
    use std::fmt::Write as _;

    let nanos = time.nanosecond();
    if nanos >= 1_000_000_000 || !(0..=9999).contains(&time.year()) {
        // A leap second or a year outside four digits: chrono's own formatter.
        return time.format("%F %T%.f").to_string();
    }
    let mut text = String::with_capacity(29);
    // `fmt::Write` for `String` never returns an error.
    let _ = write!(
        text,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
    let _ = if nanos == 0 {
        Ok(())
    } else if nanos.is_multiple_of(1_000_000) {
        write!(text, ".{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        write!(text, ".{:06}", nanos / 1_000)
    } else {
        write!(text, ".{nanos:09}")
    };
    text
}

/// Parses `YYYY-MM-DD HH:MM:SS` with an optional fraction of 1 to 9 digits.
fn parse_sqlite(text: &str) -> Option<NaiveDateTime> {
    let bytes = text.as_bytes();
    if bytes.len() < 19 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b' ' {
        return None;
    }
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range]
            .iter()
            .try_fold(0u32, |value, byte| byte.is_ascii_digit().then(|| value * 10 + u32::from(byte - b'0')))
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(number(0..4)?).ok()?, number(5..7)?, number(8..10)?)?;
    let nanos = match &bytes[19..] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let fraction = number(20..bytes.len())?;
            fraction * 10u32.pow(9 - u32::try_from(digits.len()).ok()?)
        }
        _ => return None,
    };
    let time = NaiveTime::from_hms_nano_opt(number(11..13)?, number(14..16)?, number(17..19)?, nanos)?;
    Some(NaiveDateTime::new(date, time))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%F %T%.f").unwrap()
    }

    #[test]
    fn format_matches_chrono() {
        let cases = [
            "2024-01-20 09:00:00",
            "2024-01-20 09:00:00.5",
            "2024-01-20 09:00:00.123",
            "2026-12-05 02:33:09.123456",
            "1999-12-31 23:59:59.000001",
            "2030-02-28 00:00:00.123456789",
            "0001-01-01 00:00:00.000000010",
        ];
        for case in cases {
            let value = time(case);
            assert_eq!(format_sqlite(value), value.format("%F %T%.f").to_string(), "{case}");
        }
    }

    #[test]
    fn parse_reads_formatted_text() {
        for case in [
            "2024-01-20 09:00:00",
            "2024-01-20 09:00:00.5",
            "2026-12-05 02:33:09.123456",
            "2030-02-28 00:00:00.123456789",
        ] {
            let value = time(case);
            assert_eq!(parse_sqlite(&format_sqlite(value)), Some(value), "{case}");
        }
    }

    #[test]
    fn parse_leaves_other_forms() {
        for text in [
            "2024-01-20T09:00:00",
            "2024-01-20 09:00",
            "2024-01-20 09:00:00Z",
            "2024-13-01 00:00:00",
            "2024-01-20 09:00:00.1234567890",
            "2024-01-20 09:00:00.",
        ] {
            assert_eq!(parse_sqlite(text), None, "{text}");
        }
    }
}
