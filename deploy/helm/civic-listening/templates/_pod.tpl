{{/*
The pod template of a gRPC service. Call with
(dict "root" $ "component" "search" "values" .Values.search "module" "services.search" "stateDir" "/var/lib/civic").
stateDir, when given, is the mount path of the "data" volume (a PVC claimed by the caller).
secretEnv, when given, lists {name, secretName, key}: variables of this component read from Secrets.
*/}}
{{- define "civic.servicePod" -}}
{{- $root := .root -}}
{{- $v := .values -}}
metadata:
  labels:
    {{- include "civic.componentLabels" . | nindent 4 }}
  annotations:
    checksum/config: {{ include "civic.configChecksum" $root }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "civic.serviceAccountName" . }}
  automountServiceAccountToken: {{ $root.Values.serviceAccount.automountToken }}
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ include "civic.image" (dict "root" $root "image" $root.Values.image) | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      command: ["python", "-m", {{ .module | quote }}]
      ports:
        - name: grpc
          containerPort: {{ $v.port }}
          protocol: TCP
      envFrom:
        - configMapRef:
            name: {{ include "civic.fullname" $root }}-config
      env:
        - name: OTEL_SERVICE_NAME
          value: {{ .component | quote }}
        - name: OTEL_RESOURCE_ATTRIBUTES
          value: "service.namespace=civic-listening,deployment.environment={{ $root.Release.Namespace }}"
        {{- range $name, $value := .env }}
        - name: {{ $name }}
          value: {{ $value | quote }}
        {{- end }}
        {{- with (include "civic.secretEnv" $root | trim) }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- range .secretEnv }}
        - name: {{ .name }}
          valueFrom:
            secretKeyRef:
              name: {{ .secretName }}
              key: {{ .key }}
        {{- end }}
      {{- include "civic.grpcProbes" (dict "root" $root "port" $v.port) | nindent 6 }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if .stateDir }}
        - name: data
          mountPath: {{ .stateDir }}
        {{- end }}
        {{- if include "civic.esCaSecret" $root }}
        - name: es-ca
          mountPath: /etc/civic/es-ca
          readOnly: true
        {{- end }}
        {{- if .files }}
        - name: files
          mountPath: /etc/civic/files
          readOnly: true
        {{- end }}
        {{- include "civic.securityVolumeMounts" $root | nindent 8 }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 256Mi
    {{- if include "civic.esCaSecret" $root }}
    - name: es-ca
      secret:
        secretName: {{ include "civic.esCaSecret" $root }}
        items:
          - key: {{ include "civic.esCaKey" $root }}
            path: ca.crt
    {{- end }}
    {{- if .files }}
    - name: files
      configMap:
        name: {{ include "civic.fullname" $root }}-files
    {{- end }}
    {{- include "civic.securityVolumes" $root | nindent 4 }}
    {{- with .volumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
