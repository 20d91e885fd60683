//! Live tail over server-sent events: every `tail_poll_interval` the stream searches the index
//! for records matching `q` newer than the newest it has sent, and sends them oldest first.
//! Bounded: at most [`MAX_EVENTS_PER_POLL`] records per poll (an `overflow` event says how many
//! were skipped), and at most `max_tail_streams` streams at once.
//!
//! "Newer" is by record time (a span's start): records that arrive late with older timestamps
//! are not sent.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt as _};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;

use crate::api::blocking;
use crate::params::{now_ns, parse_query};
use crate::{ApiError, AppState};

/// Most records one poll sends.
const MAX_EVENTS_PER_POLL: usize = 200;

#[derive(Debug, Deserialize)]
pub struct TailParams {
    #[serde(default)]
    q: String,
}

/// One open stream.
struct Tail {
    state: AppState,
    q: String,
    /// Only records with a time after this are sent.
    last_ns: i64,
    interval: Duration,
    /// Held for the life of the stream.
    _permit: OwnedSemaphorePermit,
}

pub async fn tail(
    State(state): State<AppState>,
    params: Result<Query<TailParams>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(p) = params?;
    // Refuse a bad query now, with a 400, rather than as an event later.
    parse_query(&state, &p.q)?;
    let permit = state
        .tail_permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::Unavailable(format!(
                "{} live tails are already open; close one or try again later",
                state.config.max_tail_streams
            ))
        })?;
    let tail = Tail {
        interval: state.config.tail_poll_interval,
        state,
        q: p.q,
        last_ns: now_ns(),
        _permit: permit,
    };
    let events = stream::unfold(tail, |mut tail| async move {
        tokio::time::sleep(tail.interval).await;
        let events = tail.poll().await;
        Some((stream::iter(events.into_iter().map(Ok)), tail))
    })
    .flatten();
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

impl Tail {
    /// The events of one poll: new records oldest first, or one `error` event.
    async fn poll(&mut self) -> Vec<Event> {
        match self.search().await {
            Ok((hits, skipped)) => {
                let mut events = Vec::with_capacity(hits.len() + 1);
                if skipped > 0 {
                    events.push(json_event("overflow", &json!({"skipped": skipped})));
                }
                for hit in hits.iter().rev() {
                    if let Some(ns) = hit_time_ns(hit) {
                        self.last_ns = self.last_ns.max(ns);
                    }
                    let kind = hit.get("kind").and_then(Value::as_str).unwrap_or("record");
                    events.push(json_event(kind, hit));
                }
                events
            }
            Err(e) => {
                if e.status().is_server_error() {
                    tracing::error!(detail = %e, "live tail poll failed");
                }
                vec![json_event(
                    "error",
                    &json!({"error": {"code": e.code(), "message": e.public_message()}}),
                )]
            }
        }
    }

    /// Matches newer than `last_ns`, newest first, and how many more there were.
    async fn search(&self) -> Result<(Vec<Value>, u64), ApiError> {
        let expr = parse_query(&self.state, &self.q)?;
        let index = self.state.index.clone();
        let q = self.q.clone();
        let from_ns = self.last_ns.saturating_add(1);
        blocking(move || {
            let now = now_ns();
            let query = index::query::compile(&expr, index.fields(), now)?;
            let request = index::SearchRequest {
                query: &q,
                from_ns: Some(from_ns),
                to_ns: None,
                limit: MAX_EVENTS_PER_POLL,
                cursor: None,
                now_ns: Some(now),
            };
            let response = index.search_compiled(query, &request)?;
            let skipped = response.total.saturating_sub(response.hits.len() as u64);
            Ok((response.hits, skipped))
        })
        .await
    }
}

fn json_event(name: &str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

/// A hit's time: a span's `start`, a log's `time`.
fn hit_time_ns(hit: &Value) -> Option<i64> {
    let text = hit.get("start").or_else(|| hit.get("time"))?.as_str()?;
    decode::time::parse_datetime(text)
}
