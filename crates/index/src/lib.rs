//! threadline index (in progress).

pub mod schema;
