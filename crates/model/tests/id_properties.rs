//! Property tests for id and `traceparent` parsing: round trips through every spelling, and every
//! rejection rule of W3C Trace Context.

use model::{IdError, SpanId, TraceId, TraceParent, TraceRef};
use proptest::prelude::*;

fn trace_id() -> impl Strategy<Value = TraceId> {
    (1u128..=u128::MAX).prop_map(|v| TraceId::from_u128(v).unwrap())
}

fn span_id() -> impl Strategy<Value = SpanId> {
    (1u64..=u64::MAX).prop_map(|v| SpanId::from_u64(v).unwrap())
}

fn traceparent() -> impl Strategy<Value = TraceParent> {
    (0u8..0xff, trace_id(), span_id(), any::<u8>()).prop_map(
        |(version, trace_id, parent_id, flags)| TraceParent {
            version,
            trace_id,
            parent_id,
            flags,
        },
    )
}

proptest! {
    #[test]
    fn trace_id_round_trips_through_every_spelling(id in trace_id()) {
        let hex = id.to_string();
        prop_assert_eq!(hex.len(), 32);
        prop_assert_eq!(TraceId::from_hex(&hex), Ok(id));
        prop_assert_eq!(TraceId::from_hex(&hex.to_uppercase()), Ok(id));
        prop_assert_eq!(TraceId::from_bytes(&id.to_bytes()), Ok(id));
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(id.to_bytes());
        prop_assert_eq!(TraceId::from_base64(&b64), Ok(id));
        prop_assert_eq!(TraceRef::parse_any(&b64), Ok(TraceRef::Full(id)));
        prop_assert_eq!(TraceRef::parse_any(&hex), Ok(TraceRef::Full(id)));
        let cloud = format!("projects/p-1/traces/{hex}");
        prop_assert_eq!(TraceId::from_cloud_trace(&cloud), Ok(id));
        let xray = format!("1-{}-{}", &hex[..8], &hex[8..]);
        prop_assert_eq!(TraceId::from_xray(&xray), Ok(id));
        prop_assert_eq!(TraceRef::parse_any(&format!("Root={xray};Sampled=1")), Ok(TraceRef::Full(id)));
    }

    #[test]
    fn sixty_four_bit_ids_are_left_padded(low in 1u64..=u64::MAX) {
        let short = format!("{low:016x}");
        let id = TraceId::from_hex(&short).unwrap();
        prop_assert_eq!(id.to_string(), format!("{:016x}{short}", 0));
        prop_assert_eq!(id.high64(), 0);
        prop_assert_eq!(id.low64(), low);
    }

    #[test]
    fn decimal_ids_keep_only_the_low_64_bits(id in trace_id()) {
        let low = id.low64();
        prop_assume!(low != 0);
        let dd = TraceRef::from_decimal(&low.to_string()).unwrap();
        prop_assert!(dd.full().is_none());
        prop_assert!(dd.matches(id));
        prop_assert_eq!(dd.low64(), low);
        // A negative decimal is the same id in two's complement.
        let signed = TraceRef::from_decimal(&(low as i64).to_string()).unwrap();
        prop_assert_eq!(signed, dd);
    }

    #[test]
    fn span_id_round_trips(id in span_id()) {
        let hex = id.to_string();
        prop_assert_eq!(SpanId::from_hex(&hex), Ok(id));
        prop_assert_eq!(SpanId::from_hex(&hex.to_uppercase()), Ok(id));
        prop_assert_eq!(SpanId::from_bytes(&id.to_bytes()), Ok(id));
        prop_assert_eq!(SpanId::from_decimal(&id.as_u64().to_string()), Ok(id));
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(id.to_bytes());
        prop_assert_eq!(SpanId::parse_any(&b64), Ok(id));
    }

    #[test]
    fn traceparent_round_trips(tp in traceparent()) {
        let text = tp.to_string();
        prop_assert_eq!(text.len(), 55);
        prop_assert_eq!(TraceParent::parse(&text), Ok(tp));
        prop_assert_eq!(tp.sampled(), tp.flags & 1 == 1);
    }

    #[test]
    fn version_00_rejects_any_suffix(tp in traceparent(), suffix in "[-a-z0-9.]{1,20}") {
        let tp = TraceParent { version: 0, ..tp };
        let text = format!("{tp}{suffix}");
        prop_assert!(TraceParent::parse(&text).is_err());
    }

    #[test]
    fn future_versions_accept_dash_suffix_only(tp in traceparent(), rest in "[a-z0-9-]{0,20}", bad in "[.a-z]") {
        prop_assume!(tp.version != 0);
        let base = tp.to_string();
        prop_assert_eq!(TraceParent::parse(&format!("{base}-{rest}")), Ok(tp));
        prop_assume!(bad != "-");
        let text = format!("{base}{bad}{rest}");
        prop_assert!(TraceParent::parse(&text).is_err());
    }

    #[test]
    fn uppercase_or_invalid_chars_are_rejected(tp in traceparent(), at in 0usize..55) {
        let text = tp.to_string();
        prop_assume!(![2, 35, 52].contains(&at));
        let upper: String = text.char_indices()
            .map(|(i, c)| if i == at { c.to_ascii_uppercase() } else { c })
            .collect();
        if upper != text {
            prop_assert!(TraceParent::parse(&upper).is_err(), "{}", upper);
        }
        let dotted: String = text.char_indices().map(|(i, c)| if i == at { '.' } else { c }).collect();
        prop_assert!(TraceParent::parse(&dotted).is_err(), "{}", dotted);
    }

    #[test]
    fn wrong_field_lengths_are_rejected(tp in traceparent(), field in 0usize..4, grow in any::<bool>()) {
        let text = tp.to_string();
        let mut parts: Vec<String> = text.split('-').map(str::to_owned).collect();
        if grow { parts[field].push('a') } else { parts[field].pop(); }
        let mangled = parts.join("-");
        prop_assert!(TraceParent::parse(&mangled).is_err(), "{}", mangled);
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,80}") {
        let _ = TraceRef::parse_any(&s);
        let _ = SpanId::parse_any(&s);
        let _ = TraceParent::parse(&s);
    }
}

#[test]
fn version_ff_and_zero_ids_are_rejected() {
    let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert!(TraceParent::parse(ok).is_ok());
    assert!(TraceParent::parse(&ok.replacen("00", "ff", 1)).is_err());
    assert!(TraceParent::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_err());
    assert!(TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01").is_err());
    assert_eq!(TraceId::from_hex(&"0".repeat(32)), Err(IdError::AllZero));
    assert_eq!(SpanId::from_hex(&"0".repeat(16)), Err(IdError::AllZero));
    assert_eq!(TraceRef::from_decimal("0"), Err(IdError::AllZero));
    assert_eq!(TraceRef::parse_any(""), Err(IdError::Empty));
}
