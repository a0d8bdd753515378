#!/bin/bash
# What a peer's good-citizen options leave it while another process burns a
# core: its CPU share and its LL iterations/s, for the issue-13 figures.
#
#   benches/citizen_share.sh WORKER LABEL [peer options...]
#   benches/citizen_share.sh target/debug/worker unthrottled
#   benches/citizen_share.sh target/debug/worker cpu-limit-50 --cpu-limit 50
#   benches/citizen_share.sh target/debug/worker pause-when-busy --pause-when-busy
#
# Starts a ring of one (--threads 1, --priority normal, so that the limit and
# not SCHED_IDLE is what is measured), submits M1257787, waits until it is
# crunched, starts `sh -c 'while :; do :; done'`, and measures over 25 s:
# the peer's CPU (utime + stime, /proc/PID/stat) as a share of one core, the
# crunch thread's run time as a share of the time it did not wait for a CPU
# (/proc/PID/task/TID/schedstat: the duty cycle the peer chose, whatever
# else runs), the burner's share, and the iterations `worker status` counts.
set -eu
W=$1; LABEL=$2; shift 2
D=$(mktemp -d)
BURN=
"$W" --listen 127.0.0.1:0 --threads 1 --data "$D/data" --priority normal "$@" >"$D/out" 2>"$D/log" &
PID=$!
trap 'kill $PID $BURN 2>/dev/null; wait; rm -rf "$D"' EXIT
for _ in $(seq 150); do grep -q listening "$D/out" && break; sleep 0.2; done
ADDR=$(sed -n 's/listening on //p' "$D/out")
sleep 2
"$W" submit --range 1257787 --peer "$ADDR" >/dev/null
for _ in $(seq 150); do "$W" status --peer "$ADDR" --json | grep -q '"units":\[{' && break; sleep 0.2; done
iters() { "$W" status --peer "$ADDR" --json | python3 -c 'import json,sys; u=json.load(sys.stdin)["units"]; print(u[0]["iteration"] if u else 0)'; }
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
sched() { for t in /proc/$PID/task/*; do [ "$(cat "$t/comm")" = crunch-0 ] && cat "$t/schedstat"; done | awk '{print $1, $2}'; }
sh -c 'while :; do :; done' &
BURN=$!
sleep 3
read -r r0 w0 < <(sched); i0=$(iters); c0=$(cpu $PID); b0=$(cpu $BURN); t0=$(date +%s.%N)
sleep 25
read -r r1 w1 < <(sched); i1=$(iters); c1=$(cpu $PID); b1=$(cpu $BURN); t1=$(date +%s.%N)
python3 - "$LABEL" "$i0" "$i1" "$c0" "$c1" "$b0" "$b1" "$t0" "$t1" "$(getconf CLK_TCK)" "$r0" "$r1" "$w0" "$w1" <<'PY'
import sys
l, i0, i1, c0, c1, b0, b1, t0, t1, hz, r0, r1, w0, w1 = sys.argv[1], *map(float, sys.argv[2:])
dt = t1 - t0
duty = (r1 - r0) / (dt * 1e9 - (w1 - w0))
print(f"{l}: peer CPU {100 * (c1 - c0) / hz / dt:.1f}% of a core "
      f"(crunch thread ran {100 * duty:.1f}% of the time it did not wait for a CPU), "
      f"burner {100 * (b1 - b0) / hz / dt:.1f}%, {(i1 - i0) / dt:.0f} iterations/s over {dt:.1f} s")
PY
grep -oE "paused: [^\"]*reasons=.*" "$D/log" | head -1 || true
