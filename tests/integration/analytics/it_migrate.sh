#!/usr/bin/env bash
# Migrations apply on a fresh server, then a second run changes nothing (idempotent), and
# a run after the schema_migrations rows are lost still succeeds (IF NOT EXISTS).
source "$(dirname "$0")/lib.sh"
ch_start
echo "server version $(q 'SELECT version()')"
expect_eq "first run" "$("$CLI" migrate --clickhouse-url "$URL")" "migrate applied=3"
schema() { q "SELECT name, engine, create_table_query FROM system.tables WHERE database = currentDatabase() ORDER BY name FORMAT TSV"; }
schema > "$WORK/s1"
expect_eq "second run" "$("$CLI" migrate --clickhouse-url "$URL")" "migrate applied=0"
schema > "$WORK/s2"
cmp "$WORK/s1" "$WORK/s2" || fail "schema changed on the second run"
expect_eq "recorded" "$(q 'SELECT count() FROM schema_migrations FINAL')" "3"
q "DROP TABLE schema_migrations"
expect_eq "re-run without history" "$("$CLI" migrate --clickhouse-url "$URL")" "migrate applied=3"
schema | grep -v '^schema_migrations' > "$WORK/s3"
grep -v '^schema_migrations' "$WORK/s1" > "$WORK/s1b"
cmp "$WORK/s1b" "$WORK/s3" || fail "schema differs after re-run"
for t in llm_ingest llm_requests llm_request_bodies llm_usage_daily; do
  expect_eq "table $t" "$(q "EXISTS TABLE $t")" "1"
done
echo PASS
