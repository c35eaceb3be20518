# SPDX-License-Identifier: Apache-2.0
"""kustomize_lite: renders the kustomize subset llmgate's k8s/ uses, offline, in stdlib Python
plus PyYAML.

`kubectl kustomize` is not installable from Debian packages, so the static checks of
k8s/ cannot rely on it. This renderer implements exactly the features k8s/ uses and refuses
any other kustomization field (so a new feature cannot be silently ignored):

  resources   files (multi-document YAML) and directories holding a kustomization.yaml
  namespace   set on every namespaced object
  labels      pairs added to metadata.labels; includeTemplates also to pod templates
              (includeSelectors must be false: selectors are written by hand)
  images      name -> newName/newTag on containers and initContainers
  replicas    spec.replicas by object name
  patches     strategic-merge patches from files (`path`), matched by kind and name

Strategic merge follows the Kubernetes rules for the lists these manifests patch: lists with
a patch merge key (containers, env, volumes, volumeMounts, ports, ...) merge element-wise by
that key, with elements only in the patch placed first (as kustomize's kyaml does); every
other list is replaced; maps merge recursively; a null value deletes the key.
When kubectl is present, tests/integration/k8s/check_k8s.py --crosscheck compares this
renderer's output with `kubectl kustomize` object by object.
"""
import copy
import os

import yaml

KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "namespace", "labels", "images",
                        "replicas", "patches"}

# Kinds that are not namespaced (the ones a kustomization here could contain).
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
                  "StorageClass", "CustomResourceDefinition", "PriorityClass"}

# Kinds whose spec.template is a pod template (labels.includeTemplates, images).
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

# Patch merge keys by field name (k8s.io/api types' patchMergeKey tags) for the lists that
# the manifests can patch. "ports" depends on the element type: containerPort for
# containers, port for Services.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "tolerations": None,  # no merge key: replaced
    "hostAliases": "ip",
}


class KustomizeError(Exception):
    pass


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def _merge_key(field, base_list, patch_list):
    if field == "ports":
        sample = (patch_list or base_list or [{}])[0]
        return "containerPort" if isinstance(sample, dict) and "containerPort" in sample \
            else "port"
    return MERGE_KEYS.get(field)


def _merge_list(field, base, patch):
    key = _merge_key(field, base, patch)
    if key is None or not all(isinstance(x, dict) and key in x for x in base + patch):
        return copy.deepcopy(patch)
    by_key = {x[key]: i for i, x in enumerate(base)}
    merged = [copy.deepcopy(x) for x in base]
    new_items = []
    for item in patch:
        if item.get("$patch") == "delete":
            if item[key] in by_key:
                merged[by_key[item[key]]] = None
            continue
        if item[key] in by_key:
            i = by_key[item[key]]
            merged[i] = strategic_merge(merged[i], item)
        else:
            new_items.append(copy.deepcopy(item))
    return new_items + [x for x in merged if x is not None]


def strategic_merge(base, patch):
    """Returns base merged with patch (both left unchanged)."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif k in out and isinstance(out[k], list) and isinstance(v, list):
            out[k] = _merge_list(k, out[k], v)
        elif k in out and isinstance(out[k], dict) and isinstance(v, dict):
            out[k] = strategic_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _pod_templates(obj):
    if obj.get("kind") in POD_TEMPLATE_KINDS:
        t = obj.get("spec", {}).get("template")
        if isinstance(t, dict):
            yield t


def _set_image(container, images):
    ref = container.get("image", "")
    name = ref.split("@", 1)[0]
    # The tag is after the last ':' unless that ':' belongs to a registry host:port.
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    for img in images:
        if img.get("name") == name:
            new_name = img.get("newName", name)
            tag = img.get("newTag")
            container["image"] = new_name + (":" + str(tag) if tag is not None else "")


def build(directory):
    """Renders the kustomization in |directory|; returns the list of objects."""
    kfile = os.path.join(directory, "kustomization.yaml")
    if not os.path.exists(kfile):
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    docs = load_yaml_docs(kfile)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise KustomizeError(f"{kfile}: expected one mapping")
    k = docs[0]
    unknown = set(k) - KUSTOMIZATION_FIELDS
    if unknown:
        raise KustomizeError(f"{kfile}: fields not supported by kustomize_lite: "
                             f"{sorted(unknown)}")

    objs = []
    for r in k.get("resources", []):
        p = os.path.normpath(os.path.join(directory, r))
        if os.path.isdir(p):
            objs.extend(build(p))
        elif os.path.isfile(p):
            objs.extend(load_yaml_docs(p))
        else:
            raise KustomizeError(f"{kfile}: resource {r} not found")

    ids = set()
    for o in objs:
        ident = (o.get("kind"), o.get("metadata", {}).get("name"))
        if ident in ids:
            raise KustomizeError(f"{kfile}: duplicate object {ident}")
        ids.add(ident)

    for p in k.get("patches", []):
        if set(p) - {"path"}:
            raise KustomizeError(f"{kfile}: only file patches (path) are supported: {p}")
        for patch in load_yaml_docs(os.path.join(directory, p["path"])):
            ident = (patch.get("kind"), patch.get("metadata", {}).get("name"))
            targets = [i for i, o in enumerate(objs)
                       if (o.get("kind"), o.get("metadata", {}).get("name")) == ident]
            if len(targets) != 1:
                raise KustomizeError(f"{p['path']}: patch target {ident} not found")
            objs[targets[0]] = strategic_merge(objs[targets[0]], patch)

    ns = k.get("namespace")
    if ns:
        for o in objs:
            if o.get("kind") not in CLUSTER_SCOPED:
                o.setdefault("metadata", {})["namespace"] = ns

    for spec in k.get("labels", []):
        if spec.get("includeSelectors"):
            raise KustomizeError(f"{kfile}: labels.includeSelectors is not supported")
        pairs = spec.get("pairs", {})
        for o in objs:
            o.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
            if spec.get("includeTemplates"):
                for t in _pod_templates(o):
                    t.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)

    images = k.get("images", [])
    if images:
        for o in objs:
            for t in _pod_templates(o):
                ps = t.get("spec", {})
                for c in ps.get("containers", []) + ps.get("initContainers", []):
                    _set_image(c, images)

    for r in k.get("replicas", []):
        hit = [o for o in objs if o.get("metadata", {}).get("name") == r["name"]
               and o.get("kind") in {"Deployment", "StatefulSet", "ReplicaSet"}]
        if not hit:
            raise KustomizeError(f"{kfile}: replicas target {r['name']} not found")
        for o in hit:
            o["spec"]["replicas"] = r["count"]
    return objs
