//! threadline's index: one tantivy index of spans and logs linked by trace id, written by one
//! writer thread whose commits carry the sources' checkpoints, and read for trace assembly,
//! search, trace search and aggregations.
//!
//! The entry point is [`Index`]: open it, start its [`Writer`], and query it. The index knows
//! nothing of files or HTTP: sources hand it [`Batch`]es of records with opaque checkpoints.

mod agg;
mod agg_records;
mod agg_traces;
mod arrivals;
mod catalog;
mod check;
mod collect;
mod compare;
pub mod doc;
mod error;
pub mod field_catalog;
mod json_terms;
mod lock;
mod lookup;
pub mod query;
mod retention;
pub mod schema;
mod search;
mod segment_cache;
mod space;
mod span_times;
#[cfg(feature = "testing")]
pub mod testing;
mod trace;
mod tracelist;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{IndexReader, IndexSettings, ReloadPolicy};

pub use crate::agg::{
    AggBucket, AggRequest, AggResponse, AttributeKey, CountMode, DurationStats, MAX_BUCKETS,
    MAX_TIME_BUCKETS, ServiceInfo, Services,
};
pub use crate::arrivals::Arrivals;
pub use crate::catalog::{DependencyLink, Operation};
pub use crate::check::{CheckReport, DamagedFile, check};
pub use crate::compare::{
    CompareRequest, CompareResponse, CompareResult, CompareUnit, HIGH_CARDINALITY,
    MAX_COMPARE_LIMIT, MAX_TRACES_READ, MAX_UNITS_READ, SideTotals, score as compare_score,
};
pub use crate::error::{Error, Result};
pub use crate::lock::{IndexLock, LOCK_FILE};
pub use crate::retention::{RetentionPolicy, RetentionReport};
pub use crate::schema::Fields;
pub use crate::search::{
    MAX_SEARCH_LIMIT, SearchRequest, SearchResponse, TraceSearchRequest, TraceSearchResponse,
    TraceSummary,
};
pub use crate::space::SpaceReport;
pub use crate::trace::{Trace, TraceLog, TraceSpan};
pub use crate::tracelist::{
    MAX_TRACE_LIST_LIMIT, MAX_TRACES_CONSIDERED, TraceListRequest, TraceListResponse, TraceRow,
    TraceSort,
};
pub use crate::writer::{
    Ack, Batch, Pause, TrySendError, Writer, WriterConfig, WriterHandle, WriterStats, WriterStatus,
};

use crate::error::Context as _;

/// Bytes of the doc store's compressed blocks: bigger compresses better, but every stored
/// record read decompresses a whole block. 64 KiB: the store is 12% smaller than with 32 KiB,
/// and a trace (records of ~20 blocks) still loads well under a millisecond
/// (docs/BENCHMARKS.md).
const DOCSTORE_BLOCKSIZE: usize = 64 * 1024;
/// zstd level of the doc store. On 64 KiB blocks of this JSON, level 1 compresses as well
/// as zstd's default 3 (13.6× against 12.8× on OTLP spans, `zstd -b1 -e3 -B65536`), 15% faster,
/// and decompresses 11% faster; far smaller than lz4. Levels 6 and 9 save under 2% more for
/// 10% more ingest CPU (docs/BENCHMARKS.md). Only new segments are written at this level: a
/// block's level is not needed to read it.
const DOCSTORE_ZSTD_LEVEL: i32 = 1;
/// The version of the commit payload format.
const PAYLOAD_VERSION: u64 = 1;

/// An open index: cheap to clone, shared by the writer thread and every reader.
#[derive(Clone)]
pub struct Index {
    inner: Arc<Inner>,
}

/// The sources' checkpoints as of the last commit: source key → the source's own position
/// value (for a file, its fingerprint key → byte offset of the last complete line indexed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoints(BTreeMap<String, serde_json::Value>);

struct Inner {
    tantivy: tantivy::Index,
    fields: Fields,
    /// Reloaded by the writer right after each commit (read-your-writes).
    reader: IndexReader,
    /// `None` for an in-memory index.
    path: Option<PathBuf>,
    /// Operations' p50 durations, as the analysis asked for them lately (`lookup.rs`).
    p50s: lookup::P50Cache,
    /// Segments' records by trace, for compare (`compare/traces.rs`).
    traces_by_segment: compare::TraceCache,
    /// Each segment's spans in time order, for the analysis's time-window lookups.
    span_times: Arc<span_times::SpanTimes>,
    /// Each segment's columns that trace assembly reads.
    columns: collect::OpenedColumns,
}

impl Index {
    /// Opens the index in `dir`, creating the directory and an empty index when there is none.
    ///
    /// A directory that holds index files but no `meta.json` is refused
    /// ([`Error::MissingMeta`]): an empty index created there would delete them at its first
    /// commit. A writer should hold the [`IndexLock`] before calling this.
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<Index> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        if dir.join(META_FILE).exists() {
            return Index::open(dir);
        }
        refuse_leftovers(dir)?;
        let tantivy = tantivy::Index::builder()
            .schema(Fields::new().schema)
            .settings(settings())
            .create_in_dir(dir)
            .map_err(|source| Error::Open {
                path: dir.to_owned(),
                source,
            })?;
        let fields = Fields::from_schema(&tantivy.schema()).map_err(|source| Error::Open {
            path: dir.to_owned(),
            source,
        })?;
        Index::with_tantivy(tantivy, fields, Some(dir.to_owned()))
    }

    /// Opens the existing index in `dir`: [`Error::NoIndex`] when there is none,
    /// [`Error::MissingMeta`] when its `meta.json` is gone, [`Error::Damaged`] when a segment
    /// file is missing or unreadable.
    pub fn open(dir: impl AsRef<Path>) -> Result<Index> {
        let dir = dir.as_ref();
        if !dir.join(META_FILE).exists() {
            refuse_leftovers(dir)?;
            return Err(Error::NoIndex {
                path: dir.to_owned(),
            });
        }
        let open_err = |source| Error::Open {
            path: dir.to_owned(),
            source,
        };
        let tantivy = tantivy::Index::open_in_dir(dir).map_err(open_err)?;
        let fields =
            Fields::from_schema(&tantivy.schema()).map_err(|e| Error::other_version(dir, e))?;
        Index::with_tantivy(tantivy, fields, Some(dir.to_owned())).map_err(|e| match e {
            // The reader opens every segment file: one missing or cut short fails here.
            Error::Tantivy { source, .. } => Error::Damaged {
                path: dir.to_owned(),
                message: format!("cannot open its segments: {source}"),
            },
            other => other,
        })
    }

    /// A fresh index in memory (tests, demos). Checkpoints work as on disk.
    pub fn create_in_ram() -> Result<Index> {
        let fields = Fields::new();
        let tantivy = tantivy::Index::builder()
            .schema(fields.schema.clone())
            .settings(settings())
            .create_in_ram()
            .context("creating an in-memory index")?;
        Index::with_tantivy(tantivy, fields, None)
    }

    fn with_tantivy(
        tantivy: tantivy::Index,
        fields: Fields,
        path: Option<PathBuf>,
    ) -> Result<Index> {
        let reader = tantivy
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .context("opening the index reader")?;
        Ok(Index {
            inner: Arc::new(Inner {
                tantivy,
                fields,
                reader,
                path,
                p50s: lookup::P50Cache::default(),
                traces_by_segment: compare::TraceCache::default(),
                span_times: Arc::default(),
                columns: collect::OpenedColumns::default(),
            }),
        })
    }

    /// The schema's field handles.
    pub fn fields(&self) -> &Fields {
        &self.inner.fields
    }

    /// The underlying tantivy index (for tools; writing must go through [`Writer`]).
    pub fn tantivy(&self) -> &tantivy::Index {
        &self.inner.tantivy
    }

    /// The directory of an on-disk index.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Number of documents (spans and logs) visible to searches.
    pub fn num_docs(&self) -> u64 {
        self.inner.reader.searcher().num_docs()
    }

    /// The checkpoints stored in the last commit's payload; empty for a new index. A tailer
    /// resumes from these on start: they describe exactly what the index holds.
    pub fn checkpoints(&self) -> Result<Checkpoints> {
        let metas = self
            .inner
            .tantivy
            .load_metas()
            .context("reading the index metadata")?;
        Checkpoints::from_payload(metas.payload.as_deref())
    }

    /// The writer's next sequence number as of the last commit (0 when it was not stored).
    pub(crate) fn payload_next_seq(&self) -> Result<u64> {
        let metas = self
            .inner
            .tantivy
            .load_metas()
            .context("reading the index metadata")?;
        let payload: Option<serde_json::Value> = metas
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok());
        Ok(payload
            .as_ref()
            .and_then(|p| p.get("next_seq"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0))
    }

    /// Reloads the reader so searches see the last commit (the writer does this after each of
    /// its commits; another process's commits need this call).
    pub fn reload(&self) -> Result<()> {
        self.inner
            .reader
            .reload()
            .context("reloading the index reader")
    }

    pub(crate) fn trace_cache(&self) -> &compare::TraceCache {
        &self.inner.traces_by_segment
    }

    pub(crate) fn searcher(&self) -> tantivy::Searcher {
        self.inner.reader.searcher()
    }

    pub(crate) fn reader(&self) -> &IndexReader {
        &self.inner.reader
    }
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("path", &self.inner.path)
            .field("num_docs", &self.num_docs())
            .finish()
    }
}

impl Checkpoints {
    pub fn new() -> Checkpoints {
        Checkpoints::default()
    }

    /// The checkpoint of one source.
    pub fn get(&self, source_key: &str) -> Option<&serde_json::Value> {
        self.0.get(source_key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn insert(&mut self, source_key: String, value: serde_json::Value) {
        self.0.insert(source_key, value);
    }

    pub(crate) fn remove(&mut self, source_key: &str) {
        self.0.remove(source_key);
    }

    /// Reads `{"v":1,"checkpoints":{...}}`; no payload means no checkpoints.
    pub(crate) fn from_payload(payload: Option<&str>) -> Result<Checkpoints> {
        let Some(payload) = payload.filter(|p| !p.trim().is_empty()) else {
            return Ok(Checkpoints::default());
        };
        let bad = |message: String| Error::Payload { message };
        let value: serde_json::Value =
            serde_json::from_str(payload).map_err(|e| bad(e.to_string()))?;
        match value.get("v").and_then(serde_json::Value::as_u64) {
            Some(PAYLOAD_VERSION) => {}
            other => return Err(bad(format!("unsupported version {other:?}"))),
        }
        let map = match value.get("checkpoints") {
            None | Some(serde_json::Value::Null) => BTreeMap::new(),
            Some(serde_json::Value::Object(map)) => {
                map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
            }
            Some(_) => return Err(bad("\"checkpoints\" is not an object".into())),
        };
        Ok(Checkpoints(map))
    }

    /// The compact payload of a commit.
    /// With the writer's next sequence number, so that arrival numbers keep growing even when
    /// retention has deleted every record that carried the largest one.
    pub(crate) fn to_payload(&self, next_seq: u64) -> String {
        serde_json::json!({"v": PAYLOAD_VERSION, "checkpoints": self.0, "next_seq": next_seq})
            .to_string()
    }
}

/// tantivy's list of the committed segments and the commit payload.
const META_FILE: &str = "meta.json";

/// Fails when `dir` (without a `meta.json`) holds what tantivy writes: `.managed.json` or
/// segment files (`<32 hex digits>.<component>`).
fn refuse_leftovers(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut found: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name == ".managed.json" || is_segment_file(name))
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    let n = found.len();
    found.truncate(3);
    let mut shown = found.join(", ");
    if n > 3 {
        shown.push_str(&format!(" and {} more", n - 3));
    }
    Err(Error::MissingMeta {
        path: dir.to_owned(),
        found: shown,
    })
}

/// `0123456789abcdef0123456789abcdef.idx`: a segment id and a component.
fn is_segment_file(name: &str) -> bool {
    name.split_once('.')
        .is_some_and(|(id, _)| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A JSON object of `pairs`, the values moved in. `serde_json::json!` copies each `Value` it
/// is given (it serialises it into a new one), which for a trace's spans and logs or a
/// search's hits is most of an answer.
pub fn json_object<const N: usize>(pairs: [(&str, serde_json::Value); N]) -> serde_json::Value {
    serde_json::Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn settings() -> IndexSettings {
    IndexSettings {
        docstore_compression: Compressor::Zstd(ZstdCompressor {
            compression_level: Some(DOCSTORE_ZSTD_LEVEL),
        }),
        docstore_blocksize: DOCSTORE_BLOCKSIZE,
        ..IndexSettings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_rejects_other_versions() {
        assert!(Checkpoints::from_payload(None).unwrap().is_empty());
        let mut checkpoints = Checkpoints::new();
        checkpoints.insert("file:abc".into(), serde_json::json!({"offset": 42}));
        let payload = checkpoints.to_payload(7);
        assert_eq!(
            payload,
            r#"{"checkpoints":{"file:abc":{"offset":42}},"next_seq":7,"v":1}"#
        );
        assert_eq!(
            Checkpoints::from_payload(Some(&payload)).unwrap(),
            checkpoints
        );
        assert!(Checkpoints::from_payload(Some(r#"{"v":2,"checkpoints":{}}"#)).is_err());
        assert!(Checkpoints::from_payload(Some("not json")).is_err());
    }
}
