#!/usr/bin/env bash
# UsageService's C API (lg_usage: ListLogs, GetUsage, async callbacks) and the CLI's
# `usage` / `logs` against real data, with one user's rows duplicated in ClickHouse and
# injection attempts in the user id.
source "$(dirname "$0")/lib.sh"
ch_start
"$CLI" migrate --clickhouse-url "$URL" >/dev/null
N=700
"$DRIVER" --clickhouse-url "$URL" --spool-dir "$WORK/spool" --count $N > "$WORK/driver.out"
q "INSERT INTO llm_requests SELECT * FROM llm_requests WHERE user_id = 'user-3'"
expect_eq "user-3 rows incl. duplicates" "$(q "SELECT count() FROM llm_requests WHERE user_id = 'user-3'")" "200"
"$BUILD/tests/usage_api" "$URL" $N
# CLI
"$CLI" usage --clickhouse-url "$URL" --user user-3 > "$WORK/usage.out"
head -1 "$WORK/usage.out"
want_cost=$(q "SELECT sum(estimated_cost_nano_usd) FROM llm_requests FINAL WHERE user_id = 'user-3'")
usd=$($PY -c "import sys; n=int(sys.argv[1]); print('%d.%09d' % (n // 10**9, n % 10**9))" "$want_cost")
grep -q "^total	requests=100	.*cost_usd=$usd\$" "$WORK/usage.out" || fail "CLI usage total"
"$CLI" logs --clickhouse-url "$URL" --user user-3 --limit 5 > "$WORK/logs.out"
expect_eq "CLI logs lines" "$(wc -l < "$WORK/logs.out")" "5"
"$CLI" logs --clickhouse-url "$URL" --user "user-3' OR '1'='1" > "$WORK/evil.out"
expect_eq "CLI injection rows" "$(wc -l < "$WORK/evil.out")" "0"
if "$CLI" logs --clickhouse-url "$URL" --user "$(printf 'a\tb')" 2>/dev/null; then fail "control byte accepted"; fi
echo PASS
