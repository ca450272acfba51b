{{/*
The pod template of a Ray node (head or worker). KubeRay writes the `ray start` command and the Ray
health probes; this adds the image, settings, hardening and the writable mounts Ray needs on a
read-only root filesystem. Call with (dict "root" $ "component" "inference" "role" "head" "group" ... "gpus" 0).
*/}}
{{- define "civic.rayPod" -}}
{{- $root := .root -}}
{{- $inf := $root.Values.inference -}}
{{- $g := .group -}}
{{- $autoscaling := $inf.modelServer.autoscaling.enabled -}}
metadata:
  labels:
    {{- include "civic.componentLabels" . | nindent 4 }}
    civic-listening.io/ray-node: {{ .role }}
  annotations:
    checksum/config: {{ include "civic.configChecksum" $root }}
spec:
  serviceAccountName: {{ include "civic.serviceAccountName" . }}
  # Only the head's autoscaler sidecar talks to the Kubernetes API.
  automountServiceAccountToken: {{ and $autoscaling (eq .role "head") }}
  enableServiceLinks: false
  securityContext:
    {{- toYaml $inf.podSecurityContext | nindent 4 }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: ray-{{ .role }}
      image: {{ include "civic.image" (dict "root" $root "image" $inf.image) | quote }}
      imagePullPolicy: {{ $inf.image.pullPolicy }}
      {{- if eq .role "head" }}
      ports:
        - {name: gcs-server, containerPort: 6379}
        - {name: dashboard, containerPort: 8265}
        - {name: client, containerPort: 10001}
        - {name: serve, containerPort: 8000}
        - {name: grpc, containerPort: {{ $inf.grpcPort }}}
      {{- else }}
      ports:
        - {name: serve, containerPort: 8000}
        - {name: grpc, containerPort: {{ $inf.grpcPort }}}
      {{- end }}
      envFrom:
        - configMapRef:
            name: {{ include "civic.fullname" $root }}-config
      env:
        - {name: OTEL_SERVICE_NAME, value: inference}
        - {name: OTEL_RESOURCE_ATTRIBUTES, value: "service.namespace=civic-listening,deployment.environment={{ $root.Release.Namespace }}"}
        - {name: CIVIC_MODEL_CACHE_DIR, value: {{ $inf.modelCacheDir | quote }}}
        - {name: CIVIC_INFERENCE_NUM_GPUS, value: {{ ternary "1" "0" $inf.gpu.enabled | quote }}}
        - {name: CIVIC_INFERENCE_REPLICAS, value: {{ $inf.modelServer.replicas | quote }}}
        # Torch would otherwise size its thread pool to the node's cores, not the replica's share.
        - {name: CIVIC_TORCH_THREADS, value: {{ max 1 (int (ceil $inf.modelServer.numCpus)) | quote }}}
        {{- if $inf.topics }}
        - {name: CIVIC_TOPICS_FILE, value: /etc/civic/files/topics.yaml}
        {{- end }}
        - {name: RAY_USAGE_STATS_ENABLED, value: "0"}
        - {name: RAY_SERVE_THROUGHPUT_OPTIMIZED, value: "1"}
        - {name: RAY_worker_niceness, value: "0"}
        # The root filesystem is read-only: every cache goes under the /tmp volume.
        - {name: XDG_CACHE_HOME, value: /tmp/cache}
        - {name: HF_HOME, value: /tmp/cache/huggingface}
        - {name: TORCH_HOME, value: /tmp/cache/torch}
        - {name: PYTHONDONTWRITEBYTECODE, value: "1"}
        {{- with (include "civic.secretEnv" $root | trim) }}
        {{- . | nindent 8 }}
        {{- end }}
      resources:
        requests:
          {{- toYaml $g.resources.requests | nindent 10 }}
          {{- if gt (int .gpus) 0 }}
          {{ $inf.gpu.resourceName }}: {{ .gpus }}
          {{- end }}
        limits:
          {{- toYaml $g.resources.limits | nindent 10 }}
          {{- if gt (int .gpus) 0 }}
          {{ $inf.gpu.resourceName }}: {{ .gpus }}
          {{- end }}
      securityContext:
        {{- toYaml $inf.securityContext | nindent 8 }}
      volumeMounts:
        - {name: tmp, mountPath: /tmp}
        - {name: dshm, mountPath: /dev/shm}
        {{- if $inf.topics }}
        - {name: files, mountPath: /etc/civic/files, readOnly: true}
        {{- end }}
        {{- include "civic.securityVolumeMounts" $root | nindent 8 }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ $inf.scratchSize }}
    - name: dshm
      emptyDir:
        medium: Memory
        sizeLimit: {{ $inf.sharedMemorySize }}
    {{- if $inf.topics }}
    - name: files
      configMap:
        name: {{ include "civic.fullname" $root }}-files
    {{- end }}
    {{- include "civic.securityVolumes" $root | nindent 4 }}
  {{- $nodeSelector := $g.nodeSelector }}
  {{- $tolerations := $g.tolerations }}
  {{- if gt (int .gpus) 0 }}
  {{- $nodeSelector = merge (deepCopy $g.nodeSelector) $inf.gpu.nodeSelector }}
  {{- $tolerations = concat $inf.gpu.tolerations $g.tolerations }}
  {{- end }}
  {{- with $nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $g.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
