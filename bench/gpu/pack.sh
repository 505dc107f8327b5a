#!/usr/bin/env bash
# Packs, on a machine where this checkout is installed and built, what bench/gpu/run.sh needs on a bare
# GPU machine that has neither Node nor a package registry (both folders are git-ignored):
#   .gpu/node.xz          this machine's node binary (x86-64 Linux, as the GPU machine)
#   .gpu/bundle.tar.xz    the built dist folders and the runtime node_modules: onnxruntime-node with its
#                         linux-x64 binary only, onnx-proto and protobufjs, sharp with its linux-x64 libvips
#   .gpu/assets/          mobilenetv2-int8-features.onnx, when ../shared (or FUSS_ASSETS) has it
#   .gl/*.deb             the Vulkan loader and GL libraries, by the device README's apt recipe
# About 50 MB together, under the 64 MiB a device call carries. Then, through the device tool:
#   run(command: "bench/gpu/run.sh", carry: [".gpu", ".gl"], timeout_s: 420)

set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(uname -m)" = x86_64 ] || { echo "error: pack on x86-64 (the GPU machine is x86-64)" >&2; exit 1; }
for built in services/core/dist/index.js cli/dist/index.js node_modules/onnxruntime-node/bin/napi-v6/linux/x64; do
  [ -e "$built" ] || { echo "error: $built missing: install and build first (ONNXRUNTIME_NODE_INSTALL=skip npm ci)" >&2; exit 1; }
done
mkdir -p .gpu/assets .gl

xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > .gpu/node.xz

ort=node_modules/onnxruntime-node
runtime=(
  "$ort/package.json" "$ort/dist" "$ort/bin/napi-v6/linux/x64" node_modules/onnxruntime-common
  node_modules/onnx-proto node_modules/protobufjs node_modules/@protobufjs node_modules/long
  node_modules/sharp node_modules/@img/colour node_modules/@img/sharp-linux-x64 node_modules/@img/sharp-libvips-linux-x64
  node_modules/detect-libc node_modules/semver node_modules/@fuss
)
built=(services/core/dist cli/dist)
tar -cJf .gpu/bundle.tar.xz --exclude='*.map' --exclude='*.d.ts' --exclude='node_modules/protobufjs/cli' "${runtime[@]}" "${built[@]}"

assets=${FUSS_ASSETS:-../shared}/models/mobilenetv2-int8-features.onnx
if [ -f "$assets" ]; then cp "$assets" .gpu/assets/; else echo "note: $assets not found; run.sh measures the synthetic ViT only" >&2; fi

if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  lists=$(mktemp -d)
  mkdir -p "$lists/partial"
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
  apt-get "${o[@]}" update >/dev/null
  (cd .gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  rm -rf "$lists"
fi
du -ch .gpu .gl | tail -1
