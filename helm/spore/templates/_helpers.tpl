{{/* Names and labels shared by every template. */}}

{{- define "spore.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "spore.operatorName" -}}
{{- printf "%s-operator" (include "spore.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "spore.installerName" -}}
{{- printf "%s-node-installer" (include "spore.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "spore.labels" -}}
app.kubernetes.io/name: spore
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "spore.selectorLabels" -}}
app.kubernetes.io/name: spore
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "spore.operatorImage" -}}
{{- printf "%s:%s" .Values.image.operator.repository (default .Chart.AppVersion .Values.image.operator.tag) -}}
{{- end -}}

{{- define "spore.installerImage" -}}
{{- printf "%s:%s" .Values.image.installer.repository (default .Chart.AppVersion .Values.image.installer.tag) -}}
{{- end -}}
