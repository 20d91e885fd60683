//! Trace and span identifiers in every spelling real systems write, normalised to W3C form.
//!
//! A [`TraceId`] is 128 bits and never zero; a [`SpanId`] is 64 bits and never zero. Datadog-style
//! decimal trace ids carry only the low 64 bits of the real id, so they parse to
//! [`TraceRef::Low64`], which the index matches against the low half of full ids.

use std::fmt;
use std::num::{NonZeroU64, NonZeroU128};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard base64, read leniently as Go's and Python's decoders do: non-zero bits after the
/// last byte (Jaeger's own fixtures have them) and missing padding are accepted.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a string is not an id. Decoders keep the record and turn this into a warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("empty id")]
    Empty,
    #[error("all-zero id is not a valid id")]
    AllZero,
    #[error("expected {expected}, got {got} characters")]
    Length { expected: &'static str, got: usize },
    #[error("invalid character {ch:?} at position {pos}")]
    InvalidChar { ch: char, pos: usize },
    #[error("decimal id does not fit in 64 bits")]
    DecimalRange,
    #[error("invalid base64 id")]
    Base64,
    #[error("not an AWS X-Ray trace id: {0}")]
    XRay(&'static str),
    #[error("not a Google Cloud trace name (projects/P/traces/HEX)")]
    CloudTrace,
    #[error("invalid traceparent: {0}")]
    TraceParent(&'static str),
    #[error("unrecognised id format")]
    Unrecognised,
}

/// A 128-bit trace id, never all zeros. Displays as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(NonZeroU128);

/// A 64-bit span id, never all zeros. Displays as 16 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(NonZeroU64);

/// What a log record knows about its trace: the whole id, or only its low 64 bits (Datadog's
/// decimal `dd.trace_id`), which must be matched against the low half of full trace ids.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TraceRef {
    Full(TraceId),
    Low64(NonZeroU64),
}

/// A parsed W3C `traceparent` header value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TraceParent {
    pub version: u8,
    pub trace_id: TraceId,
    /// The caller's span id (the server span's parent).
    pub parent_id: SpanId,
    pub flags: u8,
}

/// An AWS X-Ray trace header (`Root=1-...;Parent=...;Sampled=1`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct XRayHeader {
    pub trace_id: TraceId,
    pub parent_id: Option<SpanId>,
    pub sampled: Option<bool>,
}

impl TraceId {
    pub fn from_u128(value: u128) -> Option<TraceId> {
        NonZeroU128::new(value).map(TraceId)
    }

    pub fn as_u128(self) -> u128 {
        self.0.get()
    }

    /// The low 64 bits: what a 64-bit system (Datadog, old Zipkin/Jaeger) knows of this id.
    pub fn low64(self) -> u64 {
        self.0.get() as u64
    }

    pub fn high64(self) -> u64 {
        (self.0.get() >> 64) as u64
    }

    /// The 32 lowercase hex digits `Display` writes, without a formatter (the index writes the
    /// id of every record it stores).
    pub fn hex(self) -> Hex<32> {
        Hex(hex_digits(self.0.get()))
    }

    pub fn to_bytes(self) -> [u8; 16] {
        self.0.get().to_be_bytes()
    }

    /// 16 bytes, big-endian, as OTLP protobuf carries it.
    pub fn from_bytes(bytes: &[u8]) -> Result<TraceId, IdError> {
        let bytes: [u8; 16] = match bytes.len() {
            0 => return Err(IdError::Empty),
            16 => bytes.try_into().expect("length checked"),
            got => {
                return Err(IdError::Length {
                    expected: "16 bytes",
                    got,
                });
            }
        };
        TraceId::from_u128(u128::from_be_bytes(bytes)).ok_or(IdError::AllZero)
    }

    /// 32 hex digits, or 16 left-padded with zeros as W3C Trace Context says; any case.
    pub fn from_hex(s: &str) -> Result<TraceId, IdError> {
        match s.len() {
            32 | 16 => TraceId::from_hex_lenient(s),
            0 => Err(IdError::Empty),
            got => Err(IdError::Length {
                expected: "16 or 32 hex digits",
                got,
            }),
        }
    }

    /// 1 to 32 hex digits, left-padded: Jaeger's own API drops leading zeros.
    pub fn from_hex_lenient(s: &str) -> Result<TraceId, IdError> {
        if s.len() > 32 {
            return Err(IdError::Length {
                expected: "at most 32 hex digits",
                got: s.len(),
            });
        }
        let value = parse_hex(s)?;
        TraceId::from_u128(value).ok_or(IdError::AllZero)
    }

    /// Standard base64 of the 16 bytes, as generic protobuf-JSON encoders write ids.
    pub fn from_base64(s: &str) -> Result<TraceId, IdError> {
        let bytes = BASE64.decode(s).map_err(|_| IdError::Base64)?;
        match bytes.len() {
            16 => TraceId::from_bytes(&bytes),
            // A 64-bit trace id from an old Jaeger export: left-pad.
            8 => {
                let low = u64::from_be_bytes(bytes.try_into().expect("length checked"));
                TraceId::from_u128(u128::from(low)).ok_or(IdError::AllZero)
            }
            _ => Err(IdError::Base64),
        }
    }

    /// An AWS X-Ray id `1-5759e988-bd862e3fe1be46a994272793`: 8 hex of epoch seconds then 24 hex.
    pub fn from_xray(s: &str) -> Result<TraceId, IdError> {
        let rest = s
            .strip_prefix("1-")
            .ok_or(IdError::XRay("expected version 1- prefix"))?;
        let (time, unique) = rest
            .split_once('-')
            .ok_or(IdError::XRay("expected two '-'"))?;
        if time.len() != 8 || unique.len() != 24 {
            return Err(IdError::XRay("expected 8 then 24 hex digits"));
        }
        let value = (parse_hex(time)? << 96) | parse_hex(unique)?;
        TraceId::from_u128(value).ok_or(IdError::AllZero)
    }

    /// A Google Cloud trace name `projects/P/traces/HEX` (or the bare hex).
    pub fn from_cloud_trace(s: &str) -> Result<TraceId, IdError> {
        let hex = match s.strip_prefix("projects/") {
            Some(rest) => rest
                .split_once("/traces/")
                .map(|(_, hex)| hex)
                .ok_or(IdError::CloudTrace)?,
            None => s,
        };
        TraceId::from_hex(hex)
    }
}

impl SpanId {
    pub fn from_u64(value: u64) -> Option<SpanId> {
        NonZeroU64::new(value).map(SpanId)
    }

    pub fn as_u64(self) -> u64 {
        self.0.get()
    }

    /// The 16 lowercase hex digits `Display` writes, without a formatter.
    pub fn hex(self) -> Hex<16> {
        Hex(hex_digits(u128::from(self.0.get())))
    }

    pub fn to_bytes(self) -> [u8; 8] {
        self.0.get().to_be_bytes()
    }

    /// 8 bytes, big-endian, as OTLP protobuf carries it.
    pub fn from_bytes(bytes: &[u8]) -> Result<SpanId, IdError> {
        let bytes: [u8; 8] = match bytes.len() {
            0 => return Err(IdError::Empty),
            8 => bytes.try_into().expect("length checked"),
            got => {
                return Err(IdError::Length {
                    expected: "8 bytes",
                    got,
                });
            }
        };
        SpanId::from_u64(u64::from_be_bytes(bytes)).ok_or(IdError::AllZero)
    }

    /// Exactly 16 hex digits, any case.
    pub fn from_hex(s: &str) -> Result<SpanId, IdError> {
        match s.len() {
            16 => SpanId::from_hex_lenient(s),
            0 => Err(IdError::Empty),
            got => Err(IdError::Length {
                expected: "16 hex digits",
                got,
            }),
        }
    }

    /// 1 to 16 hex digits, left-padded (Jaeger drops leading zeros).
    pub fn from_hex_lenient(s: &str) -> Result<SpanId, IdError> {
        if s.len() > 16 {
            return Err(IdError::Length {
                expected: "at most 16 hex digits",
                got: s.len(),
            });
        }
        let value = parse_hex(s)? as u64;
        SpanId::from_u64(value).ok_or(IdError::AllZero)
    }

    /// An unsigned (or, from some Datadog tracers, signed two's complement) decimal 64-bit id.
    pub fn from_decimal(s: &str) -> Result<SpanId, IdError> {
        SpanId::from_u64(parse_decimal_u64(s)?).ok_or(IdError::AllZero)
    }

    /// Standard base64 of the 8 bytes.
    pub fn from_base64(s: &str) -> Result<SpanId, IdError> {
        let bytes = BASE64.decode(s).map_err(|_| IdError::Base64)?;
        if bytes.len() != 8 {
            return Err(IdError::Base64);
        }
        SpanId::from_bytes(&bytes)
    }

    /// Any spelling of a span id found in logs: 16 hex, decimal (Datadog), base64, short hex.
    pub fn parse_any(s: &str) -> Result<SpanId, IdError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if s.len() == 16 && is_hex(s) {
            return SpanId::from_hex(s);
        }
        if is_decimal(s) {
            return SpanId::from_decimal(s);
        }
        if s.len() == 12 && s.ends_with('=') {
            return SpanId::from_base64(s);
        }
        if is_hex(s) {
            return SpanId::from_hex_lenient(s);
        }
        Err(IdError::Unrecognised)
    }
}

impl TraceRef {
    /// A decimal id that holds only the low 64 bits of a trace id (Datadog's `dd.trace_id`).
    pub fn from_decimal(s: &str) -> Result<TraceRef, IdError> {
        NonZeroU64::new(parse_decimal_u64(s)?)
            .map(TraceRef::Low64)
            .ok_or(IdError::AllZero)
    }

    /// Any spelling of a trace id found in logs: hex (16 or 32, any case), `traceparent`, AWS
    /// X-Ray (bare or as a `Root=` header), a Google Cloud trace name, a decimal 64-bit id, base64.
    pub fn parse_any(s: &str) -> Result<TraceRef, IdError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if (s.len() == 32 || s.len() == 16) && is_hex(s) {
            return TraceId::from_hex(s).map(TraceRef::Full);
        }
        if s.starts_with("projects/") {
            return TraceId::from_cloud_trace(s).map(TraceRef::Full);
        }
        if s.contains("Root=") {
            return XRayHeader::parse(s).map(|h| TraceRef::Full(h.trace_id));
        }
        if s.starts_with("1-") && s.len() == 35 {
            return TraceId::from_xray(s).map(TraceRef::Full);
        }
        if s.len() >= 55 && s.as_bytes()[2] == b'-' {
            return TraceParent::parse(s).map(|tp| TraceRef::Full(tp.trace_id));
        }
        if is_decimal(s) {
            return TraceRef::from_decimal(s);
        }
        if s.len() == 24 && s.ends_with("==") {
            return TraceId::from_base64(s).map(TraceRef::Full);
        }
        if is_hex(s) && s.len() < 32 {
            return TraceId::from_hex_lenient(s).map(TraceRef::Full);
        }
        Err(IdError::Unrecognised)
    }

    pub fn low64(self) -> u64 {
        match self {
            TraceRef::Full(id) => id.low64(),
            TraceRef::Low64(low) => low.get(),
        }
    }

    /// The 32 lowercase hex digits `Display` writes (a low-64-bit reference W3C left-padded),
    /// without a formatter.
    pub fn hex(self) -> Hex<32> {
        match self {
            TraceRef::Full(id) => id.hex(),
            TraceRef::Low64(low) => Hex(hex_digits(u128::from(low.get()))),
        }
    }

    pub fn full(self) -> Option<TraceId> {
        match self {
            TraceRef::Full(id) => Some(id),
            TraceRef::Low64(_) => None,
        }
    }

    /// Whether a record carrying this reference belongs to the trace `id`.
    pub fn matches(self, id: TraceId) -> bool {
        match self {
            TraceRef::Full(own) => own == id,
            TraceRef::Low64(low) => low.get() == id.low64(),
        }
    }
}

impl TraceParent {
    /// Parses a `traceparent` value by the W3C Trace Context rules: lowercase hex only, version
    /// `ff` invalid, version `00` exactly 55 characters, later versions at least 55 with either
    /// the end or a `-` after the flags. Surrounding spaces and tabs are trimmed.
    pub fn parse(s: &str) -> Result<TraceParent, IdError> {
        let s = s.trim_matches([' ', '\t']);
        let b = s.as_bytes();
        if b.len() < 55 {
            return Err(IdError::TraceParent("shorter than 55 characters"));
        }
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return Err(IdError::TraceParent("fields must be separated by '-'"));
        }
        let version = lower_hex_field(&s[0..2], "version is not 2 lowercase hex digits")? as u8;
        if version == 0xff {
            return Err(IdError::TraceParent("version ff is invalid"));
        }
        if version == 0 && b.len() != 55 {
            return Err(IdError::TraceParent(
                "version 00 must be exactly 55 characters",
            ));
        }
        if b.len() > 55 && b[55] != b'-' {
            return Err(IdError::TraceParent("expected '-' after the flags"));
        }
        let trace = lower_hex_field(&s[3..35], "trace-id is not 32 lowercase hex digits")?;
        let parent = lower_hex_field(&s[36..52], "parent-id is not 16 lowercase hex digits")?;
        let flags = lower_hex_field(&s[53..55], "flags are not 2 lowercase hex digits")? as u8;
        Ok(TraceParent {
            version,
            trace_id: TraceId::from_u128(trace)
                .ok_or(IdError::TraceParent("trace-id is all zeros"))?,
            parent_id: SpanId::from_u64(parent as u64)
                .ok_or(IdError::TraceParent("parent-id is all zeros"))?,
            flags,
        })
    }

    pub fn sampled(&self) -> bool {
        self.flags & 0x01 != 0
    }
}

impl XRayHeader {
    /// Parses `Root=1-...;Parent=16hex;Sampled=1` (fields in any order, spaces allowed).
    pub fn parse(s: &str) -> Result<XRayHeader, IdError> {
        let mut root = None;
        let mut parent_id = None;
        let mut sampled = None;
        for field in s.split(';') {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            match key.trim() {
                "Root" => root = Some(TraceId::from_xray(value.trim())?),
                "Parent" => parent_id = SpanId::from_hex(value.trim()).ok(),
                "Sampled" => {
                    sampled = match value.trim() {
                        "1" => Some(true),
                        "0" => Some(false),
                        _ => None,
                    }
                }
                _ => {}
            }
        }
        let trace_id = root.ok_or(IdError::XRay("no Root= field"))?;
        Ok(XRayHeader {
            trace_id,
            parent_id,
            sampled,
        })
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex().as_str())
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex().as_str())
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

/// A low-64-bit reference displays as the W3C left-padded form; [`TraceRef::Low64`] keeps the
/// fact that the high half is unknown, not zero.
impl fmt::Display for TraceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex().as_str())
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}-{}-{}-{:02x}",
            self.version, self.trace_id, self.parent_id, self.flags
        )
    }
}

impl std::str::FromStr for TraceId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceId::from_hex(s)
    }
}

impl std::str::FromStr for SpanId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpanId::from_hex(s)
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Each byte's value as a hex digit of any case; `INVALID` for every other byte.
const HEX_VALUES: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            d @ b'0'..=b'9' => d - b'0',
            d @ b'a'..=b'f' => d - b'a' + 10,
            d @ b'A'..=b'F' => d - b'A' + 10,
            _ => INVALID,
        };
        b += 1;
    }
    table
};
const INVALID: u8 = 0xff;

/// Hex digits of any case into a number; the caller bounds the length (at most 32). Every id
/// of every record goes through here, so digits are looked up in a table and gathered 16 at a
/// time in a `u64`.
fn parse_hex(s: &str) -> Result<u128, IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    let bytes = s.as_bytes();
    let split = bytes.len().saturating_sub(16);
    let invalid = |pos: usize| IdError::InvalidChar {
        ch: s[pos..].chars().next().unwrap_or('?'),
        pos,
    };
    let mut halves = [0u64; 2];
    for (half, (offset, digits)) in halves
        .iter_mut()
        .zip([(0, &bytes[..split]), (split, &bytes[split..])])
    {
        for (n, &b) in digits.iter().enumerate() {
            let digit = HEX_VALUES[usize::from(b)];
            if digit == INVALID {
                return Err(invalid(offset + n));
            }
            *half = (*half << 4) | u64::from(digit);
        }
    }
    Ok((u128::from(halves[0]) << 64) | u128::from(halves[1]))
}

/// The lowest `N` hex digits of `value`, lowercase and zero-padded, as `{:0Nx}` writes them.
fn hex_digits<const N: usize>(value: u128) -> [u8; N] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; N];
    for (n, slot) in out.iter_mut().enumerate() {
        let shift = 4 * (N - 1 - n);
        *slot = DIGITS[((value >> shift) & 0xf) as usize];
    }
    out
}

/// An id's lowercase hex digits, held inline (no allocation, no formatter).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Hex<const N: usize>([u8; N]);

impl<const N: usize> Hex<N> {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

/// W3C fields allow only lowercase hex.
fn lower_hex_field(s: &str, what: &'static str) -> Result<u128, IdError> {
    if s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        parse_hex(s).map_err(|_| IdError::TraceParent(what))
    } else {
        Err(IdError::TraceParent(what))
    }
}

/// An unsigned 64-bit decimal, or a negative one read as two's complement (Datadog's Node.js
/// and Go tracers can log signed ids).
fn parse_decimal_u64(s: &str) -> Result<u64, IdError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if let Some(pos) = s.bytes().position(|b| !b.is_ascii_digit() && b != b'-') {
        let ch = s[pos..].chars().next().unwrap_or('?');
        return Err(IdError::InvalidChar { ch, pos });
    }
    if s.starts_with('-') {
        return s
            .parse::<i64>()
            .map(|v| v as u64)
            .map_err(|_| IdError::DecimalRange);
    }
    s.parse::<u64>().map_err(|_| IdError::DecimalRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn hex_any_case_and_short_ids_are_padded() {
        let upper = TraceId::from_hex("5B8EFFF798038103D269B633813FC60C").unwrap();
        assert_eq!(upper.to_string(), "5b8efff798038103d269b633813fc60c");
        let short = TraceId::from_hex("53ce929d0e0e4736").unwrap();
        assert_eq!(short.to_string(), "000000000000000053ce929d0e0e4736");
        assert_eq!(TraceId::from_hex(""), Err(IdError::Empty));
        assert_eq!(TraceId::from_hex(&"0".repeat(32)), Err(IdError::AllZero));
        assert!(TraceId::from_hex(&"a".repeat(31)).is_err());
        assert!(matches!(
            TraceId::from_hex("zz8efff798038103d269b633813fc60c"),
            Err(IdError::InvalidChar { ch: 'z', pos: 0 })
        ));
    }

    /// The table parser and the digit writer agree with `u128::from_str_radix` and `{:0Nx}` on
    /// every length from 1 to 32 digits, and name the first bad character wherever it is.
    #[test]
    fn hex_parsing_and_writing_agree_with_std() {
        let mut x: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834;
        for len in 1..=32 {
            // xorshift: varied digits, both cases.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let lower = format!("{x:032x}")[32 - len..].to_string();
            let mixed: String = lower
                .chars()
                .enumerate()
                .map(|(n, c)| {
                    if n % 2 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            let expected = u128::from_str_radix(&lower, 16).unwrap();
            assert_eq!(parse_hex(&lower), Ok(expected), "{lower}");
            assert_eq!(parse_hex(&mixed), Ok(expected), "{mixed}");
            for pos in [0, len / 2, len - 1] {
                let mut bad = lower.clone().into_bytes();
                bad[pos] = b'g';
                let bad = String::from_utf8(bad).unwrap();
                assert_eq!(
                    parse_hex(&bad),
                    Err(IdError::InvalidChar { ch: 'g', pos }),
                    "{bad}"
                );
            }
        }
        for value in [1u128, 0xf, u128::from(u64::MAX), x, u128::MAX] {
            if let Some(id) = TraceId::from_u128(value) {
                assert_eq!(id.to_string(), format!("{value:032x}"));
            }
            let low = value as u64;
            if let Some(id) = SpanId::from_u64(low) {
                assert_eq!(id.to_string(), format!("{low:016x}"));
            }
            let low = NonZeroU64::new(low).unwrap();
            assert_eq!(TraceRef::Low64(low).to_string(), format!("{low:032x}"));
        }
    }

    #[test]
    fn datadog_decimal_holds_the_low_64_bits() {
        let full = TraceId::from_hex("5b8efff798038103d269b633813fc60c").unwrap();
        let dd = TraceRef::from_decimal("15161849952847513100").unwrap();
        assert_eq!(dd, TraceRef::Low64(NonZeroU64::new(full.low64()).unwrap()));
        assert!(dd.matches(full));
        assert_eq!(dd.full(), None);
        let span = SpanId::from_decimal("17213210219539181940").unwrap();
        assert_eq!(span.to_string(), "eee19b7ec3c1b174");
        assert_eq!(SpanId::from_decimal("-1").unwrap().as_u64(), u64::MAX);
        assert_eq!(
            TraceRef::from_decimal("18446744073709551616"),
            Err(IdError::DecimalRange)
        );
    }

    #[test]
    fn xray_cloud_and_base64() {
        let x = TraceId::from_xray("1-5759e988-bd862e3fe1be46a994272793").unwrap();
        assert_eq!(x.to_string(), "5759e988bd862e3fe1be46a994272793");
        let h = XRayHeader::parse(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        assert_eq!(h.trace_id, x);
        assert_eq!(h.parent_id.unwrap().to_string(), "53995c3f42cd8ad8");
        assert_eq!(h.sampled, Some(true));
        let g =
            TraceId::from_cloud_trace("projects/my-proj/traces/4bf92f3577b34da6a3ce929d0e0e4736")
                .unwrap();
        assert_eq!(g.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        // Trailing bits after the last byte are tolerated (Jaeger's fixtures have such ids).
        let loose = TraceId::from_base64("AAAAAAAAAAAAAAAAAAAFEh==").unwrap();
        assert_eq!(loose.to_string(), "00000000000000000000000000000512");
        let b = TraceId::from_base64("W47/95gDgQPSabYzgT/GDA==").unwrap();
        assert_eq!(b.to_string(), "5b8efff798038103d269b633813fc60c");
        assert_eq!(
            SpanId::from_base64("7uGbfsPBsXQ=").unwrap().to_string(),
            "eee19b7ec3c1b174"
        );
    }

    #[test]
    fn parse_any_recognises_every_spelling() {
        let want = "4bf92f3577b34da6a3ce929d0e0e4736";
        for s in [
            want,
            "4BF92F3577B34DA6A3CE929D0E0E4736",
            TP,
            "projects/p/traces/4bf92f3577b34da6a3ce929d0e0e4736",
            " 4bf92f3577b34da6a3ce929d0e0e4736 ",
        ] {
            assert_eq!(TraceRef::parse_any(s).unwrap().to_string(), want, "{s}");
        }
        assert!(matches!(
            TraceRef::parse_any("12345"),
            Ok(TraceRef::Low64(_))
        ));
        assert_eq!(TraceRef::parse_any("not-an-id"), Err(IdError::Unrecognised));
        assert_eq!(SpanId::parse_any("0"), Err(IdError::AllZero));
    }

    #[test]
    fn traceparent_rules() {
        let tp = TraceParent::parse(TP).unwrap();
        assert_eq!(tp.to_string(), TP);
        assert!(tp.sampled());
        // Future versions: extra fields after a '-' are ignored.
        let future = format!("cc{}-what-the-future-will-be-like", &TP[2..]);
        assert_eq!(TraceParent::parse(&future).unwrap().version, 0xcc);
        let bad_future = format!("cc{}.what-the-future-will-be-like", &TP[2..]);
        assert!(TraceParent::parse(&bad_future).is_err());
        // Version 00 with any suffix, version ff, uppercase, zero ids.
        assert!(TraceParent::parse(&format!("{TP}-")).is_err());
        assert!(TraceParent::parse(&format!("ff{}", &TP[2..])).is_err());
        assert!(TraceParent::parse(&TP.to_uppercase()).is_err());
        assert!(
            TraceParent::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_err()
        );
        assert!(
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01").is_err()
        );
        assert!(TraceParent::parse(&format!("\t {TP} ")).is_ok());
    }
}
