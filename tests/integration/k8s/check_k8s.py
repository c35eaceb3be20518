#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Static checks of llmgate's Kubernetes deployment (k8s/), offline, without a cluster.

  check_k8s.py --root DIR              render k8s/overlays/{dev,prod} and check every property
  check_k8s.py --root DIR --self-test  break each property in a copy of the rendered objects
                                       and prove the matching check fails (checks have teeth)
  check_k8s.py --root DIR --crosscheck compare kustomize_lite with `kubectl kustomize`
                                       (exit 77 = skipped when kubectl is absent)
  check_k8s.py --root DIR --dump       print the rendered objects as JSON for validate_k8s.mjs
  check_k8s.py --root DIR --npm-schema validate the rendered objects with kubernetes-models and
                                       @kubernetes/client-node (validate_k8s.mjs); exit 77 =
                                       skipped when node or the npm packages are absent

Each property is one function `check_<name>(ctx) -> [errors]`; docs/operations.md explains
the choices they enforce. Output ends with "N passed, N failed".
"""
import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kustomize_lite  # noqa: E402
import k8s_schema  # noqa: E402

OVERLAYS = ("dev", "prod")
CHAT, SSE, MIGRATE = "llmgate-chat", "llmgate-sse", "llmgate-migrate"
HEADLESS = "llmgate-chat-headless"
# Seconds kept between the drain deadline and SIGKILL for the final flush and exit.
DRAIN_MARGIN_S = 5
# Secrets the prod overlay references but never defines (created by the operator).
EXTERNAL_SECRETS = {"llmgate-sse-keys", "llmgate-sse-token", "llmgate-clickhouse",
                    "llmgate-provider-keys"}


class Ctx:
    """The rendered objects of one overlay plus what the checks need to find them."""

    def __init__(self, root, overlay, objs):
        self.root = root
        self.overlay = overlay
        self.objs = objs

    def get(self, kind, name):
        for o in self.objs:
            if o.get("kind") == kind and o.get("metadata", {}).get("name") == name:
                return o
        return None

    def all(self, kind):
        return [o for o in self.objs if o.get("kind") == kind]

    def workloads(self):
        return [o for o in self.objs if o.get("kind") in ("Deployment", "StatefulSet", "Job")]


def pod_spec(obj):
    return obj.get("spec", {}).get("template", {}).get("spec", {})


def pod_labels(obj):
    return obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})


def containers(obj):
    ps = pod_spec(obj)
    return ps.get("containers", []) + ps.get("initContainers", [])


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def where(obj):
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


# ---- checks ---------------------------------------------------------------------------


def check_schema(ctx):
    """Every object validates strictly: known kinds, known fields, required fields, types."""
    errs = []
    for o in ctx.objs:
        errs += k8s_schema.validate_object(o)
    return errs


def check_workload_kinds(ctx):
    """llmgate-sse is a Deployment; llmgate-chat a StatefulSet governed by a headless
    Service that selects its pods and keeps not-ready (draining) pods resolvable."""
    errs = []
    sse, chat, hl = ctx.get("Deployment", SSE), ctx.get("StatefulSet", CHAT), \
        ctx.get("Service", HEADLESS)
    if sse is None:
        errs.append("Deployment/llmgate-sse missing")
    if chat is None:
        return errs + ["StatefulSet/llmgate-chat missing"]
    if hl is None:
        return errs + ["Service/llmgate-chat-headless missing"]
    if chat["spec"].get("serviceName") != HEADLESS:
        errs.append("StatefulSet/llmgate-chat: serviceName must be llmgate-chat-headless")
    if hl["spec"].get("clusterIP") != "None":
        errs.append("Service/llmgate-chat-headless: clusterIP must be None (headless)")
    if not hl["spec"].get("publishNotReadyAddresses"):
        errs.append("Service/llmgate-chat-headless: publishNotReadyAddresses must be true so "
                    "a draining owner stays reachable for resumes")
    if not selects(hl["spec"].get("selector"), pod_labels(chat)):
        errs.append("Service/llmgate-chat-headless: selector does not match chat pods")
    if ctx.all("Deployment") and any(d["metadata"]["name"] == CHAT
                                     for d in ctx.all("Deployment")):
        errs.append("llmgate-chat must not also be a Deployment")
    return errs


def check_services(ctx):
    """Every Service selects the pods of a workload and targets ports those pods expose."""
    errs = []
    for svc in ctx.all("Service"):
        sel = svc["spec"].get("selector")
        targets = [w for w in ctx.workloads() if selects(sel, pod_labels(w))]
        if not targets:
            errs.append(f"{where(svc)}: selector {sel} matches no workload")
            continue
        for w in targets:
            names = {p.get("name") for c in containers(w) for p in c.get("ports", [])}
            nums = {p.get("containerPort") for c in containers(w) for p in c.get("ports", [])}
            for p in svc["spec"].get("ports", []):
                t = p.get("targetPort", p.get("port"))
                if t not in names and t not in nums:
                    errs.append(f"{where(svc)}: targetPort {t} not exposed by {where(w)}")
    for name in (CHAT, SSE):
        if ctx.get("Service", name) is None:
            errs.append(f"Service/{name} missing")
    return errs


def check_hpa(ctx):
    """An autoscaling/v2 HPA scales the sse Deployment on CPU utilization; nothing
    autoscales the chat StatefulSet (scale-down would strand streams and spools)."""
    errs = []
    hpas = ctx.all("HorizontalPodAutoscaler")
    sse_hpa = [h for h in hpas if h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
               and h["spec"]["scaleTargetRef"].get("name") == SSE]
    if len(sse_hpa) != 1:
        return ["exactly one HPA must target Deployment/llmgate-sse"]
    h = sse_hpa[0]["spec"]
    cpu = [m for m in h.get("metrics", []) if m.get("type") == "Resource"
           and m.get("resource", {}).get("name") == "cpu"
           and m["resource"].get("target", {}).get("type") == "Utilization"
           and 0 < m["resource"]["target"].get("averageUtilization", 0) <= 100]
    if not cpu:
        errs.append("HPA/llmgate-sse: needs a cpu Utilization target in (0, 100]")
    if not 1 <= h.get("minReplicas", 1) <= h.get("maxReplicas", 0):
        errs.append("HPA/llmgate-sse: need 1 <= minReplicas <= maxReplicas")
    if any(x["spec"]["scaleTargetRef"].get("name") == CHAT for x in hpas):
        errs.append("the chat StatefulSet must not be autoscaled")
    return errs


def check_pdbs(ctx):
    """Each long-running workload has a PDB selecting its pods that still lets one pod go
    when it has more than one replica."""
    errs = []
    for kind, name in (("StatefulSet", CHAT), ("Deployment", SSE)):
        w = ctx.get(kind, name)
        if w is None:
            continue
        pdbs = [p for p in ctx.all("PodDisruptionBudget")
                if selects(p["spec"].get("selector", {}).get("matchLabels"), pod_labels(w))]
        if len(pdbs) != 1:
            errs.append(f"{kind}/{name}: needs exactly one PodDisruptionBudget")
            continue
        spec = pdbs[0]["spec"]
        replicas = w["spec"].get("replicas", 1)
        if "maxUnavailable" in spec:
            if spec["maxUnavailable"] in (0, "0%", "0"):
                errs.append(f"{where(pdbs[0])}: maxUnavailable 0 blocks every node drain")
        elif isinstance(spec.get("minAvailable"), int) and replicas > 1 \
                and spec["minAvailable"] >= replicas:
            errs.append(f"{where(pdbs[0])}: minAvailable >= replicas blocks every node drain")
        elif "minAvailable" not in spec:
            errs.append(f"{where(pdbs[0])}: needs maxUnavailable or minAvailable")
    return errs


def check_resources(ctx):
    """Every container requests cpu and memory and limits memory (limit >= request)."""
    errs = []
    for w in ctx.workloads():
        for c in containers(w):
            r = c.get("resources", {})
            for k in ("cpu", "memory"):
                if k not in r.get("requests", {}):
                    errs.append(f"{where(w)}/{c['name']}: no {k} request")
            if "memory" not in r.get("limits", {}):
                errs.append(f"{where(w)}/{c['name']}: no memory limit")
            elif "memory" in r.get("requests", {}) and \
                    quantity(r["limits"]["memory"]) < quantity(r["requests"]["memory"]):
                errs.append(f"{where(w)}/{c['name']}: memory limit below request")
    return errs


def quantity(q):
    """Kubernetes quantity -> float (enough of the grammar for the manifests here)."""
    s = str(q)
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "m": 1e-3, "k": 1e3,
             "M": 1e6, "G": 1e9}
    for u, f in units.items():
        if s.endswith(u):
            return float(s[:-len(u)]) * f
    return float(s)


def check_security(ctx):
    """Every container runs as non-root with a read-only root filesystem, no privilege
    escalation, no privileges, all capabilities dropped (none added), RuntimeDefault
    seccomp; no pod mounts a service account token."""
    errs = []
    for w in ctx.workloads():
        ps = pod_spec(w)
        psc = ps.get("securityContext", {})
        if ps.get("automountServiceAccountToken") is not False:
            errs.append(f"{where(w)}: automountServiceAccountToken must be false")
        for c in containers(w):
            sc = c.get("securityContext", {})
            n = f"{where(w)}/{c['name']}"
            if not sc.get("runAsNonRoot", psc.get("runAsNonRoot")):
                errs.append(f"{n}: runAsNonRoot must be true")
            if sc.get("runAsUser", psc.get("runAsUser", 0)) == 0:
                errs.append(f"{n}: runAsUser must be a non-zero uid")
            if sc.get("readOnlyRootFilesystem") is not True:
                errs.append(f"{n}: readOnlyRootFilesystem must be true")
            if sc.get("allowPrivilegeEscalation") is not False:
                errs.append(f"{n}: allowPrivilegeEscalation must be false")
            if sc.get("privileged"):
                errs.append(f"{n}: must not be privileged")
            caps = sc.get("capabilities", {})
            if "ALL" not in caps.get("drop", []) or caps.get("add"):
                errs.append(f"{n}: capabilities must drop ALL and add none")
            prof = sc.get("seccompProfile", psc.get("seccompProfile", {}))
            if prof.get("type") != "RuntimeDefault":
                errs.append(f"{n}: seccompProfile must be RuntimeDefault")
    return errs


def check_probes(ctx):
    """llmgate-chat: native gRPC readiness and liveness probes (service "") on its gRPC
    port. llmgate-sse: HTTP readiness /readyz and liveness /healthz on its http port."""
    errs = []
    chat = ctx.get("StatefulSet", CHAT)
    if chat:
        c = containers(chat)[0]
        port = next((p["containerPort"] for p in c.get("ports", [])
                     if p.get("name") == "grpc"), None)
        for kind in ("readinessProbe", "livenessProbe"):
            g = c.get(kind, {}).get("grpc")
            if g is None or g.get("port") != port:
                errs.append(f"{where(chat)}: {kind} must be a grpc probe on the grpc port")
        # llmgate-chat's health service registers "" (the whole server) and turns it
        # NOT_SERVING when the drain starts; another name would answer NOT_FOUND forever.
        rp = c.get("readinessProbe", {}).get("grpc", {})
        if rp.get("service", "") != "":
            errs.append(f"{where(chat)}: readiness must check the whole server (service \"\")")
    sse = ctx.get("Deployment", SSE)
    if sse:
        c = containers(sse)[0]
        names = {p.get("name") for p in c.get("ports", [])}
        for kind, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            h = c.get(kind, {}).get("httpGet")
            if h is None or h.get("path") != path or h.get("port") not in names:
                errs.append(f"{where(sse)}: {kind} must be httpGet {path} on a named port")
    return errs


def check_grace(ctx):
    """terminationGracePeriodSeconds = drain deadline (LLMGATE_DRAIN_MS) + DRAIN_MARGIN_S,
    and the liveness failure budget outlasts it (a draining pod is never restarted)."""
    errs = []
    for kind, name in (("StatefulSet", CHAT), ("Deployment", SSE)):
        w = ctx.get(kind, name)
        if w is None:
            continue
        c = containers(w)[0]
        drain = env_of(c).get("LLMGATE_DRAIN_MS", {}).get("value")
        if drain is None or not str(drain).isdigit():
            errs.append(f"{where(w)}: LLMGATE_DRAIN_MS must be set to a literal number")
            continue
        grace = pod_spec(w).get("terminationGracePeriodSeconds")
        want = -(-int(drain) // 1000) + DRAIN_MARGIN_S
        if grace != want:
            errs.append(f"{where(w)}: terminationGracePeriodSeconds {grace} != drain "
                        f"{drain} ms + {DRAIN_MARGIN_S} s = {want}")
            continue
        lp = c.get("livenessProbe", {})
        budget = lp.get("periodSeconds", 10) * lp.get("failureThreshold", 3)
        if budget < grace and kind == "StatefulSet":
            errs.append(f"{where(w)}: liveness budget {budget}s < grace {grace}s")
    return errs


def check_topology(ctx):
    """Pods spread over zones and hosts, with selectors that match their own pods."""
    errs = []
    for kind, name in (("StatefulSet", CHAT), ("Deployment", SSE)):
        w = ctx.get(kind, name)
        if w is None:
            continue
        tsc = pod_spec(w).get("topologySpreadConstraints", [])
        keys = {t.get("topologyKey") for t in tsc
                if selects(t.get("labelSelector", {}).get("matchLabels"), pod_labels(w))}
        for k in ("topology.kubernetes.io/zone", "kubernetes.io/hostname"):
            if k not in keys:
                errs.append(f"{where(w)}: no topology spread over {k} selecting its pods")
    return errs


def mounts_by_path(w, c):
    vols = {v["name"]: v for v in pod_spec(w).get("volumes", [])}
    vcts = {t["metadata"]["name"]: t for t in w["spec"].get("volumeClaimTemplates", [])}
    out = {}
    for m in c.get("volumeMounts", []):
        out[m["mountPath"]] = (m, vols.get(m["name"]), vcts.get(m["name"]))
    return out


def check_spool(ctx):
    """LLMGATE_SPOOL_DIR is a mount of a volumeClaimTemplate (survives restarts and
    reschedules), ReadWriteOnce with a storage request, retained on scale-down/delete,
    writable by the pod's fsGroup."""
    errs = []
    chat = ctx.get("StatefulSet", CHAT)
    if chat is None:
        return errs
    c = containers(chat)[0]
    spool = env_of(c).get("LLMGATE_SPOOL_DIR", {}).get("value")
    m = mounts_by_path(chat, c).get(spool)
    if spool is None or m is None:
        return [f"{where(chat)}: LLMGATE_SPOOL_DIR must be the mountPath of a volume"]
    mount, vol, vct = m
    if vct is None or vol is not None:
        errs.append(f"{where(chat)}: the spool must come from a volumeClaimTemplate, "
                    "not a pod volume (emptyDir dies with the pod)")
    else:
        spec = vct.get("spec", {})
        if "ReadWriteOnce" not in spec.get("accessModes", []):
            errs.append(f"{where(chat)}: spool claim must be ReadWriteOnce")
        if "storage" not in spec.get("resources", {}).get("requests", {}):
            errs.append(f"{where(chat)}: spool claim needs a storage request")
    if mount.get("readOnly"):
        errs.append(f"{where(chat)}: spool mount must be writable")
    pol = chat["spec"].get("persistentVolumeClaimRetentionPolicy", {})
    if pol.get("whenScaled", "Retain") != "Retain" or pol.get("whenDeleted",
                                                               "Retain") != "Retain":
        errs.append(f"{where(chat)}: spool claims must be retained (unshipped records)")
    if "fsGroup" not in pod_spec(chat).get("securityContext", {}):
        errs.append(f"{where(chat)}: fsGroup needed so the non-root user can write the spool")
    return errs


def secret_refs(w):
    """(secret name, how) for every Secret a workload uses."""
    refs = []
    for c in containers(w):
        for e in c.get("env", []):
            r = e.get("valueFrom", {}).get("secretKeyRef")
            if r:
                refs.append((r["name"], f"env {e['name']}"))
        for e in c.get("envFrom", []):
            if "secretRef" in e:
                refs.append((e["secretRef"]["name"], "envFrom"))
    for v in pod_spec(w).get("volumes", []):
        if "secret" in v:
            refs.append((v["secret"]["secretName"], f"volume {v['name']}"))
    return refs


def check_secrets(ctx):
    """Secrets are referenced, never inlined: no credential-looking literal env values; dev
    defines its dev Secrets, prod defines none (the operator creates them); every referenced
    Secret is one of the documented ones; ConfigMaps referenced exist."""
    errs = []
    defined = {s["metadata"]["name"] for s in ctx.all("Secret")}
    cms = {s["metadata"]["name"]: s for s in ctx.all("ConfigMap")}
    secretish = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY|APIKEY|CREDENTIAL)$")
    for w in ctx.workloads():
        for name, how in secret_refs(w):
            if name not in EXTERNAL_SECRETS:
                errs.append(f"{where(w)}: {how} uses undocumented Secret {name}")
            if ctx.overlay != "prod" and name not in defined:
                errs.append(f"{where(w)}: {how} uses Secret {name} not defined in "
                            f"{ctx.overlay}")
        for c in containers(w):
            for e in c.get("env", []):
                if secretish.search(e["name"]) and "value" in e:
                    errs.append(f"{where(w)}: {e['name']} is a literal; use a secretKeyRef")
                r = e.get("valueFrom", {}).get("configMapKeyRef")
                if r and (r["name"] not in cms or r["key"] not in cms[r["name"]].get("data",
                                                                                     {})):
                    errs.append(f"{where(w)}: {e['name']} refers to missing ConfigMap key "
                                f"{r['name']}/{r['key']}")
        for v in pod_spec(w).get("volumes", []):
            if "configMap" in v and v["configMap"]["name"] not in cms:
                errs.append(f"{where(w)}: volume {v['name']} refers to a missing ConfigMap")
    if ctx.overlay == "prod" and defined:
        errs.append(f"prod must not define Secrets (found {sorted(defined)})")
    for cm in cms.values():
        for k, v in cm.get("data", {}).items():
            if re.search(r"(?i)sk-[a-z0-9]{16,}|\"api_key\"\s*:", str(v)):
                errs.append(f"{where(cm)}: key {k} looks like it holds an API key")
    return errs


def check_config(ctx):
    """chat.json parses, names only key files under a mounted Secret volume, and prices every
    non-demo model (input and output per 1M tokens)."""
    errs = []
    chat = ctx.get("StatefulSet", CHAT)
    cm = ctx.get("ConfigMap", "llmgate-config")
    if chat is None or cm is None:
        return ["ConfigMap/llmgate-config and StatefulSet/llmgate-chat needed"]
    c = containers(chat)[0]
    cfg_path = env_of(c).get("LLMGATE_CONFIG", {}).get("value", "")
    mounts = mounts_by_path(chat, c)
    d = os.path.dirname(cfg_path)
    if d not in mounts or (mounts[d][1] or {}).get("configMap", {}).get("name") != \
            "llmgate-config":
        errs.append(f"{where(chat)}: LLMGATE_CONFIG {cfg_path} is not in the config mount")
    try:
        cfg = json.loads(cm["data"]["chat.json"])
    except (KeyError, ValueError) as e:
        return errs + [f"ConfigMap/llmgate-config: chat.json does not parse: {e}"]
    secret_dirs = [p for p, (m, v, _) in mounts.items() if v and "secret" in v]
    for p in cfg.get("providers", []):
        if p.get("kind") == "demo":
            continue
        kf = p.get("api_key_file")
        if not kf or not any(kf.startswith(sd + "/") for sd in secret_dirs):
            errs.append(f"provider {p.get('id')}: api_key_file must be in a Secret mount")
        for m in p.get("models", []):
            if "input_usd_per_mtok" not in m or "output_usd_per_mtok" not in m:
                errs.append(f"provider {p.get('id')}: model {m.get('name')} has no price")
    return errs


def check_clickhouse(ctx):
    """llmgate-chat and the migrations Job get ClickHouse URL, user and password from the
    same Secret."""
    errs = []
    for kind, name in (("StatefulSet", CHAT), ("Job", MIGRATE)):
        w = ctx.get(kind, name)
        if w is None:
            errs.append(f"{kind}/{name} missing")
            continue
        env = env_of(containers(w)[0])
        srcs = set()
        for var in ("LLMGATE_CLICKHOUSE_URL", "LLMGATE_CLICKHOUSE_USER",
                    "LLMGATE_CLICKHOUSE_KEY"):
            ref = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef")
            if ref is None:
                errs.append(f"{where(w)}: {var} must come from a secretKeyRef")
            else:
                srcs.add(ref["name"])
        if len(srcs) > 1:
            errs.append(f"{where(w)}: ClickHouse settings come from several Secrets {srcs}")
    return errs


def check_keys_file(ctx):
    """The adapter always runs with a keys file (LLMGATE_KEYS) inside a Secret mount: never
    in open development mode in a cluster."""
    sse = ctx.get("Deployment", SSE)
    if sse is None:
        return []
    c = containers(sse)[0]
    keys = env_of(c).get("LLMGATE_KEYS", {}).get("value")
    if not keys:
        return [f"{where(sse)}: LLMGATE_KEYS must be set ({ctx.overlay})"]
    d = os.path.dirname(keys)
    m = mounts_by_path(sse, c).get(d)
    if m is None or not m[1] or "secret" not in m[1]:
        return [f"{where(sse)}: LLMGATE_KEYS {keys} is not inside a Secret volume mount"]
    return []


def check_routing(ctx):
    """Resume routing: chat pods learn their ordinal from the downward API; the adapter's
    pod address template dials <statefulset>-{ordinal}.<headless service>:<grpc port>."""
    errs = []
    chat, sse = ctx.get("StatefulSet", CHAT), ctx.get("Deployment", SSE)
    if chat is None or sse is None:
        return errs
    node = env_of(containers(chat)[0]).get("LLMGATE_NODE", {})
    fp = node.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    if fp != "metadata.labels['apps.kubernetes.io/pod-index']":
        errs.append(f"{where(chat)}: LLMGATE_NODE must come from the pod-index label")
    port = next((p["port"] for p in ctx.get("Service", HEADLESS)["spec"]["ports"]
                 if p.get("name") == "grpc"), None) if ctx.get("Service", HEADLESS) else None
    tpl = env_of(containers(sse)[0]).get("LLMGATE_CHAT_POD_ADDR", {}).get("value")
    want = f"{CHAT}-{{ordinal}}.{HEADLESS}:{port}"
    if tpl != want:
        errs.append(f"{where(sse)}: LLMGATE_CHAT_POD_ADDR {tpl!r} != {want!r}")
    chat_addr = env_of(containers(sse)[0]).get("LLMGATE_CHAT", {}).get("value", "")
    if not chat_addr.startswith(CHAT + ":"):
        errs.append(f"{where(sse)}: LLMGATE_CHAT must name the {CHAT} Service")
    return errs


def check_images(ctx):
    """Each workload uses the image of its Containerfile target, pinned to a tag."""
    errs = []
    for w in ctx.workloads():
        for c in containers(w):
            img = c.get("image", "")
            base = img.rsplit("/", 1)[-1].split(":")[0]
            if base not in ("llmgate-chat", "llmgate-sse", "llmgate-analytics"):
                errs.append(f"{where(w)}: image {img} is not an llmgate image")
            if ":" not in img.rsplit("/", 1)[-1] or img.endswith(":latest"):
                errs.append(f"{where(w)}: image {img} must carry an explicit, non-latest tag")
    return errs


def _selects(selector, labels):
    """A LabelSelector (matchLabels only, as the manifests write them) matches |labels|;
    the empty selector matches everything."""
    if selector.get("matchExpressions"):
        return False  # not written here: treat as not matching, so the check stays strict
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def check_network_policy(ctx):
    """llmgate-chat trusts the user id its callers assert (SECURITY.md), so a NetworkPolicy
    selects its pods and admits to the gRPC port only llmgate-sse's pods and pods labelled
    llmgate.io/chat-client=true, and to the admin port only pods labelled
    llmgate.io/metrics-scraper=true: no rule open to every source."""
    errs = []
    chat, sse = ctx.get("StatefulSet", CHAT), ctx.get("Deployment", SSE)
    if chat is None or sse is None:
        return errs
    pols = [n for n in ctx.all("NetworkPolicy")
            if _selects(n["spec"].get("podSelector", {}), pod_labels(chat))]
    if not pols:
        return [f"no NetworkPolicy selects the {CHAT} pods"]
    ports = {p.get("name"): p.get("containerPort") for p in containers(chat)[0].get("ports", [])}
    allowed = {"grpc": [], "admin": []}  # port name -> peers admitted to it
    for n in pols:
        if "Ingress" not in n["spec"].get("policyTypes", ["Ingress"]):
            errs.append(f"{where(n)}: policyTypes must include Ingress")
        for rule in n["spec"].get("ingress", []):
            peers = rule.get("from")
            rports = rule.get("ports")
            if not peers:
                errs.append(f"{where(n)}: an ingress rule without `from` admits every source")
                continue
            names = [p.get("port") for p in rports] if rports else list(allowed)
            for name in names:
                name = next((k for k, v in ports.items() if v == name), name)
                if name not in allowed:
                    errs.append(f"{where(n)}: admits port {name}, not a port of {CHAT}")
                    continue
                allowed[name].extend(peers)
    want = {"grpc": [("app.kubernetes.io/name", "llmgate-sse"),
                     ("llmgate.io/chat-client", "true")],
            "admin": [("llmgate.io/metrics-scraper", "true")]}
    for port, peers in allowed.items():
        for p in peers:
            if p.get("ipBlock") is not None or not p.get("podSelector", {}).get("matchLabels"):
                errs.append(f"{CHAT} port {port}: a peer without pod labels ({p}) admits "
                            f"whole namespaces or networks")
            elif not any(p["podSelector"]["matchLabels"].get(k) == v for k, v in want[port]):
                errs.append(f"{CHAT} port {port}: peer {p['podSelector']['matchLabels']} is "
                            f"none of {want[port]}")
    if not any(_selects(p.get("podSelector", {}), pod_labels(sse)) and
               "namespaceSelector" not in p for p in allowed["grpc"]):
        errs.append(f"{SSE}'s pods are not admitted to {CHAT}'s gRPC port")
    return errs


def check_ingress(ctx):
    """One Ingress sends only the public routes (/v1 prefix, the page's files exactly) to the
    sse Service's http port: no path reaches /healthz, /readyz or /metrics. ingress-nginx
    must not buffer responses and its proxy timeouts must outlast two heartbeat periods;
    prod terminates TLS."""
    errs = []
    ings = ctx.all("Ingress")
    if len(ings) != 1:
        return [f"expected one Ingress, found {len(ings)}"]
    ing = ings[0]
    svc = ctx.get("Service", SSE)
    port_names = {p.get("name") for p in svc["spec"]["ports"]} if svc else set()
    port_nums = {p.get("port") for p in svc["spec"]["ports"]} if svc else set()
    paths = []
    for rule in ing["spec"].get("rules", []):
        for p in rule.get("http", {}).get("paths", []):
            paths.append((p.get("path"), p.get("pathType")))
            be = p.get("backend", {}).get("service", {})
            port = be.get("port", {})
            if be.get("name") != SSE or not (port.get("name") in port_names
                                               or port.get("number") in port_nums):
                errs.append(f"{where(ing)}: path {p.get('path')} must go to {SSE}'s port")
    if ("/v1", "Prefix") not in paths or ("/", "Exact") not in paths:
        errs.append(f"{where(ing)}: needs /v1 (Prefix) and / (Exact)")
    for admin in ("/healthz", "/readyz", "/metrics"):
        for path, kind in paths:
            if path == admin or (kind != "Exact" and admin.startswith(path or "/")
                                 and (path or "/").endswith("/")):
                errs.append(f"{where(ing)}: path {path} ({kind}) exposes {admin}")
    ann = ing["metadata"].get("annotations", {})
    if ann.get("nginx.ingress.kubernetes.io/proxy-buffering") != "off":
        errs.append(f"{where(ing)}: proxy-buffering must be off for SSE")
    cm = ctx.get("ConfigMap", "llmgate-config")
    hb_s = int(cm["data"].get("heartbeat-ms", "15000")) / 1000 if cm else 15
    for t in ("proxy-read-timeout", "proxy-send-timeout"):
        v = ann.get(f"nginx.ingress.kubernetes.io/{t}", "60")
        if not v.isdigit() or int(v) < 2 * hb_s:
            errs.append(f"{where(ing)}: {t} {v}s must be >= 2 heartbeats ({2 * hb_s}s)")
    if ctx.overlay == "prod" and not ing["spec"].get("tls"):
        errs.append(f"{where(ing)}: prod must terminate TLS")
    return errs


CHECKS = [check_schema, check_workload_kinds, check_services, check_hpa, check_pdbs,
          check_resources, check_security, check_probes, check_grace, check_topology,
          check_spool, check_secrets, check_config, check_clickhouse, check_keys_file,
          check_routing, check_images, check_ingress, check_network_policy]


# ---- checks across overlays and files ---------------------------------------------------


def sizes(ctx):
    out = {}
    for kind, name in (("StatefulSet", CHAT), ("Deployment", SSE)):
        w = ctx.get(kind, name)
        if w:
            out[name] = (w["spec"].get("replicas"), containers(w)[0].get("resources"))
    return out


def check_overlays_differ(ctxs):
    """dev and prod differ in replicas and resources; prod runs >= 2 replicas of each and
    its HPA keeps >= 2."""
    errs = []
    dev, prod = sizes(ctxs["dev"]), sizes(ctxs["prod"])
    for name in (CHAT, SSE):
        if name not in dev or name not in prod:
            continue
        if dev[name][0] == prod[name][0]:
            errs.append(f"{name}: dev and prod have the same replicas")
        if dev[name][1] == prod[name][1]:
            errs.append(f"{name}: dev and prod have the same resources")
        if (prod[name][0] or 1) < 2:
            errs.append(f"{name}: prod needs at least 2 replicas")
    hpa = ctxs["prod"].get("HorizontalPodAutoscaler", SSE)
    if hpa and hpa["spec"].get("minReplicas", 1) < 2:
        errs.append("prod HPA minReplicas must be >= 2")
    return errs


RUNTIME_PACKAGES = {"libnghttp2": "libnghttp2-14", "libevent": "libevent-2.1-7",
                    "libevent_pthreads": "libevent-pthreads-2.1-7", "libcurl": "libcurl4",
                    "jansson": "libjansson4", "libprotobuf-c": "libprotobuf-c1",
                    "zlib": "zlib1g", "libcrypto": "libssl3", "libdeflate": "libdeflate0",
                    "libxxhash": "libxxhash0"}
# pkg-config prefixes of libraries only tests and benchmarks link.
TEST_ONLY_MODULES = {"CMOCKA", "LG_BENCH_GRPCPP"}


def check_containerfile(root, ctxs):
    """k8s/Containerfile: multi-stage; Debian 12 build stage that installs through
    scripts/install-deps and builds with CMake; Debian 12 slim runtime with a package for
    every library a CMake file of the tree links, optional ones included (test-only ones
    excepted); one final stage per image the
    manifests use; a numeric non-root USER equal to the pods' runAsUser."""
    errs = []
    path = os.path.join(root, "k8s", "Containerfile")
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        return [f"k8s/Containerfile: {e}"]
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    names = {s[1].lower(): s[0] for s in stages if s[1]}
    if len(stages) < 2:
        errs.append("Containerfile: must be multi-stage")
    if not names.get("build", "").startswith("debian:12"):
        errs.append("Containerfile: build stage must be FROM debian:12")
    if names.get("runtime") != "debian:12-slim":
        errs.append("Containerfile: runtime stage must be FROM debian:12-slim")
    for want in ("scripts/install-deps", "cmake -S", "cmake --build"):
        if want not in text:
            errs.append(f"Containerfile: build stage must run {want}")
    # Every pkg-config module any CMake file of the tree checks for, required or optional
    # (analytics links libdeflate and libxxhash when the build machine has them, and
    # scripts/install-deps installs both): the binaries then load them at run time.
    mods = set()
    for d, subdirs, files in os.walk(root):
        subdirs[:] = [x for x in subdirs if not x.startswith((".", "build"))
                      and x != "node_modules"]
        for f in files:
            if f != "CMakeLists.txt" and not f.endswith(".cmake"):
                continue
            cm = open(os.path.join(d, f), encoding="utf-8").read()
            for m in re.finditer(
                    r"pkg_check_modules\(\s*(\w+)\s+(?:REQUIRED\s+)?IMPORTED_TARGET\s+([^)]*)\)",
                    cm):
                if m.group(1) not in TEST_ONLY_MODULES:
                    mods.update(m.group(2).split())
    for mod in sorted(mods):
        pkg = RUNTIME_PACKAGES.get(mod)
        if pkg is None:
            errs.append(f"Containerfile check: no runtime package known for {mod}")
        elif not re.search(rf"\b{re.escape(pkg)}\b", text):
            errs.append(f"Containerfile: runtime stage must install {pkg} (for {mod})")
    # Every binary the image build asks for is a real CMake target.
    executables = set()
    for d, subdirs, files in os.walk(root):
        subdirs[:] = [x for x in subdirs if not x.startswith((".", "build"))
                      and x != "node_modules"]
        if "CMakeLists.txt" in files:
            cm_text = open(os.path.join(d, "CMakeLists.txt"), encoding="utf-8").read()
            executables.update(re.findall(r"add_executable\(\s*([\w-]+)", cm_text))
    for t in re.findall(r"cmake --build[^\n]*--target((?:[ \t]+[\w-]+)+)", text):
        for name in t.split():
            if name not in executables:
                errs.append(f"Containerfile: --target {name} is not an add_executable target")
    users = re.findall(r"^USER\s+(\d+)(?::(\d+))?", text, re.M)
    if not users or int(users[-1][0]) == 0:
        errs.append("Containerfile: needs a numeric non-root USER")
    for target in ("chat", "sse", "analytics"):
        if names.get(target) != "runtime":
            errs.append(f"Containerfile: final stage {target} must build FROM runtime")
    uids = {pod_spec(w).get("securityContext", {}).get("runAsUser")
            for c in ctxs.values() for w in c.workloads()}
    if users and uids != {int(users[-1][0])}:
        errs.append(f"Containerfile: USER {users[-1][0]} != pods' runAsUser {uids}")
    return errs


def check_docs(root, ctxs):
    """docs/operations.md documents every LLMGATE_* variable the manifests set."""
    path = os.path.join(root, "docs", "operations.md")
    try:
        doc = open(path, encoding="utf-8").read()
    except OSError as e:
        return [f"docs/operations.md: {e}"]
    names = {e["name"] for c in ctxs.values() for w in c.workloads() for x in containers(w)
             for e in x.get("env", [])}
    return [f"docs/operations.md: {n} is not documented" for n in sorted(names)
            if n.startswith("LLMGATE_") and n not in doc]


# ---- driver ---------------------------------------------------------------------------


def render(root):
    return {o: Ctx(root, o, kustomize_lite.build(os.path.join(root, "k8s", "overlays", o)))
            for o in OVERLAYS}


def run_all(root, ctxs, verbose=True):
    """Returns {check label: [errors]}."""
    results = {}
    for o, ctx in ctxs.items():
        for chk in CHECKS:
            results[f"{o}:{chk.__name__}"] = chk(ctx)
    results["overlays_differ"] = check_overlays_differ(ctxs)
    results["containerfile"] = check_containerfile(root, ctxs)
    results["docs"] = check_docs(root, ctxs)
    if verbose:
        for label, errs in results.items():
            print(f"{'ok  ' if not errs else 'FAIL'} {label}")
            for e in errs:
                print(f"       {e}")
    return results


def main_check(root):
    ctxs = render(root)
    results = run_all(root, ctxs)
    failed = sum(1 for e in results.values() if e)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


# ---- self-test: each mutation must make exactly its check fail ------------------------


def _chat_c(ctx):
    return containers(ctx.get("StatefulSet", CHAT))[0]


def _sse_c(ctx):
    return containers(ctx.get("Deployment", SSE))[0]


def _env_set(c, name, value):
    for e in c["env"]:
        if e["name"] == name:
            e.pop("valueFrom", None)
            e["value"] = value


MUTATIONS = [
    ("typo'd field", "check_schema",
     lambda x: _chat_c(x)["securityContext"].update(readOnlyRootFileSystem=True)),
    ("field at the wrong level", "check_schema",
     lambda x: pod_spec(x.get("StatefulSet", CHAT)).update(readinessProbe={})),
    ("missing container image", "check_schema", lambda x: _sse_c(x).pop("image")),
    ("wrong value type", "check_schema",
     lambda x: x.get("Deployment", SSE)["spec"].update(replicas="3")),
    ("chat as Deployment-less headless svc", "check_workload_kinds",
     lambda x: x.get("Service", HEADLESS)["spec"].update(clusterIP="10.0.0.1")),
    ("serviceName mismatch", "check_workload_kinds",
     lambda x: x.get("StatefulSet", CHAT)["spec"].update(serviceName="other")),
    ("service targets missing port", "check_services",
     lambda x: x.get("Service", SSE)["spec"]["ports"][0].update(targetPort="web")),
    ("HPA on memory", "check_hpa",
     lambda x: x.get("HorizontalPodAutoscaler", SSE)["spec"]["metrics"][0]["resource"]
     .update(name="memory")),
    ("PDB removed", "check_pdbs",
     lambda x: x.objs.remove(x.get("PodDisruptionBudget", CHAT))),
    ("no memory limit", "check_resources",
     lambda x: _chat_c(x)["resources"]["limits"].pop("memory")),
    ("writable root fs", "check_security",
     lambda x: _sse_c(x)["securityContext"].update(readOnlyRootFilesystem=False)),
    ("capability added", "check_security",
     lambda x: _chat_c(x)["securityContext"]["capabilities"].update(add=["NET_ADMIN"])),
    ("privilege escalation", "check_security",
     lambda x: containers(x.get("Job", MIGRATE))[0]["securityContext"]
     .update(allowPrivilegeEscalation=True)),
    ("HTTP probe on chat", "check_probes",
     lambda x: _chat_c(x).update(readinessProbe={"httpGet": {"path": "/readyz",
                                                             "port": 9090}})),
    ("liveness on /readyz", "check_probes",
     lambda x: _sse_c(x)["livenessProbe"]["httpGet"].update(path="/readyz")),
    ("grace shorter than drain", "check_grace",
     lambda x: pod_spec(x.get("StatefulSet", CHAT)).update(terminationGracePeriodSeconds=30)),
    ("liveness kills draining pod", "check_grace",
     lambda x: _chat_c(x)["livenessProbe"].update(failureThreshold=1)),
    ("no zone spread", "check_topology",
     lambda x: pod_spec(x.get("Deployment", SSE))["topologySpreadConstraints"].pop(0)),
    ("chat open to every pod", "check_network_policy",
     lambda x: x.get("NetworkPolicy", CHAT)["spec"]["ingress"][0].pop("from")),
    ("chat's admin port open to a whole namespace", "check_network_policy",
     lambda x: x.get("NetworkPolicy", CHAT)["spec"]["ingress"][1]["from"][0].pop("podSelector")),
    ("sse not admitted to chat", "check_network_policy",
     lambda x: x.get("NetworkPolicy", CHAT)["spec"]["ingress"][0]["from"].pop(0)),
    ("no policy for chat", "check_network_policy",
     lambda x: x.objs.remove(x.get("NetworkPolicy", CHAT))),
    ("spool on emptyDir", "check_spool",
     lambda x: (x.get("StatefulSet", CHAT)["spec"].pop("volumeClaimTemplates"),
                pod_spec(x.get("StatefulSet", CHAT))["volumes"].append(
                    {"name": "spool", "emptyDir": {}}))),
    ("spool claims deleted on scale-down", "check_spool",
     lambda x: x.get("StatefulSet", CHAT)["spec"]["persistentVolumeClaimRetentionPolicy"]
     .update(whenScaled="Delete")),
    ("literal ClickHouse key", "check_secrets",
     lambda x: _env_set(_chat_c(x), "LLMGATE_CLICKHOUSE_KEY", "hunter2")),
    ("readiness on an unregistered health service", "check_probes",
     lambda x: _chat_c(x)["readinessProbe"]["grpc"].update(service="llmgate.Nope")),
    ("secret defined in prod", "check_secrets",
     lambda x: x.objs.append({"apiVersion": "v1", "kind": "Secret",
                              "metadata": {"name": "llmgate-clickhouse"}})),
    ("unpriced model", "check_config",
     lambda x: x.get("ConfigMap", "llmgate-config")["data"].update(
         {"chat.json": json.dumps({"providers": [{
             "id": "p", "kind": "openai", "api_key_file": "/run/secrets/llmgate/providers/p",
             "models": [{"name": "m"}]}]})})),
    ("ClickHouse URL inlined", "check_clickhouse",
     lambda x: _env_set(_chat_c(x), "LLMGATE_CLICKHOUSE_URL", "http://ch:8123")),
    ("no keys file", "check_keys_file",
     lambda x: _sse_c(x).update(env=[e for e in _sse_c(x)["env"]
                                     if e["name"] != "LLMGATE_KEYS"])),
    ("wrong pod address template", "check_routing",
     lambda x: _env_set(_sse_c(x), "LLMGATE_CHAT_POD_ADDR", "llmgate-chat:50051")),
    ("ingress catch-all exposes admin paths", "check_ingress",
     lambda x: x.get("Ingress", SSE)["spec"]["rules"][0]["http"]["paths"][1]
     .update(pathType="Prefix")),
    ("ingress buffers SSE", "check_ingress",
     lambda x: x.get("Ingress", SSE)["metadata"]["annotations"].pop(
         "nginx.ingress.kubernetes.io/proxy-buffering")),
    ("ingress without TLS in prod", "check_ingress",
     lambda x: x.get("Ingress", SSE)["spec"].pop("tls")),
    ("latest tag", "check_images",
     lambda x: _sse_c(x).update(image="registry.example.com/llmgate/llmgate-sse:latest")),
]


def main_self_test(root):
    base = render(root)
    clean = run_all(root, base, verbose=False)
    bad = [k for k, v in clean.items() if v]
    passed = failed = 0
    if bad:
        print(f"FAIL the unmodified manifests must pass first: {bad}")
        failed += 1
    for label, check, mutate in MUTATIONS:
        ctx = copy.deepcopy(base["prod"])
        mutate(ctx)
        chk = next(c for c in CHECKS if c.__name__ == check)
        errs = chk(ctx)
        # The mutation must be caught by its check; the schema must still accept mutations
        # that are valid Kubernetes (so a property check, not a typo, catches them).
        if errs:
            passed += 1
            print(f"ok   {label}: {check} -> {errs[0]}")
        else:
            failed += 1
            print(f"FAIL {label}: {check} did not notice")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def _norm(objs):
    return {(o.get("kind"), o.get("metadata", {}).get("namespace"),
             o.get("metadata", {}).get("name")): o for o in objs}


def main_crosscheck(root):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("kubectl not found: cross-check skipped")
        return 77
    import yaml
    passed = failed = 0
    for o in OVERLAYS:
        d = os.path.join(root, "k8s", "overlays", o)
        try:
            out = subprocess.run([kubectl, "kustomize", d], capture_output=True, text=True,
                                 timeout=120, check=True).stdout
        except (subprocess.SubprocessError, OSError) as e:
            print(f"kubectl kustomize unusable here ({e}): cross-check skipped")
            return 77
        theirs = _norm([x for x in yaml.safe_load_all(out) if x])
        ours = _norm(kustomize_lite.build(d))
        if theirs == ours:
            passed += 1
            print(f"ok   {o}: kustomize_lite == kubectl kustomize ({len(ours)} objects)")
            continue
        failed += 1
        for k in sorted(set(theirs) | set(ours), key=str):
            if theirs.get(k) != ours.get(k):
                print(f"FAIL {o}: {k} differs\n  kubectl: {json.dumps(theirs.get(k))}\n"
                      f"  lite:    {json.dumps(ours.get(k))}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def main_npm_schema(root):
    here = os.path.dirname(os.path.abspath(__file__))
    node = shutil.which("node")
    mods = [os.path.join(here, "node_modules", m)
            for m in ("kubernetes-models", "@kubernetes/client-node")]
    if node is None or not all(os.path.isdir(m) for m in mods):
        print("node or the npm packages of tests/integration/k8s are missing "
              "(npm ci there installs them from package-lock.json): skipped")
        return 77
    payload = json.dumps([{"overlay": o, "object": x} for o, c in render(root).items()
                          for x in c.objs])
    r = subprocess.run([node, os.path.join(here, "validate_k8s.mjs"), "--self-test"],
                       input=payload, text=True, cwd=here, timeout=300)
    return r.returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="project root (holds k8s/)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--self-test", action="store_true")
    g.add_argument("--crosscheck", action="store_true")
    g.add_argument("--dump", action="store_true")
    g.add_argument("--npm-schema", action="store_true")
    a = ap.parse_args()
    try:
        if a.npm_schema:
            return main_npm_schema(a.root)
        if a.dump:
            json.dump([{"overlay": o, "object": x} for o, c in render(a.root).items()
                       for x in c.objs], sys.stdout)
            return 0
        if a.self_test:
            return main_self_test(a.root)
        if a.crosscheck:
            return main_crosscheck(a.root)
        return main_check(a.root)
    except kustomize_lite.KustomizeError as e:
        print(f"FAIL render: {e}\n0 passed, 1 failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
