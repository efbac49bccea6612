#!/usr/bin/env bash
# Issue #7's GPU checks, run on a lent GPU machine from the bundle that tests/gpu/bundle.sh packs:
#   tar -C /tmp -xJf .gpu/bundle.tar.xz && bash /tmp/gpu_bundle/checks.sh
# Writes $OUT/gpu_report.md (each step's exit status and time, the CPU-vs-CUDA box comparison
# and the benchmark tables) and $OUT/gpu_logs.tar.xz (every log and report). Every step has its
# own time limit; the whole run takes about 6-8 minutes on an H200 machine. Every ROS 2
# participant runs inside tests/netns.sh, as on the development machine.
set -uo pipefail
B=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
L=$(mktemp -d)
py=${PYTHON:-python3}

# the machine's own libtorch (with CUDA) and CUDA libraries; the bundle's ROS 2 libraries.
# TORCH_LIB, NVIDIA_LIBS and CHECK_DEVICE (default cuda) let the script be tried on a machine
# without a GPU: CHECK_DEVICE=cpu runs every step there.
torch_lib=${TORCH_LIB:-$($py -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}
nvidia_libs=${NVIDIA_LIBS:-$($py -c 'import glob, os, site
print(":".join(sorted({d for sp in site.getsitepackages() for d in glob.glob(os.path.join(sp, "nvidia", "**", "lib"), recursive=True)})))')}
dev=${CHECK_DEVICE:-cuda}
export LD_LIBRARY_PATH="$B/lib:$torch_lib:$nvidia_libs"
export AMENT_PREFIX_PATH="$B" RMW_IMPLEMENTATION=rmw_fastrtps_cpp _ROS_WHEELS_BOOTSTRAP_COMPLETE=1
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
A="$B/bin/altermoma"
N="$B/tests/netns.sh"
F="$B/fixtures"
report="$OUT/gpu_report.md"

step() { # name, time limit (s), command...
  local name=$1 limit=$2 t0=$SECONDS rc
  shift 2
  timeout -k 10 "$limit" "$@" >"$L/$name.log" 2>&1
  rc=$?
  echo "| $name | $rc | $((SECONDS - t0)) s |" >>"$report"
  return $rc
}

{
  echo "# GPU checks ($(date -u +%FT%TZ))"
  echo
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/GPU: /'
  echo "libtorch: $torch_lib; device: $dev"
  echo
  echo "| step | exit | time |"
  echo "|---|---|---|"
} >"$report"

# 1. the same detections on the CPU and on CUDA (FP32, FP16), dense and structured-pruned
for ck in tiny_dense tiny_structured30; do
  for m in fusion lidar camera; do
    for run in cpu cuda cuda-fp16; do
      flags=(--device cpu)
      [ "$run" = cpu ] || flags=(--device "$dev")
      [ "$run" = cuda-fp16 ] && flags+=(--fp16)
      step "infer_${ck}_${m}_$run" 120 "$A" infer --model "$F/$ck.safetensors" --data "$F/data" --sample 1 \
        --score-threshold 0.25 --modality "$m" "${flags[@]}" --out "$L/infer_${ck}_${m}_$run"
    done
  done
done
$py - "$L" >>"$report" <<'PY'
import json, math, os, sys
L = sys.argv[1]
def boxes(run):
    p = os.path.join(L, run, "detections.json")
    return json.load(open(p))["detections"] if os.path.exists(p) else None
print("\nCPU against CUDA, `infer --sample 1 --score-threshold 0.25`: every CPU box matched to the")
print("nearest same-class box of the other run; maximum differences (centre and size in metres):\n")
print("| checkpoint, sensors | device | boxes CPU / device | centre | score | size | yaw (rad) |")
print("|---|---|---|---|---|---|---|")
for ck in ("tiny_dense", "tiny_structured30"):
    for m in ("fusion", "lidar", "camera"):
        ref = boxes(f"infer_{ck}_{m}_cpu")
        for dev in ("cuda", "cuda-fp16"):
            got = boxes(f"infer_{ck}_{m}_{dev}")
            if ref is None or got is None:
                print(f"| {ck}, {m} | {dev} | run failed | | | | |")
                continue
            worst = [0.0, 0.0, 0.0, 0.0]
            unmatched = 0
            for b in ref:
                same = [g for g in got if g["label"] == b["label"]]
                if not same:
                    unmatched += 1
                    continue
                g = min(same, key=lambda g: math.dist(g["center"], b["center"]))
                yaw = abs((g["yaw"] - b["yaw"] + math.pi) % (2 * math.pi) - math.pi)
                diffs = [math.dist(g["center"], b["center"]), abs(g["score"] - b["score"]),
                         max(abs(x - y) for x, y in zip(g["size"], b["size"])), yaw]
                worst = [max(w, d) for w, d in zip(worst, diffs)]
            extra = f" ({unmatched} unmatched)" if unmatched else ""
            print(f"| {ck}, {m} | {dev} | {len(ref)} / {len(got)}{extra} | {worst[0]:.2e} | {worst[1]:.2e} | {worst[2]:.2e} | {worst[3]:.2e} |")
PY

# 2. the network's stages on CUDA, both box-decoding paths side by side
step bench_model 300 "$A" bench model --configs tiny,small --device "$dev" --runs 20 --out "$L/bench_model.md"

# 3. the node on CUDA, model-size images: dense and structured-pruned tiny, small (random
#    weights); memory followed over 1,000 frames for the pruned tiny
step bench_node_cuda 300 "$N" "$A" bench node --model "tiny-dense=$F/tiny_dense.safetensors" \
  --model "tiny-pruned=$F/tiny_structured30.safetensors" --model "small=$B/config/model/small.yaml" \
  --device "$dev" --latency-frames 60 --memory-frames 1000 --memory-model tiny-pruned --out "$L/node_cuda"
step bench_node_cuda_fp16 240 "$N" "$A" bench node --model "tiny-dense=$F/tiny_dense.safetensors" \
  --model "small=$B/config/model/small.yaml" --device "$dev" --fp16 --latency-frames 40 --memory-frames 0 \
  --out "$L/node_cuda_fp16"

# 4. six 1600x900 bgr8 cameras sent from another process, through the shipped Fast DDS profile
step bench_node_cuda_1600x900 240 "$N" "$A" bench node --model "tiny-dense=$F/tiny_dense.safetensors" \
  --device "$dev" --latency-frames 60 --memory-frames 0 --image-size 1600x900 --encoding bgr8 \
  --delivery inter-process-large-images --out "$L/node_cuda_1600x900"

# 5. the bevfusion_node binary itself on CUDA: loads, warms up, goes live, and exits cleanly on
#    SIGINT (the step's exit status is the node's)
node_log="$L/bevfusion_node.log"
step bevfusion_node_cuda 150 "$N" bash -c '
  log=$1; shift
  "$@" 2>"$log" &
  pid=$!
  for _ in $(seq 120); do
    grep -q "live on" "$log" && break
    kill -0 $pid 2>/dev/null || break
    sleep 1
  done
  sleep 2
  kill -INT $pid 2>/dev/null
  wait $pid' _ "$node_log" "$B/bin/bevfusion_node" --ros-args --params-file "$B/config/bevfusion_node.param.yaml" \
  -p "model_path:=$F/tiny_dense.safetensors" -p "device:=$dev"
grep -m1 -o "live on [^;]*" "$node_log" | sed 's/^/bevfusion_node: /' >>"$report" \
  || echo "bevfusion_node: never went live (see bevfusion_node.log)" >>"$report"

for r in bench_model.md node_cuda/report.md node_cuda_fp16/report.md node_cuda_1600x900/report.md; do
  if [ -f "$L/$r" ]; then
    printf '\n## %s\n\n' "$r" >>"$report"
    cat "$L/$r" >>"$report"
  fi
done
tar -C "$L" -cJf "$OUT/gpu_logs.tar.xz" .
echo "written: $report, $OUT/gpu_logs.tar.xz"
cat "$report"
