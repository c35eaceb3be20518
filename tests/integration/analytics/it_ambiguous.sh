#!/usr/bin/env bash
# Ambiguous failures: ClickHouse executes an INSERT but the connection is cut before its
# answer (cut_proxy.py). The shipper must ask ClickHouse whether that batch_id landed and
# not send it again: every record exactly once, and the daily rollup (which would count a
# resent batch twice) exact too.
source "$(dirname "$0")/lib.sh"
ch_start
"$CLI" migrate --clickhouse-url "$URL" >/dev/null
$PY "$(dirname "$0")/cut_proxy.py" "${URL#http://}" --cut 2,3,7 > "$WORK/proxy.out" 2> "$WORK/proxy.err" &
BG_PIDS+=("$!")
proxy_up() { grep -q '^listening cut_proxy ' "$WORK/proxy.out"; }
wait_for 30 proxy_up || fail "proxy did not start"
PROXY="http://$(sed -n 's/^listening cut_proxy //p' "$WORK/proxy.out")"
N=20000
"$DRIVER" --clickhouse-url "$PROXY" --spool-dir "$WORK/spool" --count $N --batch-rows 2000 \
  --log-level info > "$WORK/driver.out" 2> "$WORK/driver.err"
cat "$WORK/driver.out" "$WORK/proxy.err"
expect_eq "answers cut" "$(grep -c 'cut the answer' "$WORK/proxy.err")" "3"
expect_eq "rows" "$(q 'SELECT count() FROM llm_requests')" "$N"
expect_eq "distinct request ids" "$(q 'SELECT uniqExact(request_id) FROM llm_requests')" "$N"
expect_eq "rollup requests (no batch sent twice)" "$(q 'SELECT sum(requests) FROM llm_usage_daily')" "$N"
landed=$(sed -n 's/^stats .* landed_on_check=\([0-9]*\).*/\1/p' "$WORK/driver.out")
expect_eq "batches found landed by the batch_id check" "$landed" "3"
echo PASS
