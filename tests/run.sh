#!/usr/bin/env bash
# Runs every test project of the solution and ends with one line "N passed, M failed", added up from the TRX
# results. Exits non-zero when a test fails or a test project produced no result.
set -uo pipefail
cd "$(dirname "$0")/.."

results="TestResults"
rm -rf "$results"
status=0
dotnet build Appliance.sln --configuration Release || status=$?
if [ "$status" -eq 0 ]; then
  # One TRX file per test project, named after it.
  for project in tests/*.Tests/*.Tests.csproj tests/*.IntegrationTests/*.IntegrationTests.csproj; do
    [ -e "$project" ] || continue
    name=$(basename "$project" .csproj)
    dotnet test "$project" --configuration Release --no-build --logger "trx;LogFileName=$name.trx" --results-directory "$results" "$@" || status=$?
  done
fi

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
