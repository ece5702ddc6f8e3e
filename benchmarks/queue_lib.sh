# Shell helpers shared by the GPU queue scripts of this folder (source it).

# baseline_count RESULTS_JSON: the final #Gaussians of the last 3dgs row of a real_scenes.py run
baseline_count() {
  python -c "import json, sys; r = json.load(open(sys.argv[1]))['rows']; print([x for x in r if x['method'] == '3dgs'][-1]['num_gaussians'])" "$1"
}

# start_mps: start the CUDA MPS daemon (root) and check that a CUDA client works; on failure
# stop it again. Returns 0 when MPS is running. Without MPS, processes on one GPU are
# time-sliced (five jobs at once each ran about 5x slower than alone); with it, two small
# trainings ran side by side at about their solo speed (results/acceptance_gpu_session6.md).
start_mps() {
  nvidia-cuda-mps-control -d 2>/dev/null
  if python -c "import torch; torch.zeros(1, device='cuda'); torch.cuda.synchronize()" 2>/dev/null; then
    return 0
  fi
  echo "CUDA MPS does not work here" >&2
  echo quit | nvidia-cuda-mps-control 2>/dev/null
  return 1
}
