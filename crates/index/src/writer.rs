//! The writer: the one owner of the tantivy `IndexWriter`, on its own thread, fed batches through
//! a bounded channel. It group-commits on an interval or a size, always with the sources'
//! checkpoints as the commit payload, reloads the reader, and only then completes the acks.
//!
//! An error while indexing or committing (a full disk, too many open files) does not stop the
//! writer: it fails the acks of everything uncommitted, rolls back to the last commit, bumps its
//! generation and pauses (see [`WriterStatus`]); it then probes the index directory on a
//! backoff and resumes by itself once the cause is gone. Sources that send checkpoints restart
//! from the committed ones when the generation changes (their stale batches are dropped).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use model::Record;
use tantivy::directory::error::{OpenReadError, OpenWriteError};
use tantivy::indexer::IndexWriterOptions;
use tantivy::merge_policy::LogMergePolicy;
use tantivy::{IndexWriter, Opstamp, TantivyError};
use tokio::sync::{mpsc, oneshot, watch};

use crate::doc::RecordDoc;
use crate::error::{Context as _, Error, Result};
use crate::retention::{self, RetentionPolicy, RetentionReport};
use crate::schema::Fields;
use crate::schema::names;
use crate::{Checkpoints, Index};

/// A segment with more than this share of deleted records is merged (its bytes come back);
/// tantivy's default, 1.0, never merges for deletes alone.
const DELETED_RATIO_BEFORE_MERGE: f32 = 0.1;

/// Rounds of "delete the oldest, merge, measure again" in one retention pass.
const MAX_SIZE_ROUNDS: usize = 4;

/// Completed with the opstamp of the commit that made the batch durable, or the commit's error.
pub type Ack = oneshot::Sender<Result<Opstamp>>;

/// Records to index and the positions of their sources once they are indexed.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<Record>,
    /// Source key → checkpoint after this batch's records; later batches override earlier ones,
    /// and a `null` value removes the key from the payload.
    pub checkpoints: Vec<(String, serde_json::Value)>,
    /// Completed after the commit that holds this batch ("ack means durable").
    pub ack: Option<Ack>,
    /// The writer generation its source started from (see [`Batch::in_generation`]).
    generation: Option<u64>,
}

/// Writer tuning; `Default` is right for a single machine.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Commit at most this long after the first uncommitted batch arrived, once the queue is
    /// empty: what a line read or a span received waits before it is searchable.
    pub commit_interval: Duration,
    /// However full the queue stays (a backfill, a burst), commit at most this long after the
    /// first uncommitted batch arrived (or `commit_interval`, if longer): the bound on what an
    /// ack waits for under load, where `commit_interval` applies only when the writer gets to
    /// wait on the queue.
    pub max_commit_delay: Duration,
    /// Commit as soon as this many records are pending. Each commit ends every indexing
    /// thread's segment, and tantivy merges the small segments later: large bounds keep a
    /// backfill in few segments (docs/BENCHMARKS.md, issue 13).
    pub commit_records: usize,
    /// Commit as soon as this many bytes (estimated) are pending.
    pub commit_bytes: usize,
    /// Batches the channel holds before senders wait (or `try_send` fails).
    pub queue_capacity: usize,
    /// tantivy's indexing memory, split over `num_threads` (at least 15 MB each).
    pub memory_budget: usize,
    pub num_threads: usize,
    /// After an error pauses indexing, the first retry comes this long after; each failed
    /// retry doubles the wait, up to `max_retry_interval`.
    pub retry_interval: Duration,
    pub max_retry_interval: Duration,
    /// Segments of more than this many records are not merged by this writer (tantivy's log
    /// merge policy merges up to 10M). A bulk load sets it under the size of the segments it
    /// flushes: merging them would cost a fifth of its CPU and map its inputs (docs/BENCHMARKS.md).
    pub max_merge_docs: usize,
}

/// A batch that `try_send` could not queue, handed back.
#[derive(Debug)]
pub enum TrySendError {
    /// The queue is full: answer 429/503 with `Retry-After`, or wait.
    Full(Batch),
    /// The writer has stopped.
    Closed(Batch),
    /// Indexing is paused by an error (answer 503 with `Retry-After`): the cause, and the batch.
    Paused { cause: String, batch: Batch },
}

/// A cheap, cloneable handle for sending to the writer (the tailer, the OTLP receiver, ...).
#[derive(Debug, Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Msg>,
    counters: Arc<Counters>,
}

/// The writer thread and a handle to it; derefs to [`WriterHandle`].
#[derive(Debug)]
pub struct Writer {
    handle: WriterHandle,
    thread: Option<JoinHandle<Result<()>>>,
}

/// A snapshot of the writer's counters, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterStats {
    /// Records in successful commits since start.
    pub records_indexed: u64,
    pub commits: u64,
    pub last_commit_latency: Duration,
    /// Messages waiting in the channel.
    pub queue_depth: usize,
    pub queue_capacity: usize,
    /// Times an error paused indexing since start.
    pub pauses: u64,
    /// Why indexing is paused, while it is.
    pub paused: Option<Pause>,
    /// The writer thread has ended (shut down, or panicked).
    pub stopped: bool,
}

/// Whether the writer indexes, and how often it has rolled back: what `/readyz` reports and what
/// a checkpointed source watches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriterStatus {
    /// Bumped each time an error rolls back uncommitted work. A source whose batches carry
    /// checkpoints stamps them with the generation it started from
    /// ([`Batch::in_generation`]); the writer drops batches of an older generation, so such a
    /// source must restart from [`Index::checkpoints`] when this changes.
    pub generation: u64,
    /// Why indexing is paused, while it is; `None` while the writer indexes.
    pub paused: Option<Pause>,
}

/// Why and since when indexing is paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    /// What failed and why, the OS error included: "committing: No space left on device
    /// (os error 28)".
    pub cause: String,
    /// The `std::io::ErrorKind` of the cause (`StorageFull`, ...), when it is an I/O error.
    pub io_kind: Option<String>,
    pub since: SystemTime,
}

enum Msg {
    Batch(Batch),
    Flush(oneshot::Sender<Result<Opstamp>>),
    Retention(
        RetentionPolicy,
        i64,
        oneshot::Sender<Result<RetentionReport>>,
    ),
    Shutdown,
}

#[derive(Debug)]
struct Counters {
    records_indexed: AtomicU64,
    commits: AtomicU64,
    last_commit_latency_us: AtomicU64,
    pauses: AtomicU64,
    status: watch::Sender<WriterStatus>,
}

/// The writer thread's state.
struct State {
    index: Index,
    writer: IndexWriter<RecordDoc>,
    /// Shared by every document.
    fields: Arc<Fields>,
    config: WriterConfig,
    counters: Arc<Counters>,
    next_seq: u64,
    /// As of the last commit (the previous payload on start).
    committed: Checkpoints,
    last_opstamp: Opstamp,
    pending_checkpoints: BTreeMap<String, serde_json::Value>,
    pending_records: usize,
    pending_bytes: usize,
    pending_acks: Vec<Ack>,
    /// When the oldest uncommitted batch arrived.
    pending_since: Option<Instant>,
    /// To build a new tantivy writer when a rollback fails.
    options: IndexWriterOptions,
    /// Set while indexing is paused.
    paused: Option<Paused>,
    /// The wait before the next retry; doubles on each failure, reset by a successful commit.
    backoff: Duration,
}

/// The writer thread's side of a pause.
struct Paused {
    cause: String,
    retry_at: Instant,
    /// The rollback failed: the tantivy writer must be built anew before indexing again.
    writer_lost: bool,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            commit_interval: Duration::from_secs(1),
            max_commit_delay: Duration::from_secs(2),
            commit_records: 400_000,
            commit_bytes: 256 << 20,
            queue_capacity: 64,
            memory_budget: 128 << 20,
            num_threads: 2,
            retry_interval: Duration::from_secs(1),
            max_retry_interval: Duration::from_secs(10),
            max_merge_docs: 10_000_000,
        }
    }
}

impl Batch {
    /// A batch without an ack.
    pub fn new(records: Vec<Record>, checkpoints: Vec<(String, serde_json::Value)>) -> Batch {
        Batch {
            records,
            checkpoints,
            ack: None,
            generation: None,
        }
    }

    /// Marks a batch of a checkpointed source as produced from the committed checkpoints of
    /// writer generation `generation` ([`WriterStatus::generation`]). After a rollback the
    /// writer drops such batches of older generations: their records follow records that
    /// were never committed, and their source reads them again from the committed checkpoints.
    pub fn in_generation(mut self, generation: u64) -> Batch {
        self.generation = Some(generation);
        self
    }

    /// A batch with an ack, and the receiver that completes after its commit.
    pub fn with_ack(
        records: Vec<Record>,
        checkpoints: Vec<(String, serde_json::Value)>,
    ) -> (Batch, oneshot::Receiver<Result<Opstamp>>) {
        let (tx, rx) = oneshot::channel();
        (
            Batch {
                records,
                checkpoints,
                ack: Some(tx),
                generation: None,
            },
            rx,
        )
    }
}

impl Writer {
    /// Takes tantivy's writer lock and starts the writer thread. Checkpoints carry over from
    /// the last commit's payload. A process should hold the [`crate::IndexLock`] first, taken
    /// before the index was opened.
    pub fn start(index: &Index, config: WriterConfig) -> Result<Writer> {
        let num_threads = config.num_threads.clamp(1, 8);
        let per_thread = (config.memory_budget / num_threads).max(15_000_000);
        let options = IndexWriterOptions::builder()
            .memory_budget_per_thread(per_thread)
            .num_worker_threads(num_threads)
            .build();
        let writer: IndexWriter<RecordDoc> = index
            .tantivy()
            .writer_with_options(options.clone())
            .context("opening the index writer")?;
        writer.set_merge_policy(merge_policy(&config));
        let committed = index.checkpoints()?;
        let next_seq = next_seq(index)?.max(index.payload_next_seq()?);
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let counters = Arc::new(Counters {
            records_indexed: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            last_commit_latency_us: AtomicU64::new(0),
            pauses: AtomicU64::new(0),
            status: watch::Sender::new(WriterStatus::default()),
        });
        let state = State {
            index: index.clone(),
            last_opstamp: writer.commit_opstamp(),
            fields: Arc::new(index.fields().clone()),
            writer,
            config,
            counters: counters.clone(),
            next_seq,
            committed,
            pending_checkpoints: BTreeMap::new(),
            pending_records: 0,
            pending_bytes: 0,
            pending_acks: Vec::new(),
            pending_since: None,
            options,
            paused: None,
            backoff: Duration::ZERO,
        };
        let thread = std::thread::Builder::new()
            .name("threadline-writer".into())
            .spawn(move || state.run(rx))
            .map_err(|e| Error::Commit {
                message: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Writer {
            handle: WriterHandle { tx, counters },
            thread: Some(thread),
        })
    }

    /// A handle for another sender.
    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Commits everything received so far (batches queued before this call included), waits
    /// for merges and stops the thread. Blocking: call it off the async runtime
    /// (`spawn_blocking`).
    pub fn shutdown(mut self) -> Result<()> {
        // If the thread already stopped the send fails; joining reports why.
        let _ = self.handle.tx.blocking_send(Msg::Shutdown);
        let thread = self.thread.take().expect("joined only here");
        thread.join().map_err(|_| Error::WriterPanicked)?
    }
}

impl std::ops::Deref for Writer {
    type Target = WriterHandle;
    fn deref(&self) -> &WriterHandle {
        &self.handle
    }
}

impl WriterHandle {
    /// Queues a batch, waiting while the queue is full. Refused with [`Error::Paused`] while
    /// indexing is paused (a batch queued just before a pause is dropped, its ack failed).
    pub async fn send(&self, batch: Batch) -> Result<()> {
        self.check_paused()?;
        self.tx
            .send(Msg::Batch(batch))
            .await
            .map_err(|_| Error::WriterClosed)
    }

    /// [`WriterHandle::send`] for a plain thread (panics inside an async runtime).
    pub fn blocking_send(&self, batch: Batch) -> Result<()> {
        self.check_paused()?;
        self.tx
            .blocking_send(Msg::Batch(batch))
            .map_err(|_| Error::WriterClosed)
    }

    /// Whether the writer indexes, its generation, and why it is paused if it is.
    pub fn status(&self) -> WriterStatus {
        self.counters.status.borrow().clone()
    }

    /// Follows [`WriterHandle::status`] as it changes.
    pub fn subscribe(&self) -> watch::Receiver<WriterStatus> {
        self.counters.status.subscribe()
    }

    fn check_paused(&self) -> Result<()> {
        match &self.counters.status.borrow().paused {
            Some(pause) => Err(Error::Paused {
                cause: pause.cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Queues a batch only if there is room now, for callers that must not block.
    pub fn try_send(&self, batch: Batch) -> Result<(), TrySendError> {
        if let Err(Error::Paused { cause }) = self.check_paused() {
            return Err(TrySendError::Paused { cause, batch });
        }
        self.tx.try_send(Msg::Batch(batch)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(Msg::Batch(b)) => TrySendError::Full(b),
            mpsc::error::TrySendError::Closed(Msg::Batch(b)) => TrySendError::Closed(b),
            _ => unreachable!("only batches are sent here"),
        })
    }

    /// Commits everything queued before this call and waits until it is durable and visible to
    /// searches. Returns the opstamp of the last commit.
    pub async fn flush(&self) -> Result<Opstamp> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Flush(tx))
            .await
            .map_err(|_| Error::WriterClosed)?;
        rx.await.map_err(|_| Error::WriterClosed)?
    }

    /// [`WriterHandle::flush`] for a plain thread (panics inside an async runtime).
    pub fn blocking_flush(&self) -> Result<Opstamp> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .blocking_send(Msg::Flush(tx))
            .map_err(|_| Error::WriterClosed)?;
        rx.blocking_recv().map_err(|_| Error::WriterClosed)?
    }

    /// Applies the retention policy as of `now_ns`: deletes what it no longer keeps, commits
    /// (visible at once), and merges the segments that held the deleted records so their disk
    /// space comes back. Runs on the writer thread between batches.
    pub async fn apply_retention(
        &self,
        policy: RetentionPolicy,
        now_ns: i64,
    ) -> Result<RetentionReport> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Retention(policy, now_ns, tx))
            .await
            .map_err(|_| Error::WriterClosed)?;
        rx.await.map_err(|_| Error::WriterClosed)?
    }

    pub fn stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            pauses: c.pauses.load(Ordering::Relaxed),
            paused: c.status.borrow().paused.clone(),
            stopped: self.tx.is_closed(),
            records_indexed: c.records_indexed.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            last_commit_latency: Duration::from_micros(
                c.last_commit_latency_us.load(Ordering::Relaxed),
            ),
            queue_depth: self.tx.max_capacity() - self.tx.capacity(),
            queue_capacity: self.tx.max_capacity(),
        }
    }
}

impl State {
    fn run(mut self, rx: mpsc::Receiver<Msg>) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| Error::Commit {
                message: format!("cannot start the writer runtime: {e}"),
            })?;
        let result = runtime.block_on(self.serve(rx));
        if let Err(e) = &result {
            // Whoever waits learns it failed; nothing pending survives a failed commit.
            for ack in self.pending_acks.drain(..) {
                let _ = ack.send(Err(Error::Commit {
                    message: e.to_string(),
                }));
            }
            // A pause has rolled back already (and a second rollback after a failed one would
            // panic in tantivy: the writer no longer holds its lock).
            if self.paused.is_none() {
                let _ = self.writer.rollback();
            }
            return result;
        }
        self.writer
            .wait_merging_threads()
            .context("waiting for merges at shutdown")
    }

    async fn serve(&mut self, mut rx: mpsc::Receiver<Msg>) -> Result<()> {
        loop {
            // While paused: the next retry; otherwise the commit interval of pending work.
            let deadline = match (&self.paused, self.pending_since) {
                (Some(paused), _) => Some(paused.retry_at),
                (None, Some(since)) => Some(since + self.config.commit_interval),
                (None, None) => None,
            };
            let msg = match deadline {
                Some(deadline) => {
                    let deadline = tokio::time::Instant::from_std(deadline);
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(msg) => msg,
                        Err(_elapsed) => {
                            if self.paused.is_some() {
                                self.retry();
                            } else {
                                // A failure pauses the writer and fails the acks.
                                let _ = self.commit();
                            }
                            continue;
                        }
                    }
                }
                None => rx.recv().await,
            };
            match msg {
                Some(Msg::Batch(batch)) => self.add(batch)?,
                Some(Msg::Flush(reply)) => self.flush(reply)?,
                Some(Msg::Retention(policy, now_ns, reply)) => {
                    let _ = reply.send(self.retain(policy, now_ns));
                }
                Some(Msg::Shutdown) | None => {
                    // Take what was queued before the shutdown, refuse anything later.
                    rx.close();
                    while let Ok(msg) = rx.try_recv() {
                        match msg {
                            Msg::Batch(batch) => self.add(batch)?,
                            Msg::Flush(reply) => self.flush(reply)?,
                            Msg::Retention(_, _, reply) => {
                                let _ = reply.send(Err(Error::WriterClosed));
                            }
                            Msg::Shutdown => {}
                        }
                    }
                    self.commit()?;
                    return Ok(());
                }
            }
        }
    }

    fn add(&mut self, batch: Batch) -> Result<()> {
        if let Some(paused) = &self.paused {
            // Nothing is indexed while paused: the sender learns why (an OTLP client gets a
            // 503 and retries; a checkpointed source reads it again from the last commit).
            if let Some(ack) = batch.ack {
                let _ = ack.send(Err(paused.refusal()));
            }
            return Ok(());
        }
        if batch
            .generation
            .is_some_and(|generation| generation != self.generation())
        {
            // Produced before the last rollback: its source re-reads it from the checkpoints.
            if let Some(ack) = batch.ack {
                let _ = ack.send(Err(Error::Stale));
            }
            return Ok(());
        }
        let n_records = batch.records.len();
        for record in batch.records {
            let document = RecordDoc::new(record, self.fields.clone(), self.next_seq);
            self.next_seq += 1;
            self.pending_bytes += document.approx_bytes();
            // One document per message: tantivy's queue holds a bounded number of messages,
            // so this bounds the records waiting for an indexing thread (a whole batch per
            // message let the decoder run hundreds of MB ahead).
            if let Err(e) = self.writer.add_document(document) {
                self.pending_acks.extend(batch.ack);
                // An indexing thread died ("an index writer was killed"): the commit reports
                // the I/O error that killed it.
                let cause = match self.writer.prepare_commit() {
                    Err(cause) => cause,
                    Ok(prepared) => {
                        let _ = prepared.abort();
                        e
                    }
                };
                self.pause("indexing a record", cause);
                return Ok(());
            }
        }
        self.pending_records += n_records;
        self.pending_checkpoints.extend(batch.checkpoints);
        self.pending_acks.extend(batch.ack);
        let since = self.pending_since.get_or_insert_with(Instant::now);
        if self.pending_records >= self.config.commit_records
            || self.pending_bytes >= self.config.commit_bytes
            || since.elapsed()
                >= self
                    .config
                    .max_commit_delay
                    .max(self.config.commit_interval)
        {
            let _ = self.commit();
        }
        Ok(())
    }

    /// Commits now and answers the flush (with the cause while paused).
    fn flush(&mut self, reply: oneshot::Sender<Result<Opstamp>>) -> Result<()> {
        let _ = reply.send(self.commit());
        Ok(())
    }

    /// Commits pending work with the merged checkpoints as payload; a failure pauses the
    /// writer (its acks fail, the work is rolled back) and is returned.
    fn commit(&mut self) -> Result<Opstamp> {
        if let Some(paused) = &self.paused {
            return Err(paused.refusal());
        }
        match self.try_commit() {
            Ok(opstamp) => Ok(opstamp),
            Err(cause) => {
                self.pause("committing", cause);
                Err(self.paused.as_ref().expect("just paused").refusal())
            }
        }
    }

    /// One retention pass: by age first, then by size (a few rounds, each re-measuring the
    /// segments in use less the share of their records already deleted, since the merges that
    /// reclaim those bytes run in the background).
    fn retain(&mut self, policy: RetentionPolicy, now_ns: i64) -> Result<RetentionReport> {
        // Pending records first, so that the delete applies to everything received before it.
        self.commit()?;
        // Files of segments that merges made obsolete since (searchers hold what they read).
        let _ = self.index.reader().reload();
        let _ = self.writer.garbage_collect_files().wait();
        let size_before = self.index.size_on_disk()?;
        let mut report = RetentionReport {
            size_before,
            size_after: size_before,
            ..RetentionReport::default()
        };
        if let Some(max_age) = policy.max_age {
            let age = i64::try_from(max_age.as_nanos()).unwrap_or(i64::MAX);
            self.delete_before(now_ns.saturating_sub(age), &mut report)?;
        }
        if let Some(max_size) = policy.max_size {
            for _ in 0..MAX_SIZE_ROUNDS {
                let size = self.index.live_size_without_deleted()?;
                let n_docs = self.index.num_docs();
                if size <= max_size || n_docs == 0 {
                    break;
                }
                // Records cost about the same: delete the oldest share that is over the limit.
                let per_doc = (size / n_docs).max(1);
                let n = (size - max_size).div_ceil(per_doc).clamp(1, n_docs);
                let Some(cutoff) = self.index.cutoff_for_oldest(n)? else {
                    break;
                };
                if !self.delete_before(cutoff, &mut report)? {
                    break;
                }
            }
        }
        report.size_after = self.index.size_on_disk()?;
        Ok(report)
    }

    /// Deletes every record older than `cutoff_ns`, commits, and merges the segments that held
    /// them. False when there was nothing to delete.
    fn delete_before(&mut self, cutoff_ns: i64, report: &mut RetentionReport) -> Result<bool> {
        let n = self.index.count_before(cutoff_ns)?;
        if n == 0 {
            return Ok(false);
        }
        self.writer
            .delete_query(retention::older_than(&self.index, cutoff_ns))
            .context("deleting old records")?;
        // A commit with no new records still carries the delete (and the same checkpoints).
        self.pending_since.get_or_insert_with(Instant::now);
        self.commit()?;
        report.deleted += n;
        report.cutoff_ns = report.cutoff_ns.max(Some(cutoff_ns));
        // Segments whose records are all gone were dropped by the commit; the others keep the
        // deleted records' bytes until a merge rewrites them, which the merge policy starts
        // for any segment with more than `DELETED_RATIO_BEFORE_MERGE` of its records deleted.
        // Searchers keep the segments they read alive (tantivy tracks them): reload first, so
        // the collection can remove the merged-away files.
        let _ = self.index.reader().reload();
        let _ = self.writer.garbage_collect_files().wait();
        Ok(true)
    }

    /// Never a plain `commit()`, which would clear the payload.
    fn try_commit(&mut self) -> tantivy::Result<Opstamp> {
        if self.pending_since.is_none() {
            return Ok(self.last_opstamp);
        }
        let started = Instant::now();
        let mut checkpoints = self.committed.clone();
        for (key, value) in &self.pending_checkpoints {
            // A source that is gone (the tailer's expiry) sends `null`: forget it, so the
            // payload does not grow with every file ever rotated away.
            if value.is_null() {
                checkpoints.remove(key);
            } else {
                checkpoints.insert(key.clone(), value.clone());
            }
        }
        let payload = checkpoints.to_payload(self.next_seq);
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        let opstamp = prepared.commit()?;
        self.pending_checkpoints.clear();
        self.committed = checkpoints;
        self.last_opstamp = opstamp;
        self.backoff = Duration::ZERO;
        // Read-your-writes: the reader uses ReloadPolicy::Manual. A failed reload leaves the
        // data durable and searches a commit behind; the next commit retries.
        let _ = self.index.reader().reload();
        let c = &self.counters;
        c.records_indexed
            .fetch_add(self.pending_records as u64, Ordering::Relaxed);
        c.commits.fetch_add(1, Ordering::Relaxed);
        c.last_commit_latency_us
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        self.pending_records = 0;
        self.pending_bytes = 0;
        self.pending_since = None;
        for ack in self.pending_acks.drain(..) {
            let _ = ack.send(Ok(opstamp));
        }
        Ok(opstamp)
    }

    fn generation(&self) -> u64 {
        self.counters.status.borrow().generation
    }

    /// Fails every uncommitted ack, rolls back to the last commit, bumps the generation and
    /// pauses until [`State::retry`] finds the cause gone.
    fn pause(&mut self, doing: &str, cause: TantivyError) {
        let io_kind = io_error(&cause).map(|e| format!("{:?}", e.kind()));
        let cause = describe(doing, &cause);
        tracing::error!(
            cause = %cause,
            "indexing paused: uncommitted records are rolled back and will be read or sent again; \
             the writer retries by itself"
        );
        for ack in self.pending_acks.drain(..) {
            let _ = ack.send(Err(Error::Paused {
                cause: cause.clone(),
            }));
        }
        self.pending_checkpoints.clear();
        self.pending_records = 0;
        self.pending_bytes = 0;
        self.pending_since = None;
        let writer_lost = self.roll_back().is_err();
        self.backoff =
            (self.backoff * 2).clamp(self.config.retry_interval, self.config.max_retry_interval);
        self.paused = Some(Paused {
            cause: cause.clone(),
            retry_at: Instant::now() + self.backoff,
            writer_lost,
        });
        self.counters.pauses.fetch_add(1, Ordering::Relaxed);
        self.counters.status.send_modify(|status| {
            status.generation += 1;
            status.paused = Some(Pause {
                cause,
                io_kind,
                since: SystemTime::now(),
            });
        });
    }

    /// Back to the last commit, and the disk space of segments it never used given back.
    fn roll_back(&mut self) -> tantivy::Result<()> {
        self.writer.rollback()?;
        let _ = self.writer.garbage_collect_files().wait();
        Ok(())
    }

    /// Resumes if a writer can be had and the index directory takes a write; otherwise waits
    /// twice as long for the next try.
    fn retry(&mut self) {
        let Some(paused) = &mut self.paused else {
            return;
        };
        let outcome = (|| {
            if paused.writer_lost {
                // tantivy's rollback takes the writer's lock out before rebuilding; when the
                // rebuild failed the old writer has none and must be replaced.
                let writer = self
                    .index
                    .tantivy()
                    .writer_with_options(self.options.clone())
                    .map_err(|e| describe("reopening the index writer", &e))?;
                writer.set_merge_policy(merge_policy(&self.config));
                self.writer = writer;
                paused.writer_lost = false;
            } else {
                let _ = self.writer.garbage_collect_files().wait();
            }
            if let Some(dir) = self.index.path() {
                probe(dir).map_err(|e| {
                    format!(
                        "writing a {PROBE_BYTES}-byte test file in {}: {e}",
                        dir.display()
                    )
                })?;
            }
            Ok::<_, String>(())
        })();
        match outcome {
            Ok(()) => {
                // The disk's truth: a commit may have landed although it reported an error.
                match self.index.checkpoints() {
                    Ok(committed) => self.committed = committed,
                    Err(e) => tracing::warn!(error = %e, "cannot re-read the checkpoints"),
                }
                self.last_opstamp = self.writer.commit_opstamp();
                let since = self
                    .counters
                    .status
                    .borrow()
                    .paused
                    .as_ref()
                    .map(|p| p.since);
                let paused_for = since.and_then(|s| s.elapsed().ok()).unwrap_or_default();
                tracing::info!(
                    paused_s = paused_for.as_secs(),
                    "indexing resumed: the index directory takes writes again"
                );
                self.paused = None;
                self.counters
                    .status
                    .send_modify(|status| status.paused = None);
            }
            Err(still) => {
                self.backoff = (self.backoff * 2)
                    .clamp(self.config.retry_interval, self.config.max_retry_interval);
                paused.retry_at = Instant::now() + self.backoff;
                tracing::warn!(
                    cause = %still,
                    retry_in_s = self.backoff.as_secs_f64(),
                    "indexing still paused"
                );
            }
        }
    }
}

impl Paused {
    fn refusal(&self) -> Error {
        Error::Paused {
            cause: self.cause.clone(),
        }
    }
}

/// Bytes written (and removed) to test that the index directory takes writes again.
const PROBE_BYTES: usize = 1 << 20;

/// Writes, syncs and removes a test file: fails while the disk is full or no file can be
/// opened.
fn probe(dir: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let path = dir.join(".threadline-probe");
    let result = (|| {
        let mut file = std::fs::File::create(&path)?;
        file.write_all(&vec![0u8; PROBE_BYTES])?;
        file.sync_data()
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// The I/O error inside a tantivy error, if there is one.
fn io_error(err: &TantivyError) -> Option<&std::io::Error> {
    use tantivy::directory::error::OpenDirectoryError;
    match err {
        TantivyError::IoError(e) => Some(e),
        TantivyError::OpenReadError(OpenReadError::IoError { io_error, .. })
        | TantivyError::OpenWriteError(OpenWriteError::IoError { io_error, .. })
        | TantivyError::OpenDirectoryError(OpenDirectoryError::IoError { io_error, .. }) => {
            Some(io_error)
        }
        _ => None,
    }
}

/// "committing: No space left on device (os error 28)": what was being done and the OS error
/// (tantivy's own text otherwise), so a log reader knows what to fix.
fn describe(doing: &str, err: &TantivyError) -> String {
    match io_error(err) {
        Some(io) => {
            let file = match err {
                TantivyError::OpenReadError(OpenReadError::IoError { filepath, .. })
                | TantivyError::OpenWriteError(OpenWriteError::IoError { filepath, .. }) => {
                    format!(" ({})", filepath.display())
                }
                _ => String::new(),
            };
            format!("{doing}: {io}{file}")
        }
        None => format!("{doing}: {err}"),
    }
}

/// tantivy's log merge policy, which also merges a segment for its deleted records (retention).
fn merge_policy(config: &WriterConfig) -> Box<LogMergePolicy> {
    let mut policy = LogMergePolicy::default();
    policy.set_del_docs_ratio_before_merge(DELETED_RATIO_BEFORE_MERGE);
    policy.set_max_docs_before_merge(config.max_merge_docs);
    Box::new(policy)
}

/// One past the largest sequence number committed, so `seq` stays unique across restarts.
fn next_seq(index: &Index) -> Result<u64> {
    let searcher = index.searcher();
    let mut next = 0;
    for segment in searcher.segment_readers() {
        let column = segment
            .fast_fields()
            .u64(names::SEQ)
            .context("reading the seq column")?;
        if segment.max_doc() > 0 {
            next = next.max(column.max_value().saturating_add(1));
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::merge_policy::MergePolicy;

    /// Nine flushed segments of 200k records: the default policy merges them into one, a
    /// writer told to merge nothing over 100k leaves them; small ones still merge.
    #[test]
    fn segments_at_the_merge_bound_are_left_alone() {
        let index = tantivy::Index::create_in_ram(crate::Fields::new().schema);
        let metas = |max_doc: u32| -> Vec<tantivy::index::SegmentMeta> {
            (0..9)
                .map(|_| {
                    index.new_segment_meta(tantivy::index::SegmentId::generate_random(), max_doc)
                })
                .collect()
        };
        let merged = |config: &WriterConfig, max_doc: u32| -> Vec<usize> {
            merge_policy(config)
                .compute_merge_candidates(&metas(max_doc))
                .iter()
                .map(|candidate| candidate.0.len())
                .collect()
        };
        let bulk = WriterConfig {
            max_merge_docs: 100_000,
            ..WriterConfig::default()
        };
        assert_eq!(merged(&WriterConfig::default(), 200_000), vec![9]);
        assert_eq!(merged(&bulk, 200_000), Vec::<usize>::new());
        assert_eq!(merged(&bulk, 20_000), vec![9]);
    }
}
