#!/usr/bin/env bash
# SIGTERM drain hook: a shipper told to stop ships what it holds within its deadline and
# exits; with ClickHouse away at that moment, the rest stays spooled and the next start
# (replay) lands it. Exactly once either way. Also checks the Prometheus metrics text.
source "$(dirname "$0")/lib.sh"
ch_start
"$CLI" migrate --clickhouse-url "$URL" >/dev/null
N=20000
# 1. ClickHouse up: SIGTERM right after spooling -> everything lands before exit.
"$DRIVER" --clickhouse-url "$URL" --spool-dir "$WORK/s1" --count $N --batch-rows 5000 \
  --batch-age-ms 60000 --hold --metrics > "$WORK/d1.out" 2> "$WORK/d1.err" &
DRV=$!; BG_PIDS+=("$DRV")
spooled() { grep -q '^spooled' "$1"; }
wait_for 120 spooled "$WORK/d1.out" || fail "never spooled"
kill -TERM "$DRV"
wait "$DRV" || fail "driver exit status after SIGTERM: $(tail -2 "$WORK/d1.err")"
grep '^stats' "$WORK/d1.out"
grep -q "drained=1" "$WORK/d1.out" || fail "not drained on SIGTERM"
expect_eq "rows after SIGTERM" "$(q 'SELECT count() FROM llm_requests')" "$N"
grep -q "^llmgate_shipper_rows_shipped_total $N\$" "$WORK/d1.out" || fail "metrics text"
grep -q "^# TYPE llmgate_shipper_dropped_total counter\$" "$WORK/d1.out" || fail "metrics TYPE"
# 2. ClickHouse down at SIGTERM: exit after the deadline, rows kept in the spool, replayed.
"$DRIVER" --clickhouse-url "$URL" --spool-dir "$WORK/s2" --count $N --first $N \
  --batch-age-ms 60000 --hold > "$WORK/d2.out" 2> "$WORK/d2.err" &
DRV=$!; BG_PIDS+=("$DRV")
wait_for 120 spooled "$WORK/d2.out" || fail "never spooled (2)"
ch_stop
kill -TERM "$DRV"
wait "$DRV" && fail "driver claims a drain with ClickHouse down"
grep '^stats' "$WORK/d2.out"
grep -q "drained=0" "$WORK/d2.out" || fail "expected an undrained exit"
ch_start
"$CLI" replay --clickhouse-url "$URL" --spool-dir "$WORK/s2" --timeout-ms 300000
expect_eq "rows after replay" "$(q 'SELECT count() FROM llm_requests')" "$((2 * N))"
expect_eq "distinct" "$(q 'SELECT uniqExact(request_id) FROM llm_requests')" "$((2 * N))"
echo PASS
