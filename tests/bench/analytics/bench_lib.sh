# Shared by ab.sh and run.sh (sourced; both define q and URL).
# rowbinary_files JSON_DIR OUT_DIR N CHUNK: the JSONEachRow files of JSON_DIR (JSON_DIR/c*)
# as RowBinary files of CHUNK rows each (OUT_DIR/cNNNN; N rows in all), exported by
# ClickHouse itself from a copy table, in llm_ingest's column order: the peer input for
# ClickHouse's own RowBinary ingest.
rowbinary_files() {
  local json=$1 out=$2 n=$3 chunk=$4 f k=0
  q "DROP TABLE IF EXISTS bench_copy"
  q "CREATE TABLE bench_copy AS llm_ingest ENGINE = MergeTree() ORDER BY request_id"
  for f in "$json"/c*; do
    curl -sS --fail-with-body "$URL/?query=INSERT%20INTO%20bench_copy%20FORMAT%20JSONEachRow&input_format_skip_unknown_fields=1" --data-binary @"$f"
  done
  mkdir -p "$out"
  while [ $((k * chunk)) -lt "$n" ]; do
    q "SELECT * FROM bench_copy ORDER BY request_id LIMIT $((k * chunk)), $chunk FORMAT RowBinary" > "$out/c$(printf %04d $k)"
    k=$((k + 1))
  done
  q "DROP TABLE bench_copy"
}
