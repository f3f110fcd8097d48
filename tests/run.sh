#!/usr/bin/env bash
# Installs what the tests need (tests/setup.sh), runs every test project of the solution and ends with one line
# "N passed, M failed", added up from the TRX results. Exits non-zero when a test fails or a project produced no result.
#   --quick      everything except the browser tests (Appliance.Console.Tests) and the deployment tests (category Slow)
#   --no-setup   skip tests/setup.sh (nothing installed or started)
# Other arguments go to every `dotnet test` (e.g. --filter "FullyQualifiedName~Tokenization").
set -uo pipefail
cd "$(dirname "$0")/.."

quick=false
setup=true
user_filter=""
passthrough=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=true ;;
    --no-setup) setup=false ;;
    --filter) user_filter=${2:-}; shift ;;
    *) passthrough+=("$1") ;;
  esac
  shift
done

results="TestResults"
rm -rf "$results"
status=0
started=$SECONDS
if [ "$setup" = true ]; then
  bash tests/setup.sh || status=$?
  echo "== setup: $((SECONDS - started)) s" >&2
fi

# The deployment lab's Debian image (debootstrap: mostly downloading and unpacking) builds while the solution compiles;
# the lab waits for it (tests/deployment/lab.sh rootfs takes a lock) instead of building it when its tests start.
image_job=""
if [ "$status" -eq 0 ] && [ "$quick" = false ] && [ -z "$user_filter" ] && [ "$(id -u)" -eq 0 ] && command -v debootstrap >/dev/null; then
  image="${TMPDIR:-/tmp}"
  # Lowest priority: the compiler and the tests before the lab come first (it has ten minutes to finish).
  nice -n 19 ionice -c 2 -n 7 bash tests/deployment/lab.sh rootfs "${image%/}/appliance-lab-image" >/dev/null 2>&1 &
  image_job=$!
fi

if [ "$status" -eq 0 ]; then
  started=$SECONDS
  dotnet build Appliance.sln --configuration Release || status=$?
  echo "== build: $((SECONDS - started)) s" >&2
fi

if [ "$status" -eq 0 ]; then
  # One TRX file per test project, named after it.
  for project in tests/*.Tests/*.Tests.csproj tests/*.IntegrationTests/*.IntegrationTests.csproj; do
    [ -e "$project" ] || continue
    name=$(basename "$project" .csproj)
    expression=$user_filter
    if [ "$quick" = true ]; then
      [ "$name" = "Appliance.Console.Tests" ] && continue
      expression=${expression:+($expression)&}"Category!=Slow"
    fi
    filter=()
    [ -n "$expression" ] && filter=(--filter "$expression")
    started=$SECONDS
    dotnet test "$project" --configuration Release --no-build --logger "trx;LogFileName=$name.trx" --results-directory "$results" "${filter[@]}" "${passthrough[@]}" || status=$?
    echo "== $name: $((SECONDS - started)) s" >&2
  done
fi

# The image build's own failure shows in the deployment tests (the lab builds it again and reports why). When something
# failed, the run ends without waiting for it: it finishes on its own (an unfinished image is rebuilt next time).
[ -n "$image_job" ] && [ "$status" -eq 0 ] && wait "$image_job" 2>/dev/null

passed=0
failed=0
files=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  files=$((files + 1))
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  p=$(grep -o ' passed="[0-9]*"' <<<"$counters" | grep -o '[0-9]*')
  f=$(grep -o ' failed="[0-9]*"' <<<"$counters" | grep -o '[0-9]*')
  e=$(grep -o ' error="[0-9]*"' <<<"$counters" | grep -o '[0-9]*')
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0}))
done

if [ "$files" -eq 0 ] && [ "$status" -eq 0 ]; then
  echo "no test results were written" >&2
  status=1
fi
if [ "$failed" -gt 0 ] && [ "$status" -eq 0 ]; then
  status=1
fi

echo "$passed passed, $failed failed"
exit "$status"
