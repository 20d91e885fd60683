//! Byte-level writing helpers: JSON strings, hex ids and UTC timestamps without allocation.

use std::io::Write;

/// Appends `s` as a quoted JSON string.
pub(crate) fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\t' => b"\\t",
            b'\r' => b"\\r",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                let _ = write!(out, "\\u{:04x}", b);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

pub(crate) fn hex128(out: &mut Vec<u8>, v: u128) {
    for i in (0..32).rev() {
        out.push(HEX[((v >> (i * 4)) & 0xf) as usize]);
    }
}

pub(crate) fn hex64(out: &mut Vec<u8>, v: u64) {
    for i in (0..16).rev() {
        out.push(HEX[((v >> (i * 4)) & 0xf) as usize]);
    }
}

pub(crate) fn trace_hex(v: u128) -> String {
    format!("{v:032x}")
}

/// Civil date and time (UTC) of a nanosecond timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
}

pub(crate) fn civil(ns: i64) -> Civil {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: sod / 3600,
        minute: sod / 60 % 60,
        second: sod % 60,
        nanos,
    }
}

fn date_time(out: &mut Vec<u8>, c: &Civil) {
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
}

/// `2026-11-20T14:10:00.123Z` (milliseconds, truncated).
pub(crate) fn rfc3339_ms(out: &mut Vec<u8>, ns: i64) {
    let c = civil(ns);
    date_time(out, &c);
    let _ = write!(out, ".{:03}Z", c.nanos / 1_000_000);
}

/// `2026-11-20T14:10:00.123456+00:00`, as Python's `datetime.isoformat()` writes it.
pub(crate) fn iso_micros_offset(out: &mut Vec<u8>, ns: i64) {
    let c = civil(ns);
    date_time(out, &c);
    let _ = write!(out, ".{:06}+00:00", c.nanos / 1_000);
}

/// `2026-11-20T14:10:00Z` (whole seconds; used for time-bucket keys).
pub(crate) fn rfc3339_secs(ns: i64) -> String {
    let mut out = Vec::with_capacity(20);
    date_time(&mut out, &civil(ns));
    out.push(b'Z');
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        // 2026-11-20T14:10:00.123456789Z
        let ns = 1_795_183_800_123_456_789;
        let mut v = Vec::new();
        rfc3339_ms(&mut v, ns);
        assert_eq!(String::from_utf8(v).unwrap(), "2026-11-20T14:10:00.123Z");
        let mut v = Vec::new();
        iso_micros_offset(&mut v, ns);
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "2026-11-20T14:10:00.123456+00:00"
        );
        assert_eq!(rfc3339_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_secs(951_782_400_000_000_000),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn escapes_json() {
        let mut v = Vec::new();
        json_str(&mut v, "a\"b\\c\nd\u{1}é");
        let s = String::from_utf8(v).unwrap();
        assert_eq!(
            serde_json::from_str::<String>(&s).unwrap(),
            "a\"b\\c\nd\u{1}é"
        );
    }
}
