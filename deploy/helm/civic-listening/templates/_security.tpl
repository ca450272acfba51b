{{/*
Authentication, TLS, reflection and rate limits of the gRPC services (SECURITY.md): environment,
volumes and mounts shared by the service pods and the Ray pods. Secrets are only referenced.
*/}}
{{- define "civic.authSecret" -}}
{{ .Values.security.auth.secretName | default (printf "%s-auth" (include "civic.fullname" .)) }}
{{- end -}}

{{- define "civic.serviceTokenSecret" -}}
{{ .Values.security.auth.serviceToken.secretName | default (printf "%s-service-token" (include "civic.fullname" .)) }}
{{- end -}}

{{- define "civic.tlsSecret" -}}
{{ .Values.security.tls.secretName | default (printf "%s-tls" (include "civic.fullname" .)) }}
{{- end -}}

{{- define "civic.securityEnv" -}}
{{- $s := .Values.security -}}
- {name: CIVIC_REFLECTION, value: {{ $s.reflection | quote }}}
{{- if $s.auth.enabled }}
{{- if $s.auth.keysKey }}
- {name: CIVIC_AUTH_KEYS_FILE, value: {{ printf "/etc/civic/auth/%s" $s.auth.keysKey | quote }}}
{{- end }}
{{- if $s.auth.jwksKey }}
- {name: CIVIC_AUTH_JWKS_FILE, value: {{ printf "/etc/civic/auth/%s" $s.auth.jwksKey | quote }}}
- {name: CIVIC_AUTH_JWT_ISSUER, value: {{ $s.auth.jwtIssuer | quote }}}
- {name: CIVIC_AUTH_JWT_AUDIENCE, value: {{ $s.auth.jwtAudience | quote }}}
{{- end }}
- name: CIVIC_AUTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "civic.serviceTokenSecret" . }}
      key: {{ $s.auth.serviceToken.key }}
- {name: CIVIC_RATE_LIMIT_PER_S, value: {{ $s.rateLimit.perSecond | quote }}}
- {name: CIVIC_RATE_LIMIT_BURST, value: {{ $s.rateLimit.burst | quote }}}
- {name: CIVIC_AUDIT_INDEX, value: {{ $s.auditIndex | quote }}}
{{- end }}
{{- if $s.tls.enabled }}
- {name: CIVIC_TLS_CERT_FILE, value: /etc/civic/tls/tls.crt}
- {name: CIVIC_TLS_KEY_FILE, value: /etc/civic/tls/tls.key}
- {name: CIVIC_TLS_CA_FILE, value: /etc/civic/tls/ca.crt}
- {name: CIVIC_HEALTH_PORT, value: {{ $s.tls.healthPort | quote }}}
{{- if $s.tls.requireClientCert }}
- {name: CIVIC_TLS_REQUIRE_CLIENT_CERT, value: "true"}
- {name: CIVIC_TLS_CLIENT_CERT_FILE, value: /etc/civic/tls/tls.crt}
- {name: CIVIC_TLS_CLIENT_KEY_FILE, value: /etc/civic/tls/tls.key}
{{- end }}
{{- end }}
{{- end -}}

{{- define "civic.securityVolumes" -}}
{{- if .Values.security.auth.enabled }}
- name: auth
  secret:
    secretName: {{ include "civic.authSecret" . }}
{{- end }}
{{- if .Values.security.tls.enabled }}
- name: tls
  secret:
    secretName: {{ include "civic.tlsSecret" . }}
{{- end }}
{{- end -}}

{{- define "civic.securityVolumeMounts" -}}
{{- if .Values.security.auth.enabled }}
- {name: auth, mountPath: /etc/civic/auth, readOnly: true}
{{- end }}
{{- if .Values.security.tls.enabled }}
- {name: tls, mountPath: /etc/civic/tls, readOnly: true}
{{- end }}
{{- end -}}

{{/* Probes reach the plaintext health port when the service port speaks TLS (kubelet has no TLS). */}}
{{- define "civic.probePort" -}}
{{ ternary .root.Values.security.tls.healthPort .port .root.Values.security.tls.enabled }}
{{- end -}}
