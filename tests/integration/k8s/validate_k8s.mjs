// SPDX-License-Identifier: Apache-2.0
// Validates rendered Kubernetes objects against the published API schemas, without a cluster.
//
//   /usr/bin/python3 check_k8s.py --root ROOT --dump | node validate_k8s.mjs
//
// stdin: a JSON array of {"overlay": ..., "object": {...}}. Two independent checks per object:
//  1. kubernetes-models: JSON-schema validation of types, enums and required fields.
//  2. a strict unknown-field walk over @kubernetes/client-node's generated model attribute
//     maps (OpenAPI spec of the Kubernetes release it was generated from): kubernetes-models
//     accepts unknown fields, so a typo such as readOnlyRootFileSystem would pass check 1.
// With --self-test, each object is also validated after a deliberate typo is injected, and
// the run fails unless the typo is caught. Output ends with "N passed, N failed".
import fs from "node:fs";

const MODELS = {
  "v1/Namespace": "kubernetes-models/v1/Namespace",
  "v1/ServiceAccount": "kubernetes-models/v1/ServiceAccount",
  "v1/ConfigMap": "kubernetes-models/v1/ConfigMap",
  "v1/Secret": "kubernetes-models/v1/Secret",
  "v1/Service": "kubernetes-models/v1/Service",
  "apps/v1/Deployment": "kubernetes-models/apps/v1/Deployment",
  "apps/v1/StatefulSet": "kubernetes-models/apps/v1/StatefulSet",
  "autoscaling/v2/HorizontalPodAutoscaler":
    "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler",
  "policy/v1/PodDisruptionBudget": "kubernetes-models/policy/v1/PodDisruptionBudget",
  "batch/v1/Job": "kubernetes-models/batch/v1/Job",
  "networking.k8s.io/v1/Ingress": "kubernetes-models/networking.k8s.io/v1/Ingress",
  "networking.k8s.io/v1/NetworkPolicy": "kubernetes-models/networking.k8s.io/v1/NetworkPolicy",
};

// client-node model class of each root kind: V<version><Kind>.
function rootType(apiVersion, kind) {
  const version = apiVersion.split("/").pop();
  return "V" + version.slice(1, 2).toUpperCase() + version.slice(2) + kind;
}

const attributeMaps = new Map();
async function attributeMap(type) {
  if (!attributeMaps.has(type)) {
    let map = null;
    try {
      const mod = await import(`@kubernetes/client-node/dist/gen/models/${type}.js`);
      map = mod[type].getAttributeTypeMap();
    } catch {
      map = null; // not a model class: a leaf type (string, IntOrString, Date, ...)
    }
    attributeMaps.set(type, map);
  }
  return attributeMaps.get(type);
}

// Walks |value| as |type|; pushes "path: message" for every unknown field.
async function strictWalk(type, value, path, errors) {
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        await strictWalk(arr[1], value[i], `${path}[${i}]`, errors);
      }
    }
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (value && typeof value === "object") {
      for (const [k, v] of Object.entries(value)) {
        await strictWalk(map[1], v, `${path}.${k}`, errors);
      }
    }
    return;
  }
  const attrs = await attributeMap(type);
  if (attrs === null || value === null || typeof value !== "object" || Array.isArray(value)) {
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    const a = attrs.find((x) => x.baseName === k);
    if (a === undefined) {
      errors.push(`${path}.${k}: unknown field of ${type}`);
    } else {
      await strictWalk(a.type, v, `${path}.${k}`, errors);
    }
  }
}

async function validate(obj) {
  const errors = [];
  const key = `${obj.apiVersion}/${obj.kind}`;
  const where = `${obj.kind}/${obj.metadata?.name}`;
  if (!(key in MODELS)) {
    return [`${where}: no schema for ${key}`];
  }
  const mod = await import(MODELS[key]);
  try {
    new mod[obj.kind](obj).validate();
  } catch (e) {
    errors.push(`${where}: ${e.message.split("\n").join("; ")}`);
  }
  await strictWalk(rootType(obj.apiVersion, obj.kind), obj, where, errors);
  return errors;
}

// Renames one field deep inside |obj| to a misspelling; returns a description, or null.
function injectTypo(obj) {
  const spec = obj.spec?.template?.spec ?? obj.spec ?? obj;
  const c = spec.containers?.[0];
  if (c?.securityContext) {
    c.securityContext.readOnlyRootFileSystem = c.securityContext.readOnlyRootFilesystem;
    delete c.securityContext.readOnlyRootFilesystem;
    return "securityContext.readOnlyRootFileSystem";
  }
  if (obj.metadata) {
    obj.metadata.lables = obj.metadata.labels ?? {};
    delete obj.metadata.labels;
    return "metadata.lables";
  }
  return null;
}

const selfTest = process.argv.includes("--self-test");
const items = JSON.parse(fs.readFileSync(0, "utf8"));
let passed = 0;
let failed = 0;
for (const { overlay, object } of items) {
  const label = `${overlay}: ${object.kind}/${object.metadata?.name}`;
  const errors = await validate(object);
  if (errors.length === 0) {
    passed++;
    console.log(`ok   ${label}`);
  } else {
    failed++;
    console.log(`FAIL ${label}`);
    for (const e of errors) console.log(`       ${e}`);
  }
  if (selfTest) {
    const broken = structuredClone(object);
    const what = injectTypo(broken);
    if (what === null) continue;
    if ((await validate(broken)).length > 0) {
      passed++;
      console.log(`ok   ${label}: typo ${what} rejected`);
    } else {
      failed++;
      console.log(`FAIL ${label}: typo ${what} accepted`);
    }
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
