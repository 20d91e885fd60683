//! `--since 1h`, `--from T --to T`: time ranges on the command line, to nanoseconds.

use anyhow::{Context, bail};

/// A time range in ns since the epoch; `None` ends are open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    pub from_ns: Option<i64>,
    pub to_ns: Option<i64>,
}

pub fn now_ns() -> i64 {
    i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX)
}

/// Resolves `--since` or `--from`/`--to` against `now_ns`.
pub fn range(
    since: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    now_ns: i64,
) -> anyhow::Result<Range> {
    if let Some(since) = since {
        let d = parse_duration(since).with_context(|| format!("--since {since:?}"))?;
        return Ok(Range {
            from_ns: Some(now_ns - d),
            to_ns: None,
        });
    }
    let from_ns = from
        .map(|t| parse_time(t, now_ns).with_context(|| format!("--from {t:?}")))
        .transpose()?;
    let to_ns = to
        .map(|t| parse_time(t, now_ns).with_context(|| format!("--to {t:?}")))
        .transpose()?;
    if let (Some(a), Some(b)) = (from_ns, to_ns)
        && a > b
    {
        bail!("--from is after --to");
    }
    Ok(Range { from_ns, to_ns })
}

/// A duration such as `500ms`, `30s`, `10m`, `1h`, `2d`, `1.5h`, in ns.
pub fn parse_duration(text: &str) -> anyhow::Result<i64> {
    decode::time::parse_duration_ns(text)
        .context("expected a number followed by a unit (ns, us, ms, s, m, h, d)")
}

/// RFC 3339, `now()`, `now() - 30m`, `now() + 1h`, or epoch seconds/ms/µs/ns.
pub fn parse_time(text: &str, now_ns: i64) -> anyhow::Result<i64> {
    decode::time::parse_user_time(text, now_ns)
        .context("expected an RFC 3339 time, now() - DURATION or an epoch number")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_times_and_ranges() {
        assert_eq!(parse_duration("10m").unwrap(), 600_000_000_000);
        assert_eq!(parse_duration("1.5s").unwrap(), 1_500_000_000);
        assert!(parse_duration("10 parsecs").is_err());
        let now = 1_800_000_000_000_000_000;
        assert_eq!(
            parse_time("now() - 1h", now).unwrap(),
            now - 3_600_000_000_000
        );
        assert_eq!(
            parse_time("2026-11-20T14:10:00Z", now).unwrap(),
            1_795_183_800_000_000_000
        );
        let r = range(Some("30m"), None, None, now).unwrap();
        assert_eq!(
            r,
            Range {
                from_ns: Some(now - 1_800_000_000_000),
                to_ns: None
            }
        );
        assert!(range(None, Some("now()"), Some("now() - 1h"), now).is_err());
    }
}
