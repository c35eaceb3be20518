#!/usr/bin/env bash
# The shipper process is killed with SIGKILL mid-run (records spooled, some inserted, one
# insert likely in flight); `llmgate-analytics replay` on the same spool then lands the
# rest: no loss, no duplicate (count by request_id).
source "$(dirname "$0")/lib.sh"
ch_start
"$CLI" migrate --clickhouse-url "$URL" >/dev/null
N=50000
# 1 MiB segments: each 2000-row acknowledgement frees several, so segments made while the
# backlog is still being written are recycled files, and the killed spool holds files whose
# old frames (acknowledged rows) must not come back in the replay.
"$DRIVER" --clickhouse-url "$URL" --spool-dir "$WORK/spool" --count $N --batch-rows 2000 \
  --segment-bytes 1048576 --hold > "$WORK/driver.out" 2> "$WORK/driver.err" &
DRV=$!
BG_PIDS+=("$DRV")
spooled() { grep -q '^spooled' "$WORK/driver.out"; }
wait_for 120 spooled || fail "driver never spooled"
landed_some() { [ "$(q 'SELECT count() FROM llm_requests')" -gt 0 ]; }
wait_for 120 landed_some || fail "nothing landed"
# SIGKILL while one of its INSERTs is executing (the ambiguous case for the restart).
insert_running() {
  [ "$(q "SELECT count() FROM system.processes WHERE query LIKE 'INSERT INTO llm_ingest%'")" -gt 0 ]
}
wait_for 120 insert_running || fail "never saw an insert in flight"
kill -9 "$DRV"
wait "$DRV" 2>/dev/null || true
before=$(q 'SELECT count() FROM llm_requests')
echo "killed the shipper with $before of $N rows landed"
[ "$before" -lt "$N" ] || echo "note: everything had landed before the kill"
"$CLI" replay --clickhouse-url "$URL" --spool-dir "$WORK/spool" --timeout-ms 300000 | tee "$WORK/replay.out"
grep -q "complete=1" "$WORK/replay.out" || fail "replay incomplete"
expect_eq "rows" "$(q 'SELECT count() FROM llm_requests')" "$N"
expect_eq "distinct request ids" "$(q 'SELECT uniqExact(request_id) FROM llm_requests')" "$N"
# Replaying again finds nothing left to send.
"$CLI" replay --clickhouse-url "$URL" --spool-dir "$WORK/spool" --timeout-ms 60000 | tee "$WORK/replay2.out"
grep -q "rows_shipped=0 " "$WORK/replay2.out" || fail "second replay shipped rows"
expect_eq "rows after second replay" "$(q 'SELECT count() FROM llm_requests')" "$N"
echo PASS
