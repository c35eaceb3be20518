#!/usr/bin/python3
"""Demo terminal client for llmgate-sse (stdlib only).

usage: demo_client.py BASE_URL PROMPT [API_KEY]      (model: $LLMGATE_DEMO_MODEL, default demo)

Starts a stream with POST /v1/chat/streams, reads GET /v1/chat/streams/{id}/events as
text/event-stream and writes the answer to stderr as it arrives (so the terminal shows it live),
then prints the stream id on stdout. Exits 1 on an error event or a transport failure.
"""
import http.client
import json
import os
import sys
import urllib.parse


def main() -> int:
    base, prompt = sys.argv[1], sys.argv[2]
    key = sys.argv[3] if len(sys.argv) > 3 else None
    u = urllib.parse.urlsplit(base)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    model = os.environ.get("LLMGATE_DEMO_MODEL", "demo")
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}]})
    conn.request("POST", "/v1/chat/streams", body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status != 201:
        print(f"\nPOST /v1/chat/streams: HTTP {r.status}: {data.decode(errors='replace')}", file=sys.stderr)
        return 1
    created = json.loads(data)
    stream_id = created["stream_id"]
    events_url = created.get("events_url") or f"/v1/chat/streams/{stream_id}/events"
    h = dict(headers)
    h["Accept"] = "text/event-stream"
    conn.request("GET", events_url, headers=h)
    r = conn.getresponse()
    if r.status != 200:
        print(f"\nGET events: HTTP {r.status}: {r.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    event, datas = None, []
    while True:
        line = r.readline()
        if not line:
            print("\nstream closed before done", file=sys.stderr)
            return 1
        line = line.decode().rstrip("\r\n")
        if line == "":
            if datas:
                payload = json.loads("\n".join(datas))
                kind = payload.get("type", event)
                if kind == "content":
                    sys.stderr.write(payload["data"].get("content", ""))
                    sys.stderr.flush()
                elif kind == "done":
                    d = payload["data"]
                    u = d.get("usage", {})
                    sys.stderr.write(
                        f"\n\n[done: finish_reason={d.get('finish_reason')} "
                        f"prompt_tokens={u.get('prompt_tokens')} completion_tokens={u.get('completion_tokens')} "
                        f"cost_nano_usd={d.get('estimated_cost_nano_usd', u.get('estimated_cost_nano_usd'))}]\n")
                    print(stream_id)
                    return 0
                elif kind == "error":
                    print(f"\nerror event: {payload['data']}", file=sys.stderr)
                    return 1
            event, datas = None, []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            datas.append(line[5:].lstrip(" "))


if __name__ == "__main__":
    sys.exit(main())
