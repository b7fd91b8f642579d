//! The dashboard in a real headless Chromium against a real node: each module drives one
//! part of the UI the way an operator would and keeps screenshots as artifacts
//! (`target/tmp/dashboard-screenshots/`). Needs Debian's `chromium` and `chromium-driver`
//! (installed by `scripts/test.sh`).
#![allow(clippy::unwrap_used)]

mod actions;
mod browser;
mod events;
mod executions;
mod incidents;
mod metrics;
mod overview;
mod rules;
mod sql;
