#!/usr/bin/env bash
# tests/integration/clickhouse/stop.sh DIR [-9]: stop the server started by start.sh DIR.
# SIGTERM then wait up to 30 s (then SIGKILL); with -9, SIGKILL at once. Idempotent.
set -uo pipefail
DIR=${1:?usage: stop.sh DIR [-9]}
[ -f "$DIR/pid" ] || exit 0
PID=$(cat "$DIR/pid")
if ! kill -0 "$PID" 2>/dev/null; then rm -f "$DIR/pid"; exit 0; fi
if [ "${2:-}" = "-9" ]; then
  kill -9 "$PID" 2>/dev/null
else
  kill -TERM "$PID" 2>/dev/null
  deadline=$(( $(date +%s) + 30 ))
  while kill -0 "$PID" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
  kill -9 "$PID" 2>/dev/null
fi
while kill -0 "$PID" 2>/dev/null; do sleep 0.05; done
rm -f "$DIR/pid"
exit 0
