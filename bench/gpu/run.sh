#!/usr/bin/env bash
# One prepared run on a GPU machine, at most 5 minutes: `fuss doctor --json`, then bench/gpu/run.mjs
# (parity of the onnx engine on each GPU provider against float64, the ViT-B/8 training step sampled and
# full on the GPU against this machine's CPU, which step-graph nodes the provider left to the CPU,
# backbone features per second, the fp32 MatMul rate of the provider as the peak reference, and an IO
# binding probe). Prints the tables; writes bench/gpu/out/{doctor.json,results.json,table.txt}, copied
# to $OUT when set. Exit 0 when the parity checks pass, 1 otherwise or when no GPU is found.
#
#   bench/gpu/run.sh            on a machine with a GPU (fails at once, in one line, without one)
#   bench/gpu/run.sh --dry-run  every part on the CPU with small sizes: checks this script anywhere
#
# A bare GPU machine (no Node, no registry) needs what bench/gpu/pack.sh puts into .gpu/ (Node, the
# built dist folders, the runtime node_modules) and .gl/ (the Vulkan loader). Run pack.sh here once,
# then, through the device tool, carry both:   run(command: "bench/gpu/run.sh", carry: [".gpu", ".gl"])
#
# WebGPU: onnxruntime-node's Linux binary has the WebGPU execution provider (Dawn) built in; Dawn runs
# on Vulkan, so the machine needs the Vulkan loader (libvulkan.so.1) and the GPU driver's Vulkan ICD.
# The loader is not installed on the lent GPU machines: as the device README says, its .deb files are
# downloaded here into .gl/ (pack.sh) and unpacked there (`dpkg -x` into /, then `ldconfig`, as root);
# the NVIDIA ICD comes with the mounted driver and is pointed to with VK_DRIVER_FILES when present.
# CUDA: needs onnxruntime's CUDA provider library (libonnxruntime_providers_cuda.so, with CUDA 12 and
# cuDNN 9) next to onnxruntime-node's binding; the npm package does not ship it, so unless it was
# installed, the doctor reports cuda unavailable with the reason and only WebGPU is measured.

set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
started=$(date +%s)
fail() { echo "error: $*" >&2; exit 1; }
dry=0
case "${1:-}" in
  --dry-run) dry=1 ;;
  '') ;;
  *) fail "unknown argument $1 (use --dry-run or nothing)" ;;
esac
out=bench/gpu/out
mkdir -p "$out"

if [ "$dry" = 0 ]; then
  if ! { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; } && ! ls /dev/dri/renderD* >/dev/null 2>&1; then
    fail "no GPU found (nvidia-smi -L failed and there is no /dev/dri/renderD*); bench/gpu/run.sh --dry-run runs the CPU paths"
  fi
fi

# Vulkan loader and NVIDIA's Vulkan driver (see the header).
# Only where the loader is missing, and never in a dry run (it unpacks into /). grep reads all of
# ldconfig's output (no -q): an early exit would fail the pipe under pipefail.
vulkan_loader() { ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null; }
if [ "$dry" = 0 ] && ! vulkan_loader && ls .gl/*.deb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    for f in .gl/*.deb; do dpkg -x "$f" / || fail "cannot unpack $f"; done
    ldconfig
  else
    echo "warning: .gl/*.deb not unpacked (needs root); WebGPU needs libvulkan.so.1" >&2
  fi
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then
  export VK_DRIVER_FILES=$icd __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi

# Node and the built checkout: this machine's, else the bundle of bench/gpu/pack.sh.
if [ ! -d node_modules/onnxruntime-node ] || [ ! -f services/core/dist/index.js ] || [ ! -f cli/dist/index.js ]; then
  [ -f .gpu/bundle.tar.xz ] || fail "no built checkout and no .gpu/bundle.tar.xz: run bench/gpu/pack.sh where the checkout is built, and carry .gpu"
  tar -xJf .gpu/bundle.tar.xz || fail "cannot unpack .gpu/bundle.tar.xz"
fi
if ! command -v node >/dev/null; then
  [ -f .gpu/node.xz ] || fail "node not found and no .gpu/node.xz (bench/gpu/pack.sh)"
  mkdir -p .gpu/bin && xz -dc .gpu/node.xz > .gpu/bin/node && chmod +x .gpu/bin/node || fail "cannot unpack .gpu/node.xz"
  export PATH="$PWD/.gpu/bin:$PATH"
fi
echo "node $(node --version); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi'); unpacked in $(( $(date +%s) - started )) s" >&2

timeout 120 node cli/bin/fuss.js doctor --json > "$out/doctor.json" || fail "fuss doctor --json failed (see above)"
node -e 'const d = require(process.argv[1]); for (const p of d.providers) console.error(`provider ${p.name}: ${p.available ? "available" : `unavailable (${p.reason})`}`)' "$PWD/$out/doctor.json"

budget=$(( 285 - ($(date +%s) - started) ))
args=(--doctor "$out/doctor.json" --budget "$budget")
[ "$dry" = 1 ] && args+=(--dry-run)
timeout $(( budget + 15 )) node bench/gpu/run.mjs "${args[@]}" | tee "$out/table.txt"
rc=${PIPESTATUS[0]}
if [ -n "${OUT:-}" ]; then
  cp "$out/doctor.json" "$out/table.txt" "$OUT/" 2>/dev/null
  cp "$out/results.json" "$OUT/" 2>/dev/null
fi
echo "bench/gpu/run.sh: exit $rc after $(( $(date +%s) - started )) s" >&2
exit "$rc"
