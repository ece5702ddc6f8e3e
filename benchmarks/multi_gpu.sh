#!/usr/bin/env bash
# One job per GPU on a workstation: the same pipeline run with `--resources gpu=1` and with
# `--resources gpu=N`, wall times compared, and which GPU each job used.
#
#   bash benchmarks/multi_gpu.sh OUT_DIR [data dir] [iterations] [gpus]
#
# The config trains the baseline and GNS 15 % on fern (images_4) and beer_can (-r 2) from a
# local copy (no download) and evaluates them: 4 trainings + 4 evaluations, GPU jobs all.
# MG_ONE_GPU=<id> pins the 1-GPU run to that device (another job may use the others meanwhile);
# MG_WAIT_FOR=<file> makes the N-GPU run wait until that file exists (that job has finished).
# Writes OUT_DIR/multi_gpu.md (wall times, per-job GPU ids from the job logs, and nvidia-smi's
# processes per GPU sampled once a second during the N-GPU run).
set -u
out=$(realpath -m "$1")
data=$(realpath "${2:-.data}")
iters=${3:-7000}
ngpu=${4:-2}
mkdir -p "$out"
cfg="$out/config.yaml"
cat > "$cfg" <<EOF
iterations: $iters
device: cuda
datasets:
  local:
    source: local
    title: local copies
    root: $data
    scenes:
      fern: {images: images_4}
      beer_can: {resolution: 2}
methods:
  3dgs: {variants: default}
  gns: {variants: [15pct]}
EOF
# compile gsplat's CUDA once, outside the timed runs (the JIT cache is shared by all jobs)
python -c "
import torch; from gs.render import get_backend; from gs.render.base import Camera
r = get_backend('gsplat'); c = Camera(torch.eye(4, device='cuda'), 50., 50., 16., 16., 32, 32)
x = torch.zeros(1, 3, device='cuda'); x[:, 2] = 2
r(x, torch.tensor([[1., 0, 0, 0]], device='cuda'), torch.full((1, 3), .1, device='cuda'),
  torch.full((1,), .5, device='cuda'), torch.zeros(1, 1, 3, device='cuda'), c, sh_degree=0)
print('gsplat ready')"

run() {  # $1 = gpu resource count, $2 = CUDA_VISIBLE_DEVICES for the run
  local dir="$out/run_gpu$1"
  rm -rf "$dir"
  local t0=$(date +%s.%N)
  CUDA_VISIBLE_DEVICES=$2 snakemake --cores 8 --resources gpu="$1" --configfile "$cfg" --config results_dir="$dir/results" \
      --directory "$PWD" --nolock all > "$dir.log" 2>&1
  local rc=$?
  local t1=$(date +%s.%N)
  echo "$1 $rc $(python -c "print(f'{$t1 - $t0:.1f}')")" >> "$out/walls.txt"
}

rm -f "$out/walls.txt"
all_gpus=$(nvidia-smi --query-gpu=index --format=csv,noheader | paste -sd, -)
run 1 "${MG_ONE_GPU:-$all_gpus}"
while [ -n "${MG_WAIT_FOR:-}" ] && [ ! -e "$MG_WAIT_FOR" ]; do sleep 2; done
# sample which processes sit on which GPU during the N-GPU run
( while true; do nvidia-smi --query-compute-apps=gpu_uuid,pid,used_memory --format=csv,noheader \
      | sed "s/^/$(date +%s) /"; sleep 1; done ) > "$out/smi_gpu$ngpu.csv" 2>&1 &
sampler=$!
run "$ngpu" "$all_gpus"
kill $sampler
nvidia-smi --query-gpu=index,uuid,name --format=csv,noheader > "$out/gpus.csv"

python - "$out" "$ngpu" <<'EOF'
import collections, pathlib, re, sys
out, ngpu = pathlib.Path(sys.argv[1]), sys.argv[2]
walls = [l.split() for l in (out / "walls.txt").read_text().splitlines()]
uuid_index = {l.split(", ")[1]: l.split(", ")[0] for l in (out / "gpus.csv").read_text().splitlines() if l}
lines = ["# One job per GPU: `snakemake --resources gpu=1` vs `gpu=%s`" % ngpu, "",
         "| --resources gpu | exit | wall s |", "|---|---|---|"]
lines += [f"| {g} | {rc} | {w} |" for g, rc, w in walls]
for g, _, _ in walls:
    lines += ["", f"## jobs of the gpu={g} run (first line of each log)", ""]
    for log in sorted((out / f"run_gpu{g}" / "results" / "logs").rglob("*.log")):
        first = next((l for l in log.read_text().splitlines() if l.startswith("gpu:")), "(no gpu line)")
        lines.append(f"- `{log.relative_to(out)}`: {first}")
# seconds during which both GPUs had a process of ours at the same time
per_t = collections.defaultdict(set)
for l in (out / f"smi_gpu{ngpu}.csv").read_text().splitlines():
    parts = l.split(" ", 1)
    if len(parts) == 2 and "," in parts[1] and not parts[1].startswith("No"):
        per_t[parts[0]].add(uuid_index.get(parts[1].split(",")[0].strip(), parts[1].split(",")[0]))
both = sum(1 for s in per_t.values() if len(s) >= 2)
lines += ["", f"nvidia-smi samples (1/s) during the gpu={ngpu} run: {len(per_t)} with a process, "
          f"{both} with processes on 2+ GPUs at once; GPUs seen: {sorted(set().union(*per_t.values())) if per_t else []}"]
(out / "multi_gpu.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
