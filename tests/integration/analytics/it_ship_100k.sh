#!/usr/bin/env bash
# 100k records -> exactly 100k rows, every field equal to what was enqueued (compared
# field by field against the driver's --expect file), bodies in their own table, the daily
# rollup consistent with the rows; through recycled spool segments.
source "$(dirname "$0")/lib.sh"
ch_start
"$CLI" migrate --clickhouse-url "$URL" >/dev/null
N=100000
# gzip forced: on loopback the default (auto) sends uncompressed, which the other tests cover.
# Paced, with small batches and 4 MiB segments, so segments are acknowledged while records
# still come and later segments are recycled files (spool format 2): every field must
# still arrive once, exactly as enqueued.
"$DRIVER" --clickhouse-url "$URL" --spool-dir "$WORK/spool" --count $N --compression gzip \
  --rate 50000 --batch-rows 5000 --segment-bytes 4194304 \
  --expect "$WORK/expect.jsonl" > "$WORK/driver.out"
cat "$WORK/driver.out"
grep -q "drained=1" "$WORK/driver.out" || fail "driver did not drain"
grep -Eq " recycled=[1-9]" "$WORK/driver.out" || fail "no segment was recycled"
expect_eq "rows" "$(q 'SELECT count() FROM llm_requests')" "$N"
expect_eq "distinct request ids" "$(q 'SELECT uniqExact(request_id) FROM llm_requests')" "$N"
expect_eq "bodies" "$(q 'SELECT count() FROM llm_request_bodies')" "$N"
expect_eq "rollup requests" "$(q 'SELECT sum(requests) FROM llm_usage_daily')" "$N"
expect_eq "rollup cost = row cost" \
  "$(q 'SELECT sum(cost_nano_usd) FROM llm_usage_daily')" \
  "$(q 'SELECT sum(estimated_cost_nano_usd) FROM llm_requests')"
q "SELECT r.request_id, stream_id, user_id, conversation_id, agent_id, provider_config_id, provider, model,
   has_temperature, temperature, has_max_tokens, max_tokens, stream, b.request_messages, b.request_params,
   b.response_content, finish_reason, prompt_tokens, completion_tokens, cached_tokens, total_tokens,
   estimated_cost_nano_usd, usage_source, price_missing, start_time_ms, end_time_ms, duration_ms,
   time_to_first_token_ms, status, error_message, metadata
   FROM llm_requests AS r ANY INNER JOIN (SELECT request_id, request_messages, request_params, response_content FROM llm_request_bodies) AS b USING request_id
   ORDER BY request_id FORMAT JSONEachRow" > "$WORK/got.jsonl"
$PY - "$WORK/expect.jsonl" "$WORK/got.jsonl" <<'PY'
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
echo PASS
