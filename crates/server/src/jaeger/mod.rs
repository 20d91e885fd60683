//! The Jaeger-compatible query API, so Grafana's Jaeger data source and the Jaeger UI read
//! threadline unchanged: v1 (`/api/...`, Jaeger's "internal" JSON that Grafana calls) and
//! api_v3 (`/api/v3/...`, OTLP JSON). Both search with the semantics of Jaeger's storage suite
//! ([`search`]); each version owns its wire shapes and its error envelope.

mod duration;
mod search;
mod v1;
mod v1_json;
mod v3;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub(crate) use self::v1::{
    dependencies, find_traces, get_trace, operations, service_operations, services,
};
pub(crate) use self::v3::{
    find_traces as v3_find_traces, get_trace as v3_get_trace, operations as v3_operations,
    services as v3_services,
};

use crate::ApiError;

/// Query-string pairs in order; keys may repeat (`traceID=a&traceID=b`).
#[derive(Debug, Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<&str>) -> Params {
        Params(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of the first of `names` that has a non-empty one (Go's `Get`, with
    /// aliases).
    fn get(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|name| {
            self.0
                .iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.as_str())
        })
    }

    /// Every non-empty value of `name`.
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// A JSON body written the way Go's `http.Error` writes Jaeger's errors: `text/plain`, a
/// trailing newline, `nosniff`. The status, logging and metrics come from the [`ApiError`].
fn go_http_error(error: &ApiError, body: String) -> Response {
    let mut response = (StatusCode::OK, format!("{body}\n")).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    error.finish(response)
}

/// Runs index work on the blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    crate::api::blocking(f).await
}
