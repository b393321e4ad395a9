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

{{/* The rules the operator needs on the namespaces it watches. */}}
{{- define "krait-operator.rules" -}}
- apiGroups: [krait.dev]
  resources: [kafkaclusters, kafkatopics]
  verbs: [get, list, watch, patch]
- apiGroups: [krait.dev]
  resources: [kafkaclusters/status, kafkatopics/status]
  verbs: [get, patch]
# Owner references with blockOwnerDeletion need update on the owner's finalizers.
- apiGroups: [krait.dev]
  resources: [kafkaclusters/finalizers, kafkatopics/finalizers]
  verbs: [update]
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services, configmaps, serviceaccounts]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# Restarts go through the Eviction API, so PodDisruptionBudgets and node drains are respected.
- apiGroups: [""]
  resources: [pods/eviction]
  verbs: [create]
{{- end -}}
