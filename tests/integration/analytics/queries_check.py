"""Checks analytics/queries/*.sql against a fixture loaded into a real ClickHouse.

The fixture is made here (deterministic), inserted through llm_ingest like the shipper does,
with a slice of it inserted a second time (a duplicated batch); every query must give the
numbers computed independently below from the unique records.
usage: queries_check.py CLICKHOUSE_URL QUERIES_DIR
"""
import json
import sys
import urllib.request
from collections import defaultdict
from datetime import datetime, timezone

URL, QDIR = sys.argv[1], sys.argv[2]


def q(sql, data=None):
    if data is None:
        req = urllib.request.Request(URL + "/", data=sql.encode())
    else:
        req = urllib.request.Request(URL + "/?query=" + urllib.parse.quote(sql), data=data)
    with urllib.request.urlopen(req) as r:
        return r.read().decode()


import urllib.parse  # noqa: E402

MONTHS = [1790812800000, 1793491200000]  # 2026-10-01, 2026-11-01 (UTC), ms
STATUSES = ["success", "success", "success", "error", "timeout", "cancelled"]
recs = []
for i in range(240):
    start = MONTHS[i % 2] + (i % 5) * 86400000 + i * 1000
    r = {
        "request_id": "fx-%04d" % i, "stream_id": "s%d" % i, "user_id": "u%d" % (i % 13),
        "conversation_id": "c", "agent_id": "a", "provider_config_id": "pc",
        "provider": ["openai", "anthropic", "demo"][i % 3], "model": "m%d" % (i % 4),
        "has_temperature": 1, "temperature": 0.5, "has_max_tokens": 0, "max_tokens": 0,
        "stream": i % 2, "request_messages": "[]", "request_params": "{}",
        "response_content": "x", "finish_reason": "stop",
        "prompt_tokens": 10 + i, "completion_tokens": 5 + (i * 7) % 50, "cached_tokens": 0,
        "estimated_cost_nano_usd": 1000000007 * (i % 17) + i,
        "usage_source": "estimated" if i % 5 == 0 else "reported",
        "price_missing": 1 if i % 23 == 0 else 0,
        "start_time_ms": start, "end_time_ms": start + 100 + (i * 37) % 900,
        "time_to_first_token_ms": -1 if i % 9 == 0 else 20 + (i * 13) % 400,
        "status": STATUSES[i % 6], "error_message": "", "metadata": "{}", "batch_id": "fx",
    }
    r["total_tokens"] = r["prompt_tokens"] + r["completion_tokens"]
    r["duration_ms"] = r["end_time_ms"] - r["start_time_ms"]
    recs.append(r)

body = "".join(json.dumps(r) + "\n" for r in recs).encode()
q("INSERT INTO llm_ingest FORMAT JSONEachRow", body)
dup = "".join(json.dumps(r) + "\n" for r in recs[:60]).encode()
q("INSERT INTO llm_ingest FORMAT JSONEachRow", dup)  # a batch that landed twice
assert q("SELECT count() FROM llm_requests").strip() == "300"


def day(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d")


def month(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y%m")


def qexact(vals, level):
    # ClickHouse quantileExact: the element at position floor(level * n) of the sorted
    # values (clamped to the last one).
    v = sorted(vals)
    return v[min(int(level * len(v)), len(v) - 1)]


def run(name):
    sql = open("%s/%s.sql" % (QDIR, name)).read()
    out = q(sql + "\nFORMAT TSV")
    return [line.split("\t") for line in out.splitlines()]


checks = {}

g = defaultdict(lambda: [0, 0, 0, 0, 0])
for r in recs:
    k = (r["user_id"], day(r["start_time_ms"]))
    a = g[k]
    a[0] += 1; a[1] += r["prompt_tokens"]; a[2] += r["completion_tokens"]
    a[3] += r["total_tokens"]; a[4] += r["estimated_cost_nano_usd"]
checks["cost_per_user_per_day"] = [[k[0], k[1]] + [str(x) for x in v] for k, v in sorted(g.items())]

g = defaultdict(lambda: [0, 0, 0])
for r in recs:
    a = g[(month(r["start_time_ms"]), r["provider"], r["model"])]
    a[0] += 1; a[1] += r["total_tokens"]; a[2] += r["estimated_cost_nano_usd"]
checks["cost_per_model_per_month"] = [list(k) + [str(x) for x in v] for k, v in sorted(g.items())]

g = defaultdict(lambda: [0, 0])
for r in recs:
    a = g[r["user_id"]]
    a[0] += 1; a[1] += r["estimated_cost_nano_usd"]
top = sorted(g.items(), key=lambda kv: (-kv[1][1], kv[0]))[:10]
checks["top_spenders"] = [[k, str(v[0]), str(v[1])] for k, v in top]

g = defaultdict(list)
for r in recs:
    g[r["model"]].append(r)
rows = []
for m in sorted(g):
    d = [r["duration_ms"] for r in g[m]]
    t = [r["time_to_first_token_ms"] for r in g[m] if r["time_to_first_token_ms"] >= 0]
    rows.append([m, str(len(d))] + [str(qexact(d, l)) for l in (0.5, 0.95, 0.99)]
                + [str(qexact(t, l)) for l in (0.5, 0.95, 0.99)])
checks["latency_per_model"] = rows

g = defaultdict(lambda: [0, 0, 0, 0])
for r in recs:
    a = g[r["provider"]]
    a[0] += 1
    a[1] += r["status"] == "error"; a[2] += r["status"] == "timeout"; a[3] += r["status"] == "cancelled"
rows = []
for p in sorted(g):
    a = g[p]
    rate = round((a[1] + a[2] + a[3]) / a[0], 4)
    rows.append([p] + [str(x) for x in a] + [repr(rate)])
checks["error_rate_per_provider"] = rows

g = defaultdict(lambda: [0, 0, 0, 0])
for r in recs:
    a = g[(r["model"], r["usage_source"])]
    a[0] += 1; a[1] += r["total_tokens"]; a[2] += r["estimated_cost_nano_usd"]; a[3] += r["price_missing"]
checks["usage_estimated_vs_reported"] = [list(k) + [str(x) for x in v] for k, v in sorted(g.items())]

failed = 0
for name, want in checks.items():
    got = run(name)
    if name == "error_rate_per_provider":
        got = [row[:-1] + [repr(float(row[-1]))] for row in got]
    if got != want:
        failed += 1
        print("FAIL", name)
        print("  got ", got[:3])
        print("  want", want[:3])
    else:
        print("ok:", name, "(%d rows)" % len(got))
import os  # noqa: E402
files = sorted(f[:-4] for f in os.listdir(QDIR) if f.endswith(".sql"))
missing = [f for f in files if f not in checks]
if missing:
    print("FAIL: queries without a check:", missing)
    failed += 1
sys.exit(1 if failed else 0)
