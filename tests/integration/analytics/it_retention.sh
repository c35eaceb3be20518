#!/usr/bin/env bash
# Retention drops whole monthly partitions older than the kept months, in every table, and
# keeps the recent ones.
source "$(dirname "$0")/lib.sh"
ch_start
"$CLI" migrate --clickhouse-url "$URL" >/dev/null
now_ms=$(( $(date +%s) * 1000 ))
old_ms=1577836800000   # 2020-01-01
row() { printf '{"request_id":"%s","user_id":"u","model":"m","start_time_ms":%s,"status":"success","estimated_cost_nano_usd":5}\n' "$1" "$2"; }
{ row old-1 $old_ms; row old-2 $((old_ms + 86400000 * 40)); row new-1 $now_ms; } |
  curl -sS --fail-with-body "$URL/?query=INSERT%20INTO%20llm_ingest%20FORMAT%20JSONEachRow&input_format_skip_unknown_fields=1" --data-binary @-
expect_eq "rows before" "$(q 'SELECT count() FROM llm_requests')" "3"
"$CLI" retention --clickhouse-url "$URL" --keep-months 3 | tee "$WORK/ret.out"
expect_eq "dropped partitions (2 months x 3 tables)" "$(cat "$WORK/ret.out")" "retention dropped_partitions=6"
expect_eq "rows after" "$(q 'SELECT request_id FROM llm_requests')" "new-1"
expect_eq "bodies after" "$(q 'SELECT request_id FROM llm_request_bodies')" "new-1"
expect_eq "rollup after" "$(q 'SELECT sum(requests) FROM llm_usage_daily')" "1"
expect_eq "second run" "$("$CLI" retention --clickhouse-url "$URL" --keep-months 3)" "retention dropped_partitions=0"
if "$CLI" retention --clickhouse-url "$URL" --keep-months 0 2>/dev/null; then fail "keep-months 0 accepted"; fi
echo PASS
