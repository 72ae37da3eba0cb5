#!/usr/bin/env bash
# The whole test suite, with its set-up:
#  1. installs Debian's chromium and chromium-driver for the real-browser test when they
#     are missing and this user can (root with apt-get); otherwise that test says plainly
#     that it was not run;
#  2. runs every test of the workspace (Aerospike suites against the protocol test
#     server in tests/);
#  3. when a real Aerospike server install is at hand (AEROSPIKE_SERVER_DIR, else
#     ../shared/aerospike beside the repository: a directory with start.sh and stop.sh),
#     starts a node of its own, runs the Aerospike store suite (also with every operation
#     inside a batch command), both HTTP suites, the
#     races, the cross-framework test and the real-server faults against it, the
#     3-node cluster tests (ended sessions through a split and a restart from storage,
#     failed writes that must not land late), then a short soak on a 3-node cluster
#     through a rolling restart and a short freeze; and stops every node it started,
#     pass or fail. Without one it says so.
# A Redis server (redis-server, installed when missing) runs throughout, for the suites
# of tower-sessions' Redis store, and is stopped at exit.
# REQUIRE_AEROSPIKE=1 (CI) makes a missing real server a failure. Extra arguments go to
# `cargo test`. SOAK_SECONDS (default 60) sets the cluster soak's length; 0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing chromium and chromium-driver for the browser test"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "chromium/chromedriver missing and not installable here: the browser test will not run"
    fi
fi

# A Redis server of its own for the suites of tower-sessions-redis-store (Debian's
# redis-server package, installed when missing and this user can), started here and
# stopped at exit, pass or fail. Without one those suites run on tower-sessions' 0.14
# memory store and say so; REQUIRE_REDIS=1 (CI) makes that a failure.
if ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing redis-server for the tower-sessions-redis-store suites"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
redis_pid=""
stop_redis() {
    if [ -n "$redis_pid" ]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
        redis_pid=""
    fi
}
trap stop_redis EXIT
unset REDIS_URL
if command -v redis-server >/dev/null 2>&1; then
    redis_port=${REDIS_TEST_PORT:-6391}
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no > /dev/null 2>&1 &
    redis_pid=$!
    for _ in $(seq 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null; then break; fi
        sleep 0.1
    done
    export REDIS_URL="redis://127.0.0.1:$redis_port"
    echo "=== a Redis server at $REDIS_URL for the tower-sessions-redis-store suites"
else
    echo "=== no redis-server here: the tower-sessions-redis-store suites run on tower-sessions' memory store instead"
fi

require_aerospike=${REQUIRE_AEROSPIKE:-0}
unset REQUIRE_AEROSPIKE AEROSPIKE_HOSTS
server_dir=${AEROSPIKE_SERVER_DIR:-../shared/aerospike}
unset AEROSPIKE_SERVER_DIR

echo "=== every test, Aerospike suites on the protocol test server"
cargo test --workspace "$@"

if [ ! -f "$server_dir/start.sh" ]; then
    echo "=== no real Aerospike server here ($server_dir/start.sh is missing):"
    echo "    the Aerospike suites ran against the protocol test server only"
    if [ "$require_aerospike" = 1 ]; then
        echo "REQUIRE_AEROSPIKE=1: a real server is required" >&2
        exit 1
    fi
    exit 0
fi

server_dir=$(cd "$server_dir" && pwd)
runtime=$(mktemp -d)
cleanup() {
    AEROSPIKE_DIR="$runtime" bash "$server_dir/stop.sh" || true
    rm -rf "$runtime"
    stop_redis
}
trap cleanup EXIT
# A port of its own, so a developer's server on 3000 is neither used nor disturbed.
hosts=$(AEROSPIKE_DIR="$runtime" AEROSPIKE_PORT="${AEROSPIKE_TEST_PORT:-3400}" \
    bash "$server_dir/start.sh" 1)

echo "=== the Aerospike suites against a real server at $hosts"
AEROSPIKE_HOSTS=$hosts AEROSPIKE_SERVER_DIR=$server_dir REQUIRE_AEROSPIKE=1 \
    cargo test -p session-tests \
    --test stores --test coalesce --test aerospike --test http_axum --test http_actix \
    --test races --test cross --test aerospike_real_faults --test aerospike_cluster \
    --test metrics "$@"

soak_seconds=${SOAK_SECONDS:-60}
if [ "$soak_seconds" != 0 ]; then
    echo "=== soak: both adapters on a real 3-node cluster, through a rolling restart and a freeze"
    AEROSPIKE_SERVER_DIR=$server_dir cargo run -q -p session-tests --bin soak -- \
        cluster "$soak_seconds" 40
fi
