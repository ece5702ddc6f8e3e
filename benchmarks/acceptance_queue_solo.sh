#!/usr/bin/env bash
# The timed acceptance runs, one job on the GPU at a time (fourth session's H100 call):
#
#   bash benchmarks/acceptance_queue_solo.sh /tmp/q [data dir]
#
# Per scene (fern images_4, beer_can -r 2): the 3DGS baseline (30k), GNS 15 % and ARGP default,
# each compared with that baseline; then NSVQ-GS k4k on fern from the fern baseline's 15k
# checkpoint. Writes OUT/<scene>/results.{json,md} and OUT/fern_nsvq/; "done" when all is over.
set -u
out=$1
data=${2:-.data}
mkdir -p "$out"
rs="python benchmarks/real_scenes.py --data $data --iterations 30000"
for scene in fern:images_4 beer_can:r2; do
  name=${scene%%:*}
  $rs --scenes "$scene" --methods 3dgs gns argp --variants gns:15pct argp:default --out "$out/$name" \
      > "$out/$name.log" 2>&1
done
count=$(python -c "import json; r=json.load(open('$out/fern/results.json'))['rows']; print([x for x in r if x['method']=='3dgs'][-1]['num_gaussians'])")
$rs --scenes fern:images_4 --baseline-count "$count" --methods nsvqgs --variants nsvqgs:k4k --out "$out/fern_nsvq" \
    > "$out/fern_nsvq.log" 2>&1
touch "$out/done"
