//! The OpenAPI 3.1 document of the server, written by hand in `openapi.json` beside this file
//! and served as it is. A test checks that it lists exactly the router's routes.

use axum::http::header;
use axum::response::IntoResponse;

/// The document's text.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
