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
