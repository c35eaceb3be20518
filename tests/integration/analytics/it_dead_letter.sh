#!/usr/bin/env bash
# One malformed row (rejected by ClickHouse: a word in an Int64 column) goes to the dead-
# letter file with its error; the rest of its batch lands. Counts reconcile exactly:
# rows made = rows in ClickHouse + dead letters + counted drops.
source "$(dirname "$0")/lib.sh"
ch_start
"$CLI" migrate --clickhouse-url "$URL" >/dev/null
N=3000
# The malformed row sits in the middle of its batch (row 1235): ClickHouse names it
# "(at row 1235)" and exactly that row must leave. gzip forced (a body of several gzip
# members; on loopback the default sends uncompressed): the row number must survive it.
# JSON rows throughout (--format json), so the rows after it share its batch.
"$DRIVER" --clickhouse-url "$URL" --spool-dir "$WORK/spool" --count $N --compression gzip \
  --format json --inject-bad-row --bad-row-at 1234 > "$WORK/driver.out"
cat "$WORK/driver.out"
rows=$(q 'SELECT count() FROM llm_requests')
dl=$(wc -l < "$WORK/spool/deadletter.jsonl")
expect_eq "rows" "$rows" "$N"
expect_eq "distinct good rows" "$(q "SELECT uniqExact(request_id) FROM llm_requests WHERE request_id LIKE 'req-%'")" "$N"
expect_eq "dead letters" "$dl" "1"
grep -q '"row":"{\\"request_id\\":\\"bad-1\\"' "$WORK/spool/deadletter.jsonl" || fail "bad row not in dead letters"
grep -q '"code":27' "$WORK/spool/deadletter.jsonl" || grep -q '"code":72' "$WORK/spool/deadletter.jsonl" || fail "error code missing"
dropped=$(sed -n 's/.* dropped=\([0-9]*\).*/\1/p' "$WORK/driver.out" | tail -1)
expect_eq "made (N + 1 bad) = rows + dead letters + drops" "$((N + 1))" "$((rows + dl + dropped))"

# RowBinary (the default format): a row cut 3 bytes short, among 1234 whole ones, would
# make ClickHouse read the next row's bytes as its own; the shipper refuses it before
# sending (dead letter with its bytes in hex), and the rest lands.
"$DRIVER" --clickhouse-url "$URL" --spool-dir "$WORK/spool2" --count $N --first $N \
  --inject-bad-row --bad-row-format rowbinary --bad-row-at 1234 > "$WORK/driver2.out"
cat "$WORK/driver2.out"
rows2=$(q 'SELECT count() FROM llm_requests')
dl2=$(wc -l < "$WORK/spool2/deadletter.jsonl")
expect_eq "rows after the RowBinary run" "$rows2" "$((2 * N))"
expect_eq "distinct good rows" "$(q "SELECT uniqExact(request_id) FROM llm_requests WHERE request_id LIKE 'req-%'")" "$((2 * N))"
expect_eq "RowBinary dead letters" "$dl2" "1"
grep -q '"error":"row is not one whole RowBinary row","row_hex":"' "$WORK/spool2/deadletter.jsonl" \
  || fail "cut RowBinary row not dead-lettered as hex"
# its hex holds the request id "bad-1" after its length byte (05 62 61 64 2d 31)
grep -q '056261642d31' "$WORK/spool2/deadletter.jsonl" || fail "bad-1 not in the dead letter"
dropped2=$(sed -n 's/.* dropped=\([0-9]*\).*/\1/p' "$WORK/driver2.out" | tail -1)
expect_eq "made (N + 1 bad) = rows + dead letters + drops" "$((N + 1))" "$((rows2 - rows + dl2 + dropped2))"
echo PASS
