#!/usr/bin/env bash
# Server CPU per request of every session layer, side by side, measured in one run.
#
#   bash bench/run.sh                      # every variant, 3 rounds of 10 s per workload
#   ROUNDS=5 DURATION=20 bash bench/run.sh
#   VARIANTS="axum-bare axum-ours" bash bench/run.sh
#
# The server (and Redis) run pinned to SERVER_CPU, wrk to CLIENT_CPU. Each workload sends
# CONNS pre-created sessions round robin, one per connection, except `new`, which sends
# no cookie. The server's CPU time is read from /proc/PID/stat around each measured
# window, so the per-request figure is the server's own cost, not the load generator's.
# The Aerospike variants run against AEROSPIKE_HOSTS when it is set (pin that node to
# SERVER_CPU yourself, and give its asd's PID as AEROSPIKE_PID to have its CPU reported);
# otherwise, when a server install is at hand (AEROSPIKE_SERVER_DIR, else
# ../shared/aerospike: start.sh and stop.sh), against a node of their own, started on
# AEROSPIKE_BENCH_PORT (3500), pinned to SERVER_CPU like Redis and stopped at the end;
# else they are listed as not run. The database's own CPU per request (Redis's,
# Aerospike's) is reported beside the server's.
# AEROSPIKE_MAX_IN_FLIGHT sets the AerospikeStore's commands in flight (0: never
# coalesce).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-18080}
REDIS_PORT=${REDIS_PORT:-16379}
WORKLOADS=${WORKLOADS:-"counter read plain new"}
OUT=${OUT:-target/bench-run}

need() {
    local missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return
    echo "installing ${missing[*]} from Debian" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}
need wrk:wrk redis-server:redis-server curl:curl taskset:util-linux python3:python3

cargo build --release -q -p session-bench --bin bench-server
server_bin=target/release/bench-server
if [ -z "${VARIANTS:-}" ]; then
    VARIANTS=$("$server_bin" --list | cut -f1 | tr '\n' ' ')
fi

mkdir -p "$OUT"
results="$OUT/results.tsv"
printf 'round\tvariant\tworkload\trequests\tseconds\tcpu_s\tuser_s\terrors\tdb_cpu_s\tp99_ms\n' > "$results"

server_pid=""
redis_pid=""
aerospike_pid=${AEROSPIKE_PID:-}
aerospike_run=""
aerospike_server_dir=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    if [ -n "$aerospike_run" ]; then
        AEROSPIKE_DIR="$aerospike_run" bash "$aerospike_server_dir/stop.sh" >/dev/null 2>&1
        rm -rf "$aerospike_run"
    fi
    true
}
trap cleanup EXIT

if [[ " $VARIANTS " == *aerospike* && -z "${AEROSPIKE_HOSTS:-}" ]]; then
    aerospike_server_dir=${AEROSPIKE_SERVER_DIR:-../shared/aerospike}
    if [ -f "$aerospike_server_dir/start.sh" ]; then
        aerospike_server_dir=$(cd "$aerospike_server_dir" && pwd)
        aerospike_run=$(mktemp -d)
        AEROSPIKE_HOSTS=$(AEROSPIKE_DIR="$aerospike_run" \
            AEROSPIKE_PORT="${AEROSPIKE_BENCH_PORT:-3500}" bash "$aerospike_server_dir/start.sh" 1)
        export AEROSPIKE_HOSTS
        aerospike_pid=$(cat "$aerospike_run/node-1/asd.pid")
        taskset -a -p -c "$SERVER_CPU" "$aerospike_pid" >/dev/null
        echo "Aerospike: a node of this run at $AEROSPIKE_HOSTS, pinned to CPU $SERVER_CPU" >&2
    fi
fi

if [[ " $VARIANTS " == *-redis* ]]; then
    taskset -c "$SERVER_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
        --save '' --appendonly no > "$OUT/redis.log" 2>&1 &
    redis_pid=$!
fi
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"

wait_port() {
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/plain" && return 0
        sleep 0.1
    done
    return 1
}

# User and system time of the whole server process, in seconds.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ print $14 / hz, $15 / hz }' "/proc/$1/stat"
}

# A wrk script sending `path` with the given cookies round robin.
write_script() {
    local path=$1 file=$2 host="127.0.0.1:$PORT"
    shift 2
    # The requests are built before wrk knows its Host header: name it here.
    {
        echo "local reqs = {}"
        if [ $# -eq 0 ]; then
            echo "reqs[1] = wrk.format('GET', '$path', { ['Host'] = '$host' })"
        fi
        local i=1
        for c in "$@"; do
            echo "reqs[$i] = wrk.format('GET', '$path', { ['Host'] = '$host', ['Cookie'] = '$c' })"
            i=$((i + 1))
        done
        echo "local n = 0"
        echo "request = function() n = n % #reqs + 1; return reqs[n] end"
    } > "$file"
}

# CONNS sessions made by the server itself (one `GET /` each), as `name=value` pairs.
# Bare servers set no cookie: they are sent an id-shaped cookie all the same.
make_sessions() {
    local variant=$1
    for i in $(seq "$CONNS"); do
        local c
        c=$(curl -s -o /dev/null -D - "http://127.0.0.1:$PORT/" |
            awk 'tolower($1) == "set-cookie:" { split($2, a, ";"); print a[1]; exit }')
        if [ -z "$c" ]; then
            [[ "$variant" == *-bare ]] || { echo "$variant set no cookie" >&2; return 1; }
            c=$(printf 'id=bare%022d' "$i")
        fi
        echo "$c"
    done
}

run_wrk() {
    local script=$1 seconds=$2
    taskset -c "$CLIENT_CPU" wrk -t1 -c "$CONNS" -d "${seconds}s" --latency -s "$script" \
        "http://127.0.0.1:$PORT/"
}

for round in $(seq "$ROUNDS"); do
    for variant in $VARIANTS; do
        if [[ "$variant" == *aerospike* && -z "${AEROSPIKE_HOSTS:-}" ]]; then
            continue
        fi
        taskset -c "$SERVER_CPU" "$server_bin" "$variant" --addr "127.0.0.1:$PORT" \
            > "$OUT/$variant.log" 2>&1 &
        server_pid=$!
        if ! wait_port; then
            echo "$variant did not start; see $OUT/$variant.log" >&2
            exit 1
        fi
        for workload in $WORKLOADS; do
            script="$OUT/$workload.lua"
            case $workload in
                counter | new) path=/ ;;
                read | plain) path=/$workload ;;
                *) echo "unknown workload $workload" >&2; exit 1 ;;
            esac
            if [ "$workload" = new ]; then
                write_script "$path" "$script" # no cookie: a new session per request
            else
                mapfile -t cookies < <(make_sessions "$variant")
                write_script "$path" "$script" "${cookies[@]}"
            fi
            db_pid=""
            case $variant in
                *redis*) db_pid=$redis_pid ;;
                *aerospike*) db_pid=$aerospike_pid ;;
            esac
            run_wrk "$script" "$WARMUP" > /dev/null
            read -r user0 sys0 < <(cpu_seconds "$server_pid")
            [ -n "$db_pid" ] && read -r db_user0 db_sys0 < <(cpu_seconds "$db_pid")
            out=$(run_wrk "$script" "$DURATION")
            read -r user1 sys1 < <(cpu_seconds "$server_pid")
            db_cpu=""
            if [ -n "$db_pid" ]; then
                read -r db_user1 db_sys1 < <(cpu_seconds "$db_pid")
                db_cpu=$(awk -v a="$db_user0" -v b="$db_sys0" -v c="$db_user1" -v d="$db_sys1" \
                    'BEGIN { print (c + d) - (a + b) }')
            fi
            requests=$(awk '/requests in/ { print $1 }' <<< "$out")
            seconds=$(awk '/requests in/ { sub(/s,$/, "", $4); print $4 }' <<< "$out")
            # wrk's 99th percentile of request latency, in milliseconds.
            p99=$(awk '$1 == "99%" { v = $2; u = v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u);
                print v * (u == "us" ? 0.001 : u == "s" ? 1000 : 1) }' <<< "$out")
            errors=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { for (i = 4; i <= NF; i += 2) n += $i } END { print n + 0 }' <<< "$out")
            cpu=$(awk -v u0="$user0" -v s0="$sys0" -v u1="$user1" -v s1="$sys1" \
                'BEGIN { print (u1 + s1) - (u0 + s0), u1 - u0 }')
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$variant" "$workload" \
                "$requests" "$seconds" "${cpu% *}" "${cpu#* }" "$errors" "$db_cpu" "$p99" \
                >> "$results"
            printf 'round %s %-26s %-8s %8s requests %s errors\n' "$round" "$variant" "$workload" \
                "$requests" "$errors" >&2
        done
        kill "$server_pid"
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    done
done

python3 bench/table.py "$results" "$VARIANTS" "$WORKLOADS" | tee "$OUT/table.md"
