//! Timestamps as logs write them, to nanoseconds since the Unix epoch (UTC).

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::fmt::rfc2822::DateTimeParser as Rfc2822Parser;
use jiff::fmt::strtime;
use jiff::tz::TimeZone;

static RFC2822: Rfc2822Parser = Rfc2822Parser::new();

/// An RFC 3339 / ISO 8601 time at any precision and offset (`2024-05-01T12:00:00.123456789Z`,
/// `2024-05-01T14:00:00+02:00`, a space instead of `T`, a comma before the fraction), or
/// `YYYY-MM-DD HH:MM:SS[.fff]` without an offset, read as UTC.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    // Quick reject: every accepted form starts with a 4-digit year and a dash.
    let b = s.as_bytes();
    if b.len() < 10 || !b[..4].iter().all(u8::is_ascii_digit) || (b[4] != b'-' && b[4] != b'/') {
        return None;
    }
    let owned;
    let s = if b[4] == b'/' || s.contains(',') {
        // Go's log package writes 2024/05/01; log4j writes a comma before the fraction.
        owned = s.replacen('/', "-", 2).replacen(',', ".", 1);
        owned.as_str()
    } else {
        s
    };
    if let Ok(ts) = s.parse::<Timestamp>() {
        return i64::try_from(ts.as_nanosecond()).ok();
    }
    let dt = s.parse::<DateTime>().ok()?;
    let ts = TimeZone::UTC.to_timestamp(dt).ok()?;
    i64::try_from(ts.as_nanosecond()).ok()
}

/// An epoch number in seconds, milliseconds, microseconds or nanoseconds, told apart by
/// magnitude: below 1e11 seconds (until year 5138), below 1e14 ms, below 1e17 µs, else ns.
pub fn epoch_to_ns(value: f64) -> Option<i64> {
    if !value.is_finite() || value <= 0.0 {
        return None;
    }
    let ns = if value < 1e11 {
        value * 1e9
    } else if value < 1e14 {
        value * 1e6
    } else if value < 1e17 {
        value * 1e3
    } else {
        value
    };
    (ns < i64::MAX as f64).then_some(ns as i64)
}

/// An integer epoch, exactly (no float rounding for nanosecond values).
pub fn epoch_int_to_ns(value: i64) -> Option<i64> {
    match value {
        v if v <= 0 => None,
        v if v < 100_000_000_000 => v.checked_mul(1_000_000_000),
        v if v < 100_000_000_000_000 => v.checked_mul(1_000_000),
        v if v < 100_000_000_000_000_000 => v.checked_mul(1_000),
        v => Some(v),
    }
}

/// A time given as text: a date-time, an epoch number written as a string, an access-log time
/// (`01/May/2024:12:00:00 +0000`) or an RFC 2822 / HTTP date (`Wed, 01 May 2024 12:00:00 GMT`).
pub fn parse_any(s: &str) -> Option<i64> {
    let s = s.trim();
    let first = *s.as_bytes().first()?;
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok().and_then(epoch_int_to_ns);
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return s.parse::<f64>().ok().and_then(epoch_to_ns);
    }
    if first.is_ascii_alphabetic() {
        return parse_rfc2822(s);
    }
    parse_datetime(s).or_else(|| parse_clf(s))
}

/// The Common Log Format time that nginx and Apache write between brackets:
/// `01/May/2024:12:00:00 +0000`.
pub fn parse_clf(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return None;
    }
    let ts = strtime::parse("%d/%b/%Y:%H:%M:%S %z", s)
        .ok()?
        .to_timestamp()
        .ok()?;
    i64::try_from(ts.as_nanosecond()).ok()
}

/// An RFC 2822 date (mail, HTTP `Date` headers, some Node and Ruby loggers).
pub fn parse_rfc2822(s: &str) -> Option<i64> {
    let ts = RFC2822.parse_timestamp(s.trim()).ok()?;
    i64::try_from(ts.as_nanosecond()).ok()
}

/// Formats nanoseconds since the epoch as RFC 3339 UTC with nanoseconds
/// (`2024-05-01T12:00:00.123456789Z`).
pub fn format_rfc3339_ns(ns: i64) -> String {
    match Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(ts) => format!("{ts:.9}"),
        Err(_) => ns.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i64 = 1_714_564_800_123_456_789; // 2024-05-01T12:00:00.123456789Z

    #[test]
    fn date_times_at_any_precision_and_offset() {
        assert_eq!(parse_datetime("2024-05-01T12:00:00.123456789Z"), Some(NS));
        assert_eq!(
            parse_datetime("2024-05-01T14:00:00.123456789+02:00"),
            Some(NS)
        );
        assert_eq!(parse_datetime("2024-05-01 12:00:00.123456789"), Some(NS));
        assert_eq!(
            parse_datetime("2024-05-01 12:00:00,123"),
            Some(NS - 456_789)
        );
        assert_eq!(
            parse_datetime("2024/05/01 12:00:00"),
            Some(NS - 123_456_789)
        );
        assert_eq!(
            parse_datetime("2024-05-01T12:00:00Z"),
            Some(NS - 123_456_789)
        );
        assert_eq!(parse_datetime("not a time"), None);
        assert_eq!(parse_datetime("2024-13-01T00:00:00Z"), None);
        assert_eq!(
            parse_datetime("2024-05-01T12:00:00.123456789+0000"),
            Some(NS)
        );
        assert_eq!(parse_datetime("2024-05-01T12:00:00.123456"), Some(NS - 789));
    }

    #[test]
    fn access_log_and_mail_dates() {
        let s = NS - 123_456_789;
        assert_eq!(parse_clf("01/May/2024:14:00:00 +0200"), Some(s));
        assert_eq!(parse_any("01/May/2024:12:00:00 +0000"), Some(s));
        assert_eq!(parse_any("Wed, 01 May 2024 12:00:00 GMT"), Some(s));
        assert_eq!(parse_any("Wed, 01 May 2024 12:00:00 +0000"), Some(s));
        assert_eq!(parse_any("yesterday"), None);
        assert_eq!(parse_any(""), None);
        assert_eq!(parse_clf("01/Foo/2024:12:00:00 +0000"), None);
    }

    #[test]
    fn epochs_by_magnitude() {
        let s = 1_714_564_800;
        assert_eq!(epoch_int_to_ns(s), Some(s * 1_000_000_000));
        assert_eq!(epoch_int_to_ns(s * 1000), Some(s * 1_000_000_000));
        assert_eq!(epoch_int_to_ns(s * 1_000_000), Some(s * 1_000_000_000));
        assert_eq!(epoch_int_to_ns(NS), Some(NS));
        assert_eq!(
            epoch_to_ns(1_714_564_800.5),
            Some(1_714_564_800_500_000_000)
        );
        assert_eq!(parse_any("1714564800123"), Some(1_714_564_800_123_000_000));
        assert_eq!(format_rfc3339_ns(NS), "2024-05-01T12:00:00.123456789Z");
    }
}
