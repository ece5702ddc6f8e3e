#!/usr/bin/env bash
# NSVQ-GS on both scenes (third session's GPU call), in the order that keeps timings comparable:
#
#   bash benchmarks/acceptance_queue_nsvq.sh /tmp/q [data dir]
#
# 1. solo (one job on the GPU): per scene the 3DGS baseline (30k) then NSVQ-GS k4k from its
#    15k checkpoint; these train, encode and decode times are the acceptance figures.
# 2. shared (both scenes at once on the GPU): the other codebook sizes (k256, k1k, k16k). Their
#    quality and size are as good as any; train times are marked "shared GPU".
# Each phase writes results.json / results.md as it goes; "done" appears when all is over.
set -u
. "$(dirname "$0")/queue_lib.sh"
out=$1
data=${2:-.data}
mkdir -p "$out"
rs="python benchmarks/real_scenes.py --data $data --iterations 30000"
for scene in beer_can:r2 fern:images_4; do
  name=${scene%%:*}
  $rs --scenes "$scene" --methods 3dgs nsvqgs --variants nsvqgs:k4k --out "$out/${name}_solo" \
      > "$out/${name}_solo.log" 2>&1
done
note="shared GPU (2 jobs): train time not comparable"
for scene in beer_can:r2 fern:images_4; do
  name=${scene%%:*}
  count=$(baseline_count "$out/${name}_solo/results.json")
  $rs --scenes "$scene" --baseline-count "$count" --methods nsvqgs --note "$note" \
      --variants nsvqgs:k1k nsvqgs:k256 nsvqgs:k16k --out "$out/${name}_shared" > "$out/${name}_shared.log" 2>&1 &
done
wait
touch "$out/done"
