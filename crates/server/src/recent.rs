//! OTLP requests acknowledged recently, so that a retry of one (an exporter resends after a
//! timeout or a 503, even when the first attempt was committed) is acknowledged again without
//! being indexed twice.
//!
//! A request is known by a BLAKE3 hash of its signal, its encoding and its body after gzip.
//! The table holds at most `max_entries` acknowledged requests, each for `window`; an identical
//! request still being indexed is waited for, never indexed beside it. Memory is bounded: a
//! hash, a time and the answer's partial-success summary per entry (about 200 bytes), and at
//! most [`MAX_MESSAGE_BYTES`] of partial-success messages in all.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// What a request is known by.
pub(crate) type Key = [u8; 32];

/// Partial-success messages kept in all; past it the oldest entries are forgotten first.
pub(crate) const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// The acknowledged requests of the last `window`.
#[derive(Debug)]
pub(crate) struct RecentRequests {
    inner: Mutex<Inner>,
    window: Duration,
    max_entries: usize,
}

/// What a request found when it looked for its twin.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// Acknowledged within the window: answer the same again, index nothing.
    Acked(Ack),
    /// An identical request is being indexed: wait for its outcome ([`wait`]), then look again.
    InFlight(watch::Receiver<()>),
    /// New (or its twin failed): this request indexes it, and reports success through the claim.
    Claimed(Claim),
}

/// The success answer of a request, as its partial-success fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ack {
    pub rejected: u64,
    pub message: String,
}

/// The right, and the duty, to index one request. [`Claim::acked`] records the success; a
/// claim dropped without it (a 400, a 429, a failed commit, a handler given up) forgets the
/// request, so that its retry is indexed. Either way the requests waiting on it wake up.
#[derive(Debug)]
pub(crate) struct Claim {
    recent: Arc<RecentRequests>,
    key: Key,
    acked: bool,
    /// Dropped with the claim, which is what the waiters wait for.
    _done: watch::Sender<()>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Acknowledged keys, oldest first, for expiry and eviction.
    acked_order: VecDeque<(Key, Instant)>,
    /// The length of every message held.
    message_bytes: usize,
}

#[derive(Debug)]
enum Entry {
    InFlight(watch::Receiver<()>),
    Acked { at: Instant, ack: Ack },
}

/// The key of a request: its signal, encoding and (decompressed) body.
pub(crate) fn key(signal: &str, encoding: &str, body: &[u8]) -> Key {
    let mut hasher = blake3::Hasher::new();
    // Lengths first, so that no two (signal, encoding, body) triples feed the same bytes.
    for part in [signal.as_bytes(), encoding.as_bytes()] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.update(body);
    *hasher.finalize().as_bytes()
}

/// Waits until the request that held the claim has finished, one way or the other.
pub(crate) async fn wait(mut in_flight: watch::Receiver<()>) {
    // Nothing is ever sent: the only event is the sender's drop, which ends `changed`.
    while in_flight.changed().await.is_ok() {}
}

impl RecentRequests {
    /// Remembers up to `max_entries` requests for `window` each; a zero window or size
    /// remembers nothing (every request is indexed, as before).
    pub(crate) fn new(window: Duration, max_entries: usize) -> Arc<RecentRequests> {
        Arc::new(RecentRequests {
            inner: Mutex::new(Inner::default()),
            window,
            max_entries,
        })
    }

    pub(crate) fn lookup(self: &Arc<Self>, key: Key) -> Lookup {
        let now = Instant::now();
        let mut inner = self.lock();
        self.expire(&mut inner, now);
        match inner.entries.entry(key) {
            MapEntry::Occupied(entry) => match entry.get() {
                Entry::Acked { ack, .. } => Lookup::Acked(ack.clone()),
                Entry::InFlight(done) => Lookup::InFlight(done.clone()),
            },
            MapEntry::Vacant(entry) => {
                let (tx, rx) = watch::channel(());
                entry.insert(Entry::InFlight(rx));
                Lookup::Claimed(Claim {
                    recent: Arc::clone(self),
                    key,
                    acked: false,
                    _done: tx,
                })
            }
        }
    }

    /// Acknowledged requests remembered now.
    #[cfg(test)]
    fn len_acked(&self) -> usize {
        self.lock().acked_order.len()
    }

    /// Forgets what is older than the window, then the oldest while there are too many.
    fn expire(&self, inner: &mut Inner, now: Instant) {
        while let Some(&(key, at)) = inner.acked_order.front() {
            let too_old = now.saturating_duration_since(at) >= self.window;
            if !too_old
                && inner.acked_order.len() <= self.max_entries
                && inner.message_bytes <= MAX_MESSAGE_BYTES
            {
                break;
            }
            inner.acked_order.pop_front();
            if matches!(inner.entries.get(&key), Some(Entry::Acked { at: t, .. }) if *t == at)
                && let Some(Entry::Acked { ack, .. }) = inner.entries.remove(&key)
            {
                inner.message_bytes -= ack.message.len();
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The table holds plain data; a panic elsewhere cannot leave it half-updated.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Claim {
    /// The request was committed and answered `ack`: identical requests in the window get the
    /// same answer without being indexed.
    pub(crate) fn acked(mut self, ack: Ack) {
        self.acked = true;
        let now = Instant::now();
        let recent = Arc::clone(&self.recent);
        let mut inner = recent.lock();
        if recent.window.is_zero() || recent.max_entries == 0 {
            inner.entries.remove(&self.key);
            return;
        }
        inner.message_bytes += ack.message.len();
        inner
            .entries
            .insert(self.key, Entry::Acked { at: now, ack });
        inner.acked_order.push_back((self.key, now));
        recent.expire(&mut inner, now);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.acked {
            let mut inner = self.recent.lock();
            if matches!(inner.entries.get(&self.key), Some(Entry::InFlight(_))) {
                inner.entries.remove(&self.key);
            }
        }
        // `_done` drops after this, waking the waiters once the table says what happened.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(lookup: Lookup) -> Claim {
        match lookup {
            Lookup::Claimed(claim) => claim,
            other => panic!("expected a claim, got {other:?}"),
        }
    }

    fn ack(n: u64) -> Ack {
        Ack {
            rejected: n,
            message: String::new(),
        }
    }

    #[test]
    fn keys_differ_by_signal_encoding_and_body() {
        let base = key("traces", "json", b"{}");
        assert_eq!(base, key("traces", "json", b"{}"));
        assert_ne!(base, key("logs", "json", b"{}"));
        assert_ne!(base, key("traces", "protobuf", b"{}"));
        assert_ne!(base, key("traces", "json", b"{ }"));
        assert_ne!(key("ab", "c", b""), key("a", "bc", b""));
    }

    #[tokio::test]
    async fn a_success_is_answered_again_a_failure_is_forgotten() {
        let recent = RecentRequests::new(Duration::from_secs(600), 10);
        let first = claim(recent.lookup([1; 32]));
        let Lookup::InFlight(done) = recent.lookup([1; 32]) else {
            panic!("the twin must wait")
        };
        let waiter = tokio::spawn(wait(done));
        first.acked(ack(2));
        waiter.await.unwrap();
        assert!(matches!(recent.lookup([1; 32]), Lookup::Acked(a) if a == ack(2)));

        // A claim dropped without success (a 503) lets the retry index.
        let failed = claim(recent.lookup([2; 32]));
        let Lookup::InFlight(done) = recent.lookup([2; 32]) else {
            panic!("the twin must wait")
        };
        drop(failed);
        wait(done).await;
        claim(recent.lookup([2; 32]));
    }

    #[test]
    fn entries_are_bounded_in_number_and_age() {
        let recent = RecentRequests::new(Duration::from_secs(600), 3);
        for i in 0..5u8 {
            claim(recent.lookup([i; 32])).acked(ack(0));
        }
        assert_eq!(recent.len_acked(), 3);
        // The oldest were forgotten, the newest are still answered.
        claim(recent.lookup([0; 32]));
        assert!(matches!(recent.lookup([4; 32]), Lookup::Acked(_)));

        let recent = RecentRequests::new(Duration::from_millis(1), 3);
        claim(recent.lookup([7; 32])).acked(ack(0));
        std::thread::sleep(Duration::from_millis(5));
        claim(recent.lookup([7; 32]));
        assert_eq!(recent.len_acked(), 0);

        // Messages are bounded in all, whatever the number of entries.
        let recent = RecentRequests::new(Duration::from_secs(600), 1000);
        let long = Ack {
            rejected: 1,
            message: "x".repeat(MAX_MESSAGE_BYTES / 4),
        };
        for i in 0..8u8 {
            claim(recent.lookup([i; 32])).acked(long.clone());
        }
        assert_eq!(recent.len_acked(), 4);
        assert!(matches!(recent.lookup([7; 32]), Lookup::Acked(_)));

        let off = RecentRequests::new(Duration::ZERO, 3);
        claim(off.lookup([8; 32])).acked(ack(0));
        claim(off.lookup([8; 32]));
    }
}
