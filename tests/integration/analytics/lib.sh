#!/usr/bin/env bash
# Shared helpers for the analytics integration tests (sourced). Each it_*.sh is run by ctest
# as: it_x.sh BUILD_DIR SOURCE_DIR. It gets a private temp dir ($WORK), a ClickHouse of its
# own (ch_start), and cleanup on exit.
set -euo pipefail
BUILD=${1:?build dir}
SRC=${2:?source dir}
CHDIR_SCRIPTS=$SRC/tests/integration/clickhouse
DRIVER=$BUILD/tests/ship_driver
CLI=$BUILD/bin/llmgate-analytics
WORK=$(mktemp -d /tmp/lg-analytics-it.XXXXXX)
CH=$WORK/ch
BG_PIDS=()

cleanup() {
  local rc=$?
  for p in "${BG_PIDS[@]+"${BG_PIDS[@]}"}"; do kill -9 "$p" 2>/dev/null || true; done
  "$CHDIR_SCRIPTS/stop.sh" "$CH" -9 >/dev/null 2>&1 || true
  if [ $rc -eq 0 ]; then rm -rf "$WORK"; else echo "test failed (rc=$rc); files kept in $WORK" >&2; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

ch_start() {
  local line
  line=$("$CHDIR_SCRIPTS/start.sh" "$CH")
  URL=${line#clickhouse }
}
ch_stop() { "$CHDIR_SCRIPTS/stop.sh" "$CH" "${1:-}"; }

# q SQL: runs one statement over HTTP, prints the result (TSV).
q() { curl -sS --fail-with-body "$URL/" --data-binary "$1"; }

# wait_for DEADLINE_S CMD...: polls CMD until it succeeds or the deadline passes.
wait_for() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# expect_eq WHAT GOT WANT
expect_eq() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; echo "ok: $1 = $3"; }

PY=/usr/bin/python3

# expect_fields EXPECT_JSONL: every row of llm_requests (with its bodies from
# llm_request_bodies) equals, field by field, the JSON line ship_driver --expect wrote for
# it (files may be concatenated); the counts match.
expect_fields() {
  q "SELECT r.request_id, stream_id, user_id, conversation_id, agent_id, provider_config_id, provider, model,
     has_temperature, temperature, has_max_tokens, max_tokens, stream, b.request_messages, b.request_params,
     b.response_content, finish_reason, prompt_tokens, completion_tokens, cached_tokens, total_tokens,
     estimated_cost_nano_usd, usage_source, price_missing, start_time_ms, end_time_ms, duration_ms,
     time_to_first_token_ms, status, error_message, metadata
     FROM llm_requests AS r ANY INNER JOIN (SELECT request_id, request_messages, request_params, response_content FROM llm_request_bodies) AS b USING request_id
     ORDER BY request_id FORMAT JSONEachRow" > "$WORK/got.jsonl"
  $PY - "$1" "$WORK/got.jsonl" <<'PY'
import json, sys
exp = [json.loads(l) for l in open(sys.argv[1], encoding='utf-8')]
got = [json.loads(l) for l in open(sys.argv[2], encoding='utf-8')]
exp.sort(key=lambda r: r['request_id'])
assert len(exp) == len(got), (len(exp), len(got))
bad = 0
for e, g in zip(exp, got):
    for k, v in e.items():
        gv = g.get(k)
        if isinstance(v, float) or k == 'temperature':
            ok = abs(float(gv) - float(v)) < 1e-12
        elif isinstance(v, int):
            ok = int(gv) == v   # 64-bit integers arrive quoted
        else:
            ok = gv == v
        if not ok:
            bad += 1
            if bad < 5:
                print("mismatch", e['request_id'], k, repr(v)[:80], repr(gv)[:80])
print("compared", len(exp), "rows,", len(exp[0]), "fields each; mismatches:", bad)
sys.exit(1 if bad else 0)
PY
}
