#!/usr/bin/env bash
# Upgrade path of the row format: a spool holding JSON rows (written by a build from before
# RowBinary, or with --format json) and then RowBinary rows (the default) ships every row
# once and every field as made. The batcher cuts a batch where the format changes; each
# INSERT goes in its rows' format (JSONEachRow, or RowBinary with the rows' column list).
source "$(dirname "$0")/lib.sh"
ch_start
"$CLI" migrate --clickhouse-url "$URL" >/dev/null
N=20000
# JSON rows spooled while nothing ships (as if ClickHouse were away during the upgrade).
"$DRIVER" --spool-dir "$WORK/spool" --count $N --format json --no-ship \
  --expect "$WORK/expect-json.jsonl" > "$WORK/json.out"
# The new build on the same spool: replays the JSON rows, adds N RowBinary rows, ships all.
"$DRIVER" --clickhouse-url "$URL" --spool-dir "$WORK/spool" --count $N --first $N \
  --batch-rows 3000 --expect "$WORK/expect-rb.jsonl" --log-level debug > "$WORK/rb.out" 2> "$WORK/rb.log"
cat "$WORK/rb.out"
grep -q "drained=1" "$WORK/rb.out" || fail "driver did not drain"
expect_eq "rows" "$(q 'SELECT count() FROM llm_requests')" "$((2 * N))"
expect_eq "distinct request ids" "$(q 'SELECT uniqExact(request_id) FROM llm_requests')" "$((2 * N))"
expect_eq "rows shipped by the second run" "$(sed -n 's/.* rows_shipped=\([0-9]*\).*/\1/p' "$WORK/rb.out")" "$((2 * N))"
expect_eq "dead letters" "$(sed -n 's/.* dead_letters=\([0-9]*\).*/\1/p' "$WORK/rb.out")" "0"
# Both kinds of INSERT were made, JSON ones first (the spool's order), and no batch mixed
# the two: JSON rows + RowBinary rows shipped = all rows, per format from the debug log.
rows_of() { grep '"event":"insert_started"' "$WORK/rb.log" | grep "format=$1" \
  | sed -n 's/.* rows=\([0-9]*\) .*/\1/p' | awk '{s += $1} END {print s + 0}'; }
expect_eq "rows sent as JSONEachRow" "$(rows_of json)" "$N"
expect_eq "rows sent as RowBinary" "$(rows_of rowbinary)" "$N"
first=$(grep '"event":"insert_started"' "$WORK/rb.log" | head -1)
case $first in *format=json*) ;; *) fail "the first INSERT is not the JSON rows': $first";; esac
cat "$WORK/expect-json.jsonl" "$WORK/expect-rb.jsonl" > "$WORK/expect.jsonl"
expect_fields "$WORK/expect.jsonl"
echo PASS
