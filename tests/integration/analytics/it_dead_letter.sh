#!/usr/bin/env bash
# One malformed row goes to the dead-letter file with its error; the rest of its batch
# lands. JSON: rejected by ClickHouse (a word in an Int64 column), which names the row.
# RowBinary: a row cut short, refused by the shipper before sending. Counts reconcile
# exactly: rows made = rows in ClickHouse + dead letters + counted drops.
source "$(dirname "$0")/lib.sh"
ch_start
"$CLI" migrate --clickhouse-url "$URL" >/dev/null
N=3000
# run_bad NAME DRIVER_ARGS...: ship N good records and one bad one into spool NAME, then
# check: every good row landed once (rows so far: $total), one dead letter, and
# made (N + 1) = new rows + dead letters + counted drops. Leaves $DL (the dead-letter file).
total=0
run_bad() {
  local name=$1; shift
  "$DRIVER" --clickhouse-url "$URL" --spool-dir "$WORK/$name" --count $N --first $total \
    --inject-bad-row --bad-row-at 1234 "$@" > "$WORK/$name.out"
  cat "$WORK/$name.out"
  local rows dl dropped
  rows=$(q 'SELECT count() FROM llm_requests')
  DL=$WORK/$name/deadletter.jsonl
  dl=$(wc -l < "$DL")
  expect_eq "$name: rows" "$rows" "$((total + N))"
  expect_eq "$name: distinct good rows" "$(q "SELECT uniqExact(request_id) FROM llm_requests WHERE request_id LIKE 'req-%'")" "$((total + N))"
  expect_eq "$name: dead letters" "$dl" "1"
  dropped=$(sed -n 's/.* dropped=\([0-9]*\).*/\1/p' "$WORK/$name.out" | tail -1)
  expect_eq "$name: made (N + 1 bad) = rows + dead letters + drops" "$((N + 1))" "$((rows - total + dl + dropped))"
  total=$rows
}

# JSON: the malformed row sits in the middle of its batch (row 1235): ClickHouse names it
# "(at row 1235)" and exactly that row must leave. gzip forced (a body of several gzip
# members; on loopback the default sends uncompressed): the row number must survive it.
# JSON rows throughout (--format json), so the rows after it share its batch.
run_bad json --compression gzip --format json
grep -q '"row":"{\\"request_id\\":\\"bad-1\\"' "$DL" || fail "bad row not in dead letters"
grep -q '"code":27' "$DL" || grep -q '"code":72' "$DL" || fail "error code missing"

# RowBinary (the default format): a row cut 3 bytes short, among 1234 whole ones, would
# make ClickHouse read the next row's bytes as its own; the shipper refuses it before
# sending (dead letter with its bytes in hex), and the rest lands.
run_bad rowbinary --bad-row-format rowbinary
grep -q '"error":"row is not one whole RowBinary row","row_hex":"' "$DL" \
  || fail "cut RowBinary row not dead-lettered as hex"
# its hex holds the request id "bad-1" after its length byte (05 62 61 64 2d 31)
grep -q '056261642d31' "$DL" || fail "bad-1 not in the dead letter"
echo PASS
