#!/usr/bin/env bash
# The deep-recursion benchmark's first batch, in fresh processes: 10,000 goroutines each recurse
# 64 KiB deep with 1 KiB frames and park, on memory the process has never touched. Each round
# runs, one after the other and each in a process of its own:
#
#   floor  the same 640 MiB written the same way by one thread per core, with no runtime: what
#          the page faults alone cost (every runtime pays at least this);
#   gort   benches/stack.rs's gort batch;
#   may    the same with may's coroutines on fixed 128 KiB stacks;
#   go     benches/go/main.go's batch (only when `go` is installed).
#
#   benches/stack_first_batch.sh             # 7 rounds
#   ROUNDS=15 benches/stack_first_batch.sh
#
# One process's time varies by a factor of two with what the machine (a VM here: the host backs
# fresh guest memory on first touch) does with memory, more than the runtimes differ, so the
# runs take turns and the table shows medians over the rounds, with each median's ratio to Go's
# and to the floor's. Go is not needed by the tests; without it the script measures the rest.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-7}

# The path of the executable cargo built for bench `$1` (JSON messages on stdin).
executable() {
    grep '"reason":"compiler-artifact"' | grep '"kind":\["bench"\]' | grep "\"name\":\"$1\"" |
        grep -o '"executable":"[^"]*"' | sed 's/"executable":"\(.*\)"/\1/' | tail -n 1
}

echo "building (release)..."
bench=$(cargo bench --bench stack --no-run --message-format=json | executable stack)
if [ -z "$bench" ]; then
    echo "benches/stack_first_batch.sh: could not find the built benchmark" >&2
    exit 1
fi
runners=(floor gort may)
if command -v go >/dev/null 2>&1; then
    mkdir -p target/go
    go build -o target/go/bench benches/go/main.go
    runners+=(go)
else
    echo "(go is not installed: Go is left out)"
fi

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for round in $(seq "$ROUNDS"); do
    for runner in "${runners[@]}"; do
        if [ "$runner" = go ]; then
            target/go/bench first-batch >>"$results"
        else
            "$bench" first-batch "$runner" >>"$results"
        fi
    done
    echo "round $round of $ROUNDS done"
done

# Lines are `first-batch NAME MICROS KIB`; medians per name, then the table.
median() {
    sort -g | awk '{ v[NR] = $1 }
        END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
declare -A time rss
for runner in "${runners[@]}"; do
    time[$runner]=$(awk -v n="$runner" '$2 == n { print $3 }' "$results" | median)
    rss[$runner]=$(awk -v n="$runner" '$2 == n { print $4 }' "$results" | median)
done
echo
echo "first batch, medians of $ROUNDS fresh processes each:"
printf '%-6s %14s %10s %10s %12s\n' "" "us/goroutine" "/ Go" "/ floor" "KiB/parked"
for runner in "${runners[@]}"; do
    to_go=-
    if [ -n "${time[go]:-}" ]; then
        to_go=$(awk -v a="${time[$runner]}" -v b="${time[go]}" 'BEGIN { printf "%.2f", a / b }')
    fi
    to_floor=$(awk -v a="${time[$runner]}" -v b="${time[floor]}" 'BEGIN { printf "%.2f", a / b }')
    printf '%-6s %14s %10s %10s %12s\n' "$runner" "${time[$runner]}" "$to_go" "$to_floor" "${rss[$runner]}"
done
echo "(us/goroutine: until all are parked; KiB/parked: resident then, per goroutine; the"
echo " floor's is what its 64 KiB per goroutine leaves resident: it gives nothing back)"
