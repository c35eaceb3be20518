# SPDX-License-Identifier: Apache-2.0
"""k8s_schema: strict structural validation of the Kubernetes objects llmgate's k8s/ uses.

Every field name of every type reachable from the kinds below is listed, as in the
Kubernetes API reference (v1.30, k8s.io/api). An object with a field that is not listed
(a typo such as `readOnlyRootFileSystem`, or a field placed at the wrong level) fails, as
does a missing required field or a value of the wrong shape. This is what `kubectl apply
--validate=strict` would report, without needing a cluster or the OpenAPI document.

Leaf kinds: "str", "int", "bool", "intstr" (int or string, e.g. targetPort), "quantity"
(a resource quantity: string or number), "map" (string to string), "any" (not descended:
used only for rarely-used nested types this project does not write). A list of T is [T].
"""

META = {
    "name": "str", "generateName": "str", "namespace": "str", "selfLink": "str", "uid": "str",
    "resourceVersion": "str", "generation": "int", "creationTimestamp": "any",
    "deletionTimestamp": "any", "deletionGracePeriodSeconds": "int", "labels": "map",
    "annotations": "map", "ownerReferences": "any", "finalizers": ["str"],
    "managedFields": "any",
}

TYPES = {
    "ObjectMeta": META,
    "LocalObjectReference": {"name": "str"},
    "LabelSelector": {"matchLabels": "map", "matchExpressions": ["LabelSelectorRequirement"]},
    "LabelSelectorRequirement": {"key": "str", "operator": "str", "values": ["str"]},

    # core/v1
    "Namespace": {"apiVersion": "str", "kind": "str", "metadata": "ObjectMeta",
                  "spec": {"finalizers": ["str"]}, "status": "any"},
    "ServiceAccount": {"apiVersion": "str", "kind": "str", "metadata": "ObjectMeta",
                       "secrets": "any", "imagePullSecrets": ["LocalObjectReference"],
                       "automountServiceAccountToken": "bool"},
    "ConfigMap": {"apiVersion": "str", "kind": "str", "metadata": "ObjectMeta", "data": "map",
                  "binaryData": "map", "immutable": "bool"},
    "Secret": {"apiVersion": "str", "kind": "str", "metadata": "ObjectMeta", "data": "map",
               "stringData": "map", "type": "str", "immutable": "bool"},
    "Service": {"apiVersion": "str", "kind": "str", "metadata": "ObjectMeta",
                "spec": "ServiceSpec", "status": "any"},
    "ServiceSpec": {
        "ports": ["ServicePort"], "selector": "map", "clusterIP": "str", "clusterIPs": ["str"],
        "type": "str", "externalIPs": ["str"], "sessionAffinity": "str",
        "loadBalancerIP": "str", "loadBalancerSourceRanges": ["str"], "externalName": "str",
        "externalTrafficPolicy": "str", "healthCheckNodePort": "int",
        "publishNotReadyAddresses": "bool", "sessionAffinityConfig": "any",
        "ipFamilies": ["str"], "ipFamilyPolicy": "str",
        "allocateLoadBalancerNodePorts": "bool", "loadBalancerClass": "str",
        "internalTrafficPolicy": "str", "trafficDistribution": "str"},
    "ServicePort": {"name": "str", "protocol": "str", "appProtocol": "str", "port": "int",
                    "targetPort": "intstr", "nodePort": "int"},
    "PersistentVolumeClaim": {"apiVersion": "str", "kind": "str", "metadata": "ObjectMeta",
                              "spec": "PersistentVolumeClaimSpec", "status": "any"},
    "PersistentVolumeClaimSpec": {
        "accessModes": ["str"], "selector": "LabelSelector",
        "resources": "VolumeResourceRequirements", "volumeName": "str",
        "storageClassName": "str", "volumeMode": "str", "dataSource": "any",
        "dataSourceRef": "any", "volumeAttributesClassName": "str"},
    "VolumeResourceRequirements": {"limits": "resources", "requests": "resources"},
    "PodTemplateSpec": {"metadata": "ObjectMeta", "spec": "PodSpec"},
    "PodSpec": {
        "volumes": ["Volume"], "initContainers": ["Container"], "containers": ["Container"],
        "ephemeralContainers": "any", "restartPolicy": "str",
        "terminationGracePeriodSeconds": "int", "activeDeadlineSeconds": "int",
        "dnsPolicy": "str", "nodeSelector": "map", "serviceAccountName": "str",
        "serviceAccount": "str", "automountServiceAccountToken": "bool", "nodeName": "str",
        "hostNetwork": "bool", "hostPID": "bool", "hostIPC": "bool",
        "shareProcessNamespace": "bool", "securityContext": "PodSecurityContext",
        "imagePullSecrets": ["LocalObjectReference"], "hostname": "str", "subdomain": "str",
        "affinity": "any", "schedulerName": "str", "tolerations": "any", "hostAliases": "any",
        "priorityClassName": "str", "priority": "int", "dnsConfig": "any",
        "readinessGates": "any", "runtimeClassName": "str", "enableServiceLinks": "bool",
        "preemptionPolicy": "str", "overhead": "resources",
        "topologySpreadConstraints": ["TopologySpreadConstraint"],
        "setHostnameAsFQDN": "bool", "os": "any", "hostUsers": "bool",
        "schedulingGates": "any", "resourceClaims": "any"},
    "PodSecurityContext": {
        "seLinuxOptions": "any", "windowsOptions": "any", "runAsUser": "int",
        "runAsGroup": "int", "runAsNonRoot": "bool", "supplementalGroups": ["int"],
        "supplementalGroupsPolicy": "str", "fsGroup": "int", "sysctls": "any",
        "fsGroupChangePolicy": "str", "seccompProfile": "SeccompProfile",
        "appArmorProfile": "any", "seLinuxChangePolicy": "str"},
    "SeccompProfile": {"type": "str", "localhostProfile": "str"},
    "TopologySpreadConstraint": {
        "maxSkew": "int", "topologyKey": "str", "whenUnsatisfiable": "str",
        "labelSelector": "LabelSelector", "minDomains": "int", "nodeAffinityPolicy": "str",
        "nodeTaintsPolicy": "str", "matchLabelKeys": ["str"]},
    "Container": {
        "name": "str", "image": "str", "command": ["str"], "args": ["str"],
        "workingDir": "str", "ports": ["ContainerPort"], "envFrom": ["EnvFromSource"],
        "env": ["EnvVar"], "resources": "ResourceRequirements", "resizePolicy": "any",
        "restartPolicy": "str", "volumeMounts": ["VolumeMount"], "volumeDevices": "any",
        "livenessProbe": "Probe", "readinessProbe": "Probe", "startupProbe": "Probe",
        "lifecycle": "Lifecycle", "terminationMessagePath": "str",
        "terminationMessagePolicy": "str", "imagePullPolicy": "str",
        "securityContext": "SecurityContext", "stdin": "bool", "stdinOnce": "bool",
        "tty": "bool"},
    "ContainerPort": {"name": "str", "hostPort": "int", "containerPort": "int",
                      "protocol": "str", "hostIP": "str"},
    "EnvFromSource": {"prefix": "str", "configMapRef": "OptionalRef", "secretRef": "OptionalRef"},
    "OptionalRef": {"name": "str", "optional": "bool"},
    "EnvVar": {"name": "str", "value": "str", "valueFrom": "EnvVarSource"},
    "EnvVarSource": {"fieldRef": "ObjectFieldSelector", "resourceFieldRef": "any",
                     "configMapKeyRef": "KeySelector", "secretKeyRef": "KeySelector"},
    "ObjectFieldSelector": {"apiVersion": "str", "fieldPath": "str"},
    "KeySelector": {"name": "str", "key": "str", "optional": "bool"},
    "ResourceRequirements": {"limits": "resources", "requests": "resources", "claims": "any"},
    "VolumeMount": {"name": "str", "readOnly": "bool", "recursiveReadOnly": "str",
                    "mountPath": "str", "subPath": "str", "mountPropagation": "str",
                    "subPathExpr": "str"},
    "Probe": {"exec": "ExecAction", "httpGet": "HTTPGetAction", "tcpSocket": "TCPSocketAction",
              "grpc": "GRPCAction", "initialDelaySeconds": "int", "timeoutSeconds": "int",
              "periodSeconds": "int", "successThreshold": "int", "failureThreshold": "int",
              "terminationGracePeriodSeconds": "int"},
    "ExecAction": {"command": ["str"]},
    "HTTPGetAction": {"path": "str", "port": "intstr", "host": "str", "scheme": "str",
                      "httpHeaders": "any"},
    "TCPSocketAction": {"port": "intstr", "host": "str"},
    "GRPCAction": {"port": "int", "service": "str"},
    "Lifecycle": {"postStart": "LifecycleHandler", "preStop": "LifecycleHandler",
                  "stopSignal": "str"},
    "LifecycleHandler": {"exec": "ExecAction", "httpGet": "HTTPGetAction",
                         "tcpSocket": "TCPSocketAction", "sleep": {"seconds": "int"}},
    "SecurityContext": {
        "capabilities": "Capabilities", "privileged": "bool", "seLinuxOptions": "any",
        "windowsOptions": "any", "runAsUser": "int", "runAsGroup": "int",
        "runAsNonRoot": "bool", "readOnlyRootFilesystem": "bool",
        "allowPrivilegeEscalation": "bool", "procMount": "str",
        "seccompProfile": "SeccompProfile", "appArmorProfile": "any"},
    "Capabilities": {"add": ["str"], "drop": ["str"]},
    "Volume": {
        "name": "str", "hostPath": "any", "emptyDir": "EmptyDirVolumeSource",
        "gcePersistentDisk": "any", "awsElasticBlockStore": "any", "gitRepo": "any",
        "secret": "SecretVolumeSource", "nfs": "any", "iscsi": "any", "glusterfs": "any",
        "persistentVolumeClaim": {"claimName": "str", "readOnly": "bool"}, "rbd": "any",
        "flexVolume": "any", "cinder": "any", "cephfs": "any", "flocker": "any",
        "downwardAPI": "any", "fc": "any", "azureFile": "any",
        "configMap": "ConfigMapVolumeSource", "vsphereVolume": "any", "quobyte": "any",
        "azureDisk": "any", "photonPersistentDisk": "any", "projected": "any",
        "portworxVolume": "any", "scaleIO": "any", "storageos": "any", "csi": "any",
        "ephemeral": "any", "image": "any"},
    "EmptyDirVolumeSource": {"medium": "str", "sizeLimit": "quantity"},
    "SecretVolumeSource": {"secretName": "str", "items": ["KeyToPath"], "defaultMode": "int",
                           "optional": "bool"},
    "ConfigMapVolumeSource": {"name": "str", "items": ["KeyToPath"], "defaultMode": "int",
                              "optional": "bool"},
    "KeyToPath": {"key": "str", "path": "str", "mode": "int"},

    # apps/v1
    "StatefulSet": {"apiVersion": "str", "kind": "str", "metadata": "ObjectMeta",
                    "spec": "StatefulSetSpec", "status": "any"},
    "StatefulSetSpec": {
        "replicas": "int", "selector": "LabelSelector", "template": "PodTemplateSpec",
        "volumeClaimTemplates": ["PersistentVolumeClaim"], "serviceName": "str",
        "podManagementPolicy": "str", "updateStrategy": "StatefulSetUpdateStrategy",
        "revisionHistoryLimit": "int", "minReadySeconds": "int",
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "str", "whenScaled": "str"},
        "ordinals": {"start": "int"}},
    "StatefulSetUpdateStrategy": {"type": "str",
                                  "rollingUpdate": {"partition": "int",
                                                    "maxUnavailable": "intstr"}},
    "Deployment": {"apiVersion": "str", "kind": "str", "metadata": "ObjectMeta",
                   "spec": "DeploymentSpec", "status": "any"},
    "DeploymentSpec": {
        "replicas": "int", "selector": "LabelSelector", "template": "PodTemplateSpec",
        "strategy": "DeploymentStrategy", "minReadySeconds": "int",
        "revisionHistoryLimit": "int", "paused": "bool", "progressDeadlineSeconds": "int"},
    "DeploymentStrategy": {"type": "str",
                           "rollingUpdate": {"maxUnavailable": "intstr", "maxSurge": "intstr"}},

    # autoscaling/v2
    "HorizontalPodAutoscaler": {"apiVersion": "str", "kind": "str", "metadata": "ObjectMeta",
                                "spec": "HPASpec", "status": "any"},
    "HPASpec": {"scaleTargetRef": "CrossVersionObjectReference", "minReplicas": "int",
                "maxReplicas": "int", "metrics": ["MetricSpec"], "behavior": "HPABehavior"},
    "CrossVersionObjectReference": {"kind": "str", "name": "str", "apiVersion": "str"},
    "MetricSpec": {"type": "str", "object": "any", "pods": "any",
                   "resource": "ResourceMetricSource", "containerResource": "any",
                   "external": "any"},
    "ResourceMetricSource": {"name": "str", "target": "MetricTarget"},
    "MetricTarget": {"type": "str", "value": "quantity", "averageValue": "quantity",
                     "averageUtilization": "int"},
    "HPABehavior": {"scaleUp": "HPAScalingRules", "scaleDown": "HPAScalingRules"},
    "HPAScalingRules": {"stabilizationWindowSeconds": "int", "selectPolicy": "str",
                        "policies": ["HPAScalingPolicy"], "tolerance": "quantity"},
    "HPAScalingPolicy": {"type": "str", "value": "int", "periodSeconds": "int"},

    # policy/v1
    "PodDisruptionBudget": {"apiVersion": "str", "kind": "str", "metadata": "ObjectMeta",
                            "spec": "PDBSpec", "status": "any"},
    "PDBSpec": {"minAvailable": "intstr", "selector": "LabelSelector",
                "maxUnavailable": "intstr", "unhealthyPodEvictionPolicy": "str"},

    # networking.k8s.io/v1
    "Ingress": {"apiVersion": "str", "kind": "str", "metadata": "ObjectMeta",
                "spec": "IngressSpec", "status": "any"},
    "IngressSpec": {"ingressClassName": "str", "defaultBackend": "IngressBackend",
                    "tls": ["IngressTLS"], "rules": ["IngressRule"]},
    "IngressTLS": {"hosts": ["str"], "secretName": "str"},
    "IngressRule": {"host": "str", "http": {"paths": ["HTTPIngressPath"]}},
    "HTTPIngressPath": {"path": "str", "pathType": "str", "backend": "IngressBackend"},
    "IngressBackend": {"resource": "any", "service": "IngressServiceBackend"},
    "IngressServiceBackend": {"name": "str", "port": {"name": "str", "number": "int"}},

    "NetworkPolicy": {"apiVersion": "str", "kind": "str", "metadata": "ObjectMeta",
                      "spec": "NetworkPolicySpec"},
    "NetworkPolicySpec": {"podSelector": "LabelSelector",
                          "ingress": ["NetworkPolicyIngressRule"],
                          "egress": ["NetworkPolicyEgressRule"], "policyTypes": ["str"]},
    "NetworkPolicyIngressRule": {"from": ["NetworkPolicyPeer"], "ports": ["NetworkPolicyPort"]},
    "NetworkPolicyEgressRule": {"to": ["NetworkPolicyPeer"], "ports": ["NetworkPolicyPort"]},
    "NetworkPolicyPeer": {"podSelector": "LabelSelector", "namespaceSelector": "LabelSelector",
                          "ipBlock": "IPBlock"},
    "NetworkPolicyPort": {"protocol": "str", "port": "intstr", "endPort": "int"},
    "IPBlock": {"cidr": "str", "except": ["str"]},

    # batch/v1
    "Job": {"apiVersion": "str", "kind": "str", "metadata": "ObjectMeta", "spec": "JobSpec",
            "status": "any"},
    "JobSpec": {
        "parallelism": "int", "completions": "int", "activeDeadlineSeconds": "int",
        "podFailurePolicy": "any", "successPolicy": "any", "backoffLimit": "int",
        "backoffLimitPerIndex": "int", "maxFailedIndexes": "int", "selector": "LabelSelector",
        "manualSelector": "bool", "template": "PodTemplateSpec",
        "ttlSecondsAfterFinished": "int", "completionMode": "str", "suspend": "bool",
        "podReplacementPolicy": "str", "managedBy": "str"},
}

# Required fields per type (the API server rejects an object without them).
REQUIRED = {
    "Container": ["name", "image"],
    "ContainerPort": ["containerPort"],
    "EnvVar": ["name"],
    "VolumeMount": ["name", "mountPath"],
    "Volume": ["name"],
    "ServicePort": ["port"],
    "KeyToPath": ["key", "path"],
    "KeySelector": ["key"],
    "ObjectFieldSelector": ["fieldPath"],
    "LabelSelectorRequirement": ["key", "operator"],
    "TopologySpreadConstraint": ["maxSkew", "topologyKey", "whenUnsatisfiable"],
    "PodSpec": ["containers"],
    "StatefulSetSpec": ["selector", "template"],
    "DeploymentSpec": ["selector", "template"],
    "JobSpec": ["template"],
    "NetworkPolicySpec": ["podSelector"],
    "IPBlock": ["cidr"],
    "HPASpec": ["scaleTargetRef", "maxReplicas"],
    "CrossVersionObjectReference": ["kind", "name"],
    "MetricSpec": ["type"],
    "MetricTarget": ["type"],
    "ResourceMetricSource": ["name", "target"],
    "GRPCAction": ["port"],
    "HTTPGetAction": ["port"],
    "TCPSocketAction": ["port"],
    "HPAScalingPolicy": ["type", "value", "periodSeconds"],
    "HTTPIngressPath": ["pathType", "backend"],
    "IngressServiceBackend": ["name"],
}

ROOTS = {
    ("v1", "Namespace"), ("v1", "ServiceAccount"), ("v1", "ConfigMap"), ("v1", "Secret"),
    ("v1", "Service"), ("apps/v1", "StatefulSet"), ("apps/v1", "Deployment"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"), ("policy/v1", "PodDisruptionBudget"),
    ("batch/v1", "Job"), ("networking.k8s.io/v1", "Ingress"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
}

RESOURCE_NAMES = {"cpu", "memory", "ephemeral-storage", "storage"}


def _leaf(kind, value, path, errors):
    ok = {
        "str": lambda v: isinstance(v, str),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "intstr": lambda v: isinstance(v, (int, str)) and not isinstance(v, bool),
        "quantity": lambda v: isinstance(v, (int, float, str)) and not isinstance(v, bool),
        "map": lambda v: isinstance(v, dict) and all(
            isinstance(k, str) and isinstance(x, str) for k, x in v.items()),
        "any": lambda v: True,
    }
    if kind == "resources":
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map of resource quantities")
            return
        for k, v in value.items():
            if k not in RESOURCE_NAMES and "/" not in k:
                errors.append(f"{path}.{k}: unknown resource name")
            _leaf("quantity", v, f"{path}.{k}", errors)
        return
    if not ok[kind](value):
        errors.append(f"{path}: expected {kind}, got {type(value).__name__} {value!r}")


def validate(spec, value, path, errors, type_name=None):
    """Validates |value| against |spec| (a type name, leaf kind, inline dict or [T])."""
    if isinstance(spec, list):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list")
            return
        for i, v in enumerate(value):
            validate(spec[0], v, f"{path}[{i}]", errors)
        return
    if isinstance(spec, str) and spec in TYPES:
        validate(TYPES[spec], value, path, errors, spec)
        return
    if isinstance(spec, str):
        _leaf(spec, value, path, errors)
        return
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object")
        return
    for k, v in value.items():
        if k not in spec:
            errors.append(f"{path}.{k}: unknown field" +
                          (f" of {type_name}" if type_name else ""))
            continue
        validate(spec[k], v, f"{path}.{k}", errors)
    for k in REQUIRED.get(type_name, []):
        if k not in value:
            errors.append(f"{path}: missing required field {k}")


def validate_object(obj):
    """Returns a list of errors for one top-level object."""
    if not isinstance(obj, dict):
        return ["object is not a mapping"]
    key = (obj.get("apiVersion"), obj.get("kind"))
    name = obj.get("metadata", {}).get("name", "?")
    where = f"{key[1]}/{name}"
    if key not in ROOTS:
        return [f"{where}: apiVersion/kind {key} is not one this checker knows"]
    errors = []
    validate(key[1], obj, where, errors)
    if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
        errors.append(f"{where}: missing metadata.name")
    return errors
