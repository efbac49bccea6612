#!/usr/bin/env bash
# Build what a lent GPU machine runs and pack it into .gpu/bundle.tar.xz (README, "On CUDA").
#
# The GPU machine has no network and its own PyTorch (2.11, CUDA 13), and the libtorch 2.13 with
# CUDA that tch 0.26 needs is far larger than the 64 MiB a device call carries. So this builds
# the current tree in a scratch worktree against tch 0.24 and the `torch==2.11.0` wheel (only
# Cargo.toml's tch lines differ), CPU-only linked; the binaries load the machine's own
# libtorch_cuda at start. The ROS 2 libraries, the message packages' ament index, libpython3.11
# (which the ROS libraries link), the configs, a small checkpoint and dataset made here, and
# tests/gpu/checks.sh travel with them.
#
# usage: tests/gpu/bundle.sh            (after `make setup`; the first run downloads the wheel
#                                        and builds for 10-20 min on 2 cores)
# then:  device run, carry [".gpu"]:
#        tar -C /tmp -xJf .gpu/bundle.tar.xz && bash /tmp/gpu_bundle/checks.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${ALTERMOMA_GPU_WORK:-$root/target/gpu}
torch_version=2.11.0
tch_version=0.24.0
# shellcheck disable=SC1091
source "$root/.deps/env.sh"
mkdir -p "$work"

# 1. libtorch 2.11 (headers and libraries of the wheel)
if [ ! -f "$work/torch/torch/lib/libtorch_cpu.so" ]; then
  rm -rf "$work/whl" "$work/torch"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 -d "$work/whl" "torch==$torch_version"
  mkdir -p "$work/torch"
  unzip -q "$work"/whl/torch-*.whl 'torch/lib/*' 'torch/include/*' 'torch/share/*' -d "$work/torch"
  rm -rf "$work/whl"
fi

# 2. the tree at HEAD (commit first: uncommitted changes are not built), tch pinned to 0.24
src="$work/src"
if [ ! -d "$src/.git" ] && [ ! -f "$src/.git" ]; then
  git -C "$root" worktree add -q --detach "$src" HEAD
fi
git -C "$src" checkout -q --detach -f "$(git -C "$root" rev-parse HEAD)"
sed -i "s/^tch = \".*\"/tch = \"${tch_version%.*}\"/; s/^torch-sys = \".*\"/torch-sys = \"${tch_version%.*}\"/" "$src/Cargo.toml"
(cd "$src" && cargo update -q -p tch --precise "$tch_version" && cargo update -q -p torch-sys --precise "$tch_version")

# 3. build, CPU-only linked (the machine's libtorch_cuda is loaded at start); the first time
#    from a copy of this tree's build, which already holds every other dependency
if [ ! -d "$work/target" ] && [ -d "$root/target/release/deps" ]; then
  mkdir -p "$work/target" && cp -a "$root/target/release" "$work/target/"
fi
(cd "$src" && LIBTORCH="$work/torch/torch" ALTERMOMA_CUDA=0 CARGO_TARGET_DIR="$work/target" \
  cargo build --release --locked --features vision_msgs --bins)

# 4. stage
stage="$work/stage/gpu_bundle"
rm -rf "$work/stage" && mkdir -p "$stage"/{bin,lib,share,config,tests,fixtures}
for b in altermoma bevfusion_node; do
  strip -o "$stage/bin/$b" "$work/target/release/$b"
done
# every library the binaries load but libtorch's (the machine has its own) and the system's;
# the ROS 2 prefixes whole, since rmw and the type supports are also opened by name at run time
IFS=: read -ra prefixes <<<"$AMENT_PREFIX_PATH"
for p in "${prefixes[@]}" "$ALTERMOMA_DEPS/rmw-shim"; do
  [ -d "$p/lib" ] && find "$p/lib" -maxdepth 1 \( -name '*.so' -o -name '*.so.*' \) -exec cp -L {} "$stage/lib/" \;
  [ -d "$p/share/ament_index" ] && cp -r "$p/share/ament_index" "$stage/share/"
done
find "$ALTERMOMA_DEPS/ros-venv/lib/python3.11/site-packages" -maxdepth 2 -path '*ros_*.libs/*.so*' \
  -exec cp -L {} "$stage/lib/" \;
cp -L "$ALTERMOMA_PYTHON_LIBDIR/lib$ALTERMOMA_PYTHON_LIB.so.1.0" "$stage/lib/"
missing=$(LD_LIBRARY_PATH="$stage/lib:$work/torch/torch/lib" ldd "$stage/bin/bevfusion_node" "$stage/bin/altermoma" \
  | awk '/not found/ && $1 !~ /^lib(cu|nv)/ {print $1}' | sort -u)   # CUDA's own libraries: the machine's
[ -z "$missing" ] || { echo "libraries not found for the bundle: $missing" >&2; exit 1; }
cp -r "$root/config/." "$stage/config/"
cp "$root/tests/netns.sh" "$root/tests/gpu/checks.sh" "$stage/tests/" && mv "$stage/tests/checks.sh" "$stage/"

# 5. fixtures: a dataset and a briefly trained tiny checkpoint, dense and structured-pruned (30 %,
#    fine-tuned, so that it still finds boxes to compare)
fx="$stage/fixtures"
a="$work/target/release/altermoma"
# (libtorch 2.11 links CUDA 13's runtime and CUPTI even for the CPU: the set-up's copies serve)
LD_LIBRARY_PATH="$work/torch/torch/lib:$LIBTORCH/../nvidia/cu13/lib:$LD_LIBRARY_PATH" bash -c "
  set -e
  '$a' gen-data --out '$fx/data' --scenes 2 --frames-per-scene 6 --seed 21
  '$a' train --config '$root/config/model/tiny.yaml' --data '$fx/data' --modality fusion --steps 300 \
      --batch-size 2 --threads 2 --out '$work/train'
  cp '$work/train/model.safetensors' '$fx/tiny_dense.safetensors'
  '$a' prune --checkpoint '$fx/tiny_dense.safetensors' --data '$fx/data' --method random --granularity channel \
      --sparsity 0.3 --out '$work/pruned.safetensors'
  '$a' finetune --checkpoint '$work/pruned.safetensors' --data '$fx/data' --steps 100 --batch-size 2 \
      --out '$fx/tiny_structured30.safetensors'
" >"$work/fixtures.log" 2>&1 || { cat "$work/fixtures.log" >&2; exit 1; }

# 6. pack
mkdir -p "$root/.gpu"
grep -qx '/.gpu/' "$(git -C "$root" rev-parse --git-path info/exclude)" 2>/dev/null \
  || echo '/.gpu/' >>"$(git -C "$root" rev-parse --git-path info/exclude)"
tar -C "$work/stage" -cJf "$root/.gpu/bundle.tar.xz.tmp" gpu_bundle
mv "$root/.gpu/bundle.tar.xz.tmp" "$root/.gpu/bundle.tar.xz"
size=$(stat -c %s "$root/.gpu/bundle.tar.xz")
echo "built $(git -C "$root" rev-parse --short HEAD) against tch $tch_version / torch $torch_version:" \
  ".gpu/bundle.tar.xz, $((size / 1048576)) MiB (a device call carries 64 MiB in all)"
