#!/usr/bin/env bash
# After benchmarks/acceptance_queue_solo.sh has trained the baselines (in OUT): the other
# variants against those baselines:
#
#   bash benchmarks/sweep_after_solo.sh OUT [stage ...]
#
# Stages, in order (default: all): gns_argp (GNS, then ARGP variants), nsvq (NSVQ-GS codebook
# variants from the baseline's 15k checkpoint), hgsc (every HGSC variant over the baseline and
# over GNS 15 %). One stream per scene runs its stages in order.
#
# Environment:
#   SCENES        scenes to sweep (default "fern:images_4 beer_can:r2")
#   GNS_VARIANTS, ARGP_VARIANTS, NSVQ_VARIANTS   variant lists
#   BASELINE_COUNT_<scene>   the baseline's final #Gaussians when OUT/<scene>/results.json is
#                 absent (a baseline timed on another machine of the same code); nsvq and hgsc
#                 still need that scene's baseline run under /tmp/gsbench_runs
#   PARALLEL=1    run the scene streams at once. Without CUDA MPS, processes on one GPU are
#                 time-sliced: the fourth session's five streams ran each job about 5x slower
#                 than alone, so the default is one stream after the other, and rows arrive one
#                 by one. MPS=1 starts the MPS daemon (root) and implies PARALLEL=1.
# Rows are marked as shared-GPU runs either way (train times not comparable with solo runs).
# Touches OUT/<scene>_<stage>_done after each stage and OUT/sweep_done at the end.
set -u
. "$(dirname "$0")/queue_lib.sh"
q=$1; shift
stages=${*:-gns_argp nsvq hgsc}
scenes=${SCENES:-fern:images_4 beer_can:r2}
parallel=${PARALLEL:-0}
note="shared_GPU:train_time_not_comparable"
if [ "${MPS:-0}" = 1 ] && start_mps; then
  parallel=1; note="${note}_MPS"
fi
rs="python benchmarks/real_scenes.py --data .data --iterations 30000 --note $note"
gns=${GNS_VARIANTS:-gns:5pct gns:10pct gns:25pct gns:40pct}
argp=${ARGP_VARIANTS:-argp:mild argp:light argp:strong argp:aggressive}
nsvq=${NSVQ_VARIANTS:-nsvqgs:k256 nsvqgs:k1k nsvqgs:k4k nsvqgs:k16k}

count() {  # the baseline's final #Gaussians for scene $1
  if [ -e "$q/$1/results.json" ]; then
    baseline_count "$q/$1/results.json"
  else
    v="BASELINE_COUNT_$1"; echo "${!v:?no $q/$1/results.json and no $v}"
  fi
}

stream() {  # every stage for scene $1 (name:resolution), in order
  local s=$1 nm=${1%%:*} c
  c=$(count "$nm") || return 1
  for stage in $stages; do
    case $stage in
      gns_argp)
        $rs --scenes "$s" --baseline-count "$c" --methods gns --variants $gns --out "$q/sw_${nm}_gns" > "$q/sw_${nm}_gns.log" 2>&1
        $rs --scenes "$s" --baseline-count "$c" --methods argp --variants $argp --out "$q/sw_${nm}_argp" > "$q/sw_${nm}_argp.log" 2>&1 ;;
      nsvq)
        $rs --scenes "$s" --baseline-count "$c" --methods nsvqgs --variants $nsvq --out "$q/sw_${nm}_nsvq" > "$q/sw_${nm}_nsvq.log" 2>&1 ;;
      hgsc)
        hg=$(python -c "from gs.methods.registry import get_method; print(' '.join('hgsc:' + v for v in get_method('hgsc').variants))")
        $rs --scenes "$s" --baseline-count "$c" --methods hgsc --variants $hg --codec-over gns:15pct \
            --out "$q/sw_${nm}_hgsc" > "$q/sw_${nm}_hgsc.log" 2>&1 ;;
    esac
    touch "$q/${nm}_${stage}_done"
  done
}

for s in $scenes; do
  if [ "$parallel" = 1 ]; then stream "$s" & else stream "$s"; fi
done
wait
touch "$q/sweep_done"
