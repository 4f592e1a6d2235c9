#!/usr/bin/env bash
# HTTP/1.1 "Hello, World!" throughput: gort's examples/http_hello.rs beside a tokio server with
# the same request handling (httparse, keep-alive, pipelined requests answered with one write),
# measured with wrk on this machine, one server after the other:
#
#   benches/http.sh            # 3 rounds of wrk -t2 -c100 -d10s against each server
#   DURATION=30s ROUNDS=5 benches/http.sh
#
# The servers take turns within each round (a fresh process for each run), and the table shows
# each server's median over the rounds: one run's requests per second vary by a few percent
# with what else the two cores do, as much as the servers differ.
#
# The tokio server (and a gort server running the very same handler code, as a control) are
# modes of the `net` bench binary: `net serve http-tokio|http-gort ADDR` (see benches/net.rs).
# Each server gets a 2-second warm-up with wrk before the measured run. Besides requests per
# second, the script shows the server's CPU time per request (all its threads, from
# /proc/PID/task/*/schedstat), since wrk and the server share the machine's cores.
#
# wrk is not needed by the tests; without it the script says so and exits successfully.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-100}
ROUNDS=${ROUNDS:-3}

if ! command -v wrk >/dev/null 2>&1; then
    echo "benches/http.sh: wrk is not installed (e.g. apt-get install wrk); nothing measured."
    exit 0
fi

# The path of the executable cargo built for target `$1` of kind `$2` (JSON messages on stdin).
executable() {
    grep '"reason":"compiler-artifact"' | grep "\"kind\":\[\"$2\"\]" | grep "\"name\":\"$1\"" |
        grep -o '"executable":"[^"]*"' | sed 's/"executable":"\(.*\)"/\1/' | tail -n 1
}

echo "building (release)..."
example=$(cargo build --release --example http_hello --message-format=json | executable http_hello example)
bench=$(cargo bench --bench net --no-run --message-format=json | executable net bench)
if [ -z "$example" ] || [ -z "$bench" ]; then
    echo "benches/http.sh: could not find the built executables" >&2
    exit 1
fi

server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap stop_server EXIT

# The CPU time process $1 has used so far, in nanoseconds (all its threads).
cpu_ns() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ sum += $1 } END { printf "%.0f", sum }'
}

# measure NAME COMMAND...: starts the server (which prints its address on its first line of
# output), runs wrk against it, and appends "NAME rps cpu_us_per_request" to $results.
results=$(mktemp)
log=$(mktemp)
trap 'stop_server; rm -f "$results" "$log"' EXIT
measure() {
    local name=$1
    shift
    : >"$log"
    "$@" >"$log" &
    server_pid=$!
    local addr=
    for _ in $(seq 100); do
        addr=$(head -n 1 "$log" | grep -oE '[0-9]+(\.[0-9]+){3}:[0-9]+' || true)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    if [ -z "$addr" ]; then
        echo "benches/http.sh: the $name server did not announce its address" >&2
        exit 1
    fi
    local url="http://$addr/"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$url" >/dev/null
    local before
    before=$(cpu_ns "$server_pid")
    local out
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$url")
    local after
    after=$(cpu_ns "$server_pid")
    stop_server
    echo "== $name ($url)"
    echo "$out" | grep -E 'Latency|Requests/sec|requests in|Socket errors|Non-2xx' | sed 's/^ */   /'
    local rps requests
    rps=$(echo "$out" | awk '/Requests\/sec:/ { print $2 }')
    requests=$(echo "$out" | awk '/requests in/ { print $1 }')
    echo "$name|$rps|$(awk -v c=$((after - before)) -v r="$requests" 'BEGIN { printf "%.2f", c / 1000 / r }')" >>"$results"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION on $(nproc) cores, $ROUNDS round(s); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
    echo "-- round $round"
    measure "gort (examples/http_hello)" "$example" 127.0.0.1:0
    measure "tokio (net serve http-tokio)" "$bench" serve http-tokio 127.0.0.1:0
    measure "gort (net serve http-gort)" "$bench" serve http-gort 127.0.0.1:0
done

echo
printf '%-30s %12s %12s %22s\n' server "median rps" "(min..max)" "server CPU µs/request"
# Per server, in the order first measured: the median run by requests per second.
awk -F'|' '
    !($1 in n) { order[++servers] = $1 }
    { n[$1]++; rps[$1, n[$1]] = $2; cpu[$1, n[$1]] = $3 }
    END {
        for (s = 1; s <= servers; s++) {
            name = order[s]
            for (i = 1; i <= n[name]; i++) {
                for (j = i + 1; j <= n[name]; j++) {
                    if (rps[name, j] < rps[name, i]) {
                        t = rps[name, i]; rps[name, i] = rps[name, j]; rps[name, j] = t
                        t = cpu[name, i]; cpu[name, i] = cpu[name, j]; cpu[name, j] = t
                    }
                }
            }
            mid = int((n[name] + 1) / 2)
            median[s] = rps[name, mid]
            range = sprintf("%.0fk..%.0fk", rps[name, 1] / 1000, rps[name, n[name]] / 1000)
            printf "%-30s %12.0f %12s %22s\n", name, median[s], range, cpu[name, mid]
        }
        printf "requests/s ratio of medians gort/tokio: %.2f (example), %.2f (same handler code)\n", median[1] / median[2], median[3] / median[2]
    }' "$results"
