#!/usr/bin/env bash
# TLS: ClickHouse's HTTPS port with a private CA (a fresh self-signed certificate). The CLI and
# the shipper verify the server against --clickhouse-ca-file; with only the system's CAs the
# certificate is refused, so nothing goes out unverified, and the rows wait in the spool
# (never dropped) until a trusted replay lands them, exactly once, gzip'd or not.
source "$(dirname "$0")/lib.sh"
LG_CH_HTTPS=1 ch_start
HTTPS=$(cat "$CH/https_url")
CA=$CH/ca.pem
case "$HTTPS" in https://127.0.0.1:*) ;; *) fail "no https url: $HTTPS" ;; esac
if "$CLI" migrate --clickhouse-url "$HTTPS" > /dev/null 2> "$WORK/untrusted.err"; then
  fail "migrate trusted a certificate no CA vouches for"
fi
expect_eq "tables before a trusted migrate" "$(q "SELECT count() FROM system.tables WHERE name = 'llm_requests'")" "0"
"$CLI" migrate --clickhouse-url "$HTTPS" --clickhouse-ca-file "$CA" | grep -q "applied=3" \
  || fail "migrate over https with the CA"
"$DRIVER" --no-ship --spool-dir "$WORK/s" --count 3000 > /dev/null
if "$CLI" replay --clickhouse-url "$HTTPS" --spool-dir "$WORK/s" --timeout-ms 3000 \
  > /dev/null 2> "$WORK/replay-untrusted.err"; then
  fail "replay drained to an untrusted server"
fi
expect_eq "rows sent to an untrusted server" "$(q 'SELECT count() FROM llm_requests')" "0"
# A refused certificate is not an ambiguous failure (nothing was sent): no landed-checks.
grep -q 'insert_failed.*certificate.*ambiguous=0' "$WORK/replay-untrusted.err" \
  || fail "certificate refusal not logged as unambiguous"
if grep -q check_failed "$WORK/replay-untrusted.err"; then fail "landed-check after a TLS refusal"; fi
"$CLI" replay --clickhouse-url "$HTTPS" --clickhouse-ca-file "$CA" --spool-dir "$WORK/s" \
  --compression gzip --batch-rows 1000 --timeout-ms 120000 > /dev/null
expect_eq "rows over https (gzip)" "$(q 'SELECT count() FROM llm_requests')" "3000"
expect_eq "distinct request ids" "$(q 'SELECT uniqExact(request_id) FROM llm_requests')" "3000"
"$DRIVER" --no-ship --spool-dir "$WORK/s2" --count 500 --first 3000 > /dev/null
"$CLI" replay --clickhouse-url "$HTTPS" --clickhouse-ca-file "$CA" --spool-dir "$WORK/s2" \
  --compression none --timeout-ms 120000 > /dev/null
expect_eq "rows over https (uncompressed)" "$(q 'SELECT uniqExact(request_id) FROM llm_requests')" "3500"
"$CLI" usage --clickhouse-url "$HTTPS" --clickhouse-ca-file "$CA" --user user-3 \
  | grep -q "^total	requests=" || fail "usage over https"
grep -q "SSL\|certificate" "$WORK/untrusted.err" || fail "the refusal does not say why (certificate)"
echo PASS
