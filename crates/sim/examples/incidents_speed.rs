//! How fast the incidents scenario generates, in-process:
//! `cargo run --release -p sightline-sim --example incidents_speed [days] [seed]`.
//!
//! Prints items per second for iterating alone and for iterating and serializing every
//! item to JSON (what the driver does).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use sightline_sim::scenario::incidents::Scenario;

fn main() {
    let mut args = std::env::args().skip(1);
    let days: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let duration = Duration::from_secs(days * 86_400);
    let step = Duration::from_secs(10);
    let start = 1_700_000_000_000;

    let t = Instant::now();
    let (mut metrics, mut events) = (0u64, 0u64);
    for item in Scenario::new(seed, start, duration, step) {
        match item {
            sightline_sim::scenario::incidents::Item::Metric(_) => metrics += 1,
            sightline_sim::scenario::incidents::Item::Event(_) => events += 1,
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let total = metrics + events;
    println!(
        "iterate:   {days} simulated days, {total} items ({metrics} metrics, {events} events) in {secs:.2} s: {:.0} items/s",
        total as f64 / secs
    );

    let t = Instant::now();
    let mut buf = Vec::with_capacity(1 << 20);
    let mut bytes = 0usize;
    for item in Scenario::new(seed, start, duration, step) {
        item.write_json(&mut buf).unwrap();
        if buf.len() > 1 << 19 {
            bytes += buf.len();
            buf.clear();
        }
    }
    bytes += buf.len();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "serialize: {total} items, {:.1} MB of JSON in {secs:.2} s: {:.0} items/s",
        bytes as f64 / 1e6,
        total as f64 / secs
    );
}
