#!/usr/bin/env bash
# tests/bench/analytics/ab.sh BEFORE_BUILD AFTER_BUILD SOURCE_DIR [REPS] [N]
#
# Same-run A/B of the shipper against ClickHouse's own ingest (analytics/README.md,
# "Performance against the issue 5 goals"). The machine is shared, so absolute figures
# swing; this interleaves, per repetition: ClickHouse ingesting the N rows POSTed by curl
# (50k-row JSONEachRow files, uncompressed), `llmgate-analytics replay` of the same spool
# with the BEFORE and the AFTER build, and `ship_driver` end to end with each build. Each
# line gives rows/s, CPU (replay: process user+sys; end to end: the shipper thread) and
# CPU per row; the summary gives medians and ratios to the curl peer. Nothing asserted.
# Builds: Release, targets llmgate-analytics and ship_driver (a BEFORE build can be made
# from `git archive <commit>` into a scratch directory).
set -euo pipefail
BEFORE=${1:?before build dir}; AFTER=${2:?after build dir}; SRC=${3:?source dir}
REPS=${4:-5}; N=${5:-100000}
CHS=$SRC/tests/integration/clickhouse
W=$(mktemp -d /tmp/lg-bench-ab.XXXXXX)
trap '"$CHS/stop.sh" "$W/ch" -9 >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
line=$("$CHS/start.sh" "$W/ch"); URL=${line#clickhouse }
q() { curl -sS --fail-with-body "$URL/" --data-binary "$1"; }
reset_schema() {
  for t in llm_requests_mv llm_request_bodies_mv llm_usage_daily_mv llm_requests \
           llm_request_bodies llm_usage_daily llm_ingest schema_migrations; do
    q "DROP TABLE IF EXISTS $t"
  done
  "$AFTER/bin/llmgate-analytics" migrate --clickhouse-url "$URL" >/dev/null
}
"$AFTER/tests/ship_driver" --no-ship --spool-dir "$W/spool0" --count "$N" \
  --spool-max-bytes 8000000000 --expect "$W/rows.jsonl" >/dev/null
mkdir -p "$W/json"; split -l 50000 -d -a 4 "$W/rows.jsonl" "$W/json/c"
echo "== clickhouse $(q 'SELECT version()'), N=$N, $(( $(stat -c %s "$W/rows.jsonl") / N )) bytes/row, $(nproc) cores"
for r in $(seq 1 "$REPS"); do
  for v in peer replay:before replay:after e2e:before e2e:after; do
    reset_schema; rm -rf "$W/sp" "$W/ds"
    b=$BEFORE; [ "${v#*:}" = after ] && b=$AFTER
    case $v in
      peer)
        t0=$(date +%s.%N)
        for f in "$W"/json/c*; do
          curl -sS --fail-with-body "$URL/?query=INSERT%20INTO%20llm_ingest%20FORMAT%20JSONEachRow&input_format_skip_unknown_fields=1" --data-binary @"$f"
        done
        t1=$(date +%s.%N); cpu=0;;
      replay:*)
        cp -r "$W/spool0" "$W/sp"; sync; t0=$(date +%s.%N)
        cpu=$( { /usr/bin/time -f "%U %S" "$b/bin/llmgate-analytics" replay --clickhouse-url "$URL" \
                 --spool-dir "$W/sp" --timeout-ms 3600000 >/dev/null; } 2>&1 | tail -1 | awk '{print $1 + $2}')
        t1=$(date +%s.%N);;
      e2e:*)
        out=$("$b/tests/ship_driver" --clickhouse-url "$URL" --spool-dir "$W/ds" --count "$N" \
              --drain-ms 3600000 --spool-max-bytes 8000000000)
        t0=0; t1=$(echo "$out" | sed -n 's/.*enqueue_to_drained_s=\([0-9.]*\).*/\1/p')
        cpu=$(echo "$out" | sed -n 's/.*shipper_cpu_s=\([0-9.]*\).*/\1/p');;
    esac
    got=$(q 'SELECT count() FROM llm_requests')
    [ "$got" = "$N" ] || echo "WARNING: $v landed $got rows, expected $N"
    /usr/bin/python3 -c "import sys; n=int(sys.argv[1]); a,b,c=map(float,sys.argv[2:5]); print('rep=%s %-14s rows_per_s=%.0f cpu_s=%.2f cpu_us_per_row=%.1f load=%s' % (sys.argv[5], sys.argv[6], n/(b-a), c, 1e6*c/n, open('/proc/loadavg').read().split()[0]))" \
      "$N" "$t0" "$t1" "$cpu" "$r" "$v" | tee -a "$W/results"
  done
done
/usr/bin/python3 - "$W/results" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r'rep=(\d+) (\S+)\s+rows_per_s=(\d+) cpu_s=\S+ cpu_us_per_row=(\S+)', line)
    if m:
        rows.setdefault(m.group(2), []).append((int(m.group(1)), float(m.group(3)), float(m.group(4))))
peer = {r: v for r, v, _ in rows.get('peer', [])}
print('== medians')
for k, vals in rows.items():
    ratios = [v / peer[r] for r, v, _ in vals if peer.get(r)]
    print('%-14s rows/s %8.0f  ratio to curl peer %.2fx  cpu %.1f us/row' % (
        k, statistics.median(v for _, v, _ in vals), statistics.median(ratios) if ratios else 0,
        statistics.median(c for _, _, c in vals)))
PY
