//! The stored record leaves out what the numeric fast fields hold (start or time, duration, span
//! and parent span ids); reading puts them back, so every record reads as its full Trace-JSON shape, also from an
//! index written before, whose records are stored whole (as bytes, where records are now stored
//! as a string).

mod common;

use common::*;
use index::{Index, SearchRequest};
use model::{Level, Record};
use tantivy::schema::Value as _;
use tantivy::{DateTime, IndexWriter, TantivyDocument};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn records() -> Vec<Record> {
    let trace = trace_id(TRACE);
    vec![
        span(trace, 1, None, "checkout", "POST /checkout")
            .at(T0 + 123_456_789, 42 * MS)
            .attr("order.id", "ord_1")
            .build(),
        log(full(trace), Some(1), "checkout", "order placed")
            .at(T0 + 5 * MS + 7)
            .level(Level::Info)
            .build(),
        // A Datadog-style log: only the low 64 bits of the trace are known.
        log(low64(trace), None, "payment", "charged")
            .at(T0 + 9 * MS)
            .build(),
    ]
}

#[test]
fn records_read_back_whole_though_times_are_not_stored() {
    let records = records();
    let index = index_of(records.clone());
    let trace = index.trace(trace_id(TRACE)).unwrap().unwrap();
    assert_eq!(trace.spans.len(), 1);
    assert_eq!(trace.logs.len(), 2);
    assert_eq!(trace.spans[0].record, index::doc::record_json(&records[0]));
    let logs: Vec<_> = trace.logs.iter().map(|l| l.record.clone()).collect();
    assert!(logs.contains(&index::doc::record_json(&records[1])));
    assert!(logs.contains(&index::doc::record_json(&records[2])));
    let partial = &index::doc::record_json(&records[2]);
    assert_eq!(partial["trace_id"], "0000000000000000a3ce929d0e0e4736");
    assert_eq!(
        trace.spans[0].record["start"],
        "2026-11-20T14:00:00.123456789Z"
    );
    assert_eq!(trace.spans[0].record["duration_ns"], 42 * MS);
    // The stored JSON is kept as a string value (one copy in and out of the doc store), in the
    // bytes field indexes written before hold it in.
    let searcher = index.tantivy().reader().unwrap().searcher();
    let stored: TantivyDocument = searcher.doc(tantivy::DocAddress::new(0, 0)).unwrap();
    let json = stored
        .get_first(index.fields().record)
        .unwrap()
        .as_str()
        .unwrap();
    assert!(
        json.starts_with('{') && !json.contains("\"start\""),
        "{json}"
    );
}

#[test]
fn an_unlinked_record_reads_back_with_a_null_trace_id() {
    let unlinked = log(None, None, "gateway", "GET /healthz 200")
        .at(T0 + 3)
        .build();
    let index = index_of(vec![unlinked]);
    let found = index
        .search(&SearchRequest {
            query: "healthz",
            limit: 10,
            ..SearchRequest::default()
        })
        .unwrap();
    assert_eq!(found.hits.len(), 1);
    assert_eq!(found.hits[0]["trace_id"], serde_json::Value::Null);
    assert_eq!(found.hits[0]["time"], "2026-11-20T14:00:00.000000003Z");
}

/// An index written before the stored record was slimmed holds each record whole (its ids and
/// times included): it is read as it was, with nothing to migrate.
#[test]
fn an_index_with_whole_stored_records_reads_as_before() {
    let index = Index::create_in_ram().unwrap();
    let fields = index.fields().clone();
    let mut writer: IndexWriter = index.tantivy().writer(15_000_000).unwrap();
    let records = records();
    for (seq, record) in records.iter().enumerate() {
        let whole = index::doc::record_json(record);
        let mut doc = TantivyDocument::new();
        doc.add_u64(fields.seq, seq as u64);
        let trace = record.trace_ref().unwrap();
        doc.add_text(fields.trace_id, trace.to_string());
        let low64 = match trace {
            model::TraceRef::Full(id) => id.low64(),
            model::TraceRef::Low64(low) => low.get(),
        };
        doc.add_u64(fields.trace_low64, low64);
        let (kind, ts) = match record {
            Record::Span(s) => ("span", s.start_ns),
            Record::Log(l) => ("log", l.time_ns),
        };
        doc.add_text(fields.kind, kind);
        doc.add_date(fields.timestamp, DateTime::from_timestamp_nanos(ts));
        // A span's duration column is what tells it from a log; its start and end are read
        // from the whole record, not from the columns.
        if let Record::Span(s) = record {
            doc.add_i64(fields.duration_ns, 1);
            assert_ne!(s.duration_ns(), 1);
        }
        doc.add_bytes(fields.record, whole.to_string().as_bytes());
        writer.add_document(doc).unwrap();
    }
    writer.commit().unwrap();
    index.reload().unwrap();
    let trace = index.trace(trace_id(TRACE)).unwrap().unwrap();
    assert_eq!(trace.spans[0].record, index::doc::record_json(&records[0]));
    let logs: Vec<_> = trace.logs.iter().map(|l| l.record.clone()).collect();
    assert!(logs.contains(&index::doc::record_json(&records[1])));
    assert!(logs.contains(&index::doc::record_json(&records[2])));
    // What was stored is what is read: the stored bytes hold the start.
    let searcher = index.tantivy().reader().unwrap().searcher();
    let stored: TantivyDocument = searcher.doc(tantivy::DocAddress::new(0, 0)).unwrap();
    let bytes = stored.get_first(fields.record).unwrap().as_bytes().unwrap();
    assert!(
        std::str::from_utf8(bytes)
            .unwrap()
            .contains("\"start\":\"2026-11-20T14:00:00.123456789Z\"")
    );
}
