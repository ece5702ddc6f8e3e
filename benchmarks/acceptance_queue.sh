#!/usr/bin/env bash
# The acceptance runs of one scene, in the order that makes their timings comparable:
#
#   bash benchmarks/acceptance_queue.sh fern:images_4 /tmp/q/fern [data dir]
#
# 1. solo (one job on the GPU): the 3DGS baseline, then each method's headline variant
#    (GNS 15 %, ARGP default, EDIM tag_gradprune with its Decomp cuts), every HGSC variant over
#    the baseline and over GNS 15 %, then NSVQ-GS k4k. Train times of this phase are compared
#    with the baseline's.
# 2. shared (two jobs at once on the same GPU): the other variants of the RD curves. Their
#    quality figures are as good as any; their train times are marked "shared GPU" and are not
#    compared with anything.
# Each phase writes results.json / results.md as it goes (benchmarks/real_scenes.py), so a
# queue cut short still leaves every finished run on record. "done" appears when all is over.
set -u
. "$(dirname "$0")/queue_lib.sh"
scene=$1
out=$2
data=${3:-.data}
mkdir -p "$out"
rs="python benchmarks/real_scenes.py --data $data --scenes $scene --iterations 30000"
# NSVQ-GS last: its 30k VQ iterations cost several times a baseline run (72 it/s on beer_can)
$rs --methods 3dgs gns argp edim hgsc nsvqgs \
    --variants gns:15pct argp:default edim:tag_gradprune edim:decomp_0.1 edim:decomp_0.3 nsvqgs:k4k \
               hgsc:p40_b10 hgsc:p50 hgsc:small_scenes hgsc:default hgsc:p75_b6 hgsc:p85_b5 \
    --codec-over gns:15pct --out "$out/solo" > "$out/solo.log" 2>&1
count=$(baseline_count "$out/solo/results.json")
note="shared GPU (2 jobs): train time not comparable"
$rs --baseline-count "$count" --methods gns argp --note "$note" \
    --variants gns:5pct gns:40pct argp:mild argp:aggressive gns:10pct gns:25pct argp:light argp:strong \
    --out "$out/shared_a" > "$out/shared_a.log" 2>&1 &
$rs --baseline-count "$count" --methods nsvqgs --note "$note" \
    --variants nsvqgs:k256 nsvqgs:k16k nsvqgs:k1k \
    --out "$out/shared_b" > "$out/shared_b.log" 2>&1 &
wait
touch "$out/done"
