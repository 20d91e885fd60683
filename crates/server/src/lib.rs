//! threadline's HTTP server: the native JSON API over the index, the OTLP/HTTP and OTLP/gRPC
//! receivers that feed the writer (an ack means durable), live tail, health, Prometheus
//! metrics, an OpenAPI document and the embedded web UI.
//!
//! [`router`] builds the whole app from an [`AppState`]; [`serve`] runs it on a listener until
//! a shutdown signal. The same router serves the API port and, if the CLI wants one, the
//! standard OTLP/HTTP port 4318; [`serve_otlp_grpc`] serves OTLP/gRPC (port 4317) on a listener
//! of its own, over the same state. Only this crate knows HTTP and gRPC: the index sees
//! queries and batches.

mod api;
mod error;
mod grpc;
mod ingest;
mod jaeger;
mod metrics;
mod openapi;
mod otlp;
mod params;
mod recent;
mod tail;
mod ui;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use decode::{Decoder, DecoderConfig};
use index::{Index, WriterHandle};
use tokio::sync::Semaphore;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

pub use crate::error::ApiError;
pub use crate::grpc::serve_otlp_grpc;
pub use crate::metrics::Metrics;

/// Everything a handler needs; cheap to clone (one per request).
#[derive(Debug, Clone)]
pub struct AppState {
    index: Index,
    writer: WriterHandle,
    config: Arc<ServerConfig>,
    metrics: Arc<Metrics>,
    /// Decodes OTLP/JSON bodies (protobuf has its own decoder functions).
    decoder: Arc<Decoder>,
    /// One permit per open live-tail stream: tails poll the index, so their number is bounded.
    tail_permits: Arc<Semaphore>,
    /// One permit per OTLP request (HTTP or gRPC) being read, decompressed and decoded: each
    /// may hold up to twice `max_body_bytes`, so their number bounds the receivers' memory.
    ingest_permits: Arc<Semaphore>,
    /// OTLP requests acknowledged in the last `retry_window`: their retries are not indexed.
    recent: Arc<recent::RecentRequests>,
}

/// Limits and access rules of the server; `Default` is right for a local machine.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body, measured before and after gzip decompression (OTLP recommends 64 MiB);
    /// also the largest OTLP/gRPC message, as sent and once decompressed.
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered 503 (live tail streams excepted).
    pub request_timeout: Duration,
    /// When set, `GET /api/v1/*` and the Jaeger API (`/api/*`, `/api/v3/*`) need
    /// `Authorization: Bearer <read_token>`.
    pub read_token: Option<String>,
    /// When set, `POST /v1/traces` and `/v1/logs` need `Authorization: Bearer <ingest_token>`,
    /// and OTLP/gRPC requests `authorization: Bearer <ingest_token>` metadata.
    pub ingest_token: Option<String>,
    /// Origins allowed by CORS (`https://ui.example.com`); empty means no CORS headers.
    pub cors_origins: Vec<String>,
    /// Most clauses in one query of the API.
    pub max_query_clauses: usize,
    /// Longest regex in one query of the API.
    pub max_regex_len: usize,
    /// Live-tail streams open at once; more are refused with 503.
    pub max_tail_streams: usize,
    /// How often a live tail polls the index.
    pub tail_poll_interval: Duration,
    /// `Retry-After` seconds when the writer's queue is full.
    pub retry_after_s: u64,
    /// OTLP requests (HTTP and gRPC together) read and decoded at once; more are answered 429
    /// with `Retry-After`, or `RESOURCE_EXHAUSTED` with `RetryInfo` over gRPC.
    pub max_concurrent_ingest: usize,
    /// Concurrent streams (requests) per OTLP/gRPC connection (HTTP/2
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`).
    pub max_grpc_streams: u32,
    /// How long an acknowledged OTLP request is remembered: the same body (after gzip) posted
    /// again to the same path in the same encoding within this window is acknowledged again
    /// without being indexed. Zero turns this off.
    pub retry_window: Duration,
    /// Most requests remembered for `retry_window` (the oldest are forgotten first); each
    /// costs about 200 bytes, plus its partial-success message.
    pub retry_window_max_requests: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 64 << 20,
            request_timeout: Duration::from_secs(30),
            read_token: None,
            ingest_token: None,
            cors_origins: Vec::new(),
            max_query_clauses: index::query::MAX_CLAUSES,
            max_regex_len: index::query::MAX_REGEX_LEN,
            max_tail_streams: 16,
            tail_poll_interval: Duration::from_millis(500),
            retry_after_s: 1,
            max_concurrent_ingest: 16,
            max_grpc_streams: 100,
            retry_window: Duration::from_secs(600),
            retry_window_max_requests: 100_000,
        }
    }
}

impl AppState {
    pub fn new(index: Index, writer: WriterHandle, config: ServerConfig) -> AppState {
        let decoder = Decoder::new(DecoderConfig::default())
            .expect("the default decoder config has no patterns to fail");
        AppState {
            index,
            writer,
            tail_permits: Arc::new(Semaphore::new(config.max_tail_streams)),
            ingest_permits: Arc::new(Semaphore::new(config.max_concurrent_ingest)),
            recent: recent::RecentRequests::new(
                config.retry_window,
                config.retry_window_max_requests,
            ),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            decoder: Arc::new(decoder),
        }
    }

    /// The server's counters, for other components (the tailer) to add to.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The query limits of the API.
    fn query_limits(&self) -> index::query::Limits {
        index::query::Limits {
            max_clauses: self.config.max_query_clauses,
            max_regex_len: self.config.max_regex_len,
            ..index::query::Limits::default()
        }
    }
}

/// The whole app: API, OTLP receiver, health, metrics, each behind its token when one is set.
pub fn router(state: AppState) -> Router {
    let (mut read, mut ingest, mut open) = (Router::new(), Router::new(), Router::new());
    for (access, _method, path, handler) in route_table() {
        match access {
            Access::Read => read = read.route(path, handler),
            Access::Ingest => ingest = ingest.route(path, handler),
            Access::Open => open = open.route(path, handler),
        }
    }
    let read = read.route_layer(middleware::from_fn_with_state(
        state.clone(),
        require_read_token,
    ));
    let ingest = ingest.route_layer(middleware::from_fn_with_state(
        state.clone(),
        require_ingest_token,
    ));
    let mut app = open
        .merge(read)
        .merge(ingest)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), timeout))
        .layer(middleware::from_fn_with_state(state.clone(), measure))
        .layer(TraceLayer::new_for_http());
    if let Some(cors) = cors_layer(&state.config.cors_origins) {
        app = app.layer(cors);
    }
    app.with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` completes, then lets open requests
/// finish. The caller shuts the writer down afterwards.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Every route of [`router`] as (method, path), e.g. `("get", "/api/v1/search")`; the
/// OpenAPI document lists exactly these.
pub fn routes() -> Vec<(&'static str, &'static str)> {
    route_table()
        .into_iter()
        .map(|(_, method, path, _)| (method, path))
        .collect()
}

/// Which token a route needs.
#[derive(Debug, Clone, Copy)]
enum Access {
    Read,
    Ingest,
    Open,
}

/// The one list of routes: the router is built from it, so [`routes`] cannot drift from it.
fn route_table() -> Vec<(Access, &'static str, &'static str, MethodRouter<AppState>)> {
    vec![
        (
            Access::Read,
            "get",
            "/api/v1/traces/{trace_id}",
            get(api::trace),
        ),
        (
            Access::Read,
            "get",
            "/api/v1/traces/{trace_id}/related",
            get(api::related),
        ),
        (Access::Read, "get", "/api/v1/traces", get(api::trace_list)),
        (Access::Read, "get", "/api/v1/search", get(api::search)),
        (Access::Read, "get", "/api/v1/compare", get(api::compare)),
        (
            Access::Read,
            "get",
            "/api/v1/aggregate",
            get(api::aggregate),
        ),
        (Access::Read, "get", "/api/v1/services", get(api::services)),
        (Access::Read, "get", "/api/v1/tail", get(tail::tail)),
        (
            Access::Read,
            "get",
            "/api/v1/openapi.json",
            get(openapi::openapi),
        ),
        // Jaeger-compatible query API (Grafana's Jaeger data source, the Jaeger UI).
        (Access::Read, "get", "/api/services", get(jaeger::services)),
        (
            Access::Read,
            "get",
            "/api/services/{service}/operations",
            get(jaeger::service_operations),
        ),
        (
            Access::Read,
            "get",
            "/api/operations",
            get(jaeger::operations),
        ),
        (Access::Read, "get", "/api/traces", get(jaeger::find_traces)),
        (
            Access::Read,
            "get",
            "/api/traces/{trace_id}",
            get(jaeger::get_trace),
        ),
        (
            Access::Read,
            "get",
            "/api/dependencies",
            get(jaeger::dependencies),
        ),
        (
            Access::Read,
            "get",
            "/api/v3/services",
            get(jaeger::v3_services),
        ),
        (
            Access::Read,
            "get",
            "/api/v3/operations",
            get(jaeger::v3_operations),
        ),
        (
            Access::Read,
            "get",
            "/api/v3/traces",
            get(jaeger::v3_find_traces),
        ),
        (
            Access::Read,
            "get",
            "/api/v3/traces/{trace_id}",
            get(jaeger::v3_get_trace),
        ),
        (Access::Ingest, "post", "/v1/traces", post(otlp::traces)),
        (Access::Ingest, "post", "/v1/logs", post(otlp::logs)),
        (Access::Open, "get", "/healthz", get(api::healthz)),
        (Access::Open, "get", "/readyz", get(api::readyz)),
        (Access::Open, "get", "/metrics", get(metrics::metrics)),
        // The web UI is static and open: its script calls the API, with the read token if any.
        (Access::Open, "get", "/", get(ui::index)),
        (Access::Open, "get", "/ui/app.js", get(ui::app_js)),
        (Access::Open, "get", "/ui/app.css", get(ui::app_css)),
        (Access::Open, "get", "/favicon.svg", get(ui::favicon)),
        (Access::Open, "get", "/favicon.ico", get(ui::favicon)),
    ]
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no route for {method} {}; see /api/v1/openapi.json",
        uri.path()
    ))
}

async fn require_read_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    check_token(state.config.read_token.as_deref(), request, next).await
}

async fn require_ingest_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    check_token(state.config.ingest_token.as_deref(), request, next).await
}

async fn check_token(expected: Option<&str>, request: Request, next: Next) -> Response {
    if let Some(expected) = expected {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|given| constant_time_eq(given.as_bytes(), expected.as_bytes())) {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

/// Compares without stopping at the first difference, so timing does not leak the token.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Answers 503 when a handler takes longer than `request_timeout`. A live tail returns its
/// stream at once, so only its setup is timed.
async fn timeout(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.config.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_elapsed) => ApiError::Timeout(limit).into_response(),
    }
}

/// Latency per route and rejections per reason, for `/metrics`.
async fn measure(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe_request(&route, started.elapsed());
    if let Some(reason) = response.extensions().get::<error::RejectReason>() {
        state.metrics.count_rejected(reason.0);
    }
    response
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| match HeaderValue::from_str(origin) {
            Ok(value) => Some(value),
            Err(_) => {
                tracing::warn!(
                    origin,
                    "ignoring a CORS origin that is not a valid header value"
                );
                None
            }
        })
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::CONTENT_ENCODING,
                HeaderName::from_static("last-event-id"),
            ]),
    )
}
