//! Reading values: durations, RFC 3339 times, numbers and regexes.

use super::ast::NumValue;

/// Duration units, largest first, with their size in nanoseconds.
pub(crate) const DURATION_UNITS_DESC: [(&str, i64); 7] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

const UNITS_HELP: &str = "ns, us, ms, s, m, h, d";

/// `430ms`, `2s`, `1.5s`, `250us`, `100ns`, `5m`, `1h`, `1d`; a bare `0` is zero.
pub(crate) fn parse_duration(text: &str) -> Result<i64, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if unit.is_empty() {
        if !number.is_empty() && number.bytes().all(|b| b == b'0') {
            return Ok(0);
        }
        return Err(format!(
            "a duration needs a unit ({UNITS_HELP}), got {text:?}"
        ));
    }
    let unit = if unit == "µs" { "us" } else { unit };
    let Some(&(_, size)) = DURATION_UNITS_DESC.iter().find(|(u, _)| *u == unit) else {
        return Err(format!(
            "invalid duration {text:?}: expected a number and a unit ({UNITS_HELP})"
        ));
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty()
        || !digits_ok(int)
        || !digits_ok(frac)
        || (number.contains('.') && frac.is_empty())
    {
        return Err(format!(
            "invalid duration {text:?}: expected a number and a unit ({UNITS_HELP})"
        ));
    }
    let out_of_range = || format!("duration {text:?} is out of range");
    let int: i128 = int.parse().map_err(|_| out_of_range())?;
    let mut ns = int * i128::from(size);
    // Fractions below a nanosecond are dropped.
    let mut scale = i128::from(size);
    for digit in frac.bytes().take(18) {
        scale /= 10;
        ns += i128::from(digit - b'0') * scale;
    }
    i64::try_from(ns).map_err(|_| out_of_range())
}

/// RFC 3339 (`2024-06-01T12:00:00Z`, `2024-06-01T14:00:00.5+02:00`) → nanoseconds since the epoch.
pub(crate) fn parse_time(text: &str) -> Result<i64, String> {
    let ts: jiff::Timestamp = text.parse().map_err(|_| {
        format!("invalid time {text:?}: expected RFC 3339 (2024-06-01T12:00:00Z) or now() - 30m")
    })?;
    i64::try_from(ts.as_nanosecond()).map_err(|_| format!("time {text:?} is out of range"))
}

/// A bare word that reads as a number, normalised as tantivy normalises JSON numbers.
pub(crate) fn parse_number(text: &str) -> Option<NumValue> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.starts_with(|c: char| c.is_ascii_digit())
        || !digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
    {
        return None;
    }
    if let Ok(v) = text.parse::<i64>() {
        return Some(NumValue::I64(v));
    }
    if let Ok(v) = text.parse::<u64>() {
        return Some(NumValue::U64(v));
    }
    let v: f64 = text.parse().ok().filter(|v: &f64| v.is_finite())?;
    Some(normalize_f64(v))
}

fn normalize_f64(v: f64) -> NumValue {
    if v.fract() == 0.0 && v >= i64::MIN as f64 && v < i64::MAX as f64 {
        NumValue::I64(v as i64)
    } else if v.fract() == 0.0 && v >= 0.0 && v < u64::MAX as f64 {
        NumValue::U64(v as u64)
    } else {
        NumValue::F64(v)
    }
}

/// `=~` matches the whole value, so a leading `^` and a trailing unescaped `$` are redundant;
/// tantivy's automaton regex does not accept them, so they are dropped.
pub(crate) fn strip_anchors(pattern: &str) -> &str {
    let p = pattern.strip_prefix('^').unwrap_or(pattern);
    match p.strip_suffix('$') {
        Some(rest) if rest.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 0 => rest,
        _ => p,
    }
}

/// Checks the pattern with the `regex` crate (for its messages), then with the automaton regex
/// tantivy runs, which lacks some features (lazy repetition, `\b`, anchors inside the pattern).
pub(crate) fn validate_regex(pattern: &str) -> Result<(), String> {
    let pattern = strip_anchors(pattern);
    if let Err(e) = regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
    {
        return Err(match e {
            regex::Error::Syntax(s) => s
                .lines()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or(&s)
                .to_string(),
            other => other.to_string(),
        });
    }
    let any_field = tantivy::schema::Field::from_field_id(0);
    tantivy::query::RegexQuery::from_pattern(pattern, any_field).map_err(|e| {
        // tantivy-fst's error type is not reachable from here; its messages are.
        let message = e.to_string();
        if message.contains("Lazy") {
            "lazy repetition (*?, +?, ??) is not supported".to_string()
        } else if message.contains("Empty match") || message.contains("Word boundary") {
            "^ and $ are allowed only at the ends, and \\b, \\A, \\z not at all".to_string()
        } else if message.contains("size limit") {
            "the pattern is too complex".to_string()
        } else {
            message
                .rsplit("RegexQueryError: ")
                .next()
                .unwrap_or(&message)
                .to_string()
        }
    })?;
    Ok(())
}
