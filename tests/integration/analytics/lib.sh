#!/usr/bin/env bash
# Shared helpers for the analytics integration tests (sourced). Each it_*.sh is run by ctest
# as: it_x.sh BUILD_DIR SOURCE_DIR. It gets a private temp dir ($WORK), a ClickHouse of its
# own (ch_start), and cleanup on exit.
set -euo pipefail
BUILD=${1:?build dir}
SRC=${2:?source dir}
CHDIR_SCRIPTS=$SRC/tests/integration/clickhouse
DRIVER=$BUILD/tests/ship_driver
CLI=$BUILD/bin/llmgate-analytics
WORK=$(mktemp -d /tmp/lg-analytics-it.XXXXXX)
CH=$WORK/ch
BG_PIDS=()

cleanup() {
  local rc=$?
  for p in "${BG_PIDS[@]+"${BG_PIDS[@]}"}"; do kill -9 "$p" 2>/dev/null || true; done
  "$CHDIR_SCRIPTS/stop.sh" "$CH" -9 >/dev/null 2>&1 || true
  if [ $rc -eq 0 ]; then rm -rf "$WORK"; else echo "test failed (rc=$rc); files kept in $WORK" >&2; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

ch_start() {
  local line
  line=$("$CHDIR_SCRIPTS/start.sh" "$CH")
  URL=${line#clickhouse }
}
ch_stop() { "$CHDIR_SCRIPTS/stop.sh" "$CH" "${1:-}"; }

# q SQL: runs one statement over HTTP, prints the result (TSV).
q() { curl -sS --fail-with-body "$URL/" --data-binary "$1"; }

# wait_for DEADLINE_S CMD...: polls CMD until it succeeds or the deadline passes.
wait_for() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# expect_eq WHAT GOT WANT
expect_eq() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; echo "ok: $1 = $3"; }

PY=/usr/bin/python3
