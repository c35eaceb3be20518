#!/usr/bin/env bash
# tests/bench/analytics/run.sh BUILD_DIR SOURCE_DIR [full|smoke]
#
# Shipper benchmarks (issue 5), all figures printed, nothing asserted:
#  1. enqueue cost, p50/p99/p99.9 ns with 1, 2, 8 producers (bench_enqueue), and the JSON
#     row encoding rate;
#  2. ClickHouse's own ingest of the same N rows, in the same run, on a private server:
#     the encoded JSONEachRow file POSTed with curl in 100k-row batches, the same file
#     through clickhouse-client (native protocol), and the same rows as RowBinary (the
#     format choice: server time and bytes of each);
#  3. the shipper: N records (made beforehand) enqueued at once -> all acknowledged by
#     ClickHouse (rows/s, and the process's CPU as a share of one core over that time);
#     3b. the same paced at 30000 and 150000 records/s (300k records; smoke: N): rows/s,
#     CPU per row and the process's CPU as a share of one core (issue 5's CPU goal);
#  4. spool replay after an outage: N records spooled with ClickHouse away, then
#     `llmgate-analytics replay` (rows/s).
# full: N = 1,000,000 (use an optimized build without sanitizers for real figures:
#   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release && cmake --build build-rel
#   --target ship_driver bench_enqueue llmgate-analytics). smoke: N = 20,000 (ctest).
set -euo pipefail
BUILD=${1:?build dir}
SRC=${2:?source dir}
MODE=${3:-full}
N=1000000; PER=2000000; CHUNK=100000
if [ "$MODE" = smoke ]; then N=20000; PER=20000; CHUNK=5000; fi
CHS=$SRC/tests/integration/clickhouse
WORK=$(mktemp -d /tmp/lg-bench-analytics.XXXXXX)
CH=$WORK/ch
trap '"$CHS/stop.sh" "$CH" -9 >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
DRIVER=$BUILD/tests/ship_driver
CLI=$BUILD/bin/llmgate-analytics
now() { date +%s.%N; }
rate() { /usr/bin/python3 -c "import sys; n,a,b=map(float,sys.argv[1:]); print('%.0f' % (n/(b-a)))" "$@"; }

echo "== 1. enqueue cost"
"$BUILD/tests/bench_enqueue" "$PER" "$WORK/enqspool"
rm -rf "$WORK"/enqspool-*

line=$("$CHS/start.sh" "$CH"); URL=${line#clickhouse }
q() { curl -sS --fail-with-body "$URL/" --data-binary "$1"; }
source "$(dirname "$0")/bench_lib.sh"
echo "== clickhouse $(q 'SELECT version()') at $URL, N=$N rows"
reset_schema() {
  for t in llm_requests_mv llm_request_bodies_mv llm_usage_daily_mv llm_requests \
           llm_request_bodies llm_usage_daily llm_ingest schema_migrations bench_copy; do
    q "DROP TABLE IF EXISTS $t"
  done
  "$CLI" migrate --clickhouse-url "$URL" >/dev/null
}
reset_schema

echo "== generating $N rows (the same records the shipper will send)"
"$DRIVER" --no-ship --spool-dir "$WORK/gen" --count "$N" --expect "$WORK/rows.jsonl" >/dev/null 2>&1 || true
rm -rf "$WORK/gen"
bytes=$(stat -c %s "$WORK/rows.jsonl")
echo "rows.jsonl: $bytes bytes, $((bytes / N)) bytes/row"
mkdir -p "$WORK/json"
split -l "$CHUNK" -d -a 4 "$WORK/rows.jsonl" "$WORK/json/c"

echo "== 2a. clickhouse ingest, JSONEachRow, curl, $CHUNK-row batches"
t0=$(now)
for f in "$WORK"/json/c*; do
  curl -sS --fail-with-body "$URL/?query=INSERT%20INTO%20llm_ingest%20FORMAT%20JSONEachRow&input_format_skip_unknown_fields=1" --data-binary @"$f"
done
t1=$(now)
[ "$(q 'SELECT count() FROM llm_requests')" = "$N" ] || { echo "peer JSON rows mismatch"; exit 1; }
PEER_JSON=$(rate "$N" "$t0" "$t1")
echo "peer_json_rows_per_s=$PEER_JSON"

echo "== 2c. clickhouse-client bulk insert of the same file (native protocol; the client parses; $CHUNK-row blocks)"
reset_schema
t0=$(now)
"$CHS/client.sh" "$CH" --query "INSERT INTO llm_ingest FORMAT JSONEachRow" --input_format_skip_unknown_fields=1 --max_insert_block_size="$CHUNK" < "$WORK/rows.jsonl"
t1=$(now)
[ "$(q 'SELECT count() FROM llm_requests')" = "$N" ] || { echo "clickhouse-client rows mismatch"; exit 1; }
PEER_CLIENT=$(rate "$N" "$t0" "$t1")
echo "peer_clickhouse_client_rows_per_s=$PEER_CLIENT"
reset_schema

echo "== 2b. clickhouse ingest, RowBinary, curl, $CHUNK-row batches"
rowbinary_files "$WORK/json" "$WORK/rb" "$N" "$CHUNK"
rbbytes=$(cat "$WORK"/rb/* | wc -c)
echo "RowBinary: $rbbytes bytes, $((rbbytes / N)) bytes/row"
reset_schema
t0=$(now)
for f in "$WORK"/rb/*; do
  curl -sS --fail-with-body "$URL/?query=INSERT%20INTO%20llm_ingest%20FORMAT%20RowBinary" --data-binary @"$f"
done
t1=$(now)
[ "$(q 'SELECT count() FROM llm_requests')" = "$N" ] || { echo "peer RowBinary rows mismatch"; exit 1; }
PEER_RB=$(rate "$N" "$t0" "$t1")
echo "peer_rowbinary_rows_per_s=$PEER_RB"
rm -rf "$WORK/rb" "$WORK/json" "$WORK/rows.jsonl" # fresh page cache slows the steps after (ab.sh)

echo "== 3. the shipper (JSONEachRow, default batching, compression auto: none on this loopback server)"
reset_schema
"$DRIVER" --clickhouse-url "$URL" --spool-dir "$WORK/ship" --count "$N" --drain-ms 3600000 --spool-max-bytes 8000000000 --premake | tee "$WORK/ship.out"
[ "$(q 'SELECT count() FROM llm_requests')" = "$N" ] || { echo "shipper rows mismatch"; exit 1; }
total_s=$(sed -n 's/.*enqueue_to_drained_s=\([0-9.]*\).*/\1/p' "$WORK/ship.out")
cpu_s=$(sed -n 's/.* process_cpu_s=\([0-9.]*\).*/\1/p' "$WORK/ship.out")
SHIP=$(/usr/bin/python3 -c "import sys; print('%.0f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$N" "$total_s")
CPU=$(/usr/bin/python3 -c "import sys; print('%.1f' % (100 * float(sys.argv[1]) / float(sys.argv[2])))" "$cpu_s" "$total_s")
rm -rf "$WORK/ship"

echo "== 3b. the shipper paced: records arrive at a set rate (a gateway's finished calls), all"
echo "      CPU of the process from the first enqueue to drained, as a share of one core"
PACE_N=$N; [ "$MODE" = smoke ] || PACE_N=300000
pace() {
  reset_schema; rm -rf "$WORK/pace"
  out=$("$DRIVER" --clickhouse-url "$URL" --spool-dir "$WORK/pace" --count "$PACE_N" --drain-ms 3600000 \
        --spool-max-bytes 8000000000 --premake --rate "$1")
  [ "$(q 'SELECT count() FROM llm_requests')" = "$PACE_N" ] || { echo "paced rows mismatch"; exit 1; }
  /usr/bin/python3 -c "import re,sys; o=sys.argv[1]; t=float(re.search(r'enqueue_to_drained_s=([0-9.]+)',o).group(1)); c=float(re.search(r' process_cpu_s=([0-9.]+)',o).group(1)); n=int(sys.argv[2]); print('%.0f rows/s, %.1f us/row, %.1f%% of one core' % (n/t, 1e6*c/n, 100*c/t))" "$out" "$PACE_N"
}
PACE_ISSUE=$(pace 30000)
echo "paced 30000/s (the issue's measured ClickHouse rate): $PACE_ISSUE"
PACE_OVER=$(pace 150000)
echo "paced 150000/s (above this server's ingest rate: a backlog builds): $PACE_OVER"
rm -rf "$WORK/pace"

echo "== 4. spool replay after an outage"
reset_schema
"$DRIVER" --no-ship --spool-dir "$WORK/outage" --count "$N" --spool-max-bytes 8000000000 >/dev/null
t0=$(now)
"$CLI" replay --clickhouse-url "$URL" --spool-dir "$WORK/outage" --timeout-ms 3600000
t1=$(now)
[ "$(q 'SELECT count() FROM llm_requests')" = "$N" ] || { echo "replay rows mismatch"; exit 1; }
REPLAY=$(rate "$N" "$t0" "$t1")

echo
echo "== summary ($MODE, N=$N, $(nproc) cores, clickhouse $(q 'SELECT version()'))"
echo "clickhouse ingest JSONEachRow (curl, ${CHUNK}-row batches): $PEER_JSON rows/s"
echo "clickhouse ingest RowBinary   (curl, ${CHUNK}-row batches): $PEER_RB rows/s"
echo "clickhouse-client bulk insert (JSONEachRow file, native):   $PEER_CLIENT rows/s"
echo "shipper end to end (enqueue -> acknowledged):              $SHIP rows/s ($(/usr/bin/python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$SHIP" "$PEER_JSON")x the JSON peer), process CPU ${CPU}% of one core (all records enqueued at once)"
echo "spool replay after outage:                                 $REPLAY rows/s"
echo "shipper paced at 30000 records/s ($PACE_N rows):              $PACE_ISSUE"
echo "shipper paced at 150000 records/s ($PACE_N rows):             $PACE_OVER"
