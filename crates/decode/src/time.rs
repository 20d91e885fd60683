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
    if let Some(ns) = parse_rfc3339_fast(s.as_bytes()) {
        return Some(ns);
    }
    parse_datetime_jiff(s)
}

/// The general parser behind [`parse_datetime`] (after its normalisation): jiff.
fn parse_datetime_jiff(s: &str) -> Option<i64> {
    if let Ok(ts) = s.parse::<Timestamp>() {
        return i64::try_from(ts.as_nanosecond()).ok();
    }
    let dt = s.parse::<DateTime>().ok()?;
    let ts = TimeZone::UTC.to_timestamp(dt).ok()?;
    i64::try_from(ts.as_nanosecond()).ok()
}

/// The form nearly every log writes, read without jiff: `YYYY-MM-DD[T ]HH:MM:SS`, an optional
/// `.` and 1 to 9 fraction digits, then `Z`, `+hh:mm`, `-hh:mm` or nothing (UTC). `None` means
/// "not sure": anything else (other spellings, leap seconds, values beyond `i64` nanoseconds)
/// is left to jiff, so this only ever answers what jiff would.
fn parse_rfc3339_fast(b: &[u8]) -> Option<i64> {
    fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
        let mut value = 0;
        for &c in b.get(at..at + n)? {
            if !c.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(c - b'0');
        }
        Some(value)
    }
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            nanos = nanos * 10 + i64::from(b[at] - b'0');
            at += 1;
        }
        let n = at - start;
        if n == 0 || n > 9 {
            return None;
        }
        nanos *= 10_i64.pow(9 - n as u32);
    }
    let offset_seconds = match &b[at..] {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(b, at + 1, 2)?, digits(b, at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = h * 3600 + m * 60;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

/// A duration as people type it — `430ms`, `1.5s`, `250us`, `100ns`, `5m`, `1h`, `1d` — in ns.
/// `None` when it is not one, or is negative or longer than 100 years.
pub fn parse_duration_ns(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit_ns = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86_400e9,
        _ => return None,
    };
    let ns = number * unit_ns;
    (0.0..=100.0 * 365.0 * 86_400e9)
        .contains(&ns)
        .then_some(ns as i64)
}

/// A time as people type it in a flag or a URL: `now()` (or `now`), `now() - 30m`,
/// `now()+1h`, RFC 3339, or anything [`parse_any`] reads (epoch numbers by magnitude).
pub fn parse_user_time(text: &str, now_ns: i64) -> Option<i64> {
    let text = text.trim();
    let Some(rest) = text
        .strip_prefix("now()")
        .or_else(|| text.strip_prefix("now"))
    else {
        return parse_any(text);
    };
    let rest = rest.trim_start();
    if rest.is_empty() {
        return Some(now_ns);
    }
    let (sign, amount) = match rest.split_at(1) {
        ("-", amount) => (-1, amount),
        ("+", amount) => (1, amount),
        _ => return None,
    };
    Some(now_ns.saturating_add(sign * parse_duration_ns(amount)?))
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

    /// The fast path answers exactly what jiff answers, or leaves the input to jiff.
    #[test]
    fn fast_path_agrees_with_jiff() {
        let mut checked = 0;
        let mut fast = 0;
        let mut check = |s: &str| {
            let got = parse_rfc3339_fast(s.as_bytes());
            if got.is_some() {
                fast += 1;
            }
            let want = parse_datetime_jiff(s);
            if let Some(ns) = got {
                assert_eq!(Some(ns), want, "{s:?}");
            }
            // The whole function against its jiff-only self (trimming, `/` and `,` included).
            let normalised = s.trim().replacen('/', "-", 2).replacen(',', ".", 1);
            let reference = if s.trim().len() < 10
                || !s.trim().as_bytes()[..4].iter().all(u8::is_ascii_digit)
            {
                None
            } else {
                parse_datetime_jiff(&normalised)
            };
            assert_eq!(parse_datetime(s), reference, "{s:?}");
            checked += 1;
        };
        // Every calendar edge, each separator and suffix.
        let suffixes = [
            "",
            "Z",
            "z",
            "+00:00",
            "-00:00",
            "+02:00",
            "-07:30",
            "+23:59",
            "-23:59",
            "+24:00",
            "+14:60",
            "+0200",
            "+02",
            "Z ",
            "ZZ",
            "+02:00:00",
            "[UTC]",
            "Z[UTC]",
            "x",
        ];
        let fractions = [
            "",
            ".",
            ".1",
            ".12",
            ".123",
            ".1234",
            ".12345",
            ".123456",
            ".1234567",
            ".12345678",
            ".123456789",
            ".1234567891",
            ".000000001",
            ".999999999",
            ",123",
            ".1a",
        ];
        for year in [
            1677, 1678, 1900, 1970, 1999, 2000, 2023, 2024, 2100, 2262, 2263,
        ] {
            for month in 0..=13 {
                for day in [0, 1, 28, 29, 30, 31, 32] {
                    check(&format!("{year:04}-{month:02}-{day:02}T12:34:56Z"));
                    check(&format!("{year:04}-{month:02}-{day:02} 00:00:00.5+01:00"));
                }
            }
        }
        for sep in ["T", " ", "t", "_"] {
            for (h, m, sec) in [
                (0, 0, 0),
                (23, 59, 59),
                (24, 0, 0),
                (23, 60, 0),
                (23, 59, 60),
            ] {
                for fraction in fractions {
                    for suffix in suffixes {
                        check(&format!(
                            "2024-02-29{sep}{h:02}:{m:02}:{sec:02}{fraction}{suffix}"
                        ));
                    }
                }
            }
        }
        // The ends of the i64 nanosecond range, with offsets across them.
        for s in [
            "1677-09-21T00:12:43.145224192Z",
            "1677-09-21T00:12:43.145224191Z",
            "1677-09-21T00:12:44Z",
            "1677-09-21T01:12:44+01:00",
            "2262-04-11T23:47:16.854775807Z",
            "2262-04-11T23:47:16.854775808Z",
            "2262-04-11T22:47:16.854775807-01:00",
            "2262-04-11T23:47:17Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            "2024-05-01T12:00:00.123456789Z",
            "2024-5-01T12:00:00Z",
            "2024-05-01T12:00Z",
            "2024-05-01T1:00:00Z",
            "+2024-05-01T12:00:00Z",
            "2024-05-01T12:00:00.+01:00",
        ] {
            check(s);
        }
        // Random valid-looking times over 1900..2200 with random fractions and offsets.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        };
        for _ in 0..20_000 {
            let digits = next(10) as usize;
            let fraction = if digits == 0 {
                String::new()
            } else {
                format!(".{:0digits$}", next(10u64.pow(digits as u32)))
            };
            let suffix = match next(4) {
                0 => String::new(),
                1 => "Z".to_owned(),
                _ => format!(
                    "{}{:02}:{:02}",
                    if next(2) == 0 { '+' } else { '-' },
                    next(24),
                    next(60)
                ),
            };
            check(&format!(
                "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}{fraction}{suffix}",
                1900 + next(300),
                1 + next(12),
                1 + next(31),
                if next(2) == 0 { 'T' } else { ' ' },
                next(24),
                next(60),
                next(60),
            ));
        }
        assert!(
            checked > 25_000 && fast > 15_000,
            "{checked} checked, {fast} fast"
        );
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

    #[test]
    fn durations_and_user_times() {
        assert_eq!(parse_duration_ns("10m"), Some(600_000_000_000));
        assert_eq!(parse_duration_ns(" 1.5s "), Some(1_500_000_000));
        assert_eq!(parse_duration_ns("250us"), Some(250_000));
        assert_eq!(parse_duration_ns("10 parsecs"), None);
        assert_eq!(parse_duration_ns("500"), None);
        assert_eq!(parse_duration_ns("1000000d"), None);
        let now = 1_800_000_000_000_000_000;
        assert_eq!(parse_user_time("now()", now), Some(now));
        assert_eq!(
            parse_user_time("now() - 1h", now),
            Some(now - 3_600_000_000_000)
        );
        assert_eq!(parse_user_time("now+5m", now), Some(now + 300_000_000_000));
        assert_eq!(parse_user_time("now() * 2", now), None);
        assert_eq!(
            parse_user_time("2024-05-01T12:00:00.123456789Z", now),
            Some(NS)
        );
        assert_eq!(parse_user_time("1714564800", now), Some(NS - 123_456_789));
    }
}
