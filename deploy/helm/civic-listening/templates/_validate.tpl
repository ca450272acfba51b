{{/* Checks the schema cannot express; each failure names the value and the fix. */}}
{{- define "civic.validate" -}}
{{- range $component := list "ingestion" "search" }}
{{- $a := (index $.Values $component).autoscaling }}
{{- if and $a.enabled (lt (int $a.maxReplicas) (int $a.minReplicas)) }}
{{- fail (printf "%s.autoscaling.maxReplicas (%v) must be >= %s.autoscaling.minReplicas (%v)" $component $a.maxReplicas $component $a.minReplicas) }}
{{- end }}
{{- end }}
{{- $al := .Values.alerting }}
{{- if ne (include "civic.alertingShared" .) "true" }}
{{- if gt (int (include "civic.alertingReplicas" .)) 1 }}
{{- fail (printf "alerting.replicas (%v) > 1 needs a shared store: set alerting.database.urlSecret.name to a Secret with the PostgreSQL URL (without it alerting keeps its state in one SQLite file, one replica)" $al.replicas) }}
{{- end }}
{{- if $al.autoscaling.enabled }}
{{- fail "alerting.autoscaling.enabled needs a shared store: set alerting.database.urlSecret.name to a Secret with the PostgreSQL URL" }}
{{- end }}
{{- end }}
{{- if and $al.autoscaling.enabled (lt (int $al.autoscaling.maxReplicas) (int $al.autoscaling.minReplicas)) }}
{{- fail (printf "alerting.autoscaling.maxReplicas (%v) must be >= alerting.autoscaling.minReplicas (%v)" $al.autoscaling.maxReplicas $al.autoscaling.minReplicas) }}
{{- end }}
{{- $inf := .Values.inference }}
{{- if $inf.enabled }}
{{- $w := $inf.worker }}
{{- if or (lt (int $w.maxReplicas) (int $w.minReplicas)) (lt (int $w.replicas) (int $w.minReplicas)) (gt (int $w.replicas) (int $w.maxReplicas)) }}
{{- fail (printf "inference.worker: need minReplicas (%v) <= replicas (%v) <= maxReplicas (%v)" $w.minReplicas $w.replicas $w.maxReplicas) }}
{{- end }}
{{- $ms := $inf.modelServer.autoscaling }}
{{- if and $ms.enabled (lt (int $ms.maxReplicas) (int $ms.minReplicas)) }}
{{- fail (printf "inference.modelServer.autoscaling.maxReplicas (%v) must be >= minReplicas (%v)" $ms.maxReplicas $ms.minReplicas) }}
{{- end }}
{{- end }}
{{- $ext := .Values.elasticsearch.external }}
{{- if and (eq .Values.elasticsearch.mode "external") $ext.credentialsSecret.name (not $ext.credentialsSecret.apiKeyKey) (not (and $ext.credentialsSecret.usernameKey $ext.credentialsSecret.passwordKey)) }}
{{- fail "elasticsearch.external.credentialsSecret: set apiKeyKey, or both usernameKey and passwordKey" }}
{{- end }}
{{- if and (eq .Values.elasticsearch.mode "external") $ext.caSecret.name (not (hasPrefix "https://" $ext.url)) }}
{{- fail "elasticsearch.external.caSecret is set but elasticsearch.external.url is not https://" }}
{{- end }}
{{- end -}}
