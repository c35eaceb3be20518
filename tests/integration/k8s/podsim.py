#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""podsim: runs the containers of the rendered k8s overlays as local processes, with exactly
the configuration the manifests give them, to prove the binaries accept it.

  podsim.py --root DIR --chat BIN --sse BIN

For each overlay, the chat StatefulSet's and the sse Deployment's container environment is
resolved as the kubelet would (literal values, ConfigMap and Secret keys, downward API
fields for pod 0), every ConfigMap/Secret volume is written to a scratch directory and the
paths in the environment and in chat.json are moved under it; the spool claim becomes a
scratch directory. Only what cannot exist on a laptop changes: listen addresses become
127.0.0.1:0, LLMGATE_CHAT (and LLMGATE_CHAT_NODE_MAP for ordinal 0) points at the chat
process just started, ClickHouse at a closed
local port, the web directory at the source tree. Secrets the prod overlay only references
get stand-in values. Then, per overlay:

  - both processes start and print their `listening` lines; /readyz answers 200 on each;
  - the chat StatefulSet's native gRPC probes (their port and service name, as the kubelet
    would send them: grpc.health.v1.Health/Check) answer SERVING, and the sse Deployment's
    HTTP probes (port, path) answer 200;
  - /metrics on each parses with the Prometheus project's parser;
  - dev only (its demo provider and committed dev key): a chat completion through the
    adapter with the dev API key succeeds and a wrong key gets 401 (the keys file is used),
    and counters on both /metrics pages moved;
  - dev: SIGTERM on chat while a stream is open (read through the events_url and its
    signed token, like EventSource): /readyz turns 503 and the gRPC readiness probe stops
    answering SERVING at once, and the stream still ends with `done`;
  - SIGTERM: each process exits 0 within the pod's terminationGracePeriodSeconds.

No sleeps-and-hope: every wait polls a condition until a deadline. Output ends with
"N passed, N failed".
"""
import argparse
import json
import os
import re
import select
import signal
import subprocess
import sys
import http.client as http_client
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kustomize_lite  # noqa: E402

# Longest wait for a process to start or become ready (generous: ASan builds are slow).
START_DEADLINE_S = 60
DEV_API_KEY = "dev-key-not-secret"  # k8s/overlays/dev/secrets-dev.yaml
# Stand-ins for the Secrets prod only references (the operator creates the real ones).
PROD_SECRETS = {
    "llmgate-sse-keys": {"keys.txt": "sha256:" + "0" * 64 + " nobody\n"},
    "llmgate-sse-token": {"secret": "00" * 32},
    "llmgate-clickhouse": {"url": "http://127.0.0.1:1", "user": "u", "password": "p"},
    "llmgate-provider-keys": {"openai": "sk-stand-in"},
}


class Failure(Exception):
    pass


def find(objs, kind, name):
    for o in objs:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    raise Failure(f"{kind}/{name} not rendered")


def secret_data(objs, name):
    for o in objs:
        if o["kind"] == "Secret" and o["metadata"]["name"] == name:
            return dict(o.get("stringData", {}))
    if name in PROD_SECRETS:
        return dict(PROD_SECRETS[name])
    raise Failure(f"Secret {name} neither rendered nor stood in for")


def resolve_env(objs, workload, container):
    """The container's environment as the kubelet builds it, for ordinal 0."""
    cms = {o["metadata"]["name"]: o.get("data", {}) for o in objs if o["kind"] == "ConfigMap"}
    fields = {"metadata.name": workload["metadata"]["name"] + "-0",
              "metadata.labels['apps.kubernetes.io/pod-index']": "0"}
    env = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
            continue
        src = e.get("valueFrom", {})
        if "configMapKeyRef" in src:
            r = src["configMapKeyRef"]
            env[e["name"]] = cms[r["name"]][r["key"]]
        elif "secretKeyRef" in src:
            r = src["secretKeyRef"]
            env[e["name"]] = secret_data(objs, r["name"])[r["key"]]
        elif "fieldRef" in src:
            env[e["name"]] = fields[src["fieldRef"]["fieldPath"]]
        else:
            raise Failure(f"env {e['name']}: unsupported source {src}")
    return env


def materialize_mounts(objs, workload, container, scratch):
    """Writes every ConfigMap/Secret volume under |scratch|; returns {mountPath: local dir}."""
    spec = workload["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
    cms = {o["metadata"]["name"]: o.get("data", {}) for o in objs if o["kind"] == "ConfigMap"}
    out = {}
    for m in container.get("volumeMounts", []):
        local = os.path.join(scratch, m["mountPath"].lstrip("/"))
        os.makedirs(local, exist_ok=True)
        out[m["mountPath"]] = local
        v = vols.get(m["name"])
        if v is None and m["name"] in claims:
            continue  # the spool claim: an empty scratch directory
        if "configMap" in v:
            data = cms[v["configMap"]["name"]]
            items = v["configMap"].get("items") or [{"key": k, "path": k} for k in data]
            files = {i["path"]: data[i["key"]] for i in items}
        elif "secret" in v:
            files = secret_data(objs, v["secret"]["secretName"])
        else:
            continue  # emptyDir
        for rel, text in files.items():
            with open(os.path.join(local, rel), "w", encoding="utf-8") as f:
                f.write(text)
    return out


def relocate(value, mounts):
    for mp in sorted(mounts, key=len, reverse=True):
        if value == mp or value.startswith(mp + "/"):
            return mounts[mp] + value[len(mp):]
    return value


def env_read_by(binary):
    """The LLMGATE_* variables |binary| reads: its --help lists each flag's variable."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30).stdout
    return set(re.findall(r"\benv (LLMGATE_[A-Z0-9_]+)", out))


def unread_env(binary, env):
    """Fails when the manifest sets an LLMGATE_* variable the binary does not read (it would
    be silently ignored: how llmgate-chat once dropped the ClickHouse credentials)."""
    read = env_read_by(binary)
    extra = sorted(k for k in env if k.startswith("LLMGATE_") and k not in read)
    if extra:
        raise Failure(f"{os.path.basename(binary)} does not read {', '.join(extra)}")


class Proc:
    """A child process whose stdout lines we wait for; stderr goes to a log file."""

    def __init__(self, name, argv, env, log_path):
        self.name = name
        self.log = open(log_path, "wb")
        self.p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=self.log,
                                  stdin=subprocess.DEVNULL)
        self.lines = []
        self.signaled = False

    def sigterm(self):
        """SIGTERM once, as the kubelet does (a second one is not part of the contract)."""
        if not self.signaled and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        self.signaled = True

    def wait_line(self, pattern, deadline_s):
        end = time.monotonic() + deadline_s
        rx = re.compile(pattern)
        buf = b""
        while time.monotonic() < end:
            for line in self.lines:
                m = rx.search(line)
                if m:
                    return m
            if self.p.poll() is not None:
                raise Failure(f"{self.name} exited {self.p.returncode} before '{pattern}'")
            r, _, _ = select.select([self.p.stdout], [], [], 0.2)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 4096)
                buf += chunk
                *done, buf = buf.split(b"\n")
                self.lines += [d.decode(errors="replace") for d in done]
        raise Failure(f"{self.name}: no '{pattern}' within {deadline_s}s")

    def terminate(self, grace_s):
        """SIGTERM, then the exit status within |grace_s| (None when it had to be killed)."""
        self.sigterm()
        try:
            return self.p.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None
        finally:
            self.log.close()


def http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=START_DEADLINE_S) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_ready(url):
    end = time.monotonic() + START_DEADLINE_S
    last = None
    while time.monotonic() < end:
        try:
            last = http("GET", url)[0]
            if last == 200:
                return
        except OSError as e:
            last = str(e)
        time.sleep(0.1)  # poll interval of a condition with a deadline, not a wait-and-hope
    raise Failure(f"{url} not ready within {START_DEADLINE_S}s (last: {last})")


def parse_metrics(text):
    from prometheus_client.parser import text_string_to_metric_families
    return [f.name for f in text_string_to_metric_families(text)]


def counter_total(url):
    """Sum of every counter sample at |url| (names are the binaries' business; that some
    counter moves after a request is the property checked)."""
    from prometheus_client.parser import text_string_to_metric_families
    total = 0.0
    for fam in text_string_to_metric_families(http("GET", url)[1]):
        if fam.type == "counter":
            total += sum(x.value for x in fam.samples if x.name.endswith("_total"))
    return total


class EventReader(threading.Thread):
    """Reads an SSE response like EventSource (no Authorization: the events_url's signed
    token authorizes it) and records the event types seen."""

    def __init__(self, addr, path):
        super().__init__(daemon=True)
        self.addr, self.path = addr, path
        self.events = []
        self.error = None

    def run(self):
        host, port = self.addr.rsplit(":", 1)
        try:
            conn = http_client.HTTPConnection(host, int(port), timeout=START_DEADLINE_S)
            conn.request("GET", self.path, headers={"Accept": "text/event-stream"})
            resp = conn.getresponse()
            if resp.status != 200:
                self.error = f"events: HTTP {resp.status}"
                return
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.startswith(b"event: "):
                    self.events.append(line[7:].strip().decode())
                    if self.events[-1] in ("done", "error"):
                        return
        except OSError as e:
            self.error = f"events: {e}"

    def wait_for(self, event, deadline_s):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end and event not in self.events and self.is_alive():
            time.sleep(0.05)  # poll a condition with a deadline
        return event in self.events


class HealthProbe:
    """What the kubelet's native gRPC probe does: grpc.health.v1.Health/Check (stubs
    generated from protos/grpc/health/v1/health.proto with grpc_tools into a scratch dir)."""

    def __init__(self, root, scratch):
        from grpc_tools import protoc
        out = os.path.join(scratch, "health_stubs")
        os.makedirs(out, exist_ok=True)
        # Generated as top-level modules: a grpc.health package would clash with grpcio's.
        inc = os.path.join(root, "protos", "grpc", "health", "v1")
        if protoc.main(["protoc", f"-I{inc}", f"--python_out={out}",
                        f"--grpc_python_out={out}", os.path.join(inc, "health.proto")]) != 0:
            raise Failure("protoc failed on grpc/health/v1/health.proto")
        sys.path.insert(0, out)
        import health_pb2  # noqa: E402
        import health_pb2_grpc  # noqa: E402
        self.pb2, self.grpc_pb2 = health_pb2, health_pb2_grpc

    def status(self, addr, service):
        import grpc
        with grpc.insecure_channel(addr) as ch:
            stub = self.grpc_pb2.HealthStub(ch)
            try:
                r = stub.Check(self.pb2.HealthCheckRequest(service=service), timeout=5)
            except grpc.RpcError as e:
                return e.code().name
            return self.pb2.HealthCheckResponse.ServingStatus.Name(r.status)


def base_env(env):
    """The process environment: the container's, plus PATH and sanitizer settings only."""
    out = {k: v for k, v in os.environ.items()
           if k in ("PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")}
    out.update(env)
    return out


def run_overlay(root, overlay, chat_bin, sse_bin, results):
    objs = kustomize_lite.build(os.path.join(root, "k8s", "overlays", overlay))
    chat_w = find(objs, "StatefulSet", "llmgate-chat")
    sse_w = find(objs, "Deployment", "llmgate-sse")
    chat_c = chat_w["spec"]["template"]["spec"]["containers"][0]
    sse_c = sse_w["spec"]["template"]["spec"]["containers"][0]
    procs = []

    def check(label, fn):
        try:
            fn()
            results.append((f"{overlay}: {label}", None))
        except Failure as e:
            results.append((f"{overlay}: {label}", str(e)))
            raise

    with tempfile.TemporaryDirectory(prefix=f"podsim-{overlay}-") as scratch:
        try:
            # llmgate-chat
            mounts = materialize_mounts(objs, chat_w, chat_c, os.path.join(scratch, "chat"))
            env = {k: relocate(v, mounts) for k, v in resolve_env(objs, chat_w, chat_c).items()}
            manifest_listen = env["LLMGATE_LISTEN"]
            cfg = env["LLMGATE_CONFIG"]
            with open(cfg, encoding="utf-8") as f:
                chat_json = json.load(f)
            for prov in chat_json.get("providers", []):  # api_key_file paths in chat.json
                if "api_key_file" in prov:
                    prov["api_key_file"] = relocate(prov["api_key_file"], mounts)
            with open(cfg, "w", encoding="utf-8") as f:
                json.dump(chat_json, f)
            check("every LLMGATE_* variable the chat manifest sets is read by llmgate-chat",
                  lambda: unread_env(chat_bin, env))
            env.update(LLMGATE_LISTEN="127.0.0.1:0", LLMGATE_ADMIN_LISTEN="127.0.0.1:0",
                       LLMGATE_CLICKHOUSE_URL="http://127.0.0.1:1")
            chat = Proc("llmgate-chat", [chat_bin], base_env(env),
                        os.path.join(scratch, "chat.log"))
            procs.append((chat, chat_w))
            grpc = admin = None

            def start_chat():
                nonlocal grpc, admin
                grpc = chat.wait_line(r"^listening grpc (\S+)", START_DEADLINE_S).group(1)
                admin = chat.wait_line(r"^listening admin (\S+)", START_DEADLINE_S).group(1)
                wait_ready(f"http://{admin}/readyz")
                names = parse_metrics(http("GET", f"http://{admin}/metrics")[1])
                if not names:
                    raise Failure("chat /metrics has no metric family")
            check("llmgate-chat starts with the manifest's configuration, ready, /metrics "
                  "parses", start_chat)
            probe = HealthProbe(root, scratch)

            def grpc_probes():
                for kind in ("readinessProbe", "livenessProbe"):
                    g = chat_c[kind]["grpc"]
                    if not manifest_listen.endswith(f":{g['port']}"):
                        raise Failure(f"{kind} port {g['port']} is not the port of "
                                      f"LLMGATE_LISTEN {manifest_listen}")
                    got = probe.status(grpc, g.get("service", ""))
                    if got != "SERVING":
                        raise Failure(f"{kind} (service {g.get('service', '')!r}): {got}")
            check("the manifest's native gRPC probes (port, service) answer SERVING",
                  grpc_probes)

            # llmgate-sse
            mounts = materialize_mounts(objs, sse_w, sse_c, os.path.join(scratch, "sse"))
            env = {k: relocate(v, mounts) for k, v in resolve_env(objs, sse_w, sse_c).items()}
            sse_listen = env["LLMGATE_LISTEN"]
            # The pod-address template names cluster DNS; the one simulated chat pod is
            # ordinal 0, so its stream ids (n0_...) route to it through the node map.
            check("every LLMGATE_* variable the sse manifest sets is read by llmgate-sse",
                  lambda: unread_env(sse_bin, env))
            env.update(LLMGATE_LISTEN="127.0.0.1:0", LLMGATE_CHAT=grpc,
                       LLMGATE_CHAT_NODE_MAP="0=" + grpc,
                       LLMGATE_WEB_DIR=os.path.join(root, "adapters", "sse", "web"))
            sse = Proc("llmgate-sse", [sse_bin], base_env(env), os.path.join(scratch, "sse.log"))
            procs.append((sse, sse_w))
            edge = None

            def start_sse():
                nonlocal edge
                edge = sse.wait_line(r"^listening \w+ (\S+)", START_DEADLINE_S).group(1)
                wait_ready(f"http://{edge}/readyz")
                parse_metrics(http("GET", f"http://{edge}/metrics")[1])
            check("llmgate-sse starts with the manifest's configuration (keys file, token "
                  "secret), ready once chat answers, /metrics parses", start_sse)

            def http_probes():
                ports = {p["name"]: p["containerPort"] for p in sse_c["ports"]}
                for kind in ("readinessProbe", "livenessProbe"):
                    g = sse_c[kind]["httpGet"]
                    port = ports.get(g["port"], g["port"])
                    if not sse_listen.endswith(f":{port}"):
                        raise Failure(f"{kind} port {g['port']} is not LLMGATE_LISTEN's port")
                    st = http("GET", f"http://{edge}{g['path']}")[0]
                    if st != 200:
                        raise Failure(f"{kind} GET {g['path']}: {st}")
            check("the manifest's HTTP probes (port, path) answer 200 on llmgate-sse",
                  http_probes)

            if overlay == "dev":
                def chat_through_edge():
                    before = (counter_total(f"http://{admin}/metrics"),
                              counter_total(f"http://{edge}/metrics"))
                    body = json.dumps({"model": "demo", "stream": False, "max_tokens": 8,
                                       "messages": [{"role": "user", "content": "hi"}]}).encode()
                    url = f"http://{edge}/v1/chat/completions"
                    ct = {"Content-Type": "application/json"}
                    st, txt = http("POST", url, body, dict(ct, Authorization=f"Bearer {DEV_API_KEY}"))
                    if st != 200 or not json.loads(txt).get("choices"):
                        raise Failure(f"completion with the dev key: {st} {txt[:200]}")
                    st, _ = http("POST", url, body, dict(ct, Authorization="Bearer wrong-key"))
                    if st != 401:
                        raise Failure(f"a wrong key got {st}, want 401 (keys file not used?)")
                    after = (counter_total(f"http://{admin}/metrics"),
                             counter_total(f"http://{edge}/metrics"))
                    if not (after[0] > before[0] and after[1] > before[1]):
                        raise Failure(f"counters did not move: chat {before[0]}->{after[0]}, "
                                      f"sse {before[1]}->{after[1]}")
                check("dev key from the keys Secret completes a chat; a wrong key gets 401; "
                      "counters on both /metrics moved",
                      chat_through_edge)

                def drain_finishes_stream():
                    body = json.dumps({"model": "demo", "max_tokens": 400,
                                       "messages": [{"role": "user", "content": "tell me"}]})
                    st, txt = http("POST", f"http://{edge}/v1/chat/streams", body.encode(),
                                   {"Content-Type": "application/json",
                                    "Authorization": f"Bearer {DEV_API_KEY}"})
                    if st != 201:
                        raise Failure(f"POST /v1/chat/streams: {st} {txt[:200]}")
                    reader = EventReader(edge, json.loads(txt)["events_url"])
                    reader.start()
                    if not reader.wait_for("content", START_DEADLINE_S):
                        raise Failure(f"no content event ({reader.error}, {reader.events})")
                    chat.sigterm()
                    end = time.monotonic() + START_DEADLINE_S
                    while http("GET", f"http://{admin}/readyz")[0] != 503:
                        if time.monotonic() > end or reader.events[-1:] == ["done"]:
                            raise Failure("chat /readyz did not turn 503 while draining")
                        time.sleep(0.05)  # poll a condition with a deadline
                    service = chat_c["readinessProbe"]["grpc"].get("service", "")
                    while probe.status(grpc, service) == "SERVING":
                        if time.monotonic() > end or reader.events[-1:] == ["done"]:
                            raise Failure("the gRPC readiness probe still SERVING while draining")
                        time.sleep(0.05)  # poll a condition with a deadline
                    grace = chat_w["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
                    reader.join(grace)
                    if reader.events[-1:] != ["done"]:
                        raise Failure(f"stream cut by the drain: {reader.events[-3:]} "
                                      f"({reader.error})")
                check("SIGTERM on chat: /readyz 503 and the gRPC readiness probe not SERVING "
                      "at once, the open stream still ends with done (events_url token from "
                      "the token Secret)",
                      drain_finishes_stream)
        except Failure:
            pass
        finally:
            # Stop the edge first, as a rollout would drain it before its upstream.
            for p, w in reversed(procs):
                grace = w["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
                rc = p.terminate(grace)
                label = f"{overlay}: {p.name} exits 0 on SIGTERM within the grace period " \
                        f"({grace}s)"
                err = None if rc == 0 else (f"killed after {grace}s" if rc is None
                                            else f"exit status {rc}")
                if err:
                    with open(p.log.name, "rb") as f:
                        err += "; log tail: " + f.read()[-600:].decode(errors="replace")
                results.append((label, err))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--chat", required=True)
    ap.add_argument("--sse", required=True)
    a = ap.parse_args()
    results = []
    for overlay in ("dev", "prod"):
        run_overlay(a.root, overlay, a.chat, a.sse, results)
    failed = 0
    for label, err in results:
        print(f"{'ok  ' if err is None else 'FAIL'} {label}")
        if err:
            failed += 1
            print(f"       {err}")
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
