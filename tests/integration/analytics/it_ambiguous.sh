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
# Keep-alive: INSERTs ride one connection until a cut closes it; libcurl then opens
# another to resend (its silent retry on a reused connection that died), which cannot
# happen for an INSERT: the body is read through a callback without a seek function, so
# curl fails with "rewinding of the data stream failed", counted as ambiguous, and the
# landed-check follows. So 1 + 2 per cut = 7 connections; an INSERT per fresh connection
# (the rule before) made one per INSERT, and one for the checks: 11.
inserts=$(grep -c '^cut_proxy: insert #' "$WORK/proxy.err")
conns=$(grep -c '^cut_proxy: connection #' "$WORK/proxy.err")
echo "inserts relayed: $inserts, client connections: $conns"
[ "$inserts" -ge 10 ] || fail "only $inserts inserts relayed"
[ "$conns" -le 7 ] || fail "$conns connections for $inserts inserts: no keep-alive"
expect_eq "cut inserts failed as not rewindable" \
  "$(grep -c 'rewinding of the data stream failed' "$WORK/driver.err")" "3"
echo PASS
