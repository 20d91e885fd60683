//! Query-string values of the API: times (`from`, `to`), durations (`interval`, `window`) and
//! queries under the server's limits, each refused with a 400 that says what to write instead.

use std::time::Duration;

use crate::{ApiError, AppState};

/// A `from`/`to` value: RFC 3339 (`2026-11-20T14:00:00Z`), `now()`, `now()-1h`, `now()+5m`,
/// or an epoch number in s, ms, µs or ns (told apart by magnitude).
pub fn parse_time(name: &str, value: &str, now_ns: i64) -> Result<i64, ApiError> {
    decode::time::parse_user_time(value, now_ns).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`{name}` must be an RFC 3339 time (2026-11-20T14:00:00Z), `now()-1h` or an epoch \
             number; got {value:?}"
        ))
    })
}

/// A duration such as `430ms`, `1.5s`, `250us`, `100ns`, `5m`, `1h`, `1d`.
pub fn parse_duration(name: &str, value: &str) -> Result<Duration, ApiError> {
    let ns = decode::time::parse_duration_ns(value).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`{name}` must be a duration such as 500ms, 30s, 10m, 1h or 1d; got {value:?}"
        ))
    })?;
    Ok(Duration::from_nanos(ns.unsigned_abs()))
}

/// Parses `q` under the server's limits (clauses, regex length); compile it with
/// `index::query::compile` and run it with the index's `*_compiled` calls.
pub fn parse_query(state: &AppState, q: &str) -> Result<index::query::Expr, ApiError> {
    Ok(index::query::parse_with_limits(q, &state.query_limits())?)
}

/// `[from, to)` from the optional parameters; `from` after `to` is refused.
pub fn time_range(
    from: Option<&str>,
    to: Option<&str>,
    now_ns: i64,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let from_ns = from
        .filter(|s| !s.trim().is_empty())
        .map(|v| parse_time("from", v, now_ns))
        .transpose()?;
    let to_ns = to
        .filter(|s| !s.trim().is_empty())
        .map(|v| parse_time("to", v, now_ns))
        .transpose()?;
    if let (Some(from_ns), Some(to_ns)) = (from_ns, to_ns)
        && from_ns > to_ns
    {
        return Err(ApiError::BadRequest(
            "`from` is after `to`: swap them".into(),
        ));
    }
    Ok((from_ns, to_ns))
}

pub fn now_ns() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    #[test]
    fn times_in_every_accepted_spelling() {
        assert_eq!(parse_time("from", "now()", NOW).unwrap(), NOW);
        assert_eq!(
            parse_time("from", "now()-1h", NOW).unwrap(),
            NOW - 3_600_000_000_000
        );
        assert_eq!(
            parse_time("from", "now() + 30s", NOW).unwrap(),
            NOW + 30_000_000_000
        );
        assert_eq!(
            parse_time("from", "2024-05-01T12:00:00Z", NOW).unwrap(),
            1_714_564_800_000_000_000
        );
        assert_eq!(
            parse_time("from", "1714564800", NOW).unwrap(),
            1_714_564_800_000_000_000
        );
        assert_eq!(
            parse_time("from", "1714564800000", NOW).unwrap(),
            1_714_564_800_000_000_000
        );
        let err = parse_time("from", "yesterday", NOW).unwrap_err();
        assert!(
            err.to_string().contains("`from` must be an RFC 3339 time"),
            "{err}"
        );
        assert!(parse_time("to", "now()*2", NOW).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("w", "1h").unwrap(),
            Duration::from_secs(3600)
        );
        assert_eq!(
            parse_duration("w", "1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_duration("w", "250us").unwrap(),
            Duration::from_micros(250)
        );
        assert!(parse_duration("w", "10").is_err());
        assert!(parse_duration("w", "10 parsecs").is_err());
    }

    #[test]
    fn from_after_to_is_refused() {
        assert!(time_range(Some("now()"), Some("now()-1h"), NOW).is_err());
        assert_eq!(time_range(None, Some(""), NOW).unwrap(), (None, None));
    }
}
