#!/bin/bash
# `make test` N times in a row (default 10) from one clean clone of this checkout, placed beside
# it (../clean-suite, so ../shared is found as in CI): does the suite always end by itself, and
# in how long? `make install` runs once; before each run `git clean -xdf -e .venv` puts the
# tree back to a fresh clone's state. A run that has not ended after 45 min is killed and
# recorded as rc=124 (a hang). Each line of the summary also counts Ray / vLLM processes left
# behind. Run it on a quiet machine (no training, no helpers): the wall times are the result.
#   bench/suite_runs.sh [N] [OUT]      (OUT default: /tmp/suite_runs)
set -u
N=${1:-10}
OUT=${2:-/tmp/suite_runs}
SRC=$(cd "$(dirname "$0")/.." && pwd)
CLONE=$(dirname "$SRC")/clean-suite
mkdir -p "$OUT"
rm -rf "$CLONE" && git clone -q "$SRC" "$CLONE" && cd "$CLONE" || exit 1
echo "commit $(git rev-parse --short HEAD), $(nproc) cores, $(date -u +%FT%TZ)" > "$OUT/summary.txt"
s=$(date +%s); make install > "$OUT/install.log" 2>&1
echo "install rc=$? wall=$(( $(date +%s) - s ))s" >> "$OUT/summary.txt"
for i in $(seq 1 "$N"); do
  git clean -xdfq -e .venv
  s=$(date +%s)
  timeout -k 60 45m make test > "$OUT/run$i.log" 2>&1; rc=$?
  wall=$(( $(date +%s) - s ))
  left=$(pgrep -fc "raylet|gcs_server|ray::|vllm.entrypoints|EngineCore" || true)
  echo "run $i rc=$rc wall=${wall}s left_behind=$left load=$(cut -d' ' -f1-3 /proc/loadavg)" \
       "| $(grep -E '[0-9]+ (passed|failed)' "$OUT/run$i.log" | tail -1)" >> "$OUT/summary.txt"
done
cat "$OUT/summary.txt"
