#!/usr/bin/env bash
# A short GPU probe before the timed runs (fifth session's first H100 call):
#
#   bash benchmarks/probe_queue.sh OUT [data dir]
#
# warms gsplat's JIT build, runs the GPU tests, profiles the first 3000 baseline steps on
# beer_can with the fused gsplat node and without it (GS_GSPLAT_FUSED=0), times the per-Gaussian
# statistics passes on the 3000-step model, then HGSC's 1M-Gaussian decode. Writes into OUT.
set -u
out=$1
data=${2:-.data}
mkdir -p "$out"
python -c "from gsplat.cuda._backend import _C" > "$out/jit.log" 2>&1
python -m pytest -q -p no:cacheprovider tests/test_gpu_fused.py tests/test_gpu_parity.py \
    tests/test_gpu_loss.py tests/test_gpu_nearest.py > "$out/gpu_tests.txt" 2>&1
for fused in 1 0; do
  extra=""; [ "$fused" = 1 ] && extra="--score"
  GS_GSPLAT_FUSED=$fused python benchmarks/profile_loop.py --data "$data" --scene beer_can:r2 --stop 3000 \
      --profile-at 2500 $extra --out "$out/prof_fused$fused" > "$out/prof_fused$fused.log" 2>&1
done
python benchmarks/hgsc_decode.py --num 1000000 --device cuda --repeat 3 --stages --out "$out/hgsc_decode" \
    > "$out/hgsc_decode.log" 2>&1
touch "$out/done"
