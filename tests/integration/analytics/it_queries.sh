#!/usr/bin/env bash
# Each analyst query in analytics/queries returns the numbers computed independently from a
# fixture, with a duplicated batch present (so each query's dedup is exercised).
source "$(dirname "$0")/lib.sh"
ch_start
"$CLI" migrate --clickhouse-url "$URL" >/dev/null
$PY "$(dirname "$0")/queries_check.py" "$URL" "$SRC/analytics/queries"
echo PASS
