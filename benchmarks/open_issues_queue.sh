#!/usr/bin/env bash
# The GPU runs that the open issues still lack (after the sixth session), in one device hold:
#
#   setsid nohup bash benchmarks/open_issues_queue.sh OUT [data dir] > OUT.log 2>&1 &
#   bash benchmarks/poll_pack.sh OUT DEST 540 done      # repeatedly, until OUT/done exists
#
# 1. gsplat's JIT build, then HGSC's 1M-Gaussian decode alone on the GPU (issue #8's timing;
#    OUT/hgsc_decode).
# 2. CUDA MPS on (root), then one stream per scene, both at once (train seconds are marked
#    shared): the 3DGS baseline (7k PLY, 15k checkpoint) into OUT/<scene>; then, at once against
#    that baseline, EDIM (tag_gradprune and its Decomp cuts, then the no_ws_prune diagnostic and
#    its cut) into OUT/<scene>_edim, and two NSVQ-GS lanes: k4k then k256, and k1k then k16k,
#    into OUT/<scene>_<variant>. Every NSVQ-GS run starts from the baseline's 15k checkpoint
#    (issues #6 and #7). The defaults (k4k, tag_gradprune) come first in their lanes.
#    results.json is rewritten after every run, so a hold that ends early still returns every
#    finished row.
# Environment: SCENES (default "fern:images_4 beer_can:r2"), SKIP_DECODE=1 skips step 1's decode,
# ITERATIONS (default 30000; a short value checks the queue on a generated scene), EDIM_VARIANTS
# (method:variant list, empty = no EDIM), NSVQ_LANES (comma-separated lanes of codebook variants run
# one after the other, the lanes at once; default "k4k k256,k1k k16k").
# Touches OUT/<scene>_baseline_done after each baseline and OUT/done at the end. Rows are noted
# shared_GPU (train seconds not comparable) unless the queue runs one job at a time (one scene,
# no EDIM, one NSVQ-GS lane): then solo_GPU.
set -u
. "$(dirname "$0")/queue_lib.sh"
out=$1
data=${2:-.data}
if [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
  # a device call that finds the last machine still warm lands there, beside that hold's queue
  echo "open_issues_queue: $out is not empty: another queue ran (or runs) there; give a new folder" >&2
  exit 2
fi
mkdir -p "$out"
python -c "from gsplat.cuda._backend import _C" > "$out/jit.log" 2>&1
if [ "${SKIP_DECODE:-0}" != 1 ]; then
  python benchmarks/hgsc_decode.py --num 1000000 --device cuda --repeat 3 --stages --out "$out/hgsc_decode" \
      > "$out/hgsc_decode.log" 2>&1
fi
edim=${EDIM_VARIANTS-edim:tag_gradprune edim:decomp_0.1 edim:decomp_0.3 edim:no_ws_prune edim:no_ws_prune_decomp_0.1}
lanes=${NSVQ_LANES-k4k k256,k1k k16k}
scenes=${SCENES:-fern:images_4 beer_can:r2}
# most jobs at once on the GPU: per scene one per NSVQ-GS lane plus the EDIM stream, or the
# baseline alone when there are neither
per_scene=$(tr ',' '\n' <<< "$lanes" | grep -c '[^ ]')
[ -n "$edim" ] && per_scene=$(( per_scene + 1 ))
[ "$per_scene" -lt 1 ] && per_scene=1
if [ $(( $(wc -w <<< "$scenes") * per_scene )) -gt 1 ]; then
  note=shared_GPU:train_time_not_comparable
else
  note=solo_GPU  # one job on the GPU at a time: train seconds compare with solo runs
fi
start_mps && note=${note}_MPS
stream() {  # scene $1: the baseline, then EDIM and the NSVQ-GS lanes at once against it
  local scene=$1 name=${1%%:*} count
  local rs="python benchmarks/real_scenes.py --data $data --iterations ${ITERATIONS:-30000} --note $note --scenes $scene"
  $rs --methods 3dgs --out "$out/$name" > "$out/$name.log" 2>&1
  count=$(baseline_count "$out/$name/results.json") || return 1
  touch "$out/${name}_baseline_done"
  rs="$rs --baseline-count $count"
  if [ -n "$edim" ]; then
    $rs --methods edim --variants $edim --out "$out/${name}_edim" > "$out/${name}_edim.log" 2>&1 &
  fi
  local IFS=,
  for lane in $lanes; do
    (IFS=' '; for k in $lane; do
       $rs --methods nsvqgs --variants "nsvqgs:$k" --out "$out/${name}_$k" > "$out/${name}_$k.log" 2>&1
     done) &
  done
  wait
}
for scene in $scenes; do stream "$scene" & done
wait
touch "$out/done"
