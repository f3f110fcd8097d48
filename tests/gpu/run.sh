#!/usr/bin/env bash
# Runs on the GPU machine after tests/gpu/pack.sh's parts arrived in /tmp/gpu: reassembles and checks them, points the
# loader at CUDA 13 and cuDNN 9 (the image's Python packages carry them), and runs the check. The table comes last.
set -euo pipefail
cd /tmp/gpu
sed 's#\.gpu/##' SHA256SUMS | sha256sum -c --quiet
cat part-* | xz -d | tar -xf -
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
site=$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null || true)
libs=$(find "$site/nvidia" -maxdepth 3 -type d -name lib 2>/dev/null | tr '\n' ':' || true)
export LD_LIBRARY_PATH="/tmp/gpu/bin:${libs}${LD_LIBRARY_PATH:-}"
# Say at once which of the CUDA provider's libraries the loader cannot find (the check's rows would say it later).
missing=$(ldd bin/libonnxruntime_providers_cuda.so | grep 'not found' || true)
[ -z "$missing" ] || echo "the CUDA provider lacks: $missing" >&2
export DOTNET_gcServer=0
out=${OUT:-/tmp/gpu/out}
mkdir -p "$out"
./bin/appliance-gpu-check --models /tmp/gpu/models "$@" 2>&1 | tee "$out/gpu-check.log"
