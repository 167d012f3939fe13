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

{{- define "spore.activatorName" -}}
{{- printf "%s-activator" (include "spore.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "spore.activatorSelectorLabels" -}}
app.kubernetes.io/name: spore
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: activator
{{- end -}}

{{- define "spore.activatorImage" -}}
{{- printf "%s:%s" .Values.image.activator.repository (default .Chart.AppVersion .Values.image.activator.tag) -}}
{{- end -}}

{{/* Whole seconds of a duration written as 30s, 2m or 1h. */}}
{{- define "spore.seconds" -}}
{{- $d := toString . -}}
{{- if hasSuffix "ms" $d -}}1
{{- else if hasSuffix "s" $d -}}{{ trimSuffix "s" $d | int }}
{{- else if hasSuffix "m" $d -}}{{ mul (trimSuffix "m" $d | int) 60 }}
{{- else if hasSuffix "h" $d -}}{{ mul (trimSuffix "h" $d | int) 3600 }}
{{- else -}}{{ $d | int }}
{{- end -}}
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
