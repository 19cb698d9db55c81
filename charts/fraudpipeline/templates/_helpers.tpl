{{/* Chart name, truncated for label values. */}}
{{- define "fraudpipeline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name of the operator's objects. */}}
{{- define "fraudpipeline.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "fraudpipeline.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "fraudpipeline.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "fraudpipeline.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "fraudpipeline.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fraudpipeline
{{- end }}

{{/* Stable labels that select the operator pod. */}}
{{- define "fraudpipeline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fraudpipeline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* ServiceAccount of the operator. */}}
{{- define "fraudpipeline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fraudpipeline.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* ClusterRole bound to each pipeline's Flink ServiceAccount. */}}
{{- define "fraudpipeline.flinkJobClusterRole" -}}
{{- default (printf "%s-flink-job" (include "fraudpipeline.fullname" .)) .Values.flinkJob.clusterRoleName }}
{{- end }}

{{/* Operator image reference. */}}
{{- define "fraudpipeline.image" -}}
{{- printf "%s:%s" .Values.operator.image.repository (default .Chart.AppVersion .Values.operator.image.tag) }}
{{- end }}

{{/* The operator's rules on namespaced resources: in its ClusterRole (all namespaces), or in a Role
of each watched namespace (operator.watchNamespaces). Every rule says which part uses it. */}}
{{- define "fraudpipeline.namespacedRules" -}}
# Application: events.k8s.io Events on FraudPipelines (transitions and errors), posted by the reconciler.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
# Application: the FraudPipeline resource. patch = our finalizer.
- apiGroups: ["frauddetect.dev"]
  resources: ["fraudpipelines"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["frauddetect.dev"]
  resources: ["fraudpipelines/status"]
  verbs: ["get", "patch"]
# Application: owner references with blockOwnerDeletion (OwnerReferencesPermissionEnforcement).
- apiGroups: ["frauddetect.dev"]
  resources: ["fraudpipelines/finalizers"]
  verbs: ["update"]
# Application: children we own (watched for status and drift, applied, pruned).
- apiGroups: ["kafka.strimzi.io"]
  resources: ["kafkatopics", "kafkabridges"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["flink.apache.org"]
  resources: ["flinkdeployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "serviceaccounts", "configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors", "podmonitors", "prometheusrules"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Application: each pipeline's Flink ServiceAccount is bound to the Flink job ClusterRole;
# `bind` on that one role only, instead of holding its permissions ourselves.
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["rolebindings"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["clusterroles"]
  verbs: ["bind"]
  resourceNames: [{{ include "fraudpipeline.flinkJobClusterRole" . | quote }}]
{{- end }}
