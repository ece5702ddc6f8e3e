#!/usr/bin/env bash
# After benchmarks/acceptance_queue_solo.sh has trained both baselines (in OUT): the other
# variants of GNS and ARGP and every HGSC variant (also over GNS 15 %), all at once on the GPU
# (train times marked shared), against those baselines.   bash benchmarks/sweep_after_solo.sh OUT
set -u
q=$1
n="shared_GPU_5_streams:train_time_not_comparable"
rs="python benchmarks/real_scenes.py --data .data --iterations 30000 --note $n"
count() { python -c "import json; r=json.load(open('$q/$1/results.json'))['rows']; print([x for x in r if x['method']=='3dgs'][-1]['num_gaussians'])"; }
hg=$(python -c "from gs.methods.registry import get_method; print(' '.join('hgsc:' + v for v in get_method('hgsc').variants))")
for s in fern:images_4 beer_can:r2; do
  nm=${s%%:*}; c=$(count $nm)
  $rs --scenes $s --baseline-count $c --methods gns --variants gns:5pct gns:40pct gns:10pct gns:25pct \
      --out $q/sw_${nm}_gns > $q/sw_${nm}_gns.log 2>&1 &
  $rs --scenes $s --baseline-count $c --methods argp --variants argp:mild argp:aggressive argp:light argp:strong \
      --out $q/sw_${nm}_argp > $q/sw_${nm}_argp.log 2>&1 &
done
( for s in fern:images_4 beer_can:r2; do nm=${s%%:*}
    $rs --scenes $s --baseline-count $(count $nm) --methods hgsc --variants $hg --codec-over gns:15pct \
        --out $q/sw_${nm}_hgsc > $q/sw_${nm}_hgsc.log 2>&1
  done ) &
wait
