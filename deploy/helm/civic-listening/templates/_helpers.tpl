{{/* Names, labels and the pieces every gRPC service shares. */}}

{{- define "civic.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Kept short: components append "-ingestion-headless" and Kubernetes names stop at 63. */}}
{{- define "civic.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains (include "civic.name" .) .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "civic.name" .) | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "civic.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "civic.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: civic-listening
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "component" "search"). */}}
{{- define "civic.selectorLabels" -}}
app.kubernetes.io/name: {{ include "civic.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "civic.componentLabels" -}}
{{ include "civic.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "civic.image" -}}
{{- $tag := .image.tag | default .root.Chart.AppVersion -}}
{{- if .image.digest -}}
{{ .image.repository }}@{{ .image.digest }}
{{- else -}}
{{ .image.repository }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{- define "civic.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create -}}
{{ include "civic.fullname" .root }}-{{ .component }}
{{- else -}}
default
{{- end -}}
{{- end -}}

{{/* In-cluster addresses of every component. */}}
{{- define "civic.target" -}}
{{ include "civic.fullname" .root }}-{{ .component }}:{{ index .root.Values .component "port" }}
{{- end -}}

{{- define "civic.inferenceTarget" -}}
{{ include "civic.fullname" . }}-inference:{{ .Values.inference.grpcPort }}
{{- end -}}

{{- define "civic.eckName" -}}
{{ include "civic.fullname" . }}-es
{{- end -}}

{{- define "civic.esUrl" -}}
{{- if eq .Values.elasticsearch.mode "eck" -}}
https://{{ include "civic.eckName" . }}-es-http:9200
{{- else -}}
{{ .Values.elasticsearch.external.url }}
{{- end -}}
{{- end -}}

{{/* Port of the Elasticsearch URL, for the search pods' egress rule. */}}
{{- define "civic.esPort" -}}
{{- $url := urlParse (include "civic.esUrl" .) -}}
{{- $hostPort := splitList ":" $url.host -}}
{{- if gt (len $hostPort) 1 -}}
{{ last $hostPort }}
{{- else if eq $url.scheme "https" -}}
443
{{- else -}}
80
{{- end -}}
{{- end -}}

{{- define "civic.otlpEndpoint" -}}
{{- if .Values.telemetry.otlpEndpoint -}}
{{ .Values.telemetry.otlpEndpoint }}
{{- else if .Values.telemetry.collector.enabled -}}
http://{{ include "civic.fullname" . }}-otel-collector:4317
{{- end -}}
{{- end -}}

{{- define "civic.configChecksum" -}}
{{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end -}}

{{/* Environment every process gets besides the ConfigMap: secrets by reference only. */}}
{{- define "civic.secretEnv" -}}
{{- $es := .Values.elasticsearch -}}
{{- if eq $es.mode "eck" }}
- name: ES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "civic.eckName" . }}-es-elastic-user
      key: elastic
{{- else if $es.external.credentialsSecret.name }}
{{- if $es.external.credentialsSecret.apiKeyKey }}
- name: ES_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $es.external.credentialsSecret.name }}
      key: {{ $es.external.credentialsSecret.apiKeyKey }}
{{- else }}
- name: ES_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $es.external.credentialsSecret.name }}
      key: {{ $es.external.credentialsSecret.usernameKey }}
- name: ES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $es.external.credentialsSecret.name }}
      key: {{ $es.external.credentialsSecret.passwordKey }}
{{- end }}
{{- end }}
{{- range .Values.secretEnv }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .key }}
{{- end }}
{{- include "civic.securityEnv" . | nindent 0 }}
{{- end -}}

{{/* The CA bundle of Elasticsearch: ECK's public CA, or the operator-provided secret. */}}
{{- define "civic.esCaSecret" -}}
{{- if eq .Values.elasticsearch.mode "eck" -}}
{{ include "civic.eckName" . }}-es-http-certs-public
{{- else -}}
{{ .Values.elasticsearch.external.caSecret.name }}
{{- end -}}
{{- end -}}

{{- define "civic.esCaKey" -}}
{{- if eq .Values.elasticsearch.mode "eck" -}}
ca.crt
{{- else -}}
{{ .Values.elasticsearch.external.caSecret.key }}
{{- end -}}
{{- end -}}

{{/* gRPC health probes of a service on its port; call with (dict "root" $ "port" 50051). */}}
{{- define "civic.grpcProbes" -}}
{{- $p := .root.Values.probes -}}
startupProbe:
  grpc: {port: {{ include "civic.probePort" . }}}
  periodSeconds: {{ $p.startup.periodSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
readinessProbe:
  grpc: {port: {{ include "civic.probePort" . }}}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
livenessProbe:
  grpc: {port: {{ include "civic.probePort" . }}}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
{{- end -}}

{{/* "true" when alerting keeps its state in the shared PostgreSQL (a Secret names its URL). */}}
{{- define "civic.alertingShared" -}}
{{- if .Values.alerting.database.urlSecret.name }}true{{ else }}false{{ end -}}
{{- end -}}

{{/* Alerting's replicas: as set, else 2 on the shared database and 1 on its SQLite volume. */}}
{{- define "civic.alertingReplicas" -}}
{{- $v := .Values.alerting -}}
{{- if hasKey $v "replicas" }}{{ $v.replicas }}{{ else }}{{ ternary 2 1 (eq (include "civic.alertingShared" .) "true") }}{{ end -}}
{{- end -}}
