#!/usr/bin/env bash
# ClickHouse unreachable, tiny ring and spool cap: records beyond the cap are dropped,
# counted and reported; everything accepted is later replayed. Reconciles exactly:
# made = rows in ClickHouse + dead letters + drops.
source "$(dirname "$0")/lib.sh"
N=20000
# A closed port: every insert fails while the spool fills.
"$DRIVER" --clickhouse-url "http://127.0.0.1:9" --spool-dir "$WORK/spool" --count $N \
  --queue-capacity 64 --spool-max-bytes 4000000 --segment-bytes 1000000 --drain-ms 1 \
  > "$WORK/driver.out" 2> "$WORK/driver.err" || true
cat "$WORK/driver.out"
accepted=$(sed -n 's/^enqueued .* accepted=\([0-9]*\).*/\1/p' "$WORK/driver.out")
dropped=$(sed -n 's/^enqueued .* dropped=\([0-9]*\).*/\1/p' "$WORK/driver.out")
[ "$dropped" -gt 0 ] || fail "expected drops at the cap"
expect_eq "accepted + dropped" "$((accepted + dropped))" "$N"
grep -q '"event":"record_dropped"' "$WORK/driver.err" || fail "drop not logged"
# Drops counted by the shipper: at enqueue (ring and spool full) plus any accepted records
# still waiting for spool room when it stopped.
total_dropped=$(sed -n 's/^stats .* dropped=\([0-9]*\) .*/\1/p' "$WORK/driver.out")
[ "$total_dropped" -ge "$dropped" ] || fail "drop counter $total_dropped < $dropped refused"
ch_start
"$CLI" migrate --clickhouse-url "$URL" >/dev/null
"$CLI" replay --clickhouse-url "$URL" --spool-dir "$WORK/spool" --timeout-ms 300000 | tee "$WORK/replay.out"
rows=$(q 'SELECT count() FROM llm_requests')
expect_eq "rows = made - drops" "$rows" "$((N - total_dropped))"
expect_eq "distinct = rows" "$(q 'SELECT uniqExact(request_id) FROM llm_requests')" "$rows"
expect_eq "made = rows + dead letters + drops" "$N" "$((rows + 0 + total_dropped))"
echo PASS
