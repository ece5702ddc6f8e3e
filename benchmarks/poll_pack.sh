#!/usr/bin/env bash
# Keep a device call busy while a background queue runs, then pack what it wrote so far:
#
#   bash benchmarks/poll_pack.sh QUEUE_DIR DEST SECONDS STOP_FILE
#
# Waits until QUEUE_DIR/STOP_FILE exists or SECONDS have passed (the device machine is handed
# back 30 s after a call returns, and background jobs with it: poll again right away), then
# writes DEST/state.tgz with every results/metrics/stats JSON, table and log of the queue and
# of /tmp/gsbench_runs (the device returns at most 8 files per call). Start the queue itself with
# `setsid nohup bash QUEUE ... &`: a call that runs past its limit is killed with its whole process
# group, and a queue started with a plain `nohup ... &` is in that group.
# To stop part of a queue from a later call, match it with a bracketed pattern
# (`pkill -f '[s]weep_after_solo'`): a plain pattern also matches that call's own command line.
set -u
q=$1; dest=$2; limit=$3; stop=$4
t0=$(date +%s)
while [ ! -e "$q/$stop" ] && [ $(( $(date +%s) - t0 )) -lt "$limit" ]; do sleep 5; done
mkdir -p "$dest"
find "$q" /tmp/gsbench_runs \( -name '*.json' -o -name '*.md' -o -name '*.log' \) -size -8M 2>/dev/null \
    | grep -v trace.json | tar czf "$dest/state.tgz" -T - 2>/dev/null
ls "$q"
for f in "$q"/*.log; do echo "== $f"; tail -c 400 "$f" | tr '\r' '\n' | tail -n 2; done
