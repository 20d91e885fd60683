//! The server's one error type: every handler returns `Result<_, ApiError>`, and the one `match`
//! in [`ApiError::status`] decides the HTTP status. 4xx show their message (it says what to
//! fix); 5xx are logged with their detail and answered with a generic message.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why a request failed, as seen by the caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A malformed parameter, query, id, cursor or body.
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong bearer token: send `Authorization: Bearer <token>`")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("the request body is larger than the {limit}-byte limit{after}", after = if *.decompressed { " once decompressed" } else { "" })]
    TooLarge { limit: usize, decompressed: bool },
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The writer's queue is full: retry after `retry_after_s` seconds.
    #[error("the index is busy: retry after {retry_after_s} s")]
    Busy { retry_after_s: u64 },
    /// Not ready, or a dependency (the writer) has stopped: retryable.
    #[error("{0}")]
    Unavailable(String),
    #[error("the request took longer than {0:?}")]
    Timeout(std::time::Duration),
    /// Our fault: logged with this detail, answered generically.
    #[error("{0}")]
    Internal(String),
}

/// Put in a response's extensions so the metrics layer can count rejections by reason.
#[derive(Debug, Clone, Copy)]
pub struct RejectReason(pub &'static str);

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `error.code`; also the `reason` label of rejected requests.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Busy { .. } => "queue_full",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Timeout(_) => "timeout",
            ApiError::Internal(_) => "internal",
        }
    }

    /// What the caller sees: the message for 4xx and 503, a generic text for 500.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => "internal server error (details are in the server log)".into(),
            other => other.to_string(),
        }
    }

    /// The gRPC status code of the `google.rpc.Status` an OTLP client expects.
    pub fn grpc_code(&self) -> i32 {
        match self {
            ApiError::BadRequest(_) => 3, // INVALID_ARGUMENT
            ApiError::Unauthorized => 16, // UNAUTHENTICATED
            ApiError::NotFound(_) => 5,   // NOT_FOUND
            ApiError::TooLarge { .. } | ApiError::Busy { .. } => 8, // RESOURCE_EXHAUSTED
            ApiError::UnsupportedMediaType(_) => 3, // INVALID_ARGUMENT
            ApiError::Unavailable(_) => 14, // UNAVAILABLE
            ApiError::Timeout(_) => 4,    // DEADLINE_EXCEEDED
            ApiError::Internal(_) => 13,  // INTERNAL
        }
    }

    /// Logs 5xx details; returns the status and the headers every encoding shares.
    pub(crate) fn finish(&self, mut response: Response) -> Response {
        if self.status().is_server_error() {
            tracing::error!(code = self.code(), detail = %self, "request failed");
        }
        *response.status_mut() = self.status();
        if let ApiError::Busy { retry_after_s } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
        }
        if matches!(self, ApiError::Unavailable(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(RejectReason(self.code()));
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code(), "message": self.public_message()}});
        self.finish(axum::Json(body).into_response())
    }
}

impl From<index::Error> for ApiError {
    fn from(err: index::Error) -> Self {
        match err {
            e if e.is_bad_request() => ApiError::BadRequest(e.to_string()),
            e @ (index::Error::WriterClosed | index::Error::Paused { .. }) => {
                ApiError::Unavailable(e.to_string())
            }
            e => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<index::query::QueryError> for ApiError {
    fn from(err: index::query::QueryError) -> Self {
        ApiError::BadRequest(format!("invalid query: {err}"))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(format!("invalid query string: {}", rejection.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(format!("invalid path: {}", rejection.body_text()))
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> Self {
        ApiError::Internal(format!("a blocking task failed: {err}"))
    }
}
