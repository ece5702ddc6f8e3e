#!/usr/bin/env bash
# Every variant of GNS, ARGP, HGSC (and NSVQ-GS on beer_can) on two GPUs, for the RD tables:
#
#   bash benchmarks/sweep_queue.sh /tmp/q [data dir]
#
# Quality runs: several jobs share each GPU, so their train times are marked "shared GPU" and
# are not the acceptance timings (those come from solo runs, benchmarks/real_scenes.py alone).
# Each scene's baseline is trained once (stream 1); the other streams of the scene compare with
# it through --baseline-count (GNS budgets are not among them).
#   GPU 0: fern baseline + GNS 5/10/25/40 % + every HGSC variant (also over GNS 10 %);
#          fern ARGP mild/light/strong/aggressive; beer_can NSVQ-GS k256/k1k/k16k (after its baseline)
#   GPU 1: beer_can baseline + GNS + HGSC as fern; beer_can ARGP variants
# SWEEP_WAIT_FOR=<file>: the GPU 0 streams start once that file exists (GPU 0 free for a solo job first).
# Each stream writes results.json / results.md as it goes; "done" appears when all is over.
set -u
out=$1
data=${2:-.data}
mkdir -p "$out"
note="shared GPU: train time not comparable"
rs="python benchmarks/real_scenes.py --data $data --iterations 30000 --note"
gns="gns:5pct gns:10pct gns:25pct gns:40pct"
hgsc=$(python -c "from gs.methods.registry import get_method; print(' '.join('hgsc:' + v for v in get_method('hgsc').variants))")
argp="argp:mild argp:light argp:strong argp:aggressive"
# build gsplat's CUDA extension once: concurrent first imports race in its JIT build and fail
python -c "from gsplat.cuda._backend import _C" || exit 1
run() {  # gpu name args...
  local gpu=$1 name=$2; shift 2
  CUDA_VISIBLE_DEVICES=$gpu $rs "$note" --out "$out/$name" "$@" > "$out/$name.log" 2>&1
}
run 1 beer_can_main --scenes beer_can:r2 --methods 3dgs gns hgsc --variants $gns $hgsc --codec-over gns:10pct &
run 1 beer_can_argp --scenes beer_can:r2 --baseline-count 1 --methods argp --variants $argp &
wait_for() { until [ -z "${1:-}" ] || [ -f "$1" ]; do sleep 5; done; }
(wait_for "${SWEEP_WAIT_FOR:-}"; run 0 fern_main --scenes fern:images_4 --methods 3dgs gns hgsc \
    --variants $gns $hgsc --codec-over gns:10pct) &
(wait_for "${SWEEP_WAIT_FOR:-}"; run 0 fern_argp --scenes fern:images_4 --baseline-count 1 --methods argp \
    --variants $argp) &
(
  wait_for "${SWEEP_WAIT_FOR:-}"
  wait_for /tmp/gsbench_runs/beer_can/3dgs/point_cloud.ply
  run 0 beer_can_nsvq --scenes beer_can:r2 --baseline-count 1 --methods nsvqgs \
      --variants nsvqgs:k256 nsvqgs:k1k nsvqgs:k16k
) &
wait
touch "$out/done"
