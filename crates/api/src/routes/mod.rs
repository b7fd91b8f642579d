//! Routes grouped by resource; each module exposes its own `router()`.

pub mod events;
pub mod ingest;
pub mod metrics;
pub mod ops;
mod params;
