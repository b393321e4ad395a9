{{/* Name of the chart's objects: the release name, with the chart name unless it contains it. */}}
{{- define "krait-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "krait-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "krait-operator.labels" -}}
{{ include "krait-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "krait-operator.serviceAccountName" -}}
{{- default (include "krait-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The rules the operator needs on the namespaces it watches: exactly what it asks for, as
recorded from its scenario tests in operator/reconciler/tests/rbac/ and held to these rules by
tests/integration/test_rbac.py. */}}
{{- define "krait-operator.rules" -}}
# get: a topic reads its cluster; patch: a handled krait.dev/rebalance annotation is removed.
- apiGroups: [krait.dev]
  resources: [kafkaclusters]
  verbs: [get, list, watch, patch]
# patch: the topic and user finalizers.
- apiGroups: [krait.dev]
  resources: [kafkatopics, kafkausers]
  verbs: [list, watch, patch]
- apiGroups: [krait.dev]
  resources: [kafkaclusters/status, kafkatopics/status, kafkausers/status]
  verbs: [patch]
# Owner references with blockOwnerDeletion need update on the owner's finalizers (a cluster's
# objects, a user's generated credentials Secret).
- apiGroups: [krait.dev]
  resources: [kafkaclusters/finalizers, kafkausers/finalizers]
  verbs: [update]
# What a cluster owns: watched, server-side applied (patch; create when new), leftovers deleted.
# get: a StatefulSet re-created for a new volume size is waited on until it is gone.
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, list, watch, create, patch, delete]
# The brokers' volume claims (made by the StatefulSet controller): read for status, and asked
# for a larger size when storage.size grows. Never deleted by the operator.
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [list, patch]
- apiGroups: [""]
  resources: [services, configmaps, serviceaccounts]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, create, patch, delete]
# The cluster CA and the brokers' certificates, the operator's and the KafkaUsers' credentials:
# read back, watched, server-side applied. get: the password Secret a KafkaUser names (the
# code reads no other Secret it did not make). Never deleted by the operator (garbage
# collection removes them with their KafkaCluster or KafkaUser).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# Restarts go through the Eviction API, so PodDisruptionBudgets and node drains are respected.
- apiGroups: [""]
  resources: [pods/eviction]
  verbs: [create]
# Events for kubectl describe: created, and a repeat counted on the first one (its series).
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# A cluster's PodMonitor (spec.metrics.podMonitor), only where the Prometheus Operator's CRDs
# are installed (found by API discovery, which needs no rule): read by label, server-side
# applied (patch; create when new), deleted when disabled.
- apiGroups: [monitoring.coreos.com]
  resources: [podmonitors]
  verbs: [list, create, patch, delete]
# The brokers' cert-manager Certificates (spec.clusterCa.issuerRef), only where cert-manager is
# installed (found by API discovery): read by label, server-side applied (patch; create when
# new), deleted for a broker scaled away. The Secrets cert-manager writes carry the cluster's
# labels and are read with the rule above.
- apiGroups: [cert-manager.io]
  resources: [certificates]
  verbs: [list, create, patch, delete]
{{- end -}}
