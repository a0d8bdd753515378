#!/bin/bash
# Size and fetch time of the dashboard with a big result table:
#
#   cargo run -p mersenne-worker --profile test --example dashboard_table -- /tmp/dash-fig 10000
#   benches/dashboard_load.sh target/debug/worker /tmp/dash-fig
#
# Starts a non-crunching peer on the table, then fetches /, /?page=50 and
# /metrics 20 times each with curl: bytes, and median/min/max time_total.
set -eu
W=$1; DATA=$2
OUT=$(mktemp)
"$W" --listen 127.0.0.1:0 --threads 0 --data "$DATA" --http 127.0.0.1:0 >"$OUT" 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null; wait; rm -f "$OUT"' EXIT
for _ in $(seq 150); do grep -q dashboard "$OUT" && break; sleep 0.2; done
URL=$(sed -n 's/dashboard on //p' "$OUT")
sleep 2
for path in "" "?page=50" metrics; do
  for _ in $(seq 20); do curl -s -o /dev/null -w '%{size_download} %{time_total}\n' "$URL$path"; done |
    python3 -c '
import statistics, sys
rows = [l.split() for l in sys.stdin]
ts = sorted(float(t) * 1000 for _, t in rows)
print(f"/{sys.argv[1]}: {max(int(s) for s, _ in rows)} bytes, median {statistics.median(ts):.1f} ms (min {ts[0]:.1f}, max {ts[-1]:.1f}) of {len(ts)}")
' "$path"
done
