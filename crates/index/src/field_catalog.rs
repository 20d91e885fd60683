//! The one field catalog: every built-in field, its aliases, its type and where it lives, and
//! how any other name resolves to an attribute (record attributes, resource attributes, span
//! events). The query parser, aggregations (`by`), compare and `related` all resolve names here,
//! so `span_kind`, `service.name` or `exception.type` mean the same thing in each; an unknown
//! name gets a [`hint`] (the closest known fields and attribute keys), not a silent empty answer.

use crate::schema::names;

/// A built-in field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    TraceId,
    SpanId,
    ParentSpanId,
    /// `span` | `log`.
    Kind,
    Service,
    /// Span name.
    Name,
    /// `OK` | `ERROR` | `UNSET`.
    Status,
    /// `SERVER` | `CLIENT` | `PRODUCER` | `CONSUMER` | `INTERNAL` | `UNSPECIFIED`.
    SpanKind,
    Level,
    Duration,
    Timestamp,
    Body,
    /// The file (or receiver) a record came from.
    Source,
}

/// A built-in field's entry in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinField {
    pub builtin: Builtin,
    /// The canonical name.
    pub name: &'static str,
    /// Other names for it.
    pub aliases: &'static [&'static str],
    /// The schema field that holds it.
    pub index_field: &'static str,
    /// `keyword`, `enum`, `level`, `duration`, `time`, `text`, `id`.
    pub value_type: &'static str,
    /// Whether `by` can group on it (a fast field with few values per record).
    pub groupable: bool,
}

/// Where an attribute name is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrLocation {
    /// Record attributes, then resource attributes, then span-event attributes.
    Any,
    Attributes,
    Resource,
    Events,
    /// Attributes of a span's links (`link.x`, as TraceQL writes them).
    Links,
    /// Attributes of the instrumentation scope (`instrumentation.x`, as TraceQL writes them).
    Instrumentation,
}

/// What a field name means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Builtin(&'static BuiltinField),
    Attribute {
        location: AttrLocation,
        path: String,
    },
}

/// Every built-in field.
pub const BUILTIN_FIELDS: &[BuiltinField] = &[
    field(
        Builtin::TraceId,
        "trace_id",
        &[],
        names::TRACE_ID,
        "id",
        true,
    ),
    field(Builtin::SpanId, "span_id", &[], names::SPAN_ID, "id", true),
    field(
        Builtin::ParentSpanId,
        "parent_span_id",
        &[],
        names::PARENT_SPAN_ID,
        "id",
        true,
    ),
    field(Builtin::Kind, "kind", &[], names::KIND, "enum", true),
    field(
        Builtin::Service,
        "service",
        &["service.name"],
        names::SERVICE,
        "keyword",
        true,
    ),
    field(
        Builtin::Name,
        "name",
        &["span.name", "operation"],
        names::NAME,
        "keyword",
        true,
    ),
    field(
        Builtin::Status,
        "status",
        &["status.code"],
        names::STATUS,
        "enum",
        true,
    ),
    field(
        Builtin::SpanKind,
        "span_kind",
        &["span.kind"],
        names::SPAN_KIND,
        "enum",
        true,
    ),
    field(
        Builtin::Level,
        "level",
        &["severity"],
        names::LEVEL,
        "level",
        true,
    ),
    field(
        Builtin::Duration,
        "duration",
        &["duration_ns"],
        names::DURATION_NS,
        "duration",
        false,
    ),
    field(
        Builtin::Timestamp,
        "timestamp",
        &[],
        names::TIMESTAMP,
        "time",
        false,
    ),
    field(
        Builtin::Body,
        "body",
        &["message"],
        names::BODY,
        "text",
        false,
    ),
    field(
        Builtin::Source,
        "source",
        &[],
        names::SOURCE,
        "keyword",
        true,
    ),
];

/// Prefixes that pick where an attribute is looked up.
pub const ATTR_PREFIXES: [(&str, AttrLocation); 8] = [
    ("attr.", AttrLocation::Attributes),
    ("attributes.", AttrLocation::Attributes),
    ("resource.", AttrLocation::Resource),
    ("events.", AttrLocation::Events),
    ("event.", AttrLocation::Events),
    ("links.", AttrLocation::Links),
    ("link.", AttrLocation::Links),
    ("instrumentation.", AttrLocation::Instrumentation),
];

const fn field(
    builtin: Builtin,
    name: &'static str,
    aliases: &'static [&'static str],
    index_field: &'static str,
    value_type: &'static str,
    groupable: bool,
) -> BuiltinField {
    BuiltinField {
        builtin,
        name,
        aliases,
        index_field,
        value_type,
        groupable,
    }
}

/// The built-in field called `name` (by its name or an alias).
pub fn builtin(name: &str) -> Option<&'static BuiltinField> {
    BUILTIN_FIELDS
        .iter()
        .find(|f| f.name == name || f.aliases.contains(&name))
}

/// What `name` addresses: a built-in field, or an attribute (`attr.x`, `resource.x`,
/// `event.x`, `link.x`, `instrumentation.x` pick where; `event.name` is a span event's name).
/// Refuses malformed names.
pub fn resolve(name: &str) -> Result<Resolved, String> {
    if let Some(f) = builtin(name) {
        return Ok(Resolved::Builtin(f));
    }
    // Span events store their event names at `event.name` in the events field.
    if name == "event.name" {
        return Ok(Resolved::Attribute {
            location: AttrLocation::Events,
            path: "event.name".into(),
        });
    }
    let (location, path) = ATTR_PREFIXES
        .iter()
        .find_map(|(prefix, loc)| Some((*loc, name.strip_prefix(prefix)?)))
        .unwrap_or((AttrLocation::Any, name));
    if path.is_empty() || path.starts_with('.') || path.ends_with('.') || path.contains("..") {
        return Err(format!("invalid attribute name {name:?}"));
    }
    Ok(Resolved::Attribute {
        location,
        path: path.to_owned(),
    })
}

/// The schema's JSON fields an attribute location covers, in lookup order.
pub fn attr_roots(location: AttrLocation) -> &'static [&'static str] {
    match location {
        AttrLocation::Any => &[names::ATTRIBUTES, names::RESOURCE, names::EVENTS],
        AttrLocation::Attributes => &[names::ATTRIBUTES],
        AttrLocation::Resource => &[names::RESOURCE],
        AttrLocation::Events => &[names::EVENTS],
        AttrLocation::Links => &[names::LINKS],
        AttrLocation::Instrumentation => &[names::SCOPE],
    }
}

/// "unknown field X": the closest built-in names and attribute keys (as the query language
/// writes them) to `name`, at most 5, for an error message.
pub fn hint(name: &str, attribute_keys: &[String]) -> String {
    let mut known: Vec<String> = BUILTIN_FIELDS
        .iter()
        .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
        .map(str::to_owned)
        .collect();
    known.extend(attribute_keys.iter().cloned());
    known.sort();
    known.dedup();
    let mut scored: Vec<(f64, &String)> = known
        .iter()
        .map(|k| {
            let tail = k.rsplit('.').next().unwrap_or(k);
            let score = strsim::jaro_winkler(name, k).max(strsim::jaro_winkler(name, tail) - 0.05);
            (score, k)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let closest: Vec<&str> = scored.iter().take(5).map(|(_, k)| k.as_str()).collect();
    let mut keys: Vec<&str> = attribute_keys.iter().map(String::as_str).collect();
    let more = keys.len().saturating_sub(20);
    keys.truncate(20);
    format!(
        "no record has a field {name:?}; closest known fields: {}; attribute keys seen: {}{}",
        closest.join(", "),
        if keys.is_empty() {
            "none".to_owned()
        } else {
            keys.join(", ")
        },
        if more > 0 {
            format!(" and {more} more (GET /api/v1/services lists them)")
        } else {
            String::new()
        }
    )
}

/// An attribute key of the index as the query language writes it: `card.bin` for a record
/// attribute, `resource.x`, `event.x`.
pub fn query_name(index_path: &str) -> Option<String> {
    if let Some(key) = index_path.strip_prefix("attributes.") {
        return Some(key.to_owned());
    }
    if let Some(key) = index_path.strip_prefix("resource.") {
        return Some(format!("resource.{key}"));
    }
    if let Some(key) = index_path.strip_prefix("links.") {
        return Some(format!("link.{key}"));
    }
    if let Some(key) = index_path.strip_prefix("scope.") {
        return Some(format!("instrumentation.{key}"));
    }
    index_path
        .strip_prefix("events.")
        .map(|key| format!("event.{key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_resolve_to_one_entry() {
        for f in BUILTIN_FIELDS {
            assert_eq!(builtin(f.name), Some(f));
            for alias in f.aliases {
                assert_eq!(builtin(alias), Some(f), "{alias}");
            }
        }
        assert_eq!(
            resolve("exception.type").unwrap(),
            Resolved::Attribute {
                location: AttrLocation::Any,
                path: "exception.type".into()
            }
        );
        assert!(resolve("attr.").is_err());
        let hint = hint("servce", &["card.bin".into()]);
        assert!(hint.contains("closest known fields: service"), "{hint}");
        assert!(hint.contains("card.bin"), "{hint}");
    }
}
