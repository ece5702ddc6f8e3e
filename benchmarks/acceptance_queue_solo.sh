#!/usr/bin/env bash
# The timed acceptance runs, one job on the GPU at a time:
#
#   bash benchmarks/acceptance_queue_solo.sh OUT [data dir]
#
# Per scene (SCENES, default "beer_can:r2 fern:images_4"): the 3DGS baseline (30k; PLY at 7k, checkpoint
# at 15k), GNS 15 % and ARGP default, each compared with that baseline. Writes
# OUT/<scene>/results.{json,md} and OUT/<scene>.log; touches OUT/solo_done at the end.
# benchmarks/sweep_after_solo.sh then runs the other variants against these baselines.
set -u
out=$1
data=${2:-.data}
mkdir -p "$out"
python -c "from gsplat.cuda._backend import _C"  # build gsplat's CUDA code once, before any timing
rs="python benchmarks/real_scenes.py --data $data --iterations 30000"
for scene in ${SCENES:-beer_can:r2 fern:images_4}; do
  name=${scene%%:*}
  $rs --scenes "$scene" --methods 3dgs gns argp --variants gns:15pct argp:default --out "$out/$name" \
      > "$out/$name.log" 2>&1
done
touch "$out/solo_done"
