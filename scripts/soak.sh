#!/usr/bin/env bash
# Soak: mixed session traffic against each adapter on MemoryStore and on Aerospike (the
# protocol test server, or a real cluster when AEROSPIKE_HOSTS is set), with a history
# checker. Loopback only; bounded: SECONDS per combination (default 30), USERS virtual
# users (default 40) stepping every 50 ms. Exits non-zero on any violation or error.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p session-tests --bin soak -- "${1:-30}" "${2:-40}"
