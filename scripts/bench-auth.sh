#!/usr/bin/env bash
# Per-request cost of authentication: single-event requests against a node with auth on
# (API key) and one with auth off, alternating, 3 runs each.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p sightline
B=./target/release/sightline
D=$(mktemp -d)
for v in $(env | grep -o '^SIGHTLINE_[A-Z_]*'); do unset $v; done
KEY=$($B key create --data-dir $D/on --quiet)
RUST_LOG=warn $B run --data-dir $D/on --http-addr 127.0.0.1:18081 2>$D/on.log &
P1=$!
RUST_LOG=warn SIGHTLINE_AUTH__ENABLED=false $B run --data-dir $D/off --http-addr 127.0.0.1:18082 2>$D/off.log &
P2=$!
trap 'kill $P1 $P2; rm -rf "$D"' EXIT
sleep 2
for i in 1 2 3; do
  for mode in on off; do
    if [ $mode = on ]; then port=18081; k=$KEY; else port=18082; k=""; fi
    SIGHTLINE_API_KEY=$k $B simulate --target http://127.0.0.1:$port --batch-size 1 --rate 0 --count 20000 --concurrency 8 --json \
      | python3 -c "import json,sys; r=json.load(sys.stdin); l=r['request_latency_ms']; print('$mode', r['acknowledged'], round(r['achieved_rate']), 'ev/s p50', l['p50'], 'p99', l['p99'])"
  done
done
