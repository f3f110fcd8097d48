#!/usr/bin/env bash
# Runs on the GPU machine after tests/gpu/pack.sh's parts arrived in /tmp/gpu: reassembles and checks them, points the
# loader at CUDA 13 and cuDNN 9 (the image's Python packages carry them), and runs the check. The table comes last.
# The whole check is bounded (CHECK_SECONDS, 420 by default): a kernel that hangs holds its run past the check's own
# per-run timeout, and the device call must end with time left to rerun.
set -euo pipefail
mkdir -p /tmp/gpu && cd /tmp/gpu
present=$( (ls part-* 2>/dev/null || true) | wc -l)
if [ ! -f SHA256SUMS ] || [ "$present" -ne "$(wc -l < SHA256SUMS)" ]; then
  echo "$present parts are in /tmp/gpu, not all that pack.sh made: the machine went cold between calls (or a part was skipped); send them all again" >&2
  exit 3
fi
sed 's#\.gpu/##' SHA256SUMS | sha256sum -c --quiet
if command -v xz >/dev/null; then
  unpack() { xz -d; }
else
  unpack() { python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer)'; }
fi
rm -rf bin && cat part-* | unpack | tar -xf -
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
site=$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null || true)
libs=$(find "$site/nvidia" -maxdepth 3 -type d -name lib 2>/dev/null | tr '\n' ':' || true)
export LD_LIBRARY_PATH="/tmp/gpu/bin:${libs}${LD_LIBRARY_PATH:-}"
# Say at once which libraries the loader cannot find: the CUDA provider's own, and cuDNN and NVRTC, which it opens only
# at the first run (the probe would then fail with ONNX Runtime's words).
missing=$(ldd bin/libonnxruntime_providers_cuda.so | grep 'not found' || true)
[ -z "$missing" ] || echo "the CUDA provider lacks: $missing" >&2
for lib in libcudnn.so.9 libnvrtc.so.13; do
  found=$( (ldconfig -p | grep -o "/.*$lib" ; IFS=:; for d in $LD_LIBRARY_PATH; do [ -n "$d" ] && ls "$d"/$lib* 2>/dev/null; done) | head -1 || true)
  echo "$lib: ${found:-NOT FOUND}" >&2
done
export DOTNET_gcServer=0
out=${OUT:-/tmp/gpu/out}
mkdir -p "$out"
timeout -s INT -k 15 "${CHECK_SECONDS:-420}" ./bin/appliance-gpu-check --models /tmp/gpu/models "$@" 2>&1 | tee "$out/gpu-check.log"
