//! The tantivy schema: one index, two kinds of documents (spans and logs), linked by trace id.
//!
//! Only `record` is stored (the record as compact JSON, in the zstd doc store, less the start or
//! time, duration and span ids that `timestamp`, `duration_ns`, `span_id` and `parent_span_id`
//! hold: `doc::StoredJson`); everything a
//! search filters, sorts or counts on is indexed and/or a fast field. Trace assembly reads the
//! stored JSON (`trace::RecordLoader`); trace summaries read fast fields only.

use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, JsonObjectOptions, NumericOptions,
    STORED, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::RAW_TOKENIZER_NAME;

/// Field names; the query language and aggregations address fields by these.
pub mod names {
    /// `"span"` or `"log"`.
    pub const KIND: &str = "kind";
    /// 32 lowercase hex (a column only). For a record known only by the low 64 bits of its
    /// trace, the W3C left-padded form: a high half of zero says "partial".
    pub const TRACE_ID: &str = "trace_id";
    /// Low 64 bits of the trace id of every linked record (u64).
    pub const TRACE_LOW64: &str = "trace_low64";
    /// The span id of a span, or of the span a log was written in (u64, fast only).
    pub const SPAN_ID: &str = "span_id";
    /// A span's parent span id (u64, fast only).
    pub const PARENT_SPAN_ID: &str = "parent_span_id";
    pub const SERVICE: &str = "service";
    /// Span name (an exact keyword, not a phrase).
    pub const NAME: &str = "name";
    /// Span kind: `SERVER`, `CLIENT`, ...
    pub const SPAN_KIND: &str = "span_kind";
    /// `OK` | `ERROR` | `UNSET` (spans only).
    pub const STATUS: &str = "status";
    /// Level ordinal 1 (trace) ..= 6 (fatal) (logs with a level only).
    pub const LEVEL: &str = "level";
    /// Span start / log time, nanosecond precision.
    pub const TIMESTAMP: &str = "timestamp";
    pub const DURATION_NS: &str = "duration_ns";
    /// 1 for an error span or a log at level error or above, absent for any other record (a
    /// column only: trace lists and summaries count errors with it; queries ask `status` and
    /// `level`).
    pub const IS_ERROR: &str = "is_error";
    /// Full text: log body, span name and status message.
    pub const BODY: &str = "body";
    pub const ATTRIBUTES: &str = "attributes";
    pub const RESOURCE: &str = "resource";
    /// Attributes of span events (exceptions) and the event names under `event.name`.
    pub const EVENTS: &str = "events";
    /// The origin source (file path or receiver), exact.
    pub const SOURCE: &str = "source";
    /// The whole record as compact JSON (stored only).
    pub const RECORD: &str = "record";
    /// A per-index sequence number assigned by the writer (u64, unique, fast): the stable
    /// tiebreak after `TIMESTAMP` for ordering and cursor paging, independent of segments.
    pub const SEQ: &str = "seq";
    /// Attributes of span links, one object per link (Jaeger's tag search looks in them).
    pub const LINKS: &str = "links";
    /// Attributes of the instrumentation scope of a span.
    pub const SCOPE: &str = "scope";
}

/// Handles to every field of the schema.
#[derive(Debug, Clone)]
pub struct Fields {
    pub schema: Schema,
    pub kind: Field,
    pub trace_id: Field,
    pub trace_low64: Field,
    pub span_id: Field,
    pub parent_span_id: Field,
    pub service: Field,
    pub name: Field,
    pub span_kind: Field,
    pub status: Field,
    pub level: Field,
    pub timestamp: Field,
    pub duration_ns: Field,
    pub is_error: Field,
    pub body: Field,
    pub attributes: Field,
    pub resource: Field,
    pub events: Field,
    pub source: Field,
    pub record: Field,
    pub seq: Field,
    pub links: Field,
    pub scope: Field,
}

impl Fields {
    pub fn new() -> Fields {
        let mut b = Schema::builder();
        // Nothing is ranked by relevance (hits come newest first), so no field keeps
        // fieldnorms: they cost a byte per field per document and time at every flush.
        let raw_terms = || {
            TextFieldIndexing::default()
                .set_tokenizer(RAW_TOKENIZER_NAME)
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false)
        };
        let keyword = TextOptions::default()
            .set_indexing_options(raw_terms())
            .set_fast(RAW_TOKENIZER_NAME);
        // Keywords of a few values that queries filter on but that nothing reads per record
        // while listing or assembling traces: their columns, when a group-by or `compare`
        // needs them, are built from the terms (`json_terms::columns`). A fast column of
        // each cost about 1.1% of ingest's instructions.
        let keyword_terms = TextOptions::default().set_indexing_options(raw_terms());
        let num = NumericOptions::default().set_indexed().set_fast();
        let indexed_only = NumericOptions::default().set_indexed();
        // Values that are (nearly) unique per record and only ever compared by range or sorted
        // on: a fast field alone serves `RangeQuery` and, since tantivy 0.26, `TermQuery` too.
        // Indexing them would add a term per record to the dictionary, the costliest part of a
        // flush.
        let fast_only = NumericOptions::default().set_fast();
        // Terms only: the JSON fields' fast columns cost 13.8% of ingest's instructions and
        // 17% of the index's bytes; group-bys, `compare`, `exists()` and ranges on attributes
        // read the terms instead (`json_terms`).
        let json = || {
            JsonObjectOptions::default()
                .set_indexing_options(raw_terms())
                .set_expand_dots_enabled()
        };
        // Spans, and only spans, have a `duration_ns`: that column tells them apart per record.
        let kind = b.add_text_field(names::KIND, keyword_terms.clone());
        // A column only: trace ids are random 32-hex strings, and their terms were 40% of the
        // term dictionary's bytes and the costliest part of building it at every flush and
        // merge. Records of a trace are found by `trace_low64` and their full id checked on
        // this column (`query::structure::TraceMembers`, or the stored record in trace
        // assembly).
        let trace_id = b.add_text_field(
            names::TRACE_ID,
            TextOptions::default().set_fast(RAW_TOKENIZER_NAME),
        );
        // Looked up by term only (trace assembly); as a fast field it would cost 8 bytes per
        // record: random values do not compress.
        let trace_low64 = b.add_u64_field(names::TRACE_LOW64, indexed_only);
        // Span ids are unique per span: an inverted index of them would be the largest term
        // dictionary of the index (a term per span, per segment) for a rare query. A u64
        // column (8 bytes a value, read in place) serves `span_id = X` (tantivy's fast-field
        // fallback, a column scan), `exists()`, trace assembly, trace summaries and the
        // dependency catalog; a string column's dictionary cost as much on disk and a zstd
        // block decompression per value read. The stored record leaves them out.
        let span_id = b.add_u64_field(names::SPAN_ID, fast_only.clone());
        let parent_span_id = b.add_u64_field(names::PARENT_SPAN_ID, fast_only.clone());
        let service = b.add_text_field(names::SERVICE, keyword.clone());
        let name = b.add_text_field(names::NAME, keyword);
        let span_kind = b.add_text_field(names::SPAN_KIND, keyword_terms.clone());
        let status = b.add_text_field(names::STATUS, keyword_terms.clone());
        let level = b.add_u64_field(names::LEVEL, num);
        let timestamp = b.add_date_field(
            names::TIMESTAMP,
            DateOptions::default()
                .set_fast()
                .set_precision(DateTimePrecision::Nanoseconds),
        );
        let duration_ns = b.add_i64_field(names::DURATION_NS, fast_only.clone());
        let is_error = b.add_u64_field(names::IS_ERROR, fast_only.clone());
        let body = b.add_text_field(
            names::BODY,
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("default")
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions)
                    .set_fieldnorms(false),
            ),
        );
        let attributes = b.add_json_field(names::ATTRIBUTES, json());
        let resource = b.add_json_field(names::RESOURCE, json());
        let events = b.add_json_field(names::EVENTS, json());
        let source = b.add_text_field(names::SOURCE, keyword_terms);
        let record = b.add_bytes_field(names::RECORD, STORED);
        let seq = b.add_u64_field(names::SEQ, fast_only);
        // Added after the others so the earlier fields keep their ids.
        let links = b.add_json_field(names::LINKS, json());
        let scope = b.add_json_field(names::SCOPE, json());
        Fields {
            schema: b.build(),
            kind,
            trace_id,
            trace_low64,
            span_id,
            parent_span_id,
            service,
            name,
            span_kind,
            status,
            level,
            timestamp,
            duration_ns,
            is_error,
            body,
            attributes,
            resource,
            events,
            source,
            record,
            seq,
            links,
            scope,
        }
    }

    /// Handles for an existing index's schema (which must be this schema).
    pub fn from_schema(schema: &Schema) -> Result<Fields, tantivy::TantivyError> {
        let expected = Fields::new();
        for (field, entry) in expected.schema.fields() {
            let found = schema.get_field(entry.name())?;
            if found != field || schema.get_field_entry(found) != entry {
                return Err(tantivy::TantivyError::SchemaError(format!(
                    "field {:?} differs from this version's schema: the index was written by \
                     another version of threadline; move the index directory aside and rebuild \
                     it with `threadline ingest PATH...` (or `threadline serve`, which re-reads \
                     its sources into an empty index)",
                    entry.name()
                )));
            }
        }
        Ok(expected)
    }
}

impl Default for Fields {
    fn default() -> Self {
        Fields::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index of another schema is refused with a message that says how to rebuild it.
    #[test]
    fn another_schema_is_refused_with_the_rebuild_command() {
        let mut b = Schema::builder();
        b.add_text_field(names::KIND, STORED);
        let err = Fields::from_schema(&b.build()).unwrap_err().to_string();
        assert!(err.contains("\"kind\" differs"), "{err}");
        assert!(err.contains("threadline ingest PATH..."), "{err}");
    }
}
