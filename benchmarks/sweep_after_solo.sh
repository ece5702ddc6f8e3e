#!/usr/bin/env bash
# After benchmarks/acceptance_queue_solo.sh has trained both baselines (in OUT): the other
# variants, several jobs at once on the GPU (their train times are marked shared), against
# those baselines:
#
#   bash benchmarks/sweep_after_solo.sh OUT [stage ...]
#
# Stages, in order (default: all): gns_argp (GNS and ARGP variants, both scenes, 4 streams),
# nsvq (NSVQ-GS codebook variants from each baseline's 15k checkpoint, 2 streams), hgsc (every
# HGSC variant over the baseline and over GNS 15 %, 1 stream). Variant lists: GNS_VARIANTS,
# ARGP_VARIANTS, NSVQ_VARIANTS. Touches OUT/<stage>_done after each stage.
set -u
q=$1; shift
stages=${*:-gns_argp nsvq hgsc}
n="shared_GPU:train_time_not_comparable"
rs="python benchmarks/real_scenes.py --data .data --iterations 30000 --note $n"
gns=${GNS_VARIANTS:-gns:5pct gns:10pct gns:25pct gns:40pct}
argp=${ARGP_VARIANTS:-argp:mild argp:light argp:strong argp:aggressive}
nsvq=${NSVQ_VARIANTS:-nsvqgs:k256 nsvqgs:k1k nsvqgs:k4k nsvqgs:k16k}
count() { python -c "import json; r=json.load(open('$q/$1/results.json'))['rows']; print([x for x in r if x['method']=='3dgs'][-1]['num_gaussians'])"; }
for stage in $stages; do
  for s in fern:images_4 beer_can:r2; do
    nm=${s%%:*}; c=$(count $nm)
    case $stage in
      gns_argp)
        $rs --scenes $s --baseline-count $c --methods gns --variants $gns --out $q/sw_${nm}_gns > $q/sw_${nm}_gns.log 2>&1 &
        $rs --scenes $s --baseline-count $c --methods argp --variants $argp --out $q/sw_${nm}_argp > $q/sw_${nm}_argp.log 2>&1 & ;;
      nsvq)
        $rs --scenes $s --baseline-count $c --methods nsvqgs --variants $nsvq --out $q/sw_${nm}_nsvq > $q/sw_${nm}_nsvq.log 2>&1 & ;;
      hgsc)
        hg=$(python -c "from gs.methods.registry import get_method; print(' '.join('hgsc:' + v for v in get_method('hgsc').variants))")
        $rs --scenes $s --baseline-count $c --methods hgsc --variants $hg --codec-over gns:15pct \
            --out $q/sw_${nm}_hgsc > $q/sw_${nm}_hgsc.log 2>&1 ;;
    esac
  done
  wait
  touch "$q/${stage}_done"
done
