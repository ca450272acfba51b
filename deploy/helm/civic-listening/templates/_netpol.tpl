{{/* Building blocks of the NetworkPolicies. */}}

{{- define "civic.peer" -}}
- podSelector:
    matchLabels:
      {{- include "civic.selectorLabels" . | nindent 6 }}
{{- end -}}

{{- define "civic.dnsEgress" -}}
- to:
    - namespaceSelector:
        {{- toYaml .Values.networkPolicy.dns.namespaceSelector | nindent 8 }}
      podSelector:
        {{- toYaml .Values.networkPolicy.dns.podSelector | nindent 8 }}
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- end -}}

{{- define "civic.otlpEgress" -}}
{{- $otlp := include "civic.otlpEndpoint" . -}}
{{- if .Values.telemetry.collector.enabled }}
- to:
    {{- include "civic.peer" (dict "root" . "component" "otel-collector") | nindent 4 }}
  ports:
    - {port: 4317, protocol: TCP}
{{- else if $otlp }}
{{- $url := urlParse $otlp }}
{{- $hostPort := splitList ":" $url.host }}
- ports:
    - {port: {{ ternary (last $hostPort) "4317" (gt (len $hostPort) 1) }}, protocol: TCP}
{{- end }}
{{- end -}}
