#!/usr/bin/env bash
# Authentication: basic auth from the URL (shipper, migrate) and X-ClickHouse-User/-Key
# headers (CLI flags); a wrong password is retried, never dropped: the rows wait in the
# spool and land once the right credentials are used.
source "$(dirname "$0")/lib.sh"
ch_start
HOSTPORT=${URL#http://}
GOOD="http://llmgate:llmgate-secret@$HOSTPORT"
BAD="http://llmgate:wrong@$HOSTPORT"
"$CLI" migrate --clickhouse-url "$GOOD" | grep -q "applied=3" || fail "migrate with basic auth"
"$DRIVER" --clickhouse-url "$GOOD" --spool-dir "$WORK/s1" --count 2000 > "$WORK/d1.out"
expect_eq "rows via basic auth" "$(q 'SELECT count() FROM llm_requests')" "2000"
"$CLI" usage --clickhouse-url "$URL" --clickhouse-user llmgate --clickhouse-key llmgate-secret \
  --user user-3 | grep -q "^total	requests=286	" || fail "usage with X-ClickHouse-User/Key"
if "$CLI" usage --clickhouse-url "$URL" --clickhouse-user llmgate --clickhouse-key nope \
  --user user-3 2>/dev/null; then fail "wrong key accepted"; fi
"$DRIVER" --clickhouse-url "$BAD" --spool-dir "$WORK/s2" --count 1000 --first 2000 \
  --drain-ms 1500 > "$WORK/d2.out" 2> "$WORK/d2.err" && fail "drained with a wrong password"
grep -q '"code":193\|code=193' "$WORK/d2.err" || fail "expected ClickHouse code 193 in the log"
expect_eq "rows with a wrong password" "$(q 'SELECT count() FROM llm_requests')" "2000"
"$CLI" replay --clickhouse-url "$GOOD" --spool-dir "$WORK/s2" --timeout-ms 120000 >/dev/null
expect_eq "rows after replay with the right password" "$(q 'SELECT count() FROM llm_requests')" "3000"
echo PASS
