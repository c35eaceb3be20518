#!/usr/bin/env bash
# 100k records -> exactly 100k rows, every field equal to what was enqueued (compared
# field by field against the driver's --expect file), bodies in their own table, the daily
# rollup consistent with the rows; through recycled spool segments.
source "$(dirname "$0")/lib.sh"
ch_start
"$CLI" migrate --clickhouse-url "$URL" >/dev/null
N=100000
# gzip forced: on loopback the default (auto) sends uncompressed, which the other tests cover.
# Paced, with small batches and 4 MiB segments, so segments are acknowledged while records
# still come and later segments are recycled files (spool format 2): every field must
# still arrive once, exactly as enqueued.
"$DRIVER" --clickhouse-url "$URL" --spool-dir "$WORK/spool" --count $N --compression gzip \
  --rate 50000 --batch-rows 5000 --segment-bytes 4194304 \
  --expect "$WORK/expect.jsonl" > "$WORK/driver.out"
cat "$WORK/driver.out"
grep -q "drained=1" "$WORK/driver.out" || fail "driver did not drain"
grep -Eq " recycled=[1-9]" "$WORK/driver.out" || fail "no segment was recycled"
expect_eq "rows" "$(q 'SELECT count() FROM llm_requests')" "$N"
expect_eq "distinct request ids" "$(q 'SELECT uniqExact(request_id) FROM llm_requests')" "$N"
expect_eq "bodies" "$(q 'SELECT count() FROM llm_request_bodies')" "$N"
expect_eq "rollup requests" "$(q 'SELECT sum(requests) FROM llm_usage_daily')" "$N"
expect_eq "rollup cost = row cost" \
  "$(q 'SELECT sum(cost_nano_usd) FROM llm_usage_daily')" \
  "$(q 'SELECT sum(estimated_cost_nano_usd) FROM llm_requests')"
expect_fields "$WORK/expect.jsonl"
echo PASS
