//! A group-by of one string attribute over spans, made from the attribute's terms (each value's
//! postings met with the matching records) and from its fast column, timed, with both answers
//! checked equal: what attribute group-bys would cost if attributes had no fast columns
//! (docs/BENCHMARKS.md, "what each part of the document costs").
//!
//! `cargo run --release -p index --example term_groupby -- INDEX_DIR ATTRIBUTE_PATH`
//! (e.g. `user.id`), on an index that `threadline ingest` wrote. The column side here reads a
//! value's text per distinct ordinal and is slower than the product's own aggregation, which
//! `threadline agg --by attributes.PATH` times (its "(N ms)").
use std::collections::HashMap;
use std::time::Instant;

use tantivy::schema::IndexRecordOption;
use tantivy::{DocSet, Index, TERMINATED, Term};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(path)) = (args.next(), args.next()) else {
        eprintln!("usage: term_groupby INDEX_DIR ATTRIBUTE_PATH");
        std::process::exit(2);
    };
    let index = Index::open_in_dir(&dir).unwrap();
    let searcher = index.reader().unwrap().searcher();
    let schema = index.schema();
    let attrs = schema.get_field("attributes").unwrap();
    let kind = schema.get_field("kind").unwrap();
    let json_path = Term::from_field_json_path(attrs, &path, true);
    // A key of the field's term dictionary: the path, 0, the type code ('s' for text), the value.
    let mut prefix = json_path.serialized_value_bytes().to_vec();
    prefix.push(b's');
    let mut upper = prefix.clone();
    *upper.last_mut().unwrap() += 1;
    for round in 0..4 {
        // The filter: spans, as a bitset per segment.
        let t0 = Instant::now();
        let mut filters = Vec::new();
        for seg in searcher.segment_readers() {
            let mut bits = Bits(vec![0u64; seg.max_doc() as usize / 64 + 1]);
            let inv = seg.inverted_index(kind).unwrap();
            let term = Term::from_field_text(kind, "span");
            if let Some(mut p) = inv.read_postings(&term, IndexRecordOption::Basic).unwrap() {
                let mut d = p.doc();
                while d != TERMINATED {
                    bits.insert(d);
                    d = p.advance();
                }
            }
            filters.push(bits);
        }
        let t_filter = t0.elapsed();
        let t1 = Instant::now();
        let mut by_term: HashMap<Vec<u8>, u64> = HashMap::new();
        for (seg, bits) in searcher.segment_readers().iter().zip(&filters) {
            let inv = seg.inverted_index(attrs).unwrap();
            let mut stream = inv
                .terms()
                .range()
                .ge(&prefix)
                .lt(&upper)
                .into_stream()
                .unwrap();
            while stream.advance() {
                let info = stream.value();
                let mut postings = inv
                    .read_postings_from_terminfo(info, IndexRecordOption::Basic)
                    .unwrap();
                let mut n = 0;
                let mut d = postings.doc();
                while d != TERMINATED {
                    if bits.contains(d) {
                        n += 1;
                    }
                    d = postings.advance();
                }
                if n > 0 {
                    *by_term
                        .entry(stream.key()[prefix.len()..].to_vec())
                        .or_default() += n;
                }
            }
        }
        let t_terms = t1.elapsed();
        let t2 = Instant::now();
        let mut by_column: HashMap<Vec<u8>, u64> = HashMap::new();
        for (seg, bits) in searcher.segment_readers().iter().zip(&filters) {
            let Some(column) = seg
                .fast_fields()
                .str(&format!("attributes.{path}"))
                .unwrap()
            else {
                continue;
            };
            let mut per_ord: HashMap<u64, u64> = HashMap::new();
            for doc in 0..seg.max_doc() {
                if !bits.contains(doc) {
                    continue;
                }
                for ord in column.term_ords(doc) {
                    *per_ord.entry(ord).or_default() += 1;
                }
            }
            for (ord, n) in per_ord {
                let mut value = Vec::new();
                column.ord_to_bytes(ord, &mut value).unwrap();
                *by_column.entry(value).or_default() += n;
            }
        }
        let t_column = t2.elapsed();
        println!(
            "round {round}: filter {:?}; terms {:?} ({} values); column {:?} ({} values); equal {}",
            t_filter,
            t_terms,
            by_term.len(),
            t_column,
            by_column.len(),
            by_term == by_column
        );
    }
}

struct Bits(Vec<u64>);
impl Bits {
    fn insert(&mut self, d: u32) {
        self.0[d as usize / 64] |= 1 << (d % 64);
    }
    fn contains(&self, d: u32) -> bool {
        self.0[d as usize / 64] & (1 << (d % 64)) != 0
    }
}
