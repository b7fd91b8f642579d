#!/usr/bin/env bash
# Installs what the test suite needs on a fresh machine, then runs every check CI runs:
# formatting, lints, and the whole test suite (unit, integration, property and crash tests).
#
#   ./scripts/test.sh            # everything
#   ./scripts/test.sh -p sightline-log   # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components"
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
cargo --version

step "test services: PostgreSQL on 127.0.0.1:5432 (database 'test', trust auth)"
# The store's conformance suite runs against PostgreSQL as well as SQLite.
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "installing PostgreSQL…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    grep -q "sightline tests" "$hba" || sed -i '1i host all all 127.0.0.1/32 trust # sightline tests' "$hba"
  fi
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
  done
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
if ! psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
  psql -h 127.0.0.1 -U postgres -d postgres -c 'CREATE DATABASE test' >/dev/null
fi

step "test services: Redis on 127.0.0.1:6379"
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if ! redis_up; then
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "installing Redis…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/sightline-tests.log
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi
redis_up || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }

step "test services: Kafka-protocol broker (tansu) on 127.0.0.1:19092"
# The event log's Kafka backend and the multi-node tests run against a real broker.
kafka_up() { (exec 3<>/dev/tcp/127.0.0.1/19092) 2>/dev/null; }
tansu_bin() { command -v tansu 2>/dev/null || { [ -x "$HOME/.cargo/bin/tansu" ] && echo "$HOME/.cargo/bin/tansu"; }; }
if [ -z "$(tansu_bin)" ]; then
  echo "installing tansu 0.6.0 from crates.io (about 15 minutes, once)…"
  cargo install --locked tansu --version 0.6.0 --features dynostore,libsql
fi
TANSU_BIN="$(tansu_bin)"
export TANSU_BIN
if ! kafka_up; then
  # SQLite storage, not memory://: tansu 0.6's memory engine reports high watermarks that
  # lag the records it serves (found by the log's contract suite), so offsets and lag
  # would be wrong. A fresh database per start keeps runs independent.
  mkdir -p target/test-services
  rm -f target/test-services/tansu.db*
  (cd target/test-services && nohup "$TANSU_BIN" broker \
    --listener-url tcp://127.0.0.1:19092 --advertised-listener-url tcp://127.0.0.1:19092 \
    --storage-engine sqlite://tansu.db >tansu.log 2>&1 &)
  for _ in $(seq 1 60); do kafka_up && break; sleep 0.5; done
fi
kafka_up || { echo "the Kafka-protocol broker is not reachable on 127.0.0.1:19092" >&2; exit 1; }

step "headless browser: Chromium and ChromeDriver (the dashboard's browser tests)"
if ! command -v chromedriver >/dev/null 2>&1 || ! [ -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium and chromium-driver…"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
chromedriver --version

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "cargo test"
cargo test --workspace --locked "$@"
