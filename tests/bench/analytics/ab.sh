#!/usr/bin/env bash
# tests/bench/analytics/ab.sh SOURCE_DIR REPS N ARM [ARM...]
#   ARM = LABEL=BUILD_DIR[:FLAGS]   e.g.  gzip=/w/build-sp:--compression=gzip
#                                         old=/tmp/before/build:--no-gzip
#   FLAGS (space-separated, one shell word each; write --flag=value) go to both
#   `llmgate-analytics replay` and `ship_driver`.
#   Env: RATES="30000 100000" adds, per arm, an end-to-end step paced at each rate (records
#   enqueued at that many per second, as a gateway's finished calls would arrive): its line
#   gives the rows/s reached and the process CPU as a share of one core over the run (the
#   issue's CPU goal: under 10% of a core at ClickHouse's ingest rate), and that of the
#   shipper's own two threads (without the driver's pacing wake-ups and enqueue calls;
#   equal to the shipping work when no record took the overflow path); PACE_ARMS="a b" limits
#   them to those arms (a build from before ship_driver had --rate). PACE_N (default N)
#   records per paced step; STEADY_MS=5000 adds steady_pct, the shipper threads' CPU from
#   that long after the first enqueue to the last one (ship_driver --steady-after-ms: the
#   cost of the rate without start-up, ~0.5 point of a 10 s run's figure, and the drain;
#   a build before 4ad9a37 lacks the flag).
#   PEER_RB=1 (the default; 0 = not) adds a second peer, peer-rb: the same rows as
#   RowBinary (exported by ClickHouse itself from a copy table), POSTed with curl in the
#   same 50k-row files: the peer of the shipper's default format (summary: ratios to it).
#   E2E=0 skips the end-to-end steps, REPLAY=0 the replays; SHOW=1 prints ship_driver's
#   timing and stats lines; E2E_FLAGS (default
#   --premake) go to ship_driver only: the records are made before its clock starts, and
#   its CPU is the whole process's from the first enqueue to drained (all shipping work:
#   the producer's enqueues and overflow spooling, and the shipper thread). E2E_FLAGS=
#   (empty) gives the older figure: records made while enqueueing, shipper thread's CPU.
#
# Same-run A/B of the shipper against ClickHouse's own ingest (analytics/README.md,
# "Performance against the issue 5 goals"). The machine is shared, so absolute figures
# swing; this interleaves, per repetition: ClickHouse ingesting the N rows POSTed by curl
# (50k-row JSONEachRow files, uncompressed), `llmgate-analytics replay` of the same spool
# with each ARM, and `ship_driver` end to end with each ARM. Each line gives rows/s, our CPU
# (replay: process user+sys; end to end: the shipper thread), CPU per row, ClickHouse's
# CPU over the step (user+sys of the server process) and the 1-minute load average; the
# summary gives medians and ratios to the curl peer of the same repetition. Nothing
# asserted. Builds: Release, targets llmgate-analytics and ship_driver (a before-build can
# be made from `git archive <commit>` into a scratch directory).
set -euo pipefail
SRC=${1:?source dir}; REPS=${2:?reps}; N=${3:?rows}; shift 3
[ $# -ge 1 ] || { echo "usage: ab.sh SOURCE_DIR REPS N LABEL=BUILD[:FLAGS]..." >&2; exit 2; }
declare -A BUILD FLAGS
LABELS=()
for a in "$@"; do
  l=${a%%=*}; rest=${a#*=}
  BUILD[$l]=${rest%%:*}
  FLAGS[$l]=""; [ "$rest" != "${rest#*:}" ] && FLAGS[$l]=${rest#*:}
  LABELS+=("$l")
done
FIRST=${BUILD[${LABELS[0]}]}
CHS=$SRC/tests/integration/clickhouse
W=$(mktemp -d /tmp/lg-bench-ab.XXXXXX)
trap '"$CHS/stop.sh" "$W/ch" -9 >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
line=$("$CHS/start.sh" "$W/ch"); URL=${line#clickhouse }
CHPID=$(cat "$W/ch/pid")
q() { curl -sS --fail-with-body "$URL/" --data-binary "$1"; }
source "$SRC/tests/bench/analytics/bench_lib.sh"
ch_cpu() { awk '{print ($14 + $15) / 100}' "/proc/$CHPID/stat"; }
reset_schema() {
  for t in llm_requests_mv llm_request_bodies_mv llm_usage_daily_mv llm_requests \
           llm_request_bodies llm_usage_daily llm_ingest schema_migrations; do
    q "DROP TABLE IF EXISTS $t"
  done
  "$FIRST/bin/llmgate-analytics" migrate --clickhouse-url "$URL" >/dev/null
}
"$FIRST/tests/ship_driver" --no-ship --spool-dir "$W/spool0" --count "$N" \
  --spool-max-bytes 8000000000 --expect "$W/rows.jsonl" >/dev/null
mkdir -p "$W/json"; split -l 50000 -d -a 4 "$W/rows.jsonl" "$W/json/c"
ROW_BYTES=$(( $(stat -c %s "$W/rows.jsonl") / N ))
# Only what later steps read stays: this VM's memory is elastic (virtio balloon, free page
# reporting), and with 7 GB of fresh setup files in the page cache the end-to-end step's
# spool writes (2.4 GB of new page cache) ran 2x slower in the kernel's copy into the page
# cache (perf: copy_folio_from_iter_atomic 3% -> 36% of the process), in every arm.
rm -f "$W/rows.jsonl"
[ "${REPLAY:-1}" != 0 ] || rm -rf "$W/spool0"
if [ "${PEER_RB:-1}" = 1 ]; then
  reset_schema
  rowbinary_files "$W/json" "$W/rb" "$N" 50000
  echo "== peer-rb: RowBinary, $(( $(cat "$W"/rb/c* | wc -c) / N )) bytes/row"
fi
echo "== clickhouse $(q 'SELECT version()'), N=$N, $ROW_BYTES bytes/row, $(nproc) cores"
for l in "${LABELS[@]}"; do echo "== arm $l: ${BUILD[$l]} flags: ${FLAGS[$l]:-(none)}"; done
STEPS=(peer)
[ "${PEER_RB:-1}" = 1 ] && STEPS+=(peer-rb)
[ "${REPLAY:-1}" = 0 ] || for l in "${LABELS[@]}"; do STEPS+=("replay:$l"); done
[ "${E2E:-1}" = 0 ] || for l in "${LABELS[@]}"; do STEPS+=("e2e:$l"); done
for rt in ${RATES:-}; do for l in ${PACE_ARMS:-${LABELS[@]}}; do STEPS+=("pace$rt:$l"); done; done
# ship_driver end to end with arm |b| and its flags |fl| plus "$@": sets out, c0/c1
# (ClickHouse's CPU around it), t0/t1 (0 .. enqueue to drained).
drive() {
  c0=$(ch_cpu)
  out=$("$b/tests/ship_driver" --clickhouse-url "$URL" --spool-dir "$W/ds" --count "${cnt:-$N}" \
        --drain-ms 3600000 --spool-max-bytes 8000000000 "${fl[@]}" "$@")
  c1=$(ch_cpu)
  [ "${SHOW:-0}" = 0 ] || echo "$out" | grep -E '^(timing|stats)'
  t0=0; t1=$(field enqueue_to_drained_s)
}
# The value of " NAME=" in ship_driver's output.
field() { echo "$out" | sed -n "s/.*[ ]$1=\([0-9.]*\).*/\1/p"; }
# The host's speed at each repetition: identical binaries' CPU figures move with it by
# 30% and more on this shared machine (session 6: paced 30k at 8.4-8.9% in one hour,
# 10-13% in the next, same builds), so each repetition prints the first arm's
# `bench_enqueue encode` figures (pure user-space encoding, warm and cold records).
calib() {
  [ -x "$FIRST/tests/bench_enqueue" ] || return 0
  "$FIRST/tests/bench_enqueue" encode | awk -v r="$1" '
    / realistic JSONEachRow/ { sub(/.*ns_per_row=/, ""); sub(/ .*/, ""); w = $0 }
    /realistic-cold JSONEachRow/ { sub(/.*ns_per_row=/, ""); sub(/ .*/, ""); c = $0 }
    / realistic RowBinary/ { sub(/.*ns_per_row=/, ""); sub(/ .*/, ""); rw = $0 }
    /realistic-cold RowBinary/ { sub(/.*ns_per_row=/, ""); sub(/ .*/, ""); rc = $0 }
    END { printf "rep=%s calib encode_warm_ns=%s encode_cold_ns=%s rowbinary_warm_ns=%s rowbinary_cold_ns=%s\n", r, w, c, rw, rc }'
}
for r in $(seq 1 "$REPS"); do
  calib "$r"
  for v in "${STEPS[@]}"; do
    reset_schema; rm -rf "$W/sp" "$W/ds"
    l=${v#*:}; b=${BUILD[$l]:-}; read -r -a fl <<< "${FLAGS[$l]:-}"; tcpu=0; cnt=$N; steady=-1
    case $v in
      peer)
        c0=$(ch_cpu); t0=$(date +%s.%N)
        for f in "$W"/json/c*; do
          curl -sS --fail-with-body "$URL/?query=INSERT%20INTO%20llm_ingest%20FORMAT%20JSONEachRow&input_format_skip_unknown_fields=1" --data-binary @"$f"
        done
        t1=$(date +%s.%N); c1=$(ch_cpu); cpu=0;;
      peer-rb)
        c0=$(ch_cpu); t0=$(date +%s.%N)
        for f in "$W"/rb/c*; do
          curl -sS --fail-with-body "$URL/?query=INSERT%20INTO%20llm_ingest%20FORMAT%20RowBinary" --data-binary @"$f"
        done
        t1=$(date +%s.%N); c1=$(ch_cpu); cpu=0;;
      replay:*)
        cp -r "$W/spool0" "$W/sp"; sync; c0=$(ch_cpu); t0=$(date +%s.%N)
        cpu=$( { /usr/bin/time -f "%U %S" "$b/bin/llmgate-analytics" replay --clickhouse-url "$URL" \
                 --spool-dir "$W/sp" --timeout-ms 3600000 "${fl[@]}" >/dev/null; } 2>&1 | tail -1 | awk '{print $1 + $2}')
        t1=$(date +%s.%N); c1=$(ch_cpu);;
      e2e:*)
        read -r -a ef <<< "${E2E_FLAGS---premake}"
        drive "${ef[@]}"
        key=shipper_cpu_s
        case " ${ef[*]} " in *" --premake "*) key=process_cpu_s;; esac
        cpu=$(field "$key");;
      pace*)
        rt=${v%%:*}; rt=${rt#pace}
        cnt=${PACE_N:-$N}; sf=()
        [ "${STEADY_MS:-0}" = 0 ] || sf=(--steady-after-ms "$STEADY_MS")
        drive --premake --rate "$rt" "${sf[@]}"
        cpu=$(field process_cpu_s); tcpu=$(field shipper_cpu_s)
        [ "${STEADY_MS:-0}" = 0 ] || steady=$(field steady_cpu_pct);;
    esac
    got=$(q 'SELECT count() FROM llm_requests')
    [ "$got" = "$cnt" ] || echo "WARNING: $v landed $got rows, expected $cnt"
    /usr/bin/python3 -c "import sys; n=int(sys.argv[1]); a,b,c,c0,c1=map(float,sys.argv[2:7]); print('rep=%s %-14s rows_per_s=%.0f cpu_s=%.2f cpu_us_per_row=%.1f ch_cpu_s=%.2f load=%s core_pct=%.1f threads_pct=%.1f steady_pct=%s' % (sys.argv[7], sys.argv[8], n/(b-a), c, 1e6*c/n, c1-c0, open('/proc/loadavg').read().split()[0], 100*c/(b-a), 100*float(sys.argv[9])/(b-a), sys.argv[10]))" \
      "$cnt" "$t0" "$t1" "$cpu" "$c0" "$c1" "$r" "$v" "$tcpu" "$steady" | tee -a "$W/results"
  done
done
/usr/bin/python3 - "$W/results" <<'PY'
import re, statistics, sys
rows = {}
pct = {}
tpct = {}
spct = {}
loads = []
for line in open(sys.argv[1]):
    m = re.match(r'rep=(\d+) (\S+)\s+rows_per_s=(\d+) cpu_s=\S+ cpu_us_per_row=(\S+) ch_cpu_s=(\S+) load=(\S+) core_pct=(\S+) threads_pct=(\S+) steady_pct=(\S+)', line)
    if m:
        rows.setdefault(m.group(2), []).append((int(m.group(1)), float(m.group(3)), float(m.group(4)), float(m.group(5))))
        pct.setdefault(m.group(2), []).append(float(m.group(7)))
        tpct.setdefault(m.group(2), []).append(float(m.group(8)))
        if float(m.group(9)) >= 0:
            spct.setdefault(m.group(2), []).append(float(m.group(9)))
        loads.append(float(m.group(6)))
peer = {r: v for r, v, _, _ in rows.get('peer', [])}
peer_rb = {r: v for r, v, _, _ in rows.get('peer-rb', [])}
print('== medians (load average %.2f-%.2f)' % (min(loads), max(loads)))
for k, vals in rows.items():
    ratios = [v / peer[r] for r, v, _, _ in vals if peer.get(r)]
    rb_ratios = [v / peer_rb[r] for r, v, _, _ in vals if peer_rb.get(r)]
    print('%-14s rows/s %8.0f  ratio to curl peer %.2fx%s  cpu %.1f us/row  clickhouse cpu %.2f s%s' % (
        k, statistics.median(v for _, v, _, _ in vals), statistics.median(ratios) if ratios else 0,
        ' (to peer-rb %.2fx)' % statistics.median(rb_ratios) if rb_ratios else '',
        statistics.median(c for _, _, c, _ in vals), statistics.median(h for _, _, _, h in vals),
        '  our cpu %.1f%% of a core (the shipper\'s threads %.1f%%%s)' % (
            statistics.median(pct[k]), statistics.median(tpct[k]),
            '; steady window %.1f%%, range %.1f-%.1f' % (statistics.median(spct[k]), min(spct[k]),
                                                      max(spct[k])) if k in spct else '')
        if k.startswith('pace') else ''))
PY
