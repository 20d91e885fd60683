//! Live tail over server-sent events: every `tail_poll_interval` the stream asks the index for
//! records matching `q` that were committed after the last one it sent, and sends them in arrival
//! order, whatever their own timestamps (a span is exported after it ends; logs arrive late).
//!
//! Each event's `id` is the record's arrival sequence number: a client that reconnects with
//! `Last-Event-ID` (browsers' `EventSource` do so by themselves), or with `?after=SEQ`, resumes
//! exactly after the last record it received — nothing lost, nothing repeated. Without either,
//! the stream starts with what arrives after it opened. Bounded: at most
//! [`MAX_EVENTS_PER_POLL`] records per poll (the rest follow in the next polls), and at most
//! `max_tail_streams` streams at once.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
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
    /// Resume after this arrival sequence number (as `Last-Event-ID`).
    after: Option<u64>,
}

/// One open stream.
struct Tail {
    state: AppState,
    q: String,
    /// Only records that arrived after this one are sent (`None`: everything in the index).
    after_seq: Option<u64>,
    interval: Duration,
    /// Held for the life of the stream.
    _permit: OwnedSemaphorePermit,
}

pub async fn tail(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<TailParams>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(p) = params?;
    // Refuse a bad query now, with a 400, rather than as an event later.
    parse_query(&state, &p.q)?;
    let resume = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "Last-Event-ID must be the id of an event this stream sent (a number)"
                            .into(),
                    )
                })?,
        ),
        None => p.after,
    };
    let after_seq = match resume {
        Some(seq) => Some(seq),
        None => {
            let index = state.index.clone();
            blocking(move || Ok(index.last_seq()?)).await?
        }
    };
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
        after_seq,
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
            Ok(arrivals) => {
                let mut events = Vec::with_capacity(arrivals.hits.len());
                for (seq, hit) in &arrivals.hits {
                    self.after_seq = Some(self.after_seq.map_or(*seq, |after| after.max(*seq)));
                    let kind = hit.get("kind").and_then(Value::as_str).unwrap_or("record");
                    events.push(json_event(kind, hit).id(seq.to_string()));
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

    /// Matches that arrived after `after_seq`, earliest arrival first.
    async fn search(&self) -> Result<index::Arrivals, ApiError> {
        let expr = parse_query(&self.state, &self.q)?;
        let index = self.state.index.clone();
        let after_seq = self.after_seq;
        blocking(move || {
            let query = index::query::compile(&expr, index.fields(), now_ns())?;
            Ok(index.arrivals_compiled(query, after_seq, MAX_EVENTS_PER_POLL)?)
        })
        .await
    }
}

fn json_event(name: &str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}
