#!/usr/bin/env bash
# The GPU runs that the open issues still lack (after the sixth session), in one device hold:
#
#   setsid nohup bash benchmarks/open_issues_queue.sh OUT [data dir] > OUT.log 2>&1 &
#   bash benchmarks/poll_pack.sh OUT DEST 540 done      # repeatedly, until OUT/done exists
#
# 1. gsplat's JIT build, then HGSC's 1M-Gaussian decode alone on the GPU (issue #8's timing;
#    OUT/hgsc_decode).
# 2. CUDA MPS on (root), then one stream per scene, both at once (their train seconds are
#    marked shared): the 3DGS baseline (7k PLY, 15k checkpoint), EDIM (tag_gradprune, and the
#    Decomp cuts derived from it), NSVQ-GS k4k (the default) into OUT/<scene>; then k256, k1k,
#    k16k into OUT/<scene>_nsvq. Every NSVQ-GS run starts from that baseline's 15k checkpoint
#    (issues #6 and #7). results.json is rewritten after every run, so a hold that ends early
#    still returns every finished row.
# Touches OUT/done at the end.
set -u
. "$(dirname "$0")/queue_lib.sh"
out=$1
data=${2:-.data}
mkdir -p "$out"
python -c "from gsplat.cuda._backend import _C" > "$out/jit.log" 2>&1
python benchmarks/hgsc_decode.py --num 1000000 --device cuda --repeat 3 --stages --out "$out/hgsc_decode" \
    > "$out/hgsc_decode.log" 2>&1
note=shared_GPU:train_time_not_comparable
start_mps && note=${note}_MPS
stream() {  # scene $1: baseline, EDIM, NSVQ-GS k4k; then the other codebooks against that baseline
  local scene=$1 name=${1%%:*} count
  local rs="python benchmarks/real_scenes.py --data $data --iterations 30000 --note $note --scenes $scene"
  $rs --methods edim nsvqgs --variants edim:tag_gradprune edim:decomp_0.1 edim:decomp_0.3 nsvqgs:k4k \
      --out "$out/$name" > "$out/$name.log" 2>&1
  count=$(baseline_count "$out/$name/results.json") || return 1
  $rs --baseline-count "$count" --methods nsvqgs --variants nsvqgs:k256 nsvqgs:k1k nsvqgs:k16k \
      --out "$out/${name}_nsvq" > "$out/${name}_nsvq.log" 2>&1
}
for scene in fern:images_4 beer_can:r2; do stream "$scene" & done
wait
touch "$out/done"
