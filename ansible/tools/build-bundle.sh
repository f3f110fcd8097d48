#!/usr/bin/env bash
# Builds the offline installation bundle: appliance-<version>-linux-x64.tar.gz holding a self-contained linux-x64
# publish of the host (bin/Appliance.Host) and of the `appliance` command (bin/appliance), sharing one runtime and one
# ONNX Runtime (the CUDA provider alone is ~280 MB) - no .NET runtime needed on the target - the
# appliance/ files (systemd unit, settings, Keycloak realm export), VERSION, and manifest.json with the size and
# SHA-256 of every file. Usage: ansible/tools/build-bundle.sh <version> [output-folder]   (default output: dist/)
# Models travel separately: a model folder with its own manifest.json (`appliance model manifest <folder>`).
set -euo pipefail
cd "$(dirname "$0")/../.."

version="${1:?usage: build-bundle.sh <version> [output-folder]}"
if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-.][0-9A-Za-z.-]+)?$ ]]; then
  echo "error: version '$version' is not of the form 1.2.3 or 1.2.3-suffix" >&2
  exit 2
fi
out="$(mkdir -p "${2:-dist}" && cd "${2:-dist}" && pwd)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
name="appliance-$version-linux-x64"
root="$stage/$name"
mkdir -p "$root"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# The numeric part becomes the assemblies' version; the full string is the informational version (shown by --version).
numeric="${version%%[-+]*}"
for project in Appliance.Host Appliance.Cli; do
  dotnet publish "src/$project" --configuration Release --runtime linux-x64 --self-contained \
    -p:Version="$numeric" -p:InformationalVersion="$version" -p:DebugType=none \
    --output "$root/bin" --nologo -v quiet
done
cp -r appliance "$root/appliance"
echo "$version" > "$root/VERSION"
"$root/bin/appliance" bundle manifest "$root"
tar -C "$stage" -czf "$out/$name.tar.gz" "$name"
( cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256" )
echo "$out/$name.tar.gz"
