#!/usr/bin/env bash
# Prepares the GPU lane on the build machine: a self-contained linux-x64 build of appliance-gpu-check (no .NET on the
# GPU machine), with ONNX Runtime's CUDA provider, packed and split into parts of at most 56 MiB under .gpu/ (ignored
# by git), so that each device call carries one part (a call carries 64 MiB at most; carried files stay on the
# machine while it is warm). Prints the calls to make.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.gpu
rm -rf "$out"
mkdir -p "$out"
dotnet publish tests/gpu/Appliance.GpuCheck -c Release -r linux-x64 --self-contained true -o "$out/bin" -p:PublishReadyToRun=false >/dev/null
# The TensorRT provider is not used; leave it behind.
rm -f "$out"/bin/libonnxruntime_providers_tensorrt.so
tar -C "$out" -cf - bin | xz -T2 -6 > "$out/gpu-check.tar.xz"
rm -rf "$out/bin"
split -b 56M -d "$out/gpu-check.tar.xz" "$out/part-"
rm "$out/gpu-check.tar.xz"
sha256sum "$out"/part-* > "$out/SHA256SUMS"
ls -l "$out"
count=$(ls "$out"/part-* | wc -l)
echo
echo "Carry one part per call, each within 30 s of the previous (the machine stays warm that long); each call says how"
echo "many parts the machine holds, and the last one runs the check (a machine gone cold says so instead of failing):"
parts=("$out"/part-*)
for part in "${parts[@]}"; do
  step="mkdir -p /tmp/gpu && cp $part $out/SHA256SUMS /tmp/gpu/ && echo \$(ls /tmp/gpu/part-* | wc -l) of $count parts"
  if [ "$part" = "${parts[-1]}" ]; then
    step="$step && bash tests/gpu/run.sh"
    echo "  run(command='$step', carry=['$part', '$out/SHA256SUMS'], timeout_s=540)"
  else
    echo "  run(command='$step', carry=['$part', '$out/SHA256SUMS'])"
  fi
done
echo "To run the check again on the same warm machine: run(command='bash tests/gpu/run.sh', timeout_s=540)"
