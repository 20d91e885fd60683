//! The JSON fields (attributes, resource, events, links, scope) are indexed without fast
//! columns: their columns cost 13.8% of ingest's instructions and 17% of the index's bytes
//! (docs/BENCHMARKS.md, "what each part of the document costs"). What read them reads the
//! terms instead:
//!
//! - [`columns`]: a path's values per document, "uninverted" from the path's terms and their
//!   postings into an in-memory column of the same kind tantivy's fast fields give (what
//!   Lucene's field cache did), built once per segment and path and kept while the budget
//!   allows. Group-bys, `count=traces`, `compare` and span summaries read it as they read a
//!   fast column.
//! - [`PathExists`]: `exists(path)`, the union of the path's postings.
//! - [`number_range`]: `path > 5` and the like, a term range per numeric type the inverted
//!   index may hold the path's numbers as.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::{Arc, LazyLock, Mutex};

use tantivy::BitSet;
use tantivy::columnar::{ColumnarReader, ColumnarWriter, DynamicColumn};
use tantivy::index::{InvertedIndexReader, SegmentId};
use tantivy::postings::SegmentPostings;
use tantivy::query::{
    BitSetDocSet, BooleanQuery, ConstScorer, EmptyQuery, EmptyScorer, EnableScoring, Explanation,
    InvertedIndexRangeQuery, Query, Scorer, Weight,
};
use tantivy::schema::{Field, FieldType, IndexRecordOption, Schema, Type};
use tantivy::termdict::TermStreamer;
use tantivy::{DateTime, DocId, DocSet, Score, SegmentReader, TERMINATED, Term};

use crate::query::NumValue;

/// The JSON fields' names: a name under one of these is read from terms.
const JSON_ROOTS: [&str; 5] = ["attributes", "resource", "events", "links", "scope"];

/// The byte between a JSON path's segments in a term (tantivy's `JSON_PATH_SEGMENT_SEP`).
const JSON_PATH_SEGMENT_SEP: u8 = 1;

/// Bytes of built columns kept for later searches; past it, the oldest go first.
const CACHE_BYTES: usize = 128 << 20;

/// The name the built column has inside its own columnar.
const COLUMN: &str = "v";

/// A keyword field indexed without a fast column (`kind`, `status`, `span_kind`, `source`): its
/// values per record are built from its terms, as a JSON path's are.
pub(crate) fn terms_only(schema: &Schema, name: &str) -> Option<Field> {
    let field = schema.get_field(name).ok()?;
    let entry = schema.get_field_entry(field);
    (matches!(entry.field_type(), FieldType::Str(_)) && entry.is_indexed() && !entry.is_fast())
        .then_some(field)
}

/// Whether `name`'s values per record come from terms (a JSON path, or a keyword field
/// without a fast column) rather than from a fast field.
pub(crate) fn from_terms(schema: &Schema, name: &str) -> bool {
    split(schema, name).is_some() || terms_only(schema, name).is_some()
}

/// `attributes.user.id` → (`attributes`, `user.id`) when the root is a JSON field.
pub(crate) fn split(schema: &Schema, name: &str) -> Option<(Field, String)> {
    let (root, path) = name.split_once('.')?;
    if !JSON_ROOTS.contains(&root) || path.is_empty() {
        return None;
    }
    let field = schema.get_field(root).ok()?;
    Some((field, path.to_owned()))
}

/// The bytes every term of `path` (exactly) starts with: the path's segments, then the end
/// of path byte. Without the last byte, and with a separator instead, the path's children.
fn path_prefix(field: Field, path: &str) -> Vec<u8> {
    Term::from_field_json_path(field, path, true)
        .serialized_value_bytes()
        .to_vec()
}

/// The first key after every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    end
}

/// The segment's terms that start with `prefix`, in order.
fn terms_with_prefix<'a>(
    inverted: &'a InvertedIndexReader,
    prefix: &[u8],
) -> std::io::Result<TermStreamer<'a>> {
    let end = prefix_end(prefix);
    // An empty end: no key is past every key of the prefix (the prefix is empty or all 0xff).
    if end.is_empty() {
        return inverted.terms().range().ge(prefix).into_stream();
    }
    inverted.terms().range().ge(prefix).lt(&end).into_stream()
}

/// Visits every term starting with `prefix` in a segment's field, with its postings (and how
/// many documents they hold).
fn each_term(
    inverted: &InvertedIndexReader,
    prefix: &[u8],
    mut visit: impl FnMut(&[u8], &mut SegmentPostings, u32),
) -> std::io::Result<()> {
    let mut stream = terms_with_prefix(inverted, prefix)?;
    while stream.advance() {
        let info = stream.value();
        let mut postings = inverted.read_postings_from_terminfo(info, IndexRecordOption::Basic)?;
        visit(stream.key(), &mut postings, info.doc_freq);
    }
    Ok(())
}

/// Every value of a JSON term (after the path), as the column will record it.
enum TermValue {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Date(DateTime),
}

fn term_value(bytes: &[u8]) -> Option<TermValue> {
    let (&code, rest) = bytes.split_first()?;
    let number = || -> Option<u64> { Some(u64::from_be_bytes(rest.try_into().ok()?)) };
    Some(match Type::from_code(code)? {
        Type::Str => TermValue::Str(std::str::from_utf8(rest).ok()?.to_owned()),
        Type::I64 => TermValue::I64(tantivy::u64_to_i64(number()?)),
        Type::U64 => TermValue::U64(number()?),
        Type::F64 => TermValue::F64(tantivy::u64_to_f64(number()?)),
        Type::Bool => TermValue::Bool(number()? != 0),
        Type::Date => TermValue::Date(DateTime::from_timestamp_nanos(tantivy::u64_to_i64(
            number()?
        ))),
        _ => return None,
    })
}

/// A cached path's opened columns, their bytes, and when they were built.
type Cached = (Arc<Vec<DynamicColumn>>, usize, u64);

/// Built columns, by segment and name, with the order they were built in.
#[derive(Default)]
struct Cache {
    columns: HashMap<(SegmentId, String), Cached>,
    bytes: usize,
    built: u64,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);

/// The columns (one per value type) of `name` in the segment: a JSON path's, or a keyword
/// field's without a fast column, built from its terms; any other field's the segment's fast
/// field.
pub(crate) fn columns(reader: &SegmentReader, name: &str) -> tantivy::Result<Vec<DynamicColumn>> {
    if let Some((field, path)) = split(reader.schema(), name) {
        let terms = Terms::Json(path_prefix(field, &path));
        return Ok(uninverted(reader, field, &terms, name)?.as_ref().clone());
    }
    match terms_only(reader.schema(), name) {
        Some(field) => Ok(uninverted(reader, field, &Terms::Keyword, name)?
            .as_ref()
            .clone()),
        None => reader
            .fast_fields()
            .dynamic_column_handles(name)?
            .into_iter()
            .map(|handle| handle.open().map_err(tantivy::TantivyError::from))
            .collect(),
    }
}

/// Whether any term of the segment is at `name` (a JSON path) or, with `subpaths`, under it.
pub(crate) fn has_terms(
    reader: &SegmentReader,
    name: &str,
    subpaths: bool,
) -> tantivy::Result<bool> {
    let Some((field, path)) = split(reader.schema(), name) else {
        return Ok(false);
    };
    let mut prefix = path_prefix(field, &path);
    if subpaths {
        prefix.pop();
        prefix.push(JSON_PATH_SEGMENT_SEP);
    }
    let inverted = reader.inverted_index(field)?;
    Ok(terms_with_prefix(&inverted, &prefix)?.advance())
}

/// Distinct text values of the JSON path `name` in the segment.
pub(crate) fn text_values(reader: &SegmentReader, name: &str) -> tantivy::Result<u64> {
    let Some((field, path)) = split(reader.schema(), name) else {
        return Ok(0);
    };
    let mut prefix = path_prefix(field, &path);
    prefix.push(Type::Str.to_code());
    let inverted = reader.inverted_index(field)?;
    let mut stream = terms_with_prefix(&inverted, &prefix)?;
    let mut n = 0;
    while stream.advance() {
        n += 1;
    }
    Ok(n)
}

/// The opened columns of a JSON path in the segment, from the cache or built.
fn uninverted(
    reader: &SegmentReader,
    field: Field,
    terms: &Terms,
    name: &str,
) -> tantivy::Result<Arc<Vec<DynamicColumn>>> {
    let key = (reader.segment_id(), name.to_owned());
    if let Some((columns, _, _)) = lock().columns.get(&key) {
        return Ok(columns.clone());
    }
    let started = std::time::Instant::now();
    let columnar = build(reader, field, terms)?;
    let bytes = name.len() + 64 + columnar_bytes(&columnar);
    tracing::debug!(
        name,
        docs = reader.max_doc(),
        bytes,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "built a column from terms"
    );
    let columnar = Arc::new(
        columnar
            .read_columns(COLUMN)?
            .into_iter()
            .map(|handle| handle.open())
            .collect::<std::io::Result<Vec<_>>>()?,
    );
    let mut cache = lock();
    cache.built += 1;
    let built = cache.built;
    cache.bytes += bytes;
    if let Some((_, old, _)) = cache.columns.insert(key, (columnar.clone(), bytes, built)) {
        cache.bytes -= old;
    }
    while cache.bytes > CACHE_BYTES && cache.columns.len() > 1 {
        let Some(oldest) = cache
            .columns
            .iter()
            .min_by_key(|(_, (_, _, at))| *at)
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        if let Some((_, b, _)) = cache.columns.remove(&oldest) {
            cache.bytes -= b;
        }
    }
    Ok(columnar)
}

fn lock() -> std::sync::MutexGuard<'static, Cache> {
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

fn columnar_bytes(columnar: &ColumnarReader) -> usize {
    columnar
        .list_columns()
        .map(|columns| {
            columns
                .iter()
                .map(|(_, handle)| handle.num_bytes().get_bytes() as usize)
                .sum()
        })
        .unwrap_or(0)
}

/// The terms a column is built from.
enum Terms {
    /// A JSON path's: the terms starting with this prefix, each a type code and a value after it.
    Json(Vec<u8>),
    /// Every term of a keyword field, each the text itself.
    Keyword,
}

/// The values per document, from the terms: each term's postings give the documents having
/// that value; sorted by document, they are written as a column.
fn build(reader: &SegmentReader, field: Field, terms: &Terms) -> tantivy::Result<ColumnarReader> {
    let mut values: Vec<TermValue> = Vec::new();
    let mut writer = ColumnarWriter::default();
    let record = |writer: &mut ColumnarWriter, doc: DocId, value: &TermValue| match value {
        TermValue::Str(s) => writer.record_str(doc, COLUMN, s),
        TermValue::I64(v) => writer.record_numerical(doc, COLUMN, *v),
        TermValue::U64(v) => writer.record_numerical(doc, COLUMN, *v),
        TermValue::F64(v) => writer.record_numerical(doc, COLUMN, *v),
        TermValue::Bool(v) => writer.record_bool(doc, COLUMN, *v),
        TermValue::Date(v) => writer.record_datetime(doc, COLUMN, *v),
    };
    let mut block = [0; tantivy::COLLECT_BLOCK_BUFFER_LEN];
    match terms {
        // A keyword has one value per document: each document's value id in place, with no
        // sort (a group-by on the CLI builds this for every segment).
        Terms::Keyword => {
            let mut ids = vec![u32::MAX; reader.max_doc() as usize];
            each_term(&*reader.inverted_index(field)?, &[], |key, postings, _| {
                let Ok(text) = std::str::from_utf8(key) else {
                    return;
                };
                let id = values.len() as u32;
                values.push(TermValue::Str(text.to_owned()));
                each_doc(postings, &mut block, |doc| {
                    if let Some(slot) = ids.get_mut(doc as usize) {
                        *slot = id;
                    }
                });
            })?;
            for (doc, &id) in ids.iter().enumerate() {
                if let Some(value) = values.get(id as usize) {
                    record(&mut writer, doc as DocId, value);
                }
            }
        }
        // A path may have several values per document (an array): (document, value) pairs,
        // sorted by document.
        Terms::Json(prefix) => {
            let mut pairs: Vec<(DocId, u32)> = Vec::new();
            each_term(
                &*reader.inverted_index(field)?,
                prefix,
                |key, postings, _| {
                    let Some(value) = term_value(&key[prefix.len()..]) else {
                        return;
                    };
                    let id = values.len() as u32;
                    values.push(value);
                    each_doc(postings, &mut block, |doc| pairs.push((doc, id)));
                },
            )?;
            pairs.sort_unstable();
            for (doc, id) in pairs {
                record(&mut writer, doc, &values[id as usize]);
            }
        }
    }
    let mut bytes = Vec::new();
    writer.serialize(reader.max_doc(), None, &mut bytes)?;
    Ok(ColumnarReader::open(bytes)?)
}

/// Per document, `code(value)` of a keyword field's value (0 for a document without one),
/// from its terms: a byte a document, for a field of a few values read for every record of a
/// segment, without building a column.
pub(crate) fn keyword_codes(
    reader: &SegmentReader,
    field: Field,
    code: impl Fn(&str) -> u8,
) -> tantivy::Result<Vec<u8>> {
    let mut codes = vec![0u8; reader.max_doc() as usize];
    let mut block = [0; tantivy::COLLECT_BLOCK_BUFFER_LEN];
    each_term(&*reader.inverted_index(field)?, &[], |key, postings, _| {
        let value = code(&String::from_utf8_lossy(key));
        each_doc(postings, &mut block, |doc| {
            if let Some(slot) = codes.get_mut(doc as usize) {
                *slot = value;
            }
        });
    })?;
    Ok(codes)
}

/// The values of a keyword field in the segment (its terms), in order.
pub(crate) fn keyword_values(reader: &SegmentReader, field: Field) -> tantivy::Result<Vec<String>> {
    let inverted = reader.inverted_index(field)?;
    let mut stream = terms_with_prefix(&inverted, &[])?;
    let mut out = Vec::new();
    while stream.advance() {
        out.push(String::from_utf8_lossy(stream.key()).into_owned());
    }
    Ok(out)
}

/// Per value of a keyword field (its terms, in order), how many of `docs` (ascending) have it;
/// values none of them has are left out. No column is built: each value's postings are met
/// with `docs`, skipping through the postings when `docs` are few next to them, else reading
/// them whole.
pub(crate) fn count_keyword_values(
    inverted: &InvertedIndexReader,
    docs: &[DocId],
) -> std::io::Result<Vec<(String, u64)>> {
    let mut block = [0; tantivy::COLLECT_BLOCK_BUFFER_LEN];
    let mut out = Vec::new();
    each_term(inverted, &[], |key, postings, doc_freq| {
        let mut n = 0u64;
        if (docs.len() as u64).saturating_mul(8) < u64::from(doc_freq) {
            for &doc in docs {
                if postings.doc() < doc {
                    postings.seek(doc);
                }
                match postings.doc() {
                    TERMINATED => break,
                    found => n += u64::from(found == doc),
                }
            }
        } else {
            let mut at = 0;
            each_doc(postings, &mut block, |doc| {
                while docs.get(at).is_some_and(|&d| d < doc) {
                    at += 1;
                }
                if docs.get(at) == Some(&doc) {
                    n += 1;
                    at += 1;
                }
            });
        }
        if n > 0 {
            out.push((String::from_utf8_lossy(key).into_owned(), n));
        }
    })?;
    Ok(out)
}

/// Every document of `postings`, read a block at a time.
fn each_doc(
    postings: &mut dyn DocSet,
    block: &mut [DocId; tantivy::COLLECT_BLOCK_BUFFER_LEN],
    mut visit: impl FnMut(DocId),
) {
    loop {
        let n = postings.fill_buffer(block);
        block[..n].iter().for_each(|&doc| visit(doc));
        if n < block.len() {
            return;
        }
    }
}

/// `exists(path)` on a JSON field: the documents having a term at the path (or under it, with
/// `subpaths`).
#[derive(Debug, Clone)]
pub(crate) struct PathExists {
    field: Field,
    /// The documents having a term that starts with one of these.
    prefixes: Vec<Vec<u8>>,
}

impl PathExists {
    pub(crate) fn new(field: Field, path: &str, subpaths: bool) -> PathExists {
        let exact = path_prefix(field, path);
        let mut prefixes = vec![exact.clone()];
        if subpaths {
            let mut under = exact;
            under.pop();
            under.push(JSON_PATH_SEGMENT_SEP);
            prefixes.push(under);
        }
        PathExists { field, prefixes }
    }

    /// The documents having any term of `field` (a keyword field without a fast column, for
    /// which tantivy's `ExistsQuery` has nothing to read).
    pub(crate) fn any_term(field: Field) -> PathExists {
        PathExists {
            field,
            prefixes: vec![Vec::new()],
        }
    }
}

impl Query for PathExists {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(PathExistsWeight {
            field: self.field,
            prefixes: self.prefixes.clone(),
        }))
    }
}

struct PathExistsWeight {
    field: Field,
    prefixes: Vec<Vec<u8>>,
}

impl Weight for PathExistsWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let inverted = reader.inverted_index(self.field)?;
        let mut infos = Vec::new();
        for prefix in &self.prefixes {
            let mut stream = terms_with_prefix(&inverted, prefix)?;
            while stream.advance() {
                infos.push(stream.value().clone());
            }
        }
        // No term, or one: no bitset of the whole segment to clear and fill.
        match infos.len() {
            0 => return Ok(Box::new(EmptyScorer)),
            1 => {
                let postings =
                    inverted.read_postings_from_terminfo(&infos[0], IndexRecordOption::Basic)?;
                return Ok(Box::new(ConstScorer::new(postings, boost)));
            }
            _ => {}
        }
        let mut bits = BitSet::with_max_value(reader.max_doc());
        for info in &infos {
            let mut postings =
                inverted.read_postings_from_terminfo(info, IndexRecordOption::Basic)?;
            let mut doc = postings.doc();
            while doc != TERMINATED {
                bits.insert(doc);
                doc = postings.advance();
            }
        }
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(bits), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} does not have the path"
            )));
        }
        Ok(Explanation::new("PathExists", 1.0))
    }
}

/// `path op number` (`op` one of `>`, `>=`, `<`, `<=`) on a JSON field. The inverted index
/// holds a path's whole numbers as i64 (u64 above i64's range) and the others as f64, each
/// type's terms in order: the answer is a range of each type's terms, the bound converted.
pub(crate) fn number_range(
    field: Field,
    path: &str,
    lower: Bound<NumValue>,
    upper: Bound<NumValue>,
) -> Box<dyn Query> {
    let prefix = Term::from_field_json_path(field, path, true);
    let with = |f: &dyn Fn(&mut Term)| {
        let mut t = prefix.clone();
        f(&mut t);
        t
    };
    let mut per_type: Vec<Box<dyn Query>> = Vec::new();
    // Whole numbers: the bounds as an inclusive interval of integers.
    let lo = match lower {
        Bound::Unbounded => i128::MIN,
        Bound::Included(n) => ceil(n),
        Bound::Excluded(n) => floor(n).saturating_add(1),
    };
    let hi = match upper {
        Bound::Unbounded => i128::MAX,
        Bound::Included(n) => floor(n),
        Bound::Excluded(n) => ceil(n).saturating_sub(1),
    };
    let i64_lo = lo.max(i64::MIN as i128);
    let i64_hi = hi.min(i64::MAX as i128);
    if i64_lo <= i64_hi {
        per_type.push(Box::new(InvertedIndexRangeQuery::new(
            Bound::Included(with(&|t| t.append_type_and_fast_value(i64_lo as i64))),
            Bound::Included(with(&|t| t.append_type_and_fast_value(i64_hi as i64))),
        )));
    }
    let u64_lo = lo.max(0);
    let u64_hi = hi.min(u64::MAX as i128);
    if u64_lo <= u64_hi {
        per_type.push(Box::new(InvertedIndexRangeQuery::new(
            Bound::Included(with(&|t| t.append_type_and_fast_value(u64_lo as u64))),
            Bound::Included(with(&|t| t.append_type_and_fast_value(u64_hi as u64))),
        )));
    }
    let as_f64 = |bound: Bound<NumValue>, unbounded: f64| match bound {
        Bound::Unbounded => Bound::Included(with(&|t| t.append_type_and_fast_value(unbounded))),
        Bound::Included(n) => Bound::Included(with(&|t| t.append_type_and_fast_value(f64_of(n)))),
        Bound::Excluded(n) => Bound::Excluded(with(&|t| t.append_type_and_fast_value(f64_of(n)))),
    };
    per_type.push(Box::new(InvertedIndexRangeQuery::new(
        as_f64(lower, f64::NEG_INFINITY),
        as_f64(upper, f64::INFINITY),
    )));
    match per_type.len() {
        0 => Box::new(EmptyQuery),
        _ => Box::new(BooleanQuery::union(per_type)),
    }
}

fn f64_of(n: NumValue) -> f64 {
    match n {
        NumValue::I64(v) => v as f64,
        NumValue::U64(v) => v as f64,
        NumValue::F64(v) => v,
    }
}

/// The least integer ≥ n (saturating; NaN as the least).
fn ceil(n: NumValue) -> i128 {
    match n {
        NumValue::I64(v) => v as i128,
        NumValue::U64(v) => v as i128,
        NumValue::F64(v) if v.is_nan() => i128::MIN,
        NumValue::F64(v) => v.ceil() as i128,
    }
}

/// The greatest integer ≤ n (saturating; NaN as the greatest).
fn floor(n: NumValue) -> i128 {
    match n {
        NumValue::I64(v) => v as i128,
        NumValue::U64(v) => v as i128,
        NumValue::F64(v) if v.is_nan() => i128::MAX,
        NumValue::F64(v) => v.floor() as i128,
    }
}

/// Paths seen per segment and JSON field.
type PathCache = HashMap<(SegmentId, Field), Arc<Vec<String>>>;

static PATHS: LazyLock<Mutex<PathCache>> = LazyLock::new(Mutex::default);

/// Every path of the JSON field that has a term in the segment, dotted (`user.id`), in term
/// order. One dictionary seek per path: from a path's first term, straight past its last.
pub(crate) fn paths(reader: &SegmentReader, field: Field) -> tantivy::Result<Arc<Vec<String>>> {
    let key = (reader.segment_id(), field);
    let lock = || PATHS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(paths) = lock().get(&key) {
        return Ok(paths.clone());
    }
    let inverted = reader.inverted_index(field)?;
    let mut out = Vec::new();
    let mut from: Vec<u8> = Vec::new();
    loop {
        let mut stream = inverted.terms().range().ge(&from).into_stream()?;
        if !stream.advance() {
            break;
        }
        let term = stream.key();
        let Some(end) = term.iter().position(|&b| b == 0) else {
            break;
        };
        let path: String = String::from_utf8_lossy(&term[..end])
            .chars()
            .map(|c| if c == '\u{1}' { '.' } else { c })
            .collect();
        out.push(path);
        from = prefix_end(&term[..=end]);
    }
    let paths = Arc::new(out);
    let mut cache = lock();
    // Segments merged away leave their entries: forget them all now and then.
    if cache.len() > 4096 {
        cache.clear();
    }
    cache.insert(key, paths.clone());
    Ok(paths)
}
