//! Go duration strings (`time.ParseDuration`), the unit of Jaeger's `minDuration`,
//! `maxDuration` and api_v3 `query.duration_min`/`max`: `1.2s`, `500us`, `1m30s`, `-1.5h`.

/// Nanoseconds of a Go duration string: an optional sign, then one or more `<number><unit>`
/// pairs, where a number may have a fraction (`1.5`, `.5`, `1.`) and the units are `ns`, `us`,
/// `µs`, `μs`, `ms`, `s`, `m` and `h`. `"0"` is the only value without a unit.
pub(crate) fn parse_go_duration(text: &str) -> Result<i64, String> {
    let bad = || format!("time: invalid duration {text:?}");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    // Whole nanoseconds and the fractional remainder, kept apart so `1.1s` is exact.
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(after) => {
                let n = after.bytes().take_while(u8::is_ascii_digit).count();
                after.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_len = after
            .char_indices()
            .find(|&(_, c)| c == '.' || c.is_ascii_digit())
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("time: missing unit in duration {text:?}")),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {text:?}")),
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut ns = whole.checked_mul(unit_ns).ok_or_else(bad)?;
        if !frac_part.is_empty() {
            // Go truncates the fraction's nanoseconds toward zero.
            let digits = &frac_part[..frac_part.len().min(30)];
            let scale = 10u128.pow(digits.len() as u32);
            let frac: u128 = digits.parse().map_err(|_| bad())?;
            ns += frac * unit_ns / scale;
        }
        total = total.checked_add(ns).ok_or_else(bad)?;
        rest = after;
    }
    let total = i64::try_from(total).map_err(|_| bad())?;
    Ok(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_examples() {
        let cases = [
            ("0", 0),
            ("1.2s", 1_200_000_000),
            ("500us", 500_000),
            ("500µs", 500_000),
            ("500μs", 500_000),
            ("1m30s", 90_000_000_000),
            ("1h30m", 5_400_000_000_000),
            ("2h45m30.5s", 9_930_500_000_000),
            ("250ms", 250_000_000),
            ("1000ns", 1_000),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("-1.5h", -5_400_000_000_000),
            ("+3ns", 3),
        ];
        for (text, ns) in cases {
            assert_eq!(parse_go_duration(text), Ok(ns), "{text}");
        }
    }

    #[test]
    fn refusals() {
        for text in [
            "",
            "1000",
            "1d",
            "s",
            ".s",
            "1.2.3s",
            "1 s",
            "-",
            "10parsecs",
        ] {
            assert!(parse_go_duration(text).is_err(), "{text:?} should fail");
        }
        assert!(
            parse_go_duration("1000")
                .unwrap_err()
                .contains("missing unit")
        );
    }
}
